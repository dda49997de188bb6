// SPDX-License-Identifier: GPL-2.0
/*
 * Strict output commit: a client never sees anything its session's
 * backup does not know.
 *
 * For every strict service (FTVM_CMD_COMMIT_SET, per registry namespace:
 * the host's, where the VMs' devices are), a netfilter hook at
 * PRE_ROUTING, last, looks at the TCP segments the service sends: those
 * arriving on the host side of a VM's device on their way to the
 * client.  A segment leaves at once if the session's record staged on
 * its backup covers it: its data ends at or before the staged write_seq
 * (snd_una + send queue) and it acknowledges nothing past the staged
 * rcv_nxt (copied_seq + receive queue).  Otherwise it is held, in order,
 * and the session is committed on demand: a work item captures the one
 * session in the primary's namespace (state.c), stages it on the VM that
 * holds its staged record already (stage.c, as a replicator's record
 * would be), and every segment the new record covers is let go, in
 * order, where the hook left it (the hook's okfn).  ftd's own staging
 * goes through the same path, so it releases too, and it is what names
 * a session's backup in the first place: until a live VM other than the
 * primary has the session staged, its output waits.
 *
 * A service that attaches application state (libftvm) is committed only
 * at a checkpoint: a capture that finds the socket past its checkpoint
 * (stale) waits for the next FTVM_CMD_CKPT_SET on it, up to the
 * service's ckpt-wait, then commits the stale record (counted).  The
 * checkpoint runs the commit waiting for it itself, in the service's
 * task (ftvm_commit_ckpt()), rather than waking the workqueue.
 *
 * Held segments are bounded per session (FTVM_HELD_MAX; beyond it they
 * are dropped, which TCP turns into a retransmission: a stall, not a
 * loss), dropped when their primary is not up (a failed VM's output must
 * never leave), dropped when their device goes away, and let go when the
 * service turns relaxed or the session is no longer an established
 * connection (nothing is left to protect).
 *
 * Locking and lifetimes.  Sessions (struct ftvm_csess) are in one
 * rhltable keyed by their 5-tuple as on the wire (IPv4 never mapped),
 * several registry namespaces possibly sharing a key; lookups are under
 * RCU, inserts and removals under ftvm_csess_lock.  A session's own
 * state is under its spinlock (taken with bottom halves off; the hook
 * runs with them off).  A session is destroyed only by
 * ftvm_csess_destroy() under ftvm_commit_mutex (idle sessions by the
 * garbage collector, a service's sessions when it turns relaxed, a
 * namespace's when it goes): it is unlinked, marked dead under its lock
 * (after which nothing queues its work, runs a commit of it from a
 * checkpoint or holds a segment on it: all are done under the lock,
 * checking @dead), its work cancelled, the commits checkpoints run on
 * it waited for (@inline_runs), its segments dropped or let go, and it
 * is freed after a grace period.
 * Services are on an RCU list per namespace, changed under
 * ftvm_commit_mutex; one that goes is unlinked, a grace period passes
 * (no hook or staging still sees it), its sessions are destroyed, then
 * it is freed.  A held segment holds its device (dev_hold()).
 *
 * Lock order: a VM namespace's stage_lock (ftvm_commit_staged() is
 * called under it), then a session's lock.  Segments are let go with
 * no session lock held.
 */
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <linux/rhashtable.h>
#include <linux/slab.h>
#include <linux/workqueue.h>
#include <net/genetlink.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/netns/generic.h>
#include <net/tcp.h>

#include "uapi/ftvm.h"
#include "commit.h"
#include "netlink.h"
#include "park.h"
#include "restore.h"
#include "state.h"
#include "vm.h"

/* Segments one session may hold. */
#define FTVM_HELD_MAX		256
/* Sessions tracked at most, all namespaces together. */
#define FTVM_CSESS_MAX		(1U << 20)
/* A session holding nothing is forgotten after this long unused. */
#define FTVM_CSESS_IDLE		(30 * HZ)
#define FTVM_CSESS_GC		(5 * HZ)
/* Retry of a commit that could not allocate. */
#define FTVM_COMMIT_RETRY	msecs_to_jiffies(10)
#define FTVM_CKPT_WAIT_DEFAULT	20	/* ms */

struct ftvm_csvc {
	struct list_head node;		/* ftvm_cnet.svcs; RCU readers */
	struct ftvm_tuple key;		/* family, laddr, lport, proto */
	u32 ckpt_wait_ms;
	atomic_t sessions, held;
	atomic64_t held_total, released, dropped, commits, no_backup, stale;
};

/* Per registry namespace. */
struct ftvm_cnet {
	struct list_head svcs;		/* RCU readers; ftvm_commit_mutex */
	unsigned int n_svcs;
	bool hooked;
	struct nf_hook_ops ops[2];
};

struct ftvm_csess {
	struct rhlist_head hnode;
	struct ftvm_tuple key;		/* as on the wire */
	struct net *host;		/* not counted: it destroys us first */
	struct ftvm_csvc *svc;		/* not counted: it destroys us first */
	struct list_head gc_node;	/* ftvm_commit_mutex */
	bool collected;			/* ftvm_commit_mutex */
	spinlock_t lock;		/* the rest */
	struct list_head held;		/* struct ftvm_held, in order */
	unsigned int n_held;
	int ifindex;			/* where the primary's output comes in */
	u64 backup;			/* net_cookie of the VM it is staged on */
	u32 snd, rcv;			/* covered: staged write_seq, rcv_nxt */
	bool valid;			/* @snd and @rcv are known */
	bool releasing;			/* someone is letting segments go */
	bool dead;
	unsigned long stale_since;	/* jiffies; 0: not waiting for a checkpoint */
	u32 ckpts;			/* checkpoints seen (ftvm_commit_ckpt()) */
	u32 ck_write;			/* write_seq at the last of them */
	unsigned long used;		/* jiffies */
	u64 staged_ns;			/* a covering record last staged; 0: never */
	struct delayed_work work;
	atomic_t inline_runs;		/* commits run by a checkpoint */
	struct rcu_head rcu;
};

struct ftvm_held {
	struct ftvm_parked park;	/* first: see park.h */
	struct ftvm_seg seg;
};
FTVM_PARKED_HEAD(struct ftvm_held, park);

static const struct rhashtable_params ftvm_csess_params = {
	.key_len = sizeof(struct ftvm_tuple),
	.key_offset = offsetof(struct ftvm_csess, key),
	.head_offset = offsetof(struct ftvm_csess, hnode),
	.automatic_shrinking = true,
};

static unsigned int ftvm_cnet_id __read_mostly;
static struct rhltable ftvm_csess_ht;
static DEFINE_SPINLOCK(ftvm_csess_lock);
static DEFINE_MUTEX(ftvm_commit_mutex);
static atomic_t ftvm_csess_n = ATOMIC_INIT(0);
static atomic_t ftvm_csvc_n = ATOMIC_INIT(0);	/* strict services, anywhere */
static struct workqueue_struct *ftvm_commit_wq;
static struct kmem_cache *ftvm_held_cache;
static void ftvm_commit_gc(struct work_struct *work);
static DECLARE_DELAYED_WORK(ftvm_commit_gc_work, ftvm_commit_gc);

static struct ftvm_cnet *ftvm_cnet(const struct net *net)
{
	return net_generic(net, ftvm_cnet_id);
}

/* The strict service @t (a wire tuple) belongs to.  RCU or the mutex. */
static struct ftvm_csvc *ftvm_csvc_find(struct ftvm_cnet *cn,
					const struct ftvm_tuple *t)
{
	struct ftvm_csvc *svc;

	list_for_each_entry_rcu(svc, &cn->svcs, node,
				lockdep_is_held(&ftvm_commit_mutex))
		if (svc->key.family == t->family && svc->key.lport == t->lport &&
		    svc->key.proto == t->proto &&
		    !memcmp(&svc->key.laddr, &t->laddr, sizeof(t->laddr)))
			return svc;
	return NULL;
}

/* Sessions. */

static bool ftvm_covered(const struct ftvm_csess *s, const struct ftvm_seg *g)
{
	return s->valid && !after(g->end, s->snd) &&
	       (!g->has_ack || !after(g->ack, s->rcv));
}

/* Let the segments of @list go where the hook took them. */
static void ftvm_held_reinject(struct list_head *list)
{
	ftvm_park_reinject(list, ftvm_held_cache);
}

static void ftvm_held_drop(struct list_head *list)
{
	ftvm_park_drop(list, ftvm_held_cache);
}

/*
 * @s waits for a checkpoint from now on, unless it does already; the
 * time it stops waiting (its service's ckpt-wait after the wait began).
 * Lock held.
 */
static unsigned long ftvm_csess_ckpt_deadline(struct ftvm_csess *s)
{
	lockdep_assert_held(&s->lock);
	if (!s->stale_since)
		s->stale_since = jiffies ?: 1;
	return s->stale_since +
	       msecs_to_jiffies(READ_ONCE(s->svc->ckpt_wait_ms));
}

/*
 * Queue @s's commit, unless it is queued already.  A service that
 * checkpoints (libftvm) writes a reply, then checkpoints: while the
 * newest held data was written after the last checkpoint seen, a
 * capture would find the socket past it (stale) and be wasted, so the
 * commit waits for the checkpoint instead (ftvm_commit_ckpt() queues it
 * at once), at most the service's ckpt-wait, as after a stale capture
 * (ftvm_commit_wait_ckpt()).  Lock held.
 */
static void ftvm_csess_kick(struct ftvm_csess *s)
{
	unsigned long delay = 0, deadline;
	struct ftvm_held *h;

	lockdep_assert_held(&s->lock);
	if (s->dead || delayed_work_pending(&s->work))
		return;
	h = list_empty(&s->held) ? NULL :
	    list_last_entry(&s->held, struct ftvm_held, park.node);
	if (s->ckpts && h && after(h->seg.end, s->ck_write)) {
		deadline = ftvm_csess_ckpt_deadline(s);
		if (time_before(jiffies, deadline))
			delay = deadline - jiffies;
	}
	queue_delayed_work(ftvm_commit_wq, &s->work, delay);
}

/*
 * Let go, in order, every held segment of @s that is covered (all of
 * them with @all), and ask for a commit of what is left.  One caller at
 * a time does it (@releasing); one that finds it under way leaves it to
 * that one, which looks again before it stops.
 */
static void ftvm_csess_release(struct ftvm_csess *s, bool all)
{
	struct ftvm_csvc *svc = s->svc;
	struct ftvm_held *h, *tmp;
	unsigned int n;
	LIST_HEAD(out);

	spin_lock_bh(&s->lock);
	if (s->releasing) {
		spin_unlock_bh(&s->lock);
		return;
	}
	s->releasing = true;
	for (;;) {
		n = 0;
		list_for_each_entry_safe(h, tmp, &s->held, park.node) {
			if (!all && !h->seg.rst && !ftvm_covered(s, &h->seg))
				break;
			list_move_tail(&h->park.node, &out);
			n++;
		}
		if (!n)
			break;
		s->n_held -= n;
		spin_unlock_bh(&s->lock);
		atomic_sub(n, &svc->held);
		atomic64_add(n, &svc->released);
		ftvm_held_reinject(&out);
		spin_lock_bh(&s->lock);
	}
	s->releasing = false;
	if (!list_empty(&s->held))
		ftvm_csess_kick(s);
	spin_unlock_bh(&s->lock);
}

/* Drop every segment @s holds. */
static void ftvm_csess_drop(struct ftvm_csess *s)
{
	LIST_HEAD(out);
	unsigned int n;

	spin_lock_bh(&s->lock);
	list_splice_init(&s->held, &out);
	n = s->n_held;
	s->n_held = 0;
	spin_unlock_bh(&s->lock);
	atomic_sub(n, &s->svc->held);
	atomic64_add(n, &s->svc->dropped);
	ftvm_held_drop(&out);
}

/* @host's session @key (a wire tuple), or NULL.  RCU held. */
static struct ftvm_csess *ftvm_csess_find(const struct net *host,
					  const struct ftvm_tuple *key)
{
	struct rhlist_head *list, *pos;
	struct ftvm_csess *s;

	list = rhltable_lookup(&ftvm_csess_ht, key, ftvm_csess_params);
	rhl_for_each_entry_rcu(s, pos, list, hnode)
		if (s->host == host && !READ_ONCE(s->dead))
			return s;
	return NULL;
}

static void ftvm_commit_work(struct work_struct *work);

/* @host's session @key of @svc, created if need be.  RCU held. */
static struct ftvm_csess *ftvm_csess_get(struct net *host,
					 struct ftvm_csvc *svc,
					 const struct ftvm_tuple *key)
{
	struct ftvm_csess *s, *n;

	s = ftvm_csess_find(host, key);
	if (s)
		return s;
	if (atomic_read(&ftvm_csess_n) >= FTVM_CSESS_MAX)
		return NULL;
	n = kzalloc(sizeof(*n), GFP_ATOMIC);
	if (!n)
		return NULL;
	n->key = *key;
	n->host = host;
	n->svc = svc;
	spin_lock_init(&n->lock);
	INIT_LIST_HEAD(&n->held);
	INIT_LIST_HEAD(&n->gc_node);
	INIT_DELAYED_WORK(&n->work, ftvm_commit_work);
	n->used = jiffies;

	spin_lock_bh(&ftvm_csess_lock);
	s = ftvm_csess_find(host, key);
	if (!s && !rhltable_insert(&ftvm_csess_ht, &n->hnode,
				   ftvm_csess_params)) {
		s = n;
		n = NULL;
		atomic_inc(&ftvm_csess_n);
		atomic_inc(&svc->sessions);
	}
	spin_unlock_bh(&ftvm_csess_lock);
	kfree(n);
	if (s && !delayed_work_pending(&ftvm_commit_gc_work))
		queue_delayed_work(ftvm_commit_wq, &ftvm_commit_gc_work,
				   FTVM_CSESS_GC);
	return s;
}

/*
 * Destroy @s: unlink it, stop its work, let its segments go (@release)
 * or drop them, free it after a grace period.  ftvm_commit_mutex held.
 */
static void ftvm_csess_destroy(struct ftvm_csess *s, bool release)
{
	lockdep_assert_held(&ftvm_commit_mutex);
	spin_lock_bh(&ftvm_csess_lock);
	rhltable_remove(&ftvm_csess_ht, &s->hnode, ftvm_csess_params);
	spin_unlock_bh(&ftvm_csess_lock);
	spin_lock_bh(&s->lock);
	s->dead = true;
	spin_unlock_bh(&s->lock);
	cancel_delayed_work_sync(&s->work);
	/* Commits run by checkpoints began before @dead was set. */
	wait_var_event(&s->inline_runs, !atomic_read(&s->inline_runs));
	if (release)
		ftvm_csess_release(s, true);
	ftvm_csess_drop(s);
	atomic_dec(&s->svc->sessions);
	atomic_dec(&ftvm_csess_n);
	kfree_rcu(s, rcu);
}

/*
 * Collect on @list the sessions @match accepts, each once (a walk may
 * see a session twice while the table resizes).  ftvm_commit_mutex held.
 */
static void ftvm_csess_collect(bool (*match)(struct ftvm_csess *s,
					     const void *arg),
			       const void *arg, struct list_head *list)
{
	struct rhashtable_iter iter;
	struct ftvm_csess *s;

	lockdep_assert_held(&ftvm_commit_mutex);
	rhltable_walk_enter(&ftvm_csess_ht, &iter);
	rhashtable_walk_start(&iter);
	while ((s = rhashtable_walk_next(&iter))) {
		if (IS_ERR(s)) {
			if (PTR_ERR(s) == -EAGAIN)
				continue;
			break;
		}
		if (!s->collected && match(s, arg)) {
			s->collected = true;
			list_add_tail(&s->gc_node, list);
		}
	}
	rhashtable_walk_stop(&iter);
	rhashtable_walk_exit(&iter);
}

static void ftvm_csess_destroy_list(struct list_head *list, bool release)
{
	struct ftvm_csess *s, *tmp;

	list_for_each_entry_safe(s, tmp, list, gc_node) {
		list_del(&s->gc_node);
		ftvm_csess_destroy(s, release);
	}
}

static bool ftvm_csess_idle(struct ftvm_csess *s, const void *arg)
{
	bool idle;

	spin_lock_bh(&s->lock);
	idle = !s->n_held && !delayed_work_pending(&s->work) &&
	       time_after(jiffies, s->used + FTVM_CSESS_IDLE);
	spin_unlock_bh(&s->lock);
	return idle;
}

static void ftvm_commit_gc(struct work_struct *work)
{
	LIST_HEAD(list);

	mutex_lock(&ftvm_commit_mutex);
	ftvm_csess_collect(ftvm_csess_idle, NULL, &list);
	ftvm_csess_destroy_list(&list, true);
	mutex_unlock(&ftvm_commit_mutex);
	if (atomic_read(&ftvm_csess_n))
		queue_delayed_work(ftvm_commit_wq, &ftvm_commit_gc_work,
				   FTVM_CSESS_GC);
}

/* The commit. */

/*
 * The namespaces of @s's primary (the VM whose device its output comes
 * in on) and of its backup (the live VM other than the primary that has
 * it staged), referenced; *@bnet NULL when there is no such backup.
 * -EHOSTDOWN: the primary is not up (or gone); -ENOENT: it names no
 * namespace.
 */
static int ftvm_commit_vms(struct ftvm_csess *s, struct net **pnet,
			   struct net **bnet)
{
	struct ftvm_net *fn = ftvm_net(s->host);
	struct ftvm_vm *vm, *b;
	unsigned long id;
	int ifindex, err = 0;
	u64 backup;

	spin_lock_bh(&s->lock);
	ifindex = s->ifindex;
	backup = s->backup;
	spin_unlock_bh(&s->lock);

	*pnet = *bnet = NULL;
	rcu_read_lock();
	vm = ifindex ? ftvm_vm_find_ifindex(fn, ifindex) : NULL;
	if (!vm || READ_ONCE(vm->state) != FTVM_VM_STATE_UP) {
		err = -EHOSTDOWN;
		goto out;
	}
	*pnet = ftvm_vm_get_netns(vm);
	if (!*pnet) {
		err = -ENOENT;
		goto out;
	}
	xa_for_each(&fn->vms, id, b) {
		struct net *n = rcu_dereference(b->netns);

		if (b != vm && n && n != *pnet && backup &&
		    n->net_cookie == backup &&
		    READ_ONCE(b->state) == FTVM_VM_STATE_UP) {
			*bnet = ftvm_vm_get_netns(b);
			break;
		}
	}
out:
	rcu_read_unlock();
	return err;
}

/*
 * About to capture @s: from now on a checkpoint queues its work again
 * (ftvm_commit_ckpt()).  Returns the checkpoints seen so far.
 */
static u32 ftvm_commit_capturing(struct ftvm_csess *s)
{
	u32 ckpts;

	spin_lock_bh(&s->lock);
	ftvm_csess_ckpt_deadline(s);
	ckpts = s->ckpts;
	spin_unlock_bh(&s->lock);
	return ckpts;
}

/*
 * Whether to drop a stale capture of @s and wait for the service's
 * checkpoint: at once if one came in since the capture began (@ckpts),
 * else until the first capture's deadline (its ckpt-wait).
 */
static bool ftvm_commit_wait_ckpt(struct ftvm_csess *s, u32 ckpts)
{
	unsigned long deadline, delay = 0;
	bool wait = true;

	spin_lock_bh(&s->lock);
	deadline = ftvm_csess_ckpt_deadline(s);
	if (s->ckpts == ckpts) {
		if (time_before(jiffies, deadline))
			delay = deadline - jiffies;
		else
			wait = false;
	}
	if (wait && !s->dead)
		mod_delayed_work(ftvm_commit_wq, &s->work, delay);
	spin_unlock_bh(&s->lock);
	return wait;
}

/*
 * Commit one session: capture it in its primary's namespace, stage it on
 * its backup; ftvm_stage() calls ftvm_commit_staged(), which lets go
 * what the record covers.
 */
static void ftvm_commit_work(struct work_struct *work)
{
	struct ftvm_csess *s = container_of(to_delayed_work(work),
					    struct ftvm_csess, work);
	struct ftvm_csvc *svc = s->svc;
	struct net *pnet, *bnet;
	struct ftvm_rec *r;
	u32 staged, ckpts;
	LIST_HEAD(list);
	bool stale;
	int err;

	if (READ_ONCE(s->dead) || !READ_ONCE(s->n_held))
		return;
	err = ftvm_commit_vms(s, &pnet, &bnet);
	if (err == -EHOSTDOWN) {
		/* A VM that is not up must not be heard from. */
		ftvm_csess_drop(s);
		return;
	}
	if (err) {
		/* Nothing can be captured where there is no namespace. */
		ftvm_csess_release(s, true);
		return;
	}
	if (!bnet) {
		/* Not staged on a live VM yet: the replicator's stage lets
		 * it go (ftvm_commit_staged()).
		 */
		atomic64_inc(&svc->no_backup);
		goto out;
	}
	ckpts = ftvm_commit_capturing(s);
	r = ftvm_rec_capture(pnet, &s->key, &stale);
	if (IS_ERR(r)) {
		if (PTR_ERR(r) == -ENOMEM) {
			spin_lock_bh(&s->lock);
			if (!s->dead)
				mod_delayed_work(ftvm_commit_wq, &s->work,
						 FTVM_COMMIT_RETRY);
			spin_unlock_bh(&s->lock);
		} else {
			/* No established connection left to protect. */
			ftvm_csess_release(s, true);
		}
		goto out;
	}
	if (stale) {
		if (ftvm_commit_wait_ckpt(s, ckpts)) {
			ftvm_rec_free(r);
			goto out;
		}
		/* Committed as it is, past the wait: r->stale stays false, so
		 * that it replaces and covers like a consistent record.
		 */
		atomic64_inc(&svc->stale);
	}
	spin_lock_bh(&s->lock);
	s->stale_since = 0;
	spin_unlock_bh(&s->lock);
	list_add_tail(&r->node, &list);
	err = ftvm_stage(s->host, bnet, &list, NULL, &staged);
	if (!err) {
		atomic64_inc(&svc->commits);
	} else {
		spin_lock_bh(&s->lock);
		if (!s->dead)
			mod_delayed_work(ftvm_commit_wq, &s->work,
					 FTVM_COMMIT_RETRY);
		spin_unlock_bh(&s->lock);
	}
out:
	put_net(pnet);
	if (bnet)
		put_net(bnet);
}

void ftvm_commit_staged(struct net *host, struct net *vm,
			const struct ftvm_rec *r)
{
	u32 snd = ftvm_rec_snd_end(r), rcv = ftvm_rec_rcv_end(r);
	struct ftvm_tuple key;
	struct ftvm_csvc *svc;
	struct ftvm_csess *s;

	if (!host || !atomic_read(&ftvm_csvc_n) || r->key.proto != IPPROTO_TCP)
		return;
	ftvm_tuple_wire(&r->key, &key);
	rcu_read_lock();
	svc = ftvm_csvc_find(ftvm_cnet(host), &key);
	s = svc ? ftvm_csess_get(host, svc, &key) : NULL;
	if (s) {
		spin_lock_bh(&s->lock);
		if (s->backup != vm->net_cookie) {
			/* A new backup knows only what is staged there. */
			s->backup = vm->net_cookie;
			s->valid = false;
		}
		/* A stale record covers nothing (ftvm_rec_keep_old()). */
		if (!r->stale) {
			if (!s->valid || after(snd, s->snd))
				s->snd = snd;
			if (!s->valid || after(rcv, s->rcv))
				s->rcv = rcv;
			s->valid = true;
			/* The tick's time: no clock read per commit. */
			s->staged_ns = ktime_get_coarse_ns();
		}
		s->used = jiffies;
		spin_unlock_bh(&s->lock);
		ftvm_csess_release(s, false);
	}
	rcu_read_unlock();
}

void ftvm_commit_unstaged(struct net *host, struct net *vm,
			  const struct ftvm_tuple *key)
{
	struct ftvm_tuple w;
	struct ftvm_csess *s;

	if (!atomic_read(&ftvm_csvc_n) || key->proto != IPPROTO_TCP)
		return;
	ftvm_tuple_wire(key, &w);
	rcu_read_lock();
	s = ftvm_csess_find(host, &w);
	if (s) {
		spin_lock_bh(&s->lock);
		if (s->backup == vm->net_cookie) {
			s->backup = 0;
			s->valid = false;
		}
		spin_unlock_bh(&s->lock);
	}
	rcu_read_unlock();
}

/* Sessions whose commit one checkpoint runs itself; more are queued. */
#define FTVM_CKPT_INLINE	4

/*
 * A checkpoint of @sk, whose write_seq was @ck_write: a commit waiting
 * for it (ftvm_csess_kick(), ftvm_commit_wait_ckpt()) can go on now.  It
 * is run here, in the checkpointing task, instead of in the workqueue:
 * the reply it holds leaves without waiting for a worker to be woken and
 * scheduled, which is most of what strict mode adds to a request of a
 * libftvm service (Documentation/replication.rst).  Taking the pending
 * work away (cancel_delayed_work()) keeps a worker from doing the same
 * commit again; one already running may stage a record too, as ftd's
 * replicator may, and the newer record wins (stage.c).  The session
 * cannot be destroyed under the commit: inline_runs is raised under its
 * lock while it is not dead, and ftvm_csess_destroy() waits for it to
 * fall back to zero after setting @dead.  Process context, no locks.
 */
void ftvm_commit_ckpt(struct sock *sk, u32 ck_write)
{
	struct ftvm_csess *run[FTVM_CKPT_INLINE];
	struct rhlist_head *list, *pos;
	unsigned int n = 0, i;
	struct ftvm_tuple t, w;
	struct ftvm_csess *s;

	if (!atomic_read(&ftvm_csvc_n))
		return;
	ftvm_sock_tuple(sk, &t);
	ftvm_tuple_wire(&t, &w);
	rcu_read_lock();
	list = rhltable_lookup(&ftvm_csess_ht, &w, ftvm_csess_params);
	rhl_for_each_entry_rcu(s, pos, list, hnode) {
		spin_lock_bh(&s->lock);
		s->ckpts++;
		s->ck_write = ck_write;
		if (s->stale_since && !s->dead) {
			if (n < FTVM_CKPT_INLINE && s->n_held) {
				atomic_inc(&s->inline_runs);
				cancel_delayed_work(&s->work);
				run[n++] = s;
			} else {
				mod_delayed_work(ftvm_commit_wq, &s->work, 0);
			}
		}
		spin_unlock_bh(&s->lock);
	}
	rcu_read_unlock();
	for (i = 0; i < n; i++) {
		s = run[i];
		ftvm_commit_work(&s->work.work);
		/* Under RCU: @s is freed a grace period after it is seen 0. */
		rcu_read_lock();
		if (atomic_dec_and_test(&s->inline_runs))
			wake_up_var(&s->inline_runs);
		rcu_read_unlock();
	}
}

void ftvm_commit_dev_gone(struct net_device *dev)
{
	struct rhashtable_iter iter;
	struct ftvm_held *h, *tmp;
	struct ftvm_csess *s;
	LIST_HEAD(out);

	if (!atomic_read(&ftvm_csess_n))
		return;
	rhltable_walk_enter(&ftvm_csess_ht, &iter);
	rhashtable_walk_start(&iter);
	while ((s = rhashtable_walk_next(&iter))) {
		unsigned int n = 0;

		if (IS_ERR(s)) {
			if (PTR_ERR(s) == -EAGAIN)
				continue;
			break;
		}
		spin_lock_bh(&s->lock);
		list_for_each_entry_safe(h, tmp, &s->held, park.node)
			if (h->park.state.in == dev) {
				list_move_tail(&h->park.node, &out);
				n++;
			}
		s->n_held -= n;
		spin_unlock_bh(&s->lock);
		atomic_sub(n, &s->svc->held);
		atomic64_add(n, &s->svc->dropped);
	}
	rhashtable_walk_stop(&iter);
	rhashtable_walk_exit(&iter);
	ftvm_held_drop(&out);
}

/* The hook. */

/*
 * The TCP segment @skb (network header at its data, as netfilter sees
 * it) as a wire tuple whose local end is the segment's source, and what
 * it carries; false for anything else (not TCP, a fragment, truncated).
 */
bool ftvm_seg_parse(struct sk_buff *skb, u8 pf, struct ftvm_tuple *t,
		    struct ftvm_seg *g)
{
	unsigned int thoff, plen;
	struct tcphdr _th;
	const struct tcphdr *th;

	memset(t, 0, sizeof(*t));
	if (pf == NFPROTO_IPV4) {
		const struct iphdr *iph = ip_hdr(skb);

		if (iph->protocol != IPPROTO_TCP || ip_is_fragment(iph))
			return false;
		thoff = skb_network_offset(skb) + ip_hdrlen(skb);
		t->family = AF_INET;
		t->laddr.v4 = iph->saddr;
		t->raddr.v4 = iph->daddr;
	} else {
		const struct ipv6hdr *ip6h = ipv6_hdr(skb);
		u8 nexthdr = ip6h->nexthdr;
		__be16 frag_off;
		int off;

		off = ipv6_skip_exthdr(skb, skb_network_offset(skb) +
				       sizeof(*ip6h), &nexthdr, &frag_off);
		if (off < 0 || nexthdr != IPPROTO_TCP || frag_off)
			return false;
		thoff = off;
		t->family = AF_INET6;
		t->laddr.v6 = ip6h->saddr;
		t->raddr.v6 = ip6h->daddr;
	}
	th = skb_header_pointer(skb, thoff, sizeof(_th), &_th);
	if (!th || th->doff < 5 || skb->len < thoff + th->doff * 4)
		return false;
	plen = skb->len - thoff - th->doff * 4;
	t->proto = IPPROTO_TCP;
	t->lport = ntohs(th->source);
	t->rport = ntohs(th->dest);
	g->end = ntohl(th->seq) + plen;
	g->ack = ntohl(th->ack_seq);
	g->has_ack = th->ack;
	g->syn = th->syn;
	g->rst = th->rst;
	return true;
}

/*
 * A SYN from the service (its SYN-ACK): a new connection on this tuple.
 * Whatever the session knew is of a connection that is gone.
 */
static void ftvm_commit_syn(struct net *host, const struct ftvm_tuple *key)
{
	struct ftvm_csess *s = ftvm_csess_find(host, key);
	LIST_HEAD(out);
	unsigned int n;

	if (!s)
		return;
	spin_lock(&s->lock);
	s->valid = false;
	s->backup = 0;
	s->stale_since = 0;
	list_splice_init(&s->held, &out);
	n = s->n_held;
	s->n_held = 0;
	spin_unlock(&s->lock);
	atomic_sub(n, &s->svc->held);
	atomic64_add(n, &s->svc->dropped);
	ftvm_held_drop(&out);
}

static unsigned int ftvm_commit_hook(void *priv, struct sk_buff *skb,
				     const struct nf_hook_state *state)
{
	struct ftvm_cnet *cn = priv;
	unsigned int dropped = 0;
	unsigned int verdict;
	struct ftvm_csvc *svc;
	struct ftvm_csess *s;
	struct ftvm_tuple key;
	struct ftvm_held *h;
	struct ftvm_seg seg;
	LIST_HEAD(old);

	/* Unparsable or not TCP: not ours to hold, never mangled. */
	if (!ftvm_seg_parse(skb, state->pf, &key, &seg))
		return NF_ACCEPT;
	svc = ftvm_csvc_find(cn, &key);
	if (!svc)
		return NF_ACCEPT;
	if (seg.syn) {
		ftvm_commit_syn(state->net, &key);
		return NF_ACCEPT;
	}
again:
	s = ftvm_csess_get(state->net, svc, &key);
	if (!s)
		goto drop;
	spin_lock(&s->lock);
	if (s->dead) {
		spin_unlock(&s->lock);
		goto again;
	}
	s->used = jiffies;
	if (s->ifindex != state->in->ifindex) {
		/*
		 * The session moved (failover, migration): what its old
		 * primary still holds must never leave, and must not stand
		 * in front of the new primary's output.
		 */
		list_splice_init(&s->held, &old);
		dropped = s->n_held;
		s->n_held = 0;
		s->ifindex = state->in->ifindex;
	}
	if (!s->releasing && list_empty(&s->held) && ftvm_covered(s, &seg)) {
		verdict = NF_ACCEPT;
		goto unlock;
	}
	if (s->n_held >= FTVM_HELD_MAX)
		goto drop_unlock;
	h = kmem_cache_alloc(ftvm_held_cache, GFP_ATOMIC);
	if (!h)
		goto drop_unlock;
	ftvm_park(&h->park, skb, state);
	h->seg = seg;
	list_add_tail(&h->park.node, &s->held);
	s->n_held++;
	atomic_inc(&svc->held);
	atomic64_inc(&svc->held_total);
	ftvm_csess_kick(s);
	verdict = NF_STOLEN;
	goto unlock;

drop_unlock:
	/* TCP sends it again: a stall, never a loss. */
	verdict = NF_DROP;
	dropped++;
unlock:
	spin_unlock(&s->lock);
	if (dropped) {
		atomic_sub(dropped - (verdict == NF_DROP), &svc->held);
		atomic64_add(dropped, &svc->dropped);
		ftvm_held_drop(&old);
	}
	return verdict;
drop:
	atomic64_inc(&svc->dropped);
	return NF_DROP;
}

static int ftvm_commit_hook_on(struct net *net, struct ftvm_cnet *cn)
{
	static const u8 pf[2] = { NFPROTO_IPV4, NFPROTO_IPV6 };
	int i, err;

	if (cn->hooked)
		return 0;
	for (i = 0; i < 2; i++) {
		cn->ops[i] = (struct nf_hook_ops){
			.hook = ftvm_commit_hook,
			.priv = cn,
			.pf = pf[i],
			.hooknum = NF_INET_PRE_ROUTING,
			/* Last: the hooks after it are skipped on reinjection. */
			.priority = NF_IP_PRI_LAST - 1,
		};
	}
	err = nf_register_net_hooks(net, cn->ops, 2);
	if (!err)
		cn->hooked = true;
	return err;
}

/* Requests. */

static bool ftvm_csess_of_svc(struct ftvm_csess *s, const void *svc)
{
	return s->svc == svc;
}

static bool ftvm_csess_of_host(struct ftvm_csess *s, const void *net)
{
	return s->host == net;
}

/* Forget @svc, letting its segments go (@release) or dropping them. */
static void ftvm_csvc_del(struct net *net, struct ftvm_cnet *cn,
			  struct ftvm_csvc *svc, bool release)
{
	LIST_HEAD(list);

	lockdep_assert_held(&ftvm_commit_mutex);
	list_del_rcu(&svc->node);
	cn->n_svcs--;
	atomic_dec(&ftvm_csvc_n);
	if (!cn->n_svcs && cn->hooked) {
		nf_unregister_net_hooks(net, cn->ops, 2);
		cn->hooked = false;
	}
	/* No hook and no staging sees @svc after this. */
	synchronize_rcu();
	ftvm_csess_collect(ftvm_csess_of_svc, svc, &list);
	ftvm_csess_destroy_list(&list, release);
	kfree(svc);
}

static int ftvm_commit_key(struct nlattr **tb, const struct nlattr *nest,
			   struct ftvm_tuple *key, struct netlink_ext_ack *extack)
{
	static const u16 required[] = {
		FTVM_A_COMMIT_FAMILY, FTVM_A_COMMIT_ADDR, FTVM_A_COMMIT_PORT,
		FTVM_A_COMMIT_MODE,
	};
	unsigned int i;
	int alen;

	for (i = 0; i < ARRAY_SIZE(required); i++)
		if (NL_REQ_ATTR_CHECK(extack, nest, tb, required[i])) {
			NL_SET_ERR_MSG(extack, "a service is its family, address, port and mode");
			return -EINVAL;
		}
	memset(key, 0, sizeof(*key));
	key->family = nla_get_u8(tb[FTVM_A_COMMIT_FAMILY]);
	if (key->family != AF_INET && key->family != AF_INET6) {
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_COMMIT_FAMILY],
				    "family must be AF_INET (2) or AF_INET6 (10)");
		return -EAFNOSUPPORT;
	}
	alen = key->family == AF_INET ? 4 : 16;
	if (nla_len(tb[FTVM_A_COMMIT_ADDR]) != alen) {
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_COMMIT_ADDR],
				    "address length does not match the family");
		return -EINVAL;
	}
	nla_memcpy(&key->laddr, tb[FTVM_A_COMMIT_ADDR], alen);
	if (key->family == AF_INET6 && ipv6_addr_v4mapped(&key->laddr.v6)) {
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_COMMIT_ADDR],
				    "an IPv4 service is given as AF_INET");
		return -EINVAL;
	}
	key->lport = nla_get_u16(tb[FTVM_A_COMMIT_PORT]);
	key->proto = IPPROTO_TCP;
	if (tb[FTVM_A_COMMIT_PROTO] &&
	    nla_get_u8(tb[FTVM_A_COMMIT_PROTO]) != IPPROTO_TCP) {
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_COMMIT_PROTO],
				    "only TCP output is held: a UDP session has no state to commit");
		return -EPROTONOSUPPORT;
	}
	return 0;
}

int ftvm_commit_set_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct netlink_ext_ack *extack = info->extack;
	struct nlattr *tb[FTVM_A_COMMIT_MAX + 1];
	struct net *net = genl_info_net(info);
	struct ftvm_cnet *cn = ftvm_cnet(net);
	u32 wait = FTVM_CKPT_WAIT_DEFAULT;
	struct ftvm_csvc *svc;
	struct ftvm_tuple key;
	u8 mode;
	int err;

	if (GENL_REQ_ATTR_CHECK(info, FTVM_A_COMMIT)) {
		NL_SET_ERR_MSG(extack, "the service is required (FTVM_A_COMMIT)");
		return -EINVAL;
	}
	/* Validated against ftvm_commit_attr_policy already. */
	err = nla_parse_nested(tb, FTVM_A_COMMIT_MAX, info->attrs[FTVM_A_COMMIT],
			       NULL, extack);
	if (err)
		return err;
	err = ftvm_commit_key(tb, info->attrs[FTVM_A_COMMIT], &key, extack);
	if (err)
		return err;
	mode = nla_get_u8(tb[FTVM_A_COMMIT_MODE]);
	if (tb[FTVM_A_COMMIT_CKPT_WAIT])
		wait = nla_get_u32(tb[FTVM_A_COMMIT_CKPT_WAIT]);

	mutex_lock(&ftvm_commit_mutex);
	svc = ftvm_csvc_find(cn, &key);
	if (mode == FTVM_COMMIT_RELAXED) {
		/* Relaxing a service that is not strict changes nothing. */
		if (svc)
			ftvm_csvc_del(net, cn, svc, true);
		goto unlock;
	}
	if (svc) {
		WRITE_ONCE(svc->ckpt_wait_ms, wait);
		goto unlock;
	}
	if (cn->n_svcs >= FTVM_COMMIT_SERVICES_MAX) {
		NL_SET_ERR_MSG(extack, "too many strict services in this namespace");
		err = -ENOSPC;
		goto unlock;
	}
	svc = kzalloc(sizeof(*svc), GFP_KERNEL);
	if (!svc) {
		err = -ENOMEM;
		goto unlock;
	}
	svc->key = key;
	svc->ckpt_wait_ms = wait;
	err = ftvm_commit_hook_on(net, cn);
	if (err) {
		NL_SET_ERR_MSG(extack, "cannot register the netfilter hooks");
		kfree(svc);
		goto unlock;
	}
	list_add_tail_rcu(&svc->node, &cn->svcs);
	cn->n_svcs++;
	atomic_inc(&ftvm_csvc_n);
unlock:
	mutex_unlock(&ftvm_commit_mutex);
	return err;
}

static int ftvm_commit_put(struct sk_buff *skb, const struct ftvm_csvc *svc)
{
	const struct ftvm_tuple *k = &svc->key;
	struct nlattr *nest;

	nest = nla_nest_start(skb, FTVM_A_COMMIT);
	if (!nest ||
	    nla_put_u8(skb, FTVM_A_COMMIT_FAMILY, k->family) ||
	    nla_put(skb, FTVM_A_COMMIT_ADDR, k->family == AF_INET ? 4 : 16,
		    &k->laddr) ||
	    nla_put_u16(skb, FTVM_A_COMMIT_PORT, k->lport) ||
	    nla_put_u8(skb, FTVM_A_COMMIT_PROTO, k->proto) ||
	    nla_put_u8(skb, FTVM_A_COMMIT_MODE, FTVM_COMMIT_STRICT) ||
	    nla_put_u32(skb, FTVM_A_COMMIT_CKPT_WAIT,
			READ_ONCE(svc->ckpt_wait_ms)) ||
	    nla_put_u32(skb, FTVM_A_COMMIT_SESSIONS,
			atomic_read(&svc->sessions)) ||
	    nla_put_u32(skb, FTVM_A_COMMIT_HELD, atomic_read(&svc->held)) ||
	    nla_put_u64_64bit(skb, FTVM_A_COMMIT_HELD_TOTAL,
			      atomic64_read(&svc->held_total), FTVM_A_COMMIT_PAD) ||
	    nla_put_u64_64bit(skb, FTVM_A_COMMIT_RELEASED,
			      atomic64_read(&svc->released), FTVM_A_COMMIT_PAD) ||
	    nla_put_u64_64bit(skb, FTVM_A_COMMIT_DROPPED,
			      atomic64_read(&svc->dropped), FTVM_A_COMMIT_PAD) ||
	    nla_put_u64_64bit(skb, FTVM_A_COMMIT_COMMITS,
			      atomic64_read(&svc->commits), FTVM_A_COMMIT_PAD) ||
	    nla_put_u64_64bit(skb, FTVM_A_COMMIT_NO_BACKUP,
			      atomic64_read(&svc->no_backup), FTVM_A_COMMIT_PAD) ||
	    nla_put_u64_64bit(skb, FTVM_A_COMMIT_STALE,
			      atomic64_read(&svc->stale), FTVM_A_COMMIT_PAD))
		return -EMSGSIZE;
	nla_nest_end(skb, nest);
	return 0;
}

/* One message per strict service; cb->args[0]: services done. */
int ftvm_commit_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct ftvm_cnet *cn = ftvm_cnet(sock_net(cb->skb->sk));
	struct ftvm_csvc *svc;
	long i = 0;
	void *hdr;

	mutex_lock(&ftvm_commit_mutex);
	list_for_each_entry(svc, &cn->svcs, node) {
		if (i++ < cb->args[0])
			continue;
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
				  cb->nlh->nlmsg_seq, &ftvm_genl_family,
				  NLM_F_MULTI, FTVM_CMD_COMMIT_GET);
		if (!hdr)
			break;
		if (ftvm_commit_put(skb, svc)) {
			genlmsg_cancel(skb, hdr);
			break;
		}
		genlmsg_end(skb, hdr);
		cb->args[0] = i;
	}
	mutex_unlock(&ftvm_commit_mutex);
	return skb->len;
}

/*
 * commit-sess-get: every session the hooks of this namespace follow, one
 * message each: its wire 5-tuple (FTVM_A_TUPLE: the local end is the
 * service's), the segments it holds now and how long ago a record that
 * covers it was last staged on its backup (by a commit or a replicator),
 * which is when the backup was last brought up to date (to the tick:
 * coarse clock, read without the clock source).  The walk of the
 * table goes on from one message to the next (its iterator lives in
 * cb->args[0]); a resize may show a session twice, never skips one.
 */
int ftvm_commit_sess_start(struct netlink_callback *cb)
{
	struct rhashtable_iter *iter = kmalloc(sizeof(*iter), GFP_KERNEL);

	if (!iter)
		return -ENOMEM;
	rhltable_walk_enter(&ftvm_csess_ht, iter);
	cb->args[0] = (long)iter;
	return 0;
}

int ftvm_commit_sess_done(struct netlink_callback *cb)
{
	struct rhashtable_iter *iter = (struct rhashtable_iter *)cb->args[0];

	if (iter) {
		rhashtable_walk_exit(iter);
		kfree(iter);
	}
	return 0;
}

static int ftvm_commit_sess_put(struct sk_buff *skb, struct netlink_callback *cb,
				struct ftvm_csess *s, u64 now)
{
	unsigned int held;
	struct nlattr *nest;
	u64 staged;
	void *hdr;

	spin_lock_bh(&s->lock);
	held = s->n_held;
	staged = s->staged_ns;
	spin_unlock_bh(&s->lock);
	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			  &ftvm_genl_family, NLM_F_MULTI,
			  FTVM_CMD_COMMIT_SESS_GET);
	if (!hdr)
		return -EMSGSIZE;
	if (ftvm_tuple_put(skb, &s->key))
		goto cancel;
	nest = nla_nest_start(skb, FTVM_A_COMMIT);
	/* Staged since the dump read the clock: just now. */
	if (!nest || nla_put_u32(skb, FTVM_A_COMMIT_HELD, held) ||
	    (staged && nla_put_u32(skb, FTVM_A_COMMIT_STAGED_MS,
				   staged >= now ? 0 :
				   min_t(u64, div_u64(now - staged, NSEC_PER_MSEC),
					 U32_MAX))))
		goto cancel;
	nla_nest_end(skb, nest);
	genlmsg_end(skb, hdr);
	return 0;
cancel:
	genlmsg_cancel(skb, hdr);
	return -EMSGSIZE;
}

int ftvm_commit_sess_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct rhashtable_iter *iter = (struct rhashtable_iter *)cb->args[0];
	struct net *net = sock_net(cb->skb->sk);
	u64 now = ktime_get_coarse_ns();
	struct ftvm_csess *s;

	rhashtable_walk_start(iter);
	for (;;) {
		s = rhashtable_walk_peek(iter);
		if (IS_ERR(s)) {
			if (PTR_ERR(s) == -EAGAIN)
				continue;	/* resized: from the start */
			break;
		}
		if (!s)
			break;
		/* Left where it is when the message is full: the next one. */
		if (s->host == net && !READ_ONCE(s->dead) &&
		    ftvm_commit_sess_put(skb, cb, s, now))
			break;
		rhashtable_walk_next(iter);
	}
	rhashtable_walk_stop(iter);
	return skb->len;
}

/* Namespaces and the module. */

static int __net_init ftvm_cnet_init(struct net *net)
{
	struct ftvm_cnet *cn = ftvm_cnet(net);

	INIT_LIST_HEAD(&cn->svcs);
	return 0;
}

/*
 * The namespace is going away: its devices are gone (and with them the
 * segments they held), no request can reach it.  Its services go, and
 * whatever sessions are left, theirs or not, keyed to it.
 */
static void __net_exit ftvm_cnet_exit(struct net *net)
{
	struct ftvm_cnet *cn = ftvm_cnet(net);
	struct ftvm_csvc *svc, *tmp;
	LIST_HEAD(list);

	mutex_lock(&ftvm_commit_mutex);
	list_for_each_entry_safe(svc, tmp, &cn->svcs, node)
		ftvm_csvc_del(net, cn, svc, false);
	ftvm_csess_collect(ftvm_csess_of_host, net, &list);
	ftvm_csess_destroy_list(&list, false);
	mutex_unlock(&ftvm_commit_mutex);
}

static struct pernet_operations ftvm_cnet_ops = {
	.init = ftvm_cnet_init,
	.exit = ftvm_cnet_exit,
	.id = &ftvm_cnet_id,
	.size = sizeof(struct ftvm_cnet),
};

int __init ftvm_commit_init(void)
{
	int err;

	ftvm_held_cache = KMEM_CACHE(ftvm_held, 0);
	if (!ftvm_held_cache)
		return -ENOMEM;
	err = -ENOMEM;
	ftvm_commit_wq = alloc_workqueue("ftvm_commit", WQ_UNBOUND | WQ_HIGHPRI,
					 0);
	if (!ftvm_commit_wq)
		goto err_cache;
	err = rhltable_init(&ftvm_csess_ht, &ftvm_csess_params);
	if (err)
		goto err_wq;
	err = register_pernet_subsys(&ftvm_cnet_ops);
	if (err)
		goto err_ht;
	return 0;

err_ht:
	rhltable_destroy(&ftvm_csess_ht);
err_wq:
	destroy_workqueue(ftvm_commit_wq);
err_cache:
	kmem_cache_destroy(ftvm_held_cache);
	return err;
}

void ftvm_commit_uninit(void)
{
	/* Every namespace's exit ran: no service, no session is left. */
	unregister_pernet_subsys(&ftvm_cnet_ops);
	cancel_delayed_work_sync(&ftvm_commit_gc_work);
	WARN_ON_ONCE(atomic_read(&ftvm_csess_n));
	destroy_workqueue(ftvm_commit_wq);
	rhltable_destroy(&ftvm_csess_ht);
	rcu_barrier();		/* the sessions' kfree_rcu() */
	kmem_cache_destroy(ftvm_held_cache);
}
