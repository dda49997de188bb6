#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Failover with state, end to end, as ftd does it (Documentation/
# replication.rst): ftd replicates every TCP session of kvstore (libftvm)
# from its primary VM to its backup VM as staged state; VMs die while the
# clients talk; their sessions are made live on their backups before
# ftvm_steer sends them there, and every client connection goes on, on
# the same connection, checked byte by byte both ways (sessclient's
# running checksums) and against the service's own counters (count and
# sum of every request: the libftvm blob).  UDP sessions (an echo
# service) go on beside them.  After each failure every session gets a
# new backup, with its state staged there.
#
# The failures, in order, each while both clients send without pause
# ("sessclient run": one request outstanding per session):
#   churn   connections opened and closed at a high rate while ftd
#           replicates (each must see a fresh state; nothing else moves)
#   A       the busiest primary's device is deleted
#   kill    a VM's processes are SIGKILLed as its device is deleted
#           (only the staged state is left: the clients idle first)
#   C       a primary dies, and while its sessions are being
#           re-protected, the VM receiving their new backups (vm7, joined
#           late with a large capacity, so primary of nothing) dies too
#   B       a backup dies before its primary: its sessions get new
#           backups; then their primary dies and they go on there
#
#  ftvm-$$-cli             ftvm-$$-host (ftd)                  ftvm-$$-vmN, N=1..7
# +--------------+      +------------------------------+      +--------------------+
# | c0 198.18.0.1|=veth=| hc 198.18.0.254 [XDP steer]  |      | vN 198.18.N.1      |
# | sessclient kv|      | hvN 198.18.N.254 [tc fence]  |=veth=| lo 198.19.0.10     |
# | sessclient udp      |                              |      | kvstore 7000/tcp   |
# | sessclient churn    |                              |      | echo 7001/udp      |
# +--------------+      +------------------------------+      +--------------------+
# vm1..vm6 exist from the start; vm7 joins before failure C.
# Needs ftvm.ko (the qemu guest: selftests/vm-run.sh --tests state).
set -u
cd "$(dirname "$0")" || exit 1
. ../lib/ktap.sh

TOP=$(cd ../.. && pwd)
FTCTL=$TOP/user/ftctl/ftctl
FTD=$TOP/user/ftd/ftd
EX=$TOP/user/examples
VIP=198.19.0.10
N=${FTVM_FTD_SESSIONS:-200}
NU=${FTVM_FTD_UDP:-60}
IVL=${FTVM_FTD_INTERVAL:-20}
RUN_MS=${FTVM_FTD_RUN_MS:-8000}
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
F() { H timeout 60 "$FTCTL" "$@"; }

cleanup() {
	local pid ns
	[[ -n $ftd_pid ]] && kill "$ftd_pid" 2>/dev/null
	for ns in $CLI $P-vm{1..7} $HOST; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid"; done
	done
	wait 2>/dev/null
	for ns in $HOST $CLI $P-vm{1..7}; do ip netns del "$ns" 2>/dev/null; done
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT

vm_start() {
	local n=$1
	ip netns add $P-vm$n || return 1
	V $n ip link set lo up
	V $n ip addr add $VIP/32 dev lo
	H ip link add name hv$n type veth peer name v$n netns $P-vm$n \
		address 02:00:00:00:0$n:01 || return 1
	H ip addr add 198.18.$n.254/24 dev hv$n
	H ip link set hv$n up
	V $n ip addr add 198.18.$n.1/24 dev v$n
	V $n ip link set v$n up
	V $n ip route add default via 198.18.$n.254 src $VIP
	V $n ethtool -K v$n gro on >/dev/null
	ip netns exec $P-vm$n "$EX/kvstore" 7000 >/dev/null 2>"$TMP/kv$n.log" &
	ip netns exec $P-vm$n "$EX/echo" udp 7001 >/dev/null 2>&1 &
	wait_for 20 sh -c "ip netns exec $P-vm$n ss -Htln 'sport = :7000' | grep -q ." &&
	wait_for 20 sh -c "ip netns exec $P-vm$n ss -Huln 'sport = :7001' | grep -q ."
}

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
	for n in 1 2 3 4 5 6; do vm_start $n || return 1; done
}

# Re-protection is paced (20 sessions/s) so that failure C can strike
# while it runs.
write_conf() {
	local n
	{
		echo "control $FTD_SOCKET"
		echo "pin-dir $PIN"
		echo "attach hc"
		echo "reprotect-rate 20"
		echo "reprotect-batch 2"
		echo "scan-interval 20"
		for n in 1 2 3 4 5 6; do
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

# Clients, driven line by line through fifos: kv on fds 5/6, udp 7/8,
# churn 11/12.  Opened here, in the test's own shell (a ktap_check runs
# in a subshell); asked with tell, answered with answer.
start_clients() {
	local c
	for c in kv ud ch; do mkfifo "$TMP/$c.in" "$TMP/$c.out" || return 1; done
	C "$EX/sessclient" kv $VIP 7000 "$N" <"$TMP/kv.in" >"$TMP/kv.out" 2>"$TMP/kv.err" &
	clients=$!
	C "$EX/sessclient" udp $VIP 7001 "$NU" <"$TMP/ud.in" >"$TMP/ud.out" 2>&1 &
	clients+=" $!"
	C "$EX/sessclient" kv $VIP 7000 0 <"$TMP/ch.in" >"$TMP/ch.out" 2>&1 &
	clients+=" $!"
	exec 5>"$TMP/kv.in" 6<"$TMP/kv.out" 7>"$TMP/ud.in" 8<"$TMP/ud.out" \
		11>"$TMP/ch.in" 12<"$TMP/ch.out"
}
tell() {
	case $1 in kv) echo "$2" >&5 ;; udp) echo "$2" >&7 ;; churn) echo "$2" >&11 ;; esac
}
# answer CLIENT: its next answer line (on stdout), fails unless "ok".
answer() {
	local line fd
	case $1 in kv) fd=6 ;; udp) fd=8 ;; churn) fd=12 ;; esac
	read -r -t 300 line <&$fd || { echo "$1 client: no answer"; return 1; }
	echo "$line"
	[[ $line == ok* ]] || { echo "$1 client failed"; return 1; }
}
# ask CLIENT LINE: tell, then answer; on failure say why (the client's
# answer and, for kv, the end of its error log).
ask() {
	local a
	tell "$1" "$2"
	a=$(answer "$1") && return 0
	echo "$1 \"$2\": $a"
	[[ $1 == kv && -s $TMP/kv.err ]] && tail -3 "$TMP/kv.err"
	return 1
}
# alive: every client still runs (a client exits on the first error: the
# steps after that fail at once instead of waiting out their timeouts).
alive() {
	local pid
	for pid in $clients; do
		kill -0 "$pid" 2>/dev/null || { echo "a client has exited"; return 1; }
	done
}

# run_both: both clients send for RUN_MS; diag their figures.
run_start() { tell kv "run $RUN_MS"; tell udp "run $RUN_MS"; }
run_end() {
	local k u
	k=$(answer kv) || { echo "$k"; return 1; }
	u=$(answer udp) || { echo "$u"; return 1; }
	echo "kv: ${k#ok run } / udp: ${u#ok run }" >"$TMP/figures"
	[[ $k == *" lost 0 "* && $u == *" lost 0 "* ]]
}

# sq PYTHON: evaluate PYTHON with s = ftd's sessions (session show -j)
# that are live: the UDP ones and the TCP ones whose client connection is
# established (closed ones stay in the sessions map and in ftd's table
# but have no state to replicate), tcp = the TCP ones of s, live = the
# VMs up; exit status = its truth (or, with -p, print it).
sq() {
	local print=0
	[[ $1 == -p ]] && { print=1; shift; }
	F -j session show >"$TMP/sq.s" && F -j vm list >"$TMP/sq.v" &&
	C ss -Htn state established "dport = :7000" >"$TMP/sq.e" || return 1
	python3 -c '
import json, sys
est = {l.split()[2].rsplit(":", 1)[1] for l in open(sys.argv[3]) if l.strip()}
s = [x for x in json.load(open(sys.argv[1]))
     if x["proto"] != "tcp" or x["client"].rsplit(":", 1)[1] in est]
live = {v["name"] for v in json.load(open(sys.argv[2])) if v["state"] == "up"}
tcp = [x for x in s if x["proto"] == "tcp"]
r = eval(sys.argv[4])
if sys.argv[5] == "1":
	print(r)
	sys.exit(0)
sys.exit(0 if r else 1)' "$TMP/sq.s" "$TMP/sq.v" "$TMP/sq.e" "$1" $print
}

# all_protected: every session has a live primary and a live backup apart
# from it and is protected (TCP: its state staged on that backup).
ALL_PROTECTED='len(tcp) >= '$N' and all(x["protected"] and x["primary"] in live and x["backup"] in live and x["primary"] != x["backup"] for x in s)'
all_protected() { sq "$ALL_PROTECTED"; }
protected() {
	alive || return 1
	wait_for 120 all_protected && return 0
	sq -p '[x for x in s if not x["protected"]][:3]'
	return 1
}

# The VM that is primary (or backup) of most TCP sessions.
busiest() {
	sq -p '__import__("collections").Counter(x["'"${1:-primary}"'"] for x in tcp).most_common(1)[0][0]'
}
tcp_on() { sq -p 'sum(1 for x in tcp if x["primary"] == "'"$1"'")'; }
resumed() { cat "$TMP"/kv*.log | grep -c resumed; }

# fail_during_run VM [then CMD...]: delete VM's device while both clients
# send, then (optionally) run CMD; both clients must lose nothing.
fail_during_run() {
	local vm=$1 n=${1#vm} had before
	shift
	alive || return 1
	had=$(tcp_on "$vm") before=$(resumed)
	run_start
	# Strike inside the run (it lasts RUN_MS): its replies flow by then.
	read -r -t 1 <> <(:)
	H ip link del hv$n || return 1
	(($#)) && { "$@" || return 1; }
	run_end || { cat "$TMP/figures"; tail -5 "$TMP/ftd.log"; return 1; }
	ktap_diag "$vm died as primary of $had TCP sessions; $(cat "$TMP/figures")"
	# Each of them was picked up by a kvstore on a backup (libftvm blob).
	(($(resumed) - before >= had)) || { echo "resumed $(($(resumed) - before)) of $had"; return 1; }
}

ktap_begin 15

if ! setup || ! write_conf || ! start_ftd || ! start_clients; then
	ktap_fail "topology and ftd"
	ktap_diag "$(tail -20 "$TMP/ftd.log" 2>/dev/null)"
	ktap_end
fi
ktap_ok "six VMs, ftd with XDP steering and ftvm.ko"

opened() {
	answer kv && answer udp && answer churn || return 1
	ask kv "round 3" && ask udp "round 2"
}
ktap_check "$N TCP (kvstore) and $NU UDP sessions talk" opened
ktap_check "every TCP session's state is staged on its backup" protected

# Churn: short connections at a high rate beside the long ones.
churn() {
	local c
	alive || return 1
	tell churn "churn $RUN_MS"
	run_start
	c=$(answer churn)
	run_end || { cat "$TMP/figures"; return 1; }
	[[ $c == ok* ]] || { echo "$c"; return 1; }
	ktap_diag "$c; $(cat "$TMP/figures")"
	((${c##* } >= 20)) || { echo "only ${c##* } connections"; return 1; }
	protected
}
ktap_check "connections opened and closed at a high rate during replication" churn

# A: the busiest primary's device goes while every client sends.
A=$(busiest)
ktap_check "$A's device deleted while the clients send: every session goes on, no byte lost or duplicated" \
	fail_during_run "$A"
ktap_check "afterwards every session has a new backup with its state staged" protected

# A hypervisor killed with SIGKILL: the guest stops sending at that
# instant, then its device and every process of the VM go (the sockets
# close; only the staged state is left).  The VM's output is cut first,
# in its own namespace, because a namespace's kernel outlives its
# processes: killed alone they would send FINs that a dead VM never
# sends (Documentation/replication.rst: "A VM's processes killed").  In
# relaxed mode the staged state must be current: the clients idle until
# every session has been replicated since their last reply.
sigkill_all() {
	local vm n before had t0
	alive || return 1
	vm=$(busiest) && n=${vm#vm}
	had=$(tcp_on "$vm") before=$(resumed)
	ask kv "round 1" && ask udp "round 1" || return 1
	t0=$(date +%s%N)
	fresh() { sq 'all(x["replicated_ms_ago"] is not None and (x["replicated_ms_ago"] + 5) * 1000000 < '"$(date +%s%N)"' - '"$t0"' for x in tcp)'; }
	wait_for 60 fresh || { echo "not replicated since"; return 1; }
	V $n tc qdisc add dev v$n clsact &&
	V $n tc filter add dev v$n egress matchall action drop || return 1
	H ip link del hv$n &
	ip netns pids $P-vm$n | xargs -r kill -9
	wait $!
	ask kv "round 5" || { tail -5 "$TMP/ftd.log"; return 1; }
	ask udp "round 2" || return 1
	(($(resumed) - before >= had)) || { echo "resumed $(($(resumed) - before)) of $had"; return 1; }
	ktap_diag "$vm killed: $had TCP sessions resumed from their staged state"
}
ktap_check "VM SIGKILLed (all processes, device gone): every session goes on" sigkill_all
ktap_check "afterwards every session has a new backup with its state staged" protected

# C: vm7 joins with ten times the capacity, so re-protection gives it
# most of the new backups, and holds no primary (no session opens now).
joined() {
	vm_start 7 || return 1
	F vm add vm7 id 7 dev hv7 mac 02:00:00:00:07:01 capacity 1000 domain d7 netns $P-vm7
}
ktap_check "vm7 joins" joined

# Re-protection under way: a session has vm7 as its backup, and some
# session is not protected yet.
midway() {
	sq 'any(x["backup"] == "vm7" for x in s) and not all(x["protected"] for x in s)'
}
kill_vm7() {
	wait_for 60 midway || { echo "re-protection never seen under way"; return 1; }
	H ip link del hv7
}
C=$(busiest)
ktap_check "$C dies, then vm7, its sessions' new backup, during re-protection: every session goes on" \
	fail_during_run "$C" kill_vm7
ktap_check "afterwards every session has a new backup with its state staged" protected

# B: a backup dies first; its sessions get new backups (from the other
# VMs); then their primary dies, and they go on on those new backups.
B=$(busiest backup)
ktap_check "$B (backup of the most sessions) dies: every session goes on" fail_during_run "$B"
ktap_check "afterwards every session has a new backup with its state staged" protected
BP=$(busiest)
ktap_check "then $BP, the primary, dies: its sessions go on on their new backups" \
	fail_during_run "$BP"

ended() {
	ask kv "round 2" && ask udp "round 2" || return 1
	tell kv quit && tell udp quit && tell churn quit
	wait_for 30 sh -c "! ip netns pids $CLI | grep -q ."
}
ktap_check "clients end cleanly" ended
ktap_diag "$(grep -E "failover|activated" "$TMP/ftd.log" | tail -8)"
ktap_end
