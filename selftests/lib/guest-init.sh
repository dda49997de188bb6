#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The guest side of selftests/vm-run.sh, run as the guest's init in a
# chroot of the host's root (read-only, with tmpfs for /tmp, /run, ...).
# Loads ftvm.ko, runs what vm-run.sh asked for, prints the kernel log
# between markers and powers off.

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=${TERM:-dumb} LANG=C.UTF-8
TOP=$(cd "$(dirname "$0")/../.." && pwd)
export FTVM_TOP=$TOP FTVM_IN_GUEST=1
# shellcheck disable=SC1091
source /run/ftvm-env || echo "# ftvm-guest: no /run/ftvm-env"
export CI=$FTVM_CI

# The power-off shuts the 9p root down under this script: wait for it
# with builtins only (an external sleep is gone by then), and never
# return, or init would exit and the kernel would panic before the
# machine is off.
poweroff_now() {
	sync
	exec 9<> <(:)
	echo o >/proc/sysrq-trigger
	while :; do
		read -r -t 10 -u 9 _
	done
}

echo "# ftvm-guest: booted in $(cut -d' ' -f1 /proc/uptime)s"
hostname ftvm-guest
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
ip link set lo up
echo 1 >/proc/sys/kernel/sysrq
dmesg -n 4

# kmemleak (a debug kernel's, unless booted with kmemleak=off): what
# boot left unreferenced is not ours.
KMEMLEAK=/sys/kernel/debug/kmemleak
grep -qw kmemleak=off /proc/cmdline && KMEMLEAK=
[[ -n $KMEMLEAK && -w $KMEMLEAK ]] && echo clear >"$KMEMLEAK"

rc=0
if ! insmod "$TOP/ftvm.ko"; then
	echo "# ftvm-guest: cannot load ftvm.ko"
	rc=1
fi

if ((rc == 0)); then
	case $FTVM_MODE in
	tests)
		"$TOP/selftests/run.sh" --in-guest "${FTVM_ARGS[@]}"
		rc=$?
		;;
	cmd)
		bash -c "$FTVM_CMD"
		rc=$?
		;;
	shell)
		echo "# ftvm-guest: ftvm.ko loaded; the tree is at $TOP; exit to power off"
		setsid -c bash -i </dev/console >/dev/console 2>&1
		;;
	esac
fi

# Unloading at the end proves the module goes away cleanly after
# everything the tests did (tests that unload it themselves reload it).
if grep -q '^ftvm ' /proc/modules && ! rmmod ftvm; then
	echo "# ftvm-guest: rmmod ftvm failed"
	rc=1
fi

# Whatever the run left unreferenced, the module gone: a leak of its
# own, or of what it made the kernel allocate.  vm-run.sh fails the run
# on these lines ("kmemleak:"), with the objects' allocation traces.
if [[ -n $KMEMLEAK && -w $KMEMLEAK ]]; then
	echo scan >"$KMEMLEAK"
	sed 's/^/# ftvm-guest: kmemleak: /' "$KMEMLEAK" | head -n 400
fi

echo "# ftvm-guest: exit $rc"
echo "# ftvm-guest: tainted $(cat /proc/sys/kernel/tainted)"
echo "# ftvm-guest: dmesg begin"
dmesg --color=never
echo "# ftvm-guest: dmesg end"
poweroff_now
