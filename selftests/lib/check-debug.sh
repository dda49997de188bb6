#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make check-debug: the guest tests under the debug kernel
# (selftests/lib/debug-kernel.sh builds it once), ftvm.ko built for it,
# in two guest runs:
#
#  - every guest test but faults/, with kmemleak off (kmemleak=off):
#    kmemleak makes every allocation slower, and under TCG the guest
#    then takes three times as long to boot and too long for the rates
#    some tests ask for (a churn of connections, a capture "at once");
#    lockdep, DEBUG_ATOMIC_SLEEP and SLUB's checks stay on;
#  - faults/ with kmemleak on: the error paths, where a leak would be;
#    the guest scans once ftvm.ko is unloaded (selftests/lib/
#    guest-init.sh).
#
# Then ftvm.ko is built back for Debian's kernel.  The last line sums
# both runs: "N passed, N failed, N skipped".
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
cd "$TOP" || exit 1

krel=$(./selftests/lib/debug-kernel.sh) && [[ -n $krel ]] || exit 1
export KVER=$krel KDIR=/lib/modules/$krel/build
make all || exit 1

pass=0 fail=0 skip=0
# run LOG [VAR=VALUE...] -- TEST...: one guest run; its totals added.
run() {
	local log=$1 rc totals env=()
	shift
	while [[ $1 != -- ]]; do env+=("$1"); shift; done
	shift
	env "${env[@]}" ./selftests/run.sh --guest-only "$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	totals=$(grep -aE '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n1)
	if [[ $totals =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped ]]; then
		pass=$((pass + BASH_REMATCH[1]))
		fail=$((fail + BASH_REMATCH[2]))
		skip=$((skip + BASH_REMATCH[3]))
	fi
	((rc == 0)) || [[ $totals != *" 0 failed"* ]] || fail=$((fail + 1))
}

LOG=$(mktemp -d /tmp/ftvm-check-debug.XXXXXX)
mapfile -t rest < <(grep -v -e '^#' -e '^[[:space:]]*$' -e '^faults/' \
	selftests/guest.tests)
echo "# check-debug: ${#rest[@]} guest tests, kmemleak off"
run "$LOG/main" FTVM_VM_APPEND="${FTVM_VM_APPEND:+$FTVM_VM_APPEND }kmemleak=off" \
	-- "${rest[@]}"
echo "# check-debug: faults/, kmemleak on"
# faults.sh alone may take 40 minutes (its settings), over the guest's
# default 30.
run "$LOG/faults" FTVM_VM_TIMEOUT="${FTVM_VM_TIMEOUT:-3600}" -- faults/
rm -rf "$LOG"

unset KVER KDIR
make kmod >/dev/null || { echo "# check-debug: ftvm.ko not built back for Debian's kernel"; fail=$((fail + 1)); }
echo "$pass passed, $fail failed, $skip skipped"
((fail == 0))
