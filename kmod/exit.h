/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Silent exit: a VM whose processes are killed dies as a VM would, not
 * as a namespace does (see exit.c).
 */
#ifndef _FTVM_EXIT_H
#define _FTVM_EXIT_H

#include <linux/netlink.h>
#include <net/net_namespace.h>

#include "vm.h"

/* Module load and unload: init before the netlink family, start after;
 * stop before the family goes, uninit after.
 */
int ftvm_exit_init(void);
void ftvm_exit_start(void);
void ftvm_exit_stop(void);
void ftvm_exit_uninit(void);

/*
 * Watch @vnet for VM @id of registry @host (RTNL held): fails with an
 * extack message when this kernel cannot, when @vnet is @host's own
 * namespace, or when another VM watches it already.  Idempotent.
 */
int ftvm_exit_arm(struct net *host, u32 id, struct net *vnet,
		  struct netlink_ext_ack *extack);
/* Stop watching the namespace of @vm, if @vm is what watches it (RTNL). */
void ftvm_exit_disarm(struct ftvm_net *fn, const struct ftvm_vm *vm);
/* @vm is up again: its namespace may be heard from (RTNL). */
void ftvm_exit_vm_up(struct ftvm_net *fn, const struct ftvm_vm *vm);

#endif /* _FTVM_EXIT_H */
