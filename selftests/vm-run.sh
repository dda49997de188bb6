#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot Debian's kernel in qemu with this machine's root shared read-only
# over 9p, load ftvm.ko, and run the kernel-module tests inside.
#
#   selftests/vm-run.sh                  run every guest test
#   selftests/vm-run.sh --tests T...     run the guest tests matching T
#   selftests/vm-run.sh --shell          drop into a shell in the guest
#   selftests/vm-run.sh --cmd 'CMD'      run CMD in the guest (bench, ...)
#
# Environment: KVER (guest kernel release), FTVM_VM_TIMEOUT (seconds,
# default 1800), FTVM_VM_MEM (MiB, default 2048), FTVM_VM_SMP (default 2),
# FTVM_VM_ACCEL (kvm or tcg; probed when unset), FTVM_VM_KEEP_LOG (path
# to keep the whole console log at), FTVM_VM_QUIET=1 (show only what the
# guest's tests or command print: no kernel messages, no dmesg dump; the
# log is still checked), FTVM_VM_APPEND (more kernel parameters).
#
# The guest's output streams here.  The run fails when the tests fail,
# when ftvm.ko does not unload after them, when the guest times out or
# never reports, and when the guest kernel's log has an oops, BUG, WARN,
# RCU stall, soft lockup, hung task, list corruption, refcount or SLUB
# report (any of the patterns below), or the kernel taints itself for
# one, even if every test passed.  Debian's kernel has no lockdep, KASAN,
# UBSAN or kmemleak; "make check-debug" boots one with lockdep (and KASAN
# if asked: lib/debug-kernel.sh).  Documentation/testing.rst says what
# can fire.

set -u
SELFTESTS=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$SELFTESTS/.." && pwd)
BUILD=$TOP/.build/vm
# The newest plain Debian release (6.1.0-N-amd64), not -cloud- or -rt-.
KVER=${KVER:-$(sh "$SELFTESTS/lib/kver.sh")}
KERNEL=/boot/vmlinuz-$KVER
TIMEOUT=${FTVM_VM_TIMEOUT:-1800}
MEM=${FTVM_VM_MEM:-2048}
SMP=${FTVM_VM_SMP:-2}

mode=tests
cmd=
args=()
while (($#)); do
	case $1 in
	--tests) shift; args=("$@"); break ;;
	--shell) mode=shell ;;
	--cmd) mode=cmd; cmd=$2; shift ;;
	-h|--help) sed -n '4,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) args+=("$1") ;;
	esac
	shift
done

die() { echo "vm-run: $*" >&2; exit 1; }

[[ -n $KVER && -r $KERNEL ]] || die "no guest kernel: install linux-image-amd64 (make deps)"
[[ -r /lib/modules/$KVER/modules.dep ]] || die "no modules for $KVER"
[[ -f $TOP/ftvm.ko ]] || die "ftvm.ko is not built: run make"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86 is not installed"
BUSYBOX=$(command -v busybox) || die "busybox-static is not installed"

# Modules needed before the root file system exists, in load order.
modules_for() {
	local m dep path
	for m in "$@"; do
		path=$(modinfo -k "$KVER" -n "$m" 2>/dev/null) || die "module $m not found for $KVER"
		for dep in $(modinfo -k "$KVER" -F depends "$m" | tr ',' ' '); do
			modules_for "$dep"
		done
		echo "$path"
	done
}

build_initramfs() {
	local dir=$BUILD/initramfs mods m
	mods=$(modules_for virtio_pci 9pnet_virtio 9p | awk '!seen[$0]++')
	rm -rf "$dir"
	mkdir -p "$dir"/{bin,dev,proc,sys,root,modules}
	cp "$BUSYBOX" "$dir/bin/busybox"
	for m in sh mount umount mkdir insmod chroot poweroff cat echo sleep cp ls ln; do
		ln -s busybox "$dir/bin/$m"
	done
	for m in $mods; do
		cp "$m" "$dir/modules/"
		basename "$m" >>"$dir/modules/order"
	done
	cat >"$dir/init" <<'EOF'
#!/bin/sh
# ftvm guest init: bring up 9p, mount the host's root, hand over.
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules/order); do
	insmod /modules/$m || echo "ftvm-init: cannot load $m"
done
if ! mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 \
		hostroot /root; then
	echo "ftvm-init: cannot mount the host root"
	poweroff -f
fi
for d in tmp run var/tmp root; do
	mount -t tmpfs -o mode=1777 tmpfs /root/$d 2>/dev/null
done
# The tree itself comes as a second share, mounted after the tmpfs
# overlays: a checkout under /tmp (CI clones anywhere) stays visible.
top=$(cat /ftvm-top)
mkdir -p /root$top 2>/dev/null
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 \
	ftvmtop /root$top || echo "ftvm-init: cannot mount the tree at $top"
mount -t proc proc /root/proc
mount -t sysfs sys /root/sys
mount -t devtmpfs dev /root/dev
mkdir -p /root/dev/pts /root/dev/shm
mount -t devpts devpts /root/dev/pts
mount -t tmpfs tmpfs /root/dev/shm
ln -s /proc/self/fd /root/dev/fd
ln -s /proc/self/fd/0 /root/dev/stdin
ln -s /proc/self/fd/1 /root/dev/stdout
ln -s /proc/self/fd/2 /root/dev/stderr
cp /ftvm-env /root/run/ftvm-env
exec chroot /root /bin/bash "$top/selftests/lib/guest-init.sh"
echo "ftvm-init: cannot start the guest side"
poweroff -f
EOF
	chmod +x "$dir/init"
	(cd "$dir" && find . | cpio -o -H newc --quiet) >"$BUILD/base.cpio"
	echo "$stamp" >"$BUILD/base.stamp"
}

mkdir -p "$BUILD"
stamp="$KVER $(stat -c %Y "$BUSYBOX") $(sha1sum <"$0" | cut -c1-12)"
if [[ ! -f $BUILD/base.cpio || "$(cat "$BUILD/base.stamp" 2>/dev/null)" != "$stamp" ]]; then
	build_initramfs
fi

# What the guest runs: a second cpio appended to the first.
run=$(mktemp -d /tmp/ftvm-vm.XXXXXX)
trap 'rm -rf "$run"' EXIT
mkdir -p "$run/cpio"
echo "$TOP" >"$run/cpio/ftvm-top"
{
	echo "FTVM_MODE=$mode"
	printf 'FTVM_CMD=%q\n' "$cmd"
	printf 'FTVM_ARGS=('; printf '%q ' "${args[@]}"; printf ')\n'
	echo "FTVM_CI=${CI:-}"
} >"$run/cpio/ftvm-env"
(cd "$run/cpio" && find . | cpio -o -H newc --quiet) >"$run/extra.cpio"
cat "$BUILD/base.cpio" "$run/extra.cpio" >"$run/initramfs.cpio"

# KVM where it works (it does not on every host that has /dev/kvm).
accel=${FTVM_VM_ACCEL:-}
if [[ -z $accel ]]; then
	accel=tcg
	if [[ -w /dev/kvm ]] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
		if timeout 15 qemu-system-x86_64 -enable-kvm -cpu host -m 256 \
			-nodefaults -display none -no-reboot -serial stdio \
			-kernel "$KERNEL" -append "console=ttyS0 panic=-1 rdinit=/bin/false" \
			</dev/null 2>/dev/null | grep -q "Linux version"; then
			accel=kvm
		fi
	fi
fi
if [[ $accel == kvm ]]; then
	accel_args=(-enable-kvm -cpu host)
else
	accel_args=(-accel tcg,thread=multi -cpu max)
fi

# slub_debug=FZP: SLUB's consistency checks, red zones and poisoning on
# every cache (Debian's kernel has no KASAN), for the tests alone: it
# takes every allocation off SLUB's fast path, which a benchmark (--cmd)
# must not measure (Documentation/testing.rst).
append="console=ttyS0 panic=-1 oops=panic slab_nomerge loglevel=4 quiet"
append+=" rcupdate.rcu_cpu_stall_timeout=60 init=/init"
# A soft lockup or an RCU stall fails the run anyway (the log check
# below); panicking on it ends a wedged guest at once, with the stuck
# CPU's trace on the console (panic() makes the console verbose),
# instead of after the whole timeout.
append+=" softlockup_panic=1 sysctl.kernel.panic_on_rcu_stall=1"
[[ $mode == tests ]] && append+=" slub_debug=FZP"
append+=${FTVM_VM_APPEND:+ $FTVM_VM_APPEND}
qemu=(qemu-system-x86_64 "${accel_args[@]}" -m "$MEM" -smp "$SMP"
      -nodefaults -no-reboot -nic none
      -kernel "$KERNEL" -initrd "$run/initramfs.cpio" -append "$append"
      -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
      -virtfs "local,path=$TOP,mount_tag=ftvmtop,security_model=none,readonly=on,multidevs=remap"
      -device virtio-rng-pci)

echo "# vm-run: kernel $KVER, accel $accel, $SMP cpus, ${MEM} MiB"
if [[ $mode == shell ]]; then
	exec "${qemu[@]}" -nographic
fi

log=$run/console.log
start=$(date +%s.%N)
# Quiet: drop kernel console lines and the dmesg dump from the screen.
show() {
	if [[ -n ${FTVM_VM_QUIET:-} ]]; then
		sed -u -e '/^# ftvm-guest: dmesg begin/,/^# ftvm-guest: dmesg end/d' \
			-e '/^\[ *[0-9][0-9.]*\]/d' -e '/^# ftvm-guest: /d' \
			-e '/^ \{8,\}/d'
	else
		cat
	fi
}
timeout -k 10 "$TIMEOUT" "${qemu[@]}" -display none -serial stdio -monitor none \
	</dev/null 2>&1 | tr -d '\r' | tee "$log" | show
qrc=${PIPESTATUS[0]}
end=$(date +%s.%N)
[[ -n ${FTVM_VM_KEEP_LOG:-} ]] && cp "$log" "$FTVM_VM_KEEP_LOG"

rc=0
if ((qrc == 124)); then
	echo "# vm-run: the guest timed out after ${TIMEOUT}s"
	rc=1
fi
boot=$(sed -n 's/^# ftvm-guest: booted in \([0-9.]*\)s$/\1/p' "$log" | head -n1)
[[ -n ${FTVM_VM_QUIET:-} ]] ||
	echo "# vm-run: guest up in ${boot:-?}s (kernel uptime at start), total $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')s"

# The kernel log: the guest prints dmesg between markers at the end;
# a guest that died early still left its oops on the console.
bad='(BUG:|WARNING:|Oops|general protection fault|Kernel panic|kernel BUG|'
bad+='INFO: rcu_|rcu: INFO|self-detected stall|detected stalls|'
bad+='possible circular locking|possible recursive locking|'
bad+='turning off the locking correctness validator|non-static key|'
bad+='inconsistent lock state|suspicious RCU usage|KASAN:|UBSAN:|'
bad+='kmemleak: [0-9]+ new suspected|unreferenced object|refcount_t:|'
bad+='list_(add|del) corruption|'
bad+='sleeping function called from invalid context|scheduling while atomic|'
bad+='blocked for more than [0-9]+ seconds|soft lockup|hard LOCKUP|'
bad+='BUG [^ ]+ \((Not t|T)ainted|pagealloc: |Poison overwritten|Redzone overwritten)'
if grep -aEn "$bad" "$log" >"$run/bad"; then
	echo "# vm-run: the guest kernel log reports a problem:"
	sed 's/^/#   /' "$run/bad" | head -n 40
	rc=1
fi
# A panic's own lines (the reason, the CPU's trace) are what tells why.
if grep -aq 'Kernel panic - not syncing' "$log"; then
	echo "# vm-run: the guest kernel panicked:"
	grep -aA 40 'Kernel panic - not syncing' "$log" |
		grep -aE 'Kernel panic|Call Trace|^ *\[ *[0-9.]+\] +[? ]*[a-z_0-9.]+\+0x|RIP:|Comm:|CPU:' |
		tail -n 40 | sed 's/^/#   /'
	rc=1
fi
taint=$(sed -n 's/^# ftvm-guest: tainted \([0-9]*\)$/\1/p' "$log" | tail -n1)
# Taints that mean trouble: B bad page (5), D died (7), W warned (9),
# L soft lockup (14).  E (unsigned module) and O (out of tree) are ours.
if [[ -n $taint ]] && (((taint >> 5 | taint >> 7 | taint >> 9 | taint >> 14) & 1)); then
	echo "# vm-run: the guest kernel is tainted ($taint)"
	rc=1
fi
if [[ $mode == tests ]]; then
	if ! grep -aqE '^[0-9]+ passed, [0-9]+ failed' "$log"; then
		echo "# vm-run: the guest never reported its results"
		rc=1
	elif ! grep -aqE '^[0-9]+ passed, 0 failed' "$log"; then
		rc=1
	fi
fi
# The guest's own verdict: the tests or the command, and the final
# unload of ftvm.ko (selftests/lib/guest-init.sh), which must succeed
# after the tests too.
if grep -aq '^# ftvm-guest: rmmod ftvm failed' "$log"; then
	echo "# vm-run: ftvm.ko did not unload at the end of the run"
	rc=1
fi
grc=$(sed -n 's/^# ftvm-guest: exit \([0-9]*\)$/\1/p' "$log" | tail -n1)
[[ ${grc:-1} == 0 ]] || rc=1
exit $rc
