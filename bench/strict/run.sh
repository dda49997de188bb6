#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# What strict output commit costs (kmod/commit.c): a request/response
# workload on kvstore (libftvm) run four times over one topology, in
# the qemu guest with ftvm.ko: ftvm off (no ftd, no XDP: the host routes
# the VIP to vm1), then ftd with the service "commit strict" at
# replication-interval 1, then the same service "commit relaxed" at
# replication-interval 1000 (steered: the data path ftd sets up, with
# next to no replication), then relaxed at 1 again.  Each
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
#   BENCH steered_latency_ratio R      steered over off: what the data
#                                      path costs here (XDP on the client's
#                                      veth, redirected into the VM's)
#   BENCH strict_over_steered_latency_ratio R     strict over steered: what
#   BENCH strict_over_steered_throughput_ratio R  output commit itself costs
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

P=ftvm-bst-$$ TOPO_WAIT=30
# shellcheck source=../../selftests/lib/ftd-topo.sh
. "$TOP/selftests/lib/ftd-topo.sh"
client=
trap '' PIPE		# a client that died must not end the benchmark

teardown() {
	exec 5>&- 6<&-
	topo_down
	rm -rf "$TMP"
}
trap teardown EXIT

# The host, the client, two VMs with kvstore; the VIP routed to vm1.
topology() {
	setup 1 2 || return 1
	{
		echo "control $FTD_SOCKET"
		echo "pin-dir $PIN"
		echo "attach hc"
		echo "reprotect-rate 0"
		echo "service kv $VIP:7000/tcp replication-interval 1 commit strict"
		echo "vm vm1 id 1 dev hv1 mac 02:00:00:00:01:01 domain d1 netns $P-vm1"
		echo "vm vm2 id 2 dev hv2 mac 02:00:00:00:02:01 domain d2 netns $P-vm2"
	} >"$CONF"
	H ip route add $VIP/32 via 198.18.1.1
}

# ftd in place of the route.
start_ftd_strict() {
	H ip route del $VIP/32 via 198.18.1.1 2>/dev/null
	start_ftd
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

# run_failed NAME: say so, with the end of ftd's log; the benchmark fails.
run_failed() {
	echo "# $1 run failed"
	tail -5 "$TMP/ftd.log" | sed 's/^/#   /'
	rc=1
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

if ! start_ftd_strict; then
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
	run_failed strict
fi

if F service set kv commit relaxed replication-interval 1000 >/dev/null &&
   measure steered; then
	echo "BENCH steered_latency_ratio $(ratio "$gap_steered" "$gap_off")"
	if [[ -n ${gap_strict:-} ]]; then
		echo "BENCH strict_over_steered_latency_ratio $(ratio "$gap_strict" "$gap_steered")"
		echo "BENCH strict_over_steered_throughput_ratio $(ratio "$replies_strict" "$replies_steered")"
	fi
else
	run_failed steered
fi

if F service set kv commit relaxed replication-interval 1 >/dev/null &&
   measure relaxed; then
	echo "BENCH relaxed_latency_ratio $(ratio "$gap_relaxed" "$gap_off")"
	echo "BENCH relaxed_throughput_ratio $(ratio "$replies_relaxed" "$replies_off")"
else
	run_failed relaxed
fi
exit $rc
