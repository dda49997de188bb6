// SPDX-License-Identifier: GPL-2.0
/*
 * ftctl session: the sessions the data plane knows, read from its maps.
 *
 *   ftctl session list [service SERVICE]
 *
 * Each line: client, service, placement, the placement's primary and
 * backup VM now, the session's age, and how long it has been idle (to
 * within a grain: ftvm_dp.h, FTVM_SEEN_GRAIN_NS).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ftctl.h"

struct sess_ctx {
	struct ftvm_dp *dp;
	struct ftvm_service_key filter;
	bool filtered;
	uint64_t now;
	uint64_t count;
};

static int print_session(const struct ftvm_flow *f, const struct ftvm_session *s,
			 void *arg)
{
	struct sess_ctx *c = arg;
	struct ftvm_placement pl = {};
	char src[80], dst[80];
	uint64_t seen;

	if (c->filtered &&
	    (f->family != c->filter.family || f->proto != c->filter.proto ||
	     f->dport != c->filter.port ||
	     memcmp(f->daddr, c->filter.vaddr, sizeof(f->daddr))))
		return 0;
	if (ftvm_dp_placement_get(c->dp, s->placement, &pl))
		memset(&pl, 0, sizeof(pl));
	ftvm_dp_flow_format(f, src, dst, sizeof(src));
	/* The client side prints without the protocol suffix. */
	*strrchr(src, '/') = '\0';
	c->count++;

	open_json_object(NULL);
	print_string(PRINT_ANY, "client", "%-30s", src);
	print_string(PRINT_ANY, "service", " %-28s", dst);
	print_uint(PRINT_ANY, "placement", " placement %u", s->placement);
	print_uint(PRINT_ANY, "primary", " primary %u", pl.primary);
	if (pl.backup)
		print_uint(PRINT_ANY, "backup", " backup %u", pl.backup);
	else
		print_null(PRINT_ANY, "backup", " backup %s");
	print_uint(PRINT_JSON, "service_index", NULL, s->service);
	print_u64(PRINT_ANY, "age_ms", " age %llums",
		  c->now > s->created_ns ? (c->now - s->created_ns) / 1000000 : 0);
	seen = ftvm_session_seen_ns(s);
	print_u64(PRINT_ANY, "idle_ms", " idle %llums",
		  c->now > seen ? (c->now - seen) / 1000000 : 0);
	print_nl();
	close_json_object();
	return 0;
}

static int session_list(int argc, char **argv)
{
	struct sess_ctx c = {};
	int err;

	while (NEXT_ARG_OK()) {
		NEXT_ARG();
		if (matches(argv[0], "service")) {
			if (!NEXT_ARG_OK())
				return missing_arg("service");
			NEXT_ARG();
			if (ftvm_dp_service_parse(argv[0], &c.filter)) {
				ftctl_dp_err();
				return 1;
			}
			c.filtered = true;
		} else {
			return unknown_arg("session", argv[0]);
		}
	}
	if (ftctl_dp_open(&c.dp))
		return 1;
	c.now = monotonic_ns();	/* bpf_ktime_get_ns()'s clock */
	new_json_obj(opts.json, opts.pretty);
	err = ftvm_dp_session_foreach(c.dp, print_session, &c);
	delete_json_obj();
	if (err)
		ftctl_dp_err();
	ftvm_dp_close(c.dp);
	return !!err;
}

int cmd_session(int argc, char **argv)
{
	if (argc < 1)
		return session_list(1, (char *[]){ "list", NULL });
	if (matches(argv[0], "list") || matches(argv[0], "show"))
		return session_list(argc, argv);
	if (matches(argv[0], "help")) {
		printf("Usage: ftctl session list [service SERVICE]\n");
		return 0;
	}
	return unknown_arg("session", argv[0]);
}
