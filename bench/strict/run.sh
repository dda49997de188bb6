#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# What strict output commit costs (kmod/commit.c): a request/response
# workload on kvstore (libftvm) run three times over one topology, in
# the qemu guest with ftvm.ko: ftvm off (no ftd, no XDP: the host routes
# the VIP to vm1), then ftd with the service "commit strict" at
# replication-interval 1, then the same service "commit relaxed".  Each
# time a fresh sessclient opens the sessions, warms them up ("round 3"),
# waits (with ftd) until every one is staged on its backup, then runs
# ("sessclient run": one request outstanding per session, the next sent
# as soon as the reply came):
#
#   BENCH strict_latency_ratio R       per-request latency, strict over
#                                      off: the median over the sessions
#                                      of a session's normal gap between
#                                      two replies (one round trip)
#   BENCH strict_added_latency_us N    that latency, strict minus off, us
#   BENCH strict_throughput_ratio R    requests per second (replies over
#                                      the run), strict over off
#   BENCH relaxed_latency_ratio R      the same for relaxed over off, for
#   BENCH relaxed_throughput_ratio R   information: strict against these
#                                      is what holding the output costs
#   BENCH guest_slowdown R             one CPU-bound loop timed in the
#                                      guest over the same loop on the
#                                      host, this run: scales the figures
#
# "# ..." lines carry the raw figures (replies, gap_ms, sessions lost)
# and ftvm.ko's commit counters of the strict run (ftctl -j service
# show); a "# warning" line says when strict held nothing (commits 0) or
# a session was lost.
#
#  P-cli                 P-host (ftd in the ftd runs)           P-vmN, N=1,2
# +--------------+      +--------------------------------+      +------------------+
# | c0 198.18.0.1|=veth=| hc 198.18.0.254 [XDP: ftd runs]|      | vN 198.18.N.1    |
# | sessclient kv|      | hvN 198.18.N.254               |=veth=| lo 198.19.0.10   |
# +--------------+      | off: 198.19.0.10 via 198.18.1.1|      | kvstore 7000/tcp |
#                       +--------------------------------+      +------------------+
#
# From the host it times the loop, then runs itself in the guest
# (selftests/vm-run.sh --cmd).  FTVM_BENCH_STRICT_SESSIONS (default 16),
# FTVM_BENCH_STRICT_RUN_MS (each run, default 5000).
set -u
TOP=${FTVM_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
SELF=$TOP/bench/strict/run.sh
NS=${FTVM_BENCH_STRICT_SESSIONS:-16}
RUN_MS=${FTVM_BENCH_STRICT_RUN_MS:-5000}

# shellcheck source=../lib.sh
. "$TOP/bench/lib.sh"
bench_guest strict "$SELF" \
	"FTVM_BENCH_STRICT_SESSIONS=$NS FTVM_BENCH_STRICT_RUN_MS=$RUN_MS"

FTCTL=$TOP/user/ftctl/ftctl
FTD=$TOP/user/ftd/ftd
EX=$TOP/user/examples
VIP=198.19.0.10
P=ftvm-bst-$$
HOST=$P-host CLI=$P-cli
PIN=/sys/fs/bpf/ftvm-bst-$$
TMP=$(mktemp -d /tmp/ftvm-bst.XXXXXX)
export FTD_SOCKET=$TMP/ftd.sock
ftd_pid= client=
trap '' PIPE		# a client that died must not end the benchmark

# shellcheck source=../../selftests/lib/wait.sh
. "$TOP/selftests/lib/wait.sh"
# nsenter, not "ip netns exec": that remounts /sys and hides bpffs.
H() { nsenter --net=/run/netns/$HOST "$@"; }
C() { ip netns exec $CLI "$@"; }
V() { local n=$1; shift; ip netns exec $P-vm$n "$@"; }
F() { H timeout 60 "$FTCTL" "$@"; }

# ftd has exited (a zombie until waited for).
ftd_gone() {
	local st
	st=$(cat "/proc/$ftd_pid/stat" 2>/dev/null) || return 0
	st=${st##*) }
	[[ ${st%% *} == Z ]]
}
teardown() {
	local pid ns
	exec 5>&- 6<&-
	# ftd relaxes its strict service as it exits: let it.
	if [[ -n $ftd_pid ]] && kill "$ftd_pid" 2>/dev/null; then
		wait_for 10 ftd_gone
	fi
	for ns in $CLI $P-vm1 $P-vm2 $HOST; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid"; done
	done
	wait 2>/dev/null
	for ns in $HOST $CLI $P-vm1 $P-vm2; do ip netns del "$ns" 2>/dev/null; done
	rm -rf "$PIN" "$TMP"
	ftd_pid=
}
trap teardown EXIT

# The host, the client, two VMs with kvstore; the VIP routed to vm1.
topology() {
	local n
	ip netns add $HOST && ip netns add $CLI || return 1
	H sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0
	H ip link set lo up
	H ip link add name hc address 02:00:00:00:00:fe type veth \
		peer name c0 netns $CLI address 02:00:00:00:00:c1 || return 1
	H ip addr add 198.18.0.254/24 dev hc
	H ip link set hc up
	C ip link set lo up
	C ip addr add 198.18.0.1/24 dev c0
	C ip link set c0 up
	C ethtool -K c0 tx off >/dev/null
	C ip route add 198.19.0.0/16 via 198.18.0.254
	C sysctl -qw net.ipv4.ip_local_port_range="10000 65000"
	{
		echo "control $FTD_SOCKET"
		echo "pin-dir $PIN"
		echo "attach hc"
		echo "reprotect-rate 0"
		echo "scan-interval 50"
		echo "service kv $VIP:7000/tcp replication-interval 1 commit strict"
	} >"$TMP/ftd.conf"
	for n in 1 2; do
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
		disown		# killed at the end: no "Killed" notice
		echo "vm vm$n id $n dev hv$n mac 02:00:00:00:0$n:01 domain d$n netns $P-vm$n" >>"$TMP/ftd.conf"
	done
	for n in 1 2; do
		wait_for 30 sh -c "ip netns exec $P-vm$n ss -Htln 'sport = :7000' | grep -q ." || return 1
	done
	H ip route add $VIP/32 via 198.18.1.1
}

start_ftd() {
	H ip route del $VIP/32 via 198.18.1.1 2>/dev/null
	H "$FTD" -f "$TMP/ftd.conf" 2>>"$TMP/ftd.log" &
	ftd_pid=$!
	wait_for 30 F status
}

answer() {
	local line
	read -r -t 300 line <&6 || { echo "# no answer from the client" >&2; return 1; }
	[[ $line == ok* ]] || { echo "# client: $line" >&2; return 1; }
	echo "$line"
}

# Every session of the client staged on its backup.
protected() {
	F -j session show | python3 -c '
import json, sys
s = [x for x in json.load(sys.stdin) if x["proto"] == "tcp"]
sys.exit(0 if len(s) >= int(sys.argv[1]) and all(x["protected"] for x in s) else 1)' "$1"
}

# ftvm.ko's commit counters of service kv, "NAME VALUE ..." (empty if
# there are none: not strict, or no such figures).
counters() {
	F -j service show kv 2>/dev/null | python3 -c '
import json, sys
j = json.load(sys.stdin)
if isinstance(j, list):
	j = j[0] if j else {}
c = j.get("commit_counters") or {}
print(" ".join("%s %s" % kv for kv in c.items()))' 2>/dev/null
}

# measure NAME: a fresh client, warmed up, then "run RUN_MS"; sets
# replies_NAME, gap_NAME (ms) and lost_NAME.  A client that failed is
# ended with its run.
measure() {
	measure_client "$@" && return 0
	exec 5>&- 6<&-
	[[ -n $client ]] && kill -9 "$client" 2>/dev/null && wait "$client" 2>/dev/null
	client=
	return 1
}
measure_client() {
	local name=$1 a replies gap lost
	rm -f "$TMP"/kv.in "$TMP"/kv.out
	mkfifo "$TMP/kv.in" "$TMP/kv.out" || return 1
	C "$EX/sessclient" kv $VIP 7000 "$NS" <"$TMP/kv.in" >"$TMP/kv.out" \
		2>"$TMP/$name.err" &
	client=$!
	exec 5>"$TMP/kv.in" 6<"$TMP/kv.out"
	answer >/dev/null || return 1
	echo lenient >&5 && answer >/dev/null || return 1
	echo "round 3" >&5 && answer >/dev/null || return 1
	if [[ -n $ftd_pid ]]; then
		wait_for 120 protected "$NS" ||
			{ echo "# $name: not every session was staged on its backup"; return 1; }
		[[ $name == strict ]] && c_before=$(counters)
	fi
	echo "run $RUN_MS" >&5
	a=$(answer) || return 1
	[[ $name == strict ]] && c_after=$(counters)
	echo quit >&5
	exec 5>&- 6<&-
	wait "$client" 2>/dev/null
	client=
	a=${a#ok run $RUN_MS }
	read -r _ replies _ lost _ gap _ <<<"$a"
	echo "# $name: $a; $((replies * 1000 / RUN_MS)) requests/s"
	printf -v "replies_$name" %s "$replies"
	printf -v "gap_$name" %s "$gap"
	printf -v "lost_$name" %s "$lost"
	((lost == 0)) || {
		echo "# warning: $name: $lost sessions lost"
		sed -n 's/.*lost: /#   /p' "$TMP/$name.err" | sort | uniq -c | head -3
	}
	[[ -n $replies && -n $gap ]] && ((replies > 0))
}

# ratio A B: A / B, two decimals.
ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }

bench_guest_slowdown

rc=0
c_before= c_after=
if ! topology; then
	echo "# the topology could not be built"
	exit 1
fi
echo "# $NS sessions, run $RUN_MS ms each; kvstore on vm1 and vm2"

measure off || { echo "# off run failed"; exit 1; }

if ! start_ftd; then
	echo "# ftd did not start:"
	tail -5 "$TMP/ftd.log" | sed 's/^/#   /'
	exit 1
fi
if measure strict; then
	echo "# strict counters before the run: ${c_before:-none}"
	echo "# strict counters after the run: ${c_after:-none}"
	python3 -c '
import sys
def kv(s):
	w = s.split()
	return {w[i]: int(w[i + 1]) for i in range(0, len(w) - 1, 2)}
b, a = kv(sys.argv[1]), kv(sys.argv[2])
if not a:
	print("# warning: no commit counters from ftctl -j service show kv")
else:
	d = {k: a[k] - b.get(k, 0) for k in a if k not in ("sessions", "held")}
	print("# strict counters, the run alone: " +
	      " ".join("%s %d" % kd for kd in sorted(d.items())))
	if a.get("commits", 0) <= 0:
		print("# warning: strict held nothing (commits 0)")' "$c_before" "$c_after"
	echo "BENCH strict_latency_ratio $(ratio "$gap_strict" "$gap_off")"
	python3 -c "import sys; print('BENCH strict_added_latency_us %d' % round((float(sys.argv[1]) - float(sys.argv[2])) * 1000))" \
		"$gap_strict" "$gap_off"
	echo "BENCH strict_throughput_ratio $(ratio "$replies_strict" "$replies_off")"
else
	echo "# strict run failed"
	tail -5 "$TMP/ftd.log" | sed 's/^/#   /'
	rc=1
fi

if F service set kv commit relaxed >/dev/null && measure relaxed; then
	echo "BENCH relaxed_latency_ratio $(ratio "$gap_relaxed" "$gap_off")"
	echo "BENCH relaxed_throughput_ratio $(ratio "$replies_relaxed" "$replies_off")"
else
	echo "# relaxed run failed"
	tail -5 "$TMP/ftd.log" | sed 's/^/#   /'
	rc=1
fi
exit $rc
