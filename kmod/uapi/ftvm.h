/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR MIT) */
/*
 * ftvm generic netlink family: the user API of ftvm.ko.
 *
 * Documentation/netlink/ftvm.yaml is the source of truth for this
 * family; Documentation/netlink.rst explains it.  Keep the three in step.
 *
 * Every request carries at most one nested object (FTVM_A_VM, ...).
 * Requests that change state need CAP_NET_ADMIN in the user namespace
 * that owns the network namespace of the requesting socket; the VM
 * registry is kept per network namespace.
 */
#ifndef _UAPI_LINUX_FTVM_H
#define _UAPI_LINUX_FTVM_H

#define FTVM_GENL_NAME		"ftvm"
#define FTVM_GENL_VERSION	1
#define FTVM_MCGRP_EVENTS	"events"

/* VM identifiers are small so that the data plane can index them. */
#define FTVM_VM_ID_MIN		1
#define FTVM_VM_ID_MAX		1023
/* Names are printable, NUL terminated, at most this long with the NUL. */
#define FTVM_VM_NAME_LEN	32

enum ftvm_cmd {
	FTVM_CMD_UNSPEC,
	FTVM_CMD_VM_NEW,	/* register a VM; also sent as an event */
	FTVM_CMD_VM_DEL,	/* unregister a VM; also sent as an event */
	FTVM_CMD_VM_GET,	/* one VM (doit) or every VM (dump) */
	FTVM_CMD_VM_SET,	/* rebind, rename, bring a failed VM back up */
	FTVM_CMD_VM_FAIL,	/* userspace declares a VM failed */
	FTVM_CMD_VM_FAILED,	/* event: a VM was declared failed */
	FTVM_CMD_VM_UP,		/* event: a failed VM was brought back up */
	FTVM_CMD_SESSION_GET,	/* dump: snapshot the sessions of a service */
	FTVM_CMD_SESSION_RESTORE, /* restore (or stage) session records */
	FTVM_CMD_SESSION_ACTIVATE, /* make a VM's staged records live */
	FTVM_CMD_CKPT_SET,	/* libftvm: attach application state to a socket */
	FTVM_CMD_CKPT_GET,	/* libftvm: read a socket's application state */
	FTVM_CMD_SESSION_NUDGE,	/* restored connections: ACK, retransmit now */
	FTVM_CMD_COMMIT_SET,	/* a service's output commit (strict or relaxed) */
	FTVM_CMD_COMMIT_GET,	/* dump: the strict services and their counters */
	FTVM_CMD_COMMIT_SESS_GET, /* dump: the sessions strict services follow */
	FTVM_CMD_SESSION_RETIRE, /* end named connections without a packet */
	FTVM_CMD_SESSION_GONE,	/* which named connections have nothing left */

	__FTVM_CMD_MAX,
	FTVM_CMD_MAX = __FTVM_CMD_MAX - 1
};

enum ftvm_vm_state {
	FTVM_VM_STATE_UP = 1,
	FTVM_VM_STATE_FAILED,

	__FTVM_VM_STATE_MAX,
	FTVM_VM_STATE_MAX = __FTVM_VM_STATE_MAX - 1
};

/* Why a VM was declared failed. */
enum ftvm_fail_reason {
	FTVM_FAIL_NONE,
	FTVM_FAIL_DEV_DOWN = 1,		/* administratively set down */
	FTVM_FAIL_DEV_UNREGISTERED,	/* device removed or moved away */
	FTVM_FAIL_CARRIER_LOST,		/* link lost carrier (peer gone) */
	FTVM_FAIL_USER,			/* reported by userspace (FTVM_CMD_VM_FAIL) */
	FTVM_FAIL_KILLED,		/* a process of it killed (FTVM_A_VM_SILENT_EXIT) */

	__FTVM_FAIL_MAX,
	FTVM_FAIL_MAX = __FTVM_FAIL_MAX - 1
};

/* Top-level attributes. */
enum ftvm_a {
	FTVM_A_UNSPEC,
	FTVM_A_VM,		/* nest: enum ftvm_a_vm */
	FTVM_A_SNAP,		/* nest: enum ftvm_a_snap */
	FTVM_A_SESSION,		/* nest: enum ftvm_a_sess, one session record */
	FTVM_A_SNDQ,		/* binary: send-queue bytes of the last record */
	FTVM_A_RCVQ,		/* binary: receive-queue bytes of the last record */
	FTVM_A_CKPT,		/* nest: enum ftvm_a_ckpt */
	FTVM_A_TUPLE,		/* nest: enum ftvm_a_sess, a session's 5-tuple only */
	FTVM_A_COMMIT,		/* nest: enum ftvm_a_commit */

	__FTVM_A_MAX,
	FTVM_A_MAX = __FTVM_A_MAX - 1
};

enum ftvm_a_vm {
	FTVM_A_VM_UNSPEC,
	FTVM_A_VM_ID,		/* u32: FTVM_VM_ID_MIN..FTVM_VM_ID_MAX */
	FTVM_A_VM_NAME,		/* string: < FTVM_VM_NAME_LEN bytes */
	FTVM_A_VM_IFINDEX,	/* u32: host-side device (tap, veth) */
	FTVM_A_VM_IFNAME,	/* string: the device by name (requests only) */
	FTVM_A_VM_MAC,		/* binary[6]: the VM's own MAC address */
	FTVM_A_VM_STATE,	/* u8: enum ftvm_vm_state */
	FTVM_A_VM_FAIL_REASON,	/* u8: enum ftvm_fail_reason */
	FTVM_A_VM_FAIL_TIME,	/* u64: ns, CLOCK_MONOTONIC, when declared failed */
	FTVM_A_VM_PAD,
	FTVM_A_VM_NETNS_FD,	/* s32: the VM's network namespace (requests) */
	FTVM_A_VM_NETNS_ID,	/* s32: its nsid as the requester sees it (replies) */
	FTVM_A_VM_SILENT_EXIT,	/* u8: 1: a process of the VM killed by a signal
				 * closes its TCP connections without a packet
				 * and fails the VM (needs its netns)
				 */
	FTVM_A_VM_HOLD,		/* nest (replies to VM_GET): enum ftvm_a_hold,
				 * the ingress hold of the VM's netns
				 */
	FTVM_A_VM_RESUME,	/* flag (FTVM_CMD_VM_FAIL only): the VM's
				 * failover is being finished by a restarted
				 * controller; failed already, the other VMs
				 * hold again as its failure made them
				 */
	FTVM_A_VM_ARM,		/* flag (FTVM_CMD_VM_SET, alone): sessions are
				 * about to be moved to the VM on purpose (a
				 * drain); its namespace holds for a while what
				 * reaches it for sessions it does not have yet,
				 * as at another VM's failure
				 */

	__FTVM_A_VM_MAX,
	FTVM_A_VM_MAX = __FTVM_A_VM_MAX - 1
};

/*
 * The ingress hold of a VM's namespace (Documentation/replication.rst):
 * a failover's segments that reached the VM before their session was
 * live there.  Counted since the namespace was first armed.
 */
enum ftvm_a_hold {
	FTVM_A_HOLD_UNSPEC,
	FTVM_A_HOLD_PAD,
	FTVM_A_HOLD_ARMED_MS,	/* u32: armed for this much longer; 0: not */
	FTVM_A_HOLD_QUEUED,	/* u32: segments held now */
	FTVM_A_HOLD_HELD,	/* u64: segments held */
	FTVM_A_HOLD_RELEASED,	/* u64: let in, their session live */
	FTVM_A_HOLD_EXPIRED,	/* u64: dropped, no session in time */
	FTVM_A_HOLD_OVERFLOW,	/* u64: dropped, never held: too many held */
	FTVM_A_HOLD_DEV_GONE,	/* u64: dropped with their device */

	__FTVM_A_HOLD_MAX,
	FTVM_A_HOLD_MAX = __FTVM_A_HOLD_MAX - 1
};

/*
 * Session state: see Documentation/state-format.rst.
 *
 * A record is an FTVM_A_SESSION nest followed, at the same level, by the
 * FTVM_A_SNDQ and FTVM_A_RCVQ attributes that carry its queues (each at
 * most FTVM_QCHUNK bytes; concatenated in order they are the queue, and
 * their lengths add up to FTVM_A_TCP_SNDQ_LEN and FTVM_A_TCP_RCVQ_LEN).
 * A message carries one or more records.
 */
#define FTVM_STATE_VERSION	1
#define FTVM_BLOB_MAX		4096	/* application state, bytes */
#define FTVM_QCHUNK		32768	/* queue bytes per attribute, at most */

enum ftvm_a_snap {
	FTVM_A_SNAP_UNSPEC,
	FTVM_A_SNAP_PORT,	/* u16: the service's local port */
	FTVM_A_SNAP_PROTO,	/* u8: IPPROTO_TCP or IPPROTO_UDP; both if absent */
	FTVM_A_SNAP_SINCE,	/* u64: only sessions changed after this gen */
	FTVM_A_SNAP_COOKIE,	/* u64, repeated: only these sessions */
	FTVM_A_SNAP_GEN,	/* u64 (replies): generation of this snapshot */
	FTVM_A_SNAP_FLAGS,	/* u32: FTVM_SNAP_F_* */
	FTVM_A_SNAP_COUNT,	/* u32 (replies): records restored or activated */
	FTVM_A_SNAP_PAD,
	FTVM_A_SNAP_STAGED,	/* u32 (replies): records now staged for the VM */
	/*
	 * u32 (dump replies of a TCP snapshot, in every message): connections
	 * of the service's listeners in the VM still in their handshake as
	 * the snapshot began (request sockets, TCP_DEFER_ACCEPT's included):
	 * not yet sessions a snapshot can capture.
	 */
	FTVM_A_SNAP_HANDSHAKES,
	/*
	 * u32 (dump replies of a TCP snapshot, in every message): sessions
	 * the VM's namespace keeps track of as the snapshot began, every
	 * service's: each socket a snapshot or a checkpoint has seen, until
	 * a complete snapshot of its port finds it gone.
	 */
	FTVM_A_SNAP_TRACKED,

	__FTVM_A_SNAP_MAX,
	FTVM_A_SNAP_MAX = __FTVM_A_SNAP_MAX - 1
};

/*
 * FTVM_A_SNAP_FLAGS of FTVM_CMD_SESSION_RESTORE and _ACTIVATE.  Staging
 * a session that is staged already replaces its record (same 5-tuple).
 * An activation (or a discard) acts on the sessions its FTVM_A_TUPLE
 * attributes name, or on every staged session when it names none.
 * With FTVM_SNAP_F_HELD it activates, of those, only the sessions a
 * client's segment waits for in the VM (the ingress hold), at most
 * FTVM_HELD_MAX of them, oldest segment first; finding none is no
 * error, and the reply names each session it made live (FTVM_A_TUPLE).
 */
#define FTVM_SNAP_F_STAGE	(1U << 0)	/* hold the records, do not activate */
#define FTVM_SNAP_F_DISCARD	(1U << 1)	/* activate: drop the staged records */
#define FTVM_SNAP_F_HELD	(1U << 2)	/* activate: only those clients wait for */
/*
 * Restore (live) or activate: leave TCP repair mode without the window
 * probe, because the caller nudges the sessions (FTVM_CMD_SESSION_NUDGE)
 * as soon as the data path leads to them: one ACK per session, not two.
 */
#define FTVM_SNAP_F_QUIET	(1U << 3)
#define FTVM_HELD_MAX		256

enum ftvm_a_sess {
	FTVM_A_SESS_UNSPEC,
	FTVM_A_SESS_VERSION,	/* u8: FTVM_STATE_VERSION; required first */
	FTVM_A_SESS_PROTO,	/* u8: IPPROTO_TCP or IPPROTO_UDP */
	FTVM_A_SESS_FAMILY,	/* u8: AF_INET or AF_INET6 */
	FTVM_A_SESS_LADDR,	/* binary[4|16]: the service's address */
	FTVM_A_SESS_RADDR,	/* binary[4|16]: the client's address */
	FTVM_A_SESS_LPORT,	/* u16: the service's port */
	FTVM_A_SESS_RPORT,	/* u16: the client's port (0: unconnected UDP) */
	FTVM_A_SESS_COOKIE,	/* u64: socket cookie where it was captured */
	FTVM_A_SESS_GEN,	/* u64: generation of its last change */
	FTVM_A_SESS_FLAGS,	/* u32: FTVM_SESS_F_* */
	FTVM_A_SESS_TCP,	/* nest: enum ftvm_a_tcp */
	FTVM_A_SESS_BLOB,	/* binary: application state, <= FTVM_BLOB_MAX */
	FTVM_A_SESS_PAD,

	__FTVM_A_SESS_MAX,
	FTVM_A_SESS_MAX = __FTVM_A_SESS_MAX - 1
};

/* FTVM_A_SESS_FLAGS */
#define FTVM_SESS_F_BLOB	(1U << 0)	/* the service attached state */
#define FTVM_SESS_F_STALE	(1U << 1)	/* the socket moved past the blob */

/* Send and receive state of a TCP session; sequence numbers are raw. */
enum ftvm_a_tcp {
	FTVM_A_TCP_UNSPEC,
	FTVM_A_TCP_STATE,	/* u8: TCP_ESTABLISHED (1) */
	FTVM_A_TCP_SND_UNA,	/* u32: first byte of the send queue */
	FTVM_A_TCP_SND_NXT,	/* u32: next byte to send (informational) */
	FTVM_A_TCP_SNDQ_LEN,	/* u32: unacknowledged + unsent bytes */
	FTVM_A_TCP_COPIED_SEQ,	/* u32: first byte of the receive queue */
	FTVM_A_TCP_RCVQ_LEN,	/* u32: received, not yet read bytes */
	FTVM_A_TCP_SND_WL1,	/* u32 */
	FTVM_A_TCP_SND_WND,	/* u32 */
	FTVM_A_TCP_MAX_WINDOW,	/* u32 */
	FTVM_A_TCP_RCV_WND,	/* u32 */
	FTVM_A_TCP_RCV_WUP,	/* u32 */
	FTVM_A_TCP_MSS,		/* u16: the peer's MSS (mss_clamp) */
	FTVM_A_TCP_SND_WSCALE,	/* u8: 0..14 */
	FTVM_A_TCP_RCV_WSCALE,	/* u8: 0..14 */
	FTVM_A_TCP_OPTS,	/* u32: FTVM_TCP_OPT_* negotiated */
	FTVM_A_TCP_TS_VAL,	/* u32: our timestamp clock at capture */
	FTVM_A_TCP_TS_RECENT,	/* u32: the peer's last timestamp */
	FTVM_A_TCP_SNDBUF,	/* u32: bytes */
	FTVM_A_TCP_RCVBUF,	/* u32: bytes */
	FTVM_A_TCP_SRTT_US,	/* u32: smoothed RTT, us; 0: no sample */
	FTVM_A_TCP_RTTVAR_US,	/* u32: its mean deviation, us */
	FTVM_A_TCP_SND_CWND,	/* u32: congestion window, segments */
	FTVM_A_TCP_SND_SSTHRESH, /* u32: slow start threshold, segments */

	__FTVM_A_TCP_MAX,
	FTVM_A_TCP_MAX = __FTVM_A_TCP_MAX - 1
};

#define FTVM_TCP_OPT_SACK	(1U << 0)
#define FTVM_TCP_OPT_TSTAMP	(1U << 1)
#define FTVM_TCP_OPT_WSCALE	(1U << 2)

/* libftvm: a service's own checkpoint of one of its sockets. */
enum ftvm_a_ckpt {
	FTVM_A_CKPT_UNSPEC,
	FTVM_A_CKPT_FD,		/* s32: the connected socket, in the caller */
	FTVM_A_CKPT_BLOB,	/* binary: <= FTVM_BLOB_MAX bytes */
	FTVM_A_CKPT_GEN,	/* u64 (replies): generation of the checkpoint */
	FTVM_A_CKPT_PAD,

	__FTVM_A_CKPT_MAX,
	FTVM_A_CKPT_MAX = __FTVM_A_CKPT_MAX - 1
};

/*
 * Output commit (Documentation/replication.rst), per service, kept per
 * network namespace (the host's, where the VMs' devices are).  In strict
 * mode a TCP segment a VM sends for a session of the service, arriving
 * on the host side of a registered VM's device, is held until a record
 * of the session that covers it (its sequence number and its
 * acknowledgement) is staged on another live VM; ftvm.ko commits on
 * demand (snapshot of the one session, staged on the VM that holds its
 * staged state already).  FTVM_CMD_COMMIT_SET with mode relaxed forgets
 * the service and lets every packet it holds go.
 */
enum ftvm_commit_mode {
	FTVM_COMMIT_RELAXED,
	FTVM_COMMIT_STRICT,

	__FTVM_COMMIT_MAX,
	FTVM_COMMIT_MAX = __FTVM_COMMIT_MAX - 1
};

#define FTVM_COMMIT_SERVICES_MAX	64	/* strict services per namespace */
#define FTVM_COMMIT_CKPT_WAIT_MAX	10000	/* ms */

enum ftvm_a_commit {
	FTVM_A_COMMIT_UNSPEC,
	FTVM_A_COMMIT_FAMILY,	/* u8: AF_INET or AF_INET6 */
	FTVM_A_COMMIT_ADDR,	/* binary[4|16]: the service's address */
	FTVM_A_COMMIT_PORT,	/* u16: the service's port */
	FTVM_A_COMMIT_PROTO,	/* u8: IPPROTO_TCP (UDP output is never held) */
	FTVM_A_COMMIT_MODE,	/* u8: enum ftvm_commit_mode */
	FTVM_A_COMMIT_CKPT_WAIT, /* u32: ms a commit waits for a checkpoint (20) */
	FTVM_A_COMMIT_PAD,
	/* Replies (FTVM_CMD_COMMIT_GET): counters since the service was set. */
	FTVM_A_COMMIT_SESSIONS,	/* u32: sessions tracked now */
	FTVM_A_COMMIT_HELD,	/* u32: packets held now */
	FTVM_A_COMMIT_HELD_TOTAL, /* u64: packets ever held */
	FTVM_A_COMMIT_RELEASED,	/* u64: packets released after a commit */
	FTVM_A_COMMIT_DROPPED,	/* u64: held packets dropped (VM failed, bound) */
	FTVM_A_COMMIT_COMMITS,	/* u64: on-demand commits (snapshot + stage) */
	FTVM_A_COMMIT_NO_BACKUP, /* u64: commits that found no live backup */
	FTVM_A_COMMIT_STALE,	/* u64: commits made on a stale checkpoint */
	/*
	 * FTVM_CMD_COMMIT_SESS_GET, with FTVM_A_TUPLE and FTVM_A_COMMIT_HELD:
	 * u32, ms since a record covering the session (not stale) was last
	 * staged on its backup.
	 */
	FTVM_A_COMMIT_STAGED_MS,

	__FTVM_A_COMMIT_MAX,
	FTVM_A_COMMIT_MAX = __FTVM_A_COMMIT_MAX - 1
};

#endif /* _UAPI_LINUX_FTVM_H */
