/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Parked packets (park.c): what a netfilter hook stole (NF_STOLEN) to
 * let go later, where the hook took it, or to drop.
 */
#ifndef _FTVM_PARK_H
#define _FTVM_PARK_H

#include <linux/list.h>
#include <linux/netfilter.h>
#include <linux/skbuff.h>
#include <linux/slab.h>

/*
 * The head of every parked entry: the strict commit's held segments
 * (commit.c) and the ingress hold's (hold.c) begin with it, so that the
 * helpers below free an entry to its owner's cache through it.
 * A parked packet holds its input device (@state.in) until it is let
 * go or dropped.
 */
struct ftvm_parked {
	struct list_head node;
	struct sk_buff *skb;
	struct nf_hook_state state;	/* where to let it go */
};

/* An entry of a cache of @type, whose member @member is its ftvm_parked. */
#define FTVM_PARKED_HEAD(type, member) \
	static_assert(offsetof(type, member) == 0, \
		      #type " must begin with its struct ftvm_parked")

void ftvm_park(struct ftvm_parked *p, struct sk_buff *skb,
	       const struct nf_hook_state *state);
void ftvm_park_reinject(struct list_head *list, struct kmem_cache *cache);
void ftvm_park_drop(struct list_head *list, struct kmem_cache *cache);

#endif /* _FTVM_PARK_H */
