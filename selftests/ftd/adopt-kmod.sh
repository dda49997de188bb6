#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# ftd adopts the VMs it finds in ftvm.ko's registry at its start, those
# registered there by hand (ftctl without ftd): their name, device, state
# and silent-exit setting, as the module has them.  In the guest only
# (ftvm.ko).
#
#   host H (VM registry, ftd)  va ----- eth0  VM A (alpha, silent-exit on)
#                              vb ----- eth0  VM B (beta)
cd "$(dirname "$0")" || exit 1
. ../lib/ktap.sh
. ../lib/wait.sh
[[ -d /sys/module/ftvm ]] || ktap_skip_all "ftvm.ko is not loaded (run in the guest: selftests/vm-run.sh --tests ftd/adopt-kmod.sh)"
TOP=$(cd ../.. && pwd)
P=ftvm-adopt-$$
HOST=$P-host VMA=$P-a VMB=$P-b
TMP=$(mktemp -d "/tmp/$P.XXXXXX")
PIN=/sys/fs/bpf/$P
export FTD_SOCKET=$TMP/ftd.sock
ftd_pid=

cleanup() {
	if [[ -n $ftd_pid ]]; then
		kill "$ftd_pid" 2>/dev/null
		wait "$ftd_pid" 2>/dev/null
	fi
	for n in $HOST $VMA $VMB; do ip netns del "$n" 2>/dev/null; done
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT

# nsenter, not "ip netns exec": that remounts /sys and hides bpffs.
H() { nsenter --net=/run/netns/$HOST "$@"; }
F() { H timeout 30 "$TOP/user/ftctl/ftctl" "$@"; }
# ftctl asking ftvm.ko itself, ftd running or not.
K() { FTD_SOCKET=$TMP/no-ftd.sock F "$@"; }

# The VM's field KEY from "ftctl -j vm show" (FTCTL: F or K).
field() {
	"$1" -j vm show "$2" | python3 -c 'import json, sys
print(json.dumps(json.load(sys.stdin)[0].get(sys.argv[1])))' "$3"
}

ktap_begin 4
for n in $HOST $VMA $VMB; do ip netns add "$n"; done
ip link add va netns $HOST type veth peer eth0 netns $VMA
ip link add vb netns $HOST type veth peer eth0 netns $VMB
for d in va vb; do ip -n $HOST link set $d up; done
for n in $VMA $VMB; do ip -n "$n" link set eth0 up; done
# Before ftd: straight into the module's registry.
if K vm add alpha id 5 dev va netns $VMA silent-exit on &&
   K vm add beta id 6 dev vb netns $VMB; then
	ktap_ok "two VMs registered in ftvm.ko by hand, one with silent-exit"
else
	ktap_fail "two VMs registered in ftvm.ko by hand, one with silent-exit"
fi

: >"$TMP/ftd.conf"
# Not through H: $! must be ftd itself (nsenter execs it), for the
# cleanup to stop it.
nsenter --net=/run/netns/$HOST "$TOP/user/ftd/ftd" -f "$TMP/ftd.conf" \
	-s "$FTD_SOCKET" -P "$PIN" >/dev/null 2>>"$TMP/ftd.log" &
ftd_pid=$!

adopted() {
	local out
	wait_for 20 F status || { echo "ftd did not start:"; cat "$TMP/ftd.log"; return 1; }
	out=$(F -j vm list | python3 -c 'import json, sys
print(" ".join("%s:%s:%s:%s" % (v["name"], v["id"], v["dev"], v["state"])
               for v in sorted(json.load(sys.stdin), key=lambda v: v["id"])))')
	[[ $out == "alpha:5:va:up beta:6:vb:up" ]] || { echo "ftd's VMs: '$out'"; return 1; }
	grep -q 'adopting vm alpha (id 5)' "$TMP/ftd.log" || { cat "$TMP/ftd.log"; return 1; }
}
ktap_check "ftd adopts both from the registry: name, id, device, up" adopted

silent_kept() {
	local vm want got
	for vm in "alpha true" "beta false"; do
		set -- $vm
		want=$(field K "$1" silent_exit) got=$(field F "$1" silent_exit)
		[[ $want == "$2" && $got == "$2" ]] ||
			{ echo "$1: silent_exit $got through ftd, $want in ftvm.ko, want $2"; return 1; }
	done
}
ktap_check "ftd takes each adopted VM's silent-exit setting as ftvm.ko has it" silent_kept

# What ftd sends the module for an adopted VM (its full registration, on
# a change of namespace) keeps the module's silent-exit as it was.
reregistered() {
	F vm set alpha netns $VMA || return 1
	[[ $(field K alpha silent_exit) == true ]] ||
		{ echo "ftvm.ko: silent_exit $(field K alpha silent_exit) after ftd re-sent alpha"; return 1; }
}
ktap_check "a namespace set through ftd leaves the module's silent-exit on" reregistered
ktap_end
