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
 * The failure is real: each VM has a veth device of its own, and the
 * failing VM's device is set down.  ftd's rtnetlink socket (detect.c)
 * gets the link event and ftd's own handler (detect_rtnl_read(), as the
 * daemon's event loop calls it) fails the VM over.  A failover's time
 * runs from just before the syscall that sets the device down to the
 * last placement write of that handler.  After each one the placements
 * map itself is read back (one lookup per placement): every placement
 * the VM was the primary of must now have its former backup as primary.
 * Before the failovers of each size, the sessions map is counted: it is
 * an LRU, and must really hold the N sessions.
 *
 * The host kernel cannot load ftvm.ko, so the event comes from
 * rtnetlink, ftd's path without the module.
 *
 * Run it in a network namespace of its own (bench/failover/run.sh): it
 * creates its devices there.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

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

static int ioctl_fd = -1;

/* Set @dev up or down; *t0 (if given): just before the syscall. */
static int link_set(const char *dev, bool up, uint64_t *t0)
{
	struct ifreq ifr = {};

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	if (ioctl(ioctl_fd, SIOCGIFFLAGS, &ifr))
		return -errno;
	if (up)
		ifr.ifr_flags |= IFF_UP;
	else
		ifr.ifr_flags &= ~IFF_UP;
	if (t0)
		*t0 = monotonic_ns();
	return ioctl(ioctl_fd, SIOCSIFFLAGS, &ifr) ? -errno : 0;
}

/* Throw away the link events queued (a VM's device brought back up). */
static void rtnl_drain(void)
{
	char buf[16384];

	while (recv(detect_rtnl_fd(), buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

/* The event of a failure: ftd's handler, as the daemon's loop runs it. */
static int rtnl_handle(void)
{
	struct pollfd p = { .fd = detect_rtnl_fd(), .events = POLLIN };

	if (poll(&p, 1, 1000) != 1) {
		fprintf(stderr, "# no link event\n");
		return -1;
	}
	detect_rtnl_read();
	return 0;
}

static char devs[NVMS + 1][IF_NAMESIZE];

static void devs_del(void)
{
	char cmd[64];

	for (int id = 1; id <= NVMS; id++) {
		snprintf(cmd, sizeof(cmd), "ip link del %s 2>/dev/null", devs[id]);
		if (system(cmd))
			continue;
	}
}

/* A veth pair per VM, both ends up: the VM's host side is devs[id]. */
static int devs_add(void)
{
	char cmd[160];

	for (int id = 1; id <= NVMS; id++) {
		snprintf(devs[id], sizeof(devs[id]), "ftvmb%d", id);
		snprintf(cmd, sizeof(cmd),
			 "ip link add %s type veth peer name %sp && ip link set %s up && ip link set %sp up",
			 devs[id], devs[id], devs[id], devs[id]);
		if (system(cmd)) {
			fprintf(stderr, "# cannot create %s (ip link)\n", devs[id]);
			devs_del();
			return -1;
		}
	}
	atexit(devs_del);
	return 0;
}

/* The model and the placements map as they were before a failover. */
static struct ftd_placement saved_pl[FTVM_MAX_PLACEMENTS];
static struct ftvm_placement saved_map[FTVM_MAX_PLACEMENTS];
static uint16_t *saved_pair;
#define PAIRS	(1u << 20)

static int snapshot(void)
{
	memcpy(saved_pl, ftd.pl, sizeof(saved_pl));
	memcpy(saved_pair, ftd.pair, PAIRS * sizeof(*saved_pair));
	for (uint32_t id = 0; id < FTVM_MAX_PLACEMENTS; id++)
		if (dp_placement_get(ftd.dp, id, &saved_map[id]))
			return -1;
	return 0;
}

/*
 * The placements map, read back one lookup each: every placement VM @x
 * was the primary of now has its former backup as primary and no
 * backup; those it was the backup of keep their primary, without
 * backup; no other changed.  Returns how many switched, or -1.
 */
static int verify_switch(uint32_t x)
{
	int switched = 0;

	for (uint32_t id = 1; id < FTVM_MAX_PLACEMENTS; id++) {
		const struct ftvm_placement *o = &saved_map[id];
		struct ftvm_placement p, want = *o;

		if (dp_placement_get(ftd.dp, id, &p))
			return -1;
		if (o->primary == x && o->backup) {
			want.primary = o->backup;
			want.backup = 0;
		} else if (o->primary && o->backup == x) {
			want.backup = 0;
		}
		if (p.primary != want.primary || p.backup != want.backup) {
			fprintf(stderr, "# placement %u: (%u, %u) in the map, want (%u, %u) (was (%u, %u))\n",
				id, p.primary, p.backup, want.primary,
				want.backup, o->primary, o->backup);
			return -1;
		}
		switched += memcmp(&p, o, sizeof(p)) != 0;
	}
	return switched;
}

/* Put VM @x, its device and the placements back as before its failure. */
static int restore(uint32_t x)
{
	if (link_set(devs[x], true, NULL))
		return -1;
	rtnl_drain();
	pthread_mutex_lock(&ftd.lock);
	ftd.cfg.vms[x].state = VM_UP;
	ftd.cfg.vms[x].reason = 0;
	dp_vm_fence(ftd.dp, x, false);
	for (uint32_t id = 1; id < FTVM_MAX_PLACEMENTS; id++)
		if (ftd.pl[id].primary != saved_pl[id].primary ||
		    ftd.pl[id].backup != saved_pl[id].backup)
			dp_placement_set(ftd.dp, id, saved_map[id].primary,
					 saved_map[id].backup);
	memcpy(ftd.pl, saved_pl, sizeof(saved_pl));
	memcpy(ftd.pair, saved_pair, PAIRS * sizeof(*saved_pair));
	maglev_refresh_all();
	pthread_mutex_unlock(&ftd.lock);
	return 0;
}

/* Count the sessions map's entries on VM 1's placements. */
struct count {
	const uint32_t *pids;
	long n, ours;
};

static void count_one(const struct ftvm_flow *f, const struct ftvm_session *s,
		      void *arg)
{
	struct count *c = arg;

	(void)f;
	c->n++;
	for (int k = 0; k < NVMS - 1; k++)
		if (s->placement == c->pids[k])
			c->ours++;
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
	saved_pair = calloc(PAIRS, sizeof(*saved_pair));
	ioctl_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (!saved_pair || ioctl_fd < 0 || devs_add())
		return 4;
	if (detect_rtnl_open()) {
		fprintf(stderr, "# rtnetlink: %s\n", strerror(errno));
		return 4;
	}
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
		snprintf(vm->dev, sizeof(vm->dev), "%s", devs[id]);
		vm->ifindex = (int)if_nametoindex(devs[id]);
		vm->capacity = 100;
		vm->state = VM_UP;
		memcpy(vm->mac, mac, 6);
		vm->has_mac = true;
		if (!vm->ifindex ||
		    dp_vm_set(ftd.dp, id, vm->ifindex, mac, 0)) {
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
	rtnl_drain();

	for (size_t z = 0; z < ARRAY_SIZE(sizes) && sizes[z].n <= max; z++) {
		struct count c = { .pids = pids };
		int sw = 0;

		if (add_sessions(have, sizes[z].n, pids))
			return 1;
		have = sizes[z].n;
		/* An LRU map: it must really hold them all. */
		if (dp_session_scan(ftd.dp, count_one, &c) < 0 ||
		    c.ours != (long)sizes[z].n || c.n != (long)sizes[z].n) {
			fprintf(stderr, "# the sessions map holds %ld sessions, %ld of them on vm1, want %u\n",
				c.n, c.ours, sizes[z].n);
			return 1;
		}
		if (snapshot())
			return 1;
		for (int r = 0; r < RUNS; r++) {
			unsigned long before = ftd.failovers;

			if (link_set(devs[1], false, &t0) || rtnl_handle())
				return 1;
			pthread_mutex_lock(&ftd.lock);
			if (ftd.failovers != before + 1 || ftd.last.vm != 1 ||
			    ftd.cfg.vms[1].state != VM_FAILED ||
			    ftd.last.switch_done_ns < t0) {
				fprintf(stderr, "# the link event did not fail vm1 over\n");
				pthread_mutex_unlock(&ftd.lock);
				return 1;
			}
			t[r] = ftd.last.switch_done_ns - t0;
			pthread_mutex_unlock(&ftd.lock);
			sw = verify_switch(1);
			if (sw < 0 || (uint32_t)sw != ftd.last.placements) {
				fprintf(stderr, "# %d placements switched in the map, ftd says %u\n",
					sw, ftd.last.placements);
				return 1;
			}
			if (restore(1))
				return 1;
		}
		qsort(t, RUNS, sizeof(t[0]), cmp_u64);
		printf("# %s sessions on the VM (%ld in the map), %d placements switched; min %llu us, max %llu us\n",
		       sizes[z].name, c.n, sw,
		       (unsigned long long)t[0] / 1000,
		       (unsigned long long)t[RUNS - 1] / 1000);
		printf("BENCH failover_us_%s %llu\n", sizes[z].name,
		       (unsigned long long)t[RUNS / 2] / 1000);
		fflush(stdout);
	}

	/* VM 2 fails (its device down): a third of the sessions lose their backup. */
	if (link_set(devs[2], false, NULL) || rtnl_handle())
		return 1;
	pthread_mutex_lock(&ftd.lock);
	if (ftd.cfg.vms[2].state != VM_FAILED) {
		fprintf(stderr, "# the link event did not fail vm2 over\n");
		pthread_mutex_unlock(&ftd.lock);
		return 1;
	}
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
