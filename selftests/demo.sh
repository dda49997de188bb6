#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# "make demo": the main job on one screen.  A host with three VMs (each a
# network namespace behind a veth, running the example key-value service
# kvstore with libftvm, and a UDP echo); ftd steers client sessions to
# them with ftvm_steer (XDP) and replicates every TCP session's state
# (ftvm.ko) to its backup VM.  Clients talk; one VM is killed (its
# device deleted mid-conversation, then its processes SIGKILLed and its
# namespace removed); every client's connection carries on on its
# backup with its state, new backups appear, and the demo says how long
# the clients stalled.  Then vm3 is drained on purpose, as for
# maintenance: its sessions move, live and with their state, to their
# backups.  (The VMs run with "silent-exit on": had vm2's
# processes died before its link, ftvm.ko would have ended their
# connections without a packet and failed vm2 the same way;
# Documentation/replication.rst says what relaxed replication keeps.)
#
#   ftvm-demo-cli          ftvm-demo-host (ftd)                  ftvm-demo-vmN
#   +-------------+      +-------------------------------+      +------------------+
#   | 198.18.0.1  |=veth=| hc [XDP ftvm_steer]           |      | 198.18.N.1       |
#   | TCP clients |      | hvN [tc ftvm_fence]           |=veth=| kvstore :7000/tcp|
#   | UDP clients |      | ftvm.ko: capture, stage       |      | sessgen :7/udp   |
#   +-------------+      +-------------------------------+      +------------------+
#
# ftvm.ko must be loaded.  Where this kernel cannot load modules (as on
# the development machines) the demo runs itself inside a qemu guest
# booting Debian's kernel (selftests/vm-run.sh), on the same tree.

set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
source "$TOP/selftests/lib/wait.sh"
FTCTL=$TOP/user/ftctl/ftctl
FTD=$TOP/user/ftd/ftd
SESSGEN=$TOP/selftests/bpf/sessgen
EX=$TOP/user/examples
P=ftvm-demo-$$
HOST=$P-host CLI=$P-cli
VIP=198.19.0.10 KVPORT=7000 UPORT=7
NTCP=${FTVM_DEMO_SESSIONS:-150}
NUDP=${FTVM_DEMO_UDP:-100}
IVL=${FTVM_DEMO_INTERVAL:-20}
PIN=/sys/fs/bpf/ftvm-demo-$$

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

((EUID == 0)) || die "run as root (it builds namespaces and loads XDP)"
for f in "$FTCTL" "$FTD" "$SESSGEN" "$EX/kvstore" "$EX/sessclient" "$TOP/ftvm.ko"; do
	[[ -e $f ]] || die "$f is not built: run make"
done
if [[ ! -d /sys/module/ftvm ]] && ! insmod "$TOP/ftvm.ko" 2>/dev/null; then
	[[ -z ${FTVM_IN_GUEST:-} ]] || die "cannot load ftvm.ko in the guest"
	echo "This kernel cannot load ftvm.ko: the demo runs in a qemu guest booting"
	echo "Debian's kernel, on this same tree (selftests/vm-run.sh)."
	FTVM_VM_QUIET=1 exec "$TOP/selftests/vm-run.sh" --cmd "bash $TOP/selftests/demo.sh"
fi

TMP=$(mktemp -d /tmp/ftvm-demo.XXXXXX)
export FTD_SOCKET=$TMP/ftd.sock
pids=()

# nsenter keeps this mount namespace, so ftd sees the bpffs pins.
H() { nsenter --net=/run/netns/"$HOST" "$@"; }
C() { ip netns exec "$CLI" "$@"; }
V() { local n=$1; shift; ip netns exec "$P-vm$n" "$@"; }
F() { H "$FTCTL" "$@"; }

cleanup() {
	local pid ns
	exec 5>&- 6<&-
	[[ -n ${COPROC_PID:-} ]] && kill "$COPROC_PID" 2>/dev/null
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
	# Whatever still runs in the demo's namespaces (ftd, the services).
	for ns in "$HOST" "$CLI" "$P"-vm{1..3}; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
	done
	wait 2>/dev/null
	for ns in "$HOST" "$CLI" "$P"-vm{1..3}; do ip netns del "$ns" 2>/dev/null; done
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT

ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

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
	V $n ip route add default via 198.18.$n.254 src $VIP
	V $n ethtool -K v$n gro on >/dev/null
	# Their deaths at step 4 are the point, not news.
	ip netns exec "$P-vm$n" "$EX/kvstore" $KVPORT >/dev/null 2>"$TMP/kv$n.log" &
	disown $!
	ip netns exec "$P-vm$n" "$SESSGEN" serve vm$n $UPORT $VIP >"$TMP/serve$n" &
	disown $!
	echo "   vm$n: namespace $P-vm$n, host device hv$n;" \
		"kvstore on $VIP:$KVPORT/tcp, echo on :$UPORT/udp"
done
for n in 1 2 3; do
	wait_for 10 grep -q ready "$TMP/serve$n" &&
		wait_for 10 sh -c "ip netns exec $P-vm$n ss -Htln 'sport = :$KVPORT' | grep -q ." ||
		die "vm$n's services did not start"
done

say "2. ftd takes charge: placements, XDP steering, fencing, state replication"
{
	echo "control $FTD_SOCKET"
	echo "pin-dir $PIN"
	echo "attach hc"
	for n in 1 2 3; do
		echo "vm vm$n id $n dev hv$n mac 02:00:00:00:0$n:01 domain d$n netns $P-vm$n silent-exit on probe icmp 198.18.$n.1 interval 100 misses 3"
	done
	echo "service kv $VIP:$KVPORT/tcp replication-interval $IVL"
	echo "service echo $VIP:$UPORT/udp"
} >"$TMP/ftd.conf"
sed 's/^/   ftd.conf: /' "$TMP/ftd.conf"
H "$FTD" -f "$TMP/ftd.conf" 2>"$TMP/ftd.log" &
pids+=($!)
wait_for 20 F status >/dev/null || { cat "$TMP/ftd.log"; die "ftd did not start"; }
F vm list | sed 's/^/   /'

say "3. Clients open $NTCP TCP sessions to kvstore and $NUDP UDP sessions, and talk"
mkfifo "$TMP/kv.in" "$TMP/kv.out"
C "$EX/sessclient" kv $VIP $KVPORT "$NTCP" <"$TMP/kv.in" >"$TMP/kv.out" 2>&1 &
pids+=($!)
exec 5>"$TMP/kv.in" 6<"$TMP/kv.out"
# kv CMD: one command to the TCP clients; they check every reply.
kv() {
	local line
	echo "$1" >&5
	read -r -t 300 line <&6 || { echo "   the TCP clients did not answer"; return 1; }
	[[ $line == ok* ]] || { echo "   TCP clients: $line"; return 1; }
}
read -r -t 120 line <&6 && [[ $line == ok* ]] || die "the TCP clients did not connect: ${line:-}"
coproc C "$SESSGEN" client $VIP $UPORT udp "$NUDP"
read -r -t 10 ready <&"${COPROC[0]}" || die "the UDP clients did not start"
# udp_round TAG: one datagram on every UDP session; "port vmN" lines.
udp_round() {
	local line
	echo "round $1" >&"${COPROC[1]}"
	: >"$TMP/$1"
	while IFS= read -r -t 30 line <&"${COPROC[0]}"; do
		[[ $line == end ]] && break
		echo "$line" >>"$TMP/$1"
	done
}
kv "round 5" || die "the TCP sessions failed before anything happened"
udp_round before
echo "   every TCP client added numbers 5 times; each reply carried kvstore's"
echo "   running count and sum for its connection and checksums of every byte"
echo "   each way, all checked by the client"
t=$(date +%s%N)
kv "round 3" || die "the TCP sessions failed before anything happened"
normal=$(ms_since "$t")
echo "   three requests on every TCP session take ${normal} ms in all"
all_protected() {
	F -j session show | python3 -c '
import json, sys
s = json.load(sys.stdin); n = int(sys.argv[1])
tcp = [x for x in s if x["proto"] == "tcp"]
sys.exit(0 if len(tcp) >= n and all(x["protected"] for x in s) else 1)' "$NTCP" 2>/dev/null
}
wait_for 60 all_protected || die "not every session got a backup"
echo "   every session has a backup VM; each TCP session's state is staged there:"
F session show | grep tcp | head -3 | sed 's/^/     /'
echo "     ..."
F status | sed 's/^/   /'

say "4. While the clients talk, vm2 dies: its device goes, then its processes and namespace"
# on_vm VM: sessions whose primary is VM, as ftd has them.
on_vm() {
	F -j session show | python3 -c '
import json, sys
print(sum(1 for x in json.load(sys.stdin) if x["primary"] == sys.argv[1]))' "$1"
}
on=$(on_vm vm2)
echo "   vm2 is the primary of $on sessions"
t=$(date +%s%N)
echo "round 3" >&5		# three more requests on every TCP session
sleep 0.1
H ip link del hv2
wait_for 10 bash -c "nsenter --net=/run/netns/$HOST $FTCTL -j vm show vm2 | grep -q '\"state\":\"failed\"'" ||
	{ F vm list; tail -20 "$TMP/ftd.log"; die "ftd did not see vm2 fail"; }
ip netns pids "$P-vm2" | xargs -r kill -KILL
ip netns del "$P-vm2"
tcp_ok=1
read -r -t 300 line <&6 && [[ $line == ok* ]] || { tcp_ok=0; echo "   TCP clients: ${line:-no answer}"; }
during=$(ms_since "$t")
F vm show vm2 | sed 's/^/   /'
echo "   (ftd took vm2's sessions' last state from its namespace when the device"
echo "   went, and made it live on their backups before steering them there)"

say "5. The same clients go on talking, on the same connections"
((tcp_ok)) && { kv "round 4" || tcp_ok=0; }
udp_round after
resumed=$(cat "$TMP"/kv*.log 2>/dev/null | grep -c resumed)
udp_lost=$(awk '$2 == "-"' "$TMP/after" | wc -l)
udp_moved=$(join <(sort "$TMP/before") <(sort "$TMP/after") |
	awk '$2 == "vm2" && $3 != "-" && $3 != "vm2"' | wc -l)
if ((tcp_ok)); then
	echo "   all $NTCP TCP connections carried on: no reset, every count, sum and"
	echo "   checksum right; $resumed of them, vm2's, now live on their former backups"
else
	echo "   the TCP sessions FAILED (above)"
fi
echo "   $udp_moved UDP sessions of vm2 answered by their backups; $udp_lost unanswered"
echo "   the three requests during which vm2 died took ${during} ms in all (normally ${normal} ms)"

say "6. Every session gets a new backup, with its state staged"
if wait_for 60 all_protected; then echo "   done"; else echo "   not every session is protected yet"; fi
F status | sed 's/^/   /'

say "7. vm3 is drained on purpose (maintenance): its sessions move, live, to their backups"
on=$(on_vm vm3)
echo "   vm3 is the primary of $on sessions"
before=$(cat "$TMP"/kv*.log 2>/dev/null | grep -c resumed)
udp_round predrain
t=$(date +%s%N)
echo "round 3" >&5		# three more requests on every TCP session
sleep 0.1
F vm drain vm3 || die "ftctl vm drain failed"
read -r -t 300 line <&6 && [[ $line == ok* ]] || { tcp_ok=0; echo "   TCP clients: ${line:-no answer}"; }
drain_ms=$(ms_since "$t")
moved_off() { [[ $(on_vm vm3) == 0 ]]; }
# A datagram that reached vm3 just before the switch is answered there
# and the answer fenced (UDP has no state to move, nor resends): the UDP
# round waits for the switch.
wait_for 10 moved_off
left=$(on_vm vm3)
udp_round drained
handed=$(($(cat "$TMP"/kv*.log 2>/dev/null | grep -c resumed) - before))
udp_drain_lost=$(awk '$2 == "-"' "$TMP/drained" | wc -l)
if ((udp_drain_lost)); then
	echo "   unanswered UDP sessions (client port, VM before the drain):"
	join <(sort "$TMP/predrain") <(awk '$2 == "-"' "$TMP/drained" | sort) | head -8 | sed 's/^/     /'
	H env FTVM_PIN_DIR="$PIN" "$FTCTL" stats | sed 's/^/     /'
fi
grep -E "handoff|handed over" "$TMP/ftd.log" | sed 's/^<[0-9]>ftd: [a-z]*: /   ftd: /' | tail -6
if ((tcp_ok)); then
	echo "   every TCP connection carried on; $handed of them, vm3's, now live on their"
	echo "   backups from their state; $left sessions left on vm3"
else
	echo "   the TCP sessions FAILED (above)"
fi
echo "   $udp_drain_lost UDP sessions unanswered; the three requests during the drain took ${drain_ms} ms"
F vm set vm3 state up && echo "   vm3 is back up: a target for new sessions and backups again (nothing moves back)"

say "Summary"
udp_lost=$((udp_lost + udp_drain_lost))
lost=$((udp_lost + (tcp_ok ? 0 : NTCP)))
echo "   sessions: $((NTCP + NUDP)) ($NTCP TCP with state, $NUDP UDP);" \
	"survived: $((NTCP + NUDP - lost)), lost: $lost"
echo "   the clients stalled about $((during > normal ? during - normal : 0)) ms in all (the"
echo "   slowest session's wait, under TCG when in the guest: bench/ measures it per session)"
echo "   vm3 drained: $handed sessions handed over live, $left left on it"
F -j status >"$TMP/status.json" 2>/dev/null
python3 - "$TMP/status.json" <<'PY' 2>/dev/null || true
import json, sys
s = json.load(open(sys.argv[1]))
s = s[0] if isinstance(s, list) else s
lf = s.get("last_failover") or {}
if lf:
    print(f"   failover of {lf['vm']}: data path switched in {lf['switch_us']} us "
          f"({lf['placements']} placement updates, whatever the number of sessions); "
          f"{lf['reprotected']} sessions given new backups in {lf['reprotect_ms']} ms")
PY
((lost == 0 && left == 0))
