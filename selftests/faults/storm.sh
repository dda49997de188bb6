#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# ftd in a storm of kernel allocation failures: one request in
# $STORM that ftd sends ftvm.ko, from any of its threads, has one of the
# allocations ftvm.ko makes for it failed (selftests/lib/failnth.so's
# storm: the first allocation of a request, then the second of the
# next armed one, ... up to the 32nd, and round again), while ftd
# replicates sessions, drains a VM and fails one over.  A refused
# request changed nothing (faults.sh checks that for each), so ftd sends
# it again (FTD_NOMEM_RETRIES), and a dump that ran out of memory
# half-way is done again; nothing may be lost for it:
#
#  - ftd starts and registers its VMs with their namespaces;
#  - every TCP session's state is staged on its backup;
#  - a VM drained while its clients send: its sessions go on, on their
#    backups, from their state, not a byte lost or duplicated
#    (sessclient's checksums both ways; kvstore resumed each from its
#    application state);
#  - the busiest primary's device deleted while its clients send: the
#    same, from the VM's last state, which ftd takes under the storm;
#  - afterwards every session has a backup with its state staged;
#  - the storm did strike: at least $MIN_HITS allocations failed in
#    ftd's requests (ftd's figures from failnth.so at its exit);
#  - kmemleak finds nothing of ftvm.ko's.
#
# It needs ftvm.ko and a kernel with fault injection (make check-debug:
# selftests/lib/debug-kernel.sh); Debian's has none: skip.  The topology:
# ../lib/ftd-topo.sh, four VMs.
set -u
cd "$(dirname "$0")" || exit 1
. ../lib/ktap.sh

N=${FTVM_STORM_SESSIONS:-60}
NU=${FTVM_STORM_UDP:-20}
RUN_MS=${FTVM_STORM_RUN_MS:-6000}
STORM=${FTVM_STORM_EVERY:-3}
MIN_HITS=20

. ../state/ftd-lib.sh
. ./lib.sh
trap 'fault_knobs_restore; cleanup' EXIT
[[ -d /sys/module/ftvm ]] || ktap_skip_all "ftvm.ko is not loaded (run in the guest: selftests/vm-run.sh --tests faults/storm.sh)"
((EUID == 0)) || ktap_skip_all "needs root"
faults_setup

write_conf() {
	local n
	{
		echo "control $FTD_SOCKET"
		echo "pin-dir $PIN"
		echo "attach hc"
		for n in 1 2 3 4; do
			echo "vm vm$n id $n dev hv$n mac 02:00:00:00:0$n:01 domain d$n netns $P-vm$n"
		done
		echo "service kv $VIP:7000/tcp replication-interval 20"
		echo "service echo $VIP:7001/udp"
	} >"$CONF"
}

ktap_begin 9

start_all "four VMs, ftd in the storm" 1 2 3 4 -- LD_PRELOAD="$FAILNTH" \
	FTVM_FAIL_STORM="$STORM" FTVM_FAIL_NTH_OUT="$TMP/storm"
ktap_check "$N TCP (kvstore) and $NU UDP sessions talk" opened
ktap_check "every TCP session's state is staged on its backup" protected

ktap_check "a VM drained while its clients send: its sessions go on on their backups" drain
ktap_diag "drain: $(cat "$TMP/figures" 2>/dev/null)"

A=$(busiest)
ktap_check "$A's device deleted while the clients send: every session goes on, no byte lost or duplicated" \
	fail_during_run "$A"
ktap_check "afterwards every session has a new backup with its state staged" protected

ktap_check "clients end cleanly" ended

# What the storm did, from failnth.so in ftd once it has exited; what
# ftd had to say about it goes to the log after the check.
struck() {
	local armed hit missed
	stop_ftd || { echo "ftd did not stop"; return 1; }
	read -r _ armed _ hit _ missed <"$TMP/storm" ||
		{ echo "no figures from failnth.so in ftd"; return 1; }
	echo "the storm: $armed of ftd's requests armed, $hit allocations failed, $missed requests made fewer allocations than armed for; ftd warned $(grep -c '^<[34]>' "$TMP/ftd.log") times" \
		>"$TMP/struck"
	((hit >= MIN_HITS)) || { cat "$TMP/struck"; echo "fewer than $MIN_HITS"; return 1; }
}
ktap_check "the storm struck ftd's requests, and ftd stops cleanly" struck
[[ -s $TMP/struck ]] && ktap_diag "$(cat "$TMP/struck")"
# ftd's warnings and errors, numbers left out, counted.
while read -r line; do ktap_diag "$line"; done < <(grep "^<[34]>" "$TMP/ftd.log" |
	sed "s/[0-9]\+/N/g" | sort | uniq -c | sort -rn | head -8)
ktap_check "no object of ftvm.ko's left unreferenced (kmemleak)" no_leak
ktap_end
