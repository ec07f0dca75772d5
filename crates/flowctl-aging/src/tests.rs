//! Unit tests of the aging state machine against a simulated datapath.

use std::{collections::HashMap, time::Duration};

use flowctl_common::FlowKey;
use flowctl_datapath::{clock::BootClock, FlowStats};

use crate::{Aging, EndReason, Expiry, FlowRecord, Timeouts, Watermarks};

const S: u64 = 1_000_000_000;

fn key(protocol: u8, port: u16) -> FlowKey {
    FlowKey {
        protocol,
        src_port: port,
        dst_port: 80,
        ip_version: 4,
        direction: 1,
        ..Default::default()
    }
}

/// A stand-in for the kernel map: counters that only grow, read and
/// read-and-delete like the real one.
#[derive(Default)]
struct Datapath {
    flows: HashMap<FlowKey, FlowStats>,
    counted: HashMap<FlowKey, (u64, u64)>,
    capacity: u32,
}

impl Datapath {
    fn packet(&mut self, key: FlowKey, octets: u64, flags: u16, now: u64) {
        if !self.flows.contains_key(&key) && self.capacity > 0 && self.flows.len() as u32 >= self.capacity {
            return; // not recorded, like the datapath when full
        }
        let s = self.flows.entry(key).or_insert(FlowStats {
            first_seen_ns: now,
            ..Default::default()
        });
        s.packets += 1;
        s.octets += octets;
        s.last_seen_ns = now;
        s.tcp_flags |= flags;
        let c = self.counted.entry(key).or_default();
        c.0 += 1;
        c.1 += octets;
    }

    fn snapshot(&self) -> Vec<(FlowKey, FlowStats)> {
        let mut v: Vec<_> = self.flows.iter().map(|(k, s)| (*k, *s)).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }
}

/// The agent's loop around the state machine: returns the records of one scan.
fn scan(aging: &mut Aging, dp: &mut Datapath, now: u64) -> Vec<FlowRecord> {
    let clock = BootClock::with_boot_epoch(1_700_000_000 * S as i128);
    let snapshot = dp.snapshot();
    let expiries = aging.scan(&snapshot, now, dp.capacity);
    apply(aging, dp, expiries, now, &clock)
}

fn apply(aging: &mut Aging, dp: &mut Datapath, expiries: Vec<Expiry>, now: u64, clock: &BootClock) -> Vec<FlowRecord> {
    apply_mode(aging, dp, expiries, now, clock, false)
}

/// The agent's loop: with `take_active`, active-timeout records too are
/// built from the entry taken out of the cache (what the agent does).
fn apply_mode(
    aging: &mut Aging,
    dp: &mut Datapath,
    expiries: Vec<Expiry>,
    now: u64,
    clock: &BootClock,
    take_active: bool,
) -> Vec<FlowRecord> {
    let mut out = Vec::new();
    for e in expiries {
        if e.ends_flow() || take_active {
            match dp.flows.remove(&e.key) {
                Some(last) => out.extend(aging.finish(&e.key, &last, e.reason, clock)),
                None => aging.forget(&e.key),
            }
        } else {
            out.extend(aging.report_active(&e.key, &e.stats, now, clock));
        }
    }
    out
}

fn timeouts(idle: u64, active: u64, grace: u64) -> Timeouts {
    let d = Duration::from_secs;
    Timeouts {
        idle_tcp: d(idle),
        idle_udp: d(idle),
        idle_icmp: d(idle),
        idle_other: d(idle),
        active: d(active),
        tcp_end_grace: d(grace),
    }
}

#[test]
fn idle_flow_ends_with_reason_1_and_leaves_the_cache() {
    let mut aging = Aging::new(timeouts(10, 60, 5), Watermarks::default());
    let mut dp = Datapath::default();
    dp.packet(key(17, 1), 100, 0, S);
    dp.packet(key(17, 1), 100, 0, 2 * S);
    assert!(scan(&mut aging, &mut dp, 11 * S).is_empty(), "idle for 9 s only");
    let recs = scan(&mut aging, &mut dp, 12 * S);
    assert_eq!(recs.len(), 1);
    let r = recs[0];
    assert_eq!((r.packets, r.octets, r.reason), (2, 200, EndReason::IdleTimeout));
    assert_eq!(r.start_unix_ns, 1_700_000_001 * S);
    assert_eq!(r.end_unix_ns, 1_700_000_002 * S);
    assert!(dp.flows.is_empty());
}

#[test]
fn per_protocol_idle_timeouts_apply() {
    let mut t = timeouts(100, 1000, 5);
    t.idle_udp = Duration::from_secs(3);
    t.idle_icmp = Duration::from_secs(1);
    let mut aging = Aging::new(t, Watermarks::default());
    let mut dp = Datapath::default();
    for (p, port) in [(6, 1), (17, 2), (1, 3), (47, 4)] {
        dp.packet(key(p, port), 60, 0, 0);
    }
    let ended = |recs: Vec<FlowRecord>| recs.iter().map(|r| r.key.protocol).collect::<Vec<_>>();
    assert_eq!(ended(scan(&mut aging, &mut dp, S + 1)), vec![1]);
    assert_eq!(ended(scan(&mut aging, &mut dp, 3 * S)), vec![17]);
    assert!(scan(&mut aging, &mut dp, 99 * S).is_empty());
    let mut rest = ended(scan(&mut aging, &mut dp, 100 * S));
    rest.sort();
    assert_eq!(rest, vec![6, 47]);
}

#[test]
fn active_timeout_reports_only_what_is_new_and_keeps_the_flow() {
    let mut aging = Aging::new(timeouts(30, 10, 5), Watermarks::default());
    let mut dp = Datapath::default();
    let k = key(17, 7);
    for t in 0..10 {
        dp.packet(k, 100, 0, t * S);
    }
    let r1 = scan(&mut aging, &mut dp, 10 * S);
    assert_eq!(r1.len(), 1);
    assert_eq!(
        (r1[0].packets, r1[0].octets, r1[0].reason),
        (10, 1000, EndReason::ActiveTimeout)
    );
    assert_eq!(dp.flows.len(), 1, "still in the cache");
    for t in 10..15 {
        dp.packet(k, 50, 0, t * S + S / 2);
    }
    assert!(
        scan(&mut aging, &mut dp, 15 * S).is_empty(),
        "next active report 10 s after the previous one"
    );
    let r2 = scan(&mut aging, &mut dp, 20 * S);
    assert_eq!((r2[0].packets, r2[0].octets, r2[0].total_packets), (5, 250, 15));
    assert!(
        r2[0].start_unix_ns >= r1[0].end_unix_ns,
        "continuation starts after the previous record"
    );
    // No new packet: no empty active record, then the idle end reports nothing new.
    assert!(scan(&mut aging, &mut dp, 30 * S).is_empty());
    assert!(
        scan(&mut aging, &mut dp, 60 * S).is_empty(),
        "final delta 0 is not exported"
    );
    assert!(dp.flows.is_empty());
    assert_eq!(aging.tracked_flows(), 0);
}

#[test]
fn tcp_fin_or_rst_ends_the_flow_after_the_grace_period() {
    let mut aging = Aging::new(timeouts(60, 600, 5), Watermarks::default());
    let mut dp = Datapath::default();
    let (a, b) = (key(6, 1), key(6, 2));
    dp.packet(a, 60, 0x02, 0);
    dp.packet(a, 60, 0x11, S); // FIN|ACK
    dp.packet(b, 60, 0x04, S); // RST
    assert!(
        scan(&mut aging, &mut dp, 2 * S).is_empty(),
        "grace starts when the end is seen"
    );
    dp.packet(a, 52, 0x10, 3 * S); // the last ACK still counts
    assert!(scan(&mut aging, &mut dp, 6 * S).is_empty());
    let recs = scan(&mut aging, &mut dp, 7 * S);
    assert_eq!(recs.len(), 2);
    let ra = recs.iter().find(|r| r.key == a).unwrap();
    assert_eq!(
        (ra.packets, ra.octets, ra.reason, ra.tcp_flags),
        (3, 172, EndReason::EndOfFlow, 0x13)
    );
}

#[test]
fn forced_end_reports_everything_with_reason_4() {
    let mut aging = Aging::new(timeouts(60, 600, 5), Watermarks::default());
    let mut dp = Datapath::default();
    dp.packet(key(17, 1), 10, 0, 0);
    dp.packet(key(6, 2), 10, 0, 0);
    let snapshot = dp.snapshot();
    let expiries = aging.force_all(&snapshot);
    let clock = BootClock::with_boot_epoch(0);
    let recs = apply(&mut aging, &mut dp, expiries, S, &clock);
    assert_eq!(recs.len(), 2);
    assert!(recs.iter().all(|r| r.reason == EndReason::ForcedEnd));
    assert!(dp.flows.is_empty());
}

#[test]
fn nearly_full_cache_evicts_the_oldest_flows_with_reason_5() {
    let mut aging = Aging::new(timeouts(600, 6000, 5), Watermarks { high: 0.9, low: 0.5 });
    let mut dp = Datapath {
        capacity: 10,
        ..Default::default()
    };
    for port in 0..9u16 {
        dp.packet(key(17, port), 10, 0, port as u64 * S);
    }
    let recs = scan(&mut aging, &mut dp, 20 * S);
    let mut evicted: Vec<u16> = recs.iter().map(|r| r.key.src_port).collect();
    evicted.sort();
    assert_eq!(evicted, vec![0, 1, 2, 3], "oldest first, down to 50 %");
    assert!(recs.iter().all(|r| r.reason == EndReason::LackOfResources));
    assert_eq!(dp.flows.len(), 5);
    assert!(
        scan(&mut aging, &mut dp, 21 * S).is_empty(),
        "below the high watermark now"
    );
}

#[test]
fn flow_deleted_by_someone_else_is_forgotten() {
    let mut aging = Aging::new(timeouts(60, 10, 5), Watermarks::default());
    let mut dp = Datapath::default();
    let k = key(17, 9);
    dp.packet(k, 10, 0, 0);
    assert_eq!(scan(&mut aging, &mut dp, 10 * S).len(), 1);
    assert_eq!(aging.tracked_flows(), 1);
    dp.flows.clear(); // flowctl flush
    assert!(scan(&mut aging, &mut dp, 11 * S).is_empty());
    assert_eq!(aging.tracked_flows(), 0);
    // Re-created with smaller counters: everything in it is new.
    dp.packet(k, 10, 0, 12 * S);
    let recs = scan(&mut aging, &mut dp, 80 * S);
    assert_eq!((recs[0].packets, recs[0].reason), (1, EndReason::IdleTimeout));
}

/// Deterministic xorshift for the long run below.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn an_active_timeout_that_takes_the_entry_carries_the_totals_over() {
    let clock = BootClock::with_boot_epoch(0);
    let mut aging = Aging::new(timeouts(30, 10, 5), Watermarks::default());
    let mut dp = Datapath::default();
    let k = key(17, 8);
    let mut totals = Vec::new();
    for round in 0..3u64 {
        for t in 0..5 {
            dp.packet(k, 100, 0, (round * 10 + t) * S);
        }
        let now = (round + 1) * 10 * S;
        let expiries = aging.scan(&dp.snapshot(), now, 0);
        let r = apply_mode(&mut aging, &mut dp, expiries, now, &clock, true);
        assert_eq!(r.len(), 1, "round {round}");
        assert_eq!((r[0].packets, r[0].reason), (5, EndReason::ActiveTimeout));
        assert!(dp.flows.is_empty(), "taken out of the cache");
        totals.push(r[0].total_packets);
    }
    assert_eq!(totals, [5, 10, 15], "packetTotalCount carries on across entries");
    // Idle longer than the idle timeout: the carried totals are forgotten.
    aging.scan(&dp.snapshot(), 100 * S, 0);
    assert_eq!(aging.tracked_flows(), 0);
}

#[test]
fn records_sum_to_exactly_what_was_counted_whatever_happens() {
    sums_exactly(false);
}

#[test]
fn records_sum_exactly_when_active_timeouts_take_the_entry() {
    sums_exactly(true);
}

fn sums_exactly(take_active: bool) {
    for seed in 1..=20u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut t = timeouts(1 + rng.next() % 20, 1 + rng.next() % 30, rng.next() % 5);
        t.idle_tcp = Duration::from_secs(1 + rng.next() % 40);
        let mut aging = Aging::new(t, Watermarks { high: 0.9, low: 0.6 });
        let mut dp = Datapath {
            capacity: 40,
            ..Default::default()
        };
        let mut exported: HashMap<FlowKey, (u64, u64)> = HashMap::new();
        let mut now = 0;
        for step in 0..3000 {
            now += rng.next() % (S / 2);
            let k = key([6, 17, 1][(rng.next() % 3) as usize], (rng.next() % 60) as u16);
            let flags = if k.protocol == 6 {
                [0x02, 0x10, 0x18, 0x11, 0x04][(rng.next() % 5) as usize]
            } else {
                0
            };
            dp.packet(k, 40 + rng.next() % 1400, flags, now);
            if step % 7 == 0 {
                let expiries = aging.scan(&dp.snapshot(), now, dp.capacity);
                let clock = BootClock::with_boot_epoch(1_700_000_000 * S as i128);
                for r in apply_mode(&mut aging, &mut dp, expiries, now, &clock, take_active) {
                    assert!(r.packets > 0 && r.start_unix_ns <= r.end_unix_ns, "{r:?}");
                    let e = exported.entry(r.key).or_default();
                    e.0 += r.packets;
                    e.1 += r.octets;
                }
            }
        }
        // Shutdown: everything left is forced out.
        let clock = BootClock::with_boot_epoch(0);
        let snapshot = dp.snapshot();
        let expiries = aging.force_all(&snapshot);
        for r in apply(&mut aging, &mut dp, expiries, now, &clock) {
            assert_eq!(r.reason, EndReason::ForcedEnd);
            let e = exported.entry(r.key).or_default();
            e.0 += r.packets;
            e.1 += r.octets;
        }
        assert_eq!(
            exported, dp.counted,
            "seed {seed}: exported deltas must equal counted totals"
        );
        if !take_active {
            // (Taking: carried totals of flows with no new entry wait out their idle timeout.)
            assert_eq!(aging.tracked_flows(), 0);
        }
    }
}

/// The agent's chunked scan (one walk in chunks, eviction chosen during
/// it) over the same cache as `scan`.
fn scan_in_chunks(
    aging: &mut Aging,
    snapshot: &[(FlowKey, FlowStats)],
    now: u64,
    capacity: u32,
    chunk: usize,
) -> Vec<Expiry> {
    let mut pass = aging.begin_scan(now, capacity);
    let mut out = Vec::new();
    for c in snapshot.chunks(chunk) {
        aging.scan_chunk(&mut pass, c, &mut out);
    }
    if let Some(eviction) = aging.end_scan(pass) {
        out.extend(eviction.into_expiries());
    }
    out
}

#[test]
fn a_scan_in_chunks_decides_like_a_scan_of_the_whole_snapshot() {
    for seed in 1..=10u64 {
        let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let t = timeouts(1 + rng.next() % 10, 1 + rng.next() % 20, rng.next() % 4);
        let watermarks = Watermarks { high: 0.9, low: 0.5 };
        let (mut whole, mut chunked) = (Aging::new(t, watermarks), Aging::new(t, watermarks));
        let mut dp = Datapath {
            capacity: 50,
            ..Default::default()
        };
        let clock = BootClock::with_boot_epoch(0);
        let mut now = 0;
        for step in 0..1500 {
            now += rng.next() % (S / 3);
            let k = key([6, 17][(rng.next() % 2) as usize], (rng.next() % 80) as u16);
            let flags = if k.protocol == 6 {
                [0x02, 0x10, 0x11][(rng.next() % 3) as usize]
            } else {
                0
            };
            dp.packet(k, 100, flags, now);
            if step % 5 == 0 {
                let snapshot = dp.snapshot();
                let a = whole.scan(&snapshot, now, dp.capacity);
                let chunk = 1 + (rng.next() % 9) as usize;
                let b = scan_in_chunks(&mut chunked, &snapshot, now, dp.capacity, chunk);
                let sorted = |mut v: Vec<Expiry>| {
                    v.sort_by_key(|e| e.key);
                    v
                };
                assert_eq!(sorted(a.clone()), sorted(b), "seed {seed} step {step}");
                for e in a {
                    if let Some(last) = dp.flows.remove(&e.key) {
                        let ra = whole.finish(&e.key, &last, e.reason, &clock);
                        let rb = chunked.finish(&e.key, &last, e.reason, &clock);
                        assert_eq!(ra, rb);
                    }
                }
                assert_eq!(whole.tracked_flows(), chunked.tracked_flows());
            }
        }
    }
}

#[test]
fn flows_sharing_one_timestamp_are_evicted_by_key_down_to_the_low_watermark() {
    let mut aging = Aging::new(timeouts(600, 6000, 5), Watermarks { high: 0.9, low: 0.8 });
    let mut dp = Datapath {
        capacity: 1000,
        ..Default::default()
    };
    for port in (0..1000u16).rev() {
        dp.packet(key(17, port), 10, 0, 7 * S);
    }
    let snapshot = dp.snapshot();
    let evicted = scan_in_chunks(&mut aging, &snapshot, 8 * S, dp.capacity, 64);
    let ports: Vec<u16> = evicted.iter().map(|e| e.key.src_port).collect();
    assert_eq!(
        ports,
        (0..200).collect::<Vec<_>>(),
        "the 200 smallest keys, in key order"
    );
    assert!(evicted.iter().all(|e| e.reason == EndReason::LackOfResources));
}

#[test]
fn eviction_spares_flows_active_since_the_walk() {
    let mut aging = Aging::new(timeouts(600, 6000, 5), Watermarks { high: 0.9, low: 0.5 });
    let mut dp = Datapath {
        capacity: 10,
        ..Default::default()
    };
    for port in 0..10u16 {
        dp.packet(key(17, port), 10, 0, u64::from(port) * S);
    }
    let mut pass = aging.begin_scan(20 * S, dp.capacity);
    let mut out = Vec::new();
    aging.scan_chunk(&mut pass, &dp.snapshot(), &mut out);
    assert!(out.is_empty());
    let eviction = aging.end_scan(pass).expect("10 of 10: above the high watermark");
    assert_eq!(eviction.count(), 5);
    // Flows 0 and 3 send again before they are taken out.
    dp.packet(key(17, 0), 10, 0, 21 * S);
    dp.packet(key(17, 3), 10, 0, 21 * S);
    let ports: Vec<u16> = eviction
        .into_expiries()
        .iter()
        .filter(|e| e.still_due(&dp.flows[&e.key]))
        .map(|e| e.key.src_port)
        .collect();
    assert_eq!(
        ports,
        vec![1, 2, 4],
        "oldest first; the active ones stay, nothing newer is taken instead"
    );
}
