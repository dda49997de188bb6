/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The ingress hold (hold.c): during a failover, a client's segment that
 * reaches a VM before its session is live there waits for it.
 */
#ifndef _FTVM_HOLD_H
#define _FTVM_HOLD_H

#include <linux/netdevice.h>
#include <linux/netlink.h>
#include <net/net_namespace.h>

#include "vm.h"

struct ftvm_tuple;

/*
 * What a VM's namespace held since it was first armed: segments held,
 * then let in (released) or dropped, their wait over (expired), the
 * namespace full (overflow, never held) or their device gone; what it
 * holds now (queued), and for how much longer it is armed.
 */
struct ftvm_hold_stats {
	u64 held;
	u64 released;
	u64 expired;
	u64 overflow;
	u64 dev_gone;
	u32 queued;
	u32 armed_ms;
};

int ftvm_hold_init(void);
void ftvm_hold_uninit(void);

/*
 * VM @failed of registry @fn has just failed (RTNL held): every other
 * live VM of @fn holds, for a while, what reaches it for sessions it
 * does not have yet.  Returns for how long from now (ns) at least those
 * it armed hold; 0 if it armed none (no other VM with a namespace of
 * its own, or hooking one failed).  One failing later re-arms them all.
 */
u64 ftvm_hold_arm_others(struct ftvm_net *fn, const struct ftvm_vm *failed);
/*
 * Sessions are about to be moved to @vm of @fn on purpose (RTNL held):
 * its namespace holds, for as long as a failure arms it, what reaches it
 * for sessions it does not have yet.  -EINVAL (said in @extack) when @vm
 * has failed or has no namespace of its own.
 */
int ftvm_hold_arm_vm(struct ftvm_net *fn, const struct ftvm_vm *vm,
		     struct netlink_ext_ack *extack);
/*
 * Call @fn with the session (the VM's view, as on the wire) of each
 * segment @net holds, oldest first, until it returns false.  @fn runs
 * under the hold's lock, bottom halves off: it must not sleep.
 */
void ftvm_hold_each(struct net *net,
		    bool (*fn)(const struct ftvm_tuple *key, void *arg),
		    void *arg);
/* Sessions may have become live in @net: let their segments in. */
void ftvm_hold_release(struct net *net);
/* @net's hold counters, consistent with each other. */
void ftvm_hold_stats(struct net *net, struct ftvm_hold_stats *st);
/* @dev is being unregistered (RTNL): drop the segments it brought. */
void ftvm_hold_dev_gone(struct net_device *dev);

#endif
