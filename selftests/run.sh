#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The test runner behind "make check".
#
#   selftests/run.sh [--host-only | --guest-only] [TEST...]
#   selftests/run.sh --in-guest [TEST...]     (what the guest runs)
#
# Host tests (selftests/host.tests) run on this machine's kernel; guest
# tests (selftests/guest.tests) run inside a qemu guest booting Debian's
# kernel with ftvm.ko loaded (selftests/vm-run.sh).  Each test prints
# TAP; every "ok"/"not ok" line counts, a test that dies without saying
# "not ok", or reports fewer or more results than its plan ("1..N"),
# counts as one more failure.  TEST words select the tests whose path
# has one of them; it is an error when no test at all matches.  The
# last line is "N passed, N failed, N skipped".

set -u
cd "$(dirname "$0")" || exit 1
SELFTESTS=$PWD
export FTVM_TOP=${FTVM_TOP:-$(cd .. && pwd)}

mode=all
tests=()
while (($#)); do
	case $1 in
	--host-only) mode=host ;;
	--guest-only) mode=guest ;;
	--in-guest) mode=in-guest ;;
	-h|--help) sed -n '4,16p' "$SELFTESTS/run.sh" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) tests+=("$1") ;;
	esac
	shift
done

pass=0 fail=0 skip=0

list_tests() {
	grep -v -e '^#' -e '^[[:space:]]*$' "$SELFTESTS/$1"
}

# The timeout of a test: "timeout=N" in the settings file of its folder.
test_timeout() {
	local s
	s=$(dirname "$SELFTESTS/$1")/settings
	if [[ -f $s ]] && grep -q '^timeout=' "$s"; then
		sed -n 's/^timeout=//p' "$s" | head -n1
	else
		echo 300
	fi
}

# count_tap OUTPUT RC: add the test's results to the totals.  A test
# whose results do not match its plan fails once more: it stopped early
# (or said more than it meant to) even if it exited 0.
count_tap() {
	local out=$1 rc=$2 p f s plan
	p=$(grep -cE '^ok [0-9]+' <<<"$out")
	s=$(grep -cE '^ok [0-9]+.*# *SKIP' <<<"$out")
	f=$(grep -cE '^not ok [0-9]+' <<<"$out")
	plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' <<<"$out" | head -n1)
	p=$((p - s))
	if [[ -n $plan ]] && ((plan != p + f + s)); then
		echo "# planned $plan results, reported $((p + f + s))"
		f=$((f + 1))
	elif ((rc != 0 && rc != 4 && f == 0)); then
		f=1
	fi
	if ((p + f + s == 0)); then
		if ((rc == 4)); then s=1; elif ((rc == 0)); then p=1; else f=1; fi
	fi
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	(( f == 0 ))
}

TMP=$(mktemp -d /tmp/ftvm-run.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# select_tests LIST [FILTER...]: the tests of LIST whose path contains
# one of the FILTER words (all of them without FILTER), one a line.
select_tests() {
	local list=$1 a b; shift
	while read -r a; do
		(($#)) || { echo "$a"; continue; }
		for b in "$@"; do
			[[ $a == *"$b"* ]] && { echo "$a"; break; }
		done
	done < <(list_tests "$list")
}

# run_list LIST [FILTER...]: run the selected tests of LIST, streaming
# their output indented, kselftest style.
run_list() {
	local list=$1; shift
	local all t n=0 rc to pid
	mapfile -t all < <(select_tests "$list" "$@")
	if ((${#all[@]} == 0)); then
		echo "# no test in $list matches: $*"
		fail=$((fail + 1))
		return
	fi
	echo "TAP version 13"
	echo "1..${#all[@]}"
	for t in "${all[@]}"; do
		n=$((n + 1))
		to=$(test_timeout "$t")
		echo "# selftests: $t"
		# The test writes to a file, not a pipe, so that a process it
		# leaves behind cannot hold the runner; timeout(1) makes the
		# test a process group of its own, killed once the test ends.
		: >"$TMP/out"
		(cd "$(dirname "$SELFTESTS/$t")" && \
		 exec timeout -k 10 "$to" "$SELFTESTS/$t" </dev/null >"$TMP/out" 2>&1) &
		pid=$!
		tail -n +1 -s 0.2 -f --pid=$pid "$TMP/out" | sed -u 's/^/  /'
		wait $pid
		rc=$?
		if kill -0 -- -$pid 2>/dev/null; then
			echo "# $t: left processes behind; killing them"
			kill -KILL -- -$pid 2>/dev/null
		fi
		((rc == 124)) && echo "# $t: timed out after ${to}s"
		if count_tap "$(cat "$TMP/out")" "$rc"; then
			if ((rc == 4)); then
				echo "ok $n selftests: $t # SKIP"
			else
				echo "ok $n selftests: $t"
			fi
		else
			echo "not ok $n selftests: $t # exit=$rc"
		fi
	done
}

case $mode in
in-guest)
	run_list guest.tests "${tests[@]}"
	echo "$pass passed, $fail failed, $skip skipped"
	((fail == 0))
	exit
	;;
all)
	# With TEST words, each side runs what matches there; only a word
	# list that matches nowhere is an error.
	if ((${#tests[@]})); then
		host_sel=$(select_tests host.tests "${tests[@]}")
		guest_sel=$(select_tests guest.tests "${tests[@]}")
		if [[ -z $host_sel && -z $guest_sel ]]; then
			echo "# no test matches: ${tests[*]}"
			echo "0 passed, 1 failed, 0 skipped"
			exit 1
		fi
		[[ -n $host_sel ]] || mode=guest
		[[ -n $guest_sel ]] || mode=host
	fi
	;;
esac
if [[ $mode == host || $mode == all ]]; then
	echo "# host tests ($(uname -r))"
	run_list host.tests "${tests[@]}"
fi

if [[ $mode == guest || $mode == all ]]; then
	echo "# guest tests (qemu, ${KVER:-$(sh "$SELFTESTS/lib/kver.sh")})"
	"$SELFTESTS/vm-run.sh" --tests "${tests[@]}" 2>&1 | \
		tee "$TMP/guest" | sed -u 's/^/  /'
	rc=${PIPESTATUS[0]}
	totals=$(grep -aE '^[0-9]+ passed, [0-9]+ failed' "$TMP/guest" | tail -n1)
	if [[ $totals =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)? ]]; then
		pass=$((pass + BASH_REMATCH[1]))
		fail=$((fail + BASH_REMATCH[2]))
		skip=$((skip + ${BASH_REMATCH[4]:-0}))
	fi
	# vm-run.sh fails on its own for a bad kernel log, a timeout, a
	# guest that never reported or an ftvm.ko that did not unload after
	# the tests: count that as one more failure.
	if ((rc != 0)) && { [[ -z $totals ]] || [[ $totals =~ ^[0-9]+\ passed,\ 0\ failed ]]; }; then
		fail=$((fail + 1))
	fi
fi

echo "$pass passed, $fail failed, $skip skipped"
((fail == 0))
