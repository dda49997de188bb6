// SPDX-License-Identifier: GPL-2.0
/*
 * State replication: every TCP session's state, from its primary VM to
 * its backup VM, staged there by ftvm.ko (Documentation/replication.rst).
 *
 * This file is ftd's only user of ftvm.ko's session-state requests, so
 * that a change of the record format touches nothing else.  Records are
 * handled as opaque attribute runs: an FTVM_A_SESSION nest and the
 * FTVM_A_SNDQ/FTVM_A_RCVQ attributes after it; only the nest's 5-tuple
 * is read.  A dump message may carry any number of records.
 *
 * The replication thread (registered with urcu-memb) runs each service
 * at its interval: per live primary VM, an incremental SESSION_GET
 * (SINCE the generation of the previous one; a complete one every
 * REPL_FULL_EVERY rounds forgets closed sessions), each record kept in
 * a cache keyed by the flow, then, for every backup VM whose set of
 * records changed, the records it should no longer hold are discarded
 * by name and the new or changed ones staged (RESTORE with STAGE, in
 * batches).  A session whose primary reported no change is up to date
 * as of that round.
 *
 * A strict service's sessions are kept covering what their clients saw
 * by ftvm.ko's commits, on demand: ftd only has to stage each on its
 * backup once (a new session, a new backup).  Its rounds dump a VM only
 * when something may need that (repl_note(): sessions learned, backups
 * moved, a VM's staged records discarded) and at least once a second
 * (the cache, closed sessions); a dump does not stage again a session
 * already staged on its backup.  Each dump is incremental, so the cache
 * it stages from is current.
 *
 * Failover (repl_failover(), main thread, ftd.lock held, right after the
 * data path switched to the backups, which hold what reaches them until
 * the sessions are live: kmod/hold.c): a last incremental dump from the
 * failed VM's namespace where it still exists (a deleted device leaves
 * the sockets there), then, per backup (as before the switch: noted by
 * repl_failover_prepare()), exactly the failed VM's records are staged;
 * its other staged records stay.  They are activated in rounds
 * (take_over()): on every backup the sessions a client waits for
 * (take_held()), then the next TAKEOVER_CHUNK others by name
 * (activate()).
 *
 * A handoff (repl_handoff_prepare(), then repl_handoff(); ftd.lock held,
 * a drain: handoff_vm()) moves a live VM's sessions the same way, with
 * two differences: each backup is given what it lacks before the switch,
 * and the last dumps go on until the sessions are quiet.  The VM keeps
 * their sockets, fenced; its later dumps of them are not their state
 * (dump_cb() skips a session whose primary is another VM).
 *
 * ftd never discards a backup's staged records wholesale: ftvm.ko's
 * strict output commit stages newer records of the same sessions there
 * than ftd's cache has, and they must survive until they are replaced
 * by newer ones or activated.  What a VM holds and should not (closed
 * sessions, sessions whose backup moved away) is discarded by name
 * (discard_orphans()).
 *
 * The cache is a hash table by flow, each record also on the list of
 * its primary VM, so that a round of a VM costs what the VM has.
 *
 * Locking: repl.lock guards the cache and the netlink socket; the
 * thread never takes ftd.lock while it holds repl.lock (placements are
 * read with CMM_LOAD_SHARED as the control socket does), so
 * repl_failover() may take repl.lock under ftd.lock.  It takes ftd.lock
 * alone to forget closed sessions (forget_closed()).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../libftvm/nl.h"
#include "ftd.h"

#define REPL_BUCKETS		65536
#define REPL_FULL_EVERY		64	/* rounds between complete dumps */
#define REPL_STAGE_BATCH	(256u << 10)	/* bytes of records per request */
#define REPL_STALE_TRIES	50	/* failover: dumps, 1 ms apart */
#define REPL_ORPHANS_MAX	(1u << 20)	/* per VM, then a full restage */
#define REPL_NAMES_BATCH	8192	/* sessions named per request */
/* A strict service's sessions are dumped at least this often. */
#define REPL_STRICT_REFRESH_NS	1000000000ull

struct rrec {
	struct rrec *next;		/* in its hash bucket */
	struct rrec *vnext, **vpprev;	/* in its primary's list */
	struct ftvm_flow flow;
	uint32_t primary;		/* where it was captured */
	uint32_t staged_on;		/* VM it is staged on, 0: none */
	uint32_t held_on;		/* VM holding a record of the session
					 * (this one or an older), 0: none */
	uint32_t service;		/* ftd service slot */
	uint64_t full_round;		/* the last complete dump that saw it */
	bool stale;			/* captured between a read or write and
					 * the service's checkpoint */
	size_t len;
	char *attrs;			/* the record, as in the dump */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t kick;
	struct ftvm_nl nl;
	bool open;			/* nl, lock and kick ready (repl_open()) */
	bool running;			/* the thread too */
	pthread_t thread;
	struct rrec *tab[REPL_BUCKETS];
	/* per VM: the records captured there, so that a round costs what
	 * the VM has, not a walk of the whole table */
	struct rrec *byvm[FTVM_VM_ID_MAX + 1];
	/* per (VM, service slot): generation to dump since, round count */
	uint64_t since[FTVM_VM_ID_MAX + 1][FTVM_MAX_SERVICES];
	uint64_t rounds[FTVM_VM_ID_MAX + 1][FTVM_MAX_SERVICES];
	uint64_t due[FTVM_MAX_SERVICES];
	/* per (VM, service slot), strict services: repl.want at the last
	 * dump, and when it was */
	unsigned long want_seen[FTVM_VM_ID_MAX + 1][FTVM_MAX_SERVICES];
	uint64_t dumped[FTVM_VM_ID_MAX + 1][FTVM_MAX_SERVICES];
	unsigned long want;		/* repl_note()s; uatomic */
	bool dirty[FTVM_VM_ID_MAX + 1];	/* backups to stage again */
	/* per VM: sessions to discard there (closed, or moved elsewhere) */
	struct orphans {
		struct ftvm_tuple *t;
		size_t n, cap;
		bool overflow;		/* too many, or no memory: discard all */
	} orphans[FTVM_VM_ID_MAX + 1];
	bool nsless[FTVM_VM_ID_MAX + 1];	/* said once: no namespace */
	bool clean[FTVM_VM_ID_MAX + 1];	/* what it held at start discarded */
	/* A failover under way (repl_failover_prepare(), then
	 * repl_failover(), ftd.lock held throughout), or a handoff
	 * (repl_handoff_prepare(), repl_handoff()): each placement's
	 * backup before the switch, for those of the VM the sessions
	 * leave; 0 else, and once they are moved */
	uint32_t fo_backup[FTVM_MAX_PLACEMENTS];
	bool fo_ready;
	bool fo_resume;			/* finishing a killed ftd's failover */
	int fo_waiting;			/* for repl.lock; uatomic */
} repl = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.kick = PTHREAD_COND_INITIALIZER,
	.nl = { .fd = -1 },
};

static unsigned int bucket(const struct ftvm_flow *f)
{
	return (unsigned int)(flow_hash(f) & (REPL_BUCKETS - 1));
}

/* The records whose session's primary is @vm (captured there). */
#define for_each_rrec_of(r, vm) \
	for (struct rrec *r = repl.byvm[vm]; r; r = r->vnext)

static void rrec_vm_unlink(struct rrec *r)
{
	if (!r->vpprev)
		return;
	*r->vpprev = r->vnext;
	if (r->vnext)
		r->vnext->vpprev = r->vpprev;
	r->vnext = NULL;
	r->vpprev = NULL;
}

static void rrec_set_primary(struct rrec *r, uint32_t vm)
{
	if (r->vpprev && r->primary == vm)
		return;
	rrec_vm_unlink(r);
	r->primary = vm;
	r->vnext = repl.byvm[vm];
	if (r->vnext)
		r->vnext->vpprev = &r->vnext;
	repl.byvm[vm] = r;
	r->vpprev = &repl.byvm[vm];
}

static struct rrec **rrec_find(const struct ftvm_flow *f)
{
	struct rrec **pp = &repl.tab[bucket(f)];

	while (*pp && memcmp(&(*pp)->flow, f, sizeof(*f)))
		pp = &(*pp)->next;
	return pp;
}

/*
 * @vm holds a staged record of @r's session that is no longer wanted
 * there: discard it at @vm's next restage.
 */
static void orphan(uint32_t vm, const struct rrec *r)
{
	struct orphans *o = &repl.orphans[vm];

	repl.dirty[vm] = true;
	if (o->overflow)
		return;
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 256;
		struct ftvm_tuple *t = NULL;

		if (cap <= REPL_ORPHANS_MAX)
			t = realloc(o->t, cap * sizeof(*t));
		if (!t) {
			o->overflow = true;
			return;
		}
		o->t = t;
		o->cap = cap;
	}
	if (ftvm_rec_tuple((const struct nlattr *)r->attrs, &o->t[o->n]))
		o->overflow = true;
	else
		o->n++;
}

static void orphans_clear(uint32_t vm)
{
	struct orphans *o = &repl.orphans[vm];

	free(o->t);
	*o = (struct orphans){};
}

static void rrec_unlink(struct rrec **pp)
{
	struct rrec *r = *pp;

	*pp = r->next;
	rrec_vm_unlink(r);
	if (r->held_on)
		orphan(r->held_on, r);
	free(r->attrs);
	free(r);
}

static bool vm_live(uint32_t id)
{
	const struct ftd_vm *vm;

	if (!id || id > FTVM_VM_ID_MAX)
		return false;
	vm = &ftd.cfg.vms[id];
	return CMM_LOAD_SHARED(vm->used) &&
	       CMM_LOAD_SHARED(vm->state) != VM_FAILED &&
	       CMM_LOAD_SHARED(vm->ifindex) > 0;
}

/* The session's current placement, or false when ftd does not know it. */
static bool flow_placement(const struct ftvm_flow *f, uint32_t *primary,
			   uint32_t *backup, struct ftd_session **sp)
{
	struct ftd_session *s = session_lookup(f);
	uint32_t id;

	if (!s)
		return false;
	id = CMM_LOAD_SHARED(s->placement);
	if (!id || id >= FTVM_MAX_PLACEMENTS)
		return false;
	*primary = CMM_LOAD_SHARED(ftd.pl[id].primary);
	*backup = CMM_LOAD_SHARED(ftd.pl[id].backup);
	if (sp)
		*sp = s;
	return true;
}

bool repl_session_staged(const struct ftd_session *s, uint32_t backup)
{
	if (!repl.running || s->flow.proto != IPPROTO_TCP)
		return true;
	return backup && CMM_LOAD_SHARED(s->staged_on) == backup;
}

/* ---- dump ---------------------------------------------------------------- */

/* @f's placement is (@primary, @backup). */
static bool staged_on_backup(const struct ftvm_flow *f, uint32_t primary,
			     uint32_t backup)
{
	uint32_t p, bk;

	return flow_placement(f, &p, &bk, NULL) && p == primary && bk == backup;
}

/* What a caller of dump_vm() adds up over its dumps. */
struct dump_sum {
	long moving;			/* records of sessions a failover or a
					 * handoff is moving (repl.fo_backup) */
	long handshakes;		/* connections in their handshake */
};

struct dump_ctx {
	uint32_t vm;
	uint32_t svc;
	uint64_t gen;
	uint64_t round;
	bool full;
	bool strict;			/* the service's output is committed */
	long records;
	uint32_t hs;			/* handshakes (every message says) */
	struct dump_sum *sum;		/* what the caller counts, or NULL */
	struct rrec *cur;		/* the record queue bytes go to */
};

static int rec_flow(const struct nlattr *nest, struct ftvm_flow *f)
{
	const struct nlattr *a;
	const void *laddr = NULL, *raddr = NULL;
	size_t alen = 0;
	uint16_t lport = 0, rport = 0;
	uint8_t family = 0, proto = 0;
	long rem;

	ftvm_nla_for_each(a, ftvm_nla_data(nest), ftvm_nla_len(nest), rem) {
		switch (ftvm_nla_type(a)) {
		case FTVM_A_SESS_PROTO:
			proto = *(const uint8_t *)ftvm_nla_data(a);
			break;
		case FTVM_A_SESS_FAMILY:
			family = *(const uint8_t *)ftvm_nla_data(a);
			break;
		case FTVM_A_SESS_LADDR:
			laddr = ftvm_nla_data(a);
			alen = ftvm_nla_len(a);
			break;
		case FTVM_A_SESS_RADDR:
			raddr = ftvm_nla_data(a);
			break;
		case FTVM_A_SESS_LPORT:
			memcpy(&lport, ftvm_nla_data(a), 2);
			break;
		case FTVM_A_SESS_RPORT:
			memcpy(&rport, ftvm_nla_data(a), 2);
			break;
		}
	}
	if (!laddr || !raddr || !rport || (alen != 4 && alen != 16))
		return -EINVAL;
	memset(f, 0, sizeof(*f));
	/* The data plane's flow is the client's: client -> service. */
	if (family == AF_INET6 && alen == 16 &&
	    !memcmp(laddr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12)) {
		/* An IPv4 client of a dual-stack socket. */
		memcpy(f->saddr, (const char *)raddr + 12, 4);
		memcpy(f->daddr, (const char *)laddr + 12, 4);
		f->family = FTVM_FAMILY_V4;
	} else {
		memcpy(f->saddr, raddr, alen);
		memcpy(f->daddr, laddr, alen);
		f->family = alen == 4 ? FTVM_FAMILY_V4 : FTVM_FAMILY_V6;
	}
	f->sport = htons(rport);
	f->dport = htons(lport);
	f->proto = proto;
	return 0;
}

static int rec_append(struct rrec *r, const struct nlattr *a)
{
	size_t n = NLA_ALIGN(a->nla_len);
	char *p = realloc(r->attrs, r->len + n);

	if (!p)
		return -ENOMEM;
	memset(p + r->len, 0, n);
	memcpy(p + r->len, a, a->nla_len);
	r->attrs = p;
	r->len += n;
	return 0;
}

/* Is the session of @f being moved (repl.fo_backup)?  RCU read side. */
static bool moving(const struct ftvm_flow *f)
{
	struct ftd_session *s = session_lookup(f);
	uint32_t id = s ? CMM_LOAD_SHARED(s->placement) : 0;

	return id && id < FTVM_MAX_PLACEMENTS && repl.fo_backup[id];
}

static int dump_cb(const struct nlattr *attrs, size_t len, void *arg)
{
	struct dump_ctx *c = arg;
	const struct nlattr *a;
	long rem;

	ftvm_nla_for_each(a, attrs, len, rem) {
		int type = ftvm_nla_type(a);

		if (type == FTVM_A_SNAP) {
			const struct nlattr *b;
			long r2;

			ftvm_nla_for_each(b, ftvm_nla_data(a), ftvm_nla_len(a), r2) {
				if (ftvm_nla_type(b) == FTVM_A_SNAP_GEN &&
				    ftvm_nla_len(b) == 8)
					memcpy(&c->gen, ftvm_nla_data(b), 8);
				if (ftvm_nla_type(b) == FTVM_A_SNAP_HANDSHAKES &&
				    ftvm_nla_len(b) == 4)
					memcpy(&c->hs, ftvm_nla_data(b), 4);
			}
		} else if (type == FTVM_A_SESSION) {
			struct ftvm_flow f;
			struct rrec **pp, *r;
			uint32_t p, bk;

			c->cur = NULL;
			if (rec_flow(a, &f))
				continue;
			/*
			 * A session that has left this VM (handed over to its
			 * backup by a drain, its socket still here, fenced)
			 * is its new primary's: this copy is not its state.
			 */
			if (flow_placement(&f, &p, &bk, NULL) && p != c->vm &&
			    !moving(&f))
				continue;
			pp = rrec_find(&f);
			r = *pp;
			if (!r) {
				r = calloc(1, sizeof(*r));
				if (!r)
					return -ENOMEM;
				r->flow = f;
				*pp = r;
			}
			/*
			 * A strict service's session staged on its backup is
			 * kept covering what its client saw by ftvm.ko's
			 * commits: staging ftd's copy too would only repeat
			 * their work.
			 */
			if (!(c->strict && r->staged_on &&
			      r->primary == c->vm &&
			      staged_on_backup(&f, c->vm, r->staged_on))) {
				if (r->staged_on)
					repl.dirty[r->staged_on] = true;
				r->staged_on = 0;
			}
			if (c->sum && moving(&f))
				c->sum->moving++;
			rrec_set_primary(r, c->vm);
			r->service = c->svc;
			r->stale = ftvm_rec_flags(a) & FTVM_SESS_F_STALE;
			r->len = 0;
			if (c->full)
				r->full_round = c->round;
			if (rec_append(r, a))
				return -ENOMEM;
			c->cur = r;
			c->records++;
		} else if ((type == FTVM_A_SNDQ || type == FTVM_A_RCVQ) && c->cur) {
			if (rec_append(c->cur, a))
				return -ENOMEM;
		}
	}
	return 0;
}

static int vm_nest(struct ftvm_msg *m, uint32_t vm)
{
	long nest = ftvm_msg_nest(m, FTVM_A_VM);

	if (nest < 0 || ftvm_msg_put(m, FTVM_A_VM_ID, &vm, sizeof(vm)))
		return -ENOMEM;
	ftvm_msg_nest_end(m, nest);
	return 0;
}

/*
 * Dump @svc's sessions in VM @vm into the cache; full: a complete one.
 * @sum (if given) adds up the records of sessions being moved and the
 * handshakes under way.
 */
static int dump_vm(uint32_t vm, const struct ftd_service *s, uint32_t slot,
		   bool full, struct dump_sum *sum)
{
	struct dump_ctx c = {
		.vm = vm, .svc = slot, .full = full, .sum = sum,
		.strict = CMM_LOAD_SHARED(s->commit) == FTVM_COMMIT_STRICT,
	};
	uint16_t port = ntohs(s->key.port);
	uint8_t proto = IPPROTO_TCP;
	struct ftvm_msg m;
	long nest;
	int err;

	c.round = ++repl.rounds[vm][slot];
	if (ftvm_msg_init(&m, &repl.nl, FTVM_CMD_SESSION_GET, NLM_F_DUMP) ||
	    vm_nest(&m, vm) || (nest = ftvm_msg_nest(&m, FTVM_A_SNAP)) < 0 ||
	    ftvm_msg_put(&m, FTVM_A_SNAP_PORT, &port, 2) ||
	    ftvm_msg_put(&m, FTVM_A_SNAP_PROTO, &proto, 1) ||
	    (!full && repl.since[vm][slot] &&
	     ftvm_msg_put(&m, FTVM_A_SNAP_SINCE, &repl.since[vm][slot], 8))) {
		ftvm_msg_free(&m);
		return -ENOMEM;
	}
	ftvm_msg_nest_end(&m, nest);
	urcu_memb_read_lock();
	err = ftvm_nl_talk(&repl.nl, &m, dump_cb, &c);
	urcu_memb_read_unlock();
	ftvm_msg_free(&m);
	if (err) {
		if (!repl.nsless[vm])
			ftd_log(LOG_WARN, "replication: vm %s: %s%s%s",
				ftd.cfg.vms[vm].name, strerror(-err),
				repl.nl.err[0] ? ": " : "", repl.nl.err);
		repl.nsless[vm] = true;
		return err;
	}
	repl.nsless[vm] = false;
	if (sum)
		sum->handshakes += c.hs;
	if (c.gen)
		repl.since[vm][slot] = c.gen;
	if (full) {
		/* Forget what the complete dump no longer found: closed. */
		for (struct rrec *r = repl.byvm[vm], *next; r; r = next) {
			next = r->vnext;
			if (r->service == slot && r->full_round != c.round)
				rrec_unlink(rrec_find(&r->flow));
		}
	}
	return 0;
}

/* ---- stage --------------------------------------------------------------- */

static int snap_flags(struct ftvm_msg *m, uint32_t flags)
{
	long nest = ftvm_msg_nest(m, FTVM_A_SNAP);

	if (nest < 0 || ftvm_msg_put(m, FTVM_A_SNAP_FLAGS, &flags, 4))
		return -ENOMEM;
	ftvm_msg_nest_end(m, nest);
	return 0;
}

static int discard(uint32_t vm)
{
	struct ftvm_msg m;
	int err;

	if (ftvm_msg_init(&m, &repl.nl, FTVM_CMD_SESSION_ACTIVATE, 0) ||
	    vm_nest(&m, vm) || snap_flags(&m, FTVM_SNAP_F_DISCARD)) {
		ftvm_msg_free(&m);
		return -ENOMEM;
	}
	err = ftvm_nl_talk(&repl.nl, &m, NULL, NULL);
	ftvm_msg_free(&m);
	return err;
}

/* Send @n records to @vm, staged or live; all or none. */
static int send_recs(uint32_t vm, struct rrec **v, size_t n, bool stage)
{
	struct ftvm_msg m;
	int err;

	if (ftvm_msg_init(&m, &repl.nl, FTVM_CMD_SESSION_RESTORE, 0) ||
	    vm_nest(&m, vm) || (stage && snap_flags(&m, FTVM_SNAP_F_STAGE)))
		goto nomem;
	for (size_t i = 0; i < n; i++)
		if (ftvm_msg_append(&m, v[i]->attrs, v[i]->len))
			goto nomem;
	err = ftvm_nl_talk(&repl.nl, &m, NULL, NULL);
	ftvm_msg_free(&m);
	return err;
nomem:
	ftvm_msg_free(&m);
	return -ENOMEM;
}

/* Append @r to *@v (*@n used of *@cap); false when out of memory. */
static bool rrec_push(struct rrec ***v, size_t *n, size_t *cap, struct rrec *r)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 256;
		struct rrec **nv = realloc(*v, c * sizeof(**v));

		if (!nv)
			return false;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = r;
	return true;
}

/* Records whose session ftd has on (primary, @vm). */
static size_t collect(uint32_t vm, struct rrec ***out)
{
	size_t n = 0, cap = 0;
	struct rrec **v = NULL;

	urcu_memb_read_lock();
	for (uint32_t pv = 1; pv <= FTVM_VM_ID_MAX; pv++)
		for_each_rrec_of(r, pv) {
			uint32_t p, bk;

			if (!flow_placement(&r->flow, &p, &bk, NULL) || bk != vm ||
			    p != pv)
				continue;
			if (!rrec_push(&v, &n, &cap, r))
				goto out;
		}
out:
	urcu_memb_read_unlock();
	*out = v;
	return n;
}

static void mark(struct rrec **v, size_t n, uint32_t vm, uint64_t now)
{
	urcu_memb_read_lock();
	for (size_t i = 0; i < n; i++) {
		struct ftd_session *s = session_lookup(&v[i]->flow);

		if (v[i]->held_on && v[i]->held_on != vm)
			orphan(v[i]->held_on, v[i]);
		v[i]->held_on = vm;
		v[i]->staged_on = vm;
		if (s) {
			uatomic_set(&s->staged_on, vm);
			uatomic_set(&s->replicated_ns, now);
		}
	}
	urcu_memb_read_unlock();
}

/* Every record staged on @vm is gone from it (a complete discard). */
static void unstaged(uint32_t vm)
{
	uatomic_inc(&repl.want);
	urcu_memb_read_lock();
	for (uint32_t pv = 1; pv <= FTVM_VM_ID_MAX; pv++)
		for_each_rrec_of(r, pv) {
			struct ftd_session *s;

			if (r->held_on != vm)
				continue;
			r->held_on = 0;
			r->staged_on = 0;
			s = session_lookup(&r->flow);
			if (s)
				uatomic_cmpxchg(&s->staged_on, vm, 0);
		}
	urcu_memb_read_unlock();
}

/* Discard everything staged on @vm, and forget that it held anything. */
static int discard_all(uint32_t vm)
{
	int err = discard(vm);

	if (!err) {
		unstaged(vm);
		orphans_clear(vm);
	}
	return err;
}

/*
 * Discard the records @vm holds of the sessions named in its orphans
 * (closed ones, and ones whose backup moved away from it): by name, so
 * that the records staged there for its other sessions stay as they are,
 * strict output commit's newer ones among them.  A batch that names a
 * session @vm no longer holds (activated there meanwhile) is refused as
 * a whole; its sessions are then discarded one by one.  After an
 * overflow of the list (or no memory for it), everything staged on @vm
 * is discarded and staged again: correct, but for a strict service it
 * leaves, until its next commit, a session's backup with ftd's copy,
 * which may be older than what its client has seen.
 */
static int discard_orphans(uint32_t vm)
{
	struct orphans *o = &repl.orphans[vm];
	uint32_t count;
	int err = 0;

	if (o->overflow) {
		ftd_log(LOG_WARN, "replication: vm %s: too many sessions to discard one by one; staging all again",
			ftd.cfg.vms[vm].name);
		return discard_all(vm);
	}
	for (size_t i = 0; i < o->n && !err; i += REPL_NAMES_BATCH) {
		size_t n = o->n - i < REPL_NAMES_BATCH ? o->n - i : REPL_NAMES_BATCH;

		err = ftvm_sess_activate(&repl.nl, vm, FTVM_SNAP_F_DISCARD,
					 o->t + i, n, &count, NULL);
		if (err != -ENOENT)
			continue;
		err = 0;
		for (size_t j = 0; j < n && !err; j++) {
			err = ftvm_sess_activate(&repl.nl, vm, FTVM_SNAP_F_DISCARD,
						 o->t + i + j, 1, &count, NULL);
			if (err == -ENOENT)
				err = 0;
		}
	}
	if (err)
		ftd_log(LOG_WARN, "replication: discarding on vm %s: %s%s%s",
			ftd.cfg.vms[vm].name, strerror(-err),
			repl.nl.err[0] ? ": " : "", repl.nl.err);
	if (!err)
		orphans_clear(vm);
	return err;
}

/*
 * Bring what @vm holds staged up to date with the records of its
 * sessions: discard what it holds and should not (discard_orphans()),
 * then stage the records not yet staged there (new, changed, moved to
 * @vm).  Staging a record replaces the one staged for the same session,
 * unless ftvm.ko finds the staged one newer (a strict commit's).
 */
static int restage(uint32_t vm, uint64_t as_of)
{
	int derr = discard_orphans(vm), err = 0;
	size_t n, k = 0, i = 0;
	struct rrec **v;

	n = collect(vm, &v);
	for (size_t j = 0; j < n; j++)
		if (v[j]->staged_on != vm)
			v[k++] = v[j];
	while (!err && i < k) {
		size_t j = i, bytes = 0;

		while (j < k && (j == i || bytes + v[j]->len <= REPL_STAGE_BATCH))
			bytes += v[j++]->len;
		err = send_recs(vm, v + i, j - i, true);
		if (!err)
			mark(v + i, j - i, vm, as_of);
		i = j;
	}
	if (err)
		ftd_log(LOG_WARN, "replication: staging on vm %s: %s%s%s",
			ftd.cfg.vms[vm].name, strerror(-err),
			repl.nl.err[0] ? ": " : "", repl.nl.err);
	free(v);
	return err ?: derr;
}

/* ---- rounds -------------------------------------------------------------- */

/* After a round of @vm: sessions already staged where they should be are up to date. */
static void confirm(uint32_t vm, uint32_t slot, uint64_t as_of)
{
	urcu_memb_read_lock();
	for_each_rrec_of(r, vm) {
		struct ftd_session *s;
		uint32_t p, bk;

		if (r->service != slot ||
		    !flow_placement(&r->flow, &p, &bk, &s) || p != vm || !bk)
			continue;
		if (r->staged_on == bk)
			uatomic_set(&s->replicated_ns, as_of);
		else
			repl.dirty[bk] = true;
	}
	urcu_memb_read_unlock();
}

static void round_service(const struct ftd_service *s, uint32_t slot,
			  uint64_t now)
{
	bool strict = CMM_LOAD_SHARED(s->commit) == FTVM_COMMIT_STRICT;
	unsigned long want = uatomic_read(&repl.want);

	for (uint32_t vm = 1; vm <= FTVM_VM_ID_MAX; vm++) {
		bool full;

		if (uatomic_read(&repl.fo_waiting)) {
			repl.due[slot] = 0;	/* the rest at the next round */
			return;
		}
		if (!vm_live(vm))
			continue;
		full = !(repl.rounds[vm][slot] % REPL_FULL_EVERY);
		/* Nothing to stage: the commits keep the backups current. */
		if (strict && !full && repl.want_seen[vm][slot] == want &&
		    now - repl.dumped[vm][slot] < REPL_STRICT_REFRESH_NS)
			continue;
		if (dump_vm(vm, s, slot, full, NULL))
			continue;
		repl.want_seen[vm][slot] = want;
		repl.dumped[vm][slot] = now;
		confirm(vm, slot, now);
	}
}

static void replicate_once(void)
{
	uint64_t now = monotonic_ns(), next = now + 1000000000ull;
	unsigned long want;
	struct timespec ts;
	bool any = false;

	pthread_mutex_lock(&repl.lock);
	want = uatomic_read(&repl.want);
	/*
	 * What a VM holds staged when ftd first sees it live was staged by
	 * no one ftd knows (an ftd before this one): discard it, before any
	 * dump of this round.  A strict service's output then waits until
	 * this ftd stages its sessions from a dump taken after the discard,
	 * so nothing its clients saw is newer than what gets staged.
	 */
	for (uint32_t vm = 1; vm <= FTVM_VM_ID_MAX; vm++) {
		if (repl.clean[vm] || !vm_live(vm))
			continue;
		repl.clean[vm] = true;
		discard_all(vm);
	}
	for (uint32_t i = 0; i < FTVM_MAX_SERVICES; i++) {
		const struct ftd_service *s = &ftd.cfg.svcs[i];
		uint64_t iv;

		if (!CMM_LOAD_SHARED(s->used) || s->key.proto != IPPROTO_TCP)
			continue;
		iv = (uint64_t)(s->repl_interval_ms ? s->repl_interval_ms : 1) *
		     1000000ull;
		/* Strict: a round when noted (repl_note()), else to refresh. */
		if (CMM_LOAD_SHARED(s->commit) == FTVM_COMMIT_STRICT &&
		    iv < REPL_STRICT_REFRESH_NS)
			iv = REPL_STRICT_REFRESH_NS;
		if (repl.due[i] <= now && !uatomic_read(&repl.fo_waiting)) {
			repl.due[i] = now + iv;
			round_service(s, i, now);
			any = true;
		}
		if (repl.due[i] < next)
			next = repl.due[i];
	}
	if (any && !uatomic_read(&repl.fo_waiting))
		for (uint32_t vm = 1; vm <= FTVM_VM_ID_MAX; vm++) {
			if (!repl.dirty[vm])
				continue;
			repl.dirty[vm] = false;
			if (vm_live(vm) && restage(vm, now))
				repl.dirty[vm] = true;
		}
	/* Sleep until the next service is due, or a kick: not at all
	 * when a note came in during the round (its kick found us busy).
	 */
	if (uatomic_read(&repl.want) != want) {
		memset(repl.due, 0, sizeof(repl.due));
		next = 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = monotonic_ns();
	if (next > now) {
		uint64_t ns = (uint64_t)ts.tv_nsec + (next - now);

		ts.tv_sec += (time_t)(ns / 1000000000ull);
		ts.tv_nsec = (long)(ns % 1000000000ull);
		pthread_cond_timedwait(&repl.kick, &repl.lock, &ts);
	}
	pthread_mutex_unlock(&repl.lock);
}

/* ---- closed sessions ----------------------------------------------------- */

/*
 * A TCP session's entry in ftvm_steer's sessions map outlives its
 * connection (the map is an LRU: an entry goes when room is needed), and
 * so does the session in ftd's table: listed, counted, moved to new
 * backups after a failure, and taking a place in the map that a live
 * session may need (an evicted live session is placed anew on its next
 * packet, which may be on another VM).  Every FORGET_EVERY_NS, ftd
 * forgets the TCP sessions of which nothing is left in their primary VM:
 *
 *  - candidates: sessions whose placement's primary is up (not failed,
 *    not draining) with a namespace in ftvm.ko, that the cache does not
 *    hold as captured there (an established connection was found there
 *    by the last dumps), and whose map entry is older than forget-closed
 *    (a connection's handshake and a restore's activation come well
 *    before that);
 *  - ftvm.ko says which of them have no connection at all in that VM's
 *    namespace, in any state: established, closing, time-wait, or a
 *    request socket in its handshake (FTVM_CMD_SESSION_GONE);
 *  - under ftd.lock, each of those whose entry still names the same
 *    placement, with the same primary, is deleted from the map, then
 *    from the table; nothing more once ftd.moves has changed since the
 *    candidates were taken (a failover, a handoff, a placement written,
 *    a session moved: what could make a session live in a VM after that
 *    VM was asked), and no pass starts until FORGET_QUIET_NS after one,
 *    or after ftd started, nor while re-protection has work (a failed
 *    or draining VM's sessions).
 *
 * A packet of a forgotten connection (a late retransmission) is placed
 * anew, as a new session is.  UDP sessions are never forgotten: a UDP
 * service's binding is no connection (Documentation/replication.rst,
 * "Closed sessions").  repl.lock is taken for the candidates and the
 * question only, a few candidates at a time (a failover waiting for it
 * ends the pass), and dropped before ftd.lock (which repl_failover()
 * holds when it takes repl.lock), itself taken for FORGET_HOLD
 * sessions at a time.
 */
#define FORGET_EVERY_NS		2000000000ull
#define FORGET_QUIET_NS		5000000000ull
#define FORGET_BATCH		1024	/* names per request */

struct forget {
	struct ftvm_flow flow;
	uint32_t placement;
	uint32_t vm;			/* 0: not gone */
};

static int forget_by_vm(const void *a, const void *b)
{
	const struct forget *x = a, *y = b;

	return x->vm < y->vm ? -1 : x->vm > y->vm;
}

/*
 * Which of @n (1..FORGET_BATCH) candidates of @vm are gone: the others'
 * vm set to 0.  repl.lock held (the names' arrays are the thread's).
 */
static void forget_ask(uint32_t vm, struct forget *v, size_t n)
{
	static struct ftvm_tuple t[FORGET_BATCH], g[FORGET_BATCH];
	uint32_t count = 0;
	size_t k = 0;
	int err;

	for (size_t i = 0; i < n; i++)
		flow_tuple(&v[i].flow, &t[i]);
	err = ftvm_sess_gone(&repl.nl, vm, t, n, g, &count);
	if (err) {
		ftd_log(LOG_WARN, "closed sessions of vm %s: %s",
			ftd.cfg.vms[vm].name,
			repl.nl.err[0] ? repl.nl.err : strerror(-err));
		count = 0;
	}
	/* The gone ones are named in the order asked. */
	for (size_t i = 0; i < n; i++) {
		if (k < count && !memcmp(&t[i], &g[k], sizeof(t[i])))
			k++;
		else
			v[i].vm = 0;
	}
}

/* Hold repl.lock or ftd.lock for this many candidates at most. */
#define FORGET_HOLD		256

static void forget_closed(void)
{
	static uint64_t next;
	uint64_t now = monotonic_ns(), gone = 0;
	uint64_t age = (uint64_t)CMM_LOAD_SHARED(ftd.cfg.forget_ms) * 1000000ull;
	unsigned long moves = uatomic_read(&ftd.moves);
	struct forget *v = NULL;
	size_t n = 0, cap = 0, k = 0;
	struct cds_lfht_iter it;
	struct ftd_session *s;

	if (!age || now < next)
		return;
	next = now + FORGET_EVERY_NS;
	/*
	 * Only in a steady state: not soon after ftd started (a killed
	 * ftd's failover or handoff may be left to finish) or after a
	 * change, and not while any session waits to be moved or given a
	 * backup (a VM failed or draining).
	 */
	if (now - ftd.start_ns < FORGET_QUIET_NS ||
	    now - CMM_LOAD_SHARED(ftd.moved_ns) < FORGET_QUIET_NS ||
	    work_remaining())
		return;

	/* The TCP sessions of VMs up: no lock, the table is RCU. */
	urcu_memb_read_lock();
	cds_lfht_for_each_entry(ftd.sessions, &it, s, node) {
		uint32_t id = CMM_LOAD_SHARED(s->placement), vm;

		if (s->flow.proto != IPPROTO_TCP || !id ||
		    id >= FTVM_MAX_PLACEMENTS)
			continue;
		vm = CMM_LOAD_SHARED(ftd.pl[id].primary);
		if (!vm_live(vm) || CMM_LOAD_SHARED(repl.nsless[vm]) ||
		    CMM_LOAD_SHARED(ftd.cfg.vms[vm].state) != VM_UP)
			continue;
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 256;
			struct forget *nv = realloc(v, nc * sizeof(*v));

			if (!nv)
				break;
			v = nv;
			cap = nc;
		}
		v[n++] = (struct forget){ .flow = s->flow, .placement = id,
					  .vm = vm };
	}
	urcu_memb_read_unlock();

	/*
	 * Not those the cache holds as captured on their primary, under
	 * repl.lock a few at a time: a failover waiting for it goes first,
	 * and this pass gives up.
	 */
	for (size_t i = 0; i < n; i += FORGET_HOLD) {
		pthread_mutex_lock(&repl.lock);
		if (uatomic_read(&repl.fo_waiting)) {
			pthread_mutex_unlock(&repl.lock);
			goto out;
		}
		for (size_t j = i; j < n && j < i + FORGET_HOLD; j++) {
			const struct rrec *r = *rrec_find(&v[j].flow);

			if (!r || r->primary != v[j].vm)
				v[k++] = v[j];
		}
		pthread_mutex_unlock(&repl.lock);
	}
	n = k;
	/* Old enough: the map's entry says when the session began. */
	for (size_t i = k = 0; i < n; i++) {
		struct ftvm_session e;

		if (dp_session_get(ftd.dp, &v[i].flow, &e) ||
		    e.placement != v[i].placement ||
		    now < e.created_ns || now - e.created_ns < age)
			continue;
		v[k++] = v[i];
	}
	n = k;
	qsort(v, n, sizeof(*v), forget_by_vm);
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i; j < n && v[j].vm == v[i].vm &&
			    j - i < FORGET_BATCH; j++)
			;
		pthread_mutex_lock(&repl.lock);
		if (uatomic_read(&repl.fo_waiting)) {
			pthread_mutex_unlock(&repl.lock);
			goto out;
		}
		forget_ask(v[i].vm, v + i, j - i);
		pthread_mutex_unlock(&repl.lock);
	}

	/* Forget them, under ftd.lock a few at a time. */
	for (size_t i = 0; i < n; i += FORGET_HOLD) {
		pthread_mutex_lock(&ftd.lock);
		for (size_t j = i; j < n && j < i + FORGET_HOLD; j++) {
			struct ftvm_session e;
			uint32_t vm = v[j].vm;

			if (uatomic_read(&ftd.moves) != moves) {
				pthread_mutex_unlock(&ftd.lock);
				goto out;
			}
			if (!vm || dp_session_get(ftd.dp, &v[j].flow, &e) ||
			    e.placement != v[j].placement ||
			    ftd.pl[e.placement].primary != vm ||
			    ftd.cfg.vms[vm].state != VM_UP ||
			    dp_session_del(ftd.dp, &v[j].flow))
				continue;
			session_forget(&v[j].flow);
			gone++;
		}
		pthread_mutex_unlock(&ftd.lock);
	}
out:
	free(v);
	if (gone) {
		uatomic_add(&ftd.forgotten, gone);
		ftd_log(LOG_DBG, "forgot %llu closed session%s: nothing left of them in their VMs",
			(unsigned long long)gone, gone == 1 ? "" : "s");
	}
}

static void *repl_thread(void *arg)
{
	(void)arg;
	urcu_memb_register_thread();
	while (!CMM_LOAD_SHARED(ftd.stop)) {
		replicate_once();
		forget_closed();
	}
	urcu_memb_unregister_thread();
	return NULL;
}

/* Every service due now: the thread's next round starts at once. */
static void kick_locked(void)
{
	memset(repl.due, 0, sizeof(repl.due));
	pthread_cond_signal(&repl.kick);
}

void repl_note(void)
{
	uatomic_inc(&repl.want);
	if (!repl.running || pthread_mutex_trylock(&repl.lock))
		return;		/* mid-round: the next one sees it */
	kick_locked();
	pthread_mutex_unlock(&repl.lock);
}

int repl_open(void)
{
	pthread_condattr_t ca;
	pthread_mutexattr_t ma;
	int err;

	if (!ftd.have_module || repl.open)
		return 0;
	err = ftvm_nl_open(&repl.nl);
	if (err)
		return err;
	repl.nl.nomem_retries = FTD_NOMEM_RETRIES;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&repl.kick, &ca);
	pthread_condattr_destroy(&ca);
	/*
	 * A failover (SCHED_FIFO) that waits for the thread's round lends
	 * it its priority: the clients' CPU time must not stand between.
	 */
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT);
	pthread_mutex_init(&repl.lock, &ma);
	pthread_mutexattr_destroy(&ma);
	repl.open = true;
	return 0;
}

int repl_start(void)
{
	int err;

	if (!ftd.have_module)
		return 0;
	err = repl_open();
	if (err)
		return err;
	repl.running = true;
	err = pthread_create(&repl.thread, NULL, repl_thread, NULL);
	if (err) {
		repl.running = false;
		return -err;
	}
	return 0;
}

bool repl_running(void)
{
	return repl.running;
}

void repl_stop(void)
{
	if (!repl.open)
		return;
	if (repl.running) {
		pthread_mutex_lock(&repl.lock);
		pthread_cond_signal(&repl.kick);
		pthread_mutex_unlock(&repl.lock);
		pthread_join(repl.thread, NULL);
		repl.running = false;
	}
	ftvm_nl_close(&repl.nl);
	repl.open = false;
}

/* ---- failover ------------------------------------------------------------ */

/* Stage @n records on @vm, then make exactly those sessions live. */
static int stage_activate(uint32_t vm, struct rrec **v,
			  const struct ftvm_tuple *t, size_t n)
{
	uint32_t count;

	return send_recs(vm, v, n, true) ?:
	       ftvm_sess_activate(&repl.nl, vm, FTVM_SNAP_F_QUIET, t, n, &count,
				  NULL);
}

/*
 * Make the @n sessions @v (named @t) live on @vm.  Each is staged first,
 * over what @vm has staged for its session (@staged: done already, for
 * all of them): ftvm.ko keeps the newer of two captures of one socket,
 * so a session that strict output commit staged since ftd's last dump
 * goes on from that commit (what its client has seen), not from ftd's
 * older copy.  Then exactly these sessions are activated, by name.  All
 * at once, else one by one (each staged again), so that one bad record
 * does not cost the others.  The records made live are no longer staged
 * on @vm.
 */
static long activate(uint32_t vm, struct rrec **v, const struct ftvm_tuple *t,
		     size_t n, bool staged)
{
	uint32_t count;
	long ok = 0;

	if (!n)
		return 0;
	if (!(staged ? ftvm_sess_activate(&repl.nl, vm, FTVM_SNAP_F_QUIET, t, n,
					  &count, NULL) :
		       stage_activate(vm, v, t, n))) {
		for (size_t i = 0; i < n; i++)
			v[i]->held_on = 0;
		return (long)n;
	}
	for (size_t i = 0; i < n; i++) {
		int err = stage_activate(vm, v + i, t + i, 1);

		if (!err) {
			v[i]->held_on = 0;
			ok++;
		} else {
			ftd_log(LOG_WARN, "failover: a session could not be activated on vm %s: %s",
				ftd.cfg.vms[vm].name, repl.nl.err[0] ?
				repl.nl.err : strerror(-err));
		}
	}
	return ok;
}

/*
 * Sessions repl_failover() made live, per backup, to nudge as soon as
 * that backup has them (nudge_queued(); the data path has switched to
 * it already): what the failed VM sent and the client never got is
 * retransmitted at once, not at a restored socket's first RTO, and not
 * after the other backups' activations either.
 */
static struct nudge {
	uint32_t vm;
	size_t n;
	struct ftvm_tuple *t;
} nudges[FTVM_VM_ID_MAX + 1];
static size_t nnudges;

/*
 * The names of the @n sessions @v, appended to *@t (*@k of them so far;
 * the array is grown, or allocated when NULL): false when out of memory.
 */
static bool rec_tuples(struct rrec **v, size_t n, struct ftvm_tuple **t,
		       size_t *k)
{
	struct ftvm_tuple *nt = realloc(*t, (*k + n + 1) * sizeof(**t));

	if (!nt)
		return false;
	*t = nt;
	for (size_t i = 0; i < n; i++)
		if (!ftvm_rec_tuple((const struct nlattr *)v[i]->attrs, &nt[*k]))
			(*k)++;
	return true;
}

static void nudge_later(uint32_t vm, struct rrec **v, size_t n)
{
	struct ftvm_tuple *t = NULL;
	size_t k = 0;

	if (!n || nnudges == FTVM_VM_ID_MAX + 1)
		return;
	if (!rec_tuples(v, n, &t, &k))
		return;		/* the clients resume on their own timers */
	nudges[nnudges++] = (struct nudge){ .vm = vm, .n = k, .t = t };
}

/* One request per this many sessions (the kernel's receive buffer). */
#define NUDGE_BATCH	8192

/*
 * Nudge or retire (@fn) the @n sessions @t of @vm, NUDGE_BATCH a
 * request; @what says which in a warning.  Returns the connections the
 * kernel acted on.
 */
static uint32_t in_batches(int (*fn)(struct ftvm_nl *, uint32_t,
				     const struct ftvm_tuple *, size_t,
				     uint32_t *),
			   uint32_t vm, const struct ftvm_tuple *t, size_t n,
			   const char *what)
{
	uint32_t total = 0;

	for (size_t off = 0; off < n; off += NUDGE_BATCH) {
		size_t m = n - off < NUDGE_BATCH ? n - off : NUDGE_BATCH;
		uint32_t count = 0;
		int err = fn(&repl.nl, vm, t + off, m, &count);

		if (err)
			ftd_log(LOG_WARN, "%s on vm %s: %s", what,
				ftd.cfg.vms[vm].name, repl.nl.err[0] ?
				repl.nl.err : strerror(-err));
		total += count;
	}
	return total;
}

/* Their count and time in this failover, for repl_nudge()'s report. */
static uint32_t nudged;
static uint64_t nudged_ns;

/* Nudge what is queued.  repl.lock held. */
static void nudge_queued(void)
{
	uint64_t t0 = monotonic_ns();
	uint32_t total = 0;

	for (size_t i = 0; i < nnudges; i++) {
		struct nudge *u = &nudges[i];

		total += in_batches(ftvm_sess_nudge, u->vm, u->t, u->n,
				    "failover: nudging sessions");
		free(u->t);
	}
	nnudges = 0;
	nudged += total;
	nudged_ns += monotonic_ns() - t0;
}

void repl_nudge(void)
{
	uint64_t ns;
	uint32_t n;

	pthread_mutex_lock(&repl.lock);
	nudge_queued();
	n = nudged;
	ns = nudged_ns;
	nudged = 0;
	nudged_ns = 0;
	pthread_mutex_unlock(&repl.lock);
	if (n)
		ftd_log(LOG_INFO, "failover: %u connections nudged, each backup's once it had them, in %llu us",
			n, (unsigned long long)(ns / 1000));
}

/*
 * A handoff: @x's connections of the @n sessions @t, live on their
 * backups now, end there without a packet (FTVM_CMD_SESSION_RETIRE):
 * they are fenced already, and the 5-tuple must be free should @x be
 * their backup again.  repl.lock held.
 */
static void retire(uint32_t x, const struct ftvm_tuple *t, size_t n)
{
	uint64_t t0 = monotonic_ns();
	uint32_t total;

	total = in_batches(ftvm_sess_retire, x, t, n,
			   "handoff: ending connections");
	ftd_log(LOG_INFO, "handoff: %u of %zu connections ended on vm %s, without a packet, in %llu us",
		total, n, ftd.cfg.vms[x].name,
		(unsigned long long)((monotonic_ns() - t0) / 1000));
}

/*
 * The records of failed VM @x's sessions whose placement had backup @b
 * before the switch (repl.fo_backup).  repl.lock held.
 */
static size_t collect_failed(uint32_t b, uint32_t x, struct rrec ***out)
{
	size_t n = 0, cap = 0;
	struct rrec **v = NULL;

	urcu_memb_read_lock();
	for_each_rrec_of(r, x) {
		struct ftd_session *s = session_lookup(&r->flow);
		uint32_t id = s ? CMM_LOAD_SHARED(s->placement) : 0;

		if (!id || id >= FTVM_MAX_PLACEMENTS || repl.fo_backup[id] != b)
			continue;
		if (!rrec_push(&v, &n, &cap, r))
			break;
	}
	urcu_memb_read_unlock();
	*out = v;
	return n;
}

void repl_failover_prepare(uint32_t x, bool resume)
{
	if (!repl.open)
		return;
	repl.fo_ready = true;
	repl.fo_resume = resume;
	for (uint32_t id = 1; id < FTVM_MAX_PLACEMENTS; id++) {
		const struct ftd_placement *p = &ftd.pl[id];

		if (p->primary == x)
			repl.fo_backup[id] = vm_live(p->backup) ? p->backup : 0;
		/*
		 * Finishing a killed ftd's failover: a placement it switched
		 * already, (X, B) become (B, none), takes X's sessions to B
		 * too.  (B, none) may also be B's own sessions, X having been
		 * their backup: X's dump has none of them and B has no record
		 * staged for them, so they are left as they are.
		 */
		else
			repl.fo_backup[id] = resume && p->primary &&
					     !p->backup && vm_live(p->primary) ?
					     p->primary : 0;
	}
}

void flow_tuple(const struct ftvm_flow *f, struct ftvm_tuple *t)
{
	size_t alen = f->family == FTVM_FAMILY_V6 ? 16 : 4;

	memset(t, 0, sizeof(*t));
	t->proto = f->proto;
	t->family = f->family == FTVM_FAMILY_V6 ? AF_INET6 : AF_INET;
	t->lport = ntohs(f->dport);
	t->rport = ntohs(f->sport);
	memcpy(t->laddr, f->daddr, alen);
	memcpy(t->raddr, f->saddr, alen);
}

/*
 * Finishing a killed ftd's failover of @x: the TCP sessions of @x's
 * placements that @x's last dump did not give (its namespace gone, or
 * its sockets closed) go on from what their backup @b has staged, if it
 * has: activated by name, all at once, else one by one (a session made
 * live before the kill, or never staged, is refused and left as it is).
 * Before the replication thread first runs, which discards what every
 * VM held when ftd started.  repl.lock held.  Returns the sessions made
 * live.
 */
static long activate_staged(uint32_t b)
{
	struct ftvm_tuple *t = NULL;
	size_t n = 0, cap = 0;
	struct cds_lfht_iter it;
	struct ftd_session *s;
	uint32_t count = 0;
	long ok = 0;

	urcu_memb_read_lock();
	cds_lfht_for_each_entry(ftd.sessions, &it, s, node) {
		uint32_t id = CMM_LOAD_SHARED(s->placement);
		struct rrec **pp;

		if (s->flow.proto != IPPROTO_TCP || !id ||
		    id >= FTVM_MAX_PLACEMENTS || repl.fo_backup[id] != b)
			continue;
		pp = rrec_find(&s->flow);
		if (*pp && (*pp)->primary == b)
			continue;	/* made live from the last dump */
		if (n == cap) {
			struct ftvm_tuple *nt;

			cap = cap ? 2 * cap : 256;
			nt = realloc(t, cap * sizeof(*t));
			if (!nt)
				break;
			t = nt;
		}
		flow_tuple(&s->flow, &t[n++]);
	}
	urcu_memb_read_unlock();
	if (n && !ftvm_sess_activate(&repl.nl, b, FTVM_SNAP_F_QUIET, t, n,
				     &count, NULL)) {
		ok = count;
	} else {
		for (size_t i = 0; i < n; i++)
			if (!ftvm_sess_activate(&repl.nl, b, FTVM_SNAP_F_QUIET,
						t + i, 1,
						&count, NULL))
				ok += count;
	}
	if (ok) {
		ftd_log(LOG_INFO, "failover: %ld sessions live on vm %s from what it had staged",
			ok, ftd.cfg.vms[b].name);
		/* They resume at once too (repl_nudge()). */
		if (nnudges < FTVM_VM_ID_MAX + 1)
			nudges[nnudges++] = (struct nudge){ .vm = b, .n = n, .t = t };
		else
			free(t);
	} else {
		free(t);
	}
	return ok;
}

/* Take repl.lock ahead of the thread: its round stops at its next VM. */
static void lock_ahead(void)
{
	uatomic_set(&repl.fo_waiting, 1);
	pthread_mutex_lock(&repl.lock);
	uatomic_set(&repl.fo_waiting, 0);
}

/*
 * Dump every TCP service of @x, incrementally, adding up into @sum;
 * those this ftd's replication thread has not had a round of yet too (it
 * may not have started them: this ftd just started), so that a failover
 * or a handoff takes every session of @x.  A dump that ran out of memory
 * half-way (what it gave is kept: each record is whole) is done again,
 * from the same generation, as libftvm does one refused at once.  -1
 * when @x's namespace is gone (nothing more to take) or a dump still
 * fails, else 0.  repl.lock held.
 */
static int dump_services(uint32_t x, struct dump_sum *sum)
{
	int ret = 0;

	for (uint32_t i = 0; i < FTVM_MAX_SERVICES; i++) {
		const struct ftd_service *s = &ftd.cfg.svcs[i];
		unsigned int tries = 0;
		struct dump_sum one;
		int err;

		if (!s->used || s->key.proto != IPPROTO_TCP)
			continue;
		for (;;) {
			one = (struct dump_sum){ 0 };
			err = dump_vm(x, s, i, false, &one);
			if ((err != -ENOMEM && err != -ENOBUFS) ||
			    !nomem_backoff(&tries))
				break;
		}
		sum->moving += one.moving;
		sum->handshakes += one.handshakes;
		if (err)
			ret = -1;
	}
	return ret;
}

/* Sessions made live per request, between two looks for waiting clients. */
#define TAKEOVER_CHUNK		128

/* One backup's share of a failover or a handoff (take_over()). */
struct takeover {
	uint32_t vm;
	struct rrec **v;		/* the sessions it takes */
	struct ftvm_tuple *t;		/* their names */
	size_t n;
	size_t done;			/* v[0..done) handled (live or failed) */
	size_t nudged;			/* v[0..nudged) queued for a nudge */
	size_t held;			/* made live first: a client waited */
	long ok;			/* made live */
	uint64_t ns;			/* from the last dump to its last made live */
	bool staged;			/* its last state is staged on it */
};

/*
 * Make live on @k's backup the sessions a client's segment waits for
 * there, if its sessions' last state is staged (else what is staged may
 * be older than the last dump).  ftvm.ko takes them from the backup's
 * ingress hold, whatever their name: the backup receives segments only
 * of sessions whose data path leads there, which are this take-over's
 * (moved to the front of @k's arrays) or an unfinished earlier one's.
 */
static void take_held(struct takeover *k, const char *what, uint64_t t1)
{
	static struct ftvm_tuple live[FTVM_HELD_MAX];
	uint32_t count;

	while (k->staged && k->done < k->n) {
		int err = ftvm_sess_activate_held(&repl.nl, k->vm,
						  FTVM_SNAP_F_QUIET, NULL, 0,
						  live, &count);

		if (err) {
			ftd_log(LOG_WARN, "%s: vm %s: sessions whose clients wait could not be made live first: %s",
				what, ftd.cfg.vms[k->vm].name, repl.nl.err[0] ?
				repl.nl.err : strerror(-err));
			k->staged = false;
			return;
		}
		for (uint32_t i = 0; i < count; i++) {
			for (size_t j = k->done; j < k->n; j++) {
				struct rrec *r = k->v[j];
				struct ftvm_tuple t = k->t[j];

				if (memcmp(&t, &live[i], sizeof(t)))
					continue;
				k->v[j] = k->v[k->done];
				k->t[j] = k->t[k->done];
				k->v[k->done] = r;
				k->t[k->done++] = t;
				r->held_on = 0;
				k->ok++;
				k->held++;
				break;
			}
		}
		if (count)
			k->ns = monotonic_ns() - t1;
		if (count < FTVM_HELD_MAX)
			return;
	}
}

/*
 * Take the last state of the sessions leaving @x, stage and activate
 * each on its backup (repl.fo_backup), nudge them.  repl.lock held.
 * Returns the sessions made live.
 */
static long take_over(uint32_t x, bool planned)
{
	const char *what = planned ? "handoff" : "failover";
	static struct takeover tk[FTVM_VM_ID_MAX + 1];
	bool seen[FTVM_VM_ID_MAX + 1] = {};
	size_t ntk = 0;
	/* A handoff's sessions, for retire() once every backup has its. */
	struct ftvm_tuple *gone = NULL;
	size_t ngone = 0, kept = 0;
	uint64_t t0 = monotonic_ns(), t1;
	long total = 0;
	int try, tries;

	/*
	 * The VM's sockets may still be there: take their last state.  Its
	 * services may still run too (a deleted device; a drained VM): a
	 * session caught between a read or write and the service's
	 * checkpoint is stale (its blob does not match its byte streams);
	 * take it again once the service has checkpointed, for a little
	 * while.  A planned move also waits, as long, for the sessions to
	 * be quiet (a dump finding none of them changed, 1 ms after the
	 * one before): the data path sends their clients' segments to the
	 * backups already, and a service that read a request before that
	 * answers it before its state is taken for the last time.  Not
	 * when the VM failed because its processes were killed (silent
	 * exit): its connections are kept as they were, and no service is
	 * left there to checkpoint them.
	 */
	tries = !planned && ftd.cfg.vms[x].reason == FTVM_FAIL_KILLED ? 1 :
		REPL_STALE_TRIES;
	for (try = 0; try < tries; try++) {
		struct dump_sum sum = { 0 };
		long stale = 0, changed;

		if (dump_services(x, &sum))
			break;
		changed = sum.moving;
		urcu_memb_read_lock();
		for_each_rrec_of(r, x)
			stale += r->stale && moving(&r->flow);
		urcu_memb_read_unlock();
		if (!stale && (!planned || (try && !changed)))
			break;
		if (try == tries - 1) {
			ftd_log(LOG_WARN, "%s: vm %s: %ld sessions still caught mid-request, %ld still changing",
				what, ftd.cfg.vms[x].name, stale, changed);
			break;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	}
	t1 = monotonic_ns();
	ftd_log(LOG_INFO, "%s: vm %s: last state taken in %d dumps, %llu us",
		what, ftd.cfg.vms[x].name, try + 1,
		(unsigned long long)((t1 - t0) / 1000));
	/* Every backup gets the last state of its sessions, staged. */
	for (uint32_t id = 1; id < FTVM_MAX_PLACEMENTS; id++) {
		uint32_t b = repl.fo_backup[id];
		struct takeover *k = &tk[ntk];

		if (!b || seen[b] || !vm_live(b))
			continue;
		seen[b] = true;
		*k = (struct takeover){ .vm = b };
		k->n = collect_failed(b, x, &k->v);
		if (k->n && !(k->t = calloc(k->n, sizeof(*k->t)))) {
			/* Nothing to name them with: they stay where they are. */
			ftd_log(LOG_ERR, "%s: out of memory for the sessions moving to vm %s",
				what, ftd.cfg.vms[b].name);
			free(k->v);
			continue;
		}
		for (size_t i = 0; i < k->n; i++)
			ftvm_rec_tuple((const struct nlattr *)k->v[i]->attrs,
				       &k->t[i]);
		k->staged = k->n && !send_recs(b, k->v, k->n, true);
		ntk++;
	}
	/*
	 * Then made live: in each round, on every backup, first the sessions
	 * a client's segment waits for there (their clients are the ones
	 * that see the take-over), then the next few others; so a client
	 * that sends now waits for one round, not for every session to
	 * come before its own.
	 */
	for (bool more = true; more;) {
		more = false;
		for (size_t i = 0; i < ntk; i++)
			take_held(&tk[i], what, t1);
		for (size_t i = 0; i < ntk; i++) {
			struct takeover *k = &tk[i];
			size_t m = k->n - k->done;

			if (m > TAKEOVER_CHUNK)
				m = TAKEOVER_CHUNK;
			if (!m)
				continue;
			k->ok += activate(k->vm, k->v + k->done, k->t + k->done,
					  m, k->staged);
			k->done += m;
			more |= k->done < k->n;
			k->ns = monotonic_ns() - t1;
			/* They resume now, not after the others' turns. */
			nudge_later(k->vm, k->v + k->nudged, k->done - k->nudged);
			k->nudged = k->done;
		}
		nudge_queued();
	}
	for (size_t i = 0; i < ntk; i++) {
		struct takeover *k = &tk[i];
		uint32_t b = k->vm;

		for (size_t j = 0; j < k->n; j++) {
			rrec_set_primary(k->v[j], b);
			k->v[j]->staged_on = 0;
		}
		urcu_memb_read_lock();
		for (size_t j = 0; j < k->n; j++) {
			struct ftd_session *s = session_lookup(&k->v[j]->flow);

			if (s)
				uatomic_set(&s->staged_on, 0);
		}
		urcu_memb_read_unlock();
		total += k->ok;
		if (k->n)
			ftd_log(LOG_INFO, "%s: %ld of %zu sessions of vm %s live on vm %s in %llu us (%zu first: their clients were waiting)",
				what, k->ok, k->n, ftd.cfg.vms[x].name,
				ftd.cfg.vms[b].name,
				(unsigned long long)(k->ns / 1000), k->held);
		if (repl.fo_resume && !planned) {
			total += activate_staged(b);
			nudge_queued();
		}
		if (planned && !rec_tuples(k->v, k->n, &gone, &ngone))
			kept += k->n;
		free(k->t);
		free(k->v);
	}
	if (total)
		ftd_log(LOG_INFO, "%s: %ld sessions activated in %llu us",
			what, total, (unsigned long long)((monotonic_ns() - t0) / 1000));
	/* Every backup has its sessions: @x lets go of them (a handoff). */
	if (kept)
		ftd_log(LOG_WARN, "handoff: vm %s keeps %zu connections (no memory to name them)",
			ftd.cfg.vms[x].name, kept);
	if (ngone)
		retire(x, gone, ngone);
	free(gone);
	/* Moved: from now on, their records come from their new primaries. */
	memset(repl.fo_backup, 0, sizeof(repl.fo_backup));
	uatomic_inc(&repl.want);
	kick_locked();
	return total;
}

void repl_failover(uint32_t x)
{
	if (!repl.fo_ready)
		return;
	repl.fo_ready = false;
	lock_ahead();
	take_over(x, false);
	pthread_mutex_unlock(&repl.lock);
}

long repl_handoff_prepare(uint32_t x, const uint32_t *to, bool wait)
{
	bool seen[FTVM_VM_ID_MAX + 1] = {};
	uint64_t now = monotonic_ns();
	struct dump_sum sum = { 0 };

	if (!repl.open)
		return 0;
	lock_ahead();
	memcpy(repl.fo_backup, to, sizeof(repl.fo_backup));
	repl.fo_ready = true;
	/* What each backup lacks of its sessions, @x's among them. */
	dump_services(x, &sum);
	if (wait && sum.handshakes) {
		memset(repl.fo_backup, 0, sizeof(repl.fo_backup));
		repl.fo_ready = false;
		pthread_mutex_unlock(&repl.lock);
		return sum.handshakes;
	}
	for (uint32_t id = 1; id < FTVM_MAX_PLACEMENTS; id++) {
		uint32_t b = to[id];

		if (!b || seen[b])
			continue;
		seen[b] = true;
		if (restage(b, now))
			repl.dirty[b] = true;
	}
	pthread_mutex_unlock(&repl.lock);
	return sum.handshakes;
}

long repl_handoff_resume(uint32_t x, const uint32_t *to)
{
	long n;

	if (!repl.open)
		return -1;
	lock_ahead();
	memcpy(repl.fo_backup, to, sizeof(repl.fo_backup));
	n = take_over(x, true);
	pthread_mutex_unlock(&repl.lock);
	return n;
}

void repl_handoff(uint32_t x, const uint32_t *to)
{
	if (!repl.fo_ready)
		return;
	repl.fo_ready = false;
	lock_ahead();
	/* Those whose switch failed stay where they are. */
	memcpy(repl.fo_backup, to, sizeof(repl.fo_backup));
	take_over(x, true);
	pthread_mutex_unlock(&repl.lock);
}
