// SPDX-License-Identifier: GPL-2.0
/*
 * Failure detection.
 *
 * With ftvm.ko: its registry is the VMs' source of truth in the kernel
 * and its "vm-failed" events (device down, carrier lost, device gone)
 * trigger failovers; ftd mirrors the VMs it manages into the registry
 * and reports heartbeat failures to it.
 * Without it: rtnetlink link events on the VMs' devices do the same job
 * (slower by a context switch, same decisions).
 * Either way: heartbeats (probe.c) catch VMs that hang with their link up.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../lib/ftnl.h"
#include "../lib/hold.h"
#include "ftd.h"

#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP	0x10000
#endif

static struct ftnl req_nl, ev_nl;
static int rtnl_fd = -1;

static void fail_now(struct ftd_vm *vm, int reason, uint64_t t)
{
	if (vm->state == VM_FAILED)
		return;
	ctl_event("{\"event\":\"vm-failed\",\"vm\":\"%s\",\"id\":%u,\"reason\":\"%s\"}",
		  vm->name, vm->id, fail_reason_name(reason));
	failover_vm(vm->id, reason, t);
}

/* ---- ftvm.ko ---------------------------------------------------------- */

int detect_module_open(void)
{
	int err = ftnl_open(&req_nl);

	if (err)
		return err;
	err = ftnl_open(&ev_nl);
	if (!err)
		err = ftnl_subscribe(&ev_nl);
	if (err) {
		ftnl_close(&req_nl);
		ftnl_close(&ev_nl);
		return err;
	}
	nl_socket_set_nonblocking(ev_nl.sk);
	nl_socket_set_buffer_size(ev_nl.sk, 1 << 20, 0);
	return 0;
}

int detect_module_fd(void)
{
	return ev_nl.sk ? nl_socket_get_fd(ev_nl.sk) : -1;
}

struct kvm {
	uint32_t id;
	const char *name;
	uint32_t ifindex;
	uint8_t state, reason;
	const uint8_t *mac;
	uint64_t fail_ns;
	bool silent_exit;
};

static int parse_kvm(struct nl_msg *msg, struct kvm *k)
{
	struct nlattr *tb[FTVM_A_MAX + 1], *a[FTVM_A_VM_MAX + 1];

	memset(k, 0, sizeof(*k));
	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, FTVM_A_MAX, NULL) ||
	    !tb[FTVM_A_VM] ||
	    nla_parse_nested(a, FTVM_A_VM_MAX, tb[FTVM_A_VM], NULL) ||
	    !a[FTVM_A_VM_ID])
		return -EINVAL;
	k->id = nla_get_u32(a[FTVM_A_VM_ID]);
	if (k->id > FTVM_VM_ID_MAX)
		return -EINVAL;
	if (a[FTVM_A_VM_NAME])
		k->name = nla_get_string(a[FTVM_A_VM_NAME]);
	if (a[FTVM_A_VM_IFINDEX])
		k->ifindex = nla_get_u32(a[FTVM_A_VM_IFINDEX]);
	if (a[FTVM_A_VM_STATE])
		k->state = nla_get_u8(a[FTVM_A_VM_STATE]);
	if (a[FTVM_A_VM_FAIL_REASON])
		k->reason = nla_get_u8(a[FTVM_A_VM_FAIL_REASON]);
	if (a[FTVM_A_VM_MAC] && nla_len(a[FTVM_A_VM_MAC]) == 6)
		k->mac = nla_data(a[FTVM_A_VM_MAC]);
	if (a[FTVM_A_VM_FAIL_TIME])
		k->fail_ns = nla_get_u64(a[FTVM_A_VM_FAIL_TIME]);
	if (a[FTVM_A_VM_SILENT_EXIT])
		k->silent_exit = nla_get_u8(a[FTVM_A_VM_SILENT_EXIT]);
	return 0;
}

static int on_event(struct nl_msg *msg, void *arg)
{
	struct genlmsghdr *gh = nlmsg_data(nlmsg_hdr(msg));
	uint64_t now = monotonic_ns();
	struct ftd_vm *vm;
	struct kvm k;

	(void)arg;
	if (parse_kvm(msg, &k))
		return NL_SKIP;
	pthread_mutex_lock(&ftd.lock);
	vm = &ftd.cfg.vms[k.id];
	if (!vm->used) {
		pthread_mutex_unlock(&ftd.lock);
		return NL_OK;
	}
	switch (gh->cmd) {
	case FTVM_CMD_VM_FAILED:
		/*
		 * The module stamps the failure when its notifier ran; time
		 * the failover from there (same clock) when it is sane.
		 */
		if (k.fail_ns && k.fail_ns <= now && now - k.fail_ns < 1000000000ull)
			now = k.fail_ns;
		if (k.reason == FTVM_FAIL_DEV_UNREGISTERED) {
			vm->ifindex = 0;
			/* Down first, then gone: the second word is right. */
			if (vm->state == VM_FAILED && vm->reason != FTD_FAIL_HEARTBEAT)
				vm->reason = k.reason;
		}
		fail_now(vm, k.reason, now);
		break;
	case FTVM_CMD_VM_SET:
		/* A failed VM's device went away after it went down. */
		if (k.state == FTVM_VM_STATE_FAILED &&
		    k.reason == FTVM_FAIL_DEV_UNREGISTERED) {
			vm->ifindex = 0;
			if (vm->state == VM_FAILED &&
			    vm->reason != FTD_FAIL_HEARTBEAT)
				vm->reason = k.reason;
			else
				fail_now(vm, k.reason, now);
		}
		break;
	case FTVM_CMD_VM_UP:
		if (k.ifindex)
			vm->ifindex = (int)k.ifindex;
		vm_rejoin(vm->id);
		break;
	case FTVM_CMD_VM_DEL:
		ftd_log(LOG_WARN, "vm %s was removed from ftvm.ko's registry behind ftd's back; treating it as failed",
			vm->name);
		fail_now(vm, FTVM_FAIL_USER, now);
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&ftd.lock);
	return NL_OK;
}

void detect_module_read(void)
{
	int err;

	do {
		err = ftnl_recv_events(&ev_nl, on_event, NULL);
	} while (!err);
	if (err != -EAGAIN)
		ftd_log(LOG_WARN, "ftvm.ko events: %s (events may have been lost; resyncing)",
			strerror(-err));
	if (err == -ENOMEM || err == -ENOBUFS || err == -EIO) {
		pthread_mutex_lock(&ftd.lock);
		module_sync_registry();
		pthread_mutex_unlock(&ftd.lock);
	}
}

/* One request about @vm to ftvm.ko (vm_msg()); @nsfd: its namespace. */
static int vm_msg_once(uint8_t cmd, const struct ftd_vm *vm, bool full,
		       int extra, nl_recvmsg_msg_cb_t cb, void *arg, int nsfd)
{
	struct nl_msg *msg;
	struct nlattr *nest;

	msg = ftnl_msg(&req_nl, cmd, 0);
	if (!msg)
		return -ENOMEM;
	nest = nla_nest_start(msg, FTVM_A_VM);
	if (!nest || nla_put_u32(msg, FTVM_A_VM_ID, vm->id) ||
	    (nsfd >= 0 && nla_put_s32(msg, FTVM_A_VM_NETNS_FD, nsfd)) ||
	    (full && nla_put_string(msg, FTVM_A_VM_NAME, vm->name)) ||
	    (full && nla_put_string(msg, FTVM_A_VM_IFNAME, vm->dev)) ||
	    (full && vm->has_mac && nla_put(msg, FTVM_A_VM_MAC, 6, vm->mac)) ||
	    (full && nla_put_u8(msg, FTVM_A_VM_SILENT_EXIT, vm->silent_exit)) ||
	    (extra == FTVM_A_VM_STATE &&
	     nla_put_u8(msg, FTVM_A_VM_STATE, FTVM_VM_STATE_UP)) ||
	    (extra == FTVM_A_VM_RESUME && nla_put_flag(msg, FTVM_A_VM_RESUME)) ||
	    (extra == FTVM_A_VM_ARM && nla_put_flag(msg, FTVM_A_VM_ARM))) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	nla_nest_end(msg, nest);
	req_nl.ext_msg[0] = 0;
	return ftnl_call(&req_nl, msg, cb, arg);
}

/*
 * One request about @vm to ftvm.ko: its id, and with @full all it is
 * registered with; @extra adds FTVM_A_VM_STATE (up), FTVM_A_VM_RESUME or
 * FTVM_A_VM_ARM, if it names one of them.  Sent again if ftvm.ko refused
 * it for want of memory (FTD_NOMEM_RETRIES).
 */
static int vm_msg(uint8_t cmd, const struct ftd_vm *vm, bool full,
		  int extra, nl_recvmsg_msg_cb_t cb, void *arg,
		  char *err, size_t len)
{
	unsigned int tries = 0;
	int ret, nsfd = -1;

	if (full && vm->netns[0]) {
		char path[96];
		bool pid = strspn(vm->netns, "0123456789") == strlen(vm->netns);

		snprintf(path, sizeof(path), pid ? "/proc/%s/ns/net" :
			 "/run/netns/%s", vm->netns);
		nsfd = open(path, O_RDONLY | O_CLOEXEC);
		if (nsfd < 0) {
			if (err)
				snprintf(err, len, "network namespace \"%s\": %s",
					 vm->netns, strerror(errno));
			return -errno;
		}
	}
	/* A VM registered, changed (its namespace), failed or brought back. */
	if (cmd != FTVM_CMD_VM_GET)
		model_moved();
	while ((ret = vm_msg_once(cmd, vm, full, extra, cb, arg, nsfd)) == -ENOMEM &&
	       nomem_backoff(&tries))
		;
	if (nsfd >= 0)
		close(nsfd);
	if (ret && err)
		snprintf(err, len, "ftvm.ko: %s", ftnl_strerror(&req_nl, ret));
	return ret;
}

int module_vm_register(struct ftd_vm *vm, char *err, size_t len)
{
	if (!ftd.have_module)
		return 0;
	return vm_msg(FTVM_CMD_VM_NEW, vm, true, 0, NULL, NULL, err, len);
}

int module_vm_unregister(struct ftd_vm *vm, char *err, size_t len)
{
	if (!ftd.have_module)
		return 0;
	return vm_msg(FTVM_CMD_VM_DEL, vm, false, 0, NULL, NULL, err, len);
}

int module_vm_fail(struct ftd_vm *vm)
{
	if (!ftd.have_module)
		return 0;
	return vm_msg(FTVM_CMD_VM_FAIL, vm, false, 0, NULL, NULL, NULL, 0);
}

int module_vm_resume(struct ftd_vm *vm)
{
	if (!ftd.have_module)
		return 0;
	return vm_msg(FTVM_CMD_VM_FAIL, vm, false, FTVM_A_VM_RESUME, NULL, NULL,
		      NULL, 0);
}

int module_vm_arm(struct ftd_vm *vm, char *err, size_t len)
{
	if (!ftd.have_module)
		return -EOPNOTSUPP;
	return vm_msg(FTVM_CMD_VM_SET, vm, false, FTVM_A_VM_ARM, NULL, NULL,
		      err, len);
}

int module_vm_up(struct ftd_vm *vm, char *err, size_t len)
{
	if (!ftd.have_module)
		return 0;
	/* Rebinds too: the device may have been recreated meanwhile. */
	return vm_msg(FTVM_CMD_VM_SET, vm, true, FTVM_A_VM_STATE, NULL, NULL, err, len);
}

int module_vm_update(struct ftd_vm *vm, char *err, size_t len)
{
	if (!ftd.have_module)
		return 0;
	return vm_msg(FTVM_CMD_VM_SET, vm, true, 0, NULL, NULL, err, len);
}

struct hold_reply {
	struct ftnl_hold *h;
	bool found;
};

static int hold_one(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[FTVM_A_MAX + 1], *a[FTVM_A_VM_MAX + 1];
	struct hold_reply *r = arg;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, FTVM_A_MAX, NULL) ||
	    !tb[FTVM_A_VM] ||
	    nla_parse_nested(a, FTVM_A_VM_MAX, tb[FTVM_A_VM], NULL) ||
	    !a[FTVM_A_VM_HOLD] || ftnl_hold_parse(a[FTVM_A_VM_HOLD], r->h))
		return NL_SKIP;
	r->found = true;
	return NL_OK;
}

int module_vm_hold(const struct ftd_vm *vm, struct ftnl_hold *h)
{
	struct hold_reply r = { .h = h };
	int ret;

	if (!ftd.have_module)
		return -ENOENT;
	ret = vm_msg(FTVM_CMD_VM_GET, vm, false, 0, hold_one, &r, NULL, 0);
	if (ret)
		return ret;
	return r.found ? 0 : -ENOENT;
}

static int sync_one(struct nl_msg *msg, void *arg)
{
	bool *seen = arg;
	struct ftd_vm *vm;
	struct kvm k;

	if (parse_kvm(msg, &k) || !k.id)
		return NL_SKIP;
	seen[k.id] = true;
	vm = &ftd.cfg.vms[k.id];
	if (!vm->used) {
		/* Registered by hand (ftctl without ftd): adopt it. */
		memset(vm, 0, sizeof(*vm));
		vm->used = true;
		vm->id = k.id;
		snprintf(vm->name, sizeof(vm->name), "%s", k.name ? k.name : "");
		if (!if_indextoname(k.ifindex, vm->dev))
			snprintf(vm->dev, sizeof(vm->dev), "if%u", k.ifindex);
		vm->capacity = 100;
		vm->probe.interval_ms = 1000;
		vm->probe.misses = 3;
		vm->state = VM_UP;
		/* What the module watches for it, ftd watches too. */
		vm->silent_exit = k.silent_exit;
		ftd_log(LOG_INFO, "adopting vm %s (id %u) from ftvm.ko's registry",
			vm->name, vm->id);
	}
	vm->ifindex = (int)k.ifindex;
	if (k.mac) {
		memcpy(vm->mac, k.mac, 6);
		vm->has_mac = true;
	}
	if (k.state == FTVM_VM_STATE_FAILED && vm->state != VM_FAILED) {
		vm->state = VM_FAILED;
		vm->reason = k.reason;
		vm->fail_ns = k.fail_ns ? k.fail_ns : monotonic_ns();
	}
	return NL_OK;
}

/*
 * Make ftd's VMs and the module's registry agree: register what the
 * module lacks, adopt what only the module has, take its failures.
 */
int module_sync_registry(void)
{
	bool seen[FTVM_VM_ID_MAX + 1] = {};
	unsigned int tries = 0;
	struct nl_msg *msg;
	char err[256];
	int ret;

	if (!ftd.have_module)
		return 0;
	/* Done again if the kernel ran short of memory (sync_one() may). */
	for (;;) {
		msg = ftnl_msg(&req_nl, FTVM_CMD_VM_GET, NLM_F_DUMP);
		ret = msg ? ftnl_call(&req_nl, msg, sync_one, seen) : -ENOMEM;
		if ((ret != -ENOMEM && ret != -ENOBUFS) || !nomem_backoff(&tries))
			break;
	}
	if (ret) {
		ftd_log(LOG_ERR, "ftvm.ko registry dump: %s",
			ftnl_strerror(&req_nl, ret));
		return ret;
	}
	for (uint32_t id = FTVM_VM_ID_MIN; id <= FTVM_VM_ID_MAX; id++) {
		struct ftd_vm *vm = &ftd.cfg.vms[id];

		if (!vm->used || seen[id] || vm->state == VM_FAILED)
			continue;
		if (module_vm_register(vm, err, sizeof(err)))
			ftd_log(LOG_WARN, "vm %s: %s", vm->name, err);
	}
	return 0;
}

/* ---- rtnetlink --------------------------------------------------------- */

int detect_rtnl_open(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK,
				  .nl_groups = RTMGRP_LINK };
	int sz = 1 << 20;

	rtnl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
			 NETLINK_ROUTE);
	if (rtnl_fd < 0)
		return -errno;
	setsockopt(rtnl_fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (bind(rtnl_fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(rtnl_fd);
		rtnl_fd = -1;
		return -errno;
	}
	return 0;
}

int detect_rtnl_fd(void)
{
	return rtnl_fd;
}

static void link_event(int type, const struct ifinfomsg *ifi,
		       const char *ifname, uint64_t now)
{
	struct ftd_vm *vm = vm_by_ifindex(ifi->ifi_index);

	if (!vm && ifname && type == RTM_NEWLINK) {
		/* A VM's device is back (recreated): note its new index. */
		for (int i = FTVM_VM_ID_MIN; i <= FTVM_VM_ID_MAX; i++)
			if (ftd.cfg.vms[i].used && !ftd.cfg.vms[i].ifindex &&
			    !strcmp(ftd.cfg.vms[i].dev, ifname)) {
				ftd.cfg.vms[i].ifindex = ifi->ifi_index;
				ftd_log(LOG_INFO, "vm %s: device %s is back (ifindex %d); \"ftctl vm set %s state up\" to rejoin",
					ftd.cfg.vms[i].name, ifname,
					ifi->ifi_index, ftd.cfg.vms[i].name);
			}
		return;
	}
	if (!vm)
		return;
	if (type == RTM_DELLINK) {
		/* Went down on its way out: it is gone, say so. */
		if (vm->state == VM_FAILED && vm->reason != FTD_FAIL_HEARTBEAT &&
		    vm->reason != FTVM_FAIL_USER)
			vm->reason = FTVM_FAIL_DEV_UNREGISTERED;
		fail_now(vm, FTVM_FAIL_DEV_UNREGISTERED, now);
		vm->ifindex = 0;
		dp_vm_del(ftd.dp, vm->id, ifi->ifi_index);
		dp_vm_set(ftd.dp, vm->id, 0, vm->mac, FTVM_VM_F_FENCED);
	} else if (!(ifi->ifi_flags & IFF_UP)) {
		fail_now(vm, FTVM_FAIL_DEV_DOWN, now);
	} else if (!(ifi->ifi_flags & IFF_LOWER_UP)) {
		fail_now(vm, FTVM_FAIL_CARRIER_LOST, now);
	}
}

void detect_rtnl_read(void)
{
	char buf[16384] __attribute__((aligned(4)));
	ssize_t n;

	while ((n = recv(rtnl_fd, buf, sizeof(buf), 0)) > 0) {
		uint64_t now = monotonic_ns();

		pthread_mutex_lock(&ftd.lock);
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf;
		     NLMSG_OK(h, (unsigned int)n); h = NLMSG_NEXT(h, n)) {
			struct ifinfomsg *ifi = NLMSG_DATA(h);
			const char *ifname = NULL;
			int alen;

			if (h->nlmsg_type != RTM_NEWLINK &&
			    h->nlmsg_type != RTM_DELLINK)
				continue;
			alen = (int)IFLA_PAYLOAD(h);
			for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, alen);
			     a = RTA_NEXT(a, alen))
				if (a->rta_type == IFLA_IFNAME)
					ifname = RTA_DATA(a);
			link_event(h->nlmsg_type, ifi, ifname, now);
		}
		pthread_mutex_unlock(&ftd.lock);
	}
	if (n < 0 && errno == ENOBUFS) {
		ftd_log(LOG_WARN, "rtnetlink overrun: rechecking every VM's link");
		pthread_mutex_lock(&ftd.lock);
		detect_link_check_all();
		pthread_mutex_unlock(&ftd.lock);
	}
}

/* Check every VM's device now (start, overruns); ftd.lock held. */
void detect_link_check_all(void)
{
	uint64_t now = monotonic_ns();

	for (int i = FTVM_VM_ID_MIN; i <= FTVM_VM_ID_MAX; i++) {
		struct ftd_vm *vm = &ftd.cfg.vms[i];
		struct ifreq ifr = {};
		int fd, idx;

		if (!vm->used)
			continue;
		idx = (int)if_nametoindex(vm->dev);
		if (!idx) {
			if (vm->state != VM_FAILED)
				fail_now(vm, FTVM_FAIL_DEV_UNREGISTERED, now);
			vm->ifindex = 0;
			continue;
		}
		vm->ifindex = idx;
		if (ftd.have_module)
			continue;
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", vm->dev);
		/* ifr_flags is 16 bits: IFF_RUNNING stands for the carrier. */
		if (!ioctl(fd, SIOCGIFFLAGS, &ifr)) {
			if (!(ifr.ifr_flags & IFF_UP))
				fail_now(vm, FTVM_FAIL_DEV_DOWN, now);
			else if (!(ifr.ifr_flags & IFF_RUNNING))
				fail_now(vm, FTVM_FAIL_CARRIER_LOST, now);
		}
		close(fd);
	}
}
