#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Session state end to end: clients talk to a service in VM A, their
# sessions are snapshotted, A's device is deleted, the records are
# restored (directly, or staged then activated) in VM B and the same
# client connections go on there, checked byte by byte each way and
# against the service's application state.  Topology: see lib.sh.
source "$(dirname "$0")/lib.sh"

N=${FTVM_STATE_SESSIONS:-200}

# kv_failover STAGED: libftvm kvstore, N sessions.
kv_failover() {
	local staged=$1 out
	setup || return 1
	ip netns exec "$A" "$EX/kvstore" $PORT >/dev/null 2>"$WORK/a.log" & PIDS+=($!)
	ip netns exec "$B" "$EX/kvstore" $PORT >/dev/null 2>"$WORK/b.log" & PIDS+=($!)
	wait_listen "$A" $PORT && wait_listen "$B" $PORT || { echo "no service"; return 1; }
	client kv "$N" && cmd "round 5" || return 1
	out=$(state dump 1 $PORT out "$WORK/recs") || { echo "$out"; return 1; }
	[[ $out == "records $N "* ]] || { echo "snapshot: $out, expected $N records"; return 1; }
	fail_over || return 1
	if ((staged)); then
		out=$(state restore 2 "$WORK/recs" stage batch 64) && [[ $out == "count $N" ]] ||
			{ echo "stage: $out"; return 1; }
		(($(count_estab "$B" $PORT) == 0)) || { echo "staged sessions are live"; return 1; }
		out=$(state activate 2) && [[ $out == "count $N" ]] || { echo "activate: $out"; return 1; }
	else
		out=$(state restore 2 "$WORK/recs" batch 64) && [[ $out == "count $N" ]] ||
			{ echo "restore: $out"; return 1; }
	fi
	steer_b
	cmd "round 5" || return 1
	grep -q "resumed $N\$" "$WORK/b.log" || { echo "B resumed $(grep -c resumed "$WORK/b.log") of $N"; return 1; }
	(($(count_estab "$B" $PORT) == N)) || { echo "B has $(count_estab "$B" $PORT) sessions"; return 1; }
	client_quit
}

# echo_servers: the unmodified echo server in A and in B, listening;
# sets the caller's apid to A's (not through nA: $! must be the server
# itself, which ip netns exec becomes).
echo_servers() {
	ip netns exec "$A" "$EX/echo" tcp $PORT >/dev/null 2>&1 & apid=$!; PIDS+=($apid)
	ip netns exec "$B" "$EX/echo" tcp $PORT >/dev/null 2>&1 & PIDS+=($!)
	wait_listen "$A" $PORT && wait_listen "$B" $PORT
}

# echo_failover: an unmodified echo server; at snapshot time A holds
# unread client data (receive queue) and unacknowledged echoes (send
# queue); both must arrive through B.
echo_failover() {
	local out apid
	setup && echo_servers || return 1
	client echo "$N" && cmd "round 3" || return 1
	# Idle sessions first: a snapshot of them, not used.
	out=$(state dump 1 $PORT) && [[ $out == "records $N "* ]] || { echo "idle: $out"; return 1; }
	queue_both $apid "$N" || return 1
	out=$(state dump 1 $PORT out "$WORK/recs") || { echo "$out"; return 1; }
	[[ $out == "records $N "* ]] || { echo "snapshot: $out"; return 1; }
	local b=${out#* bytes }
	b=${b%% *}
	((b > N * 4000)) || { echo "snapshot carries $b bytes, less than the queues"; nA ss -tn | head -5; return 1; }
	fail_over || return 1
	kill -9 $apid
	out=$(state restore 2 "$WORK/recs") && [[ $out == "count $N" ]] || { echo "restore: $out"; return 1; }
	steer_b
	cmd drain && cmd "round 3" && client_quit
}

# fresh_failover: sessions snapshotted right after the handshake, before
# the server sent a byte (its only segment so far was the SYN-ACK, whose
# timestamp the record's must not fall behind, or the client's PAWS
# check drops everything B sends).
fresh_failover() {
	local out apid
	setup && echo_servers || return 1
	client echo "$N" || return 1
	wait_for 10 estab_is "$A" "$N" ||
		{ echo "A has $(count_estab "$A" $PORT) of $N sessions"; return 1; }
	out=$(state dump 1 $PORT out "$WORK/recs") && [[ $out == "records $N "* ]] ||
		{ echo "snapshot: $out"; return 1; }
	fail_over || return 1
	kill -9 $apid
	out=$(state restore 2 "$WORK/recs") && [[ $out == "count $N" ]] || { echo "restore: $out"; return 1; }
	steer_b
	cmd "round 3" || return 1
	# A record whose timestamp fell behind costs every segment B sends
	# on that session, and all do the same: N drops at least (a window
	# probe each).  A few runs in 100 drop 20-55 segments instead: pure
	# ACKs, all within 3 ms, TSvals above their records', A having sent
	# nothing since the snapshot (in one, the client resent nothing).
	# The likely cause, harmless: B's sockets, new to TCP, acknowledge
	# the client's first data at once (quick-ACK mode) from softirq on
	# one CPU, the echo server's reply to the same data leaves later
	# with a later TSval, from the other CPU, and arrives first; the
	# client then takes the ACK as too old, its data acknowledged
	# already.  None in 100 runs of a guest with one CPU.  Reported.
	out=$(paws_rejected "$C")
	((out < N)) || { echo "the client dropped $out segments of B's as too old (PAWS)"; return 1; }
	((out == 0)) || echo "# the client dropped $out segments of B's as too old (PAWS)"
	client_quit
}

ktap_begin 5
ktap_check "libftvm kvstore: $N sessions fail over A -> B, state and bytes intact" kv_failover 0
cleanup; trap - EXIT
ktap_check "libftvm kvstore: staged restore, then activation" kv_failover 1
cleanup; trap - EXIT
ktap_check "unmodified echo: $N sessions with receive and send queues fail over" echo_failover
cleanup; trap - EXIT
ktap_check "unmodified echo: $N sessions snapshotted before the server sent a byte go on" fresh_failover
cleanup; trap - EXIT
ktap_check "UDP echo: binding restored, $N client sockets go on" udp_failover setup steer_b
ktap_end
