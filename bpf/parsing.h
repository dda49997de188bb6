/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Bounds-checked header parsing shared by ftvm_steer (XDP) and ftvm_fence
 * (tc): Ethernet, up to two 802.1Q/802.1ad tags, IPv4 with options, IPv6
 * with extension headers, then the fixed TCP or UDP header.
 *
 * ftvm_parse() either fills the packet's session key and returns
 * PARSE_OK, or returns the ftvm_dp_stat that says why the packet is not
 * steerable.  A packet is steerable only when every header up to and
 * including the fixed L4 header is inside the frame.  IPv4 fills only
 * the 16-byte key (pkt.k4): the hit path touches nothing more.
 */
#ifndef FTVM_PARSING_H
#define FTVM_PARSING_H

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>

#include "ftvm_dp.h"

#define PARSE_OK	(-1)

#define FTVM_IP_MF	0x2000
#define FTVM_IP_OFFSET	0x1fff

/* IPv6 extension headers (RFC 8200) ftvm_parse knows how to skip. */
#define FTVM_NEXTHDR_HOP	0
#define FTVM_NEXTHDR_ROUTING	43
#define FTVM_NEXTHDR_FRAGMENT	44
#define FTVM_NEXTHDR_AUTH	51
#define FTVM_NEXTHDR_DEST	60

struct ftvm_vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

struct ftvm_ext_hdr {
	__u8 nexthdr;
	__u8 hdrlen;
};

struct ftvm_pkt {
	struct ftvm_flow4 k4;	/* IPv4: the session key */
	struct ftvm_flow flow;	/* IPv6: the session key; IPv4: unset */
	__u32 vlan_tags;	/* tags between the MACs and the L3 header */
	__be16 l3_proto;	/* ETH_P_IP or ETH_P_IPV6, network order */
	__u8 family;		/* FTVM_FAMILY_V4 / _V6 */
};

/* The ports of the fixed TCP or UDP header at @l4. */
static __always_inline int parse_l4(void *l4, void *data_end, __u8 proto,
				    __be16 *sport, __be16 *dport)
{
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return FTVM_DP_MALFORMED;
		if (th->doff < 5)
			return FTVM_DP_MALFORMED;
		*sport = th->source;
		*dport = th->dest;
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return FTVM_DP_MALFORMED;
		*sport = uh->source;
		*dport = uh->dest;
	} else {
		return FTVM_DP_NOT_L4;
	}
	return PARSE_OK;
}

static __always_inline int parse_ipv4(void *l3, void *data_end,
				      struct ftvm_pkt *p)
{
	struct ftvm_flow4 *k = &p->k4;
	struct iphdr *iph = l3;
	__u32 hlen;

	if ((void *)(iph + 1) > data_end)
		return FTVM_DP_MALFORMED;
	if (iph->version != 4 || iph->ihl < 5)
		return FTVM_DP_MALFORMED;
	/*
	 * Fragments: only the first carries the ports, and the others could
	 * not be matched to a session without reassembly state.  All are
	 * left to the stack (Documentation/dataplane.rst, "Fragments").
	 */
	if (iph->frag_off & bpf_htons(FTVM_IP_MF | FTVM_IP_OFFSET))
		return FTVM_DP_FRAGMENT;
	hlen = iph->ihl * 4;
	if (bpf_ntohs(iph->tot_len) < hlen)
		return FTVM_DP_MALFORMED;
	p->family = FTVM_FAMILY_V4;
	k->saddr = iph->saddr;
	k->daddr = iph->daddr;
	k->proto = iph->protocol;
	k->pad[0] = k->pad[1] = k->pad[2] = 0;
	return parse_l4(l3 + hlen, data_end, iph->protocol, &k->sport,
			&k->dport);
}

static __always_inline int parse_ipv6(void *l3, void *data_end,
				      struct ftvm_pkt *p)
{
	struct ftvm_flow *f = &p->flow;
	struct ipv6hdr *ip6 = l3;
	void *cur = ip6 + 1;
	__u8 nexthdr;
	__u32 len;
	int i;

	if (cur > data_end)
		return FTVM_DP_MALFORMED;
	if (ip6->version != 6)
		return FTVM_DP_MALFORMED;
	nexthdr = ip6->nexthdr;

#pragma unroll
	for (i = 0; i < FTVM_IPV6_MAX_EXT; i++) {
		struct ftvm_ext_hdr *eh = cur;

		if (nexthdr == IPPROTO_TCP || nexthdr == IPPROTO_UDP)
			break;
		if (nexthdr == FTVM_NEXTHDR_FRAGMENT)
			return FTVM_DP_FRAGMENT;
		if (nexthdr != FTVM_NEXTHDR_HOP &&
		    nexthdr != FTVM_NEXTHDR_ROUTING &&
		    nexthdr != FTVM_NEXTHDR_DEST &&
		    nexthdr != FTVM_NEXTHDR_AUTH)
			return FTVM_DP_NOT_L4;
		if ((void *)(eh + 1) > data_end)
			return FTVM_DP_MALFORMED;
		/* AH counts 4-byte units minus 2; the others 8-byte minus 1. */
		if (nexthdr == FTVM_NEXTHDR_AUTH)
			len = ((__u32)eh->hdrlen + 2) * 4;
		else
			len = ((__u32)eh->hdrlen + 1) * 8;
		nexthdr = eh->nexthdr;
		cur += len;
	}
	if (nexthdr != IPPROTO_TCP && nexthdr != IPPROTO_UDP)
		return FTVM_DP_NOT_L4;

	p->family = FTVM_FAMILY_V6;
	__builtin_memcpy(f->saddr, &ip6->saddr, 16);
	__builtin_memcpy(f->daddr, &ip6->daddr, 16);
	f->proto = nexthdr;
	f->family = FTVM_FAMILY_V6;
	f->pad = 0;
	return parse_l4(cur, data_end, nexthdr, &f->sport, &f->dport);
}

static __always_inline int ftvm_parse(void *data, void *data_end,
				      struct ftvm_pkt *p)
{
	struct ethhdr *eth = data;
	void *cur = eth + 1;
	__be16 proto;
	int i;

	p->vlan_tags = 0;
	if (cur > data_end)
		return FTVM_DP_MALFORMED;
	proto = eth->h_proto;

#pragma unroll
	for (i = 0; i < FTVM_MAX_VLAN_TAGS; i++) {
		struct ftvm_vlan_hdr *vh = cur;

		if (proto != bpf_htons(ETH_P_8021Q) &&
		    proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > data_end)
			return FTVM_DP_MALFORMED;
		proto = vh->encap_proto;
		cur = vh + 1;
		p->vlan_tags++;
	}
	p->l3_proto = proto;
	if (proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(cur, data_end, p);
	if (proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(cur, data_end, p);
	return FTVM_DP_NOT_IP;
}

/* The packet's flow as struct ftvm_flow, for either family (slow paths). */
static __always_inline void ftvm_pkt_flow(const struct ftvm_pkt *p,
					  struct ftvm_flow *f)
{
	if (p->family == FTVM_FAMILY_V4)
		ftvm_flow4_to_flow(&p->k4, f);
	else
		__builtin_memcpy(f, &p->flow, sizeof(*f));
}

#endif
