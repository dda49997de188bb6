// SPDX-License-Identifier: GPL-2.0
/*
 * ftvm-state: snapshot, restore and activate session state by hand.
 *
 *   ftvm-state netns VM NSPATH
 *   ftvm-state dump VM PORT [proto tcp|udp] [since GEN] [cookie C]... [out FILE]
 *   ftvm-state restore VM FILE [stage] [batch N] [mangle KIND] [staged]
 *   ftvm-state activate VM [discard|held|quiet...] [from FILE [records I-J]...] [staged]
 *   ftvm-state nudge VM FILE [records I-J]...
 *   ftvm-state retire VM FILE [records I-J]...
 *   ftvm-state gone VM FILE [records I-J]...
 *
 * VM is a VM id in the caller's namespace.  A records FILE is the raw
 * stream of record attributes (Documentation/state-format.rst); "dump"
 * writes it, "restore" sends it in batches of N records (default: all
 * in one request).  "mangle" corrupts the first record for the tests:
 * version, noversion, family, truncate, garbage, dup, srtt.  "activate ...
 * from FILE" names the sessions of FILE's records (by 5-tuple), or with
 * "records I-J" (repeatable, 0-based, inclusive) those of the records
 * I to J, in that order; "nudge", "retire" and "gone" name sessions the
 * same way.  "gone" prints "count N" and, when N > 0, " rports P..."
 * (the clients' ports of the named sessions with nothing left in the
 * VM: FTVM_CMD_SESSION_GONE).
 * "activate ... held" makes live only the sessions a client's segment
 * waits for in the VM (FTVM_SNAP_F_HELD) and prints "count N", followed
 * by " rports P..." (their clients' ports) when N > 0; "quiet" (with
 * or without "held") makes them live without a window probe
 * (FTVM_SNAP_F_QUIET).
 * Prints one line "records N gen G bytes B blobs K tracked T handshakes
 * H" (dump; K: records carrying application state; T: sessions the VM's
 * namespace keeps track of, FTVM_A_SNAP_TRACKED; H: TCP connections of
 * the service in their handshake, FTVM_A_SNAP_HANDSHAKES)
 * or "count N" (with
 * "staged": "count N staged S", the records staged after the request)
 * to stdout; errors as "Error: ..." on stderr, exit 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>

#include "../../kmod/uapi/ftvm.h"
#include "../libftvm/nl.h"

static struct ftvm_nl nl;

static void die(const char *what, int err)
{
	fprintf(stderr, "Error: %s: %s%s%s\n", what, strerror(-err),
		nl.err[0] ? ": " : "", nl.err);
	exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: ftvm-state netns VM NSPATH | dump VM PORT [proto tcp|udp] [since G] [cookie C]... [out FILE]\n"
			"       | restore VM FILE [stage] [batch N] [mangle KIND] [staged]\n"
			"       | activate VM [discard|held|quiet...] [from FILE [records I-J]...] [staged]\n"
			"       | nudge|retire|gone VM FILE [records I-J]...\n");
	exit(2);
}

static void put_vm(struct ftvm_msg *m, uint32_t id)
{
	long nest = ftvm_msg_nest(m, FTVM_A_VM);

	ftvm_msg_put(m, FTVM_A_VM_ID, &id, sizeof(id));
	ftvm_msg_nest_end(m, nest);
}

struct dump_out {
	char *buf;
	size_t len, cap;
	unsigned long records, blobs;
	uint64_t gen;
	uint32_t handshakes, tracked;
};

static int dump_cb(const struct nlattr *attrs, size_t len, void *arg)
{
	struct dump_out *o = arg;
	const struct nlattr *a, *b;
	long rem, rem2;

	ftvm_nla_for_each(a, attrs, len, rem) {
		size_t n = NLA_ALIGN(a->nla_len);

		if (ftvm_nla_type(a) == FTVM_A_SNAP) {
			ftvm_nla_for_each(b, ftvm_nla_data(a), ftvm_nla_len(a), rem2) {
				if (ftvm_nla_type(b) == FTVM_A_SNAP_GEN)
					memcpy(&o->gen, ftvm_nla_data(b), 8);
				if (ftvm_nla_type(b) == FTVM_A_SNAP_HANDSHAKES)
					memcpy(&o->handshakes, ftvm_nla_data(b), 4);
				if (ftvm_nla_type(b) == FTVM_A_SNAP_TRACKED)
					memcpy(&o->tracked, ftvm_nla_data(b), 4);
			}
			continue;
		}
		if (ftvm_nla_type(a) == FTVM_A_SESSION) {
			o->records++;
			o->blobs += !!(ftvm_rec_flags(a) & FTVM_SESS_F_BLOB);
		}
		if (o->len + n > o->cap) {
			o->cap = (o->cap + n) * 2;
			o->buf = realloc(o->buf, o->cap);
			if (!o->buf)
				return -ENOMEM;
		}
		memcpy(o->buf + o->len, a, n);
		o->len += n;
	}
	return 0;
}

static int cmd_dump(uint32_t vm, int argc, char **argv)
{
	struct dump_out o = { 0 };
	const char *out = NULL;
	struct ftvm_msg m;
	uint16_t port;
	long nest;
	int i, err;
	FILE *f;

	if (argc < 1)
		usage();
	port = atoi(argv[0]);
	ftvm_msg_init(&m, &nl, FTVM_CMD_SESSION_GET, NLM_F_DUMP);
	put_vm(&m, vm);
	nest = ftvm_msg_nest(&m, FTVM_A_SNAP);
	ftvm_msg_put(&m, FTVM_A_SNAP_PORT, &port, sizeof(port));
	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "proto")) {
			uint8_t p = !strcmp(argv[i + 1], "udp") ? IPPROTO_UDP :
				    !strcmp(argv[i + 1], "tcp") ? IPPROTO_TCP : atoi(argv[i + 1]);

			ftvm_msg_put(&m, FTVM_A_SNAP_PROTO, &p, 1);
		} else if (!strcmp(argv[i], "since")) {
			uint64_t g = strtoull(argv[i + 1], NULL, 0);

			ftvm_msg_put(&m, FTVM_A_SNAP_SINCE, &g, 8);
		} else if (!strcmp(argv[i], "cookie")) {
			uint64_t c = strtoull(argv[i + 1], NULL, 0);

			ftvm_msg_put(&m, FTVM_A_SNAP_COOKIE, &c, 8);
		} else if (!strcmp(argv[i], "out")) {
			out = argv[i + 1];
		} else {
			usage();
		}
	}
	ftvm_msg_nest_end(&m, nest);
	err = ftvm_nl_talk(&nl, &m, dump_cb, &o);
	ftvm_msg_free(&m);
	if (err)
		die("snapshot", err);
	f = out ? fopen(out, "w") : NULL;
	if (out && (!f || fwrite(o.buf, 1, o.len, f) != o.len || fclose(f)))
		die("writing the records", -errno);
	printf("records %lu gen %" PRIu64 " bytes %zu blobs %lu tracked %" PRIu32
	       " handshakes %" PRIu32 "\n",
	       o.records, o.gen, o.len, o.blobs, o.tracked, o.handshakes);
	free(o.buf);
	return 0;
}

static char *read_file(const char *path, size_t *len)
{
	size_t cap = 1 << 16;
	char *buf = malloc(cap);
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0 || !buf)
		die(path, -errno);
	*len = 0;
	while ((n = read(fd, buf + *len, cap - *len)) > 0) {
		*len += n;
		if (*len == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				die(path, -ENOMEM);
		}
	}
	close(fd);
	return buf;
}

struct counts {
	unsigned long count;
	uint32_t staged;
};

static int count_cb(const struct nlattr *attrs, size_t len, void *arg)
{
	struct counts *c = arg;
	const struct nlattr *a, *b;
	long rem, rem2;

	ftvm_nla_for_each(a, attrs, len, rem)
		if (ftvm_nla_type(a) == FTVM_A_SNAP)
			ftvm_nla_for_each(b, ftvm_nla_data(a), ftvm_nla_len(a), rem2) {
				if (ftvm_nla_type(b) == FTVM_A_SNAP_COUNT)
					c->count += *(const uint32_t *)ftvm_nla_data(b);
				else if (ftvm_nla_type(b) == FTVM_A_SNAP_STAGED)
					c->staged = *(const uint32_t *)ftvm_nla_data(b);
			}
	return 0;
}

static void print_counts(const struct counts *c, bool staged)
{
	if (staged)
		printf("count %lu staged %u\n", c->count, c->staged);
	else
		printf("count %lu\n", c->count);
}

/* Find attribute @type inside the nest at @nest (first level only). */
static struct nlattr *sub(struct nlattr *nest, int type)
{
	const struct nlattr *a;
	long rem;

	ftvm_nla_for_each(a, ftvm_nla_data(nest), ftvm_nla_len(nest), rem)
		if (ftvm_nla_type(a) == type)
			return (struct nlattr *)a;
	return NULL;
}

/* Corrupt the first record (at @rec, in a private copy of the stream). */
static void mangle(char *rec, const char *kind)
{
	struct nlattr *s = (struct nlattr *)rec, *a;

	if (!strcmp(kind, "version")) {
		*(uint8_t *)ftvm_nla_data(sub(s, FTVM_A_SESS_VERSION)) = FTVM_STATE_VERSION + 1;
	} else if (!strcmp(kind, "noversion")) {
		sub(s, FTVM_A_SESS_VERSION)->nla_type = FTVM_A_SESS_PAD;
	} else if (!strcmp(kind, "family")) {
		*(uint8_t *)ftvm_nla_data(sub(s, FTVM_A_SESS_FAMILY)) = 99;
	} else if (!strcmp(kind, "truncate")) {
		a = sub(sub(s, FTVM_A_SESS_TCP), FTVM_A_TCP_SNDQ_LEN);
		++*(uint32_t *)ftvm_nla_data(a);
	} else if (!strcmp(kind, "srtt")) {
		/* More than a socket can hold (scaled by 8 in 32 bits). */
		a = sub(sub(s, FTVM_A_SESS_TCP), FTVM_A_TCP_SRTT_US);
		*(uint32_t *)ftvm_nla_data(a) = UINT32_MAX;
	} else if (!strcmp(kind, "garbage")) {
		/* An attribute inside the nest runs past its end. */
		a = sub(s, FTVM_A_SESS_LPORT);
		a->nla_len = s->nla_len;
	} else if (strcmp(kind, "dup")) {
		fprintf(stderr, "unknown mangle %s\n", kind);
		exit(2);
	}
}

static int cmd_restore(uint32_t vm, int argc, char **argv)
{
	unsigned long batch = ~0UL;
	struct counts count = { 0 };
	const char *kind = NULL;
	bool stage = false, show = false;
	size_t len, off = 0;
	char *buf;
	int i, err;

	if (argc < 1)
		usage();
	buf = read_file(argv[0], &len);
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "stage"))
			stage = true;
		else if (!strcmp(argv[i], "staged"))
			show = true;
		else if (!strcmp(argv[i], "batch") && i + 1 < argc)
			batch = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "mangle") && i + 1 < argc)
			kind = argv[++i];
		else
			usage();
	}
	if (kind)
		mangle(buf, kind);
	do {
		unsigned long n = 0;
		struct ftvm_msg m;
		size_t start = off;
		long nest;

		ftvm_msg_init(&m, &nl, FTVM_CMD_SESSION_RESTORE, 0);
		put_vm(&m, vm);
		if (stage) {
			uint32_t fl = FTVM_SNAP_F_STAGE;

			nest = ftvm_msg_nest(&m, FTVM_A_SNAP);
			ftvm_msg_put(&m, FTVM_A_SNAP_FLAGS, &fl, sizeof(fl));
			ftvm_msg_nest_end(&m, nest);
		}
		/* Whole records, up to the batch size (and 4 MiB). */
		while (off < len) {
			const struct nlattr *a = (const struct nlattr *)(buf + off);

			if (ftvm_nla_type(a) == FTVM_A_SESSION) {
				if (n == batch || (n && off - start > (4u << 20)))
					break;
				n++;
			}
			off += NLA_ALIGN(a->nla_len);
		}
		if (off > len)
			off = len;
		if (kind && !strcmp(kind, "dup")) {
			/* The first record (and its queues) twice. */
			size_t first = NLA_ALIGN(((struct nlattr *)buf)->nla_len);

			while (first < len && ftvm_nla_type((struct nlattr *)(buf + first)) != FTVM_A_SESSION)
				first += NLA_ALIGN(((struct nlattr *)(buf + first))->nla_len);
			ftvm_msg_append(&m, buf, first);
			ftvm_msg_append(&m, buf, first);
			off = len;
		} else if (ftvm_msg_append(&m, buf + start, off - start)) {
			die("restore", -ENOMEM);
		}
		err = ftvm_nl_talk(&nl, &m, count_cb, &count);
		ftvm_msg_free(&m);
		if (err)
			die("restore", err);
	} while (off < len);
	print_counts(&count, show);
	free(buf);
	return 0;
}

/*
 * The tuples of the records of FILE (argv[0]), all, or as "records I-J"
 * options from argv[1] on select them; *@used: arguments consumed.
 */
static struct ftvm_tuple *names(int argc, char **argv, size_t *n, int *used)
{
	struct ftvm_tuple *all = NULL, *t = NULL;
	size_t len, off = 0, nall = 0;
	char *buf;
	int i;

	buf = read_file(argv[0], &len);
	while (off + sizeof(struct nlattr) <= len) {
		const struct nlattr *a = (const struct nlattr *)(buf + off);

		if (a->nla_len < sizeof(*a))
			break;
		if (ftvm_nla_type(a) == FTVM_A_SESSION) {
			all = realloc(all, (nall + 1) * sizeof(*all));
			if (!all || ftvm_rec_tuple(a, &all[nall]))
				die("reading the records' tuples", -EINVAL);
			nall++;
		}
		off += NLA_ALIGN(a->nla_len);
	}
	free(buf);
	*n = 0;
	for (i = 1; i + 1 < argc && !strcmp(argv[i], "records"); i += 2) {
		unsigned long from, to;

		if (sscanf(argv[i + 1], "%lu-%lu", &from, &to) != 2 ||
		    from > to || to >= nall)
			usage();
		t = realloc(t, (*n + to - from + 1) * sizeof(*t));
		if (!t)
			die("names", -ENOMEM);
		memcpy(t + *n, all + from, (to - from + 1) * sizeof(*t));
		*n += to - from + 1;
	}
	*used = i;
	if (i == 1) {
		free(t);
		*n = nall;
		return all;
	}
	free(all);
	return t;
}

static int cmd_activate(uint32_t vm, int argc, char **argv)
{
	struct counts count = { 0 };
	struct ftvm_tuple *t = NULL;
	bool show = false;
	uint32_t flags = 0, c = 0;
	size_t n = 0;
	int i, used, err;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "discard") && !flags) {
			flags |= FTVM_SNAP_F_DISCARD;
		} else if (!strcmp(argv[i], "held") &&
			   !(flags & ~FTVM_SNAP_F_QUIET)) {
			flags |= FTVM_SNAP_F_HELD;
		} else if (!strcmp(argv[i], "quiet") &&
			   !(flags & ~FTVM_SNAP_F_HELD)) {
			flags |= FTVM_SNAP_F_QUIET;
		} else if (!strcmp(argv[i], "staged")) {
			show = true;
		} else if (!strcmp(argv[i], "from") && i + 1 < argc && !t) {
			t = names(argc - i - 1, argv + i + 1, &n, &used);
			i += used;
		} else {
			usage();
		}
	}
	if (t && !n)
		die("activate", -ENOENT);
	if (flags & FTVM_SNAP_F_HELD) {
		static struct ftvm_tuple live[FTVM_HELD_MAX];

		if (show)
			usage();
		err = ftvm_sess_activate_held(&nl, vm, flags & ~FTVM_SNAP_F_HELD,
					      t, n, live, &c);
		free(t);
		if (err)
			die("activate", err);
		printf("count %u", c);
		for (uint32_t k = 0; k < c; k++)
			printf("%s %u", k ? "" : " rports", live[k].rport);
		printf("\n");
		return 0;
	}
	err = ftvm_sess_activate(&nl, vm, flags, t, n, &c, &count.staged);
	free(t);
	if (err)
		die("activate", err);
	count.count = c;
	print_counts(&count, show);
	return 0;
}

/* "nudge", "retire" or "gone" (@what) the sessions a records file names. */
static int cmd_named(uint32_t vm, int argc, char **argv, const char *what)
{
	struct ftvm_tuple *t, *gone = NULL;
	uint32_t count = 0;
	int used, err;
	size_t n;

	if (argc < 1)
		usage();
	t = names(argc, argv, &n, &used);
	if (used != argc)
		usage();
	if (!strcmp(what, "gone")) {
		gone = calloc(n ? n : 1, sizeof(*gone));
		if (!gone)
			die("gone", -ENOMEM);
		err = ftvm_sess_gone(&nl, vm, t, n, gone, &count);
	} else if (!strcmp(what, "retire")) {
		err = ftvm_sess_retire(&nl, vm, t, n, &count);
	} else {
		err = ftvm_sess_nudge(&nl, vm, t, n, &count);
	}
	free(t);
	if (err)
		die(what, err);
	printf("count %u", count);
	for (uint32_t k = 0; gone && k < count; k++)
		printf("%s %u", k ? "" : " rports", gone[k].rport);
	printf("\n");
	free(gone);
	return 0;
}

static int cmd_netns(uint32_t vm, int argc, char **argv)
{
	struct ftvm_msg m;
	int32_t fd;
	long nest;
	int err;

	if (argc < 1)
		usage();
	fd = open(argv[0], O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(argv[0], -errno);
	ftvm_msg_init(&m, &nl, FTVM_CMD_VM_SET, 0);
	nest = ftvm_msg_nest(&m, FTVM_A_VM);
	ftvm_msg_put(&m, FTVM_A_VM_ID, &vm, sizeof(vm));
	ftvm_msg_put(&m, FTVM_A_VM_NETNS_FD, &fd, sizeof(fd));
	ftvm_msg_nest_end(&m, nest);
	err = ftvm_nl_talk(&nl, &m, NULL, NULL);
	ftvm_msg_free(&m);
	close(fd);
	if (err)
		die("setting the VM's netns", err);
	return 0;
}

int main(int argc, char **argv)
{
	uint32_t vm;
	int err;

	if (argc < 3)
		usage();
	vm = strtoul(argv[2], NULL, 0);
	err = ftvm_nl_open(&nl);
	if (err)
		die("opening the ftvm netlink family", err);
	if (!strcmp(argv[1], "dump"))
		return cmd_dump(vm, argc - 3, argv + 3);
	if (!strcmp(argv[1], "restore"))
		return cmd_restore(vm, argc - 3, argv + 3);
	if (!strcmp(argv[1], "activate"))
		return cmd_activate(vm, argc - 3, argv + 3);
	if (!strcmp(argv[1], "netns"))
		return cmd_netns(vm, argc - 3, argv + 3);
	if (!strcmp(argv[1], "nudge") || !strcmp(argv[1], "retire") ||
	    !strcmp(argv[1], "gone"))
		return cmd_named(vm, argc - 3, argv + 3, argv[1]);
	usage();
	return 2;
}
