//! An in-memory [`FlowSource`] for tests: a cache that behaves like the
//! pinned eBPF maps (closed flows leave the cache at once but may still get
//! a packet already on its way until they are settled; a full cache refuses
//! new flows and counts their packets as not recorded), a ledger of
//! everything it counted, and a hook that runs before each operation to
//! interleave packets or inject errors.

use std::{
    cell::{RefCell, RefMut},
    collections::BTreeMap,
    fmt,
    ops::Bound,
};

use crate::{BootClock, DatapathCounters, Ending, FlowEntry, FlowKey, FlowSource, FlowStats, FlowWalk};

/// An operation of the scanner on a [`MemorySource`], as its hook sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Reading the next chunk of a walk.
    Read,
    /// Closing one flow.
    Close(FlowKey),
    /// Settling the closed flows.
    Settle,
    /// Reading the datapath counters.
    Counters,
}

/// The error a hook injects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryError(pub String);

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MemoryError {}

/// Runs before each operation, with the cache: may count packets (a packet
/// that arrives between two operations) or fail the operation, which then
/// changes nothing, like a failed system call.
pub type Hook = Box<dyn FnMut(Op, &mut MemoryCache) -> Result<(), MemoryError>>;

/// A live flow: its slot and counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Live {
    /// Its slot.
    pub slot: u32,
    /// Its counters.
    pub stats: FlowStats,
}

/// The state of a [`MemorySource`].
#[derive(Debug, Default)]
pub struct MemoryCache {
    /// The live flows.
    pub flows: BTreeMap<FlowKey, Live>,
    /// Closed flows not settled yet, in close order, with their counters.
    pub closing: Vec<(Ending, FlowStats)>,
    /// Packets and octets ever recorded per flow, in the cache or taken out.
    pub counted: BTreeMap<FlowKey, (u64, u64)>,
    /// Most flows (live and closing) the cache holds.
    pub capacity: u32,
    /// The time now (boot-time ns); packets are stamped with it.
    pub now_ns: u64,
    /// The datapath counters (packets of new flows refused by a full cache).
    pub counters: DatapathCounters,
    /// The next slot number handed out.
    next_slot: u32,
}

impl MemoryCache {
    /// Counts one packet of `octets` octets with TCP flags `tcp_flags` (TTL
    /// 64, TOS 0) at the current time, as the datapath does; `false` when
    /// the cache is full and the packet is not recorded.
    pub fn packet(&mut self, key: FlowKey, octets: u64, tcp_flags: u16) -> bool {
        self.count(key, sample(octets, tcp_flags))
    }

    /// Counts `sample` (its packets, octets, flags, TTLs and TOS) for `key`
    /// at the current time; `false` when the cache is full.
    pub fn count(&mut self, key: FlowKey, sample: FlowStats) -> bool {
        let sample = self.stamped(sample);
        if let Some(live) = self.flows.get_mut(&key) {
            live.stats.absorb(&sample);
        } else if self.flows.len() + self.closing.len() >= self.capacity as usize {
            self.counters.not_recorded_packets += sample.packets;
            self.counters.not_recorded_octets += sample.octets;
            return false;
        } else {
            let slot = self.next_slot;
            self.next_slot += 1;
            self.flows.insert(key, Live { slot, stats: sample });
        }
        self.ledger(key, &sample);
        true
    }

    /// Counts one packet that was on its way when the flow closed: it lands
    /// in the closed flow `key` (the oldest one not settled), as a datapath
    /// program that found the flow just before it was closed would count
    /// it. `false` if no closed flow has that key.
    pub fn late_packet(&mut self, key: FlowKey, octets: u64) -> bool {
        let sample = self.stamped(sample(octets, 0));
        let Some((_, stats)) = self.closing.iter_mut().find(|(e, _)| e.key == key) else {
            return false;
        };
        stats.absorb(&sample);
        self.ledger(key, &sample);
        true
    }

    fn stamped(&self, sample: FlowStats) -> FlowStats {
        FlowStats {
            first_seen_ns: self.now_ns,
            last_seen_ns: self.now_ns,
            ..sample
        }
    }

    fn ledger(&mut self, key: FlowKey, sample: &FlowStats) {
        let c = self.counted.entry(key).or_default();
        c.0 += sample.packets;
        c.1 += sample.octets;
    }
}

/// One packet's counters (TTL 64, TOS 0).
fn sample(octets: u64, tcp_flags: u16) -> FlowStats {
    FlowStats {
        packets: 1,
        octets,
        tcp_flags,
        min_ttl: 64,
        max_ttl: 64,
        ..Default::default()
    }
}

/// An in-memory flow cache implementing [`FlowSource`].
pub struct MemorySource {
    cache: RefCell<MemoryCache>,
    hook: RefCell<Option<Hook>>,
    chunk: usize,
    clock: BootClock,
}

impl MemorySource {
    /// An empty cache of `capacity` flows, walked 64 flows per chunk, whose
    /// boot happened at Unix time 1,700,000,000 s.
    pub fn new(capacity: u32) -> Self {
        Self {
            cache: RefCell::new(MemoryCache {
                capacity,
                ..Default::default()
            }),
            hook: RefCell::new(None),
            chunk: 64,
            clock: BootClock::with_boot_epoch(1_700_000_000_000_000_000),
        }
    }

    /// Walks `flows` flows per chunk.
    pub fn with_chunk(mut self, flows: usize) -> Self {
        self.chunk = flows.max(1);
        self
    }

    /// The cache, to count packets, move time or look at what is left.
    pub fn cache(&self) -> RefMut<'_, MemoryCache> {
        self.cache.borrow_mut()
    }

    /// Runs `hook` before every following operation.
    pub fn set_hook(&self, hook: impl FnMut(Op, &mut MemoryCache) -> Result<(), MemoryError> + 'static) {
        *self.hook.borrow_mut() = Some(Box::new(hook));
    }

    /// Removes the hook.
    pub fn clear_hook(&self) {
        *self.hook.borrow_mut() = None;
    }

    /// Runs the hook for `op`, then `f` on the cache.
    fn with<T>(&self, op: Op, f: impl FnOnce(&mut MemoryCache) -> T) -> Result<T, MemoryError> {
        let mut cache = self.cache.borrow_mut();
        if let Some(hook) = self.hook.borrow_mut().as_mut() {
            hook(op, &mut cache)?;
        }
        Ok(f(&mut cache))
    }
}

impl FlowSource for MemorySource {
    type Error = MemoryError;
    type Walk<'a> = MemoryWalk<'a>;

    fn capacity(&self) -> u32 {
        self.cache.borrow().capacity
    }

    fn occupancy_bound(&self) -> Option<usize> {
        let c = self.cache.borrow();
        Some(c.flows.len() + c.closing.len())
    }

    fn walk(&self) -> MemoryWalk<'_> {
        MemoryWalk {
            source: self,
            after: None,
            chunk: Vec::new(),
        }
    }

    fn close(&self, flows: &[Ending]) -> Result<(), MemoryError> {
        for ending in flows {
            self.with(Op::Close(ending.key), |c| {
                // A flow closed already (or re-created in another slot) is skipped.
                if c.flows.get(&ending.key).is_some_and(|l| l.slot == ending.slot) {
                    if let Some(live) = c.flows.remove(&ending.key) {
                        c.closing.push((*ending, live.stats));
                    }
                }
            })?;
        }
        Ok(())
    }

    fn settle(&self, sink: &mut dyn FnMut(Ending, FlowStats)) -> Result<(), MemoryError> {
        let closed = self.with(Op::Settle, |c| std::mem::take(&mut c.closing))?;
        closed.into_iter().for_each(|(e, s)| sink(e, s));
        Ok(())
    }

    fn counters(&self) -> Result<DatapathCounters, MemoryError> {
        self.with(Op::Counters, |c| c.counters)
    }

    fn now_ns(&self) -> u64 {
        self.cache.borrow().now_ns
    }

    fn boot_clock(&self) -> BootClock {
        self.clock
    }
}

/// A walk over a [`MemorySource`] in key order: a flow inserted behind the
/// cursor is not seen, one inserted ahead of it is, like a walk of the
/// cache's slots.
pub struct MemoryWalk<'a> {
    source: &'a MemorySource,
    after: Option<FlowKey>,
    chunk: Vec<FlowEntry>,
}

impl FlowWalk for MemoryWalk<'_> {
    type Error = MemoryError;

    fn next_chunk(&mut self) -> Result<Option<&[FlowEntry]>, MemoryError> {
        let (size, after) = (self.source.chunk, self.after);
        let chunk = &mut self.chunk;
        chunk.clear();
        self.source.with(Op::Read, |c| {
            let from = after.map_or(Bound::Unbounded, Bound::Excluded);
            chunk.extend(
                c.flows
                    .range((from, Bound::Unbounded))
                    .take(size)
                    .map(|(k, l)| FlowEntry {
                        slot: l.slot,
                        key: *k,
                        stats: l.stats,
                    }),
            );
        })?;
        self.after = self.chunk.last().map(|e| e.key).or(self.after);
        Ok((!self.chunk.is_empty()).then_some(&self.chunk[..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EndReason;

    fn key(port: u16) -> FlowKey {
        FlowKey {
            src_port: port,
            protocol: 17,
            ip_version: 4,
            ..Default::default()
        }
    }

    fn all(source: &MemorySource) -> Vec<FlowEntry> {
        let mut walk = source.walk();
        let mut out = Vec::new();
        while let Ok(Some(chunk)) = walk.next_chunk() {
            out.extend_from_slice(chunk);
        }
        out
    }

    #[test]
    fn a_walk_sees_each_flow_once_while_flows_are_closed_and_added() {
        let source = MemorySource::new(100).with_chunk(3);
        for port in 0..10 {
            source.cache().packet(key(port * 2), 100, 0);
        }
        let mut walk = source.walk();
        let mut seen = Vec::new();
        while let Ok(Some(chunk)) = walk.next_chunk() {
            seen.extend(chunk.iter().map(|e| e.key.src_port));
            // Behind the cursor: not seen; ahead of it: seen.
            let mut c = source.cache();
            c.packet(key(1), 1, 0);
            c.packet(key(19), 1, 0);
        }
        assert_eq!(seen, vec![0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 19]);
    }

    #[test]
    fn closed_flows_get_late_packets_until_settled_and_new_ones_start_over() {
        let source = MemorySource::new(10);
        source.cache().packet(key(1), 100, 0);
        let entry = all(&source)[0];
        source.close(&[Ending::of(&entry, EndReason::IdleTimeout)]).unwrap();
        // Closing it again is skipped.
        source.close(&[Ending::of(&entry, EndReason::IdleTimeout)]).unwrap();
        assert!(source.cache().late_packet(key(1), 50));
        assert!(source.cache().packet(key(1), 70, 0));
        let mut settled = Vec::new();
        source
            .settle(&mut |e, s| settled.push((e.reason, s.packets, s.octets)))
            .unwrap();
        assert_eq!(settled, vec![(EndReason::IdleTimeout, 2, 150)]);
        assert_eq!(all(&source)[0].stats.octets, 70);
        assert_eq!(source.cache().counted[&key(1)], (3, 220));
    }

    #[test]
    fn a_full_cache_refuses_new_flows_until_closed_ones_are_settled() {
        let source = MemorySource::new(1);
        assert!(source.cache().packet(key(1), 100, 0));
        assert!(!source.cache().packet(key(2), 60, 0));
        let entry = all(&source)[0];
        source.close(&[Ending::of(&entry, EndReason::IdleTimeout)]).unwrap();
        assert!(!source.cache().packet(key(2), 60, 0));
        source.settle(&mut |_, _| {}).unwrap();
        assert!(source.cache().packet(key(2), 60, 0));
        let counters = source.counters().unwrap();
        assert_eq!((counters.not_recorded_packets, counters.not_recorded_octets), (2, 120));
    }

    #[test]
    fn a_failing_hook_fails_the_operation_and_changes_nothing() {
        let source = MemorySource::new(10);
        source.cache().packet(key(1), 100, 0);
        source.cache().packet(key(2), 100, 0);
        let entries = all(&source);
        source.set_hook(|op, _| match op {
            Op::Close(k) if k.src_port == 2 => Err(MemoryError("injected".into())),
            Op::Settle => Err(MemoryError("injected".into())),
            _ => Ok(()),
        });
        let endings: Vec<_> = entries.iter().map(|e| Ending::of(e, EndReason::ForcedEnd)).collect();
        assert!(source.close(&endings).is_err());
        assert!(source.settle(&mut |_, _| {}).is_err());
        // The first was closed before the failure; nothing was settled.
        let (live, closing) = {
            let c = source.cache();
            (c.flows.len(), c.closing.len())
        };
        assert_eq!((live, closing), (1, 1));
        source.clear_hook();
        let mut settled = 0;
        source.settle(&mut |_, _| settled += 1).unwrap();
        assert_eq!(settled, 1);
    }
}
