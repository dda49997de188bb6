// SPDX-License-Identifier: GPL-2.0
/*
 * Failure detection without polling: a netdevice notifier declares a VM
 * failed the moment its host-side device starts going down, loses its
 * carrier (the peer end of a veth went down, or the process behind a
 * persistent tap closed it) or is unregistered (the hypervisor process
 * died and its tap went with it; the device was moved to another
 * namespace), and multicasts a vm-failed event on the family's events
 * group.
 */
#include <linux/etherdevice.h>
#include <linux/if_arp.h>
#include <linux/netdevice.h>
#include <linux/rtnetlink.h>

#include "commit.h"
#include "hold.h"
#include "device.h"
#include "netlink.h"
#include "vm.h"

/*
 * Both set under RTNL while the module unloads.  Stopped first, before
 * the netlink family goes (its multicast group goes with it, free for
 * another family): no VM is failed and no event is sent any more, but a
 * device that goes away still takes back what holds it.  Exiting last:
 * unregistering the notifier replays DOWN and UNREGISTER for every
 * device, which must not look like every VM failing at once, nor drop
 * what is held on devices that stay.
 */
static bool ftvm_device_stopped;
static bool ftvm_device_exiting;

int ftvm_device_check(const struct net_device *dev, const struct nlattr *attr,
		      struct netlink_ext_ack *extack)
{
	if (dev->type != ARPHRD_ETHER || dev->addr_len != ETH_ALEN ||
	    (dev->flags & IFF_LOOPBACK)) {
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "device is not an Ethernet device (need a tap or veth)");
		return -EINVAL;
	}
	if (!netif_running(dev)) {
		NL_SET_ERR_MSG_ATTR(extack, attr, "device is down");
		return -ENETDOWN;
	}
	if (!netif_carrier_ok(dev)) {
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "device has no carrier: is the VM behind it running?");
		return -ENETDOWN;
	}
	return 0;
}

bool ftvm_device_peer_mac(struct net_device *dev, u8 *mac)
{
	struct net_device *peer;
	bool ok = false;

	if (!dev->netdev_ops->ndo_get_peer_dev)
		return false;
	rcu_read_lock();
	peer = dev->netdev_ops->ndo_get_peer_dev(dev);
	if (peer && is_valid_ether_addr(peer->dev_addr)) {
		ether_addr_copy(mac, peer->dev_addr);
		ok = true;
	}
	rcu_read_unlock();
	return ok;
}

static int ftvm_device_event(struct notifier_block *nb, unsigned long event,
			     void *ptr)
{
	struct net_device *dev = netdev_notifier_info_to_dev(ptr);
	enum ftvm_fail_reason reason;
	struct ftvm_net *fn;
	struct ftvm_vm *vm;

	switch (event) {
	case NETDEV_GOING_DOWN:
		/*
		 * Before the device stops taking frames, not after (its
		 * NETDEV_DOWN): the data plane sends the VM's sessions to
		 * their backups from this moment (trace.h), so none of a
		 * client's frames meets a device that drops it.
		 */
	case NETDEV_DOWN:
		reason = FTVM_FAIL_DEV_DOWN;
		break;
	case NETDEV_UNREGISTER:
		reason = FTVM_FAIL_DEV_UNREGISTERED;
		break;
	case NETDEV_CHANGE:
		if (netif_carrier_ok(dev))
			return NOTIFY_DONE;
		reason = FTVM_FAIL_CARRIER_LOST;
		break;
	default:
		return NOTIFY_DONE;
	}

	ASSERT_RTNL();
	if (ftvm_device_exiting)
		return NOTIFY_DONE;
	if (event == NETDEV_UNREGISTER) {
		/* Any device: they hold it. */
		ftvm_commit_dev_gone(dev);
		ftvm_hold_dev_gone(dev);
	}
	if (ftvm_device_stopped)
		return NOTIFY_DONE;
	fn = ftvm_net(dev_net(dev));
	vm = ftvm_vm_find_ifindex(fn, dev->ifindex);
	if (!vm)
		return NOTIFY_DONE;
	if (ftvm_vm_set_failed(fn, vm, reason)) {
		pr_debug("vm %u (%s) failed: %s event on %s\n", vm->id,
			 vm->name, netdev_cmd_to_name(event), dev->name);
		ftvm_nl_notify_vm(dev_net(dev), vm, FTVM_CMD_VM_FAILED);
	}
	if (event == NETDEV_UNREGISTER) {
		/*
		 * A device being deleted went down first, and that was
		 * the failure; now say it is gone, and never match a
		 * device that reuses its index.
		 */
		WRITE_ONCE(vm->ifindex, 0);
		WRITE_ONCE(vm->fail_reason, FTVM_FAIL_DEV_UNREGISTERED);
		ftvm_vm_changed(fn);
		ftvm_nl_notify_vm(dev_net(dev), vm, FTVM_CMD_VM_SET);
	}
	return NOTIFY_DONE;
}

static struct notifier_block ftvm_device_nb = {
	.notifier_call = ftvm_device_event,
};

int __init ftvm_device_init(void)
{
	return register_netdevice_notifier(&ftvm_device_nb);
}

void ftvm_device_stop(void)
{
	rtnl_lock();
	ftvm_device_stopped = true;
	rtnl_unlock();
}

void ftvm_device_uninit(void)
{
	rtnl_lock();
	ftvm_device_exiting = true;
	rtnl_unlock();
	unregister_netdevice_notifier(&ftvm_device_nb);
}
