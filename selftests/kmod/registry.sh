#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The VM registry through ftctl, as an operator uses it (in the guest).
#
#   ftvm-$$-host                       ftvm-$$-vmN (N = 1..3)
#   +-----------------------+          +----------------+
#   | ftctl, ftctl monitor  |          |                |
#   |   hN ==================== veth ===== eth0        |
#   |   dum0 (dummy)        |          | 02:00:00:00:0N |
#   +-----------------------+          +----------------+
#
# Checks ftctl's vm commands and its errors (the kernel's extack text,
# non-zero exit, nothing changed), vm-failed events through ftctl
# monitor when a VM's namespace disappears, that only CAP_NET_ADMIN may
# change the registry, and that ftvm.ko unloads with VMs registered and
# a listener subscribed, and loads again.

set -u
source "$(dirname "$0")/../lib/ktap.sh"

NAME=registry
# shellcheck source=../lib/registry-env.sh
source "$(dirname "$0")/../lib/registry-env.sh"
MONPID=
stop_monitor() { [[ -z $MONPID ]] || kill "$MONPID" 2>/dev/null; }
registry_cleanup_more=stop_monitor

ip netns add "$H"
nh ip link set lo up
for i in 1 2 3; do
	ip netns add "ftvm-$$-vm$i"
	nh ip link add "h$i" type veth peer name eth0 netns "ftvm-$$-vm$i"
	ip -n "ftvm-$$-vm$i" link set eth0 address "02:00:00:00:00:0$i"
	ip -n "ftvm-$$-vm$i" link set eth0 up
	nh ip link set "h$i" up
done
modprobe -q dummy
nh ip link add dum0 type dummy
nh ip link add dum1 type dummy
nh ip link set dum1 up
nh ip link set dum0 up

ktap_begin 35

# An empty registry lists nothing, in text and JSON.
ktap_check "empty registry: JSON list is []" \
	bash -c "[[ \$(ip netns exec $H $FTCTL -j vm list) == '[]' ]]"

ktap_check "vm add on a veth, MAC from its peer" ft vm add vm1 id 1 dev h1
ktap_check "vm add with an abbreviated verb" ft vm a vm2 id 2 dev h2
ktap_check "vm add on a device without a peer, with mac" \
	ft vm add vm3 id 3 dev dum0 mac 02:00:00:00:00:33

ft -j vm list >"$TMP/list.json"
ktap_check "vm list -j shows the three VMs with their MACs and devices" \
	python3 - "$TMP/list.json" <<'EOF'
import json, sys
vms = {v["id"]: v for v in json.load(open(sys.argv[1]))}
assert sorted(vms) == [1, 2, 3], vms
assert vms[1]["name"] == "vm1" and vms[1]["dev"] == "h1", vms[1]
assert vms[1]["mac"] == "02:00:00:00:00:01", vms[1]
assert vms[2]["mac"] == "02:00:00:00:00:02", vms[2]
assert vms[3]["mac"] == "02:00:00:00:00:33" and vms[3]["dev"] == "dum0", vms[3]
assert all(v["state"] == "up" and v["ifindex"] > 0 for v in vms.values()), vms
EOF
ktap_check "vm show by name" bash -c "ip netns exec $H $FTCTL vm show vm2 | grep -q '^2 .*vm2 .*h2 .*02:00:00:00:00:02 up'"
ktap_check "vm show by id" bash -c "ip netns exec $H $FTCTL -j vm show id 3 | grep -q '\"name\":\"vm3\"'"

# Global options go after the object and verb too, iproute2 style.
ft -j vm list >"$TMP/opt-before.json"
ft vm list -j >"$TMP/opt-after.json"
ktap_check "vm list -j is ftctl -j vm list" \
	python3 - "$TMP/opt-before.json" "$TMP/opt-after.json" <<'EOF'
import json, sys
a, b = (open(f).read() for f in sys.argv[1:])
assert a == b, (a, b)
assert sorted(v["id"] for v in json.loads(b)) == [1, 2, 3], b
EOF
ft vm show id 3 -p >"$TMP/opt-show.json"
ktap_check "vm show id 3 -p is vm3 in indented JSON" \
	python3 - "$TMP/opt-show.json" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
assert "\n " in text, text
v = json.loads(text)
v = v[0] if isinstance(v, list) else v
assert v["name"] == "vm3", text
EOF

expect_error "a VM id added twice" "VM id already registered" vm add again id 1 dev dum0 mac 02:00:00:00:00:44
expect_error "a VM name added twice" "VM name already in use" vm add vm1 id 9 dev dum0 mac 02:00:00:00:00:44
expect_error "a device that does not exist" "unknown device" vm add vm9 id 9 dev nosuch0
expect_error "a device that carries another VM" "another VM" vm add vm9 id 9 dev h1
expect_error "a multicast MAC" "bad MAC" vm add vm9 id 9 dev dum1 mac 01:00:5e:00:00:01
expect_error "a malformed MAC" "invalid MAC address" vm add vm9 id 9 dev dum0 mac 02:00:00:00:00
expect_error "an id out of range" "invalid VM id" vm add vm9 id 4096 dev dum0
expect_error "a missing id" "needs NAME" vm add vm9 dev dum0
expect_error "a key without its value" "needs a value" vm add vm9 id
expect_error "deleting a VM that is not there" "no VM with this name" vm del nosuch
expect_error "an unknown verb" "unknown command" vm frobnicate
expect_error "an unknown object" "unknown" frobnicate

# Only CAP_NET_ADMIN may change the registry; anyone may read it.  The
# genetlink core refuses without a message; ftctl says what it means.
ktap_check "an unprivileged user may list" ft_nobody vm list
noperm="permission denied: changing the VM registry needs CAP_NET_ADMIN"
expect_error_nobody "an unprivileged user may not add" "$noperm" \
	vm add vm9 id 9 dev dum1 mac 02:00:00:00:00:44
expect_error_nobody "an unprivileged user may not set" "$noperm" \
	vm set vm3 mac 02:00:00:00:00:55
expect_error_nobody "an unprivileged user may not fail a VM" "$noperm" vm fail vm3
expect_error_nobody "an unprivileged user may not delete" "$noperm" vm del vm3

# Events: a VM whose namespace disappears takes its veth with it.
ft -j monitor >"$TMP/mon" 2>&1 &
MONPID=$!
probe=0
monitor_ready() {
	probe=$((probe + 1))
	ft vm add probe id 99 dev dum1 mac 02:00:00:00:00:99 >/dev/null 2>&1
	ft vm del probe >/dev/null 2>&1
	grep -q '"event":"vm-del","id":99' "$TMP/mon"
}
ktap_check "ftctl monitor is listening" wait_for 10 monitor_ready
ip netns del "ftvm-$$-vm2"
ktap_check "vm-failed for vm2 when its namespace is deleted" \
	wait_for 10 grep -q '"event":"vm-failed","id":2,"name":"vm2","state":"failed"' "$TMP/mon"
ip -n "ftvm-$$-vm1" link set eth0 down
ktap_check "vm-failed for vm1 when the VM's side goes down (carrier lost)" \
	wait_for 10 grep -q '"event":"vm-failed","id":1,.*"reason":"carrier-lost"' "$TMP/mon"
ktap_check "ftctl vm fail reports a hung VM" ft vm fail vm3
ktap_check "... and monitor shows it" \
	wait_for 10 grep -q '"event":"vm-failed","id":3,.*"reason":"reported"' "$TMP/mon"
ktap_check "vm list shows the failed VMs with their reasons" \
	bash -c "ip netns exec $H $FTCTL vm list | grep -q 'vm1 .* failed (carrier-lost)'"

# Unload with VMs registered and a listener subscribed; load again.
if rmmod ftvm; then
	ktap_ok "rmmod with VMs registered and a listener subscribed"
else
	ktap_fail "rmmod with VMs registered and a listener subscribed"
fi
ktap_check "load again" insmod "$TOP/ftvm.ko"
ktap_check "the new instance starts with an empty registry" \
	bash -c "[[ \$(ip netns exec $H $FTCTL -j vm list) == '[]' ]]"
kill "$MONPID" 2>/dev/null
wait "$MONPID" 2>/dev/null
MONPID=

ktap_end
