//! No packet is ever counted on another flow while flows are ended and
//! their places in the cache reused (root needed: real eBPF).
//!
//! Two threads, one pinned to each of two CPUs, run the classifier on the
//! packets of 64 UDP flows that differ in source port, each with its own
//! TTL; a third ends every flow as fast as it can (close, settle), as an
//! agent with a very short active timeout would, so hash elements and slots
//! are freed and reused all the time under the senders' feet. Every record
//! must carry only its own flow's TTL, and each flow's records must sum to
//! exactly the packets sent for it.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cpus;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Barrier,
    },
    time::{Duration, Instant},
};

use cpus::{pin_to_cpu, TwoCpuCache};
use etherparse::PacketBuilder;
use flowctl_datapath::{
    test_run::{DetachedDatapath, SkbContext},
    Direction, FlowTable,
};
use flowctl_model::{EndReason, Ending, FlowSource};

const FLOWS: u16 = 64;
const FIRST_PORT: u16 = 2000;

/// Flow `i`: UDP from port FIRST_PORT + i, every packet with TTL 1 + i.
fn packet(i: u16) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 1 + i as u8)
        .udp(FIRST_PORT + i, 53)
        .write(&mut out, &[0xab; 18])
        .unwrap();
    out
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn no_packet_lands_on_another_flow_while_entries_are_reused() {
    // Only the senders' programs run: the one loaded here goes at once.
    let TwoCpuCache {
        table,
        layout,
        pins: _pins,
        ..
    } = TwoCpuCache::new("recycle", 1024);

    let stop = Arc::new(AtomicBool::new(false));
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..FLOWS).map(|_| AtomicU64::new(0)).collect());
    // Loading takes seconds under software emulation: the three seconds
    // start once both senders are ready.
    let ready = Arc::new(Barrier::new(3));
    let senders: Vec<_> = (0..2)
        .map(|cpu| {
            let (layout, stop, sent, ready) = (layout.clone(), stop.clone(), sent.clone(), ready.clone());
            std::thread::spawn(move || {
                pin_to_cpu(cpu);
                let datapath = DetachedDatapath::load(&layout, 9, Some(1024));
                let packets: Vec<Vec<u8>> = (0..FLOWS).map(packet).collect();
                ready.wait();
                let datapath = datapath.unwrap();
                while !stop.load(Ordering::Relaxed) {
                    for (i, p) in packets.iter().enumerate() {
                        datapath.run(Direction::Egress, p, SkbContext::default()).unwrap();
                        sent[i].fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    // End every flow, again and again, for three seconds; then once more
    // after the senders stopped.
    let mut counted: HashMap<u16, u64> = HashMap::new();
    let (mut records, mut foreign) = (0u64, Vec::new());
    let mut end_everything = |table: &FlowTable| {
        let endings: Vec<Ending> = table
            .read_all()
            .unwrap()
            .iter()
            .map(|e| Ending::of(e, EndReason::ActiveTimeout))
            .collect();
        table.close(&endings).unwrap();
        table
            .settle(&mut |ending, stats| {
                records += 1;
                let port = ending.key.src_port;
                let ttl = (port - FIRST_PORT + 1) as u8;
                if (stats.min_ttl, stats.max_ttl) != (ttl, ttl) {
                    foreign.push((port, stats.min_ttl, stats.max_ttl));
                }
                *counted.entry(port).or_default() += stats.packets;
            })
            .unwrap();
    };
    ready.wait();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        end_everything(&table);
    }
    stop.store(true, Ordering::Relaxed);
    senders.into_iter().for_each(|s| s.join().unwrap());
    end_everything(&table);

    let total: u64 = sent.iter().map(|s| s.load(Ordering::Relaxed)).sum();
    eprintln!("{total} packets on {FLOWS} flows from 2 CPUs, {records} records while ending every flow continuously");
    assert!(
        foreign.is_empty(),
        "records with another flow's TTL: {:?}",
        &foreign[..foreign.len().min(20)]
    );
    assert_eq!(table.counters().unwrap().not_recorded_packets, 0);
    for i in 0..FLOWS {
        assert_eq!(
            counted.get(&(FIRST_PORT + i)).copied().unwrap_or(0),
            sent[i as usize].load(Ordering::Relaxed),
            "flow {i}: every packet sent, exactly once"
        );
    }
    assert!(
        records > 10 * u64::from(FLOWS),
        "the flows were ended many times ({records} records)"
    );
}
