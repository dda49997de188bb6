// SPDX-License-Identifier: GPL-2.0
/*
 * Loading and attaching the data plane's programs: ftvm_steer on a NIC
 * (XDP), ftvm_fence on a VM's host-side device (tc clsact ingress), both
 * on the maps pinned in one directory.  The rest of the library is in
 * steer.c; see steer.h and Documentation/dataplane.rst.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "steer.h"
#include "steer_int.h"
#include "../../bpf/ftvm_steer.skel.h"
#include "../../bpf/ftvm_fence.skel.h"

#define BPFFS_ROOT	"/sys/fs/bpf"
/* tc filter slot of ftvm_fence on clsact ingress. */
#define FENCE_TC_HANDLE	0xf7e
#define FENCE_TC_PRIO	0xf7e

static int mkdir_p(const char *dir)
{
	char buf[PATH_MAX];

	if (strlen(dir) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, dir);
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || !*p) {
			char c = *p;

			*p = '\0';
			if (mkdir(buf, 0700) && errno != EEXIST)
				return -errno;
			if (!c)
				break;
			*p = c;
		}
	}
	return 0;
}

int ftvm_dp_prepare_pin_dir(const char *pin_dir)
{
	struct statfs st;
	int err;

	if (!strncmp(pin_dir, BPFFS_ROOT "/", strlen(BPFFS_ROOT "/")) &&
	    (statfs(BPFFS_ROOT, &st) || st.f_type != BPF_FS_MAGIC)) {
		if (mount("bpf", BPFFS_ROOT, "bpf", 0, "mode=0700"))
			return dp_err(-errno, "cannot mount bpffs on %s: %s",
				      BPFFS_ROOT, strerror(errno));
	}
	err = mkdir_p(pin_dir);
	if (err)
		return dp_err(err, "cannot create %s: %s", pin_dir,
			      strerror(-err));
	if (statfs(pin_dir, &st) || st.f_type != BPF_FS_MAGIC)
		return dp_err(-EINVAL, "%s is not on a bpf filesystem", pin_dir);
	return 0;
}

/* Refuse to load over pinned maps of another ABI, saying so clearly. */
static int check_existing_pins(const char *pin_dir)
{
	char path[PATH_MAX];
	struct ftvm_dp *dp;
	int err;

	snprintf(path, sizeof(path), "%s/%s", pin_dir, FTVM_DP_ABI_MAP);
	if (access(path, F_OK))
		return 0;
	err = ftvm_dp_open(pin_dir, &dp);
	if (err)
		return err;
	ftvm_dp_close(dp);
	return 0;
}

int ftvm_dp_obj_private(struct bpf_object *obj)
{
	struct bpf_map *m;
	int err;

	bpf_object__for_each_map(m, obj) {
		err = bpf_map__set_pin_path(m, NULL);
		if (err)
			return dp_err(err, "cannot prepare map %s: %s",
				      bpf_map__name(m), strerror(-err));
	}
	return 0;
}

/*
 * Hand the maps already pinned under @pin_dir to @obj (checked by
 * check_existing_pins() first) and leave libbpf to create and pin only
 * the missing ones.  The version check is ours, and libbpf's reuse path
 * would only compare sizes and flags again.
 */
int ftvm_dp_obj_reuse_pins(struct bpf_object *obj, const char *pin_dir)
{
	char path[PATH_MAX];
	struct bpf_map *m;

	bpf_object__for_each_map(m, obj) {
		int fd, err;

		if (bpf_map__is_internal(m))
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir,
			 bpf_map__name(m));
		fd = bpf_obj_get(path);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			return dp_err(-errno, "cannot open %s: %s", path,
				      strerror(errno));
		}
		err = bpf_map__reuse_fd(m, fd);
		close(fd);
		if (!err)
			err = bpf_map__set_pin_path(m, NULL);
		if (err)
			return dp_err(err, "cannot reuse %s: %s", path,
				      strerror(-err));
	}
	return 0;
}

static int prog_name_of(uint32_t id, char *name, size_t len)
{
	struct bpf_prog_info info = {};
	uint32_t ilen = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id), err = 0;

	if (fd < 0)
		return -errno;
	if (bpf_obj_get_info_by_fd(fd, &info, &ilen))
		err = -errno;
	else
		snprintf(name, len, "%s", info.name);
	close(fd);
	return err;
}

static const char *ifname(int ifindex, char *buf)
{
	if (!if_indextoname((unsigned int)ifindex, buf))
		snprintf(buf, IF_NAMESIZE, "ifindex %d", ifindex);
	return buf;
}

/* ftvm_steer's tracing programs; each one's link is pinned by its name. */
static const char *const watch_progs[] = {
	"ftvm_redirect_err",	/* xdp:xdp_redirect_err */
	"ftvm_devmap_xmit",	/* xdp:xdp_devmap_xmit */
};

/* The id of the object pinned at @dir/@name (map or link); 0: none. */
static uint32_t pinned_id(const char *dir, const char *name, bool link,
			  uint32_t *prog_id)
{
	struct bpf_link_info li = {};
	struct bpf_map_info mi = {};
	char path[PATH_MAX];
	uint32_t len, id = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	len = link ? sizeof(li) : sizeof(mi);
	if (!bpf_obj_get_info_by_fd(fd, link ? (void *)&li : (void *)&mi,
				    &len)) {
		id = link ? li.id : mi.id;
		if (link && prog_id)
			*prog_id = li.prog_id;
	}
	close(fd);
	return id;
}

/* Does program @prog_id use map @map_id? */
static bool prog_uses(uint32_t prog_id, uint32_t map_id)
{
	struct bpf_prog_info info = {};
	uint32_t ids[32], len = sizeof(info);
	bool found = false;
	int fd;

	fd = bpf_prog_get_fd_by_id(prog_id);
	if (fd < 0)
		return false;
	info.nr_map_ids = 32;
	info.map_ids = (uint64_t)(unsigned long)ids;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len))
		for (uint32_t i = 0; i < info.nr_map_ids && i < 32; i++)
			found |= ids[i] == map_id;
	close(fd);
	return found;
}

/*
 * Is the link pinned as @name a tracer of this data plane: its program
 * uses the pinned ftvm_vms (a pin left from maps since replaced does not)?
 */
static bool watch_pinned(const char *pin_dir, const char *name)
{
	uint32_t vms = pinned_id(pin_dir, "ftvm_vms", false, NULL);
	uint32_t prog = 0;

	return vms && pinned_id(pin_dir, name, true, &prog) &&
	       prog_uses(prog, vms);
}

bool ftvm_dp_redirects_watched(const char *pin_dir)
{
	pin_dir = ftvm_dp_pin_dir(pin_dir);
	for (size_t i = 0; i < sizeof(watch_progs) / sizeof(*watch_progs); i++)
		if (!watch_pinned(pin_dir, watch_progs[i]))
			return false;
	return true;
}

/* Load ftvm_steer over the maps pinned under @pin_dir (ABI checked). */
static int steer_load_over_pins(const char *pin_dir, struct ftvm_steer **skelp)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	struct ftvm_steer *skel;
	int err;

	err = ftvm_dp_prepare_pin_dir(pin_dir);
	if (!err)
		err = check_existing_pins(pin_dir);
	if (err)
		return err;
	oo.pin_root_path = pin_dir;
	skel = ftvm_steer__open_opts(&oo);
	if (!skel)
		return dp_err(-errno, "cannot open ftvm_steer: %s",
			      strerror(errno));
	err = ftvm_dp_obj_reuse_pins(skel->obj, pin_dir);
	if (err)
		goto fail;
	err = ftvm_steer__load(skel);
	if (err) {
		err = dp_err(err, "cannot load ftvm_steer (pins in %s): %s",
			     pin_dir, strerror(-err));
		goto fail;
	}
	*skelp = skel;
	return 0;
fail:
	ftvm_steer__destroy(skel);
	return err;
}

/* Undo ftvm_dp_watch_redirects(): the links go with their pins. */
static void unwatch(const char *pin_dir)
{
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(watch_progs) / sizeof(*watch_progs); i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, watch_progs[i]);
		unlink(path);
	}
}

int ftvm_dp_watch_redirects(const char *pin_dir, struct bpf_object *obj)
{
	struct ftvm_steer *skel = NULL;
	char path[PATH_MAX];
	int err = 0;

	pin_dir = ftvm_dp_pin_dir(pin_dir);
	if (ftvm_dp_redirects_watched(pin_dir))
		return 0;
	if (!obj) {
		err = steer_load_over_pins(pin_dir, &skel);
		if (err)
			return err;
		obj = skel->obj;
	}
	for (size_t i = 0; i < sizeof(watch_progs) / sizeof(*watch_progs) && !err; i++) {
		struct bpf_program *prog;
		struct bpf_link *link;

		if (watch_pinned(pin_dir, watch_progs[i]))
			continue;
		/* A stale pin (or none): replaced. */
		snprintf(path, sizeof(path), "%s/%s", pin_dir, watch_progs[i]);
		if (unlink(path) && errno != ENOENT) {
			err = dp_err(-errno, "cannot replace %s: %s", path,
				     strerror(errno));
			break;
		}
		prog = bpf_object__find_program_by_name(obj, watch_progs[i]);
		if (!prog) {
			err = dp_err(-ENOENT, "ftvm_steer has no program %s",
				     watch_progs[i]);
			break;
		}
		link = bpf_program__attach(prog);
		if (!link) {
			err = dp_err(-errno, "cannot attach %s: %s",
				     watch_progs[i], strerror(errno));
			break;
		}
		/* The pin keeps the link (and the program) once we go. */
		err = bpf_link__pin(link, path);
		if (err)
			err = dp_err(err, "cannot pin %s: %s", path,
				     strerror(-err));
		bpf_link__destroy(link);
	}
	ftvm_steer__destroy(skel);
	return err;
}

int ftvm_dp_attach_xdp(const char *pin_dir, int ifindex,
		       enum ftvm_xdp_mode mode)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct ftvm_steer *skel = NULL;
	char dev[IF_NAMESIZE], name[BPF_OBJ_NAME_LEN] = "";
	uint32_t flags;
	bool watched;
	int err;

	pin_dir = ftvm_dp_pin_dir(pin_dir);
	if (bpf_xdp_query(ifindex, 0, &q))
		return dp_err(-errno, "cannot query XDP on %s: %s",
			      ifname(ifindex, dev), strerror(errno));
	if (q.prog_id) {
		prog_name_of(q.prog_id, name, sizeof(name));
		if (strcmp(name, "ftvm_steer"))
			return dp_err(-EBUSY, "%s already runs XDP program %u (%s); detach it first",
				      ifname(ifindex, dev), q.prog_id, name);
	}
	err = steer_load_over_pins(pin_dir, &skel);
	if (err)
		return err;
	/* Its own devmap, filled before it sees a packet. */
	err = ftvm_dp_devmap_fill(bpf_map__fd(skel->maps.ftvm_devmap),
				  bpf_map__fd(skel->maps.ftvm_vms));
	if (err)
		goto cleanup;
	flags = mode == FTVM_XDP_GENERIC ? XDP_FLAGS_SKB_MODE :
					   XDP_FLAGS_DRV_MODE;
	/* Replacing our own program in place keeps the device steering. */
	if (q.prog_id && q.attach_mode != (mode == FTVM_XDP_GENERIC ?
			XDP_ATTACHED_SKB : XDP_ATTACHED_DRV)) {
		err = dp_err(-EBUSY, "%s runs ftvm_steer in the other mode; \"ftctl detach %s\" first",
			     ifname(ifindex, dev), dev);
		goto cleanup;
	}
	/* Redirect errors counted from the first packet on. */
	watched = ftvm_dp_redirects_watched(pin_dir);
	err = ftvm_dp_watch_redirects(pin_dir, skel->obj);
	if (err)
		goto cleanup;
	err = bpf_xdp_attach(ifindex, bpf_program__fd(skel->progs.ftvm_steer),
			     flags, NULL);
	if (err) {
		err = dp_err(err, "cannot attach XDP to %s in %s mode: %s",
			     ifname(ifindex, dev),
			     mode == FTVM_XDP_GENERIC ? "generic" : "native",
			     strerror(-err));
		if (!watched)
			unwatch(pin_dir);
	}
cleanup:
	ftvm_steer__destroy(skel);
	return err;
}

int ftvm_dp_detach_xdp(int ifindex)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	char dev[IF_NAMESIZE], name[BPF_OBJ_NAME_LEN] = "";
	uint32_t flags;
	int err;

	if (bpf_xdp_query(ifindex, 0, &q))
		return dp_err(-errno, "cannot query XDP on %s: %s",
			      ifname(ifindex, dev), strerror(errno));
	if (!q.prog_id)
		return dp_err(-ENOENT, "%s has no XDP program",
			      ifname(ifindex, dev));
	prog_name_of(q.prog_id, name, sizeof(name));
	if (strcmp(name, "ftvm_steer"))
		return dp_err(-EBUSY, "the XDP program on %s is %s, not ftvm_steer",
			      ifname(ifindex, dev), name);
	flags = q.attach_mode == XDP_ATTACHED_SKB ? XDP_FLAGS_SKB_MODE :
		q.attach_mode == XDP_ATTACHED_HW ? XDP_FLAGS_HW_MODE :
		XDP_FLAGS_DRV_MODE;
	err = bpf_xdp_detach(ifindex, flags, NULL);
	if (err)
		return dp_err(err, "cannot detach XDP from %s: %s",
			      ifname(ifindex, dev), strerror(-err));
	return 0;
}

int ftvm_dp_attach_fence(const char *pin_dir, int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, to, .handle = FENCE_TC_HANDLE,
		    .priority = FENCE_TC_PRIO, .flags = BPF_TC_F_REPLACE);
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	struct ftvm_fence *skel;
	char dev[IF_NAMESIZE];
	int err;

	pin_dir = ftvm_dp_pin_dir(pin_dir);
	err = ftvm_dp_prepare_pin_dir(pin_dir);
	if (!err)
		err = check_existing_pins(pin_dir);
	if (err)
		return err;
	oo.pin_root_path = pin_dir;
	skel = ftvm_fence__open_opts(&oo);
	if (!skel)
		return dp_err(-errno, "cannot open ftvm_fence: %s",
			      strerror(errno));
	err = ftvm_dp_obj_reuse_pins(skel->obj, pin_dir);
	if (err)
		goto cleanup;
	err = ftvm_fence__load(skel);
	if (err) {
		err = dp_err(err, "cannot load ftvm_fence (pins in %s): %s",
			     pin_dir, strerror(-err));
		goto cleanup;
	}
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST) {
		err = dp_err(err, "cannot add clsact to %s: %s",
			     ifname(ifindex, dev), strerror(-err));
		goto cleanup;
	}
	to.prog_fd = bpf_program__fd(skel->progs.ftvm_fence);
	err = bpf_tc_attach(&hook, &to);
	if (err)
		err = dp_err(err, "cannot attach ftvm_fence to %s: %s",
			     ifname(ifindex, dev), strerror(-err));
cleanup:
	ftvm_fence__destroy(skel);
	return err;
}

int ftvm_dp_detach_fence(int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, to, .handle = FENCE_TC_HANDLE,
		    .priority = FENCE_TC_PRIO);
	char dev[IF_NAMESIZE];
	int err;

	err = bpf_tc_query(&hook, &to);
	if (err)
		return dp_err(-ENOENT, "%s has no ftvm_fence filter",
			      ifname(ifindex, dev));
	to.prog_fd = to.prog_id = 0;
	to.flags = 0;
	err = bpf_tc_detach(&hook, &to);
	if (err)
		return dp_err(err, "cannot detach ftvm_fence from %s: %s",
			      ifname(ifindex, dev), strerror(-err));
	return 0;
}
