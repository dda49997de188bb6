#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Session state: what a snapshot and a restore must survive or refuse.
# Topology: see lib.sh (client C, host H, VMs A and B).
#
#  - restore into a VM whose listener went away: refused, nothing left;
#  - each bad record (other version, no version, bad family, truncated
#    queue, malformed attribute, 5-tuple twice): refused with its extack
#    message, nothing left; then the good records restore and the
#    clients go on; restoring them again: 5-tuple in use, the live
#    sessions unharmed;
#  - a VM without a namespace, and one whose namespace went away;
#  - snapshots while sessions open and close at a high rate, and of
#    sockets that are closing (not captured).
source "$(dirname "$0")/lib.sh"

N=${FTVM_STATE_SESSIONS:-20}

# Nothing of the service in B but its listener (or nothing at all).
b_clean() {
	local n
	n=$(nB ss -Htan "sport = :$PORT" | grep -vc LISTEN)
	((n == 0)) || { echo "B holds $n sockets of the service:"; nB ss -tan; return 1; }
}

# refused KIND MESSAGE: restoring the mangled records fails with MESSAGE.
refused() {
	local out
	if out=$(state restore 2 "$WORK/recs" ${1:+mangle $1} 2>&1); then
		echo "restore ${1:-} succeeded: $out"; return 1
	fi
	[[ $out == *"$2"* ]] || { echo "restore ${1:-}: '$out', expected '$2'"; return 1; }
	b_clean
}

bad_records() {
	local out
	setup || return 1
	ip netns exec "$A" "$EX/kvstore" $PORT >/dev/null 2>"$WORK/a.log" & PIDS+=($!)
	wait_listen "$A" $PORT || return 1
	client kv "$N" && cmd "round 2" || return 1
	out=$(state dump 1 $PORT out "$WORK/recs") && [[ $out == "records $N "* ]] || { echo "$out"; return 1; }
	fail_over || return 1
	# No listener in B yet.
	refused "" "no listening socket" || return 1
	ip netns exec "$B" "$EX/kvstore" $PORT >/dev/null 2>"$WORK/b.log" & PIDS+=($!)
	wait_listen "$B" $PORT || return 1
	refused version "format version not supported" &&
	refused noversion "without a format version" &&
	refused family "address family must be" &&
	refused truncate "queue bytes missing" &&
	refused garbage "" &&
	refused dup "already in use" || return 1
	# VM 3 has no namespace; VM 4's namespace is gone.
	ip -n "$H" link add hD type veth peer hE
	ip -n "$H" link set hD up && ip -n "$H" link set hE up
	ip netns add "$P-d"
	nH "$FTCTL" vm add c id 3 dev hD >/dev/null && nH "$FTCTL" vm add d id 4 dev hE >/dev/null &&
	state netns 4 "/run/netns/$P-d" || return 1
	ip netns del "$P-d"
	out=$(state restore 3 "$WORK/recs" 2>&1) && { echo "restored into VM 3"; return 1; }
	[[ $out == *"no network namespace"* ]] || { echo "VM 3: $out"; return 1; }
	for ((i = 0; i < 100; i++)); do
		out=$(state restore 4 "$WORK/recs" 2>&1)
		[[ $out == *"no network namespace"* ]] && break
		sleep 0.1
	done
	[[ $out == *"no network namespace"* ]] || { echo "VM 4: $out"; return 1; }
	# Now the good records; the sessions go on; a second time: in use.
	out=$(state restore 2 "$WORK/recs") && [[ $out == "count $N" ]] || { echo "restore: $out"; return 1; }
	steer_b
	cmd "round 2" || return 1
	out=$(state restore 2 "$WORK/recs" 2>&1) && { echo "restored twice"; return 1; }
	[[ $out == *"already in use"* ]] || { echo "again: $out"; return 1; }
	(($(count_estab "$B" $PORT) == N)) || { echo "B has $(count_estab "$B" $PORT) sessions"; return 1; }
	cmd "round 2" && client_quit
}

# Snapshots while short sessions come and go, and of closing sockets.
churn() {
	local out i n k=5 apid
	setup || return 1
	ip netns exec "$A" "$EX/echo" tcp $PORT >/dev/null 2>&1 & apid=$!; PIDS+=($apid)
	wait_listen "$A" $PORT || return 1
	client echo "$N" && cmd "round 1" || return 1
	# The churn stops between two clients, never in the middle of one:
	# a client cut off mid-way would leave sockets that close later.
	( while [[ ! -e $WORK/churn.stop ]]; do
		nC "$EX/sessclient" echo $SVC $PORT 10 <<<"round 1" >/dev/null 2>&1
	  done ) & PIDS+=($!)
	for ((i = 0; i < 20; i++)); do
		out=$(state dump 1 $PORT) || { echo "snapshot $i: $out"; return 1; }
		n=${out#records }; n=${n%% *}
		((n >= N)) || { echo "snapshot $i: $out, expected at least $N"; return 1; }
	done
	touch "$WORK/churn.stop"
	wait "${PIDS[-1]}"
	# The last short sessions finish; only the client's remain.
	for ((i = 0; i < 300; i++)); do
		(($(nA ss -Htan "sport = :$PORT" | grep -vc LISTEN) == N)) && break
		sleep 0.1
	done
	cmd "round 1" || return 1
	# Half-closed by the client while the server sleeps: CLOSE_WAIT.
	kill -STOP $apid
	cmd "shut $k" || return 1
	for ((i = 0; i < 100; i++)); do
		n=$(nA ss -Htn state close-wait "sport = :$PORT" | wc -l)
		((n == k)) && break
		sleep 0.1
	done
	((n == k)) || { echo "$n sockets in CLOSE_WAIT, expected $k"; return 1; }
	out=$(state dump 1 $PORT) || { echo "$out"; return 1; }
	[[ $out == "records $((N - k)) "* ]] || { echo "closing sockets captured: $out, expected $((N - k))"; return 1; }
	kill -CONT $apid
	cmd "round 1" && client_quit
}

ktap_begin 2
ktap_check "bad records, missing listener and namespaces are refused and leave nothing" bad_records
cleanup; trap - EXIT
ktap_check "snapshots during connection churn; closing sockets are not captured" churn
ktap_end
