// SPDX-License-Identifier: GPL-2.0
/*
 * tap_reader: a "VM" that is a real tap device read through its file
 * descriptor.  Creates tap NAME, says "ready", then prints one line per
 * TCP/UDP frame read: "DSTMAC PROTO SRC SPORT DST DPORT", until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
	uint8_t f[65536];
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: tap_reader NAME\n");
		return 2;
	}
	fd = open("/dev/net/tun", O_RDWR);
	if (fd < 0) {
		perror("tap_reader: /dev/net/tun");
		return 1;
	}
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", argv[1]);
	if (ioctl(fd, TUNSETIFF, &ifr)) {
		perror("tap_reader: TUNSETIFF");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		ssize_t n = read(fd, f, sizeof(f));
		char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
		size_t l4;
		int proto;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("tap_reader: read");
			return 1;
		}
		if (n >= 14 + 20 && f[12] == 0x08 && f[13] == 0x00) {
			l4 = 14 + (size_t)(f[14] & 0xf) * 4;
			proto = f[23];
			inet_ntop(AF_INET, f + 26, src, sizeof(src));
			inet_ntop(AF_INET, f + 30, dst, sizeof(dst));
		} else if (n >= 14 + 40 && f[12] == 0x86 && f[13] == 0xdd) {
			l4 = 14 + 40;
			proto = f[20];
			inet_ntop(AF_INET6, f + 22, src, sizeof(src));
			inet_ntop(AF_INET6, f + 38, dst, sizeof(dst));
		} else {
			continue;
		}
		if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP) ||
		    (size_t)n < l4 + 4)
			continue;
		printf("%02x:%02x:%02x:%02x:%02x:%02x %s %s %u %s %u\n",
		       f[0], f[1], f[2], f[3], f[4], f[5],
		       proto == IPPROTO_TCP ? "tcp" : "udp", src,
		       f[l4] << 8 | f[l4 + 1], dst, f[l4 + 2] << 8 | f[l4 + 3]);
		fflush(stdout);
	}
}
