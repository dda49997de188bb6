// SPDX-License-Identifier: GPL-2.0
/*
 * ftctl: the operator's tool for ftvm.
 *
 *   ftctl [OPTIONS] OBJECT { COMMAND | help }
 *
 * Words may be abbreviated to any unique prefix, as with ip(8).
 */
#include <stdio.h>
#include <string.h>

#include "ftctl.h"

struct ftctl_opts opts;

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} objects[] = {
	{ "vm",		cmd_vm },
	{ "monitor",	cmd_monitor },
	{ "service",	cmd_service },
	{ "session",	cmd_session },
	{ "stats",	cmd_stats },
	{ "placement",	cmd_placement },
	{ "target",	cmd_target },
	{ "attach",	cmd_attach },
	{ "detach",	cmd_detach },
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ftctl [OPTIONS] OBJECT { COMMAND | help }\n"
		"where  OBJECT := { status | vm | monitor | service | session | stats |\n"
		"                  placement | target | attach | detach }\n"
		"       OPTIONS := { -j[son] | -p[retty] | -V[ersion] | -h[elp] }\n");
}

int missing_arg(const char *key)
{
	pr_err("\"%s\" needs a value", key);
	return 1;
}

int unknown_arg(const char *object, const char *word)
{
	pr_err("unknown argument \"%s\" for \"%s\"; try \"ftctl %s help\"",
	       word, object, object);
	return 1;
}

int main(int argc, char **argv)
{
	const char *obj;

	for (argc--, argv++; argc > 0 && argv[0][0] == '-'; argc--, argv++) {
		const char *o = argv[0] + 1;

		if (*o == '-')
			o++;
		if (matches(o, "json")) {
			opts.json = true;
		} else if (matches(o, "pretty")) {
			opts.pretty = true;
		} else if (matches(o, "Version")) {
			printf("ftctl, ftvm netlink version %d\n",
			       FTVM_GENL_VERSION);
			return 0;
		} else if (matches(o, "help")) {
			usage(stdout);
			return 0;
		} else {
			pr_err("unknown option \"%s\"", argv[0]);
			usage(stderr);
			return 1;
		}
	}
	if (opts.pretty)
		opts.json = true;
	if (argc < 1) {
		const char *list[] = { "list" };
		char *status[] = { (char *)"status" };

		/* With no arguments, show the most useful view (as wg does). */
		if (ftd_running())
			return ftd_forward(1, status);
		return cmd_vm(1, (char **)list);
	}
	obj = argv[0];
	if (matches(obj, "help")) {
		usage(stdout);
		return 0;
	}
	/* What ftd manages goes through it while it runs (ftd_client.c). */
	if (!strcmp(obj, "status") ||
	    (strlen(obj) >= 5 && matches(obj, "status")))
		return ftd_forward(argc, argv);
	if ((matches(obj, "vm") || matches(obj, "service") ||
	     matches(obj, "session") || matches(obj, "monitor")) &&
	    ftd_running())
		return ftd_forward(argc, argv);
	for (size_t i = 0; i < ARRAY_SIZE(objects); i++)
		if (matches(obj, objects[i].name))
			return objects[i].fn(argc - 1, argv + 1);
	pr_err("object \"%s\" is unknown, try \"ftctl help\"", obj);
	return 1;
}
