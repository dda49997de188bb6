#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build and install the debug guest kernel: Debian's 6.1 (the
# linux-source-6.1 and linux-config-6.1 packages, the same source and
# configuration as linux-image-amd64), with lockdep (PROVE_LOCKING and
# PROVE_RCU), DEBUG_ATOMIC_SLEEP, kmemleak (DEBUG_KMEMLEAK, scanned on
# demand only) and fault injection (FAILSLAB and FAIL_PAGE_ALLOC, driven
# per task through /proc/thread-self/fail-nth: selftests/faults/faults.sh)
# on, and only the modules the guest uses.  With FTVM_KDEBUG_KASAN=1,
# KASAN as well (another kernel, release -ftvm-kasan): it finds more,
# but the guest runs about five times slower than Debian's kernel, too
# slow for the rates some tests ask for.  Prints its release (for KVER), and only that, on stdout;
# what it does goes to stderr.
#
#   selftests/lib/debug-kernel.sh            build if need be, print KVER
#   selftests/lib/debug-kernel.sh --release  print KVER if built, or fail
#
# The tree is kept in FTVM_KDEBUG_DIR (default /var/cache/ftvm/kdebug,
# or kdebug-kasan), outside any checkout, because
# /lib/modules/KVER/build points there: ftvm.ko is built against it.
# The kernel goes to /boot and /lib/modules like any other; its release
# never matches the plain Debian one that lib/kver.sh picks, so nothing
# uses it unless told to.  The first build takes about twenty minutes
# on two cores; later calls find it built (the stamp: the source
# package's version, KCONFIG_REV and the variant) and return at once.
# Documentation/testing.rst.
set -eu
# Raise it whenever what the kernel is built with changes (MODULES, the
# options below): a kernel built with another revision is rebuilt.
KCONFIG_REV=2
LIB=$(cd "$(dirname "$0")" && pwd)
KASAN=${FTVM_KDEBUG_KASAN:-0}
if [[ $KASAN == 1 ]]; then
	DIR=${FTVM_KDEBUG_DIR:-/var/cache/ftvm/kdebug-kasan}
	LOCALVERSION=-ftvm-kasan
else
	DIR=${FTVM_KDEBUG_DIR:-/var/cache/ftvm/kdebug}
	LOCALVERSION=-ftvm-debug
fi
SRC=$DIR/linux-source-6.1
TARBALL=/usr/src/linux-source-6.1.tar.xz
CONFIG=/usr/src/linux-config-6.1/config.amd64_none_amd64.xz

die() { echo "debug-kernel: $*" >&2; exit 1; }

# Modules the guest loads (its initramfs, and what the tests load or
# the kernel loads for them); every other module is left out.
MODULES="9p 9pnet 9pnet_virtio fscache netfs virtio virtio_ring virtio_pci
virtio_pci_legacy_dev virtio_pci_modern_dev veth tun dummy
sch_ingress cls_bpf cls_matchall act_gact act_bpf
inet_diag tcp_diag udp_diag raw_diag netlink_diag unix_diag"

src_version() { dpkg-query -W -f '${Version}' linux-source-6.1 2>/dev/null; }
stamp() { echo "$(src_version) rev=$KCONFIG_REV kasan=$KASAN"; }

release() {
	[[ -r $DIR/release && -r $DIR/stamp ]] || return 1
	[[ $(cat "$DIR/stamp") == "$(stamp)" ]] || return 1
	local krel
	krel=$(cat "$DIR/release")
	[[ -r /boot/vmlinuz-$krel && -r /lib/modules/$krel/modules.dep &&
	   -d /lib/modules/$krel/build/ ]] || return 1
	echo "$krel"
}

if krel=$(release); then
	echo "$krel"
	exit 0
fi
[[ ${1:-} == --release ]] &&
	die "no $LOCALVERSION kernel built: run FTVM_KDEBUG_KASAN=$KASAN $0"

[[ $(id -u) == 0 ]] || die "installing a kernel needs root"
exec 3>&1 1>&2		# stdout: the release only
"$LIB/deps.sh" linux-source-6.1 linux-config-6.1 dwarves bc \
	bison flex libelf-dev libssl-dev build-essential kmod cpio

echo "# debug-kernel: unpacking $(basename "$TARBALL") into $DIR"
rm -rf "$SRC"
mkdir -p "$DIR"
tar -C "$DIR" -xJf "$TARBALL"
cd "$SRC"
xz -dc "$CONFIG" >.config
# Trim to the guest's modules (localmodconfig reads an lsmod listing).
for m in $MODULES; do echo "$m 0 0"; done >"$DIR/lsmod"
yes '' | make -s LSMOD="$DIR/lsmod" localmodconfig >/dev/null 2>&1
scripts/config --set-str LOCALVERSION "$LOCALVERSION" \
	--disable LOCALVERSION_AUTO \
	--set-str SYSTEM_TRUSTED_KEYS "" --set-str SYSTEM_REVOCATION_KEYS "" \
	--enable PROVE_LOCKING --enable PROVE_RCU \
	--enable DEBUG_ATOMIC_SLEEP --enable DEBUG_LIST \
	--enable BUG_ON_DATA_CORRUPTION \
	--enable DEBUG_KMEMLEAK --disable DEBUG_KMEMLEAK_DEFAULT_OFF \
	--disable DEBUG_KMEMLEAK_AUTO_SCAN \
	--enable FAULT_INJECTION --enable FAILSLAB --enable FAIL_PAGE_ALLOC \
	--enable FAULT_INJECTION_DEBUG_FS
want="PROVE_LOCKING PROVE_RCU DEBUG_ATOMIC_SLEEP DEBUG_INFO_BTF KPROBES VETH"
want+=" NET_9P_VIRTIO DEBUG_KMEMLEAK FAILSLAB FAIL_PAGE_ALLOC"
want+=" FAULT_INJECTION_DEBUG_FS"
if [[ $KASAN == 1 ]]; then
	scripts/config --enable KASAN --enable KASAN_GENERIC --enable KASAN_INLINE
	want+=" KASAN KASAN_INLINE"
fi
make -s olddefconfig
for c in $want; do
	grep -Eq "^CONFIG_$c=(y|m)" .config || die "CONFIG_$c did not stay on"
done
echo "# debug-kernel: building (make -j$(nproc))"
make -s -j"$(nproc)" bzImage modules
krel=$(cat include/config/kernel.release)
[[ $krel == *"$LOCALVERSION" ]] || die "built $krel, not a $LOCALVERSION release"
make -s INSTALL_MOD_STRIP=1 modules_install
cp arch/x86/boot/bzImage "/boot/vmlinuz-$krel"
cp System.map "/boot/System.map-$krel"
echo "$krel" >"$DIR/release"
stamp >"$DIR/stamp"
echo "# debug-kernel: installed $krel"
echo "$krel" >&3
