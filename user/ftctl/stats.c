// SPDX-License-Identifier: GPL-2.0
/*
 * ftctl stats: the data plane's counters, summed over CPUs.
 *
 *   ftctl stats
 *
 * Global counters (why packets were left to the stack, and redirects
 * that failed), then one line per service and one per VM target.
 * redirect_err is counted per VM and in total, never per service: the
 * kernel reports a failed redirect without its packet.
 */
#include <stdio.h>

#include "ftctl.h"

static void print_counters(const struct ftvm_counters *c, bool vm)
{
	print_u64(PRINT_ANY, "packets", " packets %llu", c->packets);
	print_u64(PRINT_ANY, "bytes", " bytes %llu", c->bytes);
	print_u64(PRINT_ANY, "new_sessions", " new %llu", c->new_sessions);
	if (!vm)
		print_u64(PRINT_ANY, "pass", " pass %llu", c->pass);
	print_u64(PRINT_ANY, "drop", " drop %llu", c->drop);
	/* Steered by ifindex: no devmap slot (yet) for the VM. */
	print_u64(PRINT_ANY, "devmap_miss", " devmap_miss %llu",
		  c->devmap_miss);
	if (vm) {
		print_u64(PRINT_ANY, "fence_drop", " fence_drop %llu",
			  c->fence_drop);
		print_u64(PRINT_ANY, "fence_pass", " fence_pass %llu",
			  c->fence_pass);
		/* Frames the kernel failed to send to the VM's device. */
		print_u64(PRINT_ANY, "redirect_err", " redirect_err %llu",
			  c->redirect_err);
	}
}

static int stats_service(const struct ftvm_service_key *key,
			 const struct ftvm_service *svc, void *arg)
{
	struct ftvm_dp *dp = arg;
	struct ftvm_counters c;
	char name[80];

	if (ftvm_dp_service_stats(dp, svc->index, &c))
		return -1;
	ftvm_dp_service_format(key, name, sizeof(name));
	open_json_object(NULL);
	print_string(PRINT_ANY, "service", "service %-28s", name);
	print_counters(&c, false);
	print_nl();
	close_json_object();
	return 0;
}

static int stats_vm(uint32_t id, const struct ftvm_vm *vm, void *arg)
{
	struct ftvm_dp *dp = arg;
	struct ftvm_counters c;

	(void)vm;
	if (ftvm_dp_vm_stats(dp, id, &c))
		return -1;
	open_json_object(NULL);
	print_uint(PRINT_ANY, "vm", "vm %-5u", id);
	print_counters(&c, true);
	print_nl();
	close_json_object();
	return 0;
}

int cmd_stats(int argc, char **argv)
{
	uint64_t g[__FTVM_DP_STAT_MAX];
	struct ftvm_dp *dp;
	bool watched;
	int err;

	if (argc > 0 && matches(argv[0], "help")) {
		printf("Usage: ftctl stats\n");
		return 0;
	}
	if (argc > 0 && !matches(argv[0], "show"))
		return unknown_arg("stats", argv[0]);
	if (ftctl_dp_open(&dp))
		return 1;
	err = ftvm_dp_global_stats(dp, g);
	if (err)
		goto out;
	new_json_doc(opts.json, opts.pretty);
	open_json_object(NULL);
	open_json_object("global");
	print_string(PRINT_FP, NULL, "%s", "global");
	for (unsigned int i = 0; i < __FTVM_DP_STAT_MAX; i++) {
		char fmt[64];

		snprintf(fmt, sizeof(fmt), " %s %%llu", ftvm_dp_stat_name(i));
		print_u64(PRINT_ANY, ftvm_dp_stat_name(i), fmt, g[i]);
	}
	/* Counted only while the tracers are attached (ftctl attach). */
	watched = ftvm_dp_redirects_watched(NULL);
	print_bool(PRINT_JSON, "redirect_watch", NULL, watched);
	if (!watched)
		print_string(PRINT_FP, NULL, "%s",
			     " (redirect errors not counted: \"ftctl attach DEV\")");
	print_nl();
	close_json_object();
	open_json_array(PRINT_JSON, "services");
	err = ftvm_dp_service_foreach(dp, stats_service, dp);
	close_json_array(PRINT_JSON, NULL);
	if (!err) {
		open_json_array(PRINT_JSON, "vms");
		err = ftvm_dp_vm_foreach(dp, stats_vm, dp);
		close_json_array(PRINT_JSON, NULL);
	}
	close_json_object();
	delete_json_obj();
out:
	if (err)
		ftctl_dp_err();
	ftvm_dp_close(dp);
	return !!err;
}
