// SPDX-License-Identifier: GPL-2.0
/*
 * ftvm_steer's devmaps.  Every loaded copy of the program has a devmap of
 * its own (bpf/ftvm_steer.bpf.c says why it is not pinned); the copies
 * that steer for one data plane are the ftvm_steer programs whose maps
 * include that data plane's ftvm_vms.  These functions find them through
 * the kernel's program list and keep their devmaps equal to ftvm_vms'
 * ifindexes.  A slot left empty is not an outage: the program then
 * redirects by ifindex, and counts it (devmap_miss).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "steer.h"
#include "steer_int.h"

#define STEER_PROG_NAME	"ftvm_steer"
#define DEVMAP_NAME	"ftvm_devmap"
/* ftvm_steer has a dozen maps; room for a few more. */
#define MAX_PROG_MAPS	32

static int map_id_of(int fd, uint32_t *id)
{
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	*id = info.id;
	return 0;
}

/*
 * If program @prog_id is an ftvm_steer that uses the map @vms_id, open
 * its devmap: a file descriptor, 0 if the program is not one of ours
 * (or went away meanwhile), or a negative errno.
 */
static int steer_devmap(uint32_t prog_id, uint32_t vms_id)
{
	uint32_t ids[MAX_PROG_MAPS], len, n;
	struct bpf_prog_info info = {};
	int pfd, fd = 0;
	bool ours = false;

	pfd = bpf_prog_get_fd_by_id(prog_id);
	if (pfd < 0)
		return errno == ENOENT ? 0 : -errno;
	len = sizeof(info);
	info.nr_map_ids = MAX_PROG_MAPS;
	info.map_ids = (uint64_t)(unsigned long)ids;
	if (bpf_obj_get_info_by_fd(pfd, &info, &len)) {
		fd = -errno;
		goto out;
	}
	if (info.type != BPF_PROG_TYPE_XDP ||
	    strcmp(info.name, STEER_PROG_NAME))
		goto out;
	n = info.nr_map_ids < MAX_PROG_MAPS ? info.nr_map_ids : MAX_PROG_MAPS;
	for (uint32_t i = 0; i < n; i++)
		ours |= ids[i] == vms_id;
	for (uint32_t i = 0; ours && i < n && !fd; i++) {
		struct bpf_map_info mi = {};
		uint32_t mlen = sizeof(mi);
		int mfd = bpf_map_get_fd_by_id(ids[i]);

		if (mfd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(mfd, &mi, &mlen) &&
		    mi.type == BPF_MAP_TYPE_DEVMAP &&
		    !strcmp(mi.name, DEVMAP_NAME))
			fd = mfd;
		else
			close(mfd);
	}
out:
	close(pfd);
	return fd;
}

static int devmap_put(int devmap, uint32_t vm_id, uint32_t ifindex)
{
	if (ifindex) {
		if (bpf_map_update_elem(devmap, &vm_id, &ifindex, BPF_ANY))
			return dp_err(-errno, "cannot put ifindex %u in a devmap slot: %s%s",
				      ifindex, strerror(errno),
				      errno == EINVAL ? " (no such device here?)" : "");
	} else if (bpf_map_delete_elem(devmap, &vm_id) && errno != ENOENT) {
		return dp_err(-errno, "cannot clear devmap slot %u: %s", vm_id,
			      strerror(errno));
	}
	return 0;
}

int ftvm_dp_devmap_fill(int devmap, int vms_fd)
{
	for (uint32_t id = FTVM_VM_ID_MIN; id <= FTVM_VM_ID_MAX; id++) {
		struct ftvm_vm vm;
		int err;

		if (bpf_map_lookup_elem(vms_fd, &id, &vm))
			return dp_err(-errno, "cannot read VM %u: %s", id,
				      strerror(errno));
		err = devmap_put(devmap, id, vm.ifindex);
		/* A device gone since: the program redirects by ifindex. */
		if (err && err != -EINVAL)
			return err;
	}
	return 0;
}

static bool seen_has(const struct ftvm_dp_devmaps *seen, uint32_t id)
{
	for (unsigned int i = 0; seen && i < seen->n; i++)
		if (seen->prog_id[i] == id)
			return true;
	return false;
}

/*
 * Visit every ftvm_steer that steers with @vms_fd: @vm_id != 0 sets that
 * one slot to @ifindex in each; @vm_id == 0 fills the devmaps of the
 * programs @seen does not list yet, then makes @seen the current list.
 */
static int devmaps_visit(int vms_fd, uint32_t vm_id, uint32_t ifindex,
			 struct ftvm_dp_devmaps *seen)
{
	struct ftvm_dp_devmaps now = { .n = 0 };
	uint32_t vms_id = 0, id = 0;
	int err, n = 0;

	err = map_id_of(vms_fd, &vms_id);
	if (err)
		return dp_err(err, "cannot read the VM map: %s", strerror(-err));
	while (!bpf_prog_get_next_id(id, &id)) {
		int fd = steer_devmap(id, vms_id);

		if (fd < 0)
			return dp_err(fd, "cannot inspect BPF program %u: %s",
				      id, strerror(-fd));
		if (!fd)
			continue;
		if (vm_id)
			err = devmap_put(fd, vm_id, ifindex);
		else if (!seen_has(seen, id))
			err = ftvm_dp_devmap_fill(fd, vms_fd);
		close(fd);
		if (err)
			return err;
		if (now.n < FTVM_DP_MAX_STEER_PROGS)
			now.prog_id[now.n++] = id;
		n++;
	}
	if (errno != ENOENT)
		return dp_err(-errno, "cannot list BPF programs: %s",
			      strerror(errno));
	if (!vm_id && seen)
		*seen = now;
	return n;
}

int ftvm_dp_devmaps_set(int vms_fd, uint32_t vm_id, int ifindex)
{
	if (vm_id < FTVM_VM_ID_MIN || vm_id > FTVM_VM_ID_MAX)
		return dp_err(-EINVAL, "VM id %u out of range", vm_id);
	return devmaps_visit(vms_fd, vm_id, ifindex > 0 ? (uint32_t)ifindex : 0,
			     NULL);
}

int ftvm_dp_devmaps_sync(int vms_fd, struct ftvm_dp_devmaps *seen)
{
	return devmaps_visit(vms_fd, 0, 0, seen);
}
