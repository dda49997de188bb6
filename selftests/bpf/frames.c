// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "frames.h"

const uint8_t frame_host_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0xfe };
const uint8_t frame_client_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0xc1 };

static uint8_t *put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static uint16_t ip_csum(const uint8_t *p, size_t len)
{
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* IPv6 extension header of @len bytes (multiple of 8), padded with PadN. */
static uint8_t *put_ext(uint8_t *p, uint8_t next, size_t len)
{
	memset(p, 0, len);
	p[0] = next;
	p[1] = (uint8_t)(len / 8 - 1);
	p[2] = 1;			/* PadN */
	p[3] = (uint8_t)(len - 4);
	return p + len;
}

int frame_build(const struct frame_spec *s, struct frame *f)
{
	static const uint8_t ext_types[] = { 0, 60, 43, 60 };
	uint8_t *p = f->data, *l3, *l4;
	size_t l4len = s->proto == IPPROTO_TCP ? 20 :
		       s->proto == IPPROTO_UDP ? 8 : 8;
	uint16_t eth_proto;

	memset(f, 0, sizeof(*f));
	memcpy(p, frame_host_mac, 6);
	memcpy(p + 6, frame_client_mac, 6);
	p += 12;
	eth_proto = s->l2_proto ? s->l2_proto :
		    s->family == 6 ? 0x86dd : 0x0800;
	if (s->vlans >= 3) {
		p = put16(p, 0x88a8);
		p = put16(p, 300);
	}
	if (s->vlans >= 2) {
		p = put16(p, 0x88a8);
		p = put16(p, 200);
	}
	if (s->vlans >= 1) {
		p = put16(p, 0x8100);
		p = put16(p, 100);
	}
	p = put16(p, eth_proto);
	f->l3_off = (size_t)(p - f->data);
	if (s->l2_proto) {
		/* An ARP request's worth of bytes. */
		memset(p, 0xa5, 28);
		f->len = f->l4_end = f->l3_off + 28;
		return 0;
	}

	l3 = p;
	if (s->family == 4) {
		size_t ihl = 20 + (size_t)s->ip_opts;
		uint16_t frag = 0x4000;	/* DF */

		if (s->ip_opts % 4 || s->ip_opts > 40)
			return -1;
		if (s->frag == FRAG_FIRST)
			frag = 0x2000;
		else if (s->frag == FRAG_LATER)
			frag = 185;	/* offset 1480 */
		p[0] = (uint8_t)(0x40 | ihl / 4);
		p[1] = 0;
		put16(p + 2, (uint16_t)(ihl + l4len + (size_t)s->payload));
		put16(p + 4, 0x1234);
		put16(p + 6, frag);
		p[8] = 64;
		p[9] = s->proto;
		if (inet_pton(AF_INET, s->saddr, p + 12) != 1 ||
		    inet_pton(AF_INET, s->daddr, p + 16) != 1)
			return -1;
		if (s->ip_opts) {
			/* Record Route filling what fits, then EOL. */
			memset(p + 20, 0, (size_t)s->ip_opts);
			if (s->ip_opts >= 8) {
				p[20] = 7;
				p[21] = (uint8_t)(3 + (s->ip_opts - 4) / 4 * 4);
				p[22] = 4;
			} else {
				p[20] = 1;	/* NOP, then EOL */
			}
		}
		put16(p + 10, ip_csum(p, ihl));
		p += ihl;
	} else {
		uint8_t *nh = p + 6;

		p[0] = 0x60;
		p[7] = 64;
		if (inet_pton(AF_INET6, s->saddr, p + 8) != 1 ||
		    inet_pton(AF_INET6, s->daddr, p + 24) != 1)
			return -1;
		p += 40;
		for (int i = 0; i < s->ext_hdrs; i++) {
			*nh = ext_types[i % 4];
			nh = p;
			p = put_ext(p, 0, i == 1 ? 16 : 8);
		}
		if (s->ext_ah) {
			*nh = 51;
			nh = p;
			memset(p, 0, 24);
			p[1] = 4;	/* (4 + 2) * 4 = 24 bytes */
			p += 24;
		}
		if (s->frag != FRAG_NONE) {
			*nh = 44;
			nh = p;
			memset(p, 0, 8);
			put16(p + 2, s->frag == FRAG_FIRST ? 1 : 1480);
			p += 8;
		}
		if (s->ext_esp) {
			*nh = 50;
			nh = p;
			memset(p, 0x5a, 8);
			p += 8;
		}
		*nh = s->proto;
		put16(l3 + 4, (uint16_t)((size_t)(p - l3) - 40 + l4len +
					 (size_t)s->payload));
	}

	l4 = p;
	memset(l4, 0, l4len);
	put16(l4, s->sport);
	put16(l4 + 2, s->dport);
	if (s->proto == IPPROTO_TCP) {
		l4[12] = (uint8_t)((s->tcp_doff ? s->tcp_doff : 5) << 4);
		l4[13] = 0x02;	/* SYN */
		put16(l4 + 14, 65535);
	} else if (s->proto == IPPROTO_UDP) {
		put16(l4 + 4, (uint16_t)(l4len + (size_t)s->payload));
	}
	p += l4len;
	f->l4_end = (size_t)(p - f->data);
	if (f->l4_end + (size_t)s->payload > FRAME_MAX)
		return -1;
	for (int i = 0; i < s->payload; i++)
		*p++ = (uint8_t)(i * 7 + 1);
	f->len = (size_t)(p - f->data);
	return 0;
}

void frame_hexdump(const char *what, const uint8_t *d, size_t len)
{
	char line[3 * 16 + 1];

	printf("# %s (%zu bytes)\n", what, len);
	for (size_t i = 0; i < len; i += 16) {
		size_t n = 0;

		for (size_t j = i; j < len && j < i + 16; j++)
			n += (size_t)snprintf(line + n, sizeof(line) - n,
					      "%02x ", d[j]);
		printf("#   %04zx: %s\n", i, line);
	}
}
