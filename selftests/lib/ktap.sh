# SPDX-License-Identifier: GPL-2.0
#
# KTAP helpers for shell tests (kselftest conventions):
#
#   ktap_begin N          "TAP version 13" and the plan
#   ktap_ok DESC / ktap_fail DESC / ktap_skip DESC WHY
#   ktap_check DESC CMD...    ok when CMD succeeds
#   ktap_end              exit 0 if nothing failed, 1 otherwise (a
#                         failure, or not as many results as the plan),
#                         4 when every test was skipped
#   ktap_skip_all WHY     the whole test cannot run here: exit 4
#
# Diagnostic lines start with "# " (ktap_diag).

# shellcheck source=wait.sh
source "${BASH_SOURCE[0]%/*}/wait.sh"

KSFT_SKIP=4
__ktap_plan=
__ktap_n=0
__ktap_pass=0
__ktap_fail=0
__ktap_skip=0

ktap_begin() {
	__ktap_plan=$1
	echo "TAP version 13"
	echo "1..$1"
}

ktap_diag() {
	local line
	for line in "$@"; do
		printf '# %s\n' "$line"
	done
}

ktap_ok() {
	__ktap_n=$((__ktap_n + 1)); __ktap_pass=$((__ktap_pass + 1))
	echo "ok $__ktap_n $*"
}

ktap_fail() {
	__ktap_n=$((__ktap_n + 1)); __ktap_fail=$((__ktap_fail + 1))
	echo "not ok $__ktap_n $*"
}

ktap_skip() {
	local desc=$1; shift
	__ktap_n=$((__ktap_n + 1)); __ktap_skip=$((__ktap_skip + 1))
	echo "ok $__ktap_n $desc # SKIP $*"
}

# ktap_check DESC CMD [ARGS...]: run CMD, report, show its output on failure.
ktap_check() {
	local desc=$1 out; shift
	if out=$("$@" 2>&1); then
		ktap_ok "$desc"
	else
		ktap_fail "$desc"
		[[ -z $out ]] || ktap_diag "${out//$'\n'/$'\n'# }"
	fi
}

ktap_skip_all() {
	echo "TAP version 13"
	echo "1..0 # SKIP $*"
	exit $KSFT_SKIP
}

ktap_end() {
	ktap_diag "Totals: pass:$__ktap_pass fail:$__ktap_fail skip:$__ktap_skip"
	if [[ -n $__ktap_plan ]] && ((__ktap_n != __ktap_plan)); then
		ktap_diag "planned $__ktap_plan tests but ran $__ktap_n"
		exit 1
	elif ((__ktap_fail)); then
		exit 1
	elif ((__ktap_pass == 0 && __ktap_skip > 0)); then
		exit $KSFT_SKIP
	fi
	exit 0
}
