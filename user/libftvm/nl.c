// SPDX-License-Identifier: LGPL-2.1 OR MIT
/*
 * Minimal generic netlink client for the ftvm family (see nl.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>
#include <linux/genetlink.h>

#include "../../kmod/uapi/ftvm.h"
#include "nl.h"

#define FTVM_NL_RCVBUF	(8u << 20)

static void *ftvm_msg_room(struct ftvm_msg *m, size_t len)
{
	size_t need = m->len + NLMSG_ALIGN(len);
	void *p;

	if (need > m->cap) {
		size_t cap = m->cap ? m->cap : 4096;
		char *b;

		while (cap < need)
			cap *= 2;
		b = realloc(m->buf, cap);
		if (!b)
			return NULL;
		m->buf = b;
		m->cap = cap;
	}
	p = m->buf + m->len;
	memset(p, 0, NLMSG_ALIGN(len));
	m->len = need;
	return p;
}

int ftvm_msg_init(struct ftvm_msg *m, struct ftvm_nl *nl, uint8_t cmd,
		  uint16_t flags)
{
	struct nlmsghdr *nlh;
	struct genlmsghdr *g;

	memset(m, 0, sizeof(*m));
	nlh = ftvm_msg_room(m, NLMSG_HDRLEN + GENL_HDRLEN);
	if (!nlh)
		return -ENOMEM;
	nlh->nlmsg_type = nl->family;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = ++nl->seq;
	g = (struct genlmsghdr *)((char *)nlh + NLMSG_HDRLEN);
	g->cmd = cmd;
	g->version = FTVM_GENL_VERSION;
	return 0;
}

void ftvm_msg_free(struct ftvm_msg *m)
{
	free(m->buf);
	memset(m, 0, sizeof(*m));
}

int ftvm_msg_put(struct ftvm_msg *m, uint16_t type, const void *data,
		 size_t len)
{
	struct nlattr *a;

	if (len > 0xffff - NLA_HDRLEN)
		return -EMSGSIZE;
	a = ftvm_msg_room(m, NLA_HDRLEN + len);
	if (!a)
		return -ENOMEM;
	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	if (len)
		memcpy((char *)a + NLA_HDRLEN, data, len);
	return 0;
}

int ftvm_msg_append(struct ftvm_msg *m, const void *data, size_t len)
{
	void *p = ftvm_msg_room(m, len);

	if (!p)
		return -ENOMEM;
	memcpy(p, data, len);
	return 0;
}

long ftvm_msg_nest(struct ftvm_msg *m, uint16_t type)
{
	long off = m->len;

	if (ftvm_msg_put(m, type | NLA_F_NESTED, NULL, 0))
		return -1;
	return off;
}

void ftvm_msg_nest_end(struct ftvm_msg *m, long off)
{
	struct nlattr *a = (struct nlattr *)(m->buf + off);

	a->nla_len = m->len - off;
}

static int ftvm_nl_family_cb(const struct nlattr *attrs, size_t len, void *arg)
{
	const struct nlattr *a;
	long rem;

	ftvm_nla_for_each(a, attrs, len, rem)
		if (ftvm_nla_type(a) == CTRL_ATTR_FAMILY_ID)
			memcpy(arg, ftvm_nla_data(a), sizeof(uint16_t));
	return 0;
}

/* A generic netlink socket, bound, set up as ftvm_nl_talk() wants it. */
static int ftvm_nl_socket(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int one = 1, rcvbuf = FTVM_NL_RCVBUF, fd, err;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	/* Privileged callers may exceed rmem_max; others get what they can. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/*
 * A dump the kernel could not go on with (no memory for its next batch:
 * ENOBUFS) stays under way, stalled until something else is read from
 * the socket, and the socket takes no other dump meanwhile (EBUSY).  A
 * new socket in the same place (the same descriptor) ends it.
 */
static int ftvm_nl_reset(struct ftvm_nl *nl)
{
	int fd = ftvm_nl_socket(), err = 0;

	if (fd < 0)
		return fd;
	if (dup3(fd, nl->fd, O_CLOEXEC) < 0)
		err = -errno;
	close(fd);
	return err;
}

int ftvm_nl_open(struct ftvm_nl *nl)
{
	struct ftvm_msg m;
	int err;

	memset(nl, 0, sizeof(*nl));
	nl->fd = ftvm_nl_socket();
	if (nl->fd < 0)
		return nl->fd;
	nl->family = GENL_ID_CTRL;
	err = ftvm_msg_init(&m, nl, CTRL_CMD_GETFAMILY, 0);
	if (err)
		goto err;
	((struct genlmsghdr *)(m.buf + NLMSG_HDRLEN))->version = 1;
	err = ftvm_msg_put(&m, CTRL_ATTR_FAMILY_NAME, FTVM_GENL_NAME,
			   sizeof(FTVM_GENL_NAME));
	nl->family = 0;
	if (!err)
		err = ftvm_nl_talk(nl, &m, ftvm_nl_family_cb, &nl->family);
	ftvm_msg_free(&m);
	if (!err && !nl->family)
		err = -ENOENT;
	if (err)
		goto err;
	return 0;
err:
	close(nl->fd);
	nl->fd = -1;
	return err;
}

void ftvm_nl_close(struct ftvm_nl *nl)
{
	if (nl->fd >= 0)
		close(nl->fd);
	nl->fd = -1;
}

static void ftvm_nl_extack(struct ftvm_nl *nl, const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = NLMSG_DATA(nlh);
	size_t off = NLMSG_HDRLEN + sizeof(*e);
	const struct nlattr *a;
	long rem;

	/* With NETLINK_CAP_ACK the request is not echoed back. */
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS) || nlh->nlmsg_len <= off)
		return;
	ftvm_nla_for_each(a, (const char *)nlh + off, nlh->nlmsg_len - off, rem) {
		if (ftvm_nla_type(a) == NLMSGERR_ATTR_MSG)
			snprintf(nl->err, sizeof(nl->err), "%.*s",
				 (int)ftvm_nla_len(a), (const char *)ftvm_nla_data(a));
		else if (ftvm_nla_type(a) == NLMSGERR_ATTR_OFFS)
			memcpy(&nl->err_off, ftvm_nla_data(a), sizeof(uint32_t));
	}
}

/* How far an exchange got. */
enum ftvm_nl_got { FTVM_NL_UNSENT, FTVM_NL_SENT, FTVM_NL_REPLIED };

/* One exchange; *@got: how far it got. */
static int ftvm_nl_talk_once(struct ftvm_nl *nl, struct ftvm_msg *m,
			     ftvm_nl_cb cb, void *arg, enum ftvm_nl_got *got)
{
	struct nlmsghdr *req = (struct nlmsghdr *)m->buf;
	bool dump = req->nlmsg_flags & NLM_F_DUMP, replied = false;
	static __thread char *buf;
	int err = 0, flags = 0;

	*got = FTVM_NL_UNSENT;
	nl->err[0] = 0;
	nl->err_off = 0;
	req->nlmsg_len = m->len;
	if (!buf) {
		buf = malloc(FTVM_NL_RCVBUF);
		if (!buf)
			return -ENOMEM;
	}
	/* No memory for the request's own buffer: ENOBUFS, nothing done. */
	if (send(nl->fd, m->buf, m->len, 0) < 0)
		return -errno;
	*got = FTVM_NL_SENT;
	for (;;) {
		struct nlmsghdr *nlh;
		ssize_t n;

		n = recv(nl->fd, buf, FTVM_NL_RCVBUF, flags);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/*
			 * A message for this socket was dropped because the
			 * kernel could not allocate it: netlink_ack() says
			 * so, before what is queued.  The kernel handled the
			 * request within send(), so all that is left of its
			 * answer is queued now: read it.  A reply, which
			 * only success sends, means the lost message was
			 * the ack and the request was done; without one,
			 * whether it was is unknown.
			 */
			if (errno == ENOBUFS && !dump && !flags) {
				flags = MSG_DONTWAIT;
				continue;
			}
			if (errno == EAGAIN && flags) {
				if (replied)
					return err;
				snprintf(nl->err, sizeof(nl->err), "%s",
					 "the kernel's answer was lost (no memory for it): the request may have been done");
				return -ENOBUFS;
			}
			err = -errno;
			if (err == -ENOBUFS && dump) {
				ftvm_nl_reset(nl);
				snprintf(nl->err, sizeof(nl->err), "%s",
					 "the kernel had no memory for the rest of the dump");
			}
			return err;
		}
		for (nlh = (struct nlmsghdr *)buf; NLMSG_OK(nlh, n);
		     nlh = NLMSG_NEXT(nlh, n)) {
			if (nlh->nlmsg_seq != req->nlmsg_seq)
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(nlh);

				ftvm_nl_extack(nl, nlh);
				/* Its first batch failed: the dump is under way. */
				if (dump && e->error == -ENOBUFS)
					ftvm_nl_reset(nl);
				return err ? err : e->error;
			}
			if (nlh->nlmsg_type == NLMSG_DONE) {
				const int *e = NLMSG_DATA(nlh);

				ftvm_nl_extack(nl, nlh);
				return err ? err : *e;
			}
			replied = true;
			*got = FTVM_NL_REPLIED;
			if (cb && !err)
				err = cb((const struct nlattr *)((char *)NLMSG_DATA(nlh) + GENL_HDRLEN),
					 nlh->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN, arg);
		}
	}
}

int ftvm_nl_talk(struct ftvm_nl *nl, struct ftvm_msg *m, ftvm_nl_cb cb,
		 void *arg)
{
	bool dump = ((struct nlmsghdr *)m->buf)->nlmsg_flags & NLM_F_DUMP;
	enum ftvm_nl_got got;
	unsigned int tries = 0;
	int err;

	/*
	 * Refused before any reply: nothing was done, and @cb has seen
	 * nothing, so the same request can go again; so can one the
	 * kernel found no memory to take in, and a dump whose first batch
	 * found none.  (A dump that failed half-way has given @cb part of
	 * its answer: not sent again.)
	 */
	for (;;) {
		err = ftvm_nl_talk_once(nl, m, cb, arg, &got);
		if (got == FTVM_NL_REPLIED || tries >= nl->nomem_retries ||
		    !(err == -ENOMEM ||
		      (err == -ENOBUFS && (dump || got == FTVM_NL_UNSENT))))
			return err;
		nanosleep(&(struct timespec){ .tv_nsec = 1000000L << (tries++ & 7) },
			  NULL);
	}
}

/* Session-state requests. */

struct ftvm_counts {
	uint32_t *count, *staged;
	struct ftvm_tuple *names;	/* the reply's FTVM_A_TUPLE, if not NULL */
	size_t nnames, cap;
};

static int ftvm_counts_cb(const struct nlattr *attrs, size_t len, void *arg)
{
	struct ftvm_counts *c = arg;
	const struct nlattr *a, *b;
	long rem, rem2;

	ftvm_nla_for_each(a, attrs, len, rem) {
		if (ftvm_nla_type(a) == FTVM_A_TUPLE && c->names) {
			if (c->nnames == c->cap ||
			    ftvm_rec_tuple(a, &c->names[c->nnames]))
				return -EPROTO;
			c->nnames++;
			continue;
		}
		if (ftvm_nla_type(a) != FTVM_A_SNAP)
			continue;
		ftvm_nla_for_each(b, ftvm_nla_data(a), ftvm_nla_len(a), rem2) {
			if (ftvm_nla_len(b) != sizeof(uint32_t))
				continue;
			if (ftvm_nla_type(b) == FTVM_A_SNAP_COUNT && c->count)
				memcpy(c->count, ftvm_nla_data(b), sizeof(uint32_t));
			else if (ftvm_nla_type(b) == FTVM_A_SNAP_STAGED && c->staged)
				memcpy(c->staged, ftvm_nla_data(b), sizeof(uint32_t));
		}
	}
	return 0;
}

static int ftvm_put_vm(struct ftvm_msg *m, uint32_t vm)
{
	long nest = ftvm_msg_nest(m, FTVM_A_VM);

	if (nest < 0 || ftvm_msg_put(m, FTVM_A_VM_ID, &vm, sizeof(vm)))
		return -ENOMEM;
	ftvm_msg_nest_end(m, nest);
	return 0;
}

static int ftvm_put_flags(struct ftvm_msg *m, uint32_t flags)
{
	long nest;

	if (!flags)
		return 0;
	nest = ftvm_msg_nest(m, FTVM_A_SNAP);
	if (nest < 0 || ftvm_msg_put(m, FTVM_A_SNAP_FLAGS, &flags, sizeof(flags)))
		return -ENOMEM;
	ftvm_msg_nest_end(m, nest);
	return 0;
}

static int ftvm_put_tuple(struct ftvm_msg *m, const struct ftvm_tuple *t)
{
	size_t alen = t->family == AF_INET6 ? 16 : 4;
	long nest = ftvm_msg_nest(m, FTVM_A_TUPLE);

	if (nest < 0 ||
	    ftvm_msg_put(m, FTVM_A_SESS_PROTO, &t->proto, 1) ||
	    ftvm_msg_put(m, FTVM_A_SESS_FAMILY, &t->family, 1) ||
	    ftvm_msg_put(m, FTVM_A_SESS_LADDR, t->laddr, alen) ||
	    ftvm_msg_put(m, FTVM_A_SESS_RADDR, t->raddr, alen) ||
	    ftvm_msg_put(m, FTVM_A_SESS_LPORT, &t->lport, 2) ||
	    ftvm_msg_put(m, FTVM_A_SESS_RPORT, &t->rport, 2))
		return -ENOMEM;
	ftvm_msg_nest_end(m, nest);
	return 0;
}

uint32_t ftvm_rec_flags(const struct nlattr *rec)
{
	const struct nlattr *a;
	uint32_t flags;
	long rem;

	ftvm_nla_for_each(a, ftvm_nla_data(rec), ftvm_nla_len(rec), rem)
		if (ftvm_nla_type(a) == FTVM_A_SESS_FLAGS &&
		    ftvm_nla_len(a) == sizeof(flags)) {
			memcpy(&flags, ftvm_nla_data(a), sizeof(flags));
			return flags;
		}
	return 0;
}

int ftvm_rec_tuple(const struct nlattr *rec, struct ftvm_tuple *t)
{
	unsigned int seen = 0;
	const struct nlattr *a;
	long rem;

	memset(t, 0, sizeof(*t));
	if (ftvm_nla_type(rec) != FTVM_A_SESSION &&
	    ftvm_nla_type(rec) != FTVM_A_TUPLE)
		return -EINVAL;
	ftvm_nla_for_each(a, ftvm_nla_data(rec), ftvm_nla_len(rec), rem) {
		size_t len = ftvm_nla_len(a);
		int type = ftvm_nla_type(a);

		switch (type) {
		case FTVM_A_SESS_PROTO:
		case FTVM_A_SESS_FAMILY:
			if (len != 1)
				return -EINVAL;
			memcpy(type == FTVM_A_SESS_PROTO ? &t->proto : &t->family,
			       ftvm_nla_data(a), 1);
			break;
		case FTVM_A_SESS_LPORT:
		case FTVM_A_SESS_RPORT:
			if (len != 2)
				return -EINVAL;
			memcpy(type == FTVM_A_SESS_LPORT ? &t->lport : &t->rport,
			       ftvm_nla_data(a), 2);
			break;
		case FTVM_A_SESS_LADDR:
		case FTVM_A_SESS_RADDR:
			if (len != 4 && len != 16)
				return -EINVAL;
			memcpy(type == FTVM_A_SESS_LADDR ? t->laddr : t->raddr,
			       ftvm_nla_data(a), len);
			break;
		default:
			continue;
		}
		seen |= 1u << type;
	}
	return seen == (1u << FTVM_A_SESS_PROTO | 1u << FTVM_A_SESS_FAMILY |
			1u << FTVM_A_SESS_LADDR | 1u << FTVM_A_SESS_RADDR |
			1u << FTVM_A_SESS_LPORT | 1u << FTVM_A_SESS_RPORT) ? 0 : -EINVAL;
}

int ftvm_sess_restore(struct ftvm_nl *nl, uint32_t vm, uint32_t flags,
		      const void *recs, size_t len, uint32_t *count,
		      uint32_t *staged)
{
	struct ftvm_counts c = { .count = count, .staged = staged };
	struct ftvm_msg m;
	int err;

	err = ftvm_msg_init(&m, nl, FTVM_CMD_SESSION_RESTORE, 0);
	if (!err)
		err = ftvm_put_vm(&m, vm);
	if (!err)
		err = ftvm_put_flags(&m, flags);
	if (!err)
		err = ftvm_msg_append(&m, recs, len);
	if (!err)
		err = ftvm_nl_talk(nl, &m, ftvm_counts_cb, &c);
	ftvm_msg_free(&m);
	return err;
}

/* session-activate, -nudge, -retire or -gone of the @n sessions @t. */
static int ftvm_sess_named(struct ftvm_nl *nl, uint8_t cmd, uint32_t vm,
			   uint32_t flags, const struct ftvm_tuple *t, size_t n,
			   struct ftvm_counts *c)
{
	struct ftvm_msg m;
	int err;

	err = ftvm_msg_init(&m, nl, cmd, 0);
	if (!err)
		err = ftvm_put_vm(&m, vm);
	if (!err)
		err = ftvm_put_flags(&m, flags);
	for (size_t i = 0; !err && i < n; i++)
		err = ftvm_put_tuple(&m, &t[i]);
	if (!err)
		err = ftvm_nl_talk(nl, &m, ftvm_counts_cb, c);
	ftvm_msg_free(&m);
	return err;
}

int ftvm_sess_activate(struct ftvm_nl *nl, uint32_t vm, uint32_t flags,
		       const struct ftvm_tuple *t, size_t n, uint32_t *count,
		       uint32_t *staged)
{
	struct ftvm_counts c = { .count = count, .staged = staged };

	return ftvm_sess_named(nl, FTVM_CMD_SESSION_ACTIVATE, vm, flags, t, n,
			       &c);
}

int ftvm_sess_activate_held(struct ftvm_nl *nl, uint32_t vm, uint32_t flags,
			    const struct ftvm_tuple *t, size_t n,
			    struct ftvm_tuple *live, uint32_t *count)
{
	struct ftvm_counts c = { .count = count, .names = live,
				 .cap = FTVM_HELD_MAX };
	int err;

	*count = 0;
	err = ftvm_sess_named(nl, FTVM_CMD_SESSION_ACTIVATE, vm,
			      flags | FTVM_SNAP_F_HELD, t, n, &c);
	if (!err && *count != c.nnames)
		err = -EPROTO;		/* each one it made live is named */
	if (err)
		*count = 0;
	return err;
}

int ftvm_sess_nudge(struct ftvm_nl *nl, uint32_t vm, const struct ftvm_tuple *t,
		    size_t n, uint32_t *count)
{
	struct ftvm_counts c = { .count = count };

	return ftvm_sess_named(nl, FTVM_CMD_SESSION_NUDGE, vm, 0, t, n, &c);
}

int ftvm_sess_retire(struct ftvm_nl *nl, uint32_t vm, const struct ftvm_tuple *t,
		     size_t n, uint32_t *count)
{
	struct ftvm_counts c = { .count = count };

	return ftvm_sess_named(nl, FTVM_CMD_SESSION_RETIRE, vm, 0, t, n, &c);
}

int ftvm_sess_gone(struct ftvm_nl *nl, uint32_t vm, const struct ftvm_tuple *t,
		   size_t n, struct ftvm_tuple *gone, uint32_t *count)
{
	struct ftvm_counts c = { .count = count, .names = gone, .cap = n };
	int err;

	*count = 0;
	err = ftvm_sess_named(nl, FTVM_CMD_SESSION_GONE, vm, 0, t, n, &c);
	if (!err && *count != c.nnames)
		err = -EPROTO;		/* each one gone is named */
	if (err)
		*count = 0;
	return err;
}

/* Output commit. */

static size_t ftvm_commit_alen(const struct ftvm_commit *c)
{
	return c->family == AF_INET6 ? 16 : 4;
}

/* FTVM_A_COMMIT { FAMILY, ADDR, PORT, PROTO, MODE, CKPT_WAIT }. */
static int ftvm_put_commit(struct ftvm_msg *m, const struct ftvm_commit *c)
{
	long nest = ftvm_msg_nest(m, FTVM_A_COMMIT);

	if (nest < 0 ||
	    ftvm_msg_put(m, FTVM_A_COMMIT_FAMILY, &c->family, 1) ||
	    ftvm_msg_put(m, FTVM_A_COMMIT_ADDR, c->addr, ftvm_commit_alen(c)) ||
	    ftvm_msg_put(m, FTVM_A_COMMIT_PORT, &c->port, 2) ||
	    ftvm_msg_put(m, FTVM_A_COMMIT_PROTO, &c->proto, 1) ||
	    ftvm_msg_put(m, FTVM_A_COMMIT_MODE, &c->mode, 1) ||
	    ftvm_msg_put(m, FTVM_A_COMMIT_CKPT_WAIT, &c->ckpt_wait_ms, 4))
		return -ENOMEM;
	ftvm_msg_nest_end(m, nest);
	return 0;
}

int ftvm_commit_set(struct ftvm_nl *nl, const struct ftvm_commit *c)
{
	struct ftvm_msg m;
	int err;

	if (c->family != AF_INET && c->family != AF_INET6)
		return -EAFNOSUPPORT;
	err = ftvm_msg_init(&m, nl, FTVM_CMD_COMMIT_SET, 0);
	if (!err)
		err = ftvm_put_commit(&m, c);
	if (!err)
		err = ftvm_nl_talk(nl, &m, NULL, NULL);
	ftvm_msg_free(&m);
	return err;
}

/* Where each attribute of a COMMIT_GET reply goes, and its size. */
static void *ftvm_commit_field(struct ftvm_commit *c, int type, size_t *size)
{
	switch (type) {
	case FTVM_A_COMMIT_FAMILY:	*size = 1; return &c->family;
	case FTVM_A_COMMIT_PORT:	*size = 2; return &c->port;
	case FTVM_A_COMMIT_PROTO:	*size = 1; return &c->proto;
	case FTVM_A_COMMIT_MODE:	*size = 1; return &c->mode;
	case FTVM_A_COMMIT_CKPT_WAIT:	*size = 4; return &c->ckpt_wait_ms;
	case FTVM_A_COMMIT_SESSIONS:	*size = 4; return &c->sessions;
	case FTVM_A_COMMIT_HELD:	*size = 4; return &c->held;
	case FTVM_A_COMMIT_HELD_TOTAL:	*size = 8; return &c->held_total;
	case FTVM_A_COMMIT_RELEASED:	*size = 8; return &c->released;
	case FTVM_A_COMMIT_DROPPED:	*size = 8; return &c->dropped;
	case FTVM_A_COMMIT_COMMITS:	*size = 8; return &c->commits;
	case FTVM_A_COMMIT_NO_BACKUP:	*size = 8; return &c->no_backup;
	case FTVM_A_COMMIT_STALE:	*size = 8; return &c->stale;
	}
	return NULL;
}

/* One FTVM_A_COMMIT nest of a reply into @c; -EINVAL when malformed. */
static int ftvm_commit_parse(const struct nlattr *nest, struct ftvm_commit *c)
{
	const struct nlattr *a;
	bool addr = false;
	long rem;

	memset(c, 0, sizeof(*c));
	ftvm_nla_for_each(a, ftvm_nla_data(nest), ftvm_nla_len(nest), rem) {
		size_t len = ftvm_nla_len(a), size;
		int type = ftvm_nla_type(a);
		void *f;

		if (type == FTVM_A_COMMIT_ADDR) {
			if (len != 4 && len != 16)
				return -EINVAL;
			memcpy(c->addr, ftvm_nla_data(a), len);
			addr = true;
			continue;
		}
		f = ftvm_commit_field(c, type, &size);
		if (!f)
			continue;	/* a newer kernel's attribute, or padding */
		if (len != size)
			return -EINVAL;
		memcpy(f, ftvm_nla_data(a), size);
	}
	if (!addr || (c->family != AF_INET && c->family != AF_INET6))
		return -EINVAL;
	return 0;
}

struct ftvm_commit_dump {
	ftvm_commit_cb cb;
	void *arg;
};

static int ftvm_commit_dump_cb(const struct nlattr *attrs, size_t len,
			       void *arg)
{
	const struct ftvm_commit_dump *d = arg;
	const struct nlattr *a;
	struct ftvm_commit c;
	long rem;
	int err;

	ftvm_nla_for_each(a, attrs, len, rem) {
		if (ftvm_nla_type(a) != FTVM_A_COMMIT)
			continue;
		err = ftvm_commit_parse(a, &c);
		if (!err)
			err = d->cb(&c, d->arg);
		if (err)
			return err;
	}
	return 0;
}

/* Dump everything @cmd gives, no attributes asked, through @cb. */
static int ftvm_dump_all(struct ftvm_nl *nl, uint8_t cmd, ftvm_nl_cb cb,
			 void *arg)
{
	struct ftvm_msg m;
	int err;

	err = ftvm_msg_init(&m, nl, cmd, NLM_F_DUMP);
	if (!err)
		err = ftvm_nl_talk(nl, &m, cb, arg);
	ftvm_msg_free(&m);
	return err;
}

int ftvm_commit_get(struct ftvm_nl *nl, ftvm_commit_cb cb, void *arg)
{
	struct ftvm_commit_dump d = { cb, arg };

	return ftvm_dump_all(nl, FTVM_CMD_COMMIT_GET, ftvm_commit_dump_cb, &d);
}

struct ftvm_commit_sess_dump {
	ftvm_commit_sess_cb cb;
	void *arg;
};

static int ftvm_commit_sess_dump_cb(const struct nlattr *attrs, size_t len,
				    void *arg)
{
	const struct ftvm_commit_sess_dump *d = arg;
	struct ftvm_commit_sess cs = { .staged_ms = -1 };
	const struct nlattr *a, *b;
	bool tuple = false;
	long rem, rem2;

	ftvm_nla_for_each(a, attrs, len, rem) {
		if (ftvm_nla_type(a) == FTVM_A_TUPLE) {
			if (ftvm_rec_tuple(a, &cs.t))
				return -EINVAL;
			tuple = true;
		} else if (ftvm_nla_type(a) == FTVM_A_COMMIT) {
			ftvm_nla_for_each(b, ftvm_nla_data(a), ftvm_nla_len(a), rem2) {
				uint32_t v;

				if (ftvm_nla_len(b) != sizeof(v))
					continue;
				memcpy(&v, ftvm_nla_data(b), sizeof(v));
				if (ftvm_nla_type(b) == FTVM_A_COMMIT_HELD)
					cs.held = v;
				else if (ftvm_nla_type(b) == FTVM_A_COMMIT_STAGED_MS)
					cs.staged_ms = v;
			}
		}
	}
	return tuple ? d->cb(&cs, d->arg) : -EINVAL;
}

int ftvm_commit_sessions(struct ftvm_nl *nl, ftvm_commit_sess_cb cb, void *arg)
{
	struct ftvm_commit_sess_dump d = { cb, arg };

	return ftvm_dump_all(nl, FTVM_CMD_COMMIT_SESS_GET,
			     ftvm_commit_sess_dump_cb, &d);
}

struct ftvm_commit_match {
	const struct ftvm_commit *want;
	struct ftvm_commit *out;
	bool found;
};

static int ftvm_commit_match_cb(const struct ftvm_commit *c, void *arg)
{
	struct ftvm_commit_match *f = arg;
	const struct ftvm_commit *w = f->want;

	if (f->found || c->family != w->family || c->port != w->port ||
	    c->proto != w->proto ||
	    memcmp(c->addr, w->addr, ftvm_commit_alen(w)))
		return 0;
	*f->out = *c;
	f->found = true;
	return 0;
}

int ftvm_commit_find(struct ftvm_nl *nl, const struct ftvm_commit *c,
		     struct ftvm_commit *out)
{
	struct ftvm_commit_match f = { c, out, false };
	int err = ftvm_commit_get(nl, ftvm_commit_match_cb, &f);

	if (err)
		return err;
	return f.found ? 0 : -ENOENT;
}
