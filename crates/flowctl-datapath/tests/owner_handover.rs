//! A flow whose packets move to another CPU is handed over to that CPU
//! (root needed: real eBPF on two CPUs), and not one packet is lost or
//! counted twice on the way.
//!
//! The CPU that creates a flow's slot adds to it without atomics; every
//! other CPU adds with atomic instructions to shared counters. A sending
//! thread that migrated would pay those atomics on every packet for the
//! flow's whole life: the writer's walk takes such a slot from its owner,
//! and the next settle (after its grace period) opens the slot for the
//! next CPU. Counts never move between the two pairs of counters.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cpus;

use cpus::{packet, pin_to_cpu, send, TwoCpuCache};
use flowctl_datapath::{
    test_run::{DetachedDatapath, SkbContext},
    Direction, FlowTable,
};
use flowctl_model::{meta, slot_owner, FlowKey, FlowSlot, FlowSource};

fn slot_of(table: &FlowTable, src_port: u16) -> FlowSlot {
    let key = table
        .keys()
        .unwrap()
        .into_iter()
        .find(|k: &FlowKey| k.src_port == src_port)
        .expect("the flow is in the cache");
    table.slot(&key).unwrap().expect("its slot")
}

/// (owner byte, plain packets, shared packets, all packets)
fn counts(table: &FlowTable, src_port: u16) -> (u8, u64, u64, u64) {
    let s = slot_of(table, src_port);
    (slot_owner(s.meta), s.packets, s.shared_packets, s.stats().packets)
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn a_flow_that_moved_to_another_cpu_is_handed_over_to_it_exactly() {
    let TwoCpuCache {
        datapath,
        table,
        layout,
        pins: _pins,
    } = TwoCpuCache::new("handover", 64);
    // Looks without handing over: only the writer's walks take slots.
    let reader = FlowTable::open(&layout).unwrap();
    let (moving, staying) = (1000, 2000);

    // Created on CPU 0 (owner byte 1); then mostly counted on CPU 1.
    send(&datapath, 0, moving, 10);
    send(&datapath, 0, staying, 10);
    send(&datapath, 1, moving, 30);
    send(&datapath, 1, staying, 3);
    assert_eq!(counts(&reader, moving), (1, 10, 30, 40));
    assert_eq!(counts(&reader, staying), (1, 10, 3, 13));

    // The writer's walk takes the moved flow from CPU 0 only; packets
    // counted now all go to the shared counters.
    assert_eq!(table.read_all().unwrap().len(), 2);
    assert_eq!(counts(&reader, moving).0, meta::OWNER_NONE);
    assert_eq!(counts(&reader, staying).0, 1);
    send(&datapath, 0, moving, 2);
    assert_eq!(counts(&reader, moving), (meta::OWNER_NONE, 10, 32, 42));

    // The settle (nothing closed) opens it; no count moves.
    table
        .settle(&mut |ending, _| panic!("nothing was closed: {ending:?}"))
        .unwrap();
    assert_eq!(counts(&reader, moving), (meta::OWNER_OPEN, 10, 32, 42));

    // The next CPU that counts into it takes it and adds plainly.
    send(&datapath, 1, moving, 25);
    assert_eq!(counts(&reader, moving), (2, 35, 32, 67));
    send(&datapath, 0, moving, 1);
    assert_eq!(counts(&reader, moving), (2, 35, 33, 68));
    // IPv4 length: 20 + 8 + 18 bytes a packet.
    let slot = slot_of(&reader, moving);
    assert_eq!((slot.octets, slot.shared_octets), (35 * 46, 33 * 46));
    // Since the previous walk its owner counted more: the next walk leaves it.
    table.read_all().unwrap();
    assert_eq!(counts(&reader, moving).0, 2);
    assert_eq!(counts(&reader, staying), (1, 10, 3, 13));
}

/// A sending thread that moved to another CPU after its flow had been
/// counted for a long time: the walk after the move takes the slot, though
/// the owner's counts are still far above the other CPU's (since the
/// previous walk, only the other CPU counted).
#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn a_long_flow_whose_sender_moved_is_handed_over_at_the_next_walk() {
    let TwoCpuCache {
        datapath,
        table,
        layout,
        pins: _pins,
    } = TwoCpuCache::new("handover-long", 64);
    let reader = FlowTable::open(&layout).unwrap();
    let (long, both) = (1000, 2000);

    // Counted on CPU 0 for a long time, with a little from CPU 1.
    send(&datapath, 0, long, 1000);
    send(&datapath, 1, long, 10);
    send(&datapath, 0, both, 1000);
    send(&datapath, 1, both, 10);
    table.read_all().unwrap();
    assert_eq!(
        counts(&reader, long),
        (1, 1000, 10, 1010),
        "the owner counts most: kept"
    );
    // Then only CPU 1 counts the long flow; both CPUs count the other one,
    // CPU 0 more.
    send(&datapath, 1, long, 50);
    send(&datapath, 0, both, 60);
    send(&datapath, 1, both, 50);
    table.read_all().unwrap();
    assert_eq!(counts(&reader, long), (meta::OWNER_NONE, 1000, 60, 1060));
    assert_eq!(counts(&reader, both).0, 1, "the owner counted more since the last walk");
    table
        .settle(&mut |ending, _| panic!("nothing was closed: {ending:?}"))
        .unwrap();
    send(&datapath, 1, long, 5);
    assert_eq!(counts(&reader, long), (2, 1005, 60, 1065));
}

/// Two CPUs count into the same flows, created on one and counted mostly on
/// the other, while the writer walks and settles as fast as it can, handing
/// slots over under the senders' feet: every flow's counters must still
/// sum to exactly the packets sent for it.
#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn handing_slots_over_under_traffic_loses_no_packet() {
    use std::{
        sync::{
            atomic::{AtomicBool, AtomicU64, Ordering},
            Arc,
        },
        time::{Duration, Instant},
    };
    const FLOWS: u16 = 16;
    let TwoCpuCache {
        datapath: table_datapath,
        table,
        layout,
        pins: _pins,
    } = TwoCpuCache::new("handover-load", 64);

    // Every flow is created on CPU 0 (one packet each), before the
    // senders start: however slowly they start (an emulated guest takes
    // seconds), CPU 0 owns the flows and CPU 1 counts most of them.
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..FLOWS).map(|_| AtomicU64::new(0)).collect());
    for (i, count) in sent.iter().enumerate() {
        send(&table_datapath, 0, 3000 + i as u16, 1);
        count.fetch_add(1, Ordering::Relaxed);
    }
    drop(table_datapath);
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..2)
        .map(|cpu| {
            let (layout, stop, sent) = (layout.clone(), stop.clone(), sent.clone());
            std::thread::spawn(move || {
                pin_to_cpu(cpu);
                let datapath = DetachedDatapath::load(&layout, 9, Some(64)).unwrap();
                let packets: Vec<Vec<u8>> = (0..FLOWS).map(|i| packet(3000 + i)).collect();
                // CPU 1 sends 8 packets of each flow for every one of CPU
                // 0's: the flows move to CPU 1 while CPU 0 still counts
                // into them, and CPU 0 takes some back when they open.
                let n = if cpu == 1 { 8 } else { 1 };
                while !stop.load(Ordering::Relaxed) {
                    for (i, p) in packets.iter().enumerate() {
                        datapath
                            .run_repeated(Direction::Egress, p, SkbContext::default(), n)
                            .unwrap();
                        sent[i].fetch_add(u64::from(n), Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        table.read_all().unwrap();
        table
            .settle(&mut |ending, _| panic!("nothing was closed: {ending:?}"))
            .unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    senders.into_iter().for_each(|s| s.join().unwrap());

    let handovers = table.handovers();
    let mut counted = vec![0u64; usize::from(FLOWS)];
    let endings: Vec<_> = table
        .read_all()
        .unwrap()
        .iter()
        .map(|e| flowctl_model::Ending::of(e, flowctl_model::EndReason::ForcedEnd))
        .collect();
    table.close(&endings).unwrap();
    table
        .settle(&mut |ending, stats| counted[usize::from(ending.key.src_port - 3000)] += stats.packets)
        .unwrap();
    let sent: Vec<u64> = sent.iter().map(|s| s.load(Ordering::Relaxed)).collect();
    eprintln!("{handovers} handovers; sent {sent:?}");
    assert_eq!(counted, sent);
    assert!(handovers >= u64::from(FLOWS), "only {handovers} handovers");
}
