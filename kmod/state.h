/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Session state: capture (state.c) and restore (restore.c, stage.c).
 *
 * Every network namespace has a session store (struct ftvm_sstore): the
 * application state services attach to their sockets through libftvm,
 * keyed by socket cookie, the per-session generations that incremental
 * snapshots compare against, and the records staged for restore into
 * that namespace.
 *
 * Locks: @lock protects the sessions (sess, n_sess, gen, walk);
 * @stage_lock the staged records (staged, staged_ht, n_staged) and is
 * held across a whole stage, activation or discard, builds included, so
 * that they are serialised per namespace.  Order: @stage_lock, then a
 * socket's lock (lock_sock), then @lock; a listener's accept-queue lock
 * is only taken with neither socket lock nor @lock held.
 */
#ifndef _FTVM_STATE_H
#define _FTVM_STATE_H

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rhashtable-types.h>
#include <linux/xarray.h>
#include <net/genetlink.h>
#include <net/sock.h>

struct ftvm_sstore {
	struct mutex lock;
	struct xarray sess;		/* cookie -> struct ftvm_sess */
	unsigned int n_sess;
	u64 gen;			/* bumped by every snapshot and checkpoint */
	u32 walk;			/* complete snapshots taken, for pruning */
	struct mutex stage_lock;
	struct list_head staged;	/* struct ftvm_rec, stage.c */
	struct rhashtable staged_ht;	/* the same records by 5-tuple */
	unsigned int n_staged;
};

/*
 * A socket's fingerprint (state.c, ftvm_sess_fp()): snd_una, write_seq,
 * rcv_nxt, copied_seq, and when it last sent, in TCP timestamp units.
 */
#define FTVM_FP_LEN		5

/* What the store knows of one socket. */
struct ftvm_sess {
	u64 gen;		/* generation of the last change seen */
	u32 walk;		/* complete snapshot that last saw it */
	u32 fp[FTVM_FP_LEN];	/* ftvm_sess_fp(): what tells a change */
	u32 ck_copied;		/* where the checkpoint cut the byte streams */
	u32 ck_write;
	u16 blob_len;
	u16 port;		/* the socket's local port: its service's */
	bool ckpt;		/* the service attached state */
	u8 blob[];
};

/* Sessions one store tracks at most (bounds a namespace's memory). */
#define FTVM_SESS_MAX		(1U << 20)

int ftvm_state_init(void);
void ftvm_state_uninit(void);

struct ftvm_sstore *ftvm_sstore(const struct net *net);
u64 ftvm_sock_cookie(struct sock *sk);

/*
 * Attach @blob to the restored socket @sk, cut at its current sequence
 * numbers.  lock_sock(sk) held.  Returns the entry's cookie via @cookie.
 */
int ftvm_state_attach(struct sock *sk, const void *blob, u16 len,
		      u64 *cookie);
void ftvm_state_detach(struct net *net, u64 cookie);

int ftvm_state_dump_start(struct netlink_callback *cb);
int ftvm_state_dump(struct sk_buff *skb, struct netlink_callback *cb);
int ftvm_state_dump_done(struct netlink_callback *cb);
int ftvm_ckpt_set_doit(struct sk_buff *skb, struct genl_info *info);
int ftvm_ckpt_get_doit(struct sk_buff *skb, struct genl_info *info);

#endif /* _FTVM_STATE_H */
