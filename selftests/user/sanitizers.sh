#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The userspace tests again, under AddressSanitizer and UBSan (with
# LeakSanitizer): a copy of the tree is built with SAN=1 (so the normal
# build is left alone) and these run from it:
#
#   - the C unit tests: test_dp_lib, test_steer, test_ftd;
#   - ftctl on bad input (each must fail with "Error: ...", no report);
#   - ftd checking good and bad configuration files;
#   - ftd end to end (selftests/ftd/failover.sh) with the instrumented
#     ftd and ftctl.
#
# Any sanitizer report fails the test that produced it.

set -u
source "$(dirname "$0")/../lib/ktap.sh"

TOP=${FTVM_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
WORK=$(mktemp -d /tmp/ftvm-san.XXXXXX)
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=99
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=99

for f in bpf/ftvm_steer.skel.h bpf/ftvm_fence.skel.h; do
	[[ -f $TOP/$f ]] || ktap_skip_all "$f is not built (make)"
done
gcc -fsanitize=address,undefined -x c -o "$WORK/probe" - <<<'int main(void){return 0;}' \
	2>/dev/null && "$WORK/probe" || ktap_skip_all "no working ASan/UBSan toolchain"

# The copy: sources and the generated BPF skeletons, no objects.
(cd "$TOP" && tar cf - --exclude='*.o' --exclude='*.d' --exclude='*.a' \
	--exclude='.obj' --exclude='.build' kmod/uapi bpf user selftests) |
	tar xf - -C "$WORK"
build() {
	make -s -C "$WORK/user" clean >/dev/null 2>&1
	make -s -C "$WORK/user" SAN=1 >"$WORK/build.log" 2>&1 &&
	for d in bpf ftd; do
		make -s -C "$WORK/selftests/$d" clean >/dev/null 2>&1
		make -s -C "$WORK/selftests/$d" SAN=1 >>"$WORK/build.log" 2>&1 || return 1
	done
}

ktap_begin 7

if ! build; then
	ktap_fail "build with SAN=1"
	ktap_diag "$(tail -n 20 "$WORK/build.log")"
	ktap_end
fi
ktap_ok "build with SAN=1"

# run_unit NAME DIR: a C test under the sanitizers.
run_unit() {
	local name=$1 dir=$2 out rc
	out=$(cd "$WORK/selftests/$dir" && "./$name" 2>&1)
	rc=$?
	if ((rc == 0)) && ! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' <<<"$out"; then
		ktap_ok "$dir/$name under ASan/UBSan ($(grep -cE '^ok ' <<<"$out") checks)"
	else
		ktap_fail "$dir/$name under ASan/UBSan (exit $rc)"
		ktap_diag "$(grep -E 'not ok|Sanitizer|runtime error|SUMMARY|^    #[0-9]' <<<"$out" | head -n 30)"
	fi
}
run_unit test_dp_lib bpf
run_unit test_steer bpf
run_unit test_ftd ftd

# ftctl on bad input: an error and an exit of 1, never a sanitizer report.
ftctl_bad() {
	local c out rc bad=0
	while IFS= read -r c; do
		# shellcheck disable=SC2086
		out=$(FTD_SOCKET=$WORK/none.sock "$WORK/user/ftctl/ftctl" $c 2>&1)
		rc=$?
		if ((rc != 1)) || ! grep -q '^Error: ' <<<"$out" ||
		   grep -qE 'Sanitizer|runtime error' <<<"$out"; then
			echo "ftctl $c: exit $rc: $out"
			bad=1
		fi
	done <<'CMDS'
frobnicate
-x vm list
vm add
vm add a id
vm add a id 0 dev lo
vm add a id 99999999999 dev lo
vm add a id 1 dev lo mac 1:2:3
vm add a id 1 dev lo mac zz:zz:zz:zz:zz:zz
vm add a id 1 dev aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
vm add aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa id 1 dev lo
vm del
vm set a
vm set id 1 state down
vm frob
monitor count x
service add 198.19.0.1:99999/tcp
service add 198.19.0.1:80/sctp
service add 300.1.1.1:80/tcp
service add [2001:db8::1:80/udp
session list vm
CMDS
	return $bad
}
ktap_check "ftctl refuses bad input cleanly under ASan/UBSan" ftctl_bad

# ftd's configuration checks: good passes, bad fails with a line number.
ftd_conf() {
	local out rc
	printf 'criterion hash\nvm a id 1 dev lo mac 02:00:00:00:00:01 capacity 100 domain x\nservice s 198.19.0.10:7/udp\n' >"$WORK/good.conf"
	out=$("$WORK/user/ftd/ftd" -c -f "$WORK/good.conf" -s "$WORK/ftd.sock" 2>&1)
	rc=$?
	if ((rc != 0)) || grep -qE 'Sanitizer|runtime error' <<<"$out"; then
		echo "good config: exit $rc: $out"
		return 1
	fi
	printf 'criterion hash\nvm a id 1 dev lo\nservice s 198.19.0.10:7/udp\nservice t 198.19.0.10:7/udp\n' >"$WORK/bad.conf"
	out=$("$WORK/user/ftd/ftd" -c -f "$WORK/bad.conf" -s "$WORK/ftd.sock" 2>&1)
	rc=$?
	if ((rc == 0)) || ! grep -q 'bad.conf:4:' <<<"$out" ||
	   grep -qE 'Sanitizer|runtime error' <<<"$out"; then
		echo "bad config: exit $rc: $out"
		return 1
	fi
}
ktap_check "ftd checks configuration files cleanly under ASan/UBSan" ftd_conf

# ftd for real, instrumented.
if [[ $EUID -ne 0 ]]; then
	ktap_skip "ftd end to end under ASan/UBSan" "needs root"
else
	# The daemon's own reports go to files: the test keeps its stderr.
	out=$(cd "$TOP/selftests/ftd" && FTD=$WORK/user/ftd/ftd FTCTL=$WORK/user/ftctl/ftctl \
		ASAN_OPTIONS=$ASAN_OPTIONS:log_path=$WORK/san \
		UBSAN_OPTIONS=$UBSAN_OPTIONS:log_path=$WORK/san \
		timeout 600 ./failover.sh 2>&1)
	rc=$?
	reports=$(cat "$WORK"/san.* 2>/dev/null)
	if ((rc == 0)) && [[ -z $reports ]] &&
	   ! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' <<<"$out"; then
		ktap_ok "ftd end to end under ASan/UBSan ($(grep -cE '^ok ' <<<"$out") checks)"
	else
		ktap_fail "ftd end to end under ASan/UBSan (exit $rc)"
		ktap_diag "$(grep -E 'not ok|Sanitizer|runtime error|SUMMARY' <<<"$out$reports" | head -n 30)"
	fi
fi

ktap_end
