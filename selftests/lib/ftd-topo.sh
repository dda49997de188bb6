# SPDX-License-Identifier: GPL-2.0
#
# The topology ftd runs in, for the tests with state (selftests/state/
# ftd-lib.sh) and the benchmarks that go through ftd (bench/failover-
# state, bench/strict): a client namespace, a host namespace where ftd
# runs with XDP steering on the client's veth, and VMs (namespaces
# behind veths) running kvstore (TCP, libftvm) on 7000 and a UDP echo on
# 7001 at the service address.
#
#  $P-cli                  $P-host (ftd)                       $P-vmN
# +--------------+      +------------------------------+      +--------------------+
# | c0 198.18.0.1|=veth=| hc 198.18.0.254 [XDP steer]  |      | vN 198.18.N.1      |
# |  (clients)   |      | hvN 198.18.N.254 [tc fence]  |=veth=| lo 198.19.0.10     |
# |              |      |                              |      | kvstore 7000/tcp   |
# |              |      |                              |      | echo 7001/udp      |
# +--------------+      +------------------------------+      +--------------------+
#
# Set before sourcing, if wanted: P (name prefix, default ftvm-PID),
# TOPO_WAIT (seconds a VM's servers or ftd may take to come up, default
# 20), F_TIMEOUT (seconds an ftctl call may take, default 60; 0: none),
# KV_ARGS (kvstore's options after its port, e.g. "defer-accept 30").
# Then: setup VM... (the host, the client and the VMs named: numbers, at
# most 9), the caller writes ftd's configuration to $CONF, start_ftd;
# vm_start N adds a VM, vm_kill N kills one, topo_down takes everything
# down but $TMP (the caller removes it, at its exit).

# shellcheck source=wait.sh
source "${BASH_SOURCE[0]%/*}/wait.sh"
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FTCTL=$TOP/user/ftctl/ftctl
FTD=$TOP/user/ftd/ftd
EX=$TOP/user/examples
VIP=198.19.0.10
P=${P:-ftvm-$$}
HOST=$P-host CLI=$P-cli
PIN=/sys/fs/bpf/$P
TMP=$(mktemp -d "/tmp/$P.XXXXXX")
CONF=$TMP/ftd.conf
export FTD_SOCKET=$TMP/ftd.sock
TOPO_WAIT=${TOPO_WAIT:-20}
F_TIMEOUT=${F_TIMEOUT:-60}
ftd_pid=

# nsenter, not "ip netns exec": that remounts /sys and hides bpffs.
H() { nsenter --net=/run/netns/$HOST "$@"; }
C() { ip netns exec $CLI "$@"; }
V() { local n=$1; shift; ip netns exec $P-vm$n "$@"; }
F() { H timeout "$F_TIMEOUT" "$FTCTL" "$@"; }

# ftd has exited (a zombie until waited for).
ftd_gone() {
	local st
	st=$(cat "/proc/$ftd_pid/stat" 2>/dev/null) || return 0
	st=${st##*) }
	[[ ${st%% *} == Z ]]
}

# stop_ftd: SIGTERM to the ftd of $CONF, whoever started it ($ftd_pid is
# lost when a check, run in a subshell, started it again), and wait for
# it to exit.  Then it has relaxed its strict services.
ftd_running() { pgrep -x -f "$FTD -f $CONF" >/dev/null; }
stop_ftd() {
	pkill -TERM -x -f "$FTD -f $CONF" || return 1
	wait_for 10 eval '! ftd_running'
}

# Everything down but $TMP.  ftd is let exit on its own first (it relaxes
# its strict services as it does).
topo_down() {
	local pid ns all
	stop_ftd
	all=$(ip netns list | awk -v p="$P-" 'index($1, p) == 1 { print $1 }')
	for ns in $all; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid"; done
	done
	wait 2>/dev/null
	for ns in $all; do ip netns del "$ns" 2>/dev/null; done
	rm -rf "$PIN"
	ftd_pid=
}

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
	# Disowned: their deaths (killed VMs, topo_down) are the tests' to
	# check, not for bash to report ("Killed") on our stderr.
	# shellcheck disable=SC2086 # words
	ip netns exec $P-vm$n "$EX/kvstore" 7000 ${KV_ARGS:-} >/dev/null 2>"$TMP/kv$n.log" &
	disown $!
	ip netns exec $P-vm$n "$EX/echo" udp 7001 >/dev/null 2>&1 &
	disown $!
	wait_for $TOPO_WAIT sh -c "ip netns exec $P-vm$n ss -Htln 'sport = :7000' | grep -q ." &&
	wait_for $TOPO_WAIT sh -c "ip netns exec $P-vm$n ss -Huln 'sport = :7001' | grep -q ."
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
	C sysctl -qw net.ipv4.ip_local_port_range="10000 65000"
	for n in "$@"; do vm_start $n || return 1; done
}

# start_ftd [VAR=VALUE...]: ftd, with those in its environment (a test
# hook); $ftd_pid is ftd itself (nsenter and env exec it; not through
# H(), whose subshell $! would be).
start_ftd() {
	# Not on our stdout: a check's $(...) would wait for ftd's exit.
	nsenter --net=/run/netns/$HOST env "$@" "$FTD" -f "$CONF" \
		>/dev/null 2>>"$TMP/ftd.log" &
	ftd_pid=$!
	wait_for $TOPO_WAIT F status
}

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

# vm_sigkill N: every process of VM N is SIGKILLed, and nothing else is
# done: its device stays, its output is not cut.  Only a VM registered
# with "silent-exit on" survives this for its clients (ftvm.ko ends the
# connections without a packet, mutes the namespace and fails the VM).
vm_sigkill() {
	ip netns pids $P-vm$1 | xargs -r kill -9
	wait_for 10 sh -c "! ip netns pids $P-vm$1 | grep -q ."
}
