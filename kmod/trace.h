/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ftvm.ko's tracepoints (perf, trace-cmd, and BPF raw tracepoints).
 *
 * ftvm:ftvm_vm_failed fires once per failure of a registered VM, under
 * RTNL, after the registry has marked it failed and armed the other VMs'
 * ingress holds (ftvm_vm_set_failed()), and before the failure event goes
 * out on the "events" multicast group; and again, holds armed anew, when
 * a restarted controller resumes its failover (FTVM_A_VM_RESUME,
 * ftvm_vm_resume_failed()).  The data plane hooks it
 * (ftvm_steer.bpf.c, ftvm_on_vm_failed, attached by ftd) to steer the
 * failed VM's sessions to their backups at once, without waiting for ftd
 * to wake up: from here on a backup holds what reaches it (kmod/hold.c).
 *
 * The arguments, in this order, are part of what a BPF raw tracepoint
 * program sees (Documentation/dataplane.rst, "Steering"): the registry's
 * namespace, the VM id, the reason (enum ftvm_fail_reason) and for how
 * long from now, in ns, the other VMs are armed at least (0: none is);
 * past that, a backup would answer a session it has not staged (one
 * opened since the last replication) with a reset.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM ftvm

#if !defined(_FTVM_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _FTVM_TRACE_H

#include <linux/tracepoint.h>
#include <net/net_namespace.h>

TRACE_EVENT(ftvm_vm_failed,
	TP_PROTO(const struct net *net, u32 id, u32 reason, u64 held_ns),
	TP_ARGS(net, id, reason, held_ns),

	TP_STRUCT__entry(
		__field(u64, held_ns)
		__field(u32, netns)
		__field(u32, id)
		__field(u32, reason)
	),

	TP_fast_assign(
		__entry->held_ns = held_ns;
		__entry->netns = net->ns.inum;
		__entry->id = id;
		__entry->reason = reason;
	),

	TP_printk("netns=%u vm=%u reason=%u held_ns=%llu",
		  __entry->netns, __entry->id, __entry->reason,
		  __entry->held_ns)
);

#endif /* _FTVM_TRACE_H */

/* This part must be outside the include guard. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
