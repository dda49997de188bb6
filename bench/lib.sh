# SPDX-License-Identifier: GPL-2.0
#
# Sourced by the benchmarks that run themselves in the qemu guest
# (bench/failover-state, bench/strict): the CPU loop that scales their
# figures, and the step into the guest.
#
#   bench_cpu_loop               ns of one CPU-bound loop, best of three
#   bench_guest NAME SELF [ENV]  returns when ftvm.ko is loaded here;
#                                else, on the host, times the loop and
#                                runs "FTVM_HOST_LOOP_NS=ns ENV SELF" in
#                                the guest (selftests/vm-run.sh --cmd) in
#                                place of this shell; in a guest without
#                                ftvm.ko, says so and exits 4 (skipped)
#   bench_guest_slowdown         in the guest: times the loop and prints
#                                "BENCH guest_slowdown R" (guest loop
#                                over the host's, this run)

# The loop: best of three, in ns.
bench_cpu_loop() {
	local best= t0 t1 i
	for i in 1 2 3; do
		t0=$(date +%s%N)
		awk 'BEGIN { for (i = 0; i < 3000000; i++) s += i % 7; exit s < 0 }'
		t1=$(date +%s%N)
		[[ -z $best ]] || ((t1 - t0 < best)) && best=$((t1 - t0))
	done
	echo "$best"
}

bench_guest() {
	local name=$1 self=$2 env=${3:-} host_ns
	grep -qs '^ftvm ' /proc/modules && return 0
	if [[ -z ${FTVM_IN_GUEST:-} ]]; then
		host_ns=$(bench_cpu_loop)
		echo "# bench/$name: host loop $((host_ns / 1000000)) ms; running in the guest"
		exec "${FTVM_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}/selftests/vm-run.sh" \
			--cmd "FTVM_HOST_LOOP_NS=$host_ns${env:+ $env} $self"
	fi
	echo "# bench/$name: ftvm.ko is not loaded"
	exit 4
}

bench_guest_slowdown() {
	local guest_ns
	guest_ns=$(bench_cpu_loop)
	[[ -n ${FTVM_HOST_LOOP_NS:-} ]] || return 0
	echo "# guest loop $((guest_ns / 1000000)) ms, host $((FTVM_HOST_LOOP_NS / 1000000)) ms"
	python3 -c "print('BENCH guest_slowdown %.1f' % ($guest_ns / $FTVM_HOST_LOOP_NS))"
}
