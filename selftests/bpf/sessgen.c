// SPDX-License-Identifier: GPL-2.0
/*
 * sessgen: many TCP or UDP sessions at once, for the end-to-end tests.
 *
 *   sessgen serve NAME PORT ADDR
 *	(in a VM) answer every UDP datagram and every TCP read to ADDR:PORT
 *	with NAME
 *   sessgen client ADDR PORT {tcp|udp} N
 *	(the client) open N sessions to ADDR:PORT, then obey stdin:
 *	  round TAG    send TAG on each session; print "SPORT REPLY" per
 *	               session ("-": no answer, "reset": TCP error), "end"
 *	  burst N TAG  send TAG N times on each session, wait for nothing;
 *	               "end"
 *	  listen MS    print "SPORT DATA" for whatever arrives in MS ms, "end"
 *	  quit
 *   sessgen spray SRC PORT DST DATA SPORT...
 *	(a VM) send DATA from SRC:PORT to DST:SPORT for each SPORT (UDP)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SESS 4096
/*
 * A server's receive buffer holds a round even when its VM is the primary
 * of every session.  XDP-redirected frames are charged a page or more of
 * truesize each (Linux 6.1's veth: the default 208 KiB holds 49 of them),
 * so the default buffer would drop part of any burst above that.
 */
#define SERVE_RCVBUF (MAX_SESS * 8192)

static void die(const char *what)
{
	fprintf(stderr, "sessgen: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int sockaddr_of(const char *addr, int port, struct sockaddr_storage *ss,
		       socklen_t *len)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof(*a4);
		return AF_INET;
	}
	if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
		return AF_INET6;
	}
	fprintf(stderr, "sessgen: bad address %s\n", addr);
	exit(1);
}

static int local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		die("getsockname");
	return ntohs(ss.ss_family == AF_INET ?
		     ((struct sockaddr_in *)&ss)->sin_port :
		     ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/*
 * A veth whose peer runs XDP queues what it is sent on a ring of 256
 * frames that its NAPI drains.  When softirqs are deferred to ksoftirqd
 * (as a slow guest often does) a sender in a tight loop overruns the
 * ring and the frames are dropped before any XDP program sees them.
 * Datagrams sent back to back therefore pause every PACE_BURST to let
 * the ring drain: the tests judge steering and queueing, not whether a
 * loop outruns the softirq.
 */
#define PACE_BURST 32

static void pace(int *sent)
{
	if (++*sent % PACE_BURST == 0)
		usleep(1000);
}

static __attribute__((noreturn)) void serve(const char *name, int port,
					    const char *addr)
{
	struct epoll_event ev, evs[64];
	struct sockaddr_storage a;
	int one = 1, u, l, ep, family, backlog = 0;
	socklen_t alen;
	char buf[2048];

	/* Bound to the service address, UDP answers come from it. */
	family = sockaddr_of(addr, port, &a, &alen);
	u = socket(family, SOCK_DGRAM, 0);
	l = socket(family, SOCK_STREAM, 0);
	ep = epoll_create1(0);
	if (u < 0 || l < 0 || ep < 0)
		die("socket");
	setsockopt(u, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Past net.core.rmem_max as root; otherwise as much as allowed. */
	if (setsockopt(u, SOL_SOCKET, SO_RCVBUFFORCE, &(int){ SERVE_RCVBUF },
		       sizeof(int)))
		setsockopt(u, SOL_SOCKET, SO_RCVBUF, &(int){ SERVE_RCVBUF },
			   sizeof(int));
	if (bind(u, (struct sockaddr *)&a, alen) ||
	    bind(l, (struct sockaddr *)&a, alen) || listen(l, 1024))
		die("bind");
	ev.events = EPOLLIN;
	ev.data.fd = u;
	epoll_ctl(ep, EPOLL_CTL_ADD, u, &ev);
	ev.data.fd = l;
	epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
	printf("ready\n");
	fflush(stdout);

	for (;;) {
		/* Nothing ready now: the backlog is drained, block. */
		int n = epoll_wait(ep, evs, 64, 0);

		if (!n) {
			backlog = 0;
			n = epoll_wait(ep, evs, 64, -1);
		}

		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == u) {
				struct sockaddr_storage from;
				socklen_t flen = sizeof(from);

				if (recvfrom(u, buf, sizeof(buf), 0,
					     (struct sockaddr *)&from, &flen) < 0)
					continue;
				sendto(u, name, strlen(name), 0,
				       (struct sockaddr *)&from, flen);
				pace(&backlog);
			} else if (fd == l) {
				int c = accept(l, NULL, NULL);

				if (c < 0)
					continue;
				ev.events = EPOLLIN;
				ev.data.fd = c;
				epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
			} else {
				ssize_t r = read(fd, buf, sizeof(buf));

				if (r <= 0)
					close(fd);
				else if (write(fd, name, strlen(name)) < 0)
					close(fd);
			}
		}
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int fds[MAX_SESS], ports[MAX_SESS], nsess;
static char replies[MAX_SESS][64];

/* Read whatever arrives for @ms milliseconds (or until all answered). */
static void collect(int ms, bool until_all, bool print_each)
{
	static struct pollfd pfd[MAX_SESS];
	uint64_t end = now_ms() + (uint64_t)ms;
	int pending = 0;

	for (int i = 0; i < nsess; i++) {
		pfd[i].fd = fds[i] >= 0 && !(until_all && replies[i][0] != '-') ?
			    fds[i] : -1;
		pfd[i].events = POLLIN;
		pending += pfd[i].fd >= 0;
	}
	while (pending && now_ms() < end) {
		int n = poll(pfd, (nfds_t)nsess, (int)(end - now_ms()));

		if (n <= 0)
			continue;
		for (int i = 0; i < nsess; i++) {
			char buf[64];
			ssize_t r;

			if (pfd[i].fd < 0 || !pfd[i].revents)
				continue;
			r = recv(fds[i], buf, sizeof(buf) - 1, MSG_DONTWAIT);
			if (r < 0 && (errno == EAGAIN || errno == ECONNREFUSED))
				continue;
			if (r <= 0) {
				snprintf(replies[i], sizeof(replies[i]), "reset");
				close(fds[i]);
				fds[i] = pfd[i].fd = -1;
				pending--;
				continue;
			}
			buf[r] = '\0';
			snprintf(replies[i], sizeof(replies[i]), "%s", buf);
			if (print_each)
				printf("%d %s\n", ports[i], buf);
			if (until_all) {
				pfd[i].fd = -1;
				pending--;
			}
		}
	}
}

static int client(const char *addr, int port, int tcp, int n)
{
	struct sockaddr_storage ss;
	char line[256], tag[64];
	socklen_t len;
	int family = sockaddr_of(addr, port, &ss, &len);

	if (n > MAX_SESS)
		n = MAX_SESS;
	for (nsess = 0; nsess < n; nsess++) {
		int fd = socket(family, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);

		if (fd < 0)
			die("socket");
		if (tcp)
			fcntl(fd, F_SETFL, O_NONBLOCK);
		if (connect(fd, (struct sockaddr *)&ss, len) &&
		    errno != EINPROGRESS)
			die("connect");
		fds[nsess] = fd;
		ports[nsess] = local_port(fd);
	}
	if (tcp) {
		/* Wait for every handshake (or its failure). */
		uint64_t end = now_ms() + 5000;
		int pending = nsess;

		while (pending && now_ms() < end) {
			struct pollfd p[MAX_SESS];

			for (int i = 0; i < nsess; i++)
				p[i] = (struct pollfd){ .fd = fds[i], .events = POLLOUT };
			poll(p, (nfds_t)nsess, 100);
			pending = 0;
			for (int i = 0; i < nsess; i++)
				pending += !(p[i].revents & (POLLOUT | POLLERR | POLLHUP));
		}
	}
	printf("ready %d\n", nsess);
	fflush(stdout);

	while (fgets(line, sizeof(line), stdin)) {
		int ms;

		if (sscanf(line, "round %63s", tag) == 1) {
			int sent = 0;

			for (int i = 0; i < nsess; i++) {
				if (fds[i] < 0)
					continue;
				snprintf(replies[i], sizeof(replies[i]), "-");
				if (send(fds[i], tag, strlen(tag), MSG_NOSIGNAL) < 0) {
					snprintf(replies[i], sizeof(replies[i]), "reset");
					close(fds[i]);
					fds[i] = -1;
				}
				pace(&sent);
			}
			collect(2000, true, false);
			for (int i = 0; i < nsess; i++)
				printf("%d %s\n", ports[i], replies[i]);
			printf("end\n");
		} else if (sscanf(line, "burst %d %63s", &ms, tag) == 2) {
			int sent = 0;

			for (int k = 0; k < ms; k++)
				for (int i = 0; i < nsess; i++) {
					if (fds[i] < 0)
						continue;
					send(fds[i], tag, strlen(tag),
					     MSG_NOSIGNAL);
					pace(&sent);
				}
			printf("end\n");
		} else if (sscanf(line, "listen %d", &ms) == 1) {
			for (int i = 0; i < nsess; i++)
				snprintf(replies[i], sizeof(replies[i]), "-");
			collect(ms, false, true);
			printf("end\n");
		} else if (!strncmp(line, "quit", 4)) {
			break;
		}
		fflush(stdout);
	}
	return 0;
}

static int spray(int argc, char **argv)
{
	struct sockaddr_storage src, dst;
	socklen_t slen, dlen;
	int one = 1, fd, family;

	family = sockaddr_of(argv[0], atoi(argv[1]), &src, &slen);
	fd = socket(family, SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&src, slen))
		die("bind");
	for (int i = 4; i < argc; i++) {
		sockaddr_of(argv[2], atoi(argv[i]), &dst, &dlen);
		if (sendto(fd, argv[3], strlen(argv[3]), 0,
			   (struct sockaddr *)&dst, dlen) < 0)
			die("sendto");
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "serve"))
		serve(argv[2], atoi(argv[3]), argv[4]);
	if (argc == 6 && !strcmp(argv[1], "client"))
		return client(argv[2], atoi(argv[3]), !strcmp(argv[4], "tcp"),
			      atoi(argv[5]));
	if (argc >= 7 && !strcmp(argv[1], "spray"))
		return spray(argc - 2, argv + 2);
	fprintf(stderr, "usage: sessgen serve NAME PORT ADDR | client ADDR PORT tcp|udp N | spray SRC PORT DST DATA SPORT...\n");
	return 2;
}
