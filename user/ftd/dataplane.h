/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ftd's narrow view of the steering data plane (bpf/ftvm_dp.h): the
 * handful of operations the control plane needs, over the maps pinned
 * in one directory.  Everything here is one or a few map syscalls; the
 * caller (ftd's model) serialises writers.
 *
 * Sessions are created by ftvm_steer on a flow's first packet; the
 * control plane only reads them, moves one to another placement, or
 * (benchmarks, recovery tests) creates one.
 */
#ifndef FTD_DATAPLANE_H
#define FTD_DATAPLANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../bpf/ftvm_dp.h"

struct dp;

struct dp_opts {
	const char *pin_dir;	/* bpffs directory of the pinned maps */
	uint32_t max_sessions;	/* 0: the ABI's size; only for new maps */
	bool no_pin;		/* private maps (benchmarks): nothing pinned */
};

/*
 * Open the maps pinned in @o->pin_dir, creating and pinning them (by
 * loading ftvm_steer and ftvm_fence) when absent.  Programs already
 * attached keep running on the same maps.
 */
int dp_open(const struct dp_opts *o, struct dp **dpp);
void dp_close(struct dp *dp);
/*
 * Steer a VM's sessions to their backups the moment ftvm.ko reports it
 * failed, before ftd has switched them: attach ftvm_steer's
 * ftvm_on_vm_failed to ftvm.ko's tracepoint ftvm_vm_failed, for the
 * registry of ftd's namespace.  The link is ftd's until dp_close(), never
 * pinned.  ftvm.ko must be loaded.
 */
int dp_watch_failures(struct dp *dp);
/* The last error in words (this thread). */
const char *dp_errmsg(void);

/* Attach ftvm_steer (XDP) to @ifindex unless it already runs there. */
int dp_attach_xdp(struct dp *dp, int ifindex, bool generic);
/* Attach ftvm_fence on the clsact ingress of a VM's host-side device. */
int dp_attach_fence(struct dp *dp, int ifindex);

/* VMs */
/*
 * Write VM @id: @flags are FTVM_VM_F_FENCED and FTVM_VM_F_DRAINING as
 * ftd's model has them (vm_dp_flags()); ftvm.ko's FAILED stays while the
 * VM is fenced.
 */
int dp_vm_set(struct dp *dp, uint32_t id, int ifindex, const uint8_t mac[6],
	      uint16_t flags);
int dp_vm_get(struct dp *dp, uint32_t id, struct ftvm_vm *vm);
int dp_vm_del(struct dp *dp, uint32_t id, int ifindex);
int dp_vm_fence(struct dp *dp, uint32_t id, bool fenced);
/* Flag VM @id draining (dp_vm_set() without the flag clears it). */
int dp_vm_mark_draining(struct dp *dp, uint32_t id);
/*
 * Fill the devmap of every ftvm_steer on these maps that ftd has not
 * seen yet (one loaded by "ip link ... xdp obj" starts empty and
 * redirects by ifindex meanwhile).  Returns how many there are.
 */
int dp_devmaps_sync(struct dp *dp);

/* Services */
int dp_service_set(struct dp *dp, const struct ftvm_service_key *key,
		   uint32_t index);
int dp_service_del(struct dp *dp, const struct ftvm_service_key *key,
		   uint32_t index);
typedef int (*dp_service_cb)(const struct ftvm_service_key *key,
			     uint32_t index, void *arg);
int dp_service_foreach(struct dp *dp, dp_service_cb cb, void *arg);

/* Maglev rows */
struct dp_backend {
	uint32_t placement;
	uint32_t weight;	/* relative share; 0 = none */
};
/* Populate the row of service @index over @b (none: every slot 0). */
int dp_maglev_set(struct dp *dp, uint32_t index, const struct dp_backend *b,
		  size_t n);
/* Read the row of service @index into @table (FTVM_MAGLEV_SIZE slots). */
int dp_maglev_read(struct dp *dp, uint32_t index, uint32_t *table);
/* Maglev population alone (tests): @table has FTVM_MAGLEV_SIZE slots. */
void dp_maglev_build(const struct dp_backend *b, size_t n, uint32_t *table);

/* Placements */
int dp_placement_set(struct dp *dp, uint32_t id, uint32_t primary,
		     uint32_t backup);
/* Read one placement from the map (one lookup). */
int dp_placement_get(struct dp *dp, uint32_t id, struct ftvm_placement *pl);
/* Read every placement: @pl has FTVM_MAX_PLACEMENTS entries. */
int dp_placement_read_all(struct dp *dp, struct ftvm_placement *pl);

/* Sessions */
typedef void (*dp_session_cb)(const struct ftvm_flow *flow,
			      const struct ftvm_session *s, void *arg);
/* Every session, in batches; returns the count or a negative errno. */
long dp_session_scan(struct dp *dp, dp_session_cb cb, void *arg);
/* The ring ftvm_steer tells new sessions in (struct ftvm_new_session). */
int dp_new_sessions_fd(struct dp *dp);
/* Point an existing session at @placement; -ENOENT if it is gone. */
int dp_session_move(struct dp *dp, const struct ftvm_flow *flow,
		    uint32_t placement);
/* Delete a session's entry; -ENOENT if there is none. */
int dp_session_del(struct dp *dp, const struct ftvm_flow *flow);
/* One session's entry; -ENOENT if there is none. */
int dp_session_get(struct dp *dp, const struct ftvm_flow *flow,
		   struct ftvm_session *s);
/* Create or overwrite @n sessions (benchmarks, tests). */
int dp_session_put(struct dp *dp, const struct ftvm_flow *flows,
		   const struct ftvm_session *s, uint32_t n);

#endif
