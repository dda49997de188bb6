/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libbpf side of the ftvm data plane (bpf/ftvm_steer.bpf.c,
 * bpf/ftvm_fence.bpf.c): open the pinned maps, check their ABI, drive
 * services, placements, Maglev rows and VMs, read sessions and counters,
 * attach and detach the programs.  Documentation/dataplane.rst.
 *
 * Functions return 0 or a negative errno; after a failure
 * ftvm_dp_errmsg() says what went wrong in words fit for "Error: ...".
 * One writer at a time (ftd, or ftctl by hand): the library does not
 * lock against concurrent writers.
 */
#ifndef FTVM_STEER_H
#define FTVM_STEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../bpf/ftvm_dp.h"

struct ftvm_dp;

/* The pin directory: @override, else $FTVM_PIN_DIR, else FTVM_DP_PIN_DIR. */
const char *ftvm_dp_pin_dir(const char *override);
/* The message of the last failure in this thread. */
const char *ftvm_dp_errmsg(void);

/*
 * Open the maps pinned under @pin_dir (NULL: ftvm_dp_pin_dir(NULL)).
 * -ENOENT: nothing pinned there; -EPROTO: a different ABI version or
 * map layout than this build understands.
 */
int ftvm_dp_open(const char *pin_dir, struct ftvm_dp **dpp);
void ftvm_dp_close(struct ftvm_dp *dp);
/* Open on the maps of a loaded object (tests, benchmarks); no pins. */
struct bpf_object;
int ftvm_dp_open_obj(struct bpf_object *obj, struct ftvm_dp **dpp);
/* Before loading a skeleton with maps of its own (tests, benchmarks). */
int ftvm_dp_obj_private(struct bpf_object *obj);
/*
 * Before pinning under @pin_dir: bpffs mounted on /sys/fs/bpf (as
 * iproute2 does) if @pin_dir is under it and nothing is, and @pin_dir
 * made; -EINVAL if it is not on a bpf filesystem.
 */
int ftvm_dp_prepare_pin_dir(const char *pin_dir);
/*
 * Before loading over pins (ftd): hand @obj the maps already pinned under
 * @pin_dir; libbpf then creates and pins only the missing ones.
 */
int ftvm_dp_obj_reuse_pins(struct bpf_object *obj, const char *pin_dir);
/* Remove every ftvm pin under @pin_dir (maps live on while in use). */
int ftvm_dp_unpin(const char *pin_dir);

/* Services ---------------------------------------------------------- */

/* "198.18.0.10:80/tcp", "[2001:db8::10]:53/udp". */
int ftvm_dp_service_parse(const char *s, struct ftvm_service_key *key);
void ftvm_dp_service_format(const struct ftvm_service_key *key, char *buf,
			    size_t len);
/* Register a service; it gets the lowest free index (in *@index). */
int ftvm_dp_service_add(struct ftvm_dp *dp, const struct ftvm_service_key *key,
			uint32_t *index);
/* Unregister: no new sessions, then its sessions and Maglev row go. */
int ftvm_dp_service_del(struct ftvm_dp *dp, const struct ftvm_service_key *key);
int ftvm_dp_service_get(struct ftvm_dp *dp, const struct ftvm_service_key *key,
			struct ftvm_service *svc);
typedef int (*ftvm_dp_service_cb)(const struct ftvm_service_key *key,
				  const struct ftvm_service *svc, void *arg);
/* Call @cb for each service in index order; a non-zero return stops. */
int ftvm_dp_service_foreach(struct ftvm_dp *dp, ftvm_dp_service_cb cb,
			    void *arg);

/* Maglev -------------------------------------------------------------- */

struct ftvm_dp_backend {
	uint32_t placement;	/* placement id */
	uint32_t weight;	/* 1..FTVM_DP_MAX_WEIGHT; 0 = skip */
};
#define FTVM_DP_MAX_WEIGHT	256

/*
 * Fill @table (FTVM_MAGLEV_SIZE ids) by Maglev population over
 * @backends; each backend's share is proportional to its weight, and
 * its permutation depends only on its placement id, so adding or
 * removing one backend moves few slots.  No backends: all zero.
 */
int ftvm_dp_maglev_build(const struct ftvm_dp_backend *backends, size_t n,
			 uint32_t *table);
/* Rebuild the service's row over @backends (its live placements). */
int ftvm_dp_service_set_backends(struct ftvm_dp *dp,
				 const struct ftvm_service_key *key,
				 const struct ftvm_dp_backend *backends,
				 size_t n);
/* Read a service's row (FTVM_MAGLEV_SIZE ids). */
int ftvm_dp_maglev_read(struct ftvm_dp *dp, uint32_t index, uint32_t *table);

/* Placements ---------------------------------------------------------- */

int ftvm_dp_placement_set(struct ftvm_dp *dp, uint32_t id, uint32_t primary,
			  uint32_t backup);
int ftvm_dp_placement_get(struct ftvm_dp *dp, uint32_t id,
			  struct ftvm_placement *pl);
int ftvm_dp_placement_del(struct ftvm_dp *dp, uint32_t id);
typedef int (*ftvm_dp_placement_cb)(uint32_t id,
				    const struct ftvm_placement *pl, void *arg);
/* Each placement in use (primary != 0), in id order. */
int ftvm_dp_placement_foreach(struct ftvm_dp *dp, ftvm_dp_placement_cb cb,
			      void *arg);

struct ftvm_dp_failover {
	uint32_t moved;		/* primary was the VM: backup promoted */
	uint32_t stranded;	/* primary was the VM, no backup: unchanged */
	uint32_t backups_lost;	/* backup was the VM: cleared */
};
/*
 * Fail every placement whose primary is @vm_id over to its backup (one
 * map update per placement, never per session) and clear @vm_id as a
 * backup.  Fence the VM first (ftvm_dp_vm_set_fenced) so that it cannot
 * answer for the sessions it is losing.
 */
int ftvm_dp_failover_vm(struct ftvm_dp *dp, uint32_t vm_id,
			struct ftvm_dp_failover *res);

/* VMs ----------------------------------------------------------------- */

/* Register VM @vm_id as reachable through @ifindex at @mac (flags kept). */
int ftvm_dp_vm_set(struct ftvm_dp *dp, uint32_t vm_id, int ifindex,
		   const uint8_t mac[6]);
int ftvm_dp_vm_del(struct ftvm_dp *dp, uint32_t vm_id);
int ftvm_dp_vm_get(struct ftvm_dp *dp, uint32_t vm_id, struct ftvm_vm *vm);
/*
 * Fence @vm_id (what it sends to clients is dropped), or put it back in
 * service, which also ends its failure (FAILED, failed_until).  The
 * _vms_ form works on an ftvm_vms map (ftvm_dp_vms_fd()).
 */
int ftvm_dp_vm_set_fenced(struct ftvm_dp *dp, uint32_t vm_id, bool fenced);
int ftvm_dp_vms_set_fenced(int vms_fd, uint32_t vm_id, bool fenced);
typedef int (*ftvm_dp_vm_cb)(uint32_t vm_id, const struct ftvm_vm *vm,
			     void *arg);
int ftvm_dp_vm_foreach(struct ftvm_dp *dp, ftvm_dp_vm_cb cb, void *arg);

/*
 * ftvm_steer's devmaps (devmap.c).  Each loaded copy of the program has
 * its own; the copies of one data plane are the ftvm_steer programs that
 * use its ftvm_vms map (@vms_fd).  ftvm_dp_vm_set() and _vm_del() keep
 * them all in step; a copy loaded by someone else (iproute2) starts with
 * an empty devmap and redirects by ifindex until it is filled.
 */
#define FTVM_DP_MAX_STEER_PROGS	64
struct ftvm_dp_devmaps {
	uint32_t prog_id[FTVM_DP_MAX_STEER_PROGS];
	unsigned int n;
};
/* Set slot @vm_id to @ifindex (<= 0: clear it) in every copy's devmap. */
int ftvm_dp_devmaps_set(int vms_fd, uint32_t vm_id, int ifindex);
/*
 * Fill the devmap of every copy not listed in @seen (NULL: of every
 * copy) from ftvm_vms, then list the current copies in @seen.  Returns
 * the number of copies or a negative errno.
 */
int ftvm_dp_devmaps_sync(int vms_fd, struct ftvm_dp_devmaps *seen);
/* Fill one devmap from ftvm_vms (before attaching a freshly loaded copy). */
int ftvm_dp_devmap_fill(int devmap_fd, int vms_fd);
/* The ftvm_vms map of an open data plane, for the calls above. */
int ftvm_dp_vms_fd(struct ftvm_dp *dp);

/* Sessions ------------------------------------------------------------ */

void ftvm_dp_flow_format(const struct ftvm_flow *f, char *src, char *dst,
			 size_t len);
int ftvm_dp_session_get(struct ftvm_dp *dp, const struct ftvm_flow *flow,
			struct ftvm_session *s);
int ftvm_dp_session_del(struct ftvm_dp *dp, const struct ftvm_flow *flow);
typedef int (*ftvm_dp_session_cb)(const struct ftvm_flow *flow,
				  const struct ftvm_session *s, void *arg);
/* Each session (hash order; sessions created meanwhile may be missed). */
int ftvm_dp_session_foreach(struct ftvm_dp *dp, ftvm_dp_session_cb cb,
			    void *arg);

/* Counters ------------------------------------------------------------ */

/* Sums over CPUs. */
int ftvm_dp_service_stats(struct ftvm_dp *dp, uint32_t index,
			  struct ftvm_counters *c);
int ftvm_dp_vm_stats(struct ftvm_dp *dp, uint32_t vm_id,
		     struct ftvm_counters *c);
int ftvm_dp_global_stats(struct ftvm_dp *dp, uint64_t v[__FTVM_DP_STAT_MAX]);
const char *ftvm_dp_stat_name(unsigned int stat);

/* Attaching ------------------------------------------------------------ */

enum ftvm_xdp_mode {
	FTVM_XDP_NATIVE,
	FTVM_XDP_GENERIC,
};

/*
 * Load ftvm_steer with its maps pinned under @pin_dir (reusing those
 * already there after an ABI check) and attach it to @ifindex, replacing
 * an ftvm_steer already attached; redirect errors are counted from then
 * on (ftvm_dp_watch_redirects()).  Mounts bpffs on /sys/fs/bpf if needed.
 */
int ftvm_dp_attach_xdp(const char *pin_dir, int ifindex,
		       enum ftvm_xdp_mode mode);
/*
 * Count failed redirects (redirect_err): attach ftvm_steer's tracing
 * programs (xdp:xdp_redirect_err, xdp:xdp_devmap_xmit) and pin their
 * links under @pin_dir as ftvm_redirect_err and ftvm_devmap_xmit; links
 * pinned there already are kept.  @obj: a loaded ftvm_steer object on
 * the maps pinned there (its tracing programs are attached), or NULL to
 * load one over the pins.  ftvm_dp_attach_xdp() calls it.
 */
int ftvm_dp_watch_redirects(const char *pin_dir, struct bpf_object *obj);
/* Are redirect errors counted for the data plane under @pin_dir? */
bool ftvm_dp_redirects_watched(const char *pin_dir);
/* Detach ftvm_steer from @ifindex; -ENOENT if it is not ftvm_steer. */
int ftvm_dp_detach_xdp(int ifindex);
/* Likewise ftvm_fence on the clsact ingress hook of @ifindex. */
int ftvm_dp_attach_fence(const char *pin_dir, int ifindex);
int ftvm_dp_detach_fence(int ifindex);

#endif
