// SPDX-License-Identifier: GPL-2.0
/*
 * The "ftvm" generic netlink family: requests, replies and events.
 *
 * Documentation/netlink/ftvm.yaml is the specification; every policy
 * below mirrors a "checks:" there.  Policies are per operation and
 * strict (resv_start_op is 0): unknown attributes, attributes an
 * operation does not take and trailing garbage are all rejected by the
 * core before a handler runs.  Handlers reject what policies cannot
 * express with an extack message naming the offending attribute.
 */
#include <linux/ctype.h>
#include <linux/etherdevice.h>
#include <linux/netdevice.h>
#include <linux/rtnetlink.h>
#include <net/genetlink.h>
#include <net/sock.h>

#include "device.h"
#include "netlink.h"
#include "vm.h"

static struct genl_family ftvm_genl_family;

enum ftvm_mcgrp {
	FTVM_MCGRP_EVENTS_ID,
};

static const struct genl_multicast_group ftvm_mcgrps[] = {
	[FTVM_MCGRP_EVENTS_ID] = { .name = FTVM_MCGRP_EVENTS },
};

/* Attributes a request may carry inside FTVM_A_VM. */
static const struct nla_policy ftvm_vm_policy[FTVM_A_VM_MAX + 1] = {
	[FTVM_A_VM_ID] = NLA_POLICY_RANGE(NLA_U32, FTVM_VM_ID_MIN,
					  FTVM_VM_ID_MAX),
	[FTVM_A_VM_NAME] = { .type = NLA_NUL_STRING,
			     .len = FTVM_VM_NAME_LEN - 1 },
	[FTVM_A_VM_IFINDEX] = NLA_POLICY_MIN(NLA_U32, 1),
	[FTVM_A_VM_IFNAME] = { .type = NLA_NUL_STRING, .len = IFNAMSIZ - 1 },
	[FTVM_A_VM_MAC] = NLA_POLICY_ETH_ADDR,
	[FTVM_A_VM_STATE] = NLA_POLICY_RANGE(NLA_U8, FTVM_VM_STATE_UP,
					     FTVM_VM_STATE_UP),
	/* Reported by the kernel, never taken from a request. */
	[FTVM_A_VM_FAIL_REASON] = { .type = NLA_REJECT,
				    .reject_message = "the failure reason is set by the kernel" },
	[FTVM_A_VM_FAIL_TIME] = { .type = NLA_REJECT,
				  .reject_message = "the failure time is set by the kernel" },
	[FTVM_A_VM_PAD] = { .type = NLA_REJECT },
};

static const struct nla_policy ftvm_policy[FTVM_A_MAX + 1] = {
	[FTVM_A_VM] = NLA_POLICY_NESTED(ftvm_vm_policy),
};

/* Reply and event building. */

static int ftvm_nl_put_vm(struct sk_buff *skb, const struct ftvm_vm *vm)
{
	u8 state = READ_ONCE(vm->state);
	struct nlattr *nest;

	nest = nla_nest_start(skb, FTVM_A_VM);
	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u32(skb, FTVM_A_VM_ID, vm->id) ||
	    nla_put_string(skb, FTVM_A_VM_NAME, vm->name) ||
	    nla_put_u32(skb, FTVM_A_VM_IFINDEX, READ_ONCE(vm->ifindex)) ||
	    nla_put(skb, FTVM_A_VM_MAC, ETH_ALEN, vm->mac) ||
	    nla_put_u8(skb, FTVM_A_VM_STATE, state))
		goto cancel;
	if (state == FTVM_VM_STATE_FAILED &&
	    (nla_put_u8(skb, FTVM_A_VM_FAIL_REASON, READ_ONCE(vm->fail_reason)) ||
	     nla_put_u64_64bit(skb, FTVM_A_VM_FAIL_TIME,
			       READ_ONCE(vm->fail_time), FTVM_A_VM_PAD)))
		goto cancel;
	nla_nest_end(skb, nest);
	return 0;
cancel:
	nla_nest_cancel(skb, nest);
	return -EMSGSIZE;
}

static size_t ftvm_nl_vm_size(void)
{
	return nla_total_size(0) +			/* FTVM_A_VM */
	       nla_total_size(sizeof(u32)) +		/* ID */
	       nla_total_size(FTVM_VM_NAME_LEN) +	/* NAME */
	       nla_total_size(sizeof(u32)) +		/* IFINDEX */
	       nla_total_size(ETH_ALEN) +		/* MAC */
	       nla_total_size(sizeof(u8)) +		/* STATE */
	       nla_total_size(sizeof(u8)) +		/* FAIL_REASON */
	       nla_total_size_64bit(sizeof(u64));	/* FAIL_TIME */
}

static struct sk_buff *ftvm_nl_vm_msg(const struct ftvm_vm *vm, u32 portid,
				      u32 seq, u8 cmd, gfp_t gfp)
{
	struct sk_buff *skb;
	void *hdr;

	skb = genlmsg_new(ftvm_nl_vm_size(), gfp);
	if (!skb)
		return NULL;
	hdr = genlmsg_put(skb, portid, seq, &ftvm_genl_family, 0, cmd);
	if (!hdr || ftvm_nl_put_vm(skb, vm)) {
		nlmsg_free(skb);
		return NULL;
	}
	genlmsg_end(skb, hdr);
	return skb;
}

void ftvm_nl_notify_vm(struct net *net, const struct ftvm_vm *vm, u8 cmd)
{
	struct sk_buff *skb;

	ASSERT_RTNL();
	if (!genl_has_listeners(&ftvm_genl_family, net, FTVM_MCGRP_EVENTS_ID))
		return;
	skb = ftvm_nl_vm_msg(vm, 0, 0, cmd, GFP_KERNEL);
	if (!skb) {
		/* Listeners learn of the loss through ENOBUFS-like gaps
		 * only if we tell them: say it loudly instead. */
		pr_warn_ratelimited("event %u for vm %u lost: out of memory\n",
				    cmd, vm->id);
		return;
	}
	genlmsg_multicast_netns(&ftvm_genl_family, net, skb, 0,
				FTVM_MCGRP_EVENTS_ID, GFP_KERNEL);
}

/* Request parsing. */

/* The FTVM_A_VM nest of a request, parsed; it is required. */
static int ftvm_nl_vm_attrs(struct genl_info *info, struct nlattr **tb)
{
	if (GENL_REQ_ATTR_CHECK(info, FTVM_A_VM)) {
		NL_SET_ERR_MSG(info->extack, "the request needs a VM (FTVM_A_VM)");
		return -EINVAL;
	}
	/* Already validated against ftvm_vm_policy by the core. */
	return nla_parse_nested(tb, FTVM_A_VM_MAX, info->attrs[FTVM_A_VM],
				ftvm_vm_policy, info->extack);
}

static bool ftvm_name_valid(const char *name)
{
	if (!*name)
		return false;
	for (; *name; name++)
		if (!isalnum(*name) && *name != '-' && *name != '_' &&
		    *name != '.')
			return false;
	return true;
}

/* The VM a request names: by FTVM_A_VM_ID if given, else by name. */
static struct ftvm_vm *ftvm_nl_select(struct ftvm_net *fn, struct nlattr **tb,
				      struct netlink_ext_ack *extack)
{
	struct ftvm_vm *vm;

	if (tb[FTVM_A_VM_ID]) {
		vm = ftvm_vm_find(fn, nla_get_u32(tb[FTVM_A_VM_ID]));
		if (!vm) {
			NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_VM_ID],
					    "no VM with this id");
			return ERR_PTR(-ENOENT);
		}
		return vm;
	}
	if (tb[FTVM_A_VM_NAME]) {
		vm = ftvm_vm_find_name(fn, nla_data(tb[FTVM_A_VM_NAME]));
		if (!vm) {
			NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_VM_NAME],
					    "no VM with this name");
			return ERR_PTR(-ENOENT);
		}
		return vm;
	}
	NL_SET_ERR_MSG(extack, "VM id or name required");
	return ERR_PTR(-EINVAL);
}

/*
 * The device a request names, by index or by name (not both), checked
 * to be able to carry a VM and not to carry another one.  RTNL held.
 */
static struct net_device *ftvm_nl_device(struct net *net, struct ftvm_net *fn,
					 struct nlattr **tb,
					 const struct ftvm_vm *self,
					 struct netlink_ext_ack *extack)
{
	struct nlattr *attr = tb[FTVM_A_VM_IFINDEX] ?: tb[FTVM_A_VM_IFNAME];
	struct net_device *dev;
	struct ftvm_vm *other;
	int err;

	if (tb[FTVM_A_VM_IFINDEX] && tb[FTVM_A_VM_IFNAME]) {
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_VM_IFNAME],
				    "give the device by index or by name, not both");
		return ERR_PTR(-EINVAL);
	}
	if (tb[FTVM_A_VM_IFINDEX])
		dev = __dev_get_by_index(net, nla_get_u32(attr));
	else
		dev = __dev_get_by_name(net, nla_data(attr));
	if (!dev) {
		NL_SET_ERR_MSG_ATTR(extack, attr, "unknown device");
		return ERR_PTR(-ENODEV);
	}
	err = ftvm_device_check(dev, attr, extack);
	if (err)
		return ERR_PTR(err);
	other = ftvm_vm_find_ifindex(fn, dev->ifindex);
	if (other && other != self) {
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "device already carries another VM");
		return ERR_PTR(-EBUSY);
	}
	return dev;
}

/* Take the MAC from the request, else from a veth's peer. */
static int ftvm_nl_mac(struct net_device *dev, struct nlattr **tb, u8 *mac,
		       struct netlink_ext_ack *extack)
{
	if (tb[FTVM_A_VM_MAC]) {
		if (!is_valid_ether_addr(nla_data(tb[FTVM_A_VM_MAC]))) {
			NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_VM_MAC],
					    "bad MAC: must be unicast and not zero");
			return -EINVAL;
		}
		ether_addr_copy(mac, nla_data(tb[FTVM_A_VM_MAC]));
		return 0;
	}
	if (dev && ftvm_device_peer_mac(dev, mac))
		return 0;
	NL_SET_ERR_MSG(extack,
		       "the VM's MAC is needed: the device has no peer to take it from");
	return -EINVAL;
}

static int ftvm_nl_check_name(struct ftvm_net *fn, struct nlattr *attr,
			      struct netlink_ext_ack *extack)
{
	if (!ftvm_name_valid(nla_data(attr))) {
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "bad name: use letters, digits, '-', '_' and '.'");
		return -EINVAL;
	}
	if (ftvm_vm_find_name(fn, nla_data(attr))) {
		NL_SET_ERR_MSG_ATTR(extack, attr, "VM name already in use");
		return -EEXIST;
	}
	return 0;
}

/* Handlers. */

static int ftvm_nl_vm_new(struct sk_buff *skb, struct genl_info *info)
{
	struct net *net = genl_info_net(info);
	struct ftvm_net *fn = ftvm_net(net);
	struct nlattr *tb[FTVM_A_VM_MAX + 1];
	struct netlink_ext_ack *extack = info->extack;
	struct net_device *dev;
	struct ftvm_vm *vm;
	int err;

	err = ftvm_nl_vm_attrs(info, tb);
	if (err)
		return err;
	if (NL_REQ_ATTR_CHECK(extack, info->attrs[FTVM_A_VM], tb, FTVM_A_VM_ID)) {
		NL_SET_ERR_MSG(extack, "the VM id is required");
		return -EINVAL;
	}
	if (NL_REQ_ATTR_CHECK(extack, info->attrs[FTVM_A_VM], tb, FTVM_A_VM_NAME)) {
		NL_SET_ERR_MSG(extack, "the VM name is required");
		return -EINVAL;
	}
	if (!tb[FTVM_A_VM_IFINDEX] && !tb[FTVM_A_VM_IFNAME]) {
		NL_SET_ERR_MSG(extack, "the VM's device is required (ifindex or ifname)");
		return -EINVAL;
	}
	if (tb[FTVM_A_VM_STATE]) {
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_VM_STATE],
				    "a new VM is always up");
		return -EINVAL;
	}

	vm = ftvm_vm_alloc(GFP_KERNEL);
	if (!vm)
		return -ENOMEM;
	vm->id = nla_get_u32(tb[FTVM_A_VM_ID]);
	nla_strscpy(vm->name, tb[FTVM_A_VM_NAME], sizeof(vm->name));
	vm->state = FTVM_VM_STATE_UP;

	rtnl_lock();
	if (ftvm_vm_find(fn, vm->id)) {
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_VM_ID],
				    "VM id already registered");
		err = -EEXIST;
		goto err_unlock;
	}
	err = ftvm_nl_check_name(fn, tb[FTVM_A_VM_NAME], extack);
	if (err)
		goto err_unlock;
	dev = ftvm_nl_device(net, fn, tb, NULL, extack);
	if (IS_ERR(dev)) {
		err = PTR_ERR(dev);
		goto err_unlock;
	}
	err = ftvm_nl_mac(dev, tb, vm->mac, extack);
	if (err)
		goto err_unlock;
	vm->ifindex = dev->ifindex;
	err = ftvm_vm_insert(fn, vm);
	if (err)
		goto err_unlock;
	ftvm_nl_notify_vm(net, vm, FTVM_CMD_VM_NEW);
	rtnl_unlock();
	return 0;

err_unlock:
	rtnl_unlock();
	ftvm_vm_free(vm);
	return err;
}

static int ftvm_nl_vm_del(struct sk_buff *skb, struct genl_info *info)
{
	struct net *net = genl_info_net(info);
	struct ftvm_net *fn = ftvm_net(net);
	struct nlattr *tb[FTVM_A_VM_MAX + 1];
	struct ftvm_vm *vm;
	int err;

	err = ftvm_nl_vm_attrs(info, tb);
	if (err)
		return err;
	rtnl_lock();
	vm = ftvm_nl_select(fn, tb, info->extack);
	if (IS_ERR(vm)) {
		err = PTR_ERR(vm);
	} else {
		ftvm_nl_notify_vm(net, vm, FTVM_CMD_VM_DEL);
		ftvm_vm_remove(fn, vm);
	}
	rtnl_unlock();
	return err;
}

static int ftvm_nl_vm_get(struct sk_buff *skb, struct genl_info *info)
{
	struct ftvm_net *fn = ftvm_net(genl_info_net(info));
	struct nlattr *tb[FTVM_A_VM_MAX + 1];
	struct sk_buff *reply;
	struct ftvm_vm *vm;
	int err;

	err = ftvm_nl_vm_attrs(info, tb);
	if (err)
		return err;
	rcu_read_lock();
	vm = ftvm_nl_select(fn, tb, info->extack);
	if (IS_ERR(vm)) {
		rcu_read_unlock();
		return PTR_ERR(vm);
	}
	reply = ftvm_nl_vm_msg(vm, info->snd_portid, info->snd_seq,
			       FTVM_CMD_VM_GET, GFP_ATOMIC);
	rcu_read_unlock();
	if (!reply)
		return -ENOMEM;
	return genlmsg_reply(reply, info);
}

/*
 * Dump every VM of the namespace.  cb->args[0] is the id to resume
 * from; the registry's generation in cb->seq flags a dump that raced
 * with a change (NLM_F_DUMP_INTR).
 */
static int ftvm_nl_vm_dump(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct ftvm_net *fn = ftvm_net(sock_net(skb->sk));
	unsigned long id = cb->args[0];
	struct ftvm_vm *vm;
	int err = 0;

	rcu_read_lock();
	cb->seq = READ_ONCE(fn->gen);
	xa_for_each_start(&fn->vms, id, vm, id) {
		void *hdr;

		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
				  cb->nlh->nlmsg_seq, &ftvm_genl_family,
				  NLM_F_MULTI, FTVM_CMD_VM_GET);
		if (!hdr) {
			err = -EMSGSIZE;
			break;
		}
		genl_dump_check_consistent(cb, hdr);
		if (ftvm_nl_put_vm(skb, vm)) {
			genlmsg_cancel(skb, hdr);
			err = -EMSGSIZE;
			break;
		}
		genlmsg_end(skb, hdr);
	}
	rcu_read_unlock();
	if (err == -EMSGSIZE) {
		cb->args[0] = id;	/* resume at the VM that did not fit */
		return skb->len;
	}
	cb->args[0] = FTVM_VM_ID_MAX + 1;
	return skb->len;
}

static int ftvm_nl_vm_set(struct sk_buff *skb, struct genl_info *info)
{
	struct net *net = genl_info_net(info);
	struct ftvm_net *fn = ftvm_net(net);
	struct netlink_ext_ack *extack = info->extack;
	struct nlattr *tb[FTVM_A_VM_MAX + 1];
	struct net_device *dev = NULL;
	struct ftvm_vm *vm, *new;
	bool rename, rebind, up;
	int err;

	err = ftvm_nl_vm_attrs(info, tb);
	if (err)
		return err;
	/* Selected by id, a name renames; selected by name, it selects. */
	rename = tb[FTVM_A_VM_ID] && tb[FTVM_A_VM_NAME];
	rebind = tb[FTVM_A_VM_IFINDEX] || tb[FTVM_A_VM_IFNAME];
	up = !!tb[FTVM_A_VM_STATE];
	if (!rename && !rebind && !up && !tb[FTVM_A_VM_MAC]) {
		NL_SET_ERR_MSG(extack, "nothing to change: give a name, device, MAC or state");
		return -EINVAL;
	}

	rtnl_lock();
	vm = ftvm_nl_select(fn, tb, extack);
	if (IS_ERR(vm)) {
		err = PTR_ERR(vm);
		goto out;
	}
	if (rename && strcmp(vm->name, nla_data(tb[FTVM_A_VM_NAME]))) {
		err = ftvm_nl_check_name(fn, tb[FTVM_A_VM_NAME], extack);
		if (err)
			goto out;
	}
	if (rebind) {
		dev = ftvm_nl_device(net, fn, tb, vm, extack);
		if (IS_ERR(dev)) {
			err = PTR_ERR(dev);
			goto out;
		}
	}
	if (up && !rebind) {
		dev = vm->ifindex ? __dev_get_by_index(net, vm->ifindex) : NULL;
		if (!dev) {
			NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_VM_STATE],
					    "the VM's device is gone: give a new one");
			err = -ENODEV;
			goto out;
		}
		err = ftvm_device_check(dev, tb[FTVM_A_VM_STATE], extack);
		if (err)
			goto out;
	}

	new = ftvm_vm_alloc(GFP_KERNEL);
	if (!new) {
		err = -ENOMEM;
		goto out;
	}
	memcpy(new, vm, offsetof(struct ftvm_vm, rcu));
	if (rename)
		nla_strscpy(new->name, tb[FTVM_A_VM_NAME], sizeof(new->name));
	if (tb[FTVM_A_VM_MAC] || rebind) {
		err = ftvm_nl_mac(dev, tb, new->mac, extack);
		if (err) {
			ftvm_vm_free(new);
			goto out;
		}
	}
	if (rebind)
		new->ifindex = dev->ifindex;
	ftvm_vm_replace(fn, vm, new);
	ftvm_nl_notify_vm(net, new, FTVM_CMD_VM_SET);
	if (up && new->state != FTVM_VM_STATE_UP) {
		ftvm_vm_set_up(fn, new);
		ftvm_nl_notify_vm(net, new, FTVM_CMD_VM_UP);
	}
out:
	rtnl_unlock();
	return err;
}

static int ftvm_nl_vm_fail(struct sk_buff *skb, struct genl_info *info)
{
	struct net *net = genl_info_net(info);
	struct ftvm_net *fn = ftvm_net(net);
	struct nlattr *tb[FTVM_A_VM_MAX + 1];
	struct ftvm_vm *vm;
	int err;

	err = ftvm_nl_vm_attrs(info, tb);
	if (err)
		return err;
	rtnl_lock();
	vm = ftvm_nl_select(fn, tb, info->extack);
	if (IS_ERR(vm))
		err = PTR_ERR(vm);
	else if (ftvm_vm_set_failed(fn, vm, FTVM_FAIL_USER))
		ftvm_nl_notify_vm(net, vm, FTVM_CMD_VM_FAILED);
	/* Failing a failed VM is not an error: it changes nothing. */
	rtnl_unlock();
	return err;
}

static const struct genl_ops ftvm_genl_ops[] = {
	{
		.cmd = FTVM_CMD_VM_NEW,
		.flags = GENL_UNS_ADMIN_PERM,
		.doit = ftvm_nl_vm_new,
		.policy = ftvm_policy,
		.maxattr = FTVM_A_MAX,
	},
	{
		.cmd = FTVM_CMD_VM_DEL,
		.flags = GENL_UNS_ADMIN_PERM,
		.doit = ftvm_nl_vm_del,
		.policy = ftvm_policy,
		.maxattr = FTVM_A_MAX,
	},
	{
		.cmd = FTVM_CMD_VM_GET,
		.doit = ftvm_nl_vm_get,
		.dumpit = ftvm_nl_vm_dump,
		.policy = ftvm_policy,
		.maxattr = FTVM_A_MAX,
	},
	{
		.cmd = FTVM_CMD_VM_SET,
		.flags = GENL_UNS_ADMIN_PERM,
		.doit = ftvm_nl_vm_set,
		.policy = ftvm_policy,
		.maxattr = FTVM_A_MAX,
	},
	{
		.cmd = FTVM_CMD_VM_FAIL,
		.flags = GENL_UNS_ADMIN_PERM,
		.doit = ftvm_nl_vm_fail,
		.policy = ftvm_policy,
		.maxattr = FTVM_A_MAX,
	},
};

static struct genl_family ftvm_genl_family __ro_after_init = {
	.name = FTVM_GENL_NAME,
	.version = FTVM_GENL_VERSION,
	.maxattr = FTVM_A_MAX,
	.netnsok = true,
	.module = THIS_MODULE,
	.ops = ftvm_genl_ops,
	.n_ops = ARRAY_SIZE(ftvm_genl_ops),
	.mcgrps = ftvm_mcgrps,
	.n_mcgrps = ARRAY_SIZE(ftvm_mcgrps),
	.resv_start_op = 0,	/* every operation strictly validated */
};

int __init ftvm_genl_init(void)
{
	return genl_register_family(&ftvm_genl_family);
}

void ftvm_genl_uninit(void)
{
	genl_unregister_family(&ftvm_genl_family);
}
