//! An in-memory [`FlowSource`] for tests: a cache that behaves like the
//! pinned eBPF map (take and drain read and delete in one step, put-back
//! never overwrites, a full cache refuses new flows and counts their
//! packets as not recorded), a ledger of everything it counted, and a hook
//! that runs before each operation to interleave packets or inject errors.

use std::{
    cell::{RefCell, RefMut},
    collections::BTreeMap,
    fmt,
    ops::Bound,
};

use crate::{BootClock, DatapathCounters, FlowEntry, FlowKey, FlowSource, FlowStats, FlowWalk, PutBack};

/// An operation of the scanner on a [`MemorySource`], as its hook sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Reading the next chunk of a walk.
    Read,
    /// Reading and deleting the next chunk of a walk.
    Drain,
    /// Taking one flow.
    Take(FlowKey),
    /// Putting one flow back.
    PutBack(FlowKey),
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

/// The state of a [`MemorySource`].
#[derive(Debug, Default)]
pub struct MemoryCache {
    /// The flows in the cache.
    pub flows: BTreeMap<FlowKey, FlowStats>,
    /// Packets and octets ever recorded per flow, in the cache or taken out.
    pub counted: BTreeMap<FlowKey, (u64, u64)>,
    /// Most flows the cache holds.
    pub capacity: u32,
    /// The time now (boot-time ns); packets are stamped with it.
    pub now_ns: u64,
    /// The datapath counters (packets of new flows refused by a full cache).
    pub counters: DatapathCounters,
}

impl MemoryCache {
    /// Counts one packet of `octets` octets with TCP flags `tcp_flags` (TTL
    /// 64, TOS 0) at the current time, as the datapath does; `false` when
    /// the cache is full and the packet is not recorded.
    pub fn packet(&mut self, key: FlowKey, octets: u64, tcp_flags: u16) -> bool {
        self.count(
            key,
            FlowStats {
                packets: 1,
                octets,
                tcp_flags,
                min_ttl: 64,
                max_ttl: 64,
                ..Default::default()
            },
        )
    }

    /// Counts `sample` (its packets, octets, flags, TTLs and TOS) for `key`
    /// at the current time; `false` when the cache is full.
    pub fn count(&mut self, key: FlowKey, sample: FlowStats) -> bool {
        let sample = FlowStats {
            first_seen_ns: self.now_ns,
            last_seen_ns: self.now_ns,
            ..sample
        };
        if !self.flows.contains_key(&key) && self.flows.len() >= self.capacity as usize {
            self.counters.not_recorded_packets += sample.packets;
            self.counters.not_recorded_octets += sample.octets;
            return false;
        }
        self.flows
            .entry(key)
            .and_modify(|s| s.absorb(&sample))
            .or_insert(sample);
        let c = self.counted.entry(key).or_default();
        c.0 += sample.packets;
        c.1 += sample.octets;
        true
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

    fn walk(&self) -> MemoryWalk<'_> {
        MemoryWalk::new(self, false)
    }

    fn drain(&self) -> MemoryWalk<'_> {
        MemoryWalk::new(self, true)
    }

    fn take(&self, key: &FlowKey) -> Result<Option<FlowStats>, MemoryError> {
        self.with(Op::Take(*key), |c| c.flows.remove(key))
    }

    fn put_back(&self, key: &FlowKey, stats: &FlowStats) -> Result<PutBack, MemoryError> {
        self.with(Op::PutBack(*key), |c| {
            if c.flows.contains_key(key) {
                PutBack::Exists
            } else if c.flows.len() >= c.capacity as usize {
                PutBack::Full
            } else {
                c.flows.insert(*key, *stats);
                PutBack::Restored
            }
        })
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
/// kernel's hash buckets.
pub struct MemoryWalk<'a> {
    source: &'a MemorySource,
    drain: bool,
    after: Option<FlowKey>,
    chunk: Vec<FlowEntry>,
}

impl<'a> MemoryWalk<'a> {
    fn new(source: &'a MemorySource, drain: bool) -> Self {
        Self {
            source,
            drain,
            after: None,
            chunk: Vec::new(),
        }
    }
}

impl FlowWalk for MemoryWalk<'_> {
    type Error = MemoryError;

    fn next_chunk(&mut self) -> Result<Option<&[FlowEntry]>, MemoryError> {
        let (op, drain, size, after) = (
            if self.drain { Op::Drain } else { Op::Read },
            self.drain,
            self.source.chunk,
            self.after,
        );
        let chunk = &mut self.chunk;
        chunk.clear();
        self.source.with(op, |c| {
            let from = after.map_or(Bound::Unbounded, Bound::Excluded);
            chunk.extend(
                c.flows
                    .range((from, Bound::Unbounded))
                    .take(size)
                    .map(|(k, s)| (*k, *s)),
            );
            if drain {
                chunk.iter().for_each(|(k, _)| {
                    c.flows.remove(k);
                });
            }
        })?;
        self.after = self.chunk.last().map(|(k, _)| *k).or(self.after);
        Ok((!self.chunk.is_empty()).then_some(&self.chunk[..]))
    }

    fn set_drain(&mut self, drain: bool) {
        self.drain = drain;
    }

    fn drains(&self) -> bool {
        self.drain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16) -> FlowKey {
        FlowKey {
            src_port: port,
            protocol: 17,
            ip_version: 4,
            ..Default::default()
        }
    }

    #[test]
    fn a_walk_sees_each_flow_once_while_flows_are_taken_and_added() {
        let source = MemorySource::new(100).with_chunk(3);
        for port in 0..10 {
            source.cache().packet(key(port * 2), 100, 0);
        }
        let mut walk = source.walk();
        let mut seen = Vec::new();
        while let Ok(Some(chunk)) = walk.next_chunk() {
            seen.extend(chunk.iter().map(|(k, _)| k.src_port));
            // Behind the cursor: not seen; ahead of it: seen.
            let mut c = source.cache();
            c.packet(key(1), 1, 0);
            c.packet(key(19), 1, 0);
        }
        assert_eq!(seen, vec![0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 19]);
    }

    #[test]
    fn a_full_cache_refuses_new_flows_and_counts_them_not_recorded() {
        let source = MemorySource::new(1);
        assert!(source.cache().packet(key(1), 100, 0));
        assert!(source.cache().packet(key(1), 100, 0));
        assert!(!source.cache().packet(key(2), 60, 0));
        let counters = source.counters().unwrap();
        assert_eq!((counters.not_recorded_packets, counters.not_recorded_octets), (1, 60));
        assert_eq!(source.put_back(&key(3), &FlowStats::default()), Ok(PutBack::Full));
        assert_eq!(source.put_back(&key(1), &FlowStats::default()), Ok(PutBack::Exists));
        assert_eq!(source.cache().counted[&key(1)], (2, 200));
    }

    #[test]
    fn a_failing_hook_fails_the_operation_and_changes_nothing() {
        let source = MemorySource::new(10);
        source.cache().packet(key(1), 100, 0);
        source.set_hook(|op, _| match op {
            Op::Take(_) => Err(MemoryError("injected".into())),
            _ => Ok(()),
        });
        assert!(source.take(&key(1)).is_err());
        assert_eq!(source.cache().flows.len(), 1);
        source.clear_hook();
        assert_eq!(source.take(&key(1)).unwrap().map(|s| s.packets), Some(1));
        let mut drain = source.drain();
        assert!(drain.next_chunk().unwrap().is_none());
    }
}
