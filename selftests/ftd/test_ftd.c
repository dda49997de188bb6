// SPDX-License-Identifier: GPL-2.0
/*
 * ftd's model, placement criteria, failover and re-protection on real,
 * private BPF maps (nothing pinned, no traffic): the properties the
 * end-to-end test cannot measure precisely.
 *
 * Six VMs in three failure domains (a: 1 2, b: 3 4, c: 5 6), capacities
 * 100 (odd ids) and 200 (even ids); one service; sessions created in the
 * sessions map as ftvm_steer would, from the service's Maglev row.
 * Then the configuration: its round trip, and the services' output
 * commit ("commit strict|relaxed", "ckpt-wait MS") down to libftvm's
 * requests, checked against a fake ftvm.ko on a socket pair.
 */
#include <errno.h>
#include <linux/genetlink.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../user/ftd/ftd.h"
#include "../../user/libftvm/nl.h"
#include "../bpf/ktap.h"

struct ftd ftd = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.kick = PTHREAD_COND_INITIALIZER,
};
int ftd_epoll_fd = -1;

void ftd_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > LOG_WARN)
		return;
	va_start(ap, fmt);
	fputs("# ftd: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
}

#define NVMS		6
#define NSESS		6000

static struct ftvm_flow flows[NSESS];
static uint32_t row[FTVM_MAGLEV_SIZE];

static const char *domain(uint32_t id)
{
	return id <= 2 ? "a" : id <= 4 ? "b" : "c";
}

static int setup(void)
{
	struct dp_opts o = { .no_pin = true };
	struct ftd_service *s = &ftd.cfg.svcs[0];

	cfg_defaults(&ftd.cfg);
	ftd.cfg.reprotect_rate = 0;
	if (model_init() || sessions_init() || dp_open(&o, &ftd.dp))
		return -1;
	for (uint32_t id = 1; id <= NVMS; id++) {
		struct ftd_vm *vm = &ftd.cfg.vms[id];

		vm->used = true;
		vm->id = id;
		snprintf(vm->name, sizeof(vm->name), "vm%u", id);
		snprintf(vm->dev, sizeof(vm->dev), "tap%u", id);
		snprintf(vm->domain, sizeof(vm->domain), "%s", domain(id));
		vm->ifindex = 1;
		vm->capacity = id % 2 ? 100 : 200;
		vm->state = VM_UP;
		vm->mac[5] = (uint8_t)id;
		vm->has_mac = true;
		if (dp_vm_set(ftd.dp, id, 1, vm->mac, 0))
			return -1;
	}
	s->used = true;
	snprintf(s->name, sizeof(s->name), "svc");
	cfg_parse_service_key("198.19.0.10:7/udp", &s->key);
	s->criterion = CRIT_HASH;
	s->anti_affinity = true;
	s->repl_interval_ms = 100;
	return dp_service_set(ftd.dp, &s->key, 0) || maglev_refresh(s) ? -1 : 0;
}

/* Sessions as ftvm_steer creates them: the row's slot for their hash. */
static int make_sessions(void)
{
	static struct ftvm_session v[NSESS];

	if (dp_maglev_read(ftd.dp, 0, row))
		return -1;
	for (uint32_t i = 0; i < NSESS; i++) {
		struct ftvm_flow *f = &flows[i];

		memset(f, 0, sizeof(*f));
		f->saddr[0] = htonl(0xc6120001u + (i >> 14));
		f->daddr[0] = htonl(0xc613000au);
		f->sport = htons((uint16_t)(1024 + (i & 0x3fff)));
		f->dport = htons(7);
		f->proto = IPPROTO_UDP;
		f->family = FTVM_FAMILY_V4;
		v[i].placement = row[ftvm_flow_hash(f) % FTVM_MAGLEV_SIZE];
		v[i].service = 0;
	}
	return dp_session_put(ftd.dp, flows, v, NSESS) ||
	       sessions_sync() != NSESS ? -1 : 0;
}

static bool vm_ok(uint32_t id)
{
	return id && ftd.cfg.vms[id].used && ftd.cfg.vms[id].state == VM_UP;
}

/*
 * Every session: map and table agree, primary and backup live, distinct,
 * in different domains.  Returns the number of bad sessions.
 */
static int check_sessions(const char *what)
{
	int bad = 0;

	for (uint32_t i = 0; i < NSESS; i++) {
		struct ftvm_session v;
		struct ftd_session *s;
		const struct ftd_placement *p;

		urcu_memb_read_lock();
		s = session_lookup(&flows[i]);
		if (dp_session_get(ftd.dp, &flows[i], &v) || !s ||
		    s->placement != v.placement) {
			urcu_memb_read_unlock();
			if (bad++ < 3)
				ktap_diag("%s: session %u: map and table disagree", what, i);
			continue;
		}
		p = &ftd.pl[v.placement];
		urcu_memb_read_unlock();
		if (!vm_ok(p->primary) || !vm_ok(p->backup) ||
		    p->primary == p->backup ||
		    !strcmp(domain(p->primary), domain(p->backup))) {
			if (bad++ < 3)
				ktap_diag("%s: session %u on (%u, %u)", what, i,
					  p->primary, p->backup);
		}
	}
	return bad;
}

static long reprotect_all(void)
{
	long total = 0, n;
	bool more;

	do {
		n = reprotect_pass(1000, &more);
		if (n < 0)
			return n;
		total += n;
	} while (more || n > 0);
	return total;
}

/* Sessions' (primary, backup) before a failure, by session. */
static struct {
	uint32_t primary, backup;
} before[NSESS];

static void snapshot(void)
{
	for (uint32_t i = 0; i < NSESS; i++) {
		struct ftvm_session v;

		dp_session_get(ftd.dp, &flows[i], &v);
		before[i].primary = ftd.pl[v.placement].primary;
		before[i].backup = ftd.pl[v.placement].backup;
	}
}

static void test_row(void)
{
	uint32_t share[NVMS + 1] = {}, bad = 0;
	double total = 0, ok = 1;

	if (dp_maglev_read(ftd.dp, 0, row))
		ktap_diag("%s", dp_errmsg());
	for (uint32_t i = 0; i < FTVM_MAGLEV_SIZE; i++) {
		const struct ftd_placement *p = &ftd.pl[row[i]];

		if (!row[i] || !p->primary || !p->backup ||
		    !strcmp(domain(p->primary), domain(p->backup))) {
			bad++;
			continue;
		}
		share[p->primary]++;
	}
	ktap_result(!bad, "hash: every Maglev slot holds a placement across two domains (%u bad)",
		    bad);
	for (uint32_t id = 1; id <= NVMS; id++)
		total += ftd.cfg.vms[id].capacity;
	for (uint32_t id = 1; id <= NVMS; id++) {
		double want = FTVM_MAGLEV_SIZE * ftd.cfg.vms[id].capacity / total;

		if (fabs(share[id] - want) > want * 0.1)
			ok = 0;
		ktap_diag("vm%u capacity %u: %u slots as primary (%.0f by capacity)",
			  id, ftd.cfg.vms[id].capacity, share[id], want);
	}
	ktap_result(ok, "hash: primaries' shares of new sessions follow capacity (10%%)");
}

static void test_choose(void)
{
	uint32_t n[NVMS + 1] = {}, same = 0, moved_wrongly = 0, bad = 0;
	static uint32_t first[NSESS];
	long load[FTVM_VM_ID_MAX + 1] = {};
	const struct ftd_service *s = &ftd.cfg.svcs[0];

	for (uint32_t i = 0; i < NSESS; i++) {
		uint32_t b = choose_backup_load(s, 1, &flows[i], NULL);

		first[i] = b;
		if (!b || !strcmp(domain(b), "a"))
			bad++;
		n[b]++;
	}
	ktap_result(!bad, "hash: backups for primary vm1 never in its domain");
	/* Allowed: 3..6, capacities 100 200 100 200: shares 1/6 1/3 1/6 1/3. */
	ktap_result(fabs(n[4] / (double)NSESS - 1.0 / 3) < 0.03 &&
		    fabs(n[3] / (double)NSESS - 1.0 / 6) < 0.03 &&
		    fabs(n[6] / (double)NSESS - 1.0 / 3) < 0.03,
		    "hash: backups spread by capacity (vm3 %u vm4 %u vm5 %u vm6 %u)",
		    n[3], n[4], n[5], n[6]);
	for (uint32_t i = 0; i < NSESS; i++)
		same += choose_backup_load(s, 1, &flows[i], NULL) == first[i];
	ktap_result(same == NSESS, "hash: the choice is deterministic");
	ftd.cfg.vms[4].state = VM_FAILED;
	for (uint32_t i = 0; i < NSESS; i++) {
		uint32_t b = choose_backup_load(s, 1, &flows[i], NULL);

		if (first[i] != 4 && b != first[i])
			moved_wrongly++;
	}
	ftd.cfg.vms[4].state = VM_UP;
	ktap_result(!moved_wrongly, "hash: a VM leaving moves only the choices it had (%u others moved)",
		    moved_wrongly);

	ftd.cfg.svcs[0].criterion = CRIT_LEAST_LOADED;
	load[1] = 100;	/* 1.0 per unit of capacity */
	load[2] = 300;	/* 1.5 */
	load[3] = 50;	/* 0.5 */
	load[4] = 80;	/* 0.4 */
	load[5] = 30;	/* 0.3 */
	load[6] = 70;	/* 0.35 */
	ktap_result(choose_backup_load(s, 1, &flows[0], load) == 5 &&
		    choose_backup_load(s, 5, &flows[0], load) == 4,
		    "least-loaded: the allowed VM with the least load per capacity");
	ftd.cfg.svcs[0].criterion = CRIT_HASH;
}

static void test_failover(void)
{
	uint32_t wrong = 0, moved = 0, x = 2, y;
	long before_work, n;
	long load[NVMS + 1] = {};
	uint64_t t0;

	snapshot();
	pthread_mutex_lock(&ftd.lock);
	t0 = monotonic_ns();
	failover_vm(x, FTVM_FAIL_DEV_DOWN, t0);
	before_work = work_remaining();
	pthread_mutex_unlock(&ftd.lock);
	for (uint32_t i = 0; i < NSESS; i++) {
		struct ftvm_session v;
		const struct ftd_placement *p;

		dp_session_get(ftd.dp, &flows[i], &v);
		p = &ftd.pl[v.placement];
		if (before[i].primary == x) {
			moved++;
			if (p->primary != before[i].backup || p->backup)
				wrong++;
		} else if (p->primary != before[i].primary) {
			wrong++;
		}
	}
	ktap_result(moved && !wrong,
		    "failover: vm2's %u sessions read their backups, nobody else moved (%u wrong)",
		    moved, wrong);
	{
		struct ftvm_vm v;

		dp_vm_get(ftd.dp, x, &v);
		ktap_result(v.flags & FTVM_VM_F_FENCED, "failover: vm2 is fenced");
	}
	ktap_result(ftd.last.placements <= 2 * (NVMS - 1) &&
		    ftd.last.switch_us < 1000,
		    "failover: %u placement writes in %llu us", ftd.last.placements,
		    (unsigned long long)ftd.last.switch_us);

	/* Re-protect part of it, then the busiest target fails too. */
	n = reprotect_pass(500, &(bool){ false });
	for (uint32_t id = 1; id < FTVM_MAX_PLACEMENTS; id++)
		if (ftd.pl[id].primary && ftd.pl[id].backup)
			load[ftd.pl[id].backup] += uatomic_read(&ftd.pl[id].sessions);
	y = 1;
	for (uint32_t id = 1; id <= NVMS; id++)
		if (id != x && load[id] > load[y])
			y = id;
	pthread_mutex_lock(&ftd.lock);
	ktap_result(n == 500 && work_remaining() == before_work - 500,
		    "re-protection: one batch of 500 done, %ld left",
		    work_remaining());
	failover_vm(y, FTVM_FAIL_DEV_UNREGISTERED, monotonic_ns());
	pthread_mutex_unlock(&ftd.lock);
	n = reprotect_all();
	pthread_mutex_lock(&ftd.lock);
	ktap_result(n > 0 && !work_remaining() && !unprotected_sessions(),
		    "re-protection target vm%u failed mid-way: %ld more re-protected, none left",
		    y, n);
	pthread_mutex_unlock(&ftd.lock);
	ktap_result(!check_sessions("after two failures"),
		    "after two failures: every session on two live VMs of two domains, map = table");
	/* Both come back: targets again, nothing moves. */
	snapshot();
	pthread_mutex_lock(&ftd.lock);
	vm_rejoin(x);
	vm_rejoin(y);
	pthread_mutex_unlock(&ftd.lock);
	n = reprotect_all();
	wrong = 0;
	for (uint32_t i = 0; i < NSESS; i++) {
		struct ftvm_session v;

		dp_session_get(ftd.dp, &flows[i], &v);
		wrong += ftd.pl[v.placement].primary != before[i].primary ||
			 ftd.pl[v.placement].backup != before[i].backup;
	}
	ktap_result(!n && !wrong && vm_ok(x) && vm_ok(y),
		    "rejoin: vm%u and vm%u are back, nothing moved (%ld, %u)",
		    x, y, n, wrong);

	/* Both replicas of some sessions die: they start over elsewhere. */
	snapshot();
	{
		uint32_t a = 0, b = 0, lost = 0;

		for (uint32_t i = 0; i < NSESS && !a; i++)
			if (before[i].primary && before[i].backup) {
				a = before[i].primary;
				b = before[i].backup;
			}
		for (uint32_t i = 0; i < NSESS; i++)
			lost += (before[i].primary == a && before[i].backup == b) ||
				(before[i].primary == b && before[i].backup == a);
		pthread_mutex_lock(&ftd.lock);
		failover_vm(a, FTVM_FAIL_USER, monotonic_ns());
		failover_vm(b, FTVM_FAIL_USER, monotonic_ns());
		pthread_mutex_unlock(&ftd.lock);
		n = reprotect_all();
		ktap_result(lost && !check_sessions("both replicas lost"),
			    "vm%u and vm%u at once: their %u shared sessions get a new primary and backup",
			    a, b, lost);
		pthread_mutex_lock(&ftd.lock);
		vm_rejoin(a);
		vm_rejoin(b);
		pthread_mutex_unlock(&ftd.lock);
	}
}

static void test_drain(void)
{
	uint32_t left = 0, wrong = 0;
	struct ftvm_vm vm;
	int err;

	snapshot();
	pthread_mutex_lock(&ftd.lock);
	err = vm_drain(3);
	pthread_mutex_unlock(&ftd.lock);
	ktap_result(!err && !dp_vm_get(ftd.dp, 3, &vm) &&
		    (vm.flags & FTVM_VM_F_DRAINING),
		    "drain: vm3 flagged draining in the steering maps (err %d)", err);
	reprotect_all();
	for (uint32_t i = 0; i < NSESS; i++) {
		struct ftvm_session v;
		const struct ftd_placement *p;

		dp_session_get(ftd.dp, &flows[i], &v);
		p = &ftd.pl[v.placement];
		left += p->primary == 3 || p->backup == 3;
		if (before[i].primary == 3 && p->primary != before[i].backup)
			wrong++;
	}
	ktap_result(!left && !wrong,
		    "drain: nothing left on vm3, its primaries went to their backups (%u, %u)",
		    left, wrong);
	/* Back in service, as vm_rejoin() writes it (no device here). */
	ftd.cfg.vms[3].state = VM_UP;
	dp_vm_set(ftd.dp, 3, 1, ftd.cfg.vms[3].mac, vm_dp_flags(&ftd.cfg.vms[3]));
}

static void test_recover(void)
{
	static struct ftd_placement saved[FTVM_MAX_PLACEMENTS];
	uint32_t diff = 0;

	memcpy(saved, ftd.pl, sizeof(saved));
	for (uint32_t id = 0; id < FTVM_MAX_PLACEMENTS; id++)
		ftd.pl[id].primary = ftd.pl[id].backup = 0;
	pthread_mutex_lock(&ftd.lock);
	model_recover();
	pthread_mutex_unlock(&ftd.lock);
	for (uint32_t id = 1; id < FTVM_MAX_PLACEMENTS; id++)
		diff += saved[id].primary != ftd.pl[id].primary ||
			saved[id].backup != ftd.pl[id].backup;
	ktap_result(!diff, "restart: placements read back from the map (%u differ)",
		    diff);
}

static void test_least_loaded(void)
{
	struct ftd_service *s = &ftd.cfg.svcs[0];
	double lmin = INFINITY, lp;
	uint32_t bad = 0, used[NVMS + 1] = {};
	long np, nb;

	s->criterion = CRIT_LEAST_LOADED;
	pthread_mutex_lock(&ftd.lock);
	maglev_refresh(s);
	for (uint32_t id = 1; id <= NVMS; id++) {
		vm_counts(id, &np, &nb);
		lp = (double)(np + nb) / ftd.cfg.vms[id].capacity;
		if (lp < lmin)
			lmin = lp;
	}
	dp_maglev_read(ftd.dp, 0, row);
	for (uint32_t i = 0; i < FTVM_MAGLEV_SIZE; i++) {
		const struct ftd_placement *p = &ftd.pl[row[i]];

		vm_counts(p->primary, &np, &nb);
		lp = (double)(np + nb) / ftd.cfg.vms[p->primary].capacity;
		used[p->primary]++;
		if (!p->backup || lp > lmin * 1.1 + 0.01 ||
		    !strcmp(domain(p->primary), domain(p->backup)))
			bad++;
	}
	pthread_mutex_unlock(&ftd.lock);
	for (uint32_t id = 1; id <= NVMS; id++) {
		vm_counts(id, &np, &nb);
		ktap_diag("vm%u: %ld sessions per 100 capacity, %u slots",
			  id, (np + nb) * 100 / ftd.cfg.vms[id].capacity, used[id]);
	}
	ktap_result(!bad, "least-loaded: new sessions go to the least loaded VMs only (%u slots elsewhere)",
		    bad);
	s->criterion = CRIT_HASH;
}

static void test_config(void)
{
	char path[] = "/tmp/ftd-test-conf.XXXXXX";
	struct ftd_cfg *c = calloc(1, sizeof(*c));
	struct cfg_err e;
	int fd = mkstemp(path), same = 1;

	if (fd < 0 || !c) {
		ktap_result(0, "config: round trip (no temporary file)");
		free(c);
		return;
	}
	close(fd);
	snprintf(ftd.cfg.path, sizeof(ftd.cfg.path), "%s", path);
	if (cfg_parse_vm(&ftd.cfg, 16, (char *[]){ "x", "id", "9", "dev", "eth9",
			 "probe", "tcp", "[2001:db8::9]:80", "interval", "200",
			 "misses", "4", "capacity", "7", "domain", "z" },
			 &ftd.cfg.vms[9], false, e.msg, sizeof(e.msg)))
		ktap_diag("%s", e.msg);
	ftd.cfg.vms[9].used = true;
	ftd.cfg.forget_ms = 0;
	ftd.cfg.udp_idle_ms = 0;
	cfg_save(&ftd.cfg);
	cfg_defaults(c);
	if (cfg_load(path, c, &e)) {
		ktap_diag("%s", e.msg);
		same = 0;
	}
	same = same && !memcmp(&c->vms[9].probe, &ftd.cfg.vms[9].probe,
			       sizeof(c->vms[9].probe)) && c->vms[9].capacity == 7;
	for (uint32_t id = 1; id <= NVMS && same; id++) {
		const struct ftd_vm *a = &ftd.cfg.vms[id], *b = &c->vms[id];

		same = b->used && !strcmp(a->name, b->name) &&
		       a->capacity == b->capacity &&
		       !strcmp(a->domain, b->domain) &&
		       !memcmp(a->mac, b->mac, 6);
	}
	same = same && c->svcs[0].used &&
	       !memcmp(&c->svcs[0].key, &ftd.cfg.svcs[0].key,
		       sizeof(c->svcs[0].key)) && c->forget_ms == 0 &&
	       c->udp_idle_ms == 0;
	ktap_result(same, "config: what ftd saves, it reads back");
	{
		FILE *f = fopen(path, "w");

		if (f) {
			fputs("forget-closed 999\n", f);
			fclose(f);
		}
		cfg_defaults(c);
		same = f && cfg_load(path, c, &e) &&
		       strstr(e.msg, "invalid forget-closed \"999\"") &&
		       c->forget_ms == 10000;
		if (!same)
			ktap_diag("%s", e.msg);
		ktap_result(same, "config: forget-closed below a second is refused, the default (10 s) kept");
		f = fopen(path, "w");
		if (f) {
			fputs("forget-idle-udp 1000\nforget-idle-udp 500\n", f);
			fclose(f);
		}
		cfg_defaults(c);
		same = f && cfg_load(path, c, &e) &&
		       strstr(e.msg, ":2: invalid forget-idle-udp \"500\"") &&
		       c->udp_idle_ms == 1000;
		if (!same)
			ktap_diag("%s", e.msg);
		ktap_result(same, "config: forget-idle-udp below a second is refused on its line");
	}
	{
		struct ftvm_service_key k;
		char buf[80];

		same = !cfg_parse_service_key("[2001:db8::10]:53/udp", &k) &&
		       k.family == FTVM_FAMILY_V6 && k.port == htons(53);
		cfg_format_service_key(&k, buf, sizeof(buf));
		ktap_result(same && !strcmp(buf, "[2001:db8::10]:53/udp") &&
			    cfg_parse_service_key("2001:db8::10:53/udp", &k) &&
			    cfg_parse_service_key("198.19.0.1:0/tcp", &k) &&
			    cfg_parse_service_key("198.19.0.1:80/sctp", &k),
			    "config: IPv6 service addresses; bad ones refused");
	}
	unlink(path);
	free(c);
}

/* cfg_parse_service() of the blank-separated words of @line. */
static int parse_svc(struct ftd_cfg *c, const char *line,
		     struct ftd_service *s, bool update, char *err, size_t len)
{
	char buf[256], *w[32], *save = NULL;
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", line);
	for (char *t = strtok_r(buf, " ", &save); t && n < 32;
	     t = strtok_r(NULL, " ", &save))
		w[n++] = t;
	return cfg_parse_service(c, n, w, s, update, err, len);
}

/* @line must be refused with a message containing @want. */
static bool svc_refused(struct ftd_cfg *c, const char *line, bool update,
			const char *want)
{
	struct ftd_service s = c->svcs[0];
	char err[256] = "";

	if (!parse_svc(c, line, &s, update, err, sizeof(err))) {
		ktap_diag("accepted: %s", line);
		return false;
	}
	if (!strstr(err, want)) {
		ktap_diag("%s: \"%s\", want \"%s\"", line, err, want);
		return false;
	}
	return true;
}

/* Output commit: "commit strict|relaxed" and "ckpt-wait MS". */
static void test_commit_config(void)
{
	struct ftd_cfg *c = calloc(1, sizeof(*c));
	struct ftd_service s;
	char err[256] = "", *line = NULL;
	size_t len = 0;
	bool ok;
	FILE *f;

	if (!c) {
		ktap_result(0, "commit: parsing (out of memory)");
		return;
	}
	cfg_defaults(c);
	ok = !parse_svc(c, "web 198.19.0.20:80/tcp", &s, false, err, sizeof(err)) &&
	     s.commit == FTVM_COMMIT_RELAXED && s.ckpt_wait_ms == 20;
	ok = ok && !parse_svc(c, "web 198.19.0.20:80/tcp commit strict ckpt-wait 50",
			      &s, false, err, sizeof(err)) &&
	     s.commit == FTVM_COMMIT_STRICT && s.ckpt_wait_ms == 50;
	ok = ok && !parse_svc(c, "web6 [2001:db8::20]:80/tcp ckpt-wait 0 commit strict",
			      &s, false, err, sizeof(err)) &&
	     s.commit == FTVM_COMMIT_STRICT && s.ckpt_wait_ms == 0;
	ok = ok && !parse_svc(c, "web 198.19.0.20:80/tcp ckpt-wait 10000 commit relaxed",
			      &s, false, err, sizeof(err)) &&
	     s.commit == FTVM_COMMIT_RELAXED && s.ckpt_wait_ms == 10000;
	if (!ok)
		ktap_diag("%s", err);
	ktap_result(ok, "commit: strict|relaxed and ckpt-wait parsed; relaxed and 20 ms by default");

	/* The config writer prints the words back. */
	f = open_memstream(&line, &len);
	if (f && !parse_svc(c, "web 198.19.0.20:80/tcp ckpt-wait 35 commit strict",
			    &s, false, err, sizeof(err)))
		cfg_format_service(&s, f);
	if (f)
		fclose(f);
	ok = line && !strcmp(line, "web 198.19.0.20:80/tcp criterion hash anti-affinity on replication-interval 100 commit strict ckpt-wait 35");
	ktap_result(ok, "commit: printed as \"%s\"", line ? line : "");
	free(line);

	/* A UDP service (the one of ftd.cfg) and bad values. */
	c->svcs[0] = ftd.cfg.svcs[0];
	c->svcs[1].used = true;
	snprintf(c->svcs[1].name, sizeof(c->svcs[1].name), "web");
	cfg_parse_service_key("198.19.0.20:80/tcp", &c->svcs[1].key);
	c->svcs[1].index = 1;
	ok = svc_refused(c, "dns 198.19.0.53:53/udp commit strict", false,
			 "\"dns\" is 198.19.0.53:53/udp: \"commit strict\" is for TCP services only") &&
	     svc_refused(c, "svc commit strict", true, "is for TCP services only") &&
	     svc_refused(c, "web commit eventually", true,
			 "invalid commit \"eventually\": expected strict or relaxed") &&
	     svc_refused(c, "web ckpt-wait 10001", true,
			 "invalid ckpt-wait \"10001\": expected 0..10000 ms") &&
	     svc_refused(c, "web ckpt-wait -1", true, "invalid ckpt-wait") &&
	     svc_refused(c, "web commit", true, "\"commit\" needs a value");
	s = c->svcs[1];
	ok = ok && !parse_svc(c, "web commit strict", &s, true, err, sizeof(err)) &&
	     s.commit == FTVM_COMMIT_STRICT && s.ckpt_wait_ms == 0 &&
	     c->svcs[1].commit == FTVM_COMMIT_RELAXED;
	ktap_result(ok, "commit: strict refused on UDP, bad values refused with their reason; set changes a copy");

	/* At most FTVM_COMMIT_SERVICES_MAX strict services. */
	for (int i = 0; i < FTVM_COMMIT_SERVICES_MAX; i++) {
		struct ftd_service *o = &c->svcs[2 + i];

		o->used = true;
		snprintf(o->name, sizeof(o->name), "s%d", i);
		o->key = c->svcs[1].key;
		o->key.port = htons((uint16_t)(1000 + i));
		o->commit = FTVM_COMMIT_STRICT;
	}
	ok = svc_refused(c, "one-more 198.19.0.20:9/tcp commit strict", false,
			 "more than 64 services with \"commit strict\"") &&
	     !parse_svc(c, "one-more 198.19.0.20:9/tcp commit relaxed", &s, false,
			err, sizeof(err));
	c->svcs[2].commit = FTVM_COMMIT_RELAXED;
	ok = ok && !parse_svc(c, "one-more 198.19.0.20:9/tcp commit strict", &s,
			      false, err, sizeof(err));
	ktap_result(ok, "commit: at most %d strict services", FTVM_COMMIT_SERVICES_MAX);

	/* Without ftvm.ko: strict refused when ftd starts and when set. */
	ftd.have_module = false;
	memset(c->svcs, 0, sizeof(c->svcs));
	s = ftd.cfg.svcs[0];
	ok = !commit_check();
	s.commit = FTVM_COMMIT_STRICT;
	ok = ok && commit_update(NULL, &s, err, sizeof(err)) &&
	     strstr(err, "\"commit strict\" needs ftvm.ko, which is not loaded");
	s.commit = FTVM_COMMIT_RELAXED;
	ok = ok && !commit_update(NULL, &s, err, sizeof(err)) &&
	     !commit_update(&ftd.cfg.svcs[0], &s, err, sizeof(err));
	ftd.cfg.svcs[0].commit = FTVM_COMMIT_STRICT;
	ok = ok && commit_check();
	ftd.cfg.svcs[0].commit = FTVM_COMMIT_RELAXED;
	ktap_result(ok, "commit: without ftvm.ko a strict service is refused (start and set), relaxed is fine");
	free(c);
}

/* What ftd saves of a strict service, it reads back. */
static void test_commit_round_trip(void)
{
	char path[] = "/tmp/ftd-test-commit.XXXXXX";
	struct ftd_cfg *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct cfg_err e = {};
	int fd = mkstemp(path), n = 0;
	bool ok = fd >= 0 && a && b;
	static const char *const lines[] = {
		"web 198.19.0.20:80/tcp commit strict ckpt-wait 0",
		"web6 [2001:db8::20]:443/tcp commit strict ckpt-wait 10000",
		"api 198.19.0.21:80/tcp ckpt-wait 75",
		"dns 198.19.0.53:53/udp",
	};

	if (fd >= 0)
		close(fd);
	if (ok) {
		cfg_defaults(a);
		snprintf(a->path, sizeof(a->path), "%s", path);
		for (size_t i = 0; i < ARRAY_SIZE(lines) && ok; i++) {
			struct ftd_service *s = &a->svcs[i];

			ok = !parse_svc(a, lines[i], s, false, e.msg, sizeof(e.msg));
			s->used = true;
			s->index = (uint32_t)i;
		}
		ok = ok && !cfg_save(a);
		cfg_defaults(b);
		ok = ok && !cfg_load(path, b, &e);
	}
	for (size_t i = 0; ok && i < ARRAY_SIZE(lines); i++) {
		const struct ftd_service *x = &a->svcs[i], *y = &b->svcs[i];

		n += y->used && !strcmp(x->name, y->name) &&
		     !memcmp(&x->key, &y->key, sizeof(x->key)) &&
		     x->commit == y->commit && x->ckpt_wait_ms == y->ckpt_wait_ms;
	}
	if (e.msg[0])
		ktap_diag("%s", e.msg);
	ktap_result(ok && n == (int)ARRAY_SIZE(lines) &&
		    b->svcs[0].commit == FTVM_COMMIT_STRICT &&
		    b->svcs[2].commit == FTVM_COMMIT_RELAXED &&
		    b->svcs[2].ckpt_wait_ms == 75,
		    "commit: strict and relaxed services, ckpt-wait 0..10000, survive a save and a load");
	unlink(path);
	free(a);
	free(b);
}

/*
 * libftvm's output-commit requests against a fake ftvm.ko: the replies
 * are queued on the other end of a socket pair before each call, the
 * request is read from it after.
 */
#define FAKE_FAMILY	0x42

struct fake_kernel {
	struct ftvm_nl nl;	/* the library's side */
	int fd;			/* the kernel's side */
};

static int fake_open(struct fake_kernel *k)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -1;
	memset(k, 0, sizeof(*k));
	k->nl.fd = sv[0];
	k->nl.family = FAKE_FAMILY;
	k->nl.seq = 100;
	k->fd = sv[1];
	return 0;
}

static void fake_close(struct fake_kernel *k)
{
	close(k->nl.fd);
	close(k->fd);
}

/* The ack (or error, with an extack message) of the next request. */
static void fake_ack(struct fake_kernel *k, int error, const char *msg)
{
	char buf[512] = {};
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	struct nlmsgerr *e = NLMSG_DATA(nlh);
	size_t len = NLMSG_HDRLEN + sizeof(*e);

	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_seq = k->nl.seq + 1;
	e->error = error;
	if (msg) {
		struct nlattr *a = (struct nlattr *)(buf + len);

		nlh->nlmsg_flags = NLM_F_ACK_TLVS | NLM_F_CAPPED;
		a->nla_type = NLMSGERR_ATTR_MSG;
		a->nla_len = (uint16_t)(NLA_HDRLEN + strlen(msg) + 1);
		memcpy((char *)a + NLA_HDRLEN, msg, strlen(msg) + 1);
		len += NLA_ALIGN(a->nla_len);
	}
	nlh->nlmsg_len = (uint32_t)len;
	send(k->fd, buf, len, 0);
}

/* One COMMIT_GET reply message for @c, as ftvm.ko builds it. */
static void fake_entry(struct fake_kernel *k, const struct ftvm_commit *c)
{
	struct ftvm_nl seq = { .family = FAKE_FAMILY, .seq = k->nl.seq };
	uint64_t u64[] = { c->held_total, c->released, c->dropped, c->commits,
			   c->no_backup, c->stale };
	struct ftvm_msg m;
	long nest;

	ftvm_msg_init(&m, &seq, FTVM_CMD_COMMIT_GET, NLM_F_MULTI);
	nest = ftvm_msg_nest(&m, FTVM_A_COMMIT);
	ftvm_msg_put(&m, FTVM_A_COMMIT_FAMILY, &c->family, 1);
	ftvm_msg_put(&m, FTVM_A_COMMIT_ADDR, c->addr, c->family == AF_INET6 ? 16 : 4);
	ftvm_msg_put(&m, FTVM_A_COMMIT_PORT, &c->port, 2);
	ftvm_msg_put(&m, FTVM_A_COMMIT_PROTO, &c->proto, 1);
	ftvm_msg_put(&m, FTVM_A_COMMIT_MODE, &c->mode, 1);
	ftvm_msg_put(&m, FTVM_A_COMMIT_CKPT_WAIT, &c->ckpt_wait_ms, 4);
	ftvm_msg_put(&m, FTVM_A_COMMIT_SESSIONS, &c->sessions, 4);
	ftvm_msg_put(&m, FTVM_A_COMMIT_HELD, &c->held, 4);
	for (int i = 0; i < 6; i++) {
		ftvm_msg_put(&m, FTVM_A_COMMIT_PAD, NULL, 0);
		ftvm_msg_put(&m, (uint16_t)(FTVM_A_COMMIT_HELD_TOTAL + i),
			     &u64[i], 8);
	}
	ftvm_msg_nest_end(&m, nest);
	((struct nlmsghdr *)m.buf)->nlmsg_len = (uint32_t)m.len;
	send(k->fd, m.buf, m.len, 0);
	ftvm_msg_free(&m);
}

static void fake_done(struct fake_kernel *k)
{
	struct {
		struct nlmsghdr h;
		int err;
	} d = { { sizeof(d), NLMSG_DONE, NLM_F_MULTI, k->nl.seq + 1, 0 }, 0 };

	send(k->fd, &d, sizeof(d), 0);
}

/* The FTVM_A_COMMIT of the request ftvm.ko received, and its command. */
static int fake_request(struct fake_kernel *k, struct ftvm_commit *c,
			uint8_t *cmd, uint16_t *flags)
{
	static char buf[4096];
	ssize_t n = recv(k->fd, buf, sizeof(buf), 0);
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	const struct nlattr *a, *b;
	long rem, rem2;

	memset(c, 0, sizeof(*c));
	if (n < (ssize_t)(NLMSG_HDRLEN + GENL_HDRLEN) ||
	    nlh->nlmsg_type != FAKE_FAMILY || nlh->nlmsg_len != (uint32_t)n)
		return -1;
	*cmd = ((struct genlmsghdr *)NLMSG_DATA(nlh))->cmd;
	*flags = nlh->nlmsg_flags;
	ftvm_nla_for_each(a, buf + NLMSG_HDRLEN + GENL_HDRLEN,
			  n - NLMSG_HDRLEN - GENL_HDRLEN, rem) {
		if (ftvm_nla_type(a) != FTVM_A_COMMIT || !(a->nla_type & NLA_F_NESTED))
			return -1;
		ftvm_nla_for_each(b, ftvm_nla_data(a), ftvm_nla_len(a), rem2) {
			static const struct {
				size_t off, len;
			} f[] = {
				[FTVM_A_COMMIT_FAMILY] = { offsetof(struct ftvm_commit, family), 1 },
				[FTVM_A_COMMIT_ADDR] = { offsetof(struct ftvm_commit, addr), 16 },
				[FTVM_A_COMMIT_PORT] = { offsetof(struct ftvm_commit, port), 2 },
				[FTVM_A_COMMIT_PROTO] = { offsetof(struct ftvm_commit, proto), 1 },
				[FTVM_A_COMMIT_MODE] = { offsetof(struct ftvm_commit, mode), 1 },
				[FTVM_A_COMMIT_CKPT_WAIT] = { offsetof(struct ftvm_commit, ckpt_wait_ms), 4 },
			};
			size_t t = (size_t)ftvm_nla_type(b), l = ftvm_nla_len(b);

			/* A request carries these only; the address 4 or 16 bytes. */
			if (t >= ARRAY_SIZE(f) || !f[t].len ||
			    (l != f[t].len && !(t == FTVM_A_COMMIT_ADDR && l == 4)))
				return -1;
			memcpy((char *)c + f[t].off, ftvm_nla_data(b), l);
		}
	}
	return 0;
}

/* Every field the same (memcmp would compare the padding too). */
static bool commit_eq(const struct ftvm_commit *a, const struct ftvm_commit *b)
{
	return a->family == b->family && a->proto == b->proto &&
	       a->port == b->port && !memcmp(a->addr, b->addr, 16) &&
	       a->mode == b->mode && a->ckpt_wait_ms == b->ckpt_wait_ms &&
	       a->sessions == b->sessions && a->held == b->held &&
	       a->held_total == b->held_total && a->released == b->released &&
	       a->dropped == b->dropped && a->commits == b->commits &&
	       a->no_backup == b->no_backup && a->stale == b->stale;
}

struct commits_seen {
	struct ftvm_commit c[4];
	int n;
};

static int collect_commit(const struct ftvm_commit *c, void *arg)
{
	struct commits_seen *s = arg;

	if (s->n < 4)
		s->c[s->n++] = *c;
	return 0;
}

static void test_commit_nl(void)
{
	struct ftvm_commit c = { .family = AF_INET, .proto = IPPROTO_TCP,
				 .port = 80, .addr = { 198, 19, 0, 20 },
				 .mode = FTVM_COMMIT_STRICT, .ckpt_wait_ms = 50 };
	struct ftvm_commit v6 = c, r, found;
	struct commits_seen seen = {};
	struct fake_kernel k;
	uint16_t flags = 0;
	uint8_t cmd = 0;
	bool ok;
	int err;

	if (fake_open(&k)) {
		ktap_result(0, "libftvm commit: socket pair: %s", strerror(errno));
		return;
	}
	fake_ack(&k, 0, NULL);
	err = ftvm_commit_set(&k.nl, &c);
	ok = !err && !fake_request(&k, &r, &cmd, &flags) &&
	     cmd == FTVM_CMD_COMMIT_SET && (flags & NLM_F_ACK) &&
	     !(flags & NLM_F_DUMP) && commit_eq(&r, &c);
	ktap_result(ok, "libftvm: ftvm_commit_set() sends FTVM_A_COMMIT {family, addr, port, proto, mode, ckpt-wait}");

	fake_ack(&k, -EINVAL, "UDP output is never held");
	c.proto = IPPROTO_UDP;
	err = ftvm_commit_set(&k.nl, &c);
	ok = err == -EINVAL && !strcmp(k.nl.err, "UDP output is never held") &&
	     !fake_request(&k, &r, &cmd, &flags);
	c.proto = IPPROTO_TCP;
	ok = ok && ftvm_commit_set(&k.nl, &(struct ftvm_commit){ .family = 7 }) ==
		   -EAFNOSUPPORT;
	ktap_result(ok, "libftvm: a refused ftvm_commit_set() returns the errno and the kernel's message (\"%s\")",
		    k.nl.err);

	v6.family = AF_INET6;
	memcpy(v6.addr, (uint8_t[16]){ 0x20, 0x01, 0x0d, 0xb8, [15] = 0x20 }, 16);
	v6.port = 443;
	v6.sessions = 3;
	v6.held = 2;
	v6.held_total = 1ull << 40;
	v6.released = 7;
	v6.dropped = 1;
	v6.commits = 5;
	v6.no_backup = 4;
	v6.stale = 6;
	fake_entry(&k, &c);
	fake_entry(&k, &v6);
	fake_done(&k);
	err = ftvm_commit_get(&k.nl, collect_commit, &seen);
	ok = !err && seen.n == 2 && commit_eq(&seen.c[0], &c) &&
	     commit_eq(&seen.c[1], &v6) &&
	     !fake_request(&k, &r, &cmd, &flags) &&
	     cmd == FTVM_CMD_COMMIT_GET && (flags & NLM_F_DUMP) == NLM_F_DUMP;
	ktap_result(ok, "libftvm: ftvm_commit_get() dumps every strict service with its counters");

	fake_entry(&k, &c);
	fake_entry(&k, &v6);
	fake_done(&k);
	r = v6;
	r.held = r.sessions = 0;
	ok = !ftvm_commit_find(&k.nl, &r, &found) && found.held == 2 &&
	     found.held_total == 1ull << 40 && found.stale == 6;
	fake_request(&k, &r, &cmd, &flags);
	fake_entry(&k, &c);
	fake_done(&k);
	ok = ok && ftvm_commit_find(&k.nl, &v6, &found) == -ENOENT;
	fake_request(&k, &r, &cmd, &flags);
	ktap_result(ok, "libftvm: ftvm_commit_find() picks one service's entry, ENOENT when it is not strict");
	fake_close(&k);
}

/*
 * ftd killed with SIGKILL half-way through vm5's switch (fenced, one
 * placement written), then restarted: model_recover() finds vm5 failed
 * from its fence, failover_resume() switches the rest and reports it.
 */
static void restart_model(void)
{
	for (uint32_t id = 0; id < FTVM_MAX_PLACEMENTS; id++)
		ftd.pl[id].primary = ftd.pl[id].backup = 0;
	memset(&ftd.last, 0, sizeof(ftd.last));
	ftd.failovers = 0;
	model_recover();
	failover_resume();
}

static void test_resume(void)
{
	uint32_t x = 5, written = 0, left = 0, wrong = 0, moved = 0;
	long n;

	snapshot();
	pthread_mutex_lock(&ftd.lock);
	/* What the killed ftd did: the fence, one placement of vm5. */
	dp_vm_fence(ftd.dp, x, true);
	for (uint32_t id = 1; id < FTVM_MAX_PLACEMENTS; id++) {
		const struct ftd_placement *p = &ftd.pl[id];

		if (p->primary != x || !p->backup)
			continue;
		if (!written++)
			dp_placement_set(ftd.dp, id, p->backup, 0);
		else
			left++;
	}
	/* The restarted ftd knows vm5 from its configuration: up. */
	ftd.cfg.vms[x].state = VM_UP;
	restart_model();
	for (uint32_t i = 0; i < NSESS; i++) {
		struct ftvm_session v;
		struct ftvm_placement p;

		/* The maps themselves: the session's, then its placement. */
		if (dp_session_get(ftd.dp, &flows[i], &v) ||
		    dp_placement_get(ftd.dp, v.placement, &p)) {
			wrong++;
			continue;
		}
		if (before[i].primary == x) {
			moved++;
			wrong += p.primary != before[i].backup;
		} else {
			wrong += p.primary != before[i].primary;
		}
	}
	ktap_result(left && moved && !wrong && ftd.cfg.vms[x].state == VM_FAILED,
		    "restart mid-switch: vm5's %u sessions read their backups in the map, %u placements left were switched (%u wrong)",
		    moved, left, wrong);
	ktap_result(ftd.last.vm == x && ftd.last.resumed && ftd.failovers == 1 &&
		    ftd.last.placements >= left && ftd.last.switch_done_ns,
		    "restart mid-switch: the last failover is vm5's, resumed, %u placements switched",
		    ftd.last.placements);
	/* Killed again with the switch done: re-protection is what is left. */
	restart_model();
	ktap_result(ftd.last.vm == x && ftd.last.resumed && !ftd.last.switch_done_ns &&
		    !ftd.last.placements && work_remaining() > 0,
		    "restart mid-re-protection: the last failover is vm5's, resumed, no switch time, %ld sessions to re-protect",
		    work_remaining());
	pthread_mutex_unlock(&ftd.lock);
	n = reprotect_all();
	ktap_result(n > 0 && !check_sessions("after a resumed failover"),
		    "restart: re-protection finishes the job (%ld sessions)", n);
	pthread_mutex_lock(&ftd.lock);
	vm_rejoin(x);
	pthread_mutex_unlock(&ftd.lock);
	reprotect_all();
}

/* In the table? */
static bool in_table(const struct ftvm_flow *f)
{
	bool in;

	urcu_memb_read_lock();
	in = session_lookup(f);
	urcu_memb_read_unlock();
	return in;
}

/*
 * forget-idle-udp: a sweep forgets, from the map and the table, the UDP
 * sessions idle for longer than it plus a grain, and no other: not a
 * UDP session seen more recently, nor one whose entry has no time, nor
 * a TCP session however idle; 0 forgets none.
 */
static void test_idle_udp(void)
{
	enum { IDLE_MS = 10000 };
	uint64_t now = monotonic_ns(), idle = IDLE_MS * 1000000ull;
	static struct ftvm_session v[NSESS];
	struct ftvm_flow tcp = flows[0];
	struct ftvm_session tv = { 0 };
	unsigned long f0 = uatomic_read(&ftd.udp_forgotten);
	uint32_t want = 0, wrong = 0;
	bool ok = true;

	/*
	 * By i % 4: idle for long; seen just now; no time; idle, but less
	 * than forget-idle-udp plus a grain.
	 */
	for (uint32_t i = 0; i < NSESS && ok; i++) {
		ok = !dp_session_get(ftd.dp, &flows[i], &v[i]);
		switch (i % 4) {
		case 0:
			v[i].seen_ns = now - idle - FTVM_SEEN_GRAIN_NS - 5000000000ull;
			want++;
			break;
		case 1:
			v[i].seen_ns = now;
			break;
		case 2:
			v[i].seen_ns = v[i].created_ns = 0;
			break;
		default:
			v[i].seen_ns = now - idle - FTVM_SEEN_GRAIN_NS + 3000000000ull;
		}
	}
	tcp.proto = IPPROTO_TCP;
	tv.placement = v[0].placement;
	tv.seen_ns = tv.created_ns = now - idle - 100 * FTVM_SEEN_GRAIN_NS;
	ok = ok && !dp_session_put(ftd.dp, flows, v, NSESS) &&
	     !dp_session_put(ftd.dp, &tcp, &tv, 1);
	/* 0: never. */
	ftd.cfg.udp_idle_ms = 0;
	ok = ok && sessions_sync() == NSESS + 1 &&
	     uatomic_read(&ftd.udp_forgotten) == f0 &&
	     uatomic_read(&ftd.nsessions) == NSESS + 1;
	ktap_result(ok, "forget-idle-udp 0: a sweep forgets no idle UDP session");

	ftd.cfg.udp_idle_ms = IDLE_MS;
	ok = ok && sessions_sync() == NSESS + 1;
	for (uint32_t i = 0; i < NSESS && ok; i++) {
		struct ftvm_session e;
		bool gone = i % 4 == 0;

		if (gone != (dp_session_get(ftd.dp, &flows[i], &e) != 0) ||
		    gone == in_table(&flows[i])) {
			if (wrong++ < 3)
				ktap_diag("idle udp: session %u (case %u) %s", i,
					  i % 4, gone ? "kept" : "forgotten");
		}
	}
	ok = ok && !wrong && in_table(&tcp) &&
	     !dp_session_get(ftd.dp, &tcp, &tv) &&
	     uatomic_read(&ftd.udp_forgotten) - f0 == want &&
	     uatomic_read(&ftd.nsessions) == NSESS + 1 - want &&
	     sessions_sync() == NSESS + 1 - want;
	ktap_result(ok, "forget-idle-udp: a sweep forgets the %u UDP sessions idle past it plus a grain, from map and table; keeps the others and an idle TCP session",
		    want);
	ftd.cfg.udp_idle_ms = 0;
}

int main(void)
{
	if (geteuid())
		ktap_skip_all("needs root (BPF maps)");
	urcu_memb_register_thread();
	if (setup()) {
		printf("TAP version 13\n1..0 # SKIP cannot create maps: %s\n",
		       dp_errmsg());
		return KSFT_SKIP;
	}
	ktap_print_header(40);
	test_row();
	if (make_sessions()) {
		ktap_result(0, "sessions: %s", dp_errmsg());
		return ktap_finish();
	}
	ktap_result(!check_sessions("new"),
		    "%d new sessions: two live VMs of two domains each, map = table",
		    NSESS);
	test_choose();
	test_failover();
	test_drain();
	test_recover();
	test_resume();
	test_least_loaded();
	test_config();
	test_commit_config();
	test_commit_round_trip();
	test_commit_nl();
	test_idle_udp();
	return ktap_finish();
}
