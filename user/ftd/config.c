// SPDX-License-Identifier: GPL-2.0
/*
 * /etc/ftvm/ftd.conf: one statement per line, words separated by blanks,
 * '#' to the end of the line is a comment.  The "vm" and "service"
 * statements take exactly the words of "ftctl vm add" and "ftctl service
 * add", so a line can be pasted into a command and back; ftd rewrites
 * the file (atomically, comments of its own) when ftctl changes them.
 * Documentation/ftd.rst has the grammar.  Any error names its line and
 * ftd refuses to start.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ftd.h"

#define MAX_WORDS	48

static const char *const crit_names[] = {
	[CRIT_HASH] = "hash",
	[CRIT_LEAST_LOADED] = "least-loaded",
};

const char *crit_name(enum criterion c)
{
	return c == CRIT_HASH || c == CRIT_LEAST_LOADED ? crit_names[c] : "?";
}

const char *commit_mode_name(enum ftvm_commit_mode m)
{
	return m == FTVM_COMMIT_STRICT ? "strict" :
	       m == FTVM_COMMIT_RELAXED ? "relaxed" : "?";
}

const char *fail_reason_name(int r)
{
	switch (r) {
	case FTVM_FAIL_NONE: return "none";
	case FTVM_FAIL_DEV_DOWN: return "device-down";
	case FTVM_FAIL_DEV_UNREGISTERED: return "device-gone";
	case FTVM_FAIL_CARRIER_LOST: return "carrier-lost";
	case FTVM_FAIL_USER: return "reported";
	case FTVM_FAIL_KILLED: return "killed";
	case FTD_FAIL_HEARTBEAT: return "heartbeat";
	}
	return "unknown";
}

const char *vm_state_name(enum vm_state s)
{
	switch (s) {
	case VM_UP: return "up";
	case VM_FAILED: return "failed";
	case VM_DRAINING: return "draining";
	}
	return "unknown";
}

void cfg_defaults(struct ftd_cfg *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->path, sizeof(c->path), "%s", FTD_CONF);
	snprintf(c->sock, sizeof(c->sock), "%s", FTD_SOCK);
	snprintf(c->pin_dir, sizeof(c->pin_dir), "%s", FTVM_DP_PIN_DIR);
	c->criterion = CRIT_HASH;
	c->anti_affinity = true;
	c->repl_interval_ms = 100;
	c->reprotect_rate = 50000;
	c->reprotect_batch = 256;
	c->scan_ms = 1000;
	c->forget_ms = 10000;
	c->udp_idle_ms = 300000;
}

__attribute__((format(printf, 3, 4)))
static int seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= FTD_NAME_LEN)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("-_.", *s))
			return false;
	return true;
}

static int parse_ms(const char *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
	uint32_t x;

	if (parse_u32(v, &x) || x < lo || x > hi)
		return -1;
	*out = x;
	return 0;
}

static int parse_onoff(const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "yes")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "off") || !strcmp(v, "no")) {
		*out = false;
		return 0;
	}
	return -1;
}

static int parse_crit(const char *v, enum criterion *out)
{
	if (matches(v, "hash") || !strcmp(v, "consistent-hash")) {
		*out = CRIT_HASH;
		return 0;
	}
	if (matches(v, "least-loaded")) {
		*out = CRIT_LEAST_LOADED;
		return 0;
	}
	return -1;
}

static int parse_commit(const char *v, enum ftvm_commit_mode *out)
{
	if (matches(v, "strict")) {
		*out = FTVM_COMMIT_STRICT;
		return 0;
	}
	if (matches(v, "relaxed")) {
		*out = FTVM_COMMIT_RELAXED;
		return 0;
	}
	return -1;
}

int cfg_parse_sockaddr(const char *s, bool want_port,
		       struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *port = NULL;
	uint32_t p = 0;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *e = strchr(s, ']');

		if (!e || (size_t)(e - s - 1) >= sizeof(host))
			return -1;
		memcpy(host, s + 1, e - s - 1);
		host[e - s - 1] = 0;
		if (e[1] == ':')
			port = e + 2;
		else if (e[1])
			return -1;
	} else {
		const char *c = strrchr(s, ':');

		if (c && strchr(s, ':') == c) {
			if ((size_t)(c - s) >= sizeof(host))
				return -1;
			memcpy(host, s, c - s);
			host[c - s] = 0;
			port = c + 1;
		} else {
			if (strlen(s) >= sizeof(host))
				return -1;
			strcpy(host, s);
		}
	}
	if (want_port != (port != NULL))
		return -1;
	if (port && (parse_u32(port, &p) || !p || p > 65535))
		return -1;
	if (strchr(host, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return -1;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)p);
		*len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -1;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)p);
		*len = sizeof(*a);
	}
	return 0;
}

static void format_sockaddr(const struct sockaddr_storage *ss, char *buf,
			    size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		if (s6->sin6_port)
			snprintf(buf, len, "[%s]:%u", a, ntohs(s6->sin6_port));
		else
			snprintf(buf, len, "%s", a);
	} else {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		if (s4->sin_port)
			snprintf(buf, len, "%s:%u", a, ntohs(s4->sin_port));
		else
			snprintf(buf, len, "%s", a);
	}
}

int cfg_parse_service_key(const char *s, struct ftvm_service_key *k)
{
	struct sockaddr_storage ss;
	char buf[80];
	const char *slash = strrchr(s, '/');
	socklen_t len;

	memset(k, 0, sizeof(*k));
	if (!slash || (size_t)(slash - s) >= sizeof(buf))
		return -1;
	memcpy(buf, s, slash - s);
	buf[slash - s] = 0;
	if (!strcmp(slash + 1, "tcp"))
		k->proto = IPPROTO_TCP;
	else if (!strcmp(slash + 1, "udp"))
		k->proto = IPPROTO_UDP;
	else
		return -1;
	if (cfg_parse_sockaddr(buf, true, &ss, &len))
		return -1;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (void *)&ss;

		memcpy(k->vaddr, &a->sin6_addr, 16);
		k->port = a->sin6_port;
		k->family = FTVM_FAMILY_V6;
	} else {
		struct sockaddr_in *a = (void *)&ss;

		k->vaddr[0] = a->sin_addr.s_addr;
		k->port = a->sin_port;
		k->family = FTVM_FAMILY_V4;
	}
	return 0;
}

void cfg_format_service_key(const struct ftvm_service_key *k, char *buf,
			    size_t len)
{
	char a[INET6_ADDRSTRLEN];
	const char *proto = k->proto == IPPROTO_TCP ? "tcp" :
			    k->proto == IPPROTO_UDP ? "udp" : "?";

	if (k->family == FTVM_FAMILY_V6) {
		inet_ntop(AF_INET6, k->vaddr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u/%s", a, ntohs(k->port), proto);
	} else {
		inet_ntop(AF_INET, k->vaddr, a, sizeof(a));
		snprintf(buf, len, "%s:%u/%s", a, ntohs(k->port), proto);
	}
}

/*
 * VM words: NAME id ID dev DEV [mac MAC] [capacity N] [domain LABEL]
 * [netns NAME|PID] [silent-exit on|off]
 * [probe { icmp ADDR | tcp ADDR:PORT | none }] [interval MS] [misses N].
 * With @update, NAME selects an existing VM (copied into @vm first) and
 * every key is optional; "name NEW" renames.
 */
int cfg_parse_vm(struct ftd_cfg *c, int argc, char **argv, struct ftd_vm *vm,
		 bool update, char *err, size_t len)
{
	bool has_id = update, has_dev = update;

	if (argc < 1)
		return seterr(err, len, "a VM needs a name");
	if (!update) {
		memset(vm, 0, sizeof(*vm));
		if (!valid_name(argv[0]))
			return seterr(err, len, "invalid VM name \"%s\" (letters, digits, \"-_.\", at most %d)",
				      argv[0], FTD_NAME_LEN - 1);
		snprintf(vm->name, sizeof(vm->name), "%s", argv[0]);
		vm->capacity = 100;
		vm->state = VM_UP;
		vm->probe.interval_ms = 1000;
		vm->probe.misses = 3;
	}
	for (int i = 1; i < argc; i += 2) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			return seterr(err, len, "\"%s\" needs a value", k);
		if (!strcmp(k, "id")) {
			if (update)
				return seterr(err, len, "the id of a VM cannot change; delete and add it");
			if (parse_u32(v, &vm->id) || vm->id < FTVM_VM_ID_MIN ||
			    vm->id > FTVM_VM_ID_MAX)
				return seterr(err, len, "invalid VM id \"%s\": expected %u..%u",
					      v, FTVM_VM_ID_MIN, FTVM_VM_ID_MAX);
			has_id = true;
		} else if (!strcmp(k, "name") && update) {
			if (!valid_name(v))
				return seterr(err, len, "invalid VM name \"%s\"", v);
			snprintf(vm->name, sizeof(vm->name), "%s", v);
		} else if (!strcmp(k, "dev")) {
			if (!*v || strlen(v) >= IF_NAMESIZE || strchr(v, '/'))
				return seterr(err, len, "invalid device name \"%s\"", v);
			snprintf(vm->dev, sizeof(vm->dev), "%s", v);
			has_dev = true;
		} else if (!strcmp(k, "mac")) {
			if (parse_mac(v, vm->mac))
				return seterr(err, len, "invalid MAC address \"%s\"", v);
			vm->has_mac = true;
		} else if (!strcmp(k, "capacity")) {
			if (parse_ms(v, 1, 1000, &vm->capacity))
				return seterr(err, len, "invalid capacity \"%s\": expected 1..1000", v);
		} else if (!strcmp(k, "netns")) {
			if (!*v || strlen(v) >= sizeof(vm->netns) || strchr(v, '/'))
				return seterr(err, len, "invalid network namespace \"%s\": a name (ip netns) or a PID", v);
			snprintf(vm->netns, sizeof(vm->netns), "%s", v);
		} else if (!strcmp(k, "silent-exit")) {
			if (strcmp(v, "on") && strcmp(v, "off"))
				return seterr(err, len, "invalid silent-exit \"%s\": expected on or off", v);
			vm->silent_exit = !strcmp(v, "on");
		} else if (!strcmp(k, "domain")) {
			if (!valid_name(v))
				return seterr(err, len, "invalid failure domain \"%s\"", v);
			snprintf(vm->domain, sizeof(vm->domain), "%s", v);
		} else if (!strcmp(k, "probe")) {
			if (!strcmp(v, "none")) {
				vm->probe.kind = PROBE_NONE;
				continue;
			}
			if (strcmp(v, "icmp") && strcmp(v, "tcp"))
				return seterr(err, len, "invalid probe \"%s\": expected icmp ADDR, tcp ADDR:PORT or none", v);
			if (i + 2 >= argc)
				return seterr(err, len, "\"probe %s\" needs an address", v);
			vm->probe.kind = !strcmp(v, "icmp") ? PROBE_ICMP : PROBE_TCP;
			if (cfg_parse_sockaddr(argv[i + 2], vm->probe.kind == PROBE_TCP,
					   &vm->probe.addr, &vm->probe.addrlen))
				return seterr(err, len, "invalid probe address \"%s\"%s",
					      argv[i + 2],
					      vm->probe.kind == PROBE_TCP ?
					      ": expected ADDR:PORT" : "");
			i++;
		} else if (!strcmp(k, "interval")) {
			if (parse_ms(v, 10, 3600000, &vm->probe.interval_ms))
				return seterr(err, len, "invalid probe interval \"%s\": expected 10..3600000 ms", v);
		} else if (!strcmp(k, "misses")) {
			if (parse_ms(v, 1, 100, &vm->probe.misses))
				return seterr(err, len, "invalid miss count \"%s\": expected 1..100", v);
		} else {
			return seterr(err, len, "unknown VM attribute \"%s\"", k);
		}
	}
	if (!has_id)
		return seterr(err, len, "VM \"%s\" needs \"id ID\"", vm->name);
	if (!has_dev)
		return seterr(err, len, "VM \"%s\" needs \"dev DEV\"", vm->name);
	for (int i = FTVM_VM_ID_MIN; i <= FTVM_VM_ID_MAX; i++) {
		const struct ftd_vm *o = &c->vms[i];

		if (!o->used || (update && o->id == vm->id))
			continue;
		if (o->id == vm->id)
			return seterr(err, len, "VM id %u is taken by \"%s\"",
				      vm->id, o->name);
		if (!strcmp(o->name, vm->name))
			return seterr(err, len, "VM \"%s\" exists (id %u)",
				      o->name, o->id);
		if (!strcmp(o->dev, vm->dev))
			return seterr(err, len, "device %s is VM \"%s\"'s",
				      vm->dev, o->name);
	}
	return 0;
}

/* One "KEY VALUE" of a service's words into @s. */
static int parse_service_attr(struct ftd_service *s, const char *k,
			      const char *v, char *err, size_t len)
{
	if (!strcmp(k, "criterion")) {
		if (parse_crit(v, &s->criterion))
			return seterr(err, len, "invalid criterion \"%s\": expected hash or least-loaded", v);
	} else if (!strcmp(k, "anti-affinity")) {
		if (parse_onoff(v, &s->anti_affinity))
			return seterr(err, len, "invalid anti-affinity \"%s\": expected on or off", v);
	} else if (!strcmp(k, "replication-interval")) {
		if (parse_ms(v, 1, 60000, &s->repl_interval_ms))
			return seterr(err, len, "invalid replication interval \"%s\": expected 1..60000 ms", v);
	} else if (!strcmp(k, "commit")) {
		if (parse_commit(v, &s->commit))
			return seterr(err, len, "invalid commit \"%s\": expected strict or relaxed", v);
	} else if (!strcmp(k, "ckpt-wait")) {
		if (parse_ms(v, 0, FTVM_COMMIT_CKPT_WAIT_MAX, &s->ckpt_wait_ms))
			return seterr(err, len, "invalid ckpt-wait \"%s\": expected 0..%u ms",
				      v, FTVM_COMMIT_CKPT_WAIT_MAX);
	} else {
		return seterr(err, len, "unknown service attribute \"%s\"", k);
	}
	return 0;
}

/*
 * @s against the other services: its name and address are its own, and
 * strict ones stay within ftvm.ko's limit.
 */
static int check_service(const struct ftd_cfg *c, const struct ftd_service *s,
			 bool update, char *err, size_t len)
{
	int strict = s->commit == FTVM_COMMIT_STRICT;

	for (int j = 0; j < FTVM_MAX_SERVICES; j++) {
		const struct ftd_service *o = &c->svcs[j];
		char buf[80];

		if (!o->used || (update && !strcmp(o->name, s->name)))
			continue;
		if (!strcmp(o->name, s->name))
			return seterr(err, len, "service \"%s\" exists", s->name);
		if (!memcmp(&o->key, &s->key, sizeof(s->key))) {
			cfg_format_service_key(&s->key, buf, sizeof(buf));
			return seterr(err, len, "%s is taken by service \"%s\"",
				      buf, o->name);
		}
		strict += o->commit == FTVM_COMMIT_STRICT;
	}
	if (s->commit == FTVM_COMMIT_STRICT && strict > FTVM_COMMIT_SERVICES_MAX)
		return seterr(err, len, "service \"%s\": more than %d services with \"commit strict\"",
			      s->name, FTVM_COMMIT_SERVICES_MAX);
	return 0;
}

/*
 * Service words: NAME ADDR:PORT/PROTO [criterion C] [anti-affinity on|off]
 * [replication-interval MS] [commit strict|relaxed] [ckpt-wait MS]; with
 * @update: NAME then keys only.
 */
int cfg_parse_service(struct ftd_cfg *c, int argc, char **argv,
		      struct ftd_service *s, bool update, char *err,
		      size_t len)
{
	int i = 1;

	if (argc < 1)
		return seterr(err, len, "a service needs a name");
	if (!update) {
		memset(s, 0, sizeof(*s));
		if (!valid_name(argv[0]))
			return seterr(err, len, "invalid service name \"%s\"", argv[0]);
		snprintf(s->name, sizeof(s->name), "%s", argv[0]);
		if (argc < 2)
			return seterr(err, len, "service \"%s\" needs ADDR:PORT/PROTO", s->name);
		if (cfg_parse_service_key(argv[1], &s->key))
			return seterr(err, len, "invalid service address \"%s\": expected ADDR:PORT/tcp|udp ([ADDR6]:PORT for IPv6)",
				      argv[1]);
		s->criterion = c->criterion;
		s->anti_affinity = c->anti_affinity;
		s->repl_interval_ms = c->repl_interval_ms;
		s->commit = FTVM_COMMIT_RELAXED;
		s->ckpt_wait_ms = FTD_CKPT_WAIT_MS;
		i = 2;
	}
	for (; i < argc; i += 2) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			return seterr(err, len, "\"%s\" needs a value", k);
		if (parse_service_attr(s, k, v, err, len))
			return -1;
	}
	if (s->commit == FTVM_COMMIT_STRICT && s->key.proto != IPPROTO_TCP) {
		char key[80];

		cfg_format_service_key(&s->key, key, sizeof(key));
		return seterr(err, len, "service \"%s\" is %s: \"commit strict\" is for TCP services only (UDP output is never held)",
			      s->name, key);
	}
	return check_service(c, s, update, err, len);
}

void cfg_format_probe(const struct probe_cfg *p, char *buf, size_t len)
{
	char addr[80];

	if (p->kind == PROBE_NONE) {
		snprintf(buf, len, "none");
		return;
	}
	format_sockaddr(&p->addr, addr, sizeof(addr));
	snprintf(buf, len, "%s %s interval %u misses %u",
		 p->kind == PROBE_ICMP ? "icmp" : "tcp", addr, p->interval_ms,
		 p->misses);
}

void cfg_format_vm(const struct ftd_vm *vm, FILE *f)
{
	char buf[80];

	fprintf(f, "%s id %u dev %s", vm->name, vm->id, vm->dev);
	if (vm->has_mac) {
		format_mac(vm->mac, buf, sizeof(buf));
		fprintf(f, " mac %s", buf);
	}
	fprintf(f, " capacity %u", vm->capacity);
	if (vm->domain[0])
		fprintf(f, " domain %s", vm->domain);
	if (vm->netns[0])
		fprintf(f, " netns %s", vm->netns);
	if (vm->silent_exit)
		fprintf(f, " silent-exit on");
	if (vm->probe.kind != PROBE_NONE) {
		cfg_format_probe(&vm->probe, buf, sizeof(buf));
		fprintf(f, " probe %s", buf);
	}
}

void cfg_format_service(const struct ftd_service *s, FILE *f)
{
	char buf[80];

	cfg_format_service_key(&s->key, buf, sizeof(buf));
	fprintf(f, "%s %s criterion %s anti-affinity %s replication-interval %u commit %s ckpt-wait %u",
		s->name, buf, crit_name(s->criterion),
		s->anti_affinity ? "on" : "off", s->repl_interval_ms,
		commit_mode_name(s->commit), s->ckpt_wait_ms);
}

/* Split @line in place into words; '#' starts a comment. */
static int split(char *line, char **w, int max)
{
	int n = 0;

	for (char *p = line; *p;) {
		while (*p && isspace((unsigned char)*p))
			p++;
		if (!*p || *p == '#')
			break;
		if (n == max)
			return -1;
		w[n++] = p;
		while (*p && !isspace((unsigned char)*p) && *p != '#')
			p++;
		if (*p == '#') {
			*p = 0;
			break;
		}
		if (*p)
			*p++ = 0;
	}
	return n;
}

static int cfg_statement(struct ftd_cfg *c, int n, char **w, char *err,
			 size_t len)
{
	const char *k = w[0];

	if (!strcmp(k, "vm")) {
		struct ftd_vm vm;

		if (cfg_parse_vm(c, n - 1, w + 1, &vm, false, err, len))
			return -1;
		vm.used = true;
		c->vms[vm.id] = vm;
		return 0;
	}
	if (!strcmp(k, "service")) {
		struct ftd_service s;
		int j;

		if (cfg_parse_service(c, n - 1, w + 1, &s, false, err, len))
			return -1;
		for (j = 0; j < FTVM_MAX_SERVICES && c->svcs[j].used; j++)
			;
		if (j == FTVM_MAX_SERVICES)
			return seterr(err, len, "more than %d services", FTVM_MAX_SERVICES);
		s.used = true;
		s.index = (uint32_t)j;
		c->svcs[j] = s;
		return 0;
	}
	if (!strcmp(k, "attach")) {
		if (n < 2 || n > 3 || (n == 3 && strcmp(w[2], "generic") &&
				       strcmp(w[2], "native")))
			return seterr(err, len, "usage: attach DEV [generic|native]");
		if (c->nattach == FTD_MAX_ATTACH)
			return seterr(err, len, "at most %d attach lines", FTD_MAX_ATTACH);
		if (strlen(w[1]) >= IF_NAMESIZE)
			return seterr(err, len, "invalid device name \"%s\"", w[1]);
		snprintf(c->attach[c->nattach].dev, IF_NAMESIZE, "%s", w[1]);
		c->attach[c->nattach++].generic = n == 3 && !strcmp(w[2], "generic");
		return 0;
	}
	if (n != 2)
		return seterr(err, len, n == 1 ? "\"%s\" needs a value" :
			      "\"%s\" takes one value", k);
	if (!strcmp(k, "criterion")) {
		if (parse_crit(w[1], &c->criterion))
			return seterr(err, len, "invalid criterion \"%s\": expected hash or least-loaded", w[1]);
	} else if (!strcmp(k, "anti-affinity")) {
		if (parse_onoff(w[1], &c->anti_affinity))
			return seterr(err, len, "invalid anti-affinity \"%s\": expected on or off", w[1]);
	} else if (!strcmp(k, "replication-interval")) {
		if (parse_ms(w[1], 1, 60000, &c->repl_interval_ms))
			return seterr(err, len, "invalid replication interval \"%s\": expected 1..60000 ms", w[1]);
	} else if (!strcmp(k, "reprotect-rate")) {
		if (parse_ms(w[1], 0, 100000000, &c->reprotect_rate))
			return seterr(err, len, "invalid reprotect-rate \"%s\": sessions per second, 0 for unpaced", w[1]);
	} else if (!strcmp(k, "reprotect-batch")) {
		if (parse_ms(w[1], 1, 1000000, &c->reprotect_batch))
			return seterr(err, len, "invalid reprotect-batch \"%s\": expected 1..1000000", w[1]);
	} else if (!strcmp(k, "scan-interval")) {
		if (parse_ms(w[1], 10, 60000, &c->scan_ms))
			return seterr(err, len, "invalid scan-interval \"%s\": expected 10..60000 ms", w[1]);
	} else if (!strcmp(k, "forget-closed")) {
		uint32_t ms;

		if (parse_ms(w[1], 0, 86400000, &ms) || (ms && ms < 1000))
			return seterr(err, len, "invalid forget-closed \"%s\": expected 1000..86400000 ms, or 0 for never", w[1]);
		c->forget_ms = ms;
	} else if (!strcmp(k, "forget-idle-udp")) {
		uint32_t ms;

		if (parse_ms(w[1], 0, 86400000, &ms) || (ms && ms < 1000))
			return seterr(err, len, "invalid forget-idle-udp \"%s\": expected 1000..86400000 ms, or 0 for never", w[1]);
		c->udp_idle_ms = ms;
	} else if (!strcmp(k, "control")) {
		if (w[1][0] != '/' || strlen(w[1]) >= sizeof(c->sock))
			return seterr(err, len, "control needs an absolute path shorter than %zu bytes", sizeof(c->sock));
		snprintf(c->sock, sizeof(c->sock), "%s", w[1]);
	} else if (!strcmp(k, "pin-dir")) {
		if (w[1][0] != '/' || strlen(w[1]) >= sizeof(c->pin_dir))
			return seterr(err, len, "pin-dir needs an absolute path on a bpffs");
		snprintf(c->pin_dir, sizeof(c->pin_dir), "%s", w[1]);
	} else {
		return seterr(err, len, "unknown keyword \"%s\"", k);
	}
	return 0;
}

int cfg_load(const char *path, struct ftd_cfg *c, struct cfg_err *e)
{
	char line[1024], msg[200];
	char *w[MAX_WORDS];
	unsigned int lineno = 0;
	FILE *f;
	int n;

	snprintf(c->path, sizeof(c->path), "%s", path);
	f = fopen(path, "r");
	if (!f) {
		if (errno == ENOENT)
			return -ENOENT;
		snprintf(e->msg, sizeof(e->msg), "%s: %s", path, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(e->msg, sizeof(e->msg), "%s:%u: line longer than %zu bytes",
				 path, lineno, sizeof(line) - 2);
			fclose(f);
			return -EINVAL;
		}
		n = split(line, w, MAX_WORDS);
		if (n < 0) {
			snprintf(e->msg, sizeof(e->msg), "%s:%u: more than %d words",
				 path, lineno, MAX_WORDS);
			fclose(f);
			return -EINVAL;
		}
		if (!n)
			continue;
		if (cfg_statement(c, n, w, msg, sizeof(msg))) {
			snprintf(e->msg, sizeof(e->msg), "%s:%u: %s", path,
				 lineno, msg);
			fclose(f);
			return -EINVAL;
		}
	}
	fclose(f);
	return 0;
}

int cfg_save(const struct ftd_cfg *c)
{
	char tmp[300];
	struct ftd_cfg d;
	FILE *f;
	int err = 0;

	cfg_defaults(&d);
	snprintf(tmp, sizeof(tmp), "%s.tmp", c->path);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "# ftd.conf: written by ftd (ftctl changes); see ftd(8).\n"
		"# Edit with ftd stopped, or use ftctl while it runs.\n");
	if (strcmp(c->sock, d.sock))
		fprintf(f, "control %s\n", c->sock);
	if (strcmp(c->pin_dir, d.pin_dir))
		fprintf(f, "pin-dir %s\n", c->pin_dir);
	for (int i = 0; i < c->nattach; i++)
		fprintf(f, "attach %s%s\n", c->attach[i].dev,
			c->attach[i].generic ? " generic" : "");
	fprintf(f, "criterion %s\nanti-affinity %s\nreplication-interval %u\n"
		"reprotect-rate %u\nreprotect-batch %u\nscan-interval %u\n"
		"forget-closed %u\nforget-idle-udp %u\n",
		crit_name(c->criterion), c->anti_affinity ? "on" : "off",
		c->repl_interval_ms, c->reprotect_rate, c->reprotect_batch,
		c->scan_ms, c->forget_ms, c->udp_idle_ms);
	for (int i = FTVM_VM_ID_MIN; i <= FTVM_VM_ID_MAX; i++) {
		if (!c->vms[i].used)
			continue;
		fputs("vm ", f);
		cfg_format_vm(&c->vms[i], f);
		fputc('\n', f);
	}
	for (int i = 0; i < FTVM_MAX_SERVICES; i++) {
		if (!c->svcs[i].used)
			continue;
		fputs("service ", f);
		cfg_format_service(&c->svcs[i], f);
		fputc('\n', f);
	}
	if (fflush(f) || fsync(fileno(f)))
		err = -errno;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, c->path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}
