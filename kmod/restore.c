// SPDX-License-Identifier: GPL-2.0
/*
 * Session restore: rebuild captured connections in a VM's namespace and
 * hand them to the service's listening socket, as if the client had
 * just connected, so that an unmodified server accept()s them.
 *
 * A request's records are restored all or none, in three steps:
 *
 *  parse	every record is checked (format version, required fields,
 *		addresses, windows, queue lengths) and copied out of the
 *		message;
 *  build	each connection is rebuilt in TCP repair mode, exactly as
 *		captured (sequence numbers, options, windows, timestamps,
 *		both queues), and bound to its 5-tuple, which fails if the
 *		tuple is in use; the listener is found and a request sock
 *		allocated for the accept queue.  A socket in repair mode
 *		sends nothing, and closing it sends nothing either, so
 *		undoing a build is invisible to the client;
 *  commit	repair mode is left and each connection is queued on its
 *		listener: nothing in this step allocates or can fail,
 *		unless the listener is closed at that very moment (then
 *		its queued connections would be reset anyway).
 *
 * Staged records (FTVM_SNAP_F_STAGE) stop after the parse: they are kept,
 * parsed and compact, in the target namespace's store (stage.c) until an
 * activation builds and commits them, or a discard drops them.
 */
#include <linux/net.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <net/inet_connection_sock.h>
#include <net/inet_hashtables.h>
#include <net/inet6_hashtables.h>
#include <net/request_sock.h>
#include <net/tcp.h>
#include <net/udp.h>

#include "uapi/ftvm.h"
#include "hold.h"
#include "netlink.h"
#include "restore.h"
#include "state.h"

/*
 * After a grace period: a staged record may be found by the ingress
 * hold's lockless lookup (ftvm_stage_has()) until then; one that never
 * was staged waits for nothing but costs the same.  @r is off every
 * list: its rcu_head is its list node.
 */
void ftvm_rec_free(struct ftvm_rec *r)
{
	kvfree_rcu(r, rcu);
}

void ftvm_recs_free(struct list_head *list)
{
	struct ftvm_rec *r, *tmp;

	list_for_each_entry_safe(r, tmp, list, node) {
		list_del(&r->node);
		ftvm_rec_free(r);
	}
}

/* Parse. */

static const u16 ftvm_tcp_required[] = {
	FTVM_A_TCP_STATE, FTVM_A_TCP_SND_UNA, FTVM_A_TCP_SNDQ_LEN,
	FTVM_A_TCP_COPIED_SEQ, FTVM_A_TCP_RCVQ_LEN, FTVM_A_TCP_SND_WL1,
	FTVM_A_TCP_SND_WND, FTVM_A_TCP_MAX_WINDOW, FTVM_A_TCP_RCV_WND,
	FTVM_A_TCP_RCV_WUP, FTVM_A_TCP_MSS, FTVM_A_TCP_SND_WSCALE,
	FTVM_A_TCP_RCV_WSCALE, FTVM_A_TCP_OPTS, FTVM_A_TCP_TS_VAL,
};

static int ftvm_rec_parse_tcp(struct nlattr *nest, struct ftvm_rec *r,
			      struct netlink_ext_ack *extack)
{
	struct nlattr *tb[FTVM_A_TCP_MAX + 1];
	unsigned int i;
	int err;

	/* Validated with ftvm_tcp_policy already (see ftvm_rec_parse()). */
	err = nla_parse_nested(tb, FTVM_A_TCP_MAX, nest, NULL, extack);
	if (err)
		return err;
	for (i = 0; i < ARRAY_SIZE(ftvm_tcp_required); i++)
		if (NL_REQ_ATTR_CHECK(extack, nest, tb, ftvm_tcp_required[i])) {
			NL_SET_ERR_MSG(extack, "TCP state incomplete");
			return -EINVAL;
		}
	if (nla_get_u8(tb[FTVM_A_TCP_STATE]) != TCP_ESTABLISHED) {
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_TCP_STATE],
				    "only established connections can be restored");
		return -EINVAL;
	}
	r->snd_una = nla_get_u32(tb[FTVM_A_TCP_SND_UNA]);
	r->sndq_len = nla_get_u32(tb[FTVM_A_TCP_SNDQ_LEN]);
	r->copied_seq = nla_get_u32(tb[FTVM_A_TCP_COPIED_SEQ]);
	r->rcvq_len = nla_get_u32(tb[FTVM_A_TCP_RCVQ_LEN]);
	r->snd_wl1 = nla_get_u32(tb[FTVM_A_TCP_SND_WL1]);
	r->snd_wnd = nla_get_u32(tb[FTVM_A_TCP_SND_WND]);
	r->max_window = nla_get_u32(tb[FTVM_A_TCP_MAX_WINDOW]);
	r->rcv_wnd = nla_get_u32(tb[FTVM_A_TCP_RCV_WND]);
	r->rcv_wup = nla_get_u32(tb[FTVM_A_TCP_RCV_WUP]);
	r->mss = nla_get_u16(tb[FTVM_A_TCP_MSS]);
	r->snd_wscale = nla_get_u8(tb[FTVM_A_TCP_SND_WSCALE]);
	r->rcv_wscale = nla_get_u8(tb[FTVM_A_TCP_RCV_WSCALE]);
	r->opts = nla_get_u32(tb[FTVM_A_TCP_OPTS]);
	r->ts_val = nla_get_u32(tb[FTVM_A_TCP_TS_VAL]);
	if (tb[FTVM_A_TCP_SNDBUF])
		r->sndbuf = nla_get_u32(tb[FTVM_A_TCP_SNDBUF]);
	if (tb[FTVM_A_TCP_RCVBUF])
		r->rcvbuf = nla_get_u32(tb[FTVM_A_TCP_RCVBUF]);
	/* Optional: records of an ftvm.ko that did not write them. */
	if (tb[FTVM_A_TCP_SRTT_US])
		r->srtt_us = nla_get_u32(tb[FTVM_A_TCP_SRTT_US]);
	if (tb[FTVM_A_TCP_RTTVAR_US])
		r->rttvar_us = nla_get_u32(tb[FTVM_A_TCP_RTTVAR_US]);
	if (tb[FTVM_A_TCP_SND_CWND])
		r->cwnd = nla_get_u32(tb[FTVM_A_TCP_SND_CWND]);
	if (tb[FTVM_A_TCP_SND_SSTHRESH])
		r->ssthresh = nla_get_u32(tb[FTVM_A_TCP_SND_SSTHRESH]);
	if (r->sndq_len > FTVM_QUEUE_MAX || r->rcvq_len > FTVM_QUEUE_MAX) {
		NL_SET_ERR_MSG_ATTR(extack, nest, "queue larger than 16 MiB");
		return -EFBIG;
	}
	if (r->max_window < r->snd_wnd ||
	    after(r->rcv_wup, ftvm_rec_rcv_end(r)) ||
	    after(r->snd_wl1, ftvm_rec_rcv_end(r) + r->rcv_wnd)) {
		NL_SET_ERR_MSG_ATTR(extack, nest,
				    "windows inconsistent with the sequence numbers");
		return -EINVAL;
	}
	return 0;
}

static const u16 ftvm_tuple_required[] = {
	FTVM_A_SESS_PROTO, FTVM_A_SESS_FAMILY, FTVM_A_SESS_LADDR,
	FTVM_A_SESS_RADDR, FTVM_A_SESS_LPORT, FTVM_A_SESS_RPORT,
};

/* The 5-tuple of a record or a name, split out in @tb, into zeroed @t. */
static int ftvm_tuple_get(struct nlattr **tb, const struct nlattr *nest,
			  struct ftvm_tuple *t, struct netlink_ext_ack *extack)
{
	unsigned int i, alen;

	for (i = 0; i < ARRAY_SIZE(ftvm_tuple_required); i++)
		if (NL_REQ_ATTR_CHECK(extack, nest, tb, ftvm_tuple_required[i])) {
			NL_SET_ERR_MSG(extack, "the session's 5-tuple is incomplete");
			return -EINVAL;
		}
	t->proto = nla_get_u8(tb[FTVM_A_SESS_PROTO]);
	t->family = nla_get_u8(tb[FTVM_A_SESS_FAMILY]);
	if (t->proto != IPPROTO_TCP && t->proto != IPPROTO_UDP) {
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_SESS_PROTO],
				    "protocol must be TCP or UDP");
		return -EPROTONOSUPPORT;
	}
	if (t->family == AF_INET) {
		alen = 4;
	} else if (t->family == AF_INET6 && IS_ENABLED(CONFIG_IPV6)) {
		alen = 16;
	} else {
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_SESS_FAMILY],
				    "address family must be AF_INET or AF_INET6");
		return -EAFNOSUPPORT;
	}
	if (nla_len(tb[FTVM_A_SESS_LADDR]) != alen ||
	    nla_len(tb[FTVM_A_SESS_RADDR]) != alen) {
		NL_SET_ERR_MSG_ATTR(extack, nla_len(tb[FTVM_A_SESS_LADDR]) != alen ?
				    tb[FTVM_A_SESS_LADDR] : tb[FTVM_A_SESS_RADDR],
				    "address length does not match the family");
		return -EINVAL;
	}
	nla_memcpy(&t->laddr, tb[FTVM_A_SESS_LADDR], alen);
	nla_memcpy(&t->raddr, tb[FTVM_A_SESS_RADDR], alen);
	t->lport = nla_get_u16(tb[FTVM_A_SESS_LPORT]);
	t->rport = nla_get_u16(tb[FTVM_A_SESS_RPORT]);
	if (!t->lport || (t->proto == IPPROTO_TCP && !t->rport)) {
		NL_SET_ERR_MSG_ATTR(extack, nest, "port 0 in a connection");
		return -EINVAL;
	}
	return 0;
}

/*
 * An FTVM_A_TUPLE nest (a session's name), validated against
 * ftvm_tuple_policy by the core, into @t.
 */
int ftvm_tuple_parse(const struct nlattr *nest, struct ftvm_tuple *t,
		     struct netlink_ext_ack *extack)
{
	struct nlattr *tb[FTVM_A_SESS_MAX + 1];
	int err;

	memset(t, 0, sizeof(*t));
	err = nla_parse_nested(tb, FTVM_A_SESS_MAX, nest, NULL, extack);
	if (err)
		return err;
	return ftvm_tuple_get(tb, nest, t, extack);
}

/* Parse one FTVM_A_SESSION nest into a new record. */
static struct ftvm_rec *ftvm_rec_parse(struct nlattr *nest,
				       struct netlink_ext_ack *extack)
{
	struct nlattr *tb[FTVM_A_SESS_MAX + 1];
	struct ftvm_rec tmp = {}, *r;
	int err;

	/*
	 * The core validated every record of the request, nested
	 * attributes included, against ftvm_session_policy (strictly)
	 * before the handler ran: only split the attributes out here.
	 */
	err = nla_parse_nested(tb, FTVM_A_SESS_MAX, nest, NULL, extack);
	if (err)
		return ERR_PTR(err);
	if (NL_REQ_ATTR_CHECK(extack, nest, tb, FTVM_A_SESS_VERSION)) {
		NL_SET_ERR_MSG_ATTR(extack, nest, "record without a format version");
		return ERR_PTR(-EINVAL);
	}
	if (nla_get_u8(tb[FTVM_A_SESS_VERSION]) != FTVM_STATE_VERSION) {
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_SESS_VERSION],
				    "record format version not supported");
		return ERR_PTR(-EPROTONOSUPPORT);
	}
	err = ftvm_tuple_get(tb, nest, &tmp.key, extack);
	if (err)
		return ERR_PTR(err);
	if (tmp.key.proto == IPPROTO_TCP) {
		if (NL_REQ_ATTR_CHECK(extack, nest, tb, FTVM_A_SESS_TCP)) {
			NL_SET_ERR_MSG(extack, "TCP record without its TCP state");
			return ERR_PTR(-EINVAL);
		}
		err = ftvm_rec_parse_tcp(tb[FTVM_A_SESS_TCP], &tmp, extack);
		if (err)
			return ERR_PTR(err);
	} else if (tb[FTVM_A_SESS_TCP]) {
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_SESS_TCP],
				    "TCP state in a UDP record");
		return ERR_PTR(-EINVAL);
	}
	if (tb[FTVM_A_SESS_BLOB])
		tmp.blob_len = nla_len(tb[FTVM_A_SESS_BLOB]);
	if (tb[FTVM_A_SESS_COOKIE])
		tmp.src_cookie = nla_get_u64(tb[FTVM_A_SESS_COOKIE]);
	if (tb[FTVM_A_SESS_FLAGS])
		tmp.stale = !!(nla_get_u32(tb[FTVM_A_SESS_FLAGS]) & FTVM_SESS_F_STALE);
	if (tmp.blob_len && tmp.key.proto != IPPROTO_TCP) {
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_SESS_BLOB],
				    "application state is kept for TCP sessions only");
		return ERR_PTR(-EINVAL);
	}

	r = kvmalloc(struct_size(r, data, (size_t)tmp.sndq_len + tmp.rcvq_len +
				 tmp.blob_len), GFP_KERNEL_ACCOUNT);
	if (!r)
		return ERR_PTR(-ENOMEM);
	*r = tmp;
	r->attr = nest;
	if (tmp.blob_len)
		nla_memcpy(r->data + r->sndq_len + r->rcvq_len,
			   tb[FTVM_A_SESS_BLOB], r->blob_len);
	return r;
}

/* @got: the queue bytes of @r so far, send then receive queue. */
static int ftvm_rec_fill(struct ftvm_rec *r, u32 got[2], struct nlattr *a,
			 struct netlink_ext_ack *extack)
{
	bool snd = nla_type(a) == FTVM_A_SNDQ;
	u32 *gotq = snd ? &got[0] : &got[1];
	u32 len = snd ? r->sndq_len : r->rcvq_len;
	u8 *dst = r->data + (snd ? 0 : r->sndq_len);

	if (nla_len(a) > len - *gotq) {
		NL_SET_ERR_MSG_ATTR(extack, a, "more queue bytes than the record declares");
		return -EINVAL;
	}
	memcpy(dst + *gotq, nla_data(a), nla_len(a));
	*gotq += nla_len(a);
	return 0;
}

static int ftvm_rec_complete(struct ftvm_rec *r, const u32 got[2],
			     struct netlink_ext_ack *extack)
{
	if (got[0] != r->sndq_len || got[1] != r->rcvq_len) {
		NL_SET_ERR_MSG_ATTR(extack, r->attr,
				    "record truncated: queue bytes missing");
		return -EINVAL;
	}
	return 0;
}

/* Parse every record of the request onto @list. */
static int ftvm_recs_parse(struct genl_info *info, struct list_head *list,
			   unsigned int *n)
{
	struct netlink_ext_ack *extack = info->extack;
	struct ftvm_rec *r = NULL;
	u32 got[2] = {};		/* r's queue bytes so far */
	struct nlattr *a;
	int rem, err;

	*n = 0;
	nla_for_each_attr(a, genlmsg_data(info->genlhdr),
			  genlmsg_len(info->genlhdr), rem) {
		switch (nla_type(a)) {
		case FTVM_A_SESSION:
			if (r) {
				err = ftvm_rec_complete(r, got, extack);
				if (err)
					goto err;
			}
			got[0] = got[1] = 0;
			r = ftvm_rec_parse(a, extack);
			if (IS_ERR(r)) {
				err = PTR_ERR(r);
				goto err;
			}
			list_add_tail(&r->node, list);
			(*n)++;
			break;
		case FTVM_A_SNDQ:
		case FTVM_A_RCVQ:
			if (!r) {
				NL_SET_ERR_MSG_ATTR(extack, a, "queue bytes before any record");
				err = -EINVAL;
				goto err;
			}
			err = ftvm_rec_fill(r, got, a, extack);
			if (err)
				goto err;
			break;
		}
	}
	if (!r) {
		NL_SET_ERR_MSG(extack, "no session record (FTVM_A_SESSION)");
		err = -EINVAL;
		goto err;
	}
	err = ftvm_rec_complete(r, got, extack);
	if (err)
		goto err;
	return 0;
err:
	ftvm_recs_free(list);
	return err;
}

/* Build. */

static int ftvm_tcp_opt(struct socket *sock, int opt, const void *val,
			unsigned int len)
{
	return sock->ops->setsockopt(sock, SOL_TCP, opt,
				     KERNEL_SOCKPTR((void *)val), len);
}

static int ftvm_tcp_opt_int(struct socket *sock, int opt, int val)
{
	return ftvm_tcp_opt(sock, opt, &val, sizeof(val));
}

bool ftvm_tuple_mapped(const struct ftvm_tuple *t)
{
	return t->family == AF_INET6 && ipv6_addr_v4mapped(&t->laddr.v6);
}

/* @t as on the wire: an IPv4 session of an IPv6 socket is IPv4. */
void ftvm_tuple_wire(const struct ftvm_tuple *t, struct ftvm_tuple *w)
{
	if (!ftvm_tuple_mapped(t)) {
		*w = *t;
		return;
	}
	memset(w, 0, sizeof(*w));
	w->family = AF_INET;
	w->proto = t->proto;
	w->laddr.v4 = t->laddr.v6.s6_addr32[3];
	w->raddr.v4 = t->raddr.v6.s6_addr32[3];
	w->lport = t->lport;
	w->rport = t->rport;
}

/* The other way: IPv4 @t as an IPv6 socket has it, mapped, into @m. */
void ftvm_tuple_to_mapped(const struct ftvm_tuple *t, struct ftvm_tuple *m)
{
	memset(m, 0, sizeof(*m));
	m->family = AF_INET6;
	m->proto = t->proto;
	ipv6_addr_set_v4mapped(t->laddr.v4, &m->laddr.v6);
	ipv6_addr_set_v4mapped(t->raddr.v4, &m->raddr.v6);
	m->lport = t->lport;
	m->rport = t->rport;
}

/* The listener a SYN of @r coming in on device @dif would find.  RCU. */
static struct sock *ftvm_listener_dev(struct net *net,
				      const struct ftvm_rec *r, int dif)
{
	struct inet_hashinfo *h = net->ipv4.tcp_death_row.hashinfo;
	struct sock *sk = NULL;

	if (r->key.family == AF_INET || ftvm_tuple_mapped(&r->key)) {
		__be32 l = r->key.family == AF_INET ? r->key.laddr.v4 : r->key.laddr.v6.s6_addr32[3];
		__be32 p = r->key.family == AF_INET ? r->key.raddr.v4 : r->key.raddr.v6.s6_addr32[3];

		sk = __inet_lookup_listener(net, h, NULL, 0, p, htons(r->key.rport),
					    l, r->key.lport, dif, 0);
	}
#if IS_ENABLED(CONFIG_IPV6)
	else
		sk = inet6_lookup_listener(net, h, NULL, 0, &r->key.raddr.v6,
					   htons(r->key.rport), &r->key.laddr.v6,
					   r->key.lport, dif, 0);
#endif
	return IS_ERR(sk) ? NULL : sk;
}

/*
 * The service's listener for @r in @net, referenced, or NULL: the one
 * bound to no device, else (SO_BINDTODEVICE) the first device of @net
 * whose SYN would find one, as for ftvm_sock_lookup().
 */
static struct sock *ftvm_listener(struct net *net, const struct ftvm_rec *r)
{
	struct net_device *dev;
	struct sock *sk;

	rcu_read_lock();
	sk = ftvm_listener_dev(net, r, 0);
	if (!sk)
		for_each_netdev_rcu(net, dev) {
			sk = ftvm_listener_dev(net, r, dev->ifindex);
			if (sk)
				break;
		}
	if (sk && (sk->sk_state != TCP_LISTEN ||
		   sk->sk_protocol != IPPROTO_TCP ||
		   !refcount_inc_not_zero(&sk->sk_refcnt)))
		sk = NULL;
	rcu_read_unlock();
	return sk;
}

static int ftvm_addr(const struct ftvm_rec *r, bool local,
		     struct sockaddr_storage *ss)
{
	const union ftvm_addr *a = local ? &r->key.laddr : &r->key.raddr;
	u16 port = local ? r->key.lport : r->key.rport;
	struct sockaddr_in6 *sin6;

	memset(ss, 0, sizeof(*ss));
	if (r->key.family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = a->v4;
		sin->sin_port = htons(port);
		return sizeof(*sin);
	}
	sin6 = (struct sockaddr_in6 *)ss;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_addr = a->v6;
	sin6->sin6_port = htons(port);
	return sizeof(*sin6);
}

/* Queue @len bytes on the queue repair mode selected. */
static int ftvm_queue(struct socket *sock, const u8 *data, u32 len)
{
	while (len) {
		struct msghdr msg = { .msg_flags = MSG_DONTWAIT };
		struct kvec iov = { .iov_base = (void *)data, .iov_len = len };
		int n;

		n = kernel_sendmsg(sock, &msg, &iov, 1, len);
		if (n < 0)
			return n;
		if (!n)
			return -ENOBUFS;
		data += n;
		len -= n;
	}
	return 0;
}

/*
 * What TCP_REPAIR, TCP_REPAIR_QUEUE and TCP_QUEUE_SEQ (both queues) do
 * on a new socket, in one socket-lock section.  lock_sock(sk) held.
 */
static int ftvm_repair_seqs(struct sock *sk, const struct ftvm_rec *r)
{
	struct tcp_sock *tp = tcp_sk(sk);

	if (!sockopt_ns_capable(sock_net(sk)->user_ns, CAP_NET_ADMIN) ||
	    sk->sk_state != TCP_CLOSE)
		return -EPERM;
	tp->repair = 1;
	sk->sk_reuse = SK_FORCE_REUSE;
	/* A new socket: nothing sent, nothing received. */
	WRITE_ONCE(tp->write_seq, r->snd_una);
	WRITE_ONCE(tp->rcv_nxt, r->copied_seq);
	WRITE_ONCE(tp->copied_seq, r->copied_seq);
	tp->repair_queue = TCP_NO_QUEUE;
	return 0;
}

/*
 * What no repair option can set: the RTT estimate and the congestion
 * window, so that the connection goes on at the pace it had, on the
 * same path (the host's), not from the initial window and a 1 s RTO
 * as a new one would.  connect() in repair mode initialised both
 * (tcp_init_transfer()); the congestion control's own state starts
 * afresh from the window.  As tcp_rtt_estimator() and tcp_set_rto()
 * keep them: srtt_us scaled by 8, mdev_us by 4; each at most the
 * longest RTO, so that their sum cannot wrap to a short one (the
 * policy took what the fields can hold; no sample is that long).  The
 * policy also keeps the window positive as an int.  lock_sock(sk)
 * held.
 */
static void ftvm_repair_cong(struct sock *sk, const struct ftvm_rec *r)
{
	const u32 most = jiffies_to_usecs(TCP_RTO_MAX);
	struct tcp_sock *tp = tcp_sk(sk);

	if (r->srtt_us) {
		tp->srtt_us = min(r->srtt_us, most) << 3;
		tp->mdev_us = min(r->rttvar_us, most) << 2;
		tp->mdev_max_us = max(tp->mdev_us, tcp_rto_min_us(sk));
		tp->rttvar_us = tp->mdev_max_us;
		tp->rtt_seq = tp->snd_nxt;
		inet_csk(sk)->icsk_rto = __tcp_set_rto(tp);
		tcp_bound_rto(sk);
	}
	if (r->cwnd) {
		tcp_snd_cwnd_set(tp, min(r->cwnd, tp->snd_cwnd_clamp));
		tp->snd_cwnd_stamp = tcp_jiffies32;
	}
	if (r->ssthresh)
		tp->snd_ssthresh = max(r->ssthresh, 2U);
}

/*
 * What TCP_REPAIR_OPTIONS (MSS, window scaling, SACK, timestamps) and
 * TCP_TIMESTAMP do on the connected socket in repair mode, the buffer
 * sizes, and the RTT estimate and congestion window.  lock_sock(sk)
 * held.
 */
static int ftvm_repair_opts(struct sock *sk, const struct ftvm_rec *r)
{
	struct tcp_sock *tp = tcp_sk(sk);

	if (sk->sk_state != TCP_ESTABLISHED || tp->bytes_sent)
		return -EPERM;
	tp->rx_opt.mss_clamp = r->mss;
	tcp_mtup_init(sk);
	if (r->opts & FTVM_TCP_OPT_WSCALE) {
		/* At most TCP_MAX_WSCALE: the policy checked. */
		tp->rx_opt.snd_wscale = r->snd_wscale;
		tp->rx_opt.rcv_wscale = r->rcv_wscale;
		tp->rx_opt.wscale_ok = 1;
	}
	if (r->opts & FTVM_TCP_OPT_SACK)
		tp->rx_opt.sack_ok |= TCP_SACK_SEEN;
	if (r->opts & FTVM_TCP_OPT_TSTAMP) {
		u64 now = tcp_clock_ns();

		tp->rx_opt.tstamp_ok = 1;
		/*
		 * The offset, and the socket's clock cache with it (what
		 * tcp_mstamp_refresh() does): a segment sent before anything
		 * refreshes the cache (a nudge's ACK; connect() set it, a
		 * moment ago) takes its TSval from it, and with the cache
		 * older than the offset's reading it would carry less than
		 * r->ts_val, less than the peer saw: its PAWS check drops it.
		 */
		tp->tcp_clock_cache = now;
		tp->tcp_mstamp = div_u64(now, NSEC_PER_USEC);
		WRITE_ONCE(tp->tsoffset, r->ts_val - (u32)tcp_ns_to_ts(now));
	}
	/* Room for the queues (never less than the original had). */
	WRITE_ONCE(sk->sk_sndbuf, max3(sk->sk_sndbuf, (int)min_t(u32, r->sndbuf, INT_MAX),
				       (int)(2 * r->sndq_len + SKB_TRUESIZE(0))));
	WRITE_ONCE(sk->sk_rcvbuf, max3(sk->sk_rcvbuf, (int)min_t(u32, r->rcvbuf, INT_MAX),
				       (int)(2 * r->rcvq_len + SKB_TRUESIZE(0))));
	ftvm_repair_cong(sk, r);
	return 0;
}

/* What TCP_REPAIR_QUEUE does: the queue sendmsg() fills next. */
static void ftvm_repair_queue(struct sock *sk, int queue)
{
	lock_sock(sk);
	tcp_sk(sk)->repair_queue = queue;
	release_sock(sk);
}

/* What TCP_REPAIR_WINDOW does, checks included.  lock_sock(sk) held. */
static int ftvm_repair_window(struct sock *sk, const struct ftvm_rec *r)
{
	struct tcp_sock *tp = tcp_sk(sk);

	if (r->max_window < r->snd_wnd ||
	    after(r->snd_wl1, tp->rcv_nxt + r->rcv_wnd) ||
	    after(r->rcv_wup, tp->rcv_nxt))
		return -EINVAL;
	tp->snd_wl1 = r->snd_wl1;
	tp->snd_wnd = r->snd_wnd;
	tp->max_window = r->max_window;
	tp->rcv_wnd = r->rcv_wnd;
	tp->rcv_wup = r->rcv_wup;
	return 0;
}

/*
 * Rebuild one connection.  The TCP repair socket options are applied
 * directly, with their checks, in three socket-lock sections (before
 * bind, after connect, after the queues) instead of one option at a
 * time; the queues go through sendmsg() in repair mode as with the
 * options (tcp_send_rcvq() for the receive queue).  The result is the
 * socket those options would have built.
 */
static int ftvm_rec_build_tcp(struct net *net, struct ftvm_rec *r,
			      struct netlink_ext_ack *extack)
{
	struct sockaddr_storage ss;
	struct socket *sock;
	struct sock *sk;
	int len, err;

	r->listener = ftvm_listener(net, r);
	if (!r->listener) {
		NL_SET_ERR_MSG_ATTR(extack, r->attr,
				    "no listening socket for the session's service in the VM");
		return -ECONNREFUSED;
	}
	r->req = inet_reqsk_alloc(r->listener->sk_prot->rsk_prot, r->listener,
				  true);
	if (!r->req)
		return -ENOMEM;
	tcp_rsk(r->req)->tfo_listener = false;

	/* A user socket (it is accept()ed), counting its namespace. */
	err = __sock_create(net, r->key.family, SOCK_STREAM, IPPROTO_TCP, &sock, 0);
	if (err)
		return err;
	r->sock = sock;
	sk = sock->sk;
	/* Bound to its listener's device, as an accepted connection is. */
	if (r->listener->sk_bound_dev_if) {
		err = sock_bindtoindex(sk, r->listener->sk_bound_dev_if, true);
		if (err) {
			NL_SET_ERR_MSG_ATTR(extack, r->attr,
					    "cannot bind the session to its listener's device");
			return err;
		}
	}

	lock_sock(sk);
	err = ftvm_repair_seqs(sk, r);
	release_sock(sk);
	if (err) {
		NL_SET_ERR_MSG(extack, "TCP repair needs CAP_NET_ADMIN in the VM's namespace");
		return err;
	}

	len = ftvm_addr(r, true, &ss);
	err = kernel_bind(sock, (struct sockaddr *)&ss, len);
	if (err) {
		NL_SET_ERR_MSG_ATTR(extack, r->attr,
				    "cannot bind the session's address in the VM");
		return err;
	}
	len = ftvm_addr(r, false, &ss);
	err = kernel_connect(sock, (struct sockaddr *)&ss, len, 0);
	if (err == -EADDRNOTAVAIL || err == -EADDRINUSE || err == -EISCONN) {
		NL_SET_ERR_MSG_ATTR(extack, r->attr,
				    "the session's 5-tuple is already in use in the VM");
		return -EADDRINUSE;
	}
	if (err) {
		NL_SET_ERR_MSG_ATTR(extack, r->attr,
				    "cannot connect the session in the VM");
		return err;
	}

	lock_sock(sk);
	err = ftvm_repair_opts(sk, r);
	release_sock(sk);
	if (err)
		return err;

	if (r->rcvq_len) {
		ftvm_repair_queue(sk, TCP_RECV_QUEUE);
		err = ftvm_queue(sock, r->data + r->sndq_len, r->rcvq_len);
		if (err)
			return err;
	}
	if (r->sndq_len) {
		ftvm_repair_queue(sk, TCP_SEND_QUEUE);
		err = ftvm_queue(sock, r->data, r->sndq_len);
		if (err)
			return err;
	}

	lock_sock(sk);
	tcp_sk(sk)->repair_queue = TCP_NO_QUEUE;
	err = ftvm_repair_window(sk, r);
	if (err) {
		release_sock(sk);
		NL_SET_ERR_MSG_ATTR(extack, r->attr, "the windows were refused");
		return err;
	}
	if (r->blob_len) {
		err = ftvm_state_attach(sk, r->data + r->sndq_len + r->rcvq_len,
					r->blob_len, &r->cookie);
		if (err)
			r->cookie = 0;
	}
	release_sock(sk);
	return err;
}

/* A UDP session is its binding: the service must have it in the VM. */
static int ftvm_rec_build_udp(struct net *net, struct ftvm_rec *r,
			      struct netlink_ext_ack *extack)
{
	struct udp_hslot *hslot = udp_hashslot(&udp_table, net, r->key.lport);
	bool found = false;
	struct sock *sk;

	spin_lock_bh(&hslot->lock);
	sk_for_each(sk, &hslot->head)
		if (net_eq(sock_net(sk), net) && sk->sk_num == r->key.lport) {
			found = true;
			break;
		}
	spin_unlock_bh(&hslot->lock);
	if (!found) {
		NL_SET_ERR_MSG_ATTR(extack, r->attr,
				    "no UDP socket bound to the session's port in the VM");
		return -ECONNREFUSED;
	}
	return 0;
}

/* Undo a build: nothing reaches the client (repair mode). */
static void ftvm_rec_unbuild(struct net *net, struct ftvm_rec *r)
{
	if (r->cookie)
		ftvm_state_detach(net, r->cookie);
	r->cookie = 0;
	if (r->sock)
		sock_release(r->sock);
	r->sock = NULL;
	if (r->req)
		reqsk_free(r->req);
	r->req = NULL;
	if (r->listener)
		sock_put(r->listener);
	r->listener = NULL;
}

/*
 * Take the socket away from its struct socket without closing it, the
 * way a listener's child is before accept() grafts it.
 */
static struct sock *ftvm_sock_detach(struct socket *sock)
{
	struct sock *sk = sock->sk;

	write_lock_bh(&sk->sk_callback_lock);
	RCU_INIT_POINTER(sk->sk_wq, NULL);
	sk_set_socket(sk, NULL);
	write_unlock_bh(&sk->sk_callback_lock);
	sock->sk = NULL;
	sock_release(sock);
	return sk;
}

/*
 * Make a built connection live and queue it on its listener; @quiet:
 * without the window probe (the caller nudges it).
 */
static void ftvm_rec_commit(struct net *net, struct ftvm_rec *r, bool quiet)
{
	struct sock *lsk = r->listener;
	struct sock *sk;
	bool queued;

	if (r->key.proto != IPPROTO_TCP)
		return;
	ftvm_tcp_opt_int(r->sock, TCP_REPAIR,
			 quiet ? TCP_REPAIR_OFF_NO_WP : TCP_REPAIR_OFF);
	sk = ftvm_sock_detach(r->sock);
	r->sock = NULL;
	refcount_set(&r->req->rsk_refcnt, 1);
	sock_hold(sk);
	local_bh_disable();
	bh_lock_sock(sk);
	queued = inet_csk_reqsk_queue_add(lsk, r->req, sk);
	bh_unlock_sock(sk);
	local_bh_enable();
	if (queued) {
		lsk->sk_data_ready(lsk);
	} else {
		/* The listener closed this instant; it reset the child. */
		reqsk_put(r->req);
		if (r->cookie)
			ftvm_state_detach(net, r->cookie);
	}
	r->req = NULL;
	r->cookie = 0;
	sock_put(sk);
	sock_put(lsk);
	r->listener = NULL;
}

/*
 * Build every record of @list in @net, then commit them all (@quiet:
 * FTVM_SNAP_F_QUIET); on any failure undo every build and return the
 * error, leaving @list as it was.  Returns the number of records
 * restored.
 */
int ftvm_recs_restore(struct net *net, struct list_head *list, bool quiet,
		      struct netlink_ext_ack *extack)
{
	struct ftvm_rec *r, *failed = NULL;
	int n = 0, err = 0;

	list_for_each_entry(r, list, node) {
		if (r->key.proto == IPPROTO_TCP)
			err = ftvm_rec_build_tcp(net, r, extack);
		else
			err = ftvm_rec_build_udp(net, r, extack);
		if (err) {
			failed = r;
			break;
		}
		cond_resched();
	}
	/* A listener that went away since its record was built. */
	if (!err)
		list_for_each_entry(r, list, node)
			if (r->listener && READ_ONCE(r->listener->sk_state) != TCP_LISTEN) {
				NL_SET_ERR_MSG_ATTR(extack, r->attr,
						    "the service's listener closed during the restore");
				err = -ECONNREFUSED;
				break;
			}
	if (err) {
		list_for_each_entry(r, list, node) {
			ftvm_rec_unbuild(net, r);
			if (r == failed)
				break;
		}
		return err;
	}
	list_for_each_entry(r, list, node) {
		ftvm_rec_commit(net, r, quiet);
		n++;
	}
	return n;
}

/* Requests. */

/* The size of an FTVM_A_TUPLE nest (ftvm_tuple_put()). */
#define FTVM_TUPLE_SIZE							\
	nla_total_size(2 * nla_total_size(sizeof(u8)) +			\
		       2 * nla_total_size(sizeof(struct in6_addr)) +	\
		       2 * nla_total_size(sizeof(u16)))

/* An FTVM_A_TUPLE nest naming session @t. */
int ftvm_tuple_put(struct sk_buff *skb, const struct ftvm_tuple *t)
{
	int alen = t->family == AF_INET ? 4 : 16;
	struct nlattr *nest = nla_nest_start(skb, FTVM_A_TUPLE);

	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u8(skb, FTVM_A_SESS_FAMILY, t->family) ||
	    nla_put_u8(skb, FTVM_A_SESS_PROTO, t->proto) ||
	    nla_put(skb, FTVM_A_SESS_LADDR, alen, &t->laddr) ||
	    nla_put(skb, FTVM_A_SESS_RADDR, alen, &t->raddr) ||
	    nla_put_u16(skb, FTVM_A_SESS_LPORT, t->lport) ||
	    nla_put_u16(skb, FTVM_A_SESS_RPORT, t->rport)) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

/*
 * A reply to a restore, an activation, a nudge or a retire, with room
 * for @tuples session names: allocated before the request changes
 * anything, so that it never fails once it has.
 */
struct sk_buff *ftvm_restore_reply_new(unsigned int tuples)
{
	return genlmsg_new(nla_total_size(2 * nla_total_size(sizeof(u32))) +
			   tuples * FTVM_TUPLE_SIZE, GFP_KERNEL);
}

/*
 * Fill @msg (from ftvm_restore_reply_new(), with room for the records of
 * @named): FTVM_A_SNAP { COUNT, STAGED (if @staged) }, then, if @named,
 * an FTVM_A_TUPLE naming each record on it.
 */
void ftvm_restore_reply_fill(struct sk_buff *msg, struct genl_info *info,
			     u8 cmd, u32 count, const u32 *staged,
			     const struct list_head *named)
{
	const struct ftvm_rec *r;
	struct nlattr *nest;
	void *hdr;

	hdr = genlmsg_put_reply(msg, info, &ftvm_genl_family, 0, cmd);
	nest = nla_nest_start(msg, FTVM_A_SNAP);
	/* Sized for all of it: cannot fail. */
	if (WARN_ON_ONCE(!hdr || !nest ||
			 nla_put_u32(msg, FTVM_A_SNAP_COUNT, count) ||
			 (staged && nla_put_u32(msg, FTVM_A_SNAP_STAGED, *staged))))
		return;
	nla_nest_end(msg, nest);
	if (named)
		list_for_each_entry(r, named, node)
			if (WARN_ON_ONCE(ftvm_tuple_put(msg, &r->key)))
				break;
	genlmsg_end(msg, hdr);
}

/*
 * Send the reply FTVM_A_SNAP { COUNT, STAGED (if @staged) } in @msg,
 * from ftvm_restore_reply_new(0) before the request changed anything:
 * a request that did what it asked never answers -ENOMEM.
 */
int ftvm_restore_reply(struct sk_buff *msg, struct genl_info *info, u8 cmd,
		       u32 count, const u32 *staged)
{
	ftvm_restore_reply_fill(msg, info, cmd, count, staged, NULL);
	return genlmsg_reply(msg, info);
}

static u32 ftvm_req_flags(struct genl_info *info, struct netlink_ext_ack *extack,
			  int *err)
{
	struct nlattr *tb[FTVM_A_SNAP_MAX + 1];

	*err = 0;
	if (!info->attrs[FTVM_A_SNAP])
		return 0;
	*err = nla_parse_nested(tb, FTVM_A_SNAP_MAX, info->attrs[FTVM_A_SNAP],
				ftvm_snap_policy, extack);
	if (*err || !tb[FTVM_A_SNAP_FLAGS])
		return 0;
	return nla_get_u32(tb[FTVM_A_SNAP_FLAGS]);
}

int ftvm_restore_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct netlink_ext_ack *extack = info->extack;
	struct sk_buff *msg;
	unsigned int n;
	LIST_HEAD(list);
	struct net *net;
	u32 flags, staged;
	int err;

	flags = ftvm_req_flags(info, extack, &err);
	if (err)
		return err;
	if (flags & FTVM_SNAP_F_DISCARD) {
		NL_SET_ERR_MSG_ATTR(extack, info->attrs[FTVM_A_SNAP],
				    "discard is an activation flag");
		return -EINVAL;
	}
	if (flags & FTVM_SNAP_F_HELD) {
		NL_SET_ERR_MSG_ATTR(extack, info->attrs[FTVM_A_SNAP],
				    "held is an activation flag");
		return -EINVAL;
	}
	if ((flags & FTVM_SNAP_F_QUIET) && (flags & FTVM_SNAP_F_STAGE)) {
		NL_SET_ERR_MSG_ATTR(extack, info->attrs[FTVM_A_SNAP],
				    "quiet is for sessions made live, not staged ones");
		return -EINVAL;
	}
	net = ftvm_nl_vm_netns(genl_info_net(info), info->attrs[FTVM_A_VM],
			       extack);
	if (IS_ERR(net))
		return PTR_ERR(net);
	err = ftvm_recs_parse(info, &list, &n);
	if (err)
		goto out;
	msg = ftvm_restore_reply_new(0);
	if (!msg) {
		ftvm_recs_free(&list);
		err = -ENOMEM;
		goto out;
	}

	if (flags & FTVM_SNAP_F_STAGE) {
		/* Takes the records, or frees them on failure. */
		err = ftvm_stage(genl_info_net(info), net, &list, extack,
				 &staged);
		if (!err)
			err = ftvm_restore_reply(msg, info,
						 FTVM_CMD_SESSION_RESTORE, n,
						 &staged);
		else
			nlmsg_free(msg);
		goto out;
	}

	err = ftvm_recs_restore(net, &list, flags & FTVM_SNAP_F_QUIET, extack);
	ftvm_recs_free(&list);
	if (err >= 0) {
		ftvm_hold_release(net);
		err = ftvm_restore_reply(msg, info, FTVM_CMD_SESSION_RESTORE,
					 err, NULL);
	} else {
		nlmsg_free(msg);
	}
out:
	put_net(net);
	return err;
}
