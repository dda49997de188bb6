/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The ingress hold of a VM's namespace, as ftvm.ko counts it
 * (FTVM_A_VM_HOLD in vm-get replies, kmod/hold.c): read from a reply and
 * printed the same way by ftctl and by ftd.
 */
#ifndef FTVM_HOLD_H
#define FTVM_HOLD_H

#include <stdbool.h>
#include <stdint.h>
#include <netlink/attr.h>

struct ftnl_hold {
	uint32_t armed_ms;		/* armed for this much longer; 0: not */
	uint32_t queued;		/* segments held now */
	uint64_t held, released, expired, overflow, dev_gone;
};

/* The FTVM_A_VM_HOLD nest @nest into @h (absent counters are 0). */
int ftnl_hold_parse(const struct nlattr *nest, struct ftnl_hold *h);

/*
 * @h under "hold" in JSON, and on a line of its own in text if @text
 * ("hold: armed for N ms, queued N, held N, ...").
 */
void ftnl_hold_print(const struct ftnl_hold *h, bool text);

#endif
