// SPDX-License-Identifier: GPL-2.0
/*
 * ftd: start, recover, run the event loop, stop.
 *
 *   ftd [-f CONFIG] [-s SOCKET] [-P PIN_DIR] [-d] [-v] [--check]
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "ftd.h"

struct ftd ftd = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.kick = PTHREAD_COND_INITIALIZER,
};
int ftd_epoll_fd = -1;
static int verbose;

void ftd_log(int level, const char *fmt, ...)
{
	static const char *const names[] = {
		[LOG_ERR] = "error", [LOG_WARN] = "warning",
		[LOG_INFO] = "info", [LOG_DBG] = "debug",
	};
	char msg[1024];
	va_list ap;

	if (level == LOG_DBG && !verbose)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* "<N>" lets journald keep the level; one write per line. */
	fprintf(stderr, "<%d>ftd: %s: %s\n", level, names[level], msg);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ftd [OPTIONS]\n"
		"  -f, --config FILE    configuration (default %s)\n"
		"  -s, --socket PATH    control socket (default %s)\n"
		"  -P, --pin-dir DIR    steering maps on bpffs (default %s)\n"
		"  -d, --daemon         detach and run in the background\n"
		"  -c, --check          check the configuration and exit\n"
		"  -v, --verbose        debug messages\n"
		"  -h, --help\n",
		FTD_CONF, FTD_SOCK, FTVM_DP_PIN_DIR);
}

static int add_fd(int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return fd < 0 ? 0 : epoll_ctl(ftd_epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

/* Put every configured VM into the steering maps (restart: as they are). */
static int vms_to_dataplane(void)
{
	for (uint32_t id = FTVM_VM_ID_MIN; id <= FTVM_VM_ID_MAX; id++) {
		struct ftd_vm *vm = &ftd.cfg.vms[id];
		struct ftvm_vm v = {};

		if (!vm->used)
			continue;
		vm->ifindex = (int)if_nametoindex(vm->dev);
		dp_vm_get(ftd.dp, id, &v);
		if (!vm->has_mac) {
			ftd_log(LOG_ERR, "vm %s: no MAC address known (give \"mac MAC\" in %s)",
				vm->name, ftd.cfg.path);
			return -EINVAL;
		}
		if (v.ifindex != (uint32_t)vm->ifindex ||
		    memcmp(v.mac, vm->mac, 6) || !v.ifindex) {
			if (dp_vm_set(ftd.dp, id, vm->ifindex, vm->mac,
				      v.flags & (FTVM_VM_F_FENCED |
						 FTVM_VM_F_DRAINING)))
				goto err;
		}
		if (vm->ifindex > 0 && dp_attach_fence(ftd.dp, vm->ifindex))
			goto err;
	}
	return 0;
err:
	ftd_log(LOG_ERR, "%s", dp_errmsg());
	return -EIO;
}

static void free_sessions(void)
{
	struct cds_lfht_iter it;
	struct ftd_session *s;

	urcu_memb_read_lock();
	cds_lfht_for_each_entry(ftd.sessions, &it, s, node)
		if (!cds_lfht_del(ftd.sessions, &s->node))
			free(s);	/* no reader left: threads are gone */
	urcu_memb_read_unlock();
	cds_lfht_destroy(ftd.sessions, NULL);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "config", required_argument, NULL, 'f' },
		{ "socket", required_argument, NULL, 's' },
		{ "pin-dir", required_argument, NULL, 'P' },
		{ "daemon", no_argument, NULL, 'd' },
		{ "check", no_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *conf = FTD_CONF, *sock = NULL, *pin = NULL;
	bool daemonize = false, check = false;
	pthread_t t_sync, t_rep, t_probe;
	struct epoll_event evs[32];
	struct dp_opts dpo = {};
	struct cfg_err cerr = {};
	sigset_t mask;
	int sfd, c, err;

	while ((c = getopt_long(argc, argv, "f:s:P:dcvh", lopts, NULL)) != -1) {
		switch (c) {
		case 'f': conf = optarg; break;
		case 's': sock = optarg; break;
		case 'P': pin = optarg; break;
		case 'd': daemonize = true; break;
		case 'c': check = true; break;
		case 'v': verbose = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ftd: unexpected argument \"%s\"\n", argv[optind]);
		return 1;
	}

	cfg_defaults(&ftd.cfg);
	err = cfg_load(conf, &ftd.cfg, &cerr);
	if (err == -ENOENT) {
		ftd_log(LOG_INFO, "%s does not exist: starting empty (ftctl changes will create it)",
			conf);
	} else if (err) {
		fprintf(stderr, "ftd: %s\nftd: refusing to start with an invalid configuration\n",
			cerr.msg);
		return 1;
	}
	if (sock)
		snprintf(ftd.cfg.sock, sizeof(ftd.cfg.sock), "%s", sock);
	if (pin)
		snprintf(ftd.cfg.pin_dir, sizeof(ftd.cfg.pin_dir), "%s", pin);
	if (check) {
		printf("%s: configuration is valid\n", conf);
		return 0;
	}

	failover_fault_init();
	urcu_memb_register_thread();
	ftd.start_ns = monotonic_ns();
	ftd.hash_seed = ftd.start_ns ^ ((uint64_t)getpid() << 32);
	if (model_init() || sessions_init()) {
		ftd_log(LOG_ERR, "out of memory");
		return 1;
	}

	err = detect_module_open();
	ftd.have_module = !err;
	if (ftd.have_module) {
		ftd_log(LOG_INFO, "ftvm.ko is loaded: VM registry and failure events from the kernel, state replication on");
	} else {
		ftd_log(LOG_WARN, "ftvm.ko is not loaded (%s): STATE REPLICATION IS OFF; failures are detected from rtnetlink link events and heartbeats only; steering, failover and re-protection still work",
			err == -ENOENT ? "no ftvm netlink family" : strerror(-err));
		err = detect_rtnl_open();
		if (err) {
			ftd_log(LOG_ERR, "rtnetlink: %s", strerror(-err));
			return 1;
		}
	}
	if (commit_check()) {
		ftd_log(LOG_ERR, "refusing to start");
		return 1;
	}

	dpo.pin_dir = ftd.cfg.pin_dir;
	err = dp_open(&dpo, &ftd.dp);
	if (err) {
		ftd_log(LOG_ERR, "data plane: %s", dp_errmsg());
		return 1;
	}

	/* Recover: the registry, the maps, then finish what was under way. */
	pthread_mutex_lock(&ftd.lock);
	if (ftd.have_module && module_sync_registry()) {
		pthread_mutex_unlock(&ftd.lock);
		return 1;
	}
	if (vms_to_dataplane() || model_recover()) {
		ftd_log(LOG_ERR, "cannot take over the data plane in %s: %s",
			ftd.cfg.pin_dir, dp_errmsg());
		pthread_mutex_unlock(&ftd.lock);
		return 1;
	}
	detect_link_check_all();
	pthread_mutex_unlock(&ftd.lock);
	/* After the VMs are written: a failure from here on steers at once. */
	if (ftd.have_module && dp_watch_failures(ftd.dp))
		ftd_log(LOG_WARN, "%s: a failed VM's sessions wait for ftd's switch", dp_errmsg());
	if (sessions_sync() < 0)
		return 1;
	/*
	 * A failover the killed ftd left unfinished takes the failed VM's
	 * last state, before the replication thread starts.
	 */
	if (ftd.have_module && (err = repl_open()))
		ftd_log(LOG_ERR, "state replication: %s; it is off", strerror(-err));
	pthread_mutex_lock(&ftd.lock);
	failover_resume();
	maglev_refresh_all();
	for (int i = 0; i < ftd.cfg.nattach; i++) {
		int ifi = (int)if_nametoindex(ftd.cfg.attach[i].dev);

		if (!ifi || dp_attach_xdp(ftd.dp, ifi, ftd.cfg.attach[i].generic)) {
			ftd_log(LOG_ERR, "attach %s: %s", ftd.cfg.attach[i].dev,
				ifi ? dp_errmsg() : "no such device");
			pthread_mutex_unlock(&ftd.lock);
			return 1;
		}
	}
	ftd_log(LOG_INFO, "recovered: %lu sessions, %ld without a backup",
		uatomic_read(&ftd.nsessions), unprotected_sessions());
	pthread_mutex_unlock(&ftd.lock);

	err = ctl_open(ftd.cfg.sock);
	if (err) {
		ftd_log(LOG_ERR, "control socket %s: %s", ftd.cfg.sock,
			err == -EADDRINUSE ? "another ftd is running" :
			strerror(-err));
		return 1;
	}
	/* After the socket: a second ftd must not touch the first one's. */
	if (commit_start()) {
		commit_stop();
		ctl_close();
		ftd_log(LOG_ERR, "refusing to start");
		return 1;
	}
	if (daemonize && daemon(0, 1)) {
		ftd_log(LOG_ERR, "daemon: %s", strerror(errno));
		return 1;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	ftd_epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || ftd_epoll_fd < 0 || add_fd(sfd) ||
	    add_fd(ctl_listen_fd()) || add_fd(detect_module_fd()) ||
	    add_fd(detect_rtnl_fd()) || add_fd(prober_fd())) {
		ftd_log(LOG_ERR, "event loop: %s", strerror(errno));
		return 1;
	}
	/*
	 * Replication first: the re-protection thread moves a draining VM's
	 * sessions with their state only once it runs (repl_running()), and
	 * one by one, stateless, without it: started before it, that thread
	 * would move a few of them so, and their clients would be reset.
	 */
	if (ftd.have_module && (err = repl_start()))
		ftd_log(LOG_ERR, "state replication: %s; it is off", strerror(-err));
	if (pthread_create(&t_sync, NULL, sync_thread, NULL) ||
	    pthread_create(&t_rep, NULL, reprotect_thread, NULL) ||
	    pthread_create(&t_probe, NULL, prober_thread, NULL)) {
		ftd_log(LOG_ERR, "threads: %s", strerror(errno));
		return 1;
	}
	reprotect_kick();
	ftd_log(LOG_INFO, "ready: control socket %s, maps in %s", ftd.cfg.sock,
		ftd.cfg.pin_dir);

	while (!ftd.stop) {
		int n = epoll_wait(ftd_epoll_fd, evs, ARRAY_SIZE(evs), -1);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == sfd) {
				struct signalfd_siginfo si;

				if (read(sfd, &si, sizeof(si)) != sizeof(si))
					continue;
				if (si.ssi_signo == SIGHUP) {
					ftd_log(LOG_INFO, "SIGHUP: the configuration is changed with ftctl; restart ftd to reread it");
					continue;
				}
				ftd_log(LOG_INFO, "signal %u: stopping (the data plane keeps steering)",
					si.ssi_signo);
				CMM_STORE_SHARED(ftd.stop, true);
			} else if (fd == ctl_listen_fd()) {
				ctl_accept();
			} else if (fd == detect_module_fd()) {
				detect_module_read();
			} else if (fd == detect_rtnl_fd()) {
				detect_rtnl_read();
			} else if (fd == prober_fd()) {
				prober_collect();
			} else {
				ctl_handle_fd(fd);
			}
		}
	}
	pthread_mutex_lock(&ftd.lock);
	/* Nothing stays held with no ftd to re-protect its sessions. */
	commit_stop();
	pthread_cond_broadcast(&ftd.kick);
	pthread_mutex_unlock(&ftd.lock);
	pthread_join(t_sync, NULL);
	pthread_join(t_rep, NULL);
	pthread_join(t_probe, NULL);
	repl_stop();
	ctl_close();
	urcu_memb_barrier();
	free_sessions();
	dp_close(ftd.dp);
	free(ftd.pair);
	urcu_memb_unregister_thread();
	return 0;
}
