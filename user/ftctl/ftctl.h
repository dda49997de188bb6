/* SPDX-License-Identifier: GPL-2.0 */
#ifndef FTCTL_H
#define FTCTL_H

#include <stdbool.h>

#include "../lib/json_print.h"
#include "../lib/ftnl.h"
#include "../lib/util.h"
#include "../lib/steer.h"

struct ftctl_opts {
	bool json;
	bool pretty;
};

extern struct ftctl_opts opts;

/*
 * One entry point per object; argv[0] is the verb (or empty).  Each
 * returns the process exit code: 0, or 1 after printing "Error: ...".
 */
int cmd_vm(int argc, char **argv);
int cmd_monitor(int argc, char **argv);
int cmd_attach(int argc, char **argv);
int cmd_detach(int argc, char **argv);
int cmd_service(int argc, char **argv);
int cmd_session(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_placement(int argc, char **argv);
int cmd_target(int argc, char **argv);

/* Open the pinned data plane maps; prints the error and returns 1. */
int ftctl_dp_open(struct ftvm_dp **dp);
/* Print ftvm_dp_errmsg() as "Error: ..." (JSON under -j). */
void ftctl_dp_err(void);

/*
 * ftd's control socket (ftd_client.c): is ftd there, pass a command
 * (argv[0] is the object) to it, or say that it is needed.
 */
bool ftd_running(void);
int ftd_forward(int argc, char **argv);
int ftd_not_running(void);

/* Shift helpers in the style of iproute2. */
#define NEXT_ARG() do { argv++; argc--; } while (0)
#define NEXT_ARG_OK() (argc - 1 > 0)

/* Report a missing value for @key and return 1. */
int missing_arg(const char *key);
/* Report an unknown word and return 1. */
int unknown_arg(const char *object, const char *word);

#endif
