// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of the data plane library: Maglev table population
 * (balance, weights, disruption), service parsing; then, as root, the
 * ABI check against pinned maps of another version or layout in a
 * scratch pin directory: refused with a clear error by the library and
 * by ftctl, and nothing changed (no pin added, no program attached).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "../../user/lib/steer.h"
#include "ktap.h"

#define M FTVM_MAGLEV_SIZE

static uint32_t t1[M], t2[M];

static void count(const uint32_t *t, unsigned int *c, size_t n)
{
	memset(c, 0, n * sizeof(*c));
	for (int i = 0; i < M; i++)
		if (t[i] < n)
			c[t[i]]++;
}

static void test_maglev(void)
{
	struct ftvm_dp_backend b[8];
	unsigned int c[16], lo = M, hi = 0, kept = 0, moved_to_removed = 0;
	int ok;

	for (int i = 0; i < 8; i++)
		b[i] = (struct ftvm_dp_backend){ (uint32_t)i + 1, 1 };
	ok = !ftvm_dp_maglev_build(b, 8, t1);
	count(t1, c, 16);
	for (int i = 1; i <= 8; i++) {
		lo = c[i] < lo ? c[i] : lo;
		hi = c[i] > hi ? c[i] : hi;
	}
	ktap_result(ok && c[0] == 0 && lo + 2 >= hi,
		    "maglev: 8 equal backends fill the table evenly (%u..%u slots)",
		    lo, hi);

	/* Remove backend 5: its slots move, few others do. */
	b[4] = b[7];
	ok = !ftvm_dp_maglev_build(b, 7, t2);
	for (int i = 0; i < M; i++) {
		if (t1[i] == 5)
			moved_to_removed++;
		else if (t1[i] == t2[i])
			kept++;
	}
	ktap_result(ok && kept * 100 >= (M - moved_to_removed) * 95,
		    "maglev: removing one of 8 backends keeps %u of %u other slots",
		    kept, M - moved_to_removed);

	b[0].weight = 3;
	ok = !ftvm_dp_maglev_build(b, 2, t1);
	count(t1, c, 16);
	ktap_result(ok && c[1] > 2 * c[2] && c[1] < 4 * c[2],
		    "maglev: weight 3 against 1 takes about three quarters (%u/%u)",
		    c[1], c[2]);

	ok = !ftvm_dp_maglev_build(b, 0, t1);
	count(t1, c, 16);
	ktap_result(ok && c[0] == M, "maglev: no backends leaves the row empty");

	b[1].placement = b[0].placement;
	ktap_result(ftvm_dp_maglev_build(b, 2, t1) == -EINVAL,
		    "maglev: a placement given twice is refused");
	b[1].placement = 0;
	ktap_result(ftvm_dp_maglev_build(b, 2, t1) == -EINVAL,
		    "maglev: placement 0 is refused");
}

static void test_parse(void)
{
	static const struct {
		const char *s;
		int ok;
		const char *back;
	} cases[] = {
		{ "198.18.0.10:80/tcp", 1, "198.18.0.10:80/tcp" },
		{ "198.18.0.10:53/udp", 1, "198.18.0.10:53/udp" },
		{ "[2001:db8::1]:443/tcp", 1, "[2001:db8::1]:443/tcp" },
		{ "198.18.0.10:0/tcp", 0, NULL },
		{ "198.18.0.10:65536/tcp", 0, NULL },
		{ "198.18.0.10:-1/tcp", 0, NULL },
		{ "198.18.0.10:80/sctp", 0, NULL },
		{ "198.18.0.10:80", 0, NULL },
		{ "198.18.0.256:80/tcp", 0, NULL },
		{ "2001:db8::1:80/tcp", 0, NULL },
		{ "[2001:db8::1]80/tcp", 0, NULL },
		{ "[198.18.0.1]:80/tcp", 0, NULL },
		{ "host:80/tcp", 0, NULL },
		{ "", 0, NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ftvm_service_key k;
		char buf[80] = "";
		int err = ftvm_dp_service_parse(cases[i].s, &k);
		int ok = cases[i].ok ? !err : err == -EINVAL;

		if (!err)
			ftvm_dp_service_format(&k, buf, sizeof(buf));
		if (cases[i].ok && strcmp(buf, cases[i].back))
			ok = 0;
		ktap_result(ok, "parse \"%s\": %s%s%s", cases[i].s,
			    err ? "refused: " : "ok ", err ? ftvm_dp_errmsg() : buf,
			    "");
	}
}

/* ------------------------------------------------------------------ */
/* The ABI check against pins of another version or layout.            */

#define ABI_TESTS 9

static char pin_dir[64], ftctl[PATH_MAX];
static int dev_ifindex;

/*
 * Pin map @name under pin_dir: @type with @key/@value bytes, @entries;
 * with @btf_name, its value type is a struct of that name (what the
 * version check reads).
 */
static int pin_map(const char *name, enum bpf_map_type type, uint32_t key,
		   uint32_t value, uint32_t entries, const char *btf_name)
{
	LIBBPF_OPTS(bpf_map_create_opts, o);
	struct btf *btf = NULL;
	char path[128];
	int fd, err = 0;

	if (btf_name) {
		int u32, st;

		btf = btf__new_empty();
		u32 = btf ? btf__add_int(btf, "unsigned int", 4, 0) : -1;
		st = u32 > 0 ? btf__add_struct(btf, btf_name, value) : -1;
		if (st <= 0 || btf__add_field(btf, "version", u32, 0, 0) ||
		    btf__load_into_kernel(btf)) {
			btf__free(btf);
			return -1;
		}
		o.btf_fd = btf__fd(btf);
		o.btf_key_type_id = (uint32_t)u32;
		o.btf_value_type_id = (uint32_t)st;
	}
	fd = bpf_map_create(type, name, key, value, entries, &o);
	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	if (fd < 0 || bpf_obj_pin(fd, path))
		err = -1;
	if (fd >= 0)
		close(fd);
	btf__free(btf);
	return err;
}

/* The names pinned under pin_dir, sorted, space-separated. */
static void pins(char *buf, size_t len)
{
	struct dirent **ents;
	int n = scandir(pin_dir, &ents, NULL, alphasort);

	buf[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (ents[i]->d_name[0] != '.')
			snprintf(buf + strlen(buf), len - strlen(buf), "%s ",
				 ents[i]->d_name);
		free(ents[i]);
	}
	if (n >= 0)
		free(ents);
}

static void unpin_all(void)
{
	char path[400];
	struct dirent *e;
	DIR *d = opendir(pin_dir);

	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
}

/* Nothing attached to the device: no XDP program, no ftvm_fence. */
static bool dev_untouched(void)
{
	uint32_t id = 0;

	return !bpf_xdp_query_id(dev_ifindex, 0, &id) && !id &&
	       ftvm_dp_detach_fence(dev_ifindex) == -ENOENT;
}

/*
 * Every way in refuses the pins with -EPROTO and a message containing
 * @want, and leaves the pins (@before) and the device as they were;
 * ftctl says "Error: " and the same message, and exits 1.
 */
static void expect_refused(const char *what, const char *want,
			   const char *before)
{
	static const char *const cmds[] = {
		"stats", "-j stats", "service list", "attach ftvmdl0",
		"attach ftvmdl0 fence", "target set 1 dev ftvmdl0 mac 02:00:00:00:00:01",
	};
	struct ftvm_dp *dp = NULL;
	char after[1024], cmd[PATH_MAX + 256], out[1024], msg[512];
	int ok, e1, e2, e3, e4;

	e1 = ftvm_dp_open(pin_dir, &dp);
	ok = e1 == -EPROTO && strstr(ftvm_dp_errmsg(), want);
	if (!ok)
		ktap_diag("open: %d: %s", e1, ftvm_dp_errmsg());
	ftvm_dp_close(dp);
	e2 = ftvm_dp_attach_xdp(pin_dir, dev_ifindex, FTVM_XDP_GENERIC);
	snprintf(msg, sizeof(msg), "%s", ftvm_dp_errmsg());
	ok = ok && strstr(msg, want);
	e3 = ftvm_dp_attach_fence(pin_dir, dev_ifindex);
	ok = ok && strstr(ftvm_dp_errmsg(), want);
	e4 = ftvm_dp_watch_redirects(pin_dir, NULL);
	ok = ok && strstr(ftvm_dp_errmsg(), want);
	pins(after, sizeof(after));
	ktap_result(ok && e2 == -EPROTO && e3 == -EPROTO && e4 == -EPROTO &&
		    !strcmp(before, after) && dev_untouched(),
		    "%s: open, attach, attach fence, redirect watch refused (%s); pins [%s] and device unchanged",
		    what, msg, after);

	ok = 1;
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		FILE *f;
		size_t n;
		int rc;

		/* The pinned maps themselves, not a running ftd. */
		snprintf(cmd, sizeof(cmd),
			 "FTD_SOCKET=%s/none FTVM_PIN_DIR=%s %s %s 2>&1",
			 pin_dir, pin_dir, ftctl, cmds[i]);
		f = popen(cmd, "r");
		if (!f) {
			ok = 0;
			continue;
		}
		n = fread(out, 1, sizeof(out) - 1, f);
		out[n] = '\0';
		rc = pclose(f);
		if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 1 ||
		    !strstr(out, want) ||
		    !strstr(out, cmds[i][0] == '-' ? "\"error\":" : "Error: ")) {
			ktap_diag("ftctl %s: exit %d: %s", cmds[i],
				  WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out);
			ok = 0;
		}
	}
	pins(after, sizeof(after));
	ktap_result(ok && !strcmp(before, after) && dev_untouched(),
		    "%s: ftctl stats, service list, attach, attach fence, target set: Error, exit 1, nothing changed",
		    what);
}

static int abi_setup(void)
{
	char self[PATH_MAX - 32];
	ssize_t n;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -1;
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	snprintf(ftctl, sizeof(ftctl), "%s/../../user/ftctl/ftctl", self);
	if (access(ftctl, X_OK))
		return -1;
	/* A device of our own to (not) attach to. */
	if (unshare(CLONE_NEWNET) ||
	    system("ip link add ftvmdl0 type veth peer name ftvmdl1 && "
		   "ip link set ftvmdl0 up && ip link set ftvmdl1 up"))
		return -1;
	dev_ifindex = (int)if_nametoindex("ftvmdl0");
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/ftvm-dplib-%d",
		 getpid());
	return dev_ifindex > 0 && !mkdir(pin_dir, 0700) ? 0 : -1;
}

static void test_abi(void)
{
	char name[128], before[1024];
	uint32_t k = 0, v = 0;
	int fd;

	if (geteuid() || abi_setup()) {
		for (int i = 0; i < ABI_TESTS; i++) {
			ktap_n++;
			ktap_skip++;
			printf("ok %u ABI check %d # SKIP %s\n", ktap_n, i,
			       geteuid() ? "needs root" :
			       "no bpffs, veth or ftctl (make)");
		}
		return;
	}

	/* The previous version's marker, alone. */
	snprintf(name, sizeof(name), "ftvm_abi_v%d", FTVM_DP_ABI_VERSION - 1);
	ktap_result(!pin_map("ftvm_abi", BPF_MAP_TYPE_ARRAY, 4, 4, 1, name),
		    "pinned an %s marker in a scratch pin dir", name);
	pins(before, sizeof(before));
	snprintf(name, sizeof(name),
		 "the pinned data plane is ABI version %d; this build understands version %d",
		 FTVM_DP_ABI_VERSION - 1, FTVM_DP_ABI_VERSION);
	expect_refused("another ABI version", name, before);
	unpin_all();

	/* A marker of no known kind. */
	pin_map("ftvm_abi", BPF_MAP_TYPE_ARRAY, 4, 4, 1, "something_else");
	pins(before, sizeof(before));
	expect_refused("an unknown marker",
		       "the pinned ftvm_abi map has an unknown type \"something_else\"",
		       before);
	unpin_all();

	/* This version's marker, a map of another layout next to it. */
	ktap_result(!pin_map("ftvm_abi", BPF_MAP_TYPE_ARRAY, 4, 4, 1,
			     FTVM_DP_ABI_TYPE) &&
		    !pin_map("ftvm_services", BPF_MAP_TYPE_HASH,
			     sizeof(struct ftvm_service_key), 4,
			     FTVM_MAX_SERVICES, NULL),
		    "pinned this version's marker and an ftvm_services of 4-byte values");
	pins(before, sizeof(before));
	expect_refused("a map of another layout",
		       "map ftvm_services has another layout than this build expects",
		       before);
	/* The maps themselves untouched. */
	snprintf(name, sizeof(name), "%s/ftvm_abi", pin_dir);
	fd = bpf_obj_get(name);
	ktap_result(fd >= 0 && !bpf_map_lookup_elem(fd, &k, &v) && v == 0,
		    "the pinned marker still holds what it held");
	if (fd >= 0)
		close(fd);
	unpin_all();
	rmdir(pin_dir);
}

int main(void)
{
	libbpf_set_print(NULL);
	ktap_print_header(6 + 14 + ABI_TESTS);
	test_maglev();
	test_parse();
	test_abi();
	return ktap_finish();
}
