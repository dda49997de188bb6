#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The kernel ftvm.ko is built for and the guest boots, unless KVER says
# otherwise: the newest plain Debian "N.N.N-N-amd64" that has modules
# installed (never a -cloud- or -rt- flavour).  The one place that
# says so: the Makefile, vm-run.sh and run.sh all ask this script.
ls /lib/modules 2>/dev/null | grep -E -- '^[0-9.]+-[0-9]+-amd64$' | sort -V | tail -n1
