// SPDX-License-Identifier: GPL-2.0
/*
 * The staged store: records a restore with FTVM_SNAP_F_STAGE parsed and
 * checked, held in the target namespace until an activation makes them
 * live or a discard drops them.
 *
 * A staged record is keyed by its session's 5-tuple (struct ftvm_tuple).
 * Staging a session that is staged already replaces its record in place,
 * so a replicator sends only the sessions that changed.  An activation,
 * or a discard, acts on the sessions its FTVM_A_TUPLE attributes name,
 * or on every staged session when it names none.  Each request is all or
 * nothing: it either does everything it asks or changes nothing.
 *
 * Locking: a namespace's staged records are on a list (for "all") and in
 * an rhashtable by 5-tuple, and both are changed only under the store's
 * stage_lock, which a request holds from its first lookup to its last
 * change, an activation's socket builds included (lock order: stage_lock,
 * a socket's lock, the store's lock; see state.h).  So requests on one
 * namespace are serialised.  The one lockless reader is the ingress
 * hold (ftvm_stage_has(), from a netfilter hook, under RCU), which only
 * asks whether a key is in the table: a record is freed a grace period
 * after it was unlinked (ftvm_rec_free()), and the hook is unregistered
 * before the table is destroyed (the hold's pernet operations are
 * registered after the store's, so they exit first).
 *
 * Memory per staged session: one allocation, struct ftvm_rec (192 bytes
 * on x86-64) plus its queue bytes and blob, rounded up to the slab size,
 * and its share of the table's bucket array (8 bytes per bucket, the
 * table kept between 3/8 and 3/4 full: 11 to 22 bytes per record).  An
 * idle session without application state costs about 210 bytes (192 +
 * the bucket share); one with a 280-byte blob about 530 (512 + it).
 */
#include <linux/rhashtable.h>
#include <linux/slab.h>
#include <net/genetlink.h>
#include <net/tcp.h>

#include "uapi/ftvm.h"
#include "commit.h"
#include "hold.h"
#include "netlink.h"
#include "restore.h"
#include "state.h"

/* The fixed part that the memory figures above count. */
static_assert(sizeof(struct ftvm_rec) <= 192);

/* Records one namespace may hold staged. */
#define FTVM_STAGED_MAX		(1U << 20)

static const struct rhashtable_params ftvm_staged_params = {
	.key_len = sizeof(struct ftvm_tuple),
	.key_offset = offsetof(struct ftvm_rec, key),
	.head_offset = offsetof(struct ftvm_rec, hnode),
	.automatic_shrinking = true,
};

int ftvm_stage_init(struct ftvm_sstore *st)
{
	mutex_init(&st->stage_lock);
	INIT_LIST_HEAD(&st->staged);
	st->n_staged = 0;
	return rhashtable_init(&st->staged_ht, &ftvm_staged_params);
}

static void ftvm_staged_free(void *ptr, void *arg)
{
	ftvm_rec_free(ptr);
}

/* The namespace is going away: no request can reach its store now. */
void ftvm_stage_uninit(struct ftvm_sstore *st)
{
	/* Stops the deferred resize, then frees every record. */
	rhashtable_free_and_destroy(&st->staged_ht, ftvm_staged_free, NULL);
	INIT_LIST_HEAD(&st->staged);
	st->n_staged = 0;
	mutex_destroy(&st->stage_lock);
}

/*
 * @key as a wire tuple: an IPv4 session may be staged as its IPv6
 * socket knew it, with mapped addresses (ftvm_tuple_to_mapped()).
 */
bool ftvm_stage_has(struct net *net, const struct ftvm_tuple *key)
{
	struct ftvm_sstore *st = ftvm_sstore(net);
	struct ftvm_tuple m;
	bool found;

	rcu_read_lock();
	found = rhashtable_lookup(&st->staged_ht, key, ftvm_staged_params);
	if (!found && key->family == AF_INET) {
		ftvm_tuple_to_mapped(key, &m);
		found = rhashtable_lookup(&st->staged_ht, &m, ftvm_staged_params);
	}
	rcu_read_unlock();
	return found;
}

static struct ftvm_rec *ftvm_staged_find(struct ftvm_sstore *st,
					 const struct ftvm_tuple *key)
{
	lockdep_assert_held(&st->stage_lock);
	return rhashtable_lookup_fast(&st->staged_ht, key, ftvm_staged_params);
}

/* Unlink and free a staged record.  stage_lock held. */
static void ftvm_staged_del(struct ftvm_sstore *st, struct ftvm_rec *r)
{
	rhashtable_remove_fast(&st->staged_ht, &r->hnode, ftvm_staged_params);
	list_del(&r->node);
	st->n_staged--;
	ftvm_rec_free(r);
}

/*
 * Whether to keep @old, staged, rather than @r, a capture of the same
 * connection (same socket): a replicator's record overtaken by a newer
 * one, an in-kernel commit's for instance (commit.c).
 *
 * A consistent record (the socket as of the service's checkpoint, or a
 * service without one) always wins over a stale one (FTVM_SESS_F_STALE:
 * caught between a read or write and the checkpoint, its blob behind its
 * byte streams), whichever is newer: restored, a stale record would give
 * the service back a request it has read without the state it made of
 * it.  Strict output commit never lets a client see what only a stale
 * record covers (ftvm_commit_staged()), so going back from a stale one
 * takes nothing from a client.  Between two consistent records, or two
 * stale ones, the newer wins (neither stream behind): an older one would
 * take the backup back past what the client may have seen.
 */
static bool ftvm_rec_keep_old(const struct ftvm_rec *r,
			      const struct ftvm_rec *old)
{
	u32 w = ftvm_rec_snd_end(r), ow = ftvm_rec_snd_end(old);
	u32 c = ftvm_rec_rcv_end(r), oc = ftvm_rec_rcv_end(old);

	if (r->key.proto != IPPROTO_TCP || !r->src_cookie ||
	    r->src_cookie != old->src_cookie)
		return false;
	if (r->stale != old->stale)
		return r->stale;
	return !after(w, ow) && !after(c, oc) && (before(w, ow) || before(c, oc));
}

/* Undo the first pass of ftvm_stage() for every record of @list. */
static void ftvm_stage_undo(struct ftvm_sstore *st, struct list_head *list)
{
	struct ftvm_rec *r;

	list_for_each_entry(r, list, node) {
		if (r->inserted)
			rhashtable_remove_fast(&st->staged_ht, &r->hnode,
					       ftvm_staged_params);
		if (r->old)
			r->old->picked = false;
		r->inserted = false;
		r->keep_old = false;
		r->old = NULL;
	}
}

/*
 * Stage the parsed records of @list in @net's store, replacing the
 * records staged for the same sessions; all or none.  Takes the records
 * (frees them on failure).  *@staged: the records now staged.
 *
 * The first pass, which may fail, inserts the new sessions into the table
 * and notes which staged record each other one replaces; until the
 * second pass nothing has been replaced, and the inserted records are
 * not on the store's list, so undoing it is exact.  The second pass
 * cannot fail.  It tells strict output commit (@host: the namespace of
 * the VM registry that asked, NULL for none) what each session now has
 * staged.
 */
int ftvm_stage(struct net *host, struct net *net, struct list_head *list,
	       struct netlink_ext_ack *extack, u32 *staged)
{
	struct ftvm_sstore *st = ftvm_sstore(net);
	struct ftvm_rec *r, *tmp, *old;
	unsigned int added = 0;
	int err = 0;

	mutex_lock(&st->stage_lock);
	list_for_each_entry(r, list, node) {
		old = ftvm_staged_find(st, &r->key);
		if (old && (old->inserted || old->picked)) {
			NL_SET_ERR_MSG_ATTR(extack, r->attr,
					    "the same session twice in one request");
			err = -EINVAL;
			break;
		}
		if (old) {
			old->picked = true;
			r->old = old;
			r->keep_old = ftvm_rec_keep_old(r, old);
			continue;
		}
		if (st->n_staged + added >= FTVM_STAGED_MAX) {
			NL_SET_ERR_MSG(extack, "too many staged records for this VM");
			err = -ENOSPC;
			break;
		}
		err = rhashtable_insert_fast(&st->staged_ht, &r->hnode,
					     ftvm_staged_params);
		if (err) {
			NL_SET_ERR_MSG_ATTR(extack, r->attr, "cannot stage the record");
			break;
		}
		r->inserted = true;
		added++;
	}
	if (err) {
		ftvm_stage_undo(st, list);
		mutex_unlock(&st->stage_lock);
		ftvm_recs_free(list);
		return err;
	}

	list_for_each_entry_safe(r, tmp, list, node) {
		list_del(&r->node);
		old = r->old;
		r->attr = NULL;
		r->inserted = false;
		r->old = NULL;
		if (!old) {
			list_add_tail(&r->node, &st->staged);
			ftvm_commit_staged(host, net, r);
			continue;
		}
		if (r->keep_old) {
			old->picked = false;
			ftvm_commit_staged(host, net, old);
			ftvm_rec_free(r);
			continue;
		}
		/* Same key, and @old is in the table: this cannot fail. */
		if (WARN_ON_ONCE(rhashtable_replace_fast(&st->staged_ht, &old->hnode,
							 &r->hnode,
							 ftvm_staged_params))) {
			old->picked = false;
			ftvm_rec_free(r);
			continue;
		}
		list_replace(&old->node, &r->node);
		ftvm_rec_free(old);
		ftvm_commit_staged(host, net, r);
	}
	st->n_staged += added;
	*staged = st->n_staged;
	mutex_unlock(&st->stage_lock);
	return 0;
}

/* ftvm_stage_pick()'s search of the sessions clients wait for. */
struct ftvm_held_pick {
	struct ftvm_sstore *st;
	struct list_head list;		/* picked, in the order held */
	unsigned int n;
	bool named;			/* only among the picked (named) */
};

/* ftvm_hold_each()'s callback: pick the record a held segment waits for. */
static bool ftvm_pick_held(const struct ftvm_tuple *key, void *arg)
{
	struct ftvm_held_pick *p = arg;
	struct ftvm_tuple m;
	struct ftvm_rec *r;

	r = ftvm_staged_find(p->st, key);
	if (!r && key->family == AF_INET) {
		/* A service listening on IPv6 takes IPv4 clients. */
		ftvm_tuple_to_mapped(key, &m);
		r = ftvm_staged_find(p->st, &m);
	}
	/* Several segments may wait for one session: picked once. */
	if (r && !r->held && (!p->named || r->picked)) {
		r->held = true;
		list_move_tail(&r->node, &p->list);
		p->n++;
	}
	return p->n < FTVM_HELD_MAX;
}

/*
 * Move the staged records the request's FTVM_A_TUPLE attributes name to
 * @list, or every staged record when it names none; *@n is how many.
 * With @held, only those of them a segment held in @net waits for
 * (hold.c), FTVM_HELD_MAX at most.  They stay in the table (and
 * counted) until the caller frees them or puts them back.  On failure
 * nothing is moved.  stage_lock held.
 */
static int ftvm_stage_pick(struct ftvm_sstore *st, struct net *net,
			   struct genl_info *info, bool held,
			   struct list_head *list, unsigned int *n)
{
	struct netlink_ext_ack *extack = info->extack;
	struct ftvm_held_pick hp = { .st = st };
	struct ftvm_tuple key;
	bool named = false;
	struct ftvm_rec *r;
	struct nlattr *a;
	int rem, err = 0;

	*n = 0;
	nla_for_each_attr(a, genlmsg_data(info->genlhdr),
			  genlmsg_len(info->genlhdr), rem) {
		if (nla_type(a) != FTVM_A_TUPLE)
			continue;
		named = true;
		err = ftvm_tuple_parse(a, &key, extack);
		if (err)
			break;
		r = ftvm_staged_find(st, &key);
		if (!r) {
			NL_SET_ERR_MSG_ATTR(extack, a, "no record staged for this session");
			err = -ENOENT;
			break;
		}
		if (r->picked) {
			NL_SET_ERR_MSG_ATTR(extack, a, "session named twice");
			err = -EINVAL;
			break;
		}
		r->picked = true;
		list_move_tail(&r->node, list);
		(*n)++;
	}
	if (!err && held) {
		/* Not every staged record: only the few clients wait for. */
		INIT_LIST_HEAD(&hp.list);
		hp.named = named;
		ftvm_hold_each(net, ftvm_pick_held, &hp);
		list_for_each_entry(r, &hp.list, node)
			r->held = r->picked = false;
	}
	list_for_each_entry(r, list, node)
		r->picked = false;
	if (err || held) {
		/* Named and not picked after all, or all of it on failure. */
		list_splice_tail_init(list, &st->staged);
		*n = 0;
	}
	if (err)
		return err;
	if (held) {
		list_splice(&hp.list, list);
		*n = hp.n;
	} else if (!named) {
		list_splice_init(&st->staged, list);
		*n = st->n_staged;
	}
	return 0;
}

int ftvm_activate_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct netlink_ext_ack *extack = info->extack;
	struct sk_buff *msg = NULL;
	struct ftvm_rec *r, *tmp;
	struct ftvm_sstore *st;
	u32 flags = 0, staged;
	unsigned int n;
	LIST_HEAD(list);
	struct net *net;
	bool held;
	int err;

	if (info->attrs[FTVM_A_SNAP]) {
		struct nlattr *tb[FTVM_A_SNAP_MAX + 1];

		/* Validated against ftvm_activate_snap_policy already. */
		err = nla_parse_nested(tb, FTVM_A_SNAP_MAX,
				       info->attrs[FTVM_A_SNAP], NULL, extack);
		if (err)
			return err;
		if (tb[FTVM_A_SNAP_FLAGS])
			flags = nla_get_u32(tb[FTVM_A_SNAP_FLAGS]);
	}
	if (flags & FTVM_SNAP_F_STAGE) {
		NL_SET_ERR_MSG_ATTR(extack, info->attrs[FTVM_A_SNAP],
				    "stage is a restore flag");
		return -EINVAL;
	}
	held = flags & FTVM_SNAP_F_HELD;
	if ((flags & FTVM_SNAP_F_DISCARD) &&
	    (flags & (FTVM_SNAP_F_HELD | FTVM_SNAP_F_QUIET))) {
		NL_SET_ERR_MSG_ATTR(extack, info->attrs[FTVM_A_SNAP],
				    "held and quiet are for sessions made live, discard drops them");
		return -EINVAL;
	}
	if (info->attrs[FTVM_A_SESSION]) {
		NL_SET_ERR_MSG_ATTR(extack, info->attrs[FTVM_A_SESSION],
				    FTVM_NOT_RECORD);
		return -EINVAL;
	}
	net = ftvm_nl_vm_netns(genl_info_net(info), info->attrs[FTVM_A_VM],
			       extack);
	if (IS_ERR(net))
		return PTR_ERR(net);
	st = ftvm_sstore(net);

	mutex_lock(&st->stage_lock);
	err = ftvm_stage_pick(st, net, info, held, &list, &n);
	if (err)
		goto unlock;
	/* The reply names what it made live: room for it first. */
	msg = ftvm_restore_reply_new(held ? n : 0);
	if (!msg) {
		err = -ENOMEM;
		goto put_back;
	}
	if (!(flags & FTVM_SNAP_F_DISCARD) && !n && !held) {
		NL_SET_ERR_MSG(extack, "no records staged for this VM");
		err = -ENOENT;
		goto put_back;
	}
	if (!(flags & FTVM_SNAP_F_DISCARD) && n) {
		err = ftvm_recs_restore(net, &list, flags & FTVM_SNAP_F_QUIET,
					extack);
		if (err < 0)
			goto put_back;
	}
	staged = st->n_staged - n;
	ftvm_restore_reply_fill(msg, info, FTVM_CMD_SESSION_ACTIVATE, n,
				&staged, held ? &list : NULL);
	list_for_each_entry_safe(r, tmp, &list, node) {
		ftvm_commit_unstaged(genl_info_net(info), net, &r->key);
		ftvm_staged_del(st, r);
	}
	mutex_unlock(&st->stage_lock);
	if (!(flags & FTVM_SNAP_F_DISCARD))
		ftvm_hold_release(net);
	err = genlmsg_reply(msg, info);
	goto out;

put_back:
	/* Nothing was activated: the records stay staged. */
	list_splice_tail(&list, &st->staged);
unlock:
	mutex_unlock(&st->stage_lock);
	nlmsg_free(msg);
out:
	put_net(net);
	return err;
}
