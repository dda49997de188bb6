# SPDX-License-Identifier: GPL-2.0
#
# wait_for SECONDS CMD [ARGS...]: poll every 50 ms, for at most SECONDS,
# until CMD succeeds (its output is discarded).  Tests wait by polling a
# condition, never by fixed sleeps.  The pause is a read with a timeout
# on a pipe that never delivers: no sleep(1) process per round.

wait_for() {
	local t=$1 i
	shift
	for ((i = 0; i < t * 20; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		read -r -t 0.05 <> <(:) || true
	done
	return 1
}
