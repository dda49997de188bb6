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
 * Failover rewrites placements (at most 4095, whatever the number of
 * sessions), never sessions.  Anything that is not parsed or not for a service goes to
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
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

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
 * and the session entry is created.  Fills @s; XDP_REDIRECT to go on,
 * *@created set if this packet created the entry (not if another CPU
 * won the race, nor if the map refused it).
 */
static __always_inline int new_session(const struct ftvm_pkt *pkt,
				       struct ftvm_session *s, int *created)
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
	s->seen_ns = s->created_ns;
	s->seen_jiffies = bpf_jiffies64();

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
		*created = 1;
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
 * The primary has just failed and ftd has not switched yet: ftvm.ko
 * reported it (FTVM_VM_F_FAILED, set by ftvm_on_vm_failed below as the
 * device starts going down, before it drops a frame), or its devmap slot
 * is empty (the kernel empties the slot of a device being unregistered;
 * ftctl and ftd fill every VM's).  If the backup can take them, the
 * primary's sessions go there, and its ftvm.ko, armed by the failure
 * before the flag was set, holds each segment until its session is live
 * there (kmod/hold.c).  The packet was rewritten for the primary
 * already: only the destination changes.
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
	if (!bvm || !bvm->ifindex || (bvm->flags & FTVM_VM_F_FAILED) ||
	    (void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(eth->h_dest, bvm->mac, ETH_ALEN);
	return bpf_redirect_map(&ftvm_devmap, backup, XDP_ABORTED);
}

/*
 * A packet of @sess came: its seen_ns, which ftd reads to find idle UDP
 * sessions (forget-idle-udp), and "ftctl session list" shows.  A grain
 * apart at most (FTVM_SEEN_GRAIN_JIFFIES): a packet reads jiffies, one
 * load; only once a grain does it read the clock and write the entry,
 * so that a busy session's entry is not written for every packet
 * (reading the coarse clock per packet cost a hit a fifth more in
 * bench/steer).  CPUs racing here store times a moment apart: either
 * will do.
 */
static __always_inline void seen(struct ftvm_session *sess)
{
	__u64 j = bpf_jiffies64();

	if (j - sess->seen_jiffies >= FTVM_SEEN_GRAIN_JIFFIES) {
		sess->seen_jiffies = j;
		sess->seen_ns = bpf_ktime_get_coarse_ns();
	}
}

static __always_inline int pkt_tcp(const struct ftvm_pkt *pkt)
{
	return (pkt->family == FTVM_FAMILY_V4 ? pkt->k4.proto :
		pkt->flow.proto) == IPPROTO_TCP;
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
				  enum steer_outcome o, __u64 bytes, int created)
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
		vc->new_sessions += created;
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
	int created = 0;
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
		seen(sess);
	} else {
		act = new_session(&pkt, &s, &created);
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
	/*
	 * Flagged failed: its backup, if that can take it (to_backup()).
	 * A TCP session only while the backups are armed: past that (ftd
	 * has still not switched: it died, say) a backup would reset a
	 * connection it has not staged, so the primary's frames are lost
	 * instead, and sent again.  A UDP datagram needs no socket of
	 * its own there.
	 */
	if ((vm->flags & FTVM_VM_F_FAILED) && cur.backup &&
	    (!pkt_tcp(&pkt) || bpf_ktime_get_ns() < vm->failed_until) &&
	    to_backup(ctx, cur.backup) == XDP_REDIRECT)
		goto backup;
	/* An empty slot returns XDP_ABORTED (the flags' action bits). */
	act = bpf_redirect_map(&ftvm_devmap, vm_id, XDP_ABORTED);
	if (act == XDP_REDIRECT) {
		count(s.service, vm_id, STEERED, bytes, created);
		return XDP_REDIRECT;
	}
	/*
	 * The slot is empty: the device is gone.  Flagged, the backup was
	 * tried, or its hold is over; not flagged (no ftd hooking ftvm.ko),
	 * the backup is worth it.
	 */
	if (!(vm->flags & FTVM_VM_F_FAILED) && cur.backup &&
	    to_backup(ctx, cur.backup) == XDP_REDIRECT)
		goto backup;
	count(s.service, vm_id, STEERED_BY_IFINDEX, bytes, created);
	return bpf_redirect(vm->ifindex, 0);
backup:
	count(s.service, cur.backup, STEERED, bytes, created);
	dp_count(FTVM_DP_TO_BACKUP);
	return XDP_REDIRECT;
}

/*
 * Redirect errors.  bpf_redirect_map() and bpf_redirect() only choose a
 * target: the kernel sends the frame after the program has returned, and
 * when that fails (target device down, no XDP transmit on it, a stale
 * ifindex, its ring full when the bulk queue is flushed) it says so
 * through two tracepoints, not to the program.  The two programs below
 * count those failures per VM (redirect_err) and in total
 * (FTVM_DP_REDIRECT_ERR), for the redirects of the ftvm_steer copies of
 * this data plane only.  There is no packet there, so no service: the
 * counter is the VM's alone.
 *
 * They run only when attached ("ftctl attach", "ftctl target set", ftd:
 * links pinned next to the maps); "ip link ... xdp obj" loads the XDP
 * program alone.  The kernel structures are read with CO-RE.
 */
struct bpf_map___ftvm {
	__u32 id;
} __attribute__((preserve_access_index));

struct bpf_prog_aux___ftvm {
	__u32 used_map_cnt;
	struct bpf_map___ftvm **used_maps;
} __attribute__((preserve_access_index));

struct bpf_prog___ftvm {
	struct bpf_prog_aux___ftvm *aux;
} __attribute__((preserve_access_index));

struct bpf_xdp_entity___ftvm {
	struct bpf_prog___ftvm *prog;
} __attribute__((preserve_access_index));

struct net_device___ftvm {
	int ifindex;
	struct bpf_xdp_entity___ftvm xdp_state[3];
} __attribute__((preserve_access_index));

/* ftvm_steer uses about 14 maps; a program with more is not ours. */
#define STEER_MAX_MAPS	32

/*
 * Is @prog a copy of ftvm_steer on this data plane?  It is if it uses
 * our ftvm_vms: every copy, whoever loaded it, shares the pinned map,
 * and a data plane pinned elsewhere (or a test's private one) has its
 * own.
 */
static __always_inline int steers_here(const struct bpf_prog___ftvm *prog)
{
	const struct bpf_map___ftvm *ours = (const void *)&ftvm_vms;
	struct bpf_map___ftvm **maps, *m;
	__u32 n, i, id, vms_id = ours->id;

	if (!prog)
		return 0;
	n = BPF_CORE_READ(prog, aux, used_map_cnt);
	maps = BPF_CORE_READ(prog, aux, used_maps);
	for (i = 0; i < STEER_MAX_MAPS && i < n; i++) {
		if (bpf_probe_read_kernel(&m, sizeof(m), &maps[i]) || !m)
			return 0;
		id = BPF_CORE_READ(m, id);
		if (id == vms_id)
			return 1;
	}
	return 0;
}

static __always_inline void count_redirect_err(__u32 vm_id, __u64 frames)
{
	struct ftvm_counters *vc;
	__u32 stat = FTVM_DP_REDIRECT_ERR;
	__u64 *v;

	v = bpf_map_lookup_elem(&ftvm_dp_stats, &stat);
	if (v)
		*v += frames;
	if (vm_id < FTVM_VM_ID_MIN || vm_id > FTVM_VM_ID_MAX)
		return;
	vc = bpf_map_lookup_elem(&ftvm_vm_stats, &vm_id);
	if (vc)
		vc->redirect_err += frames;
}

/* The VM whose host-side device is @ifindex; 0: none. */
static __always_inline __u32 vm_of_ifindex(__u32 ifindex)
{
	__u32 *vm = bpf_map_lookup_elem(&ftvm_vm_by_ifindex, &ifindex);

	return vm ? *vm : 0;
}

/*
 * A redirect refused when the program returned: the target could not
 * take the frame (down, no ndo_xdp_xmit, too big, gone).  For a devmap
 * redirect @index is the devmap key, the VM id itself; for
 * bpf_redirect() (map_type 0, map_id INT_MAX) it is the ifindex.
 */
SEC("tp_btf/xdp_redirect_err")
int BPF_PROG(ftvm_redirect_err, const void *dev,
	     const struct bpf_prog___ftvm *xdp, const void *tgt, int err,
	     enum bpf_map_type map_type, __u32 map_id, __u32 index)
{
	__u32 vm_id = 0;

	if (!steers_here(xdp))
		return 0;
	if (map_type == BPF_MAP_TYPE_DEVMAP)
		vm_id = index;
	else if (map_type == BPF_MAP_TYPE_UNSPEC && map_id == 0x7fffffff)
		vm_id = vm_of_ifindex(index);
	count_redirect_err(vm_id, 1);
	return 0;
}

/*
 * A devmap bulk queue flushed (native XDP, bpf_redirect() included):
 * @drops frames the target's ndo_xdp_xmit() did not take (its ring
 * full, its peer not ready).  The queue names no program, only the
 * receiving device: ours if an ftvm_steer of this data plane runs on it.
 */
SEC("tp_btf/xdp_devmap_xmit")
int BPF_PROG(ftvm_devmap_xmit, const struct net_device___ftvm *from_dev,
	     const struct net_device___ftvm *to_dev, int sent, int drops,
	     int err)
{
	if (drops <= 0)
		return 0;
	/* Native mode (XDP_MODE_DRV); generic mode (_SKB) has no bulk queue. */
	if (!steers_here(BPF_CORE_READ(from_dev, xdp_state[1].prog)))
		return 0;
	count_redirect_err(vm_of_ifindex(BPF_CORE_READ(to_dev, ifindex)),
			   (__u64)drops);
	return 0;
}

/*
 * A VM failed: ftvm.ko's tracepoint ftvm:ftvm_vm_failed (kmod/trace.h),
 * which fires under RTNL once the registry has marked the VM failed and
 * armed the other VMs' ingress holds, and for a device as it starts
 * going down, before it drops a frame.  From here on ftvm_steer sends
 * the VM's sessions to their backups (to_backup()), where ftvm.ko holds
 * each segment until ftd has made the session live; without this, what
 * clients sent between the failure and ftd's switch was lost and waited
 * for their retransmission timers.  Only for as long as the backups are
 * armed (@held_ns from now; 0: none is): a backup no longer armed would
 * reset a session it has not staged, which ftd, if it died in the
 * failover, makes live only when it is back.
 *
 * Attached by ftd (dp_watch_failures() in user/ftd/dataplane.c), which sets
 * ftvm_registry_netns to its namespace's inode number after the load:
 * the tracepoint fires for every registry of the host, and only this
 * data plane's own (the registry in ftd's namespace, whose VM ids are
 * ftvm_vms') counts.  0 (as loaded): none.  The link is ftd's, never
 * pinned: a pin would hold the module, and without ftd nobody would
 * make the held sessions live.  No tracepoint in the section name: the
 * skeleton's attach (test_steer) must not need ftvm.ko.
 */
struct ns_common___ftvm {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net___ftvm {
	struct ns_common___ftvm ns;
} __attribute__((preserve_access_index));

__u32 ftvm_registry_netns;

SEC("raw_tp")
int BPF_PROG(ftvm_on_vm_failed, const struct net___ftvm *net, __u32 id,
	     __u32 reason, __u64 held_ns)
{
	__u32 netns = ftvm_registry_netns;
	struct ftvm_vm *vm;

	if (!netns || BPF_CORE_READ(net, ns.inum) != netns)
		return 0;
	vm = bpf_map_lookup_elem(&ftvm_vms, &id);
	if (!vm || !vm->ifindex)
		return 0;
	/*
	 * The end first: a packet that sees the flag before it reads the
	 * end of an earlier failure (or 0) at worst stays with the primary.
	 * Only these fields of the entry change; unfencing the VM (back in
	 * service: ftd, ftctl) clears the flag.
	 */
	vm->failed_until = held_ns ? bpf_ktime_get_ns() + held_ns : 0;
	__asm__ __volatile__("" ::: "memory");	/* x86 keeps stores in order */
	vm->flags |= FTVM_VM_F_FAILED;
	return 0;
}

char _license[] SEC("license") = "GPL";
