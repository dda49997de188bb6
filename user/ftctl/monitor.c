// SPDX-License-Identifier: GPL-2.0
/*
 * ftctl monitor [count N]: print ftvm.ko's events as they arrive, one
 * line (or one JSON object per line under -j) each.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ftctl.h"

const char *ftvm_state_name(unsigned int s);
const char *ftvm_reason_name(unsigned int r);

static const char *const event_names[] = {
	[FTVM_CMD_VM_NEW] = "vm-new",
	[FTVM_CMD_VM_DEL] = "vm-del",
	[FTVM_CMD_VM_SET] = "vm-set",
	[FTVM_CMD_VM_FAILED] = "vm-failed",
	[FTVM_CMD_VM_UP] = "vm-up",
};

struct mon {
	unsigned long seen;
};

static int monitor_event(struct nl_msg *msg, void *arg)
{
	struct genlmsghdr *gh = nlmsg_data(nlmsg_hdr(msg));
	struct nlattr *tb[FTVM_A_MAX + 1], *vm[FTVM_A_VM_MAX + 1];
	struct mon *m = arg;
	const char *ev;

	if (gh->cmd >= ARRAY_SIZE(event_names) || !event_names[gh->cmd])
		return NL_SKIP;
	ev = event_names[gh->cmd];
	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, FTVM_A_MAX, NULL) ||
	    !tb[FTVM_A_VM] ||
	    nla_parse_nested(vm, FTVM_A_VM_MAX, tb[FTVM_A_VM], NULL) ||
	    !vm[FTVM_A_VM_ID])
		return NL_SKIP;

	/* One self-contained JSON document per event line under -j. */
	new_json_doc(opts.json, false);
	open_json_object(NULL);
	print_string(PRINT_ANY, "event", "%s", ev);
	print_uint(PRINT_ANY, "id", " id %u", nla_get_u32(vm[FTVM_A_VM_ID]));
	if (vm[FTVM_A_VM_NAME])
		print_string(PRINT_ANY, "name", " name %s",
			     nla_get_string(vm[FTVM_A_VM_NAME]));
	if (vm[FTVM_A_VM_STATE])
		print_string(PRINT_ANY, "state", " state %s",
			     ftvm_state_name(nla_get_u8(vm[FTVM_A_VM_STATE])));
	if (vm[FTVM_A_VM_FAIL_REASON] &&
	    nla_get_u8(vm[FTVM_A_VM_FAIL_REASON]) != FTVM_FAIL_NONE)
		print_string(PRINT_ANY, "reason", " reason %s",
			     ftvm_reason_name(nla_get_u8(vm[FTVM_A_VM_FAIL_REASON])));
	if (vm[FTVM_A_VM_FAIL_TIME])
		print_u64(PRINT_ANY, "time_ns", " time %llu",
			  nla_get_u64(vm[FTVM_A_VM_FAIL_TIME]));
	print_nl();
	close_json_object();
	delete_json_obj();
	m->seen++;
	return NL_OK;
}

int cmd_monitor(int argc, char **argv)
{
	struct mon m = { 0 };
	uint64_t count = 0;
	struct ftnl nl;
	int err;

	while (argc > 0) {
		if (matches(argv[0], "count")) {
			if (!NEXT_ARG_OK())
				return missing_arg("count");
			NEXT_ARG();
			if (parse_u64(argv[0], &count) || !count) {
				pr_err("invalid count \"%s\"", argv[0]);
				return 1;
			}
		} else if (matches(argv[0], "help")) {
			printf("Usage: ftctl monitor [count N]\n");
			return 0;
		} else {
			return unknown_arg("monitor", argv[0]);
		}
		NEXT_ARG();
	}

	err = ftnl_open(&nl);
	if (err) {
		pr_err(err == -ENOENT ?
		       "the ftvm netlink family is not there: is ftvm.ko loaded?" :
		       "cannot talk to the kernel: %s", strerror(-err));
		return 1;
	}
	err = ftnl_subscribe(&nl);
	if (err) {
		pr_err("cannot join the ftvm events group: %s", strerror(-err));
		ftnl_close(&nl);
		return 1;
	}
	/* Tell a waiting script that we are listening. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (!count || m.seen < count) {
		err = ftnl_recv_events(&nl, monitor_event, &m);
		if (err && err != -EINTR && err != -EAGAIN) {
			pr_err("receiving events: %s", strerror(-err));
			break;
		}
	}
	ftnl_close(&nl);
	return err && err != -EINTR ? 1 : 0;
}
