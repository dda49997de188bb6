// SPDX-License-Identifier: GPL-2.0
/*
 * ftvm_fence: egress fencing, a tc program for the host side of every
 * VM-facing device (tap or veth), on ingress: what the VM sends.
 *
 * A VM's reply for a session goes out only while the VM is the primary
 * of that session's placement.  A VM marked fenced (declared failed) sends
 * nothing from a service address at all, not even for sessions the data
 * plane does not know, and none of its IP fragments (they cannot be told
 * apart).  All other traffic (ARP, the VM's own connections, replication)
 * passes.  The device's VM is found in ftvm_vm_by_ifindex; a device
 * that is not there is not fenced.
 *
 *	tc qdisc add dev DEV clsact
 *	tc filter add dev DEV ingress bpf da obj ftvm_fence.bpf.o sec tc
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "ftvm_maps.h"
#include "parsing.h"

/* Enough for Ethernet, two tags, IPv6 and its extensions, TCP. */
#define FENCE_PULL_LEN	256

static __always_inline int fence_drop(struct ftvm_counters *vc)
{
	if (vc)
		vc->fence_drop++;
	dp_count(FTVM_DP_FENCE_DROP);
	return TC_ACT_SHOT;
}

SEC("tc")
int ftvm_fence(struct __sk_buff *skb)
{
	struct ftvm_service_key sk;
	struct ftvm_counters *vc;
	struct ftvm_session *sess;
	struct ftvm_placement *pl;
	struct ftvm_flow flow;
	struct ftvm_pkt pkt;
	struct ftvm_vm *vm;
	__u32 ifindex = skb->ifindex, *vm_id;
	void *data, *data_end;
	int fenced;
	int res;

	vm_id = bpf_map_lookup_elem(&ftvm_vm_by_ifindex, &ifindex);
	if (!vm_id)
		return TC_ACT_OK;
	vm = bpf_map_lookup_elem(&ftvm_vms, vm_id);
	fenced = vm && (vm->flags & FTVM_VM_F_FENCED);
	vc = bpf_map_lookup_elem(&ftvm_vm_stats, vm_id);

	/* Headers may sit in fragments of a non-linear skb. */
	if (skb->data_end - skb->data < FENCE_PULL_LEN)
		bpf_skb_pull_data(skb, skb->len < FENCE_PULL_LEN ?
				  skb->len : FENCE_PULL_LEN);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;

	res = ftvm_parse(data, data_end, &pkt);
	if (res == FTVM_DP_FRAGMENT && fenced)
		return fence_drop(vc);
	if (res != PARSE_OK)
		return TC_ACT_OK;

	/* Only what the VM sends from a service address is fenced. */
	ftvm_pkt_flow(&pkt, &flow);
	__builtin_memcpy(sk.vaddr, flow.saddr, sizeof(sk.vaddr));
	sk.port = flow.sport;
	sk.proto = flow.proto;
	sk.family = flow.family;
	if (!bpf_map_lookup_elem(&ftvm_services, &sk))
		return TC_ACT_OK;
	if (fenced)
		return fence_drop(vc);

	/* The session as the client opened it. */
	if (pkt.family == FTVM_FAMILY_V4) {
		struct ftvm_flow4 rev4 = {
			.saddr = pkt.k4.daddr, .daddr = pkt.k4.saddr,
			.sport = pkt.k4.dport, .dport = pkt.k4.sport,
			.proto = pkt.k4.proto,
		};

		sess = bpf_map_lookup_elem(&ftvm_sessions4, &rev4);
	} else {
		struct ftvm_flow rev6;

		__builtin_memcpy(rev6.saddr, flow.daddr, sizeof(rev6.saddr));
		__builtin_memcpy(rev6.daddr, flow.saddr, sizeof(rev6.daddr));
		rev6.sport = flow.dport;
		rev6.dport = flow.sport;
		rev6.proto = flow.proto;
		rev6.family = flow.family;
		rev6.pad = 0;
		sess = bpf_map_lookup_elem(&ftvm_sessions6, &rev6);
	}
	if (!sess)
		return TC_ACT_OK;
	pl = bpf_map_lookup_elem(&ftvm_placements, &sess->placement);
	if (!pl || *(volatile __u32 *)&pl->primary != *vm_id)
		return fence_drop(vc);
	if (vc)
		vc->fence_pass++;
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
