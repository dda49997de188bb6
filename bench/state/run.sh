#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Session state: ftvm.ko's snapshot and restore rates, and the same
# work done from userspace with TCP_REPAIR as CRIU does it, in one run.
#
#   BENCH snapshot_per_s N               sessions captured per second
#   BENCH restore_per_s N                sessions restored and queued on
#                                        the listener per second
#   BENCH activate_per_s N               staged sessions activated per second
#   BENCH activate_quiet_per_s N         the same without the window probe
#                                        (FTVM_SNAP_F_QUIET: ftd's failover)
#   BENCH snapshot_vs_tcp_repair_ratio R how many times faster than userspace
#   BENCH restore_vs_tcp_repair_ratio R
#
# Needs ftvm.ko loaded (it runs in the qemu guest: from the host,
# selftests/vm-run.sh --cmd bench/state/run.sh).  FTVM_BENCH_SESSIONS
# sets the session count (default 10000).
set -u
TOP=${FTVM_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
N=${FTVM_BENCH_SESSIONS:-10000}
if ! grep -q '^ftvm ' /proc/modules; then
	if [[ -z ${FTVM_IN_GUEST:-} ]]; then
		echo "# bench/state: ftvm.ko is not loaded; running it in the guest"
		exec "$TOP/selftests/vm-run.sh" --cmd "$TOP/bench/state/run.sh"
	fi
	echo "# bench/state: ftvm.ko is not loaded"
	exit 4
fi

P=ftvm-bench-$$
R=$P-r A=$P-a B=$P-b B2=$P-b2
cleanup() { for n in $R $A $B $B2; do ip netns del "$n" 2>/dev/null; done; }
trap cleanup EXIT
for n in $R $A $B $B2; do ip netns add "$n"; ip -n "$n" link set lo up; done
# VMs a and b (registered in R on veths), b2 only for the baseline.
ip link add va netns $R type veth peer eth0 netns $A
ip link add vb netns $R type veth peer eth0 netns $B
ip link add vb2 netns $R type veth peer eth0 netns $B2
for n in $A $B $B2; do
	ip -n "$n" addr add 198.18.1.1/32 dev lo
	ip -n "$n" link set eth0 up
	ip -n "$n" route add default dev eth0
done
ip -n $A addr add 198.18.0.2/32 dev lo
for d in va vb vb2; do ip -n $R link set $d up; done
ip netns exec $R "$TOP/user/ftctl/ftctl" vm add a id 1 dev va >/dev/null &&
ip netns exec $R "$TOP/user/ftctl/ftctl" vm add b id 2 dev vb >/dev/null &&
ip netns exec $R "$TOP/user/examples/ftvm-state" netns 1 /run/netns/$A &&
ip netns exec $R "$TOP/user/examples/ftvm-state" netns 2 /run/netns/$B || exit 1
for n in $A $B $B2; do
	ip netns exec "$n" sysctl -qw net.ipv4.ip_local_port_range="10000 65000"
done
ip netns exec $R "$TOP/user/examples/repair-bench" "$N" \
	/run/netns/$A /run/netns/$B /run/netns/$B2 1 2
