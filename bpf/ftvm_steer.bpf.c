// SPDX-License-Identifier: GPL-2.0
/*
 * ftvm_steer: XDP session steering for the host NIC.
 *
 * Every TCP/UDP packet of a registered service goes to the VM that holds
 * the primary state of its session:
 *
 *	5-tuple --ftvm_sessions{4,6}--> placement --ftvm_placements--> VM id
 *	VM id --ftvm_vms--> MAC, --ftvm_devmap--> device
 *
 * Every map but the devmap is pinned by name and shared by every loaded
 * copy of the program; the devmap is each copy's own (see below).
 *
 * A session's first packet finds no entry: the service's Maglev row
 * picks a placement from the flow hash and the entry is created here,
 * so later changes to the Maglev row never move an existing session.
 * Failover rewrites placements (at most VMs x VMs of them), never
 * sessions.  Anything that is not parsed or not for a service goes to
 * the stack untouched.  Documentation/dataplane.rst has the details.
 *
 * The hit path is what costs: parse, one lookup on a 16-byte key (IPv4;
 * IPv6 keys are 40 bytes), two array lookups (placement, VM), the MAC
 * rewrite, the redirect, and one per-CPU counter block each for the
 * service and the VM, both touched once, after the verdict.
 *
 * Loadable by libbpf (ftctl attach) or by iproute2:
 *	ip link set dev DEV xdp obj ftvm_steer.bpf.o sec xdp
 */
#include <linux/bpf.h>
#include <linux/errno.h>
#include <bpf/bpf_helpers.h>

#include "ftvm_maps.h"
#include "parsing.h"

/*
 * Redirect targets: VM id -> host-side ifindex, a copy of ftvm_vms'
 * ifindexes that bpf_redirect_map() can bulk-transmit through.
 *
 * Not pinned: the kernel adds BPF_F_RDONLY_PROG to every devmap it
 * creates and refuses that flag at creation, so a pinned devmap could
 * be created by a first "ip link ... xdp obj" or reused by a second, but
 * never both (libbpf 1.1 reuses a pin only when the flags match the
 * declaration).  Each loaded copy of the program has its own devmap
 * instead; "ftctl attach" fills it before attaching, and ftd and ftctl
 * keep every ftvm_steer devmap that shares this ftvm_vms in step
 * (ftvm_dp_devmaps_sync()).  Until a slot is filled, as right after
 * iproute2 loads the program, the packet is redirected by ifindex
 * (bpf_redirect()), which is correct but skips the devmap's bulking;
 * FTVM counters count it as devmap_miss.
 */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, FTVM_VM_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} ftvm_devmap SEC(".maps");

/*
 * A session's first packet: the service's Maglev row picks a placement
 * and the session entry is created.  Fills @s; XDP_REDIRECT to go on.
 */
static __always_inline int new_session(const struct ftvm_pkt *pkt,
				       struct ftvm_session *s)
{
	struct ftvm_service_key sk;
	struct ftvm_session *winner;
	struct ftvm_counters *sc;
	struct ftvm_service *svc;
	struct ftvm_flow flow;
	__u32 slot, *pid;
	void *sessions;
	const void *key;
	long err;

	ftvm_pkt_flow(pkt, &flow);
	__builtin_memcpy(sk.vaddr, flow.daddr, sizeof(sk.vaddr));
	sk.port = flow.dport;
	sk.proto = flow.proto;
	sk.family = flow.family;
	svc = bpf_map_lookup_elem(&ftvm_services, &sk);
	if (!svc) {
		dp_count(FTVM_DP_NOT_SERVICE);
		return XDP_PASS;
	}
	s->service = svc->index;
	if (s->service >= FTVM_MAX_SERVICES)
		return XDP_PASS;
	sc = bpf_map_lookup_elem(&ftvm_svc_stats, &s->service);
	slot = s->service * FTVM_MAGLEV_SIZE +
	       ftvm_flow_hash(&flow) % FTVM_MAGLEV_SIZE;
	pid = bpf_map_lookup_elem(&ftvm_maglev, &slot);
	if (!pid || !*pid) {
		/* No live placement: let the stack answer (or not). */
		if (sc)
			sc->pass++;
		return XDP_PASS;
	}
	s->placement = *pid;
	s->created_ns = bpf_ktime_get_ns();

	if (pkt->family == FTVM_FAMILY_V4) {
		sessions = &ftvm_sessions4;
		key = &pkt->k4;
	} else {
		sessions = &ftvm_sessions6;
		key = &pkt->flow;
	}
	err = bpf_map_update_elem(sessions, key, s, BPF_NOEXIST);
	if (!err) {
		struct ftvm_new_session ev = { .flow = flow, .s = *s };

		dp_count(FTVM_DP_SESSION_NEW);
		if (sc)
			sc->new_sessions++;
		if (bpf_ringbuf_output(&ftvm_new_sessions, &ev, sizeof(ev), 0))
			dp_count(FTVM_DP_EVENT_LOST);
	} else if (err == -EEXIST) {
		/* Another CPU created it first: its choice stands. */
		dp_count(FTVM_DP_SESSION_RACE);
		winner = bpf_map_lookup_elem(sessions, key);
		if (winner)
			*s = *winner;
	} else {
		/* Steer this packet anyway; the next one tries again. */
		dp_count(FTVM_DP_SESSION_FULL);
	}
	return XDP_REDIRECT;
}

/*
 * Rewrite the Ethernet header for the VM: the VM's MAC as destination,
 * the address the frame was sent to (ours) as source, VLAN tags popped.
 */
static __always_inline int rewrite_l2(struct xdp_md *ctx, __u32 tags,
				      __be16 l3_proto, const __u8 *vm_mac)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u8 our_mac[ETH_ALEN];

	if ((void *)(eth + 1) > data_end)
		return -1;
	if (!tags) {
		__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
		__builtin_memcpy(eth->h_dest, vm_mac, ETH_ALEN);
		return 0;
	}
	__builtin_memcpy(our_mac, eth->h_dest, ETH_ALEN);
	if (bpf_xdp_adjust_head(ctx, (int)(tags * sizeof(struct ftvm_vlan_hdr))))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return -1;
	__builtin_memcpy(eth->h_dest, vm_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, our_mac, ETH_ALEN);
	eth->h_proto = l3_proto;
	return 0;
}

/*
 * The primary's devmap slot is empty.  If the backup's is filled, the
 * primary's device is gone (the kernel empties the slot of a device
 * being unregistered; ftctl and ftd fill every VM's): the VM has just
 * died and ftd has not switched yet.  Its sessions go to the backup,
 * whose ftvm.ko, armed by the failure, holds each segment until its
 * session is live there (kmod/hold.c).  The packet was rewritten for
 * the primary already: only the destination changes.
 */
static __always_inline long to_backup(struct xdp_md *ctx, __u32 backup)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ftvm_vm *bvm;

	if (!bpf_map_lookup_elem(&ftvm_devmap, &backup))
		return XDP_ABORTED;
	bvm = bpf_map_lookup_elem(&ftvm_vms, &backup);
	if (!bvm || !bvm->ifindex || (void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(eth->h_dest, bvm->mac, ETH_ALEN);
	return bpf_redirect_map(&ftvm_devmap, backup, XDP_ABORTED);
}

/* Counter outcomes of a packet with a placement. */
enum steer_outcome {
	STEERED,
	STEERED_BY_IFINDEX,	/* steered, the devmap slot was empty */
	DROPPED,
};

/*
 * Count a packet once in its service's and once in its VM's per-CPU
 * block (the VM's only if it has one: an unregistered VM is counted
 * by the service alone).
 */
static __always_inline void count(__u32 service, __u32 vm_id,
				  enum steer_outcome o, __u64 bytes, int fresh)
{
	struct ftvm_counters *sc, *vc;

	sc = bpf_map_lookup_elem(&ftvm_svc_stats, &service);
	vc = vm_id ? bpf_map_lookup_elem(&ftvm_vm_stats, &vm_id) : NULL;
	if (o == DROPPED) {
		if (sc)
			sc->drop++;
		if (vc)
			vc->drop++;
		return;
	}
	if (sc) {
		sc->packets++;
		sc->bytes += bytes;
		sc->devmap_miss += o == STEERED_BY_IFINDEX;
	}
	if (vc) {
		vc->packets++;
		vc->bytes += bytes;
		vc->new_sessions += fresh;
		vc->devmap_miss += o == STEERED_BY_IFINDEX;
	}
}

SEC("xdp")
int ftvm_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = data_end - data;
	struct ftvm_placement *pl, cur;
	struct ftvm_session *sess, s;
	__u64 both;
	struct ftvm_pkt pkt;
	struct ftvm_vm *vm;
	__u32 vm_id;
	long act;
	int res;

	res = ftvm_parse(data, data_end, &pkt);
	if (res != PARSE_OK) {
		dp_count(res);
		return XDP_PASS;
	}

	if (pkt.family == FTVM_FAMILY_V4)
		sess = bpf_map_lookup_elem(&ftvm_sessions4, &pkt.k4);
	else
		sess = bpf_map_lookup_elem(&ftvm_sessions6, &pkt.flow);
	if (sess) {
		s.placement = sess->placement;
		s.service = sess->service;
	} else {
		act = new_session(&pkt, &s);
		if (act != XDP_REDIRECT)
			return act;
	}

	pl = bpf_map_lookup_elem(&ftvm_placements, &s.placement);
	/* One load: the whole placement decides, or none. */
	both = pl ? *(volatile __u64 *)pl : 0;
	__builtin_memcpy(&cur, &both, sizeof(cur));
	vm_id = cur.primary;
	vm = vm_id ? bpf_map_lookup_elem(&ftvm_vms, &vm_id) : NULL;
	if (!vm || !vm->ifindex) {
		count(s.service, 0, DROPPED, 0, 0);
		return XDP_DROP;
	}
	if (rewrite_l2(ctx, pkt.vlan_tags, pkt.l3_proto, vm->mac)) {
		count(s.service, vm_id, DROPPED, 0, 0);
		return XDP_DROP;
	}
	/* An empty slot returns XDP_ABORTED (the flags' action bits). */
	act = bpf_redirect_map(&ftvm_devmap, vm_id, XDP_ABORTED);
	if (act == XDP_REDIRECT) {
		count(s.service, vm_id, STEERED, bytes, !sess);
		return XDP_REDIRECT;
	}
	if (cur.backup && to_backup(ctx, cur.backup) == XDP_REDIRECT) {
		count(s.service, cur.backup, STEERED, bytes, !sess);
		dp_count(FTVM_DP_TO_BACKUP);
		return XDP_REDIRECT;
	}
	count(s.service, vm_id, STEERED_BY_IFINDEX, bytes, !sess);
	return bpf_redirect(vm->ifindex, 0);
}

char _license[] SEC("license") = "GPL";
