#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# ftvm.ko's error paths under fault injection: each request below is
# run again and again with the Nth kernel allocation made while ftvm.ko
# handles it failed, N = 1, 2, ... until it runs to the end without
# meeting the fault (selftests/lib/failnth.so arms the task's
# /proc/thread-self/fail-nth around the request; FAILSLAB and
# FAIL_PAGE_ALLOC fail it).  Every time, the request either does all
# it asks, checked, or fails with an error and leaves nothing behind:
#
#  - registering a VM with its namespace (ftctl vm add ... netns);
#  - a libftvm checkpoint (kvstore's first, after its first reply):
#    the session's state attached, or kvstore told and nothing
#    attached;
#  - a complete snapshot of libftvm kvstore sessions (application
#    state) and of echo sessions with data in both queues: every
#    record is there, and the namespace forgets nothing it tracks;
#  - a restore into B: every session live there with all it had
#    (kvstore resumed it from its state; the stopped echo server's
#    connection holds the queued bytes), or none;
#  - staging: every record staged, or none;
#  - an activation of staged records: all live (as after a restore),
#    nothing left staged; or all still staged and none live.
#
# A request without a reply whose ack the kernel could not allocate
# has an unknown outcome (the tools say so): either is accepted.
#
# Then the records restore for good and the clients go on, state and
# bytes intact (kvstore's first reading of a session's state failed
# once: it asks again and resumes every session), and kmemleak finds
# nothing of ftvm.ko's unreferenced.
# It needs a kernel with FAULT_INJECTION (make check-debug builds one,
# selftests/lib/debug-kernel.sh); Debian's has none: skip.
# FTVM_FAULTS_ONLY="registration checkpoint kv echo": run only these.
# Topology: see ../state/lib.sh.  Under TCG with the debug kernel it
# takes about fifteen minutes (settings: timeout).
source "$(dirname "$0")/../state/lib.sh"
source "$(dirname "$0")/lib.sh"

# No request of these takes this many allocations: a loop that gets
# there is stuck (a fault that never comes back as "missed").
MAXN=${FTVM_FAULTS_MAX:-3000}
faults_setup

# What each loop did, for the log (a check's own output shows only
# when it fails).
SUMMARY=$(mktemp /tmp/ftvm-faults.XXXXXX)
trap 'fault_knobs_restore; rm -f "$SUMMARY"' EXIT
summary() {
	local line
	while read -r line; do ktap_diag "$line"; done <"$SUMMARY"
	: >"$SUMMARY"
}

# faulted NS CMD...: CMD in namespace NS under failnth.so, with the
# fault at $nth; its output in $WORK/out, what the fault did in
# $WORK/nth.
faulted() {
	local ns=$1; shift
	rm -f "$WORK/nth"
	ip netns exec "$ns" env FTVM_FAIL_NTH="$nth" FTVM_FAIL_NTH_OUT="$WORK/nth" \
		LD_PRELOAD="$FAILNTH" "$@" >"$WORK/out" 2>&1
}

# inject WHAT RUN DID CLEAN [RESET]: run the function RUN with the
# fault at N = 1, 2, ...  When RUN succeeds, DID must find all it
# asked for done, then RESET undoes it for the next round; when it
# fails, it must say why ("Error: ...") and CLEAN must find nothing
# changed.  Ends at the first N that RUN never reaches, which must
# succeed.  ERRPAT: how a failure says why.  One failure is neither:
# the kernel did the request but could not allocate its ack (netlink
# then reports ENOBUFS on the socket, and the tools say the answer was
# lost and the request may have been done): then either DID (and
# RESET) or CLEAN must hold.
ERRPAT='^Error: '
inject() {
	local what=$1 run=$2 did=$3 clean=$4 reset=${5:-} rc res hits=0 refused=0 lost=0
	for ((nth = 1; nth <= MAXN; nth++)); do
		"$run"
		rc=$?
		res=$(cat "$WORK/nth" 2>/dev/null)
		case $res in
		hit) hits=$((hits + 1)) ;;
		missed) ;;
		*) echo "$what: no ftvm request was armed (${res:-no report}):"
		   cat "$WORK/out"; return 1 ;;
		esac
		if ((rc == 0)); then
			"$did" || { echo "$what: fault $nth ($res): succeeded, but not all was done"; return 1; }
			[[ -z $reset ]] || "$reset" ||
				{ echo "$what: fault $nth: cannot undo it for the next round"; return 1; }
			if [[ $res == missed ]]; then
				echo "$what: $hits faults injected: $refused refused" \
				     "cleanly, $lost answers lost, $((hits - refused - lost))" \
				     "absorbed" >>"$SUMMARY"
				return 0
			fi
		else
			if [[ $res == missed ]]; then
				echo "$what: failed with no fault injected:"; cat "$WORK/out"; return 1
			fi
			grep -q "$ERRPAT" "$WORK/out" ||
				{ echo "$what: fault $nth: failed without saying why:"; cat "$WORK/out"; return 1; }
			if grep -q "answer was lost.*may have been done" "$WORK/out"; then
				lost=$((lost + 1))
				if "$did" >/dev/null 2>&1; then
					[[ -z $reset ]] || "$reset" ||
						{ echo "$what: fault $nth: cannot undo it for the next round"; return 1; }
					continue
				fi
			fi
			"$clean" || { echo "$what: fault $nth: failed ($(head -n1 "$WORK/out")), and left something behind"; return 1; }
			refused=$((refused + 1))
		fi
	done
	echo "$what: still meeting faults after $MAXN allocations"
	return 1
}

# --- VM registration ------------------------------------------------

vm_add() {
	faulted "$H" "$FTCTL" vm add f id 9 dev hF netns "$P-f"
}
# Registered, with its namespace: a snapshot there answers.
vm_added() {
	nH "$FTCTL" vm show id 9 >/dev/null && state dump 9 $PORT >/dev/null
}
vm_absent() {
	! nH "$FTCTL" vm show id 9 >/dev/null 2>&1
}
vm_remove() {
	nH "$FTCTL" vm del id 9
}

registration() {
	setup || return 1
	ip netns add "$P-f" || return 1
	ip -n "$H" link add hF type veth peer hG && ip -n "$H" link set hF up &&
		ip -n "$H" link set hG up || return 1
	inject "vm add" vm_add vm_added vm_absent vm_remove
	local rc=$?
	ip netns del "$P-f"
	return $rc
}

# --- A libftvm checkpoint -----------------------------------------

# kvstore in A under failnth.so, one client session: its second
# request to ftvm.ko is the checkpoint after its first reply (the first
# asks whether the new connection has state to resume).
ckpt_run() {
	rm -f "$WORK/nth"
	ip netns exec "$A" env FTVM_FAIL_NTH="$nth" FTVM_FAIL_NTH_REQ=2 \
		FTVM_FAIL_NTH_OUT="$WORK/nth" \
		LD_PRELOAD="$FAILNTH" "$EX/kvstore" $PORT >/dev/null 2>"$WORK/out" &
	KV=$!; PIDS+=($KV)
	wait_listen "$A" $PORT && client kv 1 && cmd "round 1" || return 1
	wait_for 10 test -s "$WORK/nth" || return 1
	! grep -q "$ERRPAT" "$WORK/out"
}
ckpt_done() {
	local out
	out=$(state dump 1 $PORT) && [[ $out == "records 1 "*" blobs 1 "* ]] ||
		{ echo "after a checkpoint: '$out', expected a record with its blob"; return 1; }
}
ckpt_clean() {
	local out
	out=$(state dump 1 $PORT) && [[ $out == "records 1 "*" blobs 0 "* ]] ||
		{ echo "after a failed checkpoint: '$out', expected a record without a blob"; return 1; }
	ckpt_reset
}
# The client and kvstore go; a complete snapshot forgets the session.
ckpt_reset() {
	local out
	client_quit || return 1
	kill "$KV"; wait "$KV" 2>/dev/null
	wait_for 10 a_forgot ||
		{ echo "after the session closed: '$(state dump 1 $PORT 2>&1)'"; return 1; }
}
# The session's socket is gone from A (not even closing), and a
# complete snapshot forgot it.
a_forgot() {
	[[ $(state dump 1 $PORT) == "records 0 "*" tracked 0 "* ]]
}

checkpoint() {
	setup || return 1
	ERRPAT='^kvstore: checkpoint: '
	inject "checkpoint" ckpt_run ckpt_done ckpt_clean ckpt_reset
}

# --- Sessions -------------------------------------------------------

# What the snapshot before the faults said, up to its generation and
# byte count: "records N", the blobs, what A tracks.
snap_shape() {
	local out=$1
	echo "${out%% gen *} blobs ${out#* blobs }"
}

dump_a() { faulted "$H" "$EX/ftvm-state" dump 1 $PORT out "$WORK/recs.f"; }
dump_done() {
	[[ $(snap_shape "$(cat "$WORK/out")") == "$SHAPE" ]] ||
		{ echo "dump: '$(cat "$WORK/out")', expected '$SHAPE'"; return 1; }
}
# A failed dump forgets nothing: the next one has every record.
dump_clean() {
	local out
	out=$(state dump 1 $PORT) && [[ $(snap_shape "$out") == "$SHAPE" ]] ||
		{ echo "after a failed dump: '$out', expected '$SHAPE'"; return 1; }
}

# B holds nothing staged (asking drops what it holds: the reset).
b_none_staged() {
	local out
	out=$(state activate 2 discard staged) && [[ $out == "count 0 staged 0" ]] ||
		{ echo "B had records staged: $out"; return 1; }
}
# B: nothing of the service but its listener (b_clean), nor anything
# staged.
b_clean_staged() { b_clean && b_none_staged; }
# Every session live in B with all it had in A: kvstore resumed each
# from its application state (its log counts them), the stopped echo
# server's connections hold A's queued bytes.
b_live() {
	if [[ $KIND == kv ]]; then
		estab_is "$B" "$N" || { echo "B has $(count_estab "$B" $PORT) of $N sessions"; return 1; }
		wait_for 10 resumed_is $((RESUMED + N)) ||
			{ echo "B's kvstore resumed $(resumed) sessions in all, expected $((RESUMED + N))"; return 1; }
		RESUMED=$((RESUMED + N))
	else
		# N connections, and their bytes: one look.
		wait_queues "$B" $((N * 1000)) $((N * 3000)) && estab_is "$B" "$N" ||
			{ echo "B has $(count_estab "$B" $PORT) of $N sessions"; return 1; }
	fi
}
resumed() { grep -c '^kvstore: resumed' "$WORK/b.log"; }
resumed_is() { (($(resumed) == $1)); }
# End B's copies without a packet, as a drain does; the clients do not
# notice, and the next round restores them again.
b_retire() {
	local out
	out=$(state retire 2 "$WORK/recs") && [[ $out == "count $N" ]] ||
		{ echo "retire: $out"; return 1; }
	wait_for 10 b_no_sessions
}
b_no_sessions() { (($(nB ss -Htan "sport = :$PORT" | grep -vc LISTEN) == 0)); }

restore_b() { faulted "$H" "$EX/ftvm-state" restore 2 "$WORK/recs"; }
restore_done() {
	[[ $(cat "$WORK/out") == "count $N" ]] || { echo "restore: $(cat "$WORK/out")"; return 1; }
	b_live
}

stage_b() { faulted "$H" "$EX/ftvm-state" restore 2 "$WORK/recs" stage; }
stage_done() {
	local out
	[[ $(cat "$WORK/out") == "count $N" ]] || { echo "stage: $(cat "$WORK/out")"; return 1; }
	b_no_sessions || { echo "staged sessions are live"; return 1; }
	# Counting them drops them: the reset.
	out=$(state activate 2 discard staged) && [[ $out == "count $N staged 0" ]] ||
		{ echo "B has not $N records staged: $out"; return 1; }
}

activate_b() { faulted "$H" "$EX/ftvm-state" activate 2; }
activate_done() {
	[[ $(cat "$WORK/out") == "count $N" ]] || { echo "activate: $(cat "$WORK/out")"; return 1; }
	b_live && b_none_staged
}
# A failed activation leaves every record staged and none live.
still_staged() {
	local out
	b_no_sessions || { echo "B has sessions live after a failed activation"; nB ss -tan; return 1; }
	out=$(state activate 2 from "$WORK/recs" records 0-0 discard staged 2>&1)
	[[ $out == "count 1 staged $((N - 1))" ]] ||
		{ echo "after a failed activation: '$out', expected 'count 1 staged $((N - 1))'"; return 1; }
	restage
}
restage() {
	local out
	out=$(state restore 2 "$WORK/recs" stage) && [[ $out == "count $N" ]] ||
		{ echo "stage: $out"; return 1; }
}
retire_restage() { b_retire && restage; }

# sessions KIND N: the requests above on N sessions of KIND (kv:
# kvstore with application state; echo: data in both queues), then the
# sessions go on in B.  Two sessions have a request fail on its second
# record, with the first one built; the echo session's queued bytes
# are one record's (a fault each is a round: one session keeps the test
# short).  The functions above see N.
sessions() {
	local kind=$1 N=$2 out apid bpid
	KIND=$kind RESUMED=0
	setup || return 1
	if [[ $kind == kv ]]; then
		ip netns exec "$A" "$EX/kvstore" $PORT >/dev/null 2>"$WORK/a.log" & apid=$!; PIDS+=($apid)
		ip netns exec "$B" "$EX/kvstore" $PORT >/dev/null 2>"$WORK/b.log" & bpid=$!; PIDS+=($bpid)
	else
		ip netns exec "$A" "$EX/echo" tcp $PORT >/dev/null 2>&1 & apid=$!; PIDS+=($apid)
		ip netns exec "$B" "$EX/echo" tcp $PORT >/dev/null 2>&1 & bpid=$!; PIDS+=($bpid)
	fi
	wait_listen "$A" $PORT && wait_listen "$B" $PORT || { echo "no service"; return 1; }
	client "$kind" "$N" && cmd "round 3" || return 1
	if [[ $kind == echo ]]; then
		queue_both $apid "$N" || return 1
	fi
	out=$(state dump 1 $PORT out "$WORK/recs") && [[ $out == "records $N "* ]] ||
		{ echo "snapshot: $out"; return 1; }
	# What a complete snapshot now says (the first one's "tracked"
	# counts what A tracked before it).
	out=$(state dump 1 $PORT) && SHAPE=$(snap_shape "$out")
	[[ $kind != kv || $SHAPE == *" blobs $N "* ]] || { echo "snapshot: $out, expected $N blobs"; return 1; }
	inject "$kind: complete snapshot" dump_a dump_done dump_clean || return 1
	fail_over || return 1
	if [[ $kind == echo ]]; then
		kill -9 $apid
		# Until the end, B's copies keep what they were given: its
		# echo server stopped, what they send lost on the way.
		kill -STOP $bpid
		ip -n "$H" rule add iif hB lookup 100
	fi
	inject "$kind: restore" restore_b restore_done b_clean b_retire || return 1
	inject "$kind: stage" stage_b stage_done b_clean_staged || return 1
	restage || return 1
	inject "$kind: activate" activate_b activate_done still_staged retire_restage || return 1
	# For good now: the clients go on with B.
	if [[ $kind == echo ]]; then
		ip -n "$H" rule del iif hB lookup 100
		kill -CONT $bpid
	else
		# B's kvstore anew, its first request (reading the first
		# session's state) failed: it asks again, and resumes every
		# session with its state.
		kill $bpid; wait $bpid 2>/dev/null
		rm -f "$WORK/nth"
		ip netns exec "$B" env FTVM_FAIL_NTH=1 FTVM_FAIL_NTH_OUT="$WORK/nth" \
			LD_PRELOAD="$FAILNTH" "$EX/kvstore" $PORT >/dev/null 2>"$WORK/b.log" &
		bpid=$!; PIDS+=($bpid); RESUMED=0
		wait_listen "$B" $PORT || { echo "B's kvstore did not start again"; return 1; }
	fi
	out=$(state activate 2) && [[ $out == "count $N" ]] || { echo "activate: $out"; return 1; }
	steer_b
	[[ $kind == echo ]] && { cmd drain || return 1; }
	cmd "round 3" || return 1
	if [[ $kind == kv ]]; then
		# B's kvstore resumed each session from its state, every round.
		wait_for 10 resumed_is $((RESUMED + N)) ||
			{ echo "B's kvstore resumed $(resumed) sessions in all, expected $((RESUMED + N))"; return 1; }
		[[ $(cat "$WORK/nth") == hit ]] ||
			{ echo "B's kvstore: its first request met no fault ($(cat "$WORK/nth"))"; return 1; }
		! grep -q "cannot read" "$WORK/b.log" || { cat "$WORK/b.log"; return 1; }
	fi
	client_quit
}

# check DESC FUNC ARGS...: FUNC in a subshell (ktap_check), whose exit
# cleans its topology up (setup's trap).  With FTVM_FAULTS_ONLY set,
# only the checks with one of its words in FUNC ARGS run.
check() {
	local desc=$1 w; shift
	if [[ -n ${FTVM_FAULTS_ONLY:-} ]]; then
		for w in $FTVM_FAULTS_ONLY; do
			[[ " $* " == *" $w "* ]] && break
		done
		if [[ " $* " != *" $w "* ]]; then
			ktap_skip "$desc" "not in FTVM_FAULTS_ONLY"
			return
		fi
	fi
	ktap_check "$desc" "$@"
	summary
}

ktap_begin 5
check "a VM's registration under fault injection: all or nothing" registration
check "a libftvm checkpoint under fault injection: attached, or refused and nothing attached" checkpoint
check "2 kvstore sessions: snapshot, restore, stage, activate under fault injection" sessions kv 2
check "an echo session with data in both queues: the same" sessions echo 1
ktap_check "no object of ftvm.ko's left unreferenced (kmemleak)" no_leak
ktap_end
