#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Silent exit (kmod/exit.c), without ftd: a VM registered with
# "silent-exit on" whose server process is SIGKILLed ends its clients'
# connections without a packet, is muted (a client packet meets no
# RST, a datagram no ICMP), and is declared failed (reason "killed");
# a polite signal, and a VM without the option, end them as usual.  The
# killed server's connection is kept as it is, muted, still taking what
# the client sends: a snapshot then has it all, and restored in another
# VM the connection goes on with it.
#
#   ftvm-$$-host (registry, clients)        ftvm-$$-vmN (N = 1..5)
#   +------------------------------+        +-------------------------+
#   | hN 198.18.N.254/24 ==================== eth0 198.18.N.1/24       |
#   |                              |        | echo tcp 7000, udp 7001 |
#   +------------------------------+        +-------------------------+

set -u
source "$(dirname "$0")/../lib/ktap.sh"

NAME=silent
# shellcheck source=../lib/registry-env.sh
source "$(dirname "$0")/../lib/registry-env.sh"
ECHO=$TOP/user/examples/echo
[[ -x $ECHO ]] || ktap_skip_all "user/examples/echo is not built"

ip netns add "$H"
nh ip link set lo up
for i in 1 2 3 4 5; do
	ip netns add "ftvm-$$-vm$i"
	V $i ip link set lo up
	nh ip link add "h$i" type veth peer name eth0 netns "ftvm-$$-vm$i"
	nh ip addr add "198.18.$i.254/24" dev "h$i"
	nh ip link set "h$i" up
	V $i ip addr add "198.18.$i.1/24" dev eth0
	V $i ip link set eth0 up
done

# The client: connect (TCP or connected UDP), check one echo, say
# "ready", wait for $TMP/go.N, send again and tell what came back within
# 2 s: "data", "eof" (a FIN), "reset" (an RST), "refused" (ICMP port
# unreachable) or "silent" (nothing).
cat >"$TMP/cli.py" <<'EOF'
import os, socket, sys, time
proto, addr, port, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if proto == "tcp":
    s = socket.create_connection((addr, port), timeout=5)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.connect((addr, port))
s.send(b"ping")
assert s.recv(16) == b"ping"
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.05)
s.settimeout(2)
try:
    s.send(b"again")
    d = s.recv(16)
    print("eof" if not d else "data")
except socket.timeout:
    print("silent")
except ConnectionResetError:
    print("reset")
except ConnectionRefusedError:
    print("refused")
EOF

# serve N: (re)start VM N's echo servers.
serve() {
	local n=$1
	V $n "$ECHO" tcp 7000 >/dev/null 2>&1 &
	V $n "$ECHO" udp 7001 >/dev/null 2>&1 &
	wait_for 10 sh -c "ip netns exec ftvm-$$-vm$n ss -Htln 'sport = :7000' | grep -q ." &&
		wait_for 10 sh -c "ip netns exec ftvm-$$-vm$n ss -Huln 'sport = :7001' | grep -q ."
}

# client ID PROTO N PORT: start a client of VM N; wait until it is ready.
client() {
	local id=$1
	rm -f "$TMP/go.$id"
	nh python3 "$TMP/cli.py" "$2" "198.18.$3.1" "$4" "$TMP/go.$id" \
		>"$TMP/out.$id" 2>&1 &
	wait_for 10 grep -q ready "$TMP/out.$id"
}

# outcome ID: what client ID saw after its second send.
outcome() {
	touch "$TMP/go.$1"
	wait_for 10 sh -c "[ \$(wc -l <'$TMP/out.$1') -ge 2 ]" || return 1
	tail -1 "$TMP/out.$1"
}

# killserver N SIG PROTO: kill VM N's echo server of PROTO with SIG, and
# wait until it is gone.
killserver() {
	local pid
	pid=$(V $1 ss -Hlnp${3:0:1} "sport = :$([[ $3 == tcp ]] && echo 7000 || echo 7001)" |
		sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
	[[ -n $pid ]] && kill -"$2" "$pid" || return 1
	wait_for 10 sh -c "! kill -0 $pid 2>/dev/null"
}

# strike ID PROTO N SIG [REASON]: client ID of VM N's echo server of
# PROTO, the server killed with SIG (with REASON: until VM N has failed
# for it); prints what the client saw next (see cli.py).
strike() {
	local id=$1 proto=$2 n=$3 sig=$4 reason=${5:-}
	failed() { [[ $(vm_field vm$n reason) == "$reason" ]]; }
	client "$id" "$proto" "$n" "$([[ $proto == tcp ]] && echo 7000 || echo 7001)" || return 1
	killserver "$n" "$sig" "$proto" || return 1
	[[ -z $reason ]] || wait_for 10 failed || { ft vm show vm$n >&2; return 1; }
	outcome "$id"
}

# saw OUTCOME WANTED: the outcome is one of WANTED ("a|b").
saw() {
	local a alt
	IFS='|' read -ra alt <<<"$2"
	for a in "${alt[@]}"; do [[ $1 == "$a" ]] && return 0; done
	echo "the client saw: $1"
	return 1
}

vm_json() { ft -j vm show "$1"; }
vm_field() {
	vm_json "$1" | python3 -c 'import json,sys; v=json.load(sys.stdin); v=v[0] if isinstance(v,list) else v; print(v.get(sys.argv[1]))' "$2"
}

ktap_begin 16

expect_error "silent-exit without the VM's namespace" "needs the VM's network namespace" \
	vm add vm1 id 1 dev h1 silent-exit on
expect_error "silent-exit in the registry's own namespace" "would mute the host" \
	vm add vm1 id 1 dev h1 netns "$H" silent-exit on
expect_error "a bad silent-exit value" "expected on or off" \
	vm add vm1 id 1 dev h1 netns ftvm-$$-vm1 silent-exit yes

setup_vms() {
	ft vm add vm1 id 1 dev h1 netns ftvm-$$-vm1 silent-exit on &&
	ft vm add vm2 id 2 dev h2 netns ftvm-$$-vm2 &&
	ft vm set vm2 silent-exit on &&
	ft vm add vm3 id 3 dev h3 netns ftvm-$$-vm3 &&
	[[ $(vm_field vm1 silent_exit) == True && $(vm_field vm2 silent_exit) == True &&
	   $(vm_field vm3 silent_exit) == False ]] &&
	serve 1 && serve 2 && serve 3
}
ktap_check "VMs with and without silent-exit, echo servers in them" setup_vms
expect_error "a namespace another VM watches already" "another VM already watches" \
	vm set vm3 netns ftvm-$$-vm1 silent-exit on

# SIGKILL in a watched VM: no FIN, no RST, the VM failed (killed).
killed() {
	local o
	o=$(strike k1 tcp 1 KILL killed) && saw "$o" silent || return 1
	# The connection is kept as it was, nobody's, not closing from its
	# side: established, or close-wait once the client (which has
	# exited) sent its FIN.  The only socket left on the port.
	[[ $(V 1 ss -Htn state all "sport = :7000" | awk '{ print $1 }') == @(ESTAB|CLOSE-WAIT) ]] ||
		{ V 1 ss -tn state all; return 1; }
}
ktap_check "SIGKILL with silent-exit: the client sees neither FIN nor RST, the VM fails (killed)" killed
ktap_check "the kernel says what it did" \
	sh -c "dmesg | grep -q 'vm 1 (vm1): a process was killed by signal 9; its connections ended silently'"

# Brought back up, the VM is heard from again: its kernel resets what it
# no longer knows (the connection did go).
unmuted() {
	rm -f "$TMP/go.k1"
	ft vm set vm1 state up || return 1
	[[ $(vm_field vm1 state) == up ]] || return 1
	# What was kept went first, without a packet.
	[[ -z $(V 1 ss -Htn state all "sport = :7000") ]] ||
		{ V 1 ss -tn state all; return 1; }
	# Muted, a SYN would meet nothing; heard from, it meets an RST.
	nh python3 - "198.18.1.1" <<'EOF' || return 1
import socket, sys
try:
    socket.create_connection((sys.argv[1], 7000), timeout=3)
except ConnectionRefusedError:
    sys.exit(0)
except Exception as e:
    sys.exit("not refused: %r" % e)
sys.exit("connected to a server that is dead")
EOF
	serve 1
}
ktap_check "brought back up: the VM is heard from again" unmuted

# A polite signal in a watched VM: the client sees the end; VM up.
polite() {
	local o
	o=$(strike t2 tcp 2 TERM) && saw "$o" "eof|reset" || return 1
	[[ $(vm_field vm2 state) == up ]] || { ft vm show vm2; return 1; }
}
ktap_check "SIGTERM with silent-exit: the client sees the end, the VM stays up" polite

# SIGKILL in a VM without the option: as a namespace does.
plain() {
	local o
	o=$(strike k3 tcp 3 KILL) && saw "$o" "eof|reset" || return 1
	[[ $(vm_field vm3 state) == up ]] || { ft vm show vm3; return 1; }
}
ktap_check "SIGKILL without silent-exit: the client sees the end, the VM stays up" plain

# UDP: a killed server's port answers no ICMP; the VM fails.
udp() {
	local o
	o=$(strike u2 udp 2 KILL killed) && saw "$o" silent
}
ktap_check "a UDP server SIGKILLed with silent-exit: no port unreachable, the VM fails" udp

# The same UDP kill in a VM without the option: the port is unreachable.
udp_plain() {
	local o
	o=$(strike u3 udp 3 KILL) && saw "$o" refused
}
ktap_check "the same without silent-exit: port unreachable" udp_plain

# Turning the option off stops the watch: a SIGKILL is a namespace's again.
off() {
	local o
	ft vm set vm1 silent-exit off || return 1
	[[ $(vm_field vm1 silent_exit) == False ]] || return 1
	o=$(strike k1b tcp 1 KILL) && saw "$o" "eof|reset" || return 1
	[[ $(vm_field vm1 state) == up ]]
}
ktap_check "silent-exit off: the watch is gone" off

# A watched, muted namespace when the module goes: it unloads, loads.
unload() {
	ft vm set vm1 silent-exit on || return 1
	rmmod ftvm || return 1
	insmod "$TOP/ftvm.ko" || return 1
	[[ $(ft -j vm list) == '[]' ]]
}
ktap_check "ftvm.ko unloads with watched and muted namespaces, and loads again" unload

# Last words: vm4's server is killed, then its client sends; the kept
# connection takes it in (muted: no ACK).  A snapshot has it in the
# receive queue; restored in vm5 (the client's route moved there), the
# connection goes on with it: vm5's server echoes what vm4's never read.
cat >"$TMP/lw.py" <<'EOF'
import os, socket, sys, time
addr, go1, go2 = sys.argv[1:4]
def wait(path):
    while not os.path.exists(path):
        time.sleep(0.05)
s = socket.create_connection((addr, 7000), timeout=5)
s.sendall(b"ping")
assert s.recv(16) == b"ping"
print("ready", flush=True)
wait(go1)
s.sendall(b"hello")
print("sent", flush=True)
wait(go2)
s.settimeout(10)
got = b""
while len(got) < 5:
    d = s.recv(16)
    if not d:
        sys.exit("eof")
    got += d
s.sendall(b"again")
d = s.recv(16)
print("ok %s %s" % (got.decode(), d.decode()), flush=True)
EOF
STATE=$TOP/user/examples/ftvm-state
last_words() {
	local lw=$TMP/lw
	ft vm add vm4 id 4 dev h4 netns ftvm-$$-vm4 silent-exit on &&
	ft vm add vm5 id 5 dev h5 netns ftvm-$$-vm5 || return 1
	V 5 ip addr add 198.18.4.1/32 dev lo
	V 5 ip route add 198.18.4.254/32 dev eth0
	serve 4 && serve 5 || return 1
	nh python3 "$TMP/lw.py" 198.18.4.1 "$lw.go1" "$lw.go2" >"$lw.out" 2>&1 &
	wait_for 10 grep -q ready "$lw.out" || { cat "$lw.out"; return 1; }
	killserver 4 KILL tcp || return 1
	killed4() { [[ $(vm_field vm4 reason) == killed ]]; }
	wait_for 10 killed4 || { ft vm show vm4; return 1; }
	touch "$lw.go1"
	wait_for 10 grep -q sent "$lw.out" || { cat "$lw.out"; return 1; }
	# The bytes reach the kept socket's receive queue.
	rcvq() { [[ $(V 4 ss -Htn state established "sport = :7000" | awk '{ print $1 }') == 5 ]]; }
	wait_for 10 rcvq || { V 4 ss -tn; return 1; }
	nh "$STATE" netns 4 /run/netns/ftvm-$$-vm4 >/dev/null &&
	nh "$STATE" netns 5 /run/netns/ftvm-$$-vm5 >/dev/null || return 1
	nh "$STATE" dump 4 7000 proto tcp out "$lw.rec" | grep -q '^records 1 ' || return 1
	# FTVM_A_RCVQ (5), after the record's nest: the bytes vm4 never read.
	python3 - "$lw.rec" <<'EOF' || return 1
import struct, sys
b = open(sys.argv[1], "rb").read()
off, q = 0, None
while off + 4 <= len(b):
    ln, ty = struct.unpack_from("HH", b, off)
    if ty & 0x3fff == 5:
        q = b[off + 4:off + ln]
    off += (ln + 3) & ~3
sys.exit(0 if q == b"hello" else "receive queue in the record: %r" % q)
EOF
	nh "$STATE" restore 5 "$lw.rec" | grep -q '^count 1' || return 1
	nh ip route add 198.18.4.1/32 dev h5 || return 1
	touch "$lw.go2"
	wait_for 15 grep -q '^ok hello again' "$lw.out" || { cat "$lw.out"; return 1; }
}
ktap_check "last words: a killed server's connection kept, its client's later bytes snapshotted and delivered in another VM" \
	last_words

# The namespace goes while watched: nothing is left behind.
gone() {
	ft vm add vm3 id 3 dev h3 netns ftvm-$$-vm3 silent-exit on || return 1
	ip netns del ftvm-$$-vm3 || return 1
	wait_for 10 sh -c "[ \"\$(ip netns exec $H $FTCTL -j vm show vm3 | grep -o '\"state\":\"failed\"')\" ]"
}
ktap_check "a watched namespace deleted: the VM fails as its device goes" gone

ktap_end
