// SPDX-License-Identifier: GPL-2.0
/*
 * The ingress hold: a client's segment that reaches a VM while its
 * session is being failed over to it waits there for the session,
 * instead of meeting a kernel that does not know the connection.
 *
 * A failover switches the data path to the backups first, then takes
 * the failed VM's last state and activates the sessions on them (ftd,
 * Documentation/replication.rst).  Between the two, a backup's kernel
 * would answer a client's segment with a reset (no socket), and before
 * the switch the segment would be lost in the failed VM: a request lost
 * there costs its client a retransmission timeout (200 ms at least,
 * with one segment in flight).  So when a VM of a registry fails
 * (ftvm_vm_set_failed(), whatever the cause: its device, a kill, a
 * user, a missed heartbeat relayed by ftd), every other live VM of the
 * registry is *armed* for FTVM_HOLD_ARMED: in its namespace a netfilter
 * hook at LOCAL_IN, last, takes every TCP segment that is not a bare SYN
 * and finds no connection (neither early demux nor a lookup of the
 * established table finds a socket), and holds it.  A VM is armed the
 * same way on its own (FTVM_A_VM_ARM, ftvm_hold_arm_vm()) when sessions
 * are about to be moved to it on purpose: ftd's drain switches the data
 * path to it before it activates their last state there.  Armed or not,
 * once hooked (when it was first armed) it also holds such a segment of
 * a session staged in the namespace (restore.c, stage.c):
 * the namespace has that session's state and is about to be given it,
 * however late the failover that sends it there (its controller killed
 * half-way and restarted after FTVM_HOLD_ARMED, say).  When an activation
 * (or a restore) has made sessions live in the namespace, the held
 * segments that now find their connection are let in, in the order they
 * came, where the hook took them (its okfn).  A segment that finds none
 * for FTVM_HOLD_WAIT is dropped, never let in: the kernel would reset
 * the connection of a session still on its way; its client sends it
 * again (a stall, never a loss), and a session that never comes is reset
 * then, as it would have been at once without the hold.
 *
 * Costs: unarmed, one load and a branch per segment a VM receives, and
 * for one early demux did not match, a lookup of the staged records;
 * armed, a segment with a connection is one branch more (early demux
 * found it) or a lookup of the established table, and a held one an
 * allocation of 128 bytes besides its skb.  At most FTVM_HOLD_MAX
 * segments are held per namespace; beyond, they are dropped.  A held
 * segment holds its device (dev_hold()); it is dropped when the device
 * goes.
 *
 * Locking: the per-namespace state is in struct ftvm_hnet (net_generic).
 * @hooked and the hooks' registration are under RTNL; @armed_until is
 * written under RTNL and read locklessly; the held list and the
 * counters are under @lock (bottom halves off).  The hook looks the
 * connection up and queues the segment under @lock, and a release takes
 * @lock after the activation has hashed its sockets, so a segment is
 * either let in by the hook (found its socket) or seen by the release:
 * never left behind.
 * Segments are let in with no lock held.  An activation that picks the
 * sessions clients wait for (ftvm_hold_each()) takes @lock under its
 * store's stage_lock: the hook never takes a stage_lock.
 */
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <linux/rtnetlink.h>
#include <linux/slab.h>
#include <linux/workqueue.h>
#include <net/netns/generic.h>
#include <net/sock.h>

#include "commit.h"
#include "hold.h"
#include "park.h"
#include "restore.h"

/* How long the VMs of a registry are armed after one of them fails. */
#define FTVM_HOLD_ARMED		(5 * HZ)
/* How long a segment waits for its connection at most. */
#define FTVM_HOLD_WAIT		(2 * HZ)
/* Segments one namespace holds at most. */
#define FTVM_HOLD_MAX		16384

struct ftvm_hnet {
	struct net *net;
	unsigned long armed_until;	/* jiffies; 0: never armed */
	bool hooked;			/* RTNL */
	struct nf_hook_ops ops[2];
	spinlock_t lock;		/* the rest; bottom halves off */
	struct list_head held;		/* struct ftvm_hseg, oldest first */
	unsigned int n_held;
	struct ftvm_hold_stats stats;	/* but armed_ms and queued */
	struct delayed_work expire;
};

struct ftvm_hseg {
	struct ftvm_parked park;	/* first: see park.h */
	struct ftvm_tuple key;		/* the session, as the VM sees it */
	unsigned long deadline;		/* jiffies */
};
FTVM_PARKED_HEAD(struct ftvm_hseg, park);

static unsigned int ftvm_hnet_id __read_mostly;
static struct kmem_cache *ftvm_hseg_cache __read_mostly;

static struct ftvm_hnet *ftvm_hnet(const struct net *net)
{
	return net_generic(net, ftvm_hnet_id);
}

/* Let @list's segments in where the hook took them. */
static void ftvm_hold_reinject(struct list_head *list)
{
	ftvm_park_reinject(list, ftvm_hseg_cache);
}

static void ftvm_hold_drop(struct list_head *list)
{
	ftvm_park_drop(list, ftvm_hseg_cache);
}

/* Whether @net has a connection for @key.  Under @lock or not. */
static bool ftvm_hold_has_sock(struct net *net, const struct ftvm_tuple *key)
{
	struct sock *sk = ftvm_sock_lookup(net, key);

	if (!sk)
		return false;
	sock_gen_put(sk);
	return true;
}

static unsigned int ftvm_hold_hook(void *priv, struct sk_buff *skb,
				   const struct nf_hook_state *state)
{
	struct ftvm_hnet *hn = priv;
	unsigned long until = READ_ONCE(hn->armed_until);
	struct ftvm_tuple wire, key;
	struct ftvm_hseg *h;
	struct ftvm_seg seg;
	bool armed = until;

	if (armed && time_after(jiffies, until)) {
		/* Disarmed for good (jiffies wrap), unless armed anew. */
		cmpxchg(&hn->armed_until, until, 0);
		armed = false;
	}
	/* Early demux found its connection. */
	if (skb->sk)
		return NF_ACCEPT;
	if (!ftvm_seg_parse(skb, state->pf, &wire, &seg) ||
	    (seg.syn && !seg.has_ack))
		return NF_ACCEPT;
	/* As the VM sees it: the segment's destination is the local end. */
	key = wire;
	key.laddr = wire.raddr;
	key.raddr = wire.laddr;
	key.lport = wire.rport;
	key.rport = wire.lport;
	/* Disarmed, only for a session staged here. */
	if (!armed && !ftvm_stage_has(state->net, &key))
		return NF_ACCEPT;

	h = kmem_cache_alloc(ftvm_hseg_cache, GFP_ATOMIC);
	if (!h)
		return NF_ACCEPT;	/* as without the hold */
	spin_lock(&hn->lock);
	if (ftvm_hold_has_sock(state->net, &key)) {
		spin_unlock(&hn->lock);
		kmem_cache_free(ftvm_hseg_cache, h);
		return NF_ACCEPT;
	}
	if (hn->n_held >= FTVM_HOLD_MAX) {
		hn->stats.overflow++;
		spin_unlock(&hn->lock);
		kmem_cache_free(ftvm_hseg_cache, h);
		/* Sent again by its client: a stall, never a loss. */
		return NF_DROP;
	}
	ftvm_park(&h->park, skb, state);
	h->key = key;
	h->deadline = jiffies + FTVM_HOLD_WAIT;
	list_add_tail(&h->park.node, &hn->held);
	hn->stats.held++;
	if (!hn->n_held++)
		queue_delayed_work(system_wq, &hn->expire, FTVM_HOLD_WAIT);
	spin_unlock(&hn->lock);
	return NF_STOLEN;
}

/*
 * Move to @in the segments of @hn that find their connection now, and
 * to @out those past their deadline that do not.
 */
static void ftvm_hold_sort(struct ftvm_hnet *hn, struct list_head *in,
			   struct list_head *out)
{
	struct ftvm_hseg *h, *tmp;

	spin_lock_bh(&hn->lock);
	list_for_each_entry_safe(h, tmp, &hn->held, park.node) {
		if (ftvm_hold_has_sock(hn->net, &h->key)) {
			list_move_tail(&h->park.node, in);
			hn->stats.released++;
		} else if (time_after_eq(jiffies, h->deadline)) {
			list_move_tail(&h->park.node, out);
			hn->stats.expired++;
		} else {
			continue;
		}
		hn->n_held--;
	}
	spin_unlock_bh(&hn->lock);
}

void ftvm_hold_each(struct net *net,
		    bool (*fn)(const struct ftvm_tuple *key, void *arg),
		    void *arg)
{
	struct ftvm_hnet *hn = ftvm_hnet(net);
	struct ftvm_hseg *h;

	if (!READ_ONCE(hn->n_held))
		return;
	spin_lock_bh(&hn->lock);
	list_for_each_entry(h, &hn->held, park.node)
		if (!fn(&h->key, arg))
			break;
	spin_unlock_bh(&hn->lock);
}

void ftvm_hold_release(struct net *net)
{
	struct ftvm_hnet *hn = ftvm_hnet(net);
	LIST_HEAD(out);
	LIST_HEAD(in);

	if (!READ_ONCE(hn->n_held))
		return;
	ftvm_hold_sort(hn, &in, &out);
	ftvm_hold_reinject(&in);
	ftvm_hold_drop(&out);
}

static void ftvm_hold_expire(struct work_struct *work)
{
	struct ftvm_hnet *hn = container_of(to_delayed_work(work),
					    struct ftvm_hnet, expire);
	struct ftvm_hseg *first;
	LIST_HEAD(out);
	LIST_HEAD(in);

	ftvm_hold_sort(hn, &in, &out);
	ftvm_hold_reinject(&in);
	ftvm_hold_drop(&out);
	spin_lock_bh(&hn->lock);
	first = list_first_entry_or_null(&hn->held, struct ftvm_hseg,
					 park.node);
	if (first)
		queue_delayed_work(system_wq, &hn->expire,
				   time_after(first->deadline, jiffies) ?
				   first->deadline - jiffies : 0);
	spin_unlock_bh(&hn->lock);
}

void ftvm_hold_dev_gone(struct net_device *dev)
{
	struct ftvm_hnet *hn = ftvm_hnet(dev_net(dev));
	struct ftvm_hseg *h, *tmp;
	LIST_HEAD(out);

	ASSERT_RTNL();
	spin_lock_bh(&hn->lock);
	list_for_each_entry_safe(h, tmp, &hn->held, park.node) {
		if (h->park.state.in != dev)
			continue;
		list_move_tail(&h->park.node, &out);
		hn->n_held--;
		hn->stats.dev_gone++;
	}
	spin_unlock_bh(&hn->lock);
	ftvm_hold_drop(&out);
}

void ftvm_hold_stats(struct net *net, struct ftvm_hold_stats *st)
{
	struct ftvm_hnet *hn = ftvm_hnet(net);
	unsigned long until = READ_ONCE(hn->armed_until);

	spin_lock_bh(&hn->lock);
	*st = hn->stats;
	st->queued = hn->n_held;
	spin_unlock_bh(&hn->lock);
	st->armed_ms = until && time_before(jiffies, until) ?
		       jiffies_to_msecs(until - jiffies) : 0;
}

/* Arm @vnet, a VM's namespace (a reference held; RTNL): 0 if armed. */
static int ftvm_hold_arm(struct net *vnet)
{
	struct ftvm_hnet *hn = ftvm_hnet(vnet);
	int err;

	ASSERT_RTNL();
	if (!hn->hooked) {
		err = nf_register_net_hooks(vnet, hn->ops, ARRAY_SIZE(hn->ops));
		if (err) {
			pr_warn_ratelimited("cannot hook a VM's namespace (%d): its sessions' segments are not held at failover\n",
					    err);
			return err;
		}
		hn->hooked = true;
	}
	WRITE_ONCE(hn->armed_until, (jiffies + FTVM_HOLD_ARMED) ?: 1);
	return 0;
}

/* Only a VM's own namespace holds, never the host's. */
static bool ftvm_hold_can(const struct ftvm_net *fn, const struct net *vnet)
{
	return !net_eq(vnet, fn->net) && !net_eq(vnet, &init_net);
}

u64 ftvm_hold_arm_others(struct ftvm_net *fn, const struct ftvm_vm *failed)
{
	struct ftvm_vm *vm;
	struct net *vnet;
	unsigned long id;
	bool armed = false;

	ASSERT_RTNL();
	xa_for_each(&fn->vms, id, vm) {
		if (vm == failed || vm->state != FTVM_VM_STATE_UP)
			continue;
		vnet = ftvm_vm_get_netns(vm);
		if (!vnet)
			continue;
		if (ftvm_hold_can(fn, vnet) && !ftvm_hold_arm(vnet))
			armed = true;
		put_net(vnet);
	}
	/*
	 * armed_until is a jiffy J + FTVM_HOLD_ARMED, J this one, and the
	 * hold lasts until jiffies passes it: more than FTVM_HOLD_ARMED
	 * from now, whatever part of J has gone.
	 */
	return armed ? jiffies_to_nsecs(FTVM_HOLD_ARMED) : 0;
}

int ftvm_hold_arm_vm(struct ftvm_net *fn, const struct ftvm_vm *vm,
		     struct netlink_ext_ack *extack)
{
	struct net *vnet;
	int err;

	ASSERT_RTNL();
	if (vm->state != FTVM_VM_STATE_UP) {
		NL_SET_ERR_MSG(extack, "the VM has failed: no session can be moved to it");
		return -EINVAL;
	}
	vnet = ftvm_vm_get_netns(vm);
	if (!vnet) {
		NL_SET_ERR_MSG(extack, "the VM has no network namespace to hold in");
		return -EINVAL;
	}
	if (!ftvm_hold_can(fn, vnet)) {
		NL_SET_ERR_MSG(extack, "the VM's namespace is the host's: only a VM's own namespace holds");
		err = -EINVAL;
	} else {
		err = ftvm_hold_arm(vnet);
		if (err)
			NL_SET_ERR_MSG(extack, "cannot hook the VM's namespace");
	}
	put_net(vnet);
	return err;
}

static int __net_init ftvm_hnet_init(struct net *net)
{
	struct ftvm_hnet *hn = ftvm_hnet(net);
	int i;

	hn->net = net;
	spin_lock_init(&hn->lock);
	INIT_LIST_HEAD(&hn->held);
	INIT_DELAYED_WORK(&hn->expire, ftvm_hold_expire);
	for (i = 0; i < ARRAY_SIZE(hn->ops); i++) {
		hn->ops[i].hook = ftvm_hold_hook;
		hn->ops[i].hooknum = NF_INET_LOCAL_IN;
		/* Last: the hooks after it are skipped when it lets in. */
		hn->ops[i].priority = NF_IP_PRI_LAST - 1;
		hn->ops[i].priv = hn;
	}
	hn->ops[0].pf = NFPROTO_IPV4;
	hn->ops[1].pf = NFPROTO_IPV6;
	return 0;
}

/*
 * The namespace is going away (no reference is left, so no registry
 * can arm it again: ftvm_vm_get_netns() fails), or the module is: the
 * hooks go, then whatever they held.
 */
static void __net_exit ftvm_hnet_exit(struct net *net)
{
	struct ftvm_hnet *hn = ftvm_hnet(net);
	LIST_HEAD(out);

	rtnl_lock();
	WRITE_ONCE(hn->armed_until, 0);
	if (hn->hooked)
		nf_unregister_net_hooks(net, hn->ops, ARRAY_SIZE(hn->ops));
	hn->hooked = false;
	rtnl_unlock();
	cancel_delayed_work_sync(&hn->expire);
	spin_lock_bh(&hn->lock);
	list_splice_init(&hn->held, &out);
	hn->n_held = 0;
	spin_unlock_bh(&hn->lock);
	ftvm_hold_drop(&out);
}

static struct pernet_operations ftvm_hnet_ops = {
	.init = ftvm_hnet_init,
	.exit = ftvm_hnet_exit,
	.id = &ftvm_hnet_id,
	.size = sizeof(struct ftvm_hnet),
};

int __init ftvm_hold_init(void)
{
	int err;

	ftvm_hseg_cache = KMEM_CACHE(ftvm_hseg, 0);
	if (!ftvm_hseg_cache)
		return -ENOMEM;
	err = register_pernet_subsys(&ftvm_hnet_ops);
	if (err)
		kmem_cache_destroy(ftvm_hseg_cache);
	return err;
}

void ftvm_hold_uninit(void)
{
	unregister_pernet_subsys(&ftvm_hnet_ops);
	kmem_cache_destroy(ftvm_hseg_cache);
}
