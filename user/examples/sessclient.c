// SPDX-License-Identifier: GPL-2.0
/*
 * sessclient: many long-lived sessions to a service, checked byte by
 * byte, driven by commands on stdin (so a test can fail the service
 * over between them).
 *
 *   sessclient kv|echo|udp ADDR PORT N
 *
 * Commands (one per line; each answered "ok ..." on stdout, or the
 * client exits 1 after "fail ..."):
 *   round K     K request/response rounds on every session
 *   send L      (echo) send L more bytes on every session, read nothing
 *   drain       (echo) read until everything sent came back
 *   shut K      half-close the first K sessions (they then sit out)
 *   quit
 *
 * kv: requests "ADD n"; each reply must carry the count and sum of all
 * requests so far on that connection and the service's checksums of
 * every byte it received and sent, which must equal the client's own.
 * echo: every byte must come back once, in order.  udp: one datagram
 * per round on each of N connected UDP sockets, echoed.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

struct sess {
	int fd;
	uint64_t count, sum;
	uint32_t tx, rx;	/* FNV-1a of the bytes each way */
	uint64_t sent, got;	/* echo: bytes */
	uint32_t seed;		/* echo: the byte stream is a function of the offset */
};

enum { KV, ECHO, UDP } mode;
static struct sess *ss;
static int nsess;

static uint32_t fnv(uint32_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	while (n--)
		h = (h ^ *c++) * 16777619u;
	return h;
}

static unsigned char stream_byte(const struct sess *s, uint64_t off)
{
	uint64_t x = (off + s->seed) * 0x9e3779b97f4a7c15ull;

	return x >> 56;
}

static void fail(int i, const char *fmt, const char *what)
{
	printf("fail session %d: ", i);
	printf(fmt, what);
	printf("\n");
	fflush(stdout);
	exit(1);
}

/* Read exactly n bytes (or a line, when line is set) with a timeout. */
static ssize_t read_some(int i, char *buf, size_t n, int line)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd p = { .fd = ss[i].fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, 60000) != 1)
			fail(i, "%s", "timeout");
		r = recv(ss[i].fd, buf + got, line ? 1 : n - got, 0);
		if (r <= 0)
			fail(i, "read: %s", r ? strerror(errno) : "connection closed");
		got += r;
		if (line && buf[got - 1] == '\n')
			break;
	}
	return got;
}

static void write_all(int i, const void *buf, size_t n)
{
	if (send(ss[i].fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n)
		fail(i, "write: %s", strerror(errno));
}

static void kv_round(void)
{
	char buf[128], line[128];
	int i;

	for (i = 0; i < nsess; i++) {
		uint64_t n = random() % 1000;
		int k = snprintf(buf, sizeof(buf), "ADD %" PRIu64 "\n", n);

		write_all(i, buf, k);
		ss[i].tx = fnv(ss[i].tx, buf, k);
		ss[i].count++;
		ss[i].sum += n;
	}
	for (i = 0; i < nsess; i++) {
		uint64_t count, sum;
		unsigned int rx, tx;
		ssize_t k = read_some(i, line, sizeof(line) - 1, 1);

		line[k] = 0;
		if (sscanf(line, "%" SCNu64 " %" SCNu64 " %x %x", &count, &sum, &rx, &tx) != 4)
			fail(i, "bad reply %s", line);
		if (count != ss[i].count || sum != ss[i].sum)
			fail(i, "application state lost: %s", line);
		if (rx != ss[i].tx || tx != ss[i].rx)
			fail(i, "bytes lost or duplicated: %s", line);
		ss[i].rx = fnv(ss[i].rx, line, k);
	}
}

static void echo_send(size_t len)
{
	unsigned char buf[65536];
	int i;

	for (i = 0; i < nsess; i++) {
		size_t k;

		for (k = 0; k < len; k++)
			buf[k] = stream_byte(&ss[i], ss[i].sent + k);
		write_all(i, buf, len);
		ss[i].sent += len;
	}
}

static void echo_drain(void)
{
	unsigned char buf[65536];
	int i;

	for (i = 0; i < nsess; i++) {
		while (ss[i].got < ss[i].sent) {
			size_t n = ss[i].sent - ss[i].got, k;

			if (n > sizeof(buf))
				n = sizeof(buf);
			read_some(i, (char *)buf, n, 0);
			for (k = 0; k < n; k++)
				if (buf[k] != stream_byte(&ss[i], ss[i].got + k))
					fail(i, "%s", "echo differs: bytes lost or duplicated");
			ss[i].got += n;
		}
	}
}

static void udp_round(void)
{
	char buf[64], got[64];
	int i, try;

	for (i = 0; i < nsess; i++) {
		int k = snprintf(buf, sizeof(buf), "%d %" PRIu64, i, ss[i].count++);

		for (try = 0; try < 10; try++) {
			struct pollfd p = { .fd = ss[i].fd, .events = POLLIN };

			send(ss[i].fd, buf, k, 0);
			if (poll(&p, 1, 1000) == 1 &&
			    recv(ss[i].fd, got, sizeof(got), 0) == k && !memcmp(got, buf, k))
				break;
		}
		if (try == 10)
			fail(i, "%s", "no echo");
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_storage sa = { 0 };
	socklen_t salen;
	char cmd[128];
	int i;

	if (argc != 5) {
		fprintf(stderr, "usage: sessclient kv|echo|udp ADDR PORT N\n");
		return 2;
	}
	mode = !strcmp(argv[1], "kv") ? KV : !strcmp(argv[1], "echo") ? ECHO : UDP;
	if (inet_pton(AF_INET, argv[2], &((struct sockaddr_in *)&sa)->sin_addr) == 1) {
		((struct sockaddr_in *)&sa)->sin_family = AF_INET;
		((struct sockaddr_in *)&sa)->sin_port = htons(atoi(argv[3]));
		salen = sizeof(struct sockaddr_in);
	} else {
		((struct sockaddr_in6 *)&sa)->sin6_family = AF_INET6;
		inet_pton(AF_INET6, argv[2], &((struct sockaddr_in6 *)&sa)->sin6_addr);
		((struct sockaddr_in6 *)&sa)->sin6_port = htons(atoi(argv[3]));
		salen = sizeof(struct sockaddr_in6);
	}
	nsess = atoi(argv[4]);
	ss = calloc(nsess, sizeof(*ss));
	srandom(getpid());
	for (i = 0; i < nsess; i++) {
		ss[i].fd = socket(sa.ss_family, mode == UDP ? SOCK_DGRAM : SOCK_STREAM, 0);
		if (ss[i].fd < 0 || connect(ss[i].fd, (struct sockaddr *)&sa, salen))
			fail(i, "connect: %s", strerror(errno));
		ss[i].tx = ss[i].rx = 2166136261u;
		ss[i].seed = random();
	}
	printf("ok connected %d\n", nsess);
	fflush(stdout);
	while (fgets(cmd, sizeof(cmd), stdin)) {
		long arg = 0;
		char word[32];

		if (sscanf(cmd, "%31s %ld", word, &arg) < 1)
			continue;
		if (!strcmp(word, "round")) {
			for (long r = 0; r < (arg ? arg : 1); r++)
				mode == KV ? kv_round() : mode == UDP ? udp_round() :
					(echo_send(64), echo_drain());
		} else if (!strcmp(word, "send") && mode == ECHO) {
			echo_send(arg);
		} else if (!strcmp(word, "drain") && mode == ECHO) {
			echo_drain();
		} else if (!strcmp(word, "shut")) {
			for (i = 0; i < arg && i < nsess; i++)
				shutdown(ss[i].fd, SHUT_WR);
			ss += arg;
			nsess -= arg;
		} else if (!strcmp(word, "quit")) {
			break;
		} else {
			printf("fail unknown command %s\n", word);
			return 1;
		}
		printf("ok %s", cmd);
		fflush(stdout);
	}
	return 0;
}
