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
#           replicates (each must see a fresh state; nothing else moves);
#           then ftd forgets them, closed (forget-closed 1000, kept
#           through every failure below), and lists only live sessions
#   drain   not a failure: the busiest primary is drained ("ftctl vm
#           drain"), its sessions handed over, live, to their backups
#           with their state (ftd's handoff_vm()); then it is brought
#           back up.  Then the VM of a client connected but silent
#           (kvstore runs with TCP_DEFER_ACCEPT: a handshake under way)
#           is drained: the handoff waits for it.  Then ftd is killed
#           half-way through a drain's handoff and started again: it
#           finishes the handoff
#   A       the busiest primary's device is deleted; ftvm.ko's failure
#           report (tracepoint ftvm_vm_failed) flags it failed in ftd's
#           data plane, and a VM of another registry failing does not
#   kill    every process of a VM is SIGKILLed, its device left up
#           (silent-exit: ftvm.ko ends its connections without a packet
#           and fails the VM; only the staged state is left: the clients
#           idle first)
#   midway  ftd itself is SIGKILLed half-way through a failover's
#           switch (vm8 joins first; the VM's device is set down, not
#           deleted) and started again only once the backups' hold is
#           over (5 s): meanwhile the unswitched sessions' segments went
#           to the backups while those were armed, then to the device
#           gone down (a backup no longer armed resets what it has not
#           staged); the new ftd arms the backups again, finishes the
#           switch and takes the failed VM's last state itself
#   C       a primary dies, and while its sessions are being
#           re-protected, the VM receiving their new backups (vm7, joined
#           late with a large capacity, so primary of nothing) dies too
#   B       a backup dies before its primary: its sessions get new
#           backups; then their primary dies and they go on there
#
# (the topology: ftd-lib.sh)
# vm1..vm6 exist from the start; vm8 joins before ftd's kill, vm7 before
# failure C.
# Needs ftvm.ko (the qemu guest: selftests/vm-run.sh --tests state).
set -u
cd "$(dirname "$0")" || exit 1
. ../lib/ktap.sh

N=${FTVM_FTD_SESSIONS:-200}
NU=${FTVM_FTD_UDP:-60}
IVL=${FTVM_FTD_INTERVAL:-20}
RUN_MS=${FTVM_FTD_RUN_MS:-8000}
# kvstore accepts a connection once its first request is in (handshake).
KV_ARGS="defer-accept 30"

. ./ftd-lib.sh
[[ -d /sys/module/ftvm ]] || ktap_skip_all "ftvm.ko is not loaded (run in the guest: selftests/vm-run.sh --tests state)"
((EUID == 0)) || ktap_skip_all "needs root"

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
		# Closed sessions forgotten a second after they began: at
		# work through every failure below.
		echo "forget-closed 1000"
		for n in 1 2 3 4 5 6; do
			echo "vm vm$n id $n dev hv$n mac 02:00:00:00:0$n:01 domain d$n netns $P-vm$n silent-exit on"
		done
		echo "service kv $VIP:7000/tcp replication-interval $IVL"
		echo "service echo $VIP:7001/udp"
	} >"$CONF"
}

ktap_begin 25

start_all "six VMs, ftd with XDP steering and ftvm.ko" 1 2 3 4 5 6
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
	echo "${c##* }" >"$TMP/churned"
	protected
}
ktap_check "connections opened and closed at a high rate during replication" churn

# only_live: ftd lists no TCP session whose client connection is closed,
# and every established one.
only_live() {
	F -j session show >"$TMP/ol.s" &&
	C ss -Htn state established "dport = :7000" >"$TMP/ol.e" || return 1
	python3 -c '
import json, sys
est = {l.split()[2].rsplit(":", 1)[1] for l in open(sys.argv[2]) if l.strip()}
tcp = {x["client"].rsplit(":", 1)[1] for x in json.load(open(sys.argv[1]))
       if x["proto"] == "tcp"}
if len(sys.argv) > 3:
	print("%d listed not established, %d established not listed" %
	      (len(tcp - est), len(est - tcp)))
sys.exit(0 if tcp == est else 1)' "$TMP/ol.s" "$TMP/ol.e" "$@"
}
forgotten_count() {
	F -j status | python3 -c 'import json, sys; print(json.load(sys.stdin)["closed_forgotten"])'
}
# forgotten: the churn's connections, closed, leave ftd's table and the
# sessions map (forget-closed, Documentation/replication.rst "Closed
# sessions"); nothing of them is left in their VMs.  The live ones stay.
forgotten() {
	local n
	alive || return 1
	wait_for 60 only_live || { only_live -v; return 1; }
	n=$(forgotten_count) && (($(cat "$TMP/churned") <= n)) ||
		{ echo "$n forgotten, after $(cat "$TMP/churned") churned connections"; return 1; }
	ktap_diag "$n closed sessions forgotten"
	ask kv "round 1" && protected
}
ktap_check "the churn's closed sessions are forgotten, the live ones kept" forgotten

ktap_check "a VM drained while its clients talk: its sessions go on on their backups" drain
ktap_diag "drain: $(cat "$TMP/figures")"
ktap_diag "$(grep -E "handoff|draining: " "$TMP/ftd.log" | tail -16)"

# A client connected but silent, so its VM's kvstore has not accepted it
# yet (a handshake under way there: TCP_DEFER_ACCEPT), when the VM is
# drained.  The handoff waits for it: the client's first request, a
# second after the drain began (long after the handoff's 100 ms grace),
# is answered there; then the session is handed over with the others,
# and its second request is answered by the backup, on the same
# connection, from its state.
SILENT_KV='
import socket, sys
c = socket.create_connection((sys.argv[1], 7000))
print(c.getsockname()[1], flush=True)
f = c.makefile("rb")
for n in (5, 7):
    sys.stdin.readline()
    c.sendall(b"ADD %d\n" % n)
    print(f.readline().decode().strip(), flush=True)
'
# silent_session VM PORT: the silent client's two requests, around the
# handoff of VM, draining.
silent_session() {
	local vm=$1 port=$2 line
	read -r -t 1 <> <(:)
	echo >&"${SK[1]}"
	read -r -t 10 line <&"${SK[0]}"
	[[ $line == "1 5 "* ]] || { echo "first request: '$line'"; return 1; }
	moved() { sq 'any(x["client"].endswith(":'"$port"'") and x["primary"] != "'"$vm"'" for x in tcp)'; }
	wait_for 30 moved || { echo "client port $port still on $vm"; return 1; }
	echo >&"${SK[1]}"
	read -r -t 10 line <&"${SK[0]}"
	[[ $line == "2 12 "* ]] || { echo "second request: '$line'"; return 1; }
	grep -q "vm $vm draining: its handoff waits for 1 connection in their handshake" "$TMP/ftd.log" ||
		{ echo "ftd did not wait"; grep "draining" "$TMP/ftd.log" | tail -3; return 1; }
}
drain_handshake() {
	local port vm= n rc
	alive || return 1
	coproc SK { exec ip netns exec "$CLI" python3 -c "$SILENT_KV" $VIP 2>&1; }
	read -r -t 30 port <&"${SK[0]}" || { echo "silent client: $port"; return 1; }
	for n in 1 2 3 4 5 6; do
		V $n ss -Htn state syn-recv "dport = :$port" | grep -q . && vm=vm$n
	done
	[[ $vm ]] || { echo "no VM holds client port $port in its handshake"; return 1; }
	F vm drain "$vm" || return 1
	silent_session "$vm" "$port"
	rc=$?
	# Either way: the client gone (bash unsets SK_PID once it has exited),
	# the VM back, every session protected.
	[[ -n ${SK_PID:-} ]] && kill "$SK_PID" 2>/dev/null
	F vm set "$vm" state up && protected && return $rc
}
ktap_check "a VM drained with a connection in its handshake there: the handoff waits, the session goes on" \
	drain_handshake

# ftd killed half-way through a drain's handoff (its test hook, right
# after the handoff's first placement write: one placement of the VM
# switched to its backup, its sessions staged there but not live, the
# others not switched), then started again at once.  The new ftd finds
# the VM draining (the steering map's flag), makes the switched sessions
# live on their backup from the VM's own sockets (handoff_resume()),
# hands the others over, and every session goes on, on its connection,
# from its state.
drain_killed() {
	local vm had before left kept rc
	alive || return 1
	stop_ftd || { echo "ftd did not stop"; return 1; }
	start_ftd FTD_FAULT_SWITCH_AFTER=1 && protected || return 1
	vm=$(busiest) && had=$(tcp_on "$vm") || return 1
	before=$(resumed)
	run_start
	read -r -t 1 <> <(:)
	if ! F vm drain "$vm" || ! wait_for 30 ftd_gone; then
		run_end
		echo "ftd did not die in the handoff"
		return 1
	fi
	wait "$ftd_pid"
	rc=$?
	if ((rc != 128 + 9)) || ! start_ftd; then
		run_end
		echo "ftd exited $rc, not killed by its hook, or did not start again"
		return 1
	fi
	run_end || { cat "$TMP/figures"; tail -8 "$TMP/ftd.log"; return 1; }
	ktap_diag "$vm drained as primary of $had TCP sessions, ftd $(grep -o 'killed after .*' "$TMP/ftd.log" | tail -1); $(cat "$TMP/figures")"
	grep -q "vm $vm draining: a killed ftd's handoff finished" "$TMP/ftd.log" ||
		{ echo "the new ftd did not finish the handoff"; tail -8 "$TMP/ftd.log"; return 1; }
	left=$(tcp_on "$vm") || return 1
	kept=$(V "${vm#vm}" ss -Htn state established "sport = :7000" | wc -l)
	((left == 0 && kept == 0)) || { echo "$left sessions left on $vm, $kept connections kept"; return 1; }
	(($(resumed) - before >= had)) || { echo "resumed $(($(resumed) - before)) of $had"; return 1; }
	F vm set "$vm" state up && protected
}
ktap_check "ftd killed half-way through a drain's handoff, started again: the drain goes on, every session goes on" \
	drain_killed

# The data plane's counters (ftctl stats -j), as "KEY=VALUE" words:
# global ones by name, a VM's as vmN_NAME.
dp_stats() {
	H env FTVM_PIN_DIR="$PIN" "$FTCTL" -j stats | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join("%s=%s" % kv for kv in d["global"].items()))
print(" ".join("vm%d_%s=%s" % (v["vm"], k, x) for v in d["vms"] for k, x in v.items()))'
}
declare -A st0
stats_mark() {
	local kv
	for kv in $(dp_stats); do st0[${kv%%=*}]=${kv#*=}; done
}

# The VMs ftvm_on_vm_failed has flagged failed (ftctl target list).
flagged() {
	H env FTVM_PIN_DIR="$PIN" "$FTCTL" -j target list | python3 -c 'import json, sys
print(" ".join("vm%d" % v["vm"] for v in json.load(sys.stdin) if v["failed"]))'
}

# steered_early VM: ftvm.ko's tracepoint (ftvm_vm_failed) flagged VM
# failed as its device started going down, before ftd switched
# (ftvm_on_vm_failed, attached by ftd for its own registry), and no VM
# but those in $FAILED is flagged.  The frames sent meanwhile (to the
# backups, or lost into the device going down) are told, not judged: a
# deleted veth stops taking frames a moment before it starts going down.
steered_early() {
	local vm=$1 f kv tb re
	local -A st1
	for kv in $(dp_stats); do st1[${kv%%=*}]=${kv#*=}; done
	tb=$((st1[to_backup] - st0[to_backup]))
	re=$((st1[${vm}_redirect_err] - st0[${vm}_redirect_err]))
	ktap_diag "while $vm failed: $tb frames to the backups, $re redirect errors"
	f=$(flagged) || return 1
	[[ " $f " == *" $vm "* ]] || { echo "flagged failed: '$f', not $vm"; return 1; }
	for kv in $f; do
		[[ " $FAILED " == *" $kv "* ]] ||
			{ echo "$kv flagged failed, but only $FAILED failed"; return 1; }
	done
}

# A: the busiest primary's device goes while every client sends.
A=$(busiest)
FAILED=$A
stats_mark
ktap_check "$A's device deleted while the clients send: every session goes on, no byte lost or duplicated" \
	fail_during_run "$A"
ktap_check "afterwards every session has a new backup with its state staged" protected
ktap_check "ftvm.ko's failure report flags $A failed in ftd's data plane, and nothing else" steered_early "$A"

# The tracepoint fires for every registry of the host; ftd's program
# counts its own only.  A VM of another registry (this test's root
# namespace), with the id of one of ftd's live VMs, fails: nothing here
# is flagged.
other_registry() {
	local f rc=0 id
	id=$(F -j vm list | python3 -c 'import json, sys
print([v["id"] for v in json.load(sys.stdin) if v["state"] == "up"][0])')
	ip link add "$P-x" type veth peer name "$P-xp" || return 1
	ip link set "$P-x" up && ip link set "$P-xp" up &&
		FTD_SOCKET=$TMP/no-ftd.sock "$FTCTL" vm add "$P-x" id "$id" dev "$P-x" &&
		FTD_SOCKET=$TMP/no-ftd.sock "$FTCTL" vm fail "$P-x" || rc=1
	f=$(flagged) || rc=1
	FTD_SOCKET=$TMP/no-ftd.sock "$FTCTL" vm del "$P-x"
	ip link del "$P-x"
	((rc == 0)) || return 1
	[[ $f == "$A" ]] || { echo "flagged failed: '$f', want only $A (vm$id failed in another registry)"; return 1; }
}
ktap_check "another registry's failure flags nothing in ftd's data plane" other_registry

# direct ARGS: ftctl talking to ftvm.ko itself (no ftd: it may be down).
direct() { FTD_SOCKET=$TMP/no-ftd.sock F "$@"; }
# up_vms VIA: the VMs up, by name, as VIA (F: through ftd; direct:
# ftvm.ko's registry) lists them.
up_vms() {
	"$1" -j vm list | python3 -c 'import json, sys
print(" ".join(v["name"] for v in json.load(sys.stdin) if v["state"] == "up"))'
}

# What ftvm.ko counts of each live VM's ingress hold, "ftctl vm show"
# tells through ftd as it does talking to the kernel directly; the
# counters are still after the failover (armed_ms counts down: only
# there in both).
hold_relayed() {
	local vm via_ftd kern n=0
	for vm in $(up_vms F); do
		via_ftd=$(F -j vm show "$vm") &&
		kern=$(direct -j vm show "$vm") || return 1
		python3 - "$via_ftd" "$kern" <<-'PY' || { echo "$vm: ftd says $via_ftd, ftvm.ko $kern"; return 1; }
		import json, sys
		f, k = (json.loads(a)[0]["hold"] for a in sys.argv[1:])
		keys = ("queued", "held", "released", "expired", "overflow", "dev_gone")
		sys.exit(not ("armed_ms" in f and "armed_ms" in k and
			      all(f[x] == k[x] for x in keys)))
		PY
		[[ $(F vm show "$vm") == *$'\n    hold: '*", queued "*", device gone "* ]] ||
			{ echo "$vm: no hold line in: $(F vm show "$vm")"; return 1; }
		n=$((n + 1))
	done
	((n >= 2)) || { echo "only $n live VMs"; return 1; }
	ktap_diag "$n live VMs' holds, through ftd as from ftvm.ko"
}
ktap_check "ftctl vm show through ftd tells each VM's ingress hold as ftvm.ko counts it" hold_relayed

# Every process of a VM SIGKILLed, its device left up (vm_sigkill): with
# silent-exit its connections end without a packet, its namespace falls
# silent and ftvm.ko fails it (reason "killed"); only the staged state is
# left.  In relaxed mode that state must be current: the clients idle
# until every session has been replicated since their last reply
# (strict.sh kills one while they send).
sigkill_all() {
	local vm n before had t0
	alive || return 1
	vm=$(busiest) && n=${vm#vm}
	had=$(tcp_on "$vm") before=$(resumed)
	ask kv "round 1" && ask udp "round 1" || return 1
	t0=$(date +%s%N)
	fresh() { sq 'all(x["replicated_ms_ago"] is not None and (x["replicated_ms_ago"] + 5) * 1000000 < '"$(date +%s%N)"' - '"$t0"' for x in tcp)'; }
	wait_for 60 fresh || { echo "not replicated since"; return 1; }
	vm_sigkill $n || return 1
	killed() { F -j vm show "$vm" | grep -q '"reason":"killed"'; }
	wait_for 10 killed || { F vm show "$vm"; return 1; }
	ask kv "round 5" || { tail -5 "$TMP/ftd.log"; return 1; }
	ask udp "round 2" || return 1
	(($(resumed) - before >= had)) || { echo "resumed $(($(resumed) - before)) of $had"; return 1; }
	ktap_diag "$vm killed: $had TCP sessions resumed from their staged state"
}
ktap_check "a VM's processes all SIGKILLed (device left up, silent-exit): every session goes on" sigkill_all
ktap_check "afterwards every session has a new backup with its state staged" protected

# ftd killed half-way through a failover (its test hook, right after
# the first placement write: some of the VM's placements switched, the
# others not, no session made live on its backup yet), then started
# again: the new ftd finishes the switch and takes the failed VM's last
# state itself, although it never replicated it (failover_resume(),
# Documentation/ftd.rst).  The clients' segments wait on the backups
# (the ingress hold) while the failure keeps them armed; ftd is started
# only after that (an ftd slow to come back), when the failed VM's
# unswitched sessions go to its device gone down instead (lost, sent
# again), not to backups that would reset those they have not staged
# (the switched ones wait there: ftvm.ko holds what a VM has staged).
# The new ftd arms the backups again (FTVM_A_VM_RESUME) before it
# switches and activates.
# vm8 joins first, to have VMs enough.
joined8() {
	vm_start 8 || return 1
	F vm add vm8 id 8 dev hv8 mac 02:00:00:00:08:01 domain d8 netns $P-vm8 silent-exit on
}
ktap_check "vm8 joins" joined8

# armed_ms of the ingress hold of each VM in $UP, one per line; without
# python, to read them all well within the 5 s of an arming.
up_armed_ms() {
	local vm j
	for vm in $UP; do
		j=$(direct -j vm show "$vm") && j=$(grep -o '"armed_ms":[0-9]*' <<<"$j") || return 1
		echo "${j#*:}"
	done
}
holds_over() { local a; a=$(up_armed_ms) && [[ -n $a ]] && ! grep -qvx 0 <<<"$a"; }
holds_armed() { local a; a=$(up_armed_ms) && [[ -n $a ]] && ! grep -qx 0 <<<"$a"; }
# flag_of VM: "FAILED to_backups_ms" of VM in ftd's data plane; without
# python too, to read it well within the 5 s of an arming ("ftctl target
# list": "N dev ... failed (to backups MS ms)", or "failed").
flag_of() {
	local line
	line=$(H env FTVM_PIN_DIR="$PIN" "$FTCTL" target list |
	       awk -v n="${1#vm}" '$1 == n') && [[ -n $line ]] || return 1
	if [[ $line =~ \ failed\ \(to\ backups\ ([0-9]+)\ ms\) ]]; then
		echo "1 ${BASH_REMATCH[1]}"
	elif [[ $line == *" failed" ]]; then
		echo "1 0"
	else
		echo "0 0"
	fi
}
ftd_dies_and_restarts_late() {
	local rc f t0 UP
	t0=$(date +%s%N)
	wait_for 30 ftd_gone || { echo "ftd did not die in the failover"; return 1; }
	wait "$ftd_pid"
	rc=$?
	((rc == 128 + 9)) || { echo "ftd exited $rc, not killed by its hook"; tail -3 "$TMP/ftd.log"; return 1; }
	mid_gone_ms=$((($(date +%s%N) - t0) / 1000000))
	UP=$(up_vms direct) && [[ -n $UP ]] || { echo "no VM up"; return 1; }
	# No ftd: the hold the failure armed runs out, and with it the flag.
	wait_for 15 holds_over || { echo "the backups still hold: $(up_armed_ms | xargs)"; return 1; }
	f=$(flag_of "$vm") || return 1
	[[ $f == "1 0" ]] || { echo "$vm once the hold is over: '$f', want failed, to the backups no more"; return 1; }
	mid_late_ms=$((($(date +%s%N) - t0) / 1000000))
	start_ftd || { tail -5 "$TMP/ftd.log"; return 1; }
	# Flagged anew and armed again (FTVM_A_VM_RESUME), then finished.
	f=$(flag_of "$vm") || return 1
	[[ $f == "1 "* && ${f#* } -gt 0 ]] ||
		{ echo "$vm after the resume: '$f', want failed, to the backups again"; return 1; }
	holds_armed || { echo "the backups were not armed again: $(up_armed_ms | xargs)"; return 1; }
	grep -q "failover: .* sessions of vm $vm live on" "$TMP/ftd.log" ||
		{ echo "the new ftd made none of $vm's sessions live"; return 1; }
}
midswitch() {
	local vm kv mid_gone_ms=? mid_late_ms=?
	local -A st1
	alive || return 1
	stop_ftd || { echo "ftd did not stop"; return 1; }
	start_ftd FTD_FAULT_SWITCH_AFTER=1 || return 1
	# The new ftd has replicated every session before the failure.
	protected || return 1
	vm=$(busiest)
	stats_mark
	fail_during_run -d "$vm" ftd_dies_and_restarts_late || return 1
	for kv in $(dp_stats); do st1[${kv%%=*}]=${kv#*=}; done
	# Told after the check (a passing check's output is not shown).
	echo "ftd $(grep -o 'killed after .*' "$TMP/ftd.log" | tail -1), gone $mid_gone_ms ms after, started again at $mid_late_ms ms; meanwhile $((st1[to_backup] - st0[to_backup])) frames to the backups, $((st1[${vm}_redirect_err] - st0[${vm}_redirect_err])) into its device gone down" \
		>"$TMP/midswitch.diag"
}
ktap_check "ftd killed half-way through a failover's switch (the VM's device set down), started again after the backups' hold: every session goes on" midswitch
[[ -s $TMP/midswitch.diag ]] && ktap_diag "$(cat "$TMP/midswitch.diag")"
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

ktap_check "clients end cleanly" ended
ktap_diag "$(grep -E "failover|activated" "$TMP/ftd.log" | tail -8)"
ktap_end
