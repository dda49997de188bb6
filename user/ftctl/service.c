// SPDX-License-Identifier: GPL-2.0
/*
 * ftctl service: the services the data plane steers, and their Maglev rows.
 *
 *   ftctl service add VIP:PORT/{tcp|udp} [placements ID[:WEIGHT][,...]]
 *   ftctl service set VIP:PORT/{tcp|udp} placements ID[:WEIGHT][,...]
 *   ftctl service del VIP:PORT/{tcp|udp}
 *   ftctl service list
 *
 * IPv6 services are written [ADDR]:PORT/proto.  "placements" rebuilds the
 * service's Maglev row over the given (live) placements; existing
 * sessions keep theirs.  "placements none" empties the row.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ftctl.h"

static void service_usage(FILE *f)
{
	fprintf(f,
		"Usage: ftctl service add SERVICE [placements LIST]\n"
		"       ftctl service set SERVICE placements LIST\n"
		"       ftctl service del SERVICE\n"
		"       ftctl service list\n"
		"SERVICE := { VIP:PORT/{tcp|udp} | [VIP6]:PORT/{tcp|udp} }\n"
		"LIST := { ID[:WEIGHT][,ID[:WEIGHT]...] | none }   (placement ids, weight 1..%u)\n",
		FTVM_DP_MAX_WEIGHT);
}

void ftctl_dp_err(void)
{
	/* Under -j the error is JSON even before any output began. */
	if (!is_json_context())
		new_json_doc(opts.json, opts.pretty);
	pr_err("%s", ftvm_dp_errmsg());
}

int ftctl_dp_open(struct ftvm_dp **dp)
{
	if (ftvm_dp_open(NULL, dp)) {
		ftctl_dp_err();
		return 1;
	}
	return 0;
}

/* "1:2,3,7:1" or "none"; at most @max entries. */
static int parse_backends(const char *s, struct ftvm_dp_backend *b,
			  size_t max, size_t *n)
{
	char buf[4096], *tok, *save = NULL;

	*n = 0;
	if (!strcmp(s, "none"))
		return 0;
	if (strlen(s) >= sizeof(buf))
		goto bad;
	strcpy(buf, s);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *w = strchr(tok, ':');

		if (*n == max)
			goto bad;
		b[*n].weight = 1;
		if (w) {
			*w++ = '\0';
			if (parse_u32(w, &b[*n].weight) || !b[*n].weight ||
			    b[*n].weight > FTVM_DP_MAX_WEIGHT)
				goto bad;
		}
		if (parse_u32(tok, &b[*n].placement) || !b[*n].placement ||
		    b[*n].placement >= FTVM_MAX_PLACEMENTS)
			goto bad;
		(*n)++;
	}
	if (*n)
		return 0;
bad:
	pr_err("\"%s\" is not a placement list: ID[:WEIGHT][,...] with ids 1..%u, weights 1..%u",
	       s, FTVM_MAX_PLACEMENTS - 1, FTVM_DP_MAX_WEIGHT);
	return -EINVAL;
}

static int service_add_set(int argc, char **argv, bool add)
{
	struct ftvm_dp_backend b[256];
	struct ftvm_service_key key;
	struct ftvm_dp *dp;
	bool has_b = false;
	uint32_t index;
	size_t n = 0;
	int ret = 1;

	if (argc < 2)
		return missing_arg(argv[0]);
	NEXT_ARG();
	if (ftvm_dp_service_parse(argv[0], &key)) {
		ftctl_dp_err();
		return 1;
	}
	while (NEXT_ARG_OK()) {
		NEXT_ARG();
		if (matches(argv[0], "placements")) {
			if (!NEXT_ARG_OK())
				return missing_arg("placements");
			NEXT_ARG();
			if (parse_backends(argv[0], b, ARRAY_SIZE(b), &n))
				return 1;
			has_b = true;
		} else {
			return unknown_arg("service", argv[0]);
		}
	}
	if (!add && !has_b)
		return missing_arg("placements");
	if (ftctl_dp_open(&dp))
		return 1;
	if (add && ftvm_dp_service_add(dp, &key, &index))
		goto err;
	if (has_b && ftvm_dp_service_set_backends(dp, &key, b, n))
		goto err;
	ret = 0;
	goto out;
err:
	ftctl_dp_err();
out:
	ftvm_dp_close(dp);
	return ret;
}

static int service_del(int argc, char **argv)
{
	struct ftvm_service_key key;
	struct ftvm_dp *dp;
	int ret = 0;

	if (argc < 2)
		return missing_arg("del");
	if (argc > 2)
		return unknown_arg("service", argv[2]);
	if (ftvm_dp_service_parse(argv[1], &key)) {
		ftctl_dp_err();
		return 1;
	}
	if (ftctl_dp_open(&dp))
		return 1;
	if (ftvm_dp_service_del(dp, &key)) {
		ftctl_dp_err();
		ret = 1;
	}
	ftvm_dp_close(dp);
	return ret;
}

struct list_ctx {
	struct ftvm_dp *dp;
	uint32_t *row;
	uint32_t *share;	/* slots per placement id */
};

static int print_service(const struct ftvm_service_key *key,
			 const struct ftvm_service *svc, void *arg)
{
	struct list_ctx *c = arg;
	struct ftvm_counters st;
	char name[80], buf[32];
	int err;

	ftvm_dp_service_format(key, name, sizeof(name));
	err = ftvm_dp_maglev_read(c->dp, svc->index, c->row);
	if (!err)
		err = ftvm_dp_service_stats(c->dp, svc->index, &st);
	if (err)
		return err;
	memset(c->share, 0, FTVM_MAX_PLACEMENTS * sizeof(*c->share));
	for (uint32_t i = 0; i < FTVM_MAGLEV_SIZE; i++)
		if (c->row[i] < FTVM_MAX_PLACEMENTS)
			c->share[c->row[i]]++;

	open_json_object(NULL);
	print_string(PRINT_ANY, "service", "%-28s", name);
	print_uint(PRINT_ANY, "index", " index %u", svc->index);
	open_json_array(PRINT_ANY, " placements");
	for (uint32_t p = 1; p < FTVM_MAX_PLACEMENTS; p++) {
		if (!c->share[p])
			continue;
		open_json_object(NULL);
		print_uint(PRINT_ANY, "placement", " %u", p);
		snprintf(buf, sizeof(buf), "%.1f",
			 100.0 * c->share[p] / FTVM_MAGLEV_SIZE);
		print_uint(PRINT_JSON, "slots", NULL, c->share[p]);
		print_string(PRINT_FP, NULL, "(%s%%)", buf);
		close_json_object();
	}
	if (c->share[0] == FTVM_MAGLEV_SIZE)
		print_string(PRINT_FP, NULL, " %s", "none");
	close_json_array(PRINT_ANY, "");
	print_u64(PRINT_ANY, "sessions_created", " sessions %llu",
		  st.new_sessions);
	print_u64(PRINT_ANY, "packets", " packets %llu", st.packets);
	print_nl();
	close_json_object();
	return 0;
}

static int service_list(void)
{
	struct list_ctx c = {};
	int ret = 1;

	if (ftctl_dp_open(&c.dp))
		return 1;
	c.row = calloc(FTVM_MAGLEV_SIZE, sizeof(*c.row));
	c.share = calloc(FTVM_MAX_PLACEMENTS, sizeof(*c.share));
	if (!c.row || !c.share) {
		pr_err("out of memory");
		goto out;
	}
	new_json_obj(opts.json, opts.pretty);
	if (ftvm_dp_service_foreach(c.dp, print_service, &c)) {
		delete_json_obj();
		ftctl_dp_err();
		goto out;
	}
	delete_json_obj();
	ret = 0;
out:
	free(c.row);
	free(c.share);
	ftvm_dp_close(c.dp);
	return ret;
}

int cmd_service(int argc, char **argv)
{
	if (argc < 1 || matches(argv[0], "list") || matches(argv[0], "show"))
		return service_list();
	if (matches(argv[0], "add"))
		return service_add_set(argc, argv, true);
	if (matches(argv[0], "set"))
		return service_add_set(argc, argv, false);
	if (matches(argv[0], "delete"))
		return service_del(argc, argv);
	if (matches(argv[0], "help")) {
		service_usage(stdout);
		return 0;
	}
	return unknown_arg("service", argv[0]);
}
