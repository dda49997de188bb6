# SPDX-License-Identifier: GPL-2.0
#
# What the fault tests (faults.sh, storm.sh) share: the kernel's fault
# injection, set up and put back, and the kmemleak check.  Source it
# after ktap.sh, with TOP set; then call faults_setup, and
# fault_knobs_restore at exit.

FAILNTH=$TOP/selftests/lib/failnth.so
DBG=/sys/kernel/debug
KMEMLEAK=$DBG/kmemleak
grep -qw kmemleak=off /proc/cmdline && KMEMLEAK=/nonexistent

knobs=()
fault_knob() {
	local f=$DBG/$1
	[[ -w $f ]] || return 0
	knobs+=("$f=$(cat "$f")")
	echo "$2" >"$f"
}
fault_knobs_restore() {
	local k
	for k in "${knobs[@]}"; do echo "${k#*=}" >"${k%%=*}"; done
}

# faults_setup: skip the whole test unless the kernel injects faults
# (make check-debug builds one that does: selftests/lib/debug-kernel.sh;
# Debian's does not) and failnth.so is built.  Then fail sleeping
# allocations too, order-0 pages too, and quietly (the log keeps one
# line per fault otherwise, with a stack).  Only a task's fail-nth
# fails anything: the probability stays 0.  kmemleak forgets what it
# found before.
faults_setup() {
	[[ -e /proc/self/fail-nth ]] ||
		ktap_skip_all "the kernel has no fault injection (CONFIG_FAULT_INJECTION)"
	[[ -d $DBG/failslab ]] ||
		ktap_skip_all "no $DBG/failslab (CONFIG_FAILSLAB, CONFIG_FAULT_INJECTION_DEBUG_FS)"
	[[ -r $FAILNTH ]] || ktap_skip_all "$FAILNTH is not built"
	fault_knob failslab/ignore-gfp-wait N
	fault_knob failslab/verbose 0
	fault_knob fail_page_alloc/ignore-gfp-wait N
	fault_knob fail_page_alloc/ignore-gfp-highmem N
	fault_knob fail_page_alloc/min-order 0
	fault_knob fail_page_alloc/verbose 0
	[[ -w $KMEMLEAK ]] && echo clear >"$KMEMLEAK"
	return 0
}

# Nothing ftvm.ko allocated is unreferenced (kmemleak, when the kernel
# has it): a leak on an error path shows here.
no_leak() {
	[[ -w $KMEMLEAK ]] || { echo "# kmemleak is not on in this kernel"; return 0; }
	# kmemleak reports an object only once it is 5 s old: not a
	# condition to poll for.
	sleep 6
	echo scan >"$KMEMLEAK"
	if grep -q ftvm "$KMEMLEAK"; then
		echo "kmemleak:"; head -n 60 "$KMEMLEAK"; return 1
	fi
	if grep -q 'unreferenced object' "$KMEMLEAK"; then
		echo "# kmemleak reports objects not of ftvm.ko:"
		sed 's/^/# /' "$KMEMLEAK" | head -n 40
	fi
	return 0
}
