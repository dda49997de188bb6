// SPDX-License-Identifier: GPL-2.0
/*
 * failnth.so: fail the Nth kernel allocation made while ftvm.ko handles
 * one generic netlink request of the program it is preloaded into.
 *
 *   FTVM_FAIL_NTH=N [FTVM_FAIL_NTH_REQ=K] FTVM_FAIL_NTH_OUT=FILE \
 *	LD_PRELOAD=failnth.so CMD...
 *
 * The Kth (default: first) generic netlink request sent that is not the
 * controller's (family lookups are not counted) arms
 * /proc/thread-self/fail-nth with N just before it is sent; the fault injection of a kernel built with
 * FAULT_INJECTION (FAILSLAB, FAIL_PAGE_ALLOC) then fails the Nth
 * allocation this thread makes in the kernel from there on.  The
 * answer's end (an NLMSG_ERROR, which is also the ack, or NLMSG_DONE,
 * read with any recv call) disarms it, so a dump's later batches are
 * in and the program's own work after the request is out.  FILE then
 * gets one line (at exit, if the program never saw the answer's end):
 *
 *   hit       the Nth allocation came, and failed
 *   missed    the request was handled in fewer than N allocations
 *   unarmed   the program sent no such request
 *
 * selftests/faults/faults.sh runs each request with N = 1, 2, ... until
 * "missed".  Only one request of the program is armed.
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

static int ctl_fd = -1;		/* /proc/thread-self/fail-nth */
static int armed_sock = -1;	/* the socket of the armed request */
static enum { UNARMED, ARMED, DONE } phase;
static char nth[16];
static size_t nth_len;
static long req_left = 1;	/* requests to go until the armed one */

static ssize_t (*real_send)(int, const void *, size_t, int);
static ssize_t (*real_sendto)(int, const void *, size_t, int,
			      const struct sockaddr *, socklen_t);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static ssize_t (*real_recv)(int, void *, size_t, int);
static ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *,
				socklen_t *);
static ssize_t (*real_recvmsg)(int, struct msghdr *, int);

__attribute__((constructor)) static void failnth_init(void)
{
	const char *n = getenv("FTVM_FAIL_NTH");

	real_send = dlsym(RTLD_NEXT, "send");
	real_sendto = dlsym(RTLD_NEXT, "sendto");
	real_sendmsg = dlsym(RTLD_NEXT, "sendmsg");
	real_recv = dlsym(RTLD_NEXT, "recv");
	real_recvfrom = dlsym(RTLD_NEXT, "recvfrom");
	real_recvmsg = dlsym(RTLD_NEXT, "recvmsg");
	if (!n || !*n || strspn(n, "0123456789") != strlen(n) ||
	    strlen(n) >= sizeof(nth) || atoi(n) <= 0) {
		fprintf(stderr, "failnth: FTVM_FAIL_NTH must be a count >= 1\n");
		_exit(125);
	}
	nth_len = strlen(n);
	memcpy(nth, n, nth_len);
	n = getenv("FTVM_FAIL_NTH_REQ");
	if (n && (req_left = atol(n)) <= 0) {
		fprintf(stderr, "failnth: FTVM_FAIL_NTH_REQ must be a count >= 1\n");
		_exit(125);
	}
	ctl_fd = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	if (ctl_fd < 0) {
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

	if (phase != ARMED)
		return;
	if (pread(ctl_fd, buf, sizeof(buf) - 1, 0) > 0)
		hit = atoi(buf) == 0;
	if (pwrite(ctl_fd, "0", 1, 0) < 0)
		_exit(125);
	phase = DONE;
	report(hit ? "hit" : "missed");
}

__attribute__((destructor)) static void failnth_fini(void)
{
	if (phase == UNARMED)
		report("unarmed");
	disarm();
}

/* The generic netlink request (not the controller's) to arm? */
static bool ftvm_request(int fd, const void *buf, size_t len)
{
	const struct nlmsghdr *nlh = buf;
	struct sockaddr_nl sa;
	socklen_t salen = sizeof(sa);
	int proto;
	socklen_t plen = sizeof(proto);

	if (phase != UNARMED || len < NLMSG_HDRLEN)
		return false;
	if (getsockname(fd, (struct sockaddr *)&sa, &salen) ||
	    sa.nl_family != AF_NETLINK ||
	    getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &plen) ||
	    proto != NETLINK_GENERIC)
		return false;
	if (nlh->nlmsg_type <= GENL_ID_CTRL || !(nlh->nlmsg_flags & NLM_F_REQUEST))
		return false;
	return --req_left == 0;
}

static void arm(int fd)
{
	if (pwrite(ctl_fd, nth, nth_len, 0) != (ssize_t)nth_len) {
		perror("failnth: arming");
		_exit(125);
	}
	armed_sock = fd;
	phase = ARMED;
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

	if (phase != ARMED || fd != armed_sock)
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

	if (n < 0 && phase == ARMED && fd == armed_sock)
		disarm();
	errno = e;
	return n;
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	if (ftvm_request(fd, buf, len))
		arm(fd);
	return sent(fd, real_send(fd, buf, len, flags));
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags,
	       const struct sockaddr *to, socklen_t tolen)
{
	if (ftvm_request(fd, buf, len))
		arm(fd);
	return sent(fd, real_sendto(fd, buf, len, flags, to, tolen));
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (msg->msg_iovlen &&
	    ftvm_request(fd, msg->msg_iov[0].iov_base, msg->msg_iov[0].iov_len))
		arm(fd);
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
