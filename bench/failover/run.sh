#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# ftd's failover and re-protection benchmark (user/ftd/bench.c): ftd's
# own failover and re-protection code on real, private BPF maps, with
# 1k, 10k, 100k and 1M sessions whose primary is the failing VM.  The
# failure is a real one: the VM's device (a veth the benchmark creates)
# is set down, and ftd's rtnetlink event handler fails it over.
#
#   BENCH failover_us_{1k,10k,100k,1m}   from just before the syscall
#                                        that sets the device down to the
#                                        last placement write of ftd's
#                                        handler, median of 21, us
#   BENCH reprotect_per_s                sessions given a new backup per
#                                        second, unpaced
#
# After each failover the placements map is read back and checked; the
# sessions map (an LRU) is counted to hold the N sessions.
#
# In a network namespace of its own: its devices live and die there.
cd "$(dirname "$0")" || exit 1
TOP=${FTVM_TOP:-$(cd ../.. && pwd)}
BIN=$TOP/user/ftd/ftd-bench
((EUID == 0)) || { echo "# failover: needs root (BPF maps)"; exit 4; }
[[ -x $BIN ]] || make -C "$TOP/user" -s >/dev/null || exit 1
exec unshare --net "$BIN" "$@"
