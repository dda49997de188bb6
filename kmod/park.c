// SPDX-License-Identifier: GPL-2.0
/*
 * Parked packets: a packet a netfilter hook stole, kept with the hook's
 * state so that it can go on later exactly where the hook took it (its
 * okfn: the hooks after the stealing one are skipped), or be dropped.
 * Strict output commit (commit.c) parks a primary's output until its
 * backup knows it; the ingress hold (hold.c) parks a client's segment
 * until its session is live in the VM.  Each keeps its entries in its
 * own cache and lists, under its own locks; these helpers are called
 * with none held.
 */
#include "park.h"

/* Park @skb, stolen by a hook at @state, in @p (not on any list yet). */
void ftvm_park(struct ftvm_parked *p, struct sk_buff *skb,
	       const struct nf_hook_state *state)
{
	p->skb = skb;
	p->state = *state;
	dev_hold(state->in);
}

/* Free @p (its packet let go or dropped already) to @cache. */
static void ftvm_park_free(struct ftvm_parked *p, struct kmem_cache *cache)
{
	dev_put(p->state.in);
	kmem_cache_free(cache, p);
}

/*
 * Let every packet of @list go on, in order, where its hook took it,
 * with bottom halves off as in the hook, and free the entries.
 */
void ftvm_park_reinject(struct list_head *list, struct kmem_cache *cache)
{
	struct ftvm_parked *p, *tmp;

	list_for_each_entry_safe(p, tmp, list, node) {
		list_del(&p->node);
		local_bh_disable();
		rcu_read_lock();
		p->state.okfn(p->state.net, p->state.sk, p->skb);
		rcu_read_unlock();
		local_bh_enable();
		ftvm_park_free(p, cache);
	}
}

/* Drop every packet of @list and free the entries. */
void ftvm_park_drop(struct list_head *list, struct kmem_cache *cache)
{
	struct ftvm_parked *p, *tmp;

	list_for_each_entry_safe(p, tmp, list, node) {
		list_del(&p->node);
		kfree_skb(p->skb);
		ftvm_park_free(p, cache);
	}
}
