#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# sparse wrapper for Kbuild's CHECK=: any diagnostic fails the build.
out=$(sparse "$@" 2>&1)
rc=$?
[[ -z $out ]] || { printf '%s\n' "$out" >&2; exit 1; }
exit $rc
