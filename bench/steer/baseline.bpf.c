// SPDX-License-Identifier: GPL-2.0
/*
 * Baselines for the steering benchmark, carried by the benchmark itself:
 *
 *   bare_redirect  a devmap redirect, no parsing: the floor of XDP steering
 *   least_steer    the least any session steering can do: parse Ethernet,
 *                  IPv4, UDP; one hash lookup on the 5-tuple; redirect
 *   gen_tx         XDP_TX, the packet generator (BPF_F_TEST_XDP_LIVE_FRAMES)
 *   sink           counts and drops what reaches the "VM"
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct flow4 {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u32 proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} base_devmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow4);
	__type(value, __u32);
} base_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sink_count SEC(".maps");

SEC("xdp")
int bare_redirect(struct xdp_md *ctx)
{
	return bpf_redirect_map(&base_devmap, 0, 0);
}

SEC("xdp")
int least_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct flow4 key = {};
	struct udphdr *uh;
	struct iphdr *iph;
	__u32 *target;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > data_end || iph->protocol != IPPROTO_UDP ||
	    iph->ihl < 5)
		return XDP_PASS;
	uh = (void *)iph + iph->ihl * 4;
	if ((void *)(uh + 1) > data_end)
		return XDP_PASS;
	key.saddr = iph->saddr;
	key.daddr = iph->daddr;
	key.sport = uh->source;
	key.dport = uh->dest;
	key.proto = IPPROTO_UDP;
	target = bpf_map_lookup_elem(&base_flows, &key);
	if (!target)
		return XDP_PASS;
	return bpf_redirect_map(&base_devmap, *target, 0);
}

SEC("xdp")
int gen_tx(struct xdp_md *ctx)
{
	return XDP_TX;
}

SEC("xdp")
int sink(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&sink_count, &k);

	if (v)
		*v += 1;
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
