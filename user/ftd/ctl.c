// SPDX-License-Identifier: GPL-2.0
/*
 * The control socket: a unix SOCK_SEQPACKET socket (mode 0600, root or
 * ftd's own user only) that ftctl talks to.
 *
 * Request, one message:  "FTD1" FLAGS WORD\0WORD\0...
 *     FLAGS bit 0: JSON output, bit 1: pretty JSON.
 * Reply, messages:       'O' text   (standard output of the command)
 *                        'E' text   (standard error)
 *                        'X' CODE   (exit code in decimal; the last)
 * "monitor" gets no 'X': one 'O' per event (a JSON object per line under
 * JSON, else words) until the client goes away.
 *
 * Commands run on the main thread with ftd.lock held (the model stays
 * still; the session table is walked under RCU while the sync thread
 * goes on) and render through the same json_print calls as ftctl, into
 * a memory stream.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../lib/hold.h"
#include "../lib/json_print.h"
#include "../libftvm/nl.h"
#include "ftd.h"

#define CTL_MAX_MON	64
#define CTL_CHUNK	16384

static int listen_fd = -1;
static char sock_path[108];
static pthread_mutex_t mon_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int fd;
	bool json;
} mons[CTL_MAX_MON];
static int nmon;

/* The command being served. */
static struct {
	bool json, pretty;
	FILE *err;
	bool failed;
} req;

int ctl_listen_fd(void)
{
	return listen_fd;
}

static int mkdir_p(const char *path)
{
	char tmp[108];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

int ctl_open(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[108], *slash;
	mode_t old;
	int fd, err;

	snprintf(sock_path, sizeof(sock_path), "%s", path);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		slash[1] = 0;
		err = mkdir_p(dir);
		if (err)
			return err;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	/* A socket left by a killed ftd is stale; a live one answers. */
	if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -EADDRINUSE;
	}
	unlink(path);
	old = umask(0077);
	err = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
	umask(old);
	if (!err && listen(fd, 16))
		err = -errno;
	if (err) {
		close(fd);
		return err;
	}
	listen_fd = fd;
	return 0;
}

void ctl_close(void)
{
	if (listen_fd >= 0) {
		close(listen_fd);
		unlink(sock_path);
	}
	listen_fd = -1;
	pthread_mutex_lock(&mon_lock);
	for (int i = 0; i < nmon; i++)
		close(mons[i].fd);
	nmon = 0;
	pthread_mutex_unlock(&mon_lock);
}

extern int ftd_epoll_fd;

void ctl_accept(void)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct ucred cr;
	socklen_t len = sizeof(cr);
	struct timeval tv = { .tv_sec = 5 };
	int fd;

	while ((fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) ||
		    (cr.uid != 0 && cr.uid != geteuid())) {
			close(fd);
			continue;
		}
		/* A client that stops reading must not stall the daemon. */
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		ev.data.fd = fd;
		if (epoll_ctl(ftd_epoll_fd, EPOLL_CTL_ADD, fd, &ev))
			close(fd);
	}
}

static void send_msg(int fd, char type, const char *data, size_t len)
{
	char buf[CTL_CHUNK + 1];

	do {
		size_t n = len > CTL_CHUNK ? CTL_CHUNK : len;

		buf[0] = type;
		memcpy(buf + 1, data, n);
		if (send(fd, buf, n + 1, MSG_NOSIGNAL) < 0)
			return;
		data += n;
		len -= n;
	} while (len);
}

/*
 * Text form of one of our flat JSON events (string values never hold
 * quotes, commas or colons: names are restricted): "failover vm vm1 ...".
 */
static void event_text(const char *json, char *out, size_t len)
{
	bool in_str = false;
	size_t o = 0;

	for (const char *p = json; *p && o + 2 < len; p++) {
		if (*p == '"')
			in_str = !in_str;
		else if (!in_str && (*p == ':' || *p == ','))
			out[o++] = ' ';
		else if (in_str || (*p != '{' && *p != '}'))
			out[o++] = *p;
	}
	out[o] = 0;
	/* Drop the leading "event " key. */
	if (!strncmp(out, "event ", 6))
		memmove(out, out + 6, strlen(out + 6) + 1);
}

void ctl_event(const char *fmt, ...)
{
	char json[1024], line[1100], text[1024];
	struct timespec ts;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(json, sizeof(json), fmt, ap);
	va_end(ap);
	if (n <= 1 || (size_t)n >= sizeof(json))
		return;
	/* Stamp it: wall-clock time for the operator. */
	clock_gettime(CLOCK_REALTIME, &ts);
	json[n - 1] = 0;
	snprintf(line, sizeof(line), "%s,\"time\":%lld.%03ld}\n", json,
		 (long long)ts.tv_sec, ts.tv_nsec / 1000000);
	pthread_mutex_lock(&mon_lock);
	for (int i = 0; i < nmon; i++) {
		if (mons[i].json) {
			send_msg(mons[i].fd, 'O', line, strlen(line));
		} else {
			event_text(line, text, sizeof(text) - 1);
			send_msg(mons[i].fd, 'O', text, strlen(text));
		}
	}
	pthread_mutex_unlock(&mon_lock);
}

__attribute__((format(printf, 1, 2)))
static int cerr(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (req.json) {
		fputs("{\"error\":", stdout);
		json_escape(stdout, msg);
		fputs("}\n", stdout);
	}
	fprintf(req.err, "Error: %s\n", msg);
	req.failed = true;
	return 1;
}

/* ---- vm ---------------------------------------------------------------- */

static struct ftd_vm *vm_select(int argc, char **argv, int *used)
{
	uint32_t id;

	*used = 0;
	if (argc < 1) {
		cerr("which VM? give its NAME or \"id ID\"");
		return NULL;
	}
	if (!strcmp(argv[0], "id")) {
		if (argc < 2) {
			cerr("\"id\" needs a value");
			return NULL;
		}
		*used = 2;
		if (parse_u32(argv[1], &id) || id < FTVM_VM_ID_MIN ||
		    id > FTVM_VM_ID_MAX) {
			cerr("invalid VM id \"%s\": expected %u..%u", argv[1],
			     FTVM_VM_ID_MIN, FTVM_VM_ID_MAX);
			return NULL;
		}
		if (!ftd.cfg.vms[id].used) {
			cerr("no VM with id %u", id);
			return NULL;
		}
		return &ftd.cfg.vms[id];
	}
	*used = 1;
	if (!vm_by_name(argv[0]))
		cerr("no VM named \"%s\"", argv[0]);
	return vm_by_name(argv[0]);
}

/*
 * The ingress hold of the VM's namespace in ftvm.ko, as "ftctl vm show"
 * prints it without ftd (user/ftctl/vm.c), the same text and JSON.
 */
static void print_hold(const struct ftd_vm *vm)
{
	struct ftnl_hold h;

	if (!module_vm_hold(vm, &h))
		ftnl_hold_print(&h, true);
}

static void print_vm(const struct ftd_vm *vm, bool detail)
{
	char mac[18] = "-", probe[80] = "none";
	long np, nb;

	if (vm->has_mac)
		format_mac(vm->mac, mac, sizeof(mac));
	vm_counts(vm->id, &np, &nb);
	open_json_object(NULL);
	print_uint(PRINT_ANY, "id", "%-5u", vm->id);
	print_string(PRINT_ANY, "name", " %-16s", vm->name);
	print_string(PRINT_ANY, "dev", " %-16s", vm->dev);
	print_uint(PRINT_JSON, "ifindex", NULL, (unsigned int)vm->ifindex);
	print_string(PRINT_ANY, "mac", " %s", mac);
	print_string(PRINT_ANY, "state", " %-8s", vm_state_name(vm->state));
	if (vm->state == VM_FAILED)
		print_string(PRINT_JSON, "reason", NULL,
			     fail_reason_name(vm->reason));
	print_uint(PRINT_ANY, "capacity", " %4u", vm->capacity);
	print_string(PRINT_ANY, "domain", " %-10s",
		     vm->domain[0] ? vm->domain : vm->name);
	print_u64(PRINT_ANY, "primary", " %7llu", (uint64_t)np);
	print_u64(PRINT_ANY, "backup", " %7llu", (uint64_t)nb);
	if (vm->state == VM_FAILED && !is_json_context())
		printf(" (%s)", fail_reason_name(vm->reason));
	print_bool(PRINT_JSON, "silent_exit", NULL, vm->silent_exit);
	if (detail) {
		cfg_format_probe(&vm->probe, probe, sizeof(probe));
		print_nl();
		print_string(PRINT_ANY, "probe", "    probe %s", probe);
		if (vm->silent_exit)
			print_string(PRINT_FP, NULL, "%s", "  silent-exit on");
		print_hold(vm);
	}
	print_nl();
	close_json_object();
}

static void vm_header(void)
{
	if (!req.json)
		printf("%-5s %-16s %-16s %-17s %-8s %4s %-10s %7s %7s\n", "ID",
		       "NAME", "DEV", "MAC", "STATE", "CAP", "DOMAIN",
		       "PRIMARY", "BACKUP");
}

static int vm_add(int argc, char **argv)
{
	struct ftd_vm vm;
	char err[256];
	int ifindex;

	if (cfg_parse_vm(&ftd.cfg, argc, argv, &vm, false, err, sizeof(err)))
		return cerr("%s", err);
	if (ftd.cfg.vms[vm.id].used)
		return cerr("VM id %u is taken by \"%s\"", vm.id,
			    ftd.cfg.vms[vm.id].name);
	ifindex = (int)if_nametoindex(vm.dev);
	if (!ifindex)
		return cerr("device \"%s\" not found", vm.dev);
	if (!vm.has_mac && !ftd.have_module)
		return cerr("\"mac MAC\" is needed (the VM's own address) when ftvm.ko is not loaded");
	vm.ifindex = ifindex;
	if (module_vm_register(&vm, err, sizeof(err)))
		return cerr("%s", err);
	if (!vm.has_mac) {
		/* The module took the MAC from the veth's peer. */
		ftd.cfg.vms[vm.id] = vm;
		ftd.cfg.vms[vm.id].used = true;
		module_sync_registry();
		vm = ftd.cfg.vms[vm.id];
		ftd.cfg.vms[vm.id].used = false;
		if (!vm.has_mac) {
			module_vm_unregister(&vm, NULL, 0);
			return cerr("cannot learn the MAC of VM \"%s\": give \"mac MAC\"",
				    vm.name);
		}
	}
	if (dp_vm_set(ftd.dp, vm.id, ifindex, vm.mac, 0) ||
	    dp_attach_fence(ftd.dp, ifindex)) {
		snprintf(err, sizeof(err), "%s", dp_errmsg());
		dp_vm_del(ftd.dp, vm.id, ifindex);
		module_vm_unregister(&vm, NULL, 0);
		return cerr("%s", err);
	}
	vm.used = true;
	vm.state = VM_UP;
	ftd.cfg.vms[vm.id] = vm;
	maglev_refresh_all();
	if (cfg_save(&ftd.cfg))
		ftd_log(LOG_WARN, "cannot save %s: %s", ftd.cfg.path,
			strerror(errno));
	ftd_log(LOG_INFO, "vm %s added (id %u, dev %s)", vm.name, vm.id, vm.dev);
	ctl_event("{\"event\":\"vm-new\",\"vm\":\"%s\",\"id\":%u}", vm.name,
		  vm.id);
	reprotect_kick();
	return 0;
}

static int vm_del(struct ftd_vm *vm)
{
	char err[256];

	if (vm->state != VM_FAILED) {
		module_vm_fail(vm);
		failover_vm(vm->id, FTVM_FAIL_USER, monotonic_ns());
	}
	if (module_vm_unregister(vm, err, sizeof(err)) &&
	    !strstr(err, "No such"))
		ftd_log(LOG_WARN, "vm %s: %s", vm->name, err);
	dp_vm_del(ftd.dp, vm->id, vm->ifindex);
	ftd_log(LOG_INFO, "vm %s deleted", vm->name);
	ctl_event("{\"event\":\"vm-del\",\"vm\":\"%s\",\"id\":%u}", vm->name,
		  vm->id);
	memset(vm, 0, sizeof(*vm));
	maglev_refresh_all();
	cfg_save(&ftd.cfg);
	reprotect_kick();
	return 0;
}

/*
 * Undo what vm_set() did to ftvm.ko and the steering maps before a later
 * step failed: @old is the VM as it was.
 */
static void vm_set_undo(const struct ftd_vm *old, bool module_up,
			bool module_updated, bool dp_changed)
{
	struct ftd_vm o = *old;

	if (module_up)
		module_vm_fail(&o);
	else if (module_updated)
		module_vm_update(&o, NULL, 0);
	if (dp_changed)
		dp_vm_set(ftd.dp, o.id, o.ifindex, o.mac, vm_dp_flags(&o));
}

static int vm_set(struct ftd_vm *vm, int argc, char **argv)
{
	struct ftd_vm n = *vm, old = *vm;
	char err[256], *words[64];
	bool up = false, module_up = false, module_updated = false;
	bool dp_changed = false;
	int k = 0, ifindex = vm->ifindex, ret;

	if (argc < 1)
		return cerr("\"vm set\" needs something to change");
	/* "state up" is ours; the rest are configuration words. */
	words[k++] = n.name;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "state")) {
			if (i + 1 >= argc || strcmp(argv[i + 1], "up"))
				return cerr("invalid state: only \"state up\" can be set (use \"ftctl vm fail\")");
			up = true;
			i++;
			continue;
		}
		if (k == 63)
			return cerr("too many arguments");
		words[k++] = argv[i];
	}
	if (cfg_parse_vm(&ftd.cfg, k, words, &n, true, err, sizeof(err)))
		return cerr("%s", err);
	if (up && vm->state != VM_FAILED && vm->state != VM_DRAINING)
		up = false;
	/* A new device, or the old one recreated under its name. */
	if (strcmp(n.dev, vm->dev) || up) {
		ifindex = (int)if_nametoindex(n.dev);
		if (!ifindex)
			return cerr("device \"%s\" not found", n.dev);
	}
	/* Nothing changes unless every step succeeds: each is undone. */
	if (up && ftd.have_module && vm->state == VM_FAILED) {
		if (module_vm_up(&n, err, sizeof(err)))
			return cerr("%s", err);
		module_up = true;
	} else if (!(up && vm->state == VM_FAILED) &&
		   (n.silent_exit != vm->silent_exit ||
		    strcmp(n.netns, vm->netns))) {
		if (module_vm_update(&n, err, sizeof(err)))
			return cerr("%s", err);
		module_updated = ftd.have_module;
	}
	if (ifindex != vm->ifindex || memcmp(n.mac, vm->mac, 6)) {
		dp_changed = true;
		if (dp_vm_set(ftd.dp, vm->id, ifindex, n.mac, vm_dp_flags(vm)) ||
		    dp_attach_fence(ftd.dp, ifindex)) {
			snprintf(err, sizeof(err), "%s", dp_errmsg());
			vm_set_undo(&old, module_up, module_updated, dp_changed);
			return cerr("%s", err);
		}
	}
	n.ifindex = ifindex;
	*vm = n;
	if (up) {
		ret = vm_rejoin(vm->id);
		if (ret) {
			snprintf(err, sizeof(err), "%s", ret == -ENODEV ?
				 "its device is gone" : dp_errmsg());
			*vm = old;
			vm_set_undo(&old, module_up, module_updated, dp_changed);
			return cerr("VM \"%s\" cannot rejoin: %s", old.name, err);
		}
	} else {
		maglev_refresh_all();
	}
	cfg_save(&ftd.cfg);
	ctl_event("{\"event\":\"vm-set\",\"vm\":\"%s\",\"id\":%u}", vm->name,
		  vm->id);
	return 0;
}

static void vm_usage(FILE *f)
{
	fprintf(f,
		"Usage: ftctl vm add NAME id ID dev DEV [mac MAC] [capacity N] [domain LABEL]\n"
		"                    [probe { icmp ADDR | tcp ADDR:PORT | none }] [interval MS] [misses N]\n"
		"       ftctl vm del { NAME | id ID }\n"
		"       ftctl vm list\n"
		"       ftctl vm show { NAME | id ID }\n"
		"       ftctl vm set { NAME | id ID } [name NEW] [dev DEV] [mac MAC] [capacity N]\n"
		"                    [domain LABEL] [probe ...] [interval MS] [misses N] [state up]\n"
		"       ftctl vm fail { NAME | id ID }\n"
		"       ftctl vm drain { NAME | id ID }\n");
}

static int cmd_vm(int argc, char **argv)
{
	struct ftd_vm *vm;
	const char *verb = argc ? argv[0] : "list";
	int used;

	if (argc)
		argc--, argv++;
	if (matches(verb, "help")) {
		vm_usage(stdout);
		return 0;
	}
	if (matches(verb, "add"))
		return vm_add(argc, argv);
	if (matches(verb, "list")) {
		if (argc)
			return cerr("unknown argument \"%s\" for \"vm list\"", argv[0]);
		new_json_obj(req.json, req.pretty);
		vm_header();
		for (int i = FTVM_VM_ID_MIN; i <= FTVM_VM_ID_MAX; i++)
			if (ftd.cfg.vms[i].used)
				print_vm(&ftd.cfg.vms[i], false);
		delete_json_obj();
		return 0;
	}
	if (!matches(verb, "delete") && !matches(verb, "show") &&
	    !matches(verb, "set") && !matches(verb, "fail") &&
	    !matches(verb, "drain"))
		return cerr("unknown command \"%s\" for \"vm\"; try \"ftctl vm help\"",
			    verb);
	vm = vm_select(argc, argv, &used);
	if (!vm)
		return 1;
	argc -= used;
	argv += used;
	if (matches(verb, "set"))
		return vm_set(vm, argc, argv);
	if (argc)
		return cerr("unknown argument \"%s\" for \"vm %s\"", argv[0], verb);
	if (matches(verb, "delete"))
		return vm_del(vm);
	if (matches(verb, "show")) {
		new_json_obj(req.json, req.pretty);
		vm_header();
		print_vm(vm, true);
		delete_json_obj();
		return 0;
	}
	if (matches(verb, "fail")) {
		if (vm->state == VM_FAILED)
			return cerr("VM \"%s\" has already failed", vm->name);
		ctl_event("{\"event\":\"vm-failed\",\"vm\":\"%s\",\"id\":%u,\"reason\":\"reported\"}",
			  vm->name, vm->id);
		/* The registry first: it arms the backups (kmod/hold.c). */
		module_vm_fail(vm);
		failover_vm(vm->id, FTVM_FAIL_USER, monotonic_ns());
		return 0;
	}
	if (vm->state == VM_FAILED)
		return cerr("VM \"%s\" has failed; nothing to drain", vm->name);
	if (vm_drain(vm->id))
		return cerr("%s", dp_errmsg());
	return 0;
}

/* ---- service ------------------------------------------------------------ */

/* ftvm.ko's counters of a strict service (service show). */
static void print_commit_counters(const struct ftd_service *s)
{
	struct ftvm_commit c;
	char err[256];

	if (commit_counters(s, &c, err, sizeof(err))) {
		print_null(PRINT_JSON, "commit_counters", NULL);
		print_string(PRINT_ANY, "commit_error", " (%s)", err);
		return;
	}
	open_json_object("commit_counters");
	print_uint(PRINT_ANY, "sessions", " sessions %u", c.sessions);
	print_uint(PRINT_ANY, "held", " held %u", c.held);
	print_u64(PRINT_ANY, "held_total", " held-total %llu", c.held_total);
	print_u64(PRINT_ANY, "released", " released %llu", c.released);
	print_u64(PRINT_ANY, "dropped", " dropped %llu", c.dropped);
	print_u64(PRINT_ANY, "commits", " commits %llu", c.commits);
	print_u64(PRINT_ANY, "no_backup", " no-backup %llu", c.no_backup);
	print_u64(PRINT_ANY, "stale", " stale %llu", c.stale);
	close_json_object();
}

static void print_service(const struct ftd_service *s, bool detail)
{
	char key[80];
	struct cds_lfht_iter it;
	struct ftd_session *x;
	unsigned long n = 0, unprot = 0;

	urcu_memb_read_lock();
	cds_lfht_for_each_entry(ftd.sessions, &it, x, node) {
		if (x->service != s->index)
			continue;
		n++;
		if (!session_protected(CMM_LOAD_SHARED(x->placement)))
			unprot++;
	}
	urcu_memb_read_unlock();
	cfg_format_service_key(&s->key, key, sizeof(key));
	open_json_object(NULL);
	print_string(PRINT_ANY, "name", "%-16s", s->name);
	print_string(PRINT_ANY, "address", " %-28s", key);
	print_uint(PRINT_JSON, "index", NULL, s->index);
	print_string(PRINT_ANY, "criterion", " %-12s", crit_name(s->criterion));
	print_bool(PRINT_JSON, "anti_affinity", NULL, s->anti_affinity);
	print_string(PRINT_FP, NULL, " %-4s", s->anti_affinity ? "on" : "off");
	print_uint(PRINT_ANY, "replication_interval_ms", " %6u",
		   s->repl_interval_ms);
	print_string(PRINT_ANY, "commit", " %-7s", commit_mode_name(s->commit));
	print_uint(PRINT_JSON, "ckpt_wait_ms", NULL, s->ckpt_wait_ms);
	print_u64(PRINT_ANY, "sessions", " %8llu", n);
	print_u64(PRINT_ANY, "unprotected", " %8llu", unprot);
	if (detail) {
		print_nl();
		print_string(PRINT_FP, NULL, "    commit %s",
			     commit_mode_name(s->commit));
		print_uint(PRINT_FP, NULL, " ckpt-wait %u ms", s->ckpt_wait_ms);
		if (s->commit == FTVM_COMMIT_STRICT)
			print_commit_counters(s);
		else
			print_null(PRINT_JSON, "commit_counters", NULL);
	}
	print_nl();
	close_json_object();
}

static void service_header(void)
{
	if (!req.json)
		printf("%-16s %-28s %-12s %-4s %6s %-7s %8s %8s\n", "NAME",
		       "ADDRESS", "CRITERION", "AA", "REPLMS", "COMMIT",
		       "SESSIONS", "UNPROT");
}

static void service_usage(void)
{
	printf("Usage: ftctl service add NAME ADDR:PORT/{tcp|udp} [criterion { hash | least-loaded }]\n"
	       "                         [anti-affinity { on | off }] [replication-interval MS]\n"
	       "                         [commit { strict | relaxed }] [ckpt-wait MS]\n"
	       "       ftctl service del NAME\n"
	       "       ftctl service list\n"
	       "       ftctl service show NAME\n"
	       "       ftctl service set NAME [criterion C] [anti-affinity on|off] [replication-interval MS]\n"
	       "                         [commit strict|relaxed] [ckpt-wait MS]\n");
}

static int service_add(int argc, char **argv)
{
	bool taken[FTVM_MAX_SERVICES] = {};
	struct ftd_service s;
	char err[256];
	int j;

	if (cfg_parse_service(&ftd.cfg, argc, argv, &s, false, err, sizeof(err)))
		return cerr("%s", err);
	for (j = 0; j < FTVM_MAX_SERVICES; j++)
		if (ftd.cfg.svcs[j].used)
			taken[ftd.cfg.svcs[j].index] = true;
	for (s.index = 0; s.index < FTVM_MAX_SERVICES && taken[s.index]; s.index++)
		;
	for (j = 0; j < FTVM_MAX_SERVICES && ftd.cfg.svcs[j].used; j++)
		;
	if (j == FTVM_MAX_SERVICES || s.index == FTVM_MAX_SERVICES)
		return cerr("no room for another service (at most %d)",
			    FTVM_MAX_SERVICES);
	/* Held from its first packet: strict before it is steered. */
	if (commit_update(NULL, &s, err, sizeof(err)))
		return cerr("%s", err);
	s.used = true;
	ftd.cfg.svcs[j] = s;
	/* The row first, then the service: no session sees an empty row. */
	if (maglev_refresh(&ftd.cfg.svcs[j]) ||
	    dp_service_set(ftd.dp, &s.key, s.index)) {
		snprintf(err, sizeof(err), "%s", dp_errmsg());
		maglev_forget(s.index);
		dp_service_del(ftd.dp, &s.key, s.index);
		commit_update(&s, NULL, NULL, 0);
		memset(&ftd.cfg.svcs[j], 0, sizeof(s));
		return cerr("%s", err);
	}
	cfg_save(&ftd.cfg);
	ftd_log(LOG_INFO, "service %s added (index %u)", s.name, s.index);
	ctl_event("{\"event\":\"service-new\",\"service\":\"%s\"}", s.name);
	return 0;
}

static int service_set(struct ftd_service *o, int argc, char **argv)
{
	struct ftd_service s = *o;
	char err[256];

	if (argc < 2)
		return cerr("\"service set\" needs something to change");
	if (cfg_parse_service(&ftd.cfg, argc, argv, &s, true, err, sizeof(err)))
		return cerr("%s", err);
	if (commit_update(o, &s, err, sizeof(err)))
		return cerr("%s", err);
	*o = s;
	maglev_refresh(o);
	cfg_save(&ftd.cfg);
	ctl_event("{\"event\":\"service-set\",\"service\":\"%s\"}", s.name);
	reprotect_kick();
	return 0;
}

static int service_del(struct ftd_service *o)
{
	if (dp_service_del(ftd.dp, &o->key, o->index))
		return cerr("%s", dp_errmsg());
	maglev_forget(o->index);
	/* No longer steered: what ftvm.ko holds for it goes. */
	commit_update(o, NULL, NULL, 0);
	ctl_event("{\"event\":\"service-del\",\"service\":\"%s\"}", o->name);
	ftd_log(LOG_INFO, "service %s deleted", o->name);
	memset(o, 0, sizeof(*o));
	cfg_save(&ftd.cfg);
	return 0;
}

static int cmd_service(int argc, char **argv)
{
	const char *verb = argc ? argv[0] : "list";
	struct ftd_service *o;

	if (argc)
		argc--, argv++;
	if (matches(verb, "help")) {
		service_usage();
		return 0;
	}
	if (matches(verb, "list")) {
		if (argc)
			return cerr("unknown argument \"%s\" for \"service list\"", argv[0]);
		new_json_obj(req.json, req.pretty);
		service_header();
		for (int i = 0; i < FTVM_MAX_SERVICES; i++)
			if (ftd.cfg.svcs[i].used)
				print_service(&ftd.cfg.svcs[i], false);
		delete_json_obj();
		return 0;
	}
	if (matches(verb, "add"))
		return service_add(argc, argv);
	if (!matches(verb, "delete") && !matches(verb, "show") &&
	    !matches(verb, "set"))
		return cerr("unknown command \"%s\" for \"service\"; try \"ftctl service help\"",
			    verb);
	if (!argc)
		return cerr("which service? give its NAME");
	o = svc_by_name(argv[0]);
	if (!o)
		return cerr("no service named \"%s\"", argv[0]);
	if (matches(verb, "set"))
		return service_set(o, argc, argv);
	if (argc > 1)
		return cerr("unknown argument \"%s\" for \"service %s\"", argv[1], verb);
	if (matches(verb, "show")) {
		new_json_obj(req.json, req.pretty);
		service_header();
		print_service(o, true);
		delete_json_obj();
		return 0;
	}
	return service_del(o);
}

/* ---- session ------------------------------------------------------------ */

static void flow_format(const struct ftvm_flow *f, char *src, char *dst,
			size_t len)
{
	int af = f->family == FTVM_FAMILY_V6 ? AF_INET6 : AF_INET;
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];

	inet_ntop(af, f->saddr, a, sizeof(a));
	inet_ntop(af, f->daddr, b, sizeof(b));
	if (af == AF_INET6) {
		snprintf(src, len, "[%s]:%u", a, ntohs(f->sport));
		snprintf(dst, len, "[%s]:%u", b, ntohs(f->dport));
	} else {
		snprintf(src, len, "%s:%u", a, ntohs(f->sport));
		snprintf(dst, len, "%s:%u", b, ntohs(f->dport));
	}
}

static const char *vm_name_of(uint32_t id)
{
	if (!id)
		return "-";
	return id <= FTVM_VM_ID_MAX && ftd.cfg.vms[id].used ?
		ftd.cfg.vms[id].name : "?";
}

/* The word after "client" (it was parsed): for messages. */
static const char *argv_client(int argc, char **argv)
{
	for (int i = 0; i + 1 < argc; i++)
		if (!strcmp(argv[i], "client"))
			return argv[i + 1];
	return "";
}

/* A session's client end: "ADDR:PORT" or "[ADDR6]:PORT". */
struct client_sel {
	uint8_t family;			/* FTVM_FAMILY_*, 0: any client */
	uint32_t addr[4];
	uint16_t port;			/* network order */
};

/* An IPv6 address in brackets, an IPv4 one without. */
static int parse_client(const char *s, struct client_sel *c)
{
	struct sockaddr_storage ss;
	socklen_t len;

	memset(c, 0, sizeof(*c));
	if (cfg_parse_sockaddr(s, true, &ss, &len) ||
	    (s[0] == '[') != (ss.ss_family == AF_INET6))
		return -1;
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)&ss;

		c->family = FTVM_FAMILY_V6;
		memcpy(c->addr, &a->sin6_addr, 16);
		c->port = a->sin6_port;
	} else {
		const struct sockaddr_in *a = (const void *)&ss;

		c->family = FTVM_FAMILY_V4;
		memcpy(c->addr, &a->sin_addr, 4);
		c->port = a->sin_port;
	}
	return 0;
}

static bool client_is(const struct client_sel *c, const struct ftvm_flow *f)
{
	if (!c->family)
		return true;
	return f->family == c->family && f->sport == c->port &&
	       !memcmp(f->saddr, c->addr,
		       c->family == FTVM_FAMILY_V6 ? 16 : 4);
}

/*
 * How long the data plane has seen no packet of @flow (to within a
 * grain, FTVM_SEEN_GRAIN_NS): "idle_ms", null when its entry has no
 * time (written by userspace, no packet since) or is gone.
 */
static void print_idle(const struct ftvm_flow *flow)
{
	struct ftvm_session e;
	uint64_t now = monotonic_ns(), since = 0;

	if (!dp_session_get(ftd.dp, flow, &e))
		since = ftvm_session_seen_ns(&e);
	if (since)
		print_u64(PRINT_ANY, "idle_ms", " idle %llu ms",
			  now > since ? (now - since) / 1000000 : 0);
	else
		print_null(PRINT_JSON, "idle_ms", NULL);
}

static int cmd_session(int argc, char **argv)
{
	const char *verb = argc ? argv[0] : "list";
	const struct ftd_service *svc = NULL, *by_index[FTVM_MAX_SERVICES] = {};
	const struct ftd_vm *vm = NULL;
	bool unprot = false, detail;
	struct client_sel client = {};
	struct commit_view cv = { 0 };
	struct cds_lfht_iter it;
	struct ftd_session *s;
	unsigned long n = 0;

	if (argc)
		argc--, argv++;
	if (matches(verb, "help")) {
		printf("Usage: ftctl session { list | show } [vm NAME] [service NAME] [unprotected]\n"
		       "                                  [client ADDR:PORT]\n"
		       "A client ADDR:PORT and a service select one session; \"session show\"\n"
		       "with a client fails if no session matches.\n");
		return 0;
	}
	if (!matches(verb, "list") && !matches(verb, "show"))
		return cerr("unknown command \"%s\" for \"session\"; try \"ftctl session help\"",
			    verb);
	detail = matches(verb, "show");
	for (int i = 0; i < argc; i++) {
		if (matches(argv[i], "unprotected")) {
			unprot = true;
		} else if (!strcmp(argv[i], "client")) {
			if (i + 1 >= argc)
				return cerr("\"client\" needs a value");
			if (parse_client(argv[i + 1], &client))
				return cerr("invalid client \"%s\": expected ADDR:PORT or [ADDR6]:PORT",
					    argv[i + 1]);
			i++;
		} else if (!strcmp(argv[i], "vm") || !strcmp(argv[i], "service")) {
			if (i + 1 >= argc)
				return cerr("\"%s\" needs a value", argv[i]);
			if (argv[i][0] == 'v' && !(vm = vm_by_name(argv[i + 1])))
				return cerr("no VM named \"%s\"", argv[i + 1]);
			if (argv[i][0] == 's' && !(svc = svc_by_name(argv[i + 1])))
				return cerr("no service named \"%s\"", argv[i + 1]);
			i++;
		} else {
			return cerr("unknown argument \"%s\" for \"session %s\"",
				    argv[i], verb);
		}
	}
	for (int i = 0; i < FTVM_MAX_SERVICES; i++)
		if (ftd.cfg.svcs[i].used && ftd.cfg.svcs[i].index < FTVM_MAX_SERVICES)
			by_index[ftd.cfg.svcs[i].index] = &ftd.cfg.svcs[i];
	/*
	 * A strict session's backup is brought up to date by ftvm.ko's
	 * commits too, which ftd does not see: ask the module.  Without an
	 * answer, ftd's own stages are all there is to tell.
	 */
	if (detail && ftd.have_module)
		for (int i = 0; i < FTVM_MAX_SERVICES; i++)
			if (by_index[i] && by_index[i]->commit == FTVM_COMMIT_STRICT) {
				commit_view_load(&cv);
				break;
			}
	new_json_obj(req.json, req.pretty);
	if (!req.json)
		printf("%-46s %-46s %-12s %-12s %-12s %s\n", "CLIENT", "SERVICE",
		       "NAME", "PRIMARY", "BACKUP", "PLACEMENT");
	urcu_memb_read_lock();
	cds_lfht_for_each_entry(ftd.sessions, &it, s, node) {
		uint32_t pid = CMM_LOAD_SHARED(s->placement);
		const struct ftd_placement *p = &ftd.pl[pid];
		const struct ftd_service *ss = s->service < FTVM_MAX_SERVICES ?
					       by_index[s->service] : NULL;
		char src[64], dst[64];
		bool prot = session_protected(pid) &&
			    repl_session_staged(s, p->backup);
		uint64_t rep = uatomic_read(&s->replicated_ns);

		if (svc && ss != svc)
			continue;
		if (vm && p->primary != vm->id && p->backup != vm->id)
			continue;
		if (unprot && prot)
			continue;
		if (!client_is(&client, &s->flow))
			continue;
		n++;
		flow_format(&s->flow, src, dst, sizeof(src));
		open_json_object(NULL);
		print_string(PRINT_ANY, "client", "%-46s", src);
		print_string(PRINT_ANY, "service_address", " %-46s", dst);
		print_string(PRINT_ANY, "service", " %-12s", ss ? ss->name : "?");
		print_string(PRINT_ANY, "primary", " %-12s", vm_name_of(p->primary));
		print_string(PRINT_ANY, "backup", " %-12s", vm_name_of(p->backup));
		print_uint(PRINT_ANY, "placement", " %u", pid);
		print_bool(PRINT_JSON, "protected", NULL, prot);
		if (detail) {
			print_uint(PRINT_JSON, "primary_id", NULL, p->primary);
			print_uint(PRINT_JSON, "backup_id", NULL, p->backup);
			print_string(PRINT_ANY, "proto", " %s",
				     s->flow.proto == IPPROTO_TCP ? "tcp" : "udp");
			print_idle(&s->flow);
			if (ftd.have_module && s->flow.proto == IPPROTO_TCP) {
				print_uint(PRINT_JSON, "staged_on", NULL,
					   uatomic_read(&s->staged_on));
				int64_t cms = ss && ss->commit == FTVM_COMMIT_STRICT ?
					      commit_view_staged_ms(&cv, &s->flow) : -1;
				uint64_t ms = rep ? (monotonic_ns() - rep) / 1000000 : 0;
				bool known = rep;

				/* The later of ftd's stage and the module's. */
				if (cms >= 0) {
					print_u64(PRINT_JSON, "committed_ms_ago", NULL,
						  (uint64_t)cms);
					if (!known || (uint64_t)cms < ms) {
						ms = (uint64_t)cms;
						known = true;
					}
				}
				if (known) {
					print_u64(PRINT_ANY, "replicated_ms_ago",
						  " replicated %llu ms ago", ms);
				} else {
					print_string(PRINT_FP, NULL, "%s",
						     " never replicated");
					print_null(PRINT_JSON, "replicated_ms_ago", NULL);
				}
			}
			print_string(PRINT_FP, NULL, " %s",
				     prot ? "protected" : "UNPROTECTED");
		}
		print_nl();
		close_json_object();
	}
	urcu_memb_read_unlock();
	delete_json_obj();
	commit_view_free(&cv);
	if (detail && client.family && !n)
		return cerr("no session of client %s%s%s", argv_client(argc, argv),
			    svc ? " on service " : "", svc ? svc->name : "");
	if (!req.json && !detail)
		fprintf(req.err, "%lu sessions\n", n);
	return 0;
}

/* ---- status ------------------------------------------------------------- */

static int cmd_status(int argc, char **argv)
{
	unsigned int up = 0, failed = 0, draining = 0;
	uint64_t now = monotonic_ns();
	long unprot = unprotected_sessions(), work = work_remaining();
	const struct failover_rec *l = &ftd.last;

	(void)argv;
	if (argc)
		return cerr("\"status\" takes no arguments");
	for (int i = FTVM_VM_ID_MIN; i <= FTVM_VM_ID_MAX; i++) {
		const struct ftd_vm *vm = &ftd.cfg.vms[i];

		if (!vm->used)
			continue;
		up += vm->state == VM_UP;
		failed += vm->state == VM_FAILED;
		draining += vm->state == VM_DRAINING;
	}
	new_json_doc(req.json, req.pretty);
	open_json_object(NULL);
	print_string(PRINT_FP, NULL, "ftd: up %s", "");
	print_u64(PRINT_ANY, "uptime_s", "%llu s", (now - ftd.start_ns) / 1000000000ull);
	print_bool(PRINT_JSON, "module", NULL, ftd.have_module);
	print_bool(PRINT_JSON, "replication", NULL, repl_running());
	print_string(PRINT_FP, NULL, "%s\n", !ftd.have_module ?
		     ", ftvm.ko NOT loaded: state replication is OFF (failures from link events and heartbeats)" :
		     repl_running() ? ", ftvm.ko loaded, state replication on" :
		     ", ftvm.ko loaded, but state replication is OFF: it failed to start (see ftd's log)");
	print_uint(PRINT_ANY, "vms_up", "VMs: %u up", up);
	print_uint(PRINT_ANY, "vms_failed", ", %u failed", failed);
	print_uint(PRINT_ANY, "vms_draining", ", %u draining\n", draining);
	open_json_array(PRINT_JSON, "vms");
	for (int i = FTVM_VM_ID_MIN; i <= FTVM_VM_ID_MAX; i++) {
		const struct ftd_vm *vm = &ftd.cfg.vms[i];
		long np, nb;

		if (!vm->used)
			continue;
		vm_counts(vm->id, &np, &nb);
		open_json_object(NULL);
		print_string(PRINT_ANY, "name", "  %-16s", vm->name);
		print_string(PRINT_ANY, "state", " %-9s", vm_state_name(vm->state));
		if (vm->state == VM_FAILED)
			print_string(PRINT_JSON, "reason", NULL,
				     fail_reason_name(vm->reason));
		print_u64(PRINT_ANY, "primary", " primary %-8llu", (uint64_t)np);
		print_u64(PRINT_ANY, "backup", " backup %-8llu", (uint64_t)nb);
		if (vm->state == VM_FAILED && !req.json)
			printf(" (%s)", fail_reason_name(vm->reason));
		print_nl();
		close_json_object();
	}
	close_json_array(PRINT_JSON, NULL);
	print_u64(PRINT_ANY, "sessions", "Sessions: %llu",
		  uatomic_read(&ftd.nsessions));
	print_u64(PRINT_ANY, "unprotected", ", unprotected %llu", (uint64_t)unprot);
	print_u64(PRINT_ANY, "reprotect_pending", ", re-protection pending %llu\n",
		  (uint64_t)work);
	print_u64(PRINT_ANY, "closed_forgotten",
		  "Closed sessions forgotten: %llu\n",
		  uatomic_read(&ftd.forgotten));
	print_u64(PRINT_ANY, "udp_idle_forgotten",
		  "Idle UDP sessions forgotten: %llu\n",
		  uatomic_read(&ftd.udp_forgotten));
	print_u64(PRINT_ANY, "failovers", "Failovers: %llu\n", ftd.failovers);
	if (l->event_ns) {
		open_json_object("last_failover");
		print_string(PRINT_ANY, "vm", "Last failover: %s", l->name);
		print_u64(PRINT_ANY, "ago_s", ", %llu s ago",
			  (now - l->event_ns) / 1000000000ull);
		if (l->switch_done_ns) {
			print_u64(PRINT_ANY, "switch_us",
				  ", data path switched in %llu us", l->switch_us);
			print_uint(PRINT_ANY, "placements", " (%u placements)",
				   l->placements);
		} else {
			/* Switched by the ftd that was killed. */
			print_null(PRINT_JSON, "switch_us", NULL);
			print_uint(PRINT_JSON, "placements", NULL, 0);
			print_string(PRINT_FP, NULL, "%s",
				     ", data path switched before ftd restarted");
		}
		print_bool(PRINT_JSON, "resumed", NULL, l->resumed);
		if (l->resumed)
			print_string(PRINT_FP, NULL, "%s",
				     ", finished by the restarted ftd");
		print_bool(PRINT_JSON, "reprotect_done", NULL, l->done);
		print_u64(PRINT_ANY, "reprotected", "; re-protected %llu sessions",
			  l->reprotected);
		if (l->done)
			print_u64(PRINT_ANY, "reprotect_ms", " in %llu ms\n",
				  (l->reprotect_done_ns - l->reprotect_start_ns) /
				  1000000);
		else
			print_string(PRINT_FP, NULL, "%s", ", in progress\n");
		close_json_object();
	} else {
		print_null(PRINT_JSON, "last_failover", NULL);
		print_string(PRINT_FP, NULL, "%s", "Last failover: none\n");
	}
	print_string(PRINT_FP, NULL, "%s", unprot ?
		     "Protection: DEGRADED, some sessions have no backup\n" :
		     "Protection: every session has a backup\n");
	close_json_object();
	delete_json_obj();
	return 0;
}

/* ---- dispatch ----------------------------------------------------------- */

static int dispatch(int argc, char **argv)
{
	if (argc < 1)
		return cmd_status(0, argv);
	if (matches(argv[0], "vm"))
		return cmd_vm(argc - 1, argv + 1);
	if (matches(argv[0], "service"))
		return cmd_service(argc - 1, argv + 1);
	if (matches(argv[0], "session"))
		return cmd_session(argc - 1, argv + 1);
	if (matches(argv[0], "status"))
		return cmd_status(argc - 1, argv + 1);
	return cerr("object \"%s\" is unknown, try \"ftctl help\"", argv[0]);
}

static void drop_client(int fd)
{
	epoll_ctl(ftd_epoll_fd, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
}

int ctl_handle_fd(int fd)
{
	static char buf[65536];
	char *argv[256], *outbuf = NULL, *errbuf = NULL, code[16];
	size_t outlen = 0, errlen = 0;
	FILE *saved = stdout, *out;
	int argc = 0, rc;
	ssize_t n;

	n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			pthread_mutex_lock(&mon_lock);
			for (int i = 0; i < nmon; i++)
				if (mons[i].fd == fd)
					mons[i] = mons[--nmon];
			pthread_mutex_unlock(&mon_lock);
			drop_client(fd);
		}
		return 0;
	}
	buf[n] = 0;
	if (n < 5 || memcmp(buf, "FTD1", 4)) {
		drop_client(fd);
		return 0;
	}
	req.json = buf[4] & 1;
	req.pretty = buf[4] & 2;
	req.failed = false;
	for (char *p = buf + 5; p < buf + n && argc < 255; p += strlen(p) + 1)
		argv[argc++] = p;
	argv[argc] = NULL;

	if (argc >= 1 && matches(argv[0], "monitor")) {
		pthread_mutex_lock(&mon_lock);
		if (nmon < CTL_MAX_MON) {
			mons[nmon].fd = fd;
			mons[nmon++].json = req.json;
			pthread_mutex_unlock(&mon_lock);
			return 0;
		}
		pthread_mutex_unlock(&mon_lock);
		send_msg(fd, 'E', "Error: too many monitors\n", 24);
		send_msg(fd, 'X', "1", 1);
		drop_client(fd);
		return 0;
	}

	out = open_memstream(&outbuf, &outlen);
	req.err = open_memstream(&errbuf, &errlen);
	if (!out || !req.err) {
		if (out)
			fclose(out);
		if (req.err)
			fclose(req.err);
		drop_client(fd);
		return 0;
	}
	/* json_print writes to stdout: point it at the reply for now. */
	fflush(stdout);
	stdout = out;
	pthread_mutex_lock(&ftd.lock);
	rc = dispatch(argc, argv);
	pthread_mutex_unlock(&ftd.lock);
	fflush(stdout);
	stdout = saved;
	fclose(out);
	fclose(req.err);
	if (outlen)
		send_msg(fd, 'O', outbuf, outlen);
	if (errlen)
		send_msg(fd, 'E', errbuf, errlen);
	snprintf(code, sizeof(code), "%d", rc || req.failed ? 1 : 0);
	send_msg(fd, 'X', code, strlen(code));
	free(outbuf);
	free(errbuf);
	drop_client(fd);
	return 0;
}
