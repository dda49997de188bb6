#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# "make bench": run every benchmark listed in bench/benches, in order.
# Each prints its figures as "BENCH <name> <value>" lines (names are
# stable: scripts and closing notes rely on them) plus "# ..." comments.
# A benchmark that cannot run here says why and is skipped.
#
#   bench/run.sh [NAME...]     only the benchmarks whose path has NAME

set -u
cd "$(dirname "$0")" || exit 1
export FTVM_TOP=${FTVM_TOP:-$(cd .. && pwd)}

rc=0
while read -r b; do
	[[ -z $b || $b == \#* ]] && continue
	if (($#)); then
		hit=0
		for n in "$@"; do [[ $b == *"$n"* ]] && hit=1; done
		((hit)) || continue
	fi
	echo "# bench: $b"
	(cd "$(dirname "$b")" && exec "./$(basename "$b")")
	r=$?
	if ((r == 4)); then
		echo "# bench: $b skipped"
	elif ((r != 0)); then
		echo "# bench: $b failed (exit $r)"
		rc=1
	fi
done < benches
exit $rc
