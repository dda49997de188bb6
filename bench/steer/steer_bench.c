// SPDX-License-Identifier: GPL-2.0
/*
 * steer_bench: what ftvm_steer costs against two baselines measured in
 * the same run (baseline.bpf.c): a bare devmap redirect, and the least
 * any session steering can do.
 *
 * 1. ns per packet through BPF_PROG_TEST_RUN with repeat: session hit,
 *    bare redirect, least steering, measured in interleaved rounds (one
 *    trial of each per round) so that load from elsewhere on the host
 *    weighs on all three alike; medians over the rounds, and the ratio
 *    is the median of the per-round ratios.  A miss cannot
 *    repeat (its first run creates the session), so its cost is the hit
 *    cost plus the difference between single runs of fresh and of known
 *    sessions, each averaged over many flows.  Every miss writes its
 *    record to the new-session ring, which is drained between runs (as
 *    ftd does), so that none takes the cheaper ring-full path.
 * 2. packets per second through veths: a generator (XDP_TX of live
 *    frames) in a client netns sends into the host end, where ftvm_steer
 *    or least_steer redirects to a VM veth whose XDP program counts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../../user/lib/steer.h"
#include "../../bpf/ftvm_steer.skel.h"
#include "../../selftests/bpf/frames.h"
#include "baseline.skel.h"

#define VIP	"198.19.0.10"
#define CLI	"198.18.0.1"
#define PORT	9
#define TRIALS	9
#define REPEAT	500000
#define MISS_FLOWS 20000
/* Drain the new-session ring every so many misses: far below its 16384. */
#define MISS_DRAIN 1000
#define PPS_PACKETS 2000000
#define PPS_ROUNDS 5

static char ns_cli[64], ns_host[64], ns_vm[64];
static const uint8_t vm_mac[6] = { 0x02, 0, 0, 0, 1, 1 };

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd) ? -1 : 0;
}

static int enter(const char *ns)
{
	char path[128];
	int fd, err;

	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	err = setns(fd, CLONE_NEWNET);
	close(fd);
	return err;
}

static void cleanup(void)
{
	sh("ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null; "
	   "ip netns del %s 2>/dev/null", ns_cli, ns_host, ns_vm);
}

static int topology(void)
{
	snprintf(ns_cli, sizeof(ns_cli), "ftvm-%d-bcli", getpid());
	snprintf(ns_host, sizeof(ns_host), "ftvm-%d-bhost", getpid());
	snprintf(ns_vm, sizeof(ns_vm), "ftvm-%d-bvm", getpid());
	return sh("ip netns add %s && ip netns add %s && ip netns add %s", ns_cli,
		  ns_host, ns_vm) ||
	       sh("ip -n %s link add name hc type veth peer name c0 netns %s",
		  ns_host, ns_cli) ||
	       sh("ip -n %s link add name hv1 type veth peer name v1 netns %s "
		  "address 02:00:00:00:01:01", ns_host, ns_vm) ||
	       sh("ip -n %s link set hc up && ip -n %s link set hv1 up && "
		  "ip -n %s link set c0 up && ip -n %s link set v1 up", ns_host,
		  ns_host, ns_cli, ns_vm);
}

static double median(double *v, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
			double t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return v[n / 2];
}

/* ns per run of @prog on @f, repeated @repeat times in the kernel; < 0: failed. */
static double run_ns(int prog, const struct frame *f, uint32_t repeat)
{
	uint8_t out[FRAME_MAX];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f->data,
		    .data_size_in = (uint32_t)f->len, .data_out = out,
		    .data_size_out = sizeof(out), .repeat = repeat);

	if (bpf_prog_test_run_opts(prog, &o) || o.retval != XDP_REDIRECT) {
		fprintf(stderr, "steer_bench: test run failed (%s, verdict %u)\n",
			strerror(errno), o.retval);
		return -1;
	}
	return (double)o.duration;
}

/* Interleaved rounds of @n programs on @f: medians in @ns, ratio 0/2; < 0: failed. */
static double rounds(const int *prog, int n, const struct frame *f,
		     double *ns)
{
	double v[3][TRIALS], ratio[TRIALS];

	for (int p = 0; p < n; p++)	/* warm up; create the session */
		if (run_ns(prog[p], f, 1000) < 0)
			return -1;
	for (int i = 0; i < TRIALS; i++) {
		for (int p = 0; p < n; p++) {
			v[p][i] = run_ns(prog[p], f, REPEAT);
			if (v[p][i] < 0)
				return -1;
		}
		ratio[i] = v[0][i] / v[2][i];
	}
	for (int p = 0; p < n; p++)
		ns[p] = median(v[p], TRIALS);
	return median(ratio, TRIALS);
}

static void udp_frame(struct frame *f, uint16_t sport)
{
	struct frame_spec s = { 4, IPPROTO_UDP, .saddr = CLI, .daddr = VIP,
				.sport = sport, .dport = PORT, .payload = 18 };

	frame_build(&s, f);
}

/* A new-session record read off the ring; the bench only counts them. */
static int ring_record(void *ctx, void *data, size_t len)
{
	(void)data;
	(void)len;
	(*(unsigned long *)ctx)++;
	return 0;
}

/*
 * ns of one single run of ftvm_steer for each of MISS_FLOWS flows from
 * source port 20000 on, summed; the ring drained every MISS_DRAIN runs
 * (outside the timed runs).  < 0: failed.
 */
static double single_runs(int prog, struct ring_buffer *rb)
{
	double sum = 0, ns;
	struct frame f;

	for (int i = 0; i < MISS_FLOWS; i++) {
		if (i % MISS_DRAIN == 0 && ring_buffer__consume(rb) < 0)
			return -1;
		udp_frame(&f, (uint16_t)(20000 + i));
		ns = run_ns(prog, &f, 1);
		if (ns < 0)
			return -1;
		sum += ns;
	}
	return ring_buffer__consume(rb) < 0 ? -1 : sum;
}

static uint64_t sink_total(struct baseline *b, int ncpus)
{
	uint64_t v[ncpus], sum = 0;
	uint32_t k = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(b->maps.sink_count), &k, v))
		return 0;
	for (int i = 0; i < ncpus; i++)
		sum += v[i];
	return sum;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Steering program @prog on hc; @n live frames from c0; pps at the VM. */
static double pps(int prog, struct baseline *b, const struct frame *f,
		  int ncpus)
{
	struct xdp_md ctx = {};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f->data,
		    .data_size_in = (uint32_t)f->len, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = PPS_PACKETS,
		    .flags = BPF_F_TEST_XDP_LIVE_FRAMES);
	uint64_t before, after;
	double t0, t1;
	int hc;

	if (enter(ns_host))
		return -1;
	hc = (int)if_nametoindex("hc");
	if (bpf_xdp_attach(hc, prog, XDP_FLAGS_DRV_MODE, NULL))
		return -1;
	if (enter(ns_cli))
		return -1;
	ctx.ingress_ifindex = if_nametoindex("c0");
	ctx.data_end = (uint32_t)f->len;	/* the kernel insists */
	before = sink_total(b, ncpus);
	t0 = now_s();
	if (bpf_prog_test_run_opts(bpf_program__fd(b->progs.gen_tx), &o)) {
		int err = -errno;

		enter(ns_host);
		bpf_xdp_detach(hc, XDP_FLAGS_DRV_MODE, NULL);
		if (err != -EPERM)
			fprintf(stderr, "steer_bench: live frames: %s\n",
				strerror(-err));
		return err;
	}
	t1 = now_s();
	after = sink_total(b, ncpus);
	enter(ns_host);
	bpf_xdp_detach(hc, XDP_FLAGS_DRV_MODE, NULL);
	return (double)(after - before) / (t1 - t0);
}

int main(void)
{
	static const struct ftvm_dp_backend one[] = { { 1, 1 } };
	struct ftvm_service_key svc;
	struct ftvm_steer *steer = NULL;
	struct baseline *base = NULL;
	double hit, miss, bare, least, ratio, ns[3], hit1, miss1;
	double p_steer[PPS_ROUNDS], p_least[PPS_ROUNDS], p_ratio[PPS_ROUNDS];
	uint64_t g0[__FTVM_DP_STAT_MAX], g1[__FTVM_DP_STAT_MAX];
	struct ring_buffer *rb = NULL;
	unsigned long records = 0;
	struct ftvm_dp *dp = NULL;
	struct frame f;
	int hv1, ncpus, rc = 1;
	uint32_t zero = 0, ifi;
	int self;

	if (geteuid()) {
		printf("# steer: needs root\n");
		return 4;
	}
	libbpf_set_print(NULL);
	ncpus = libbpf_num_possible_cpus();
	self = open("/proc/self/ns/net", O_RDONLY);
	if (topology() || enter(ns_host)) {
		fprintf(stderr, "steer_bench: cannot build the topology\n");
		goto out;
	}
	hv1 = (int)if_nametoindex("hv1");

	/* ftvm_steer, unpinned: one VM, one placement, one service. */
	steer = ftvm_steer__open();
	if (!steer)
		goto out;
	if (ftvm_dp_obj_private(steer->obj) || ftvm_steer__load(steer) || ftvm_dp_open_obj(steer->obj, &dp) ||
	    ftvm_dp_vm_set(dp, 1, hv1, vm_mac) ||
	    ftvm_dp_placement_set(dp, 1, 1, 0) ||
	    ftvm_dp_service_parse(VIP ":9/udp", &svc) ||
	    ftvm_dp_service_add(dp, &svc, NULL) ||
	    ftvm_dp_service_set_backends(dp, &svc, one, 1)) {
		fprintf(stderr, "steer_bench: ftvm_steer: %s\n", ftvm_dp_errmsg());
		goto out;
	}
	base = baseline__open_and_load();
	if (!base)
		goto out;
	ifi = (uint32_t)hv1;
	{
		struct { __be32 s, d; __be16 sp, dp; __u32 proto; } key = {
			.sp = htons(1000), .dp = htons(PORT), .proto = IPPROTO_UDP };

		inet_pton(AF_INET, CLI, &key.s);
		inet_pton(AF_INET, VIP, &key.d);
		if (bpf_map_update_elem(bpf_map__fd(base->maps.base_devmap),
					&zero, &ifi, BPF_ANY) ||
		    bpf_map_update_elem(bpf_map__fd(base->maps.base_flows),
					&key, &zero, BPF_ANY))
			goto out;
	}

	/* 1. ns per packet. */
	udp_frame(&f, 1000);
	{
		int progs[3] = { bpf_program__fd(steer->progs.ftvm_steer),
				 bpf_program__fd(base->progs.bare_redirect),
				 bpf_program__fd(base->progs.least_steer) };

		ratio = rounds(progs, 3, &f, ns);
		if (ratio < 0)
			goto out;
		hit = ns[0];
		bare = ns[1];
		least = ns[2];
	}
	/* Misses, then the same flows as hits; every record read, none lost. */
	rb = ring_buffer__new(bpf_map__fd(steer->maps.ftvm_new_sessions),
			      ring_record, &records, NULL);
	if (!rb || ftvm_dp_global_stats(dp, g0))
		goto out;
	miss1 = single_runs(bpf_program__fd(steer->progs.ftvm_steer), rb);
	hit1 = single_runs(bpf_program__fd(steer->progs.ftvm_steer), rb);
	if (miss1 < 0 || hit1 < 0 || ftvm_dp_global_stats(dp, g1))
		goto out;
	if (g1[FTVM_DP_SESSION_NEW] - g0[FTVM_DP_SESSION_NEW] != MISS_FLOWS ||
	    g1[FTVM_DP_EVENT_LOST] != g0[FTVM_DP_EVENT_LOST]) {
		fprintf(stderr, "steer_bench: %llu new sessions, %llu records lost; want %d, 0\n",
			(unsigned long long)(g1[FTVM_DP_SESSION_NEW] - g0[FTVM_DP_SESSION_NEW]),
			(unsigned long long)(g1[FTVM_DP_EVENT_LOST] - g0[FTVM_DP_EVENT_LOST]),
			MISS_FLOWS);
		goto out;
	}
	miss = hit + (miss1 - hit1) / MISS_FLOWS;

	printf("# BPF_PROG_TEST_RUN, 64-byte IPv4/UDP frame, %d interleaved rounds x %d repeats, medians\n",
	       TRIALS, REPEAT);
	printf("# miss: hit + (fresh - known session) over %d single runs each; each miss's ring record written (ring drained every %d, %lu records read, none lost)\n",
	       MISS_FLOWS, MISS_DRAIN, records);
	printf("BENCH steer_hit_ns %.1f\n", hit);
	printf("BENCH steer_miss_ns %.1f\n", miss);
	printf("BENCH bare_redirect_ns %.1f\n", bare);
	printf("BENCH least_steer_ns %.1f\n", least);
	printf("BENCH steer_hit_ratio %.2f\n", ratio);
	fflush(stdout);

	/* 2. Packets per second through the veths. */
	if (enter(ns_vm) ||
	    bpf_xdp_attach((int)if_nametoindex("v1"),
			   bpf_program__fd(base->progs.sink),
			   XDP_FLAGS_DRV_MODE, NULL))
		goto out;
	udp_frame(&f, 1000);
	for (int i = 0; i < PPS_ROUNDS; i++) {
		p_steer[i] = pps(bpf_program__fd(steer->progs.ftvm_steer), base,
				 &f, ncpus);
		if (p_steer[i] == -EPERM) {
			/* Some hosts' kernels refuse live frames to root. */
			printf("# veth pps: this kernel refuses live-frame test runs (EPERM): steer_pps_ratio not measured\n");
			rc = 0;
			goto out;
		}
		p_least[i] = pps(bpf_program__fd(base->progs.least_steer), base,
				 &f, ncpus);
		if (p_steer[i] <= 0 || p_least[i] <= 0) {
			fprintf(stderr, "steer_bench: pps run failed\n");
			goto out;
		}
		p_ratio[i] = p_steer[i] / p_least[i];
	}

	printf("# veth pps: %d live frames (XDP_TX) from the client netns per run, %d alternating runs; medians, ratio: of per-pair ratios\n",
	       PPS_PACKETS, PPS_ROUNDS);
	printf("# ftvm_steer %.0f pps, least_steer %.0f pps\n",
	       median(p_steer, PPS_ROUNDS), median(p_least, PPS_ROUNDS));
	printf("BENCH steer_pps_ratio %.2f\n", median(p_ratio, PPS_ROUNDS));
	rc = 0;
out:
	if (self >= 0) {
		setns(self, CLONE_NEWNET);
		close(self);
	}
	ring_buffer__free(rb);
	ftvm_dp_close(dp);
	baseline__destroy(base);
	ftvm_steer__destroy(steer);
	cleanup();
	return rc;
}
