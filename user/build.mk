# SPDX-License-Identifier: GPL-2.0
#
# Settings shared by every C and BPF Makefile of the tree.  Set PKGS
# (pkg-config names) and TOP before including.
#
#   SAN=1   build with AddressSanitizer and UBSan (the tests use it)
#   V=1     show the commands

CC	?= gcc
CLANG	?= clang
BPFTOOL	?= bpftool
CFLAGS	?= -O2 -g
CFLAGS	+= -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE \
	   $(if $(PKGS),$(shell pkg-config --cflags $(PKGS)))
LDLIBS	+= $(if $(PKGS),$(shell pkg-config --libs $(PKGS)))
ifeq ($(SAN),1)
CFLAGS	+= -fsanitize=address,undefined -fno-omit-frame-pointer \
	   -fno-sanitize-recover=all
LDFLAGS	+= -fsanitize=address,undefined
endif

# BPF objects: clang for the bpf target, with the multiarch uapi headers.
BPF_ARCH	:= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
MULTIARCH	:= $(shell gcc -print-multiarch 2>/dev/null)
BPF_CFLAGS	:= -target bpf -O2 -g -Wall -Werror -D__TARGET_ARCH_$(BPF_ARCH) \
		   -I/usr/include/$(MULTIARCH) -I$(TOP)/kmod/uapi

ifeq ($(V),1)
Q :=
else
Q := @
endif

.DELETE_ON_ERROR:
