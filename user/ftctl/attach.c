// SPDX-License-Identifier: GPL-2.0
/*
 * ftctl attach / detach: put the data plane on a device, or take it off.
 *
 *   ftctl attach DEV [mode { native | generic }]   ftvm_steer (XDP), host NIC
 *   ftctl attach DEV fence                         ftvm_fence (tc ingress),
 *                                                  host side of a VM device
 *   ftctl detach DEV [fence]
 *
 * Maps are pinned by name under $FTVM_PIN_DIR or /sys/fs/bpf/tc/globals,
 * where "ip link set dev DEV xdp obj ftvm_steer.bpf.o sec xdp" puts them.
 */
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "ftctl.h"

static void attach_usage(FILE *f)
{
	fprintf(f,
		"Usage: ftctl attach DEV [mode { native | generic }]\n"
		"       ftctl attach DEV fence\n"
		"       ftctl detach DEV [fence]\n"
		"ftvm_steer (XDP) goes on the host NIC that receives client traffic;\n"
		"ftvm_fence (tc ingress) on the host side of each VM's tap or veth.\n"
		"Maps are pinned under %s (or $FTVM_PIN_DIR).\n",
		FTVM_DP_PIN_DIR);
}

static int dev_index(const char *dev)
{
	int ifindex = (int)if_nametoindex(dev);

	if (!ifindex)
		pr_err("device \"%s\" does not exist", dev);
	return ifindex;
}

int cmd_attach(int argc, char **argv)
{
	enum ftvm_xdp_mode mode = FTVM_XDP_NATIVE;
	bool fence = false;
	const char *dev;
	int ifindex;

	if (argc < 1 || matches(argv[0], "help")) {
		attach_usage(argc < 1 ? stderr : stdout);
		return argc < 1;
	}
	dev = argv[0];
	while (NEXT_ARG_OK()) {
		NEXT_ARG();
		if (!strcmp(argv[0], "mode")) {
			if (!NEXT_ARG_OK())
				return missing_arg("mode");
			NEXT_ARG();
			if (matches(argv[0], "native") ||
			    matches(argv[0], "driver")) {
				mode = FTVM_XDP_NATIVE;
			} else if (matches(argv[0], "generic") ||
				   matches(argv[0], "skb")) {
				mode = FTVM_XDP_GENERIC;
			} else {
				pr_err("mode is native or generic, not \"%s\"",
				       argv[0]);
				return 1;
			}
		} else if (matches(argv[0], "fence")) {
			fence = true;
		} else {
			return unknown_arg("attach", argv[0]);
		}
	}
	ifindex = dev_index(dev);
	if (!ifindex)
		return 1;
	if (fence ? ftvm_dp_attach_fence(NULL, ifindex) :
		    ftvm_dp_attach_xdp(NULL, ifindex, mode)) {
		ftctl_dp_err();
		return 1;
	}
	return 0;
}

int cmd_detach(int argc, char **argv)
{
	bool fence = false;
	const char *dev;
	int ifindex;

	if (argc < 1 || matches(argv[0], "help")) {
		attach_usage(argc < 1 ? stderr : stdout);
		return argc < 1;
	}
	dev = argv[0];
	while (NEXT_ARG_OK()) {
		NEXT_ARG();
		if (matches(argv[0], "fence"))
			fence = true;
		else
			return unknown_arg("detach", argv[0]);
	}
	ifindex = dev_index(dev);
	if (!ifindex)
		return 1;
	if (fence ? ftvm_dp_detach_fence(ifindex) :
		    ftvm_dp_detach_xdp(ifindex)) {
		ftctl_dp_err();
		return 1;
	}
	return 0;
}
