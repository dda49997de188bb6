#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Session state: what a snapshot and a restore must survive or refuse.
# Topology: see lib.sh (client C, host H, VMs A and B).
#
#  - restore into a VM whose listener went away: refused, nothing left;
#  - each bad record (other version, no version, bad family, truncated
#    queue, an RTT no socket can hold, malformed attribute, 5-tuple
#    twice): refused with its extack
#    message, nothing left; then the good records restore and the
#    clients go on; restoring them again: 5-tuple in use, the live
#    sessions unharmed;
#  - a VM without a namespace, and one whose namespace went away;
#  - snapshots while sessions open and close at a high rate, and of
#    sockets that are closing (not captured);
#  - a connection still in its handshake (TCP_DEFER_ACCEPT holds it
#    until the client's first data): counted, not captured; once
#    established, captured;
#  - two libftvm services in one VM: a complete snapshot of one keeps
#    the other's application state (its records still carry it);
#  - the sessions a VM keeps track of: closed, they are forgotten by the
#    next complete snapshot of their port (TCP only, as ftd takes it),
#    not by an incremental one;
#  - checkpoints during complete snapshots: 200 kvstore sessions, each
#    checkpointing every 200 ms, snapshotted again and again; every
#    record carries its state (a checkpoint that replaced an entry the
#    snapshot had seen must not be pruned with the closed ones);
#  - retired sessions (a drain's): their connections end in the VM and
#    the VM forgets them and their state at once; the others keep it; a
#    gone check names the retired ones only (IPv4 names of kvstore's
#    v4-mapped sockets);
#  - a socket that sent without moving its byte streams (a keepalive
#    probe) is captured again by an incremental snapshot (its TSval);
#  - a gone check (FTVM_CMD_SESSION_GONE) names only the connections
#    with nothing left in the VM: not one in its handshake (a request
#    socket), established, in time-wait or in close-wait;
#  - a service whose listener is bound to its VM's device
#    (SO_BINDTODEVICE, which its connections inherit): its sessions are
#    found by a gone check and a nudge, restored in B bound to B's
#    device as B's listener is, and go on there; retired there, they
#    end, and only they are gone;
#  - the RTT estimate and congestion window go with a session: restored,
#    a connection has the original's cwnd, ssthresh, srtt, rttvar and
#    RTO, and goes on.
source "$(dirname "$0")/lib.sh"

N=${FTVM_STATE_SESSIONS:-20}

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
	refused srtt "integer out of range" &&
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

# A listener with TCP_DEFER_ACCEPT in A; a client in C that connects,
# says "connected", then sends "hello" when told and prints the echo.
DEFER_SERVER='
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 60)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(8)
c, _ = s.accept()
c.sendall(c.recv(100))
c.recv(100)'
SILENT_CLIENT='
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
print("connected", flush=True)
sys.stdin.readline()
c.sendall(b"hello")
print(c.recv(100).decode(), flush=True)
sys.stdin.readline()'

# hs_dump RECORDS HANDSHAKES: what a TCP snapshot of A's service counts.
hs_dump() {
	local out
	out=$(state dump 1 $PORT proto tcp) || { echo "$out"; return 1; }
	[[ $out == "records $1 "*" handshakes $2" ]] ||
		{ echo "snapshot: '$out', expected $1 records, $2 handshakes"; return 1; }
}

handshakes() {
	local line
	setup || return 1
	ip netns exec "$A" python3 -c "$DEFER_SERVER" $SVC $PORT & PIDS+=($!)
	wait_listen "$A" $PORT || return 1
	hs_dump 0 0 || return 1
	coproc HS { exec ip netns exec "$C" python3 -c "$SILENT_CLIENT" $SVC $PORT 2>&1; }
	PIDS+=("$HS_PID")
	read -r -t 30 line <&"${HS[0]}" && [[ $line == connected ]] ||
		{ echo "client: $line"; return 1; }
	# The client is connected; A holds a request socket, no session.
	hs_dump 0 1 || return 1
	echo go >&"${HS[1]}"
	read -r -t 30 line <&"${HS[0]}" && [[ $line == hello ]] ||
		{ echo "client: $line"; return 1; }
	hs_dump 1 0 || return 1
	echo bye >&"${HS[1]}"
	wait "$HS_PID"
}

# blobs_of PORT: "records N blobs K" of a TCP snapshot of A's PORT.
blobs_of() {
	state dump 1 "$1" proto tcp |
		sed -n 's/^records \([0-9]*\) .* blobs \([0-9]*\) .*/records \1 blobs \2/p'
}

two_services() {
	local port2=$((PORT + 2)) out line
	setup || return 1
	ip netns exec "$A" "$EX/kvstore" $PORT >/dev/null 2>&1 & PIDS+=($!)
	ip netns exec "$A" "$EX/kvstore" $port2 >/dev/null 2>&1 & PIDS+=($!)
	wait_listen "$A" $PORT && wait_listen "$A" $port2 || { echo "no service"; return 1; }
	client kv "$N" && cmd "round 2" || return 1
	# A second client (bash has one coproc at a time): on fifos.
	mkfifo "$WORK/kv2.in" "$WORK/kv2.out" || return 1
	ip netns exec "$C" "$EX/sessclient" kv $SVC $port2 "$N" \
		<"$WORK/kv2.in" >"$WORK/kv2.out" 2>&1 & PIDS+=($!)
	exec 7>"$WORK/kv2.in" 8<"$WORK/kv2.out"
	read -r -t 120 line <&8 && [[ $line == ok* ]] || { echo "client 2: $line"; return 1; }
	echo "round 2" >&7
	read -r -t 120 line <&8 && [[ $line == ok* ]] || { echo "client 2: $line"; return 1; }
	out=$(blobs_of $port2) && [[ $out == "records $N blobs $N" ]] ||
		{ echo "port $port2: '$out', expected $N records with their state"; return 1; }
	# Complete snapshots of the first service (as ftd takes them).
	out=$(blobs_of $PORT) && [[ $out == "records $N blobs $N" ]] ||
		{ echo "port $PORT: '$out', expected $N records with their state"; return 1; }
	state dump 1 $PORT >/dev/null || return 1
	out=$(blobs_of $port2) && [[ $out == "records $N blobs $N" ]] ||
		{ echo "port $port2 after snapshots of port $PORT: '$out', expected $N records with their state"; return 1; }
	echo quit >&7
	exec 7>&- 8<&-
	client_quit
}

# kv_in_a [N [ROUNDS]]: the topology, kvstore in A, a client of N
# sessions (default $N) that have had ROUNDS rounds (default 2).
kv_in_a() {
	setup || return 1
	ip netns exec "$A" "$EX/kvstore" $PORT >/dev/null 2>&1 & PIDS+=($!)
	wait_listen "$A" $PORT || { echo "no service"; return 1; }
	client kv "${1:-$N}" && cmd "round ${2:-2}"
}

# gen_of OUT: the generation in a "records N gen G ..." line.
gen_of() { sed -n 's/^records [0-9]* gen \([0-9]*\) .*/\1/p' <<<"$1"; }

# tracked_of ARGS...: "records N tracked T" of a snapshot of A's service.
tracked_of() {
	state dump 1 $PORT proto tcp "$@" |
		sed -n 's/^records \([0-9]*\) .* tracked \([0-9]*\) .*/records \1 tracked \2/p'
}

forgotten() {
	local out gen
	kv_in_a || return 1
	out=$(tracked_of) && [[ $out == "records $N tracked $N" ]] ||
		{ echo "open: '$out', expected $N records, $N tracked"; return 1; }
	gen=$(gen_of "$(state dump 1 $PORT proto tcp)")
	client_quit
	wait_for 30 estab_is "$A" 0 || { echo "A still has $(count_estab "$A" $PORT) sessions"; return 1; }
	# An incremental snapshot does not judge what is gone.
	out=$(tracked_of since "$gen") && [[ $out == "records 0 tracked $N" ]] ||
		{ echo "incremental, closed: '$out', expected 0 records, $N tracked"; return 1; }
	out=$(tracked_of) && [[ $out == "records 0 tracked $N" ]] ||
		{ echo "complete, closed: '$out', expected 0 records, $N tracked"; return 1; }
	out=$(tracked_of) && [[ $out == "records 0 tracked 0" ]] ||
		{ echo "after a complete snapshot: '$out', expected none tracked"; return 1; }
}

# retired: the sessions a drain handed over end in their old VM
# (FTVM_CMD_SESSION_RETIRE), and the VM forgets them and their
# application state at once, without waiting for a complete snapshot
# (a drained VM may never have one).
retired() {
	local out gen
	kv_in_a || return 1
	out=$(state dump 1 $PORT proto tcp out "$WORK/recs") &&
		[[ $out == "records $N "*" blobs $N tracked $N "* ]] ||
		{ echo "open: '$out', expected $N records with their state, $N tracked"; return 1; }
	gen=$(gen_of "$out")
	out=$(state retire 1 "$WORK/recs" records 0-$((N / 2 - 1))) &&
		[[ $out == "count $((N / 2))" ]] ||
		{ echo "retire: '$out', expected count $((N / 2))"; return 1; }
	(($(count_estab "$A" $PORT) == N - N / 2)) ||
		{ echo "A has $(count_estab "$A" $PORT) sessions, expected $((N - N / 2))"; return 1; }
	# Incremental: no prune; the retired ones are forgotten already.
	out=$(tracked_of since "$gen") && [[ $out == "records 0 tracked $((N - N / 2))" ]] ||
		{ echo "after the retire: '$out', expected 0 records, $((N - N / 2)) tracked"; return 1; }
	out=$(blobs_of $PORT) && [[ $out == "records $((N - N / 2)) blobs $((N - N / 2))" ]] ||
		{ echo "the others: '$out', expected $((N - N / 2)) records with their state"; return 1; }
	out=$(state retire 1 "$WORK/recs" records 0-$((N / 2 - 1))) && [[ $out == "count 0" ]] ||
		{ echo "retire again: '$out', expected count 0"; return 1; }
	# kvstore is dual-stack: its IPv4 clients' sockets are v4-mapped,
	# found by their IPv4 names.  The retired ones are gone, the others
	# not.
	out=$(state gone 1 "$WORK/recs") && [[ $out == "count $((N / 2)) rports "* ]] ||
		{ echo "gone check: '$out', expected count $((N / 2))"; return 1; }
	out=$(state gone 1 "$WORK/recs" records $((N / 2))-$((N - 1))) && [[ $out == "count 0" ]] ||
		{ echo "gone check of those not retired: '$out', expected count 0"; return 1; }
	client_quit
}

# sent: a socket that sends without moving its byte streams (here a
# keepalive probe: an unmodified service that never reads) has changed,
# and an incremental snapshot writes it again: its record's TS_VAL must
# not stay behind a TSval its client has seen, or a copy restored from
# it sends TSvals the client's PAWS check drops.
sent() {
	local out gen
	setup || return 1
	ip netns exec "$A" python3 -c '
import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("'$SVC'", '$PORT'))
s.listen()
c, _ = s.accept()
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 5)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
c.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
time.sleep(120)' & PIDS+=($!)
	wait_listen "$A" $PORT || { echo "no service"; return 1; }
	ip netns exec "$C" python3 -c '
import socket, time
c = socket.create_connection(("'$SVC'", '$PORT'))
time.sleep(120)' & PIDS+=($!)
	wait_for 30 estab_is "$A" 1 || { echo "no connection"; return 1; }
	out=$(state dump 1 $PORT proto tcp) && [[ $out == "records 1 "* ]] ||
		{ echo "first: '$out', expected 1 record"; return 1; }
	gen=$(gen_of "$out")
	# Its first keepalive probe goes 5 s after SO_KEEPALIVE, set last
	# (TCP_KEEPIDLE on a socket that keeps alive already counts from the
	# last segment received: set 1 s or more after the handshake, as a
	# slow guest may, its probe went at once).  At once, nothing has
	# changed.
	out=$(state dump 1 $PORT proto tcp since "$gen") && [[ $out == "records 0 "* ]] ||
		{ echo "at once: '$out', expected no record"; return 1; }
	probed() {
		out=$(state dump 1 $PORT proto tcp since "$gen") && [[ $out == "records 1 "* ]]
	}
	wait_for 20 probed ||
		{ echo "after keepalive probes: '$out', expected the session again"; return 1; }
}

# names_of NS OUT PORT...: a names file (FTVM_A_SESSION nests with the
# 5-tuple only, as ftvm-state reads them) of every IPv4 TCP connection
# ss lists in NS on the ports, in any state but LISTEN, then one made
# up (client port 1: nothing there).  Prints their client ports, in
# order.  The attribute numbers are uapi/ftvm.h's (enum ftvm_a,
# enum ftvm_a_sess).
names_of() {
	local ns=$1 out=$2
	shift 2
	ip netns exec "$ns" ss -Htan |
		python3 -c '
import socket, struct, sys
out, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
def attr(t, data):
	a = struct.pack("=HH", 4 + len(data), t) + data
	return a + b"\0" * (-len(a) % 4)
def name(laddr, lport, raddr, rport):
	body = (attr(2, bytes([socket.IPPROTO_TCP])) + attr(3, bytes([socket.AF_INET])) +
		attr(4, socket.inet_aton(laddr)) + attr(5, socket.inet_aton(raddr)) +
		attr(6, struct.pack("=H", lport)) + attr(7, struct.pack("=H", rport)))
	return attr(3, body)
recs, rports, last = b"", [], None
for line in sys.stdin:
	f = line.split()
	if f[0] == "LISTEN":
		continue
	(la, lp), (ra, rp) = (x.rsplit(":", 1) for x in f[3:5])
	if int(lp) not in ports:
		continue
	recs += name(la, int(lp), ra, int(rp))
	rports.append(rp)
	last = (la, int(lp), ra)
if last:
	recs += name(last[0], last[1], last[2], 1)
	rports.append("1")
open(out, "wb").write(recs)
print(" ".join(rports))' "$out" "$@"
}

# A service in A that keeps, closes or answers each connection as its
# client says: "close": it closes first (A ends in time-wait), "hold":
# it never closes (A ends in close-wait), "echo": it answers, then
# closes when the client does (nothing left in A).
GONE_SERVER='
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(8)
keep = []
def serve(c):
	what = c.recv(100).strip()
	if what == b"close":
		c.close()
		return
	keep.append(c)
	if what == b"echo":
		c.sendall(b"echo")
		while c.recv(100):
			pass
		c.close()
while True:
	c, _ = s.accept()
	threading.Thread(target=serve, args=(c,), daemon=True).start()'
GONE_CLIENT='
import socket, sys, time
cs = []
for what in (b"close", b"hold", b"echo"):
	c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
	c.sendall(what)
	cs.append(c)
cs[2].recv(100)
print("connected", flush=True)
sys.stdin.readline()
for c in cs:
	c.close()
print("closed", flush=True)
sys.stdin.readline()'

# gone OUT: "count N rports P..." of a gone check of the names in OUT.
gone_of() { state gone 1 "$1"; }

# gone: which named sessions have nothing left in the VM
# (FTVM_CMD_SESSION_GONE): not one in its handshake, established,
# closing, in time-wait or close-wait; one whose connection ended.
gone() {
	local line out ports est cw want hs=$((PORT + 1))
	setup || return 1
	ip netns exec "$A" python3 -c "$GONE_SERVER" $SVC $PORT & PIDS+=($!)
	ip netns exec "$A" python3 -c "$DEFER_SERVER" $SVC $hs & PIDS+=($!)
	wait_listen "$A" $PORT && wait_listen "$A" $hs || { echo "no service"; return 1; }
	# The handshake's client on fifos (bash has one coproc at a time).
	mkfifo "$WORK/hs.in" "$WORK/hs.out" || return 1
	ip netns exec "$C" python3 -c "$SILENT_CLIENT" $SVC $hs \
		<"$WORK/hs.in" >"$WORK/hs.out" 2>&1 & PIDS+=($!)
	exec 7>"$WORK/hs.in" 8<"$WORK/hs.out"
	read -r -t 30 line <&8 && [[ $line == connected ]] ||
		{ echo "handshake client: $line"; return 1; }
	coproc GC { exec ip netns exec "$C" python3 -c "$GONE_CLIENT" $SVC $PORT 2>&1; }
	PIDS+=("$GC_PID")
	read -r -t 30 line <&"${GC[0]}" && [[ $line == connected ]] ||
		{ echo "client: $line"; return 1; }
	# Four connections: the one A closed (fin-wait-2), two established,
	# one in its handshake (a request socket); and one made up.
	wait_for 10 eval '(( $(nA ss -Htan state fin-wait-2 "sport = :$PORT" | wc -l) == 1 ))' ||
		{ echo "A did not close the first connection:"; nA ss -tan; return 1; }
	ports=$(names_of "$A" "$WORK/names" $PORT $hs) || return 1
	set -- $ports
	(($# == 5)) || { echo "names: '$ports', expected 5 ports:"; nA ss -tan; return 1; }
	out=$(gone_of "$WORK/names") && [[ $out == "count 1 rports 1" ]] ||
		{ echo "all there: '$out', expected count 1 rports 1 (the made-up one)"; nA ss -tan; return 1; }
	# The client closes its three: A's first goes to time-wait, the
	# second stays in close-wait, the third closes and is gone.
	est=$(nA ss -Htan state established "sport = :$PORT" | awk '{ sub(/.*:/, "", $4); print $4 }')
	echo go >&"${GC[1]}"
	read -r -t 30 line <&"${GC[0]}" && [[ $line == closed ]] ||
		{ echo "client: $line"; return 1; }
	wait_for 10 eval '(( $(nA ss -Htan state time-wait "sport = :$PORT" | wc -l) == 1 &&
			     $(nA ss -Htan state close-wait "sport = :$PORT" | wc -l) == 1 &&
			     $(nA ss -Htan "sport = :$PORT" | grep -vc LISTEN) == 2 ))' ||
		{ echo "A after the client closed:"; nA ss -tan; return 1; }
	cw=$(nA ss -Htan state close-wait "sport = :$PORT" | awk '{ sub(/.*:/, "", $4); print $4 }')
	want=$(echo "$est" | grep -vx "$cw")
	[[ $want =~ ^[0-9]+$ ]] || { echo "established '$est', close-wait '$cw'"; return 1; }
	out=$(gone_of "$WORK/names")
	[[ $out == "count 2 rports "* && " ${out#count 2 rports } " == *" $want 1 "* ]] ||
		{ echo "after the close: '$out', expected count 2: $want (the echo one) and 1"; nA ss -tan; return 1; }
	# Its handshake over, the connection on the other port is established.
	echo go >&7
	read -r -t 30 line <&8 && [[ $line == hello ]] || { echo "handshake client: $line"; return 1; }
	out=$(gone_of "$WORK/names") && [[ $out == "count 2 "* ]] ||
		{ echo "once established: '$out', expected count 2"; return 1; }
	echo bye >&7
	echo bye >&"${GC[1]}"
	exec 7>&- 8<&-
}

# An echo service; on a listener bound to device ARGV[3] if given (its
# connections inherit the binding).
ECHO_SERVER='
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if len(sys.argv) > 3:
	s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, sys.argv[3].encode())
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1024)
def serve(c):
	while True:
		d = c.recv(65536)
		if not d:
			break
		c.sendall(d)
	c.close()
while True:
	c, _ = s.accept()
	threading.Thread(target=serve, args=(c,), daemon=True).start()'

# bound_estab NS N: N established connections of the service in NS, all
# bound to its eth0.
bound_estab() {
	local all on
	all=$(ip netns exec "$1" ss -Htan state established "sport = :$PORT" | wc -l)
	on=$(ip netns exec "$1" ss -Htan state established "sport = :$PORT" | grep -c "%eth0:$PORT ")
	((all == $2 && on == $2)) || { echo "$1: $all established, $on on eth0, expected $2"; return 1; }
}

devbound() {
	local out
	setup || return 1
	ip netns exec "$A" python3 -c "$ECHO_SERVER" $SVC $PORT eth0 & PIDS+=($!)
	ip netns exec "$B" python3 -c "$ECHO_SERVER" $SVC $PORT eth0 & PIDS+=($!)
	wait_listen "$A" $PORT && wait_listen "$B" $PORT || { echo "no service"; return 1; }
	client echo "$N" && cmd "round 1" || return 1
	bound_estab "$A" "$N" || return 1
	out=$(state dump 1 $PORT proto tcp out "$WORK/recs") && [[ $out == "records $N "* ]] ||
		{ echo "dump: '$out', expected $N records"; return 1; }
	# Found, for all their binding: none gone, each nudged.
	out=$(state gone 1 "$WORK/recs") && [[ $out == "count 0" ]] ||
		{ echo "gone check in A: '$out', expected count 0"; return 1; }
	out=$(state nudge 1 "$WORK/recs") && [[ $out == "count $N" ]] ||
		{ echo "nudge in A: '$out', expected count $N"; return 1; }
	fail_over || return 1
	out=$(state restore 2 "$WORK/recs") && [[ $out == "count $N" ]] ||
		{ echo "restore: '$out', expected count $N"; return 1; }
	bound_estab "$B" "$N" || return 1
	steer_b
	cmd "round 2" || return 1
	out=$(state gone 2 "$WORK/recs") && [[ $out == "count 0" ]] ||
		{ echo "gone check in B: '$out', expected count 0"; return 1; }
	out=$(state retire 2 "$WORK/recs" records 0-$((N / 2 - 1))) &&
		[[ $out == "count $((N / 2))" ]] ||
		{ echo "retire in B: '$out', expected count $((N / 2))"; return 1; }
	bound_estab "$B" $((N - N / 2)) || return 1
	out=$(state gone 2 "$WORK/recs") && [[ $out == "count $((N / 2)) rports "* ]] ||
		{ echo "gone check after the retire: '$out', expected count $((N / 2))"; return 1; }
	out=$(state gone 2 "$WORK/recs" records $((N / 2))-$((N - 1))) && [[ $out == "count 0" ]] ||
		{ echo "gone check of the others: '$out', expected count 0"; return 1; }
}

# N connections each send a megabyte and read it back (their congestion
# windows open), say "ready", wait for a line, then each echoes 64 KiB
# more and says "ok".
BULK_CLIENT='
import socket, sys
def echo(c, n):
	data = bytes(range(256)) * (n // 256)
	c.sendall(data)
	got = b""
	while len(got) < n:
		d = c.recv(65536)
		if not d:
			raise SystemExit("closed")
		got += d
	if got != data:
		raise SystemExit("echo differs")
cs = [socket.create_connection((sys.argv[1], int(sys.argv[2]))) for _ in range(int(sys.argv[3]))]
for c in cs:
	echo(c, 1 << 20)
print("ready", flush=True)
sys.stdin.readline()
for c in cs:
	echo(c, 1 << 16)
print("ok", flush=True)'

# tcp_view NS: "rport cwnd ssthresh srtt/rttvar rto" per established
# connection of the service in NS (ssthresh "-": infinite), by port.
tcp_view() {
	ip netns exec "$1" ss -Htin state established "sport = :$PORT" | python3 -c '
import re, sys
lines = sys.stdin.read().split("\n")
conn = None
for l in lines:
	f = l.split()
	if len(f) >= 4 and ":" in f[3] and not l.startswith("\t") and not l.startswith(" "):
		conn = f[3].rsplit(":", 1)[1]
		continue
	if conn and "cwnd:" in l:
		g = lambda k: (re.search(r"\b" + k + r":(\S+)", l) or [None, "-"])[1]
		print(conn, g("cwnd"), g("ssthresh"), g("rtt"), g("rto"))
		conn = None' | sort -n
}

# cong: the RTT estimate and the congestion window, which no repair
# option sets, go with the session: B's restored connections have A's
# cwnd, ssthresh, srtt and rttvar, and an RTO from that RTT (not the
# 1 s of a connection without a sample); then they go on.
cong() {
	local line out a b
	setup || return 1
	ip netns exec "$A" python3 -c "$ECHO_SERVER" $SVC $PORT & PIDS+=($!)
	ip netns exec "$B" python3 -c "$ECHO_SERVER" $SVC $PORT & PIDS+=($!)
	wait_listen "$A" $PORT && wait_listen "$B" $PORT || { echo "no service"; return 1; }
	coproc BC { exec ip netns exec "$C" python3 -c "$BULK_CLIENT" $SVC $PORT 4 2>&1; }
	PIDS+=("$BC_PID")
	read -r -t 120 line <&"${BC[0]}" && [[ $line == ready ]] || { echo "client: $line"; return 1; }
	a=$(tcp_view "$A")
	[[ $(wc -l <<<"$a") == 4 ]] || { echo "A: '$a'"; return 1; }
	# A connection that moved a megabyte has a window past the initial 10.
	awk '$2 > 10 { n++ } END { exit !n }' <<<"$a" || { echo "A's windows did not open: $a"; return 1; }
	out=$(state dump 1 $PORT proto tcp out "$WORK/recs") && [[ $out == "records 4 "* ]] ||
		{ echo "dump: '$out'"; return 1; }
	fail_over || return 1
	out=$(state restore 2 "$WORK/recs") && [[ $out == "count 4" ]] ||
		{ echo "restore: '$out'"; return 1; }
	b=$(tcp_view "$B")
	[[ $a == "$b" ]] || { printf 'A (port cwnd ssthresh rtt rto):\n%s\nB:\n%s\n' "$a" "$b"; return 1; }
	awk '$5 >= 1000 { n++ } END { exit n }' <<<"$b" || { echo "B's RTO is the initial one: $b"; return 1; }
	steer_b
	echo go >&"${BC[1]}"
	read -r -t 120 line <&"${BC[0]}" && [[ $line == ok ]] || { echo "client after the failover: $line"; return 1; }
}

ckpt_during() {
	local many=200 i out line
	kv_in_a $many 1 || return 1
	echo "run 6000 every 200" >&"${CL[1]}"
	for ((i = 1; i <= 12; i++)); do
		out=$(blobs_of $PORT) && [[ $out == "records $many blobs $many" ]] ||
			{ echo "snapshot $i: '$out', expected $many records with their state"; return 1; }
	done
	read -r -t 120 line <&"${CL[0]}" && [[ $line == "ok run"* ]] || { echo "client: $line"; return 1; }
	client_quit
}

ktap_begin 11
ktap_check "bad records, missing listener and namespaces are refused and leave nothing" bad_records
cleanup; trap - EXIT
ktap_check "snapshots during connection churn; closing sockets are not captured" churn
cleanup; trap - EXIT
ktap_check "a connection in its handshake (TCP_DEFER_ACCEPT) is counted, not captured; established, captured" \
	handshakes
cleanup; trap - EXIT
ktap_check "two libftvm services in a VM: a complete snapshot of one keeps the other's application state" \
	two_services
cleanup; trap - EXIT
ktap_check "closed sessions are forgotten by the next complete TCP snapshot of their port, not by an incremental one" \
	forgotten
cleanup; trap - EXIT
ktap_check "checkpoints during complete snapshots keep their state" ckpt_during
cleanup; trap - EXIT
ktap_check "retired sessions end and are forgotten at once, state and all; the others keep theirs; only they are gone" \
	retired
cleanup; trap - EXIT
ktap_check "a socket that sent without moving its byte streams (keepalive) is captured again" sent
cleanup; trap - EXIT
ktap_check "a gone check names only the connections with nothing left: not one in its handshake, established, in time-wait or close-wait" \
	gone
cleanup; trap - EXIT
ktap_check "a service bound to its VM's device: its sessions found, restored bound to B's device, going on, retired, gone" \
	devbound
cleanup; trap - EXIT
ktap_check "the RTT estimate and congestion window go with the session: restored with the original's, the connection goes on" \
	cong
ktap_end
