# SPDX-License-Identifier: GPL-2.0
#
# Topology and helpers shared by the session-state tests.
#
#   client C                host H (router, VM registry)             VM A / VM B
#  198.18.0.2/24 -- cveth -- hC 198.18.0.1/24
#                            hA 198.18.2.1/30 ----- eth0 198.18.2.2/30  (A)
#                            hB 198.18.3.1/30 ----- eth0 198.18.3.2/30  (B)
#                            198.18.1.1 via A, then via B      lo 198.18.1.1/32 (A and B)
#
# The service address 198.18.1.1 lives in both VMs; H routes it to A,
# and after A's device is deleted, to B.

TOP=${FTVM_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=../lib/ktap.sh
source "$TOP/selftests/lib/ktap.sh"
EX=$TOP/user/examples
FTCTL=$TOP/user/ftctl/ftctl
SVC=198.18.1.1
PORT=7000

P=ftvm-$$
C=$P-c H=$P-h A=$P-a B=$P-b
nC() { ip netns exec "$C" "$@"; }
nH() { ip netns exec "$H" "$@"; }
nA() { ip netns exec "$A" "$@"; }
nB() { ip netns exec "$B" "$@"; }
state() { nH "$EX/ftvm-state" "$@"; }

PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	for n in "$C" "$H" "$A" "$B"; do ip netns del "$n" 2>/dev/null; done
	rm -rf "$WORK"
}

setup() {
	WORK=$(mktemp -d /tmp/ftvm-state.XXXXXX)
	trap cleanup EXIT
	for n in "$C" "$H" "$A" "$B"; do
		ip netns add "$n" || return 1
		ip -n "$n" link set lo up
	done
	ip link add hC netns "$H" type veth peer cveth netns "$C"
	ip link add hA netns "$H" type veth peer eth0 netns "$A"
	ip link add hB netns "$H" type veth peer eth0 netns "$B"
	ip -n "$C" addr add 198.18.0.2/24 dev cveth
	ip -n "$H" addr add 198.18.0.1/24 dev hC
	ip -n "$H" addr add 198.18.2.1/30 dev hA
	ip -n "$H" addr add 198.18.3.1/30 dev hB
	ip -n "$A" addr add 198.18.2.2/30 dev eth0
	ip -n "$B" addr add 198.18.3.2/30 dev eth0
	for n in "$A" "$B"; do ip -n "$n" addr add $SVC/32 dev lo; done
	for d in "$C cveth" "$H hC" "$H hA" "$H hB" "$A eth0" "$B eth0"; do
		set -- $d
		ip -n "$1" link set "$2" up
	done
	ip -n "$C" route add default via 198.18.0.1
	ip -n "$A" route add default via 198.18.2.1 src $SVC
	ip -n "$B" route add default via 198.18.3.1 src $SVC
	ip -n "$H" route add $SVC/32 via 198.18.2.2
	nH sysctl -qw net.ipv4.ip_forward=1
	nH "$FTCTL" vm add a id 1 dev hA >/dev/null &&
	nH "$FTCTL" vm add b id 2 dev hB >/dev/null &&
	nH "$FTCTL" vm set a netns "$A" && nH "$FTCTL" vm set b netns "$B"
}

# wait_listen NS PORT [tcp|udp]: poll until something listens.
wait_listen() {
	local i opt=-tln
	[[ ${3:-tcp} == udp ]] && opt=-uln
	for ((i = 0; i < 200; i++)); do
		ip netns exec "$1" ss -H $opt "sport = :$2" | grep -q . && return 0
		sleep 0.05
	done
	return 1
}

# count_estab NS PORT: established connections of the service.
count_estab() {
	ip netns exec "$1" ss -Htn state established "sport = :$2" | wc -l
}

# estab_is NS N: the service has exactly N established connections in NS.
estab_is() { (($(count_estab "$1" $PORT) == $2)); }

# paws_rejected NS: segments NS's TCP dropped because their timestamps
# went backwards (RFC 7323 PAWS): what a restored connection whose clock
# fell behind the one the peer saw would cost the peer.
paws_rejected() {
	ip netns exec "$1" awk '/^TcpExt:/ { if (!n) { for (i = 1; i <= NF; i++) k[i] = $i; n = 1 }
		else for (i = 1; i <= NF; i++) if (k[i] == "PAWSEstab") print $i }' /proc/net/netstat
}

# wait_queues NS RECVQ SENDQ: poll until the service's connections in NS
# hold these many bytes in all (receive, send queue).
wait_queues() {
	local i q
	for ((i = 0; i < 300; i++)); do
		q=$(ip netns exec "$1" ss -Htn state established "sport = :$PORT" |
		    awk '{ r += $1; s += $2 } END { print r + 0, s + 0 }')
		[[ $q == "$2 $3" ]] && return 0
		sleep 0.1
	done
	echo "queues in $1: $q, expected $2 $3"
	return 1
}

# b_clean: nothing of the service in B but its listener (or nothing).
b_clean() {
	local n
	n=$(nB ss -Htan "sport = :$PORT" | grep -vc LISTEN)
	((n == 0)) || { echo "B holds $n sockets of the service:"; nB ss -tan; return 1; }
}

# queue_both APID N: the echo server APID in A and its N client
# sessions (an echo client) left with data in both queues, 1000 bytes
# each unread (receive queue) and 3000 each echoed but unacknowledged,
# the echoes lost on the way (send queue); the server is left stopped.
queue_both() {
	local apid=$1 n=$2
	# 3000 bytes each, unread: in A's receive queue.
	kill -STOP "$apid"
	cmd "send 3000" && wait_queues "$A" $((n * 3000)) 0 || return 1
	# Echoed, but the echoes are lost on the way: unacknowledged in
	# A's send queue.
	ip -n "$H" route add blackhole 198.18.0.2/32 table 100
	ip -n "$H" rule add iif hA lookup 100
	kill -CONT "$apid"
	wait_queues "$A" 0 $((n * 3000)) || return 1
	# And 1000 more each, unread.
	kill -STOP "$apid"
	cmd "send 1000" && wait_queues "$A" $((n * 1000)) $((n * 3000))
}

# Start a client coprocess: client MODE N; talk with cmd.
client() {
	coproc CL { exec ip netns exec "$C" "$EX/sessclient" "$1" $SVC $PORT "$2" 2>&1; }
	PIDS+=("$CL_PID")
	read -r -t 120 line <&"${CL[0]}" && [[ $line == ok* ]] || { echo "client: $line"; return 1; }
}

# cmd LINE: send a command to the client, wait for its answer.
cmd() {
	local line
	echo "$1" >&"${CL[1]}"
	read -r -t 300 line <&"${CL[0]}" || { echo "client: no answer to $1"; return 1; }
	[[ $line == ok* ]] || { echo "client: $line"; return 1; }
}

# client_quit: end the client; it must exit cleanly.
client_quit() {
	local pid=$CL_PID
	echo quit >&"${CL[1]}"
	wait "$pid"
}

# fail_over: A's device goes.  steer_b: H routes the service to B; only
# once the sessions are restored there, or B's listener would answer the
# clients' retransmissions with resets.
fail_over() {
	ip -n "$H" link del hA
}

steer_b() {
	ip -n "$H" route replace $SVC/32 via 198.18.3.2
}

# udp_failover SETUP STEER: a UDP echo service in A and B, N client
# sockets; the binding is snapshotted in A, restored in B after A's
# device goes, and every client socket goes on.  SETUP builds the
# topology, STEER routes the service to B.
udp_failover() {
	local out
	"$1" || return 1
	ip netns exec "$A" "$EX/echo" udp $PORT >/dev/null 2>&1 & PIDS+=($!)
	ip netns exec "$B" "$EX/echo" udp $PORT >/dev/null 2>&1 & PIDS+=($!)
	wait_listen "$A" $PORT udp && wait_listen "$B" $PORT udp || return 1
	client udp "$N" && cmd "round 2" || return 1
	out=$(state dump 1 $PORT proto udp out "$WORK/recs") && [[ $out == "records 1 "* ]] ||
		{ echo "snapshot: $out"; return 1; }
	fail_over || return 1
	out=$(state restore 2 "$WORK/recs") && [[ $out == "count 1" ]] || { echo "restore: $out"; return 1; }
	"$2"
	cmd "round 2" && client_quit
}
