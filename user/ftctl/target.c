// SPDX-License-Identifier: GPL-2.0
/*
 * ftctl target: VMs as steering targets of the data plane (VM id ->
 * host-side device and VM MAC) and their egress fence.
 *
 *   ftctl target set VM dev DEV mac MAC   (and count redirect errors, if
 *                                          ftctl attach did not already)
 *   ftctl target del VM
 *   ftctl target fence VM        drop VM's replies for every service
 *   ftctl target unfence VM
 *   ftctl target list
 */
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "ftctl.h"

static void target_usage(FILE *f)
{
	fprintf(f,
		"Usage: ftctl target set VM dev DEV mac MAC\n"
		"       ftctl target del VM\n"
		"       ftctl target { fence | unfence } VM\n"
		"       ftctl target list\n"
		"VM is a VM id %u..%u; DEV the VM's host-side tap or veth;\n"
		"MAC the VM's own address.\n", FTVM_VM_ID_MIN, FTVM_VM_ID_MAX);
}

static int parse_vm(const char *s, uint32_t *vm)
{
	if (parse_u32(s, vm) || *vm < FTVM_VM_ID_MIN || *vm > FTVM_VM_ID_MAX) {
		pr_err("\"%s\" is not a VM id (%u..%u)", s, FTVM_VM_ID_MIN,
		       FTVM_VM_ID_MAX);
		return -1;
	}
	return 0;
}

static int target_set(int argc, char **argv)
{
	const char *dev = NULL;
	struct ftvm_dp *dp;
	bool has_mac = false;
	uint8_t mac[6];
	int ifindex, ret = 0;
	uint32_t vm;

	if (argc < 2)
		return missing_arg("set");
	NEXT_ARG();
	if (parse_vm(argv[0], &vm))
		return 1;
	while (NEXT_ARG_OK()) {
		NEXT_ARG();
		if (matches(argv[0], "dev")) {
			if (!NEXT_ARG_OK())
				return missing_arg("dev");
			NEXT_ARG();
			dev = argv[0];
		} else if (matches(argv[0], "mac")) {
			if (!NEXT_ARG_OK())
				return missing_arg("mac");
			NEXT_ARG();
			if (parse_mac(argv[0], mac)) {
				pr_err("\"%s\" is not a MAC address", argv[0]);
				return 1;
			}
			has_mac = true;
		} else {
			return unknown_arg("target", argv[0]);
		}
	}
	if (!dev)
		return missing_arg("dev");
	if (!has_mac)
		return missing_arg("mac");
	ifindex = (int)if_nametoindex(dev);
	if (!ifindex) {
		pr_err("device \"%s\" does not exist", dev);
		return 1;
	}
	if (ftctl_dp_open(&dp))
		return 1;
	if (ftvm_dp_vm_set(dp, vm, ifindex, mac)) {
		ftctl_dp_err();
		ret = 1;
	} else if (ftvm_dp_watch_redirects(NULL, NULL)) {
		/*
		 * A data plane "ip link ... xdp obj" loaded has no redirect
		 * error counters yet: attached here, on its first target.
		 */
		fprintf(stderr, "Warning: redirect errors are not counted: %s\n",
			ftvm_dp_errmsg());
	}
	ftvm_dp_close(dp);
	return ret;
}

/* del, fence, unfence: VM as the only argument. */
static int target_vm_op(int argc, char **argv)
{
	struct ftvm_dp *dp;
	uint32_t vm;
	int err;

	if (argc < 2)
		return missing_arg(argv[0]);
	if (argc > 2)
		return unknown_arg("target", argv[2]);
	if (parse_vm(argv[1], &vm))
		return 1;
	if (ftctl_dp_open(&dp))
		return 1;
	if (matches(argv[0], "delete"))
		err = ftvm_dp_vm_del(dp, vm);
	else
		err = ftvm_dp_vm_set_fenced(dp, vm, argv[0][0] == 'f');
	if (err)
		ftctl_dp_err();
	ftvm_dp_close(dp);
	return !!err;
}

static int print_target(uint32_t id, const struct ftvm_vm *vm, void *arg)
{
	char dev[IF_NAMESIZE] = "", mac[18];
	uint64_t now, left_ms;
	bool failed;

	(void)arg;
	if (!vm->ifindex || !if_indextoname(vm->ifindex, dev))
		snprintf(dev, sizeof(dev), "-");
	format_mac(vm->mac, mac, sizeof(mac));
	open_json_object(NULL);
	print_uint(PRINT_ANY, "vm", "%-5u", id);
	print_string(PRINT_ANY, "dev", " dev %-16s", dev);
	print_uint(PRINT_JSON, "ifindex", NULL, vm->ifindex);
	print_string(PRINT_ANY, "mac", " mac %s", mac);
	print_bool(PRINT_JSON, "fenced", NULL,
		   !!(vm->flags & FTVM_VM_F_FENCED));
	if (vm->flags & FTVM_VM_F_FENCED)
		print_string(PRINT_FP, NULL, " %s", "fenced");
	/* ftd drains it (kept here for a restarted ftd). */
	print_bool(PRINT_JSON, "draining", NULL,
		   !!(vm->flags & FTVM_VM_F_DRAINING));
	if (vm->flags & FTVM_VM_F_DRAINING)
		print_string(PRINT_FP, NULL, " %s", "draining");
	/*
	 * ftvm.ko reported it failed: its sessions go to their backups
	 * while those hold them (for to_backups_ms more).
	 */
	failed = vm->flags & FTVM_VM_F_FAILED;
	now = monotonic_ns();
	left_ms = failed && vm->failed_until > now ?
		  (vm->failed_until - now + 999999) / 1000000 : 0;
	print_bool(PRINT_JSON, "failed", NULL, failed);
	if (failed)
		print_u64(PRINT_JSON, "to_backups_ms", NULL, left_ms);
	if (failed && left_ms)
		print_u64(PRINT_FP, NULL, " failed (to backups %" PRIu64 " ms)",
			  left_ms);
	else if (failed)
		print_string(PRINT_FP, NULL, " %s", "failed");
	print_nl();
	close_json_object();
	return 0;
}

static int target_list(void)
{
	struct ftvm_dp *dp;
	int err;

	if (ftctl_dp_open(&dp))
		return 1;
	new_json_obj(opts.json, opts.pretty);
	err = ftvm_dp_vm_foreach(dp, print_target, NULL);
	delete_json_obj();
	if (err)
		ftctl_dp_err();
	ftvm_dp_close(dp);
	return !!err;
}

int cmd_target(int argc, char **argv)
{
	if (argc < 1 || matches(argv[0], "list") || matches(argv[0], "show"))
		return target_list();
	if (matches(argv[0], "set"))
		return target_set(argc, argv);
	if (matches(argv[0], "delete") || matches(argv[0], "fence") ||
	    matches(argv[0], "unfence"))
		return target_vm_op(argc, argv);
	if (matches(argv[0], "help")) {
		target_usage(stdout);
		return 0;
	}
	return unknown_arg("target", argv[0]);
}
