// SPDX-License-Identifier: GPL-2.0
/*
 * ftd's model, placement criteria, failover and re-protection on real,
 * private BPF maps (nothing pinned, no traffic): the properties the
 * end-to-end test cannot measure precisely.
 *
 * Six VMs in three failure domains (a: 1 2, b: 3 4, c: 5 6), capacities
 * 100 (odd ids) and 200 (even ids); one service; sessions created in the
 * sessions map as ftvm_steer would, from the service's Maglev row.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../user/ftd/ftd.h"
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
		if (dp_vm_set(ftd.dp, id, 1, vm->mac, false))
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

	snapshot();
	pthread_mutex_lock(&ftd.lock);
	vm_drain(3);
	pthread_mutex_unlock(&ftd.lock);
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
	ftd.cfg.vms[3].state = VM_UP;
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
		       sizeof(c->svcs[0].key));
	ktap_result(same, "config: what ftd saves, it reads back");
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
	ktap_print_header(21);
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
	test_least_loaded();
	test_config();
	return ktap_finish();
}
