/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _FTVM_NETLINK_H
#define _FTVM_NETLINK_H

#include <net/genetlink.h>
#include <net/net_namespace.h>

#include "vm.h"

extern struct genl_family ftvm_genl_family;

extern const struct nla_policy ftvm_snap_policy[];
extern const struct nla_policy ftvm_tcp_policy[];
extern const struct nla_policy ftvm_sess_policy[];
extern const struct nla_policy ftvm_session_policy[];
extern const struct nla_policy ftvm_ckpt_attr_policy[];
extern const struct nla_policy ftvm_ckpt_policy[];

int ftvm_genl_init(void);
void ftvm_genl_uninit(void);

/* Multicast @cmd about @vm to the events group of @net.  RTNL held. */
void ftvm_nl_notify_vm(struct net *net, const struct ftvm_vm *vm, u8 cmd);

/* The namespace of the VM an FTVM_A_VM nest selects, referenced. */
struct net *ftvm_nl_vm_netns(struct net *net, const struct nlattr *attr,
			     struct netlink_ext_ack *extack);

#endif
