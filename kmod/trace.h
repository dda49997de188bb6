/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ftvm.ko's tracepoints (perf, trace-cmd, and BPF raw tracepoints).
 *
 * ftvm:ftvm_vm_failed fires once per failure of a registered VM, under
 * RTNL, after the registry has marked it failed and armed the other VMs'
 * ingress holds (ftvm_vm_set_failed()), and before the failure event goes
 * out on the "events" multicast group.  The data plane hooks it
 * (ftvm_steer.bpf.c, ftvm_on_vm_failed, attached by ftd) to steer the
 * failed VM's sessions to their backups at once, without waiting for ftd
 * to wake up: from here on a backup holds what reaches it (kmod/hold.c).
 *
 * The arguments, in this order, are part of what a BPF raw tracepoint
 * program sees (Documentation/dataplane.rst, "Steering"): the registry's
 * namespace, the VM id and the reason (enum ftvm_fail_reason).
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM ftvm

#if !defined(_FTVM_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _FTVM_TRACE_H

#include <linux/tracepoint.h>
#include <net/net_namespace.h>

TRACE_EVENT(ftvm_vm_failed,
	TP_PROTO(const struct net *net, u32 id, u32 reason),
	TP_ARGS(net, id, reason),

	TP_STRUCT__entry(
		__field(u32, netns)
		__field(u32, id)
		__field(u32, reason)
	),

	TP_fast_assign(
		__entry->netns = net->ns.inum;
		__entry->id = id;
		__entry->reason = reason;
	),

	TP_printk("netns=%u vm=%u reason=%u",
		  __entry->netns, __entry->id, __entry->reason)
);

#endif /* _FTVM_TRACE_H */

/* This part must be outside the include guard. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
