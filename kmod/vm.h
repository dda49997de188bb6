/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The VM registry: one per network namespace, indexed by VM id.
 *
 * Locking: every change to a registry (add, delete, rebind, state) is
 * made under RTNL.  RTNL is what the netdevice notifier already holds
 * when it reports a device going away, so taking it for the netlink
 * writers too makes "look up the device, then register the VM on it"
 * atomic against that device's unregistration, with one lock and no
 * ordering rules.  Readers (dumps, lookups for replies) use RCU: the
 * xarray is RCU-safe, and a VM is freed only after a grace period.
 *
 * The identity of a VM (name, MAC, device) is immutable once published;
 * changing it publishes a new copy (xa_store) and frees the old after a
 * grace period, so a reader always sees one consistent identity.  The
 * state triple (state, reason, time) and the device index (cleared when
 * the device is unregistered) are changed in place with WRITE_ONCE() so
 * that marking a VM failed can never fail for want of memory; readers
 * use READ_ONCE() and may see the state a moment before its reason and
 * time.  Events are built by the writer, under RTNL, so
 * they are always consistent.
 *
 * A VM may name its network namespace (netns).  The registry holds no
 * reference on it: a registry in namespace H pointing at namespace V
 * must not keep V alive (nor make H and V keep each other alive).
 * Instead V's own exit clears every pointer to it, under RTNL, and
 * waits a grace period before V can be freed; users take a real
 * reference with ftvm_vm_get_netns() under RCU, which fails once V is
 * dying.
 */
#ifndef _FTVM_VM_H
#define _FTVM_VM_H

#include <linux/if_ether.h>
#include <linux/rcupdate.h>
#include <linux/types.h>
#include <linux/xarray.h>
#include <net/net_namespace.h>

#include "uapi/ftvm.h"

struct ftvm_vm {
	u32 id;
	int ifindex;		/* host-side device, 0 once it is gone */
	u8 state;		/* enum ftvm_vm_state */
	u8 fail_reason;		/* enum ftvm_fail_reason */
	u8 mac[ETH_ALEN];	/* the VM's own address */
	u8 silent_exit;		/* FTVM_A_VM_SILENT_EXIT (exit.c) */
	u64 fail_time;		/* CLOCK_MONOTONIC ns of the last failure */
	char name[FTVM_VM_NAME_LEN];
	struct net __rcu *netns;	/* the VM's namespace; not counted */
	struct rcu_head rcu;
};

struct ftvm_net {
	struct net *net;	/* the registry's own namespace */
	struct xarray vms;	/* id -> struct ftvm_vm; RCU readers */
	u32 gen;		/* bumped on every change, for dumps */
};

int ftvm_vm_init(void);
void ftvm_vm_uninit(void);

struct ftvm_net *ftvm_net(const struct net *net);

/* Lookups: RCU read side or RTNL. */
struct ftvm_vm *ftvm_vm_find(struct ftvm_net *fn, u32 id);
struct ftvm_vm *ftvm_vm_find_name(struct ftvm_net *fn, const char *name);
struct ftvm_vm *ftvm_vm_find_ifindex(struct ftvm_net *fn, int ifindex);

/* Changes: RTNL held. */
struct ftvm_vm *ftvm_vm_alloc(gfp_t gfp);
void ftvm_vm_free(struct ftvm_vm *vm);
int ftvm_vm_insert(struct ftvm_net *fn, struct ftvm_vm *vm);
void ftvm_vm_replace(struct ftvm_net *fn, struct ftvm_vm *old,
		     struct ftvm_vm *new);
void ftvm_vm_remove(struct ftvm_net *fn, struct ftvm_vm *vm);
/*
 * Returns true when the VM went from up to failed; the registry's other
 * VMs are then armed to hold their sessions' segments (hold.c).
 */
bool ftvm_vm_set_failed(struct ftvm_net *fn, struct ftvm_vm *vm,
			enum ftvm_fail_reason reason);
/*
 * @vm failed earlier and a controller is finishing its failover (it
 * was restarted half-way): arm the other VMs again and tell the data
 * plane again (the tracepoint), as its failure did.
 */
void ftvm_vm_resume_failed(struct ftvm_net *fn, struct ftvm_vm *vm);
/* A field of a published VM was changed in place (dumps must know). */
void ftvm_vm_changed(struct ftvm_net *fn);
void ftvm_vm_set_up(struct ftvm_net *fn, struct ftvm_vm *vm);

/* The VM's namespace with a reference, or NULL.  RCU read side or RTNL. */
struct net *ftvm_vm_get_netns(const struct ftvm_vm *vm);
/* Its nsid as @net sees it, NETNSA_NSID_NOT_ASSIGNED if none or no netns. */
int ftvm_vm_netns_id(struct net *net, const struct ftvm_vm *vm);

#endif /* _FTVM_VM_H */
