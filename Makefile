# SPDX-License-Identifier: GPL-2.0
#
# ftvm: per-session fault tolerance for stateful services on Linux hosts.
#
#   make            build ftvm.ko, the BPF objects and the userspace tools
#   make check      install what is missing, build, run every test
#                   (host tests natively, kernel-module tests in a qemu guest)
#   make demo       install what is missing, build, show a failover
#   make bench      run the benchmarks, one "BENCH name value" line each
#   make check-debug
#                   the guest tests under a lockdep, kmemleak and fault
#                   injection kernel built from Debian's source (twenty
#                   minutes more the first time)
#
# KDIR selects the kernel the module is built for (default: Debian's
# linux-headers-amd64); V=1 shows the commands.

# The newest plain Debian release (6.1.0-N-amd64), not -cloud- or -rt-.
KVER	?= $(shell sh $(CURDIR)/selftests/lib/kver.sh)
KDIR	?= /lib/modules/$(KVER)/build
V	?= 0

ifeq ($(V),1)
Q :=
else
Q := @
MAKEFLAGS += --no-print-directory
endif

export Q V KDIR KVER

# Debian packages the build, the tests and the demo need.  "make deps"
# installs the missing ones; it is idempotent and quiet when nothing is
# missing.  linux-image-amd64 is the kernel the guest boots.
DEPS_PKGS := make gcc libc6-dev pkg-config clang llvm \
	libbpf-dev bpftool libelf-dev zlib1g-dev \
	libnl-3-dev libnl-genl-3-dev liburcu-dev \
	linux-headers-amd64 linux-image-amd64 sparse kmod \
	qemu-system-x86 busybox-static cpio \
	iproute2 iputils-ping ethtool socat python3 python3-yaml procps util-linux \
	gcc-multilib

.PHONY: all deps kmod bpf user tests check check-host check-guest check-debug \
	demo bench sparse style clean help

all: kmod bpf user tests

help:
	@sed -n '3,16p' Makefile | sed 's/^# \{0,1\}//'

deps:
	$(Q)./selftests/lib/deps.sh $(DEPS_PKGS)

kmod:
	$(Q)$(MAKE) -C $(KDIR) M=$(CURDIR) W=1 modules

bpf:
	$(Q)$(MAKE) -C bpf

user: bpf
	$(Q)$(MAKE) -C user

# Test programs (C tests under selftests/*/).
tests: user
	$(Q)$(MAKE) -C selftests

# sparse over the module (the kernel's "make C=1"); warnings fail it.
sparse:
	$(Q)$(MAKE) -C $(KDIR) M=$(CURDIR) W=1 C=2 \
		CHECK="$(CURDIR)/selftests/lib/sparse-strict.sh" modules

# checkpatch from the kernel source (linux-source-6.1 ships it; the
# headers package does not).
CHECKPATCH_SRC := $(lastword $(sort $(wildcard /usr/src/linux-source-*.tar.xz)))
CHECKPATCH := .build/checkpatch/scripts/checkpatch.pl

$(CHECKPATCH):
	$(Q)test -n "$(CHECKPATCH_SRC)" || { echo "style: install linux-source-6.1"; exit 1; }
	$(Q)mkdir -p .build/checkpatch
	$(Q)tar -C .build/checkpatch --strip-components=1 -xf $(CHECKPATCH_SRC) \
		--wildcards '*/scripts/checkpatch.pl' '*/scripts/spelling.txt' \
		'*/scripts/const_structs.checkpatch'

style: $(CHECKPATCH)
	$(Q)$(CHECKPATCH) --no-tree --terse --show-types \
		--ignore SPDX_LICENSE_TAG,FILE_PATH_CHANGES \
		-f kmod/*.c kmod/*.h kmod/uapi/*.h

check: deps
	$(Q)$(MAKE) all
	$(Q)$(MAKE) sparse
	$(Q)./selftests/run.sh

check-host: deps all
	$(Q)./selftests/run.sh --host-only

check-guest: deps all
	$(Q)./selftests/run.sh --guest-only

# The guest tests again, under Debian's kernel rebuilt with lockdep,
# DEBUG_ATOMIC_SLEEP, kmemleak and fault injection (the tests in faults/
# need it; selftests/lib/debug-kernel.sh builds it once;
# FTVM_KDEBUG_KASAN=1: another, with KASAN too), ftvm.ko built for it,
# kmemleak on for faults/ only (selftests/lib/check-debug.sh); then
# ftvm.ko is built back for Debian's kernel.
check-debug: deps
	$(Q)./selftests/lib/check-debug.sh

demo: deps
	$(Q)$(MAKE) all
	$(Q)./selftests/demo.sh

bench: deps
	$(Q)$(MAKE) all
	$(Q)./bench/run.sh

clean:
	$(Q)$(MAKE) -C $(KDIR) M=$(CURDIR) clean >/dev/null 2>&1 || true
	$(Q)$(MAKE) -C bpf clean
	$(Q)$(MAKE) -C user clean
	$(Q)$(MAKE) -C selftests clean
	$(Q)rm -rf .build
