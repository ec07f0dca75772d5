//! Unit tests of aging, run through the production scanner against the
//! in-memory flow cache: every rule that decides when a flow is reported, and
//! every rule that keeps a pass from losing what the datapath counted.

use std::{cell::RefMut, collections::BTreeMap, time::Duration};

use flowctl_model::{
    memory::{MemoryCache, MemoryError, MemorySource, Op},
    EndReason, FlowKey, FlowRecord,
};

use crate::{Scanner, Timeouts, Watermarks};

const S: u64 = 1_000_000_000;
/// Unix time of boot-time 0 in [`MemorySource`].
const BOOT_EPOCH_NS: u64 = 1_700_000_000 * S;

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

/// The production scanner over an in-memory cache.
struct Harness {
    scanner: Scanner<MemorySource>,
}

impl Harness {
    fn new(timeouts: Timeouts, watermarks: Watermarks, capacity: u32) -> Self {
        Self::with_chunk(timeouts, watermarks, capacity, 64)
    }

    fn with_chunk(timeouts: Timeouts, watermarks: Watermarks, capacity: u32, chunk: usize) -> Self {
        let source = MemorySource::new(capacity).with_chunk(chunk);
        Self {
            scanner: Scanner::new(source, timeouts, watermarks),
        }
    }

    fn cache(&self) -> RefMut<'_, MemoryCache> {
        self.scanner.source().cache()
    }

    /// One packet at boot time `at`.
    fn packet(&self, key: FlowKey, octets: u64, flags: u16, at: u64) {
        let mut c = self.cache();
        c.now_ns = at;
        c.packet(key, octets, flags);
    }

    /// One pass at boot time `now`: its records.
    fn scan(&mut self, now: u64) -> Vec<FlowRecord> {
        self.cache().now_ns = now;
        let mut records = Vec::new();
        self.scanner.scan(&mut |chunk| records.extend(chunk)).unwrap();
        records
    }

    fn end_all(&mut self) -> Vec<FlowRecord> {
        let mut records = Vec::new();
        self.scanner.end_all(&mut |chunk| records.extend(chunk)).unwrap();
        records
    }

    fn flows_left(&self) -> usize {
        self.cache().flows.len()
    }
}

/// Packets and octets per flow over `records`.
fn sums(records: &[FlowRecord]) -> BTreeMap<FlowKey, (u64, u64)> {
    let mut sums = BTreeMap::new();
    for r in records {
        let e: &mut (u64, u64) = sums.entry(r.key).or_default();
        e.0 += r.packets();
        e.1 += r.octets();
    }
    sums
}

#[test]
fn idle_flow_ends_with_reason_1_and_leaves_the_cache() {
    let mut h = Harness::new(timeouts(10, 60, 5), Watermarks::default(), 100);
    h.packet(key(17, 1), 100, 0, S);
    h.packet(key(17, 1), 100, 0, 2 * S);
    assert!(h.scan(11 * S).is_empty(), "idle for 9 s only");
    let recs = h.scan(12 * S);
    assert_eq!(recs.len(), 1);
    let r = recs[0];
    assert_eq!((r.packets(), r.octets(), r.reason), (2, 200, EndReason::IdleTimeout));
    assert_eq!((r.total_packets, r.total_octets), (2, 200));
    assert_eq!(r.start_unix_ns, BOOT_EPOCH_NS + S);
    assert_eq!(r.end_unix_ns, BOOT_EPOCH_NS + 2 * S);
    assert_eq!(h.flows_left(), 0);
}

#[test]
fn per_protocol_idle_timeouts_apply() {
    let mut t = timeouts(100, 1000, 5);
    t.idle_udp = Duration::from_secs(3);
    t.idle_icmp = Duration::from_secs(1);
    let mut h = Harness::new(t, Watermarks::default(), 100);
    for (p, port) in [(6, 1), (17, 2), (1, 3), (58, 4), (47, 5)] {
        h.packet(key(p, port), 60, 0, 0);
    }
    let ended = |recs: Vec<FlowRecord>| recs.iter().map(|r| r.key.protocol).collect::<Vec<_>>();
    assert_eq!(ended(h.scan(S + 1)), vec![1, 58]);
    assert_eq!(ended(h.scan(3 * S)), vec![17]);
    assert!(h.scan(99 * S).is_empty());
    assert_eq!(ended(h.scan(100 * S)), vec![6, 47]);
}

#[test]
fn an_active_timeout_takes_the_entry_and_carries_the_totals_over() {
    let mut h = Harness::new(timeouts(30, 10, 5), Watermarks::default(), 100);
    let k = key(17, 7);
    for t in 0..10 {
        h.packet(k, 100, 0, t * S);
    }
    let r1 = h.scan(10 * S);
    assert_eq!(r1.len(), 1);
    assert_eq!(
        (r1[0].packets(), r1[0].octets(), r1[0].reason),
        (10, 1000, EndReason::ActiveTimeout)
    );
    assert_eq!(
        h.flows_left(),
        0,
        "taken out of the cache: a restarted agent cannot export it again"
    );
    for t in 10..15 {
        h.packet(k, 50, 0, t * S + S / 2);
    }
    assert!(
        h.scan(15 * S).is_empty(),
        "the new entry's active timeout runs from its first packet"
    );
    let r2 = h.scan(21 * S);
    assert_eq!(
        (r2[0].packets(), r2[0].octets(), r2[0].reason),
        (5, 250, EndReason::ActiveTimeout)
    );
    assert_eq!((r2[0].total_packets, r2[0].total_octets), (15, 1250), "totals carry on");
    assert!(
        r2[0].start_unix_ns > r1[0].end_unix_ns,
        "records cover disjoint packets"
    );
    h.packet(k, 10, 0, 22 * S);
    let r3 = h.scan(60 * S);
    assert_eq!(
        (r3[0].packets(), r3[0].total_packets, r3[0].reason),
        (1, 16, EndReason::IdleTimeout)
    );
    assert_eq!(h.scanner.aging().tracked_flows(), 0);
}

#[test]
fn carried_totals_are_forgotten_after_the_idle_timeout() {
    let mut h = Harness::new(timeouts(30, 10, 5), Watermarks::default(), 100);
    let k = key(17, 8);
    h.packet(k, 100, 0, 0);
    h.packet(k, 100, 0, 9 * S);
    assert_eq!(h.scan(10 * S)[0].reason, EndReason::ActiveTimeout);
    assert_eq!(h.scanner.aging().tracked_flows(), 1);
    assert!(h.scan(100 * S).is_empty());
    assert_eq!(h.scanner.aging().tracked_flows(), 0);
    h.packet(k, 100, 0, 101 * S);
    let r = h.scan(200 * S);
    assert_eq!(
        r[0].total_packets, 1,
        "a new flow with the same key starts its totals again"
    );
}

#[test]
fn tcp_fin_or_rst_ends_the_flow_after_the_grace_period() {
    let mut h = Harness::new(timeouts(60, 600, 5), Watermarks::default(), 100);
    let (a, b) = (key(6, 1), key(6, 2));
    h.packet(a, 60, 0x02, 0);
    h.packet(a, 60, 0x11, S); // FIN|ACK
    h.packet(b, 60, 0x04, S); // RST
    assert!(h.scan(2 * S).is_empty(), "grace starts when the end is seen");
    h.packet(a, 52, 0x10, 3 * S); // the last ACK still counts
    assert!(h.scan(6 * S).is_empty());
    let recs = h.scan(7 * S);
    assert_eq!(recs.len(), 2);
    let ra = recs.iter().find(|r| r.key == a).unwrap();
    assert_eq!(
        (ra.packets(), ra.octets(), ra.reason, ra.stats.tcp_flags),
        (3, 172, EndReason::EndOfFlow, 0x13)
    );
}

#[test]
fn end_all_ends_every_flow_with_reason_4() {
    let mut h = Harness::with_chunk(timeouts(60, 600, 5), Watermarks::default(), 100, 3);
    for port in 0..10 {
        h.packet(key(17, port), 10, 0, 0);
    }
    let recs = h.end_all();
    assert_eq!(recs.len(), 10);
    assert!(recs.iter().all(|r| r.reason == EndReason::ForcedEnd));
    assert_eq!(h.flows_left(), 0);
}

#[test]
fn nearly_full_cache_evicts_the_oldest_flows_with_reason_5() {
    let mut h = Harness::new(timeouts(600, 6000, 5), Watermarks { high: 0.9, low: 0.5 }, 10);
    for port in 0..9u16 {
        h.packet(key(17, port), 10, 0, u64::from(port) * S);
    }
    let recs = h.scan(20 * S);
    let evicted: Vec<u16> = recs.iter().map(|r| r.key.src_port).collect();
    assert_eq!(evicted, vec![0, 1, 2, 3], "oldest first, down to 50 %");
    assert!(recs.iter().all(|r| r.reason == EndReason::LackOfResources));
    assert_eq!(h.flows_left(), 5);
    assert!(h.scan(21 * S).is_empty(), "below the high watermark now");
}

#[test]
fn flows_sharing_one_timestamp_are_evicted_by_key_down_to_the_low_watermark() {
    let mut h = Harness::new(timeouts(600, 6000, 5), Watermarks { high: 0.9, low: 0.8 }, 1000);
    for port in (0..1000u16).rev() {
        h.packet(key(17, port), 10, 0, 7 * S);
    }
    let ports: Vec<u16> = h.scan(8 * S).iter().map(|r| r.key.src_port).collect();
    assert_eq!(
        ports,
        (0..200).collect::<Vec<_>>(),
        "the 200 smallest keys, in key order"
    );
}

#[test]
fn an_evicted_flow_keeps_the_packets_it_got_after_the_walk() {
    let mut h = Harness::new(timeouts(600, 6000, 5), Watermarks { high: 0.9, low: 0.5 }, 10);
    for port in 0..10u16 {
        h.packet(key(17, port), 10, 0, u64::from(port) * S);
    }
    // Flows 0 and 3 send again after the walk, just before they are closed.
    h.scanner.source().set_hook(|op, cache| {
        if let Op::Close(k) = op {
            if matches!(k.src_port, 0 | 3) {
                cache.now_ns = 21 * S;
                cache.packet(k, 10, 0);
            }
        }
        Ok(())
    });
    let recs = h.scan(20 * S);
    let evicted: Vec<(u16, u64)> = recs.iter().map(|r| (r.key.src_port, r.packets())).collect();
    assert_eq!(
        evicted,
        vec![(0, 2), (1, 1), (2, 1), (3, 2), (4, 1)],
        "the oldest at the walk, with every packet they got until closed"
    );
    assert!(recs.iter().all(|r| r.reason == EndReason::LackOfResources));
}

#[test]
fn a_packet_on_its_way_when_the_flow_closed_is_in_the_record() {
    let mut h = Harness::new(timeouts(10, 600, 5), Watermarks::default(), 100);
    let k = key(17, 1);
    h.packet(k, 100, 0, 0);
    h.scanner.source().set_hook(move |op, cache| {
        if op == Op::Settle {
            assert!(cache.late_packet(k, 40));
        }
        Ok(())
    });
    let recs = h.scan(20 * S);
    assert_eq!((recs[0].packets(), recs[0].octets()), (2, 140));
    assert_eq!(h.flows_left(), 0);
}

#[test]
fn a_flow_deleted_by_someone_else_is_skipped_and_its_state_expires() {
    let mut h = Harness::new(timeouts(60, 10, 5), Watermarks::default(), 100);
    let k = key(17, 9);
    h.packet(k, 10, 0, 0);
    h.packet(k, 10, 0, 9 * S);
    assert_eq!(h.scan(10 * S).len(), 1);
    h.packet(k, 10, 0, 11 * S);
    h.scanner.source().set_hook(move |op, cache| {
        if op == Op::Close(k) {
            cache.flows.clear(); // flowctl flush --discard
        }
        Ok(())
    });
    assert!(h.scan(30 * S).is_empty());
    h.scanner.source().clear_hook();
    assert!(h.scan(200 * S).is_empty());
    assert_eq!(h.scanner.aging().tracked_flows(), 0);
}

#[test]
fn a_mass_expiry_ends_every_idle_flow_in_one_pass_and_leaves_the_rest_alone() {
    let mut h = Harness::with_chunk(timeouts(30, 600, 5), Watermarks::default(), 10_000, 100);
    for i in 0..3000u16 {
        let at = if i % 30 == 0 { 99 * S } else { 0 };
        h.packet(key(17, i), 90 + u64::from(i % 7), 0, at);
    }
    let staying: BTreeMap<FlowKey, _> = h
        .cache()
        .flows
        .iter()
        .filter(|(_, l)| l.stats.last_seen_ns > 0)
        .map(|(k, l)| (*k, *l))
        .collect();
    assert_eq!(staying.len(), 100);
    let recs = h.scan(100 * S);
    assert_eq!(recs.len(), 2900);
    assert!(recs.iter().all(|r| r.reason == EndReason::IdleTimeout));
    assert_eq!(h.cache().flows, staying, "the staying flows are untouched");
    let counted = h.cache().counted.clone();
    let mut all = recs;
    all.extend(h.end_all());
    assert_eq!(sums(&all), counted);
}

/// Deterministic xorshift for the long runs below.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One random packet at the cache's current time.
fn random_packet(rng: &mut Rng, cache: &mut MemoryCache, ports: u64) {
    let k = key([6, 17, 1][(rng.next() % 3) as usize], (rng.next() % ports) as u16);
    let flags = if k.protocol == 6 {
        [0x02, 0x10, 0x18, 0x11, 0x04][(rng.next() % 5) as usize]
    } else {
        0
    };
    cache.packet(k, 40 + rng.next() % 1400, flags);
}

#[test]
fn records_sum_to_exactly_what_was_counted_whatever_happens() {
    for seed in 1..=30u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut t = timeouts(1 + rng.next() % 20, 1 + rng.next() % 30, rng.next() % 5);
        t.idle_tcp = Duration::from_secs(1 + rng.next() % 40);
        let chunk = 1 + (rng.next() % 16) as usize;
        let mut h = Harness::with_chunk(t, Watermarks { high: 0.9, low: 0.6 }, 40, chunk);
        // Packets also arrive while a pass runs, between any two operations,
        // and some land in flows closed a moment before.
        let mut hook_rng = Rng(seed + 7);
        h.scanner.source().set_hook(move |_, cache| {
            if hook_rng.next().is_multiple_of(3) {
                random_packet(&mut hook_rng, cache, 60);
            }
            if !cache.closing.is_empty() && hook_rng.next().is_multiple_of(2) {
                let i = (hook_rng.next() % cache.closing.len() as u64) as usize;
                let k = cache.closing[i].0.key;
                cache.late_packet(k, 40 + hook_rng.next() % 1400);
            }
            Ok(())
        });
        let mut exported = Vec::new();
        let mut now = 0;
        for step in 0..3000 {
            now += rng.next() % (S / 2);
            {
                let mut c = h.cache();
                c.now_ns = now;
                random_packet(&mut rng, &mut c, 60);
            }
            if step % 7 == 0 {
                for r in h.scan(now) {
                    assert!(r.packets() > 0 && r.start_unix_ns <= r.end_unix_ns, "{r:?}");
                    assert!(r.total_packets >= r.packets());
                    exported.push(r);
                }
            }
        }
        let forced = h.end_all();
        assert!(forced.iter().all(|r| r.reason == EndReason::ForcedEnd));
        exported.extend(forced);
        // Packets during the last pass start entries left for the next agent.
        exported.extend(h.cache().flows.iter().map(|(k, l)| FlowRecord {
            key: *k,
            stats: l.stats,
            ..Default::default()
        }));
        let counted = h.cache().counted.clone();
        let exported = sums(&exported);
        let wrong: Vec<_> = counted
            .iter()
            .filter(|(k, c)| exported.get(k) != Some(c))
            .map(|(k, c)| (k.protocol, k.src_port, *c, exported.get(k)))
            .collect();
        assert!(
            wrong.is_empty(),
            "seed {seed}: exported deltas must equal counted totals: {wrong:?}"
        );
        assert!(counted.len() > 60, "seed {seed}: the run covers many flows");
    }
}

#[test]
fn an_injected_error_fails_the_pass() {
    let mut h = Harness::new(timeouts(10, 600, 5), Watermarks::default(), 100);
    h.packet(key(17, 1), 100, 0, 0);
    h.scanner.source().set_hook(|op, _| {
        if op == Op::Counters {
            Err(MemoryError("injected".into()))
        } else {
            Ok(())
        }
    });
    let err = h.scanner.scan(&mut |_| {}).unwrap_err();
    assert_eq!(err.to_string(), "injected");
}

#[test]
fn a_fin_before_an_active_timeout_still_ends_the_tail_with_reason_3() {
    let mut h = Harness::new(timeouts(60, 2, 5), Watermarks::default(), 100);
    let k = key(6, 1);
    h.packet(k, 60, 0x02, 0); // SYN
    h.packet(k, 60, 0x11, S); // FIN|ACK
    let r1 = h.scan(2 * S);
    assert_eq!(
        r1[0].reason,
        EndReason::ActiveTimeout,
        "the active timeout fires inside the grace period"
    );
    h.packet(k, 52, 0x10, 3 * S); // the last ACK, in a new entry
    assert!(h.scan(4 * S).is_empty(), "still within the grace period");
    let r2 = h.scan(7 * S);
    assert_eq!(r2.len(), 1);
    assert_eq!(
        (r2[0].reason, r2[0].packets(), r2[0].total_packets),
        (EndReason::EndOfFlow, 1, 3),
        "the tail ends when the grace period after the FIN is over, with reason 3"
    );
    assert_eq!(h.scanner.aging().tracked_flows(), 0);
}

/// `n` idle UDP flows in a cache of chunk `chunk`, and a pass at 100 s.
fn idle_flows(n: u16, chunk: usize) -> Harness {
    let h = Harness::with_chunk(timeouts(10, 600, 5), Watermarks::default(), 10_000, chunk);
    for port in 0..n {
        h.packet(key(17, port), 100, 0, 0);
    }
    h.cache().now_ns = 100 * S;
    h
}

/// Records handed to the sink plus flows left in the cache must be exactly
/// what was counted.
fn assert_nothing_lost(h: &Harness, records: &[FlowRecord]) {
    let mut all = sums(records);
    let cache = h.cache();
    let left = cache.flows.iter().map(|(k, l)| (k, &l.stats));
    for (k, s) in left.chain(cache.closing.iter().map(|(e, s)| (&e.key, s))) {
        let e = all.entry(*k).or_default();
        e.0 += s.packets;
        e.1 += s.octets;
    }
    assert_eq!(all, cache.counted);
}

#[test]
fn an_error_in_the_middle_of_a_pass_hands_over_every_record_made_before_it() {
    let mut h = idle_flows(100, 10);
    let mut closes = 0;
    h.scanner.source().set_hook(move |op, _| {
        if matches!(op, Op::Close(_)) {
            closes += 1;
            if closes == 5 {
                return Err(MemoryError("injected".into()));
            }
        }
        Ok(())
    });
    let mut records = Vec::new();
    let err = h.scanner.scan(&mut |c| records.extend(c)).unwrap_err();
    assert_eq!(err.to_string(), "injected");
    assert_eq!(records.len(), 4, "the flows closed before the error are handed over");
    assert_nothing_lost(&h, &records);
}

#[test]
fn a_failed_settle_keeps_the_closed_flows_for_the_next_pass() {
    let mut h = idle_flows(10, 10);
    let mut settles = 0;
    h.scanner.source().set_hook(move |op, _| {
        if op == Op::Settle {
            settles += 1;
            if settles == 1 {
                return Err(MemoryError("injected".into()));
            }
        }
        Ok(())
    });
    let mut records = Vec::new();
    assert!(h.scanner.scan(&mut |c| records.extend(c)).is_err());
    assert!(records.is_empty());
    assert_nothing_lost(&h, &records);
    h.scanner.scan(&mut |c| records.extend(c)).unwrap();
    assert_eq!(records.len(), 10);
    assert!(records.iter().all(|r| r.reason == EndReason::IdleTimeout));
    assert_nothing_lost(&h, &records);
}

#[test]
fn an_error_while_ending_every_flow_hands_over_what_was_closed() {
    let mut h = idle_flows(30, 10);
    let mut reads = 0;
    h.scanner.source().set_hook(move |op, _| {
        if op == Op::Read {
            reads += 1;
            if reads == 3 {
                return Err(MemoryError("injected".into()));
            }
        }
        Ok(())
    });
    let mut records = Vec::new();
    assert!(h.scanner.end_all(&mut |c| records.extend(c)).is_err());
    assert_eq!(records.len(), 20);
    assert_nothing_lost(&h, &records);
}

#[test]
fn end_where_ends_exactly_the_selected_flows_with_reason_4() {
    let mut h = Harness::with_chunk(timeouts(60, 600, 5), Watermarks::default(), 100, 4);
    for port in 0..20 {
        h.packet(key(17, port), 100, 0, 0);
    }
    let mut records = Vec::new();
    let out = h
        .scanner
        .end_where(|k| k.src_port % 5 == 0, &mut |c| records.extend(c))
        .unwrap();
    let mut ports: Vec<u16> = records.iter().map(|r| r.key.src_port).collect();
    ports.sort();
    assert_eq!(ports, vec![0, 5, 10, 15]);
    assert!(records
        .iter()
        .all(|r| r.reason == EndReason::ForcedEnd && r.packets() == 1));
    assert_eq!((out.flows, out.ended.get(EndReason::ForcedEnd)), (20, 4));
    assert_eq!(h.flows_left(), 16);
}

#[test]
fn without_carried_totals_an_active_timeout_leaves_no_state_unless_a_fin_was_seen() {
    let mut h = Harness::new(timeouts(60, 2, 5), Watermarks::default(), 100);
    h.scanner.set_carry_totals(false);
    let (udp, tcp) = (key(17, 1), key(6, 2));
    h.packet(udp, 100, 0, 0);
    h.packet(udp, 100, 0, S);
    h.packet(tcp, 60, 0x02, 0);
    h.packet(tcp, 60, 0x11, S); // FIN|ACK
    let first = h.scan(2 * S);
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|r| r.reason == EndReason::ActiveTimeout));
    assert_eq!(
        h.scanner.aging().tracked_flows(),
        1,
        "only the flow whose FIN must carry over"
    );
    h.packet(udp, 100, 0, 3 * S);
    h.packet(tcp, 52, 0x10, 3 * S);
    let rest = h.scan(100 * S);
    let of = |k: FlowKey| rest.iter().find(|r| r.key == k).unwrap();
    assert_eq!(
        (of(udp).packets(), of(udp).total_packets),
        (1, 1),
        "a record's totals are its own"
    );
    assert_eq!(of(tcp).reason, EndReason::EndOfFlow, "the FIN still ends the tail");
}
