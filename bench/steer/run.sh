#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The steering benchmark (steer_bench.c): BENCH lines for make bench.
cd "$(dirname "$0")" || exit 1
((EUID == 0)) || { echo "# steer: needs root"; exit 4; }
make -s >/dev/null || exit 1
exec ./steer_bench
