//! Tunnel frames for the fuzzer: an outer IPv4/IPv6 packet (corruptions
//! included) carrying VXLAN, GENEVE, GRE or IP in IP around an inner packet
//! built like the outer ones (corruptions included, no tunnel inside), with
//! bogus encapsulation fields now and then: GENEVE version and option
//! lengths, GRE version and routing bits, inner ethertypes (a VLAN tag).

use proptest::prelude::*;
use proptest::sample::select;

use super::frames::{ipv4_with, ipv6_with, l4, L3, L4};

const ETH_P_TEB: u16 = 0x6558;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;

/// An inner packet: IPv4 or IPv6 without tunnels inside.
fn inner() -> impl Strategy<Value = L3> {
    prop_oneof![ipv4_with(l4()).prop_map(L3::Ipv4), ipv6_with(l4()).prop_map(L3::Ipv6),]
}

/// An inner Ethernet header: the inner packet's ethertype, or sometimes another.
fn eth(ethertype: u16, bogus: Option<u16>) -> Vec<u8> {
    let mut h = vec![2, 0, 0, 0, 0, 0x22, 2, 0, 0, 0, 0, 0x11];
    h.extend_from_slice(&bogus.unwrap_or(ethertype).to_be_bytes());
    h
}

/// Mostly `None`, sometimes a bogus value.
fn sometimes<T: std::fmt::Debug + Clone + 'static>(s: impl Strategy<Value = T> + 'static) -> BoxedStrategy<Option<T>> {
    prop_oneof![5 => Just(None), 1 => s.prop_map(Some)].boxed()
}

/// The transport layer of an outer packet that carries a tunnel.
pub fn encapsulation() -> impl Strategy<Value = L4> {
    let bogus_ethertype = sometimes(select(vec![0x8100u16, 0x0806, ETH_P_IP, ETH_P_IPV6]));
    (
        0u8..4,
        inner(),
        bogus_ethertype,
        (any::<u16>(), select(vec![4789u16, 8472])),
        (0u8..4, sometimes(1u8..4), any::<bool>()),
        (any::<[bool; 3]>(), sometimes(select(vec![0x4000u16, 0x0001, 0x0007]))),
    )
        .prop_map(|(kind, inner, bogus, (sport, vxlan_port), geneve, gre)| {
            let (ethertype, packet) = inner.bytes();
            let in_eth = |b: &mut Vec<u8>| {
                b.extend(eth(ethertype, bogus));
                b.extend_from_slice(&packet);
            };
            match kind {
                0 => {
                    let mut payload = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
                    in_eth(&mut payload);
                    L4::Udp {
                        sport,
                        dport: vxlan_port,
                        payload,
                    }
                }
                1 => {
                    let (words, version, ethernet) = geneve;
                    let protocol = if ethernet { ETH_P_TEB } else { ethertype };
                    let mut payload = vec![(version.unwrap_or(0) << 6) | words, 0];
                    payload.extend_from_slice(&protocol.to_be_bytes());
                    payload.extend_from_slice(&[0, 0, 42, 0]);
                    payload.resize(payload.len() + usize::from(words) * 4, 0x5a);
                    if ethernet {
                        in_eth(&mut payload);
                    } else {
                        payload.extend_from_slice(&packet);
                    }
                    L4::Udp {
                        sport,
                        dport: 6081,
                        payload,
                    }
                }
                2 => {
                    let ([csum, key, seq], bad_bits) = gre;
                    let ethernet = bogus.is_none() && sport % 2 == 0;
                    let flags = (u16::from(csum) << 15)
                        | (u16::from(key) << 13)
                        | (u16::from(seq) << 12)
                        | bad_bits.unwrap_or(0);
                    let mut payload = flags.to_be_bytes().to_vec();
                    let protocol = if ethernet { ETH_P_TEB } else { ethertype };
                    payload.extend_from_slice(&protocol.to_be_bytes());
                    let words = usize::from(csum) + usize::from(key) + usize::from(seq);
                    payload.resize(4 + 4 * words, 0x77);
                    if ethernet {
                        in_eth(&mut payload);
                    } else {
                        payload.extend_from_slice(&packet);
                    }
                    L4::Other { protocol: 47, payload }
                }
                _ => {
                    // IP in IP: protocol 4 or 41 by the inner version,
                    // sometimes the other one.
                    let v4 = ethertype == ETH_P_IP;
                    let protocol = if v4 == bogus.is_none() { 4 } else { 41 };
                    L4::Other {
                        protocol,
                        payload: packet,
                    }
                }
            }
        })
}
