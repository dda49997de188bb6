#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Failover with state, end to end, as ftd does it (Documentation/
# replication.rst): ftd replicates every TCP session of kvstore (libftvm)
# from its primary VM to its backup VM as staged state; a VM dies; its
# sessions are made live on their backups before ftvm_steer sends them
# there, and every client connection goes on, checked byte by byte both
# ways (sessclient's running checksums) and against the service's own
# counters.  UDP sessions (an echo service) go on beside them.  Then every
# session gets a new backup, with its state staged there.
#
#  ftvm-$$-cli             ftvm-$$-host (ftd)                  ftvm-$$-vmN, N=1..3
# +--------------+      +------------------------------+      +--------------------+
# | c0 198.18.0.1|=veth=| hc 198.18.0.254 [XDP steer]  |      | vN 198.18.N.1      |
# | sessclient kv|      | hvN 198.18.N.254 [tc fence]  |=veth=| lo 198.19.0.10     |
# | sessclient udp      |                              |      | kvstore 7000/tcp   |
# +--------------+      +------------------------------+      | echo 7001/udp      |
#                                                             +--------------------+
# Needs ftvm.ko (the qemu guest: selftests/vm-run.sh --tests state).
set -u
cd "$(dirname "$0")" || exit 1
. ../lib/ktap.sh

TOP=$(cd ../.. && pwd)
FTCTL=$TOP/user/ftctl/ftctl
FTD=$TOP/user/ftd/ftd
EX=$TOP/user/examples
VIP=198.19.0.10
N=${FTVM_FTD_SESSIONS:-120}
NU=${FTVM_FTD_UDP:-40}
IVL=${FTVM_FTD_INTERVAL:-20}
P=ftvm-$$
HOST=$P-host CLI=$P-cli
PIN=/sys/fs/bpf/ftvm-fs-$$
TMP=$(mktemp -d /tmp/ftvm-fs.XXXXXX)
CONF=$TMP/ftd.conf
export FTD_SOCKET=$TMP/ftd.sock
ftd_pid=

[[ -d /sys/module/ftvm ]] || ktap_skip_all "ftvm.ko is not loaded (run in the guest: selftests/vm-run.sh --tests state)"
((EUID == 0)) || ktap_skip_all "needs root"

# nsenter, not "ip netns exec": that remounts /sys and hides bpffs.
H() { nsenter --net=/run/netns/$HOST "$@"; }
C() { ip netns exec $CLI "$@"; }
V() { local n=$1; shift; ip netns exec $P-vm$n "$@"; }
F() { H "$FTCTL" "$@"; }

cleanup() {
	local pid ns
	[[ -n $ftd_pid ]] && kill "$ftd_pid" 2>/dev/null
	for ns in $CLI $P-vm{1..3} $HOST; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid"; done
	done
	wait 2>/dev/null
	for ns in $HOST $CLI $P-vm{1..3}; do ip netns del "$ns" 2>/dev/null; done
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT

setup() {
	local n
	ip netns add $HOST && ip netns add $CLI || return 1
	H sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 || return 1
	H ip link set lo up
	H ip link add name hc address 02:00:00:00:00:fe type veth \
		peer name c0 netns $CLI address 02:00:00:00:00:c1 || return 1
	H ip addr add 198.18.0.254/24 dev hc
	H ip link set hc up
	C ip link set lo up
	C ip addr add 198.18.0.1/24 dev c0
	C ip link set c0 up
	C ethtool -K c0 tx off >/dev/null || return 1
	C ip route add 198.19.0.0/16 via 198.18.0.254
	for n in 1 2 3; do
		ip netns add $P-vm$n || return 1
		V $n ip link set lo up
		V $n ip addr add $VIP/32 dev lo
		vm_link $n || return 1
		ip netns exec $P-vm$n "$EX/kvstore" 7000 >/dev/null 2>"$TMP/kv$n.log" &
		ip netns exec $P-vm$n "$EX/echo" udp 7001 >/dev/null 2>&1 &
	done
	for n in 1 2 3; do
		wait_for 10 sh -c "ip netns exec $P-vm$n ss -Htln 'sport = :7000' | grep -q ." || return 1
	done
}

vm_link() {
	local n=$1
	H ip link add name hv$n type veth peer name v$n netns $P-vm$n \
		address 02:00:00:00:0$n:01 || return 1
	H ip addr add 198.18.$n.254/24 dev hv$n
	H ip link set hv$n up
	V $n ip addr add 198.18.$n.1/24 dev v$n
	V $n ip link set v$n up
	V $n ip route add default via 198.18.$n.254 src $VIP
	V $n ethtool -K v$n gro on >/dev/null
}

write_conf() {
	local n
	{
		echo "control $FTD_SOCKET"
		echo "pin-dir $PIN"
		echo "attach hc"
		echo "reprotect-rate 0"
		echo "scan-interval 20"
		for n in 1 2 3; do
			echo "vm vm$n id $n dev hv$n mac 02:00:00:00:0$n:01 domain d$n netns $P-vm$n"
		done
		echo "service kv $VIP:7000/tcp replication-interval $IVL"
		echo "service echo $VIP:7001/udp"
	} >"$CONF"
}

start_ftd() {
	nsenter --net=/run/netns/$HOST "$FTD" -f "$CONF" 2>>"$TMP/ftd.log" &
	ftd_pid=$!
	wait_for 20 F status
}

# Clients: driven line by line through fifos (fds 5/6 kv, 7/8 udp).
start_clients() {
	local line
	mkfifo "$TMP/kv.in" "$TMP/kv.out" "$TMP/ud.in" "$TMP/ud.out"
	ip netns exec $CLI "$EX/sessclient" kv $VIP 7000 "$N" <"$TMP/kv.in" >"$TMP/kv.out" 2>&1 &
	ip netns exec $CLI "$EX/sessclient" udp $VIP 7001 "$NU" <"$TMP/ud.in" >"$TMP/ud.out" 2>&1 &
	exec 5>"$TMP/kv.in" 6<"$TMP/kv.out" 7>"$TMP/ud.in" 8<"$TMP/ud.out"
	read -r -t 120 line <&6 && [[ $line == ok* ]] || { echo "kv client: $line"; return 1; }
	read -r -t 120 line <&8 && [[ $line == ok* ]] || { echo "udp client: $line"; return 1; }
}
kv() { echo "$1" >&5; }
kv_wait() {
	local line
	read -r -t 300 line <&6 || { echo "kv client: no answer"; return 1; }
	[[ $line == ok* ]] || { echo "kv client: $line"; return 1; }
}
udp() {
	local line
	echo "$1" >&7
	read -r -t 300 line <&8 || { echo "udp client: no answer"; return 1; }
	[[ $line == ok* ]] || { echo "udp client: $line"; return 1; }
}

# all_staged: every session is protected (TCP: its state staged on its backup).
all_staged() {
	local j
	j=$(F -j session show) || return 1
	python3 -c '
import json, sys
s = json.loads(sys.argv[1]); n = int(sys.argv[2])
tcp = [x for x in s if x["proto"] == "tcp"]
bad = [x for x in s if not x["protected"]]
sys.exit(0 if len(tcp) >= n and not bad else 1)' "$j" $((N)) 2>/dev/null
}

# The VM that is primary of most TCP sessions.
busiest() {
	F -j session show | python3 -c '
import json, sys, collections
c = collections.Counter(x["primary"] for x in json.load(sys.stdin) if x["proto"] == "tcp")
print(c.most_common(1)[0][0])'
}

resumed() { cat "$TMP"/kv*.log | grep -c resumed; }

ktap_begin 7

if ! setup || ! write_conf || ! start_ftd; then
	ktap_fail "topology and ftd"
	ktap_diag "$(tail -20 "$TMP/ftd.log" 2>/dev/null)"
	ktap_end
fi
ktap_ok "three VMs, ftd with XDP steering and ftvm.ko"

opened() { start_clients && kv "round 3" && kv_wait && udp "round 2"; }
ktap_check "$N TCP (kvstore) and $NU UDP sessions talk" opened

replicated() {
	wait_for 60 all_staged || { F session show | grep -v " protected" | head -5; return 1; }
	F session show | grep -q "replicated [0-9]* ms ago"
}
ktap_check "every TCP session's state is staged on its backup" replicated

# The primary's device is deleted while every client is mid-conversation.
dev_deleted() {
	local vm n
	vm=$(busiest) && n=${vm#vm}
	kv "round 40"
	sleep 0.3
	H ip link del hv$n
	kv_wait || { tail -5 "$TMP/ftd.log"; return 1; }
	udp "round 2" || return 1
	kv "round 3" && kv_wait || return 1
	(($(resumed) > 0)) || { echo "no session resumed on a backup"; return 1; }
	ktap_diag "$vm died: $(resumed) sessions resumed on their backups"
	echo "$n" >"$TMP/dead"
}
ktap_check "device deleted mid-conversation: every session goes on, no byte lost or duplicated" dev_deleted

reprotected() { wait_for 60 all_staged; }
ktap_check "afterwards every session has a new backup with its state staged" reprotected

# A hypervisor killed with SIGKILL: its device and every process of the
# VM go at once (the sockets close; only the staged state is left).
sigkill_all() {
	local vm n before
	vm=$(busiest) && n=${vm#vm}
	before=$(resumed)
	# Relaxed mode: the staged state must be current (see replication.rst).
	sleep $(((IVL * 5 + 999) / 1000))
	H ip link del hv$n &
	ip netns pids $P-vm$n | xargs -r kill -9
	wait $!
	kv "round 10" && kv_wait || { tail -5 "$TMP/ftd.log"; return 1; }
	udp "round 2" || return 1
	(($(resumed) > before)) || { echo "no session resumed"; return 1; }
}
ktap_check "VM SIGKILLed (all processes, device gone): every session goes on" sigkill_all

last_vm() {
	echo quit >&5
	# One VM is left: nothing to re-protect onto, but sessions run.
	F status | grep -q "Sessions"
}
ktap_check "clients end cleanly" last_vm
ktap_diag "$(grep -E "failover|activated" "$TMP/ftd.log" | tail -6)"
ktap_end
