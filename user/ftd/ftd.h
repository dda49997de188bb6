/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ftd: the ftvm control plane.  Documentation/ftd.rst explains it.
 *
 * Threads (every one registered with urcu-memb):
 *   main      epoll loop: control socket, ftvm.ko events or rtnetlink
 *             link events, prober verdicts, signals, the tick; runs
 *             failovers (they are short: placements only).
 *   prober    heartbeats: one probe per VM every interval.
 *   sync      mirrors the sessions map into the session table.
 *   reprotect gives every session without a backup a new one, paced.
 *
 * The model (VMs, services, placements, policies) is guarded by
 * ftd.lock, which control commands (ctl.c) hold while they run.  The
 * session table is an RCU lock-free hash table: commands walk it in an
 * RCU read-side section, and the sync thread, which never takes
 * ftd.lock, keeps writing it meanwhile (reprotect takes ftd.lock for
 * each batch it applies).
 */
#ifndef FTD_H
#define FTD_H

#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#define _LGPL_SOURCE
#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>

#include "../../kmod/uapi/ftvm.h"
#include "../lib/util.h"
#include "dataplane.h"

#define FTD_CONF		"/etc/ftvm/ftd.conf"
#define FTD_SOCK		"/run/ftvm/ftd.sock"
#define FTD_NAME_LEN		32
#define FTD_MAX_ATTACH		8

enum vm_state {
	VM_UP = 1,
	VM_FAILED,
	VM_DRAINING,
};

/* Why a VM failed: ftvm.ko's reasons, then ftd's own. */
enum {
	FTD_FAIL_HEARTBEAT = FTVM_FAIL_MAX + 1,
};

enum probe_kind {
	PROBE_NONE,
	PROBE_ICMP,
	PROBE_TCP,
};

struct probe_cfg {
	enum probe_kind kind;
	struct sockaddr_storage addr;	/* port set for TCP */
	socklen_t addrlen;
	uint32_t interval_ms;
	uint32_t misses;
};

struct ftd_vm {
	bool used;
	uint32_t id;
	char name[FTD_NAME_LEN];
	char dev[IF_NAMESIZE];
	int ifindex;			/* 0: device gone */
	uint8_t mac[6];
	bool has_mac;
	uint32_t capacity;		/* relative weight, 1..1000 */
	char domain[FTD_NAME_LEN];	/* failure domain ("" = own name) */
	char netns[64];			/* its network namespace: NAME or PID */
	bool silent_exit;		/* killed processes fail it (ftvm.ko) */
	struct probe_cfg probe;
	enum vm_state state;
	int reason;			/* enum ftvm_fail_reason or FTD_FAIL_* */
	uint64_t fail_ns;		/* CLOCK_MONOTONIC */
	uint64_t drain_ns;		/* when it began draining (the same) */
	/* prober bookkeeping, prober thread only */
	uint32_t missed;
	uint64_t probe_due_ns;
};

enum criterion {
	CRIT_HASH = 1,		/* consistent hashing, weighted by capacity */
	CRIT_LEAST_LOADED,	/* fewest sessions per unit of capacity */
};

struct ftd_service {
	bool used;
	char name[FTD_NAME_LEN];
	struct ftvm_service_key key;
	uint32_t index;			/* data-plane index */
	enum criterion criterion;
	bool anti_affinity;
	uint32_t repl_interval_ms;	/* for state replication */
	enum ftvm_commit_mode commit;	/* output commit in ftvm.ko */
	uint32_t ckpt_wait_ms;		/* strict: a commit's checkpoint wait */
};

#define FTD_CKPT_WAIT_MS	20	/* default ckpt-wait */

/* A placement as ftd sees it; sessions counts the session table. */
struct ftd_placement {
	uint32_t primary, backup;	/* VM ids; primary 0: free */
	long sessions;			/* uatomic */
};

/* One entry of the session table. */
struct ftd_session {
	struct cds_lfht_node node;
	struct ftvm_flow flow;
	uint32_t placement;		/* CMM_LOAD/STORE_SHARED */
	uint32_t service;
	uint64_t seen;			/* sync generation */
	/* State replication (replicate.c): uatomic, 0 = never. */
	uint64_t replicated_ns;		/* backup last brought up to date */
	uint32_t staged_on;		/* the VM holding its staged state */
	struct rcu_head rcu;
};

struct ftd_cfg {
	char path[256];			/* the config file */
	char sock[108];
	char pin_dir[256];
	enum criterion criterion;	/* default for services */
	bool anti_affinity;
	uint32_t repl_interval_ms;
	uint32_t reprotect_rate;	/* sessions per second, 0 = unpaced */
	uint32_t reprotect_batch;
	uint32_t scan_ms;		/* session map scan period */
	uint32_t forget_ms;		/* forget-closed: age, 0 = never */
	uint32_t udp_idle_ms;		/* forget-idle-udp: idle, 0 = never */
	struct {
		char dev[IF_NAMESIZE];
		bool generic;
	} attach[FTD_MAX_ATTACH];
	int nattach;
	struct ftd_vm vms[FTVM_VM_ID_MAX + 1];
	struct ftd_service svcs[FTVM_MAX_SERVICES];
};

struct failover_rec {
	uint32_t vm;
	char name[FTD_NAME_LEN];
	uint64_t event_ns;		/* failure event received */
	uint64_t switch_us;		/* event to last placement written */
	uint64_t switch_done_ns;	/* the last placement written */
	uint32_t placements;		/* rewritten */
	uint64_t reprotect_start_ns, reprotect_done_ns;
	uint64_t reprotected;		/* sessions given a new backup */
	bool done;
	bool resumed;			/* a failover a killed ftd began */
};

struct ftd {
	pthread_mutex_t lock;		/* the model below */
	pthread_cond_t kick;		/* wakes reprotect */
	struct ftd_cfg cfg;		/* vms[] and svcs[] are the model */
	struct ftd_placement pl[FTVM_MAX_PLACEMENTS];
	uint16_t *pair;			/* [primary << 10 | backup] -> id */
	struct dp *dp;
	bool have_module;		/* ftvm.ko answered */
	struct cds_lfht *sessions;
	unsigned long nsessions;	/* uatomic */
	uint64_t hash_seed;
	volatile bool stop;
	struct failover_rec last;	/* the last failover */
	unsigned long failovers;
	uint64_t reprotect_pending;	/* work flag for reprotect */
	uint64_t start_ns;
	/*
	 * Bumped (uatomic, ftd.lock held where it can be) by whatever may
	 * make a session live in another VM: a placement written, sessions
	 * moved, a failover or handoff, a VM registered or changed; and
	 * when.  Forgetting closed sessions (replicate.c) acts only if
	 * none came since it looked, and not soon after one.
	 */
	unsigned long moves;
	uint64_t moved_ns;
	unsigned long forgotten;	/* closed sessions forgotten; uatomic */
	unsigned long udp_forgotten;	/* idle UDP sessions forgotten; uatomic */
};

extern struct ftd ftd;

/* log.c-like helpers in main.c */
void ftd_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#define LOG_ERR		3
#define LOG_WARN	4
#define LOG_INFO	6
#define LOG_DBG		7

/* config.c */
struct cfg_err {
	char msg[256];
};
int cfg_load(const char *path, struct ftd_cfg *c, struct cfg_err *e);
int cfg_save(const struct ftd_cfg *c);
void cfg_defaults(struct ftd_cfg *c);
/* Parse "vm NAME ..." words into @vm (argv[0] is the name); 0 or -1. */
int cfg_parse_vm(struct ftd_cfg *c, int argc, char **argv, struct ftd_vm *vm,
		 bool update, char *err, size_t errlen);
int cfg_parse_service(struct ftd_cfg *c, int argc, char **argv,
		      struct ftd_service *s, bool update, char *err,
		      size_t errlen);
int cfg_parse_service_key(const char *s, struct ftvm_service_key *k);
/* "ADDR" (without @want_port) or "ADDR:PORT" / "[ADDR6]:PORT": 0 or -1. */
int cfg_parse_sockaddr(const char *s, bool want_port,
		       struct sockaddr_storage *ss, socklen_t *len);
void cfg_format_service_key(const struct ftvm_service_key *k, char *buf,
			    size_t len);
void cfg_format_vm(const struct ftd_vm *vm, FILE *f);
void cfg_format_probe(const struct probe_cfg *p, char *buf, size_t len);
void cfg_format_service(const struct ftd_service *s, FILE *f);
const char *crit_name(enum criterion c);
const char *commit_mode_name(enum ftvm_commit_mode m);
const char *fail_reason_name(int r);
const char *vm_state_name(enum vm_state s);
/* The steering map's flags for @vm's state (FTVM_VM_F_FENCED, _DRAINING). */
uint16_t vm_dp_flags(const struct ftd_vm *vm);

/* model.c */
int model_init(void);
struct ftd_vm *vm_by_name(const char *name);
struct ftd_vm *vm_by_ifindex(int ifindex);
struct ftd_service *svc_by_name(const char *name);
bool vm_target(const struct ftd_vm *vm);
/* Placement (primary, backup), allocated when new; 0 when full. */
uint32_t placement_get(uint32_t primary, uint32_t backup);
/*
 * Pick a backup for a session on @primary (0 if none fits) or a new
 * primary, by the service's criterion; @load (replicas per VM id) is
 * what least-loaded weighs, NULL for hash.
 */
uint32_t choose_backup_load(const struct ftd_service *s, uint32_t primary,
			    const struct ftvm_flow *flow, const long *load);
uint32_t choose_primary_load(const struct ftd_service *s,
			     const struct ftvm_flow *flow, const long *load);
void placement_gc(uint64_t scan_start_ns);
/* Something may have made sessions live elsewhere (ftd.moves). */
void model_moved(void);
void maglev_forget(uint32_t index);
void maglev_refresh_least_loaded(void);
int maglev_refresh(const struct ftd_service *s);
int maglev_refresh_all(void);
bool session_protected(uint32_t placement);
/* Load placements and sessions back from the pinned maps. */
int model_recover(void);
void vm_counts(uint32_t id, long *primary, long *backup);
/* Replicas (primary + backup) per VM id, from the placements' counts. */
void vm_loads(long *load);
long unprotected_sessions(void);
uint64_t flow_hash(const struct ftvm_flow *f);

/* sessions.c */
int sessions_init(void);
void *sync_thread(void *arg);
/* One sync pass; returns the session count or a negative errno. */
long sessions_sync(void);
struct ftd_session *session_lookup(const struct ftvm_flow *flow);
int session_match(struct cds_lfht_node *node, const void *key);
/* Out of the table (its map entry deleted first); ftd.lock held. */
bool session_forget(const struct ftvm_flow *flow);
long work_remaining(void);

/* failover.c */
/*
 * Fail @vm: fence, switch placements, kick re-protection. Lock held.
 * Returns the placements switched (a VM already failed: those a killed
 * ftd left), or -ENOENT.
 */
int failover_vm(uint32_t vm, int reason, uint64_t event_ns);
/*
 * ftd starting, lock held: finish the failover of every VM found failed
 * and, when a killed ftd left one unfinished (placements to switch or
 * sessions to re-protect), report it as the last failover.
 */
void failover_resume(void);
/*
 * Test hook: FTD_FAULT_SWITCH_AFTER=N in the environment (read once, at
 * start) kills ftd with SIGKILL after the N-th placement write of a
 * failover or of a drain's handoff (Documentation/ftd.rst).
 */
void failover_fault_init(void);
/* Bring a failed VM back as a target (nothing moves back). Lock held. */
int vm_rejoin(uint32_t vm);
/*
 * Drain @vm: no new sessions, its sessions moved off it; flagged in the
 * data plane so that it outlives ftd.  Nothing changes on an error.
 * Lock held.
 */
int vm_drain(uint32_t vm);
/*
 * Hand the sessions of draining VM @vm over to their backups with their
 * state, a placement at a time (ftd.lock held); the placements handed
 * over, or 0 (nothing to hand over, or no state replication), or
 * -EAGAIN: not yet, connections are in their handshake there.
 */
int handoff_vm(uint32_t vm);
/* Every draining VM's (the reprotect thread; takes ftd.lock). */
void handoff_draining(void);
void *reprotect_thread(void *arg);
/* Re-protect up to @budget sessions now; returns how many moved. */
long reprotect_pass(long budget, bool *more);
void reprotect_kick(void);

/* replicate.c: state replication, with ftvm.ko only. */
/*
 * Ready to take a failed VM's state (netlink, locks), before
 * failover_resume(); repl_start() opens it if need be, then starts the
 * replication thread.
 */
int repl_open(void);
int repl_start(void);
void repl_stop(void);
/* Is state replication running (ftvm.ko answered, repl_start() ok)? */
bool repl_running(void);
/* The name of session @f as its VM (and ftvm.ko) sees it. */
struct ftvm_tuple;
void flow_tuple(const struct ftvm_flow *f, struct ftvm_tuple *t);
/*
 * Failover of @x, ftd.lock held: _prepare() before its placements
 * switch (notes each one's backup), repl_failover() right after (takes
 * the last state of @x's sessions and makes it live on each one's
 * backup, nudging each backup's as soon as it has them: they resume at
 * once), then repl_nudge() (what is left to nudge, and the report).
 */
/*
 * With @resume (failover_resume(): finishing a killed ftd's failover),
 * placements already switched, (X, B) become (B, none), count too, and
 * X's sessions are dumped even though this ftd never replicated them;
 * those its dump lacks go on from what B had staged.
 */
void repl_failover_prepare(uint32_t x, bool resume);
void repl_failover(uint32_t x);
/*
 * A planned move (handoff_vm()), ftd.lock held: _prepare() notes for
 * each placement id the backup @to[id] taking its sessions over from @x
 * (0: not moved), and stages on each what it lacks; then, the placements
 * switched (@to again: 0 where that failed), repl_handoff() takes the
 * sessions' last state once they are quiet and makes it live on the
 * backups, as a failover does; then repl_nudge().  _prepare() returns
 * the connections @x's dump found in their handshake on its TCP services;
 * with @wait, if there are any, it does nothing more (no handoff).
 */
long repl_handoff_prepare(uint32_t x, const uint32_t *to, bool wait);
/*
 * A restarted ftd finishing a killed one's handoff of draining VM @x
 * (ftd.lock held, before the replication thread starts): for each
 * placement id, @to[id] is the primary of a placement (B, none) that may
 * hold sessions switched from @x to B and not made live there.  @x is
 * alive: those its dump has are made live on B from it, as repl_handoff()
 * does, and end on @x; the others (B's own) are left as they are.
 * Returns the sessions made live, or -1 when state replication is off.
 */
long repl_handoff_resume(uint32_t x, const uint32_t *to);
void repl_handoff(uint32_t x, const uint32_t *to);
void repl_nudge(void);
/* Is @s's state staged on its current backup (or not replicated)? */
bool repl_session_staged(const struct ftd_session *s, uint32_t backup);
/* Some session may need staging (learned, backup moved): a round now. */
void repl_note(void);

/*
 * commit.c: each service's output commit, pushed to ftvm.ko
 * (FTVM_CMD_COMMIT_SET); main thread, lock held.
 */
struct ftvm_commit;
/* At start, early: a strict service without ftvm.ko is refused. */
int commit_check(void);
/* Then: every strict service set, strict leftovers relaxed. */
int commit_start(void);
/*
 * A service changes from @old to @new (NULL: added, or deleted): set
 * @new strict in ftvm.ko if it is, and the old key relaxed when it no
 * longer is.  Refused (nothing changed, the reason in @err) when @new is
 * strict and ftvm.ko is absent or says no.
 */
int commit_update(const struct ftd_service *old, const struct ftd_service *new,
		  char *err, size_t len);
/* Clean exit: every strict service relaxed, so nothing stays held. */
void commit_stop(void);
/*
 * ftvm.ko's entry for strict @s, with its counters: 0, or -ENOENT (not
 * strict there) or another -errno with the reason in @err.
 */
int commit_counters(const struct ftd_service *s, struct ftvm_commit *out,
		    char *err, size_t len);

/*
 * ftvm.ko's view of the sessions of the strict services: when each one's
 * backup was last brought up to date, by a commit or by ftd.  Loaded
 * once per "session show" (commit_view_load(): 0 or -errno, the view
 * empty), asked per session, freed.
 */
struct commit_view {
	struct commit_seen *v;
	size_t n, cap;
};
int commit_view_load(struct commit_view *cv);
/* ms since @f's backup was brought up to date, or -1 if not known. */
int64_t commit_view_staged_ms(const struct commit_view *cv,
			      const struct ftvm_flow *f);
void commit_view_free(struct commit_view *cv);

/*
 * A request ftvm.ko refused for want of memory changed nothing: ftd sends
 * it again, this many times, 1, 2, 4, ... ms apart (63 ms in all), on
 * every socket it has to ftvm.ko, rather than lose what it was for (a
 * session's last state, its activation on the backup, a VM's
 * registration).
 */
#define FTD_NOMEM_RETRIES	6

/*
 * Before try *@tries + 1 of a request the kernel had no memory for: false
 * once FTD_NOMEM_RETRIES are spent, else sleeps 1, 2, 4, ... ms (and
 * counts the try).
 */
static inline bool nomem_backoff(unsigned int *tries)
{
	if (*tries >= FTD_NOMEM_RETRIES)
		return false;
	nanosleep(&(struct timespec){ .tv_nsec = 1000000L << (*tries)++ }, NULL);
	return true;
}

/* detect.c */
int detect_module_open(void);
int detect_module_fd(void);
void detect_module_read(void);
int module_vm_register(struct ftd_vm *vm, char *err, size_t len);
int module_vm_unregister(struct ftd_vm *vm, char *err, size_t len);
int module_vm_fail(struct ftd_vm *vm);
/*
 * Finishing @vm's failover after a restart: failed already, ftvm.ko
 * arms the other VMs' holds again and its tracepoint flags @vm anew.
 */
int module_vm_resume(struct ftd_vm *vm);
/*
 * Sessions are about to be handed over to @vm: its namespace holds for
 * 5 s what reaches it for sessions it does not have yet (FTVM_A_VM_ARM).
 */
int module_vm_arm(struct ftd_vm *vm, char *err, size_t len);
int module_vm_up(struct ftd_vm *vm, char *err, size_t len);
/* Mirror a changed netns or silent-exit of a VM that stays as it is. */
int module_vm_update(struct ftd_vm *vm, char *err, size_t len);
int module_sync_registry(void);

/*
 * @vm's ingress hold from ftvm.ko (kmod/hold.c): 0; -ENOENT when there
 * is none to tell of (no module, no namespace for the VM there); another
 * -errno on error.
 */
struct ftnl_hold;
int module_vm_hold(const struct ftd_vm *vm, struct ftnl_hold *h);
int detect_rtnl_open(void);
int detect_rtnl_fd(void);
void detect_rtnl_read(void);
void detect_link_check_all(void);
void *prober_thread(void *arg);
int prober_fd(void);		/* eventfd: verdicts to collect */
void prober_collect(void);

/* ctl.c */
int ctl_open(const char *path);
void ctl_accept(void);
void ctl_event(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int ctl_listen_fd(void);
void ctl_close(void);
int ctl_handle_fd(int fd);	/* a client fd became readable */

#endif
