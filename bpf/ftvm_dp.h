/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR MIT) */
/*
 * The ftvm data plane ABI: what the BPF programs (ftvm_steer, ftvm_fence)
 * and userspace (user/lib/steer.c) both see.  Documentation/dataplane.rst
 * explains the design; keep the two in step.
 *
 * Every map but ftvm_steer's devmap is pinned by name under
 * FTVM_DP_PIN_DIR, the directory iproute2 uses for "pinning by name", so
 * that
 *
 *	ip link set dev DEV xdp obj bpf/ftvm_steer.bpf.o sec xdp
 *
 * and "ftctl attach" share one set of maps.  Changing any structure or
 * limit below changes the ABI: bump FTVM_DP_ABI_VERSION and rename
 * struct ftvm_abi_v<N> accordingly (userspace reads the version from
 * the BTF name of the value type of the pinned "ftvm_abi" map).
 */
#ifndef FTVM_DP_H
#define FTVM_DP_H

#include <linux/types.h>

#define FTVM_DP_ABI_VERSION	8
#define FTVM_DP_ABI_TYPE	"ftvm_abi_v8"
#define FTVM_DP_PIN_DIR		"/sys/fs/bpf/tc/globals"

/* VM ids index the VM tables: the same ids as ftvm.ko's VM registry. */
#ifndef FTVM_VM_ID_MIN
#define FTVM_VM_ID_MIN		1
#define FTVM_VM_ID_MAX		1023
#endif
#define FTVM_VM_SLOTS		(FTVM_VM_ID_MAX + 1)

/* Limits; every one is part of the ABI (map sizes). */
#ifndef FTVM_MAX_SERVICES
#define FTVM_MAX_SERVICES	256	/* service indexes 0..255 */
#endif
#ifndef FTVM_MAX_PLACEMENTS
#define FTVM_MAX_PLACEMENTS	4096	/* placement ids 1..4095; 0 = none */
#endif
#ifndef FTVM_MAX_SESSIONS
#define FTVM_MAX_SESSIONS	262144	/* per family; LRU: > live sessions */
#endif
/* Bytes of the new-session ring (ftvm_new_sessions): 16384 events. */
#ifndef FTVM_NEW_SESSIONS_RING
#define FTVM_NEW_SESSIONS_RING	(1U << 20)
#endif
#ifndef FTVM_MAGLEV_SIZE
#define FTVM_MAGLEV_SIZE	4099	/* prime, >> placements per service */
#endif
/* IPv6 extension headers skipped before giving up (passing the packet). */
#ifndef FTVM_IPV6_MAX_EXT
#define FTVM_IPV6_MAX_EXT	4
#endif
/* 802.1Q/802.1ad tags parsed (and popped on redirect). */
#define FTVM_MAX_VLAN_TAGS	2

#define FTVM_FAMILY_V4		4
#define FTVM_FAMILY_V6		6

/*
 * A flow, as userspace sees every session and as the IPv6 session map
 * keys it.  Addresses are in network order; IPv4 uses word 0 and leaves
 * the others zero.  40 bytes, no implicit padding.
 */
struct ftvm_flow {
	__be32 saddr[4];
	__be32 daddr[4];
	__be16 sport;
	__be16 dport;
	__u8 proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family;		/* FTVM_FAMILY_V4 / _V6 */
	__u16 pad;		/* zero */
};

/*
 * The IPv4 session key: the same 5-tuple in 16 bytes, so that the hit
 * path of most traffic hashes and compares 16 bytes, not 40.
 */
struct ftvm_flow4 {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];		/* zero */
};

static inline void ftvm_flow4_to_flow(const struct ftvm_flow4 *k,
				      struct ftvm_flow *f)
{
	__builtin_memset(f, 0, sizeof(*f));
	f->saddr[0] = k->saddr;
	f->daddr[0] = k->daddr;
	f->sport = k->sport;
	f->dport = k->dport;
	f->proto = k->proto;
	f->family = FTVM_FAMILY_V4;
}

static inline void ftvm_flow_to_flow4(const struct ftvm_flow *f,
				      struct ftvm_flow4 *k)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->saddr = f->saddr[0];
	k->daddr = f->daddr[0];
	k->sport = f->sport;
	k->dport = f->dport;
	k->proto = f->proto;
}

/* A service: (virtual address, port, protocol).  20 bytes. */
struct ftvm_service_key {
	__be32 vaddr[4];
	__be16 port;
	__u8 proto;
	__u8 family;
};

struct ftvm_service {
	__u32 index;		/* 0..FTVM_MAX_SERVICES-1: stats, Maglev row */
	__u32 flags;		/* reserved, zero */
};

/*
 * A session's entry.  It names a placement, never a VM: failing over
 * rewrites placements, and every session of a placement follows.
 */
struct ftvm_session {
	__u32 placement;	/* 1..FTVM_MAX_PLACEMENTS-1 */
	__u32 service;		/* service index, for the counters */
	__u64 created_ns;	/* bpf_ktime_get_ns() at creation */
	__u64 seen_ns;		/* a recent packet's time; 0: none yet */
	__u64 seen_jiffies;	/* the same in jiffies */
};

/*
 * ftvm_steer notes when a session's packets come (seen_ns, coarse
 * CLOCK_MONOTONIC) once a grain, not for every packet: it reads jiffies
 * (one load) per packet, and the clock and writes the entry only when
 * seen_jiffies is FTVM_SEEN_GRAIN_JIFFIES old.  A session's last packet
 * therefore came less than FTVM_SEEN_GRAIN_NS after its seen_ns, on
 * any kernel (HZ >= 100).  An entry userspace writes may leave both 0,
 * until a packet comes.
 */
#define FTVM_SEEN_GRAIN_JIFFIES	100
#define FTVM_SEEN_GRAIN_NS	1000000000ull

/*
 * When @s's packets last came, as its entry says: seen_ns, or its
 * creation if no packet has noted a time since userspace wrote it;
 * 0 if it has neither.
 */
static inline __u64 ftvm_session_seen_ns(const struct ftvm_session *s)
{
	return s->seen_ns ? s->seen_ns : s->created_ns;
}

/*
 * A record of ftvm_new_sessions: a session ftvm_steer has just created,
 * so that userspace learns it at once instead of at its next sweep of
 * the session maps.  72 bytes.
 */
struct ftvm_new_session {
	struct ftvm_flow flow;
	struct ftvm_session s;
};

/*
 * A placement: which VM holds the primary state of its sessions and
 * which the backup.  The data plane reads both in one aligned 64-bit
 * load, so every session of it moves with one map update (a packet
 * racing the update may read a mixture: the kernel's copy of the new
 * value is a memcpy(); Documentation/dataplane.rst).  It
 * steers to @primary; to @backup only when the primary has failed (its
 * device is gone, its devmap slot emptied by the kernel, or ftvm.ko
 * reported it failed: FTVM_VM_F_FAILED, until its failed_until) and the
 * backup can take it: the moment between a VM's death and ftd's switch.
 */
struct ftvm_placement {
	__u32 primary;		/* VM id; 0: unused placement */
	__u32 backup;		/* VM id; 0: none */
};

#define FTVM_VM_F_FENCED	(1U << 0)	/* egress to clients dropped */
/*
 * ftvm.ko reported the VM failed (its tracepoint ftvm:ftvm_vm_failed;
 * ftvm_on_vm_failed in ftvm_steer.bpf.c, attached by ftd): its sessions
 * go to their backups until ftd has switched them, but no longer than
 * the backups hold what reaches them (failed_until); a flagged VM's
 * sessions never go to a backup after that, neither does a flagged
 * backup take any.  Set by that program alone; cleared with FENCED when
 * the VM is unfenced (back in service).
 */
#define FTVM_VM_F_FAILED	(1U << 1)
/*
 * ftd drains the VM ("ftctl vm drain"): it is no placement's target any
 * more and its sessions move off it.  The BPF programs do not read it
 * (ftd keeps the VM out of the Maglev rows); it is here so that an ftd
 * restarted mid-drain, or after it, finds the VM draining, as it finds a
 * failed one by FENCED.  Cleared when the VM is back in service.
 */
#define FTVM_VM_F_DRAINING	(1U << 2)

/* A VM as a steering target; indexed by VM id. */
struct ftvm_vm {
	__u32 ifindex;		/* host-side tap/veth; 0: not registered */
	__u8 mac[6];		/* the VM's own address (new destination) */
	__u16 flags;		/* FTVM_VM_F_* */
	/*
	 * FAILED: until when (CLOCK_MONOTONIC ns, bpf_ktime_get_ns()) the
	 * other VMs hold a failed-over session's segments; 0: none does.
	 */
	__u64 failed_until;
};

/*
 * Per-CPU counters, one set per service and one per VM.  redirect_err
 * is the VM's alone: it is counted where the kernel reports a redirect
 * that failed (tracepoints, no packet there to name a service).
 */
struct ftvm_counters {
	__u64 packets;		/* steered to a VM (redirect attempted) */
	__u64 bytes;
	__u64 new_sessions;	/* session entries created */
	__u64 pass;		/* handed to the stack (no placement) */
	__u64 drop;		/* dropped (placement's VM not registered) */
	__u64 devmap_miss;	/* steered by ifindex: devmap slot empty */
	__u64 fence_drop;	/* VM only: egress dropped by ftvm_fence */
	__u64 fence_pass;	/* VM only: egress let through, for a session */
	__u64 redirect_err;	/* VM only: frames the redirect failed to send */
};

/* Global per-CPU counters (map ftvm_dp_stats), one __u64 each. */
enum ftvm_dp_stat {
	FTVM_DP_NOT_IP,		/* not IPv4/IPv6 (ARP, LLDP, ...) */
	FTVM_DP_MALFORMED,	/* truncated or inconsistent headers */
	FTVM_DP_FRAGMENT,	/* IP fragments: always passed */
	FTVM_DP_NOT_L4,		/* neither TCP nor UDP, or unparsed ext hdr */
	FTVM_DP_NOT_SERVICE,	/* no session and no service */
	FTVM_DP_SESSION_NEW,
	FTVM_DP_SESSION_RACE,	/* lost a creation race; used the winner */
	FTVM_DP_SESSION_FULL,	/* creation failed otherwise */
	FTVM_DP_FENCE_DROP,	/* ftvm_fence drops, all VMs */
	FTVM_DP_EVENT_LOST,	/* new sessions not told: ring full */
	FTVM_DP_TO_BACKUP,	/* to the backup: the primary failed, not switched */
	FTVM_DP_REDIRECT_ERR,	/* frames ftvm_steer's redirects failed to send */
	__FTVM_DP_STAT_MAX,
};

/* The marker whose BTF name carries the ABI version. */
struct ftvm_abi_v8 {
	__u32 version;
};

/*
 * The flow hash that picks a Maglev slot for a new session: murmur3's
 * mixing over the ten words of the flow (an IPv4 flow as struct
 * ftvm_flow, whatever map keys it).  Shared so that tests can
 * predict placements; the data plane computes it only on a miss.
 */
static inline __u32 ftvm_rol32(__u32 w, unsigned int s)
{
	return (w << s) | (w >> (32 - s));
}

static inline __u32 ftvm_flow_hash(const struct ftvm_flow *f)
{
	__u32 h = 0x6674766d;	/* "ftvm" */
	int i;

#ifdef __clang__
#pragma unroll
#endif
	for (i = 0; i < (int)(sizeof(*f) / 4); i++) {
		__u32 k;

		__builtin_memcpy(&k, (const char *)f + i * 4, 4);
		k *= 0xcc9e2d51;
		k = ftvm_rol32(k, 15) * 0x1b873593;
		h ^= k;
		h = ftvm_rol32(h, 13) * 5 + 0xe6546b64;
	}
	h ^= sizeof(*f);
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

#endif
