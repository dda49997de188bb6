// SPDX-License-Identifier: GPL-2.0
/*
 * libbpf side of the ftvm data plane; see steer.h and
 * Documentation/dataplane.rst.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "../../kmod/uapi/ftvm.h"
#include "steer.h"
#include "steer_int.h"

_Static_assert(FTVM_VM_SLOTS == FTVM_VM_ID_MAX + 1, "VM ids out of step");
_Static_assert(sizeof(struct ftvm_flow) == 40, "flow layout");
_Static_assert(sizeof(struct ftvm_flow4) == 16, "IPv4 flow layout");
_Static_assert(sizeof(struct ftvm_service_key) == 20, "service key layout");

enum dp_map {
	DP_ABI,
	DP_SERVICES,
	DP_SESSIONS4,
	DP_SESSIONS6,
	DP_PLACEMENTS,
	DP_MAGLEV,
	DP_VMS,
	DP_VM_BY_IFINDEX,
	DP_SVC_STATS,
	DP_VM_STATS,
	DP_DP_STATS,
	DP_NEW_SESSIONS,
	DP_NMAPS,
};

/* What this build expects of every map: the ABI, checked on open. */
static const struct {
	const char *name;
	enum bpf_map_type type;
	uint32_t key_size, value_size, max_entries;
} dp_maps[DP_NMAPS] = {
	[DP_ABI] = { FTVM_DP_ABI_MAP, BPF_MAP_TYPE_ARRAY, 4,
		     sizeof(struct ftvm_abi_v8), 1 },
	[DP_SERVICES] = { "ftvm_services", BPF_MAP_TYPE_HASH,
			  sizeof(struct ftvm_service_key),
			  sizeof(struct ftvm_service), FTVM_MAX_SERVICES },
	[DP_SESSIONS4] = { "ftvm_sessions4", BPF_MAP_TYPE_LRU_HASH,
			   sizeof(struct ftvm_flow4),
			   sizeof(struct ftvm_session), FTVM_MAX_SESSIONS },
	[DP_SESSIONS6] = { "ftvm_sessions6", BPF_MAP_TYPE_LRU_HASH,
			   sizeof(struct ftvm_flow),
			   sizeof(struct ftvm_session), FTVM_MAX_SESSIONS },
	[DP_PLACEMENTS] = { "ftvm_placements", BPF_MAP_TYPE_ARRAY, 4,
			    sizeof(struct ftvm_placement),
			    FTVM_MAX_PLACEMENTS },
	[DP_MAGLEV] = { "ftvm_maglev", BPF_MAP_TYPE_ARRAY, 4, 4,
			FTVM_MAX_SERVICES * FTVM_MAGLEV_SIZE },
	[DP_VMS] = { "ftvm_vms", BPF_MAP_TYPE_ARRAY, 4, sizeof(struct ftvm_vm),
		     FTVM_VM_SLOTS },
	[DP_VM_BY_IFINDEX] = { "ftvm_vm_by_ifindex", BPF_MAP_TYPE_HASH, 4, 4,
			       FTVM_VM_SLOTS },
	[DP_SVC_STATS] = { "ftvm_svc_stats", BPF_MAP_TYPE_PERCPU_ARRAY, 4,
			   sizeof(struct ftvm_counters), FTVM_MAX_SERVICES },
	[DP_VM_STATS] = { "ftvm_vm_stats", BPF_MAP_TYPE_PERCPU_ARRAY, 4,
			  sizeof(struct ftvm_counters), FTVM_VM_SLOTS },
	[DP_DP_STATS] = { "ftvm_dp_stats", BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8,
			  __FTVM_DP_STAT_MAX },
	[DP_NEW_SESSIONS] = { "ftvm_new_sessions", BPF_MAP_TYPE_RINGBUF, 0, 0,
			      FTVM_NEW_SESSIONS_RING },
};

struct ftvm_dp {
	int fd[DP_NMAPS];
	bool owns_fds;
	int ncpus;
};

static __thread char dp_errbuf[512];

const char *ftvm_dp_errmsg(void)
{
	return dp_errbuf[0] ? dp_errbuf : "unknown error";
}

int ftvm_dp__err(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dp_errbuf, sizeof(dp_errbuf), fmt, ap);
	va_end(ap);
	return err;
}

const char *ftvm_dp_pin_dir(const char *override)
{
	const char *env;

	if (override && *override)
		return override;
	env = getenv("FTVM_PIN_DIR");
	return env && *env ? env : FTVM_DP_PIN_DIR;
}

/* Check one map against dp_maps[i]; for the ABI marker, read its BTF. */
static int check_map(int fd, int i)
{
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);
	const struct btf_type *t;
	const char *name = NULL;
	struct btf *btf;

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return dp_err(-errno, "cannot read map %s: %s", dp_maps[i].name,
			      strerror(errno));
	if (i == DP_ABI) {
		if (!info.btf_id || !info.btf_value_type_id)
			return dp_err(-EPROTO, "map ftvm_abi has no BTF: not an ftvm data plane");
		btf = btf__load_from_kernel_by_id(info.btf_id);
		if (!btf)
			return dp_err(-errno, "cannot load the BTF of ftvm_abi: %s",
				      strerror(errno));
		t = btf__type_by_id(btf, info.btf_value_type_id);
		if (t)
			name = btf__name_by_offset(btf, t->name_off);
		if (!name || strcmp(name, FTVM_DP_ABI_TYPE)) {
			unsigned int v = 0;

			if (name && sscanf(name, "ftvm_abi_v%u", &v) == 1)
				dp_err(-EPROTO, "the pinned data plane is ABI version %u; this build understands version %u",
				       v, FTVM_DP_ABI_VERSION);
			else
				dp_err(-EPROTO, "the pinned ftvm_abi map has an unknown type \"%s\"",
				       name ? name : "?");
			btf__free(btf);
			return -EPROTO;
		}
		btf__free(btf);
	}
	if (info.type != dp_maps[i].type ||
	    info.key_size != dp_maps[i].key_size ||
	    info.value_size != dp_maps[i].value_size ||
	    info.max_entries != dp_maps[i].max_entries)
		return dp_err(-EPROTO, "map %s has another layout than this build expects (type %u key %u value %u entries %u)",
			      dp_maps[i].name, info.type, info.key_size,
			      info.value_size, info.max_entries);
	return 0;
}

static int dp_new(struct ftvm_dp **dpp)
{
	struct ftvm_dp *dp = calloc(1, sizeof(*dp));

	if (!dp)
		return dp_err(-ENOMEM, "out of memory");
	for (int i = 0; i < DP_NMAPS; i++)
		dp->fd[i] = -1;
	dp->ncpus = libbpf_num_possible_cpus();
	if (dp->ncpus <= 0) {
		free(dp);
		return dp_err(-EINVAL, "cannot count the possible CPUs");
	}
	*dpp = dp;
	return 0;
}

int ftvm_dp_open(const char *pin_dir, struct ftvm_dp **dpp)
{
	struct ftvm_dp *dp;
	char path[PATH_MAX];
	int err;

	pin_dir = ftvm_dp_pin_dir(pin_dir);
	err = dp_new(&dp);
	if (err)
		return err;
	dp->owns_fds = true;
	for (int i = 0; i < DP_NMAPS; i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, dp_maps[i].name);
		dp->fd[i] = bpf_obj_get(path);
		if (dp->fd[i] < 0) {
			err = -errno;
			if (err == -ENOENT)
				dp_err(err, "%s is not pinned: is ftvm_steer loaded? (\"ftctl attach DEV\")",
				       path);
			else
				dp_err(err, "cannot open %s: %s", path,
				       strerror(-err));
			goto fail;
		}
		err = check_map(dp->fd[i], i);
		if (err)
			goto fail;
	}
	*dpp = dp;
	return 0;
fail:
	ftvm_dp_close(dp);
	return err;
}

int ftvm_dp_open_obj(struct bpf_object *obj, struct ftvm_dp **dpp)
{
	struct ftvm_dp *dp;
	int err;

	err = dp_new(&dp);
	if (err)
		return err;
	for (int i = 0; i < DP_NMAPS; i++) {
		dp->fd[i] = bpf_object__find_map_fd_by_name(obj,
							    dp_maps[i].name);
		if (dp->fd[i] < 0) {
			err = dp_err(-ENOENT, "object has no map %s",
				     dp_maps[i].name);
			goto fail;
		}
		err = check_map(dp->fd[i], i);
		if (err)
			goto fail;
	}
	*dpp = dp;
	return 0;
fail:
	ftvm_dp_close(dp);
	return err;
}

int ftvm_dp_vms_fd(struct ftvm_dp *dp)
{
	return dp->fd[DP_VMS];
}

void ftvm_dp_close(struct ftvm_dp *dp)
{
	if (!dp)
		return;
	if (dp->owns_fds)
		for (int i = 0; i < DP_NMAPS; i++)
			if (dp->fd[i] >= 0)
				close(dp->fd[i]);
	free(dp);
}

/*
 * Other pins: maps of earlier ABI versions that this one no longer has,
 * and the links of ftvm_steer's redirect-error tracers (steer_attach.c).
 */
static const char *const dp_other_pins[] = {
	"ftvm_sessions",	/* v1: one session map for both families */
	"ftvm_devmap",		/* v1, v2: a pinned devmap */
	"ftvm_redirect_err",	/* link: xdp:xdp_redirect_err */
	"ftvm_devmap_xmit",	/* link: xdp:xdp_devmap_xmit */
};

static int unpin_one(const char *pin_dir, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	if (unlink(path) && errno != ENOENT)
		return dp_err(-errno, "cannot unpin %s: %s", path,
			      strerror(errno));
	return 0;
}

int ftvm_dp_unpin(const char *pin_dir)
{
	int err = 0, e;

	pin_dir = ftvm_dp_pin_dir(pin_dir);
	for (int i = 0; i < DP_NMAPS; i++) {
		e = unpin_one(pin_dir, dp_maps[i].name);
		err = err ? err : e;
	}
	for (size_t i = 0; i < sizeof(dp_other_pins) / sizeof(*dp_other_pins); i++) {
		e = unpin_one(pin_dir, dp_other_pins[i]);
		err = err ? err : e;
	}
	return err;
}

/* Per-CPU values ----------------------------------------------------- */

static int percpu_sum(struct ftvm_dp *dp, int map, uint32_t key,
		      uint64_t *sum, size_t nwords)
{
	size_t stride = (dp_maps[map].value_size + 7) / 8;
	uint64_t *vals = calloc((size_t)dp->ncpus * stride, 8);

	if (!vals)
		return dp_err(-ENOMEM, "out of memory");
	if (bpf_map_lookup_elem(dp->fd[map], &key, vals)) {
		int err = -errno;

		free(vals);
		return dp_err(err, "cannot read %s[%u]: %s", dp_maps[map].name,
			      key, strerror(-err));
	}
	memset(sum, 0, nwords * 8);
	for (int c = 0; c < dp->ncpus; c++)
		for (size_t w = 0; w < nwords; w++)
			sum[w] += vals[c * stride + w];
	free(vals);
	return 0;
}

static int percpu_zero(struct ftvm_dp *dp, int map, uint32_t key)
{
	size_t stride = (dp_maps[map].value_size + 7) / 8;
	uint64_t *vals = calloc((size_t)dp->ncpus * stride, 8);
	int err = 0;

	if (!vals)
		return dp_err(-ENOMEM, "out of memory");
	if (bpf_map_update_elem(dp->fd[map], &key, vals, BPF_ANY))
		err = dp_err(-errno, "cannot clear %s[%u]: %s",
			     dp_maps[map].name, key, strerror(errno));
	free(vals);
	return err;
}

int ftvm_dp_service_stats(struct ftvm_dp *dp, uint32_t index,
			  struct ftvm_counters *c)
{
	if (index >= FTVM_MAX_SERVICES)
		return dp_err(-EINVAL, "service index %u out of range", index);
	return percpu_sum(dp, DP_SVC_STATS, index, (uint64_t *)c,
			  sizeof(*c) / 8);
}

int ftvm_dp_vm_stats(struct ftvm_dp *dp, uint32_t vm_id,
		     struct ftvm_counters *c)
{
	if (vm_id < FTVM_VM_ID_MIN || vm_id > FTVM_VM_ID_MAX)
		return dp_err(-EINVAL, "VM id %u out of range %u..%u", vm_id,
			      FTVM_VM_ID_MIN, FTVM_VM_ID_MAX);
	return percpu_sum(dp, DP_VM_STATS, vm_id, (uint64_t *)c,
			  sizeof(*c) / 8);
}

int ftvm_dp_global_stats(struct ftvm_dp *dp, uint64_t v[__FTVM_DP_STAT_MAX])
{
	for (uint32_t i = 0; i < __FTVM_DP_STAT_MAX; i++) {
		int err = percpu_sum(dp, DP_DP_STATS, i, &v[i], 1);

		if (err)
			return err;
	}
	return 0;
}

const char *ftvm_dp_stat_name(unsigned int stat)
{
	static const char *const names[__FTVM_DP_STAT_MAX] = {
		[FTVM_DP_NOT_IP] = "not_ip",
		[FTVM_DP_MALFORMED] = "malformed",
		[FTVM_DP_FRAGMENT] = "fragment",
		[FTVM_DP_NOT_L4] = "not_tcp_udp",
		[FTVM_DP_NOT_SERVICE] = "not_service",
		[FTVM_DP_SESSION_NEW] = "session_new",
		[FTVM_DP_SESSION_RACE] = "session_race",
		[FTVM_DP_SESSION_FULL] = "session_full",
		[FTVM_DP_FENCE_DROP] = "fence_drop",
		[FTVM_DP_EVENT_LOST] = "event_lost",
		[FTVM_DP_TO_BACKUP] = "to_backup",
		[FTVM_DP_REDIRECT_ERR] = "redirect_err",
	};

	return stat < __FTVM_DP_STAT_MAX && names[stat] ? names[stat] : "?";
}

/* Services ----------------------------------------------------------- */

int ftvm_dp_service_parse(const char *s, struct ftvm_service_key *key)
{
	char buf[INET6_ADDRSTRLEN + 32], *addr, *port, *proto, *end;
	unsigned long p;

	memset(key, 0, sizeof(*key));
	if (strlen(s) >= sizeof(buf))
		return dp_err(-EINVAL, "\"%s\" is not VIP:PORT/tcp|udp", s);
	strcpy(buf, s);
	proto = strrchr(buf, '/');
	if (!proto)
		return dp_err(-EINVAL, "\"%s\" lacks the protocol: VIP:PORT/tcp|udp", s);
	*proto++ = '\0';
	if (!strcmp(proto, "tcp"))
		key->proto = IPPROTO_TCP;
	else if (!strcmp(proto, "udp"))
		key->proto = IPPROTO_UDP;
	else
		return dp_err(-EINVAL, "unknown protocol \"%s\" (tcp or udp)", proto);

	if (buf[0] == '[') {
		addr = buf + 1;
		end = strchr(addr, ']');
		if (!end || end[1] != ':')
			return dp_err(-EINVAL, "\"%s\": IPv6 services are [ADDR]:PORT/proto", s);
		*end = '\0';
		port = end + 2;
		key->family = FTVM_FAMILY_V6;
		if (inet_pton(AF_INET6, addr, key->vaddr) != 1)
			return dp_err(-EINVAL, "\"%s\" is not an IPv6 address", addr);
	} else {
		addr = buf;
		port = strrchr(buf, ':');
		if (!port)
			return dp_err(-EINVAL, "\"%s\" lacks the port: VIP:PORT/tcp|udp", s);
		*port++ = '\0';
		key->family = FTVM_FAMILY_V4;
		if (strchr(addr, ':'))
			return dp_err(-EINVAL, "\"%s\": write IPv6 addresses in brackets, [ADDR]:PORT", addr);
		if (inet_pton(AF_INET, addr, key->vaddr) != 1)
			return dp_err(-EINVAL, "\"%s\" is not an IPv4 address", addr);
	}
	errno = 0;
	p = strtoul(port, &end, 10);
	if (!*port || *end || errno || p == 0 || p > 65535 ||
	    *port == '-' || *port == '+')
		return dp_err(-EINVAL, "\"%s\" is not a port (1..65535)", port);
	key->port = htons((uint16_t)p);
	return 0;
}

static void addr_format(uint8_t family, const __be32 *a, char *buf,
			size_t len)
{
	if (!inet_ntop(family == FTVM_FAMILY_V6 ? AF_INET6 : AF_INET, a, buf,
		       (socklen_t)len))
		snprintf(buf, len, "?");
}

void ftvm_dp_service_format(const struct ftvm_service_key *key, char *buf,
			    size_t len)
{
	char a[INET6_ADDRSTRLEN];
	const char *proto = key->proto == IPPROTO_TCP ? "tcp" :
			    key->proto == IPPROTO_UDP ? "udp" : "?";

	addr_format(key->family, key->vaddr, a, sizeof(a));
	if (key->family == FTVM_FAMILY_V6)
		snprintf(buf, len, "[%s]:%u/%s", a, ntohs(key->port), proto);
	else
		snprintf(buf, len, "%s:%u/%s", a, ntohs(key->port), proto);
}

void ftvm_dp_flow_format(const struct ftvm_flow *f, char *src, char *dst,
			 size_t len)
{
	struct ftvm_service_key k = { .proto = f->proto, .family = f->family };

	memcpy(k.vaddr, f->saddr, sizeof(k.vaddr));
	k.port = f->sport;
	ftvm_dp_service_format(&k, src, len);
	memcpy(k.vaddr, f->daddr, sizeof(k.vaddr));
	k.port = f->dport;
	ftvm_dp_service_format(&k, dst, len);
}

int ftvm_dp_service_get(struct ftvm_dp *dp, const struct ftvm_service_key *key,
			struct ftvm_service *svc)
{
	char name[80];

	if (!bpf_map_lookup_elem(dp->fd[DP_SERVICES], key, svc))
		return 0;
	ftvm_dp_service_format(key, name, sizeof(name));
	return dp_err(-errno, errno == ENOENT ? "service %s is not registered" :
		      "cannot look up service %s", name);
}

/* Collect every key of a hash map (so callers may delete meanwhile). */
static int hash_keys(int fd, size_t key_size, void **keys, size_t *n)
{
	size_t cap = 64, cnt = 0;
	char *buf = malloc(cap * key_size), *prev = NULL;

	if (!buf)
		return dp_err(-ENOMEM, "out of memory");
	for (;;) {
		if (cnt == cap) {
			char *nb = realloc(buf, 2 * cap * key_size);

			if (!nb) {
				free(buf);
				return dp_err(-ENOMEM, "out of memory");
			}
			buf = nb;
			cap *= 2;
		}
		prev = cnt ? buf + (cnt - 1) * key_size : NULL;
		if (bpf_map_get_next_key(fd, prev, buf + cnt * key_size)) {
			if (errno == ENOENT)
				break;
			/* The previous key vanished (LRU): start over. */
			if (!cnt) {
				free(buf);
				return dp_err(-errno, "cannot walk a map: %s",
					      strerror(errno));
			}
			cnt--;
			continue;
		}
		cnt++;
	}
	*keys = buf;
	*n = cnt;
	return 0;
}

struct svc_ent {
	struct ftvm_service_key key;
	struct ftvm_service svc;
};

static int svc_cmp(const void *a, const void *b)
{
	const struct svc_ent *x = a, *y = b;

	return (x->svc.index > y->svc.index) - (x->svc.index < y->svc.index);
}

int ftvm_dp_service_foreach(struct ftvm_dp *dp, ftvm_dp_service_cb cb,
			    void *arg)
{
	struct ftvm_service_key *keys;
	struct svc_ent *ents;
	size_t n, m = 0;
	int err;

	err = hash_keys(dp->fd[DP_SERVICES], sizeof(*keys), (void **)&keys,
			&n);
	if (err)
		return err;
	ents = calloc(n ? n : 1, sizeof(*ents));
	if (!ents) {
		free(keys);
		return dp_err(-ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		if (bpf_map_lookup_elem(dp->fd[DP_SERVICES], &keys[i],
					&ents[m].svc))
			continue;
		ents[m++].key = keys[i];
	}
	qsort(ents, m, sizeof(*ents), svc_cmp);
	for (size_t i = 0; i < m && !err; i++)
		err = cb(&ents[i].key, &ents[i].svc, arg);
	free(ents);
	free(keys);
	return err;
}

static int maglev_write(struct ftvm_dp *dp, uint32_t index,
			const uint32_t *table)
{
	uint32_t *keys = malloc(FTVM_MAGLEV_SIZE * sizeof(*keys));
	uint32_t count = FTVM_MAGLEV_SIZE;
	int err = 0;

	if (!keys)
		return dp_err(-ENOMEM, "out of memory");
	for (uint32_t i = 0; i < FTVM_MAGLEV_SIZE; i++)
		keys[i] = index * FTVM_MAGLEV_SIZE + i;
	if (bpf_map_update_batch(dp->fd[DP_MAGLEV], keys, table, &count,
				 NULL)) {
		/* Kernels without batch ops for arrays: one by one. */
		for (uint32_t i = 0; i < FTVM_MAGLEV_SIZE; i++) {
			if (bpf_map_update_elem(dp->fd[DP_MAGLEV], &keys[i],
						&table[i], BPF_ANY)) {
				err = dp_err(-errno, "cannot write Maglev row %u: %s",
					     index, strerror(errno));
				break;
			}
		}
	}
	free(keys);
	return err;
}

int ftvm_dp_maglev_read(struct ftvm_dp *dp, uint32_t index, uint32_t *table)
{
	if (index >= FTVM_MAX_SERVICES)
		return dp_err(-EINVAL, "service index %u out of range", index);
	for (uint32_t i = 0; i < FTVM_MAGLEV_SIZE; i++) {
		uint32_t k = index * FTVM_MAGLEV_SIZE + i;

		if (bpf_map_lookup_elem(dp->fd[DP_MAGLEV], &k, &table[i]))
			return dp_err(-errno, "cannot read Maglev row %u: %s",
				      index, strerror(errno));
	}
	return 0;
}

struct svc_used {
	bool used[FTVM_MAX_SERVICES];
};

static int mark_used(const struct ftvm_service_key *key,
		     const struct ftvm_service *svc, void *arg)
{
	struct svc_used *u = arg;

	(void)key;
	if (svc->index < FTVM_MAX_SERVICES)
		u->used[svc->index] = true;
	return 0;
}

int ftvm_dp_service_add(struct ftvm_dp *dp, const struct ftvm_service_key *key,
			uint32_t *index)
{
	struct ftvm_service svc = {};
	struct svc_used used = {};
	uint32_t *zeros;
	char name[80];
	int err;

	ftvm_dp_service_format(key, name, sizeof(name));
	if ((key->family != FTVM_FAMILY_V4 && key->family != FTVM_FAMILY_V6) ||
	    (key->proto != IPPROTO_TCP && key->proto != IPPROTO_UDP) ||
	    !key->port)
		return dp_err(-EINVAL, "service %s is not valid", name);
	if (!bpf_map_lookup_elem(dp->fd[DP_SERVICES], key, &svc))
		return dp_err(-EEXIST, "service %s exists (index %u)", name,
			      svc.index);
	err = ftvm_dp_service_foreach(dp, mark_used, &used);
	if (err)
		return err;
	for (svc.index = 0; svc.index < FTVM_MAX_SERVICES; svc.index++)
		if (!used.used[svc.index])
			break;
	if (svc.index == FTVM_MAX_SERVICES)
		return dp_err(-ENOSPC, "all %u service slots are in use",
			      FTVM_MAX_SERVICES);

	/* An empty row and fresh counters before the service is visible. */
	zeros = calloc(FTVM_MAGLEV_SIZE, sizeof(*zeros));
	if (!zeros)
		return dp_err(-ENOMEM, "out of memory");
	err = maglev_write(dp, svc.index, zeros);
	free(zeros);
	if (!err)
		err = percpu_zero(dp, DP_SVC_STATS, svc.index);
	if (err)
		return err;
	if (bpf_map_update_elem(dp->fd[DP_SERVICES], key, &svc, BPF_NOEXIST))
		return dp_err(-errno, "cannot add service %s: %s", name,
			      strerror(errno));
	if (index)
		*index = svc.index;
	return 0;
}

static bool flow_of_service(const struct ftvm_flow *f,
			    const struct ftvm_service_key *k)
{
	return f->family == k->family && f->proto == k->proto &&
	       f->dport == k->port &&
	       !memcmp(f->daddr, k->vaddr, sizeof(f->daddr));
}

int ftvm_dp_service_del(struct ftvm_dp *dp, const struct ftvm_service_key *key)
{
	struct ftvm_service svc;
	struct ftvm_flow *flows;
	uint32_t *zeros;
	size_t n;
	int err;

	err = ftvm_dp_service_get(dp, key, &svc);
	if (err)
		return err;
	/* First no new sessions, then the existing ones, then the row. */
	if (bpf_map_delete_elem(dp->fd[DP_SERVICES], key))
		return dp_err(-errno, "cannot delete the service: %s",
			      strerror(errno));
	if (key->family == FTVM_FAMILY_V4) {
		struct ftvm_flow4 *k4;

		err = hash_keys(dp->fd[DP_SESSIONS4], sizeof(*k4),
				(void **)&k4, &n);
		if (err)
			return err;
		for (size_t i = 0; i < n; i++)
			if (k4[i].daddr == key->vaddr[0] &&
			    k4[i].dport == key->port &&
			    k4[i].proto == key->proto)
				bpf_map_delete_elem(dp->fd[DP_SESSIONS4], &k4[i]);
		free(k4);
	} else {
		err = hash_keys(dp->fd[DP_SESSIONS6], sizeof(*flows),
				(void **)&flows, &n);
		if (err)
			return err;
		for (size_t i = 0; i < n; i++)
			if (flow_of_service(&flows[i], key))
				bpf_map_delete_elem(dp->fd[DP_SESSIONS6],
						    &flows[i]);
		free(flows);
	}
	zeros = calloc(FTVM_MAGLEV_SIZE, sizeof(*zeros));
	if (!zeros)
		return dp_err(-ENOMEM, "out of memory");
	if (svc.index < FTVM_MAX_SERVICES)
		err = maglev_write(dp, svc.index, zeros);
	free(zeros);
	return err;
}

/* Maglev -------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

int ftvm_dp_maglev_build(const struct ftvm_dp_backend *b, size_t n,
			 uint32_t *table)
{
	const uint32_t M = FTVM_MAGLEV_SIZE;
	uint32_t *offset, *skip, *next;
	uint32_t filled = 0;
	bool any = false;

	memset(table, 0, M * sizeof(*table));
	for (size_t i = 0; i < n; i++) {
		if (!b[i].placement || b[i].placement >= FTVM_MAX_PLACEMENTS)
			return dp_err(-EINVAL, "placement %u out of range 1..%u",
				      b[i].placement, FTVM_MAX_PLACEMENTS - 1);
		if (b[i].weight > FTVM_DP_MAX_WEIGHT)
			return dp_err(-EINVAL, "weight %u above %u",
				      b[i].weight, FTVM_DP_MAX_WEIGHT);
		for (size_t j = 0; j < i; j++)
			if (b[j].placement == b[i].placement)
				return dp_err(-EINVAL, "placement %u given twice",
					      b[i].placement);
		any |= b[i].weight > 0;
	}
	if (!any)
		return 0;

	offset = calloc(n, sizeof(*offset));
	skip = calloc(n, sizeof(*skip));
	next = calloc(n, sizeof(*next));
	if (!offset || !skip || !next) {
		free(offset);
		free(skip);
		free(next);
		return dp_err(-ENOMEM, "out of memory");
	}
	/* Each backend's permutation depends on its placement id only. */
	for (size_t i = 0; i < n; i++) {
		offset[i] = mix64(b[i].placement) % M;
		skip[i] = mix64((uint64_t)b[i].placement << 32 | 0x5eed) %
			  (M - 1) + 1;
	}
	/* Rounds of turns; a backend takes as many turns as its weight. */
	while (filled < M) {
		for (size_t i = 0; i < n && filled < M; i++) {
			for (uint32_t w = 0; w < b[i].weight && filled < M; w++) {
				uint32_t c;

				do {
					c = (uint32_t)((offset[i] +
						(uint64_t)next[i] * skip[i]) % M);
					next[i]++;
				} while (table[c]);
				table[c] = b[i].placement;
				filled++;
			}
		}
	}
	free(offset);
	free(skip);
	free(next);
	return 0;
}

int ftvm_dp_service_set_backends(struct ftvm_dp *dp,
				 const struct ftvm_service_key *key,
				 const struct ftvm_dp_backend *backends,
				 size_t n)
{
	struct ftvm_service svc;
	uint32_t *table;
	int err;

	err = ftvm_dp_service_get(dp, key, &svc);
	if (err)
		return err;
	if (svc.index >= FTVM_MAX_SERVICES)
		return dp_err(-EPROTO, "service index %u out of range",
			      svc.index);
	table = malloc(FTVM_MAGLEV_SIZE * sizeof(*table));
	if (!table)
		return dp_err(-ENOMEM, "out of memory");
	err = ftvm_dp_maglev_build(backends, n, table);
	if (!err)
		err = maglev_write(dp, svc.index, table);
	free(table);
	return err;
}

/* Placements ---------------------------------------------------------- */

static int check_vm_id(uint32_t id, bool zero_ok)
{
	if ((zero_ok && !id) || (id >= FTVM_VM_ID_MIN && id <= FTVM_VM_ID_MAX))
		return 0;
	return dp_err(-EINVAL, "VM id %u out of range %u..%u", id,
		      FTVM_VM_ID_MIN, FTVM_VM_ID_MAX);
}

static int check_placement_id(uint32_t id)
{
	if (id && id < FTVM_MAX_PLACEMENTS)
		return 0;
	return dp_err(-EINVAL, "placement %u out of range 1..%u", id,
		      FTVM_MAX_PLACEMENTS - 1);
}

int ftvm_dp_placement_set(struct ftvm_dp *dp, uint32_t id, uint32_t primary,
			  uint32_t backup)
{
	struct ftvm_placement pl = { .primary = primary, .backup = backup };

	if (check_placement_id(id) || check_vm_id(primary, false) ||
	    check_vm_id(backup, true))
		return -EINVAL;
	if (primary == backup)
		return dp_err(-EINVAL, "VM %u cannot be its own backup", primary);
	if (bpf_map_update_elem(dp->fd[DP_PLACEMENTS], &id, &pl, BPF_ANY))
		return dp_err(-errno, "cannot set placement %u: %s", id,
			      strerror(errno));
	return 0;
}

int ftvm_dp_placement_get(struct ftvm_dp *dp, uint32_t id,
			  struct ftvm_placement *pl)
{
	if (check_placement_id(id))
		return -EINVAL;
	if (bpf_map_lookup_elem(dp->fd[DP_PLACEMENTS], &id, pl))
		return dp_err(-errno, "cannot read placement %u: %s", id,
			      strerror(errno));
	return 0;
}

int ftvm_dp_placement_del(struct ftvm_dp *dp, uint32_t id)
{
	struct ftvm_placement pl = {};

	if (check_placement_id(id))
		return -EINVAL;
	if (bpf_map_update_elem(dp->fd[DP_PLACEMENTS], &id, &pl, BPF_ANY))
		return dp_err(-errno, "cannot clear placement %u: %s", id,
			      strerror(errno));
	return 0;
}

/* Read the whole placement table in one batch (or one by one). */
static int placements_read(struct ftvm_dp *dp, struct ftvm_placement *all)
{
	uint32_t *keys = malloc(FTVM_MAX_PLACEMENTS * sizeof(*keys));
	uint32_t out_batch, count = FTVM_MAX_PLACEMENTS;
	int err = 0;

	if (!keys)
		return dp_err(-ENOMEM, "out of memory");
	if (bpf_map_lookup_batch(dp->fd[DP_PLACEMENTS], NULL, &out_batch, keys,
				 all, &count, NULL) &&
	    errno != ENOENT) {
		for (uint32_t i = 0; i < FTVM_MAX_PLACEMENTS; i++)
			if (bpf_map_lookup_elem(dp->fd[DP_PLACEMENTS], &i,
						&all[i])) {
				err = dp_err(-errno, "cannot read placements: %s",
					     strerror(errno));
				break;
			}
	} else if (count != FTVM_MAX_PLACEMENTS) {
		err = dp_err(-EIO, "short read of placements (%u)", count);
	}
	free(keys);
	return err;
}

int ftvm_dp_placement_foreach(struct ftvm_dp *dp, ftvm_dp_placement_cb cb,
			      void *arg)
{
	struct ftvm_placement *all = calloc(FTVM_MAX_PLACEMENTS, sizeof(*all));
	int err;

	if (!all)
		return dp_err(-ENOMEM, "out of memory");
	err = placements_read(dp, all);
	for (uint32_t i = 1; i < FTVM_MAX_PLACEMENTS && !err; i++)
		if (all[i].primary)
			err = cb(i, &all[i], arg);
	free(all);
	return err;
}

int ftvm_dp_failover_vm(struct ftvm_dp *dp, uint32_t vm_id,
			struct ftvm_dp_failover *res)
{
	struct ftvm_placement *all = calloc(FTVM_MAX_PLACEMENTS, sizeof(*all));
	struct ftvm_dp_failover r = {};
	int err;

	if (!all)
		return dp_err(-ENOMEM, "out of memory");
	err = check_vm_id(vm_id, false);
	if (!err)
		err = placements_read(dp, all);
	for (uint32_t i = 1; i < FTVM_MAX_PLACEMENTS && !err; i++) {
		struct ftvm_placement pl = all[i];

		if (!pl.primary)
			continue;
		if (pl.primary == vm_id) {
			if (!pl.backup) {
				r.stranded++;
				continue;
			}
			pl.primary = pl.backup;
			pl.backup = 0;
			r.moved++;
		} else if (pl.backup == vm_id) {
			pl.backup = 0;
			r.backups_lost++;
		} else {
			continue;
		}
		/* One update per placement: its sessions move together. */
		if (bpf_map_update_elem(dp->fd[DP_PLACEMENTS], &i, &pl, BPF_ANY))
			err = dp_err(-errno, "cannot update placement %u: %s",
				     i, strerror(errno));
	}
	free(all);
	if (res)
		*res = r;
	return err;
}

/* VMs ----------------------------------------------------------------- */

int ftvm_dp_vm_get(struct ftvm_dp *dp, uint32_t vm_id, struct ftvm_vm *vm)
{
	if (check_vm_id(vm_id, false))
		return -EINVAL;
	if (bpf_map_lookup_elem(dp->fd[DP_VMS], &vm_id, vm))
		return dp_err(-errno, "cannot read VM %u: %s", vm_id,
			      strerror(errno));
	return 0;
}

int ftvm_dp_vm_set(struct ftvm_dp *dp, uint32_t vm_id, int ifindex,
		   const uint8_t mac[6])
{
	struct ftvm_vm vm;
	uint32_t ifi = (uint32_t)ifindex;
	int err;

	err = ftvm_dp_vm_get(dp, vm_id, &vm);
	if (err)
		return err;
	if (ifindex <= 0)
		return dp_err(-EINVAL, "bad ifindex %d", ifindex);
	/* Every devmap first: a bad device changes nothing. */
	err = ftvm_dp_devmaps_set(dp->fd[DP_VMS], vm_id, ifindex);
	if (err < 0) {
		if (vm.ifindex)
			ftvm_dp_devmaps_set(dp->fd[DP_VMS], vm_id,
					    (int)vm.ifindex);
		return err;
	}
	/* A device moving from one VM to another: forget the old mapping. */
	if (vm.ifindex && vm.ifindex != ifi)
		bpf_map_delete_elem(dp->fd[DP_VM_BY_IFINDEX], &vm.ifindex);
	vm.ifindex = ifi;
	memcpy(vm.mac, mac, 6);
	if (bpf_map_update_elem(dp->fd[DP_VMS], &vm_id, &vm, BPF_ANY) ||
	    bpf_map_update_elem(dp->fd[DP_VM_BY_IFINDEX], &ifi, &vm_id,
				BPF_ANY))
		return dp_err(-errno, "cannot register VM %u: %s", vm_id,
			      strerror(errno));
	/* And every other slot of a copy that iproute2 loaded meanwhile. */
	err = ftvm_dp_devmaps_sync(dp->fd[DP_VMS], NULL);
	return err < 0 ? err : 0;
}

int ftvm_dp_vm_del(struct ftvm_dp *dp, uint32_t vm_id)
{
	struct ftvm_vm vm, none = {};
	int err;

	err = ftvm_dp_vm_get(dp, vm_id, &vm);
	if (err)
		return err;
	if (bpf_map_update_elem(dp->fd[DP_VMS], &vm_id, &none, BPF_ANY))
		return dp_err(-errno, "cannot clear VM %u: %s", vm_id,
			      strerror(errno));
	err = ftvm_dp_devmaps_set(dp->fd[DP_VMS], vm_id, 0);
	if (err < 0)
		return err;
	if (vm.ifindex)
		bpf_map_delete_elem(dp->fd[DP_VM_BY_IFINDEX], &vm.ifindex);
	return 0;
}

int ftvm_dp_vms_set_fenced(int vms_fd, uint32_t vm_id, bool fenced)
{
	struct ftvm_vm vm;

	if (check_vm_id(vm_id, false))
		return -EINVAL;
	if (bpf_map_lookup_elem(vms_fd, &vm_id, &vm))
		return dp_err(-errno, "cannot read VM %u: %s", vm_id,
			      strerror(errno));
	if (fenced)
		vm.flags |= FTVM_VM_F_FENCED;
	else {	/* back in service: not failed either */
		vm.flags &= (uint16_t)~(FTVM_VM_F_FENCED | FTVM_VM_F_FAILED);
		vm.failed_until = 0;
	}
	if (bpf_map_update_elem(vms_fd, &vm_id, &vm, BPF_ANY))
		return dp_err(-errno, "cannot update VM %u: %s", vm_id,
			      strerror(errno));
	return 0;
}

int ftvm_dp_vm_set_fenced(struct ftvm_dp *dp, uint32_t vm_id, bool fenced)
{
	return ftvm_dp_vms_set_fenced(dp->fd[DP_VMS], vm_id, fenced);
}

int ftvm_dp_vm_foreach(struct ftvm_dp *dp, ftvm_dp_vm_cb cb, void *arg)
{
	int err = 0;

	for (uint32_t id = FTVM_VM_ID_MIN; id <= FTVM_VM_ID_MAX && !err; id++) {
		struct ftvm_vm vm;

		err = ftvm_dp_vm_get(dp, id, &vm);
		if (!err && (vm.ifindex || vm.flags))
			err = cb(id, &vm, arg);
	}
	return err;
}

/* Sessions ------------------------------------------------------------ */

/*
 * The map and key of @flow: IPv4 sessions are keyed by struct
 * ftvm_flow4 (filled in @k4), IPv6 sessions by the flow itself.
 */
static int session_key(struct ftvm_dp *dp, const struct ftvm_flow *flow,
		       struct ftvm_flow4 *k4, const void **key)
{
	if (flow->family == FTVM_FAMILY_V4) {
		ftvm_flow_to_flow4(flow, k4);
		*key = k4;
		return dp->fd[DP_SESSIONS4];
	}
	if (flow->family == FTVM_FAMILY_V6) {
		*key = flow;
		return dp->fd[DP_SESSIONS6];
	}
	return dp_err(-EINVAL, "flow of unknown family %u", flow->family);
}

int ftvm_dp_session_get(struct ftvm_dp *dp, const struct ftvm_flow *flow,
			struct ftvm_session *s)
{
	struct ftvm_flow4 k4;
	const void *key = NULL;
	int fd = session_key(dp, flow, &k4, &key);

	if (fd < 0)
		return fd;
	if (bpf_map_lookup_elem(fd, key, s))
		return dp_err(-errno, errno == ENOENT ? "no such session" :
			      "cannot look up the session");
	return 0;
}

int ftvm_dp_session_del(struct ftvm_dp *dp, const struct ftvm_flow *flow)
{
	struct ftvm_flow4 k4;
	const void *key = NULL;
	int fd = session_key(dp, flow, &k4, &key);

	if (fd < 0)
		return fd;
	if (bpf_map_delete_elem(fd, key))
		return dp_err(-errno, errno == ENOENT ? "no such session" :
			      "cannot delete the session");
	return 0;
}

int ftvm_dp_session_foreach(struct ftvm_dp *dp, ftvm_dp_session_cb cb,
			    void *arg)
{
	struct ftvm_flow4 *k4;
	struct ftvm_flow *flows, f;
	struct ftvm_session s;
	size_t n;
	int err;

	err = hash_keys(dp->fd[DP_SESSIONS4], sizeof(*k4), (void **)&k4, &n);
	if (err)
		return err;
	for (size_t i = 0; i < n && !err; i++) {
		/* Without touching the LRU order: peek, not update. */
		if (bpf_map_lookup_elem(dp->fd[DP_SESSIONS4], &k4[i], &s))
			continue;
		ftvm_flow4_to_flow(&k4[i], &f);
		err = cb(&f, &s, arg);
	}
	free(k4);
	if (err)
		return err;

	err = hash_keys(dp->fd[DP_SESSIONS6], sizeof(*flows), (void **)&flows,
			&n);
	if (err)
		return err;
	for (size_t i = 0; i < n && !err; i++) {
		if (bpf_map_lookup_elem(dp->fd[DP_SESSIONS6], &flows[i], &s))
			continue;
		err = cb(&flows[i], &s, arg);
	}
	free(flows);
	return err;
}
