#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# "make demo": the main job on one screen.  A host with three VMs (each a
# network namespace behind a veth), ftd steering client sessions to them
# with ftvm_steer (XDP), clients holding live sessions; one VM is killed,
# its sessions carry on on their backups, and new backups appear.
#
#   ftvm-demo-cli          ftvm-demo-host (ftd)                  ftvm-demo-vmN
#   +-------------+      +-------------------------------+      +---------------+
#   | 198.18.0.1  |=veth=| hc [XDP ftvm_steer]           |      | 198.18.N.1    |
#   | N clients   |      | hvN [tc ftvm_fence]           |=veth=| service on    |
#   +-------------+      +-------------------------------+      | 198.19.0.10:7 |
#                                                               +---------------+
#
# Runs on the host kernel.  Where ftvm.ko is not loaded ftd says that
# state replication is off: the sessions of this demo's service (UDP,
# one answer per request) carry on because their backups need no state;
# a TCP service's state travels with ftvm.ko (Documentation/).

set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
source "$TOP/selftests/lib/wait.sh"
FTCTL=$TOP/user/ftctl/ftctl
FTD=$TOP/user/ftd/ftd
SESSGEN=$TOP/selftests/bpf/sessgen
P=ftvm-demo-$$
HOST=$P-host CLI=$P-cli
VIP=198.19.0.10 PORT=7
SESSIONS=${FTVM_DEMO_SESSIONS:-200}
TMP=$(mktemp -d /tmp/ftvm-demo.XXXXXX)
PIN=/sys/fs/bpf/ftvm-demo-$$
export FTD_SOCKET=$TMP/ftd.sock
pids=()

# nsenter keeps this mount namespace, so ftd sees the bpffs pins.
H() { nsenter --net=/run/netns/"$HOST" "$@"; }
C() { ip netns exec "$CLI" "$@"; }
V() { local n=$1; shift; ip netns exec "$P-vm$n" "$@"; }
F() { H "$FTCTL" "$@"; }

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

cleanup() {
	local pid ns
	[[ -n ${COPROC_PID:-} ]] && kill "$COPROC_PID" 2>/dev/null
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
	# Whatever still runs in the demo's namespaces (ftd, the services).
	for ns in "$HOST" "$CLI" "$P"-vm{1..3}; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
	done
	wait 2>/dev/null
	for ns in "$HOST" "$CLI" "$P"-vm{1..3}; do ip netns del "$ns" 2>/dev/null; done
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT

((EUID == 0)) || die "run as root (it builds namespaces and loads XDP)"
for f in "$FTCTL" "$FTD" "$SESSGEN"; do
	[[ -x $f ]] || die "$f is not built: run make"
done

say "1. A host, a client network and three VMs"
ip netns add "$HOST"; ip netns add "$CLI"
H sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
H ip link set lo up
H ip link add name hc address 02:00:00:00:00:fe type veth peer name c0 netns "$CLI" address 02:00:00:00:00:c1
H ip addr add 198.18.0.254/24 dev hc; H ip link set hc up
C ip link set lo up; C ip addr add 198.18.0.1/24 dev c0; C ip link set c0 up
C ip route add 198.19.0.0/16 via 198.18.0.254
# Frames that XDP redirects must carry finished checksums.
C ethtool -K c0 tx off >/dev/null
for n in 1 2 3; do
	ip netns add "$P-vm$n"
	V $n ip link set lo up
	V $n ip addr add $VIP/32 dev lo
	H ip link add name hv$n type veth peer name v$n netns "$P-vm$n" address 02:00:00:00:0$n:01
	H ip addr add 198.18.$n.254/24 dev hv$n; H ip link set hv$n up
	V $n ip addr add 198.18.$n.1/24 dev v$n; V $n ip link set v$n up
	V $n ip route add default via 198.18.$n.254
	V $n ethtool -K v$n gro on >/dev/null
	ip netns exec "$P-vm$n" "$SESSGEN" serve vm$n $PORT $VIP >"$TMP/serve$n" &
	pids+=($!)
	disown $!	# its death at step 4 is the point, not news
	echo "   vm$n: namespace $P-vm$n, host device hv$n, serving $VIP:$PORT/udp"
done
for n in 1 2 3; do wait_for 5 grep -q ready "$TMP/serve$n" || die "vm$n's service did not start"; done

say "2. ftd takes charge: placements, XDP steering, fencing, probes"
{
	echo "control $FTD_SOCKET"
	echo "pin-dir $PIN"
	echo "attach hc"
	echo "criterion hash"
	for n in 1 2 3; do
		echo "vm vm$n id $n dev hv$n mac 02:00:00:00:0$n:01 capacity 100 domain d$n probe icmp 198.18.$n.1 interval 100 misses 3"
	done
	echo "service echo $VIP:$PORT/udp anti-affinity on"
} >"$TMP/ftd.conf"
sed 's/^/   ftd.conf: /' "$TMP/ftd.conf"
H "$FTD" -f "$TMP/ftd.conf" 2>"$TMP/ftd.log" &
pids+=($!)
wait_for 10 F status || { cat "$TMP/ftd.log"; die "ftd did not start"; }
F vm list | sed 's/^/   /'

say "3. $SESSIONS clients open sessions and talk"
coproc C "$SESSGEN" client $VIP $PORT udp "$SESSIONS"
read -r -t 10 ready <&"${COPROC[0]}" || die "the clients did not start"
echo "   clients: $ready"
round() {
	local tag=$1 line
	echo "round $tag" >&"${COPROC[1]}"
	: >"$TMP/$tag"
	while IFS= read -r -t 30 line <&"${COPROC[0]}"; do
		[[ $line == end ]] && break
		echo "$line" >>"$TMP/$tag"
	done
}
round before
tally() { awk '{ n[$2]++ } END { for (k in n) printf "   %-6s answered %d sessions\n", k, n[k] }' "$1" | sort; }
tally "$TMP/before"
wait_for 10 bash -c "nsenter --net=/run/netns/$HOST $FTCTL -j status | grep -q '\"sessions\":$SESSIONS,'" || true
wait_for 10 bash -c "nsenter --net=/run/netns/$HOST $FTCTL -j status | grep -q '\"unprotected\":0'" || true
F status | sed 's/^/   /'

say "4. vm2 dies: its processes are killed, its namespace and device go with them"
on_vm2=$(awk '$2 == "vm2"' "$TMP/before" | wc -l)
echo "   vm2 was the primary of $on_vm2 sessions"
t0=$(date +%s%N)
ip netns pids "$P-vm2" | xargs -r kill -KILL
ip netns del "$P-vm2"
wait_for 10 bash -c "nsenter --net=/run/netns/$HOST $FTCTL -j vm show vm2 | grep -q '\"state\":\"failed\"'" ||
	{ F vm list; H ip -br link; tail -20 "$TMP/ftd.log"; die "ftd did not see vm2 fail"; }
t1=$(date +%s%N)
echo "   ftd saw it $(( (t1 - t0) / 1000000 )) ms after the kill (device event)"

say "5. The same clients talk again, on the same sessions"
round after
tally "$TMP/after"
lost=$(awk '$2 == "-" || $2 == "reset"' "$TMP/after" | wc -l)
moved=$(join <(sort "$TMP/before") <(sort "$TMP/after") | awk '$2 == "vm2" && $3 != "-" && $3 != "vm2"' | wc -l)
stay=$(join <(sort "$TMP/before") <(sort "$TMP/after") | awk '$2 != "vm2" && $2 == $3' | wc -l)
echo "   $moved of vm2's $on_vm2 sessions answered by their backups"
echo "   $stay of the other $((SESSIONS - on_vm2)) sessions still on their VM"

say "6. Every session gets a new backup"
wait_for 20 bash -c "nsenter --net=/run/netns/$HOST $FTCTL -j status | grep -q '\"unprotected\":0'" || true
F status | sed 's/^/   /'

say "Summary"
echo "   sessions: $SESSIONS, survived: $((SESSIONS - lost)), lost: $lost"
F -j status >"$TMP/status.json" 2>/dev/null
python3 - "$TMP/status.json" <<'EOF' 2>/dev/null || true
import json, sys
s = json.load(open(sys.argv[1]))
s = s[0] if isinstance(s, list) else s
lf = s.get("last_failover") or {}
if lf:
    print(f"   failover of {lf['vm']}: data path switched in {lf['switch_us']} us "
          f"({lf['placements']} placement updates, whatever the number of sessions); "
          f"{lf['reprotected']} sessions given new backups in {lf['reprotect_ms']} ms")
EOF
echo "   (state replication needs ftvm.ko; this host kernel runs without it)"
[[ $lost == 0 ]]
