// SPDX-License-Identifier: GPL-2.0
/*
 * ftctl placement: which VM holds the primary (and backup) state of the
 * sessions of a placement; ftd drives these, this is the manual path.
 *
 *   ftctl placement set ID primary VM [backup VM]
 *   ftctl placement del ID
 *   ftctl placement list
 *   ftctl placement failover VM     every placement of VM to its backup
 */
#include <stdio.h>
#include <string.h>

#include "ftctl.h"

static void placement_usage(FILE *f)
{
	fprintf(f,
		"Usage: ftctl placement set ID primary VM [backup VM]\n"
		"       ftctl placement del ID\n"
		"       ftctl placement list\n"
		"       ftctl placement failover VM\n"
		"ID is 1..%u, VM a VM id %u..%u.\n",
		FTVM_MAX_PLACEMENTS - 1, FTVM_VM_ID_MIN, FTVM_VM_ID_MAX);
}

static int parse_id(const char *what, const char *s, uint32_t *v)
{
	if (parse_u32(s, v)) {
		pr_err("%s \"%s\" is not a number", what, s);
		return -1;
	}
	return 0;
}

static int placement_set(int argc, char **argv)
{
	uint32_t id, primary = 0, backup = 0;
	struct ftvm_dp *dp;
	int ret = 0;

	if (argc < 2)
		return missing_arg("set");
	NEXT_ARG();
	if (parse_id("placement", argv[0], &id))
		return 1;
	while (NEXT_ARG_OK()) {
		NEXT_ARG();
		if (matches(argv[0], "primary") || matches(argv[0], "backup")) {
			uint32_t *v = argv[0][0] == 'p' ? &primary : &backup;
			const char *k = argv[0];

			if (!NEXT_ARG_OK())
				return missing_arg(k);
			NEXT_ARG();
			if (parse_id("VM id", argv[0], v))
				return 1;
		} else {
			return unknown_arg("placement", argv[0]);
		}
	}
	if (!primary)
		return missing_arg("primary");
	if (ftctl_dp_open(&dp))
		return 1;
	if (ftvm_dp_placement_set(dp, id, primary, backup)) {
		ftctl_dp_err();
		ret = 1;
	}
	ftvm_dp_close(dp);
	return ret;
}

static int placement_del(int argc, char **argv)
{
	struct ftvm_dp *dp;
	uint32_t id;
	int ret = 0;

	if (argc < 2)
		return missing_arg("del");
	if (parse_id("placement", argv[1], &id))
		return 1;
	if (ftctl_dp_open(&dp))
		return 1;
	if (ftvm_dp_placement_del(dp, id)) {
		ftctl_dp_err();
		ret = 1;
	}
	ftvm_dp_close(dp);
	return ret;
}

static int print_placement(uint32_t id, const struct ftvm_placement *pl,
			   void *arg)
{
	(void)arg;
	open_json_object(NULL);
	print_uint(PRINT_ANY, "placement", "%-6u", id);
	print_uint(PRINT_ANY, "primary", " primary %u", pl->primary);
	if (pl->backup)
		print_uint(PRINT_ANY, "backup", " backup %u", pl->backup);
	else
		print_null(PRINT_ANY, "backup", " backup %s");
	print_nl();
	close_json_object();
	return 0;
}

static int placement_list(void)
{
	struct ftvm_dp *dp;
	int ret = 0;

	if (ftctl_dp_open(&dp))
		return 1;
	new_json_obj(opts.json, opts.pretty);
	ret = ftvm_dp_placement_foreach(dp, print_placement, NULL);
	delete_json_obj();
	if (ret)
		ftctl_dp_err();
	ftvm_dp_close(dp);
	return !!ret;
}

static int placement_failover(int argc, char **argv)
{
	struct ftvm_dp_failover r;
	struct ftvm_dp *dp;
	uint32_t vm;
	int ret = 0;

	if (argc < 2)
		return missing_arg("failover");
	if (parse_id("VM id", argv[1], &vm))
		return 1;
	if (ftctl_dp_open(&dp))
		return 1;
	if (ftvm_dp_failover_vm(dp, vm, &r)) {
		ftctl_dp_err();
		ret = 1;
	} else {
		new_json_doc(opts.json, opts.pretty);
		open_json_object(NULL);
		print_uint(PRINT_ANY, "moved", "moved %u", r.moved);
		print_uint(PRINT_ANY, "stranded", " stranded %u", r.stranded);
		print_uint(PRINT_ANY, "backups_lost", " backups_lost %u",
			   r.backups_lost);
		print_nl();
		close_json_object();
		delete_json_obj();
	}
	ftvm_dp_close(dp);
	return ret;
}

int cmd_placement(int argc, char **argv)
{
	if (argc < 1 || matches(argv[0], "list") || matches(argv[0], "show"))
		return placement_list();
	if (matches(argv[0], "set"))
		return placement_set(argc, argv);
	if (matches(argv[0], "delete"))
		return placement_del(argc, argv);
	if (matches(argv[0], "failover"))
		return placement_failover(argc, argv);
	if (matches(argv[0], "help")) {
		placement_usage(stdout);
		return 0;
	}
	return unknown_arg("placement", argv[0]);
}
