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
 *   round K [first M]
 *               K request/response rounds on every session (kv: or on
 *               the first M only)
 *   ports M     (kv) answered "ok ports P..." : the local ports of the
 *               first M sessions
 *   send L      (echo) send L more bytes on every session, read nothing
 *   drain       (echo) read until everything sent came back
 *   shut K      half-close the first K sessions (they then sit out)
 *   run MS [every P]
 *               (kv, udp) traffic for MS milliseconds, every session on
 *               its own with one request outstanding, the next sent as
 *               soon as the reply came (closed loop) or, with "every P",
 *               P ms after the previous one was due, at once if its
 *               reply came later than that (paced: at most N requests
 *               every P ms, the sessions' first ones spread over the
 *               first P ms); answered "ok run MS replies R lost L
 *               gap_ms G stall_ms P50 P99 MAX" (below)
 *   churn MS    (kv) for MS milliseconds, open a new connection, one
 *               request, check a fresh state, close, again; answered
 *               "ok churn MS opened N"
 *   lenient     from now on a session that fails in "run" is counted as
 *               lost (and closed) instead of failing the client
 *   quit
 *
 * kv: requests "ADD n"; each reply must carry the count and sum of all
 * requests so far on that connection and the service's checksums of
 * every byte it received and sent, which must equal the client's own.
 * echo: every byte must come back once, in order.  udp: one datagram
 * per round on each of N connected UDP sockets, echoed.
 *
 * Stall ("run"): per session, the longest gap between two consecutive
 * replies minus its normal gap, the mean of its other gaps (closed loop
 * about a round trip, paced about P; paced, not counting a gap that ended
 * with the reply to a request sent at once after a late reply: that is
 * the session catching up with its pace).  A failover during the run
 * shows as the stall of the sessions it moved that had a request out
 * while their service was away: closed loop all of them, each by the
 * whole outage; paced, those that sent during it, by what was left of it
 * when they sent (a session that sent nothing during an outage shorter
 * than P sees none of it).  G is the median normal gap; P50, P99 and MAX
 * are over the sessions.  With SESSCLIENT_STALLS=FILE in the environment,
 * each "run" also writes one line per session to FILE: "PORT STALL_US
 * GAP_US REPLIES LOST AT_MS" (PORT: its local port; AT_MS: when its
 * longest gap ended, ms into the run), so that a caller can pick the
 * sessions a failover moved.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

struct sess {
	int fd;
	uint64_t count, sum;
	uint32_t tx, rx;	/* FNV-1a of the bytes each way */
	uint64_t sent, got;	/* echo: bytes */
	uint32_t seed;		/* echo: the byte stream is a function of the offset */
	/* run */
	uint64_t pending;	/* kv: the request's value; udp: its number */
	char req[64];
	int reqlen;
	char in[256];		/* kv: a reply line being read */
	int inlen;
	bool dead;
	uint64_t sent_ns, first_ns, last_ns, max_gap_ns, max_at_ns;
	uint64_t replies;
	/* paced */
	uint64_t due_ns;	/* when its request is or was due */
	bool late;		/* that request sent at once, the reply before late */
	bool max_late;		/* the longest gap ended with the reply to one */
	uint64_t late_ns, lates;	/* the gaps that did, their sum */
	uint16_t port;		/* local, for SESSCLIENT_STALLS */
};

enum { KV, ECHO, UDP } mode;
static struct sess *ss;
static int nsess;
static bool lenient;
static struct sockaddr_storage sa;
static socklen_t salen;

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

/* A round on sessions 0 to @upto - 1. */
static void kv_round(int upto)
{
	char buf[128], line[128];
	int i;

	for (i = 0; i < upto; i++) {
		uint64_t n = random() % 1000;
		int k = snprintf(buf, sizeof(buf), "ADD %" PRIu64 "\n", n);

		write_all(i, buf, k);
		ss[i].tx = fnv(ss[i].tx, buf, k);
		ss[i].count++;
		ss[i].sum += n;
	}
	for (i = 0; i < upto; i++) {
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

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* A session fails during "run": the client fails, or under lenient the
 * session is counted lost. */
static void run_lose(int ep, int i, const char *why)
{
	if (!lenient)
		fail(i, "%s", why);
	fprintf(stderr, "sessclient: session %d lost: %s\n", i, why);
	epoll_ctl(ep, EPOLL_CTL_DEL, ss[i].fd, NULL);
	close(ss[i].fd);
	ss[i].dead = true;
}

static void run_send(int ep, int i)
{
	struct sess *s = &ss[i];

	if (mode == KV) {
		s->pending = random() % 1000;
		s->reqlen = snprintf(s->req, sizeof(s->req), "ADD %" PRIu64 "\n",
				     s->pending);
	} else {
		s->pending = s->count;
		s->reqlen = snprintf(s->req, sizeof(s->req), "%d %" PRIu64,
				     i, s->pending);
	}
	s->sent_ns = now_ns();
	if (send(s->fd, s->req, s->reqlen, MSG_NOSIGNAL | MSG_DONTWAIT) != s->reqlen &&
	    mode == KV) {
		run_lose(ep, i, "write failed");
		return;
	}
	if (mode == KV) {
		s->tx = fnv(s->tx, s->req, s->reqlen);
		s->count++;
		s->sum += s->pending;
	}
}

static void run_reply(struct sess *s, uint64_t t)
{
	if (s->replies) {
		uint64_t g = t - s->last_ns;

		if (g > s->max_gap_ns) {
			s->max_gap_ns = g;
			s->max_at_ns = t;
			s->max_late = s->late;
		}
		if (s->late) {
			s->late_ns += g;
			s->lates++;
		}
	} else {
		s->first_ns = t;
	}
	s->last_ns = t;
	s->replies++;
}

/*
 * A session's normal gap: the mean of its gaps but the longest and, paced,
 * but those that ended with the reply to a request sent at once because
 * the reply before came late (about a round trip: the session catching up
 * with its pace, the tail of the stall, not a normal gap) -- unless it
 * only had those (it never kept up: closed loop in effect).  At least three
 * replies.
 */
static uint64_t run_normal(const struct sess *s)
{
	uint64_t sum = s->last_ns - s->first_ns - s->late_ns;
	uint64_t n = s->replies - 1 - s->lates;

	if (!s->max_late) {
		sum -= s->max_gap_ns;
		n--;
	}
	if (!n)
		return (s->last_ns - s->first_ns - s->max_gap_ns) / (s->replies - 2);
	return sum / n;
}

/* Input on session @i: 1 when its request was answered, 0 not yet, -1 lost. */
static int run_input(int ep, int i)
{
	struct sess *s = &ss[i];
	char got[64];
	ssize_t r;

	if (mode == UDP) {
		r = recv(s->fd, got, sizeof(got), MSG_DONTWAIT);
		if (r < 0)
			return 0;	/* ICMP errors while the path switches */
		/* Duplicates of earlier requests (resent) are ignored. */
		if (r != s->reqlen || memcmp(got, s->req, r))
			return 0;
		s->count++;
		return 1;
	}
	for (;;) {
		uint64_t count, sum;
		unsigned int rx, tx;
		char *nl;

		r = recv(s->fd, s->in + s->inlen, sizeof(s->in) - 1 - s->inlen,
			 MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN)) {
			run_lose(ep, i, r ? strerror(errno) : "connection closed");
			return -1;
		}
		if (r < 0)
			return 0;
		s->inlen += r;
		s->in[s->inlen] = 0;
		nl = strchr(s->in, '\n');
		if (!nl) {
			if (s->inlen == sizeof(s->in) - 1) {
				run_lose(ep, i, "reply too long");
				return -1;
			}
			continue;
		}
		if ((size_t)(nl + 1 - s->in) != (size_t)s->inlen) {
			run_lose(ep, i, "more than one reply");
			return -1;
		}
		if (sscanf(s->in, "%" SCNu64 " %" SCNu64 " %x %x", &count, &sum,
			   &rx, &tx) != 4) {
			run_lose(ep, i, "bad reply");
			return -1;
		}
		if (count != s->count || sum != s->sum) {
			run_lose(ep, i, "application state lost");
			return -1;
		}
		if (rx != s->tx || tx != s->rx) {
			run_lose(ep, i, "bytes lost or duplicated");
			return -1;
		}
		s->rx = fnv(s->rx, s->in, s->inlen);
		s->inlen = 0;
		return 1;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, int n, int p)
{
	if (!n)
		return 0;
	return v[(n - 1) * p / 100] / 1e6;
}

/*
 * "run MS [every P]": every live session one request at a time until MS
 * have passed, then until every outstanding request is answered; paced
 * (pace: P in ns, else 0), a session's next request is due P after its
 * previous one was due, or is sent at once when the reply came after
 * that (it is then due from that moment).  A TCP session silent for 60 s
 * is lost; a UDP request unanswered for 100 ms is sent again (datagrams
 * in flight at a failover are lost).
 */
static void run(long ms, uint64_t pace, char *res, size_t reslen)
{
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)ms * 1000000ull;
	uint64_t *stall = calloc(nsess ? nsess : 1, sizeof(*stall));
	uint64_t *gap = calloc(nsess ? nsess : 1, sizeof(*gap));
	struct epoll_event ev, evs[256];
	int ep = epoll_create1(0), i, live = 0, lost = 0, n, k;
	/* A reply outstanding; paced, the next request due at due_ns. */
	bool *waiting = calloc(nsess ? nsess : 1, sizeof(*waiting));
	bool *due = calloc(nsess ? nsess : 1, sizeof(*due));
	uint64_t replies = 0, next = UINT64_MAX;
	FILE *out;

	if (ep < 0 || !stall || !gap || !waiting || !due)
		fail(0, "%s", "out of memory");
	for (i = 0; i < nsess; i++) {
		struct sess *s = &ss[i];

		s->replies = s->max_gap_ns = s->max_at_ns = 0;
		s->late_ns = s->lates = 0;
		s->late = s->max_late = false;
		s->inlen = 0;
		if (s->dead)
			continue;
		ev.events = EPOLLIN;
		ev.data.u32 = i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev))
			fail(i, "epoll: %s", strerror(errno));
		if (pace) {
			/* Spread over the first P, sent by the loop below. */
			s->due_ns = t0 + pace * i / nsess;
			if (s->due_ns < next)
				next = s->due_ns;
			due[i] = true;
			live++;
			continue;
		}
		run_send(ep, i);
		if (!s->dead) {
			waiting[i] = true;
			live++;
		}
	}
	while (live) {
		uint64_t t = now_ns(), wait = mode == UDP ? 10000000ull : 100000000ull;
		struct timespec ts;

		/* Paced: up in time for the next request due, to the ns. */
		if (next < t + wait)
			wait = next > t ? next - t : 0;
		ts.tv_sec = wait / 1000000000ull;
		ts.tv_nsec = wait % 1000000000ull;
		n = epoll_pwait2(ep, evs, 256, &ts, NULL);
		if (n < 0 && errno != EINTR)
			fail(0, "epoll: %s", strerror(errno));
		t = now_ns();
		for (k = 0; k < n; k++) {
			struct sess *s;
			int r;

			i = evs[k].data.u32;
			s = &ss[i];
			if (!waiting[i] && !due[i]) {
				/* Done (or lost): not read again in this run. */
				if (!s->dead)
					epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
				continue;
			}
			if (!waiting[i] && mode == UDP) {
				char echo[64];

				/* Paced, between requests: a resent one's echo. */
				recv(s->fd, echo, sizeof(echo), MSG_DONTWAIT);
				continue;
			}
			r = run_input(ep, i);
			if (r == 1 && !waiting[i]) {
				run_lose(ep, i, "reply to no request");
				r = -1;
			}
			if (r == 1) {
				run_reply(s, t);
				replies++;
				waiting[i] = false;
				if (pace) {
					s->late = s->due_ns + pace < t;
					s->due_ns = s->late ? t : s->due_ns + pace;
					if (s->due_ns < end) {
						due[i] = true;	/* sent below */
						continue;
					}
				} else if (t < end) {
					run_send(ep, i);
					if (!s->dead) {
						waiting[i] = true;
						continue;
					}
				}
			}
			if (r) {
				waiting[i] = due[i] = false;
				live--;
			}
		}
		t = now_ns();	/* not before any send above */
		next = UINT64_MAX;
		for (i = 0; i < nsess; i++) {
			struct sess *s = &ss[i];

			if (due[i] && s->due_ns <= t) {
				due[i] = false;
				run_send(ep, i);
				if (s->dead) {
					live--;
					continue;
				}
				waiting[i] = true;
			}
			if (due[i] && s->due_ns < next)
				next = s->due_ns;
			if (!waiting[i])
				continue;
			if (mode == UDP && t > s->sent_ns + 100000000ull) {
				if (t > (s->replies ? s->last_ns : t0) + 60000000000ull) {
					run_lose(ep, i, "no echo for 60 s");
					waiting[i] = false;
					live--;
					continue;
				}
				send(s->fd, s->req, s->reqlen, MSG_DONTWAIT);
				s->sent_ns = t;
			} else if (mode == KV && t > s->sent_ns + 60000000000ull) {
				run_lose(ep, i, "no reply for 60 s");
				waiting[i] = false;
				live--;
			}
		}
	}
	close(ep);
	out = getenv("SESSCLIENT_STALLS") ? fopen(getenv("SESSCLIENT_STALLS"), "w") : NULL;
	for (i = 0, k = 0; i < nsess; i++) {
		struct sess *s = &ss[i];
		uint64_t normal = 0, st = 0;

		if (s->dead)
			lost++;
		if (!s->dead && s->replies >= 3) {
			normal = run_normal(s);
			st = s->max_gap_ns > normal ? s->max_gap_ns - normal : 0;
			gap[k] = normal;
			stall[k++] = st;
		}
		if (out)
			fprintf(out, "%u %" PRIu64 " %" PRIu64 " %" PRIu64 " %d %" PRIu64 "\n",
				s->port, st / 1000, normal / 1000, s->replies, s->dead,
				s->max_at_ns > t0 ? (s->max_at_ns - t0) / 1000000 : 0);
	}
	if (out)
		fclose(out);
	qsort(stall, k, sizeof(*stall), cmp_u64);
	qsort(gap, k, sizeof(*gap), cmp_u64);
	snprintf(res, reslen, "replies %" PRIu64 " lost %d gap_ms %.3f stall_ms %.3f %.3f %.3f",
		 replies, lost, pct(gap, k, 50), pct(stall, k, 50),
		 pct(stall, k, 99), pct(stall, k, 100));
	free(stall);
	free(gap);
	free(waiting);
	free(due);
}

/* "churn MS": short connections, each with a state of its own. */
static long churn(long ms)
{
	uint64_t end = now_ns() + (uint64_t)ms * 1000000ull;
	long opened = 0;

	do {
		struct sess c = { .tx = 2166136261u, .rx = 2166136261u };
		uint64_t count, sum, v = random() % 1000;
		unsigned int rx, tx;
		struct pollfd p;
		char buf[64], line[128];
		int k, len = 0;

		c.fd = socket(sa.ss_family, SOCK_STREAM, 0);
		if (c.fd < 0 || connect(c.fd, (struct sockaddr *)&sa, salen))
			fail(-1, "churn connect: %s", strerror(errno));
		k = snprintf(buf, sizeof(buf), "ADD %" PRIu64 "\n", v);
		if (send(c.fd, buf, k, MSG_NOSIGNAL) != k)
			fail(-1, "churn write: %s", strerror(errno));
		c.tx = fnv(c.tx, buf, k);
		while (!len || line[len - 1] != '\n') {
			ssize_t r;

			p.fd = c.fd;
			p.events = POLLIN;
			if (poll(&p, 1, 60000) != 1)
				fail(-1, "%s", "churn: timeout");
			r = recv(c.fd, line + len, sizeof(line) - 1 - len, 0);
			if (r <= 0)
				fail(-1, "churn read: %s", r ? strerror(errno) : "closed");
			len += r;
			if (len == sizeof(line) - 1)
				fail(-1, "%s", "churn: reply too long");
		}
		line[len] = 0;
		if (sscanf(line, "%" SCNu64 " %" SCNu64 " %x %x", &count, &sum, &rx, &tx) != 4 ||
		    count != 1 || sum != v || rx != c.tx || tx != c.rx)
			fail(-1, "churn: not a fresh state: %s", line);
		close(c.fd);
		opened++;
	} while (now_ns() < end);
	return opened;
}

int main(int argc, char **argv)
{
	char cmd[128], res[256];
	struct sockaddr_storage me;
	socklen_t me_len;
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
		me_len = sizeof(me);
		if (!getsockname(ss[i].fd, (struct sockaddr *)&me, &me_len))
			ss[i].port = ntohs(((struct sockaddr_in *)&me)->sin_port);
	}
	printf("ok connected %d\n", nsess);
	fflush(stdout);
	while (fgets(cmd, sizeof(cmd), stdin)) {
		long arg = 0;
		char word[32];

		if (sscanf(cmd, "%31s %ld", word, &arg) < 1)
			continue;
		if (!strcmp(word, "round")) {
			long first = nsess;

			if (sscanf(cmd, "%*s %*d first %ld", &first) == 1 &&
			    (mode != KV || first < 0 || first > nsess)) {
				printf("fail bad round %s", cmd);
				return 1;
			}
			for (long r = 0; r < (arg ? arg : 1); r++)
				mode == KV ? kv_round((int)first) :
				mode == UDP ? udp_round() :
					(echo_send(64), echo_drain());
		} else if (!strcmp(word, "ports") && mode == KV && arg >= 0 &&
			   arg <= nsess) {
			printf("ok ports");
			for (i = 0; i < arg; i++)
				printf(" %u", ss[i].port);
			printf("\n");
			fflush(stdout);
			continue;
		} else if (!strcmp(word, "send") && mode == ECHO) {
			echo_send(arg);
		} else if (!strcmp(word, "drain") && mode == ECHO) {
			echo_drain();
		} else if (!strcmp(word, "shut")) {
			for (i = 0; i < arg && i < nsess; i++)
				shutdown(ss[i].fd, SHUT_WR);
			ss += arg;
			nsess -= arg;
		} else if (!strcmp(word, "run") && mode != ECHO) {
			long pace = 0;
			char every[8] = "";

			if (sscanf(cmd, "%*s %*d %7s %ld", every, &pace) >= 1 &&
			    (strcmp(every, "every") || pace <= 0)) {
				printf("fail bad run %s", cmd);
				return 1;
			}
			run(arg, pace * 1000000ull, res, sizeof(res));
			printf("ok run %ld %s\n", arg, res);
			fflush(stdout);
			continue;
		} else if (!strcmp(word, "churn") && mode == KV) {
			printf("ok churn %ld opened %ld\n", arg, churn(arg));
			fflush(stdout);
			continue;
		} else if (!strcmp(word, "lenient")) {
			lenient = true;
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
