// SPDX-License-Identifier: GPL-2.0
/*
 * ftd-bench: ftd's failover and re-protection code on real BPF maps
 * (private, unpinned: nothing else sees them), at 1k to 1M sessions.
 *
 *   failover_us_N   from the failure event to the last data-path write
 *                   (fence + placements), median of RUNS failovers of a
 *                   VM that is the primary of N sessions
 *   reprotect_per_s sessions given a new backup per second, unpaced,
 *                   after the failure of the VM holding their backups
 *
 * Run it in a network namespace of its own (bench/failover/run.sh).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ftd.h"

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
	fputs("# ftd: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

#define NVMS	4
#define RUNS	21

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void make_flow(uint32_t i, struct ftvm_flow *f)
{
	memset(f, 0, sizeof(*f));
	f->saddr[0] = htonl(0xc6120000u | (i >> 16));	/* 198.18.x.y */
	f->daddr[0] = htonl(0xc613000au);		/* 198.19.0.10 */
	f->sport = htons((uint16_t)(i & 0xffff));
	f->dport = htons(80);
	f->proto = IPPROTO_UDP;
	f->family = FTVM_FAMILY_V4;
}

/* Sessions [from, to) on placements whose primary is VM 1. */
static int add_sessions(uint32_t from, uint32_t to, const uint32_t *pids)
{
	enum { B = 8192 };
	static struct ftvm_flow f[B];
	static struct ftvm_session s[B];

	for (uint32_t i = from; i < to;) {
		uint32_t n = 0;

		for (; n < B && i < to; n++, i++) {
			make_flow(i, &f[n]);
			s[n].placement = pids[i % (NVMS - 1)];
			s[n].service = 0;
			s[n].created_ns = 0;
		}
		if (dp_session_put(ftd.dp, f, s, n)) {
			fprintf(stderr, "# %s\n", dp_errmsg());
			return -1;
		}
	}
	return sessions_sync() < 0 ? -1 : 0;
}

/* Put VM 1 and its placements back as they were before a failover. */
static void restore(const uint32_t *pids)
{
	ftd.cfg.vms[1].state = VM_UP;
	ftd.cfg.vms[1].reason = 0;
	dp_vm_fence(ftd.dp, 1, false);
	for (int k = 0; k < NVMS - 1; k++) {
		uint32_t b = (uint32_t)k + 2;

		dp_placement_set(ftd.dp, pids[k], 1, b);
		ftd.pl[pids[k]].primary = 1;
		ftd.pl[pids[k]].backup = b;
		ftd.pair[(1u << 10) | b] = (uint16_t)pids[k];
	}
	maglev_refresh_all();
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		uint32_t n;
	} sizes[] = {
		{ "1k", 1000 }, { "10k", 10000 }, { "100k", 100000 },
		{ "1m", 1000000 },
	};
	struct dp_opts o = { .no_pin = true, .max_sessions = 1100000 };
	uint32_t pids[NVMS - 1], have = 0, max = 1000000;
	uint64_t t[RUNS], t0, t1, moved = 0;
	struct ftd_service *s;
	bool more;
	long n;

	if (argc > 1)
		max = (uint32_t)atoi(argv[1]);	/* quick runs: a smaller top */
	urcu_memb_register_thread();
	cfg_defaults(&ftd.cfg);
	ftd.cfg.reprotect_rate = 0;
	if (model_init() || sessions_init() || dp_open(&o, &ftd.dp)) {
		fprintf(stderr, "# cannot set up: %s\n", dp_errmsg());
		return 4;
	}
	for (uint32_t id = 1; id <= NVMS; id++) {
		struct ftd_vm *vm = &ftd.cfg.vms[id];
		uint8_t mac[6] = { 0x02, 0, 0, 0, 0, (uint8_t)id };

		vm->used = true;
		vm->id = id;
		snprintf(vm->name, sizeof(vm->name), "vm%u", id);
		snprintf(vm->dev, sizeof(vm->dev), "lo");
		vm->ifindex = 1;
		vm->capacity = 100;
		vm->state = VM_UP;
		memcpy(vm->mac, mac, 6);
		vm->has_mac = true;
		if (dp_vm_set(ftd.dp, id, 1, mac, false)) {
			fprintf(stderr, "# %s\n", dp_errmsg());
			return 4;
		}
	}
	s = &ftd.cfg.svcs[0];
	s->used = true;
	snprintf(s->name, sizeof(s->name), "bench");
	cfg_parse_service_key("198.19.0.10:80/udp", &s->key);
	s->index = 0;
	s->criterion = CRIT_HASH;
	s->anti_affinity = true;
	dp_service_set(ftd.dp, &s->key, 0);
	pthread_mutex_lock(&ftd.lock);
	maglev_refresh_all();
	for (int k = 0; k < NVMS - 1; k++)
		pids[k] = placement_get(1, (uint32_t)k + 2);
	pthread_mutex_unlock(&ftd.lock);

	for (size_t z = 0; z < ARRAY_SIZE(sizes) && sizes[z].n <= max; z++) {
		if (add_sessions(have, sizes[z].n, pids))
			return 1;
		have = sizes[z].n;
		for (int r = 0; r < RUNS; r++) {
			pthread_mutex_lock(&ftd.lock);
			t0 = monotonic_ns();
			failover_vm(1, FTVM_FAIL_DEV_DOWN, t0);
			t[r] = ftd.last.switch_us * 1000;
			/* Every session of VM 1 now reads its former backup. */
			if (ftd.pl[pids[0]].primary != 2 ||
			    ftd.pl[pids[NVMS - 2]].primary != NVMS) {
				fprintf(stderr, "# failover did not switch\n");
				return 1;
			}
			restore(pids);
			pthread_mutex_unlock(&ftd.lock);
		}
		qsort(t, RUNS, sizeof(t[0]), cmp_u64);
		printf("# %s sessions on the VM, %u placements switched; min %llu us, max %llu us\n",
		       sizes[z].name, ftd.last.placements,
		       (unsigned long long)t[0] / 1000,
		       (unsigned long long)t[RUNS - 1] / 1000);
		printf("BENCH failover_us_%s %llu\n", sizes[z].name,
		       (unsigned long long)t[RUNS / 2] / 1000);
		fflush(stdout);
	}

	/* VM 2 fails: a third of the sessions lose their backup. */
	pthread_mutex_lock(&ftd.lock);
	failover_vm(2, FTVM_FAIL_DEV_DOWN, monotonic_ns());
	n = work_remaining();
	pthread_mutex_unlock(&ftd.lock);
	t0 = monotonic_ns();
	do {
		long m = reprotect_pass(4096, &more);

		if (m < 0)
			return 1;
		moved += (uint64_t)m;
	} while (more);
	t1 = monotonic_ns();
	pthread_mutex_lock(&ftd.lock);
	if (work_remaining() || (long)moved != n) {
		fprintf(stderr, "# re-protection left %ld of %ld sessions\n",
			work_remaining(), n);
		pthread_mutex_unlock(&ftd.lock);
		return 1;
	}
	pthread_mutex_unlock(&ftd.lock);
	printf("# re-protected %llu sessions in %llu ms\n",
	       (unsigned long long)moved,
	       (unsigned long long)((t1 - t0) / 1000000));
	printf("BENCH reprotect_per_s %llu\n",
	       (unsigned long long)(moved * 1000000000ull / (t1 - t0 + 1)));
	return 0;
}
