/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The shared maps of the ftvm data plane.  Both programs (ftvm_steer,
 * ftvm_fence) include this file; every map here is pinned by name, so
 * the second object loaded reuses the maps of the first.  Sizes come
 * from ftvm_dp.h.  (ftvm_steer's devmap is its own: ftvm_steer.bpf.c.)
 */
#ifndef FTVM_MAPS_H
#define FTVM_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "ftvm_dp.h"

/* ABI marker: one entry; the BTF name of its value type is the version. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ftvm_abi_v8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ftvm_abi SEC(".maps");

/* Services: (VIP, port, protocol) -> service index. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FTVM_MAX_SERVICES);
	__type(key, struct ftvm_service_key);
	__type(value, struct ftvm_service);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ftvm_services SEC(".maps");

/*
 * Sessions: 5-tuple -> placement, one map per family so that IPv4 keys
 * are 16 bytes.  Created by ftvm_steer on a session's first packet; LRU
 * so that dead sessions age out without a sweeper.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FTVM_MAX_SESSIONS);
	__type(key, struct ftvm_flow4);
	__type(value, struct ftvm_session);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ftvm_sessions4 SEC(".maps");

/* IPv6 sessions: struct ftvm_flow keys (family FTVM_FAMILY_V6). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FTVM_MAX_SESSIONS);
	__type(key, struct ftvm_flow);
	__type(value, struct ftvm_session);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ftvm_sessions6 SEC(".maps");

/*
 * New sessions, told as ftvm_steer creates them (struct
 * ftvm_new_session): the controller learns them at once; its sweeps of
 * the session maps catch what a full ring lost (FTVM_DP_EVENT_LOST).
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, FTVM_NEW_SESSIONS_RING);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ftvm_new_sessions SEC(".maps");

/* Placements: id -> (primary VM, backup VM).  Id 0 means "none". */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FTVM_MAX_PLACEMENTS);
	__type(key, __u32);
	__type(value, struct ftvm_placement);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ftvm_placements SEC(".maps");

/*
 * Maglev lookup tables, one row of FTVM_MAGLEV_SIZE placement ids per
 * service index: slot (index * FTVM_MAGLEV_SIZE + hash % SIZE).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FTVM_MAX_SERVICES * FTVM_MAGLEV_SIZE);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ftvm_maglev SEC(".maps");

/* VMs as targets: VM id -> host-side ifindex, VM MAC, flags. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FTVM_VM_SLOTS);
	__type(key, __u32);
	__type(value, struct ftvm_vm);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ftvm_vms SEC(".maps");

/* For ftvm_fence: host-side ifindex -> VM id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FTVM_VM_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ftvm_vm_by_ifindex SEC(".maps");

/* Per-CPU counters per service index. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FTVM_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct ftvm_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ftvm_svc_stats SEC(".maps");

/* Per-CPU counters per VM id. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FTVM_VM_SLOTS);
	__type(key, __u32);
	__type(value, struct ftvm_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ftvm_vm_stats SEC(".maps");

/* Global per-CPU counters, enum ftvm_dp_stat. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, __FTVM_DP_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ftvm_dp_stats SEC(".maps");

static __always_inline void dp_count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&ftvm_dp_stats, &stat);

	if (v)
		*v += 1;
}

#endif
