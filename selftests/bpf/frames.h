/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Frame builder for the data plane tests and benchmark: one description
 * (struct frame_spec) in, the bytes on the wire out, plus the offsets a
 * test needs to know what the data plane must make of them.
 */
#ifndef FTVM_FRAMES_H
#define FTVM_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FRAME_MAX	512

enum frame_frag {
	FRAG_NONE,
	FRAG_FIRST,		/* IPv4 MF set, offset 0; IPv6 frag hdr, M=1 */
	FRAG_LATER,		/* offset > 0 */
};

struct frame_spec {
	int family;		/* 4 or 6 */
	uint8_t proto;		/* IPPROTO_TCP, _UDP, anything else */
	int vlans;		/* 0, 1 (802.1Q), 2 (802.1ad + 802.1Q), 3 */
	int ip_opts;		/* IPv4 option bytes: 0, 4, ..., 40 */
	int ext_hdrs;		/* IPv6: hop-by-hop, dest, routing, dest... */
	bool ext_ah;		/* IPv6: an AH after the others */
	bool ext_esp;		/* IPv6: ESP (not parsable) as last header */
	enum frame_frag frag;
	const char *saddr, *daddr;
	uint16_t sport, dport;
	int payload;		/* bytes after the L4 header */
	int tcp_doff;		/* 0: 5 */
	uint16_t l2_proto;	/* != 0: this ethertype, no IP (ARP...) */
};

struct frame {
	uint8_t data[FRAME_MAX];
	size_t len;
	size_t l3_off;		/* after the tags */
	size_t l4_end;		/* end of the fixed L4 header: first length
				 * at which the frame is steerable */
};

extern const uint8_t frame_host_mac[6];	/* where frames are sent */
extern const uint8_t frame_client_mac[6];

int frame_build(const struct frame_spec *s, struct frame *f);
void frame_hexdump(const char *what, const uint8_t *d, size_t len);

#endif
