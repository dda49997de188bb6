/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Strict output commit (commit.c): what a VM sends for a session of a
 * strict service leaves the host once the session's state that covers
 * it is staged on another live VM.
 */
#ifndef _FTVM_COMMIT_H
#define _FTVM_COMMIT_H

#include <linux/netdevice.h>
#include <net/genetlink.h>

struct ftvm_rec;
struct ftvm_tuple;

/* A TCP segment as the hooks see it: what it needs covered (commit.c). */
struct ftvm_seg {
	u32 end;			/* seq + payload (a FIN needs nothing) */
	u32 ack;
	bool has_ack, syn, rst;
};

bool ftvm_seg_parse(struct sk_buff *skb, u8 pf, struct ftvm_tuple *t,
		    struct ftvm_seg *g);

int ftvm_commit_init(void);
void ftvm_commit_uninit(void);

int ftvm_commit_set_doit(struct sk_buff *skb, struct genl_info *info);
int ftvm_commit_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb);
int ftvm_commit_sess_start(struct netlink_callback *cb);
int ftvm_commit_sess_dumpit(struct sk_buff *skb, struct netlink_callback *cb);
int ftvm_commit_sess_done(struct netlink_callback *cb);

/*
 * The staged store of VM namespace @vm, asked from registry namespace
 * @host (NULL: by no one), now holds @r for its session (stage.c, with
 * its stage_lock held), or no longer holds @key's (activated, discarded).
 */
void ftvm_commit_staged(struct net *host, struct net *vm,
			const struct ftvm_rec *r);
void ftvm_commit_unstaged(struct net *host, struct net *vm,
			  const struct ftvm_tuple *key);
/*
 * A service checkpointed @sk (state.c), its write_seq then @ck_write: a
 * commit may be waiting for it.
 */
void ftvm_commit_ckpt(struct sock *sk, u32 ck_write);
/* @dev is being unregistered (RTNL): drop the packets it holds. */
void ftvm_commit_dev_gone(struct net_device *dev);

#endif
