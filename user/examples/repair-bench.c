// SPDX-License-Identifier: GPL-2.0
/*
 * repair-bench: ftvm.ko's snapshot and restore against the same work
 * done from userspace with TCP_REPAIR, the way CRIU does it.
 *
 *   repair-bench N NS_A NS_B NS_B2 VM_A VM_B
 *
 * Run from the namespace that holds the VM registry, with 198.18.1.1 on
 * lo of all three namespaces and 198.18.0.2 on lo of NS_A.  N sessions
 * are opened in NS_A (client 198.18.0.2 -> service 198.18.1.1:7000).
 *
 *   snapshot  ftvm.ko: one FTVM_CMD_SESSION_GET dump of the service.
 *             userspace: per socket, repair on, both queue sequence
 *             numbers, queue lengths, TCP_INFO (options), MSS clamp,
 *             timestamp, window, repair off without a window probe;
 *             the 5-tuples are given to it for free (it had them from
 *             accept()).  Idle sessions: no queue bytes to peek.
 *   restore   ftvm.ko: FTVM_CMD_SESSION_RESTORE in batches of 512
 *             records into NS_B, each connection queued on the service's
 *             listener (the accept()s are not timed); then staged and
 *             activated (activate_per_s), and again activated without
 *             the window probe, as ftd does (activate_quiet_per_s).
 *             userspace: per record, socket, repair on, both sequence
 *             numbers, bind, connect, options, timestamp, window, repair
 *             off, in NS_B2; it keeps the sockets (no hand-over to a
 *             service, which would cost it more).
 * Both run on one CPU, best of three rounds each (under qemu's TCG the
 * first round also pays for translating the kernel code it runs; the
 * rounds after compare like with like).  Restored sockets are closed in
 * repair mode between rounds, which frees them without a trace.
 */

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "../../kmod/uapi/ftvm.h"
#include "../libftvm/nl.h"

#define PORT 7000

/* TCP option kinds, as TCP_REPAIR_OPTIONS takes them (RFC 793, 7323, 2018). */
enum { OPT_MSS = 2, OPT_WINDOW = 3, OPT_SACK_PERM = 4, OPT_TIMESTAMP = 8 };

struct urec {
	struct sockaddr_in l, r;
	uint32_t snd_seq, rcv_seq, mss, ts;
	int outq, inq;
	uint8_t snd_wscale, rcv_wscale, options;
	struct tcp_repair_window win;
};

static struct ftvm_nl nl;

static void die(const char *what)
{
	fprintf(stderr, "repair-bench: %s: %s %s\n", what, strerror(errno), nl.err);
	exit(1);
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void enter(const char *ns)
{
	int fd = open(ns, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || setns(fd, CLONE_NEWNET))
		die(ns);
	close(fd);
}

static int listener(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	inet_pton(AF_INET, "198.18.1.1", &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 65535))
		die("listen");
	return fd;
}

static void put_vm(struct ftvm_msg *m, uint32_t id)
{
	long nest = ftvm_msg_nest(m, FTVM_A_VM);

	ftvm_msg_put(m, FTVM_A_VM_ID, &id, sizeof(id));
	ftvm_msg_nest_end(m, nest);
}

struct stream {
	char *buf;
	size_t len, cap;
	unsigned long records;
};

static int dump_cb(const struct nlattr *attrs, size_t len, void *arg)
{
	struct stream *s = arg;
	const struct nlattr *a;
	long rem;

	ftvm_nla_for_each(a, attrs, len, rem) {
		size_t n = NLA_ALIGN(a->nla_len);

		if (ftvm_nla_type(a) == FTVM_A_SNAP)
			continue;
		if (ftvm_nla_type(a) == FTVM_A_SESSION)
			s->records++;
		if (s->len + n > s->cap) {
			s->cap = (s->cap + n) * 2;
			s->buf = realloc(s->buf, s->cap);
			if (!s->buf)
				return -ENOMEM;
		}
		memcpy(s->buf + s->len, a, n);
		s->len += n;
	}
	return 0;
}

static void kernel_snapshot(uint32_t vm, struct stream *s)
{
	uint16_t port = PORT;
	struct ftvm_msg m;
	long nest;

	s->len = s->records = 0;
	ftvm_msg_init(&m, &nl, FTVM_CMD_SESSION_GET, NLM_F_DUMP);
	put_vm(&m, vm);
	nest = ftvm_msg_nest(&m, FTVM_A_SNAP);
	ftvm_msg_put(&m, FTVM_A_SNAP_PORT, &port, sizeof(port));
	ftvm_msg_nest_end(&m, nest);
	errno = -ftvm_nl_talk(&nl, &m, dump_cb, s);
	ftvm_msg_free(&m);
	if (errno)
		die("snapshot");
}

static void kernel_restore(uint32_t vm, const struct stream *s, uint32_t flags,
			   unsigned long batch)
{
	size_t off = 0;

	while (off < s->len) {
		size_t start = off;
		unsigned long n = 0;
		struct ftvm_msg m;

		ftvm_msg_init(&m, &nl, FTVM_CMD_SESSION_RESTORE, 0);
		put_vm(&m, vm);
		if (flags) {
			long nest = ftvm_msg_nest(&m, FTVM_A_SNAP);

			ftvm_msg_put(&m, FTVM_A_SNAP_FLAGS, &flags, sizeof(flags));
			ftvm_msg_nest_end(&m, nest);
		}
		while (off < s->len) {
			const struct nlattr *a = (const void *)(s->buf + off);

			if (ftvm_nla_type(a) == FTVM_A_SESSION && n++ == batch)
				break;
			off += NLA_ALIGN(a->nla_len);
		}
		ftvm_msg_append(&m, s->buf + start, off - start);
		errno = -ftvm_nl_talk(&nl, &m, NULL, NULL);
		ftvm_msg_free(&m);
		if (errno)
			die("restore");
	}
}

static void kernel_activate(uint32_t vm, uint32_t flags)
{
	struct ftvm_msg m;

	ftvm_msg_init(&m, &nl, FTVM_CMD_SESSION_ACTIVATE, 0);
	put_vm(&m, vm);
	if (flags) {
		long nest = ftvm_msg_nest(&m, FTVM_A_SNAP);

		ftvm_msg_put(&m, FTVM_A_SNAP_FLAGS, &flags, sizeof(flags));
		ftvm_msg_nest_end(&m, nest);
	}
	errno = -ftvm_nl_talk(&nl, &m, NULL, NULL);
	ftvm_msg_free(&m);
	if (errno)
		die("activate");
}

static int sopt(int fd, int opt, int val)
{
	return setsockopt(fd, IPPROTO_TCP, opt, &val, sizeof(val));
}

static uint32_t gopt(int fd, int opt)
{
	uint32_t v = 0;
	socklen_t l = sizeof(v);

	if (getsockopt(fd, IPPROTO_TCP, opt, &v, &l))
		die("getsockopt");
	return v;
}

/* What CRIU's dump does for one established, idle socket. */
static void user_snapshot_one(int fd, struct urec *u)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);

	if (sopt(fd, TCP_REPAIR, TCP_REPAIR_ON))
		die("TCP_REPAIR");
	if (ioctl(fd, SIOCOUTQ, &u->outq) || ioctl(fd, SIOCINQ, &u->inq))
		die("queue lengths");
	sopt(fd, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE);
	u->snd_seq = gopt(fd, TCP_QUEUE_SEQ);
	sopt(fd, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE);
	u->rcv_seq = gopt(fd, TCP_QUEUE_SEQ);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l))
		die("TCP_INFO");
	u->options = ti.tcpi_options;
	u->snd_wscale = ti.tcpi_snd_wscale;
	u->rcv_wscale = ti.tcpi_rcv_wscale;
	u->mss = gopt(fd, TCP_MAXSEG);
	u->ts = gopt(fd, TCP_TIMESTAMP);
	l = sizeof(u->win);
	if (getsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &u->win, &l))
		die("TCP_REPAIR_WINDOW");
	if (u->outq || u->inq) {
		errno = EINVAL;
		die("the benchmark's sessions must be idle");
	}
	sopt(fd, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP);
}

/* What CRIU's restore does for one idle socket. */
static int user_restore_one(const struct urec *u)
{
	struct tcp_repair_opt opts[4];
	int n = 0, fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || sopt(fd, TCP_REPAIR, TCP_REPAIR_ON))
		die("socket");
	sopt(fd, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE);
	sopt(fd, TCP_QUEUE_SEQ, u->snd_seq);
	sopt(fd, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE);
	sopt(fd, TCP_QUEUE_SEQ, u->rcv_seq);
	if (bind(fd, (const struct sockaddr *)&u->l, sizeof(u->l)) ||
	    connect(fd, (const struct sockaddr *)&u->r, sizeof(u->r)))
		die("bind/connect");
	opts[n++] = (struct tcp_repair_opt){ OPT_MSS, u->mss };
	if (u->options & TCPI_OPT_WSCALE)
		opts[n++] = (struct tcp_repair_opt){ OPT_WINDOW,
			u->snd_wscale | (uint32_t)u->rcv_wscale << 16 };
	if (u->options & TCPI_OPT_SACK)
		opts[n++] = (struct tcp_repair_opt){ OPT_SACK_PERM, 0 };
	if (u->options & TCPI_OPT_TIMESTAMPS)
		opts[n++] = (struct tcp_repair_opt){ OPT_TIMESTAMP, 0 };
	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_OPTIONS, opts, n * sizeof(opts[0])))
		die("TCP_REPAIR_OPTIONS");
	if (u->options & TCPI_OPT_TIMESTAMPS)
		sopt(fd, TCP_TIMESTAMP, u->ts);
	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &u->win, sizeof(u->win)))
		die("TCP_REPAIR_WINDOW");
	sopt(fd, TCP_REPAIR, TCP_REPAIR_OFF);
	return fd;
}

/* Close a restored socket without a trace (repair mode sends nothing). */
static void silent_close(int fd)
{
	if (sopt(fd, TCP_REPAIR, TCP_REPAIR_ON))
		die("TCP_REPAIR before close");
	close(fd);
}

/* Take the restored sessions off B's listener, and close them. */
static void accept_all(int lfd, int n)
{
	int i, fd;

	for (i = 0; i < n; i++) {
		fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			die("accept in B");
		silent_close(fd);
	}
}

int main(int argc, char **argv)
{
	struct rlimit rl = { 1 << 20, 1 << 20 };
	double t, ks = 1e9, us = 1e9, kr = 1e9, ur = 1e9, ka = 1e9, kq = 1e9;
	struct stream s = { 0 };
	struct urec *u;
	int *srv, *cli, *out, i, n, r, home, lfd;
	uint32_t vma, vmb;
	cpu_set_t cpus;

	if (argc != 7) {
		fprintf(stderr, "usage: repair-bench N NS_A NS_B NS_B2 VM_A VM_B\n");
		return 2;
	}
	n = atoi(argv[1]);
	vma = atoi(argv[5]);
	vmb = atoi(argv[6]);
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);
	if (setrlimit(RLIMIT_NOFILE, &rl))
		die("RLIMIT_NOFILE");
	srv = calloc(n, sizeof(*srv));
	cli = calloc(n, sizeof(*cli));
	out = calloc(n, sizeof(*out));
	u = calloc(n, sizeof(*u));
	home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ftvm_nl_open(&nl))
		die("ftvm netlink");

	/* N sessions in A. */
	enter(argv[2]);
	lfd = listener();
	for (i = 0; i < n; i++) {
		struct sockaddr_in c = { .sin_family = AF_INET };
		socklen_t l = sizeof(c);

		inet_pton(AF_INET, "198.18.0.2", &c.sin_addr);
		cli[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (cli[i] < 0 || bind(cli[i], (struct sockaddr *)&c, sizeof(c)))
			die("client");
		inet_pton(AF_INET, "198.18.1.1", &c.sin_addr);
		c.sin_port = htons(PORT);
		if (connect(cli[i], (struct sockaddr *)&c, sizeof(c)))
			die("connect");
		srv[i] = accept(lfd, NULL, NULL);
		if (srv[i] < 0)
			die("accept");
		l = sizeof(u[i].l);
		getsockname(srv[i], (struct sockaddr *)&u[i].l, &l);
		l = sizeof(u[i].r);
		getpeername(srv[i], (struct sockaddr *)&u[i].r, &l);
	}
	if (setns(home, CLONE_NEWNET))
		die("setns");
	printf("# %d sessions open\n", n);

	for (r = 0; r < 3; r++) {
		t = now();
		kernel_snapshot(vma, &s);
		t = now() - t;
		if (t < ks)
			ks = t;
		if (s.records != (unsigned long)n) {
			fprintf(stderr, "repair-bench: %lu records, not %d\n", s.records, n);
			return 1;
		}
		t = now();
		for (i = 0; i < n; i++)
			user_snapshot_one(srv[i], &u[i]);
		t = now() - t;
		if (t < us)
			us = t;
	}
	printf("# snapshot: ftvm.ko %.3fs, userspace TCP_REPAIR %.3fs, %zu bytes of records\n",
	       ks, us, s.len);

	/* Restore into B (queued on its listener), staged+activated too. */
	enter(argv[3]);
	lfd = listener();
	if (setns(home, CLONE_NEWNET))
		die("setns");
	for (r = 0; r < 3; r++) {
		t = now();
		kernel_restore(vmb, &s, 0, 512);
		t = now() - t;
		if (t < kr)
			kr = t;
		accept_all(lfd, n);
		kernel_restore(vmb, &s, FTVM_SNAP_F_STAGE, 512);
		t = now();
		kernel_activate(vmb, 0);
		t = now() - t;
		if (t < ka)
			ka = t;
		accept_all(lfd, n);
		kernel_restore(vmb, &s, FTVM_SNAP_F_STAGE, 512);
		t = now();
		kernel_activate(vmb, FTVM_SNAP_F_QUIET);
		t = now() - t;
		if (t < kq)
			kq = t;
		accept_all(lfd, n);
	}

	enter(argv[4]);
	for (r = 0; r < 3; r++) {
		t = now();
		for (i = 0; i < n; i++)
			out[i] = user_restore_one(&u[i]);
		t = now() - t;
		if (t < ur)
			ur = t;
		for (i = 0; i < n; i++)
			silent_close(out[i]);
	}
	printf("# restore: ftvm.ko %.3fs (activation of staged records %.3fs, %.3fs without the window probe), userspace TCP_REPAIR %.3fs\n",
	       kr, ka, kq, ur);

	printf("BENCH snapshot_per_s %.0f\n", n / ks);
	printf("BENCH restore_per_s %.0f\n", n / kr);
	printf("BENCH activate_per_s %.0f\n", n / ka);
	printf("BENCH activate_quiet_per_s %.0f\n", n / kq);
	printf("BENCH snapshot_vs_tcp_repair_ratio %.2f\n", us / ks);
	printf("BENCH restore_vs_tcp_repair_ratio %.2f\n", ur / kr);
	return 0;
}
