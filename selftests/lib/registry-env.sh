# SPDX-License-Identifier: GPL-2.0
#
# What the tests of ftvm.ko's registry through ftctl share (in the guest,
# ftvm.ko loaded): a host namespace $H where the registry lives and
# ftctl runs (nh, ft), VM namespaces ftvm-$$-vmN (V), $TMP, and a
# cleanup that kills what runs in them, deletes them, loads ftvm.ko again
# if a test unloaded it, and removes $TMP.  Source it after ktap.sh with
# NAME set (the $TMP prefix); a test with more to clean up sets
# registry_cleanup_more to a function to run first.

TOP=${FTVM_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
FTCTL=$TOP/user/ftctl/ftctl
H=ftvm-$$-host
TMP=$(mktemp -d "/tmp/ftvm-$NAME.XXXXXX")
registry_cleanup_more=

[[ -x $FTCTL ]] || ktap_skip_all "ftctl is not built"
grep -q '^ftvm ' /proc/modules || ktap_skip_all "ftvm.ko is not loaded (run in the guest: selftests/vm-run.sh)"

registry_cleanup() {
	local ns pid all
	[[ -n $registry_cleanup_more ]] && "$registry_cleanup_more"
	all=$(ip netns list | awk -v p="ftvm-$$-" 'index($1, p) == 1 { print $1 }')
	for ns in $all; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid"; done
	done
	for ns in $all; do ip netns del "$ns" 2>/dev/null; done
	grep -q '^ftvm ' /proc/modules || insmod "$TOP/ftvm.ko" 2>/dev/null
	rm -rf "$TMP"
}
trap registry_cleanup EXIT

nh() { ip netns exec "$H" "$@"; }
ft() { ip netns exec "$H" "$FTCTL" "$@"; }
# ftctl as nobody: no CAP_NET_ADMIN.
ft_nobody() {
	ip netns exec "$H" setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$FTCTL" "$@"
}
V() { local n=$1; shift; ip netns exec "ftvm-$$-vm$n" "$@"; }

# expect_error DESC MESSAGE ARGS...: "ftctl ARGS" fails, prints MESSAGE on
# stderr as "Error: ...", and the registry is unchanged.
# expect_error_nobody: the same with ftctl run as nobody.
expect_error() { __expect_error ft "$@"; }
expect_error_nobody() { __expect_error ft_nobody "$@"; }

__expect_error() {
	local run=$1 desc=$2 msg=$3 before after err rc; shift 3
	before=$(ft -j vm list)
	err=$("$run" "$@" 2>&1 >/dev/null)
	rc=$?
	after=$(ft -j vm list)
	if ((rc != 0)) && [[ $err == *"Error: "*"$msg"* ]] && [[ $before == "$after" ]]; then
		ktap_ok "$desc: $err"
	else
		ktap_fail "$desc"
		ktap_diag "exit $rc, stderr: $err" "wanted: $msg" \
			"registry $([[ $before == "$after" ]] && echo unchanged || echo CHANGED)"
	fi
}
