// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <linux/netlink.h>

#include "ftnl.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

static int libnl_errno(int nlerr)
{
	switch (-nlerr) {
	case NLE_OBJ_NOTFOUND:	return -ENOENT;
	case NLE_NOMEM:		return -ENOMEM;
	case NLE_PERM:		return -EPERM;
	case NLE_EXIST:		return -EEXIST;
	case NLE_INVAL:		return -EINVAL;
	case NLE_RANGE:		return -ERANGE;
	case NLE_BUSY:		return -EBUSY;
	case NLE_AGAIN:		return -EAGAIN;
	case NLE_NODEV:		return -ENODEV;
	case NLE_OPNOTSUPP:	return -EOPNOTSUPP;
	case NLE_MSGSIZE:	return -EMSGSIZE;
	case NLE_NOACCESS:	return -EACCES;
	default:		return -EIO;
	}
}

int ftnl_open(struct ftnl *nl)
{
	int one = 1, err;

	memset(nl, 0, sizeof(*nl));
	nl->events_grp = -1;
	nl->sk = nl_socket_alloc();
	if (!nl->sk)
		return -ENOMEM;
	err = genl_connect(nl->sk);
	if (err)
		goto fail;
	/* Ask for extended ACKs; harmless where the kernel lacks them. */
	setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_EXT_ACK,
		   &one, sizeof(one));
	nl->family = genl_ctrl_resolve(nl->sk, FTVM_GENL_NAME);
	if (nl->family < 0) {
		err = nl->family;
		goto fail;
	}
	nl->events_grp = genl_ctrl_resolve_grp(nl->sk, FTVM_GENL_NAME,
					       FTVM_MCGRP_EVENTS);
	return 0;
fail:
	nl_socket_free(nl->sk);
	nl->sk = NULL;
	return libnl_errno(err);
}

/*
 * After an exchange that did not end with its answer's end: libnl still
 * expects that end's sequence number, and would take every later answer
 * for one out of sequence; a dump the kernel could not go on with (no
 * memory for a batch) stays under way on the socket, stalled until
 * something else is read there, and the socket takes no other dump
 * meanwhile.  A new socket starts afresh.  Not for a socket subscribed
 * to events (ftnl_call() is not used on one).
 */
static void ftnl_reset(struct ftnl *nl)
{
	struct ftnl fresh;

	if (ftnl_open(&fresh))
		return;		/* the next request fails as it may */
	nl_socket_free(nl->sk);
	nl->sk = fresh.sk;
}

void ftnl_close(struct ftnl *nl)
{
	if (nl->sk)
		nl_socket_free(nl->sk);
	nl->sk = NULL;
}

struct nl_msg *ftnl_msg(struct ftnl *nl, uint8_t cmd, int flags)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (!msg)
		return NULL;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, nl->family, 0,
			 flags | NLM_F_REQUEST, cmd, FTVM_GENL_VERSION)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

struct call_ctx {
	struct ftnl *nl;
	int err;
	bool done;
	nl_recvmsg_msg_cb_t cb;
	void *arg;
};

/* Pull NLMSGERR_ATTR_MSG and NLMSGERR_ATTR_OFFS out of an error reply. */
static void parse_extack(struct ftnl *nl, struct nlmsgerr *e)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)((char *)e - NLMSG_HDRLEN);
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	size_t off = sizeof(*e);

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - NLMSG_HDRLEN;
	if (NLMSG_HDRLEN + off > nlh->nlmsg_len)
		return;
	if (nla_parse(tb, NLMSGERR_ATTR_MAX, (struct nlattr *)((char *)e + off),
		      nlh->nlmsg_len - NLMSG_HDRLEN - off, NULL))
		return;
	if (tb[NLMSGERR_ATTR_MSG])
		snprintf(nl->ext_msg, sizeof(nl->ext_msg), "%s",
			 nla_get_string(tb[NLMSGERR_ATTR_MSG]));
	if (tb[NLMSGERR_ATTR_OFFS])
		nl->ext_off = (int)nla_get_u32(tb[NLMSGERR_ATTR_OFFS]);
}

static int call_err(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct call_ctx *c = arg;

	(void)nla;
	c->err = e->error;
	parse_extack(c->nl, e);
	c->done = true;
	return NL_STOP;
}

static int call_finish(struct nl_msg *msg, void *arg)
{
	struct call_ctx *c = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);

	/* A dump that failed half-way ends in NLMSG_DONE with an errno. */
	if (nlh->nlmsg_type == NLMSG_DONE &&
	    nlh->nlmsg_len >= NLMSG_HDRLEN + sizeof(int)) {
		int err = *(int *)nlmsg_data(nlh);

		if (err < 0)
			c->err = err;
	}
	c->done = true;
	return NL_STOP;
}

static int call_ack(struct nl_msg *msg, void *arg)
{
	struct call_ctx *c = arg;

	(void)msg;
	c->done = true;
	return NL_STOP;
}

static int call_valid(struct nl_msg *msg, void *arg)
{
	struct call_ctx *c = arg;

	if (c->cb)
		return c->cb(msg, c->arg);
	return NL_OK;
}

int ftnl_call(struct ftnl *nl, struct nl_msg *msg, nl_recvmsg_msg_cb_t cb,
	      void *arg)
{
	struct call_ctx c = { .nl = nl, .cb = cb, .arg = arg };
	bool dump = nlmsg_hdr(msg)->nlmsg_flags & NLM_F_DUMP;
	struct nl_cb *nlcb;
	int err;

	nl->ext_msg[0] = '\0';
	nl->ext_off = 0;
	nlcb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!nlcb) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	nlmsg_hdr(msg)->nlmsg_flags |= NLM_F_ACK;
	err = nl_send_auto(nl->sk, msg);
	nlmsg_free(msg);
	if (err < 0) {
		nl_cb_put(nlcb);
		/* Nothing was sent (ENOBUFS: no memory to take it in). */
		return libnl_errno(err);
	}
	nl_cb_err(nlcb, NL_CB_CUSTOM, call_err, &c);
	nl_cb_set(nlcb, NL_CB_FINISH, NL_CB_CUSTOM, call_finish, &c);
	nl_cb_set(nlcb, NL_CB_ACK, NL_CB_CUSTOM, call_ack, &c);
	nl_cb_set(nlcb, NL_CB_VALID, NL_CB_CUSTOM, call_valid, &c);
	while (!c.done) {
		err = nl_recvmsgs(nl->sk, nlcb);
		if (err < 0 && !c.err) {
			/*
			 * libnl says NLE_NOMEM for the socket's ENOBUFS, and
			 * leaves errno as recvmsg() set it.  A message for
			 * this socket was dropped because the kernel could
			 * not allocate it: for a request, its answer, and
			 * whether it was done is unknown; for a dump, the
			 * next batch.
			 */
			if (err == -NLE_NOMEM && errno == ENOBUFS) {
				snprintf(nl->ext_msg, sizeof(nl->ext_msg), "%s",
					 dump ? "the kernel had no memory for the rest of the dump" :
					 "the kernel's answer was lost (no memory for it): the request may have been done");
				c.err = -ENOBUFS;
			} else {
				/* libnl's own, which errno says less well. */
				snprintf(nl->ext_msg, sizeof(nl->ext_msg),
					 "libnl: %s", nl_geterror(err));
				c.err = libnl_errno(err);
			}
			break;
		}
	}
	nl_cb_put(nlcb);
	/* A dump's first batch that failed is told by the ack: ENOBUFS. */
	if (!c.done || (dump && c.err == -ENOBUFS))
		ftnl_reset(nl);
	return c.err;
}

int ftnl_subscribe(struct ftnl *nl)
{
	int err;

	if (nl->events_grp < 0)
		return -ENOENT;
	nl_socket_disable_seq_check(nl->sk);
	err = nl_socket_add_membership(nl->sk, nl->events_grp);
	return err ? libnl_errno(err) : 0;
}

int ftnl_recv_events(struct ftnl *nl, nl_recvmsg_msg_cb_t cb, void *arg)
{
	int err;

	nl_socket_modify_cb(nl->sk, NL_CB_VALID, NL_CB_CUSTOM, cb, arg);
	err = nl_recvmsgs_default(nl->sk);
	return err < 0 ? libnl_errno(err) : 0;
}

const char *ftnl_strerror(struct ftnl *nl, int err)
{
	if (nl->ext_msg[0])
		return nl->ext_msg;
	return strerror(-err);
}
