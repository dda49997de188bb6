# SPDX-License-Identifier: GPL-2.0
#
# The topology of the ftd tests with state (ftd-failover.sh, strict.sh):
# a client namespace, a host namespace running ftd with XDP steering on
# the client's veth, and VMs (namespaces behind veths) running kvstore
# (TCP, libftvm) on 7000 and a UDP echo on 7001 at the service address;
# sessclient clients driven line by line, and queries of ftd's view.
#
#  ftvm-$$-cli             ftvm-$$-host (ftd)                  ftvm-$$-vmN
# +--------------+      +------------------------------+      +--------------------+
# | c0 198.18.0.1|=veth=| hc 198.18.0.254 [XDP steer]  |      | vN 198.18.N.1      |
# | sessclient kv|      | hvN 198.18.N.254 [tc fence]  |=veth=| lo 198.19.0.10     |
# | sessclient udp      |                              |      | kvstore 7000/tcp   |
# | sessclient churn    |                              |      | echo 7001/udp      |
# +--------------+      +------------------------------+      +--------------------+
#
# The test sets, before sourcing: N and NU (TCP and UDP sessions),
# RUN_MS (length of a "run"), and writes its own ftd.conf ($CONF, with
# write_conf) between setup and start_ftd.  setup VM... starts the VMs
# named (numbers, at most 9).
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FTCTL=$TOP/user/ftctl/ftctl
FTD=$TOP/user/ftd/ftd
EX=$TOP/user/examples
VIP=198.19.0.10
P=ftvm-$$
HOST=$P-host CLI=$P-cli
PIN=/sys/fs/bpf/ftvm-fs-$$
TMP=$(mktemp -d /tmp/ftvm-fs.XXXXXX)
CONF=$TMP/ftd.conf
export FTD_SOCKET=$TMP/ftd.sock
ftd_pid=

# nsenter, not "ip netns exec": that remounts /sys and hides bpffs.
H() { nsenter --net=/run/netns/$HOST "$@"; }
C() { ip netns exec $CLI "$@"; }
V() { local n=$1; shift; ip netns exec $P-vm$n "$@"; }
F() { H timeout 60 "$FTCTL" "$@"; }

cleanup() {
	local pid ns all
	[[ -n $ftd_pid ]] && kill "$ftd_pid" 2>/dev/null
	all=$(ip netns list | awk -v p="$P-" 'index($1, p) == 1 { print $1 }')
	for ns in $all; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid"; done
	done
	wait 2>/dev/null
	for ns in $all; do ip netns del "$ns" 2>/dev/null; done
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
	for n in "$@"; do vm_start $n || return 1; done
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

# vm_kill N: VM N dies as a hypervisor killed with SIGKILL takes its
# guest: its output stops at that instant, its state is gone, then its
# device goes.  The output is cut first, in the VM's own namespace,
# because a namespace's kernel outlives its processes: killed alone they
# would send FINs that a dead VM never sends (Documentation/
# replication.rst: "A VM's processes killed").  The processes are dead
# (their sockets closed) before the device goes, so that ftd, which
# fails the VM over when it does, finds nothing left to capture there:
# the sessions go on from what their backups have staged, or not at all.
vm_kill() {
	local n=$1
	V $n tc qdisc add dev v$n clsact &&
	V $n tc filter add dev v$n egress matchall action drop || return 1
	ip netns pids $P-vm$n | xargs -r kill -9
	wait_for 10 sh -c "! ip netns pids $P-vm$n | grep -q ." || return 1
	H ip link del hv$n
}

# fail_during_run [-k] VM [then CMD...]: delete VM's device (-k: kill
# the VM, vm_kill) while both clients send, then (optionally) run CMD;
# both clients must lose nothing.
fail_during_run() {
	local kill=0 vm n had before
	[[ $1 == -k ]] && { kill=1; shift; }
	vm=$1 n=${1#vm}
	shift
	alive || return 1
	had=$(tcp_on "$vm") before=$(resumed)
	run_start
	# Strike inside the run (it lasts RUN_MS): its replies flow by then.
	read -r -t 1 <> <(:)
	if ((kill)); then
		vm_kill $n || return 1
	else
		H ip link del hv$n || return 1
	fi
	(($#)) && { "$@" || return 1; }
	run_end || { cat "$TMP/figures"; tail -5 "$TMP/ftd.log"; return 1; }
	ktap_diag "$vm died as primary of $had TCP sessions; $(cat "$TMP/figures")"
	# Each of them was picked up by a kvstore on a backup (libftvm blob).
	(($(resumed) - before >= had)) || { echo "resumed $(($(resumed) - before)) of $had"; return 1; }
}

