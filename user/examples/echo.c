// SPDX-License-Identifier: GPL-2.0
/*
 * echo: an ordinary echo server that knows nothing of ftvm.
 *
 *   echo tcp|udp PORT
 *
 * TCP: epoll, any number of connections, echoes what it reads.  UDP:
 * one unconnected socket, echoes each datagram to its sender.
 * Dual-stack (IPv6 socket, IPv4 mapped).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

static __attribute__((noreturn)) void echo_udp(int fd)
{
	char buf[65536];

	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss, &sl);

		if (n >= 0)
			sendto(fd, buf, n, 0, (struct sockaddr *)&ss, sl);
	}
}

static __attribute__((noreturn)) void echo_tcp(int lfd)
{
	struct epoll_event ev = { .events = EPOLLIN }, evs[64];
	int ep = epoll_create1(0), i, n;
	char buf[65536];

	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		n = epoll_wait(ep, evs, 64, -1);
		for (i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == lfd) {
				while ((fd = accept4(lfd, NULL, NULL, 0)) >= 0) {
					ev.data.fd = fd;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

			if (r == 0 || (r < 0 && errno != EAGAIN)) {
				close(fd);
				continue;
			}
			/* Blocking write: the echo must not be lost. */
			for (ssize_t off = 0; r > 0 && off < r;) {
				ssize_t w = write(fd, buf + off, r - off);

				if (w < 0)
					break;
				off += w;
			}
		}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
	int udp, fd, one = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: echo tcp|udp PORT\n");
		return 2;
	}
	udp = !strcmp(argv[1], "udp");
	sa.sin6_port = htons(atoi(argv[2]));
	fd = socket(AF_INET6, udp ? SOCK_DGRAM : SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    (!udp && listen(fd, 4096))) {
		perror("echo");
		return 1;
	}
	fprintf(stderr, "echo: %s on %s\n", argv[1], argv[2]);
	if (udp)
		echo_udp(fd);
	echo_tcp(fd);
}
