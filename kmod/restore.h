/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Session restore (restore.c), the staged store (stage.c) and the nudge
 * of restored connections (nudge.c).
 */
#ifndef _FTVM_RESTORE_H
#define _FTVM_RESTORE_H

#include <linux/in6.h>
#include <linux/list.h>
#include <linux/rhashtable-types.h>
#include <net/genetlink.h>

#include "state.h"

union ftvm_addr {
	__be32 v4;
	struct in6_addr v6;
};

/*
 * A session's 5-tuple: what names it in the VM's namespace, and the key
 * of the staged store.  Hashed and compared as bytes, so always built
 * from a zeroed struct (no uninitialised padding, unused address bytes
 * zero).
 */
struct ftvm_tuple {
	union ftvm_addr laddr, raddr;
	u16 lport, rport;		/* host order */
	u8 proto, family;
	u8 zero[2];
};

/* A parsed record; staged ones live in the VM namespace's store. */
struct ftvm_rec {
	union {
		struct list_head node;	/* a request's list, or the store's */
		struct rcu_head rcu;	/* being freed: off every list */
	};
	struct rhash_head hnode;	/* staged: the store's table */
	struct ftvm_tuple key;
	u8 snd_wscale, rcv_wscale;
	u16 mss;
	u16 blob_len;
	u8 opts;			/* FTVM_TCP_OPT_* */
	/*
	 * One byte: written by the parse (stale), then only under the
	 * store's stage_lock (the others, stage.c's).
	 */
	u8 stale:1;			/* FTVM_SESS_F_STALE */
	u8 picked:1;			/* named by the request */
	u8 inserted:1;		/* added by the request */
	u8 keep_old:1;		/* the staged one wins */
	u8 held:1;			/* a client's segment waits */
	u32 snd_una, copied_seq, sndq_len, rcvq_len;
	u32 snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup;
	u32 ts_val, sndbuf, rcvbuf;
	u32 srtt_us, rttvar_us, cwnd, ssthresh;	/* 0: not known */
	/* Built, not yet committed. */
	struct socket *sock;
	struct sock *listener;
	struct request_sock *req;
	u64 cookie;			/* nonzero: its state was attached */
	u64 src_cookie;			/* the socket it was captured from */
	const struct nlattr *attr;	/* in the request; NULL once staged */
	struct ftvm_rec *old;		/* stage.c: the record it replaces */
	u8 data[];			/* send queue, receive queue, blob */
};

/* Queue bytes per record, at most. */
#define FTVM_QUEUE_MAX		(16U << 20)

/* Why an activation, a nudge or a retire refuses records and queues. */
#define FTVM_NOT_RECORD	"records are restored or staged by session-restore"
#define FTVM_NOT_NUDGE	"a nudge takes the VM and the sessions' 5-tuples only"
#define FTVM_NOT_RETIRE	"a retire takes the VM and the sessions' 5-tuples only"
#define FTVM_NOT_GONE	"a gone check takes the VM and the sessions' 5-tuples only"

/* restore.c */
int ftvm_restore_doit(struct sk_buff *skb, struct genl_info *info);
int ftvm_tuple_parse(const struct nlattr *nest, struct ftvm_tuple *t,
		     struct netlink_ext_ack *extack);
bool ftvm_tuple_mapped(const struct ftvm_tuple *t);
void ftvm_tuple_wire(const struct ftvm_tuple *t, struct ftvm_tuple *w);
void ftvm_tuple_to_mapped(const struct ftvm_tuple *t, struct ftvm_tuple *m);
void ftvm_rec_free(struct ftvm_rec *r);

/* Where a record's send stream ends (write_seq), and its receive stream
 * (rcv_nxt): what it covers of what the connection sent and received.
 */
static inline u32 ftvm_rec_snd_end(const struct ftvm_rec *r)
{
	return r->snd_una + r->sndq_len;
}

static inline u32 ftvm_rec_rcv_end(const struct ftvm_rec *r)
{
	return r->copied_seq + r->rcvq_len;
}
void ftvm_recs_free(struct list_head *list);
int ftvm_recs_restore(struct net *net, struct list_head *list, bool quiet,
		      struct netlink_ext_ack *extack);
struct sk_buff *ftvm_restore_reply_new(unsigned int tuples);
int ftvm_restore_reply(struct sk_buff *msg, struct genl_info *info, u8 cmd,
		       u32 count, const u32 *staged);
void ftvm_restore_reply_fill(struct sk_buff *msg, struct genl_info *info,
			     u8 cmd, u32 count, const u32 *staged,
			     const struct list_head *named);
int ftvm_tuple_put(struct sk_buff *skb, const struct ftvm_tuple *t);

/* state.c: one session's record, captured in the kernel (commit.c). */
struct ftvm_rec *ftvm_rec_capture(struct net *net, const struct ftvm_tuple *t,
				  bool *stale);
void ftvm_sock_tuple(struct sock *sk, struct ftvm_tuple *t);

/* stage.c: the store's staged records.  Store init/exit (state.c). */
int ftvm_stage_init(struct ftvm_sstore *st);
void ftvm_stage_uninit(struct ftvm_sstore *st);
int ftvm_stage(struct net *host, struct net *net, struct list_head *list,
	       struct netlink_ext_ack *extack, u32 *staged);
/*
 * Whether @net has a record staged for @key (the VM's view, as on the
 * wire): the ingress hold's question, asked locklessly (RCU; hold.c).
 */
bool ftvm_stage_has(struct net *net, const struct ftvm_tuple *key);
int ftvm_activate_doit(struct sk_buff *skb, struct genl_info *info);

/* nudge.c */
int ftvm_nudge_doit(struct sk_buff *skb, struct genl_info *info);
int ftvm_retire_doit(struct sk_buff *skb, struct genl_info *info);
int ftvm_gone_doit(struct sk_buff *skb, struct genl_info *info);
struct sock *ftvm_sock_lookup(struct net *net, const struct ftvm_tuple *t);

#endif
