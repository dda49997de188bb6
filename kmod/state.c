// SPDX-License-Identifier: GPL-2.0
/*
 * Session state capture: snapshots of a service's sessions taken from
 * the kernel's own socket tables, and the application state services
 * attach to their sockets through libftvm (FTVM_CMD_CKPT_*).
 *
 * A snapshot takes the TCP sockets of the VM's namespace bound to the
 * service's port from the port's bind bucket, all at once (referenced,
 * see ftvm_gather_tcp()), then writes them in batches.  Each socket is locked only while its record is
 * written into the dump message (see ftvm_snap_tcp()): the owner is
 * never held up longer than one socket lock, and with the socket locked
 * its queues and sequence numbers are one consistent cut.  A message
 * carries as many records as fit.
 *
 * Generations: the store's generation is bumped by every snapshot and
 * every checkpoint.  A session's generation is the snapshot (or
 * checkpoint) that first saw its current state; a snapshot "since G"
 * sends only the sessions whose generation is above G.  "State" here is
 * the four sequence numbers that move whenever data is queued, sent,
 * acknowledged, received or read, compared without the socket lock, so
 * an unchanged session costs no lock at all.
 */
#include <linux/file.h>
#include <linux/net.h>
#include <linux/slab.h>
#include <linux/sock_diag.h>
#include <asm/unaligned.h>
#include <net/inet_hashtables.h>
#include <net/netns/generic.h>
#include <net/tcp.h>
#include <net/udp.h>

#include "uapi/ftvm.h"
#include "commit.h"
#include "netlink.h"
#include "restore.h"
#include "state.h"

static unsigned int ftvm_state_net_id __read_mostly;

struct ftvm_sstore *ftvm_sstore(const struct net *net)
{
	return net_generic(net, ftvm_state_net_id);
}

u64 ftvm_sock_cookie(struct sock *sk)
{
	u32 c[2];

	/* Assigns the cookie on first use, like sock_diag does. */
	sock_diag_save_cookie(sk, c);
	return (u64)c[1] << 32 | c[0];
}

/* A store entry for TCP socket @sk, with room for a blob of @blob_len. */
static struct ftvm_sess *ftvm_sess_alloc(struct sock *sk, u16 blob_len)
{
	struct ftvm_sess *e;

	e = kzalloc(struct_size_t(struct ftvm_sess, blob, blob_len),
		    GFP_KERNEL_ACCOUNT);
	if (e)
		e->port = inet_sk(sk)->inet_num;
	return e;
}

/*
 * Insert (or replace) the entry for @cookie; on failure @e is freed.
 * Store mutex held.
 */
static int ftvm_sess_store(struct ftvm_sstore *st, u64 cookie,
			   struct ftvm_sess *e)
{
	struct ftvm_sess *old;

	lockdep_assert_held(&st->lock);
	old = xa_load(&st->sess, cookie);
	if (!old && st->n_sess >= FTVM_SESS_MAX) {
		kfree(e);
		return -ENOSPC;
	}
	old = xa_store(&st->sess, cookie, e, GFP_KERNEL_ACCOUNT);
	if (xa_is_err(old)) {
		kfree(e);
		return xa_err(old);
	}
	if (!old)
		st->n_sess++;
	kfree(old);
	return 0;
}

static void ftvm_sess_erase(struct ftvm_sstore *st, u64 cookie)
{
	struct ftvm_sess *e;

	lockdep_assert_held(&st->lock);
	e = xa_erase(&st->sess, cookie);
	if (e)
		st->n_sess--;
	kfree(e);
}

/*
 * The TCP timestamp clock of @tp, as a value no smaller than any TSval
 * it ever sent, given @now_ns: the TCP clock (tcp_clock_ns()) read after
 * the socket was established and before it was locked.  Every segment
 * the socket sends carries its departure time, which
 * __tcp_transmit_skb() takes as tp->tcp_wstamp_ns (which never decreases
 * outside repair mode, and with pacing may lie in the future); the
 * SYN-ACK sent before the socket existed carried a time no later than
 * @now_ns.  So a dump reads the clock once per batch of sockets, not
 * once per socket as TCP_TIMESTAMP does, and the restored connection's
 * timestamps go on from at least where the peer saw them end: its PAWS
 * check (RFC 7323) drops none of them.  Socket locked.
 */
static u32 ftvm_tcp_ts(const struct tcp_sock *tp, u64 now_ns)
{
	return (u32)tcp_ns_to_ts(max(now_ns, tp->tcp_wstamp_ns)) + tp->tsoffset;
}

/*
 * What a snapshot compares with the store's entry to tell whether a
 * socket changed since its last record: its byte streams, and when it
 * last sent (tcp_wstamp_ns, in TS_VAL's unit).  A segment that moves
 * none of the streams (an ACK, a window update, a retransmission, a
 * keepalive, data written earlier and sent only now) still carries a
 * TSval, later than the record's TS_VAL: a copy restored from that
 * record would send TSvals below what the peer has seen, and the peer's
 * PAWS check drops them (RFC 7323).  So a socket that sent since its
 * record was written has changed: an incremental snapshot writes it
 * again.  (Sent within the millisecond it last sent in, a segment's
 * TSval is no more than the record's, which takes the later of the
 * clock and that departure time: ftvm_tcp_ts().)
 */
static void ftvm_sess_fp(const struct tcp_sock *tp, u32 *fp)
{
	fp[0] = READ_ONCE(tp->snd_una);
	fp[1] = READ_ONCE(tp->write_seq);
	fp[2] = READ_ONCE(tp->rcv_nxt);
	fp[3] = READ_ONCE(tp->copied_seq);
	fp[4] = (u32)tcp_ns_to_ts(READ_ONCE(tp->tcp_wstamp_ns));
}

int ftvm_state_attach(struct sock *sk, const void *blob, u16 len, u64 *cookie)
{
	struct ftvm_sstore *st = ftvm_sstore(sock_net(sk));
	struct tcp_sock *tp = tcp_sk(sk);
	struct ftvm_sess *e;
	int err;

	e = ftvm_sess_alloc(sk, len);
	if (!e)
		return -ENOMEM;
	e->ckpt = true;
	e->blob_len = len;
	memcpy(e->blob, blob, len);
	ftvm_sess_fp(tp, e->fp);
	e->ck_copied = tp->copied_seq;
	e->ck_write = tp->write_seq;
	*cookie = ftvm_sock_cookie(sk);
	mutex_lock(&st->lock);
	e->gen = ++st->gen;
	err = ftvm_sess_store(st, *cookie, e);
	mutex_unlock(&st->lock);
	return err;
}

void ftvm_state_detach(struct net *net, u64 cookie)
{
	struct ftvm_sstore *st = ftvm_sstore(net);

	mutex_lock(&st->lock);
	ftvm_sess_erase(st, cookie);
	mutex_unlock(&st->lock);
}

/* Checkpoints (libftvm). */

/* The TCP socket a checkpoint request names, with a file reference. */
static struct socket *ftvm_ckpt_sock(struct nlattr **tb,
				     struct netlink_ext_ack *extack)
{
	struct socket *sock;
	int err;

	if (!tb[FTVM_A_CKPT_FD]) {
		NL_SET_ERR_MSG(extack, "the socket is required (FTVM_A_CKPT_FD)");
		return ERR_PTR(-EINVAL);
	}
	sock = sockfd_lookup(nla_get_s32(tb[FTVM_A_CKPT_FD]), &err);
	if (!sock) {
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_CKPT_FD], "not a socket");
		return ERR_PTR(err);
	}
	if (sock->type != SOCK_STREAM || sock->sk->sk_protocol != IPPROTO_TCP ||
	    (sock->sk->sk_family != AF_INET && sock->sk->sk_family != AF_INET6)) {
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_CKPT_FD],
				    "not a TCP socket");
		sockfd_put(sock);
		return ERR_PTR(-EPROTOTYPE);
	}
	return sock;
}

static int ftvm_ckpt_attrs(struct genl_info *info, struct nlattr **tb)
{
	if (GENL_REQ_ATTR_CHECK(info, FTVM_A_CKPT))
		return -EINVAL;
	return nla_parse_nested(tb, FTVM_A_CKPT_MAX, info->attrs[FTVM_A_CKPT],
				ftvm_ckpt_attr_policy, info->extack);
}

/*
 * Attach the blob to the socket and cut its byte streams where they are
 * now, in one step under the socket lock: the blob accounts for every
 * byte read before copied_seq and written before write_seq, so blob and
 * socket state belong together.
 */
int ftvm_ckpt_set_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct netlink_ext_ack *extack = info->extack;
	struct nlattr *tb[FTVM_A_CKPT_MAX + 1];
	struct ftvm_sstore *st;
	struct ftvm_sess *e;
	struct socket *sock;
	struct sock *sk;
	u32 ck_write;
	u16 len = 0;
	u64 cookie;
	int err;

	err = ftvm_ckpt_attrs(info, tb);
	if (err)
		return err;
	if (tb[FTVM_A_CKPT_BLOB])
		len = nla_len(tb[FTVM_A_CKPT_BLOB]);
	sock = ftvm_ckpt_sock(tb, extack);
	if (IS_ERR(sock))
		return PTR_ERR(sock);
	sk = sock->sk;
	st = ftvm_sstore(sock_net(sk));
	e = ftvm_sess_alloc(sk, len);
	if (!e) {
		err = -ENOMEM;
		goto out;
	}
	e->ckpt = true;
	e->blob_len = len;
	if (len)
		nla_memcpy(e->blob, tb[FTVM_A_CKPT_BLOB], len);
	cookie = ftvm_sock_cookie(sk);

	lock_sock(sk);
	if (sk->sk_state != TCP_ESTABLISHED) {
		release_sock(sk);
		kfree(e);
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_CKPT_FD],
				    "the socket is not an established connection");
		err = -ENOTCONN;
		goto out;
	}
	ftvm_sess_fp(tcp_sk(sk), e->fp);
	e->ck_copied = tcp_sk(sk)->copied_seq;
	e->ck_write = tcp_sk(sk)->write_seq;
	ck_write = e->ck_write;
	mutex_lock(&st->lock);
	e->gen = ++st->gen;
	err = ftvm_sess_store(st, cookie, e);
	mutex_unlock(&st->lock);
	release_sock(sk);
	if (err == -ENOSPC)
		NL_SET_ERR_MSG(extack, "too many sessions with state in this namespace");
	if (!err)
		ftvm_commit_ckpt(sk, ck_write);	/* a commit may wait for it */
out:
	sockfd_put(sock);
	return err;
}

int ftvm_ckpt_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct netlink_ext_ack *extack = info->extack;
	struct nlattr *tb[FTVM_A_CKPT_MAX + 1];
	struct ftvm_sstore *st;
	struct sk_buff *reply;
	struct nlattr *nest;
	struct ftvm_sess *e;
	struct socket *sock;
	void *hdr;
	int err;

	err = ftvm_ckpt_attrs(info, tb);
	if (err)
		return err;
	if (tb[FTVM_A_CKPT_BLOB]) {
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_CKPT_BLOB],
				    "a read takes no blob");
		return -EINVAL;
	}
	sock = ftvm_ckpt_sock(tb, extack);
	if (IS_ERR(sock))
		return PTR_ERR(sock);
	st = ftvm_sstore(sock_net(sock->sk));
	reply = genlmsg_new(nla_total_size(FTVM_BLOB_MAX) + 64, GFP_KERNEL);
	if (!reply) {
		err = -ENOMEM;
		goto out;
	}
	hdr = genlmsg_put_reply(reply, info, &ftvm_genl_family, 0,
				FTVM_CMD_CKPT_GET);
	nest = hdr ? nla_nest_start(reply, FTVM_A_CKPT) : NULL;
	if (!nest) {
		err = -EMSGSIZE;
		goto err_free;
	}
	mutex_lock(&st->lock);
	e = xa_load(&st->sess, ftvm_sock_cookie(sock->sk));
	if (!e || !e->ckpt) {
		mutex_unlock(&st->lock);
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_CKPT_FD],
				    "no application state for this socket");
		err = -ENOENT;
		goto err_free;
	}
	err = nla_put(reply, FTVM_A_CKPT_BLOB, e->blob_len, e->blob) ||
	      nla_put_u64_64bit(reply, FTVM_A_CKPT_GEN, e->gen,
				FTVM_A_CKPT_PAD) ? -EMSGSIZE : 0;
	mutex_unlock(&st->lock);
	if (err)
		goto err_free;
	nla_nest_end(reply, nest);
	genlmsg_end(reply, hdr);
	sockfd_put(sock);
	return genlmsg_reply(reply, info);

err_free:
	nlmsg_free(reply);
out:
	sockfd_put(sock);
	return err;
}

/* Snapshots. */

/* Sockets taken from the hash at a time, referenced. */
#define FTVM_SNAP_BATCH		32

/* Where a snapshot stands: UDP hash slot (TCP: 0), sockets already done. */
struct ftvm_snap_pos {
	unsigned int bucket;
	unsigned int skip;
};

struct ftvm_snap {
	struct net *net;		/* the VM's namespace, referenced */
	struct ftvm_sstore *st;
	u64 since;
	u64 gen;			/* this snapshot's generation */
	u32 walk;			/* nonzero: complete, prune at the end */
	u16 port;
	u8 proto;			/* 0: TCP and UDP */
	u8 phase;			/* FTVM_SNAP_TCP, _UDP, _DONE */
	unsigned int bucket;		/* cursor: 1 when done... */
	unsigned int skip;		/* ...and its sockets already done */
	unsigned int nrec;		/* records in the current message */
	u64 now_ns;			/* TCP clock after the batch's gather */
	struct sock **tcp;		/* the port's TCP sockets, referenced */
	unsigned int n_tcp;
	u32 handshakes;			/* its listeners' request sockets */
	u32 tracked;			/* the store's sessions as it began */
	bool sent;			/* a message went out */
	struct ftvm_snap_pos pos[FTVM_SNAP_BATCH];	/* of a batch */
	struct ftvm_snap_pos end;
	unsigned int n_cookies;
	u64 cookies[];
};

enum { FTVM_SNAP_TCP, FTVM_SNAP_UDP, FTVM_SNAP_DONE };

#define FTVM_SNAP_COOKIES_MAX	4096

int ftvm_state_dump_start(struct netlink_callback *cb)
{
	const struct genl_dumpit_info *info = genl_dumpit_info(cb);
	struct netlink_ext_ack *extack = cb->extack;
	struct nlattr *tb[FTVM_A_SNAP_MAX + 1];
	unsigned int n = 0;
	struct ftvm_snap *s;
	struct nlattr *a;
	struct net *net;
	int rem, err;

	if (!info->attrs[FTVM_A_SNAP]) {
		NL_SET_ERR_MSG(extack, "the service is required (FTVM_A_SNAP)");
		return -EINVAL;
	}
	err = nla_parse_nested(tb, FTVM_A_SNAP_MAX, info->attrs[FTVM_A_SNAP],
			       ftvm_snap_policy, extack);
	if (err)
		return err;
	if (NL_REQ_ATTR_CHECK(extack, info->attrs[FTVM_A_SNAP], tb,
			      FTVM_A_SNAP_PORT))
		return -EINVAL;
	if (tb[FTVM_A_SNAP_PROTO] &&
	    nla_get_u8(tb[FTVM_A_SNAP_PROTO]) != IPPROTO_TCP &&
	    nla_get_u8(tb[FTVM_A_SNAP_PROTO]) != IPPROTO_UDP) {
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_SNAP_PROTO],
				    "protocol must be TCP (6) or UDP (17)");
		return -EINVAL;
	}
	if (tb[FTVM_A_SNAP_FLAGS]) {
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_SNAP_FLAGS],
				    "a snapshot takes no flags");
		return -EINVAL;
	}
	nla_for_each_nested(a, info->attrs[FTVM_A_SNAP], rem)
		if (nla_type(a) == FTVM_A_SNAP_COOKIE)
			n++;
	if (n > FTVM_SNAP_COOKIES_MAX) {
		NL_SET_ERR_MSG_ATTR(extack, info->attrs[FTVM_A_SNAP],
				    "too many sessions named");
		return -E2BIG;
	}
	net = ftvm_nl_vm_netns(sock_net(cb->skb->sk), info->attrs[FTVM_A_VM],
			       extack);
	if (IS_ERR(net))
		return PTR_ERR(net);
	s = kzalloc(struct_size(s, cookies, n), GFP_KERNEL);
	if (!s) {
		put_net(net);
		return -ENOMEM;
	}
	s->net = net;
	s->st = ftvm_sstore(net);
	s->port = nla_get_u16(tb[FTVM_A_SNAP_PORT]);
	if (tb[FTVM_A_SNAP_PROTO])
		s->proto = nla_get_u8(tb[FTVM_A_SNAP_PROTO]);
	if (tb[FTVM_A_SNAP_SINCE])
		s->since = nla_get_u64(tb[FTVM_A_SNAP_SINCE]);
	nla_for_each_nested(a, info->attrs[FTVM_A_SNAP], rem)
		if (nla_type(a) == FTVM_A_SNAP_COOKIE)
			s->cookies[s->n_cookies++] = nla_get_u64(a);
	s->phase = s->proto == IPPROTO_UDP ? FTVM_SNAP_UDP : FTVM_SNAP_TCP;

	mutex_lock(&s->st->lock);
	s->gen = ++s->st->gen;
	s->tracked = s->st->n_sess;
	/*
	 * Only a snapshot of every TCP session of the port (the store has no
	 * other) may prune what it did not see.
	 */
	if (!s->since && !s->n_cookies && s->proto != IPPROTO_UDP)
		s->walk = ++s->st->walk ?: ++s->st->walk;
	mutex_unlock(&s->st->lock);
	cb->args[0] = (long)s;
	return 0;
}

int ftvm_state_dump_done(struct netlink_callback *cb)
{
	struct ftvm_snap *s = (struct ftvm_snap *)cb->args[0];

	if (s) {
		if (s->tcp) {
			unsigned int i;

			for (i = 0; i < s->n_tcp; i++)
				sock_put(s->tcp[i]);
			kvfree(s->tcp);
		}
		put_net(s->net);
		kfree(s);
	}
	return 0;
}

static bool ftvm_snap_wants(const struct ftvm_snap *s, u64 cookie)
{
	unsigned int i;

	if (!s->n_cookies)
		return true;
	for (i = 0; i < s->n_cookies; i++)
		if (s->cookies[i] == cookie)
			return true;
	return false;
}

static void *ftvm_snap_hdr(struct sk_buff *skb, struct netlink_callback *cb,
			   const struct ftvm_snap *s)
{
	struct nlattr *nest;
	void *hdr;

	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			  &ftvm_genl_family, NLM_F_MULTI, FTVM_CMD_SESSION_GET);
	if (!hdr)
		return NULL;
	nest = nla_nest_start(skb, FTVM_A_SNAP);
	if (!nest || nla_put_u64_64bit(skb, FTVM_A_SNAP_GEN, s->gen,
				       FTVM_A_SNAP_PAD) ||
	    (s->tcp && (nla_put_u32(skb, FTVM_A_SNAP_HANDSHAKES, s->handshakes) ||
			nla_put_u32(skb, FTVM_A_SNAP_TRACKED, s->tracked)))) {
		genlmsg_cancel(skb, hdr);
		return NULL;
	}
	nla_nest_end(skb, nest);
	return hdr;
}

/*
 * Records are written straight into the message's tail room, which is
 * checked once per record against a bound on its size, instead of one
 * nla_put() (and one bounds check) per attribute.  The bytes are the
 * ones nla_put() would write, padding and all.
 */
static __always_inline void *ftvm_w_attr(u8 **p, int type, int len)
{
	struct nlattr *a = (struct nlattr *)*p;

	a->nla_type = type;
	a->nla_len = nla_attr_size(len);
	/* Zero the padding: the last 4-byte word the value lies in. */
	if (nla_padlen(len))
		*(u32 *)((u8 *)a + nla_total_size(len) - 4) = 0;
	*p += nla_total_size(len);
	return nla_data(a);
}

static __always_inline void ftvm_w_u8(u8 **p, int type, u8 v)
{
	*(u8 *)ftvm_w_attr(p, type, sizeof(v)) = v;
}

static __always_inline void ftvm_w_u16(u8 **p, int type, u16 v)
{
	*(u16 *)ftvm_w_attr(p, type, sizeof(v)) = v;
}

static __always_inline void ftvm_w_u32(u8 **p, int type, u32 v)
{
	*(u32 *)ftvm_w_attr(p, type, sizeof(v)) = v;
}

/* As nla_put_u64_64bit(): a pad attribute first where it would put one. */
static __always_inline void ftvm_w_u64(u8 **p, int type, u64 v, int padtype)
{
	if (!IS_ENABLED(CONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS) &&
	    !IS_ALIGNED((unsigned long)*p + NLA_HDRLEN, 8))
		ftvm_w_attr(p, padtype, 0);
	put_unaligned(v, (u64 *)ftvm_w_attr(p, type, sizeof(v)));
}

static __always_inline struct nlattr *ftvm_w_nest(u8 **p, int type)
{
	struct nlattr *a = (struct nlattr *)*p;

	a->nla_type = type | NLA_F_NESTED;
	*p += NLA_HDRLEN;
	return a;
}

static __always_inline void ftvm_w_nest_end(u8 *p, struct nlattr *nest)
{
	nest->nla_len = p - (u8 *)nest;
}

/* The session's tuple: the head of every record. */
static __always_inline void ftvm_w_tuple(u8 **p, struct sock *sk, u64 cookie)
{
	const struct inet_sock *inet = inet_sk(sk);
	int alen = sk->sk_family == AF_INET ? 4 : 16;
	const void *laddr = &inet->inet_rcv_saddr, *raddr = &inet->inet_daddr;

#if IS_ENABLED(CONFIG_IPV6)
	if (sk->sk_family == AF_INET6) {
		laddr = &sk->sk_v6_rcv_saddr;
		raddr = &sk->sk_v6_daddr;
	}
#endif
	ftvm_w_u8(p, FTVM_A_SESS_VERSION, FTVM_STATE_VERSION);
	ftvm_w_u8(p, FTVM_A_SESS_PROTO, sk->sk_protocol);
	ftvm_w_u8(p, FTVM_A_SESS_FAMILY, sk->sk_family);
	memcpy(ftvm_w_attr(p, FTVM_A_SESS_LADDR, alen), laddr, alen);
	memcpy(ftvm_w_attr(p, FTVM_A_SESS_RADDR, alen), raddr, alen);
	ftvm_w_u16(p, FTVM_A_SESS_LPORT, inet->inet_num);
	ftvm_w_u16(p, FTVM_A_SESS_RPORT, ntohs(inet->inet_dport));
	ftvm_w_u64(p, FTVM_A_SESS_COOKIE, cookie, FTVM_A_SESS_PAD);
}

static __always_inline void ftvm_w_tcp(u8 **p, struct sock *sk, u64 now_ns)
{
	struct tcp_sock *tp = tcp_sk(sk);
	const struct tcp_options_received *rx = &tp->rx_opt;
	struct nlattr *nest;
	u32 opts = 0;

	if (rx->sack_ok)
		opts |= FTVM_TCP_OPT_SACK;
	if (rx->tstamp_ok)
		opts |= FTVM_TCP_OPT_TSTAMP;
	if (rx->wscale_ok)
		opts |= FTVM_TCP_OPT_WSCALE;
	nest = ftvm_w_nest(p, FTVM_A_SESS_TCP);
	ftvm_w_u8(p, FTVM_A_TCP_STATE, sk->sk_state);
	ftvm_w_u32(p, FTVM_A_TCP_SND_UNA, tp->snd_una);
	ftvm_w_u32(p, FTVM_A_TCP_SND_NXT, tp->snd_nxt);
	ftvm_w_u32(p, FTVM_A_TCP_SNDQ_LEN, tp->write_seq - tp->snd_una);
	ftvm_w_u32(p, FTVM_A_TCP_COPIED_SEQ, tp->copied_seq);
	ftvm_w_u32(p, FTVM_A_TCP_RCVQ_LEN, tp->rcv_nxt - tp->copied_seq);
	ftvm_w_u32(p, FTVM_A_TCP_SND_WL1, tp->snd_wl1);
	ftvm_w_u32(p, FTVM_A_TCP_SND_WND, tp->snd_wnd);
	ftvm_w_u32(p, FTVM_A_TCP_MAX_WINDOW, tp->max_window);
	ftvm_w_u32(p, FTVM_A_TCP_RCV_WND, tp->rcv_wnd);
	ftvm_w_u32(p, FTVM_A_TCP_RCV_WUP, tp->rcv_wup);
	ftvm_w_u16(p, FTVM_A_TCP_MSS, rx->mss_clamp);
	ftvm_w_u8(p, FTVM_A_TCP_SND_WSCALE, rx->snd_wscale);
	ftvm_w_u8(p, FTVM_A_TCP_RCV_WSCALE, rx->rcv_wscale);
	ftvm_w_u32(p, FTVM_A_TCP_OPTS, opts);
	ftvm_w_u32(p, FTVM_A_TCP_TS_VAL, ftvm_tcp_ts(tp, now_ns));
	ftvm_w_u32(p, FTVM_A_TCP_TS_RECENT, rx->ts_recent);
	ftvm_w_u32(p, FTVM_A_TCP_SNDBUF, READ_ONCE(sk->sk_sndbuf));
	ftvm_w_u32(p, FTVM_A_TCP_RCVBUF, READ_ONCE(sk->sk_rcvbuf));
	ftvm_w_u32(p, FTVM_A_TCP_SRTT_US, tp->srtt_us >> 3);
	ftvm_w_u32(p, FTVM_A_TCP_RTTVAR_US, tp->mdev_us >> 2);
	ftvm_w_u32(p, FTVM_A_TCP_SND_CWND, tcp_snd_cwnd(tp));
	ftvm_w_u32(p, FTVM_A_TCP_SND_SSTHRESH, tp->snd_ssthresh);
	ftvm_w_nest_end(*p, nest);
}

/* Writes a queue's bytes as FTVM_QCHUNK-sized attributes. */
struct ftvm_qput {
	struct sk_buff *msg;
	int type;
	u32 from;		/* sequence number of the next byte wanted */
	u32 left;		/* bytes still wanted */
	u8 *dst;
	u32 room;		/* left in the current attribute */
};

static int ftvm_qput_skb(struct ftvm_qput *q, const struct sk_buff *skb,
			 u32 seq)
{
	u32 off = 0, len = skb->len;
	int err;

	if (before(seq, q->from)) {
		off = q->from - seq;
		if (off >= len)
			return 0;
	} else if (seq != q->from) {
		return -EIO;	/* a hole: the queue is not what we think */
	}
	len -= off;
	while (len && q->left) {
		u32 n;

		if (!q->room) {
			struct nlattr *a;

			n = min_t(u32, q->left, FTVM_QCHUNK);
			a = nla_reserve(q->msg, q->type, n);
			if (!a)
				return -EMSGSIZE;
			q->dst = nla_data(a);
			q->room = n;
		}
		n = min3(len, q->room, q->left);
		err = skb_copy_bits(skb, off, q->dst, n);
		if (err)
			return err;
		q->dst += n;
		q->room -= n;
		q->left -= n;
		q->from += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int ftvm_put_queues(struct sk_buff *msg, struct sock *sk)
{
	struct tcp_sock *tp = tcp_sk(sk);
	struct ftvm_qput q = { .msg = msg, .type = FTVM_A_SNDQ,
			       .from = tp->snd_una,
			       .left = tp->write_seq - tp->snd_una };
	struct sk_buff *skb;
	int err;

	skb_rbtree_walk(skb, &sk->tcp_rtx_queue) {
		if (!q.left)
			break;
		err = ftvm_qput_skb(&q, skb, TCP_SKB_CB(skb)->seq);
		if (err)
			return err;
	}
	skb_queue_walk(&sk->sk_write_queue, skb) {
		if (!q.left)
			break;
		err = ftvm_qput_skb(&q, skb, TCP_SKB_CB(skb)->seq);
		if (err)
			return err;
	}
	if (q.left)
		return -EIO;

	q = (struct ftvm_qput){ .msg = msg, .type = FTVM_A_RCVQ,
				.from = tp->copied_seq,
				.left = tp->rcv_nxt - tp->copied_seq };
	skb_queue_walk(&sk->sk_receive_queue, skb) {
		u32 seq = TCP_SKB_CB(skb)->seq;

		if (!q.left)
			break;
		/* Data that came with a SYN starts one after it. */
		if (TCP_SKB_CB(skb)->tcp_flags & TCPHDR_SYN)
			seq++;
		err = ftvm_qput_skb(&q, skb, seq);
		if (err)
			return err;
	}
	return q.left ? -EIO : 0;
}

/* Room one record needs at most, beyond its queue bytes. */
#define FTVM_REC_OVERHEAD	512

/*
 * Queue bytes a record may have to be written under the socket's
 * spinlock (bottom halves off); more, and it is written under lock_sock.
 */
#define FTVM_SNAP_FAST_QUEUES	(16U << 10)

/* What writing a record saw of the socket, for the store. */
struct ftvm_snap_seen {
	u32 fp[FTVM_FP_LEN];
	u64 gen;
	bool changed;
};

/*
 * Write the record of @sk, locked (either way), into @skb.  @e is what
 * the store knows of it, or NULL.  Store mutex held.  Returns 0 when
 * written or skipped, -EMSGSIZE when @skb is full; @seen->gen is set
 * when the socket was looked at, and the store is to be updated.
 */
static int ftvm_snap_rec(struct sk_buff *skb, struct netlink_callback *cb,
			 struct ftvm_snap *s, struct sock *sk,
			 const struct ftvm_sess *e, u64 cookie,
			 struct ftvm_snap_seen *seen)
{
	struct tcp_sock *tp = tcp_sk(sk);
	u32 sndq, rcvq, flags = 0;
	struct nlattr *nest;
	unsigned int mark;
	size_t need;
	int err;
	u8 *p;

	if (sk->sk_state != TCP_ESTABLISHED) {
		/* Closing or not yet open: nothing that could go on. */
		return 0;
	}
	sndq = tp->write_seq - tp->snd_una;
	rcvq = tp->rcv_nxt - tp->copied_seq;
	need = FTVM_REC_OVERHEAD + nla_total_size(FTVM_BLOB_MAX) + sndq + rcvq +
	       (sndq / FTVM_QCHUNK + rcvq / FTVM_QCHUNK + 2) * NLA_HDRLEN;
	if (need > skb_tailroom(skb)) {
		/* Ask for a larger message next time if even an empty one
		 * cannot hold this record.
		 */
		if (!s->nrec)
			cb->min_dump_alloc = need + NLMSG_GOODSIZE;
		return -EMSGSIZE;
	}
	ftvm_sess_fp(tp, seen->fp);
	seen->changed = !e || memcmp(e->fp, seen->fp, sizeof(seen->fp));
	seen->gen = seen->changed ? s->gen : e->gen;
	if (seen->gen <= s->since)
		return 0;
	if (e && e->ckpt) {
		flags |= FTVM_SESS_F_BLOB;
		/* Read or written since the checkpoint: the blob is older
		 * than the socket state.
		 */
		if (e->ck_copied != tp->copied_seq || e->ck_write != tp->write_seq)
			flags |= FTVM_SESS_F_STALE;
	}
	mark = skb->len;
	p = skb_tail_pointer(skb);
	nest = ftvm_w_nest(&p, FTVM_A_SESSION);
	ftvm_w_tuple(&p, sk, cookie);
	ftvm_w_u64(&p, FTVM_A_SESS_GEN, seen->gen, FTVM_A_SESS_PAD);
	ftvm_w_u32(&p, FTVM_A_SESS_FLAGS, flags);
	ftvm_w_tcp(&p, sk, s->now_ns);
	if (e && e->ckpt)
		memcpy(ftvm_w_attr(&p, FTVM_A_SESS_BLOB, e->blob_len), e->blob,
		       e->blob_len);
	ftvm_w_nest_end(p, nest);
	__skb_put(skb, p - skb_tail_pointer(skb));
	err = ftvm_put_queues(skb, sk);
	if (err) {
		skb_trim(skb, mark);
		if (err == -EIO) {
			/* Cannot happen with the socket locked; do not loop
			 * on it.
			 */
			pr_warn_ratelimited("inconsistent queues on a socket, not captured\n");
			err = 0;
		}
	}
	return err;
}

/*
 * Write one TCP session's record, if the snapshot wants it.  Called
 * with the store's mutex held, which it may drop and take again.
 * Returns 0 when written or skipped, -EMSGSIZE when @skb is full.
 *
 * The socket is normally locked by its spinlock only (as
 * lock_sock_fast() does), taken under the store's mutex: while it is
 * held and the socket has no owner, neither its owner nor its softirq
 * input nor its timers can change it, exactly as under lock_sock().
 * This does not invert the lock order (socket before store), because
 * the spinlock is never held while waiting for the mutex: checkpoints
 * hold lock_sock(), not the spinlock, when they take the mutex.  A
 * socket that has an owner, or queues too long to copy with bottom
 * halves off, is locked with lock_sock() instead, the mutex dropped
 * before and taken again after it.
 */
static int ftvm_snap_tcp(struct sk_buff *skb, struct netlink_callback *cb,
			 struct ftvm_snap *s, struct sock *sk)
{
	struct ftvm_snap_seen seen = { .gen = 0 };
	struct ftvm_sstore *st = s->st;
	struct tcp_sock *tp = tcp_sk(sk);
	struct ftvm_sess *e, *new = NULL;
	unsigned int mark = skb->len;
	int err, serr;
	u64 cookie;
	u32 fp[FTVM_FP_LEN];

	lockdep_assert_held(&st->lock);
	cookie = ftvm_sock_cookie(sk);
	if (!ftvm_snap_wants(s, cookie))
		return 0;
	/* Cheap test first: an unchanged session needs no socket lock. */
	ftvm_sess_fp(tp, fp);
	e = xa_load(&st->sess, cookie);
	if (e && !memcmp(e->fp, fp, sizeof(fp)) && e->gen <= s->since) {
		e->walk = s->walk;
		return 0;
	}
	if (!e) {
		new = ftvm_sess_alloc(sk, 0);
		if (!new)
			return -ENOMEM;
	}

	spin_lock_bh(&sk->sk_lock.slock);
	if (!sock_owned_by_user_nocheck(sk) &&
	    tp->write_seq - tp->snd_una + tp->rcv_nxt - tp->copied_seq <=
	    FTVM_SNAP_FAST_QUEUES) {
		err = ftvm_snap_rec(skb, cb, s, sk, e, cookie, &seen);
		spin_unlock_bh(&sk->sk_lock.slock);
	} else {
		spin_unlock_bh(&sk->sk_lock.slock);
		mutex_unlock(&st->lock);
		lock_sock(sk);
		mutex_lock(&st->lock);
		/* A checkpoint or a prune may have come in between. */
		e = xa_load(&st->sess, cookie);
		if (!e && !new)
			new = ftvm_sess_alloc(sk, 0);
		err = !e && !new ? -ENOMEM :
		      ftvm_snap_rec(skb, cb, s, sk, e, cookie, &seen);
		release_sock(sk);
	}

	/* What the store knows, updated even if the record did not fit. */
	if (seen.gen && !e) {
		new->gen = seen.gen;
		new->walk = s->walk;
		memcpy(new->fp, seen.fp, sizeof(seen.fp));
		e = new;
		new = NULL;
		serr = ftvm_sess_store(st, cookie, e);
		if (serr) {
			skb_trim(skb, mark);
			err = serr;
		}
	} else if (seen.gen) {
		if (seen.changed) {
			e->gen = seen.gen;
			memcpy(e->fp, seen.fp, sizeof(seen.fp));
		}
		e->walk = s->walk;
	}
	kfree(new);
	return err;
}

static int ftvm_snap_udp(struct sk_buff *skb, struct netlink_callback *cb,
			 struct ftvm_snap *s, struct sock *sk)
{
	u64 cookie = ftvm_sock_cookie(sk);
	struct nlattr *nest;
	u8 *p;

	if (!ftvm_snap_wants(s, cookie) || s->since)
		return 0;	/* a binding has no state that changes */
	if (skb_tailroom(skb) < FTVM_REC_OVERHEAD)
		return -EMSGSIZE;
	p = skb_tail_pointer(skb);
	nest = ftvm_w_nest(&p, FTVM_A_SESSION);
	ftvm_w_tuple(&p, sk, cookie);
	ftvm_w_u64(&p, FTVM_A_SESS_GEN, s->gen, FTVM_A_SESS_PAD);
	ftvm_w_nest_end(p, nest);
	__skb_put(skb, p - skb_tail_pointer(skb));
	return 0;
}

static bool ftvm_snap_match(const struct ftvm_snap *s, const struct sock *sk)
{
	return sk->sk_state != TCP_TIME_WAIT &&
	       sk->sk_state != TCP_NEW_SYN_RECV &&
	       sk->sk_state != TCP_LISTEN &&
	       net_eq(sock_net(sk), s->net) && sk->sk_num == s->port;
}

/*
 * Reference every TCP socket of the service's port in the namespace, at
 * once, into s->tcp: the sockets bound to the port, found in the bind
 * hash (every socket of the port is on its bind bucket's owners list:
 * the listener, the connections it accepted, the ones restored there,
 * time-wait ones), not in the established hash, which would cost a walk
 * of the whole table (shared by every namespace unless sized per
 * namespace) to find a few sessions.  Taken under the bind bucket's
 * lock, so the snapshot sees the port's sockets as of one instant and
 * its cursor (an index into s->tcp) cannot skip or repeat one however
 * sockets come and go while it is read.  Costs a pointer per session
 * until the dump ends (ftvm_state_dump_done() drops what is left).  The
 * port's listeners are there too: their request sockets (connections
 * in their handshake) are counted into s->handshakes.
 */
static int ftvm_gather_tcp(struct ftvm_snap *s, struct inet_hashinfo *h)
{
	struct inet_bind_hashbucket *head =
		&h->bhash[inet_bhashfn(s->net, s->port, h->bhash_size)];
	unsigned int cap = 64, n, total;
	struct inet_bind_bucket *tb;
	struct sock **v, *sk;

	for (;;) {
		v = kvmalloc_array(cap, sizeof(*v), GFP_KERNEL_ACCOUNT);
		if (!v)
			return -ENOMEM;
		n = 0;
		total = 0;
		s->handshakes = 0;
		spin_lock_bh(&head->lock);
		inet_bind_bucket_for_each(tb, &head->chain) {
			if (!net_eq(ib_net(tb), s->net) || tb->port != s->port)
				continue;
			sk_for_each_bound(sk, &tb->owners) {
				if (sk->sk_state == TCP_LISTEN)
					s->handshakes += inet_csk_reqsk_queue_len(sk);
				if (!ftvm_snap_match(s, sk))
					continue;
				total++;
				if (n < cap && refcount_inc_not_zero(&sk->sk_refcnt))
					v[n++] = sk;
			}
		}
		spin_unlock_bh(&head->lock);
		if (total <= cap)
			break;
		/* More than room for: again, with room for them all. */
		while (n)
			sock_put(v[--n]);
		kvfree(v);
		cap = total + total / 4;
		cond_resched();
	}
	s->tcp = v;
	s->n_tcp = n;
	return 0;
}

/*
 * The next up to FTVM_SNAP_BATCH sockets of s->tcp (gathered) into
 * @socks, each with a reference of its own; s->pos[i] is where the
 * cursor goes once socks[i] is done, s->end where it goes once all are
 * (bucket 1: done).
 */
static unsigned int ftvm_collect_tcp(struct ftvm_snap *s, struct sock **socks)
{
	unsigned int n = 0, i = s->skip;

	for (; i < s->n_tcp && n < FTVM_SNAP_BATCH; i++) {
		socks[n] = s->tcp[i];
		sock_hold(socks[n]);
		s->pos[n].bucket = 0;
		s->pos[n].skip = i + 1;
		n++;
	}
	if (i < s->n_tcp)
		s->end = (struct ftvm_snap_pos){ .skip = i };
	else
		s->end = (struct ftvm_snap_pos){ .bucket = 1 };
	return n;
}

static unsigned int ftvm_collect_udp(struct ftvm_snap *s, struct sock **socks)
{
	struct udp_table *t = &udp_table;
	struct udp_hslot *hslot = udp_hashslot(t, s->net, s->port);
	unsigned int n = 0, idx = 0;
	struct sock *sk;

	spin_lock_bh(&hslot->lock);
	sk_for_each(sk, &hslot->head) {
		if (!net_eq(sock_net(sk), s->net) || sk->sk_num != s->port)
			continue;
		if (idx++ < s->skip)
			continue;
		sock_hold(sk);
		s->pos[n].bucket = 0;
		s->pos[n].skip = idx;
		socks[n++] = sk;
		if (n == FTVM_SNAP_BATCH)
			break;
	}
	spin_unlock_bh(&hslot->lock);
	/* One slot: the bucket number past it means done. */
	if (n == FTVM_SNAP_BATCH)
		s->end = s->pos[n - 1];
	else
		s->end = (struct ftvm_snap_pos){ .bucket = 1 };
	return n;
}

/*
 * Forget the sessions of the port a complete snapshot did not see: they
 * are gone.  Those of the namespace's other ports (other services, their
 * application state with them) are not its to judge, nor are entries
 * newer than the snapshot (a generation above its own): a checkpoint
 * during the dump replaced the entry of a socket it had seen, or made
 * one for a connection accepted after it gathered the port's sockets.
 */
static void ftvm_snap_prune(struct ftvm_snap *s)
{
	struct ftvm_sstore *st = s->st;
	struct ftvm_sess *e;
	unsigned long cookie;

	mutex_lock(&st->lock);
	xa_for_each(&st->sess, cookie, e)
		if (e->port == s->port && e->walk != s->walk &&
		    e->gen <= s->gen &&
		    READ_ONCE(st->walk) == s->walk)
			ftvm_sess_erase(st, cookie);
	mutex_unlock(&st->lock);
}

/*
 * One dump message: as many records as fit, after one header carrying
 * the snapshot's generation.  The store's mutex is taken once per batch
 * of sockets, not per socket.
 */
int ftvm_state_dump(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct ftvm_snap *s = (struct ftvm_snap *)cb->args[0];
	struct inet_hashinfo *h = s->net->ipv4.tcp_death_row.hashinfo;
	struct sock *socks[FTVM_SNAP_BATCH];
	unsigned int i, n;
	void *hdr;
	int err = 0;

	if (s->phase == FTVM_SNAP_DONE)
		return 0;
	/* Gathered first: the header says how many handshakes it saw. */
	if (s->phase == FTVM_SNAP_TCP && !s->tcp) {
		err = ftvm_gather_tcp(s, h);
		if (err)
			return err;
	}
	hdr = ftvm_snap_hdr(skb, cb, s);
	if (!hdr)
		return -EMSGSIZE;
	s->nrec = 0;
	while (s->phase != FTVM_SNAP_DONE) {
		if (s->phase == FTVM_SNAP_TCP)
			n = ftvm_collect_tcp(s, socks);
		else
			n = ftvm_collect_udp(s, socks);
		/* After the gather: later than any SYN-ACK of its sockets. */
		s->now_ns = tcp_clock_ns();
		if (n)
			mutex_lock(&s->st->lock);
		for (i = 0; i < n; i++) {
			if (!err) {
				unsigned int len = skb->len;

				if (s->phase == FTVM_SNAP_TCP)
					err = ftvm_snap_tcp(skb, cb, s, socks[i]);
				else
					err = ftvm_snap_udp(skb, cb, s, socks[i]);
				if (!err) {
					s->bucket = s->pos[i].bucket;
					s->skip = s->pos[i].skip;
					if (skb->len != len)
						s->nrec++;
				}
			}
		}
		if (n)
			mutex_unlock(&s->st->lock);
		for (i = 0; i < n; i++)
			sock_put(socks[i]);
		if (err)
			break;
		s->bucket = s->end.bucket;
		s->skip = s->end.skip;
		if (s->bucket) {
			s->phase = s->phase == FTVM_SNAP_TCP && !s->proto ?
				   FTVM_SNAP_UDP : FTVM_SNAP_DONE;
			s->bucket = 0;
			s->skip = 0;
		}
		cond_resched();
	}
	if (err == -EMSGSIZE && !s->nrec &&
	    cb->min_dump_alloc <= skb_tailroom(skb)) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	/* Not even one record fit: the empty message keeps the dump going;
	 * the next one is sized by cb->min_dump_alloc.
	 */
	if (err == -EMSGSIZE)
		err = 0;
	if (!err && s->phase == FTVM_SNAP_DONE && s->walk) {
		ftvm_snap_prune(s);
		s->walk = 0;
	}
	/*
	 * A dump of no session still answers once: its generation and, of
	 * TCP, its handshakes and the sessions tracked.
	 */
	if (!s->nrec && (err || s->phase == FTVM_SNAP_DONE) &&
	    (err || s->sent)) {
		genlmsg_cancel(skb, hdr);
		return err;
	}
	genlmsg_end(skb, hdr);
	s->sent = true;
	return err ?: skb->len;
}

/* In-kernel capture, for strict output commit (commit.c). */

/* @sk's 5-tuple, as a dump names it (zeroed first: see struct ftvm_tuple). */
void ftvm_sock_tuple(struct sock *sk, struct ftvm_tuple *t)
{
	const struct inet_sock *inet = inet_sk(sk);

	memset(t, 0, sizeof(*t));
	t->family = sk->sk_family;
	t->proto = sk->sk_protocol;
	t->lport = inet->inet_num;
	t->rport = ntohs(inet->inet_dport);
#if IS_ENABLED(CONFIG_IPV6)
	if (sk->sk_family == AF_INET6) {
		t->laddr.v6 = sk->sk_v6_rcv_saddr;
		t->raddr.v6 = sk->sk_v6_daddr;
		return;
	}
#endif
	t->laddr.v4 = inet->inet_rcv_saddr;
	t->raddr.v4 = inet->inet_daddr;
}

/*
 * Copy the @left bytes from sequence number @from on out of @skb (which
 * starts at @seq) to @dst; returns the bytes taken, or -EIO on a hole.
 */
static int ftvm_copy_skb(u8 *dst, u32 from, u32 left, const struct sk_buff *skb,
			 u32 seq)
{
	u32 off = 0, len = skb->len;

	if (before(seq, from)) {
		off = from - seq;
		if (off >= len)
			return 0;
	} else if (seq != from) {
		return -EIO;
	}
	len = min(len - off, left);
	return skb_copy_bits(skb, off, dst, len) ?: len;
}

/* The send and receive queues of locked @sk into @r->data. */
static int ftvm_copy_queues(struct sock *sk, struct ftvm_rec *r)
{
	struct tcp_sock *tp = tcp_sk(sk);
	u32 from = r->snd_una, left = r->sndq_len;
	u8 *dst = r->data;
	struct sk_buff *skb;
	int n;

	skb_rbtree_walk(skb, &sk->tcp_rtx_queue) {
		if (!left)
			break;
		n = ftvm_copy_skb(dst, from, left, skb, TCP_SKB_CB(skb)->seq);
		if (n < 0)
			return n;
		dst += n, from += n, left -= n;
	}
	skb_queue_walk(&sk->sk_write_queue, skb) {
		if (!left)
			break;
		n = ftvm_copy_skb(dst, from, left, skb, TCP_SKB_CB(skb)->seq);
		if (n < 0)
			return n;
		dst += n, from += n, left -= n;
	}
	if (left)
		return -EIO;
	from = tp->copied_seq;
	left = r->rcvq_len;
	skb_queue_walk(&sk->sk_receive_queue, skb) {
		u32 seq = TCP_SKB_CB(skb)->seq;

		if (!left)
			break;
		if (TCP_SKB_CB(skb)->tcp_flags & TCPHDR_SYN)
			seq++;
		n = ftvm_copy_skb(dst, from, left, skb, seq);
		if (n < 0)
			return n;
		dst += n, from += n, left -= n;
	}
	return left ? -EIO : 0;
}

/*
 * Capture TCP session @t of @net as a record ready to stage: exactly
 * what a dump writes for it (ftvm_w_tuple(), ftvm_w_tcp(), the queues,
 * the blob), taken under lock_sock().  *@stale: the service attached
 * state and has read or written since (FTVM_SESS_F_STALE).  Fails with
 * -ENOTCONN when @t is not an established connection there.
 */
struct ftvm_rec *ftvm_rec_capture(struct net *net, const struct ftvm_tuple *t,
				  bool *stale)
{
	struct ftvm_sstore *st = ftvm_sstore(net);
	struct ftvm_rec *r = NULL;
	struct ftvm_sess *e;
	struct tcp_sock *tp;
	u32 sndq, rcvq, opts = 0;
	struct sock *sk;
	u16 blob_len;
	u64 cookie;
	int err;

	*stale = false;
	sk = ftvm_sock_lookup(net, t);
	if (!sk)
		return ERR_PTR(-ENOTCONN);
	if (!sk_fullsock(sk)) {
		sock_gen_put(sk);
		return ERR_PTR(-ENOTCONN);
	}
	tp = tcp_sk(sk);
	cookie = ftvm_sock_cookie(sk);

	lock_sock(sk);
	err = -ENOTCONN;
	if (sk->sk_state != TCP_ESTABLISHED || tp->repair)
		goto unlock;
	sndq = tp->write_seq - tp->snd_una;
	rcvq = tp->rcv_nxt - tp->copied_seq;
	err = -EFBIG;
	if (sndq > FTVM_QUEUE_MAX || rcvq > FTVM_QUEUE_MAX)
		goto unlock;
	/* Lock order: the socket's lock, then the store's (state.h). */
	mutex_lock(&st->lock);
	e = xa_load(&st->sess, cookie);
	blob_len = e && e->ckpt ? e->blob_len : 0;
	r = kvmalloc(struct_size(r, data, (size_t)sndq + rcvq + blob_len),
		     GFP_KERNEL_ACCOUNT);
	if (r) {
		memset(r, 0, sizeof(*r));
		r->blob_len = blob_len;
		if (blob_len)
			memcpy(r->data + sndq + rcvq, e->blob, blob_len);
		*stale = blob_len && (e->ck_copied != tp->copied_seq ||
				      e->ck_write != tp->write_seq);
	}
	mutex_unlock(&st->lock);
	err = -ENOMEM;
	if (!r)
		goto unlock;

	if (tp->rx_opt.sack_ok)
		opts |= FTVM_TCP_OPT_SACK;
	if (tp->rx_opt.tstamp_ok)
		opts |= FTVM_TCP_OPT_TSTAMP;
	if (tp->rx_opt.wscale_ok)
		opts |= FTVM_TCP_OPT_WSCALE;
	ftvm_sock_tuple(sk, &r->key);
	r->src_cookie = cookie;
	r->snd_una = tp->snd_una;
	r->sndq_len = sndq;
	r->copied_seq = tp->copied_seq;
	r->rcvq_len = rcvq;
	r->snd_wl1 = tp->snd_wl1;
	r->snd_wnd = tp->snd_wnd;
	r->max_window = tp->max_window;
	r->rcv_wnd = tp->rcv_wnd;
	r->rcv_wup = tp->rcv_wup;
	r->mss = tp->rx_opt.mss_clamp;
	r->snd_wscale = tp->rx_opt.snd_wscale;
	r->rcv_wscale = tp->rx_opt.rcv_wscale;
	r->opts = opts;
	r->ts_val = ftvm_tcp_ts(tp, tcp_clock_ns());
	r->sndbuf = READ_ONCE(sk->sk_sndbuf);
	r->rcvbuf = READ_ONCE(sk->sk_rcvbuf);
	r->srtt_us = tp->srtt_us >> 3;
	r->rttvar_us = tp->mdev_us >> 2;
	r->cwnd = tcp_snd_cwnd(tp);
	r->ssthresh = tp->snd_ssthresh;
	err = ftvm_copy_queues(sk, r);
unlock:
	release_sock(sk);
	sock_put(sk);
	if (err) {
		if (r)
			ftvm_rec_free(r);
		return ERR_PTR(err);
	}
	return r;
}

/* Per-namespace store. */

static int __net_init ftvm_state_net_init(struct net *net)
{
	struct ftvm_sstore *st = ftvm_sstore(net);

	mutex_init(&st->lock);
	xa_init(&st->sess);
	return ftvm_stage_init(st);
}

static void __net_exit ftvm_state_net_exit(struct net *net)
{
	struct ftvm_sstore *st = ftvm_sstore(net);
	struct ftvm_sess *e;
	unsigned long cookie;

	/* No request can reach a dying namespace's store any more. */
	mutex_lock(&st->lock);
	xa_for_each(&st->sess, cookie, e)
		ftvm_sess_erase(st, cookie);
	mutex_unlock(&st->lock);
	ftvm_stage_uninit(st);
	xa_destroy(&st->sess);
	mutex_destroy(&st->lock);
}

static struct pernet_operations ftvm_state_net_ops = {
	.init = ftvm_state_net_init,
	.exit = ftvm_state_net_exit,
	.id = &ftvm_state_net_id,
	.size = sizeof(struct ftvm_sstore),
};

int __init ftvm_state_init(void)
{
	return register_pernet_subsys(&ftvm_state_net_ops);
}

void ftvm_state_uninit(void)
{
	unregister_pernet_subsys(&ftvm_state_net_ops);
}
