// SPDX-License-Identifier: GPL-2.0
/*
 * Heartbeats: a probe per VM from the host side into the VM, every
 * "interval" ms; "misses" probes in a row without an answer declare the
 * VM failed (reason "heartbeat").  This catches what link events cannot:
 * a guest that hangs with its device up.
 *
 *   icmp ADDR       an echo request (raw socket as root, else a ping
 *                   socket); the answer must carry our payload back
 *   tcp ADDR:PORT   a non-blocking connect; only an accepted connection
 *                   counts (a reset means the service is not answering)
 *
 * A probe is answered when the answer arrives before the next one is
 * due.  The prober only judges; the main thread fails the VM over.
 */
#include <errno.h>
#include <netinet/icmp6.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ftd.h"

#define PROBE_MAGIC	0x66746470u	/* "ftdp" */

struct probe_payload {
	uint32_t magic;
	uint32_t vm;
	uint64_t seq;
};

struct pstate {
	bool active;
	struct probe_cfg cfg;
	uint32_t missed;
	uint64_t due;
	uint64_t seq;
	bool outstanding, answered, reported;
	int tcp_fd;
};

static struct pstate ps[FTVM_VM_ID_MAX + 1];
static int icmp4 = -1, icmp6 = -1, verdict_efd = -1;
static bool icmp4_raw;
static pthread_mutex_t vq_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	uint32_t vm;
	uint64_t t;
} vq[FTVM_VM_ID_MAX + 1];
static int vq_n;

int prober_fd(void)
{
	if (verdict_efd < 0)
		verdict_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return verdict_efd;
}

static void verdict(uint32_t vm, uint64_t t)
{
	uint64_t one = 1;

	pthread_mutex_lock(&vq_lock);
	if (vq_n < (int)ARRAY_SIZE(vq)) {
		vq[vq_n].vm = vm;
		vq[vq_n++].t = t;
	}
	pthread_mutex_unlock(&vq_lock);
	if (write(verdict_efd, &one, sizeof(one)) < 0)
		ftd_log(LOG_ERR, "prober: eventfd: %s", strerror(errno));
}

void prober_collect(void)
{
	uint64_t v;
	int n;

	if (read(verdict_efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&vq_lock);
	n = vq_n;
	pthread_mutex_lock(&ftd.lock);
	for (int i = 0; i < n; i++) {
		struct ftd_vm *vm = &ftd.cfg.vms[vq[i].vm];

		if (!vm->used || vm->state == VM_FAILED)
			continue;
		ftd_log(LOG_WARN, "vm %s missed %u heartbeats in a row",
			vm->name, vm->probe.misses);
		ctl_event("{\"event\":\"vm-failed\",\"vm\":\"%s\",\"id\":%u,\"reason\":\"heartbeat\"}",
			  vm->name, vm->id);
		/*
		 * Tell the registry first: it arms the backups
		 * (kmod/hold.c); its event is then a no-op.
		 */
		module_vm_fail(vm);
		failover_vm(vm->id, FTD_FAIL_HEARTBEAT, vq[i].t);
	}
	pthread_mutex_unlock(&ftd.lock);
	vq_n = 0;
	pthread_mutex_unlock(&vq_lock);
}

static uint16_t csum(const void *data, size_t len)
{
	const uint16_t *w = data;
	uint32_t sum = 0;

	for (; len > 1; len -= 2)
		sum += *w++;
	if (len)
		sum += *(const uint8_t *)w;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void send_icmp(uint32_t id, struct pstate *p)
{
	struct {
		struct icmphdr h;
		struct probe_payload pl;
	} pkt = {};
	int fd = p->cfg.addr.ss_family == AF_INET6 ? icmp6 : icmp4;

	if (fd < 0)
		return;
	pkt.h.type = p->cfg.addr.ss_family == AF_INET6 ? ICMP6_ECHO_REQUEST :
		     ICMP_ECHO;
	pkt.h.un.echo.id = htons((uint16_t)getpid());
	pkt.h.un.echo.sequence = htons((uint16_t)p->seq);
	pkt.pl.magic = PROBE_MAGIC;
	pkt.pl.vm = id;
	pkt.pl.seq = p->seq;
	if (p->cfg.addr.ss_family == AF_INET)
		pkt.h.checksum = csum(&pkt, sizeof(pkt));
	sendto(fd, &pkt, sizeof(pkt), MSG_DONTWAIT,
	       (const struct sockaddr *)&p->cfg.addr, p->cfg.addrlen);
}

static void send_tcp(struct pstate *p)
{
	if (p->tcp_fd >= 0)
		close(p->tcp_fd);
	p->tcp_fd = socket(p->cfg.addr.ss_family,
			   SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->tcp_fd < 0)
		return;
	if (!connect(p->tcp_fd, (const struct sockaddr *)&p->cfg.addr,
		     p->cfg.addrlen)) {
		p->answered = true;
		close(p->tcp_fd);
		p->tcp_fd = -1;
	} else if (errno != EINPROGRESS) {
		close(p->tcp_fd);
		p->tcp_fd = -1;
	}
}

static void recv_icmp(int fd, bool v6)
{
	char buf[512];
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		const char *p = buf;
		const struct icmphdr *h;
		struct probe_payload pl;
		size_t off = 0;

		if (!v6 && icmp4_raw) {
			const struct iphdr *ip = (const void *)buf;

			if ((size_t)n < sizeof(*ip))
				continue;
			off = (size_t)ip->ihl * 4;
		}
		if ((size_t)n < off + sizeof(*h) + sizeof(pl))
			continue;
		h = (const void *)(p + off);
		if (h->type != (v6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY))
			continue;
		memcpy(&pl, p + off + sizeof(*h), sizeof(pl));
		if (pl.magic != PROBE_MAGIC || pl.vm > FTVM_VM_ID_MAX)
			continue;
		if (ps[pl.vm].active && ps[pl.vm].seq == pl.seq)
			ps[pl.vm].answered = true;
	}
}

static void open_sockets(void)
{
	struct icmp6_filter f;

	icmp4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
	icmp4_raw = icmp4 >= 0;
	if (icmp4 < 0)
		icmp4 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP);
	icmp6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
	if (icmp6 >= 0) {
		ICMP6_FILTER_SETBLOCKALL(&f);
		ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f);
		setsockopt(icmp6, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof(f));
	} else {
		icmp6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC,
			       IPPROTO_ICMPV6);
	}
	if (icmp4 < 0)
		ftd_log(LOG_WARN, "prober: no ICMP socket (%s): icmp probes will all miss",
			strerror(errno));
}

/* Take the probe configuration of live VMs; ftd.lock held. */
static void refresh(uint64_t now)
{
	for (uint32_t id = FTVM_VM_ID_MIN; id <= FTVM_VM_ID_MAX; id++) {
		const struct ftd_vm *vm = &ftd.cfg.vms[id];
		struct pstate *p = &ps[id];
		bool want = vm->used && vm->state != VM_FAILED &&
			    vm->probe.kind != PROBE_NONE;

		if (!want || (p->active &&
			      memcmp(&p->cfg, &vm->probe, sizeof(p->cfg)))) {
			if (p->tcp_fd >= 0)
				close(p->tcp_fd);
			memset(p, 0, sizeof(*p));
			p->tcp_fd = -1;
		}
		if (want && !p->active) {
			p->active = true;
			p->cfg = vm->probe;
			p->due = now;
		}
	}
}

void *prober_thread(void *arg)
{
	static struct pollfd pfd[FTVM_VM_ID_MAX + 3];
	static uint32_t owner[FTVM_VM_ID_MAX + 3];

	(void)arg;
	urcu_memb_register_thread();
	for (uint32_t id = 0; id <= FTVM_VM_ID_MAX; id++)
		ps[id].tcp_fd = -1;
	open_sockets();
	while (!CMM_LOAD_SHARED(ftd.stop)) {
		uint64_t now = monotonic_ns(), next = now + 100000000ull;
		int n = 0, timeout;

		pthread_mutex_lock(&ftd.lock);
		refresh(now);
		pthread_mutex_unlock(&ftd.lock);
		for (uint32_t id = FTVM_VM_ID_MIN; id <= FTVM_VM_ID_MAX; id++) {
			struct pstate *p = &ps[id];

			if (!p->active)
				continue;
			if (now >= p->due) {
				if (p->outstanding && !p->answered) {
					if (++p->missed >= p->cfg.misses &&
					    !p->reported) {
						p->reported = true;
						verdict(id, now);
					}
				} else if (p->answered) {
					p->missed = 0;
				}
				p->seq++;
				p->outstanding = true;
				p->answered = false;
				if (p->cfg.kind == PROBE_ICMP)
					send_icmp(id, p);
				else
					send_tcp(p);
				p->due = now + p->cfg.interval_ms * 1000000ull;
			}
			if (p->due < next)
				next = p->due;
			if (p->tcp_fd >= 0) {
				pfd[n].fd = p->tcp_fd;
				pfd[n].events = POLLOUT;
				owner[n++] = id;
			}
		}
		if (icmp4 >= 0) {
			pfd[n].fd = icmp4;
			pfd[n].events = POLLIN;
			owner[n++] = 0;
		}
		if (icmp6 >= 0) {
			pfd[n].fd = icmp6;
			pfd[n].events = POLLIN;
			owner[n++] = 0;
		}
		now = monotonic_ns();
		timeout = next > now ? (int)((next - now) / 1000000) + 1 : 0;
		if (poll(pfd, (nfds_t)n, timeout) <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			struct pstate *p = &ps[owner[i]];
			int soerr = 0;
			socklen_t l = sizeof(soerr);

			if (!pfd[i].revents)
				continue;
			if (pfd[i].fd == icmp4 || pfd[i].fd == icmp6) {
				recv_icmp(pfd[i].fd, pfd[i].fd == icmp6);
				continue;
			}
			getsockopt(p->tcp_fd, SOL_SOCKET, SO_ERROR, &soerr, &l);
			if (!soerr && !(pfd[i].revents & (POLLERR | POLLHUP)))
				p->answered = true;
			close(p->tcp_fd);
			p->tcp_fd = -1;
		}
	}
	urcu_memb_unregister_thread();
	return NULL;
}
