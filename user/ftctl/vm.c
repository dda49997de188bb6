// SPDX-License-Identifier: GPL-2.0
/*
 * ftctl vm: the VM registry of ftvm.ko.
 *
 *   ftctl vm add NAME id ID dev DEV [mac MAC] [netns NS] [silent-exit on|off]
 *   ftctl vm del { NAME | id ID }
 *   ftctl vm list
 *   ftctl vm show { NAME | id ID }
 *   ftctl vm set { NAME | id ID } [name NEW] [dev DEV] [mac MAC] [netns NS]
 *                [silent-exit on|off] [state up]
 *   ftctl vm fail { NAME | id ID }
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ftctl.h"
#include "../lib/hold.h"

static void vm_usage(FILE *f)
{
	fprintf(f,
		"Usage: ftctl vm add NAME id ID dev DEV [mac MAC] [netns NS] [silent-exit on|off]\n"
		"       ftctl vm del { NAME | id ID }\n"
		"       ftctl vm list\n"
		"       ftctl vm show { NAME | id ID }\n"
		"       ftctl vm set { NAME | id ID } [name NEW] [dev DEV] [mac MAC] [netns NS]\n"
		"                    [silent-exit on|off] [state up]\n"
		"       ftctl vm fail { NAME | id ID }\n"
		"ID is %u..%u; DEV is the VM's host-side tap or veth; MAC is the\n"
		"VM's own address (taken from a veth's peer when omitted).  With\n"
		"silent-exit on (it needs netns), a process of the VM killed by\n"
		"SIGKILL or a crash ends its connections without a packet and fails\n"
		"the VM, so that its sessions go on from their backups.\n",
		FTVM_VM_ID_MIN, FTVM_VM_ID_MAX);
}

static const char *const state_names[] = {
	[FTVM_VM_STATE_UP] = "up",
	[FTVM_VM_STATE_FAILED] = "failed",
};

static const char *const reason_names[] = {
	[FTVM_FAIL_NONE] = "none",
	[FTVM_FAIL_DEV_DOWN] = "device-down",
	[FTVM_FAIL_DEV_UNREGISTERED] = "device-gone",
	[FTVM_FAIL_CARRIER_LOST] = "carrier-lost",
	[FTVM_FAIL_USER] = "reported",
	[FTVM_FAIL_KILLED] = "killed",
};

const char *ftvm_state_name(unsigned int s)
{
	return s < ARRAY_SIZE(state_names) && state_names[s] ?
		state_names[s] : "unknown";
}

const char *ftvm_reason_name(unsigned int r)
{
	return r < ARRAY_SIZE(reason_names) && reason_names[r] ?
		reason_names[r] : "unknown";
}

/* What a request names: the attributes to put in FTVM_A_VM. */
struct vm_req {
	const char *name;	/* selector, or the new VM's name */
	uint32_t id;
	const char *dev;
	const char *newname;
	uint8_t mac[6];
	int netns_fd;		/* the VM's namespace (NAME or PID) */
	uint8_t silent_exit;
	bool has_id, has_mac, has_netns, has_silent, state_up;
};

static int vm_put(struct nl_msg *msg, const struct vm_req *r)
{
	struct nlattr *nest = nla_nest_start(msg, FTVM_A_VM);

	if (!nest)
		return -EMSGSIZE;
	if (r->has_id && nla_put_u32(msg, FTVM_A_VM_ID, r->id))
		return -EMSGSIZE;
	if (r->name && nla_put_string(msg, FTVM_A_VM_NAME, r->name))
		return -EMSGSIZE;
	if (r->dev && nla_put_string(msg, FTVM_A_VM_IFNAME, r->dev))
		return -EMSGSIZE;
	if (r->has_mac && nla_put(msg, FTVM_A_VM_MAC, 6, r->mac))
		return -EMSGSIZE;
	if (r->state_up && nla_put_u8(msg, FTVM_A_VM_STATE, FTVM_VM_STATE_UP))
		return -EMSGSIZE;
	if (r->has_netns && nla_put_s32(msg, FTVM_A_VM_NETNS_FD, r->netns_fd))
		return -EMSGSIZE;
	if (r->has_silent &&
	    nla_put_u8(msg, FTVM_A_VM_SILENT_EXIT, r->silent_exit))
		return -EMSGSIZE;
	nla_nest_end(msg, nest);
	return 0;
}

/*
 * Parse "{ NAME | id ID }" then the KEY VALUE pairs allowed by @keys
 * (a space separated list among "id dev mac name netns silent-exit state").
 */
static int vm_parse(int argc, char **argv, struct vm_req *r, const char *keys,
		    bool need_sel)
{
	memset(r, 0, sizeof(*r));
	while (argc > 0) {
		const char *k = argv[0];

		if (!strcmp(k, "id") || !strcmp(k, "dev") ||
		    !strcmp(k, "mac") || !strcmp(k, "name") ||
		    !strcmp(k, "netns") || !strcmp(k, "silent-exit") ||
		    !strcmp(k, "state")) {
			const char *v;

			if (!strstr(keys, k))
				return unknown_arg("vm", k);
			if (!NEXT_ARG_OK())
				return missing_arg(k);
			NEXT_ARG();
			v = argv[0];
			if (!strcmp(k, "id")) {
				if (parse_u32(v, &r->id) ||
				    r->id < FTVM_VM_ID_MIN ||
				    r->id > FTVM_VM_ID_MAX) {
					pr_err("invalid VM id \"%s\": expected %u..%u",
					       v, FTVM_VM_ID_MIN, FTVM_VM_ID_MAX);
					return 1;
				}
				r->has_id = true;
			} else if (!strcmp(k, "dev")) {
				if (!*v || strlen(v) >= IFNAMSIZ) {
					pr_err("invalid device name \"%s\"", v);
					return 1;
				}
				r->dev = v;
			} else if (!strcmp(k, "mac")) {
				if (parse_mac(v, r->mac)) {
					pr_err("invalid MAC address \"%s\": expected xx:xx:xx:xx:xx:xx",
					       v);
					return 1;
				}
				r->has_mac = true;
			} else if (!strcmp(k, "name")) {
				r->newname = v;
			} else if (!strcmp(k, "netns")) {
				/* A named namespace (ip netns), or a PID's. */
				char path[64];

				snprintf(path, sizeof(path),
					 strspn(v, "0123456789") == strlen(v) ?
					 "/proc/%s/ns/net" : "/run/netns/%s", v);
				r->netns_fd = open(path, O_RDONLY | O_CLOEXEC);
				if (r->netns_fd < 0) {
					pr_err("cannot open network namespace \"%s\": %s",
					       v, strerror(errno));
					return 1;
				}
				r->has_netns = true;
			} else if (!strcmp(k, "silent-exit")) {
				if (strcmp(v, "on") && strcmp(v, "off")) {
					pr_err("invalid silent-exit \"%s\": expected on or off",
					       v);
					return 1;
				}
				r->silent_exit = !strcmp(v, "on");
				r->has_silent = true;
			} else {
				if (strcmp(v, "up")) {
					pr_err("invalid state \"%s\": only \"up\" can be set (use \"ftctl vm fail\")",
					       v);
					return 1;
				}
				r->state_up = true;
			}
		} else if (!r->name) {
			r->name = k;
		} else {
			return unknown_arg("vm", k);
		}
		NEXT_ARG();
	}
	if (r->name && strlen(r->name) >= FTVM_VM_NAME_LEN) {
		pr_err("VM name \"%s\" is too long (at most %d characters)",
		       r->name, FTVM_VM_NAME_LEN - 1);
		return 1;
	}
	if (need_sel && !r->name && !r->has_id) {
		pr_err("which VM? give its NAME or \"id ID\"");
		return 1;
	}
	return 0;
}

/*
 * The ingress hold of the VM's namespace (FTVM_A_VM_HOLD): in JSON, and
 * on a line of its own in text if @text.
 */
static void hold_print(const struct nlattr *nest, bool text)
{
	struct ftnl_hold h;

	if (!ftnl_hold_parse(nest, &h))
		ftnl_hold_print(&h, text);
}

static int vm_print(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[FTVM_A_MAX + 1], *vm[FTVM_A_VM_MAX + 1];
	char ifname[IF_NAMESIZE] = "", mac[18] = "-";
	unsigned int state = 0, reason = 0, ifindex = 0;
	bool silent = false;

	(void)arg;
	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, FTVM_A_MAX, NULL) ||
	    !tb[FTVM_A_VM] ||
	    nla_parse_nested(vm, FTVM_A_VM_MAX, tb[FTVM_A_VM], NULL) ||
	    !vm[FTVM_A_VM_ID])
		return NL_SKIP;
	if (vm[FTVM_A_VM_IFINDEX]) {
		ifindex = nla_get_u32(vm[FTVM_A_VM_IFINDEX]);
		if (!if_indextoname(ifindex, ifname))
			snprintf(ifname, sizeof(ifname), "if%u", ifindex);
	}
	if (vm[FTVM_A_VM_MAC] && nla_len(vm[FTVM_A_VM_MAC]) == 6)
		format_mac(nla_data(vm[FTVM_A_VM_MAC]), mac, sizeof(mac));
	if (vm[FTVM_A_VM_STATE])
		state = nla_get_u8(vm[FTVM_A_VM_STATE]);
	if (vm[FTVM_A_VM_FAIL_REASON])
		reason = nla_get_u8(vm[FTVM_A_VM_FAIL_REASON]);
	if (vm[FTVM_A_VM_SILENT_EXIT])
		silent = nla_get_u8(vm[FTVM_A_VM_SILENT_EXIT]);

	open_json_object(NULL);
	print_uint(PRINT_ANY, "id", "%-5u", nla_get_u32(vm[FTVM_A_VM_ID]));
	print_string(PRINT_ANY, "name", " %-16s",
		     vm[FTVM_A_VM_NAME] ? nla_get_string(vm[FTVM_A_VM_NAME]) : "");
	print_string(PRINT_ANY, "dev", " %-16s", ifname);
	print_uint(PRINT_JSON, "ifindex", NULL, ifindex);
	print_string(PRINT_ANY, "mac", " %s", mac);
	print_string(PRINT_ANY, "state", " %s", ftvm_state_name(state));
	if (state == FTVM_VM_STATE_FAILED) {
		print_string(PRINT_ANY, "reason", " (%s)",
			     ftvm_reason_name(reason));
		if (vm[FTVM_A_VM_FAIL_TIME])
			print_u64(PRINT_JSON, "fail_time_ns", NULL,
				  nla_get_u64(vm[FTVM_A_VM_FAIL_TIME]));
	}
	print_bool(PRINT_JSON, "silent_exit", NULL, silent);
	if (silent)
		print_string(PRINT_FP, NULL, " %s", "silent-exit");
	/* In the text of "vm show" (not a dump's rows), and in JSON. */
	if (vm[FTVM_A_VM_HOLD])
		hold_print(vm[FTVM_A_VM_HOLD],
			   !(nlmsg_hdr(msg)->nlmsg_flags & NLM_F_MULTI));
	print_nl();
	close_json_object();
	return NL_OK;
}

static int vm_do(uint8_t cmd, const struct vm_req *r, bool dump,
		 nl_recvmsg_msg_cb_t cb)
{
	struct nl_msg *msg;
	struct ftnl nl;
	int err;

	err = ftnl_open(&nl);
	if (err) {
		if (err == -ENOENT)
			pr_err("the ftvm netlink family is not there: is ftvm.ko loaded? (modprobe ftvm)");
		else
			pr_err("cannot talk to the kernel: %s", strerror(-err));
		return 1;
	}
	msg = ftnl_msg(&nl, cmd, dump ? NLM_F_DUMP : 0);
	if (!msg || (r && vm_put(msg, r))) {
		nlmsg_free(msg);
		ftnl_close(&nl);
		pr_err("out of memory");
		return 1;
	}
	err = ftnl_call(&nl, msg, cb, NULL);
	/*
	 * The genetlink core refuses a request without a message before
	 * ftvm.ko sees it: a change without CAP_NET_ADMIN, a command the
	 * module does not know.  Say what that means.
	 */
	if (err == -EPERM && !nl.ext_msg[0])
		pr_err("ftvm: permission denied: changing the VM registry needs CAP_NET_ADMIN");
	else if (err == -EOPNOTSUPP && !nl.ext_msg[0])
		pr_err("ftvm: the loaded ftvm.ko does not know this request: is it older than ftctl?");
	else if (err)
		pr_err("%s", ftnl_strerror(&nl, err));
	ftnl_close(&nl);
	return err ? 1 : 0;
}

static int vm_list(bool dump, const struct vm_req *r)
{
	int ret;

	new_json_obj(opts.json, opts.pretty);
	if (!opts.json && dump)
		printf("%-5s %-16s %-16s %-17s %s\n", "ID", "NAME", "DEV",
		       "MAC", "STATE");
	ret = vm_do(FTVM_CMD_VM_GET, r, dump, vm_print);
	delete_json_obj();
	return ret;
}

int cmd_vm(int argc, char **argv)
{
	struct vm_req r;
	const char *verb;

	if (argc < 1)
		return vm_list(true, NULL);
	verb = argv[0];
	NEXT_ARG();
	if (matches(verb, "help")) {
		vm_usage(stdout);
		return 0;
	}
	if (matches(verb, "add")) {
		if (vm_parse(argc, argv, &r, "id dev mac netns silent-exit", false))
			return 1;
		if (!r.name || !r.has_id || !r.dev) {
			pr_err("\"vm add\" needs NAME, \"id ID\" and \"dev DEV\"");
			return 1;
		}
		return vm_do(FTVM_CMD_VM_NEW, &r, false, NULL);
	}
	if (matches(verb, "delete")) {
		if (vm_parse(argc, argv, &r, "id", true))
			return 1;
		return vm_do(FTVM_CMD_VM_DEL, &r, false, NULL);
	}
	if (matches(verb, "list") || matches(verb, "lst")) {
		if (argc > 0)
			return unknown_arg("vm", argv[0]);
		return vm_list(true, NULL);
	}
	if (matches(verb, "show")) {
		if (vm_parse(argc, argv, &r, "id", true))
			return 1;
		return vm_list(false, &r);
	}
	if (matches(verb, "set")) {
		if (vm_parse(argc, argv, &r, "id dev mac name netns silent-exit state", true))
			return 1;
		if (r.newname) {
			/* Select by id, rename to newname. */
			if (!r.has_id) {
				pr_err("renaming needs the VM's \"id ID\"");
				return 1;
			}
			if (r.name) {
				pr_err("give either NAME or \"id ID\" with \"name NEW\"");
				return 1;
			}
			if (strlen(r.newname) >= FTVM_VM_NAME_LEN) {
				pr_err("VM name \"%s\" is too long (at most %d characters)",
				       r.newname, FTVM_VM_NAME_LEN - 1);
				return 1;
			}
			r.name = r.newname;
		}
		if (!r.dev && !r.has_mac && !r.state_up && !r.newname &&
		    !r.has_netns && !r.has_silent) {
			pr_err("\"vm set\" needs something to change: name, dev, mac, netns, silent-exit or state up");
			return 1;
		}
		return vm_do(FTVM_CMD_VM_SET, &r, false, NULL);
	}
	if (matches(verb, "fail")) {
		if (vm_parse(argc, argv, &r, "id", true))
			return 1;
		return vm_do(FTVM_CMD_VM_FAIL, &r, false, NULL);
	}
	pr_err("unknown command \"%s\" for \"vm\"; try \"ftctl vm help\"", verb);
	return 1;
}
