#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Strict output commit, end to end (Documentation/replication.rst): the
# kvstore service is strict, so ftvm.ko lets what a primary sends for a
# session leave the host only once a record of the session covering it
# is staged on its backup, committing on demand.  ftd replicates only
# once a second here, so what protects the sessions between its rounds
# is the commits alone.
#
# The proof is a VM killed while every client sends without pause
# ("sessclient run": one request outstanding per session): its output
# cut, its processes SIGKILLed, its device deleted, so that nothing of
# the sessions is left but what is staged on their backups.  In relaxed
# mode such a kill loses the sessions that moved since their last
# replication (the clients saw replies the backup never knew of); in
# strict mode every session goes on, on the same connection, its bytes
# (running checksums both ways) and its application state (kvstore's
# count and sum of requests, the libftvm blob) intact.  Before that, a
# VM is drained while the clients send: its sessions are handed over to
# their backups, live, and go on the same way.  Then a VM whose
# processes alone are SIGKILLed, its device and output left as they are:
# the VMs run with "silent-exit on", so ftvm.ko ends their connections
# without a packet and fails the VM (reason "killed"), and the sessions
# go on the same way.  Then a device deleted the ordinary way, and the
# service switched to relaxed while the clients send: nothing held may
# be lost by the switch.
#
# Topology: ftd-lib.sh, VMs vm1..vm5.  Needs ftvm.ko (the qemu guest:
# selftests/vm-run.sh --tests state/strict.sh).
set -u
cd "$(dirname "$0")" || exit 1
. ../lib/ktap.sh

N=${FTVM_STRICT_SESSIONS:-100}
NU=${FTVM_STRICT_UDP:-20}
RUN_MS=${FTVM_STRICT_RUN_MS:-6000}

. ./ftd-lib.sh
[[ -d /sys/module/ftvm ]] || ktap_skip_all "ftvm.ko is not loaded (run it in the guest: see the header)"
((EUID == 0)) || ktap_skip_all "needs root"

write_conf() {
	local n
	{
		echo "control $FTD_SOCKET"
		echo "pin-dir $PIN"
		echo "attach hc"
		for n in 1 2 3 4 5; do
			echo "vm vm$n id $n dev hv$n mac 02:00:00:00:0$n:01 domain d$n netns $P-vm$n silent-exit on"
		done
		echo "service kv $VIP:7000/tcp replication-interval 1000 commit strict ckpt-wait 2000"
		echo "service echo $VIP:7001/udp"
	} >"$CONF"
}

# commit KEY: the kernel's counter KEY for the kv service, as ftctl
# reports it (service show kv -j), or "none" when the service is not strict
# in the kernel.
commit() {
	F -j service show kv >"$TMP/svc.json" || return 1
	python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
s = s[0] if isinstance(s, list) else s
k = s.get("commit_counters")
print(k[sys.argv[2]] if k else "none")' "$TMP/svc.json" "$1"
}

ktap_begin 13

start_all "five VMs, ftd with XDP steering, kv strict in ftvm.ko" 1 2 3 4 5
ktap_check "$N TCP (kvstore) and $NU UDP sessions talk" opened
ktap_check "every TCP session's state is staged on its backup" protected

# The hold at work: every reply waited for a commit, none was dropped.
committed() {
	local c0 c1 rel held drop
	c0=$(commit commits) || return 1
	run_start
	run_end || { cat "$TMP/figures"; return 1; }
	c1=$(commit commits) rel=$(commit released) held=$(commit held)
	drop=$(commit dropped)
	ktap_diag "commits $c0 -> $c1, released $rel, held now $held, dropped $drop; $(cat "$TMP/figures")"
	[[ $c1 != none ]] || { echo "kv is not strict in the kernel"; return 1; }
	# One request outstanding per session: about one commit per reply.
	((c1 - c0 >= N && rel > 0 && drop == 0))
}
ktap_check "strict: the primaries' output is held and committed on demand" committed

# When each backup was last brought up to date: ftd stages a strict
# session once and dumps once a second, so it is ftvm.ko's commits that
# say it, through session show (committed_ms_ago, and replicated_ms_ago
# the later of the two).  Idle sessions' commits grow old; one round of
# requests brings each of the kv client's up to date again.
up_to_date() {
	local t0 el
	idle() { sq 'len(tcp) >= '$N' and all(x.get("committed_ms_ago", 0) >= 1500 for x in tcp)'; }
	wait_for 30 idle || { sq -p '[x for x in tcp if x.get("committed_ms_ago", 0) < 1500][:3]'; return 1; }
	t0=$(date +%s%N)
	ask kv "round 1" || return 1
	sq -p '[(x.get("committed_ms_ago"), x["replicated_ms_ago"]) for x in tcp]' >"$TMP/utd" || return 1
	# No figure of that answer is older than the round.  The kv client's
	# N sessions must be that fresh; the churn client's idle ones did not
	# take part in the round.
	el=$((($(date +%s%N) - t0) / 1000000))
	python3 - "$TMP/utd" "$el" "$N" <<-'PY' || return 1
	import ast, sys
	v = ast.literal_eval(open(sys.argv[1]).read())
	el, n = int(sys.argv[2]), int(sys.argv[3])
	missing = [x for x in v if x[0] is None or x[1] > x[0]]
	fresh = sum(x[0] <= el for x in v if x[0] is not None)
	if missing:
	    print("sessions without a commit time, or replicated later than it: %s" % missing[:3])
	elif fresh < n:
	    print("%d of %d sessions committed in the last %d ms" % (fresh, n, el))
	sys.exit(1 if missing or fresh < n else 0)
	PY
	ktap_diag "the $N sessions' backups brought up to date by a commit within the last $el ms"
}
ktap_check "session show: each strict session's backup was brought up to date by the round just made" up_to_date

# A drain (ftd-lib.sh): strict sessions handed over live, their held
# output let go once covered on the backup taking them.
ktap_check "a VM drained while its clients send: its strict sessions go on on their backups" drain
ktap_diag "drain: $(cat "$TMP/figures")"
ktap_diag "$(grep -E "handoff: vm|handoff: [0-9]+ sessions activated|draining: " "$TMP/ftd.log" | tail -4)"

K=$(busiest)
ktap_check "$K killed (output cut, processes SIGKILLed, device gone) while the clients send: every session goes on" \
	fail_during_run -k "$K"
ktap_check "afterwards every session has a new backup with its state staged" protected

# The processes alone: the device stays up, nothing cuts the output.
S=$(busiest)
killed() {
	fail_during_run -s "$S" || return 1
	F -j vm show "$S" | grep -q '"reason":"killed"' || { F vm show "$S"; return 1; }
}
ktap_check "$S's processes SIGKILLed (device and output left, silent-exit on) while the clients send: every session goes on" \
	killed
ktap_check "afterwards every session has a new backup with its state staged" protected

D=$(busiest)
ktap_check "$D's device deleted while the clients send: every session goes on" \
	fail_during_run "$D"

# Back to relaxed while the clients send: what is held is let go.
relaxed() {
	local k u
	alive || return 1
	run_start
	read -r -t 1 <> <(:)
	F service set kv commit relaxed || return 1
	run_end || { cat "$TMP/figures"; return 1; }
	k=$(commit commits)
	ktap_diag "$(cat "$TMP/figures")"
	[[ $k == none ]] || { echo "kv still strict in the kernel: $k"; return 1; }
	ask kv "round 2"
}
ktap_check "switched to relaxed while the clients send: nothing lost, nothing left held" relaxed

ktap_check "clients end cleanly" ended
ktap_diag "$(grep -E "failover|activated" "$TMP/ftd.log" | tail -6)"
ktap_end
