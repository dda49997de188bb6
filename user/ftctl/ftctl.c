// SPDX-License-Identifier: GPL-2.0
/*
 * ftctl: the operator's tool for ftvm.
 *
 *   ftctl [OPTIONS] OBJECT { COMMAND | help } [OPTIONS]
 *
 * Words may be abbreviated to any unique prefix, as with ip(8).  The
 * options may also come anywhere after the object ("ftctl vm list -j");
 * a "--" there ends them, for a value that looks like one.
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
		"Usage: ftctl [OPTIONS] OBJECT { COMMAND | help } [OPTIONS]\n"
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

/* What a word that may be a global option is. */
enum opt_kind { OPT_NONE, OPT_SET, OPT_VERSION, OPT_HELP, OPT_BAD };

/*
 * The one parser of the global options, wherever they stand: -j and -p
 * set opts; -V and -h are acted on by the caller.
 */
static enum opt_kind parse_opt(const char *arg)
{
	const char *o = arg + 1;

	if (arg[0] != '-' || !arg[1])
		return OPT_NONE;
	if (*o == '-')
		o++;
	if (matches(o, "json")) {
		opts.json = true;
		return OPT_SET;
	}
	if (matches(o, "pretty")) {
		opts.pretty = true;
		return OPT_SET;
	}
	if (matches(o, "Version"))
		return OPT_VERSION;
	if (matches(o, "help"))
		return OPT_HELP;
	return OPT_BAD;
}

int main(int argc, char **argv)
{
	static char help[] = "help";
	bool version = false, want_help = false, end = false;
	const char *obj;
	int n;

	for (argc--, argv++; argc > 0 && argv[0][0] == '-' && !version;
	     argc--, argv++) {
		enum opt_kind k = parse_opt(argv[0]);

		if (k == OPT_VERSION) {
			version = true;
		} else if (k == OPT_HELP) {
			usage(stdout);
			return 0;
		} else if (k != OPT_SET) {
			pr_err("unknown option \"%s\"", argv[0]);
			usage(stderr);
			return 1;
		}
	}
	/*
	 * After the object, take the global options out of the words
	 * wherever they are, iproute2 style; other words (and everything
	 * after a "--") are left to the object's own parser.
	 */
	for (int i = n = 1; !version && i < argc; i++) {
		enum opt_kind k = end ? OPT_NONE : parse_opt(argv[i]);

		if (!end && !strcmp(argv[i], "--"))
			end = true;
		else if (k == OPT_VERSION)
			version = true;
		else if (k == OPT_HELP)
			want_help = true;
		else if (k != OPT_SET)
			argv[n++] = argv[i];
	}
	if (version) {
		printf("ftctl, ftvm netlink version %d\n", FTVM_GENL_VERSION);
		return 0;
	}
	if (argc > 0)
		argc = n;
	if (want_help) {
		/* "ftctl OBJECT ... -h" is "ftctl OBJECT help". */
		argv[1] = help;
		argc = 2;
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
