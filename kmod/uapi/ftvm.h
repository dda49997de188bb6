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

	__FTVM_FAIL_MAX,
	FTVM_FAIL_MAX = __FTVM_FAIL_MAX - 1
};

/* Top-level attributes. */
enum ftvm_a {
	FTVM_A_UNSPEC,
	FTVM_A_VM,		/* nest: enum ftvm_a_vm */

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

	__FTVM_A_VM_MAX,
	FTVM_A_VM_MAX = __FTVM_A_VM_MAX - 1
};

#endif /* _UAPI_LINUX_FTVM_H */
