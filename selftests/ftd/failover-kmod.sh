#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# failover.sh with ftvm.ko loaded (the qemu guest): ftd takes failures
# from the module's vm-failed events and keeps its VM registry, and says
# that state replication is on.  Fewer sessions (200: about three
# minutes without KVM) and slower probes than on the host: the guest may
# run without KVM.
cd "$(dirname "$0")" || exit 1
. ../lib/ktap.sh
[[ -d /sys/module/ftvm ]] || ktap_skip_all "ftvm.ko is not loaded (run in the guest: selftests/vm-run.sh --tests ftd)"
export FTD_TEST_SESSIONS=${FTD_TEST_SESSIONS:-200}
export FTD_TEST_PROBE_MS=${FTD_TEST_PROBE_MS:-300}
export FTD_TEST_RATE=${FTD_TEST_RATE:-10}
# Re-protection crawling while a round of traffic is checked (10c).
export FTD_TEST_SLOW_RATE=${FTD_TEST_SLOW_RATE:-6}
exec ./failover.sh
