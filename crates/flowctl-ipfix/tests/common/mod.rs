//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::net::IpAddr;

use flowctl_model::{key_addr, EndReason, FlowKey, FlowRecord, FlowStats};

/// Deterministic xorshift64 generator.
pub struct Rng(pub u64);

impl Rng {
    /// Next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (0 if n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// A flow record with random counters, times and key fields.
pub fn random_record(rng: &mut Rng, src: &str, dst: &str, protocol: u8) -> FlowRecord {
    let src: IpAddr = src.parse().unwrap();
    let dst: IpAddr = dst.parse().unwrap();
    // Between 2001 and 2100, so that dateTimeSeconds (u32) holds it.
    let start = (1_000_000_000 + rng.below(3_000_000_000)) * 1_000_000_000 + rng.below(1_000_000_000);
    let end = start + rng.below(10_000_000_000_000);
    let packets = 1 + rng.below(1 << 40);
    let reasons = EndReason::ALL;
    FlowRecord {
        key: FlowKey {
            netns_ino: rng.next() as u32,
            ingress_ifindex: rng.next() as u32,
            egress_ifindex: rng.next() as u32,
            src_addr: key_addr(src),
            dst_addr: key_addr(dst),
            src_port: rng.next() as u16,
            dst_port: rng.next() as u16,
            vlan_id: rng.below(4096) as u16,
            inner_vlan_id: rng.below(4096) as u16,
            direction: rng.below(2) as u8,
            ip_version: if src.is_ipv4() { 4 } else { 6 },
            protocol,
            sampling_tag: 0,
            mpls_label: if rng.below(2) == 0 {
                0
            } else {
                flowctl_model::MPLS_PRESENT | (rng.next() as u32 & 0xff_ffff)
            },
        },
        stats: FlowStats {
            packets,
            octets: packets * (20 + rng.below(1480)),
            tcp_flags: rng.below(0x200) as u16,
            min_ttl: rng.byte() / 2,
            max_ttl: 128 + rng.byte() / 2,
            tos: rng.byte(),
            ..Default::default()
        },
        total_packets: packets + rng.below(1 << 50),
        total_octets: rng.next(),
        start_unix_ns: start,
        end_unix_ns: end,
        reason: reasons[rng.below(reasons.len() as u64) as usize],
    }
}

/// A message of the given sets `(set id, content)`; sets are written as given.
pub fn raw_message(odid: u32, sequence: u32, sets: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut msg = vec![0, 10, 0, 0];
    msg.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    msg.extend_from_slice(&sequence.to_be_bytes());
    msg.extend_from_slice(&odid.to_be_bytes());
    for (id, body) in sets {
        msg.extend_from_slice(&id.to_be_bytes());
        msg.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
        msg.extend_from_slice(body);
    }
    let len = msg.len() as u16;
    msg[2..4].copy_from_slice(&len.to_be_bytes());
    msg
}

/// A template record: id and `(ie, length, enterprise)` specifiers.
pub fn template_record(id: u16, fields: &[(u16, u16, Option<u32>)]) -> Vec<u8> {
    let mut rec = Vec::new();
    rec.extend_from_slice(&id.to_be_bytes());
    rec.extend_from_slice(&(fields.len() as u16).to_be_bytes());
    for (ie, len, pen) in fields {
        let raw = if pen.is_some() { ie | 0x8000 } else { *ie };
        rec.extend_from_slice(&raw.to_be_bytes());
        rec.extend_from_slice(&len.to_be_bytes());
        if let Some(pen) = pen {
            rec.extend_from_slice(&pen.to_be_bytes());
        }
    }
    rec
}
