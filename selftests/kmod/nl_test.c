// SPDX-License-Identifier: GPL-2.0
/*
 * The VM registry of ftvm.ko, tested at the netlink level (in the guest).
 *
 * The test unshares a fresh network namespace and builds this there:
 *
 *      h1 ====== p1      veth (VM MAC = p1's address)
 *      h2 ====== p2      veth
 *      h3 ====== p3      veth
 *      h4 ====== p4      veth, host end left down
 *      tap0              tap, kept open by this process (a "VM")
 *      dum0              dummy (Ethernet, no peer)
 *      lo
 *
 * then checks:
 *  - every malformed or impossible request of a table is refused with
 *    its errno and its extack text, and leaves the registry unchanged;
 *  - add, get (by id and name), dump (also a dump larger than one
 *    message buffer), set, delete do what they say;
 *  - vm-failed events arrive on the events group, with the VM id, the
 *    reason and a CLOCK_MONOTONIC time inside the window of the trigger,
 *    for a device set down, a veth whose peer went down, a device
 *    deleted, a tap whose process closed it, and userspace reports;
 *  - thousands of add/delete cycles and a namespace torn down with VMs
 *    in it leave no VM object behind (slab counts back to baseline);
 *  - the staged store (UDP records staged in this namespace, vm1's):
 *    restaging replaces, named discards and activations act on the
 *    sessions named only, and every malformed or impossible stage,
 *    activation and nudge is refused with its extack text and leaves
 *    the staged records as they were;
 *  - output commit: every malformed commit-set is refused with its
 *    extack text and sets nothing; a strict service is set, updated in
 *    place, bounded in number, reported by commit-get with its
 *    counters, and forgotten when relaxed.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../user/lib/ftnl.h"
#include "../../user/lib/util.h"
#include "../lib/ksft.h"

static struct ftnl nl;

static void sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd))
		ksft_exit_fail_msg("setup command failed: %s\n", cmd);
}

/* Requests are built from attribute lists, so tests are data. */
enum akind { A_END, A_U32, A_U16, A_U8, A_STR, A_BIN, A_FLAG };

struct attr {
	int type;
	enum akind kind;
	uint32_t u;
	const char *s;
	int len;
};

#define U32(t, v)	{ t, A_U32, v, NULL, 0 }
#define U16(t, v)	{ t, A_U16, v, NULL, 0 }
#define U8(t, v)	{ t, A_U8, v, NULL, 0 }
#define STR(t, v)	{ t, A_STR, 0, v, 0 }
#define BIN(t, v, l)	{ t, A_BIN, 0, v, l }
#define FLAG(t)		{ t, A_FLAG, 0, NULL, 0 }

static int put_attrs(struct nl_msg *msg, const struct attr *a)
{
	int err = 0;

	for (; a && a->kind != A_END && !err; a++) {
		switch (a->kind) {
		case A_U32: err = nla_put_u32(msg, a->type, a->u); break;
		case A_U16: err = nla_put_u16(msg, a->type, a->u); break;
		case A_U8:  err = nla_put_u8(msg, a->type, a->u); break;
		case A_STR: err = nla_put_string(msg, a->type, a->s); break;
		case A_BIN: err = nla_put(msg, a->type, a->len, a->s); break;
		case A_FLAG: err = nla_put_flag(msg, a->type); break;
		default: break;
		}
	}
	return err;
}

/* Send @cmd with FTVM_A_VM holding @vm (none when @no_nest) and @top. */
static int request(uint8_t cmd, const struct attr *vm, bool no_nest,
		   const struct attr *top, int flags,
		   nl_recvmsg_msg_cb_t cb, void *arg)
{
	struct nl_msg *msg = ftnl_msg(&nl, cmd, flags);
	struct nlattr *nest;

	if (!msg)
		return -ENOMEM;
	if (!no_nest) {
		nest = nla_nest_start(msg, FTVM_A_VM);
		if (!nest || put_attrs(msg, vm)) {
			nlmsg_free(msg);
			return -EMSGSIZE;
		}
		nla_nest_end(msg, nest);
	}
	if (put_attrs(msg, top)) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	return ftnl_call(&nl, msg, cb, arg);
}

/* A VM as a reply describes it. */
struct vm_info {
	uint32_t id, ifindex;
	char name[FTVM_VM_NAME_LEN];
	uint8_t mac[6];
	uint8_t state, reason;
	uint64_t fail_time;
	uint32_t armed_ms;	/* FTVM_A_HOLD_ARMED_MS, when replied */
	uint8_t cmd;
};

static bool parse_vm(struct nl_msg *msg, struct vm_info *v)
{
	struct nlattr *tb[FTVM_A_MAX + 1], *a[FTVM_A_VM_MAX + 1];

	memset(v, 0, sizeof(*v));
	v->cmd = ((struct genlmsghdr *)nlmsg_data(nlmsg_hdr(msg)))->cmd;
	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, FTVM_A_MAX, NULL) ||
	    !tb[FTVM_A_VM] ||
	    nla_parse_nested(a, FTVM_A_VM_MAX, tb[FTVM_A_VM], NULL) ||
	    !a[FTVM_A_VM_ID] || !a[FTVM_A_VM_NAME] || !a[FTVM_A_VM_MAC] ||
	    !a[FTVM_A_VM_STATE] || !a[FTVM_A_VM_IFINDEX])
		return false;
	v->id = nla_get_u32(a[FTVM_A_VM_ID]);
	v->ifindex = nla_get_u32(a[FTVM_A_VM_IFINDEX]);
	snprintf(v->name, sizeof(v->name), "%s", nla_get_string(a[FTVM_A_VM_NAME]));
	memcpy(v->mac, nla_data(a[FTVM_A_VM_MAC]), 6);
	v->state = nla_get_u8(a[FTVM_A_VM_STATE]);
	if (a[FTVM_A_VM_FAIL_REASON])
		v->reason = nla_get_u8(a[FTVM_A_VM_FAIL_REASON]);
	if (a[FTVM_A_VM_FAIL_TIME])
		v->fail_time = nla_get_u64(a[FTVM_A_VM_FAIL_TIME]);
	if (a[FTVM_A_VM_HOLD]) {
		struct nlattr *h[FTVM_A_HOLD_MAX + 1];

		if (nla_parse_nested(h, FTVM_A_HOLD_MAX, a[FTVM_A_VM_HOLD], NULL))
			return false;
		if (h[FTVM_A_HOLD_ARMED_MS])
			v->armed_ms = nla_get_u32(h[FTVM_A_HOLD_ARMED_MS]);
	}
	return true;
}

struct dump {
	int n, bad;
	char text[64 * 1024];
	size_t off;
	unsigned char seen[FTVM_VM_ID_MAX + 1];
	int dups;
	struct vm_info last;
};

static int dump_cb(struct nl_msg *msg, void *arg)
{
	struct dump *d = arg;
	struct vm_info v;
	char mac[18];

	if (!parse_vm(msg, &v)) {
		d->bad++;
		return NL_OK;
	}
	if (d->seen[v.id]++)
		d->dups++;
	d->n++;
	d->last = v;
	format_mac(v.mac, mac, sizeof(mac));
	if (d->off < sizeof(d->text) - 128)
		d->off += snprintf(d->text + d->off, sizeof(d->text) - d->off,
				   "%u %s %u %s %u %u\n", v.id, v.name,
				   v.ifindex, mac, v.state, v.reason);
	return NL_OK;
}

static int dump_all(struct dump *d)
{
	memset(d, 0, sizeof(*d));
	return request(FTVM_CMD_VM_GET, NULL, true, NULL, NLM_F_DUMP,
		       dump_cb, d);
}

/* The bad-request table. */
struct bad_case {
	const char *desc;
	uint8_t cmd;
	bool no_nest;
	struct attr vm[8];
	struct attr top[2];
	int err;
	const char *msg;
};

static const uint8_t mac_ok[6] = { 0x02, 0, 0, 0, 0, 0x42 };
static const uint8_t mac_mcast[6] = { 0x01, 0, 0x5e, 0, 0, 1 };
static const uint8_t mac_zero[6] = { 0 };

#define ATTR_END { 0, A_END, 0, NULL, 0 }

static const struct bad_case bad_cases[] = {
	{ "new without a VM nest", FTVM_CMD_VM_NEW, true, { ATTR_END }, { ATTR_END },
	  -EINVAL, "needs a VM" },
	{ "new without an id", FTVM_CMD_VM_NEW, false,
	  { STR(FTVM_A_VM_NAME, "x"), STR(FTVM_A_VM_IFNAME, "h2") }, { ATTR_END },
	  -EINVAL, "id is required" },
	{ "new without a name", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_IFNAME, "h2") }, { ATTR_END },
	  -EINVAL, "name is required" },
	{ "new without a device", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "x") }, { ATTR_END },
	  -EINVAL, "device is required" },
	{ "id 0", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 0), STR(FTVM_A_VM_NAME, "x"), STR(FTVM_A_VM_IFNAME, "h2") },
	  { ATTR_END }, -ERANGE, "out of range" },
	{ "id above the maximum", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, FTVM_VM_ID_MAX + 1), STR(FTVM_A_VM_NAME, "x"),
	    STR(FTVM_A_VM_IFNAME, "h2") }, { ATTR_END }, -ERANGE, "out of range" },
	{ "id of the wrong size", FTVM_CMD_VM_NEW, false,
	  { U16(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "x"), STR(FTVM_A_VM_IFNAME, "h2") },
	  { ATTR_END }, -EINVAL, "invalid attribute length" },
	{ "name too long", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "abcdefghijklmnopqrstuvwxyz0123456"),
	    STR(FTVM_A_VM_IFNAME, "h2") }, { ATTR_END }, -EINVAL, "policy" },
	{ "name with a space", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "a b"), STR(FTVM_A_VM_IFNAME, "h2") },
	  { ATTR_END }, -EINVAL, "bad name" },
	{ "empty name", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, ""), STR(FTVM_A_VM_IFNAME, "h2") },
	  { ATTR_END }, -EINVAL, "bad name" },
	{ "unknown device", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "x"), STR(FTVM_A_VM_IFNAME, "nosuch0") },
	  { ATTR_END }, -ENODEV, "unknown device" },
	{ "unknown ifindex", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "x"), U32(FTVM_A_VM_IFINDEX, 99999) },
	  { ATTR_END }, -ENODEV, "unknown device" },
	{ "ifindex 0", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "x"), U32(FTVM_A_VM_IFINDEX, 0) },
	  { ATTR_END }, -ERANGE, "out of range" },
	{ "ifindex and ifname both", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "x"), U32(FTVM_A_VM_IFINDEX, 1),
	    STR(FTVM_A_VM_IFNAME, "h2") }, { ATTR_END }, -EINVAL, "not both" },
	{ "loopback device", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "x"), STR(FTVM_A_VM_IFNAME, "lo") },
	  { ATTR_END }, -EINVAL, "not an Ethernet device" },
	{ "device down", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "x"), STR(FTVM_A_VM_IFNAME, "h4") },
	  { ATTR_END }, -ENETDOWN, "device is down" },
	{ "device without a peer and no MAC", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "x"), STR(FTVM_A_VM_IFNAME, "dum0") },
	  { ATTR_END }, -EINVAL, "MAC is needed" },
	{ "multicast MAC", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "x"), STR(FTVM_A_VM_IFNAME, "dum0"),
	    BIN(FTVM_A_VM_MAC, (const char *)mac_mcast, 6) }, { ATTR_END }, -EINVAL, "bad MAC" },
	{ "zero MAC", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "x"), STR(FTVM_A_VM_IFNAME, "dum0"),
	    BIN(FTVM_A_VM_MAC, (const char *)mac_zero, 6) }, { ATTR_END }, -EINVAL, "bad MAC" },
	{ "MAC of 5 bytes", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "x"), STR(FTVM_A_VM_IFNAME, "dum0"),
	    BIN(FTVM_A_VM_MAC, (const char *)mac_ok, 5) }, { ATTR_END }, -ERANGE,
	  "binary attribute size out of range" },
	{ "duplicate id", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 1), STR(FTVM_A_VM_NAME, "x"), STR(FTVM_A_VM_IFNAME, "h2") },
	  { ATTR_END }, -EEXIST, "id already registered" },
	{ "duplicate name", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "vm1"), STR(FTVM_A_VM_IFNAME, "h2") },
	  { ATTR_END }, -EEXIST, "name already in use" },
	{ "device of another VM", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "x"), STR(FTVM_A_VM_IFNAME, "h1") },
	  { ATTR_END }, -EBUSY, "another VM" },
	{ "state in a new VM", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "x"), STR(FTVM_A_VM_IFNAME, "h2"),
	    U8(FTVM_A_VM_STATE, FTVM_VM_STATE_UP) }, { ATTR_END }, -EINVAL, "always up" },
	{ "failure reason from userspace", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "x"), STR(FTVM_A_VM_IFNAME, "h2"),
	    U8(FTVM_A_VM_FAIL_REASON, 1) }, { ATTR_END }, -EINVAL, "set by the kernel" },
	{ "hold counters from userspace", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "x"), STR(FTVM_A_VM_IFNAME, "h2"),
	    U32(FTVM_A_VM_HOLD, 1) }, { ATTR_END }, -EINVAL, "reported by the kernel" },
	{ "unknown nested attribute", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "x"), STR(FTVM_A_VM_IFNAME, "h2"),
	    U32(FTVM_A_VM_MAX + 5, 1) }, { ATTR_END }, -EINVAL, "Unknown attribute type" },
	{ "unknown top-level attribute", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "x"), STR(FTVM_A_VM_IFNAME, "h2") },
	  { U32(FTVM_A_MAX + 3, 1), ATTR_END }, -EINVAL, "Unknown attribute type" },
	{ "delete an unknown id", FTVM_CMD_VM_DEL, false, { U32(FTVM_A_VM_ID, 77) },
	  { ATTR_END }, -ENOENT, "no VM with this id" },
	{ "delete an unknown name", FTVM_CMD_VM_DEL, false, { STR(FTVM_A_VM_NAME, "nope") },
	  { ATTR_END }, -ENOENT, "no VM with this name" },
	{ "delete without a VM nest", FTVM_CMD_VM_DEL, true, { ATTR_END }, { ATTR_END },
	  -EINVAL, "needs a VM" },
	{ "delete without a selector", FTVM_CMD_VM_DEL, false,
	  { BIN(FTVM_A_VM_MAC, (const char *)mac_ok, 6) }, { ATTR_END },
	  -EINVAL, "id or name required" },
	{ "get an unknown id", FTVM_CMD_VM_GET, false, { U32(FTVM_A_VM_ID, 77) },
	  { ATTR_END }, -ENOENT, "no VM with this id" },
	{ "set nothing", FTVM_CMD_VM_SET, false, { U32(FTVM_A_VM_ID, 1) }, { ATTR_END },
	  -EINVAL, "nothing to change" },
	{ "rename onto another VM's name", FTVM_CMD_VM_SET, false,
	  { U32(FTVM_A_VM_ID, 1), STR(FTVM_A_VM_NAME, "vm2") }, { ATTR_END },
	  -EEXIST, "name already in use" },
	{ "set state failed", FTVM_CMD_VM_SET, false,
	  { U32(FTVM_A_VM_ID, 1), U8(FTVM_A_VM_STATE, FTVM_VM_STATE_FAILED) }, { ATTR_END },
	  -ERANGE, "out of range" },
	{ "rebind onto another VM's device", FTVM_CMD_VM_SET, false,
	  { U32(FTVM_A_VM_ID, 1), STR(FTVM_A_VM_IFNAME, "tap0") }, { ATTR_END },
	  -EBUSY, "another VM" },
	{ "fail an unknown VM", FTVM_CMD_VM_FAIL, false, { STR(FTVM_A_VM_NAME, "nope") },
	  { ATTR_END }, -ENOENT, "no VM with this name" },
	{ "a registration that resumes a failover", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "x"), STR(FTVM_A_VM_IFNAME, "h2"),
	    FLAG(FTVM_A_VM_RESUME) }, { ATTR_END }, -EINVAL, "only a failure" },
	{ "a change that resumes a failover", FTVM_CMD_VM_SET, false,
	  { U32(FTVM_A_VM_ID, 1), STR(FTVM_A_VM_NAME, "y"), FLAG(FTVM_A_VM_RESUME) },
	  { ATTR_END }, -EINVAL, "only a failure" },
	{ "a resume with a value", FTVM_CMD_VM_FAIL, false,
	  { U32(FTVM_A_VM_ID, 1), U8(FTVM_A_VM_RESUME, 1) }, { ATTR_END },
	  -ERANGE, "policy validation" },
	{ "a registration that arms", FTVM_CMD_VM_NEW, false,
	  { U32(FTVM_A_VM_ID, 9), STR(FTVM_A_VM_NAME, "x"), STR(FTVM_A_VM_IFNAME, "h2"),
	    FLAG(FTVM_A_VM_ARM) }, { ATTR_END }, -EINVAL, "only a change" },
	{ "a failure that arms", FTVM_CMD_VM_FAIL, false,
	  { U32(FTVM_A_VM_ID, 1), FLAG(FTVM_A_VM_ARM) }, { ATTR_END },
	  -EINVAL, "only a change" },
	{ "arming with a rename", FTVM_CMD_VM_SET, false,
	  { U32(FTVM_A_VM_ID, 1), STR(FTVM_A_VM_NAME, "y"), FLAG(FTVM_A_VM_ARM) },
	  { ATTR_END }, -EINVAL, "request of its own" },
	{ "arming with a MAC", FTVM_CMD_VM_SET, false,
	  { U32(FTVM_A_VM_ID, 1), BIN(FTVM_A_VM_MAC, (const char *)mac_ok, 6),
	    FLAG(FTVM_A_VM_ARM) }, { ATTR_END }, -EINVAL, "request of its own" },
	{ "arming an unknown VM", FTVM_CMD_VM_SET, false,
	  { U32(FTVM_A_VM_ID, 77), FLAG(FTVM_A_VM_ARM) }, { ATTR_END },
	  -ENOENT, "no VM with this id" },
	{ "arming a VM without a namespace", FTVM_CMD_VM_SET, false,
	  { U32(FTVM_A_VM_ID, 1), FLAG(FTVM_A_VM_ARM) }, { ATTR_END },
	  -EINVAL, "no network namespace" },
	{ "unknown command", 99, false, { U32(FTVM_A_VM_ID, 1) }, { ATTR_END },
	  -EOPNOTSUPP, NULL },
};

static void test_bad_requests(void)
{
	struct dump before, after;

	if (dump_all(&before) || before.n < 3)
		ksft_exit_fail_msg("cannot dump the registry before\n");
	for (size_t i = 0; i < ARRAY_SIZE(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];
		int err = request(c->cmd, c->vm, c->no_nest, c->top, 0, NULL, NULL);
		bool msg_ok = !c->msg || strstr(nl.ext_msg, c->msg);
		char msg[sizeof(nl.ext_msg)];
		bool same;

		memcpy(msg, nl.ext_msg, sizeof(msg));

		if (dump_all(&after))
			ksft_exit_fail_msg("cannot dump the registry after\n");
		same = before.off == after.off && !strcmp(before.text, after.text);
		if (err == c->err && msg_ok && same) {
			ksft_test_result_pass("rejects %s: \"%s\"\n", c->desc, msg);
		} else {
			ksft_print_msg("%s: errno %d (want %d), extack \"%s\" (want \"%s\"), registry %s\n",
				       c->desc, err, c->err, msg,
				       c->msg ? c->msg : "", same ? "unchanged" : "CHANGED");
			ksft_test_result_fail("rejects %s\n", c->desc);
		}
	}
}

static int get_one(const struct attr *sel, struct vm_info *v)
{
	struct dump d;
	int err;

	memset(&d, 0, sizeof(d));
	err = request(FTVM_CMD_VM_GET, sel, false, NULL, 0, dump_cb, &d);
	if (!err && d.n != 1)
		err = -EPROTO;
	*v = d.last;
	return err;
}

/* A device's MAC, read in this namespace (sysfs shows the guest's). */
static int read_mac(const char *dev, uint8_t mac[6])
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err;

	if (fd < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	err = ioctl(fd, SIOCGIFHWADDR, &ifr);
	close(fd);
	if (!err)
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	return err;
}

static int tap_fd = -1;

static int open_tap(const char *name)
{
	struct ifreq ifr = { 0 };
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -1;
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void setup(void)
{
	if (unshare(CLONE_NEWNET))
		ksft_exit_fail_msg("unshare(CLONE_NEWNET): %s\n", strerror(errno));
	if (system("modprobe -q veth; modprobe -q tun; modprobe -q dummy"))
		ksft_print_msg("modprobe failed; devices may be missing\n");
	sh("ip link set lo up");
	for (int i = 1; i <= 4; i++)
		sh("ip link add h%d type veth peer name p%d && ip link set p%d up", i, i, i);
	for (int i = 1; i <= 3; i++)
		sh("ip link set h%d up", i);
	tap_fd = open_tap("tap0");
	if (tap_fd < 0)
		ksft_exit_fail_msg("cannot create tap0: %s\n", strerror(errno));
	sh("ip link set tap0 up && ip link add dum0 type dummy && ip link set dum0 up");
	if (ftnl_open(&nl))
		ksft_exit_fail_msg("the ftvm family is not there: is ftvm.ko loaded?\n");
}

static void test_add_get_dump(void)
{
	const struct attr add1[] = { U32(FTVM_A_VM_ID, 1), STR(FTVM_A_VM_NAME, "vm1"),
				     STR(FTVM_A_VM_IFNAME, "h1"), ATTR_END };
	const struct attr add2[] = { U32(FTVM_A_VM_ID, 2), STR(FTVM_A_VM_NAME, "vm2"),
				     U32(FTVM_A_VM_IFINDEX, if_nametoindex("tap0")),
				     BIN(FTVM_A_VM_MAC, (const char *)mac_ok, 6), ATTR_END };
	const struct attr add3[] = { U32(FTVM_A_VM_ID, 1023), STR(FTVM_A_VM_NAME, "vm.3_x-y"),
				     STR(FTVM_A_VM_IFNAME, "h2"), ATTR_END };
	const struct attr by_name[] = { STR(FTVM_A_VM_NAME, "vm2"), ATTR_END };
	const struct attr by_id[] = { U32(FTVM_A_VM_ID, 1), ATTR_END };
	uint8_t p1mac[6];
	struct vm_info v;
	struct dump d;
	int err;

	err = request(FTVM_CMD_VM_NEW, add1, false, NULL, 0, NULL, NULL);
	ksft_test_result(!err, "add vm1 on a veth (%s)\n", err ? nl.ext_msg : "ok");
	err = request(FTVM_CMD_VM_NEW, add2, false, NULL, 0, NULL, NULL);
	ksft_test_result(!err, "add vm2 on a tap by ifindex, with its MAC\n");
	err = request(FTVM_CMD_VM_NEW, add3, false, NULL, 0, NULL, NULL);
	ksft_test_result(!err, "add the highest id\n");

	read_mac("p1", p1mac);
	err = get_one(by_id, &v);
	if (memcmp(v.mac, p1mac, 6) || v.ifindex != if_nametoindex("h1"))
		ksft_print_msg("vm1: ifindex %u (h1 %u), mac %02x:..:%02x (p1 %02x:..:%02x)\n",
			       v.ifindex, if_nametoindex("h1"), v.mac[0], v.mac[5],
			       p1mac[0], p1mac[5]);
	ksft_test_result(!err && v.id == 1 && !strcmp(v.name, "vm1") &&
			 v.ifindex == if_nametoindex("h1") &&
			 !memcmp(v.mac, p1mac, 6) && v.state == FTVM_VM_STATE_UP,
			 "get by id: name, device, the veth peer's MAC, up\n");
	err = get_one(by_name, &v);
	ksft_test_result(!err && v.id == 2 && !memcmp(v.mac, mac_ok, 6) &&
			 v.ifindex == if_nametoindex("tap0"),
			 "get by name: id, device and the given MAC\n");
	err = dump_all(&d);
	ksft_test_result(!err && d.n == 3 && !d.bad && d.seen[1] && d.seen[2] &&
			 d.seen[1023], "dump lists the three VMs\n");
}

static void test_set(void)
{
	const struct attr rename[] = { U32(FTVM_A_VM_ID, 1023), STR(FTVM_A_VM_NAME, "vm3"), ATTR_END };
	const struct attr mac[] = { STR(FTVM_A_VM_NAME, "vm3"),
				    BIN(FTVM_A_VM_MAC, (const char *)mac_ok, 6), ATTR_END };
	const struct attr rebind[] = { U32(FTVM_A_VM_ID, 1023), STR(FTVM_A_VM_IFNAME, "h3"), ATTR_END };
	const struct attr sel[] = { U32(FTVM_A_VM_ID, 1023), ATTR_END };
	uint8_t p3mac[6];
	struct vm_info v;
	int err;

	err = request(FTVM_CMD_VM_SET, rename, false, NULL, 0, NULL, NULL);
	err = err ?: get_one(sel, &v);
	ksft_test_result(!err && !strcmp(v.name, "vm3"), "rename a VM\n");
	err = request(FTVM_CMD_VM_SET, mac, false, NULL, 0, NULL, NULL);
	err = err ?: get_one(sel, &v);
	ksft_test_result(!err && !memcmp(v.mac, mac_ok, 6), "change a VM's MAC\n");
	err = request(FTVM_CMD_VM_SET, rebind, false, NULL, 0, NULL, NULL);
	err = err ?: get_one(sel, &v);
	read_mac("p3", p3mac);
	ksft_test_result(!err && v.ifindex == if_nametoindex("h3") &&
			 !memcmp(v.mac, p3mac, 6),
			 "rebind a VM to another veth (MAC from the new peer)\n");
}

/* Events. */

static struct ftnl ev;

struct ev_wait {
	uint8_t cmd;
	uint32_t id;
	struct vm_info got;
	bool found;
	int others;
};

static int ev_cb(struct nl_msg *msg, void *arg)
{
	struct ev_wait *w = arg;
	struct vm_info v;

	if (!parse_vm(msg, &v))
		return NL_OK;
	if (!w->found && v.cmd == w->cmd && v.id == w->id) {
		w->got = v;
		w->found = true;
	} else {
		w->others++;
	}
	return NL_OK;
}

/* Wait up to @ms for event @cmd about VM @id. */
static bool wait_event(uint8_t cmd, uint32_t id, int ms, struct vm_info *out)
{
	struct ev_wait w = { .cmd = cmd, .id = id };
	struct pollfd p = { .fd = nl_socket_get_fd(ev.sk), .events = POLLIN };
	uint64_t end = monotonic_ns() + (uint64_t)ms * 1000000;

	while (!w.found) {
		int64_t left = (int64_t)(end - monotonic_ns()) / 1000000;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		ftnl_recv_events(&ev, ev_cb, &w);
	}
	if (out)
		*out = w.got;
	return w.found;
}

/* Trigger with @cmd; expect vm-failed for @id with @reason, in time. */
static void expect_failed(const char *desc, const char *cmd, uint64_t t0,
			  uint32_t id, uint8_t reason)
{
	uint64_t t1;
	struct vm_info v;
	bool got;

	if (!t0)
		t0 = monotonic_ns();
	if (cmd)
		sh("%s", cmd);
	got = wait_event(FTVM_CMD_VM_FAILED, id, 5000, &v);
	t1 = monotonic_ns();
	if (got && v.state == FTVM_VM_STATE_FAILED && v.reason == reason &&
	    v.fail_time >= t0 && v.fail_time <= t1)
		ksft_test_result_pass("vm-failed for %s (id %u, reason %u, %.3f ms after the trigger began)\n",
				      desc, id, reason, (v.fail_time - t0) / 1e6);
	else
		ksft_test_result_fail("vm-failed for %s: got=%d state=%u reason=%u (want %u) time ok=%d\n",
				      desc, got, v.state, v.reason, reason,
				      v.fail_time >= t0 && v.fail_time <= t1);
}

/* One ftvm:ftvm_vm_failed, as tracefs prints it. */
struct trace_ev {
	unsigned int id, reason;
	unsigned long long held_ns;
};

/*
 * ftvm.ko's tracepoint ftvm:ftvm_vm_failed, read from tracefs: how many
 * fired since the last call, and the last one in @v.  NULL @v: start
 * (enable, clear).
 */
#define TRACEFS "/sys/kernel/tracing"
static int trace_failed(struct trace_ev *v)
{
	char line[512];
	unsigned int id, reason;
	unsigned long long held;
	int n = 0;
	FILE *f;

	if (!v) {
		sh("mountpoint -q " TRACEFS " || mount -t tracefs nodev " TRACEFS);
		sh("echo 1 >" TRACEFS "/events/ftvm/ftvm_vm_failed/enable");
		sh("echo >" TRACEFS "/trace");
		return 0;
	}
	f = fopen(TRACEFS "/trace", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, "ftvm_vm_failed: ");

		if (p && sscanf(p, "ftvm_vm_failed: netns=%*u vm=%u reason=%u held_ns=%llu",
				&id, &reason, &held) == 3) {
			v->id = id;
			v->reason = reason;
			v->held_ns = held;
			n++;
		}
	}
	fclose(f);
	sh("echo >" TRACEFS "/trace");
	return n;
}

static void test_events(void)
{
	const struct attr add[] = { U32(FTVM_A_VM_ID, 4), STR(FTVM_A_VM_NAME, "vm4"),
				    STR(FTVM_A_VM_IFNAME, "h2"), ATTR_END };
	const struct attr up1[] = { U32(FTVM_A_VM_ID, 1), U8(FTVM_A_VM_STATE, FTVM_VM_STATE_UP), ATTR_END };
	const struct attr fail4[] = { STR(FTVM_A_VM_NAME, "vm4"), ATTR_END };
	const struct attr resume4[] = { STR(FTVM_A_VM_NAME, "vm4"),
					FLAG(FTVM_A_VM_RESUME), ATTR_END };
	const struct attr sel4[] = { U32(FTVM_A_VM_ID, 4), ATTR_END };
	struct trace_ev tev;
	const struct attr sel3[] = { U32(FTVM_A_VM_ID, 1023), ATTR_END };
	struct vm_info v;
	uint64_t t0;
	int err;

	if (ftnl_open(&ev) || ftnl_subscribe(&ev))
		ksft_exit_fail_msg("cannot subscribe to the events group\n");

	err = request(FTVM_CMD_VM_NEW, add, false, NULL, 0, NULL, NULL);
	ksft_test_result(!err && wait_event(FTVM_CMD_VM_NEW, 4, 5000, NULL),
			 "vm-new event for a new VM\n");

	expect_failed("a device set down", "ip link set h1 down", 0, 1,
		      FTVM_FAIL_DEV_DOWN);

	err = request(FTVM_CMD_VM_SET, up1, false, NULL, 0, NULL, NULL);
	ksft_test_result(err == -ENETDOWN && strstr(nl.ext_msg, "device is down"),
			 "a VM cannot be brought up while its device is down\n");
	sh("ip link set h1 up");
	err = request(FTVM_CMD_VM_SET, up1, false, NULL, 0, NULL, NULL);
	ksft_test_result(!err && wait_event(FTVM_CMD_VM_UP, 1, 5000, &v) &&
			 v.state == FTVM_VM_STATE_UP,
			 "a failed VM brought back up: vm-up event\n");

	expect_failed("a veth whose peer went down", "ip link set p1 down", 0, 1,
		      FTVM_FAIL_CARRIER_LOST);
	/* A device being deleted goes down first: that is the failure. */
	expect_failed("a device deleted", "ip link del h3", 0, 1023,
		      FTVM_FAIL_DEV_DOWN);
	ksft_test_result(wait_event(FTVM_CMD_VM_SET, 1023, 5000, &v) &&
			 v.ifindex == 0 && v.state == FTVM_VM_STATE_FAILED &&
			 v.reason == FTVM_FAIL_DEV_UNREGISTERED,
			 "then the VM is reported without a device (vm-set, reason device gone)\n");
	err = get_one(sel3, &v);
	ksft_test_result(!err && v.ifindex == 0 && v.state == FTVM_VM_STATE_FAILED &&
			 v.reason == FTVM_FAIL_DEV_UNREGISTERED,
			 "a VM whose device is gone stays, failed, with no device\n");

	t0 = monotonic_ns();
	close(tap_fd);	/* the "hypervisor" dies: its tap goes away */
	tap_fd = -1;
	expect_failed("a tap closed by its process", NULL, t0, 2,
		      FTVM_FAIL_DEV_DOWN);

	t0 = monotonic_ns();
	err = request(FTVM_CMD_VM_FAIL, fail4, false, NULL, 0, NULL, NULL);
	ksft_test_result(!err, "userspace declares vm4 failed\n");
	expect_failed("a userspace report", NULL, t0, 4, FTVM_FAIL_USER);
	trace_failed(NULL);
	err = request(FTVM_CMD_VM_FAIL, fail4, false, NULL, 0, NULL, NULL);
	ksft_test_result(!err && !wait_event(FTVM_CMD_VM_FAILED, 4, 300, NULL) &&
			 !trace_failed(&tev),
			 "failing a failed VM succeeds, sends no second event, fires no tracepoint\n");
	/* Nothing else holds: no VM here has a namespace of its own. */
	err = request(FTVM_CMD_VM_FAIL, resume4, false, NULL, 0, NULL, NULL);
	ksft_test_result(!err && !wait_event(FTVM_CMD_VM_FAILED, 4, 300, NULL) &&
			 trace_failed(&tev) == 1 && tev.id == 4 &&
			 tev.reason == FTVM_FAIL_USER && tev.held_ns == 0,
			 "resuming a failed VM's failover fires ftvm_vm_failed again (vm 4, its reason, no hold), no event\n");
	err = get_one(sel4, &v);
	ksft_test_result(!err && v.state == FTVM_VM_STATE_FAILED &&
			 v.reason == FTVM_FAIL_USER && v.fail_time < monotonic_ns() - 300000000ull,
			 "and the VM keeps its failure (state, reason, time)\n");

	{
		const struct attr arm4[] = { STR(FTVM_A_VM_NAME, "vm4"),
					     FLAG(FTVM_A_VM_ARM), ATTR_END };

		err = request(FTVM_CMD_VM_SET, arm4, false, NULL, 0, NULL, NULL);
		ksft_test_result(err == -EINVAL && strstr(nl.ext_msg, "has failed"),
				 "a failed VM is not armed (%s)\n", nl.ext_msg);
	}

	err = request(FTVM_CMD_VM_DEL, fail4, false, NULL, 0, NULL, NULL);
	ksft_test_result(!err && wait_event(FTVM_CMD_VM_DEL, 4, 5000, NULL),
			 "vm-del event when a VM is deleted\n");
	ftnl_close(&ev);
}

/*
 * Slab accounting: live ftvm_vm objects, after flushing per-cpu slabs.
 * ftvm.ko creates the cache (KMEM_CACHE(ftvm_vm) in kmod/vm.c) and the
 * guest boots with slab_nomerge, so that the file is there and counts
 * ftvm's VMs alone.
 */
static long vm_objects(void)
{
	char buf[64];
	long n = -1;
	FILE *f;

	f = fopen("/sys/kernel/slab/ftvm_vm/shrink", "w");
	if (f) {
		fputs("1", f);
		fclose(f);
	}
	f = fopen("/sys/kernel/slab/ftvm_vm/objects", "r");
	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f))
		n = strtol(buf, NULL, 10);
	fclose(f);
	return n;
}

/*
 * No slab file to count with: a failure in the guest, where ftvm.ko is
 * loaded and made the cache; a skip elsewhere.
 */
static void slab_missing(const char *what)
{
	if (getenv("FTVM_IN_GUEST"))
		ksft_test_result_fail("%s: /sys/kernel/slab/ftvm_vm is not there, though ftvm.ko creates it\n",
				      what);
	else
		ksft_test_result_skip("%s: /sys/kernel/slab/ftvm_vm is not there\n",
				      what);
}

/* The count once pending RCU frees are done: stable over 300 ms. */
static long vm_objects_stable(void)
{
	long n = vm_objects(), prev = -2;

	for (int i = 0; i < 100 && n != prev; i++) {
		prev = n;
		usleep(300000);
		n = vm_objects();
	}
	return n;
}

/* Wait (RCU frees run after a grace period) for the count to drop. */
static long vm_objects_settle(long want)
{
	long n = vm_objects();

	for (int i = 0; i < 100 && n > want; i++) {
		usleep(50000);
		n = vm_objects();
	}
	return n;
}

static void test_big_dump(void)
{
	char path[] = "/tmp/ftvm-nltest-XXXXXX";
	int fd = mkstemp(path), err = 0, n = 400;
	struct dump *d = calloc(1, sizeof(*d));
	FILE *f = fdopen(fd, "w");

	for (int i = 0; i < n; i++)
		fprintf(f, "link add d%d type dummy\nlink set d%d up\n", i, i);
	fclose(f);
	sh("ip -batch %s", path);
	unlink(path);
	for (int i = 0; i < n && !err; i++) {
		char name[16], dev[16];
		const struct attr add[] = { U32(FTVM_A_VM_ID, 100 + i), STR(FTVM_A_VM_NAME, name),
					    STR(FTVM_A_VM_IFNAME, dev),
					    BIN(FTVM_A_VM_MAC, (const char *)mac_ok, 6), ATTR_END };

		snprintf(name, sizeof(name), "big%d", i);
		snprintf(dev, sizeof(dev), "d%d", i);
		err = request(FTVM_CMD_VM_NEW, add, false, NULL, 0, NULL, NULL);
	}
	ksft_test_result(!err, "register %d more VMs\n", n);
	err = dump_all(d);
	ksft_test_result(!err && !d->dups && !d->bad && d->n >= n + 3,
			 "a dump over several messages lists every VM once (%d VMs, %d duplicates)\n",
			 d->n, d->dups);
	for (int i = 0; i < n; i++) {
		const struct attr del[] = { U32(FTVM_A_VM_ID, 100 + i), ATTR_END };

		err |= request(FTVM_CMD_VM_DEL, del, false, NULL, 0, NULL, NULL);
	}
	ksft_test_result(!err, "delete them again\n");
	free(d);
}

static void test_churn(void)
{
	const struct attr add[] = { U32(FTVM_A_VM_ID, 500), STR(FTVM_A_VM_NAME, "churn"),
				    STR(FTVM_A_VM_IFNAME, "dum0"),
				    BIN(FTVM_A_VM_MAC, (const char *)mac_ok, 6), ATTR_END };
	const struct attr ren[] = { U32(FTVM_A_VM_ID, 500), STR(FTVM_A_VM_NAME, "churn2"), ATTR_END };
	const struct attr del[] = { U32(FTVM_A_VM_ID, 500), ATTR_END };
	long base = vm_objects_stable(), after;
	int cycles = 2000, failed = 0;

	if (base < 0) {
		slab_missing("churn");
		return;
	}
	for (int i = 0; i < cycles; i++) {
		if (request(FTVM_CMD_VM_NEW, add, false, NULL, 0, NULL, NULL) ||
		    request(FTVM_CMD_VM_SET, ren, false, NULL, 0, NULL, NULL) ||
		    request(FTVM_CMD_VM_DEL, del, false, NULL, 0, NULL, NULL))
			failed++;
	}
	after = vm_objects_settle(base);
	ksft_test_result(!failed && after == base,
			 "%d add/rename/delete cycles leave no VM object behind (%ld before, %ld after)\n",
			 cycles, base, after);
}

/* Session requests: the staged store and the nudge. */

/* A session by 5-tuple, or a UDP record with @version. */
struct tup {
	uint8_t proto, family;
	uint8_t laddr[16], raddr[16];
	int alen;			/* address bytes sent */
	uint16_t lport, rport;
	int omit;			/* an attribute type left out */
	int extra;			/* an attribute type added (u8 1) */
};

#define TUP_UDP(lp, rp) { .proto = IPPROTO_UDP, .family = AF_INET, \
			  .laddr = { 198, 18, 9, 1 }, .raddr = { 198, 18, 9, 2 }, \
			  .alen = 4, .lport = lp, .rport = rp }

static int put_tup(struct nl_msg *msg, int type, const struct tup *t, bool record)
{
	struct nlattr *nest = nla_nest_start(msg, type);
	int err = !nest;

	if (!err && record)
		err = nla_put_u8(msg, FTVM_A_SESS_VERSION, FTVM_STATE_VERSION);
	if (!err && t->omit != FTVM_A_SESS_PROTO)
		err = nla_put_u8(msg, FTVM_A_SESS_PROTO, t->proto);
	if (!err && t->omit != FTVM_A_SESS_FAMILY)
		err = nla_put_u8(msg, FTVM_A_SESS_FAMILY, t->family);
	if (!err)
		err = nla_put(msg, FTVM_A_SESS_LADDR, t->alen, t->laddr) ||
		      nla_put(msg, FTVM_A_SESS_RADDR, t->alen, t->raddr) ||
		      nla_put_u16(msg, FTVM_A_SESS_LPORT, t->lport);
	if (!err && t->omit != FTVM_A_SESS_RPORT)
		err = nla_put_u16(msg, FTVM_A_SESS_RPORT, t->rport);
	if (!err && t->extra)
		err = nla_put_u8(msg, t->extra, 1);
	if (err)
		return -EMSGSIZE;
	nla_nest_end(msg, nest);
	return 0;
}

struct counts {
	int64_t count, staged;
};

static int counts_cb(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[FTVM_A_MAX + 1], *a[FTVM_A_SNAP_MAX + 1];
	struct counts *c = arg;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, FTVM_A_MAX, NULL) || !tb[FTVM_A_SNAP] ||
	    nla_parse_nested(a, FTVM_A_SNAP_MAX, tb[FTVM_A_SNAP], NULL))
		return NL_OK;
	if (a[FTVM_A_SNAP_COUNT])
		c->count = nla_get_u32(a[FTVM_A_SNAP_COUNT]);
	if (a[FTVM_A_SNAP_STAGED])
		c->staged = nla_get_u32(a[FTVM_A_SNAP_STAGED]);
	return NL_OK;
}

/* A session request about VM @vm: flags (if nonzero), @top (one extra
 * top-level u32 attribute, if nonzero), records or names.
 */
struct sess_req {
	uint8_t cmd;
	uint32_t vm;
	uint32_t flags;
	int snap_extra;			/* an FTVM_A_SNAP attribute (u16 1) */
	int top;			/* a top-level attribute (u32 1) */
	bool records;			/* FTVM_A_SESSION records, else names */
	int n;
	struct tup t[4];
};

static int sess_call(const struct sess_req *r, struct counts *c)
{
	struct nl_msg *msg = ftnl_msg(&nl, r->cmd, 0);
	struct nlattr *nest;
	int err = 0;

	c->count = c->staged = -1;
	if (!msg)
		return -ENOMEM;
	nest = nla_nest_start(msg, FTVM_A_VM);
	err = !nest || nla_put_u32(msg, FTVM_A_VM_ID, r->vm);
	if (!err)
		nla_nest_end(msg, nest);
	if (!err && (r->flags || r->snap_extra)) {
		nest = nla_nest_start(msg, FTVM_A_SNAP);
		err = !nest || (r->flags && nla_put_u32(msg, FTVM_A_SNAP_FLAGS, r->flags)) ||
		      (r->snap_extra && nla_put_u16(msg, r->snap_extra, 1));
		if (!err)
			nla_nest_end(msg, nest);
	}
	for (int i = 0; !err && i < r->n; i++)
		err = put_tup(msg, r->records ? FTVM_A_SESSION : FTVM_A_TUPLE, &r->t[i],
			      r->records);
	if (!err && r->top)
		err = nla_put_u32(msg, r->top, 1);
	if (err) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	return ftnl_call(&nl, msg, counts_cb, c);
}

/* The records staged for vm1, read by restaging the first one (a no-op). */
static int64_t staged_now(void)
{
	const struct sess_req r = { .cmd = FTVM_CMD_SESSION_RESTORE, .vm = 1,
				    .flags = FTVM_SNAP_F_STAGE, .records = true, .n = 1,
				    .t = { TUP_UDP(7001, 40001) } };
	struct counts c;

	return sess_call(&r, &c) ? -1 : c.staged;
}

struct sess_case {
	const char *desc;
	struct sess_req req;
	int err;
	const char *msg;
};

#define ACT(...)	{ .cmd = FTVM_CMD_SESSION_ACTIVATE, .vm = 1, __VA_ARGS__ }
#define DISC(...)	ACT(.flags = FTVM_SNAP_F_DISCARD, __VA_ARGS__)
#define NUDGE(...)	{ .cmd = FTVM_CMD_SESSION_NUDGE, .vm = 1, __VA_ARGS__ }
#define RETIRE(...)	{ .cmd = FTVM_CMD_SESSION_RETIRE, .vm = 1, __VA_ARGS__ }
#define GONE(...)	{ .cmd = FTVM_CMD_SESSION_GONE, .vm = 1, __VA_ARGS__ }
#define STAGE(...)	{ .cmd = FTVM_CMD_SESSION_RESTORE, .vm = 1, \
			  .flags = FTVM_SNAP_F_STAGE, .records = true, __VA_ARGS__ }
#define NAME(p, f, al, lp, rp, ...) \
	{ .proto = p, .family = f, .laddr = { 198, 18, 9, 1 }, .raddr = { 198, 18, 9, 2 }, \
	  .alen = al, .lport = lp, .rport = rp, __VA_ARGS__ }

static const struct sess_case sess_cases[] = {
	{ "stage the same session twice", STAGE(.n = 2,
	  .t = { TUP_UDP(7002, 40002), TUP_UDP(7002, 40002) }), -EINVAL, "twice in one request" },
	{ "activate a session not staged", ACT(.n = 2,
	  .t = { TUP_UDP(7001, 40001), TUP_UDP(7009, 40009) }), -ENOENT, "no record staged" },
	{ "discard a session not staged", DISC(.n = 2,
	  .t = { TUP_UDP(7009, 40009), TUP_UDP(7001, 40001) }), -ENOENT, "no record staged" },
	{ "activate a session named twice", ACT(.n = 2,
	  .t = { TUP_UDP(7001, 40001), TUP_UDP(7001, 40001) }), -EINVAL, "named twice" },
	{ "activate all with no UDP socket bound", ACT(.n = 0),
	  -ECONNREFUSED, "no UDP socket bound" },
	{ "activate one with no UDP socket bound", ACT(.n = 1, .t = { TUP_UDP(7002, 40002) }),
	  -ECONNREFUSED, "no UDP socket bound" },
	{ "a name with a format version", ACT(.n = 1,
	  .t = { NAME(IPPROTO_UDP, AF_INET, 4, 7001, 40001, .extra = FTVM_A_SESS_VERSION) }),
	  -EINVAL, "named by its 5-tuple only" },
	{ "a name with TCP state", NUDGE(.n = 1,
	  .t = { NAME(IPPROTO_TCP, AF_INET, 4, 7001, 40001, .extra = FTVM_A_SESS_TCP) }),
	  -EINVAL, "named by its 5-tuple only" },
	{ "a name without its client port", ACT(.n = 1,
	  .t = { NAME(IPPROTO_UDP, AF_INET, 4, 7001, 40001, .omit = FTVM_A_SESS_RPORT) }),
	  -EINVAL, "5-tuple is incomplete" },
	{ "a name of another family", ACT(.n = 1,
	  .t = { NAME(IPPROTO_UDP, 99, 4, 7001, 40001) }),
	  -EAFNOSUPPORT, "address family must be" },
	{ "a name of another protocol", NUDGE(.n = 1,
	  .t = { NAME(IPPROTO_SCTP, AF_INET, 4, 7001, 40001) }),
	  -EPROTONOSUPPORT, "protocol must be TCP or UDP" },
	{ "a name with 16-byte addresses for AF_INET", ACT(.n = 1,
	  .t = { NAME(IPPROTO_UDP, AF_INET, 16, 7001, 40001) }),
	  -EINVAL, "address length does not match" },
	{ "a TCP name with client port 0", NUDGE(.n = 1,
	  .t = { NAME(IPPROTO_TCP, AF_INET, 4, 7001, 0) }),
	  -EINVAL, "port 0 in a connection" },
	{ "an activation with a service port", ACT(.snap_extra = FTVM_A_SNAP_PORT),
	  -EINVAL, "not an activation parameter" },
	{ "an activation with a record", ACT(.records = true, .n = 1,
	  .t = { TUP_UDP(7001, 40001) }), -EINVAL, "restored or staged by session-restore" },
	{ "an activation with the stage flag", ACT(.flags = FTVM_SNAP_F_STAGE),
	  -EINVAL, "stage is a restore flag" },
	{ "an activation with an unknown flag", ACT(.flags = 1u << 7),
	  -EINVAL, "reserved bit" },
	{ "an activation both held and discard", ACT(.flags = FTVM_SNAP_F_HELD |
	  FTVM_SNAP_F_DISCARD), -EINVAL, "discard drops them" },
	{ "a quiet discard", ACT(.flags = FTVM_SNAP_F_QUIET | FTVM_SNAP_F_DISCARD),
	  -EINVAL, "discard drops them" },
	{ "a quiet staging", { .cmd = FTVM_CMD_SESSION_RESTORE, .vm = 1,
	  .flags = FTVM_SNAP_F_STAGE | FTVM_SNAP_F_QUIET, .records = true, .n = 1,
	  .t = { TUP_UDP(7001, 40001) } }, -EINVAL, "quiet is for sessions made live" },
	{ "a held activation naming a session not staged", ACT(.flags = FTVM_SNAP_F_HELD,
	  .n = 2, .t = { TUP_UDP(7001, 40001), TUP_UDP(7009, 40009) }), -ENOENT,
	  "no record staged" },
	{ "a restore with the held flag", { .cmd = FTVM_CMD_SESSION_RESTORE, .vm = 1,
	  .flags = FTVM_SNAP_F_HELD, .records = true, .n = 1,
	  .t = { TUP_UDP(7001, 40001) } }, -EINVAL, "held is an activation flag" },
	{ "a nudge naming nothing", NUDGE(.n = 0), -EINVAL, "name the sessions" },
	{ "a nudge with snapshot parameters", NUDGE(.flags = FTVM_SNAP_F_STAGE, .n = 1,
	  .t = { TUP_UDP(7001, 40001) }), -EINVAL, "a nudge takes the VM" },
	{ "a nudge with a record", NUDGE(.records = true, .n = 1, .t = { TUP_UDP(7001, 40001) }),
	  -EINVAL, "a nudge takes the VM" },
	{ "a nudge with an unknown attribute", NUDGE(.top = FTVM_A_MAX + 1, .n = 1,
	  .t = { TUP_UDP(7001, 40001) }), -EINVAL, "Unknown attribute type" },
	{ "a nudge of a VM without a namespace", { .cmd = FTVM_CMD_SESSION_NUDGE, .vm = 2, .n = 1,
	  .t = { TUP_UDP(7001, 40001) } }, -ENOENT, "no network namespace" },
	{ "an activation of an unknown VM", { .cmd = FTVM_CMD_SESSION_ACTIVATE, .vm = 77 },
	  -ENOENT, "no VM with this id" },
	{ "a retire naming nothing", RETIRE(.n = 0), -EINVAL, "name the sessions to retire" },
	{ "a retire with snapshot parameters", RETIRE(.flags = FTVM_SNAP_F_STAGE, .n = 1,
	  .t = { TUP_UDP(7001, 40001) }), -EINVAL, "a retire takes the VM" },
	{ "a retire with a record", RETIRE(.records = true, .n = 1, .t = { TUP_UDP(7001, 40001) }),
	  -EINVAL, "a retire takes the VM" },
	{ "a retire with a name of TCP state", RETIRE(.n = 1,
	  .t = { NAME(IPPROTO_TCP, AF_INET, 4, 7001, 40001, .extra = FTVM_A_SESS_TCP) }),
	  -EINVAL, "named by its 5-tuple only" },
	{ "a retire of a VM without a namespace", { .cmd = FTVM_CMD_SESSION_RETIRE, .vm = 2, .n = 1,
	  .t = { TUP_UDP(7001, 40001) } }, -ENOENT, "no network namespace" },
	{ "a gone check naming nothing", GONE(.n = 0), -EINVAL, "name the sessions to check" },
	{ "a gone check with snapshot parameters", GONE(.flags = FTVM_SNAP_F_STAGE, .n = 1,
	  .t = { TUP_UDP(7001, 40001) }), -EINVAL, "a gone check takes the VM" },
	{ "a gone check with a record", GONE(.records = true, .n = 1, .t = { TUP_UDP(7001, 40001) }),
	  -EINVAL, "a gone check takes the VM" },
	{ "a gone check with a name of TCP state", GONE(.n = 1,
	  .t = { NAME(IPPROTO_TCP, AF_INET, 4, 7001, 40001, .extra = FTVM_A_SESS_TCP) }),
	  -EINVAL, "named by its 5-tuple only" },
	{ "a gone check of a VM without a namespace", { .cmd = FTVM_CMD_SESSION_GONE, .vm = 2, .n = 1,
	  .t = { TUP_UDP(7001, 40001) } }, -ENOENT, "no network namespace" },
};

static void test_sessions(void)
{
	const struct sess_req two = STAGE(.n = 2, .t = { TUP_UDP(7001, 40001),
							 TUP_UDP(7002, 40002) });
	const struct sess_req nudge = NUDGE(.n = 2, .t = {
		NAME(IPPROTO_TCP, AF_INET, 4, 7001, 40001), TUP_UDP(7001, 40001) });
	const struct sess_req retire = RETIRE(.n = 2, .t = {
		NAME(IPPROTO_TCP, AF_INET, 4, 7001, 40001), TUP_UDP(7001, 40001) });
	const struct sess_req gone = GONE(.n = 3, .t = {
		NAME(IPPROTO_TCP, AF_INET, 4, 7001, 40001), TUP_UDP(7001, 40001),
		NAME(IPPROTO_TCP, AF_INET6, 16, 7001, 40001) });
	const struct sess_req disc1 = DISC(.n = 1, .t = { TUP_UDP(7002, 40002) });
	const struct sess_req disc_all = DISC(.n = 0);
	const struct sess_req held = ACT(.flags = FTVM_SNAP_F_HELD);
	const struct sess_req held_named = ACT(.flags = FTVM_SNAP_F_HELD, .n = 1,
					       .t = { TUP_UDP(7002, 40002) });
	char path[64];
	struct counts c;
	int err, fd;

	/* vm1's namespace is this one. */
	snprintf(path, sizeof(path), "/proc/%d/ns/net", getpid());
	fd = open(path, O_RDONLY | O_CLOEXEC);
	{
		const struct attr set[] = { U32(FTVM_A_VM_ID, 1), { FTVM_A_VM_NETNS_FD, A_U32,
					    (uint32_t)fd, NULL, 0 }, ATTR_END };

		err = fd < 0 ? -errno : request(FTVM_CMD_VM_SET, set, false, NULL, 0, NULL, NULL);
	}
	if (fd >= 0)
		close(fd);
	if (err)
		ksft_exit_fail_msg("cannot give vm1 a namespace: %s\n", ftnl_strerror(&nl, err));

	err = sess_call(&two, &c);
	ksft_test_result(!err && c.count == 2 && c.staged == 2,
			 "stage two UDP records (count %lld, staged %lld)\n",
			 (long long)c.count, (long long)c.staged);
	err = sess_call(&two, &c);
	ksft_test_result(!err && c.count == 2 && c.staged == 2,
			 "staging them again replaces them (count %lld, staged %lld)\n",
			 (long long)c.count, (long long)c.staged);

	for (size_t i = 0; i < ARRAY_SIZE(sess_cases); i++) {
		const struct sess_case *sc = &sess_cases[i];
		char msg[sizeof(nl.ext_msg)];
		int64_t after;

		err = sess_call(&sc->req, &c);
		memcpy(msg, nl.ext_msg, sizeof(msg));
		after = staged_now();
		if (err == sc->err && strstr(msg, sc->msg) && after == 2) {
			ksft_test_result_pass("rejects %s: \"%s\"\n", sc->desc, msg);
		} else {
			ksft_print_msg("%s: errno %d (want %d), extack \"%s\" (want \"%s\"), staged %lld (want 2)\n",
				       sc->desc, err, sc->err, msg, sc->msg, (long long)after);
			ksft_test_result_fail("rejects %s\n", sc->desc);
		}
	}

	err = sess_call(&held, &c);
	ksft_test_result(!err && c.count == 0 && c.staged == 2 && staged_now() == 2,
			 "a held activation with no client waiting makes none live, and is no error (count %lld, staged %lld)\n",
			 (long long)c.count, (long long)c.staged);
	err = sess_call(&held_named, &c);
	ksft_test_result(!err && c.count == 0 && staged_now() == 2,
			 "the same naming a staged session (count %lld)\n", (long long)c.count);
	err = sess_call(&nudge, &c);
	ksft_test_result(!err && c.count == 0,
			 "a nudge of sessions without a connection nudges none (count %lld)\n",
			 (long long)c.count);
	err = sess_call(&retire, &c);
	ksft_test_result(!err && c.count == 0 && staged_now() == 2,
			 "a retire of sessions without a connection ends none, and leaves what is staged (count %lld)\n",
			 (long long)c.count);
	err = sess_call(&gone, &c);
	ksft_test_result(!err && c.count == 2 && staged_now() == 2,
			 "a gone check says the TCP sessions without a connection are gone, never a UDP one, and changes nothing (count %lld)\n",
			 (long long)c.count);
	err = sess_call(&disc1, &c);
	ksft_test_result(!err && c.count == 1 && c.staged == 1 && staged_now() == 1,
			 "a named discard drops that session only (count %lld, staged %lld)\n",
			 (long long)c.count, (long long)c.staged);
	err = sess_call(&disc_all, &c);
	ksft_test_result(!err && c.count == 1 && c.staged == 0,
			 "a discard naming none drops the rest (count %lld, staged %lld)\n",
			 (long long)c.count, (long long)c.staged);
}

/*
 * FTVM_A_VM_ARM: a VM whose namespace is its own is armed (its hold
 * reports the time left); one whose namespace is the registry's is not.
 * vm1's namespace is this one (test_sessions()); vm2 gets a child's.
 */
static void test_arm(void)
{
	const struct attr arm1[] = { U32(FTVM_A_VM_ID, 1), FLAG(FTVM_A_VM_ARM), ATTR_END };
	const struct attr arm2[] = { STR(FTVM_A_VM_NAME, "vm2"), FLAG(FTVM_A_VM_ARM), ATTR_END };
	const struct attr sel2[] = { U32(FTVM_A_VM_ID, 2), ATTR_END };
	int err, fd = -1, ready[2], done[2], status;
	struct vm_info before, v;
	char path[64], c;
	pid_t pid;

	err = request(FTVM_CMD_VM_SET, arm1, false, NULL, 0, NULL, NULL);
	ksft_test_result(err == -EINVAL && strstr(nl.ext_msg, "the host's"),
			 "a VM in the registry's own namespace is not armed (%s)\n",
			 nl.ext_msg);

	if (pipe(ready) || pipe(done))
		ksft_exit_fail_msg("pipe: %s\n", strerror(errno));
	pid = fork();
	if (pid == 0) {
		/* A namespace of its own, kept until the parent is done. */
		close(ready[0]);
		close(done[1]);
		if (unshare(CLONE_NEWNET) || write(ready[1], "x", 1) != 1)
			_exit(1);
		(void)!read(done[0], &c, 1);
		_exit(0);
	}
	close(ready[1]);
	close(done[0]);
	err = -1;
	if (pid > 0 && read(ready[0], &c, 1) == 1) {
		snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd >= 0) {
		const struct attr set[] = { U32(FTVM_A_VM_ID, 2), { FTVM_A_VM_NETNS_FD, A_U32,
					    (uint32_t)fd, NULL, 0 }, ATTR_END };

		err = request(FTVM_CMD_VM_SET, set, false, NULL, 0, NULL, NULL);
		close(fd);
	}
	err = err ?: get_one(sel2, &before);
	ksft_test_result(!err && before.armed_ms == 0,
			 "vm2 in a namespace of its own, not armed (%d, %u ms)\n",
			 err, before.armed_ms);
	err = request(FTVM_CMD_VM_SET, arm2, false, NULL, 0, NULL, NULL);
	err = err ?: get_one(sel2, &v);
	ksft_test_result(!err && v.armed_ms > 4000 && v.armed_ms <= 5000 &&
			 v.state == FTVM_VM_STATE_UP && !strcmp(v.name, "vm2") &&
			 v.ifindex == before.ifindex,
			 "arming vm2 by name: its namespace holds for 5 s (%u ms left), nothing else changed\n",
			 v.armed_ms);
	/* The child's read ends at EOF, whether it got this far or not. */
	close(done[1]);
	close(ready[0]);
	if (pid > 0)
		waitpid(pid, &status, 0);
}

static void test_netns_teardown(void)
{
	long base = vm_objects_stable(), after;
	int status;
	pid_t pid;

	if (base < 0) {
		slab_missing("netns teardown");
		return;
	}
	pid = fork();
	if (pid == 0) {
		struct ftnl c;
		int bad = 0;

		if (unshare(CLONE_NEWNET) || ftnl_open(&c))
			_exit(2);
		nl = c;
		if (system("ip link set lo up; for i in $(seq 0 49); do ip link add t$i type dummy && ip link set t$i up; done"))
			_exit(3);
		for (int i = 0; i < 50; i++) {
			char name[16], dev[16];
			const struct attr add[] = { U32(FTVM_A_VM_ID, 1 + i), STR(FTVM_A_VM_NAME, name),
						    STR(FTVM_A_VM_IFNAME, dev),
						    BIN(FTVM_A_VM_MAC, (const char *)mac_ok, 6), ATTR_END };

			snprintf(name, sizeof(name), "ns%d", i);
			snprintf(dev, sizeof(dev), "t%d", i);
			bad |= !!request(FTVM_CMD_VM_NEW, add, false, NULL, 0, NULL, NULL);
		}
		ftnl_close(&c);
		_exit(bad ? 4 : 0);
	}
	waitpid(pid, &status, 0);
	/* The namespace dies with its last user: the child. */
	after = vm_objects_settle(base);
	ksft_test_result(WIFEXITED(status) && !WEXITSTATUS(status) && after == base,
			 "a namespace torn down with 50 VMs frees them all (child exit %d, %ld before, %ld after)\n",
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1, base, after);
}

/* Output commit: commit-set's checks, and what commit-get reports. */

struct commit_req {
	int family, alen, port, proto, mode;	/* -1: left out */
	uint8_t addr[16];
	int wait;				/* -1: left out */
	int extra;				/* an attribute type added (u32 1) */
};

/* A valid strict IPv4 service, then what a case changes in it. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
#define COMMIT4(...) { .family = AF_INET, .alen = 4, .port = 7000, \
		       .proto = IPPROTO_TCP, .mode = FTVM_COMMIT_STRICT, \
		       .addr = { 198, 19, 0, 10 }, .wait = -1, __VA_ARGS__ }

static int commit_set(const struct commit_req *c)
{
	struct nl_msg *msg = ftnl_msg(&nl, FTVM_CMD_COMMIT_SET, 0);
	struct nlattr *nest;
	int err;

	if (!msg)
		return -ENOMEM;
	nest = nla_nest_start(msg, FTVM_A_COMMIT);
	err = !nest ||
	      (c->family >= 0 && nla_put_u8(msg, FTVM_A_COMMIT_FAMILY, c->family)) ||
	      (c->alen >= 0 && nla_put(msg, FTVM_A_COMMIT_ADDR, c->alen, c->addr)) ||
	      (c->port >= 0 && nla_put_u16(msg, FTVM_A_COMMIT_PORT, c->port)) ||
	      (c->proto >= 0 && nla_put_u8(msg, FTVM_A_COMMIT_PROTO, c->proto)) ||
	      (c->mode >= 0 && nla_put_u8(msg, FTVM_A_COMMIT_MODE, c->mode)) ||
	      (c->wait >= 0 && nla_put_u32(msg, FTVM_A_COMMIT_CKPT_WAIT, c->wait)) ||
	      (c->extra && nla_put_u32(msg, c->extra, 1));
	if (err) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	nla_nest_end(msg, nest);
	return ftnl_call(&nl, msg, NULL, NULL);
}

struct commit_dump {
	int n, strict7000;
	uint32_t wait;
};

static int commit_cb(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[FTVM_A_MAX + 1], *a[FTVM_A_COMMIT_MAX + 1];
	static const uint8_t vip[4] = { 198, 19, 0, 10 };
	struct commit_dump *d = arg;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, FTVM_A_MAX, NULL) || !tb[FTVM_A_COMMIT] ||
	    nla_parse_nested(a, FTVM_A_COMMIT_MAX, tb[FTVM_A_COMMIT], NULL))
		return NL_OK;
	d->n++;
	if (a[FTVM_A_COMMIT_PORT] && nla_get_u16(a[FTVM_A_COMMIT_PORT]) == 7000 &&
	    a[FTVM_A_COMMIT_ADDR] && nla_len(a[FTVM_A_COMMIT_ADDR]) == 4 &&
	    !memcmp(nla_data(a[FTVM_A_COMMIT_ADDR]), vip, 4) &&
	    a[FTVM_A_COMMIT_MODE] && nla_get_u8(a[FTVM_A_COMMIT_MODE]) == FTVM_COMMIT_STRICT &&
	    a[FTVM_A_COMMIT_HELD] && a[FTVM_A_COMMIT_COMMITS] && a[FTVM_A_COMMIT_CKPT_WAIT]) {
		d->strict7000++;
		d->wait = nla_get_u32(a[FTVM_A_COMMIT_CKPT_WAIT]);
	}
	return NL_OK;
}

static int commit_dump(struct commit_dump *d)
{
	struct nl_msg *msg = ftnl_msg(&nl, FTVM_CMD_COMMIT_GET, NLM_F_DUMP);

	memset(d, 0, sizeof(*d));
	if (!msg)
		return -ENOMEM;
	return ftnl_call(&nl, msg, commit_cb, d);
}

static int sess_count_cb(struct nl_msg *msg, void *arg)
{
	(void)msg;
	++*(int *)arg;
	return NL_OK;
}

/* Messages of a commit-sess-get dump (a session each), or -errno. */
static int commit_sess_count(bool with_attr)
{
	struct nl_msg *msg = ftnl_msg(&nl, FTVM_CMD_COMMIT_SESS_GET, NLM_F_DUMP);
	int n = 0, err;

	if (!msg)
		return -ENOMEM;
	if (with_attr)
		nla_put_u32(msg, FTVM_A_COMMIT, 1);
	err = ftnl_call(&nl, msg, sess_count_cb, &n);
	return err ? err : n;
}

struct commit_case {
	const char *desc;
	struct commit_req req;
	int err;
	const char *msg;
};

static const struct commit_case commit_cases[] = {
	{ "a service without its port", COMMIT4(.port = -1), -EINVAL, "family, address, port and mode" },
	{ "a service without a mode", COMMIT4(.mode = -1), -EINVAL, "family, address, port and mode" },
	{ "an unknown family", COMMIT4(.family = 7), -EAFNOSUPPORT, "AF_INET (2) or AF_INET6 (10)" },
	{ "an IPv4 family with 16 address bytes", COMMIT4(.alen = 16), -EINVAL, "does not match the family" },
	{ "a 3-byte address", COMMIT4(.alen = 3), -ERANGE, "size out of range" },
	{ "an IPv4-mapped IPv6 address", COMMIT4(.family = AF_INET6, .alen = 16,
	  .addr = { [10] = 0xff, [11] = 0xff, 198, 19, 0, 10 }), -EINVAL, "given as AF_INET" },
	{ "a UDP service", COMMIT4(.proto = IPPROTO_UDP), -EPROTONOSUPPORT, "only TCP output is held" },
	{ "an unknown mode", COMMIT4(.mode = 2), -ERANGE, "out of range" },
	{ "a checkpoint wait above 10 s", COMMIT4(.wait = 10001), -ERANGE, "out of range" },
	{ "port 0", COMMIT4(.port = 0), -ERANGE, "out of range" },
	{ "counters in a request", COMMIT4(.extra = FTVM_A_COMMIT_HELD_TOTAL), -EINVAL,
	  "counters are reported by the kernel" },
};

static void test_commit(void)
{
	struct commit_req c = COMMIT4(.wait = 50);
	struct commit_dump d;
	int err, i;

	for (i = 0; i < (int)ARRAY_SIZE(commit_cases); i++) {
		const struct commit_case *cc = &commit_cases[i];

		char msg[sizeof(nl.ext_msg)];

		err = commit_set(&cc->req);
		snprintf(msg, sizeof(msg), "%s", nl.ext_msg);
		ksft_test_result(err == cc->err && *msg && strstr(msg, cc->msg) &&
				 !commit_dump(&d) && d.n == 0,
				 "commit-set rejects %s: \"%s\" (%d), nothing set\n",
				 cc->desc, msg, err);
	}
	err = commit_set(&c);
	ksft_test_result(!err && !commit_dump(&d) && d.n == 1 && d.strict7000 == 1 && d.wait == 50,
			 "a strict service is set and reported with its counters\n");
	ksft_test_result(commit_sess_count(false) == 0,
			 "commit-sess-get: no session followed before any traffic\n");
	err = commit_sess_count(true);
	ksft_test_result(err < 0 && err != -EOPNOTSUPP,
			 "commit-sess-get takes no attributes (%d)\n", err);
	c.wait = 5;
	err = commit_set(&c) || commit_dump(&d);
	ksft_test_result(!err && d.n == 1 && d.strict7000 == 1 && d.wait == 5,
			 "setting it again updates it in place\n");
	for (i = 0, err = 0; i < FTVM_COMMIT_SERVICES_MAX - 1 && !err; i++) {
		struct commit_req m = COMMIT4(.port = 8000 + i);

		err = commit_set(&m);
	}
	c.port = 9999;
	ksft_test_result(!err && commit_set(&c) == -ENOSPC && strstr(nl.ext_msg, "too many") &&
			 !commit_dump(&d) && d.n == FTVM_COMMIT_SERVICES_MAX,
			 "at most %d strict services: the next is refused\n",
			 FTVM_COMMIT_SERVICES_MAX);
	for (i = 0, err = 0; i < FTVM_COMMIT_SERVICES_MAX - 1 && !err; i++) {
		struct commit_req m = COMMIT4(.port = 8000 + i, .mode = FTVM_COMMIT_RELAXED);

		err = commit_set(&m);
	}
	c.port = 7000;
	c.mode = FTVM_COMMIT_RELAXED;
	err = err || commit_set(&c) || commit_set(&c) || commit_dump(&d);
	ksft_test_result(!err && d.n == 0,
			 "relaxed forgets a service; relaxing one that is not strict is no error\n");
}
#pragma GCC diagnostic pop

int main(void)
{
	ksft_print_header();
	ksft_set_plan(ARRAY_SIZE(bad_cases) + ARRAY_SIZE(sess_cases) +
		      ARRAY_SIZE(commit_cases) + 48);
	setup();
	test_add_get_dump();
	test_bad_requests();
	test_set();
	test_sessions();
	test_arm();
	test_commit();
	test_events();
	test_big_dump();
	test_churn();
	test_netns_teardown();
	ftnl_close(&nl);
	ksft_finished();
}
