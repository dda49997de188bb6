/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A thin layer over libnl-genl for the ftvm family: resolve the family,
 * send a request, collect replies, and report the kernel's extended ACK
 * message (NLMSGERR_ATTR_MSG) with any error.
 */
#ifndef FTVM_FTNL_H
#define FTVM_FTNL_H

#include <stdbool.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>
#include <netlink/netlink.h>

#include "../../kmod/uapi/ftvm.h"

struct ftnl {
	struct nl_sock *sk;
	int family;
	int version;		/* the family version the kernel reports */
	int events_grp;		/* multicast group id of FTVM_MCGRP_EVENTS */
	char ext_msg[256];	/* last extack message, "" if none */
	int ext_off;		/* last extack bad-attribute offset, or 0 */
};

/*
 * Connect and resolve the family.  Returns 0, -ENOENT when ftvm.ko is
 * not loaded, or another negative errno.
 */
int ftnl_open(struct ftnl *nl);
void ftnl_close(struct ftnl *nl);

/* A request message for @cmd with @flags (NLM_F_DUMP, ...). */
struct nl_msg *ftnl_msg(struct ftnl *nl, uint8_t cmd, int flags);

/*
 * Send @msg (consumed) and receive until the ACK or the end of a dump,
 * calling @cb for every reply.  Returns 0 or a negative errno; on error
 * nl->ext_msg holds the kernel's explanation when it gave one.
 */
int ftnl_call(struct ftnl *nl, struct nl_msg *msg, nl_recvmsg_msg_cb_t cb,
	      void *arg);

/* Subscribe to the events group; then receive with ftnl_recv_events(). */
int ftnl_subscribe(struct ftnl *nl);
int ftnl_recv_events(struct ftnl *nl, nl_recvmsg_msg_cb_t cb, void *arg);

/* A readable message for a failed call: extack text, else strerror. */
const char *ftnl_strerror(struct ftnl *nl, int err);

#endif
