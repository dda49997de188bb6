/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _FTVM_DEVICE_H
#define _FTVM_DEVICE_H

#include <linux/netdevice.h>
#include <net/netlink.h>

int ftvm_device_init(void);
/* No more VM failures nor events (unloading, before the family goes). */
void ftvm_device_stop(void);
void ftvm_device_uninit(void);

/* Can @dev carry a VM?  0, or an errno with extack set on @attr. RTNL. */
int ftvm_device_check(const struct net_device *dev, const struct nlattr *attr,
		      struct netlink_ext_ack *extack);
/* The MAC of the VM behind @dev when the device knows it (veth peer). */
bool ftvm_device_peer_mac(struct net_device *dev, u8 *mac);

#endif
