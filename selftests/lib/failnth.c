// SPDX-License-Identifier: GPL-2.0
/*
 * failnth.so: fail the Nth kernel allocation made while ftvm.ko handles
 * a generic netlink request of the program it is preloaded into.
 *
 * One request:
 *
 *   FTVM_FAIL_NTH=N [FTVM_FAIL_NTH_REQ=K] FTVM_FAIL_NTH_OUT=FILE \
 *	LD_PRELOAD=failnth.so CMD...
 *
 * The Kth (default: first) generic netlink request sent that is not the
 * controller's (family lookups are not counted) arms the sending
 * thread's /proc/thread-self/fail-nth with N just before it is sent;
 * the fault injection of a kernel built with FAULT_INJECTION (FAILSLAB,
 * FAIL_PAGE_ALLOC) then fails the Nth allocation this thread makes in
 * the kernel from there on.  The answer's end (an NLMSG_ERROR, which is
 * also the ack, or NLMSG_DONE, read with any recv call) disarms it, so
 * a dump's later batches are in and the program's own work after the
 * request is out.  FILE then gets one line (at exit, if the program
 * never saw the answer's end):
 *
 *   hit       the Nth allocation came, and failed
 *   missed    the request was handled in fewer than N allocations
 *   unarmed   the program sent no such request
 *
 * selftests/faults/faults.sh runs each request with N = 1, 2, ... until
 * "missed".
 *
 * A storm, for a long-running program (ftd: selftests/faults/storm.sh):
 *
 *   FTVM_FAIL_STORM=K [FTVM_FAIL_STORM_NTH=M] FTVM_FAIL_NTH_OUT=FILE ...
 *
 * Every Kth such request, from any thread, is armed (each thread arms
 * its own fail-nth, one request at a time), N going round 1, 2, ... M
 * (default 32) from one armed request to the next, so that the first
 * allocations of every kind of request fail again and again and the
 * later ones of the larger requests now and then.  FILE gets, at exit,
 * "armed A hit H missed M".
 *
 * Nothing here allocates or makes a system call between arming and
 * disarming but the program's own send and recv calls.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* The thread's own: its fail-nth, and the request it armed it for. */
static __thread int ctl_fd = -1;	/* /proc/thread-self/fail-nth */
static __thread int armed_sock = -1;	/* the socket of the armed request */
static __thread bool armed;

static long storm;		/* FTVM_FAIL_STORM: every storm-th request */
static long storm_nth = 32;	/* FTVM_FAIL_STORM_NTH */
static char nth[16];		/* FTVM_FAIL_NTH, one request */
static size_t nth_len;
static long req_left = 1;	/* requests to go until the armed one */
static long requests, n_armed, n_hit, n_missed;	/* atomic */

static ssize_t (*real_send)(int, const void *, size_t, int);
static ssize_t (*real_sendto)(int, const void *, size_t, int,
			      const struct sockaddr *, socklen_t);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static ssize_t (*real_recv)(int, void *, size_t, int);
static ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *,
				socklen_t *);
static ssize_t (*real_recvmsg)(int, struct msghdr *, int);

static long count_env(const char *name, long dflt)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (!v)
		return dflt;
	n = strtol(v, &end, 10);
	if (!*v || *end || n <= 0 || n > 1000000) {
		fprintf(stderr, "failnth: %s must be a count >= 1\n", name);
		_exit(125);
	}
	return n;
}

static int open_ctl(void)
{
	if (ctl_fd < 0)
		ctl_fd = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	return ctl_fd;
}

__attribute__((constructor)) static void failnth_init(void)
{
	long n;

	real_send = dlsym(RTLD_NEXT, "send");
	real_sendto = dlsym(RTLD_NEXT, "sendto");
	real_sendmsg = dlsym(RTLD_NEXT, "sendmsg");
	real_recv = dlsym(RTLD_NEXT, "recv");
	real_recvfrom = dlsym(RTLD_NEXT, "recvfrom");
	real_recvmsg = dlsym(RTLD_NEXT, "recvmsg");
	storm = count_env("FTVM_FAIL_STORM", 0);
	storm_nth = count_env("FTVM_FAIL_STORM_NTH", storm_nth);
	n = count_env("FTVM_FAIL_NTH", 0);
	if (!storm == !n) {
		fprintf(stderr, "failnth: set FTVM_FAIL_NTH (one request) or FTVM_FAIL_STORM (a storm)\n");
		_exit(125);
	}
	nth_len = snprintf(nth, sizeof(nth), "%ld", n);
	req_left = count_env("FTVM_FAIL_NTH_REQ", 1);
	if (open_ctl() < 0) {
		perror("failnth: /proc/thread-self/fail-nth");
		_exit(125);
	}
}

static void report(const char *what)
{
	const char *out = getenv("FTVM_FAIL_NTH_OUT");
	FILE *f = out ? fopen(out, "w") : stderr;

	if (!f)
		return;
	fprintf(f, "%s\n", what);
	if (f != stderr)
		fclose(f);
}

/* Disarm; what is left of the count says whether the fault came. */
static void disarm(void)
{
	char buf[16] = "";
	bool hit = false;

	if (!armed)
		return;
	if (pread(ctl_fd, buf, sizeof(buf) - 1, 0) > 0)
		hit = atoi(buf) == 0;
	if (pwrite(ctl_fd, "0", 1, 0) < 0)
		_exit(125);
	armed = false;
	__atomic_add_fetch(hit ? &n_hit : &n_missed, 1, __ATOMIC_RELAXED);
	if (!storm)
		report(hit ? "hit" : "missed");
}

__attribute__((destructor)) static void failnth_fini(void)
{
	char line[96];

	disarm();
	if (storm) {
		snprintf(line, sizeof(line), "armed %ld hit %ld missed %ld",
			 __atomic_load_n(&n_armed, __ATOMIC_RELAXED),
			 __atomic_load_n(&n_hit, __ATOMIC_RELAXED),
			 __atomic_load_n(&n_missed, __ATOMIC_RELAXED));
		report(line);
	} else if (!__atomic_load_n(&n_armed, __ATOMIC_RELAXED)) {
		report("unarmed");
	}
}

/*
 * The generic netlink request (not the controller's) to arm?  Its
 * fail-nth count in *@n.
 */
static bool ftvm_request(int fd, const void *buf, size_t len, char *n,
			 size_t *n_len)
{
	const struct nlmsghdr *nlh = buf;
	struct sockaddr_nl sa;
	socklen_t salen = sizeof(sa);
	int proto;
	socklen_t plen = sizeof(proto);
	long k;

	if (armed || len < NLMSG_HDRLEN)
		return false;
	if (getsockname(fd, (struct sockaddr *)&sa, &salen) ||
	    sa.nl_family != AF_NETLINK ||
	    getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &plen) ||
	    proto != NETLINK_GENERIC)
		return false;
	if (nlh->nlmsg_type <= GENL_ID_CTRL || !(nlh->nlmsg_flags & NLM_F_REQUEST))
		return false;
	if (!storm) {
		if (__atomic_sub_fetch(&req_left, 1, __ATOMIC_RELAXED))
			return false;
		if (open_ctl() < 0) {
			perror("failnth: /proc/thread-self/fail-nth");
			_exit(125);
		}
		memcpy(n, nth, nth_len);
		*n_len = nth_len;
		return true;
	}
	if (__atomic_add_fetch(&requests, 1, __ATOMIC_RELAXED) % storm)
		return false;
	if (open_ctl() < 0)
		return false;		/* not armed, counted as nothing */
	k = __atomic_fetch_add(&n_armed, 1, __ATOMIC_RELAXED);
	*n_len = snprintf(n, 16, "%ld", k % storm_nth + 1);
	return true;
}

static void arm(int fd, const char *n, size_t n_len)
{
	if (pwrite(ctl_fd, n, n_len, 0) != (ssize_t)n_len) {
		perror("failnth: arming");
		_exit(125);
	}
	if (!storm)
		__atomic_add_fetch(&n_armed, 1, __ATOMIC_RELAXED);
	armed_sock = fd;
	armed = true;
}

/*
 * After a recv on the armed socket: disarm at the answer's end, or at
 * an error but ENOBUFS (a message was lost; what is queued is still to
 * be read) and EINTR.
 */
static void seen(int fd, const void *buf, ssize_t n)
{
	const struct nlmsghdr *nlh;
	size_t left;

	if (!armed || fd != armed_sock)
		return;
	if (n < 0 && errno != ENOBUFS && errno != EINTR)
		disarm();
	if (n <= 0)
		return;
	left = n;
	for (nlh = buf; NLMSG_OK(nlh, left); nlh = NLMSG_NEXT(nlh, left))
		if (nlh->nlmsg_type == NLMSG_ERROR || nlh->nlmsg_type == NLMSG_DONE) {
			disarm();
			return;
		}
}

/* After a send: if the armed request never left, there is no answer. */
static ssize_t sent(int fd, ssize_t n)
{
	int e = errno;

	if (n < 0 && armed && fd == armed_sock)
		disarm();
	errno = e;
	return n;
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	char n[16];
	size_t n_len;

	if (ftvm_request(fd, buf, len, n, &n_len))
		arm(fd, n, n_len);
	return sent(fd, real_send(fd, buf, len, flags));
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags,
	       const struct sockaddr *to, socklen_t tolen)
{
	char n[16];
	size_t n_len;

	if (ftvm_request(fd, buf, len, n, &n_len))
		arm(fd, n, n_len);
	return sent(fd, real_sendto(fd, buf, len, flags, to, tolen));
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	char n[16];
	size_t n_len;

	if (msg->msg_iovlen &&
	    ftvm_request(fd, msg->msg_iov[0].iov_base, msg->msg_iov[0].iov_len,
			 n, &n_len))
		arm(fd, n, n_len);
	return sent(fd, real_sendmsg(fd, msg, flags));
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	ssize_t n = real_recv(fd, buf, len, flags);
	int e = errno;

	if (!(flags & MSG_PEEK))
		seen(fd, buf, n);
	errno = e;
	return n;
}

ssize_t recvfrom(int fd, void *buf, size_t len, int flags,
		 struct sockaddr *from, socklen_t *fromlen)
{
	ssize_t n = real_recvfrom(fd, buf, len, flags, from, fromlen);
	int e = errno;

	if (!(flags & MSG_PEEK))
		seen(fd, buf, n);
	errno = e;
	return n;
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t n = real_recvmsg(fd, msg, flags);
	int e = errno;

	if (!(flags & MSG_PEEK) && msg->msg_iovlen)
		seen(fd, msg->msg_iov[0].iov_base,
		     n > 0 && (size_t)n > msg->msg_iov[0].iov_len ?
		     (ssize_t)msg->msg_iov[0].iov_len : n);
	errno = e;
	return n;
}
