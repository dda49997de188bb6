#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Session state over IPv6 only: the same failover as failover.sh, with
# clients, service address and routes all IPv6 (the records carry
# family AF_INET6 and 16-byte addresses); and gone checks of the same
# records: none gone where they live, all where they do not, or no
# longer do.
#
#   client C                    host H                            VM A / VM B
#  2001:db8::2/64 -- cveth -- hC 2001:db8::1/64
#                             hA 2001:db8:2::1/64 ----- eth0 2001:db8:2::2/64  (A)
#                             hB 2001:db8:3::1/64 ----- eth0 2001:db8:3::2/64  (B)
#                             2001:db8:1::1 via A, then via B   lo 2001:db8:1::1/128
#
# (lib.sh's IPv4 topology is built too; it only carries the VM registry.)
source "$(dirname "$0")/lib.sh"

N=${FTVM_STATE_SESSIONS:-100}
SVC4=$SVC SVC6=2001:db8:1::1

setup6() {
	local n
	SVC=$SVC4
	setup || return 1
	# From here on the service address the helpers use is the IPv6 one.
	SVC=$SVC6
	ip -n "$C" addr add 2001:db8::2/64 dev cveth nodad
	ip -n "$H" addr add 2001:db8::1/64 dev hC nodad
	ip -n "$H" addr add 2001:db8:2::1/64 dev hA nodad
	ip -n "$H" addr add 2001:db8:3::1/64 dev hB nodad
	ip -n "$A" addr add 2001:db8:2::2/64 dev eth0 nodad
	ip -n "$B" addr add 2001:db8:3::2/64 dev eth0 nodad
	for n in "$A" "$B"; do
		ip -n "$n" addr add $SVC/128 dev lo nodad || return 1
	done
	ip -n "$C" -6 route add default via 2001:db8::1 || return 1
	ip -n "$A" -6 route add default via 2001:db8:2::1 src $SVC || return 1
	ip -n "$B" -6 route add default via 2001:db8:3::1 src $SVC || return 1
	ip -n "$H" -6 route add $SVC/128 via 2001:db8:2::2 || return 1
	nH sysctl -qw net.ipv6.conf.all.forwarding=1
}

steer_b6() {
	ip -n "$H" -6 route replace $SVC/128 via 2001:db8:3::2
}

# count_estab6 NS: established IPv6 connections of the service (a
# v4-mapped one would show as ::ffff:198.18.0.2).
count_estab6() {
	ip netns exec "$1" ss -Htn6 state established "sport = :$PORT" |
		grep -c '\[2001:db8::2\]'
}

kv6_failover() {
	local out
	setup6 || return 1
	ip netns exec "$A" "$EX/kvstore" $PORT >/dev/null 2>"$WORK/a.log" & PIDS+=($!)
	ip netns exec "$B" "$EX/kvstore" $PORT >/dev/null 2>"$WORK/b.log" & PIDS+=($!)
	wait_listen "$A" $PORT && wait_listen "$B" $PORT || { echo "no service"; return 1; }
	client kv "$N" && cmd "round 5" || return 1
	out=$(state dump 1 $PORT out "$WORK/recs") || { echo "$out"; return 1; }
	[[ $out == "records $N "* ]] || { echo "snapshot: $out, expected $N records"; return 1; }
	(($(count_estab6 "$A") == N)) || { echo "A has $(count_estab6 "$A") IPv6 sessions"; return 1; }
	out=$(state gone 1 "$WORK/recs") && [[ $out == "count 0" ]] ||
		{ echo "gone check on A: '$out', expected count 0"; return 1; }
	out=$(state gone 2 "$WORK/recs") && [[ $out == "count $N rports "* ]] ||
		{ echo "gone check on B: '$out', expected count $N"; return 1; }
	fail_over || return 1
	out=$(state restore 2 "$WORK/recs" stage batch 32) && [[ $out == "count $N" ]] ||
		{ echo "stage: $out"; return 1; }
	out=$(state activate 2) && [[ $out == "count $N" ]] || { echo "activate: $out"; return 1; }
	steer_b6
	cmd "round 5" || return 1
	grep -q "resumed $N\$" "$WORK/b.log" ||
		{ echo "B resumed $(grep -c resumed "$WORK/b.log") of $N"; return 1; }
	(($(count_estab6 "$B") == N)) || { echo "B has $(count_estab6 "$B") IPv6 sessions"; return 1; }
	out=$(state gone 2 "$WORK/recs") && [[ $out == "count 0" ]] ||
		{ echo "gone check on B, live: '$out', expected count 0"; return 1; }
	client_quit
	# Closed by the client, then by kvstore: nothing left of them on B.
	wait_for 20 eval '[[ $(state gone 2 "$WORK/recs") == "count $N rports "* ]]' ||
		{ echo "gone check on B, closed: '$(state gone 2 "$WORK/recs")', expected count $N"; return 1; }
}

ktap_begin 2
ktap_check "IPv6 only: libftvm kvstore, $N sessions staged on B, activated, state and bytes intact" \
	kv6_failover
cleanup; trap - EXIT
ktap_check "IPv6 only: UDP echo binding restored, $N client sockets go on" udp_failover setup6 steer_b6
ktap_end
