// SPDX-License-Identifier: GPL-2.0
/*
 * Silent exit: a VM whose processes are killed dies as a VM would.
 *
 * When a process is killed, its kernel closes its sockets: a TCP
 * connection sends a FIN (an RST when unread data is tossed), a killed
 * listener resets the children it never accepted, and every packet the
 * client sends afterwards meets an RST.  A VM whose own kernel died
 * sends none of this, and its sessions go on from their backups; a VM
 * that is a network namespace outlives its processes, and the client
 * would see its connection end before ftd noticed anything.
 *
 * A VM registered with FTVM_A_VM_SILENT_EXIT (it needs its namespace)
 * is watched.  When a process of that namespace dies of SIGKILL or of a
 * signal that dumps core (a crash), the TCP connections it had end
 * without a packet, and the namespace is muted:
 *
 *  - a kprobe on __tcp_close() (entered from tcp_close() with the socket
 *    owned, lock_sock(), by the exiting task) keeps an established or
 *    close-wait connection as it is: it orphans the socket as
 *    __tcp_close() would (sock_orphan(), the orphan's reference and
 *    count) and returns from __tcp_close() at once (x86-64: the probe
 *    sends the function to a bare return).  The connection stays in the
 *    namespace, established and muted, its queues intact and still
 *    filling with what the client sends, so that ftd's last dump of the
 *    failed VM takes it as it is at failover: nothing a relaxed session
 *    did is lost to the kill.  Kept connections are reaped silently
 *    (tp->repair, tcp_disconnect() without a reset, destroyed as
 *    __tcp_close() destroys a closed orphan) FTVM_EXIT_KEEP after the
 *    kill, when the VM is brought back up, or when the watch ends.
 *    Where a connection cannot be kept (another architecture, a ULP, no
 *    memory, FTVM_EXIT_KEPT_MAX reached) the probe sets tp->repair
 *    instead: __tcp_close() takes its repair branch and the socket goes
 *    away without a packet, as CRIU relies on for a checkpointed task.
 *    Either is safe there: the lock is owned, so neither input
 *    (backlogged) nor timers (deferred) touch the socket.  A kprobe on
 *    sk_common_release() sees UDP sockets bound to a port.
 *  - Either one mutes the namespace before its close can send anything:
 *    a netfilter hook at LOCAL_OUT, first, drops what the namespace
 *    sends off its loopback (the RSTs its kernel would answer with, ICMP
 *    port unreachables, the FINs of whatever was not established).
 *  - A work item declares the VM failed (FTVM_FAIL_KILLED) with the
 *    usual event, and ftd fails its sessions over to their backups.
 *
 * A plain exit() or a polite signal (SIGTERM, SIGINT, SIGHUP, ...)
 * closes as usual: an application that ends on purpose expects its
 * clients to see the end.  The mute lasts until the VM is brought back
 * up or stops being watched.
 *
 * Locking.  Who watches a namespace (host, fn, vm_id) is under RTNL, as
 * the registry is; the registry holds no reference on the host
 * namespace, but a VM leaving it (ftvm_vm_remove(), under RTNL) disarms,
 * so under RTNL a watcher is alive.  The probes and the hook read only
 * @armed and @muted, locklessly.  The hooks are registered on the first
 * arming and stay until the namespace goes.  On unload the probes go
 * first (unregister_kprobe() waits for running handlers), then pending
 * work is drained before the netlink family goes.
 */
#include <linux/kprobes.h>
#include <linux/linkage.h>
#include <linux/objtool.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <linux/rtnetlink.h>
#include <linux/sched/signal.h>
#include <linux/workqueue.h>
#include <net/mptcp.h>
#include <net/netns/generic.h>
#include <net/tcp.h>

#include "uapi/ftvm.h"
#include "exit.h"
#include "netlink.h"

/* Kept connections are reaped this long after the kill at the latest. */
#define FTVM_EXIT_KEEP		(10 * HZ)
/* Connections one namespace may keep. */
#define FTVM_EXIT_KEPT_MAX	65536

struct ftvm_kept {
	struct list_head node;
	struct sock *sk;		/* referenced */
};

struct ftvm_xnet {
	struct net *net;
	struct list_head armed_node;	/* ftvm_exit_armed; RTNL */
	/* Who watches us; RTNL. */
	struct net *host;		/* NULL: nobody; not counted */
	struct ftvm_net *fn;
	u32 vm_id;
	bool hooked;
	/* The probes and the hook read these without a lock. */
	bool armed, muted;
	int signal;			/* the signal that killed (for the log) */
	struct work_struct work;
	/* Connections kept by the probe (irqsave: the probe may run anywhere). */
	spinlock_t kept_lock;
	struct list_head kept;
	unsigned int n_kept;
	struct delayed_work reap;
	struct nf_hook_ops ops[2];
};

static unsigned int ftvm_xnet_id __read_mostly;
static struct workqueue_struct *ftvm_exit_wq;
static bool ftvm_exit_live;		/* the probes are in; RTNL */
static LIST_HEAD(ftvm_exit_armed);	/* namespaces watched; RTNL */

static struct ftvm_xnet *ftvm_xnet(const struct net *net)
{
	return net_generic(net, ftvm_xnet_id);
}

/*
 * The current task is dying of SIGKILL or of a signal that dumps core.
 * The group's exit code carries the signal in its low 7 bits; an
 * exit() carries a status in the next byte.
 */
static int ftvm_exit_killed(void)
{
	const struct signal_struct *sig = current->signal;
	int code;

	if (!(current->flags & PF_EXITING) ||
	    !(READ_ONCE(sig->flags) & SIGNAL_GROUP_EXIT))
		return 0;
	code = READ_ONCE(sig->group_exit_code) & 0x7f;
	if (code == SIGKILL || sig_kernel_coredump(code))
		return code;
	return 0;
}

static void ftvm_exit_mute(struct ftvm_xnet *xn, int signal)
{
	if (!READ_ONCE(xn->muted)) {
		WRITE_ONCE(xn->signal, signal);
		WRITE_ONCE(xn->muted, true);
	}
	queue_work(ftvm_exit_wq, &xn->work);
}

#ifdef CONFIG_X86_64
/* Where a probed function returns at once: a bare return. */
asmlinkage void ftvm_exit_just_return(void);
asm(".text\n"
	".type ftvm_exit_just_return, @function\n"
	"ftvm_exit_just_return:\n"
	ANNOTATE_NOENDBR
	ASM_RET
	".size ftvm_exit_just_return, .-ftvm_exit_just_return\n");

/*
 * Keep @sk, which a killed task is closing (its lock owned), as it is:
 * orphaned as __tcp_close() orphans a socket, on @xn's list.  Then
 * __tcp_close() must not run: the caller returns from it at once.
 */
static bool ftvm_exit_keep(struct ftvm_xnet *xn, struct sock *sk)
{
	unsigned long flags;
	struct ftvm_kept *k;

	if (inet_csk(sk)->icsk_ulp_ops || READ_ONCE(xn->n_kept) >= FTVM_EXIT_KEPT_MAX)
		return false;
	k = kmalloc(sizeof(*k), GFP_ATOMIC | __GFP_NOWARN);
	if (!k)
		return false;
	sock_hold(sk);			/* ours */
	k->sk = sk;
	/* __tcp_close()'s adjudge_to_death, without closing. */
	sock_hold(sk);			/* the orphan's own */
	write_lock_irqsave(&sk->sk_callback_lock, flags);
	sock_set_flag(sk, SOCK_DEAD);
	sk_set_socket(sk, NULL);
	sk->sk_wq = NULL;
	write_unlock_irqrestore(&sk->sk_callback_lock, flags);
	this_cpu_inc(*sk->sk_prot->orphan_count);
	spin_lock_irqsave(&xn->kept_lock, flags);
	list_add_tail(&k->node, &xn->kept);
	xn->n_kept++;
	spin_unlock_irqrestore(&xn->kept_lock, flags);
	return true;
}
#endif

/*
 * The watch of the namespace of the socket a probed function closes
 * (its first argument, *@skp), if a killed task closes it there; NULL
 * for every other close, at the cost of a load and a branch.
 */
static struct ftvm_xnet *ftvm_exit_probed(struct pt_regs *regs,
					  struct sock **skp, int *signal)
{
	struct sock *sk = (struct sock *)regs_get_kernel_argument(regs, 0);
	struct ftvm_xnet *xn;

	*signal = ftvm_exit_killed();
	if (likely(!*signal))
		return NULL;
	xn = ftvm_xnet(sock_net(sk));
	if (!READ_ONCE(xn->armed))
		return NULL;
	*skp = sk;
	return xn;
}

/* __tcp_close(sk, timeout): tcp_close() holds the socket's lock. */
static int ftvm_exit_tcp_close(struct kprobe *p, struct pt_regs *regs)
{
	struct ftvm_xnet *xn;
	struct sock *sk;
	int signal;

	xn = ftvm_exit_probed(regs, &sk, &signal);
	if (!xn || sk_is_mptcp(sk) || sk->sk_state == TCP_CLOSE)
		return 0;
	ftvm_exit_mute(xn, signal);
	if (!((1 << sk->sk_state) & (TCPF_ESTABLISHED | TCPF_CLOSE_WAIT)))
		return 0;
#ifdef CONFIG_X86_64
	if (ftvm_exit_keep(xn, sk)) {
		mod_delayed_work(ftvm_exit_wq, &xn->reap, FTVM_EXIT_KEEP);
		instruction_pointer_set(regs, (unsigned long)ftvm_exit_just_return);
		return 1;	/* @regs changed: __tcp_close() returns */
	}
#endif
	tcp_sk(sk)->repair = 1;
	return 0;
}

/* An ipmodify probe (the only kind whose handler may change the ip). */
static void ftvm_exit_post(struct kprobe *p, struct pt_regs *regs,
			   unsigned long flags)
{
}

/* sk_common_release(sk): UDP's close, among others. */
static int ftvm_exit_udp_close(struct kprobe *p, struct pt_regs *regs)
{
	struct ftvm_xnet *xn;
	struct sock *sk;
	int signal;

	xn = ftvm_exit_probed(regs, &sk, &signal);
	if (xn && (sk->sk_family == AF_INET || sk->sk_family == AF_INET6) &&
	    sk->sk_type == SOCK_DGRAM && sk->sk_protocol == IPPROTO_UDP &&
	    inet_sk(sk)->inet_num)
		ftvm_exit_mute(xn, signal);
	return 0;
}

static struct kprobe ftvm_exit_kp[] = {
	{ .symbol_name = "__tcp_close", .pre_handler = ftvm_exit_tcp_close,
	  .post_handler = ftvm_exit_post },
	{ .symbol_name = "sk_common_release",
	  .pre_handler = ftvm_exit_udp_close },
};
static bool ftvm_exit_kp_on[ARRAY_SIZE(ftvm_exit_kp)];

/* What a muted namespace sends off its loopback goes nowhere. */
static unsigned int ftvm_exit_hook(void *priv, struct sk_buff *skb,
				   const struct nf_hook_state *state)
{
	struct ftvm_xnet *xn = priv;

	if (likely(!READ_ONCE(xn->muted)) ||
	    (state->out && (state->out->flags & IFF_LOOPBACK)))
		return NF_ACCEPT;
	return NF_DROP;
}

/*
 * Close every connection @xn keeps, without a packet, as __tcp_close()
 * closes a repair socket: tcp_disconnect() (no reset), then destroyed as
 * a closed orphan.  One the stack closed meanwhile (a reset from the
 * client, its timers) is destroyed already.  Process context.
 */
static void ftvm_exit_reap(struct ftvm_xnet *xn)
{
	struct ftvm_kept *k, *tmp;
	LIST_HEAD(list);

	spin_lock_irq(&xn->kept_lock);
	list_splice_init(&xn->kept, &list);
	xn->n_kept = 0;
	spin_unlock_irq(&xn->kept_lock);
	list_for_each_entry_safe(k, tmp, &list, node) {
		struct sock *sk = k->sk;

		lock_sock(sk);
		if (sk->sk_state != TCP_CLOSE) {
			tcp_sk(sk)->repair = 1;
			sk->sk_prot->disconnect(sk, 0);
			local_bh_disable();
			bh_lock_sock(sk);
			inet_csk_destroy_sock(sk);
			bh_unlock_sock(sk);
			local_bh_enable();
		}
		release_sock(sk);
		sock_put(sk);
		kfree(k);
	}
}

static void ftvm_exit_reap_work(struct work_struct *work)
{
	ftvm_exit_reap(container_of(to_delayed_work(work), struct ftvm_xnet,
				    reap));
}

/* A killed process closed sockets: fail the VM that watches us. */
static void ftvm_exit_work(struct work_struct *work)
{
	struct ftvm_xnet *xn = container_of(work, struct ftvm_xnet, work);
	struct ftvm_vm *vm;

	rtnl_lock();
	if (!ftvm_exit_live || !xn->armed || !xn->fn)
		goto out;
	vm = ftvm_vm_find(xn->fn, xn->vm_id);
	if (!vm || rcu_access_pointer(vm->netns) != xn->net)
		goto out;
	if (ftvm_vm_set_failed(xn->fn, vm, FTVM_FAIL_KILLED)) {
		pr_info("vm %u (%s): a process was killed by signal %d; its connections ended silently, the VM is failed and muted\n",
			vm->id, vm->name, READ_ONCE(xn->signal));
		ftvm_nl_notify_vm(xn->host, vm, FTVM_CMD_VM_FAILED);
	}
out:
	rtnl_unlock();
}

int ftvm_exit_arm(struct net *host, u32 id, struct net *vnet,
		  struct netlink_ext_ack *extack)
{
	struct ftvm_net *fn = ftvm_net(host);
	struct ftvm_xnet *xn;
	int err;

	ASSERT_RTNL();
	if (!ftvm_exit_live) {
		NL_SET_ERR_MSG(extack, "silent exit is not available: this kernel has no __tcp_close() to probe");
		return -EOPNOTSUPP;
	}
	if (!vnet) {
		NL_SET_ERR_MSG(extack, "silent exit needs the VM's network namespace (netns)");
		return -EINVAL;
	}
	if (vnet == host || net_eq(vnet, &init_net)) {
		NL_SET_ERR_MSG(extack, "silent exit would mute the host: the VM's namespace is the registry's own or the initial one");
		return -EINVAL;
	}
	xn = ftvm_xnet(vnet);
	if (xn->fn && (xn->fn != fn || xn->vm_id != id)) {
		NL_SET_ERR_MSG(extack, "another VM already watches this network namespace for killed processes");
		return -EBUSY;
	}
	if (!xn->hooked) {
		err = nf_register_net_hooks(vnet, xn->ops, ARRAY_SIZE(xn->ops));
		if (err) {
			NL_SET_ERR_MSG(extack, "cannot hook the VM's namespace");
			return err;
		}
		xn->hooked = true;
	}
	xn->host = host;
	xn->fn = fn;
	xn->vm_id = id;
	if (list_empty(&xn->armed_node))
		list_add(&xn->armed_node, &ftvm_exit_armed);
	WRITE_ONCE(xn->armed, true);
	return 0;
}

static void __ftvm_exit_disarm(struct ftvm_xnet *xn)
{
	WRITE_ONCE(xn->armed, false);
	/* What was kept goes before anything may be heard from here. */
	ftvm_exit_reap(xn);
	WRITE_ONCE(xn->muted, false);
	list_del_init(&xn->armed_node);
	xn->host = NULL;
	xn->fn = NULL;
	xn->vm_id = 0;
}

/* The watcher of @vm's namespace, if it is @vm. */
static struct ftvm_xnet *ftvm_exit_of(struct ftvm_net *fn,
				      const struct ftvm_vm *vm)
{
	struct net *vnet = rcu_dereference_rtnl(vm->netns);
	struct ftvm_xnet *xn;

	ASSERT_RTNL();
	if (!ftvm_exit_live || !vm->silent_exit || !vnet)
		return NULL;
	xn = ftvm_xnet(vnet);
	return xn->fn == fn && xn->vm_id == vm->id ? xn : NULL;
}

void ftvm_exit_disarm(struct ftvm_net *fn, const struct ftvm_vm *vm)
{
	struct ftvm_xnet *xn = ftvm_exit_of(fn, vm);

	if (xn)
		__ftvm_exit_disarm(xn);
}

void ftvm_exit_vm_up(struct ftvm_net *fn, const struct ftvm_vm *vm)
{
	struct ftvm_xnet *xn = ftvm_exit_of(fn, vm);

	if (xn) {
		ftvm_exit_reap(xn);
		WRITE_ONCE(xn->muted, false);
	}
}

static int __net_init ftvm_xnet_init(struct net *net)
{
	struct ftvm_xnet *xn = ftvm_xnet(net);
	int i;

	xn->net = net;
	INIT_LIST_HEAD(&xn->armed_node);
	INIT_WORK(&xn->work, ftvm_exit_work);
	spin_lock_init(&xn->kept_lock);
	INIT_LIST_HEAD(&xn->kept);
	INIT_DELAYED_WORK(&xn->reap, ftvm_exit_reap_work);
	for (i = 0; i < ARRAY_SIZE(xn->ops); i++) {
		xn->ops[i].hook = ftvm_exit_hook;
		xn->ops[i].hooknum = NF_INET_LOCAL_OUT;
		xn->ops[i].priority = INT_MIN;
		xn->ops[i].priv = xn;
	}
	xn->ops[0].pf = NFPROTO_IPV4;
	xn->ops[1].pf = NFPROTO_IPV6;
	return 0;
}

/*
 * A dying namespace has no socket left (a kept one holds it, so none is
 * kept), so no probe can queue our work again; a registry that still
 * names us forgets us (vm.c) under RTNL before the namespace is freed,
 * and checks our netns before using us.  On unload this runs for every
 * namespace, after the probes are gone: what is still kept goes.
 */
static void __net_exit ftvm_xnet_exit(struct net *net)
{
	struct ftvm_xnet *xn = ftvm_xnet(net);

	rtnl_lock();
	list_del_init(&xn->armed_node);
	rtnl_unlock();
	cancel_work_sync(&xn->work);
	cancel_delayed_work_sync(&xn->reap);
	/* Only on unload can a live namespace still keep connections. */
	ftvm_exit_reap(xn);
	if (xn->hooked)
		nf_unregister_net_hooks(net, xn->ops, ARRAY_SIZE(xn->ops));
}

static struct pernet_operations ftvm_xnet_ops = {
	.init = ftvm_xnet_init,
	.exit = ftvm_xnet_exit,
	.id = &ftvm_xnet_id,
	.size = sizeof(struct ftvm_xnet),
};

int __init ftvm_exit_init(void)
{
	int err;

	ftvm_exit_wq = alloc_workqueue("ftvm_exit", WQ_UNBOUND, 0);
	if (!ftvm_exit_wq)
		return -ENOMEM;
	err = register_pernet_subsys(&ftvm_xnet_ops);
	if (err)
		destroy_workqueue(ftvm_exit_wq);
	return err;
}

void __init ftvm_exit_start(void)
{
	int i, err;

	for (i = 0; i < ARRAY_SIZE(ftvm_exit_kp); i++) {
		err = register_kprobe(&ftvm_exit_kp[i]);
		if (err)
			pr_warn("cannot probe %s (%d): silent exit is %s\n",
				ftvm_exit_kp[i].symbol_name, err,
				i ? "blind to UDP" : "not available");
		ftvm_exit_kp_on[i] = !err;
	}
	rtnl_lock();
	ftvm_exit_live = ftvm_exit_kp_on[0];
	rtnl_unlock();
}

void ftvm_exit_stop(void)
{
	struct ftvm_xnet *xn, *tmp;
	int i;

	for (i = 0; i < ARRAY_SIZE(ftvm_exit_kp); i++)
		if (ftvm_exit_kp_on[i])
			unregister_kprobe(&ftvm_exit_kp[i]);
	/* No task is left between a probe and ftvm_exit_just_return. */
	synchronize_rcu_tasks();
	rtnl_lock();
	ftvm_exit_live = false;
	list_for_each_entry_safe(xn, tmp, &ftvm_exit_armed, armed_node)
		__ftvm_exit_disarm(xn);
	rtnl_unlock();
	drain_workqueue(ftvm_exit_wq);
}

void ftvm_exit_uninit(void)
{
	unregister_pernet_subsys(&ftvm_xnet_ops);
	destroy_workqueue(ftvm_exit_wq);
}
