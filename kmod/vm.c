// SPDX-License-Identifier: GPL-2.0
/*
 * The per-netns VM registry (see vm.h for the locking rules).
 */
#include <linux/rtnetlink.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/timekeeping.h>
#include <net/netns/generic.h>
#include <uapi/linux/net_namespace.h>

#include "exit.h"
#include "hold.h"
#include "vm.h"

#define CREATE_TRACE_POINTS
#include "trace.h"

static unsigned int ftvm_net_id __read_mostly;
static struct kmem_cache *ftvm_vm_cache __read_mostly;

struct ftvm_net *ftvm_net(const struct net *net)
{
	return net_generic(net, ftvm_net_id);
}

struct ftvm_vm *ftvm_vm_find(struct ftvm_net *fn, u32 id)
{
	return xa_load(&fn->vms, id);
}

struct ftvm_vm *ftvm_vm_find_name(struct ftvm_net *fn, const char *name)
{
	struct ftvm_vm *vm;
	unsigned long id;

	xa_for_each(&fn->vms, id, vm)
		if (!strcmp(vm->name, name))
			return vm;
	return NULL;
}

struct ftvm_vm *ftvm_vm_find_ifindex(struct ftvm_net *fn, int ifindex)
{
	struct ftvm_vm *vm;
	unsigned long id;

	xa_for_each(&fn->vms, id, vm)
		if (READ_ONCE(vm->ifindex) == ifindex)
			return vm;
	return NULL;
}

struct ftvm_vm *ftvm_vm_alloc(gfp_t gfp)
{
	return kmem_cache_zalloc(ftvm_vm_cache, gfp);
}

static void ftvm_vm_free_rcu(struct rcu_head *head)
{
	kmem_cache_free(ftvm_vm_cache, container_of(head, struct ftvm_vm, rcu));
}

/* Free a VM that readers may still see. */
static void ftvm_vm_release(struct ftvm_vm *vm)
{
	pr_debug("vm %u (%s) released\n", vm->id, vm->name);
	call_rcu(&vm->rcu, ftvm_vm_free_rcu);
}

/* Free a VM that was never published. */
void ftvm_vm_free(struct ftvm_vm *vm)
{
	kmem_cache_free(ftvm_vm_cache, vm);
}

int ftvm_vm_insert(struct ftvm_net *fn, struct ftvm_vm *vm)
{
	int err;

	ASSERT_RTNL();
	err = xa_insert(&fn->vms, vm->id, vm, GFP_KERNEL);
	if (err)
		return err;
	fn->gen++;
	pr_debug("vm %u (%s) created on ifindex %d\n", vm->id, vm->name,
		 vm->ifindex);
	return 0;
}

void ftvm_vm_replace(struct ftvm_net *fn, struct ftvm_vm *old,
		     struct ftvm_vm *new)
{
	ASSERT_RTNL();
	/* The slot exists, so storing into it needs no allocation. */
	xa_store(&fn->vms, new->id, new, GFP_KERNEL);
	fn->gen++;
	ftvm_vm_release(old);
}

void ftvm_vm_remove(struct ftvm_net *fn, struct ftvm_vm *vm)
{
	ASSERT_RTNL();
	ftvm_exit_disarm(fn, vm);
	xa_erase(&fn->vms, vm->id);
	fn->gen++;
	ftvm_vm_release(vm);
}

/*
 * @vm has failed (RTNL): the other VMs hold what reaches them for its
 * sessions, and the data plane is told (the tracepoint, kmod/trace.h).
 */
static void ftvm_vm_arm_and_tell(struct ftvm_net *fn, struct ftvm_vm *vm)
{
	u64 held_ns = ftvm_hold_arm_others(fn, vm);

	trace_ftvm_vm_failed(fn->net, vm->id, vm->fail_reason, held_ns);
}

bool ftvm_vm_set_failed(struct ftvm_net *fn, struct ftvm_vm *vm,
			enum ftvm_fail_reason reason)
{
	ASSERT_RTNL();
	if (vm->state == FTVM_VM_STATE_FAILED)
		return false;
	WRITE_ONCE(vm->fail_time, ktime_get_ns());
	WRITE_ONCE(vm->fail_reason, reason);
	WRITE_ONCE(vm->state, FTVM_VM_STATE_FAILED);
	fn->gen++;
	ftvm_vm_arm_and_tell(fn, vm);
	return true;
}

void ftvm_vm_resume_failed(struct ftvm_net *fn, struct ftvm_vm *vm)
{
	ASSERT_RTNL();
	if (WARN_ON_ONCE(vm->state != FTVM_VM_STATE_FAILED))
		return;
	ftvm_vm_arm_and_tell(fn, vm);
}

void ftvm_vm_changed(struct ftvm_net *fn)
{
	ASSERT_RTNL();
	fn->gen++;
}

void ftvm_vm_set_up(struct ftvm_net *fn, struct ftvm_vm *vm)
{
	ASSERT_RTNL();
	WRITE_ONCE(vm->state, FTVM_VM_STATE_UP);
	WRITE_ONCE(vm->fail_reason, FTVM_FAIL_NONE);
	fn->gen++;
}

struct net *ftvm_vm_get_netns(const struct ftvm_vm *vm)
{
	struct net *net;

	rcu_read_lock();
	net = rcu_dereference_check(vm->netns, lockdep_rtnl_is_held());
	net = net ? maybe_get_net(net) : NULL;
	rcu_read_unlock();
	return net;
}

int ftvm_vm_netns_id(struct net *net, const struct ftvm_vm *vm)
{
	struct net *vnet;
	int id = NETNSA_NSID_NOT_ASSIGNED;

	rcu_read_lock();
	vnet = rcu_dereference_check(vm->netns, lockdep_rtnl_is_held());
	if (vnet)
		id = peernet2id(net, vnet);
	rcu_read_unlock();
	return id;
}

/*
 * @dying is going away: forget it in every registry.  Its refcount is
 * already zero, so no new ftvm_vm_get_netns() can succeed; waiting a
 * grace period after clearing the pointers makes sure no reader still
 * dereferences it when it is freed.  RTNL held.
 */
static void ftvm_vm_forget_netns(struct net *dying)
{
	bool cleared = false;
	struct ftvm_vm *vm;
	unsigned long id;
	struct net *net;

	ASSERT_RTNL();
	rcu_read_lock();
	for_each_net_rcu(net) {
		struct ftvm_net *fn = ftvm_net(net);

		xa_for_each(&fn->vms, id, vm) {
			if (rcu_access_pointer(vm->netns) != dying)
				continue;
			RCU_INIT_POINTER(vm->netns, NULL);
			fn->gen++;
			cleared = true;
		}
	}
	rcu_read_unlock();
	if (cleared)
		synchronize_net();
}

static int __net_init ftvm_net_init(struct net *net)
{
	struct ftvm_net *fn = ftvm_net(net);

	fn->net = net;
	xa_init(&fn->vms);
	fn->gen = 1;
	return 0;
}

/*
 * The namespace is going away: its devices are already unregistered
 * (device pernet ops exit before subsystems), and no socket can still
 * address it.  RTNL orders us after any notifier still running.
 */
static void __net_exit ftvm_net_exit(struct net *net)
{
	struct ftvm_net *fn = ftvm_net(net);
	struct ftvm_vm *vm;
	unsigned long id;

	rtnl_lock();
	xa_for_each(&fn->vms, id, vm)
		ftvm_vm_remove(fn, vm);
	ftvm_vm_forget_netns(net);
	rtnl_unlock();
	xa_destroy(&fn->vms);
}

static struct pernet_operations ftvm_net_ops = {
	.init = ftvm_net_init,
	.exit = ftvm_net_exit,
	.id = &ftvm_net_id,
	.size = sizeof(struct ftvm_net),
};

int __init ftvm_vm_init(void)
{
	int err;

	ftvm_vm_cache = KMEM_CACHE(ftvm_vm, 0);
	if (!ftvm_vm_cache)
		return -ENOMEM;
	err = register_pernet_subsys(&ftvm_net_ops);
	if (err)
		kmem_cache_destroy(ftvm_vm_cache);
	return err;
}

void ftvm_vm_uninit(void)
{
	unregister_pernet_subsys(&ftvm_net_ops);
	/* Wait for the call_rcu() frees before the cache goes away. */
	rcu_barrier();
	kmem_cache_destroy(ftvm_vm_cache);
}
