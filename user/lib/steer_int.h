/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by the files of the steering library (steer.c: maps, services,
 * placements, VMs, sessions, counters; steer_attach.c: loading and
 * attaching the programs).  Not part of the API in steer.h.
 */
#ifndef FTVM_STEER_INT_H
#define FTVM_STEER_INT_H

/* The ABI marker map: its presence means a data plane is pinned. */
#define FTVM_DP_ABI_MAP	"ftvm_abi"

/* Record the message for ftvm_dp_errmsg() and return @err. */
__attribute__((format(printf, 2, 3)))
int ftvm_dp__err(int err, const char *fmt, ...);
#define dp_err ftvm_dp__err

#endif
