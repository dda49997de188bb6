/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _FTVM_NETLINK_H
#define _FTVM_NETLINK_H

#include <net/net_namespace.h>

#include "vm.h"

int ftvm_genl_init(void);
void ftvm_genl_uninit(void);

/* Multicast @cmd about @vm to the events group of @net.  RTNL held. */
void ftvm_nl_notify_vm(struct net *net, const struct ftvm_vm *vm, u8 cmd);

#endif
