// SPDX-License-Identifier: GPL-2.0
/*
 * ftvm.ko: per-session fault tolerance for the VMs of a hypervisor host.
 *
 * Subsystems come up in dependency order and go down in exact reverse:
 * the per-netns VM registry, the ingress hold its failures arm, the
 * per-netns session stores, strict output
 * commit (which stages into those stores), the netdevice notifier that
 * detects failed VMs, the watch on VMs' killed processes (exit.c), and
 * last the generic netlink family that exposes them (so that no request
 * can arrive before everything behind it exists).  The kprobes of exit.c
 * go in after the family and out before it, and the notifier stops
 * failing VMs before it too, so that no event is sent without it; the
 * rest goes down in exact reverse.
 */
#include <linux/module.h>
#include <net/genetlink.h>

#include "uapi/ftvm.h"
#include "commit.h"
#include "device.h"
#include "exit.h"
#include "hold.h"
#include "netlink.h"
#include "state.h"
#include "vm.h"

static int __init ftvm_init(void)
{
	int err;

	err = ftvm_vm_init();
	if (err)
		return err;
	err = ftvm_state_init();
	if (err)
		goto err_vm;
	/*
	 * After the state store: the hold's hook looks staged records up,
	 * so it goes first, from every namespace and at unload.
	 */
	err = ftvm_hold_init();
	if (err)
		goto err_state;
	err = ftvm_commit_init();
	if (err)
		goto err_hold;
	err = ftvm_device_init();
	if (err)
		goto err_commit;
	err = ftvm_exit_init();
	if (err)
		goto err_device;
	err = ftvm_genl_init();
	if (err)
		goto err_exit;
	ftvm_exit_start();
	pr_info("loaded, netlink family %s version %d\n", FTVM_GENL_NAME,
		FTVM_GENL_VERSION);
	return 0;

err_exit:
	ftvm_exit_uninit();
err_device:
	ftvm_device_uninit();
err_commit:
	ftvm_commit_uninit();
err_hold:
	ftvm_hold_uninit();
err_state:
	ftvm_state_uninit();
err_vm:
	ftvm_vm_uninit();
	return err;
}

static void __exit ftvm_exit(void)
{
	/* Nothing may send an event once the family is gone. */
	ftvm_exit_stop();
	ftvm_device_stop();
	ftvm_genl_uninit();
	ftvm_exit_uninit();
	ftvm_device_uninit();
	ftvm_commit_uninit();
	ftvm_hold_uninit();
	ftvm_state_uninit();
	ftvm_vm_uninit();
	pr_info("unloaded\n");
}

module_init(ftvm_init);
module_exit(ftvm_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("ftvm: per-session fault tolerance for VMs");
MODULE_AUTHOR("The ftvm developers");
MODULE_ALIAS_GENL_FAMILY(FTVM_GENL_NAME);
