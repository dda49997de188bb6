# SPDX-License-Identifier: GPL-2.0
#
# The ftd tests with state (ftd-failover.sh, strict.sh), in the
# topology of selftests/lib/ftd-topo.sh: sessclient clients in the
# client namespace (kv, udp and churn), driven line by line, and queries
# of ftd's view.
#
# The test sets, before sourcing: N and NU (TCP and UDP sessions),
# RUN_MS (length of a "run"), and writes its own ftd.conf ($CONF, with
# write_conf) between setup and start_ftd.
# shellcheck source=../lib/ftd-topo.sh
. "${BASH_SOURCE[0]%/*}/../lib/ftd-topo.sh"

cleanup() {
	topo_down
	# ftd-failover.sh's device for a VM of another registry, if left.
	ip link del "$P-x" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

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
# start_all DESC VM... [-- VAR=VALUE...]: the topology with those VMs,
# ftd's configuration (the test's write_conf), ftd (with those in its
# environment) and the clients: "ok DESC", or "not ok DESC" and the
# test ends.  In the test's own shell (start_clients).
start_all() {
	local desc=$1 vms=()
	shift
	while (($#)) && [[ $1 != -- ]]; do vms+=("$1"); shift; done
	(($#)) && shift
	if ! setup "${vms[@]}" || ! write_conf || ! start_ftd "$@" ||
	   ! start_clients; then
		ktap_fail "$desc"
		ktap_diag "$(tail -20 "$TMP/ftd.log" 2>/dev/null)"
		ktap_end
	fi
	ktap_ok "$desc"
}
# opened: each client connected its sessions, which answer a few rounds.
opened() {
	answer kv && answer udp && answer churn || return 1
	ask kv "round 3" && ask udp "round 2"
}
# ended: a last round each, then every client quits and is gone.
ended() {
	ask kv "round 2" && ask udp "round 2" || return 1
	tell kv quit && tell udp quit && tell churn quit
	wait_for 30 sh -c "! ip netns pids $CLI | grep -q ."
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
# for forget-closed at least, with no state to replicate), tcp = the TCP ones of s, live = the
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

# drain: the busiest primary is drained ("ftctl vm drain") while both
# clients send: its sessions move on purpose, each goes on, on its
# connection, from its state (kvstore resumes from its blob), none is
# left on it, nor any established connection of the kv service (retired
# by ftd's handoff).  Then the VM is brought back up and every session
# must be protected again.  The run's figures stay in $TMP/figures.
drain() {
	local vm had before left kept
	alive || return 1
	vm=$(busiest) && had=$(tcp_on "$vm") || return 1
	# (grep -c fails when it counts none: nothing has resumed yet)
	before=$(resumed)
	run_start
	read -r -t 1 <> <(:)
	if ! F vm drain "$vm"; then
		run_end
		return 1
	fi
	run_end || { cat "$TMP/figures"; tail -5 "$TMP/ftd.log"; return 1; }
	left=$(tcp_on "$vm") || return 1
	# Their connections there ended without a packet (session-retire).
	kept=$(V "${vm#vm}" ss -Htn state established "sport = :7000" | wc -l)
	ktap_diag "$vm drained as primary of $had TCP sessions ($left left, $kept connections kept there); $(cat "$TMP/figures")"
	ktap_diag "$(grep -E "handoff|handed" "$TMP/ftd.log" | tail -8)"
	((left == 0 && kept == 0)) || return 1
	(($(resumed) - before >= had)) || { echo "resumed $(($(resumed) - before)) of $had"; return 1; }
	F vm set "$vm" state up && protected
}
# fail_during_run [-k|-s|-d] VM [then CMD...]: delete VM's device (-k:
# kill the VM, vm_kill; -s: SIGKILL its processes only, vm_sigkill; -d:
# set its device down, nothing else) while both clients send, then
# (optionally) run CMD; both clients must lose nothing.
fail_during_run() {
	local kill=0 vm n had before
	[[ $1 == -k ]] && { kill=1; shift; }
	[[ $1 == -s ]] && { kill=2; shift; }
	[[ $1 == -d ]] && { kill=3; shift; }
	vm=$1 n=${1#vm}
	shift
	alive || return 1
	had=$(tcp_on "$vm") before=$(resumed)
	run_start
	# Strike inside the run (it lasts RUN_MS): its replies flow by then.
	read -r -t 1 <> <(:)
	if ((kill == 1)); then
		vm_kill $n || return 1
	elif ((kill == 2)); then
		vm_sigkill $n || return 1
	elif ((kill == 3)); then
		H ip link set hv$n down || return 1
	else
		H ip link del hv$n || return 1
	fi
	# A failed CMD still ends the run: the clients' answers to it must
	# not be left for the next check to read.
	if (($#)) && ! "$@"; then
		run_end
		return 1
	fi
	run_end || { cat "$TMP/figures"; tail -5 "$TMP/ftd.log"; return 1; }
	ktap_diag "$vm died as primary of $had TCP sessions; $(cat "$TMP/figures")"
	# Each of them was picked up by a kvstore on a backup (libftvm blob).
	(($(resumed) - before >= had)) || { echo "resumed $(($(resumed) - before)) of $had"; return 1; }
}

