// SPDX-License-Identifier: LGPL-2.1 OR MIT
/*
 * Minimal generic netlink client for the ftvm family (see nl.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

int ftvm_nl_open(struct ftvm_nl *nl)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int one = 1, rcvbuf = FTVM_NL_RCVBUF, err;
	struct ftvm_msg m;

	memset(nl, 0, sizeof(*nl));
	nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (nl->fd < 0)
		return -errno;
	setsockopt(nl->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(nl->fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	/* Privileged callers may exceed rmem_max; others get what they can. */
	if (setsockopt(nl->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		setsockopt(nl->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	setsockopt(nl->fd, SOL_SOCKET, SO_SNDBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	if (bind(nl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		goto err;
	}
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

int ftvm_nl_talk(struct ftvm_nl *nl, struct ftvm_msg *m, ftvm_nl_cb cb,
		 void *arg)
{
	struct nlmsghdr *req = (struct nlmsghdr *)m->buf;
	static __thread char *buf;
	int err = 0;

	nl->err[0] = 0;
	nl->err_off = 0;
	req->nlmsg_len = m->len;
	if (!buf) {
		buf = malloc(FTVM_NL_RCVBUF);
		if (!buf)
			return -ENOMEM;
	}
	if (send(nl->fd, m->buf, m->len, 0) < 0)
		return -errno;
	for (;;) {
		struct nlmsghdr *nlh;
		ssize_t n;

		n = recv(nl->fd, buf, FTVM_NL_RCVBUF, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (nlh = (struct nlmsghdr *)buf; NLMSG_OK(nlh, n);
		     nlh = NLMSG_NEXT(nlh, n)) {
			if (nlh->nlmsg_seq != req->nlmsg_seq)
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(nlh);

				ftvm_nl_extack(nl, nlh);
				return err ? err : e->error;
			}
			if (nlh->nlmsg_type == NLMSG_DONE) {
				const int *e = NLMSG_DATA(nlh);

				ftvm_nl_extack(nl, nlh);
				return err ? err : *e;
			}
			if (cb && !err)
				err = cb((const struct nlattr *)((char *)NLMSG_DATA(nlh) + GENL_HDRLEN),
					 nlh->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN, arg);
		}
	}
}
