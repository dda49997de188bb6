// SPDX-License-Identifier: GPL-2.0
/*
 * Nudge and retire: act on named connections of a VM.
 *
 * A connection restored (or activated) before the data path switches to
 * its VM leaves repair mode with a window probe, which the fence drops.
 * Then nothing happens until a timer fires: its send queue waits for the
 * retransmission timer (a restored socket has no RTT sample, so its RTO
 * is TCP_TIMEOUT_FALLBACK, 3 s, backed off after every fenced attempt),
 * and a client waiting for the server's data or ACK waits as long.
 *
 * FTVM_CMD_SESSION_NUDGE, sent right after the switch, names the
 * sessions that moved.  Each of them that is an established TCP
 * connection in the VM's namespace:
 *
 *  - sends an ACK now, carrying its rcv_nxt and receive window (a window
 *    update for a client that was blocked on a closed window, and where
 *    the server's receive stream stands);
 *  - if it has unacknowledged data, has its retransmission timer fire
 *    now: the head of its send queue is retransmitted as on an RTO (loss
 *    state, the RTO backed off once; the client's ACK ends both, as after
 *    any timeout).
 *
 * FTVM_CMD_SESSION_RETIRE names sessions that went on elsewhere while
 * their connections stayed in this VM (a drain handed them over to
 * their backups alive): each that is an established or close-wait TCP
 * connection its service still holds ends without a packet, as on a
 * reset the client never sent: its service's next call fails with
 * ECONNABORTED, its timers stop and its 5-tuple is free (the VM may be
 * the session's backup again later, and an activation would find the
 * 5-tuple in use).  What it still queues is freed when the service
 * closes it; what the namespace's session store keeps of it (the
 * sequence numbers a snapshot last saw, its application state) is
 * forgotten at once, not at the next complete snapshot of its port,
 * which a drained VM may never have (ftd takes none once it removed
 * the VM or declared it failed).
 *
 * FTVM_CMD_SESSION_GONE asks which named sessions have nothing left in
 * the VM's namespace: no connection in any state (established, closing,
 * time-wait, or a request socket still in its handshake).  A controller
 * forgets those (ftd removes them from the data path's session map,
 * Documentation/replication.rst, "Closed sessions").  It changes
 * nothing.  A UDP name is never said gone (a UDP service's binding is
 * no connection).  Sessions of sockets bound to a device are found as
 * well (ftvm_sock_lookup()).
 *
 * Each socket is found in the established hash under RCU, with a
 * reference, and locked with lock_sock() in the request's process
 * context, so neither its input nor its timers run while it is changed;
 * the timer itself runs later, in softirq or at release_sock(), as every
 * TCP timer does.  A name without a socket, a socket that is not an
 * established connection (closing, time-wait, request), one in repair
 * mode and a UDP name are skipped: a nudge or a retire is safe on any
 * session, whatever became of it.
 */
#include <net/inet_hashtables.h>
#include <net/inet6_hashtables.h>
#include <net/tcp.h>

#include "uapi/ftvm.h"
#include "netlink.h"
#include "restore.h"
#include "state.h"

/* ftvm_sock_lookup() for a segment that came in on device @dif. */
static struct sock *ftvm_sock_lookup_dev(struct net *net,
					 const struct ftvm_tuple *t, int dif)
{
	struct inet_hashinfo *h = net->ipv4.tcp_death_row.hashinfo;

	if (t->family == AF_INET || ftvm_tuple_mapped(t)) {
		__be32 l = t->family == AF_INET ? t->laddr.v4 : t->laddr.v6.s6_addr32[3];
		__be32 r = t->family == AF_INET ? t->raddr.v4 : t->raddr.v6.s6_addr32[3];

		return __inet_lookup_established(net, h, r, htons(t->rport), l,
						 t->lport, dif, 0);
	}
#if IS_ENABLED(CONFIG_IPV6)
	return __inet6_lookup_established(net, h, &t->raddr.v6,
					  htons(t->rport), &t->laddr.v6,
					  t->lport, dif, 0);
#else
	return NULL;
#endif
}

/*
 * The socket of TCP session @t in @net, referenced (it may be a
 * time-wait or request minisock: check sk_fullsock()), or NULL.
 *
 * A lookup names the device a segment came in on, and finds the
 * sockets bound to no device or to that one (SO_BINDTODEVICE, or a
 * listener's binding, which its connections inherit).  With no segment
 * here, @t is looked up as if for no device, then, if nothing was
 * found, for each device of @net in turn: a VM's namespace has a few.
 * A socket bound to a device that has left @net is not found; it can
 * neither send nor receive.
 */
struct sock *ftvm_sock_lookup(struct net *net, const struct ftvm_tuple *t)
{
	struct net_device *dev;
	struct sock *sk;

	rcu_read_lock();
	sk = ftvm_sock_lookup_dev(net, t, 0);
	if (!sk)
		for_each_netdev_rcu(net, dev) {
			sk = ftvm_sock_lookup_dev(net, t, dev->ifindex);
			if (sk)
				break;
		}
	rcu_read_unlock();
	return sk;
}

/* Nudge @sk if it is an established connection; returns whether it was. */
static bool ftvm_nudge_sock(struct sock *sk)
{
	struct tcp_sock *tp = tcp_sk(sk);
	bool nudged = false;

	lock_sock(sk);
	if (sk->sk_state == TCP_ESTABLISHED && !tp->repair) {
		__tcp_send_ack(sk, tp->rcv_nxt);
		if (tp->packets_out && tcp_rtx_queue_head(sk))
			inet_csk_reset_xmit_timer(sk, ICSK_TIME_RETRANS, 0,
						  TCP_RTO_MAX);
		nudged = true;
	}
	release_sock(sk);
	return nudged;
}

/*
 * End @sk without a packet if its service still holds it, established or
 * half-closed by the client; returns whether it did.  As tcp_abort()
 * does, but never a reset: tcp_done() sends nothing.  Its entry in the
 * namespace's session store (state.c: what a snapshot knew of it, any
 * application state) goes with it: the session lives elsewhere now, and
 * the drained VM may never be snapshotted again to prune it (ftd takes
 * no snapshot of a VM it removed or declared failed).
 */
static bool ftvm_retire_sock(struct sock *sk)
{
	bool retired = false;

	lock_sock(sk);
	if ((sk->sk_state == TCP_ESTABLISHED || sk->sk_state == TCP_CLOSE_WAIT) &&
	    !sock_flag(sk, SOCK_DEAD) && !tcp_sk(sk)->repair) {
		WRITE_ONCE(sk->sk_err, ECONNABORTED);
		/* Coupled with the smp_rmb() in tcp_poll(). */
		smp_wmb();
		sk_error_report(sk);
		tcp_done(sk);
		retired = true;
	}
	release_sock(sk);
	if (retired)
		ftvm_state_detach(sock_net(sk), ftvm_sock_cookie(sk));
	return retired;
}

/*
 * Check the names of a nudge, retire or gone check (@cmd) before any
 * socket is touched: FTVM_A_TUPLE only, at least one; their number in
 * *@named.  Returns the VM's namespace, referenced, or an ERR_PTR().
 */
static struct net *ftvm_named_net(struct genl_info *info, u8 cmd,
				  unsigned int *named)
{
	struct netlink_ext_ack *extack = info->extack;
	struct ftvm_tuple t;
	struct nlattr *a;
	int rem, err;

	a = info->attrs[FTVM_A_SNAP] ?: info->attrs[FTVM_A_SESSION];
	if (a) {
		if (cmd == FTVM_CMD_SESSION_NUDGE)
			NL_SET_ERR_MSG_ATTR(extack, a, FTVM_NOT_NUDGE);
		else if (cmd == FTVM_CMD_SESSION_RETIRE)
			NL_SET_ERR_MSG_ATTR(extack, a, FTVM_NOT_RETIRE);
		else
			NL_SET_ERR_MSG_ATTR(extack, a, FTVM_NOT_GONE);
		return ERR_PTR(-EINVAL);
	}
	*named = 0;
	nla_for_each_attr(a, genlmsg_data(info->genlhdr),
			  genlmsg_len(info->genlhdr), rem) {
		if (nla_type(a) != FTVM_A_TUPLE)
			continue;
		err = ftvm_tuple_parse(a, &t, extack);
		if (err)
			return ERR_PTR(err);
		(*named)++;
	}
	if (!*named) {
		if (cmd == FTVM_CMD_SESSION_NUDGE)
			NL_SET_ERR_MSG(extack, "name the sessions to nudge (FTVM_A_TUPLE)");
		else if (cmd == FTVM_CMD_SESSION_RETIRE)
			NL_SET_ERR_MSG(extack, "name the sessions to retire (FTVM_A_TUPLE)");
		else
			NL_SET_ERR_MSG(extack, "name the sessions to check (FTVM_A_TUPLE)");
		return ERR_PTR(-EINVAL);
	}
	return ftvm_nl_vm_netns(genl_info_net(info), info->attrs[FTVM_A_VM],
				extack);
}

/*
 * The socket that a request's attribute @a names, referenced (as
 * ftvm_sock_lookup()), if @a is an FTVM_A_TUPLE naming a TCP session
 * (into @t); NULL if that session has no socket; ERR_PTR(-EINVAL) if @a
 * names no TCP session.
 */
static struct sock *ftvm_named_sock(struct net *net, const struct nlattr *a,
				    struct ftvm_tuple *t)
{
	if (nla_type(a) != FTVM_A_TUPLE || ftvm_tuple_parse(a, t, NULL) ||
	    t->proto != IPPROTO_TCP)
		return ERR_PTR(-EINVAL);
	return ftvm_sock_lookup(net, t);
}

/* Nudge or retire (@cmd) the sessions a request names. */
static int ftvm_named_doit(struct genl_info *info, u8 cmd)
{
	bool nudge = cmd == FTVM_CMD_SESSION_NUDGE;
	struct sk_buff *msg;
	unsigned int named;
	struct ftvm_tuple t;
	struct nlattr *a;
	struct net *net;
	u32 count = 0;
	int rem;

	net = ftvm_named_net(info, cmd, &named);
	if (IS_ERR(net))
		return PTR_ERR(net);
	/* Before any session is touched: a retire cannot be undone. */
	msg = ftvm_restore_reply_new(0);
	if (!msg) {
		put_net(net);
		return -ENOMEM;
	}

	nla_for_each_attr(a, genlmsg_data(info->genlhdr),
			  genlmsg_len(info->genlhdr), rem) {
		struct sock *sk = ftvm_named_sock(net, a, &t);

		if (IS_ERR_OR_NULL(sk))
			continue;
		if (sk_fullsock(sk) && sk->sk_protocol == IPPROTO_TCP &&
		    (nudge ? ftvm_nudge_sock(sk) : ftvm_retire_sock(sk)))
			count++;
		sock_gen_put(sk);
		cond_resched();
	}
	put_net(net);
	return ftvm_restore_reply(msg, info, cmd, count, NULL);
}

int ftvm_nudge_doit(struct sk_buff *skb, struct genl_info *info)
{
	return ftvm_named_doit(info, FTVM_CMD_SESSION_NUDGE);
}

int ftvm_retire_doit(struct sk_buff *skb, struct genl_info *info)
{
	return ftvm_named_doit(info, FTVM_CMD_SESSION_RETIRE);
}

/*
 * session-gone: the reply names (FTVM_A_TUPLE, as asked) each named TCP
 * session of which nothing is left in the VM's namespace, and counts
 * them (FTVM_A_SNAP { COUNT }).  Sized for every name before any
 * lookup: it cannot fail once they start.
 */
int ftvm_gone_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct sk_buff *msg;
	unsigned int named;
	struct ftvm_tuple t;
	struct nlattr *a, *nest;
	struct net *net;
	u32 count = 0;
	void *hdr;
	int rem;

	net = ftvm_named_net(info, FTVM_CMD_SESSION_GONE, &named);
	if (IS_ERR(net))
		return PTR_ERR(net);
	msg = ftvm_restore_reply_new(named);
	if (!msg) {
		put_net(net);
		return -ENOMEM;
	}
	hdr = genlmsg_put_reply(msg, info, &ftvm_genl_family, 0,
				FTVM_CMD_SESSION_GONE);
	if (WARN_ON_ONCE(!hdr))
		goto nospace;

	nla_for_each_attr(a, genlmsg_data(info->genlhdr),
			  genlmsg_len(info->genlhdr), rem) {
		struct sock *sk;

		cond_resched();
		sk = ftvm_named_sock(net, a, &t);
		if (IS_ERR(sk))
			continue;
		if (sk) {
			sock_gen_put(sk);
			continue;
		}
		if (WARN_ON_ONCE(ftvm_tuple_put(msg, &t)))
			goto nospace;
		count++;
	}
	put_net(net);
	nest = nla_nest_start(msg, FTVM_A_SNAP);
	if (WARN_ON_ONCE(!nest || nla_put_u32(msg, FTVM_A_SNAP_COUNT, count))) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	nla_nest_end(msg, nest);
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);

nospace:
	put_net(net);
	nlmsg_free(msg);
	return -EMSGSIZE;
}
