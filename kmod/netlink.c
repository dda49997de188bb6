// SPDX-License-Identifier: GPL-2.0
/*
 * The "ftvm" generic netlink family: requests, replies and events.
 *
 * Documentation/netlink/ftvm.yaml is the specification; every policy
 * below mirrors a "checks:" there.  Policies are per operation and
 * strict (resv_start_op is 0): unknown attributes, attributes an
 * operation does not take and trailing garbage are all rejected by the
 * core before a handler runs.  Handlers reject what policies cannot
 * express with an extack message naming the offending attribute.
 */
#include <linux/ctype.h>
#include <linux/etherdevice.h>
#include <linux/netdevice.h>
#include <linux/rtnetlink.h>
#include <net/genetlink.h>
#include <net/sock.h>
#include <net/tcp.h>
#include <uapi/linux/net_namespace.h>

#include "commit.h"
#include "device.h"
#include "exit.h"
#include "hold.h"
#include "netlink.h"
#include "restore.h"
#include "state.h"
#include "vm.h"

enum ftvm_mcgrp {
	FTVM_MCGRP_EVENTS_ID,
};

static const struct genl_multicast_group ftvm_mcgrps[] = {
	[FTVM_MCGRP_EVENTS_ID] = { .name = FTVM_MCGRP_EVENTS },
};

/* Attributes a request may carry inside FTVM_A_VM. */
static const struct nla_policy ftvm_vm_policy[FTVM_A_VM_MAX + 1] = {
	[FTVM_A_VM_ID] = NLA_POLICY_RANGE(NLA_U32, FTVM_VM_ID_MIN,
					  FTVM_VM_ID_MAX),
	[FTVM_A_VM_NAME] = { .type = NLA_NUL_STRING,
			     .len = FTVM_VM_NAME_LEN - 1 },
	[FTVM_A_VM_IFINDEX] = NLA_POLICY_MIN(NLA_U32, 1),
	[FTVM_A_VM_IFNAME] = { .type = NLA_NUL_STRING, .len = IFNAMSIZ - 1 },
	[FTVM_A_VM_MAC] = NLA_POLICY_ETH_ADDR,
	[FTVM_A_VM_STATE] = NLA_POLICY_RANGE(NLA_U8, FTVM_VM_STATE_UP,
					     FTVM_VM_STATE_UP),
	/* Reported by the kernel, never taken from a request. */
	[FTVM_A_VM_FAIL_REASON] = { .type = NLA_REJECT,
				    .reject_message = "the failure reason is set by the kernel" },
	[FTVM_A_VM_FAIL_TIME] = { .type = NLA_REJECT,
				  .reject_message = "the failure time is set by the kernel" },
	[FTVM_A_VM_PAD] = { .type = NLA_REJECT },
	[FTVM_A_VM_NETNS_FD] = NLA_POLICY_MIN(NLA_S32, 0),
	[FTVM_A_VM_NETNS_ID] = { .type = NLA_REJECT },
	[FTVM_A_VM_SILENT_EXIT] = NLA_POLICY_MAX(NLA_U8, 1),
	[FTVM_A_VM_HOLD] = { .type = NLA_REJECT,
			     .reject_message = "hold counters are reported by the kernel" },
	[FTVM_A_VM_RESUME] = { .type = NLA_FLAG },
	[FTVM_A_VM_ARM] = { .type = NLA_FLAG },
};

static const struct nla_policy ftvm_policy[FTVM_A_MAX + 1] = {
	[FTVM_A_VM] = NLA_POLICY_NESTED(ftvm_vm_policy),
};

/* Session snapshots and restores (state.c, restore.c). */
const struct nla_policy ftvm_snap_policy[FTVM_A_SNAP_MAX + 1] = {
	[FTVM_A_SNAP_PORT] = NLA_POLICY_MIN(NLA_U16, 1),
	[FTVM_A_SNAP_PROTO] = { .type = NLA_U8 },
	[FTVM_A_SNAP_SINCE] = { .type = NLA_U64 },
	[FTVM_A_SNAP_COOKIE] = { .type = NLA_U64 },
	[FTVM_A_SNAP_GEN] = { .type = NLA_REJECT },
	[FTVM_A_SNAP_FLAGS] = NLA_POLICY_MASK(NLA_U32, FTVM_SNAP_F_STAGE |
					      FTVM_SNAP_F_DISCARD |
					      FTVM_SNAP_F_HELD |
					      FTVM_SNAP_F_QUIET),
	[FTVM_A_SNAP_COUNT] = { .type = NLA_REJECT },
	[FTVM_A_SNAP_PAD] = { .type = NLA_REJECT },
	[FTVM_A_SNAP_STAGED] = { .type = NLA_REJECT },
	[FTVM_A_SNAP_HANDSHAKES] = { .type = NLA_REJECT },
	[FTVM_A_SNAP_TRACKED] = { .type = NLA_REJECT },
};

/* What an activation (or a discard) takes in FTVM_A_SNAP: flags only. */
#define FTVM_NOT_ACTIVATION	"not an activation parameter (name sessions with FTVM_A_TUPLE)"
static const struct nla_policy ftvm_activate_snap_policy[FTVM_A_SNAP_MAX + 1] = {
	[FTVM_A_SNAP_PORT] = { .type = NLA_REJECT, .reject_message = FTVM_NOT_ACTIVATION },
	[FTVM_A_SNAP_PROTO] = { .type = NLA_REJECT, .reject_message = FTVM_NOT_ACTIVATION },
	[FTVM_A_SNAP_SINCE] = { .type = NLA_REJECT, .reject_message = FTVM_NOT_ACTIVATION },
	[FTVM_A_SNAP_COOKIE] = { .type = NLA_REJECT, .reject_message = FTVM_NOT_ACTIVATION },
	[FTVM_A_SNAP_GEN] = { .type = NLA_REJECT },
	[FTVM_A_SNAP_FLAGS] = NLA_POLICY_MASK(NLA_U32, FTVM_SNAP_F_STAGE |
					      FTVM_SNAP_F_DISCARD |
					      FTVM_SNAP_F_HELD |
					      FTVM_SNAP_F_QUIET),
	[FTVM_A_SNAP_COUNT] = { .type = NLA_REJECT },
	[FTVM_A_SNAP_PAD] = { .type = NLA_REJECT },
	[FTVM_A_SNAP_STAGED] = { .type = NLA_REJECT },
	[FTVM_A_SNAP_HANDSHAKES] = { .type = NLA_REJECT },
	[FTVM_A_SNAP_TRACKED] = { .type = NLA_REJECT },
};

/*
 * What a socket can hold: srtt_us is scaled by 8, mdev_us by 4, and
 * tcp_snd_cwnd_set() wants a window positive as an int.
 */
static struct netlink_range_validation ftvm_srtt_range __ro_after_init = {
	.max = U32_MAX >> 3,
};
static struct netlink_range_validation ftvm_rttvar_range __ro_after_init = {
	.max = U32_MAX >> 2,
};
static struct netlink_range_validation ftvm_cwnd_range __ro_after_init = {
	.max = INT_MAX,
};

const struct nla_policy ftvm_tcp_policy[FTVM_A_TCP_MAX + 1] = {
	[FTVM_A_TCP_STATE] = { .type = NLA_U8 },
	[FTVM_A_TCP_SND_UNA] = { .type = NLA_U32 },
	[FTVM_A_TCP_SND_NXT] = { .type = NLA_U32 },
	[FTVM_A_TCP_SNDQ_LEN] = { .type = NLA_U32 },
	[FTVM_A_TCP_COPIED_SEQ] = { .type = NLA_U32 },
	[FTVM_A_TCP_RCVQ_LEN] = { .type = NLA_U32 },
	[FTVM_A_TCP_SND_WL1] = { .type = NLA_U32 },
	[FTVM_A_TCP_SND_WND] = { .type = NLA_U32 },
	[FTVM_A_TCP_MAX_WINDOW] = { .type = NLA_U32 },
	[FTVM_A_TCP_RCV_WND] = { .type = NLA_U32 },
	[FTVM_A_TCP_RCV_WUP] = { .type = NLA_U32 },
	[FTVM_A_TCP_MSS] = NLA_POLICY_MIN(NLA_U16, 8),
	[FTVM_A_TCP_SND_WSCALE] = NLA_POLICY_MAX(NLA_U8, TCP_MAX_WSCALE),
	[FTVM_A_TCP_RCV_WSCALE] = NLA_POLICY_MAX(NLA_U8, TCP_MAX_WSCALE),
	[FTVM_A_TCP_OPTS] = NLA_POLICY_MASK(NLA_U32, FTVM_TCP_OPT_SACK |
					    FTVM_TCP_OPT_TSTAMP |
					    FTVM_TCP_OPT_WSCALE),
	[FTVM_A_TCP_TS_VAL] = { .type = NLA_U32 },
	[FTVM_A_TCP_TS_RECENT] = { .type = NLA_U32 },
	[FTVM_A_TCP_SNDBUF] = { .type = NLA_U32 },
	[FTVM_A_TCP_RCVBUF] = { .type = NLA_U32 },
	[FTVM_A_TCP_SRTT_US] = NLA_POLICY_FULL_RANGE(NLA_U32, &ftvm_srtt_range),
	[FTVM_A_TCP_RTTVAR_US] = NLA_POLICY_FULL_RANGE(NLA_U32, &ftvm_rttvar_range),
	[FTVM_A_TCP_SND_CWND] = NLA_POLICY_FULL_RANGE(NLA_U32, &ftvm_cwnd_range),
	[FTVM_A_TCP_SND_SSTHRESH] = { .type = NLA_U32 },
};

const struct nla_policy ftvm_sess_policy[FTVM_A_SESS_MAX + 1] = {
	[FTVM_A_SESS_VERSION] = { .type = NLA_U8 },
	[FTVM_A_SESS_PROTO] = { .type = NLA_U8 },
	[FTVM_A_SESS_FAMILY] = { .type = NLA_U8 },
	[FTVM_A_SESS_LADDR] = NLA_POLICY_RANGE(NLA_BINARY, 4, 16),
	[FTVM_A_SESS_RADDR] = NLA_POLICY_RANGE(NLA_BINARY, 4, 16),
	[FTVM_A_SESS_LPORT] = { .type = NLA_U16 },
	[FTVM_A_SESS_RPORT] = { .type = NLA_U16 },
	[FTVM_A_SESS_COOKIE] = { .type = NLA_U64 },
	[FTVM_A_SESS_GEN] = { .type = NLA_U64 },
	[FTVM_A_SESS_FLAGS] = NLA_POLICY_MASK(NLA_U32, FTVM_SESS_F_BLOB |
					      FTVM_SESS_F_STALE),
	[FTVM_A_SESS_TCP] = NLA_POLICY_NESTED(ftvm_tcp_policy),
	[FTVM_A_SESS_BLOB] = { .type = NLA_BINARY, .len = FTVM_BLOB_MAX },
	[FTVM_A_SESS_PAD] = { .type = NLA_BINARY },
};

/* A session's name (FTVM_A_TUPLE): the 5-tuple of its record, nothing else. */
#define FTVM_NOT_TUPLE	"a session is named by its 5-tuple only"
static const struct nla_policy ftvm_tuple_policy[FTVM_A_SESS_MAX + 1] = {
	[FTVM_A_SESS_VERSION] = { .type = NLA_REJECT, .reject_message = FTVM_NOT_TUPLE },
	[FTVM_A_SESS_PROTO] = { .type = NLA_U8 },
	[FTVM_A_SESS_FAMILY] = { .type = NLA_U8 },
	[FTVM_A_SESS_LADDR] = NLA_POLICY_RANGE(NLA_BINARY, 4, 16),
	[FTVM_A_SESS_RADDR] = NLA_POLICY_RANGE(NLA_BINARY, 4, 16),
	[FTVM_A_SESS_LPORT] = { .type = NLA_U16 },
	[FTVM_A_SESS_RPORT] = { .type = NLA_U16 },
	[FTVM_A_SESS_COOKIE] = { .type = NLA_REJECT, .reject_message = FTVM_NOT_TUPLE },
	[FTVM_A_SESS_GEN] = { .type = NLA_REJECT, .reject_message = FTVM_NOT_TUPLE },
	[FTVM_A_SESS_FLAGS] = { .type = NLA_REJECT, .reject_message = FTVM_NOT_TUPLE },
	[FTVM_A_SESS_TCP] = { .type = NLA_REJECT, .reject_message = FTVM_NOT_TUPLE },
	[FTVM_A_SESS_BLOB] = { .type = NLA_REJECT, .reject_message = FTVM_NOT_TUPLE },
	[FTVM_A_SESS_PAD] = { .type = NLA_REJECT, .reject_message = FTVM_NOT_TUPLE },
};

const struct nla_policy ftvm_session_policy[FTVM_A_MAX + 1] = {
	[FTVM_A_VM] = NLA_POLICY_NESTED(ftvm_vm_policy),
	[FTVM_A_SNAP] = NLA_POLICY_NESTED(ftvm_snap_policy),
	[FTVM_A_SESSION] = NLA_POLICY_NESTED(ftvm_sess_policy),
	[FTVM_A_SNDQ] = { .type = NLA_BINARY, .len = FTVM_QCHUNK },
	[FTVM_A_RCVQ] = { .type = NLA_BINARY, .len = FTVM_QCHUNK },
};

/* session-activate: the VM, flags, and the sessions named (none: all). */
static const struct nla_policy ftvm_activate_policy[FTVM_A_MAX + 1] = {
	[FTVM_A_VM] = NLA_POLICY_NESTED(ftvm_vm_policy),
	[FTVM_A_SNAP] = NLA_POLICY_NESTED(ftvm_activate_snap_policy),
	/* Nested: refused by the handler, where the message can say why. */
	[FTVM_A_SESSION] = NLA_POLICY_NESTED(ftvm_sess_policy),
	[FTVM_A_SNDQ] = { .type = NLA_REJECT, .reject_message = FTVM_NOT_RECORD },
	[FTVM_A_RCVQ] = { .type = NLA_REJECT, .reject_message = FTVM_NOT_RECORD },
	[FTVM_A_TUPLE] = NLA_POLICY_NESTED(ftvm_tuple_policy),
};

/*
 * session-nudge and session-retire: the VM and the sessions named; @why
 * refuses queue bytes (a record's other attributes are refused by the
 * handler, where the message can say why).
 */
#define FTVM_NAMED_POLICY(why) {					\
	[FTVM_A_VM] = NLA_POLICY_NESTED(ftvm_vm_policy),		\
	[FTVM_A_SNAP] = NLA_POLICY_NESTED(ftvm_activate_snap_policy),	\
	[FTVM_A_SESSION] = NLA_POLICY_NESTED(ftvm_sess_policy),	\
	[FTVM_A_SNDQ] = { .type = NLA_REJECT, .reject_message = why },	\
	[FTVM_A_RCVQ] = { .type = NLA_REJECT, .reject_message = why },	\
	[FTVM_A_TUPLE] = NLA_POLICY_NESTED(ftvm_tuple_policy),		\
}

static const struct nla_policy ftvm_nudge_policy[FTVM_A_MAX + 1] =
	FTVM_NAMED_POLICY(FTVM_NOT_NUDGE);
static const struct nla_policy ftvm_retire_policy[FTVM_A_MAX + 1] =
	FTVM_NAMED_POLICY(FTVM_NOT_RETIRE);
static const struct nla_policy ftvm_gone_policy[FTVM_A_MAX + 1] =
	FTVM_NAMED_POLICY(FTVM_NOT_GONE);

const struct nla_policy ftvm_ckpt_attr_policy[FTVM_A_CKPT_MAX + 1] = {
	[FTVM_A_CKPT_FD] = NLA_POLICY_MIN(NLA_S32, 0),
	[FTVM_A_CKPT_BLOB] = { .type = NLA_BINARY, .len = FTVM_BLOB_MAX },
	[FTVM_A_CKPT_GEN] = { .type = NLA_REJECT },
	[FTVM_A_CKPT_PAD] = { .type = NLA_REJECT },
};

const struct nla_policy ftvm_ckpt_policy[FTVM_A_MAX + 1] = {
	[FTVM_A_CKPT] = NLA_POLICY_NESTED(ftvm_ckpt_attr_policy),
};

/* commit-set: a service's output commit. */
static const struct nla_policy ftvm_commit_attr_policy[FTVM_A_COMMIT_MAX + 1] = {
	[FTVM_A_COMMIT_FAMILY] = { .type = NLA_U8 },
	[FTVM_A_COMMIT_ADDR] = NLA_POLICY_RANGE(NLA_BINARY, 4, 16),
	[FTVM_A_COMMIT_PORT] = NLA_POLICY_MIN(NLA_U16, 1),
	[FTVM_A_COMMIT_PROTO] = { .type = NLA_U8 },
	[FTVM_A_COMMIT_MODE] = NLA_POLICY_MAX(NLA_U8, FTVM_COMMIT_MAX),
	[FTVM_A_COMMIT_CKPT_WAIT] = NLA_POLICY_MAX(NLA_U32,
						   FTVM_COMMIT_CKPT_WAIT_MAX),
	[FTVM_A_COMMIT_PAD] = { .type = NLA_REJECT },
	[FTVM_A_COMMIT_SESSIONS ... FTVM_A_COMMIT_MAX] = {
		.type = NLA_REJECT,
		.reject_message = "counters are reported by the kernel" },
};

static const struct nla_policy ftvm_commit_policy[FTVM_A_MAX + 1] = {
	[FTVM_A_COMMIT] = NLA_POLICY_NESTED(ftvm_commit_attr_policy),
};

/* commit-get, commit-sess-get: dumps of everything; they take nothing. */
static const struct nla_policy ftvm_commit_get_policy[FTVM_A_MAX + 1] = {
};

/* Reply and event building. */

/* The ingress hold of @vm's namespace, if it has one. */
static int ftvm_nl_put_hold(struct sk_buff *skb, const struct ftvm_vm *vm)
{
	struct ftvm_hold_stats st;
	struct nlattr *nest;
	struct net *vnet;

	vnet = ftvm_vm_get_netns(vm);
	if (!vnet)
		return 0;
	ftvm_hold_stats(vnet, &st);
	put_net(vnet);
	nest = nla_nest_start(skb, FTVM_A_VM_HOLD);
	if (!nest ||
	    nla_put_u32(skb, FTVM_A_HOLD_ARMED_MS, st.armed_ms) ||
	    nla_put_u32(skb, FTVM_A_HOLD_QUEUED, st.queued) ||
	    nla_put_u64_64bit(skb, FTVM_A_HOLD_HELD, st.held, FTVM_A_HOLD_PAD) ||
	    nla_put_u64_64bit(skb, FTVM_A_HOLD_RELEASED, st.released,
			      FTVM_A_HOLD_PAD) ||
	    nla_put_u64_64bit(skb, FTVM_A_HOLD_EXPIRED, st.expired,
			      FTVM_A_HOLD_PAD) ||
	    nla_put_u64_64bit(skb, FTVM_A_HOLD_OVERFLOW, st.overflow,
			      FTVM_A_HOLD_PAD) ||
	    nla_put_u64_64bit(skb, FTVM_A_HOLD_DEV_GONE, st.dev_gone,
			      FTVM_A_HOLD_PAD))
		return -EMSGSIZE;	/* the caller cancels the VM's nest */
	nla_nest_end(skb, nest);
	return 0;
}

/*
 * @vm as FTVM_A_VM; with its namespace's hold counters if @stats (replies
 * to VM_GET, not events).
 */
static int ftvm_nl_put_vm(struct sk_buff *skb, struct net *net,
			  const struct ftvm_vm *vm, bool stats)
{
	int nsid = ftvm_vm_netns_id(net, vm);
	u8 state = READ_ONCE(vm->state);
	struct nlattr *nest;

	nest = nla_nest_start(skb, FTVM_A_VM);
	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u32(skb, FTVM_A_VM_ID, vm->id) ||
	    nla_put_string(skb, FTVM_A_VM_NAME, vm->name) ||
	    nla_put_u32(skb, FTVM_A_VM_IFINDEX, READ_ONCE(vm->ifindex)) ||
	    nla_put(skb, FTVM_A_VM_MAC, ETH_ALEN, vm->mac) ||
	    nla_put_u8(skb, FTVM_A_VM_STATE, state) ||
	    nla_put_u8(skb, FTVM_A_VM_SILENT_EXIT, vm->silent_exit))
		goto cancel;
	if (nsid != NETNSA_NSID_NOT_ASSIGNED &&
	    nla_put_s32(skb, FTVM_A_VM_NETNS_ID, nsid))
		goto cancel;
	if (state == FTVM_VM_STATE_FAILED &&
	    (nla_put_u8(skb, FTVM_A_VM_FAIL_REASON, READ_ONCE(vm->fail_reason)) ||
	     nla_put_u64_64bit(skb, FTVM_A_VM_FAIL_TIME,
			       READ_ONCE(vm->fail_time), FTVM_A_VM_PAD)))
		goto cancel;
	if (stats && ftvm_nl_put_hold(skb, vm))
		goto cancel;
	nla_nest_end(skb, nest);
	return 0;
cancel:
	nla_nest_cancel(skb, nest);
	return -EMSGSIZE;
}

static size_t ftvm_nl_vm_size(bool stats)
{
	size_t hold = nla_total_size(0) +			/* HOLD */
		      2 * nla_total_size(sizeof(u32)) +		/* ARMED_MS, QUEUED */
		      5 * nla_total_size_64bit(sizeof(u64));	/* the counters */

	return nla_total_size(0) +			/* FTVM_A_VM */
	       nla_total_size(sizeof(u32)) +		/* ID */
	       nla_total_size(FTVM_VM_NAME_LEN) +	/* NAME */
	       nla_total_size(sizeof(u32)) +		/* IFINDEX */
	       nla_total_size(ETH_ALEN) +		/* MAC */
	       nla_total_size(sizeof(u8)) +		/* STATE */
	       nla_total_size(sizeof(u8)) +		/* SILENT_EXIT */
	       nla_total_size(sizeof(s32)) +		/* NETNS_ID */
	       nla_total_size(sizeof(u8)) +		/* FAIL_REASON */
	       nla_total_size_64bit(sizeof(u64)) +	/* FAIL_TIME */
	       (stats ? hold : 0);
}

static struct sk_buff *ftvm_nl_vm_msg(struct net *net, const struct ftvm_vm *vm,
				      u32 portid, u32 seq, u8 cmd, bool stats,
				      gfp_t gfp)
{
	struct sk_buff *skb;
	void *hdr;

	skb = genlmsg_new(ftvm_nl_vm_size(stats), gfp);
	if (!skb)
		return NULL;
	hdr = genlmsg_put(skb, portid, seq, &ftvm_genl_family, 0, cmd);
	if (!hdr || ftvm_nl_put_vm(skb, net, vm, stats)) {
		nlmsg_free(skb);
		return NULL;
	}
	genlmsg_end(skb, hdr);
	return skb;
}

void ftvm_nl_notify_vm(struct net *net, const struct ftvm_vm *vm, u8 cmd)
{
	struct sk_buff *skb;

	ASSERT_RTNL();
	if (!genl_has_listeners(&ftvm_genl_family, net, FTVM_MCGRP_EVENTS_ID))
		return;
	skb = ftvm_nl_vm_msg(net, vm, 0, 0, cmd, false, GFP_KERNEL);
	if (!skb) {
		/* Listeners cannot see a lost event: say it loudly. */
		pr_warn_ratelimited("event %u for vm %u lost: out of memory\n",
				    cmd, vm->id);
		return;
	}
	genlmsg_multicast_netns(&ftvm_genl_family, net, skb, 0,
				FTVM_MCGRP_EVENTS_ID, GFP_KERNEL);
}

/* Request parsing. */

/* The FTVM_A_VM nest of a request, parsed; it is required. */
static int ftvm_nl_vm_attrs(struct genl_info *info, struct nlattr **tb)
{
	int err;

	if (GENL_REQ_ATTR_CHECK(info, FTVM_A_VM)) {
		NL_SET_ERR_MSG(info->extack, "the request needs a VM (FTVM_A_VM)");
		return -EINVAL;
	}
	/* Already validated against ftvm_vm_policy by the core. */
	err = nla_parse_nested(tb, FTVM_A_VM_MAX, info->attrs[FTVM_A_VM],
			       ftvm_vm_policy, info->extack);
	if (err)
		return err;
	if (tb[FTVM_A_VM_RESUME] && info->genlhdr->cmd != FTVM_CMD_VM_FAIL) {
		NL_SET_ERR_MSG_ATTR(info->extack, tb[FTVM_A_VM_RESUME],
				    "only a failure (FTVM_CMD_VM_FAIL) is resumed");
		return -EINVAL;
	}
	if (tb[FTVM_A_VM_ARM] && info->genlhdr->cmd != FTVM_CMD_VM_SET) {
		NL_SET_ERR_MSG_ATTR(info->extack, tb[FTVM_A_VM_ARM],
				    "only a change (FTVM_CMD_VM_SET) arms a VM");
		return -EINVAL;
	}
	return 0;
}

static bool ftvm_name_valid(const char *name)
{
	if (!*name)
		return false;
	for (; *name; name++)
		if (!isalnum(*name) && *name != '-' && *name != '_' &&
		    *name != '.')
			return false;
	return true;
}

/* The VM a request names: by FTVM_A_VM_ID if given, else by name. */
static struct ftvm_vm *ftvm_nl_select(struct ftvm_net *fn, struct nlattr **tb,
				      struct netlink_ext_ack *extack)
{
	struct ftvm_vm *vm;

	if (tb[FTVM_A_VM_ID]) {
		vm = ftvm_vm_find(fn, nla_get_u32(tb[FTVM_A_VM_ID]));
		if (!vm) {
			NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_VM_ID],
					    "no VM with this id");
			return ERR_PTR(-ENOENT);
		}
		return vm;
	}
	if (tb[FTVM_A_VM_NAME]) {
		vm = ftvm_vm_find_name(fn, nla_data(tb[FTVM_A_VM_NAME]));
		if (!vm) {
			NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_VM_NAME],
					    "no VM with this name");
			return ERR_PTR(-ENOENT);
		}
		return vm;
	}
	NL_SET_ERR_MSG(extack, "VM id or name required");
	return ERR_PTR(-EINVAL);
}

/*
 * The device a request names, by index or by name (not both), checked
 * to be able to carry a VM and not to carry another one.  RTNL held.
 */
static struct net_device *ftvm_nl_device(struct net *net, struct ftvm_net *fn,
					 struct nlattr **tb,
					 const struct ftvm_vm *self,
					 struct netlink_ext_ack *extack)
{
	struct nlattr *attr = tb[FTVM_A_VM_IFINDEX] ?: tb[FTVM_A_VM_IFNAME];
	struct net_device *dev;
	struct ftvm_vm *other;
	int err;

	if (tb[FTVM_A_VM_IFINDEX] && tb[FTVM_A_VM_IFNAME]) {
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_VM_IFNAME],
				    "give the device by index or by name, not both");
		return ERR_PTR(-EINVAL);
	}
	if (tb[FTVM_A_VM_IFINDEX])
		dev = __dev_get_by_index(net, nla_get_u32(attr));
	else
		dev = __dev_get_by_name(net, nla_data(attr));
	if (!dev) {
		NL_SET_ERR_MSG_ATTR(extack, attr, "unknown device");
		return ERR_PTR(-ENODEV);
	}
	err = ftvm_device_check(dev, attr, extack);
	if (err)
		return ERR_PTR(err);
	other = ftvm_vm_find_ifindex(fn, dev->ifindex);
	if (other && other != self) {
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "device already carries another VM");
		return ERR_PTR(-EBUSY);
	}
	return dev;
}

/* Take the MAC from the request, else from a veth's peer. */
static int ftvm_nl_mac(struct net_device *dev, struct nlattr **tb, u8 *mac,
		       struct netlink_ext_ack *extack)
{
	if (tb[FTVM_A_VM_MAC]) {
		if (!is_valid_ether_addr(nla_data(tb[FTVM_A_VM_MAC]))) {
			NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_VM_MAC],
					    "bad MAC: must be unicast and not zero");
			return -EINVAL;
		}
		ether_addr_copy(mac, nla_data(tb[FTVM_A_VM_MAC]));
		return 0;
	}
	if (dev && ftvm_device_peer_mac(dev, mac))
		return 0;
	NL_SET_ERR_MSG(extack,
		       "the VM's MAC is needed: the device has no peer to take it from");
	return -EINVAL;
}

static int ftvm_nl_check_name(struct ftvm_net *fn, struct nlattr *attr,
			      struct netlink_ext_ack *extack)
{
	if (!ftvm_name_valid(nla_data(attr))) {
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "bad name: use letters, digits, '-', '_' and '.'");
		return -EINVAL;
	}
	if (ftvm_vm_find_name(fn, nla_data(attr))) {
		NL_SET_ERR_MSG_ATTR(extack, attr, "VM name already in use");
		return -EEXIST;
	}
	return 0;
}

/*
 * The namespace FTVM_A_VM_NETNS_FD names, with a reference, NULL when
 * the request names none.  An nsid is allocated for it in @net so that
 * replies can name it.
 */
static struct net *ftvm_nl_netns(struct net *net, struct nlattr **tb,
				 struct netlink_ext_ack *extack)
{
	struct nlattr *attr = tb[FTVM_A_VM_NETNS_FD];
	struct net *vnet;

	if (!attr)
		return NULL;
	vnet = get_net_ns_by_fd(nla_get_s32(attr));
	if (IS_ERR(vnet)) {
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "not a network namespace file descriptor");
		return vnet;
	}
	peernet2id_alloc(net, vnet, GFP_KERNEL);
	return vnet;
}

/*
 * The namespace of the VM the FTVM_A_VM nest @attr selects, with a
 * reference: what session requests operate on.
 */
struct net *ftvm_nl_vm_netns(struct net *net, const struct nlattr *attr,
			     struct netlink_ext_ack *extack)
{
	struct nlattr *tb[FTVM_A_VM_MAX + 1];
	struct ftvm_vm *vm;
	struct net *vnet;
	int err;

	if (!attr) {
		NL_SET_ERR_MSG(extack, "the VM is required (FTVM_A_VM)");
		return ERR_PTR(-EINVAL);
	}
	err = nla_parse_nested(tb, FTVM_A_VM_MAX, attr, ftvm_vm_policy, extack);
	if (err)
		return ERR_PTR(err);
	rcu_read_lock();
	vm = ftvm_nl_select(ftvm_net(net), tb, extack);
	if (IS_ERR(vm)) {
		rcu_read_unlock();
		return ERR_CAST(vm);
	}
	vnet = ftvm_vm_get_netns(vm);
	rcu_read_unlock();
	if (!vnet) {
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "the VM has no network namespace (or it is gone)");
		return ERR_PTR(-ENOENT);
	}
	return vnet;
}

/* Handlers. */

static int ftvm_nl_vm_new(struct sk_buff *skb, struct genl_info *info)
{
	struct net *net = genl_info_net(info);
	struct ftvm_net *fn = ftvm_net(net);
	struct nlattr *tb[FTVM_A_VM_MAX + 1];
	struct netlink_ext_ack *extack = info->extack;
	struct net_device *dev;
	struct ftvm_vm *vm;
	struct net *vnet;
	int err;

	err = ftvm_nl_vm_attrs(info, tb);
	if (err)
		return err;
	if (NL_REQ_ATTR_CHECK(extack, info->attrs[FTVM_A_VM], tb, FTVM_A_VM_ID)) {
		NL_SET_ERR_MSG(extack, "the VM id is required");
		return -EINVAL;
	}
	if (NL_REQ_ATTR_CHECK(extack, info->attrs[FTVM_A_VM], tb, FTVM_A_VM_NAME)) {
		NL_SET_ERR_MSG(extack, "the VM name is required");
		return -EINVAL;
	}
	if (!tb[FTVM_A_VM_IFINDEX] && !tb[FTVM_A_VM_IFNAME]) {
		NL_SET_ERR_MSG(extack, "the VM's device is required (ifindex or ifname)");
		return -EINVAL;
	}
	if (tb[FTVM_A_VM_STATE]) {
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_VM_STATE],
				    "a new VM is always up");
		return -EINVAL;
	}

	vnet = ftvm_nl_netns(net, tb, extack);
	if (IS_ERR(vnet))
		return PTR_ERR(vnet);
	vm = ftvm_vm_alloc(GFP_KERNEL);
	if (!vm) {
		err = -ENOMEM;
		goto err_net;
	}
	vm->id = nla_get_u32(tb[FTVM_A_VM_ID]);
	nla_strscpy(vm->name, tb[FTVM_A_VM_NAME], sizeof(vm->name));
	vm->state = FTVM_VM_STATE_UP;

	rtnl_lock();
	if (ftvm_vm_find(fn, vm->id)) {
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_VM_ID],
				    "VM id already registered");
		err = -EEXIST;
		goto err_unlock;
	}
	err = ftvm_nl_check_name(fn, tb[FTVM_A_VM_NAME], extack);
	if (err)
		goto err_unlock;
	dev = ftvm_nl_device(net, fn, tb, NULL, extack);
	if (IS_ERR(dev)) {
		err = PTR_ERR(dev);
		goto err_unlock;
	}
	err = ftvm_nl_mac(dev, tb, vm->mac, extack);
	if (err)
		goto err_unlock;
	vm->ifindex = dev->ifindex;
	RCU_INIT_POINTER(vm->netns, vnet);
	if (tb[FTVM_A_VM_SILENT_EXIT] && nla_get_u8(tb[FTVM_A_VM_SILENT_EXIT])) {
		err = ftvm_exit_arm(net, vm->id, vnet, extack);
		if (err)
			goto err_unlock;
		vm->silent_exit = 1;
	}
	err = ftvm_vm_insert(fn, vm);
	if (err) {
		ftvm_exit_disarm(fn, vm);
		goto err_unlock;
	}
	ftvm_nl_notify_vm(net, vm, FTVM_CMD_VM_NEW);
	rtnl_unlock();
	/* Not counted: the namespace's exit forgets it (see vm.h). */
	if (vnet)
		put_net(vnet);
	return 0;

err_unlock:
	rtnl_unlock();
	ftvm_vm_free(vm);
err_net:
	if (vnet)
		put_net(vnet);
	return err;
}

static int ftvm_nl_vm_del(struct sk_buff *skb, struct genl_info *info)
{
	struct net *net = genl_info_net(info);
	struct ftvm_net *fn = ftvm_net(net);
	struct nlattr *tb[FTVM_A_VM_MAX + 1];
	struct ftvm_vm *vm;
	int err;

	err = ftvm_nl_vm_attrs(info, tb);
	if (err)
		return err;
	rtnl_lock();
	vm = ftvm_nl_select(fn, tb, info->extack);
	if (IS_ERR(vm)) {
		err = PTR_ERR(vm);
	} else {
		ftvm_nl_notify_vm(net, vm, FTVM_CMD_VM_DEL);
		ftvm_vm_remove(fn, vm);
	}
	rtnl_unlock();
	return err;
}

static int ftvm_nl_vm_get(struct sk_buff *skb, struct genl_info *info)
{
	struct ftvm_net *fn = ftvm_net(genl_info_net(info));
	struct nlattr *tb[FTVM_A_VM_MAX + 1];
	struct sk_buff *reply;
	struct ftvm_vm *vm;
	int err;

	err = ftvm_nl_vm_attrs(info, tb);
	if (err)
		return err;
	rcu_read_lock();
	vm = ftvm_nl_select(fn, tb, info->extack);
	if (IS_ERR(vm)) {
		rcu_read_unlock();
		return PTR_ERR(vm);
	}
	reply = ftvm_nl_vm_msg(genl_info_net(info), vm, info->snd_portid,
			       info->snd_seq, FTVM_CMD_VM_GET, true,
			       GFP_ATOMIC);
	rcu_read_unlock();
	if (!reply)
		return -ENOMEM;
	return genlmsg_reply(reply, info);
}

/*
 * Dump every VM of the namespace.  cb->args[0] is the id to resume
 * from; the registry's generation in cb->seq flags a dump that raced
 * with a change (NLM_F_DUMP_INTR).
 */
static int ftvm_nl_vm_dump(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct ftvm_net *fn = ftvm_net(sock_net(skb->sk));
	unsigned long id = cb->args[0];
	struct ftvm_vm *vm;
	int err = 0;

	rcu_read_lock();
	cb->seq = READ_ONCE(fn->gen);
	xa_for_each_start(&fn->vms, id, vm, id) {
		void *hdr;

		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
				  cb->nlh->nlmsg_seq, &ftvm_genl_family,
				  NLM_F_MULTI, FTVM_CMD_VM_GET);
		if (!hdr) {
			err = -EMSGSIZE;
			break;
		}
		genl_dump_check_consistent(cb, hdr);
		if (ftvm_nl_put_vm(skb, sock_net(skb->sk), vm, true)) {
			genlmsg_cancel(skb, hdr);
			err = -EMSGSIZE;
			break;
		}
		genlmsg_end(skb, hdr);
	}
	rcu_read_unlock();
	if (err == -EMSGSIZE) {
		cb->args[0] = id;	/* resume at the VM that did not fit */
		return skb->len;
	}
	cb->args[0] = FTVM_VM_ID_MAX + 1;
	return skb->len;
}

/*
 * FTVM_CMD_VM_SET with FTVM_A_VM_ARM: sessions are about to be moved to
 * the VM on purpose.  A request of its own (@change: it asks for more),
 * so that it either arms or changes nothing.
 */
static int ftvm_nl_vm_arm(struct ftvm_net *fn, struct nlattr **tb,
			  bool change, struct netlink_ext_ack *extack)
{
	struct ftvm_vm *vm;
	int err;

	if (change) {
		NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_VM_ARM],
				    "arming is a request of its own: give the VM only");
		return -EINVAL;
	}
	rtnl_lock();
	vm = ftvm_nl_select(fn, tb, extack);
	err = IS_ERR(vm) ? PTR_ERR(vm) : ftvm_hold_arm_vm(fn, vm, extack);
	rtnl_unlock();
	return err;
}

static int ftvm_nl_vm_set(struct sk_buff *skb, struct genl_info *info)
{
	struct net *net = genl_info_net(info);
	struct ftvm_net *fn = ftvm_net(net);
	struct netlink_ext_ack *extack = info->extack;
	struct nlattr *tb[FTVM_A_VM_MAX + 1];
	struct net_device *dev = NULL;
	struct net *vnet, *oldnet, *newnet;
	struct ftvm_vm *vm, *new;
	bool rename, rebind, up, change;
	u8 silent;
	int err;

	err = ftvm_nl_vm_attrs(info, tb);
	if (err)
		return err;
	/* Selected by id, a name renames; selected by name, it selects. */
	rename = tb[FTVM_A_VM_ID] && tb[FTVM_A_VM_NAME];
	rebind = tb[FTVM_A_VM_IFINDEX] || tb[FTVM_A_VM_IFNAME];
	up = !!tb[FTVM_A_VM_STATE];
	change = rename || rebind || up || tb[FTVM_A_VM_MAC] ||
		 tb[FTVM_A_VM_NETNS_FD] || tb[FTVM_A_VM_SILENT_EXIT];
	if (tb[FTVM_A_VM_ARM])
		return ftvm_nl_vm_arm(fn, tb, change, extack);
	if (!change) {
		NL_SET_ERR_MSG(extack, "nothing to change: give a name, device, MAC, netns, silent exit or state");
		return -EINVAL;
	}
	vnet = ftvm_nl_netns(net, tb, extack);
	if (IS_ERR(vnet))
		return PTR_ERR(vnet);

	rtnl_lock();
	vm = ftvm_nl_select(fn, tb, extack);
	if (IS_ERR(vm)) {
		err = PTR_ERR(vm);
		goto out;
	}
	if (rename && strcmp(vm->name, nla_data(tb[FTVM_A_VM_NAME]))) {
		err = ftvm_nl_check_name(fn, tb[FTVM_A_VM_NAME], extack);
		if (err)
			goto out;
	}
	if (rebind) {
		dev = ftvm_nl_device(net, fn, tb, vm, extack);
		if (IS_ERR(dev)) {
			err = PTR_ERR(dev);
			goto out;
		}
	}
	if (up && !rebind) {
		dev = vm->ifindex ? __dev_get_by_index(net, vm->ifindex) : NULL;
		if (!dev) {
			NL_SET_ERR_MSG_ATTR(extack, tb[FTVM_A_VM_STATE],
					    "the VM's device is gone: give a new one");
			err = -ENODEV;
			goto out;
		}
		err = ftvm_device_check(dev, tb[FTVM_A_VM_STATE], extack);
		if (err)
			goto out;
	}

	new = ftvm_vm_alloc(GFP_KERNEL);
	if (!new) {
		err = -ENOMEM;
		goto out;
	}
	memcpy(new, vm, offsetof(struct ftvm_vm, rcu));
	if (rename)
		nla_strscpy(new->name, tb[FTVM_A_VM_NAME], sizeof(new->name));
	if (tb[FTVM_A_VM_MAC] || rebind) {
		err = ftvm_nl_mac(dev, tb, new->mac, extack);
		if (err) {
			ftvm_vm_free(new);
			goto out;
		}
	}
	/* Watching a namespace comes last: nothing after it can fail. */
	oldnet = rtnl_dereference(vm->netns);
	newnet = vnet ?: oldnet;
	silent = tb[FTVM_A_VM_SILENT_EXIT] ?
		 nla_get_u8(tb[FTVM_A_VM_SILENT_EXIT]) : vm->silent_exit;
	if (silent) {
		err = ftvm_exit_arm(net, vm->id, newnet, extack);
		if (err) {
			ftvm_vm_free(new);
			goto out;
		}
	}
	if (!silent || newnet != oldnet)
		ftvm_exit_disarm(fn, vm);
	new->silent_exit = silent;
	if (rebind)
		new->ifindex = dev->ifindex;
	if (vnet)
		RCU_INIT_POINTER(new->netns, vnet);
	ftvm_vm_replace(fn, vm, new);
	ftvm_nl_notify_vm(net, new, FTVM_CMD_VM_SET);
	if (up && new->state != FTVM_VM_STATE_UP) {
		ftvm_vm_set_up(fn, new);
		ftvm_exit_vm_up(fn, new);
		ftvm_nl_notify_vm(net, new, FTVM_CMD_VM_UP);
	}
out:
	rtnl_unlock();
	if (vnet)
		put_net(vnet);
	return err;
}

static int ftvm_nl_vm_fail(struct sk_buff *skb, struct genl_info *info)
{
	struct net *net = genl_info_net(info);
	struct ftvm_net *fn = ftvm_net(net);
	struct nlattr *tb[FTVM_A_VM_MAX + 1];
	struct ftvm_vm *vm;
	int err;

	err = ftvm_nl_vm_attrs(info, tb);
	if (err)
		return err;
	rtnl_lock();
	vm = ftvm_nl_select(fn, tb, info->extack);
	if (IS_ERR(vm))
		err = PTR_ERR(vm);
	else if (ftvm_vm_set_failed(fn, vm, FTVM_FAIL_USER))
		ftvm_nl_notify_vm(net, vm, FTVM_CMD_VM_FAILED);
	/*
	 * Failing a failed VM is not an error: it changes nothing, unless
	 * its failover is resumed (no event: it did not fail again).
	 */
	else if (tb[FTVM_A_VM_RESUME])
		ftvm_vm_resume_failed(fn, vm);
	rtnl_unlock();
	return err;
}

static const struct genl_ops ftvm_genl_ops[] = {
	{
		.cmd = FTVM_CMD_VM_NEW,
		.flags = GENL_UNS_ADMIN_PERM,
		.doit = ftvm_nl_vm_new,
		.policy = ftvm_policy,
		.maxattr = FTVM_A_MAX,
	},
	{
		.cmd = FTVM_CMD_VM_DEL,
		.flags = GENL_UNS_ADMIN_PERM,
		.doit = ftvm_nl_vm_del,
		.policy = ftvm_policy,
		.maxattr = FTVM_A_MAX,
	},
	{
		.cmd = FTVM_CMD_VM_GET,
		.doit = ftvm_nl_vm_get,
		.dumpit = ftvm_nl_vm_dump,
		.policy = ftvm_policy,
		.maxattr = FTVM_A_MAX,
	},
	{
		.cmd = FTVM_CMD_VM_SET,
		.flags = GENL_UNS_ADMIN_PERM,
		.doit = ftvm_nl_vm_set,
		.policy = ftvm_policy,
		.maxattr = FTVM_A_MAX,
	},
	{
		.cmd = FTVM_CMD_VM_FAIL,
		.flags = GENL_UNS_ADMIN_PERM,
		.doit = ftvm_nl_vm_fail,
		.policy = ftvm_policy,
		.maxattr = FTVM_A_MAX,
	},
	{
		.cmd = FTVM_CMD_SESSION_GET,
		.flags = GENL_UNS_ADMIN_PERM,
		.start = ftvm_state_dump_start,
		.dumpit = ftvm_state_dump,
		.done = ftvm_state_dump_done,
		.policy = ftvm_session_policy,
		.maxattr = FTVM_A_MAX,
	},
	{
		.cmd = FTVM_CMD_SESSION_RESTORE,
		.flags = GENL_UNS_ADMIN_PERM,
		.doit = ftvm_restore_doit,
		.policy = ftvm_session_policy,
		.maxattr = FTVM_A_MAX,
	},
	{
		.cmd = FTVM_CMD_SESSION_ACTIVATE,
		.flags = GENL_UNS_ADMIN_PERM,
		.doit = ftvm_activate_doit,
		.policy = ftvm_activate_policy,
		.maxattr = FTVM_A_MAX,
	},
	{
		.cmd = FTVM_CMD_SESSION_NUDGE,
		.flags = GENL_UNS_ADMIN_PERM,
		.doit = ftvm_nudge_doit,
		.policy = ftvm_nudge_policy,
		.maxattr = FTVM_A_MAX,
	},
	{
		.cmd = FTVM_CMD_SESSION_RETIRE,
		.flags = GENL_UNS_ADMIN_PERM,
		.doit = ftvm_retire_doit,
		.policy = ftvm_retire_policy,
		.maxattr = FTVM_A_MAX,
	},
	{
		.cmd = FTVM_CMD_SESSION_GONE,
		.flags = GENL_UNS_ADMIN_PERM,
		.doit = ftvm_gone_doit,
		.policy = ftvm_gone_policy,
		.maxattr = FTVM_A_MAX,
	},
	{
		.cmd = FTVM_CMD_COMMIT_SET,
		.flags = GENL_UNS_ADMIN_PERM,
		.doit = ftvm_commit_set_doit,
		.policy = ftvm_commit_policy,
		.maxattr = FTVM_A_MAX,
	},
	{
		.cmd = FTVM_CMD_COMMIT_GET,
		.dumpit = ftvm_commit_get_dumpit,
		.policy = ftvm_commit_get_policy,
		.maxattr = FTVM_A_MAX,
	},
	{
		.cmd = FTVM_CMD_COMMIT_SESS_GET,
		.start = ftvm_commit_sess_start,
		.dumpit = ftvm_commit_sess_dumpit,
		.done = ftvm_commit_sess_done,
		.policy = ftvm_commit_get_policy,
		.maxattr = FTVM_A_MAX,
	},
	/* A service checkpoints its own sockets: owning the fd is enough. */
	{
		.cmd = FTVM_CMD_CKPT_SET,
		.doit = ftvm_ckpt_set_doit,
		.policy = ftvm_ckpt_policy,
		.maxattr = FTVM_A_MAX,
	},
	{
		.cmd = FTVM_CMD_CKPT_GET,
		.doit = ftvm_ckpt_get_doit,
		.policy = ftvm_ckpt_policy,
		.maxattr = FTVM_A_MAX,
	},
};

struct genl_family ftvm_genl_family __ro_after_init = {
	.name = FTVM_GENL_NAME,
	.version = FTVM_GENL_VERSION,
	.maxattr = FTVM_A_MAX,
	.netnsok = true,
	.module = THIS_MODULE,
	.ops = ftvm_genl_ops,
	.n_ops = ARRAY_SIZE(ftvm_genl_ops),
	.mcgrps = ftvm_mcgrps,
	.n_mcgrps = ARRAY_SIZE(ftvm_mcgrps),
	.resv_start_op = 0,	/* every operation strictly validated */
};

int __init ftvm_genl_init(void)
{
	return genl_register_family(&ftvm_genl_family);
}

void ftvm_genl_uninit(void)
{
	genl_unregister_family(&ftvm_genl_family);
}
