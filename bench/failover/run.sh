#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# ftd's failover and re-protection benchmark (user/ftd/bench.c): ftd's
# own failover and re-protection code on real, private BPF maps, with
# 1k, 10k, 100k and 1M sessions whose primary is the failing VM.
#
#   BENCH failover_us_{1k,10k,100k,1m}   failure event to last data-path
#                                        write, median of 21, microseconds
#   BENCH reprotect_per_s                sessions given a new backup per
#                                        second, unpaced
#
# In a network namespace of its own: the VMs' devmap slots point at its lo.
cd "$(dirname "$0")" || exit 1
TOP=${FTVM_TOP:-$(cd ../.. && pwd)}
BIN=$TOP/user/ftd/ftd-bench
((EUID == 0)) || { echo "# failover: needs root (BPF maps)"; exit 4; }
[[ -x $BIN ]] || make -C "$TOP/user" -s >/dev/null || exit 1
exec unshare --net "$BIN" "$@"
