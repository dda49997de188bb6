/* SPDX-License-Identifier: LGPL-2.1 OR MIT */
/*
 * A minimal generic netlink client for the ftvm family, without libnl:
 * libftvm sits in services, which should not pull libnl in for two
 * requests.  Internal to libftvm and the ftvm tools.
 */
#ifndef FTVM_NL_H
#define FTVM_NL_H

#include <stddef.h>
#include <stdint.h>
#include <linux/netlink.h>

struct ftvm_nl {
	int fd;
	uint16_t family;
	uint32_t seq;
	char err[256];		/* the kernel's extack message, if any */
	uint32_t err_off;	/* offset of the offending attribute, or 0 */
	/*
	 * A request ftvm.ko refused for want of memory (-ENOMEM before any
	 * reply: it changed nothing, Documentation/netlink.rst), or that
	 * the kernel had no memory to take in (send()'s ENOBUFS), is sent
	 * again this many times, 1, 2, 4, ... ms apart.  0 (ftvm_nl_open()'s
	 * default): the caller is told at once.  A daemon sets it; a tool
	 * reports.
	 */
	unsigned int nomem_retries;
};

/* A request being built; buf is malloc()ed and grows. */
struct ftvm_msg {
	char *buf;
	size_t len, cap;
};

int ftvm_nl_open(struct ftvm_nl *nl);
void ftvm_nl_close(struct ftvm_nl *nl);

int ftvm_msg_init(struct ftvm_msg *m, struct ftvm_nl *nl, uint8_t cmd, uint16_t flags);
void ftvm_msg_free(struct ftvm_msg *m);
int ftvm_msg_put(struct ftvm_msg *m, uint16_t type, const void *data, size_t len);
/* Append raw, already aligned attributes. */
int ftvm_msg_append(struct ftvm_msg *m, const void *data, size_t len);
/* Returns the nest's offset for ftvm_msg_nest_end(), or -1. */
long ftvm_msg_nest(struct ftvm_msg *m, uint16_t type);
void ftvm_msg_nest_end(struct ftvm_msg *m, long off);

/*
 * Send @m and read replies until the ack (or the end of a dump); @cb is
 * called for every reply message with its attributes.  Returns 0 or a
 * negative errno; nl->err then holds the kernel's explanation.  Sends
 * it again, up to nl->nomem_retries times, if it was refused for want
 * of memory before any reply.
 */
typedef int (*ftvm_nl_cb)(const struct nlattr *attrs, size_t len, void *arg);
int ftvm_nl_talk(struct ftvm_nl *nl, struct ftvm_msg *m, ftvm_nl_cb cb, void *arg);

/*
 * Session-state requests, for ftd and the tools (Documentation/netlink.rst,
 * Documentation/state-format.rst).  @vm is a VM id in the caller's
 * registry.  Each call is one request, all or none; it returns 0 or a
 * negative errno, with the kernel's explanation in nl->err.  Counts the
 * kernel reports are stored where the pointers given are not NULL.
 */

/* A session's name: its 5-tuple, as its record carries it. */
struct ftvm_tuple {
	uint8_t proto;			/* IPPROTO_TCP or IPPROTO_UDP */
	uint8_t family;			/* AF_INET or AF_INET6 */
	uint16_t lport, rport;		/* host order */
	uint8_t laddr[16], raddr[16];	/* 4 or 16 bytes, as family says */
};

/*
 * The tuple of the record whose FTVM_A_SESSION attribute is @rec, or of
 * the session an FTVM_A_TUPLE attribute names.
 */
int ftvm_rec_tuple(const struct nlattr *rec, struct ftvm_tuple *t);

/*
 * The FTVM_SESS_F_* flags of the record whose FTVM_A_SESSION attribute
 * is @rec (0 if it carries none).
 */
uint32_t ftvm_rec_flags(const struct nlattr *rec);

/*
 * FTVM_CMD_SESSION_RESTORE of @len bytes of whole records @recs (as a
 * dump returns them: each FTVM_A_SESSION followed by its FTVM_A_SNDQ and
 * FTVM_A_RCVQ), live, or staged with FTVM_SNAP_F_STAGE in @flags: a
 * staged record replaces the one staged for the same session.  @count:
 * records restored or staged; @staged: records now staged for the VM
 * (staging only).
 */
int ftvm_sess_restore(struct ftvm_nl *nl, uint32_t vm, uint32_t flags,
		      const void *recs, size_t len, uint32_t *count,
		      uint32_t *staged);

/*
 * FTVM_CMD_SESSION_ACTIVATE: make the staged records of the @n sessions
 * @t live, or, with FTVM_SNAP_F_DISCARD in @flags, drop them; every
 * staged record of the VM when @n is 0.  With FTVM_SNAP_F_QUIET the
 * connections leave repair mode without a window probe: for a caller
 * that nudges them (ftvm_sess_nudge()) once the data path leads there.  A session not staged fails the
 * request (ENOENT).  @count: records activated or dropped; @staged: the
 * records still staged.
 */
int ftvm_sess_activate(struct ftvm_nl *nl, uint32_t vm, uint32_t flags,
		       const struct ftvm_tuple *t, size_t n, uint32_t *count,
		       uint32_t *staged);

/*
 * FTVM_CMD_SESSION_ACTIVATE with FTVM_SNAP_F_HELD: of the @n sessions @t
 * (every staged one when @n is 0), make live only those a client's
 * segment waits for in the VM (its ingress hold), FTVM_HELD_MAX at most,
 * oldest segment first; their segments are let in.  @flags: 0 or
 * FTVM_SNAP_F_QUIET (see ftvm_sess_activate()).  Their names are
 * stored in @live (room for FTVM_HELD_MAX), their number in *@count
 * (0 is no error).  A named session not staged fails the request.
 */
int ftvm_sess_activate_held(struct ftvm_nl *nl, uint32_t vm, uint32_t flags,
			    const struct ftvm_tuple *t, size_t n,
			    struct ftvm_tuple *live, uint32_t *count);

/*
 * FTVM_CMD_SESSION_NUDGE: each of the @n sessions @t (n >= 1) that is an
 * established TCP connection in the VM sends an ACK now and retransmits
 * the head of its unacknowledged data; call it right after the data path
 * switched to the VM.  @count: connections nudged (the others are gone,
 * closing or UDP, and skipped).
 */
int ftvm_sess_nudge(struct ftvm_nl *nl, uint32_t vm, const struct ftvm_tuple *t,
		    size_t n, uint32_t *count);

/*
 * FTVM_CMD_SESSION_RETIRE: each of the @n sessions @t (n >= 1) that is a
 * TCP connection in the VM its service still holds (established or
 * close-wait) ends without a packet, its service told ECONNABORTED: the
 * sessions went on in another VM (a drain).  @count: connections ended.
 */
int ftvm_sess_retire(struct ftvm_nl *nl, uint32_t vm, const struct ftvm_tuple *t,
		     size_t n, uint32_t *count);

/*
 * FTVM_CMD_SESSION_GONE: which of the @n TCP sessions @t (n >= 1) have
 * nothing left in the VM: no connection in any state, handshake and
 * time-wait included.  Their names go to @gone (room for @n), their
 * number to *@count.  UDP names, and the names of a port some socket
 * bound to a device holds there, are never said gone.  Changes nothing.
 */
int ftvm_sess_gone(struct ftvm_nl *nl, uint32_t vm, const struct ftvm_tuple *t,
		   size_t n, struct ftvm_tuple *gone, uint32_t *count);

/*
 * Output commit, per service of the caller's network namespace
 * (FTVM_CMD_COMMIT_SET and FTVM_CMD_COMMIT_GET, Documentation/netlink.rst).
 * A service is (family, addr, port, proto); only TCP services can be
 * strict.  The counters are the kernel's, since the service was set
 * strict; ftvm_commit_set() ignores them.
 */
struct ftvm_commit {
	uint8_t family;			/* AF_INET or AF_INET6 */
	uint8_t proto;			/* IPPROTO_TCP */
	uint16_t port;			/* host order */
	uint8_t addr[16];		/* 4 or 16 bytes, as family says */
	uint8_t mode;			/* enum ftvm_commit_mode */
	uint32_t ckpt_wait_ms;		/* 0..FTVM_COMMIT_CKPT_WAIT_MAX */
	/* ftvm_commit_get() only */
	uint32_t sessions;		/* sessions tracked now */
	uint32_t held;			/* packets held now */
	uint64_t held_total;		/* packets ever held */
	uint64_t released;		/* held packets released after a commit */
	uint64_t dropped;		/* held packets dropped */
	uint64_t commits;		/* on-demand commits */
	uint64_t no_backup;		/* commits that found no live backup */
	uint64_t stale;			/* commits made on a stale checkpoint */
};

/*
 * FTVM_CMD_COMMIT_SET: make the service @c names strict (or update its
 * ckpt_wait_ms), or with mode FTVM_COMMIT_RELAXED forget it, letting
 * every packet it holds go (relaxing a service that is not strict
 * succeeds).  Needs CAP_NET_ADMIN.  Refused, with the kernel's reason in
 * nl->err: UDP (EPROTONOSUPPORT), a family other than AF_INET/AF_INET6
 * (EAFNOSUPPORT), an address of the wrong length or an IPv4-mapped IPv6
 * one (EINVAL), beyond FTVM_COMMIT_SERVICES_MAX strict services (ENOSPC).
 */
int ftvm_commit_set(struct ftvm_nl *nl, const struct ftvm_commit *c);

/*
 * FTVM_CMD_COMMIT_GET, a dump: @cb is called once per strict service
 * with its settings and counters; a non-zero return from @cb ends the
 * dump early and is returned (the rest of the dump is read and dropped).
 */
typedef int (*ftvm_commit_cb)(const struct ftvm_commit *c, void *arg);
int ftvm_commit_get(struct ftvm_nl *nl, ftvm_commit_cb cb, void *arg);

/*
 * FTVM_CMD_COMMIT_SESS_GET, a dump: @cb is called once per session the
 * strict services of the caller's namespace follow (a session may come
 * twice if the kernel's table is resized meanwhile), with its tuple as on
 * the wire (laddr/lport: the service's end), the segments it holds now
 * and how long ago a record covering it was last staged on its backup
 * (-1: never).  A non-zero return from @cb ends the dump early.
 */
struct ftvm_commit_sess {
	struct ftvm_tuple t;
	uint32_t held;
	int64_t staged_ms;
};

typedef int (*ftvm_commit_sess_cb)(const struct ftvm_commit_sess *cs, void *arg);
int ftvm_commit_sessions(struct ftvm_nl *nl, ftvm_commit_sess_cb cb, void *arg);

/*
 * The entry of @c's service (family, addr, port, proto) in a
 * COMMIT_GET dump, into @out: 0, -ENOENT when it is not strict there,
 * or another negative errno.
 */
int ftvm_commit_find(struct ftvm_nl *nl, const struct ftvm_commit *c,
		     struct ftvm_commit *out);

#define ftvm_nla_for_each(a, head, len, rem)                                   \
	for (a = (const struct nlattr *)(head), rem = (long)(len);             \
	     rem >= (long)sizeof(*a) && a->nla_len >= sizeof(*a) &&            \
	     a->nla_len <= rem;                                                \
	     rem -= NLA_ALIGN(a->nla_len),                                     \
	     a = (const struct nlattr *)((const char *)a + NLA_ALIGN(a->nla_len)))

static inline const void *ftvm_nla_data(const struct nlattr *a)
{
	return (const char *)a + NLA_HDRLEN;
}

static inline size_t ftvm_nla_len(const struct nlattr *a)
{
	return a->nla_len - NLA_HDRLEN;
}

static inline int ftvm_nla_type(const struct nlattr *a)
{
	return a->nla_type & NLA_TYPE_MASK;
}

#endif
