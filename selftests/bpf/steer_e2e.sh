#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# ftvm_steer and ftvm_fence end to end on this host's kernel: hundreds of
# real TCP and UDP sessions, over IPv4 and IPv6, to a service address
# land on the VMs their placements name, stay there (also across a
# reload by iproute2 over the pinned maps), follow a failover, and a
# fenced VM's replies never reach the client.  A VM's device that
# refuses redirected frames shows in its redirect_err counter, which
# stays 0 otherwise.
#
#  ftvm-$$-cli          ftvm-$$-host                         ftvm-$$-vmN, N=1..3
# +--------------+    +----------------------------------+    +-------------------+
# | c0           |    | hc  198.18.0.254 2001:db8::fe    |    |                   |
# | 198.18.0.1   |=veth=| [XDP ftvm_steer]               |    |                   |
# | 2001:db8::1  |    |                                  |    | vN 198.18.N.1     |
# | sessgen      |    | hvN 198.18.N.254 2001:db8:N::fe  |=veth=| 2001:db8:N::1   |
# | clients      |    |     [tc ftvm_fence]              |    | lo 198.19.0.10    |
# +--------------+    | ft$$tap  [tc ftvm_fence]         |    |    2001:db8:ff::10|
#                     |   read by tap_reader (VM 4)      |    | sessgen serve x2  |
#                     +----------------------------------+    +-------------------+
#
# Service 198.19.0.10:7/udp over placements 1..4, 198.19.0.10:7/tcp and
# [2001:db8:ff::10]:7/{udp,tcp} over 1..3; placement N has primary VM N
# (backup N % 3 + 1), placement 4 is the tap.  Maps are pinned where
# iproute2 pins them; the test skips if a data plane already uses that
# directory.

set -u
cd "$(dirname "$0")" || exit 1
. ../lib/ktap.sh

TOP=$(cd ../.. && pwd)
FTCTL=$TOP/user/ftctl/ftctl
SESSGEN=$PWD/sessgen
TAPREADER=$PWD/tap_reader
PIN=/sys/fs/bpf/tc/globals
VIP=198.19.0.10
VIP6=2001:db8:ff::10
PORT=7
NUDP=200
NTCP=100
NUDP6=100
NTCP6=50
P=ftvm-$$
HOST=$P-host CLI=$P-cli
TAP=ft$$tap
TMP=$(mktemp -d /tmp/ftvm-e2e.XXXXXX)
pids=()

H() { nsenter --net=/run/netns/$HOST "$@"; }
C() { ip netns exec $CLI "$@"; }
V() { local n=$1; shift; ip netns exec $P-vm$n "$@"; }

cleanup() {
	local pid
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
	wait 2>/dev/null
	for ns in $HOST $CLI $P-vm1 $P-vm2 $P-vm3; do
		ip netns del "$ns" 2>/dev/null
	done
	# Our pins only (the netns, and so the programs, are gone).
	if [[ -n ${pinned:-} ]]; then
		rm -f "$PIN"/ftvm_*
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

((EUID == 0)) || ktap_skip_all "needs root"
for f in "$FTCTL" "$SESSGEN" "$TAPREADER" "$TOP/bpf/ftvm_steer.bpf.o"; do
	[[ -x $f || -f $f ]] || ktap_skip_all "$f not built (make)"
done
if [[ -e $PIN/ftvm_abi ]]; then
	ktap_skip_all "a data plane is pinned in $PIN already"
fi

ktap_begin 21

setup() {
	local n
	ip netns add $HOST && ip netns add $CLI || return 1
	H sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 \
		net.ipv6.conf.all.forwarding=1 || return 1
	H ip link set lo up
	H ip link add name hc address 02:00:00:00:00:fe type veth \
		peer name c0 netns $CLI address 02:00:00:00:00:c1 || return 1
	H ip addr add 198.18.0.254/24 dev hc
	H ip addr add 2001:db8::fe/64 dev hc nodad
	H ip link set hc up
	C ip link set lo up
	C ip addr add 198.18.0.1/24 dev c0
	C ip addr add 2001:db8::1/64 dev c0 nodad
	C ip link set c0 up
	# A veth hands on checksums still to be done (CHECKSUM_PARTIAL);
	# frames XDP redirects must be complete, as from a real NIC.
	C ethtool -K c0 tx off >/dev/null || return 1
	C ip route add 198.19.0.0/16 via 198.18.0.254
	C ip -6 route add 2001:db8:ff::/64 via 2001:db8::fe
	for n in 1 2 3; do
		ip netns add $P-vm$n || return 1
		H ip link add name hv$n type veth peer name v$n netns $P-vm$n \
			address 02:00:00:00:0$n:01 || return 1
		H ip addr add 198.18.$n.254/24 dev hv$n
		H ip addr add 2001:db8:$n::fe/64 dev hv$n nodad
		H ip link set hv$n up
		V $n ip link set lo up
		V $n ip addr add $VIP/32 dev lo
		V $n ip addr add $VIP6/128 dev lo
		V $n ip addr add 198.18.$n.1/24 dev v$n
		V $n ip addr add 2001:db8:$n::1/64 dev v$n nodad
		V $n ip link set v$n up
		V $n ip route add default via 198.18.$n.254
		V $n ip -6 route add default via 2001:db8:$n::fe
		# XDP frames redirected into a veth need its peer's NAPI.
		V $n ethtool -K v$n gro on >/dev/null || return 1
		ip netns exec $P-vm$n "$SESSGEN" serve vm$n $PORT $VIP \
			>"$TMP/serve$n" 2>&1 &
		pids+=($!)
		ip netns exec $P-vm$n "$SESSGEN" serve vm$n $PORT $VIP6 \
			>"$TMP/serve6_$n" 2>&1 &
		pids+=($!)
	done
	nsenter --net=/run/netns/$HOST "$TAPREADER" $TAP >"$TMP/tap" 2>&1 &
	pids+=($!)
	wait_for 5 grep -q ready "$TMP/tap" || return 1
	H ip link set $TAP address 02:00:00:00:04:fe up || return 1
	for n in 1 2 3; do
		wait_for 5 grep -q ready "$TMP/serve$n" || return 1
		wait_for 5 grep -q ready "$TMP/serve6_$n" || return 1
	done
}

if ! setup; then
	ktap_fail "topology"
	ktap_end
fi

# 1. ftctl loads the data plane and pins its maps; then the operators'
# other way, iproute2, reloads the object over those pins.
pinned=1
# An operator's first load, with nothing pinned yet: iproute2 creates and
# pins every shared map (ftvm_steer's devmap is its own, unpinned).
ip_first_load() {
	H ip link set dev hc xdp obj "$TOP/bpf/ftvm_steer.bpf.o" sec xdp ||
		return 1
	[[ -e $PIN/ftvm_abi && -e $PIN/ftvm_sessions4 && ! -e $PIN/ftvm_devmap ]] ||
		{ ktap_diag "pins: $(ls "$PIN" | tr '\n' ' ')"; return 1; }
	# The XDP program alone: redirect errors not counted (yet), until
	# the first target is set.
	H "$FTCTL" stats | grep -q 'redirect errors not counted' &&
		[[ $(H "$FTCTL" -j stats | python3 -c '
import json, sys; print(json.load(sys.stdin)["global"]["redirect_watch"])') == False ]] &&
		[[ ! -e $PIN/ftvm_redirect_err ]] || return 1
	H "$FTCTL" target set 1 dev hv1 mac 02:00:00:00:01:01 &&
		[[ -e $PIN/ftvm_redirect_err && -e $PIN/ftvm_devmap_xmit ]] &&
		! H "$FTCTL" stats | grep -q 'not counted'
}
ktap_check "ip link loads ftvm_steer first: its maps are pinned by name; ftctl finds them, its first target set counts redirect errors" \
	ip_first_load

# pinned_id MAP: the id of a pinned map.
pinned_id() {
	bpftool -j map show pinned "$PIN/$1" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'
}
# xdp_maps DEV: the map ids of the XDP program on DEV.
xdp_maps() {
	local id
	id=$(H ip -j link show "$1" | python3 -c '
import json, sys; print(json.load(sys.stdin)[0]["xdp"]["prog"]["id"])') || return 1
	bpftool -j prog show id "$id" |
		python3 -c 'import json, sys; print(*json.load(sys.stdin)["map_ids"])'
}
# ip_reload: iproute2 replaces ftvm_steer on hc, reusing every pinned map.
ip_reload() {
	local ids m
	H ip -force link set dev hc xdp obj "$TOP/bpf/ftvm_steer.bpf.o" \
		sec xdp || return 1
	ids=" $(xdp_maps hc) "
	for m in ftvm_sessions4 ftvm_sessions6 ftvm_placements ftvm_vms; do
		[[ $ids == *" $(pinned_id $m) "* ]] || {
			ktap_diag "reloaded program does not use the pinned $m"
			return 1
		}
	done
}
ktap_check "ip link reloads ftvm_steer over the pinned maps" ip_reload
# ftctl attach also attaches the redirect-error tracers, links pinned.
ktap_check "ftctl detach, then ftctl attach in native mode (redirect errors counted)" \
	bash -c "H() { nsenter --net=/run/netns/$HOST \"\$@\"; }; \
		H $FTCTL detach hc && ! H ip link show hc | grep -q xdp && \
		rm $PIN/ftvm_redirect_err $PIN/ftvm_devmap_xmit && \
		H $FTCTL attach hc mode native && \
		H ip link show hc | grep -q 'xdp ' && \
		[[ -e $PIN/ftvm_redirect_err && -e $PIN/ftvm_devmap_xmit ]] && \
		H $FTCTL -j stats | grep -q '\"redirect_watch\":true'"

ok=1
for d in hv1 hv2 hv3 $TAP; do
	H "$FTCTL" attach $d fence || ok=0
done
ktap_check "ftctl attach DEV fence on the VM devices" test $ok = 1

# 2. Clear errors.
errs() {
	local out
	out=$(H "$FTCTL" attach nosuchdev 2>&1) && return 1
	grep -q 'Error: device "nosuchdev" does not exist' <<<"$out" || return 1
	out=$(H "$FTCTL" service add 198.18.0.300:80/tcp 2>&1) && return 1
	grep -q 'not an IPv4 address' <<<"$out" || return 1
	out=$(H env FTVM_PIN_DIR=/sys/fs/bpf/ftvm-none-$$ "$FTCTL" -j stats 2>/dev/null) && return 1
	grep -q '"error":.*is not pinned' <<<"$out" || return 1
}
ktap_check "bad device, bad address, missing pins: clear errors" errs

# 3. VMs, placements, services.
configure() {
	local n
	for n in 1 2 3; do
		H "$FTCTL" target set $n dev hv$n mac 02:00:00:00:0$n:01 || return 1
		H "$FTCTL" placement set $n primary $n backup $((n % 3 + 1)) || return 1
	done
	H "$FTCTL" target set 4 dev $TAP mac 02:00:00:00:04:04 || return 1
	H "$FTCTL" placement set 4 primary 4 backup 1 || return 1
	H "$FTCTL" service add $VIP:$PORT/udp placements 1,2,3,4 || return 1
	H "$FTCTL" service add $VIP:$PORT/tcp placements 1,2,3 || return 1
	H "$FTCTL" service add "[$VIP6]:$PORT/udp" placements 1,2,3 || return 1
	H "$FTCTL" service add "[$VIP6]:$PORT/tcp" placements 1,2,3 || return 1
	H "$FTCTL" service list | grep -q "$VIP:$PORT/udp" &&
		H "$FTCTL" service list | grep -qF "[$VIP6]:$PORT/tcp"
}
ktap_check "ftctl target, placement, service configure the data plane" configure

# The client processes: coprocesses that obey "round"/"listen".
coproc UDPC { exec ip netns exec $CLI "$SESSGEN" client $VIP $PORT udp $NUDP 2>/dev/null; }
pids+=($UDPC_PID)
{ coproc TCPC { exec ip netns exec $CLI "$SESSGEN" client $VIP $PORT tcp $NTCP 2>/dev/null; } } 2>/dev/null
pids+=($TCPC_PID)
{ coproc UDP6C { exec ip netns exec $CLI "$SESSGEN" client $VIP6 $PORT udp $NUDP6 2>/dev/null; } } 2>/dev/null
pids+=($UDP6C_PID)
{ coproc TCP6C { exec ip netns exec $CLI "$SESSGEN" client $VIP6 $PORT tcp $NTCP6 2>/dev/null; } } 2>/dev/null
pids+=($TCP6C_PID)
read -r -t 10 l1 <&"${UDPC[0]}"
read -r -t 10 l2 <&"${TCPC[0]}"
read -r -t 10 l3 <&"${UDP6C[0]}"
read -r -t 10 l4 <&"${TCP6C[0]}"
ktap_diag "udp client: ${l1:-nothing}, tcp client: ${l2:-nothing}"
ktap_diag "IPv6 udp client: ${l3:-nothing}, tcp client: ${l4:-nothing}"

# round FD_IN FD_OUT TAG FILE: one round, "port reply" lines into FILE.
round() {
	local line
	echo "round $3" >&"$2"
	: >"$4"
	while read -r -t 10 line <&"$1"; do
		[[ $line == end ]] && return 0
		echo "$line" >>"$4"
	done
	return 1
}

# expected PROTO FILE [VIP]: "port vmN" per session, from ftctl session list.
expected() {
	local svc=$VIP:$PORT/$1
	[[ ${3:-} ]] && svc="[$3]:$PORT/$1"
	H "$FTCTL" -j session list service "$svc" | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    print(s["client"].rsplit(":", 1)[1], "vm%d" % s["primary"])
' | sort -n >"$2"
}

# check_round PROTO GOT EXPECTED: every answer from the expected VM; the
# tap's sessions (vm4) unanswered, but seen on the tap with VM 4's MAC.
check_round() {
	local proto=$1 got=$2 exp=$3 port vm ans bad=0 tap=0 n=0
	declare -A want
	while read -r port vm; do want[$port]=$vm; done <"$exp"
	while read -r port ans; do
		n=$((n + 1))
		vm=${want[$port]:-none}
		if [[ $vm == vm4 ]]; then
			tap=$((tap + 1))
			if [[ $ans != - ]] || ! grep -q "^02:00:00:00:04:04 $proto 198.18.0.1 $port $VIP $PORT\$" "$TMP/tap"; then
				bad=$((bad + 1))
			fi
		elif [[ $ans != "$vm" ]]; then
			bad=$((bad + 1))
			((bad <= 3)) && ktap_diag "$proto session $port: answered by $ans, placed on $vm"
		fi
	done <"$got"
	ktap_diag "$proto: $n sessions, $tap on the tap, $bad wrong"
	((n > 0 && bad == 0))
}

round "${UDPC[0]}" "${UDPC[1]}" r1 "$TMP/udp1"
round "${TCPC[0]}" "${TCPC[1]}" r1 "$TMP/tcp1"
# The tap's frames are read asynchronously: wait until all are there.
expected udp "$TMP/udp.exp"
expected tcp "$TMP/tcp.exp"
ntap=$(grep -c ' vm4$' "$TMP/udp.exp")
wait_for 5 test "$(grep -c "^02:00:00:00:04:04 udp" "$TMP/tap")" -ge "$ntap"
ktap_check "$NUDP udp sessions land on their placements' VMs (tap: read by fd)" \
	check_round udp "$TMP/udp1" "$TMP/udp.exp"
ktap_check "$NTCP tcp sessions land on their placements' VMs" \
	check_round tcp "$TMP/tcp1" "$TMP/tcp.exp"

round "${UDP6C[0]}" "${UDP6C[1]}" r1 "$TMP/udp6_1"
round "${TCP6C[0]}" "${TCP6C[1]}" r1 "$TMP/tcp6_1"
expected udp "$TMP/udp6.exp" $VIP6
expected tcp "$TMP/tcp6.exp" $VIP6
ktap_check "$NUDP6 IPv6 udp sessions land on their placements' VMs" \
	check_round udp "$TMP/udp6_1" "$TMP/udp6.exp"
ktap_check "$NTCP6 IPv6 tcp sessions land on their placements' VMs" \
	check_round tcp "$TMP/tcp6_1" "$TMP/tcp6.exp"

# all_rounds TAG: one round of every client, into $TMP/{udp,tcp,udp6_,tcp6_}TAG.
all_rounds() {
	round "${UDPC[0]}" "${UDPC[1]}" r$1 "$TMP/udp$1"
	round "${TCPC[0]}" "${TCPC[1]}" r$1 "$TMP/tcp$1"
	round "${UDP6C[0]}" "${UDP6C[1]}" r$1 "$TMP/udp6_$1"
	round "${TCP6C[0]}" "${TCP6C[1]}" r$1 "$TMP/tcp6_$1"
}
# same_answers A B: rounds A and B answered alike, session by session.
same_answers() {
	local f
	for f in udp tcp udp6_ tcp6_; do
		cmp -s "$TMP/$f$1" "$TMP/$f$2" || return 1
	done
}
all_rounds 2
ktap_check "second round: every session answered by the same VM" \
	same_answers 1 2

# vm_stat VM KEY: a per-VM counter of ftctl -j stats ("global" for VM 0).
vm_stat() {
	H "$FTCTL" -j stats | python3 -c '
import json, sys
d, vm, key = json.load(sys.stdin), int(sys.argv[1]), sys.argv[2]
if vm == 0:
    print(d["global"][key])
else:
    print(sum(v[key] for v in d["vms"] if v["vm"] == vm))' "$1" "$2"
}
no_redirect_err() {
	local n
	for n in 0 1 2 3 4; do
		(($(vm_stat $n redirect_err) == 0)) ||
			{ echo "VM $n: $(vm_stat $n redirect_err) redirect errors"; return 1; }
	done
}
ktap_check "no redirect error in the rounds so far (total, VMs 1..4)" \
	no_redirect_err

# VM 3's end of its veth without GRO (nor XDP): its host side takes no
# redirected frame.  One udp round: VM 3's sessions go unanswered, each
# frame counted as a redirect error of VM 3, of no other VM.
declare -A err0
for n in 0 1 2 3; do err0[$n]=$(vm_stat $n redirect_err); done
V 3 ethtool -K v3 gro off >/dev/null
round "${UDPC[0]}" "${UDPC[1]}" rerr "$TMP/udperr"
V 3 ethtool -K v3 gro on >/dev/null
redirect_err_vm3() {
	local n3 n
	local -a d
	n3=$(grep -c ' vm3$' "$TMP/udp.exp")
	for n in 0 1 2 3; do d[$n]=$(($(vm_stat $n redirect_err) - err0[$n])); done
	ktap_diag "VM 3's $n3 udp sessions: redirect_err +${d[3]} (total +${d[0]}, VMs 1, 2: +${d[1]} +${d[2]})"
	((n3 > 0 && d[3] >= n3 && d[0] == d[3] && d[1] == 0 && d[2] == 0)) ||
		return 1
	# Unanswered: VM 3's sessions and the tap's (read, never answered).
	[[ $(awk '$2 == "-"' "$TMP/udperr" | wc -l) == \
	   $((n3 + $(grep -c ' vm4$' "$TMP/udp.exp"))) ]]
}
ktap_check "a VM whose device refuses redirected frames: each counted as its redirect error" \
	redirect_err_vm3

# devmap_miss: packets steered by ifindex, over every VM.
devmap_miss() {
	H "$FTCTL" -j stats | python3 -c '
import json, sys
print(sum(c.get("devmap_miss", 0) for c in json.load(sys.stdin)["vms"]))'
}
# An operator reloads with iproute2 while sessions live: same maps, same
# sessions, same VMs.  The new copy's devmap starts empty: it steers by
# ifindex (counted as devmap misses) until ftctl (or ftd) fills it.
ip_reload_live() {
	local m0 m1 m2
	m0=$(devmap_miss) && ip_reload && all_rounds 2r || return 1
	same_answers 2 2r || return 1
	m1=$(devmap_miss)
	((m1 > m0)) || { echo "no devmap miss after the reload"; return 1; }
	H "$FTCTL" target set 1 dev hv1 mac 02:00:00:00:01:01 || return 1
	all_rounds 2s && same_answers 2 2s || return 1
	m2=$(devmap_miss)
	((m2 == m1)) || { echo "devmap misses $m1 -> $m2 once filled"; return 1; }
}
ktap_check "after an ip link reload, every session answered by the same VM (by ifindex until ftctl fills the devmap)" \
	ip_reload_live

# listen FD_IN FD_OUT MS FILE: whatever arrives unasked.
listen() {
	local line
	echo "listen $3" >&"$2"
	: >"$4"
	while read -r -t 10 line <&"$1"; do
		[[ $line == end ]] && return 0
		echo "$line" >>"$4"
	done
	return 1
}

vm1_ports=$(awk '$2 == "vm1" { print $1 }' "$TMP/udp.exp")
spray_vm1() {
	# shellcheck disable=SC2086
	V 1 "$SESSGEN" spray $VIP $PORT 198.18.0.1 "$1" $vm1_ports
}
spray_vm1 vm1-speaks
listen "${UDPC[0]}" "${UDPC[1]}" 500 "$TMP/spray0"
ktap_check "control: VM 1 reaches its clients while it is primary" \
	test "$(grep -c vm1-speaks "$TMP/spray0")" -eq "$(wc -w <<<"$vm1_ports")"

# 4. VM 1 fails: fence it, fail its placements over to their backups.
H "$FTCTL" target fence 1
fo=$(H "$FTCTL" -j placement failover 1)
ktap_diag "failover: $fo"

# tcp_rsts N: TCP resets VM N has sent (IPv4 and IPv6 count together).
tcp_rsts() {
	V "$1" awk '/^Tcp:/ { if (!c) { for (i = 1; i <= NF; i++)
		if ($i == "OutRsts") c = i } else print $c }' /proc/net/snmp
}
# rsts_now: "VM1 VM2 VM3" resets so far.
rsts_now() {
	echo "$(tcp_rsts 1) $(tcp_rsts 2) $(tcp_rsts 3)"
}

# check_failover PROTO BEFORE AFTER [RSTS_BEFORE RSTS_AFTER]: VM 1's
# sessions moved to VM 2, no other session moved.  UDP: VM 2 answers.
# TCP: VM 2 has no state for them (no replication here) and resets
# each: the client sees a reset, and VM 2, only VM 2, sent a reset for
# every moved session (any VM would reset a session it does not know).
check_failover() {
	local proto=$1 before=$2 after=$3 port ans old moved=0 bad=0
	local -a r0 r1
	declare -A was
	while read -r port ans; do was[$port]=$ans; done <"$before"
	while read -r port ans; do
		old=${was[$port]}
		if [[ $old == vm1 ]]; then
			moved=$((moved + 1))
			if [[ $proto == udp && $ans != vm2 ]] ||
			   [[ $proto == tcp && $ans != reset ]]; then
				bad=$((bad + 1))
			fi
		elif [[ $ans != "$old" ]]; then
			bad=$((bad + 1))
		fi
	done <"$after"
	ktap_diag "$proto: $moved sessions of VM 1 moved, $bad wrong"
	((moved > 0 && bad == 0)) || return 1
	[[ $proto == tcp ]] || return 0
	read -ra r0 <<<"$4"
	read -ra r1 <<<"$5"
	ktap_diag "tcp resets sent: VM 1 +$((r1[0] - r0[0])), VM 2 +$((r1[1] - r0[1])), VM 3 +$((r1[2] - r0[2]))"
	((r1[1] - r0[1] >= moved && r1[0] == r0[0] && r1[2] == r0[2]))
}
round "${UDPC[0]}" "${UDPC[1]}" r3 "$TMP/udp3"
rst0=$(rsts_now)
round "${TCPC[0]}" "${TCPC[1]}" r3 "$TMP/tcp3"
rst1=$(rsts_now)
round "${UDP6C[0]}" "${UDP6C[1]}" r3 "$TMP/udp6_3"
rst2=$(rsts_now)
round "${TCP6C[0]}" "${TCP6C[1]}" r3 "$TMP/tcp6_3"
rst3=$(rsts_now)
ktap_check "after failover, exactly VM 1's udp sessions are answered by VM 2" \
	check_failover udp "$TMP/udp2" "$TMP/udp3"
ktap_check "after failover, exactly VM 1's tcp sessions reach VM 2, which resets them (no state)" \
	check_failover tcp "$TMP/tcp2" "$TMP/tcp3" "$rst0" "$rst1"
ktap_check "after failover, exactly VM 1's IPv6 udp sessions are answered by VM 2" \
	check_failover udp "$TMP/udp6_2" "$TMP/udp6_3"
ktap_check "after failover, exactly VM 1's IPv6 tcp sessions reach VM 2, which resets them (no state)" \
	check_failover tcp "$TMP/tcp6_2" "$TMP/tcp6_3" "$rst2" "$rst3"

# 5. The fenced VM still speaks: nothing of it may reach the client.
fence_before=$(H "$FTCTL" -j stats | python3 -c '
import json, sys
print([v["fence_drop"] for v in json.load(sys.stdin)["vms"] if v["vm"] == 1][0])')
spray_vm1 vm1-zombie
listen "${UDPC[0]}" "${UDPC[1]}" 500 "$TMP/spray1"
fence_after=$(H "$FTCTL" -j stats | python3 -c '
import json, sys
print([v["fence_drop"] for v in json.load(sys.stdin)["vms"] if v["vm"] == 1][0])')
ktap_diag "fence drops of VM 1: $fence_before -> $fence_after"
ktap_check "a fenced VM's replies never reach the client (and are counted)" \
	bash -c "! grep -q vm1-zombie $TMP/spray1 && \
		(( $fence_after - $fence_before >= $(wc -w <<<"$vm1_ports") ))"

count_sessions() {
	local n
	n=$(H "$FTCTL" -j session list | python3 -c '
import json, sys; print(len(json.load(sys.stdin)))')
	ktap_diag "ftctl session list: $n sessions"
	((n >= NUDP + NTCP + NUDP6 + NTCP6))
}
ktap_check "ftctl session list -j shows every session" count_sessions

echo quit >&"${UDPC[1]}"
echo quit >&"${TCPC[1]}"
echo quit >&"${UDP6C[1]}"
echo quit >&"${TCP6C[1]}"
ktap_end
