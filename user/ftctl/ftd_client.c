// SPDX-License-Identifier: GPL-2.0
/*
 * ftctl's client side of ftd's control socket (user/ftd/ctl.c has the
 * protocol).  While ftd runs, the objects it manages (vm, service,
 * session, status, monitor) go through it, so that its model, the
 * steering maps and ftvm.ko's registry change together; without ftd,
 * those commands that can work alone keep their direct paths.
 *
 * The socket: $FTD_SOCKET, else /run/ftvm/ftd.sock.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ftctl.h"

#define FTD_SOCK_DEFAULT	"/run/ftvm/ftd.sock"

static const char *sock_path(void)
{
	const char *p = getenv("FTD_SOCKET");

	return p && *p ? p : FTD_SOCK_DEFAULT;
}

/* Connected to a live ftd, or -1 (errno set). */
static int ftd_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(sock_path()) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, sock_path());
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

bool ftd_running(void)
{
	int fd = ftd_connect();

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int ftd_not_running(void)
{
	pr_err("ftd is not running (no control socket at %s): this command needs it",
	       sock_path());
	return 1;
}

int ftd_forward(int argc, char **argv)
{
	static char buf[65536 + 1];
	uint64_t count = 0, seen = 0;
	bool monitor = argc > 0 && matches(argv[0], "monitor");
	size_t len = 5;
	int fd, rc = 1;
	ssize_t n;

	if (monitor) {
		/* "count N" is ours; ftd streams until we hang up. */
		for (int i = 1; i < argc; i++) {
			if (matches(argv[i], "help")) {
				printf("Usage: ftctl monitor [count N]\n");
				return 0;
			}
			if (!matches(argv[i], "count"))
				return unknown_arg("monitor", argv[i]);
			if (i + 1 >= argc)
				return missing_arg("count");
			if (parse_u64(argv[++i], &count) || !count) {
				pr_err("invalid count \"%s\"", argv[i]);
				return 1;
			}
		}
		argc = 1;
	}
	memcpy(buf, "FTD1", 4);
	buf[4] = (char)((opts.json ? 1 : 0) | (opts.pretty ? 2 : 0));
	for (int i = 0; i < argc; i++) {
		size_t l = strlen(argv[i]) + 1;

		if (len + l > sizeof(buf) - 1) {
			pr_err("arguments too long");
			return 1;
		}
		memcpy(buf + len, argv[i], l);
		len += l;
	}
	fd = ftd_connect();
	if (fd < 0)
		return ftd_not_running();
	if (send(fd, buf, len, MSG_NOSIGNAL) < 0) {
		pr_err("ftd: %s", strerror(errno));
		close(fd);
		return 1;
	}
	if (monitor) {
		setvbuf(stdout, NULL, _IOLBF, 0);
		/* A line a waiting script can look for. */
		fprintf(stderr, "monitoring ftd events\n");
	}
	while ((n = recv(fd, buf, sizeof(buf) - 1, 0)) > 0) {
		if (buf[0] == 'O') {
			fwrite(buf + 1, 1, (size_t)n - 1, stdout);
			if (monitor && count && ++seen >= count) {
				rc = 0;
				break;
			}
		} else if (buf[0] == 'E') {
			fwrite(buf + 1, 1, (size_t)n - 1, stderr);
		} else if (buf[0] == 'X') {
			buf[n] = 0;
			rc = atoi(buf + 1);
			break;
		}
	}
	if (n < 0)
		pr_err("ftd: %s", strerror(errno));
	else if (n == 0 && monitor)
		rc = 0;
	else if (n == 0)
		pr_err("ftd closed the connection without an answer");
	fflush(stdout);
	close(fd);
	return rc;
}
