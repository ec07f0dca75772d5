/* SPDX-License-Identifier: MIT */
/*
 * Tunnel GSO, for flowctl.bpf.c: where the inner payload of an encapsulated
 * GSO packet starts. Metering the underlay of a tunnel with TSO on, one skb
 * is a GSO packet whose segments each repeat the outer headers AND the inner
 * Ethernet/IP/transport headers; their length is the distance from the outer
 * IP header to the inner payload.
 *
 * One level of encapsulation, on the outer flow found by the parser (which
 * stays the flow's key):
 *   UDP to 4789 or 8472 (VXLAN, 8-byte header, inner Ethernet)
 *   UDP to 6081 (GENEVE, 8 bytes + options, inner Ethernet, IPv4 or IPv6)
 *   GRE version 0 (checksum, key and sequence words; inner Ethernet
 *     (0x6558), IPv4 or IPv6)
 *   IP protocol 4 (IPv4) and 41 (IPv6) in IPv4 and IPv6
 * then an inner IPv4 header (with options) or IPv6 header (no extension
 * headers) and TCP (with options) or UDP. Anything else (an inner VLAN tag,
 * IPv6 extension headers, another protocol, headers cut short) is no known
 * tunnel: the packet counts with its outer headers only.
 *
 * Only GSO skbs come here, so plain packets never pay for it. Offsets vary,
 * so every read is bpf_skb_load_bytes.
 */
#ifndef FLOWCTL_ENCAP_H
#define FLOWCTL_ENCAP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "flowctl.h"

#define VXLAN_PORT 4789
#define VXLAN_LINUX_PORT 8472
#define GENEVE_PORT 6081
#define UDP_HDR_LEN 8
#define VXLAN_HDR_LEN 8
#define GENEVE_HDR_LEN 8
#define GRE_HDR_LEN 4
#define GRE_WORD 4
#define GRE_CSUM 0x8000
#define GRE_ROUTING 0x4000
#define GRE_KEY 0x2000
#define GRE_SEQ 0x1000
#define GRE_VERSION 0x0007
#define ETH_P_TEB_ 0x6558
#define INNER_ETH_HDR_LEN 14
#define INNER_IPV6_HDR_LEN 40

/*
 * The offset of the payload of the inner packet at off, of ethertype proto
 * (IPv4 or IPv6 carrying TCP or UDP); 0 when it is something else or its
 * headers are not all there. ip is a buffer of at least 20 bytes (in the
 * per-CPU scratch map, not the stack: see struct scratch).
 */
static __always_inline __u32 inner_payload(struct __sk_buff *skb, __u32 off, __u16 proto, __u8 *ip)
{
	__u8 next;

	if (proto == ETH_P_IP) {
		if (bpf_skb_load_bytes(skb, off, ip, 20) < 0 || (ip[0] >> 4) != 4 || (ip[0] & 0x0f) < 5)
			return 0;
		next = ip[9];
		off += (__u32)(ip[0] & 0x0f) * 4;
	} else if (proto == ETH_P_IPV6) {
		if (bpf_skb_load_bytes(skb, off, ip, 8) < 0 || (ip[0] >> 4) != 6)
			return 0;
		next = ip[6];
		off += INNER_IPV6_HDR_LEN;
	} else {
		return 0;
	}
	if (next == IPPROTO_UDP) {
		if (bpf_skb_load_bytes(skb, off, ip, UDP_HDR_LEN) < 0)
			return 0;
		return off + UDP_HDR_LEN;
	}
	if (next != IPPROTO_TCP || bpf_skb_load_bytes(skb, off, ip, 20) < 0 || (ip[12] >> 4) < 5)
		return 0;
	return off + (__u32)(ip[12] >> 4) * 4;
}

/*
 * The offset of the inner payload of a tunnel packet whose outer transport
 * header is at l4_off (outer protocol and destination port in key); 0 when
 * it is no tunnel of the list above. h is a buffer of at least 20 bytes.
 */
static __always_inline __u32 tunnel_payload(struct __sk_buff *skb, const struct flow_key *key, __u32 l4_off,
					    __u8 *h)
{
	__u32 off = l4_off;
	__u16 proto;

	switch (key->protocol) {
	case IPPROTO_UDP:
		off += UDP_HDR_LEN;
		if (key->dst_port == VXLAN_PORT || key->dst_port == VXLAN_LINUX_PORT) {
			proto = ETH_P_TEB_;
			off += VXLAN_HDR_LEN;
		} else if (key->dst_port == GENEVE_PORT) {
			/* Version (2 bits, 0), options length in 4-byte words; protocol. */
			if (bpf_skb_load_bytes(skb, off, h, 4) < 0 || (h[0] >> 6) != 0)
				return 0;
			proto = ((__u16)h[2] << 8) | h[3];
			off += GENEVE_HDR_LEN + (__u32)(h[0] & 0x3f) * 4;
		} else {
			return 0;
		}
		break;
	case IPPROTO_GRE: {
		if (bpf_skb_load_bytes(skb, off, h, 4) < 0)
			return 0;
		__u16 flags = ((__u16)h[0] << 8) | h[1];
		/* Version 1 is PPTP's; source routing (RFC 1701) is obsolete. */
		if (flags & (GRE_ROUTING | GRE_VERSION))
			return 0;
		proto = ((__u16)h[2] << 8) | h[3];
		off += GRE_HDR_LEN;
		if (flags & GRE_CSUM)
			off += GRE_WORD;
		if (flags & GRE_KEY)
			off += GRE_WORD;
		if (flags & GRE_SEQ)
			off += GRE_WORD;
		break;
	}
	case IPPROTO_IPIP:
		proto = ETH_P_IP;
		break;
	case IPPROTO_IPV6:
		proto = ETH_P_IPV6;
		break;
	default:
		return 0;
	}
	if (proto == ETH_P_TEB_) {
		if (bpf_skb_load_bytes(skb, off + INNER_ETH_HDR_LEN - 2, h, 2) < 0)
			return 0;
		proto = ((__u16)h[0] << 8) | h[1];
		off += INNER_ETH_HDR_LEN;
	}
	return inner_payload(skb, off, proto, h);
}

#endif /* FLOWCTL_ENCAP_H */
