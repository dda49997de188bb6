// SPDX-License-Identifier: GPL-2.0
/*
 * Packet-level tests of ftvm_steer (XDP) and ftvm_fence (tc) through
 * BPF_PROG_TEST_RUN, in katran's manner: frames are built from
 * descriptions (frames.c), each run asserts the verdict, the target
 * (the VM whose counters move and whose MAC the frame now carries) and
 * the bytes that come out, and counters are compared before and after.
 * Each steered frame is then run once more with live frames
 * (BPF_F_TEST_XDP_LIVE_FRAMES), which the kernel really redirects: it
 * must arrive on the predicted VM's veth and nowhere else, with no
 * redirect error.  Devices made to refuse frames show each kind of
 * failed redirect counted on its VM (redirect_err).
 *
 * The matrix (IPv4/IPv6 x TCP/UDP x no tag/802.1Q/QinQ x IP options or
 * extension headers) is generated; each member is also cut at every
 * length.  Runs in its own network namespace (veths for the VMs) with
 * unpinned maps, so it leaves nothing behind.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../../user/lib/steer.h"
#include "../../bpf/ftvm_steer.skel.h"
#include "../../bpf/ftvm_fence.skel.h"
#include "frames.h"
#include "ktap.h"

#define VIP4	"198.19.0.10"
#define VIP4_EMPTY "198.19.0.20"
#define VIP4_DEAD "198.19.0.30"
#define VIP6	"2001:db8:f::10"
#define CLI4	"198.18.0.1"
#define CLI6	"2001:db8:c::1"
#define NVMS	3

static struct ftvm_steer *steer;
static struct ftvm_fence *fence;
static struct ftvm_dp *dp;
static int vm_ifindex[NVMS + 1];
static uint8_t vm_mac[NVMS + 1][6];
/* The "NIC": live frames enter here, where ftvm_steer is attached. */
static int nic_ifindex;

/* ------------------------------------------------------------------ */

static int run_xdp(const uint8_t *in, size_t len, uint8_t *out, size_t *outlen,
		   int *verdict)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in,
		    .data_size_in = (uint32_t)len, .data_out = out,
		    .data_size_out = FRAME_MAX, .repeat = 1);
	int err;

	err = bpf_prog_test_run_opts(bpf_program__fd(steer->progs.ftvm_steer),
				     &o);
	if (err)
		return -errno;
	*verdict = (int)o.retval;
	*outlen = o.data_size_out;
	return 0;
}

/*
 * Run @in with live frames, received on the NIC: the kernel redirects
 * it for real (and reports a failed redirect to the tracers).
 */
static int run_live(int prog, const uint8_t *in, size_t len)
{
	struct xdp_md ctx = { .data_end = (uint32_t)len,
			      .ingress_ifindex = (uint32_t)nic_ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in,
		    .data_size_in = (uint32_t)len, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1,
		    .flags = BPF_F_TEST_XDP_LIVE_FRAMES);

	if (bpf_prog_test_run_opts(prog, &o))
		return -errno;
	return 0;
}

/* Frames received by each VM: by the VM end of its veth (rx_packets). */
static int vm_rx(uint64_t rx[NVMS + 1])
{
	struct ifaddrs *ifa, *i;

	memset(rx, 0, (NVMS + 1) * sizeof(*rx));
	if (getifaddrs(&ifa))
		return -1;
	for (i = ifa; i; i = i->ifa_next) {
		char name[IF_NAMESIZE];

		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_PACKET ||
		    !i->ifa_data)
			continue;
		for (int vm = 1; vm <= NVMS; vm++) {
			snprintf(name, sizeof(name), "ftvmt%dp", vm);
			if (!strcmp(i->ifa_name, name))
				rx[vm] = ((struct rtnl_link_stats *)
					  i->ifa_data)->rx_packets;
		}
	}
	freeifaddrs(ifa);
	return 0;
}

/*
 * Wait until VM @vm (0: none) has received one frame more than in
 * @before, then check that no other VM received any.
 */
static int expect_delivery(const char *what, const uint64_t *before,
			   uint32_t vm)
{
	uint64_t rx[NVMS + 1];

	for (int tries = 0; tries < 2000; tries++) {
		if (vm_rx(rx))
			return -1;
		if (!vm || rx[vm] > before[vm])
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 100000 }, NULL);
	}
	for (uint32_t i = 1; i <= NVMS; i++) {
		uint64_t want = before[i] + (i == vm);

		if (rx[i] != want) {
			ktap_diag("%s: VM %u received %llu frames, want %llu",
				  what, i, (unsigned long long)(rx[i] - before[i]),
				  (unsigned long long)(want - before[i]));
			return -1;
		}
	}
	return 0;
}

static int run_tc(const uint8_t *in, size_t len, int ifindex, int *verdict)
{
	struct __sk_buff ctx = { .ifindex = (uint32_t)ifindex };
	uint8_t out[FRAME_MAX];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in,
		    .data_size_in = (uint32_t)len, .data_out = out,
		    .data_size_out = sizeof(out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);

	if (bpf_prog_test_run_opts(bpf_program__fd(fence->progs.ftvm_fence),
				   &o))
		return -errno;
	*verdict = (int)o.retval;
	return 0;
}

static void spec_flow(const struct frame_spec *s, struct ftvm_flow *f)
{
	memset(f, 0, sizeof(*f));
	f->family = s->family == 6 ? FTVM_FAMILY_V6 : FTVM_FAMILY_V4;
	inet_pton(s->family == 6 ? AF_INET6 : AF_INET, s->saddr, f->saddr);
	inet_pton(s->family == 6 ? AF_INET6 : AF_INET, s->daddr, f->daddr);
	f->sport = htons(s->sport);
	f->dport = htons(s->dport);
	f->proto = s->proto;
}

/*
 * Where the data plane must send @s: from the session, or the model.
 * @service (if not NULL): the service index that counts it.
 */
static int predict_svc(const struct frame_spec *s, uint32_t *placement,
		       uint32_t *vm, uint32_t *service)
{
	static uint32_t row[FTVM_MAGLEV_SIZE];
	struct ftvm_service_key k = {};
	struct ftvm_placement pl;
	struct ftvm_session sess;
	struct ftvm_service svc;
	struct ftvm_flow f;

	spec_flow(s, &f);
	if (!ftvm_dp_session_get(dp, &f, &sess)) {
		*placement = sess.placement;
		if (service)
			*service = sess.service;
	} else {
		memcpy(k.vaddr, f.daddr, sizeof(k.vaddr));
		k.port = f.dport;
		k.proto = f.proto;
		k.family = f.family;
		if (ftvm_dp_service_get(dp, &k, &svc) ||
		    ftvm_dp_maglev_read(dp, svc.index, row))
			return -1;
		*placement = row[ftvm_flow_hash(&f) % FTVM_MAGLEV_SIZE];
		if (service)
			*service = svc.index;
	}
	if (ftvm_dp_placement_get(dp, *placement, &pl))
		return -1;
	*vm = pl.primary;
	return 0;
}

static int predict(const struct frame_spec *s, uint32_t *placement,
		   uint32_t *vm)
{
	return predict_svc(s, placement, vm, NULL);
}

static uint64_t gstat(unsigned int which)
{
	uint64_t g[__FTVM_DP_STAT_MAX];

	if (ftvm_dp_global_stats(dp, g))
		return ~0ull;
	return g[which];
}

static struct ftvm_counters vstat(uint32_t vm)
{
	struct ftvm_counters c = {};

	ftvm_dp_vm_stats(dp, vm, &c);
	return c;
}

static struct ftvm_counters sstat(uint32_t service)
{
	struct ftvm_counters c = {};

	ftvm_dp_service_stats(dp, service, &c);
	return c;
}

/* redirect_err of every VM, and the total: what no steered frame moves. */
static void redirect_errs(uint64_t e[NVMS + 1])
{
	e[0] = gstat(FTVM_DP_REDIRECT_ERR);
	for (uint32_t i = 1; i <= NVMS; i++)
		e[i] = vstat(i).redirect_err;
}

/* The frame ftvm_steer must emit for @f going to @vm. */
static size_t expected_out(const struct frame *f, size_t len, uint32_t vm,
			   uint8_t *out)
{
	size_t hdr = 14, l3 = f->l3_off;

	memcpy(out, vm_mac[vm], 6);
	memcpy(out + 6, f->data, 6);		/* our MAC becomes source */
	memcpy(out + 12, f->data + l3 - 2, 2);	/* the inner ethertype */
	memcpy(out + hdr, f->data + l3, len - l3);
	return hdr + len - l3;
}

/*
 * Why live-frame test runs cannot be made here (the kernel refuses them:
 * some hosts do, to root too), or NULL.  Then no frame is delivered to a
 * VM's device: the checks of a delivery are left out, the checks of a
 * failed one skipped.
 */
static const char *no_live;

/* Runs of a frame by steer_check(): the test run, and the live one. */
static uint32_t steer_runs(void)
{
	return no_live ? 1 : 2;
}

static void probe_live(void)
{
	static char why[128];
	const struct bpf_insn pass[] = {	/* r0 = XDP_PASS; exit */
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .imm = XDP_PASS },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	uint8_t frame[64] = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame,
		    .data_size_in = sizeof(frame), .repeat = 1,
		    .flags = BPF_F_TEST_XDP_LIVE_FRAMES);
	int fd, err;

	fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "ftvm_probe", "GPL", pass,
			   ARRAY_SIZE(pass), NULL);
	if (fd < 0)
		return;
	err = bpf_prog_test_run_opts(fd, &o);
	close(fd);
	if (!err)
		return;
	snprintf(why, sizeof(why),
		 "this kernel refuses live-frame XDP test runs (%s)",
		 strerror(-err));
	no_live = why;
}

/*
 * Send the first @len bytes of @f and check it is steered to the VM the
 * model predicts, byte for byte, then once more as a live frame that
 * must reach that VM's device (unless no_live).  The VM's and the
 * service's counters move by a packet per run (a new session by one
 * creation), a devmap miss each only if @by_ifindex, and no redirect
 * fails.
 */
static int steer_check(const char *what, const struct frame_spec *s,
		       const struct frame *f, size_t len, uint32_t *vm_out,
		       bool by_ifindex)
{
	uint8_t out[FRAME_MAX], want[FRAME_MAX];
	struct ftvm_counters before, after, sbefore, safter;
	uint64_t rx[NVMS + 1], e0[NVMS + 1], e1[NVMS + 1];
	uint32_t runs = steer_runs(), miss = by_ifindex ? runs : 0;
	uint32_t placement, vm, service;
	struct ftvm_session sess;
	struct ftvm_flow flow;
	size_t outlen, wantlen;
	int verdict, fresh;

	spec_flow(s, &flow);
	fresh = !!ftvm_dp_session_get(dp, &flow, &sess);
	if (predict_svc(s, &placement, &vm, &service) || vm < 1 || vm > NVMS) {
		ktap_diag("%s: no prediction", what);
		return -1;
	}
	before = vstat(vm);
	sbefore = sstat(service);
	redirect_errs(e0);
	if (run_xdp(f->data, len, out, &outlen, &verdict)) {
		ktap_diag("%s: test run failed: %s", what, strerror(errno));
		return -1;
	}
	after = vstat(vm);
	if (verdict != XDP_REDIRECT) {
		ktap_diag("%s (len %zu): verdict %d, want XDP_REDIRECT", what,
			  len, verdict);
		return -1;
	}
	wantlen = expected_out(f, len, vm, want);
	if (outlen != wantlen || memcmp(out, want, outlen)) {
		ktap_diag("%s (len %zu): wrong bytes out", what, len);
		frame_hexdump("got", out, outlen);
		frame_hexdump("want", want, wantlen);
		return -1;
	}
	if (after.packets != before.packets + 1 ||
	    after.bytes != before.bytes + len) {
		ktap_diag("%s: VM %u counters did not move (%llu -> %llu)",
			  what, vm, (unsigned long long)before.packets,
			  (unsigned long long)after.packets);
		return -1;
	}
	if (ftvm_dp_session_get(dp, &flow, &sess) ||
	    sess.placement != placement || sess.service != service) {
		ktap_diag("%s: session entry missing or on another placement",
			  what);
		return -1;
	}

	/* The kernel redirects it: to the predicted VM's device, alone. */
	if (!no_live &&
	    (vm_rx(rx) ||
	     run_live(bpf_program__fd(steer->progs.ftvm_steer), f->data, len))) {
		ktap_diag("%s: live run failed: %s", what, strerror(errno));
		return -1;
	}
	if (!no_live && expect_delivery(what, rx, vm))
		return -1;
	after = vstat(vm);
	safter = sstat(service);
	redirect_errs(e1);
	if (after.packets != before.packets + runs ||
	    after.bytes != before.bytes + runs * len ||
	    after.new_sessions != before.new_sessions + (uint64_t)fresh ||
	    after.devmap_miss != before.devmap_miss + miss ||
	    safter.packets != sbefore.packets + runs ||
	    safter.bytes != sbefore.bytes + runs * len ||
	    safter.new_sessions != sbefore.new_sessions + (uint64_t)fresh ||
	    safter.devmap_miss != sbefore.devmap_miss + miss) {
		ktap_diag("%s (len %zu): VM %u packets +%llu bytes +%llu new +%llu miss +%llu, service %u packets +%llu bytes +%llu new +%llu miss +%llu; want %u, %zu, %d, %u",
			  what, len, vm,
			  (unsigned long long)(after.packets - before.packets),
			  (unsigned long long)(after.bytes - before.bytes),
			  (unsigned long long)(after.new_sessions - before.new_sessions),
			  (unsigned long long)(after.devmap_miss - before.devmap_miss),
			  service,
			  (unsigned long long)(safter.packets - sbefore.packets),
			  (unsigned long long)(safter.bytes - sbefore.bytes),
			  (unsigned long long)(safter.new_sessions - sbefore.new_sessions),
			  (unsigned long long)(safter.devmap_miss - sbefore.devmap_miss),
			  runs, runs * len, fresh, miss);
		return -1;
	}
	if (memcmp(e0, e1, sizeof(e0))) {
		ktap_diag("%s: a redirect error was counted (total %llu -> %llu)",
			  what, (unsigned long long)e0[0],
			  (unsigned long long)e1[0]);
		return -1;
	}
	if (vm_out)
		*vm_out = vm;
	return 0;
}

/* Steered through the devmap: no devmap miss. */
static int expect_steered(const char *what, const struct frame_spec *s,
			  const struct frame *f, size_t len, uint32_t *vm_out)
{
	return steer_check(what, s, f, len, vm_out, false);
}

/* Send @len bytes; want @verdict and (for PASS) the frame untouched. */
static int expect_verdict(const char *what, const uint8_t *in, size_t len,
			  int want)
{
	uint8_t out[FRAME_MAX];
	size_t outlen;
	int verdict;

	if (run_xdp(in, len, out, &outlen, &verdict)) {
		ktap_diag("%s (len %zu): test run failed: %s", what, len,
			  strerror(errno));
		return -1;
	}
	if (verdict != want) {
		ktap_diag("%s (len %zu): verdict %d, want %d", what, len,
			  verdict, want);
		return -1;
	}
	if (want == XDP_PASS && (outlen != len || memcmp(in, out, len))) {
		ktap_diag("%s (len %zu): passed frame was modified", what, len);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The generated matrix.                                               */

static uint16_t next_sport = 10000;

static void test_matrix_one(int family, uint8_t proto, int vlans, int variant)
{
	static const int v4_opts[] = { 0, 4, 40 };
	struct frame_spec s = {
		.family = family, .proto = proto, .vlans = vlans,
		.saddr = family == 4 ? CLI4 : CLI6,
		.daddr = family == 4 ? VIP4 : VIP6,
		.dport = proto == IPPROTO_TCP ? 80 : 53,
		.payload = 32,
	};
	char what[96];
	struct frame f;
	uint32_t vm1, vm2;
	uint64_t mal0, new0;
	int ok = 1;

	if (family == 4)
		s.ip_opts = v4_opts[variant];
	else if (variant == 1)
		s.ext_hdrs = 3;
	else if (variant == 2)
		s.ext_hdrs = 2, s.ext_ah = true;
	snprintf(what, sizeof(what), "ipv%d %s %s %s", family,
		 proto == IPPROTO_TCP ? "tcp" : "udp",
		 vlans == 0 ? "untagged" : vlans == 1 ? "802.1Q" : "QinQ",
		 family == 4 ? (variant == 0 ? "no-options" : variant == 1 ?
				"options=4" : "options=40") :
			       (variant == 0 ? "no-ext" : variant == 1 ?
				"ext=hop,dst,rt" : "ext=hop,dst,ah"));

	/* A new session, then a hit: same VM, one session. */
	s.sport = next_sport++;
	new0 = gstat(FTVM_DP_SESSION_NEW);
	if (frame_build(&s, &f) ||
	    expect_steered(what, &s, &f, f.len, &vm1) ||
	    expect_steered(what, &s, &f, f.len, &vm2) || vm1 != vm2 ||
	    gstat(FTVM_DP_SESSION_NEW) != new0 + 1) {
		ok = 0;
		goto out;
	}

	/* The same packet of a new session cut at every length. */
	s.sport = next_sport++;
	frame_build(&s, &f);
	mal0 = gstat(FTVM_DP_MALFORMED);
	for (size_t len = 0; len < 14 && ok; len++) {
		uint8_t out[FRAME_MAX];
		size_t outlen;
		int v;

		/* The kernel never runs XDP on less than an Ethernet header. */
		if (run_xdp(f.data, len, out, &outlen, &v) != -EINVAL) {
			ktap_diag("%s: %zu-byte frame was run", what, len);
			ok = 0;
		}
	}
	for (size_t len = 14; len <= f.len && ok; len++) {
		if (len < f.l4_end)
			ok = !expect_verdict(what, f.data, len, XDP_PASS);
		else
			ok = !expect_steered(what, &s, &f, len, NULL);
	}
	if (ok && gstat(FTVM_DP_MALFORMED) - mal0 != f.l4_end - 14) {
		ktap_diag("%s: malformed counted %llu times, want %zu", what,
			  (unsigned long long)(gstat(FTVM_DP_MALFORMED) - mal0),
			  f.l4_end - 14);
		ok = 0;
	}
out:
	ktap_result(ok, "steer %s: new, hit, cut at every length", what);
}

static void test_matrix(void)
{
	for (int family = 4; family <= 6; family += 2)
		for (int p = 0; p < 2; p++)
			for (int vlans = 0; vlans <= 2; vlans++)
				for (int var = 0; var < 3; var++)
					test_matrix_one(family, p ? IPPROTO_UDP :
							IPPROTO_TCP, vlans, var);
}
#define MATRIX_TESTS (2 * 2 * 3 * 3)

/* ------------------------------------------------------------------ */
/* Fixtures: frames the data plane must leave (or drop) as described.  */

enum mutation { MUT_NONE, MUT_IHL4, MUT_VERSION, MUT_TOTLEN };

static const struct fixture {
	const char *desc;
	struct frame_spec s;
	enum mutation mut;
	int verdict;
	int stat;		/* global counter that moves by one, or -1 */
} fixtures[] = {
	{ "ipv4 first fragment to a service is passed",
	  { 4, IPPROTO_UDP, .frag = FRAG_FIRST, .saddr = CLI4, .daddr = VIP4,
	    .sport = 7, .dport = 53 }, MUT_NONE, XDP_PASS, FTVM_DP_FRAGMENT },
	{ "ipv4 later fragment to a service is passed",
	  { 4, IPPROTO_UDP, .frag = FRAG_LATER, .saddr = CLI4, .daddr = VIP4,
	    .sport = 7, .dport = 53 }, MUT_NONE, XDP_PASS, FTVM_DP_FRAGMENT },
	{ "ipv6 first fragment to a service is passed",
	  { 6, IPPROTO_UDP, .frag = FRAG_FIRST, .saddr = CLI6, .daddr = VIP6,
	    .sport = 7, .dport = 53 }, MUT_NONE, XDP_PASS, FTVM_DP_FRAGMENT },
	{ "ipv6 later fragment behind hop-by-hop is passed",
	  { 6, IPPROTO_TCP, .ext_hdrs = 1, .frag = FRAG_LATER, .saddr = CLI6,
	    .daddr = VIP6, .sport = 7, .dport = 80 }, MUT_NONE, XDP_PASS,
	  FTVM_DP_FRAGMENT },
	{ "ipv4 fragment in QinQ is passed",
	  { 4, IPPROTO_TCP, .vlans = 2, .frag = FRAG_FIRST, .saddr = CLI4,
	    .daddr = VIP4, .sport = 7, .dport = 80 }, MUT_NONE, XDP_PASS,
	  FTVM_DP_FRAGMENT },
	{ "ipv4 to the VIP on another port is passed",
	  { 4, IPPROTO_TCP, .saddr = CLI4, .daddr = VIP4, .sport = 7,
	    .dport = 81 }, MUT_NONE, XDP_PASS, FTVM_DP_NOT_SERVICE },
	{ "ipv4 udp to the tcp-only port is passed",
	  { 4, IPPROTO_UDP, .saddr = CLI4, .daddr = VIP4, .sport = 7,
	    .dport = 80 }, MUT_NONE, XDP_PASS, FTVM_DP_NOT_SERVICE },
	{ "ipv4 to another address is passed",
	  { 4, IPPROTO_TCP, .saddr = CLI4, .daddr = "198.18.7.7", .sport = 7,
	    .dport = 80 }, MUT_NONE, XDP_PASS, FTVM_DP_NOT_SERVICE },
	{ "ipv6 to another address is passed",
	  { 6, IPPROTO_UDP, .saddr = CLI6, .daddr = "2001:db8:f::11",
	    .sport = 7, .dport = 53 }, MUT_NONE, XDP_PASS,
	  FTVM_DP_NOT_SERVICE },
	{ "ipv4 address of a v6 service is not the service",
	  { 4, IPPROTO_UDP, .saddr = CLI4, .daddr = "198.19.0.11", .sport = 7,
	    .dport = 53 }, MUT_NONE, XDP_PASS, FTVM_DP_NOT_SERVICE },
	{ "arp is passed",
	  { 4, 0, .l2_proto = 0x0806 }, MUT_NONE, XDP_PASS, FTVM_DP_NOT_IP },
	{ "lldp in 802.1Q is passed",
	  { 4, 0, .vlans = 1, .l2_proto = 0x88cc }, MUT_NONE, XDP_PASS,
	  FTVM_DP_NOT_IP },
	{ "three vlan tags are passed",
	  { 4, IPPROTO_TCP, .vlans = 3, .saddr = CLI4, .daddr = VIP4,
	    .sport = 7, .dport = 80 }, MUT_NONE, XDP_PASS, FTVM_DP_NOT_IP },
	{ "icmp to the VIP is passed",
	  { 4, IPPROTO_ICMP, .saddr = CLI4, .daddr = VIP4 }, MUT_NONE,
	  XDP_PASS, FTVM_DP_NOT_L4 },
	{ "icmpv6 behind two extension headers is passed",
	  { 6, 58, .ext_hdrs = 2, .saddr = CLI6, .daddr = VIP6 }, MUT_NONE,
	  XDP_PASS, FTVM_DP_NOT_L4 },
	{ "ipv6 esp is passed",
	  { 6, IPPROTO_UDP, .ext_esp = true, .saddr = CLI6, .daddr = VIP6,
	    .sport = 7, .dport = 53 }, MUT_NONE, XDP_PASS, FTVM_DP_NOT_L4 },
	{ "ipv6 with more extension headers than parsed is passed",
	  { 6, IPPROTO_UDP, .ext_hdrs = 4, .ext_ah = true, .saddr = CLI6,
	    .daddr = VIP6, .sport = 7, .dport = 53 }, MUT_NONE, XDP_PASS,
	  FTVM_DP_NOT_L4 },
	{ "ipv4 ihl 4 is malformed",
	  { 4, IPPROTO_TCP, .saddr = CLI4, .daddr = VIP4, .sport = 7,
	    .dport = 80 }, MUT_IHL4, XDP_PASS, FTVM_DP_MALFORMED },
	{ "ipv4 header with version 5 is malformed",
	  { 4, IPPROTO_TCP, .saddr = CLI4, .daddr = VIP4, .sport = 7,
	    .dport = 80 }, MUT_VERSION, XDP_PASS, FTVM_DP_MALFORMED },
	{ "ipv4 total length below the header is malformed",
	  { 4, IPPROTO_TCP, .ip_opts = 8, .saddr = CLI4, .daddr = VIP4,
	    .sport = 7, .dport = 80 }, MUT_TOTLEN, XDP_PASS,
	  FTVM_DP_MALFORMED },
	{ "ipv6 header with version 4 is malformed",
	  { 6, IPPROTO_TCP, .saddr = CLI6, .daddr = VIP6, .sport = 7,
	    .dport = 80 }, MUT_VERSION, XDP_PASS, FTVM_DP_MALFORMED },
	{ "tcp data offset 3 is malformed",
	  { 4, IPPROTO_TCP, .tcp_doff = 3, .saddr = CLI4, .daddr = VIP4,
	    .sport = 7, .dport = 80 }, MUT_NONE, XDP_PASS, FTVM_DP_MALFORMED },
	{ "service without live placements is passed",
	  { 4, IPPROTO_TCP, .saddr = CLI4, .daddr = VIP4_EMPTY, .sport = 7,
	    .dport = 443 }, MUT_NONE, XDP_PASS, -1 },
	{ "session of a placement whose VM is unknown is dropped",
	  { 4, IPPROTO_TCP, .saddr = CLI4, .daddr = VIP4_DEAD, .sport = 7,
	    .dport = 80 }, MUT_NONE, XDP_DROP, -1 },
};

static void test_fixtures(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(fixtures); i++) {
		const struct fixture *fx = &fixtures[i];
		uint64_t before = fx->stat >= 0 ? gstat((unsigned int)fx->stat) : 0;
		struct frame f;
		int ok;

		ok = !frame_build(&fx->s, &f);
		if (fx->mut == MUT_IHL4)
			f.data[f.l3_off] = 0x44;
		else if (fx->mut == MUT_VERSION)
			f.data[f.l3_off] = fx->s.family == 4 ? 0x55 : 0x40;
		else if (fx->mut == MUT_TOTLEN)
			f.data[f.l3_off + 2] = 0, f.data[f.l3_off + 3] = 24;
		ok = ok && !expect_verdict(fx->desc, f.data, f.len, fx->verdict);
		if (ok && fx->stat >= 0 &&
		    gstat((unsigned int)fx->stat) != before + 1) {
			ktap_diag("counter %s did not move",
				  ftvm_dp_stat_name((unsigned int)fx->stat));
			ok = 0;
		}
		ktap_result(ok, "%s", fx->desc);
	}
}

/* Service counters for "pass" and "drop" and the devmap-miss path. */
static void test_service_counters(void)
{
	struct ftvm_service_key k;
	struct ftvm_service svc;
	struct ftvm_counters c0, c1, vc0, vc1;
	struct frame_spec s = { 4, IPPROTO_TCP, .saddr = CLI4,
				.daddr = VIP4_EMPTY, .sport = 8, .dport = 443 };
	uint8_t out[FRAME_MAX], want[FRAME_MAX];
	size_t outlen, wantlen;
	struct frame f;
	uint32_t key = 2;
	int ok, verdict;
	uint64_t tb0;

	ftvm_dp_service_parse(VIP4_EMPTY ":443/tcp", &k);
	ftvm_dp_service_get(dp, &k, &svc);
	ftvm_dp_service_stats(dp, svc.index, &c0);
	frame_build(&s, &f);
	ok = !expect_verdict("empty row", f.data, f.len, XDP_PASS);
	ftvm_dp_service_stats(dp, svc.index, &c1);
	ktap_result(ok && c1.pass == c0.pass + 1 && c1.packets == c0.packets,
		    "service without placements counts a pass");

	ftvm_dp_service_parse(VIP4_DEAD ":80/tcp", &k);
	ftvm_dp_service_get(dp, &k, &svc);
	ftvm_dp_service_stats(dp, svc.index, &c0);
	s.daddr = VIP4_DEAD;
	s.dport = 80;
	frame_build(&s, &f);
	ok = !expect_verdict("dead VM", f.data, f.len, XDP_DROP);
	ftvm_dp_service_stats(dp, svc.index, &c1);
	ktap_result(ok && c1.drop == c0.drop + 1,
		    "service whose VM is unknown counts a drop");

	/*
	 * VM 2 registered but its devmap slot empty (a copy loaded by
	 * iproute2 before ftd fills it): redirected by ifindex, still
	 * rewritten, counted as steered and as a devmap miss.
	 */
	ftvm_dp_service_parse(VIP4 ":80/tcp", &k);
	ftvm_dp_service_get(dp, &k, &svc);
	bpf_map_delete_elem(bpf_map__fd(steer->maps.ftvm_devmap), &key);
	ftvm_dp_placement_set(dp, 1, 2, 0);
	ftvm_dp_placement_set(dp, 2, 2, 0);
	ftvm_dp_placement_set(dp, 3, 2, 0);
	ftvm_dp_service_stats(dp, svc.index, &c0);
	vc0 = vstat(2);
	s.daddr = VIP4;
	s.sport = 9;
	frame_build(&s, &f);
	/* Twice: the test run, then the live frame that reaches VM 2. */
	ok = !steer_check("no devmap slot", &s, &f, f.len, NULL, true);
	ftvm_dp_service_stats(dp, svc.index, &c1);
	vc1 = vstat(2);
	ok = ok && c1.devmap_miss == c0.devmap_miss + steer_runs() &&
	     c1.packets == c0.packets + steer_runs();
	ok = ok && vc1.devmap_miss == vc0.devmap_miss + steer_runs() &&
	     vc1.packets == vc0.packets + steer_runs();
	/* Registering the VM again fills the slot: no more misses. */
	ftvm_dp_vm_set(dp, 2, vm_ifindex[2], vm_mac[2]);
	s.sport = 10;
	frame_build(&s, &f);
	ok = ok && !expect_steered("devmap slot back", &s, &f, f.len, NULL);
	ok = ok && vstat(2).devmap_miss == vc1.devmap_miss;
	ftvm_dp_placement_set(dp, 1, 1, 2);
	ftvm_dp_placement_set(dp, 2, 2, 3);
	ftvm_dp_placement_set(dp, 3, 3, 1);
	ktap_result(ok, "empty devmap slot: steered by ifindex, counted as a devmap miss");

	/*
	 * The primary's device gone (the kernel empties its slot), the
	 * backup's slot filled: to the backup, with the backup's MAC,
	 * counted as steered there and as to_backup.  Without a backup, by
	 * ifindex to the primary as before.
	 */
	ftvm_dp_placement_set(dp, 1, 2, 3);
	ftvm_dp_placement_set(dp, 2, 2, 3);
	ftvm_dp_placement_set(dp, 3, 2, 3);
	bpf_map_delete_elem(bpf_map__fd(steer->maps.ftvm_devmap), &key);
	vc0 = vstat(3);
	c0 = vstat(2);
	tb0 = gstat(FTVM_DP_TO_BACKUP);
	s.sport = 11;
	frame_build(&s, &f);
	ok = !run_xdp(f.data, f.len, out, &outlen, &verdict) &&
	     verdict == XDP_REDIRECT;
	wantlen = expected_out(&f, f.len, 3, want);
	ok = ok && outlen == wantlen && !memcmp(out, want, outlen);
	vc1 = vstat(3);
	c1 = vstat(2);
	ok = ok && vc1.packets == vc0.packets + 1 && c1.packets == c0.packets &&
	     gstat(FTVM_DP_TO_BACKUP) == tb0 + 1;
	ftvm_dp_placement_set(dp, 1, 2, 0);
	ftvm_dp_placement_set(dp, 2, 2, 0);
	ftvm_dp_placement_set(dp, 3, 2, 0);
	s.sport = 12;
	frame_build(&s, &f);
	ok = ok && !steer_check("no backup", &s, &f, f.len, NULL, true) &&
	     vstat(2).devmap_miss == c1.devmap_miss + steer_runs() &&
	     gstat(FTVM_DP_TO_BACKUP) == tb0 + 1;
	ftvm_dp_vm_set(dp, 2, vm_ifindex[2], vm_mac[2]);
	ftvm_dp_placement_set(dp, 1, 1, 2);
	ftvm_dp_placement_set(dp, 2, 2, 3);
	ftvm_dp_placement_set(dp, 3, 3, 1);
	ktap_result(ok, "primary's devmap slot emptied, backup's filled: steered to the backup, counted as to_backup");
}

/*
 * Set FTVM_VM_F_FAILED on @vm as ftvm_on_vm_failed sets it, its
 * backups holding for @held_ms more (negative: their hold is over; 0:
 * none holds), or clear it (@failed false).
 */
static int vm_flag_failed_for(uint32_t vm, bool failed, int held_ms)
{
	struct timespec now;	/* bpf_ktime_get_ns()'s clock */
	struct ftvm_vm v;

	if (ftvm_dp_vm_get(dp, vm, &v))
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (failed) {
		v.flags |= FTVM_VM_F_FAILED;
		v.failed_until = !held_ms ? 0 :
			(uint64_t)(now.tv_sec * 1000000000ll + now.tv_nsec +
				   held_ms * 1000000ll);
	} else {
		v.flags &= (uint16_t)~FTVM_VM_F_FAILED;
	}
	return bpf_map_update_elem(ftvm_dp_vms_fd(dp), &vm, &v, BPF_ANY);
}

static int vm_flag_failed(uint32_t vm, bool failed)
{
	return vm_flag_failed_for(vm, failed, 10000);
}

static bool vm_flagged_failed(uint32_t vm)
{
	struct ftvm_vm v;

	return !ftvm_dp_vm_get(dp, vm, &v) && (v.flags & FTVM_VM_F_FAILED);
}

/*
 * ftvm.ko reported VM 2 failed (FTVM_VM_F_FAILED; its device still
 * there, its devmap slot still filled): its sessions go to their backup,
 * with the backup's MAC, counted there and as to_backup; not to a backup
 * flagged failed too, nor without one (to the primary then, as before),
 * nor, for TCP, once the backups' hold is over.  Unfencing the VM (back in
 * service) clears the flag; fencing keeps it.
 */
#define FAILED_TESTS 5
static void test_failed_flag(void)
{
	uint32_t key = 2;
	uint8_t out[FRAME_MAX], want[FRAME_MAX];
	struct ftvm_counters p0, b0;
	struct frame_spec s = { 4, IPPROTO_TCP, .saddr = CLI4, .daddr = VIP4,
				.dport = 80 };
	size_t outlen, wantlen;
	struct frame f;
	uint64_t tb0;
	int verdict;
	bool ok;

	ftvm_dp_placement_set(dp, 1, 2, 3);
	ftvm_dp_placement_set(dp, 2, 2, 3);
	ftvm_dp_placement_set(dp, 3, 2, 3);
	ok = !vm_flag_failed(2, true);
	p0 = vstat(2);
	b0 = vstat(3);
	tb0 = gstat(FTVM_DP_TO_BACKUP);
	s.sport = 21;
	frame_build(&s, &f);
	ok = ok && !run_xdp(f.data, f.len, out, &outlen, &verdict) &&
	     verdict == XDP_REDIRECT;
	wantlen = expected_out(&f, f.len, 3, want);
	ok = ok && outlen == wantlen && !memcmp(out, want, outlen) &&
	     vstat(3).packets == b0.packets + 1 &&
	     vstat(2).packets == p0.packets &&
	     gstat(FTVM_DP_TO_BACKUP) == tb0 + 1;
	ktap_result(ok, "primary flagged failed by ftvm.ko: steered to its backup, counted as to_backup");

	/* The backup failed too: the primary, as if nothing were flagged. */
	ok = !vm_flag_failed(3, true);
	s.sport = 22;
	frame_build(&s, &f);
	ok = ok && !expect_steered("backup failed too", &s, &f, f.len, NULL) &&
	     gstat(FTVM_DP_TO_BACKUP) == tb0 + 1;
	ok = ok && !vm_flag_failed(3, false);
	/* No backup. */
	ftvm_dp_placement_set(dp, 1, 2, 0);
	ftvm_dp_placement_set(dp, 2, 2, 0);
	ftvm_dp_placement_set(dp, 3, 2, 0);
	s.sport = 23;
	frame_build(&s, &f);
	ok = ok && !expect_steered("failed, no backup", &s, &f, f.len, NULL) &&
	     gstat(FTVM_DP_TO_BACKUP) == tb0 + 1;
	ktap_result(ok, "primary flagged failed, its backup failed too or none: steered to the primary as before");

	/*
	 * The backups' hold is over (ftd did not switch in time), or none
	 * was armed: a backup would reset the session, so the primary,
	 * even with its devmap slot empty (by ifindex; flagged, it does
	 * not fall back to the backup as an unflagged VM does).
	 */
	ftvm_dp_placement_set(dp, 1, 2, 3);
	ftvm_dp_placement_set(dp, 2, 2, 3);
	ftvm_dp_placement_set(dp, 3, 2, 3);
	ok = !vm_flag_failed_for(2, true, -1);
	s.sport = 24;
	frame_build(&s, &f);
	ok = ok && !expect_steered("hold over", &s, &f, f.len, NULL);
	ok = ok && !vm_flag_failed_for(2, true, 0);
	s.sport = 25;
	frame_build(&s, &f);
	ok = ok && !expect_steered("no hold", &s, &f, f.len, NULL);
	bpf_map_delete_elem(bpf_map__fd(steer->maps.ftvm_devmap), &key);
	s.sport = 26;
	frame_build(&s, &f);
	ok = ok && !steer_check("hold over, slot empty", &s, &f, f.len, NULL,
				true) &&
	     gstat(FTVM_DP_TO_BACKUP) == tb0 + 1;
	/* A UDP session needs no hold: the backup. */
	b0 = vstat(3);
	s.proto = IPPROTO_UDP;
	s.dport = 53;
	s.sport = 27;
	frame_build(&s, &f);
	ok = ok && !run_xdp(f.data, f.len, out, &outlen, &verdict) &&
	     verdict == XDP_REDIRECT && vstat(3).packets == b0.packets + 1 &&
	     gstat(FTVM_DP_TO_BACKUP) == tb0 + 2;
	s.proto = IPPROTO_TCP;
	s.dport = 80;
	/* Still holding: the backup again. */
	ok = ok && !vm_flag_failed_for(2, true, 10000);
	b0 = vstat(3);
	s.sport = 28;
	frame_build(&s, &f);
	ok = ok && !run_xdp(f.data, f.len, out, &outlen, &verdict) &&
	     verdict == XDP_REDIRECT && vstat(3).packets == b0.packets + 1 &&
	     gstat(FTVM_DP_TO_BACKUP) == tb0 + 3;
	ftvm_dp_vm_set(dp, 2, vm_ifindex[2], vm_mac[2]);
	ktap_result(ok, "primary flagged failed, its backups' hold over or never armed: a TCP session steered to the primary, not to the backup even with its devmap slot empty; a UDP one to the backup");

	ok = !ftvm_dp_vm_set_fenced(dp, 2, true) && vm_flagged_failed(2);
	ktap_result(ok, "fencing a failed VM keeps its failed flag");
	ok = !ftvm_dp_vm_set_fenced(dp, 2, false) && !vm_flagged_failed(2);
	ftvm_dp_placement_set(dp, 1, 1, 2);
	ftvm_dp_placement_set(dp, 2, 2, 3);
	ftvm_dp_placement_set(dp, 3, 3, 1);
	ktap_result(ok, "unfencing a VM (back in service) clears its failed flag");
}

/* Slot @vm of @devmap: its ifindex, 0 if empty. */
static uint32_t devmap_slot(int devmap, uint32_t vm)
{
	uint32_t ifi = 0;

	if (bpf_map_lookup_elem(devmap, &vm, &ifi))
		return 0;
	return ifi;
}

static bool devmap_full(int devmap)
{
	for (uint32_t i = 1; i <= NVMS; i++)
		if (devmap_slot(devmap, i) != (uint32_t)vm_ifindex[i])
			return false;
	return true;
}

/*
 * A second copy of ftvm_steer on the same maps, as "ip link ... xdp obj"
 * loads one over the pins: its own devmap starts empty, and the library
 * finds the copy through ftvm_vms and fills it.
 */
static void test_devmap_copies(void)
{
	struct ftvm_dp_devmaps seen = { .n = 0 };
	int vms = ftvm_dp_vms_fd(dp), dm2, n1, n2, n3;
	struct ftvm_steer *copy;
	struct bpf_map *m;
	bool ok;

	copy = ftvm_steer__open();
	if (!copy || ftvm_dp_obj_private(copy->obj)) {
		ktap_result(0, "second copy opened");
		ktap_result(0, "second copy: sync");
		ktap_result(0, "second copy: set");
		ftvm_steer__destroy(copy);
		return;
	}
	bpf_object__for_each_map(m, copy->obj)
		if (!bpf_map__is_internal(m) &&
		    bpf_map__type(m) != BPF_MAP_TYPE_DEVMAP)
			bpf_map__reuse_fd(m, bpf_object__find_map_fd_by_name(
					steer->obj, bpf_map__name(m)));
	ok = !ftvm_steer__load(copy);
	dm2 = ok ? bpf_map__fd(copy->maps.ftvm_devmap) : -1;
	ok = ok && !devmap_slot(dm2, 1);
	ktap_result(ok, "a second copy on the same maps starts with an empty devmap");

	/* Both copies found; the new one filled, once. */
	n1 = ftvm_dp_devmaps_sync(vms, &seen);
	ok = n1 == 2 && seen.n == 2 && devmap_full(dm2) &&
	     devmap_full(bpf_map__fd(steer->maps.ftvm_devmap));
	bpf_map_delete_elem(dm2, &(uint32_t){ 1 });
	n2 = ftvm_dp_devmaps_sync(vms, &seen);
	ok = ok && n2 == 2 && !devmap_slot(dm2, 1);
	n3 = ftvm_dp_devmaps_sync(vms, NULL);
	ok = ok && n3 == 2 && devmap_full(dm2);
	if (!ok)
		ktap_diag("sync: %d %d %d copies (%s)", n1, n2, n3,
			  ftvm_dp_errmsg());
	ktap_result(ok, "devmaps_sync finds both copies and fills each new one once");

	/* A VM change reaches every copy; a bad device changes nothing. */
	ok = ftvm_dp_devmaps_set(vms, 3, 0) == 2 && !devmap_slot(dm2, 3) &&
	     !devmap_slot(bpf_map__fd(steer->maps.ftvm_devmap), 3);
	ok = ok && !ftvm_dp_vm_set(dp, 3, vm_ifindex[3], vm_mac[3]) &&
	     devmap_full(dm2);
	ok = ok && ftvm_dp_vm_set(dp, 3, 999999, vm_mac[3]) == -EINVAL &&
	     devmap_full(dm2);
	ftvm_steer__destroy(copy);
	ok = ok && ftvm_dp_devmaps_sync(vms, &seen) == 1 && seen.n == 1;
	ktap_result(ok, "a VM change reaches every copy's devmap; a bad device none");
}

/* Random frames: nothing crashes, nothing is steered or changed. */
static void test_garbage(void)
{
	static const uint16_t types[] = { 0x0800, 0x86dd, 0x8100, 0x88a8,
					  0x0806, 0x1234 };
	uint64_t x = 0x9e3779b97f4a7c15ull;
	uint8_t buf[FRAME_MAX];
	int ok = 1;

	for (int i = 0; i < 4000 && ok; i++) {
		size_t len = 14 + (size_t)(x % 200);

		for (size_t j = 0; j < len; j++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[j] = (uint8_t)x;
		}
		if (i % 2) {
			uint16_t t = types[x % ARRAY_SIZE(types)];

			buf[12] = (uint8_t)(t >> 8);
			buf[13] = (uint8_t)t;
			if (i % 4 == 1 && t == 0x0800)
				buf[14] = 0x45;
		}
		ok = !expect_verdict("garbage", buf, len, XDP_PASS);
	}
	ktap_result(ok, "4000 random frames are passed untouched");
}

/* ------------------------------------------------------------------ */
/* Sessions: Maglev changes and failover.                              */

#define NFLOWS 300

static int send_flows(uint16_t base, const char *vip, uint16_t port,
		      uint32_t *vm)
{
	for (int i = 0; i < NFLOWS; i++) {
		struct frame_spec s = { 4, IPPROTO_UDP, .saddr = CLI4,
					.daddr = vip, .sport = (uint16_t)(base + i),
					.dport = port, .payload = 8 };
		struct frame f;

		if (frame_build(&s, &f) ||
		    expect_steered("flow", &s, &f, f.len, &vm[i]))
			return -1;
	}
	return 0;
}

static void test_sessions(void)
{
	static const struct ftvm_dp_backend all[] = { { 1, 1 }, { 2, 1 }, { 3, 1 } };
	static const struct ftvm_dp_backend only2[] = { { 2, 1 } };
	uint32_t vm0[NFLOWS], vm1[NFLOWS], vmn[NFLOWS];
	unsigned int per_vm[NVMS + 1] = {}, moved = 0, wrong = 0;
	struct ftvm_dp_failover r;
	struct ftvm_service_key k;
	int ok;

	ftvm_dp_service_parse(VIP4 ":53/udp", &k);
	ok = !send_flows(30000, VIP4, 53, vm0);
	for (int i = 0; ok && i < NFLOWS; i++)
		per_vm[vm0[i]]++;
	ok = ok && per_vm[1] > NFLOWS / 6 && per_vm[2] > NFLOWS / 6 &&
	     per_vm[3] > NFLOWS / 6;
	ktap_result(ok, "%d new sessions spread over 3 placements (%u/%u/%u)",
		    NFLOWS, per_vm[1], per_vm[2], per_vm[3]);

	/* A new Maglev row moves no existing session, only new ones. */
	ok = !ftvm_dp_service_set_backends(dp, &k, only2, 1);
	ok = ok && !send_flows(30000, VIP4, 53, vm1);
	for (int i = 0; ok && i < NFLOWS; i++)
		wrong += vm1[i] != vm0[i];
	ok = ok && !wrong && !send_flows(40000, VIP4, 53, vmn);
	for (int i = 0; ok && i < NFLOWS; i++)
		ok = vmn[i] == 2;
	ktap_result(ok, "Maglev row change keeps sessions (%u moved), new ones follow it",
		    wrong);
	ftvm_dp_service_set_backends(dp, &k, all, 3);

	/* Failing VM 1 over: exactly its sessions move, to VM 2. */
	ok = !ftvm_dp_failover_vm(dp, 1, &r);
	ok = ok && r.moved == 1 && r.backups_lost == 1 && !r.stranded;
	ok = ok && !send_flows(30000, VIP4, 53, vm1);
	for (int i = 0; ok && i < NFLOWS; i++) {
		if (vm0[i] == 1) {
			moved++;
			ok = vm1[i] == 2;
		} else {
			ok = vm1[i] == vm0[i];
		}
	}
	ktap_result(ok && moved == per_vm[1],
		    "failover of VM 1: one placement update moves its %u sessions, no other",
		    moved);
	ftvm_dp_placement_set(dp, 1, 1, 2);
	ftvm_dp_placement_set(dp, 3, 3, 1);
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * When a session's packets came (seen_ns, seen_jiffies): its creation's
 * time; noted again by a packet once the note is a grain old, with the
 * clock's time; not by a packet within the grain.
 */
static void test_seen(void)
{
	struct frame_spec sp = { 4, IPPROTO_UDP, .saddr = CLI4, .daddr = VIP4,
				 .sport = 45000, .dport = 53, .payload = 8 };
	int fd = bpf_map__fd(steer->maps.ftvm_sessions4);
	struct ftvm_session e0, e1, e2;
	uint8_t out[FRAME_MAX];
	struct ftvm_flow4 k;
	struct ftvm_flow fl;
	uint64_t t0, t1;
	struct frame f;
	size_t outlen;
	int ok, v;

	spec_flow(&sp, &fl);
	ftvm_flow_to_flow4(&fl, &k);
	ok = !frame_build(&sp, &f) &&
	     !run_xdp(f.data, f.len, out, &outlen, &v) && v == XDP_REDIRECT &&
	     !bpf_map_lookup_elem(fd, &k, &e0);
	ok = ok && e0.seen_ns == e0.created_ns && e0.seen_jiffies;
	/* Made a grain old: the next packet notes its time. */
	e1 = e0;
	e1.seen_ns = 1;
	e1.seen_jiffies = e0.seen_jiffies - FTVM_SEEN_GRAIN_JIFFIES;
	t0 = clock_ns(CLOCK_MONOTONIC_COARSE);
	ok = ok && !bpf_map_update_elem(fd, &k, &e1, BPF_EXIST) &&
	     !run_xdp(f.data, f.len, out, &outlen, &v) && v == XDP_REDIRECT &&
	     !bpf_map_lookup_elem(fd, &k, &e1);
	t1 = clock_ns(CLOCK_MONOTONIC);
	ok = ok && e1.seen_ns >= t0 && e1.seen_ns <= t1 &&
	     e1.seen_jiffies >= e0.seen_jiffies &&
	     e1.placement == e0.placement && e1.created_ns == e0.created_ns;
	/* Within the grain: the entry is not written. */
	e2 = e1;
	e2.seen_ns = 2;
	ok = ok && !bpf_map_update_elem(fd, &k, &e2, BPF_EXIST) &&
	     !run_xdp(f.data, f.len, out, &outlen, &v) && v == XDP_REDIRECT &&
	     !bpf_map_lookup_elem(fd, &k, &e2) && e2.seen_ns == 2 &&
	     e2.seen_jiffies == e1.seen_jiffies;
	if (!ok)
		ktap_diag("seen: created %llu, seen %llu %llu %llu (clock %llu..%llu)",
			  (unsigned long long)e0.created_ns,
			  (unsigned long long)e0.seen_ns,
			  (unsigned long long)e1.seen_ns,
			  (unsigned long long)e2.seen_ns,
			  (unsigned long long)t0, (unsigned long long)t1);
	ktap_result(ok, "a session's packets note when it was seen: at its creation, then once a grain, not per packet");
	ftvm_dp_session_del(dp, &fl);
}

/* ------------------------------------------------------------------ */
/* Redirects the kernel fails: redirect_err.                           */

static uint16_t vm3_sport = 61000;

/* A new UDP session of VIP4:53 that the Maglev row puts on VM 3. */
static int vm3_flow(struct frame_spec *s, struct frame *f)
{
	uint32_t placement, vm = 0;

	while (vm3_sport < 65000) {
		*s = (struct frame_spec){ 4, IPPROTO_UDP, .saddr = CLI4,
					  .daddr = VIP4, .sport = vm3_sport++,
					  .dport = 53, .payload = 8 };
		if (predict(s, &placement, &vm))
			return -1;
		if (vm == 3)
			return frame_build(s, f);
	}
	return -1;
}

static int sh(const char *cmd)
{
	if (system(cmd)) {
		ktap_diag("\"%s\" failed", cmd);
		return -1;
	}
	return 0;
}

/*
 * VM 3's device made to refuse by @breakit (undone by @fix): a session
 * of VM 3 is still steered (XDP_REDIRECT, counted as steered), but the
 * live frame reaches no VM, and VM 3's redirect_err and the total rise
 * by one, no other VM's.
 */
static void redirect_err_case(const char *desc, const char *breakit,
			      const char *fix, int prog)
{
	uint64_t rx[NVMS + 1], e0[NVMS + 1], e1[NVMS + 1];
	uint8_t out[FRAME_MAX];
	struct frame_spec s;
	struct frame f;
	size_t outlen;
	int ok, v;

	if (no_live) {
		ktap_result_skip(no_live, "redirect error counted on VM 3: %s", desc);
		return;
	}
	ok = !vm3_flow(&s, &f) && !run_xdp(f.data, f.len, out, &outlen, &v) &&
	     v == XDP_REDIRECT && !sh(breakit);
	redirect_errs(e0);
	ok = ok && !vm_rx(rx) && !run_live(prog, f.data, f.len) &&
	     !expect_delivery(desc, rx, 0);
	redirect_errs(e1);
	if (ok && (e1[0] != e0[0] + 1 || e1[3] != e0[3] + 1 ||
		   e1[1] != e0[1] || e1[2] != e0[2])) {
		ktap_diag("%s: redirect_err total +%llu, VMs 1..3 +%llu +%llu +%llu; want 1, 0 0 1",
			  desc, (unsigned long long)(e1[0] - e0[0]),
			  (unsigned long long)(e1[1] - e0[1]),
			  (unsigned long long)(e1[2] - e0[2]),
			  (unsigned long long)(e1[3] - e0[3]));
		ok = 0;
	}
	ok = !sh(fix) && ok;
	ktap_result(ok, "redirect error counted on VM 3: %s", desc);
}

static void test_redirect_errors(void)
{
	int prog = bpf_program__fd(steer->progs.ftvm_steer);
	uint32_t key = 3;

	/* Refused when queued: xdp:xdp_redirect_err, by devmap slot. */
	redirect_err_case("its device down", "ip link set ftvmt3 down",
			  "ip link set ftvmt3 up", prog);
	redirect_err_case("its peer without NAPI (no GRO, no XDP)",
			  "ethtool -K ftvmt3p gro off >/dev/null",
			  "ethtool -K ftvmt3p gro on >/dev/null", prog);
	/*
	 * By ifindex (devmap slot empty, no backup to turn to): the
	 * ifindex names the VM.
	 */
	bpf_map_delete_elem(bpf_map__fd(steer->maps.ftvm_devmap), &key);
	ftvm_dp_placement_set(dp, 3, 3, 0);
	redirect_err_case("its device down, steered by ifindex",
			  "ip link set ftvmt3 down", "ip link set ftvmt3 up",
			  prog);
	ftvm_dp_placement_set(dp, 3, 3, 1);
	ftvm_dp_vm_set(dp, 3, vm_ifindex[3], vm_mac[3]);
	/* Queued, then refused at the flush: xdp:xdp_devmap_xmit. */
	redirect_err_case("its peer down when the bulk queue is flushed",
			  "ip link set ftvmt3p down", "ip link set ftvmt3p up",
			  prog);
}

/*
 * Another data plane's ftvm_steer (its own maps, its own tracers) fails
 * the same way: counted there, not here.
 */
static void test_redirect_err_other(void)
{
	static const struct ftvm_dp_backend one[] = { { 1, 1 } };
	uint64_t e0[NVMS + 1], e1[NVMS + 1], o0 = 0, o1 = 0;
	struct ftvm_counters oc0 = {}, oc1 = {};
	struct ftvm_steer *other;
	struct ftvm_service_key k;
	struct ftvm_dp *odp = NULL;
	struct frame_spec s = { 4, IPPROTO_UDP, .saddr = CLI4, .daddr = VIP4,
				.sport = 4242, .dport = 53, .payload = 8 };
	struct frame f;
	int ok;

	if (no_live) {
		ktap_result_skip(no_live, "another data plane's failed redirect is counted there, not here");
		return;
	}
	other = ftvm_steer__open();
	ok = other && !ftvm_dp_obj_private(other->obj) &&
	     !ftvm_steer__load(other) && !ftvm_steer__attach(other) &&
	     !ftvm_dp_open_obj(other->obj, &odp) &&
	     !ftvm_dp_vm_set(odp, 1, vm_ifindex[3], vm_mac[3]) &&
	     !ftvm_dp_placement_set(odp, 1, 1, 0) &&
	     !ftvm_dp_service_parse(VIP4 ":53/udp", &k) &&
	     !ftvm_dp_service_add(odp, &k, NULL) &&
	     !ftvm_dp_service_set_backends(odp, &k, one, 1) &&
	     !frame_build(&s, &f) && !sh("ip link set ftvmt3 down");
	if (ok) {
		uint64_t g[__FTVM_DP_STAT_MAX];

		redirect_errs(e0);
		ftvm_dp_vm_stats(odp, 1, &oc0);
		ok = !ftvm_dp_global_stats(odp, g);
		o0 = g[FTVM_DP_REDIRECT_ERR];
		ok = ok && !run_live(bpf_program__fd(other->progs.ftvm_steer),
				     f.data, f.len);
		redirect_errs(e1);
		ftvm_dp_vm_stats(odp, 1, &oc1);
		ok = ok && !ftvm_dp_global_stats(odp, g);
		o1 = g[FTVM_DP_REDIRECT_ERR];
	}
	ok = !sh("ip link set ftvmt3 up") && ok;
	if (ok && (memcmp(e0, e1, sizeof(e0)) || o1 != o0 + 1 ||
		   oc1.redirect_err != oc0.redirect_err + 1)) {
		ktap_diag("here +%llu, there +%llu (its VM +%llu); want 0, 1, 1",
			  (unsigned long long)(e1[0] - e0[0]),
			  (unsigned long long)(o1 - o0),
			  (unsigned long long)(oc1.redirect_err - oc0.redirect_err));
		ok = 0;
	}
	if (!ok && !odp)
		ktap_diag("other data plane: %s", ftvm_dp_errmsg());
	ktap_result(ok, "another data plane's failed redirect is counted there, not here");
	ftvm_dp_close(odp);
	ftvm_steer__destroy(other);
}
#define REDIRECT_TESTS 5

/* ------------------------------------------------------------------ */
/* ftvm_fence.                                                         */

static void reply_spec(struct frame_spec *s, uint16_t client_port)
{
	memset(s, 0, sizeof(*s));
	s->family = 4;
	s->proto = IPPROTO_UDP;
	s->saddr = VIP4;
	s->daddr = CLI4;
	s->sport = 53;
	s->dport = client_port;
	s->payload = 16;
}

static int fence_case(const char *desc, const struct frame_spec *s,
		      int ifindex, int want)
{
	struct frame f;
	int verdict = -1, ok;

	ok = !frame_build(s, &f) && !run_tc(f.data, f.len, ifindex, &verdict);
	if (ok && verdict != want) {
		ktap_diag("%s: verdict %d, want %d", desc, verdict, want);
		ok = 0;
	}
	ktap_result(ok, "fence: %s", desc);
	return ok;
}

static void test_fence(void)
{
	struct frame_spec s, q;
	uint32_t placement, owner, other;
	struct ftvm_counters c0, c1;
	struct frame f;
	uint8_t out[FRAME_MAX];
	size_t outlen;
	int v;

	/* A session from client port 50000, created by a client packet. */
	q = (struct frame_spec){ 4, IPPROTO_UDP, .saddr = CLI4, .daddr = VIP4,
				 .sport = 50000, .dport = 53 };
	frame_build(&q, &f);
	run_xdp(f.data, f.len, out, &outlen, &v);
	predict(&q, &placement, &owner);
	other = owner % NVMS + 1;
	reply_spec(&s, 50000);

	c0 = vstat(owner);
	fence_case("the primary's reply passes", &s, vm_ifindex[owner],
		   TC_ACT_OK);
	c1 = vstat(owner);
	ktap_result(c1.fence_pass == c0.fence_pass + 1,
		    "fence: the pass is counted on the VM");
	c0 = vstat(other);
	fence_case("another VM's reply for the session is dropped", &s,
		   vm_ifindex[other], TC_ACT_SHOT);
	c1 = vstat(other);
	ktap_result(c1.fence_drop == c0.fence_drop + 1,
		    "fence: the drop is counted on the VM");

	/* Fail the owner over: its reply must now be dropped. */
	ftvm_dp_placement_set(dp, placement, other, 0);
	fence_case("the old primary's reply after failover is dropped", &s,
		   vm_ifindex[owner], TC_ACT_SHOT);
	fence_case("the new primary's reply after failover passes", &s,
		   vm_ifindex[other], TC_ACT_OK);
	ftvm_dp_placement_set(dp, placement, owner, other);

	reply_spec(&s, 50001);
	fence_case("a reply for an unknown session passes", &s,
		   vm_ifindex[owner], TC_ACT_OK);

	ftvm_dp_vm_set_fenced(dp, owner, true);
	reply_spec(&s, 50000);
	fence_case("a fenced VM's reply for its own session is dropped", &s,
		   vm_ifindex[owner], TC_ACT_SHOT);
	reply_spec(&s, 50001);
	fence_case("a fenced VM's reply for an unknown session is dropped", &s,
		   vm_ifindex[owner], TC_ACT_SHOT);
	reply_spec(&s, 50000);
	s.frag = FRAG_LATER;
	fence_case("a fenced VM's IP fragment is dropped", &s,
		   vm_ifindex[owner], TC_ACT_SHOT);
	reply_spec(&s, 50000);
	s.sport = 40000;
	s.dport = 53;
	s.daddr = "198.18.9.9";
	fence_case("a fenced VM's own traffic passes", &s, vm_ifindex[owner],
		   TC_ACT_OK);
	s = (struct frame_spec){ 4, 0, .l2_proto = 0x0806 };
	fence_case("a fenced VM's ARP passes", &s, vm_ifindex[owner],
		   TC_ACT_OK);
	reply_spec(&s, 50000);
	fence_case("a device that is no VM's is not fenced", &s, 1, TC_ACT_OK);
	ftvm_dp_vm_set_fenced(dp, owner, false);

	/* IPv6, through the same path. */
	q = (struct frame_spec){ 6, IPPROTO_TCP, .saddr = CLI6, .daddr = VIP6,
				 .sport = 50002, .dport = 80 };
	frame_build(&q, &f);
	run_xdp(f.data, f.len, out, &outlen, &v);
	predict(&q, &placement, &owner);
	other = owner % NVMS + 1;
	s = (struct frame_spec){ 6, IPPROTO_TCP, .saddr = VIP6, .daddr = CLI6,
				 .sport = 80, .dport = 50002 };
	fence_case("ipv6: the primary's reply passes", &s, vm_ifindex[owner],
		   TC_ACT_OK);
	fence_case("ipv6: another VM's reply is dropped", &s,
		   vm_ifindex[other], TC_ACT_SHOT);
}
#define FENCE_TESTS 15

/* ------------------------------------------------------------------ */

static int setup(void)
{
	static const char *const services[] = {
		VIP4 ":80/tcp", VIP4 ":53/udp", "[" VIP6 "]:80/tcp",
		"[" VIP6 "]:53/udp", VIP4_EMPTY ":443/tcp", VIP4_DEAD ":80/tcp",
	};
	static const struct ftvm_dp_backend all[] = { { 1, 1 }, { 2, 1 }, { 3, 1 } };
	static const struct ftvm_dp_backend dead[] = { { 9, 1 } };
	struct bpf_map *m;
	char cmd[512];
	int err;

	/* Our own netns: VM devices that vanish with us. */
	if (unshare(CLONE_NEWNET)) {
		ktap_diag("unshare: %s", strerror(errno));
		return -1;
	}
	/* Nothing but the test's frames on the VMs' devices: no IPv6 chatter. */
	if (system("sysctl -qw net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.all.disable_ipv6=1"))
		return -1;
	/*
	 * VM N: ftvmtN (host side) and ftvmtNp (the VM's end, its MAC,
	 * GRO on: a veth takes redirected frames only if its peer has
	 * NAPI).  The NIC, ftvmnic, runs ftvm_steer: live frames enter
	 * there.
	 */
	for (int i = 1; i <= NVMS; i++) {
		char name[IF_NAMESIZE];

		snprintf(name, sizeof(name), "ftvmt%d", i);
		snprintf(cmd, sizeof(cmd),
			 "ip link add name %s type veth peer name %sp address 02:00:00:00:01:%02x && "
			 "ip link set %s up && ip link set %sp up && "
			 "ethtool -K %sp gro on >/dev/null", name, name, i,
			 name, name, name);
		if (system(cmd))
			return -1;
		vm_ifindex[i] = (int)if_nametoindex(name);
		memcpy(vm_mac[i], (uint8_t[6]){ 0x02, 0, 0, 0, 1, (uint8_t)i }, 6);
	}
	if (system("ip link add name ftvmnic type veth peer name ftvmnicp && "
		   "ip link set ftvmnic up && ip link set ftvmnicp up"))
		return -1;
	nic_ifindex = (int)if_nametoindex("ftvmnic");

	steer = ftvm_steer__open();
	if (!steer)
		return -1;
	if (ftvm_dp_obj_private(steer->obj))
		return -1;
	err = ftvm_steer__load(steer);
	if (err) {
		ktap_diag("cannot load ftvm_steer: %s", strerror(-err));
		return -1;
	}
	fence = ftvm_fence__open();
	if (!fence)
		return -1;
	bpf_object__for_each_map(m, fence->obj) {
		bpf_map__set_pin_path(m, NULL);
		if (!bpf_map__is_internal(m) &&
		    bpf_map__reuse_fd(m, bpf_object__find_map_fd_by_name(
				steer->obj, bpf_map__name(m))))
			return -1;
	}
	err = ftvm_fence__load(fence);
	if (err) {
		ktap_diag("cannot load ftvm_fence: %s", strerror(-err));
		return -1;
	}
	if (ftvm_dp_open_obj(steer->obj, &dp))
		goto err;
	/* The redirect-error tracers, and the program on the NIC. */
	err = ftvm_steer__attach(steer);
	if (!err)
		err = bpf_xdp_attach(nic_ifindex,
				     bpf_program__fd(steer->progs.ftvm_steer),
				     XDP_FLAGS_DRV_MODE, NULL);
	if (err) {
		ktap_diag("cannot attach ftvm_steer: %s", strerror(-err));
		return -1;
	}

	for (int i = 1; i <= NVMS; i++)
		if (ftvm_dp_vm_set(dp, (uint32_t)i, vm_ifindex[i], vm_mac[i]))
			goto err;
	if (ftvm_dp_placement_set(dp, 1, 1, 2) ||
	    ftvm_dp_placement_set(dp, 2, 2, 3) ||
	    ftvm_dp_placement_set(dp, 3, 3, 1) ||
	    ftvm_dp_placement_set(dp, 9, 7, 0))
		goto err;
	for (size_t i = 0; i < ARRAY_SIZE(services); i++) {
		struct ftvm_service_key k;

		if (ftvm_dp_service_parse(services[i], &k) ||
		    ftvm_dp_service_add(dp, &k, NULL))
			goto err;
		if (i < 4 && ftvm_dp_service_set_backends(dp, &k, all, 3))
			goto err;
		if (i == 5 && ftvm_dp_service_set_backends(dp, &k, dead, 1))
			goto err;
	}
	return 0;
err:
	ktap_diag("setup: %s", ftvm_dp_errmsg());
	return -1;
}

int main(void)
{
	libbpf_set_print(NULL);
	if (geteuid())
		ktap_skip_all("needs root (BPF_PROG_TEST_RUN, netns)");
	if (setup()) {
		ktap_print_header(1);
		ktap_result(0, "setup");
		return ktap_finish();
	}
	ktap_print_header(MATRIX_TESTS + ARRAY_SIZE(fixtures) + 4 + 3 + 1 +
			  3 + 1 + REDIRECT_TESTS + FENCE_TESTS + FAILED_TESTS);
	probe_live();
	if (no_live)
		ktap_diag("%s: no frame is delivered to a VM's device; the deliveries are not checked, the failed redirects skipped",
			  no_live);
	test_matrix();
	test_fixtures();
	test_service_counters();
	test_failed_flag();
	test_devmap_copies();
	test_garbage();
	test_sessions();
	test_seen();
	test_redirect_errors();
	test_redirect_err_other();
	test_fence();

	ftvm_dp_close(dp);
	ftvm_fence__destroy(fence);
	ftvm_steer__destroy(steer);
	return ktap_finish();
}
