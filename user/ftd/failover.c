// SPDX-License-Identifier: GPL-2.0
/*
 * Failover and re-protection.
 *
 * Failover of VM X (ftd.lock held, main thread):
 *   1. fence X: ftvm_fence drops whatever X still sends from a service
 *      address, so a VM that is only hung cannot answer for sessions it
 *      is losing; with ftvm.ko, X's sessions are made live on their
 *      backups from their replicated state (replicate.c), so that no
 *      client packet meets a VM that does not know its session;
 *   2. every placement (X, B) with B alive becomes (B, none): one map
 *      write per placement, so every session of it switches at once and
 *      the cost depends on the number of VMs, never on the sessions;
 *      every placement (P, X) becomes (P, none);
 *   3. the Maglev rows are rebuilt without X (new sessions only).
 * The time from the failure event to the last write of step 2 is the
 * failover time ("ftctl status").
 *
 * Re-protection (reprotect thread): every session whose placement has no
 * live backup moves, one map write each, to a placement (P, C) with C
 * chosen by the service's criterion and anti-affinity; sessions whose
 * replicas both died get a new primary as well.  It works in batches of
 * reprotect-batch sessions at reprotect-rate sessions per second, taking
 * ftd.lock per batch only, so failovers and the data plane never wait
 * for it.  Everything it does is recomputed from the placements: it is
 * idempotent, and ftd restarting mid-way simply finishes the job.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ftd.h"

static bool vm_failed(uint32_t id)
{
	const struct ftd_vm *vm = &ftd.cfg.vms[id];

	return !id || !vm->used || vm->state == VM_FAILED || vm->ifindex <= 0;
}

/* Does a session on placement @id need re-protection work? */
static bool needs_work(uint32_t id)
{
	const struct ftd_placement *p;

	if (!id || id >= FTVM_MAX_PLACEMENTS)
		return false;
	p = &ftd.pl[id];
	if (!p->primary)
		return false;
	return vm_failed(p->primary) || !p->backup || vm_failed(p->backup) ||
	       ftd.cfg.vms[p->primary].state == VM_DRAINING ||
	       ftd.cfg.vms[p->backup].state == VM_DRAINING;
}

long work_remaining(void)
{
	long n = 0;

	for (uint32_t id = 1; id < FTVM_MAX_PLACEMENTS; id++)
		if (needs_work(id))
			n += uatomic_read(&ftd.pl[id].sessions);
	return n;
}

static void rows_changed(void)
{
	maglev_refresh_all();
}

/* failover_resume() is finishing what a killed ftd left. */
static bool resuming;

/*
 * A failover starting this long after the failure re-arms ftvm.ko's
 * holds (armed for 5 s by the failure) before it switches.
 */
#define FTD_REARM_AFTER_NS	1000000000ull

/*
 * FTD_FAULT_SWITCH_AFTER: placement writes of a failover, or of a drain's
 * handoff, before SIGKILL.
 */
static unsigned long fault_switch_after;

void failover_fault_init(void)
{
	const char *v = getenv("FTD_FAULT_SWITCH_AFTER");
	char *end;

	if (!v || !*v)
		return;
	fault_switch_after = strtoul(v, &end, 10);
	if (*end)
		fault_switch_after = 0;
	if (fault_switch_after)
		ftd_log(LOG_WARN, "test hook FTD_FAULT_SWITCH_AFTER=%lu: ftd kills itself in the middle of its next failover or handoff",
			fault_switch_after);
	else
		ftd_log(LOG_WARN, "FTD_FAULT_SWITCH_AFTER=\"%s\" ignored: expected a count of placement writes", v);
}

/*
 * The test hook: the @writes-th placement write of a failover or a
 * handoff of @vm (ftd.lock held) is ftd's last.
 */
static void fault_point(unsigned long writes, const struct ftd_vm *vm,
			uint64_t since_ns, const char *what)
{
	if (!fault_switch_after || writes != fault_switch_after)
		return;
	ftd_log(LOG_WARN, "test hook: killed after %lu placement writes, %llu us after vm %s %s",
		writes, (unsigned long long)((monotonic_ns() - since_ns) / 1000),
		vm->name, what);
	raise(SIGKILL);
}

/*
 * The calling thread at SCHED_FIFO priority 10 (when it may: root or
 * CAP_SYS_NICE) while it switches sessions and makes them live
 * elsewhere, so that the busy services and clients on the same cores do
 * not stretch their outage; sched_lower() undoes it.
 */
struct sched_saved {
	struct sched_param sp;
	int policy;
	bool raised;
};

static void sched_raise(struct sched_saved *s)
{
	struct sched_param rt = { .sched_priority = 10 };

	s->raised = !pthread_getschedparam(pthread_self(), &s->policy, &s->sp) &&
		    !pthread_setschedparam(pthread_self(), SCHED_FIFO, &rt);
}

static void sched_lower(const struct sched_saved *s)
{
	if (s->raised)
		pthread_setschedparam(pthread_self(), s->policy, &s->sp);
}

/*
 * Placement @id becomes (@np, @nb): in the data path, then the model.
 * Its callers (a failover, a handoff) call model_moved() before and
 * after their writes, under the same ftd.lock.
 */
static int placement_switch(uint32_t id, uint32_t np, uint32_t nb)
{
	struct ftd_placement *p = &ftd.pl[id];

	if (dp_placement_set(ftd.dp, id, np, nb)) {
		ftd_log(LOG_ERR, "placement %u: %s", id, dp_errmsg());
		return -1;
	}
	if (ftd.pair[(p->primary << 10) | p->backup] == id)
		ftd.pair[(p->primary << 10) | p->backup] = 0;
	p->primary = np;
	p->backup = nb;
	return 0;
}

int failover_vm(uint32_t x, int reason, uint64_t event_ns)
{
	struct ftd_vm *vm = &ftd.cfg.vms[x];
	uint32_t moved = 0, lost = 0, stranded = 0;
	bool was_failed = vm->state == VM_FAILED;
	struct sched_saved saved;
	unsigned long writes = 0;
	uint64_t done;
	int err;

	if (!vm->used)
		return -ENOENT;
	model_moved();
	sched_raise(&saved);
	vm->state = VM_FAILED;
	vm->reason = reason;
	if (!was_failed)
		vm->fail_ns = event_ns;
	err = dp_vm_fence(ftd.dp, x, true);
	if (err)
		ftd_log(LOG_ERR, "vm %s: %s", vm->name, dp_errmsg());
	/*
	 * ftvm.ko armed the backups for 5 s when the VM failed.  A failover
	 * that starts late (a killed ftd's, finished now; or ftd was held
	 * up) has them armed again first: they hold the clients' segments
	 * until the sessions are live there, and the data plane sends the
	 * VM's sessions there again (ftvm_on_vm_failed) until switched.
	 */
	if (resuming || monotonic_ns() - event_ns > FTD_REARM_AFTER_NS) {
		err = module_vm_resume(vm);
		if (err)
			ftd_log(LOG_WARN, "vm %s: ftvm.ko did not arm the backups again (%s): a segment reaching a session not live yet may meet a reset",
				vm->name, strerror(-err));
	}
	/*
	 * The data path switches first; ftvm.ko's backups, armed by the
	 * failure, hold what reaches them for a session until it is live
	 * there (kmod/hold.c).  So no packet is lost in the failed VM while
	 * its last state is taken, staged and activated (repl_failover()).
	 */
	repl_failover_prepare(x, resuming);
	for (uint32_t id = 1; id < FTVM_MAX_PLACEMENTS; id++) {
		struct ftd_placement *p = &ftd.pl[id];
		uint32_t np, nb;
		bool was_primary;

		if (p->primary == x) {
			if (!p->backup || vm_failed(p->backup)) {
				stranded++;
				continue;
			}
			np = p->backup;
			nb = 0;
		} else if (p->primary && p->backup == x) {
			np = p->primary;
			nb = 0;
		} else {
			continue;
		}
		was_primary = p->primary == x;
		if (placement_switch(id, np, nb))
			continue;
		if (was_primary)
			moved++;
		else
			lost++;
		fault_point(++writes, vm, event_ns, "failed");
	}
	done = monotonic_ns();
	/* Every packet of the moved sessions now reaches its new primary. */
	repl_failover(x);
	repl_nudge();
	model_moved();
	sched_lower(&saved);
	/* Already failed: a killed ftd's failover, finished at start. */
	if (!was_failed || moved || lost) {
		ftd.failovers++;
		memset(&ftd.last, 0, sizeof(ftd.last));
		ftd.last.vm = x;
		snprintf(ftd.last.name, sizeof(ftd.last.name), "%s", vm->name);
		ftd.last.event_ns = event_ns;
		ftd.last.switch_us = (done - event_ns) / 1000;
		ftd.last.switch_done_ns = done;
		ftd.last.placements = moved + lost;
		ftd.last.reprotect_start_ns = done;
		ftd.last.resumed = was_failed;
	}
	rows_changed();
	if (!was_failed || moved || lost) {
		ftd_log(LOG_INFO, "vm %s failed (%s): %u placements switched to their backup, %u lost their backup, %u without a live replica; switched in %llu us",
			vm->name, fail_reason_name(reason), moved, lost,
			stranded, (unsigned long long)((done - event_ns) / 1000));
		ctl_event("{\"event\":\"failover\",\"vm\":\"%s\",\"id\":%u,\"reason\":\"%s\",\"placements_switched\":%u,\"backups_lost\":%u,\"stranded\":%u,\"switch_us\":%llu}",
			  vm->name, x, fail_reason_name(reason), moved, lost,
			  stranded, (unsigned long long)((done - event_ns) / 1000));
	}
	reprotect_kick();
	return (int)(moved + lost);
}

static void handoff_resume(uint32_t x);

void failover_resume(void)
{
	struct ftd_vm *latest = NULL;
	uint64_t now = monotonic_ns();

	for (uint32_t id = FTVM_VM_ID_MIN; id <= FTVM_VM_ID_MAX; id++) {
		struct ftd_vm *vm = &ftd.cfg.vms[id];

		if (!vm->used || vm->state != VM_FAILED)
			continue;
		if (!vm->fail_ns)
			vm->fail_ns = now;
		/*
		 * Placements left unswitched make it the last failover.  With
		 * ftvm.ko, the VM's sessions are made live on their new
		 * primaries, switched already or now (repl_failover_prepare()).
		 */
		resuming = true;
		failover_vm(id, vm->reason, vm->fail_ns);
		resuming = false;
		if (!latest || vm->fail_ns >= latest->fail_ns)
			latest = vm;
	}
	for (uint32_t id = FTVM_VM_ID_MIN; id <= FTVM_VM_ID_MAX; id++)
		if (ftd.cfg.vms[id].used && ftd.cfg.vms[id].state == VM_DRAINING)
			handoff_resume(id);
	if (ftd.last.event_ns || !latest || !work_remaining())
		return;
	/*
	 * Switched before the kill, re-protection unfinished: it belongs to
	 * the VM failed last (by ftvm.ko's failure time; without ftvm.ko
	 * every failed VM is stamped with ftd's start, the highest id wins).
	 */
	ftd.failovers++;
	ftd.last.vm = latest->id;
	snprintf(ftd.last.name, sizeof(ftd.last.name), "%s", latest->name);
	ftd.last.event_ns = latest->fail_ns;
	ftd.last.reprotect_start_ns = monotonic_ns();
	ftd.last.resumed = true;
	ftd_log(LOG_INFO, "re-protection after vm %s's failure resumed", latest->name);
}

int vm_rejoin(uint32_t x)
{
	struct ftd_vm *vm = &ftd.cfg.vms[x];
	int err;

	if (vm->state == VM_UP)
		return 0;
	if (vm->ifindex <= 0)
		return -ENODEV;
	/* The device may be a new one: fence it before it may answer. */
	err = dp_attach_fence(ftd.dp, vm->ifindex);
	if (!err)
		err = dp_vm_set(ftd.dp, x, vm->ifindex, vm->mac, 0);
	if (err)
		return err;
	model_moved();
	vm->state = VM_UP;
	vm->reason = FTVM_FAIL_NONE;
	vm->missed = 0;
	rows_changed();
	ftd_log(LOG_INFO, "vm %s is up: a target for new sessions and backups",
		vm->name);
	ctl_event("{\"event\":\"vm-up\",\"vm\":\"%s\",\"id\":%u}", vm->name, x);
	reprotect_kick();
	return 0;
}

int vm_drain(uint32_t x)
{
	struct ftd_vm *vm = &ftd.cfg.vms[x];
	int err;

	if (vm->state == VM_FAILED)
		return -EINVAL;
	if (vm->state == VM_DRAINING)
		return 0;
	/* In the data plane first: a restarted ftd goes on with it. */
	err = dp_vm_mark_draining(ftd.dp, x);
	if (err)
		return err;
	model_moved();
	vm->state = VM_DRAINING;
	vm->drain_ns = monotonic_ns();
	rows_changed();
	ftd_log(LOG_INFO, "vm %s draining: its sessions move to other VMs",
		vm->name);
	ctl_event("{\"event\":\"vm-drain\",\"vm\":\"%s\",\"id\":%u}", vm->name, x);
	reprotect_kick();
	return 0;
}

/*
 * Can the sessions of draining VM @x's placement with backup @b be handed
 * over to @b with their state?  When @x has a namespace their state is
 * taken from and @b is up (not draining) with a namespace to take them
 * in; and state replication runs (the caller's to check).
 */
static bool handoff_target(uint32_t x, uint32_t b)
{
	const struct ftd_vm *vm = &ftd.cfg.vms[b];

	return ftd.cfg.vms[x].netns[0] && !vm_failed(b) &&
	       vm->state == VM_UP && vm->netns[0];
}

/*
 * ftd starting (failover_resume(), before the replication thread): VM
 * @x was found draining, and the ftd that was killed may have been
 * half-way through its handoff: placements (X, B) switched to (B, none)
 * with their sessions staged on B, not live, B holding their clients'
 * segments for a while.  Every (B, none) whose B could have taken them
 * (up, with a namespace) is a candidate: B is armed again, and X, alive,
 * is dumped: the sessions of those placements that X still has are made
 * live on B from it and end on X (repl_handoff_resume()).  B's own
 * sessions are not in X's dump and stay as they are.
 */
static void handoff_resume(uint32_t x)
{
	bool armed[FTVM_VM_ID_MAX + 1] = { false };
	unsigned int n = 0;
	char err[256];
	uint32_t *to;
	long live;

	if (!ftd.have_module)
		return;
	to = calloc(FTVM_MAX_PLACEMENTS, sizeof(*to));
	if (!to)
		return;
	for (uint32_t id = 1; id < FTVM_MAX_PLACEMENTS; id++) {
		const struct ftd_placement *p = &ftd.pl[id];
		struct ftd_vm *b = &ftd.cfg.vms[p->primary];

		if (!p->primary || p->primary == x || p->backup ||
		    !handoff_target(x, p->primary))
			continue;
		if (!armed[p->primary]) {
			armed[p->primary] = true;
			if (module_vm_arm(b, err, sizeof(err)))
				ftd_log(LOG_WARN, "handoff: vm %s cannot hold for the sessions coming to it (%s)",
					b->name, err);
		}
		to[id] = p->primary;
		n++;
	}
	/*
	 * Said whenever it ran: the placement the killed ftd switched may
	 * hold no TCP session (UDP ones only, or none yet).
	 */
	if (n && (live = repl_handoff_resume(x, to)) >= 0)
		ftd_log(LOG_INFO, "vm %s draining: a killed ftd's handoff finished: %ld session%s live on their new primaries",
			ftd.cfg.vms[x].name, live, live == 1 ? "" : "s");
	repl_nudge();
	free(to);
}

/* Until when after it began draining a handoff waits for handshakes. */
#define FTD_DRAIN_HANDSHAKES_NS	3000000000ull

/*
 * A planned move: draining VM X is alive, and its sessions go on, on
 * their client connections, on their backups.  For every placement
 * (X, B) whose B can take them (handoff_target()):
 *   1. B is armed (FTVM_A_VM_ARM): for 5 s its namespace holds what
 *      reaches it for sessions it does not have live yet;
 *   2. X's sessions are dumped and B is given what it lacks of them,
 *      staged (repl_handoff_prepare()); unless the dump finds
 *      connections in their handshake on X (not yet sessions it can
 *      take), and X began draining less than FTD_DRAIN_HANDSHAKES_NS
 *      ago: then nothing is moved, and the handoff is tried again
 *      (-EAGAIN; handoff_draining());
 *   3. (X, B) becomes (B, none), one map write per placement: from here
 *      on their clients' segments go to B, which holds them, and what X
 *      sends for them is dropped by the fence (their primary is B);
 *   4. once X's sessions are quiet (nothing in flight to X left to
 *      answer), their last state is staged and activated on B, which
 *      lets in what it held, and nudged (repl_handoff());
 *   5. once every B has its sessions live, X's connections of them end
 *      without a packet (FTVM_CMD_SESSION_RETIRE).
 * Then re-protection gives (B, none) new backups.  Sessions whose backup
 * cannot take them over wait on X until re-protection has given them
 * one that can.  Without a namespace for X or B, or without state
 * replication, a draining VM's sessions move one by one, stateless
 * (target_of()).
 */
int handoff_vm(uint32_t x)
{
	static uint64_t warned_ns[FTVM_VM_ID_MAX + 1];
	static uint64_t waited[FTVM_VM_ID_MAX + 1];	/* drain_ns said */
	struct ftd_vm *vm = &ftd.cfg.vms[x];
	int8_t armed[FTVM_VM_ID_MAX + 1] = { 0 };
	uint64_t t0 = monotonic_ns(), done, since;
	struct sched_saved saved;
	unsigned long writes = 0;
	unsigned int n = 0;
	char err[256];
	uint32_t *to;
	bool wait;
	long hs;

	if (!vm->used || vm->state != VM_DRAINING || !repl_running())
		return 0;
	model_moved();
	to = calloc(FTVM_MAX_PLACEMENTS, sizeof(*to));
	if (!to)
		return 0;
	for (uint32_t id = 1; id < FTVM_MAX_PLACEMENTS; id++) {
		const struct ftd_placement *p = &ftd.pl[id];
		uint32_t b = p->backup;

		if (p->primary != x || !b || !handoff_target(x, b))
			continue;
		if (!armed[b]) {
			armed[b] = module_vm_arm(&ftd.cfg.vms[b], err, sizeof(err)) ?
				   -1 : 1;
			/* Tried again every pass: said once a minute. */
			if (armed[b] < 0 &&
			    (!warned_ns[b] || t0 - warned_ns[b] >= 60000000000ull)) {
				warned_ns[b] = t0;
				ftd_log(LOG_WARN, "handoff: vm %s cannot hold for the sessions coming to it (%s): they stay on vm %s for now",
					ftd.cfg.vms[b].name, err, vm->name);
			}
		}
		if (armed[b] > 0) {
			to[id] = b;
			n++;
		}
	}
	if (!n) {
		free(to);
		return 0;
	}
	since = t0 - vm->drain_ns;
	wait = since < FTD_DRAIN_HANDSHAKES_NS;
	hs = repl_handoff_prepare(x, to, wait);
	if (hs && wait) {
		if (waited[x] != vm->drain_ns) {
			waited[x] = vm->drain_ns;
			ftd_log(LOG_INFO, "vm %s draining: its handoff waits for %ld connection%s in their handshake there",
				vm->name, hs, hs == 1 ? "" : "s");
		}
		free(to);
		return -EAGAIN;
	}
	if (hs)
		ftd_log(LOG_WARN, "vm %s draining: %ld connection%s still in their handshake there after %llu ms, left behind: their clients will be reset",
			vm->name, hs, hs == 1 ? "" : "s",
			(unsigned long long)(since / 1000000));
	/* From the switch on, the sessions wait for us: as a failover. */
	sched_raise(&saved);
	for (uint32_t id = 1; id < FTVM_MAX_PLACEMENTS; id++) {
		if (!to[id])
			continue;
		if (placement_switch(id, to[id], 0)) {
			to[id] = 0;
			n--;
			continue;
		}
		fault_point(++writes, vm, vm->drain_ns, "began draining");
	}
	done = monotonic_ns();
	repl_handoff(x, to);
	repl_nudge();
	model_moved();
	sched_lower(&saved);
	free(to);
	ftd_log(LOG_INFO, "vm %s draining: %u placement%s handed over to their backups with their state; switched in %llu us, live there in %llu us",
		vm->name, n, n == 1 ? "" : "s",
		(unsigned long long)((done - t0) / 1000),
		(unsigned long long)((monotonic_ns() - t0) / 1000));
	ctl_event("{\"event\":\"handoff\",\"vm\":\"%s\",\"id\":%u,\"placements\":%u,\"switch_us\":%llu}",
		  vm->name, x, n, (unsigned long long)((done - t0) / 1000));
	reprotect_kick();
	return (int)n;
}

/*
 * A VM's handoff waits this long after it began draining: connections
 * it was accepting as it left the Maglev rows (no new session goes to it
 * after) finish their handshakes first.  A handshake's last ACK switched
 * to the backup would find the session nowhere: not yet established on
 * the drained VM, so in none of its dumps.  Handshakes still under way
 * then (a SYN-ACK lost and sent again after a second, a TCP_DEFER_ACCEPT
 * connection waiting for its client's first data) are waited for, every
 * FTD_HANDSHAKE_POLL_NS, until FTD_DRAIN_HANDSHAKES_NS after the drain
 * began (handoff_vm()).
 */
#define FTD_DRAIN_GRACE_NS	100000000ull
#define FTD_HANDSHAKE_POLL_NS	20000000ull

void handoff_draining(void)
{
	static uint64_t retry_ns;	/* the reprotect thread's alone */
	uint64_t now = monotonic_ns(), wait = 0;
	bool draining = false, again = false;

	if (!repl_running())
		return;
	for (uint32_t id = FTVM_VM_ID_MIN; id <= FTVM_VM_ID_MAX; id++) {
		const struct ftd_vm *vm = &ftd.cfg.vms[id];
		uint64_t since = now - CMM_LOAD_SHARED(vm->drain_ns);

		if (!CMM_LOAD_SHARED(vm->used) ||
		    CMM_LOAD_SHARED(vm->state) != VM_DRAINING)
			continue;
		draining = true;
		if (since < FTD_DRAIN_GRACE_NS && FTD_DRAIN_GRACE_NS - since > wait)
			wait = FTD_DRAIN_GRACE_NS - since;
	}
	/* Called before every re-protection batch: no lock when none is. */
	if (!draining)
		return;
	if (retry_ns > now && retry_ns - now > wait)
		wait = retry_ns - now;
	if (wait)
		nanosleep(&(struct timespec){ .tv_nsec = (long)wait }, NULL);
	pthread_mutex_lock(&ftd.lock);
	for (uint32_t id = FTVM_VM_ID_MIN; id <= FTVM_VM_ID_MAX; id++)
		if (ftd.cfg.vms[id].used && ftd.cfg.vms[id].state == VM_DRAINING &&
		    handoff_vm(id) == -EAGAIN)
			again = true;
	pthread_mutex_unlock(&ftd.lock);
	/* Back soon, not after the thread's idle second. */
	if (again) {
		retry_ns = monotonic_ns() + FTD_HANDSHAKE_POLL_NS;
		uatomic_set(&ftd.reprotect_pending, 1);
	}
}

void reprotect_kick(void)
{
	uatomic_set(&ftd.reprotect_pending, 1);
	pthread_cond_signal(&ftd.kick);
}

/* Where a session of placement @id goes; 0 when nowhere fits now. */
static uint32_t target_of(uint32_t id, const struct ftd_service *s,
			  const struct ftvm_flow *flow, const long *load)
{
	const struct ftd_placement *p = &ftd.pl[id];
	uint32_t np = p->primary, nb = p->backup;

	if (vm_failed(np)) {
		/* Both replicas gone: the session starts over elsewhere. */
		np = choose_primary_load(s, flow, load);
		if (!np)
			return 0;
		nb = choose_backup_load(s, np, flow, load);
	} else if (ftd.cfg.vms[np].state == VM_DRAINING && nb &&
		   !vm_failed(nb) && ftd.cfg.vms[nb].state != VM_DRAINING) {
		/*
		 * Hand the primary to the backup: with its state, the whole
		 * placement at once (handoff_vm()); else the session alone.
		 */
		if (repl_running() && handoff_target(np, nb))
			return 0;
		np = p->backup;
		nb = choose_backup_load(s, np, flow, load);
		if (!nb)
			nb = p->primary;
	} else if (!nb || vm_failed(nb) ||
		   ftd.cfg.vms[nb].state == VM_DRAINING) {
		nb = choose_backup_load(s, np, flow, load);
		if (!nb)
			return 0;
	} else {
		return 0;
	}
	if (np == p->primary && nb == p->backup)
		return 0;
	return placement_get(np, nb);
}

static struct ftvm_flow cursor;
static bool have_cursor;

long reprotect_pass(long budget, bool *more)
{
	static long load[FTVM_VM_ID_MAX + 1];
	const struct ftd_service *by_index[FTVM_MAX_SERVICES] = {};
	struct ftvm_flow *batch;
	struct cds_lfht_iter it;
	struct ftd_session *s;
	long n = 0, moved = 0;

	*more = false;
	batch = malloc(sizeof(*batch) * (size_t)budget);
	if (!batch)
		return -ENOMEM;

	/* Collect: lock-free, resuming after the last session handled. */
	urcu_memb_read_lock();
	if (have_cursor) {
		cds_lfht_lookup(ftd.sessions, (unsigned long)flow_hash(&cursor),
				session_match, &cursor, &it);
		if (cds_lfht_iter_get_node(&it))
			cds_lfht_next(ftd.sessions, &it);
		else
			cds_lfht_first(ftd.sessions, &it);
	} else {
		cds_lfht_first(ftd.sessions, &it);
	}
	for (struct cds_lfht_node *node; (node = cds_lfht_iter_get_node(&it));
	     cds_lfht_next(ftd.sessions, &it)) {
		s = caa_container_of(node, struct ftd_session, node);
		if (!needs_work(CMM_LOAD_SHARED(s->placement)))
			continue;
		batch[n++] = s->flow;
		if (n == budget) {
			*more = true;
			break;
		}
	}
	urcu_memb_read_unlock();
	have_cursor = *more;
	if (*more)
		cursor = batch[n - 1];
	if (!n) {
		free(batch);
		return 0;
	}

	/* Apply: under the model lock, each decision made again. */
	pthread_mutex_lock(&ftd.lock);
	for (int i = 0; i < FTVM_MAX_SERVICES; i++)
		if (ftd.cfg.svcs[i].used &&
		    ftd.cfg.svcs[i].index < FTVM_MAX_SERVICES)
			by_index[ftd.cfg.svcs[i].index] = &ftd.cfg.svcs[i];
	vm_loads(load);
	urcu_memb_read_lock();
	for (long i = 0; i < n; i++) {
		uint32_t old, nid;
		const struct ftd_placement *o, *np;
		int err;

		s = session_lookup(&batch[i]);
		if (!s)
			continue;
		old = s->placement;
		if (!needs_work(old))
			continue;
		nid = target_of(old,
				s->service < FTVM_MAX_SERVICES ?
				by_index[s->service] : NULL, &s->flow, load);
		if (!nid)
			continue;
		err = dp_session_move(ftd.dp, &s->flow, nid);
		if (err)
			continue;	/* gone from the map: sync drops it */
		CMM_STORE_SHARED(s->placement, nid);
		uatomic_dec(&ftd.pl[old].sessions);
		uatomic_inc(&ftd.pl[nid].sessions);
		o = &ftd.pl[old];
		np = &ftd.pl[nid];
		if (o->primary)
			load[o->primary]--;
		if (o->backup)
			load[o->backup]--;
		load[np->primary]++;
		if (np->backup)
			load[np->backup]++;
		moved++;
	}
	urcu_memb_read_unlock();
	ftd.last.reprotected += (uint64_t)moved;
	if (moved)
		model_moved();	/* once for the batch, under the same lock */
	pthread_mutex_unlock(&ftd.lock);
	free(batch);
	if (moved)
		repl_note();
	return moved;
}

static void sleep_until(uint64_t t)
{
	uint64_t now = monotonic_ns();
	struct timespec ts;

	if (t <= now)
		return;
	ts.tv_sec = (time_t)((t - now) / 1000000000ull);
	ts.tv_nsec = (long)((t - now) % 1000000000ull);
	nanosleep(&ts, NULL);
}

static void reprotect_finish(void)
{
	long left;

	pthread_mutex_lock(&ftd.lock);
	left = work_remaining();
	if (!left && ftd.last.event_ns && !ftd.last.done) {
		ftd.last.done = true;
		ftd.last.reprotect_done_ns = monotonic_ns();
		ftd_log(LOG_INFO, "re-protection after %s's failure done: %llu sessions in %llu ms",
			ftd.last.name, (unsigned long long)ftd.last.reprotected,
			(unsigned long long)((ftd.last.reprotect_done_ns -
					      ftd.last.reprotect_start_ns) / 1000000));
		ctl_event("{\"event\":\"reprotect-done\",\"vm\":\"%s\",\"sessions\":%llu,\"ms\":%llu}",
			  ftd.last.name, (unsigned long long)ftd.last.reprotected,
			  (unsigned long long)((ftd.last.reprotect_done_ns -
						ftd.last.reprotect_start_ns) / 1000000));
	}
	pthread_mutex_unlock(&ftd.lock);
}

void *reprotect_thread(void *arg)
{
	(void)arg;
	urcu_memb_register_thread();
	while (!CMM_LOAD_SHARED(ftd.stop)) {
		uint64_t t0;
		long moved = 0, n;
		bool more;
		struct timespec ts;

		pthread_mutex_lock(&ftd.lock);
		if (!uatomic_read(&ftd.reprotect_pending)) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&ftd.kick, &ftd.lock, &ts);
		}
		uatomic_set(&ftd.reprotect_pending, 0);
		pthread_mutex_unlock(&ftd.lock);

		t0 = monotonic_ns();
		do {
			/*
			 * Draining VMs' sessions that can go with their state:
			 * before each batch, not after a paced pass's last.
			 */
			handoff_draining();
			n = reprotect_pass(ftd.cfg.reprotect_batch, &more);
			if (n > 0)
				moved += n;
			if (ftd.cfg.reprotect_rate)
				sleep_until(t0 + (uint64_t)moved * 1000000000ull /
					    ftd.cfg.reprotect_rate);
		} while ((more || n > 0) && !CMM_LOAD_SHARED(ftd.stop));
		reprotect_finish();
	}
	urcu_memb_unregister_thread();
	return NULL;
}
