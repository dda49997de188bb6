// SPDX-License-Identifier: GPL-2.0
/*
 * kvstore: a small per-connection stateful service that uses libftvm.
 *
 *   kvstore PORT [defer-accept SECONDS]
 *
 * defer-accept: TCP_DEFER_ACCEPT on the listener (a connection is
 * accept()ed once its client's first data is in, as with nginx's
 * "deferred"; until then it is a handshake under way).
 *
 * Each connection is an accumulator: the client sends lines "ADD n",
 * the service answers "count sum rx tx", where count and sum are over
 * the connection's requests so far, rx is a running FNV-1a checksum of
 * every byte received on it and tx of every byte sent on it before this
 * reply.  That state lives in the service (not in the client) and is
 * attached to the socket with ftvm_checkpoint() after every reply;
 * a connection accept()ed after a failover gets it back with
 * ftvm_restore_blob(), so the client sees its counters go on, and any
 * byte lost or duplicated by the failover shows in rx or tx.
 *
 * Single-threaded, epoll, any number of connections.  Logs "resumed N"
 * on stderr each time it picks up restored state.  A connection whose
 * state cannot be read (the kernel short of memory, again and again) is
 * closed, not served as a new one.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "../libftvm/ftvm.h"

struct kv_state {		/* the blob: what a connection is */
	uint64_t count, sum;
	uint32_t rx, tx;	/* FNV-1a over the bytes each way */
	uint16_t inlen;		/* a partial request read but not answered */
	char in[254];
};

struct conn {
	int fd;
	struct kv_state st;
};

static uint32_t fnv(uint32_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	while (n--)
		h = (h ^ *c++) * 16777619u;
	return h;
}

#define FNV_INIT 2166136261u

static unsigned long resumed;

static void conn_close(int ep, struct conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

/* Read what there is, answer every complete request, checkpoint. */
static int conn_input(struct conn *c)
{
	struct kv_state *st = &c->st;
	char buf[4096], out[8192];
	size_t olen = 0;
	ssize_t n;

	for (;;) {
		size_t i, start = 0;

		n = read(c->fd, buf, sizeof(buf));
		if (n == 0)
			return -1;
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		st->rx = fnv(st->rx, buf, n);
		for (i = 0; i < (size_t)n; i++) {
			if (buf[i] != '\n')
				continue;
			char line[300];
			size_t l = st->inlen + i - start;

			if (l >= sizeof(line))
				return -1;
			memcpy(line, st->in, st->inlen);
			memcpy(line + st->inlen, buf + start, i - start);
			line[l] = 0;
			st->inlen = 0;
			start = i + 1;
			if (strncmp(line, "ADD ", 4))
				return -1;
			st->count++;
			st->sum += strtoull(line + 4, NULL, 10);
			int k = snprintf(out + olen, sizeof(out) - olen,
					 "%" PRIu64 " %" PRIu64 " %08x %08x\n",
					 st->count, st->sum, st->rx, st->tx);
			st->tx = fnv(st->tx, out + olen, k);
			olen += k;
			if (olen > sizeof(out) - 128)
				return -1;
		}
		if (n - start + st->inlen > sizeof(st->in))
			return -1;
		memcpy(st->in + st->inlen, buf + start, n - start);
		st->inlen += n - start;
		if (olen && write(c->fd, out, olen) != (ssize_t)olen)
			return -1;
		olen = 0;
		/* Everything read is accounted for, every reply written:
		 * state and byte streams agree. */
		if (ftvm_checkpoint(c->fd, st, sizeof(*st)))
			fprintf(stderr, "kvstore: checkpoint: %s\n", ftvm_strerror());
	}
}

/*
 * The state a connection comes with: 1 when it was restored with state
 * (into @c->st), 0 when it is new (ENOENT: none attached).  A failed
 * answer (ENOMEM, ENOBUFS: the kernel was short of memory) leaves the
 * state where it is: ask again, a few times.  -1 when the state cannot
 * be read: serving the connection as a new one would lose it silently.
 */
static int conn_resume(struct conn *c)
{
	for (int i = 0;; i++) {
		ssize_t n = ftvm_restore_blob(c->fd, &c->st, sizeof(c->st));

		if (n == sizeof(c->st))
			return 1;
		if (n >= 0 || errno == ENOENT || errno == ENOTCONN)
			return 0;
		if ((errno != ENOMEM && errno != ENOBUFS && errno != EINTR) ||
		    i == 7)
			return -1;
		usleep(1000u << i);	/* 1 to 64 ms */
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
	struct epoll_event ev, evs[64];
	int lfd, ep, one = 1, defer = 0, i, n;

	if (argc == 4 && !strcmp(argv[2], "defer-accept"))
		defer = atoi(argv[3]);
	if ((argc != 2 && argc != 4) || defer < 0 || (argc == 4 && !defer)) {
		fprintf(stderr, "usage: kvstore PORT [defer-accept SECONDS]\n");
		return 2;
	}
	sa.sin6_port = htons(atoi(argv[1]));
	lfd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    (defer && setsockopt(lfd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer,
				 sizeof(defer))) ||
	    listen(lfd, 4096)) {
		perror("kvstore: listen");
		return 1;
	}
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	fprintf(stderr, "kvstore: listening on %s\n", argv[1]);
	for (;;) {
		n = epoll_wait(ep, evs, 64, -1);
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c) {
				if (conn_input(c))
					conn_close(ep, c);
				continue;
			}
			for (;;) {
				int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);

				if (fd < 0)
					break;
				c = calloc(1, sizeof(*c));
				if (!c) {
					close(fd);
					continue;
				}
				c->fd = fd;
				switch (conn_resume(c)) {
				case 1:
					fprintf(stderr, "kvstore: resumed %lu\n", ++resumed);
					break;
				case 0:
					memset(&c->st, 0, sizeof(c->st));
					c->st.rx = FNV_INIT;
					c->st.tx = FNV_INIT;
					break;
				default:
					fprintf(stderr, "kvstore: cannot read a connection's state, closing it: %s\n",
						ftvm_strerror());
					close(fd);
					free(c);
					continue;
				}
				ev.events = EPOLLIN;
				ev.data.ptr = c;
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				/* Restored data may already be waiting. */
				if (conn_input(c))
					conn_close(ep, c);
			}
		}
	}
}
