// SPDX-License-Identifier: GPL-2.0
/*
 * The cluster model: VMs, services, placements, and the placement
 * criteria.
 *
 * A placement is an ordered pair (primary VM, backup VM) shared by every
 * session that has those two replicas; sessions name a placement, never
 * a VM.  New sessions get theirs from the service's Maglev row, which
 * ftd fills with "complete" placements (both VMs live, anti-affinity
 * respected) weighted by the service's criterion.  Failover turns
 * (X, B) into (B, none): a "degraded" placement that leaves the rows;
 * re-protection then moves its sessions, one by one, to complete ones.
 *
 * Everything here runs with ftd.lock held.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ftd.h"

#define PAIR(p, b)	(((p) << 10) | (b))
/* Backups a primary is paired with in a consistent-hashing row. */
#define ROW_BACKUPS	8

/* Placements listed in some Maglev row: never freed while listed. */
static uint16_t in_rows[FTVM_MAX_PLACEMENTS];
static uint32_t row_of[FTVM_MAX_SERVICES][FTVM_MAX_PLACEMENTS / 8];
static uint64_t rows_changed_ns;

int model_init(void)
{
	ftd.pair = calloc(1u << 20, sizeof(*ftd.pair));
	return ftd.pair ? 0 : -ENOMEM;
}

struct ftd_vm *vm_by_name(const char *name)
{
	for (int i = FTVM_VM_ID_MIN; i <= FTVM_VM_ID_MAX; i++)
		if (ftd.cfg.vms[i].used && !strcmp(ftd.cfg.vms[i].name, name))
			return &ftd.cfg.vms[i];
	return NULL;
}

struct ftd_vm *vm_by_ifindex(int ifindex)
{
	for (int i = FTVM_VM_ID_MIN; i <= FTVM_VM_ID_MAX; i++)
		if (ftd.cfg.vms[i].used && ftd.cfg.vms[i].ifindex == ifindex)
			return &ftd.cfg.vms[i];
	return NULL;
}

struct ftd_service *svc_by_name(const char *name)
{
	for (int i = 0; i < FTVM_MAX_SERVICES; i++)
		if (ftd.cfg.svcs[i].used && !strcmp(ftd.cfg.svcs[i].name, name))
			return &ftd.cfg.svcs[i];
	return NULL;
}

/* A VM that may take new sessions and new backups. */
bool vm_target(const struct ftd_vm *vm)
{
	return vm && vm->used && vm->state == VM_UP && vm->ifindex > 0;
}

static bool vm_alive(uint32_t id)
{
	const struct ftd_vm *vm = id <= FTVM_VM_ID_MAX ? &ftd.cfg.vms[id] : NULL;

	return vm && vm->used && vm->state != VM_FAILED && vm->ifindex > 0;
}

static const char *domain_of(const struct ftd_vm *vm)
{
	return vm->domain[0] ? vm->domain : vm->name;
}

/* Are @a and @b allowed to hold the two replicas of a session of @s? */
static bool pair_ok(const struct ftd_service *s, uint32_t a, uint32_t b)
{
	if (a == b)
		return false;
	if (s && !s->anti_affinity)
		return true;
	return strcmp(domain_of(&ftd.cfg.vms[a]), domain_of(&ftd.cfg.vms[b]));
}

/*
 * A session is protected when both its replicas are alive (a draining VM
 * still counts: it holds the state until re-protection moves it on).
 */
bool session_protected(uint32_t id)
{
	const struct ftd_placement *p = &ftd.pl[id];

	if (!id || id >= FTVM_MAX_PLACEMENTS)
		return false;
	return p->primary && vm_alive(p->primary) && p->backup &&
	       vm_alive(p->backup);
}

void model_moved(void)
{
	uatomic_inc(&ftd.moves);
	CMM_STORE_SHARED(ftd.moved_ns, monotonic_ns());
}

uint32_t placement_get(uint32_t primary, uint32_t backup)
{
	uint32_t id = ftd.pair[PAIR(primary, backup)];

	if (id && ftd.pl[id].primary == primary && ftd.pl[id].backup == backup)
		return id;
	for (id = 1; id < FTVM_MAX_PLACEMENTS; id++)
		if (!ftd.pl[id].primary &&
		    !uatomic_read(&ftd.pl[id].sessions) && !in_rows[id])
			break;
	if (id == FTVM_MAX_PLACEMENTS) {
		ftd_log(LOG_WARN, "all %d placements are in use",
			FTVM_MAX_PLACEMENTS - 1);
		return 0;
	}
	model_moved();
	if (dp_placement_set(ftd.dp, id, primary, backup)) {
		ftd_log(LOG_ERR, "%s", dp_errmsg());
		return 0;
	}
	ftd.pl[id].primary = primary;
	ftd.pl[id].backup = backup;
	ftd.pair[PAIR(primary, backup)] = (uint16_t)id;
	return id;
}

/*
 * Free a placement nobody uses: not listed in any row since before
 * @scan_start_ns (so the data plane cannot have created a session on
 * it that the scan missed), and no session in the table.
 */
void placement_gc(uint64_t scan_start_ns)
{
	/*
	 * Not before this process has written the rows: until then the
	 * data plane's rows (a previous ftd's) are unknown here, and a
	 * placement they list may get its first session any time.
	 */
	if (!rows_changed_ns || scan_start_ns <= rows_changed_ns)
		return;
	for (uint32_t id = 1; id < FTVM_MAX_PLACEMENTS; id++) {
		struct ftd_placement *p = &ftd.pl[id];

		if (!p->primary || in_rows[id] || uatomic_read(&p->sessions))
			continue;
		model_moved();
		if (dp_placement_set(ftd.dp, id, 0, 0))
			continue;
		if (ftd.pair[PAIR(p->primary, p->backup)] == id)
			ftd.pair[PAIR(p->primary, p->backup)] = 0;
		p->primary = p->backup = 0;
	}
}

void vm_loads(long *load)
{
	memset(load, 0, sizeof(long) * (FTVM_VM_ID_MAX + 1));
	for (uint32_t id = 1; id < FTVM_MAX_PLACEMENTS; id++) {
		const struct ftd_placement *p = &ftd.pl[id];
		long n = uatomic_read(&p->sessions);

		if (!p->primary || !n)
			continue;
		load[p->primary] += n;
		if (p->backup)
			load[p->backup] += n;
	}
}

void vm_counts(uint32_t vm, long *primary, long *backup)
{
	*primary = *backup = 0;
	for (uint32_t id = 1; id < FTVM_MAX_PLACEMENTS; id++) {
		const struct ftd_placement *p = &ftd.pl[id];

		if (p->primary == vm)
			*primary += uatomic_read(&p->sessions);
		else if (p->backup == vm)
			*backup += uatomic_read(&p->sessions);
	}
}

long unprotected_sessions(void)
{
	long n = 0;

	for (uint32_t id = 1; id < FTVM_MAX_PLACEMENTS; id++)
		if (ftd.pl[id].primary && !session_protected(id))
			n += uatomic_read(&ftd.pl[id].sessions);
	return n;
}

uint64_t flow_hash(const struct ftvm_flow *f)
{
	const uint32_t *w = (const uint32_t *)f;
	uint64_t h = ftd.hash_seed ^ 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i < sizeof(*f) / 4; i++) {
		h ^= w[i];
		h *= 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	return h;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

/*
 * Weighted rendezvous hashing: the candidate with the smallest
 * -ln(u) / weight wins, u uniform in (0, 1) from hash(key, candidate).
 * Each candidate wins with probability weight / total, and removing one
 * only moves the keys it had won.
 */
static double hrw_score(uint64_t key, uint32_t cand, uint32_t weight)
{
	uint64_t h = mix(key ^ mix(cand));
	double u = ((double)(h >> 11) + 0.5) / 9007199254740992.0;

	return -log(u) / weight;
}

uint32_t choose_backup_load(const struct ftd_service *s, uint32_t primary,
			    const struct ftvm_flow *flow, const long *load)
{
	enum criterion c = s ? s->criterion : ftd.cfg.criterion;
	uint64_t key = flow ? flow_hash(flow) : mix(primary);
	double best = INFINITY;
	uint32_t pick = 0;

	for (uint32_t id = FTVM_VM_ID_MIN; id <= FTVM_VM_ID_MAX; id++) {
		const struct ftd_vm *vm = &ftd.cfg.vms[id];
		double score;

		if (!vm_target(vm) || !pair_ok(s, primary, id))
			continue;
		if (c == CRIT_LEAST_LOADED && load)
			score = (double)load[id] / vm->capacity;
		else
			score = hrw_score(key, id, vm->capacity);
		if (score < best) {
			best = score;
			pick = id;
		}
	}
	return pick;
}

/* A new primary for sessions whose replicas are both gone. */
uint32_t choose_primary_load(const struct ftd_service *s,
			     const struct ftvm_flow *flow, const long *load)
{
	enum criterion c = s ? s->criterion : ftd.cfg.criterion;
	uint64_t key = flow ? flow_hash(flow) : 0;
	double best = INFINITY;
	uint32_t pick = 0;

	for (uint32_t id = FTVM_VM_ID_MIN; id <= FTVM_VM_ID_MAX; id++) {
		const struct ftd_vm *vm = &ftd.cfg.vms[id];
		double score;

		if (!vm_target(vm))
			continue;
		if (c == CRIT_LEAST_LOADED && load)
			score = (double)load[id] / vm->capacity;
		else
			score = hrw_score(key ^ 0x7072696d, id, vm->capacity);
		if (score < best) {
			best = score;
			pick = id;
		}
	}
	return pick;
}

/*
 * The backends of a service's row.
 * hash: every live primary P with up to ROW_BACKUPS backups B chosen by
 *	rendezvous on (P, B); weight(P, B) = cap(P) * cap(B) / sum cap(B'),
 *	so primaries get shares by capacity and backups likewise.
 * least-loaded: the VMs whose load per unit of capacity is within 10% of
 *	the lowest, each with its least-loaded allowed backup; refreshed as
 *	the loads change (every session scan).
 */
static size_t row_backends(const struct ftd_service *s, struct dp_backend *b,
			   size_t max)
{
	static long load[FTVM_VM_ID_MAX + 1];
	size_t n = 0;

	vm_loads(load);
	if (s->criterion == CRIT_LEAST_LOADED) {
		double lmin = INFINITY;

		for (uint32_t p = FTVM_VM_ID_MIN; p <= FTVM_VM_ID_MAX; p++) {
			const struct ftd_vm *vm = &ftd.cfg.vms[p];

			if (vm_target(vm) && choose_backup_load(s, p, NULL, load) &&
			    (double)load[p] / vm->capacity < lmin)
				lmin = (double)load[p] / vm->capacity;
		}
		for (uint32_t p = FTVM_VM_ID_MIN; p <= FTVM_VM_ID_MAX && n < max; p++) {
			const struct ftd_vm *vm = &ftd.cfg.vms[p];
			uint32_t bk, id;

			if (!vm_target(vm) ||
			    (double)load[p] / vm->capacity > lmin * 1.1 + 1.0 / vm->capacity)
				continue;
			bk = choose_backup_load(s, p, NULL, load);
			if (!bk || !(id = placement_get(p, bk)))
				continue;
			b[n].placement = id;
			b[n++].weight = 1;
		}
		return n;
	}
	for (uint32_t p = FTVM_VM_ID_MIN; p <= FTVM_VM_ID_MAX; p++) {
		const struct ftd_vm *vp = &ftd.cfg.vms[p];
		uint32_t cand[ROW_BACKUPS];
		double score[ROW_BACKUPS];
		int nc = 0;
		double sum = 0;

		if (!vm_target(vp))
			continue;
		/* The ROW_BACKUPS best backups for P by rendezvous. */
		for (uint32_t q = FTVM_VM_ID_MIN; q <= FTVM_VM_ID_MAX; q++) {
			const struct ftd_vm *vq = &ftd.cfg.vms[q];
			double sc;
			int k;

			if (!vm_target(vq) || !pair_ok(s, p, q))
				continue;
			sc = hrw_score(mix(p), q, vq->capacity);
			if (nc == ROW_BACKUPS && sc >= score[nc - 1])
				continue;
			k = nc < ROW_BACKUPS ? nc++ : nc - 1;
			while (k > 0 && score[k - 1] > sc) {
				score[k] = score[k - 1];
				cand[k] = cand[k - 1];
				k--;
			}
			score[k] = sc;
			cand[k] = q;
		}
		for (int k = 0; k < nc; k++)
			sum += ftd.cfg.vms[cand[k]].capacity;
		for (int k = 0; k < nc && n < max; k++) {
			uint32_t id = placement_get(p, cand[k]);
			double w = (double)vp->capacity *
				   ftd.cfg.vms[cand[k]].capacity / sum;

			if (!id)
				continue;
			b[n].placement = id;
			b[n++].weight = (uint32_t)(w * 100) + 1;
		}
	}
	return n;
}

int maglev_refresh(const struct ftd_service *s)
{
	static struct dp_backend b[FTVM_MAX_PLACEMENTS];
	uint32_t *bits = row_of[s->index];
	bool same = true;
	size_t n;
	int err;

	n = row_backends(s, b, FTVM_MAX_PLACEMENTS);
	/* Skip the write when the set is unchanged (least-loaded ticks). */
	{
		uint32_t nb[FTVM_MAX_PLACEMENTS / 32] = {};

		for (size_t i = 0; i < n; i++)
			nb[b[i].placement / 32] |= 1u << (b[i].placement % 32);
		for (size_t i = 0; i < FTVM_MAX_PLACEMENTS / 32; i++)
			if (nb[i] != bits[i])
				same = false;
		if (same && s->criterion == CRIT_LEAST_LOADED)
			return 0;
		for (uint32_t id = 1; id < FTVM_MAX_PLACEMENTS; id++)
			if (bits[id / 32] & (1u << (id % 32)))
				in_rows[id]--;
		memcpy(bits, nb, sizeof(nb));
		for (size_t i = 0; i < n; i++)
			in_rows[b[i].placement]++;
	}
	err = dp_maglev_set(ftd.dp, s->index, b, n);
	rows_changed_ns = monotonic_ns();
	if (err)
		ftd_log(LOG_ERR, "service %s: %s", s->name, dp_errmsg());
	return err;
}

/* Drop a deleted service's row bookkeeping. */
void maglev_forget(uint32_t index)
{
	uint32_t *bits = row_of[index];

	for (uint32_t id = 1; id < FTVM_MAX_PLACEMENTS; id++)
		if (bits[id / 32] & (1u << (id % 32)))
			in_rows[id]--;
	memset(row_of[index], 0, sizeof(row_of[index]));
	rows_changed_ns = monotonic_ns();
}

int maglev_refresh_all(void)
{
	int err = 0;

	for (int i = 0; i < FTVM_MAX_SERVICES; i++)
		if (ftd.cfg.svcs[i].used && maglev_refresh(&ftd.cfg.svcs[i]))
			err = -EIO;
	return err;
}

void maglev_refresh_least_loaded(void)
{
	for (int i = 0; i < FTVM_MAX_SERVICES; i++)
		if (ftd.cfg.svcs[i].used &&
		    ftd.cfg.svcs[i].criterion == CRIT_LEAST_LOADED)
			maglev_refresh(&ftd.cfg.svcs[i]);
}

static int recover_service(const struct ftvm_service_key *key, uint32_t index,
			   void *arg)
{
	(void)arg;
	for (int i = 0; i < FTVM_MAX_SERVICES; i++) {
		struct ftd_service *s = &ftd.cfg.svcs[i];

		if (s->used && !memcmp(&s->key, key, sizeof(*key))) {
			s->index = index;
			return 0;
		}
	}
	/* Not ours (any more): stop steering it. */
	ftd_log(LOG_INFO, "removing service index %u not in the configuration",
		index);
	dp_service_del(ftd.dp, key, index);
	return 0;
}

uint16_t vm_dp_flags(const struct ftd_vm *vm)
{
	if (vm->state == VM_FAILED)
		return FTVM_VM_F_FENCED;
	return vm->state == VM_DRAINING ? FTVM_VM_F_DRAINING : 0;
}

/*
 * ftd starting: take the data plane as it is.  Placements come back from
 * the placements map, service indexes from the services map (configured
 * services keep their rows' indexes, so their sessions stay put), failed
 * VMs from the fenced flag and draining ones from the draining flag.
 */
int model_recover(void)
{
	static struct ftvm_placement pl[FTVM_MAX_PLACEMENTS];
	bool taken[FTVM_MAX_SERVICES] = {};
	int err;

	err = dp_placement_read_all(ftd.dp, pl);
	if (err)
		return err;
	for (uint32_t id = 1; id < FTVM_MAX_PLACEMENTS; id++) {
		ftd.pl[id].primary = pl[id].primary;
		ftd.pl[id].backup = pl[id].backup;
		if (pl[id].primary && pl[id].backup)
			ftd.pair[PAIR(pl[id].primary, pl[id].backup)] = (uint16_t)id;
	}
	/* Indexes: the map's for known keys, fresh ones for the others. */
	for (int i = 0; i < FTVM_MAX_SERVICES; i++)
		ftd.cfg.svcs[i].index = UINT32_MAX;
	err = dp_service_foreach(ftd.dp, recover_service, NULL);
	if (err)
		return err;
	for (int i = 0; i < FTVM_MAX_SERVICES; i++)
		if (ftd.cfg.svcs[i].used && ftd.cfg.svcs[i].index < FTVM_MAX_SERVICES)
			taken[ftd.cfg.svcs[i].index] = true;
	for (int i = 0; i < FTVM_MAX_SERVICES; i++) {
		struct ftd_service *s = &ftd.cfg.svcs[i];
		uint32_t j;

		if (!s->used || s->index < FTVM_MAX_SERVICES)
			continue;
		for (j = 0; taken[j]; j++)
			;
		taken[j] = true;
		s->index = j;
		err = dp_service_set(ftd.dp, &s->key, j);
		if (err)
			return err;
	}
	for (uint32_t id = FTVM_VM_ID_MIN; id <= FTVM_VM_ID_MAX; id++) {
		struct ftd_vm *vm = &ftd.cfg.vms[id];
		struct ftvm_vm v;

		if (!vm->used)
			continue;
		if (dp_vm_get(ftd.dp, id, &v) || !v.ifindex || vm->state != VM_UP)
			continue;
		if (v.flags & FTVM_VM_F_FENCED) {
			vm->state = VM_FAILED;
			vm->reason = FTVM_FAIL_USER;
			vm->fail_ns = monotonic_ns();
		} else if (v.flags & FTVM_VM_F_DRAINING) {
			/* The handoff's grace starts again: no harm done. */
			vm->state = VM_DRAINING;
			vm->drain_ns = monotonic_ns();
			ftd_log(LOG_INFO, "vm %s is draining: its sessions go on moving to other VMs",
				vm->name);
		}
	}
	return 0;
}
