// SPDX-License-Identifier: GPL-2.0
/*
 * ftd's data-plane operations over the pinned steering maps, written on
 * libbpf's map calls.  The programs are the skeletons of bpf/: loading
 * them with a pin root either reuses the maps already pinned there
 * (ftd restarting, "ftctl attach" having run first) or creates and pins
 * them, so ftd and the data plane share one set of maps either way.
 */
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "../lib/steer.h"
#include "../../bpf/ftvm_fence.skel.h"
#include "../../bpf/ftvm_steer.skel.h"
#include "dataplane.h"

struct dp {
	struct ftvm_steer *steer;
	struct ftvm_fence *fence;	/* NULL with private maps */
	int services, sessions4, sessions6, placements, maglev, vms,
	    by_ifindex, new_sessions;
	/* The ftvm_steer copies whose devmaps are filled (dp_devmaps_sync). */
	struct ftvm_dp_devmaps devmaps;
	struct bpf_link *fail_link;	/* dp_watch_failures() */
};

static __thread char errbuf[256];

const char *dp_errmsg(void)
{
	return errbuf;
}

__attribute__((format(printf, 2, 3)))
static int dp_fail(int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(errbuf))
		snprintf(errbuf + n, sizeof(errbuf) - n, ": %s", strerror(-err));
	return err;
}

/* A failure the steering library described already. */
static int dp_fail_lib(int err)
{
	snprintf(errbuf, sizeof(errbuf), "%s", ftvm_dp_errmsg());
	return err;
}

static int quiet_print(enum libbpf_print_level lvl, const char *fmt,
		       va_list ap)
{
	if (lvl != LIBBPF_WARN || getenv("FTD_LIBBPF_DEBUG") == NULL)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

int dp_open(const struct dp_opts *o, struct dp **dpp)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = o->pin_dir);
	struct dp *dp;
	int err;

	libbpf_set_print(quiet_print);
	/* libbpf pins into an existing directory only. */
	if (!o->no_pin && (err = ftvm_dp_prepare_pin_dir(o->pin_dir)))
		return dp_fail_lib(err);
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return -ENOMEM;
	dp->steer = ftvm_steer__open_opts(o->no_pin ? NULL : &oo);
	if (!dp->steer) {
		err = dp_fail(-errno, "cannot open ftvm_steer");
		goto fail;
	}
	if (o->no_pin && (err = ftvm_dp_obj_private(dp->steer->obj))) {
		err = dp_fail_lib(err);
		goto fail;
	}
	if (o->max_sessions) {
		bpf_map__set_max_entries(dp->steer->maps.ftvm_sessions4,
					 o->max_sessions);
		bpf_map__set_max_entries(dp->steer->maps.ftvm_sessions6,
					 o->max_sessions);
	}
	if (!o->no_pin) {
		err = ftvm_dp_obj_reuse_pins(dp->steer->obj, o->pin_dir);
		if (err) {
			err = dp_fail_lib(err);
			goto fail;
		}
	}
	err = ftvm_steer__load(dp->steer);
	if (err) {
		err = dp_fail(err, "cannot load ftvm_steer with maps in %s (maps of another ABI pinned there?)",
			      o->no_pin ? "memory" : o->pin_dir);
		goto fail;
	}
	if (!o->no_pin) {
		dp->fence = ftvm_fence__open_opts(&oo);
		if (!dp->fence) {
			err = dp_fail(-errno, "cannot open ftvm_fence");
			goto fail;
		}
		err = ftvm_dp_obj_reuse_pins(dp->fence->obj, o->pin_dir);
		if (err) {
			err = dp_fail_lib(err);
			goto fail;
		}
		err = ftvm_fence__load(dp->fence);
		if (err) {
			err = dp_fail(err, "cannot load ftvm_fence");
			goto fail;
		}
		/* Redirect errors counted (links pinned by the maps). */
		err = ftvm_dp_watch_redirects(o->pin_dir, dp->steer->obj);
		if (err) {
			err = dp_fail_lib(err);
			goto fail;
		}
	}
	dp->services = bpf_map__fd(dp->steer->maps.ftvm_services);
	dp->sessions4 = bpf_map__fd(dp->steer->maps.ftvm_sessions4);
	dp->sessions6 = bpf_map__fd(dp->steer->maps.ftvm_sessions6);
	dp->placements = bpf_map__fd(dp->steer->maps.ftvm_placements);
	dp->maglev = bpf_map__fd(dp->steer->maps.ftvm_maglev);
	dp->vms = bpf_map__fd(dp->steer->maps.ftvm_vms);
	dp->by_ifindex = bpf_map__fd(dp->steer->maps.ftvm_vm_by_ifindex);
	dp->new_sessions = bpf_map__fd(dp->steer->maps.ftvm_new_sessions);
	*dpp = dp;
	return 0;
fail:
	dp_close(dp);
	return err;
}

int dp_watch_failures(struct dp *dp)
{
	struct stat st;
	int err;

	if (dp->fail_link)
		return 0;
	if (stat("/proc/self/ns/net", &st))
		return dp_fail(-errno, "cannot stat /proc/self/ns/net");
	/* The .bss of our own copy: read by its programs alone. */
	dp->steer->bss->ftvm_registry_netns = (__u32)st.st_ino;
	dp->fail_link = bpf_program__attach_raw_tracepoint(
		dp->steer->progs.ftvm_on_vm_failed, "ftvm_vm_failed");
	if (!dp->fail_link) {
		err = -errno;
		dp->steer->bss->ftvm_registry_netns = 0;
		return dp_fail(err, "cannot attach to ftvm.ko's tracepoint ftvm_vm_failed");
	}
	return 0;
}

void dp_close(struct dp *dp)
{
	if (!dp)
		return;
	bpf_link__destroy(dp->fail_link);
	ftvm_fence__destroy(dp->fence);
	ftvm_steer__destroy(dp->steer);
	free(dp);
}

int dp_attach_xdp(struct dp *dp, int ifindex, bool generic)
{
	int fd = bpf_program__fd(dp->steer->progs.ftvm_steer);
	__u32 flags = generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), id = 0;
	int err, pfd;

	/* An ftvm_steer already there (ftd restarting) keeps running. */
	if (!bpf_xdp_query_id(ifindex, flags, &id) && id) {
		pfd = bpf_prog_get_fd_by_id(id);
		if (pfd >= 0) {
			err = bpf_obj_get_info_by_fd(pfd, &info, &len);
			close(pfd);
			if (!err && !strcmp(info.name, "ftvm_steer"))
				return 0;
		}
	}
	err = bpf_xdp_attach(ifindex, fd, flags, NULL);
	if (err)
		return dp_fail(err, "cannot attach ftvm_steer to ifindex %d",
			       ifindex);
	return 0;
}

int dp_attach_fence(struct dp *dp, int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, to, .handle = 0xf7, .priority = 1);
	int err;

	if (!dp->fence)
		return 0;
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return dp_fail(err, "cannot add clsact to ifindex %d", ifindex);
	to.prog_fd = bpf_program__fd(dp->fence->progs.ftvm_fence);
	to.flags = BPF_TC_F_REPLACE;
	err = bpf_tc_attach(&hook, &to);
	if (err)
		return dp_fail(err, "cannot attach ftvm_fence to ifindex %d",
			       ifindex);
	return 0;
}

static int map_err(int err, const char *what)
{
	return err ? dp_fail(err, "%s", what) : 0;
}

int dp_vm_set(struct dp *dp, uint32_t id, int ifindex, const uint8_t mac[6],
	      uint16_t flags)
{
	struct ftvm_vm v = { .ifindex = (__u32)ifindex }, old;
	__u32 ifi = (__u32)ifindex, owner;
	int err = 0;

	memcpy(v.mac, mac, 6);
	v.flags = flags & (FTVM_VM_F_FENCED | FTVM_VM_F_DRAINING);
	if (bpf_map_lookup_elem(dp->vms, &id, &old))
		memset(&old, 0, sizeof(old));
	/* ftvm.ko's word that it failed stands while it is fenced. */
	if ((flags & FTVM_VM_F_FENCED) && (old.flags & FTVM_VM_F_FAILED)) {
		v.flags |= FTVM_VM_F_FAILED;
		v.failed_until = old.failed_until;
	}
	/* A new device: the old index may come back for another device. */
	if (old.ifindex && old.ifindex != ifi &&
	    !bpf_map_lookup_elem(dp->by_ifindex, &old.ifindex, &owner) &&
	    owner == id)
		bpf_map_delete_elem(dp->by_ifindex, &old.ifindex);
	if (ifindex > 0)
		err = bpf_map_update_elem(dp->by_ifindex, &ifi, &id, BPF_ANY);
	/* Every ftvm_steer's devmap; a device gone leaves nothing there. */
	if (!err) {
		err = ftvm_dp_devmaps_set(dp->vms, id, ifindex);
		if (err < 0)
			return dp_fail_lib(err);
		err = 0;
	}
	if (!err)
		err = bpf_map_update_elem(dp->vms, &id, &v, BPF_ANY);
	return map_err(err, "cannot write VM into the steering maps");
}

int dp_vm_get(struct dp *dp, uint32_t id, struct ftvm_vm *vm)
{
	return map_err(bpf_map_lookup_elem(dp->vms, &id, vm),
		       "cannot read VM");
}

int dp_vm_del(struct dp *dp, uint32_t id, int ifindex)
{
	struct ftvm_vm v = {};
	__u32 ifi = (__u32)ifindex;

	ftvm_dp_devmaps_set(dp->vms, id, 0);
	if (ifindex > 0)
		bpf_map_delete_elem(dp->by_ifindex, &ifi);
	return map_err(bpf_map_update_elem(dp->vms, &id, &v, BPF_ANY),
		       "cannot remove VM from the steering maps");
}

int dp_devmaps_sync(struct dp *dp)
{
	int n = ftvm_dp_devmaps_sync(dp->vms, &dp->devmaps);

	return n < 0 ? dp_fail_lib(n) : n;
}

int dp_vm_fence(struct dp *dp, uint32_t id, bool fenced)
{
	int err = ftvm_dp_vms_set_fenced(dp->vms, id, fenced);

	return err ? dp_fail_lib(err) : 0;
}

int dp_vm_mark_draining(struct dp *dp, uint32_t id)
{
	struct ftvm_vm v;

	if (bpf_map_lookup_elem(dp->vms, &id, &v))
		return dp_fail(-errno, "cannot read VM %u", id);
	v.flags |= FTVM_VM_F_DRAINING;
	return map_err(bpf_map_update_elem(dp->vms, &id, &v, BPF_ANY),
		       "cannot mark the VM draining in the steering maps");
}

int dp_service_set(struct dp *dp, const struct ftvm_service_key *key,
		   uint32_t index)
{
	struct ftvm_service s = { .index = index };

	return map_err(bpf_map_update_elem(dp->services, key, &s, BPF_ANY),
		       "cannot write service");
}

int dp_service_del(struct dp *dp, const struct ftvm_service_key *key,
		   uint32_t index)
{
	int err = bpf_map_delete_elem(dp->services, key);

	if (err && err != -ENOENT)
		return dp_fail(err, "cannot delete service");
	return dp_maglev_set(dp, index, NULL, 0);
}

int dp_service_foreach(struct dp *dp, dp_service_cb cb, void *arg)
{
	struct ftvm_service_key k, next;
	struct ftvm_service s;
	void *prev = NULL;
	int err;

	while (!(err = bpf_map_get_next_key(dp->services, prev, &next))) {
		k = next;
		prev = &k;
		if (bpf_map_lookup_elem(dp->services, &k, &s))
			continue;
		err = cb(&k, s.index, arg);
		if (err)
			return err;
	}
	return err == -ENOENT ? 0 : dp_fail(err, "cannot list services");
}

/* Two independent hashes of a placement id (splitmix64 finaliser). */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void dp_maglev_build(const struct dp_backend *b, size_t n, uint32_t *table)
{
	const uint32_t m = FTVM_MAGLEV_SIZE;
	uint32_t *offset, *skip, *next, wmax = 0, filled = 0;
	double *credit;
	size_t i;

	memset(table, 0, m * sizeof(*table));
	for (i = 0; i < n; i++)
		if (b[i].weight > wmax)
			wmax = b[i].weight;
	if (!wmax)
		return;
	offset = calloc(n, sizeof(*offset));
	skip = calloc(n, sizeof(*skip));
	next = calloc(n, sizeof(*next));
	credit = calloc(n, sizeof(*credit));
	if (!offset || !skip || !next || !credit)
		goto out;
	for (i = 0; i < n; i++) {
		offset[i] = (uint32_t)(mix64(b[i].placement) % m);
		skip[i] = (uint32_t)(mix64(b[i].placement ^ 0x66746476ull) %
				     (m - 1)) + 1;
	}
	/*
	 * Each round every backend earns weight/wmax of a turn and spends
	 * whole turns claiming its next free preferred slot, so shares
	 * follow the weights and each backend's preference list depends on
	 * its own id only.
	 */
	while (filled < m) {
		for (i = 0; i < n && filled < m; i++) {
			if (!b[i].weight)
				continue;
			credit[i] += (double)b[i].weight / wmax;
			while (credit[i] >= 1.0 && filled < m) {
				uint32_t c;

				do {
					c = (uint32_t)((offset[i] +
						(uint64_t)next[i] * skip[i]) % m);
					next[i]++;
				} while (table[c]);
				table[c] = b[i].placement;
				filled++;
				credit[i] -= 1.0;
			}
		}
	}
out:
	free(offset);
	free(skip);
	free(next);
	free(credit);
}

int dp_maglev_set(struct dp *dp, uint32_t index, const struct dp_backend *b,
		  size_t n)
{
	static __thread uint32_t keys[FTVM_MAGLEV_SIZE], vals[FTVM_MAGLEV_SIZE];
	__u32 count = FTVM_MAGLEV_SIZE;
	int err;

	if (index >= FTVM_MAX_SERVICES)
		return dp_fail(-EINVAL, "service index %u", index);
	dp_maglev_build(b, n, vals);
	for (uint32_t i = 0; i < FTVM_MAGLEV_SIZE; i++)
		keys[i] = index * FTVM_MAGLEV_SIZE + i;
	err = bpf_map_update_batch(dp->maglev, keys, vals, &count, NULL);
	if (err == -EINVAL || err == -EOPNOTSUPP) {
		err = 0;
		for (uint32_t i = 0; i < FTVM_MAGLEV_SIZE && !err; i++)
			err = bpf_map_update_elem(dp->maglev, &keys[i],
						  &vals[i], BPF_ANY);
	}
	return map_err(err, "cannot write the Maglev row");
}

int dp_maglev_read(struct dp *dp, uint32_t index, uint32_t *table)
{
	for (uint32_t i = 0; i < FTVM_MAGLEV_SIZE; i++) {
		uint32_t k = index * FTVM_MAGLEV_SIZE + i;
		int err = bpf_map_lookup_elem(dp->maglev, &k, &table[i]);

		if (err)
			return dp_fail(err, "cannot read the Maglev row");
	}
	return 0;
}

int dp_placement_set(struct dp *dp, uint32_t id, uint32_t primary,
		     uint32_t backup)
{
	struct ftvm_placement p = { .primary = primary, .backup = backup };

	/*
	 * An array element of two words written by one syscall: the data
	 * plane reads only the primary word, which changes in one store.
	 */
	return map_err(bpf_map_update_elem(dp->placements, &id, &p, BPF_ANY),
		       "cannot write placement");
}

int dp_placement_get(struct dp *dp, uint32_t id, struct ftvm_placement *pl)
{
	return map_err(bpf_map_lookup_elem(dp->placements, &id, pl),
		       "cannot read placement");
}

int dp_placement_read_all(struct dp *dp, struct ftvm_placement *pl)
{
	static uint32_t keys[FTVM_MAX_PLACEMENTS];
	__u32 count = FTVM_MAX_PLACEMENTS;
	__u64 out = 0;
	int err;

	err = bpf_map_lookup_batch(dp->placements, NULL, &out, keys, pl,
				   &count, NULL);
	if (err == -ENOENT && count == FTVM_MAX_PLACEMENTS)
		err = 0;
	if (err) {
		err = 0;
		for (uint32_t i = 0; i < FTVM_MAX_PLACEMENTS && !err; i++)
			err = bpf_map_lookup_elem(dp->placements, &i, &pl[i]);
	}
	return map_err(err, "cannot read placements");
}

/* Every session of one map in batches; @v4: keys are struct ftvm_flow4. */
static long session_scan_map(struct dp *dp, bool v4, dp_session_cb cb,
			     void *arg)
{
	enum { BATCH = 4096 };
	size_t ksize = v4 ? sizeof(struct ftvm_flow4) : sizeof(struct ftvm_flow);
	int fd = v4 ? dp->sessions4 : dp->sessions6;
	struct ftvm_session *vals;
	struct ftvm_flow f;
	__u64 in = 0, out = 0;
	long total = 0;
	bool first = true;
	char *keys;
	int err;

	keys = malloc(BATCH * ksize);
	vals = malloc(BATCH * sizeof(*vals));
	if (!keys || !vals) {
		free(keys);
		free(vals);
		return -ENOMEM;
	}
	for (;;) {
		__u32 count = BATCH;

		err = bpf_map_lookup_batch(fd, first ? NULL : &in, &out, keys,
					   vals, &count, NULL);
		if (err && err != -ENOENT) {
			dp_fail(err, "cannot read sessions");
			break;
		}
		for (__u32 i = 0; i < count; i++) {
			if (v4) {
				ftvm_flow4_to_flow((const struct ftvm_flow4 *)
						   (keys + i * ksize), &f);
				cb(&f, &vals[i], arg);
			} else {
				cb((const struct ftvm_flow *)(keys + i * ksize),
				   &vals[i], arg);
			}
		}
		total += count;
		if (err == -ENOENT) {
			err = 0;
			break;
		}
		in = out;
		first = false;
	}
	free(keys);
	free(vals);
	return err ? err : total;
}

int dp_new_sessions_fd(struct dp *dp)
{
	return dp->new_sessions;
}

long dp_session_scan(struct dp *dp, dp_session_cb cb, void *arg)
{
	long n4, n6;

	n4 = session_scan_map(dp, true, cb, arg);
	if (n4 < 0)
		return n4;
	n6 = session_scan_map(dp, false, cb, arg);
	return n6 < 0 ? n6 : n4 + n6;
}

/* The map and key of @flow (IPv4 sessions are keyed by struct ftvm_flow4). */
static int session_key(struct dp *dp, const struct ftvm_flow *flow,
		       struct ftvm_flow4 *k4, const void **key)
{
	if (flow->family == FTVM_FAMILY_V4) {
		ftvm_flow_to_flow4(flow, k4);
		*key = k4;
		return dp->sessions4;
	}
	*key = flow;
	return dp->sessions6;
}

int dp_session_move(struct dp *dp, const struct ftvm_flow *flow,
		    uint32_t placement)
{
	struct ftvm_session s;
	struct ftvm_flow4 k4;
	const void *key = NULL;
	int fd = session_key(dp, flow, &k4, &key);
	int err;

	err = bpf_map_lookup_elem(fd, key, &s);
	if (err)
		return err;
	s.placement = placement;
	return bpf_map_update_elem(fd, key, &s, BPF_EXIST);
}

int dp_session_del(struct dp *dp, const struct ftvm_flow *flow)
{
	struct ftvm_flow4 k4;
	const void *key = NULL;
	int fd = session_key(dp, flow, &k4, &key);

	return bpf_map_delete_elem(fd, key) ? -errno : 0;
}

int dp_session_get(struct dp *dp, const struct ftvm_flow *flow,
		   struct ftvm_session *s)
{
	struct ftvm_flow4 k4;
	const void *key = NULL;
	int fd = session_key(dp, flow, &k4, &key);

	return bpf_map_lookup_elem(fd, key, s);
}

/* @n sessions of one map: in a batch, else one by one. */
static int session_put_map(int fd, const void *keys, size_t ksize,
			   const struct ftvm_session *s, uint32_t n)
{
	__u32 count = n;
	int err;

	if (!n)
		return 0;
	err = bpf_map_update_batch(fd, keys, s, &count, NULL);
	if (err == -EINVAL || err == -EOPNOTSUPP) {
		err = 0;
		for (uint32_t i = 0; i < n && !err; i++)
			err = bpf_map_update_elem(fd, (const char *)keys +
						  i * ksize, &s[i], BPF_ANY);
	}
	return err;
}

int dp_session_put(struct dp *dp, const struct ftvm_flow *flows,
		   const struct ftvm_session *s, uint32_t n)
{
	struct ftvm_session *v4v = NULL, *v6v = NULL;
	struct ftvm_flow4 *k4 = NULL;
	struct ftvm_flow *k6 = NULL;
	uint32_t n4 = 0, n6 = 0;
	int err = -ENOMEM;

	/* Split by family: each map takes its own keys. */
	k4 = malloc((n ? n : 1) * sizeof(*k4));
	k6 = malloc((n ? n : 1) * sizeof(*k6));
	v4v = malloc((n ? n : 1) * sizeof(*v4v));
	v6v = malloc((n ? n : 1) * sizeof(*v6v));
	if (!k4 || !k6 || !v4v || !v6v)
		goto out;
	for (uint32_t i = 0; i < n; i++) {
		if (flows[i].family == FTVM_FAMILY_V4) {
			ftvm_flow_to_flow4(&flows[i], &k4[n4]);
			v4v[n4++] = s[i];
		} else {
			k6[n6] = flows[i];
			v6v[n6++] = s[i];
		}
	}
	err = session_put_map(dp->sessions4, k4, sizeof(*k4), v4v, n4);
	if (!err)
		err = session_put_map(dp->sessions6, k6, sizeof(*k6), v6v, n6);
out:
	free(k4);
	free(k6);
	free(v4v);
	free(v6v);
	return map_err(err, "cannot create sessions");
}
