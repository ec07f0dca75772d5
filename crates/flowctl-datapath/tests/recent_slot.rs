//! Each CPU remembers the slot of the flow it counted last, and the slots
//! of the flows it counted recently in its front cache, and counts the next
//! packet of such a flow there without hashing its key (root needed: real
//! eBPF). A slot it remembers may have been closed, freed and taken by
//! another flow since: not one packet may land in a slot that no longer
//! counts its flow, and none may be lost.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cpus;

use cpus::{send, TwoCpuCache};
use flowctl_datapath::{test_run::DetachedDatapath, FlowTable, PinLayout};
use flowctl_model::{EndReason, Ending, FlowEntry, FlowSource, FlowStats, FrontEntry, FRONT_ENTRIES};

/// The live flow from `src_port`, if there is one.
fn live(table: &FlowTable, src_port: u16) -> Option<FlowEntry> {
    let mut flows = table
        .read_all()
        .unwrap()
        .into_iter()
        .filter(|e| e.key.src_port == src_port);
    let flow = flows.next();
    assert!(flows.next().is_none(), "one live flow per key");
    flow
}

/// The slots CPU `cpu`'s front cache names (its entries in use).
fn front_slots(layout: &PinLayout, cpu: u32) -> Vec<u32> {
    let data = aya::maps::MapData::from_pin(layout.front_map()).unwrap();
    let array: aya::maps::Array<_, FrontEntry> = aya::maps::Array::try_from(aya::maps::Map::Array(data)).unwrap();
    (cpu * FRONT_ENTRIES..(cpu + 1) * FRONT_ENTRIES)
        .map(|i| array.get(&i, 0).unwrap())
        .filter(|e| e.check != 0)
        .map(|e| e.slot)
        .collect()
}

/// Makes flows on CPU 1 until one takes `slot`; closes the others and
/// returns the source port of the one that took it.
fn take_slot_on_cpu1(datapath: &DetachedDatapath, table: &FlowTable, slot: u32) -> u16 {
    let mut fillers = Vec::new();
    let port = (2000..2016)
        .find(|&port| {
            send(datapath, 1, port, 1);
            let entry = live(table, port).expect("a free slot");
            let taken = entry.slot == slot;
            if !taken {
                fillers.push(entry);
            }
            taken
        })
        .expect("the ring gives the freed slot again");
    close(table, &fillers);
    port
}

/// Closes `flows` (forced end) and returns what their settle reported.
fn close(table: &FlowTable, flows: &[FlowEntry]) -> Vec<FlowStats> {
    let endings: Vec<Ending> = flows.iter().map(|e| Ending::of(e, EndReason::ForcedEnd)).collect();
    table.close(&endings).unwrap();
    let mut settled = Vec::new();
    table.settle(&mut |_, stats| settled.push(stats)).unwrap();
    settled
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn a_flow_closed_since_its_last_packet_starts_again_in_a_new_slot() {
    let TwoCpuCache {
        datapath,
        table,
        pins: _pins,
        ..
    } = TwoCpuCache::new("recent-closed", 8);
    let a = 1000;
    send(&datapath, 0, a, 5);
    let first = live(&table, a).expect("the flow is live");
    let settled = close(&table, std::slice::from_ref(&first));
    assert_eq!(settled.iter().map(|s| s.packets).collect::<Vec<_>>(), [5]);

    // CPU 0 still remembers the slot, which is free now: the packets must
    // make a new flow, not vanish into the freed slot.
    send(&datapath, 0, a, 3);
    let again = live(&table, a).expect("the flow starts again");
    assert_eq!((again.stats.packets, again.stats.octets), (3, 3 * 46));
    assert_ne!(again.slot, first.slot, "a freed slot goes to the back of the ring");
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn a_remembered_slot_taken_by_another_flow_is_not_counted_for_the_old_one() {
    let TwoCpuCache {
        datapath,
        table,
        pins: _pins,
        ..
    } = TwoCpuCache::new("recent-taken", 8);
    let a = 1000;
    send(&datapath, 0, a, 5);
    let first = live(&table, a).expect("the flow is live");
    close(&table, std::slice::from_ref(&first));

    // CPU 1 makes flows until one takes the slot CPU 0 remembers.
    let b = take_slot_on_cpu1(&datapath, &table, first.slot);

    // CPU 0's next packet of the first flow finds another flow in the slot
    // it remembers: it makes a new flow and leaves that one alone.
    send(&datapath, 0, a, 3);
    let again = live(&table, a).expect("the flow starts again");
    assert_eq!(again.stats.packets, 3);
    assert_ne!(again.slot, first.slot);
    let other = live(&table, b).expect("the other flow");
    assert_eq!((other.slot, other.stats.packets), (first.slot, 1));
    // And CPU 0 now counts the first flow where it is.
    send(&datapath, 0, a, 4);
    assert_eq!(live(&table, a).unwrap().stats.packets, 7);
    assert_eq!(live(&table, b).unwrap().stats.packets, 1);
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn a_front_cache_entry_whose_slot_was_taken_by_another_flow_is_not_counted_for_the_old_one() {
    let TwoCpuCache {
        datapath,
        table,
        layout,
        pins: _pins,
    } = TwoCpuCache::new("front-taken", 8);
    let (a, other_flow) = (1000, 1001);
    // With another flow in between, a's packets are found through CPU 0's
    // front cache, not as its last flow: counted exactly.
    for _ in 0..3 {
        send(&datapath, 0, a, 2);
        send(&datapath, 0, other_flow, 1);
    }
    let first = live(&table, a).expect("the flow is live");
    assert_eq!((first.stats.packets, first.stats.octets), (6, 6 * 46));
    assert!(
        front_slots(&layout, 0).contains(&first.slot),
        "CPU 0's front cache names a's slot"
    );

    close(&table, std::slice::from_ref(&first));
    let b = take_slot_on_cpu1(&datapath, &table, first.slot);
    assert!(
        front_slots(&layout, 0).contains(&first.slot),
        "CPU 0's front cache still names it"
    );

    // CPU 0's next packet of a finds another flow in the slot its front
    // cache names (its last flow is other_flow): a new flow, b untouched.
    send(&datapath, 0, a, 3);
    let again = live(&table, a).expect("the flow starts again");
    assert_eq!(again.stats.packets, 3);
    assert_ne!(again.slot, first.slot);
    assert_eq!(
        live(&table, b).map(|e| (e.slot, e.stats.packets)),
        Some((first.slot, 1))
    );
    // And the front cache now counts a where it is.
    send(&datapath, 0, other_flow, 1);
    send(&datapath, 0, a, 4);
    assert_eq!(live(&table, a).unwrap().stats.packets, 7);
    assert_eq!(live(&table, b).unwrap().stats.packets, 1);
    assert_eq!(live(&table, other_flow).unwrap().stats.packets, 4);
}
