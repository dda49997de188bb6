#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The staged store, per session, and the nudge after the switch.
# Topology: see lib.sh (client C, host H, VMs A and B).
#
#  - restage: sessions staged on B are staged again from a newer
#    snapshot: the count of staged records stays N and the newer state is
#    what activates (the kvstore clients check every byte and their
#    state); half the sessions activated by name, the others stay staged;
#    an activation naming an activated session is refused and changes
#    nothing; the rest activate (quietly: no window probe) and every
#    session goes on;
#  - hold: kvstore sessions staged on B, A's device deleted (A fails,
#    which arms B), the service routed to B before the sessions are live
#    there, and the clients send: B neither resets nor answers them (it
#    holds their segments) until the activation, then every session goes
#    on at once, nothing lost; the same once B's arming is over (the
#    failover late: B still holds the sessions staged there); the
#    control: routed to B while A is up (no failure, B never armed), B
#    resets the same clients;
#  - held first: the same failover, but only some of the clients send:
#    an activation of the sessions clients wait for (held, naming them
#    all) makes exactly those live, and their clients are answered,
#    while the others stay staged; a second finds none waiting; then the
#    rest are activated and every session goes on;
#  - nudge: echo sessions whose echoes are unacknowledged in A's send
#    queue are activated on B behind a fence (H drops what B sends, as
#    ftvm_fence does until the switch), their first timers fire into it;
#    then the switch, once their next timer is 2.5 s away or more.  With
#    a nudge the clients get their echoes at once; without, only when the
#    restored sockets' RTO fires, seconds later.
source "$(dirname "$0")/lib.sh"

N=${FTVM_STATE_SESSIONS:-20}
NUDGE_N=4
STALL_MIN_MS=1000	# without the nudge, the clients wait at least this (the control)

# kv_staged NAME: kvstore in A and B, the client's N sessions after two
# rounds, their records dumped from A into $WORK/NAME and staged on B.
kv_staged() {
	local out
	setup || return 1
	ip netns exec "$A" "$EX/kvstore" $PORT >/dev/null 2>"$WORK/a.log" & PIDS+=($!)
	ip netns exec "$B" "$EX/kvstore" $PORT >/dev/null 2>"$WORK/b.log" & PIDS+=($!)
	wait_listen "$A" $PORT && wait_listen "$B" $PORT || { echo "no service"; return 1; }
	client kv "$N" && cmd "round 2" || return 1
	out=$(state dump 1 $PORT out "$WORK/$1") && [[ $out == "records $N "* ]] || { echo "dump: $out"; return 1; }
	out=$(state restore 2 "$WORK/$1" stage staged) && [[ $out == "count $N staged $N" ]] ||
		{ echo "stage: $out"; return 1; }
}

restage() {
	local out s0 k=$((N / 2))
	kv_staged old || return 1
	# The sessions move on; the staged records are now stale.
	cmd "round 3" || return 1
	out=$(state dump 1 $PORT out "$WORK/new") && [[ $out == "records $N "* ]] || { echo "dump: $out"; return 1; }
	out=$(state restore 2 "$WORK/new" stage batch 7 staged) && [[ $out == "count $N staged $N" ]] ||
		{ echo "restage: '$out', expected 'count $N staged $N'"; return 1; }
	fail_over || return 1
	s0=$(out_segs "$B")
	out=$(state activate 2 from "$WORK/new" records 0-$((k - 1)) staged) &&
		[[ $out == "count $k staged $((N - k))" ]] || { echo "activate named: $out"; return 1; }
	(($(count_estab "$B" $PORT) == k)) || { echo "B has $(count_estab "$B" $PORT) sessions, expected $k"; return 1; }
	# Each left repair mode with a window probe.
	(($(out_segs "$B") - s0 >= k)) ||
		{ echo "the activation sent $(($(out_segs "$B") - s0)) segments, expected $k window probes"; return 1; }
	# A session still staged and one already live: refused, as a whole.
	out=$(state activate 2 from "$WORK/new" records $k-$k records 0-0 2>&1) && { echo "activated: $out"; return 1; }
	[[ $out == *"no record staged for this session"* ]] || { echo "bad name: $out"; return 1; }
	(($(count_estab "$B" $PORT) == k)) || { echo "the refused activation changed B"; return 1; }
	# The rest quietly: no probe (a caller that nudges them).
	s0=$(out_segs "$B")
	out=$(state activate 2 quiet staged) && [[ $out == "count $((N - k)) staged 0" ]] ||
		{ echo "activate the rest: $out"; return 1; }
	(($(out_segs "$B") == s0)) ||
		{ echo "the quiet activation sent $(($(out_segs "$B") - s0)) segments"; return 1; }
	steer_b
	cmd "round 5" || return 1
	grep -q "resumed $N\$" "$WORK/b.log" || { echo "B resumed $(grep -c resumed "$WORK/b.log") of $N"; return 1; }
	client_quit
}

# tcp_mib NS FIELD: a counter of TCP in NS.
tcp_mib() {
	ip netns exec "$1" awk -v f="$2" '/^Tcp:/ {
		if (!h) { for (i = 2; i <= NF; i++) c[$i] = i; h = 1; next }
		print $c[f] }' /proc/net/snmp
}

# out_rsts NS, out_segs NS: the resets, the segments TCP in NS has sent.
out_rsts() { tcp_mib "$1" OutRsts; }
out_segs() { tcp_mib "$1" OutSegs; }

# hold_of VM: "armed_ms queued held released expired overflow dev_gone"
# of VM's ingress hold, from "ftctl -j vm show".
hold_of() {
	nH "$FTCTL" -j vm show "$1" | python3 -c '
import json, sys
h = json.load(sys.stdin)[0]["hold"]
print(*(h[k] for k in ("armed_ms", "queued", "held", "released", "expired",
		       "overflow", "dev_gone")))'
}

# hold FAIL: sessions staged on B, then routed to B before they are live
# there, A failed first (FAIL 1; 2: and B's arming over by then) or not
# (0, the control).
hold() {
	local fail=$1 out r0 line armed queued held released expired overflow gone
	kv_staged recs || return 1
	if ((fail)); then
		fail_over || return 1
	fi
	if ((fail == 2)); then
		disarmed() { [[ $(hold_of b) == "0 "* ]]; }
		wait_for 15 disarmed || { echo "B still armed: '$(hold_of b)'"; return 1; }
	fi
	steer_b
	r0=$(out_rsts "$B")
	echo "round 1" >&"${CL[1]}"
	if ((!fail)); then
		read -r -t 60 line <&"${CL[0]}"
		[[ $line == ok* ]] && { echo "the clients went on: B did not reset them"; return 1; }
		(($(out_rsts "$B") > r0)) || { echo "B sent no reset ($line)"; return 1; }
		read -r armed queued held released expired overflow gone <<<"$(hold_of b)"
		[[ "$armed $queued $held $released $expired" == "0 0 0 0 0" ]] ||
			{ echo "B's hold, never armed: '$(hold_of b)'"; return 1; }
		return 0
	fi
	# The clients' requests (and their retransmissions) reach B, which
	# has no connection for them yet.
	sleep 1
	(($(count_estab "$B" $PORT) == 0)) || { echo "B has connections before the activation"; return 1; }
	(($(out_rsts "$B") == r0)) || { echo "B reset $(($(out_rsts "$B") - r0)) segments before the activation"; return 1; }
	read -r -t 0.1 line <&"${CL[0]}" && { echo "the clients were answered before the activation: $line"; return 1; }
	# What B held, as ftctl tells it: every client's request at least
	# (B reset none), nothing let in yet; the clients' retransmissions
	# are held too, and a segment that waited FTVM_HOLD_WAIT is dropped
	# (expired).  Every segment held is accounted for.
	read -r armed queued held released expired overflow gone <<<"$(hold_of b)"
	((held >= N && released == 0 && overflow + gone == 0 &&
	  held == queued + expired)) ||
		{ echo "B's hold before the activation: '$(hold_of b)'"; return 1; }
	[[ $(nH "$FTCTL" vm show b) == *$'\n    hold: '*", queued "*", held "*", released 0, expired "* ]] ||
		{ echo "vm show b: $(nH "$FTCTL" vm show b)"; return 1; }
	# Armed by A's failure (1), or held though no longer armed (2).
	((fail == 1 ? armed > 0 : armed == 0)) || { echo "B's arming: '$(hold_of b)'"; return 1; }
	out=$(state activate 2) && [[ $out == "count $N" ]] || { echo "activate: $out"; return 1; }
	read -r -t 60 line <&"${CL[0]}" && [[ $line == ok* ]] || { echo "client after the activation: $line"; return 1; }
	(($(out_rsts "$B") == r0)) || { echo "B reset $(($(out_rsts "$B") - r0)) segments"; return 1; }
	# What B still held was let in at the activation (what had waited
	# too long before it was dropped): nothing is left.
	read -r armed queued held released expired overflow gone <<<"$(hold_of b)"
	((queued == 0 && overflow + gone == 0 &&
	  held == released + expired)) ||
		{ echo "B's hold after the activation: '$(hold_of b)'"; return 1; }
	cmd "round 2" || return 1
	grep -q "resumed $N\$" "$WORK/b.log" || { echo "B resumed $(grep -c resumed "$WORK/b.log") of $N"; return 1; }
	client_quit
}

# held_first: the failover of hold 1, with a quarter of the clients
# sending; those are made live first, alone.
held_first() {
	local k=$((N / 4)) out line ports want got
	kv_staged recs || return 1
	echo "ports $k" >&"${CL[1]}"
	read -r -t 60 line <&"${CL[0]}" && [[ $line == "ok ports "* ]] || { echo "client: $line"; return 1; }
	ports=${line#ok ports }
	fail_over || return 1
	steer_b
	# Nothing waits yet: none is made live.
	out=$(state activate 2 held) && [[ $out == "count 0" ]] || { echo "held, before: $out"; return 1; }
	echo "round 1 first $k" >&"${CL[1]}"
	waiting() { read -r _ queued _ <<<"$(hold_of b)"; ((queued >= k)); }
	wait_for 30 waiting || { echo "B holds: '$(hold_of b)'"; return 1; }
	out=$(state activate 2 held from "$WORK/recs") || { echo "held: $out"; return 1; }
	want=$(tr ' ' '\n' <<<"$ports" | sort -n | tr '\n' ' ')
	got=$(sed -n 's/^count [0-9]* rports //p' <<<"$out" | tr ' ' '\n' | sort -n | tr '\n' ' ')
	[[ $out == "count $k rports "* && $got == "$want" ]] ||
		{ echo "held: '$out', expected the clients on ports $want"; return 1; }
	read -r -t 60 line <&"${CL[0]}" && [[ $line == ok* ]] || { echo "client after the held activation: $line"; return 1; }
	(($(count_estab "$B" $PORT) == k)) || { echo "B has $(count_estab "$B" $PORT) sessions, expected $k"; return 1; }
	out=$(state activate 2 held) && [[ $out == "count 0" ]] || { echo "held, again: $out"; return 1; }
	out=$(state activate 2 staged) && [[ $out == "count $((N - k)) staged 0" ]] ||
		{ echo "activate the rest: $out"; return 1; }
	cmd "round 2" || return 1
	grep -q "resumed $N\$" "$WORK/b.log" || { echo "B resumed $(grep -c resumed "$WORK/b.log") of $N"; return 1; }
	client_quit
}

# min_timer_ms NS: the shortest retransmission timer left among the
# service's connections in NS, in ms (-1 when one has none).
min_timer_ms() {
	ip netns exec "$1" ss -Htno state established "sport = :$PORT" | awk '
		BEGIN { min = -1 }
		{
			if (!match($0, /timer:\(on,[0-9.]+(ms|sec|min)/)) { print -1; none = 1; exit }
			v = substr($0, RSTART + 10, RLENGTH - 10)
			ms = v ~ /ms$/ ? v + 0 : v ~ /sec$/ ? v * 1000 : v * 60000
			if (min < 0 || ms < min) min = ms
		}
		END { if (!none) print int(min) }'
}

# stall NUDGE: prints, on fd 3, the ms the clients waited for their
# echoes after the switch and the ms the restored connections' next
# timer had left at the switch.
stall() {
	local nudge=$1 out t i ms left
	setup || return 1
	ip netns exec "$A" "$EX/echo" tcp $PORT >/dev/null 2>&1 & PIDS+=($!)
	ip netns exec "$B" "$EX/echo" tcp $PORT >/dev/null 2>&1 & PIDS+=($!)
	wait_listen "$A" $PORT && wait_listen "$B" $PORT || return 1
	client echo $NUDGE_N && cmd "round 1" || return 1
	# A's echoes never reach the clients: unacknowledged in its send queue.
	ip -n "$H" route add blackhole 198.18.0.2/32 table 100
	ip -n "$H" rule add iif hA lookup 100
	cmd "send 1000" && wait_queues "$A" 0 $((NUDGE_N * 1000)) || return 1
	out=$(state dump 1 $PORT out "$WORK/recs") && [[ $out == "records $NUDGE_N "* ]] || { echo "dump: $out"; return 1; }
	fail_over || return 1
	# The fence: nothing B sends reaches the clients until the switch.
	ip -n "$H" rule add iif hB lookup 100
	out=$(state restore 2 "$WORK/recs" stage) && out=$(state activate 2) &&
		[[ $out == "count $NUDGE_N" ]] || { echo "activate: $out"; return 1; }
	# The window probes and the first timers go into the fence; switch
	# when every restored connection's next timer is at least 2.5 s away
	# (after the tail-loss probe, the RTO: 3 s without an RTT sample).
	for ((i = 0; i < 600; i++)); do
		t=$(min_timer_ms "$B")
		((t >= 2500)) && break
		sleep 0.05
	done
	((t >= 2500)) || { echo "B's timers: $t ms"; nB ss -tnoi; return 1; }
	left=$t
	ip -n "$H" rule del iif hB lookup 100
	steer_b
	t=$(date +%s%N)
	if ((nudge)); then
		out=$(state nudge 2 "$WORK/recs") && [[ $out == "count $NUDGE_N" ]] || { echo "nudge: $out"; return 1; }
	fi
	cmd drain || return 1
	ms=$((($(date +%s%N) - t) / 1000000))
	echo "$ms $left" >&3
	cmd "round 1" && client_quit
}

MS=/tmp/ftvm-nudge-$$
nudge() {
	local with left without left0
	stall 1 3>"$MS.1" || return 1
	cleanup; trap - EXIT
	stall 0 3>"$MS.0" || return 1
	read -r with left <"$MS.1"
	read -r without left0 <"$MS.0"
	echo "clients resumed $with ms after the switch with the nudge (RTO $left ms away)," \
	     "$without ms without (RTO $left0 ms away)" >"$MS"
	# Well before the RTO: in less than half the time it had left.
	((2 * with <= left)) || { echo "with the nudge: $with ms, the RTO was $left ms away"; return 1; }
	((without >= STALL_MIN_MS)) || { echo "without the nudge: $without ms: the clients did not stall"; return 1; }
}

ktap_begin 6
ktap_check "restage replaces ($N sessions), named activation leaves the rest staged, a bad name changes nothing" restage
cleanup; trap - EXIT
ktap_check "a VM failed: what reaches its backup for sessions staged there waits for their activation, then goes on" hold 1
cleanup; trap - EXIT
ktap_check "the same once the backup's arming is over: the sessions staged there are still held, none reset" hold 2
cleanup; trap - EXIT
ktap_check "control: no VM failed, the backup resets the same clients" hold 0
cleanup; trap - EXIT
ktap_check "held first: the sessions clients wait for are made live alone, the others stay staged" held_first
cleanup; trap - EXIT
ktap_check "nudge after the switch: clients resume at once, not at the RTO" nudge
[[ -s $MS ]] && ktap_diag "$(<"$MS")"
rm -f "$MS" "$MS".[01]
ktap_end
