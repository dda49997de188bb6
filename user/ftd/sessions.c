// SPDX-License-Identifier: GPL-2.0
/*
 * The session table: an RCU lock-free hash table (rculfhash, urcu-memb)
 * mirroring the data plane's sessions map, keyed by the flow.
 *
 * Writers: the sync thread adds the sessions ftvm_steer created, as it
 * tells them in its ring (ftvm_new_sessions), at once; every
 * scan-interval it sweeps the session maps, adding what a full ring
 * lost and removing what the LRU map dropped.  The reprotect thread changes the
 * placement of existing ones (under ftd.lock, after the map).  Readers
 * (listings, status) take no lock.  The per-placement session counts
 * (ftd.pl[].sessions) follow every change atomically.
 *
 * The sweep also forgets idle UDP sessions (forget-idle-udp): a UDP
 * flow never closes, and its entry would otherwise stay until the LRU
 * map needs room, when the entry it drops may be a live TCP session's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/libbpf.h>

#include "ftd.h"

static uint64_t sync_gen;	/* of the last sweep; sync thread only */

int sessions_init(void)
{
	ftd.sessions = cds_lfht_new_flavor(1024, 1024, 0,
					   CDS_LFHT_AUTO_RESIZE |
					   CDS_LFHT_ACCOUNTING,
					   &urcu_memb_flavor, NULL);
	return ftd.sessions ? 0 : -ENOMEM;
}

int session_match(struct cds_lfht_node *node, const void *key)
{
	const struct ftd_session *s =
		caa_container_of(node, struct ftd_session, node);

	return !memcmp(&s->flow, key, sizeof(s->flow));
}

/* Caller in a read-side critical section. */
struct ftd_session *session_lookup(const struct ftvm_flow *flow)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *node;

	cds_lfht_lookup(ftd.sessions, (unsigned long)flow_hash(flow),
			session_match, flow, &it);
	node = cds_lfht_iter_get_node(&it);
	return node ? caa_container_of(node, struct ftd_session, node) : NULL;
}

static void session_free(struct rcu_head *head)
{
	free(caa_container_of(head, struct ftd_session, rcu));
}

struct sync_ctx {
	uint64_t gen;
	long added;
	/* The sweep's: UDP sessions idle since before @idle_before. */
	uint64_t idle_before;		/* 0: none wanted */
	struct ftvm_flow *idle;
	size_t nidle, idle_cap;
};

/*
 * Has @v been idle since before @before?  Its last packet came less
 * than a grain after it was last seen (ftvm_dp.h); an entry with no
 * time is never idle.
 */
static bool session_idle(const struct ftvm_session *v, uint64_t before)
{
	uint64_t since = ftvm_session_seen_ns(v);

	return since && since + FTVM_SEEN_GRAIN_NS <= before;
}

static void idle_note(struct sync_ctx *c, const struct ftvm_flow *flow)
{
	if (c->nidle == c->idle_cap) {
		size_t n = c->idle_cap ? 2 * c->idle_cap : 256;
		struct ftvm_flow *v = realloc(c->idle, n * sizeof(*v));

		if (!v)
			return;	/* the next sweep finds it again */
		c->idle = v;
		c->idle_cap = n;
	}
	c->idle[c->nidle++] = *flow;
}

static void sync_one(const struct ftvm_flow *flow, const struct ftvm_session *v,
		     void *arg)
{
	struct sync_ctx *c = arg;
	struct ftd_session *s, *old;
	struct cds_lfht_node *ret;

	if (c->idle_before && flow->proto == IPPROTO_UDP &&
	    session_idle(v, c->idle_before))
		idle_note(c, flow);
	urcu_memb_read_lock();
	old = session_lookup(flow);
	if (old) {
		CMM_STORE_SHARED(old->seen, c->gen);
		urcu_memb_read_unlock();
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		urcu_memb_read_unlock();
		return;
	}
	cds_lfht_node_init(&s->node);
	s->flow = *flow;
	s->placement = v->placement < FTVM_MAX_PLACEMENTS ? v->placement : 0;
	s->service = v->service;
	s->seen = c->gen;
	/* Counted before it becomes visible to reprotect. */
	uatomic_inc(&ftd.pl[s->placement].sessions);
	ret = cds_lfht_add_unique(ftd.sessions, (unsigned long)flow_hash(flow),
				  session_match, &s->flow, &s->node);
	if (ret != &s->node) {
		uatomic_dec(&ftd.pl[s->placement].sessions);
		free(s);
	} else {
		uatomic_inc(&ftd.nsessions);
		c->added++;
	}
	urcu_memb_read_unlock();
}

/* @s out of the table, uncounted, freed after a grace period. */
static bool session_del(struct ftd_session *s)
{
	if (cds_lfht_del(ftd.sessions, &s->node))
		return false;	/* another thread's already */
	uatomic_dec(&ftd.pl[s->placement].sessions);
	uatomic_dec(&ftd.nsessions);
	urcu_memb_call_rcu(&s->rcu, session_free);
	return true;
}

bool session_forget(const struct ftvm_flow *flow)
{
	struct ftd_session *s;
	bool gone;

	urcu_memb_read_lock();
	s = session_lookup(flow);
	gone = s && session_del(s);
	urcu_memb_read_unlock();
	return gone;
}

/* Hold ftd.lock for this many idle sessions at most. */
#define IDLE_HOLD	256

/*
 * Forget the idle UDP sessions a sweep found: each deleted from the map,
 * then from the table, if its entry is still idle (a datagram since
 * keeps it).  A datagram that comes after that is placed anew, as a new
 * session's is: on the service's row, which for an unchanged row is the
 * same placement.  Returns how many were forgotten.
 */
static long forget_idle(const struct sync_ctx *c)
{
	long gone = 0;

	for (size_t i = 0; i < c->nidle; i += IDLE_HOLD) {
		pthread_mutex_lock(&ftd.lock);
		for (size_t j = i; j < c->nidle && j < i + IDLE_HOLD; j++) {
			struct ftvm_session e;

			if (dp_session_get(ftd.dp, &c->idle[j], &e) ||
			    !session_idle(&e, c->idle_before) ||
			    dp_session_del(ftd.dp, &c->idle[j]))
				continue;
			session_forget(&c->idle[j]);
			gone++;
		}
		pthread_mutex_unlock(&ftd.lock);
	}
	return gone;
}

/* New sessions are in the table: they want backups and their state staged. */
static void learned(void)
{
	reprotect_kick();
	repl_note();
}

/*
 * One pass: add what the map has and the table lacks, then remove what
 * this pass did not see (the LRU map evicted it).  A session the data
 * plane creates during the pass is either seen or added next time.
 */
long sessions_sync(void)
{
	struct sync_ctx c = { .gen = ++sync_gen };
	uint64_t idle = (uint64_t)CMM_LOAD_SHARED(ftd.cfg.udp_idle_ms) *
			1000000ull;
	struct cds_lfht_iter it;
	struct ftd_session *s;
	uint64_t start = monotonic_ns();
	long n, removed = 0, idled = 0;

	if (idle && start > idle)
		c.idle_before = start - idle;
	n = dp_session_scan(ftd.dp, sync_one, &c);
	if (n < 0) {
		ftd_log(LOG_ERR, "session scan: %s", dp_errmsg());
		free(c.idle);
		return n;
	}
	urcu_memb_read_lock();
	cds_lfht_for_each_entry(ftd.sessions, &it, s, node) {
		if (CMM_LOAD_SHARED(s->seen) == c.gen)
			continue;
		pthread_mutex_lock(&ftd.lock);
		if (session_del(s))
			removed++;
		pthread_mutex_unlock(&ftd.lock);
	}
	urcu_memb_read_unlock();
	if (c.nidle) {
		idled = forget_idle(&c);
		free(c.idle);
		if (idled) {
			uatomic_add(&ftd.udp_forgotten, idled);
			ftd_log(LOG_DBG, "forgot %ld idle UDP session%s", idled,
				idled == 1 ? "" : "s");
		}
	}
	pthread_mutex_lock(&ftd.lock);
	placement_gc(start);
	if (c.added || removed || idled)
		maglev_refresh_least_loaded();
	pthread_mutex_unlock(&ftd.lock);
	if (c.added)
		learned();
	return n;
}

/* A session ftvm_steer has just created: in the table at once. */
static int on_new_session(void *ctx, void *data, size_t len)
{
	const struct ftvm_new_session *ev = data;

	if (len >= sizeof(*ev))
		sync_one(&ev->flow, &ev->s, ctx);
	return 0;
}

#define SYNC_STOP_MS	200

void *sync_thread(void *arg)
{
	struct sync_ctx ev = { 0 };
	struct ring_buffer *rb = NULL;
	bool warned = false;
	uint64_t next = 0;
	int err, fd;

	(void)arg;
	urcu_memb_register_thread();
	fd = dp_new_sessions_fd(ftd.dp);
	if (fd >= 0)
		rb = ring_buffer__new(fd, on_new_session, &ev, NULL);
	if (!rb)
		ftd_log(LOG_WARN, "no new-session ring (%s): sessions are learned every scan-interval only",
			strerror(errno));
	while (!CMM_LOAD_SHARED(ftd.stop)) {
		uint64_t now = monotonic_ns();
		int ms;

		if (now >= next) {
			sessions_sync();
			/* Under the lock: VM changes write the devmaps too. */
			pthread_mutex_lock(&ftd.lock);
			err = dp_devmaps_sync(ftd.dp);
			if (err < 0 && !warned)
				ftd_log(LOG_WARN, "devmaps: %s", dp_errmsg());
			warned = err < 0;
			pthread_mutex_unlock(&ftd.lock);
			next = now + (uint64_t)ftd.cfg.scan_ms * 1000000ull;
			continue;
		}
		ms = (int)((next - now + 999999) / 1000000);
		/* A stop is seen within this, whatever scan-interval is. */
		if (ms > SYNC_STOP_MS)
			ms = SYNC_STOP_MS;
		if (!rb) {
			struct timespec ts = { .tv_sec = ms / 1000,
					       .tv_nsec = (long)(ms % 1000) * 1000000 };

			nanosleep(&ts, NULL);
			continue;
		}
		ev.gen = sync_gen;
		ev.added = 0;
		ring_buffer__poll(rb, ms);
		if (ev.added) {
			pthread_mutex_lock(&ftd.lock);
			maglev_refresh_least_loaded();
			pthread_mutex_unlock(&ftd.lock);
			learned();
		}
	}
	ring_buffer__free(rb);
	urcu_memb_unregister_thread();
	return NULL;
}
