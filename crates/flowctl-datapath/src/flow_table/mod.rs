//! The pinned flow cache, opened from any process: the [`FlowSource`] the
//! agent's scanner ages, and what `dump`, `status` and `flush` read.
//!
//! Three shared maps (layout: `bpf/flowctl.h`): the hash from flow key to
//! slot index, the slots (mapped into this process: a walk reads them in
//! place, without a system call per flow), and the ring of free slots.
//! Ending flows ([`FlowSource::close`], then [`FlowSource::settle`]) is
//! reserved to the process holding the cache's writer lock
//! ([`FlowTable::open_writer`]): the agent, or `flowctl flush --discard`.
//!
//! Closing marks each slot closing (with the reason) and deletes the keys
//! from the hash in one batch call; settling waits for one RCU grace period
//! for all of them, after which no eBPF program can still add to a closed
//! slot, then reads each slot's final counters and gives the slot back to
//! the ring. A writer that died between the two leaves closing slots; the
//! next writer settles them with the reason they were closed for.
//!
//! A slot's owner CPU adds without atomics; the others add atomically to
//! shared counters. When a flow's packets have moved to other CPUs (since
//! the writer's previous walk, more of them went to the shared counters
//! than to the plain ones), the writer's walk takes the slot from its
//! owner and the next settle, after its grace period, opens the slot for
//! the next CPU that counts into it (`bpf/flowctl.h`).

mod lock;
mod moves;
mod ring;
mod slots;
mod walk;

use std::cell::{Cell, RefCell};

use aya::maps::{Map, MapData, PerCpuArray};
use flowctl_model::{
    closing_bits, closing_reason, BootClock, DatapathCounters, Ending, FlowEntry, FlowKey, FlowSlot, FlowSource,
    FlowStats, FlowWalk, SLOT_CLOSING, SLOT_LIVE,
};

use std::os::fd::AsFd;

pub use walk::SlotWalk;

use crate::{
    attach::pinned_flows_map,
    map_ops::{GracePeriod, KeyIndex, MappedArray},
    Error, PinLayout, Result,
};
use lock::WriterLock;
use moves::Moves;
pub(crate) use ring::FreeRing;
use slots::Slots;

/// Flows per chunk of a walk.
const WALK_CHUNK: usize = 8192;
/// Closed flows read and given back per step of a settle.
const SETTLE_CHUNK: usize = 8192;

/// What only the writer has.
struct Writer {
    _lock: WriterLock,
    grace: GracePeriod,
    /// Slots closed and not settled yet, in close order.
    closing: RefCell<Vec<u32>>,
    /// Slots taken from their owner CPU, handed over at the next settle.
    handing_over: RefCell<Vec<u32>>,
    /// Slots handed over so far.
    handed_over: Cell<u64>,
    /// Each slot's packet counters at the previous walk.
    moves: RefCell<Moves>,
}

/// The pinned flow cache and datapath counters.
pub struct FlowTable {
    index: KeyIndex<FlowKey>,
    slots: Slots,
    ring: FreeRing,
    counters: PerCpuArray<MapData, DatapathCounters>,
    writer: Option<Writer>,
    max_flows: u32,
    /// Kernel id of the flow hash, to tell when the pinned one is another.
    map_id: u32,
    chunk: usize,
}

impl FlowTable {
    /// Opens the pinned maps for reading, refusing ones of another layout.
    pub fn open(layout: &PinLayout) -> Result<Self> {
        let flows_path = layout.flows_map();
        let info = pinned_flows_map(layout)?.ok_or_else(|| Error::NotAttached(flows_path.clone()))?;
        let open = |path: std::path::PathBuf| {
            MapData::from_pin(&path).map_err(|e| Error::bpf(format!("opening pinned map {}", path.display()), e))
        };
        let index = KeyIndex::new(open(flows_path)?.fd().as_fd()).map_err(|e| Error::io("opening the flow hash", e))?;
        let slots = MappedArray::new(open(layout.slots_map())?.fd().as_fd())
            .map_err(|e| Error::io("mapping the flow slots", e))?;
        let pairs = MappedArray::new(open(layout.ring_map())?.fd().as_fd())
            .map_err(|e| Error::io("mapping the ring of free slots", e))?;
        let ctl = MappedArray::new(open(layout.ringctl_map())?.fd().as_fd())
            .map_err(|e| Error::io("mapping the ring's positions", e))?;
        let counters = PerCpuArray::try_from(Map::PerCpuArray(open(layout.counters_map())?))
            .map_err(|e| Error::bpf("opening the datapath counters", e))?;
        Ok(Self {
            index,
            slots: Slots(slots),
            ring: FreeRing { pairs, ctl },
            counters,
            writer: None,
            max_flows: info.max_entries(),
            map_id: info.id(),
            chunk: WALK_CHUNK,
        })
    }

    /// Opens the pinned maps as their one writer (the process that ends
    /// flows), refusing if another process is; settles what a writer that
    /// died left closing.
    pub fn open_writer(layout: &PinLayout) -> Result<Self> {
        let lock = WriterLock::take(layout.root())?;
        let mut table = Self::open(layout)?;
        let grace = GracePeriod::new().map_err(|e| Error::io("creating the grace-period maps", e))?;
        table.writer = Some(Writer {
            _lock: lock,
            grace,
            closing: RefCell::new(Vec::new()),
            handing_over: RefCell::new(Vec::new()),
            handed_over: Cell::new(0),
            moves: RefCell::new(Moves::new(table.slots.len())),
        });
        let recovered = table.recover_closing()?;
        if recovered > 0 {
            log::warn!("{recovered} flows a previous run was ending are exported now");
        }
        Ok(table)
    }

    /// Takes over the slots left closing: their keys leave the hash if they
    /// still lead there, and they are settled with the next settle.
    fn recover_closing(&self) -> Result<usize> {
        let Some(writer) = &self.writer else { return Ok(0) };
        let mut closing = writer.closing.borrow_mut();
        for i in 0..self.slots.len() as u32 {
            if self.slots.state(i) == Some(SLOT_CLOSING) {
                if let Some(key) = self.slots.key(i) {
                    if self
                        .index
                        .lookup(&key)
                        .map_err(|e| Error::io("reading the flow hash", e))?
                        == Some(i)
                    {
                        self.index.delete(&key).map_err(|e| Error::io("deleting a flow", e))?;
                    }
                }
                closing.push(i);
            }
        }
        Ok(closing.len())
    }

    /// Whether the cache pinned under `layout` is no longer the one this
    /// table reads (`flowctl detach --all --purge`, then an attach that
    /// created another cache); `false` while nothing is pinned.
    pub fn is_replaced(&self, layout: &PinLayout) -> Result<bool> {
        Ok(pinned_flows_map(layout)?.is_some_and(|info| info.id() != self.map_id))
    }

    /// Slots this writer handed over from one CPU to another so far (their
    /// packets had moved to other CPUs); 0 for a reader.
    pub fn handovers(&self) -> u64 {
        self.writer.as_ref().map_or(0, |w| w.handed_over.get())
    }

    /// Whether this table may end flows (it holds the writer lock).
    pub fn is_writer(&self) -> bool {
        self.writer.is_some()
    }

    /// Gives up the writer lock (after ending every flow this table holds),
    /// so that the replacing cache can be opened for writing.
    pub fn release_writer(&mut self) {
        self.writer = None;
    }

    /// Flows per chunk of a walk (default 8192).
    pub fn set_chunk(&mut self, flows: usize) {
        self.chunk = flows.max(1);
    }

    /// Number of live flows in the cache.
    pub fn len(&self) -> Result<usize> {
        let mut n = 0;
        let mut walk = self.walk();
        while let Some(chunk) = walk.next_chunk()? {
            n += chunk.len();
        }
        Ok(n)
    }

    /// Whether the cache holds no live flow.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.walk().next_chunk()?.is_none())
    }

    /// Slots on the ring of free slots now.
    pub fn free_slots(&self) -> u64 {
        self.ring.free()
    }

    /// Every live flow with its counters now.
    pub fn read_all(&self) -> Result<Vec<FlowEntry>> {
        let mut out = Vec::new();
        let mut walk = self.walk();
        while let Some(chunk) = walk.next_chunk()? {
            out.extend_from_slice(chunk);
        }
        Ok(out)
    }

    /// Keys of the live flows.
    pub fn keys(&self) -> Result<Vec<FlowKey>> {
        Ok(self.read_all()?.into_iter().map(|e| e.key).collect())
    }

    /// One flow's counters, `None` if the flow is not (or no longer) there.
    pub fn get(&self, key: &FlowKey) -> Result<Option<FlowStats>> {
        Ok(self.slot(key)?.map(|slot| slot.stats()))
    }

    /// The slot of a live flow as the datapath wrote it (owner and shared
    /// counters apart), `None` if the flow is not (or no longer) there.
    pub fn slot(&self, key: &FlowKey) -> Result<Option<FlowSlot>> {
        let Some(slot) = self
            .index
            .lookup(key)
            .map_err(|e| Error::io("reading the flow hash", e))?
        else {
            return Ok(None);
        };
        Ok(self.slots.read(slot).filter(|s| s.key == *key))
    }

    /// Inserts flows from user space, as the datapath would have counted
    /// them (tests and benchmarks): each takes a free slot and is published
    /// in one batch call. The keys must be new to the cache (one that is
    /// there already would be replaced and its slot lost). Refuses more
    /// flows than free slots, inserting none.
    pub fn insert(&self, flows: &[(FlowKey, FlowStats)]) -> Result<()> {
        self.writer()?;
        let mut taken = Vec::with_capacity(flows.len());
        for (key, stats) in flows {
            let Some(slot) = self.ring.take() else {
                self.ring.give_back(&taken);
                return Err(Error::io(
                    "inserting flows",
                    std::io::Error::from_raw_os_error(libc::E2BIG),
                ));
            };
            self.slots.fill(slot, key, stats);
            taken.push(slot);
        }
        let keys: Vec<FlowKey> = flows.iter().map(|(k, _)| *k).collect();
        if let Err(e) = self.index.insert_all(&keys, &taken) {
            // Undo: whatever was published goes through close and settle.
            let published: Vec<Ending> = keys
                .iter()
                .zip(&taken)
                .filter(|(k, s)| self.index.lookup(k).ok().flatten() == Some(**s))
                .map(|(k, s)| Ending {
                    slot: *s,
                    key: *k,
                    reason: flowctl_model::EndReason::ForcedEnd,
                })
                .collect();
            let unpublished: Vec<u32> = taken
                .iter()
                .copied()
                .filter(|s| !published.iter().any(|p| p.slot == *s))
                .collect();
            self.ring.give_back(&unpublished);
            published.iter().for_each(|p| self.slots.make_live(p.slot));
            self.close(&published)?;
            return Err(Error::io("inserting flows", e));
        }
        taken.iter().for_each(|s| self.slots.make_live(*s));
        Ok(())
    }

    /// A walk of the writer saw live slot `slot` as `seen`: if its packets
    /// since the previous walk came mostly from CPUs other than its
    /// owner's (which add with atomic instructions), it is taken from its
    /// owner, to be handed over at the next settle. At most one entry per
    /// slot of the cache is kept. A slot no other CPU counted into costs
    /// nothing here.
    fn note_owner(&self, slot: u32, seen: &FlowSlot) {
        let Some(writer) = &self.writer else { return };
        let moved = seen.shared_packets > 0 && writer.moves.borrow_mut().moved(slot, seen.packets, seen.shared_packets);
        let mut handing_over = writer.handing_over.borrow_mut();
        if handing_over.len() < self.slots.len() && self.slots.take_from_owner(slot, seen, moved) {
            handing_over.push(slot);
        }
    }

    fn writer(&self) -> Result<&Writer> {
        self.writer.as_ref().ok_or(Error::NotWriter)
    }
}

impl FlowSource for FlowTable {
    type Error = Error;
    type Walk<'a> = SlotWalk<'a>;

    fn capacity(&self) -> u32 {
        self.max_flows
    }

    /// Slots not on the ring of free slots: live, closing, and a CPU's
    /// spare at most each.
    fn occupancy_bound(&self) -> Option<usize> {
        Some((self.slots.len() as u64).saturating_sub(self.ring.free()) as usize)
    }

    /// A walk over the live slots, in slot order, read in place.
    fn walk(&self) -> SlotWalk<'_> {
        SlotWalk::new(self)
    }

    /// Marks the slots closing and deletes their keys in one batch call.
    /// A slot that no longer holds the flow is skipped.
    fn close(&self, flows: &[Ending]) -> Result<()> {
        let writer = self.writer()?;
        let mine: Vec<&Ending> = flows
            .iter()
            .filter(|e| self.slots.state(e.slot) == Some(SLOT_LIVE) && self.slots.key(e.slot) == Some(e.key))
            .collect();
        mine.iter()
            .for_each(|e| self.slots.set_state_bits(e.slot, closing_bits(e.reason)));
        let keys: Vec<FlowKey> = mine.iter().map(|e| e.key).collect();
        let deleted = self.index.delete_all(&keys);
        let mut closing = writer.closing.borrow_mut();
        if deleted.is_ok() {
            closing.extend(mine.iter().map(|e| e.slot));
            return Ok(());
        }
        // Find out which keys left the hash: those are closing; the others
        // count on; a slot whose key cannot be looked up stays closing for
        // the next writer's recovery.
        for e in mine {
            match self.index.lookup(&e.key) {
                Ok(Some(s)) if s == e.slot => self.slots.make_live(e.slot),
                Ok(_) => closing.push(e.slot),
                Err(_) => {}
            }
        }
        deleted.map_err(|e| Error::io("deleting flows", e))
    }

    /// One grace period, then the slots taken from their owners are
    /// opened, and every closed slot's final counters are read, a
    /// chunk at a time, given back to the ring and handed to `sink`.
    fn settle(&self, sink: &mut dyn FnMut(Ending, FlowStats)) -> Result<()> {
        let writer = self.writer()?;
        if writer.closing.borrow().is_empty() && writer.handing_over.borrow().is_empty() {
            return Ok(());
        }
        writer
            .grace
            .wait()
            .map_err(|e| Error::io("waiting for a grace period", e))?;
        // Before the closed slots are freed: one of them could otherwise
        // be reused for a new flow and handed over.
        for slot in std::mem::take(&mut *writer.handing_over.borrow_mut()) {
            if self.slots.hand_over(slot) {
                writer.handed_over.set(writer.handed_over.get() + 1);
            }
        }
        let closing = std::mem::take(&mut *writer.closing.borrow_mut());
        let mut settled = Vec::with_capacity(SETTLE_CHUNK.min(closing.len()));
        for chunk in closing.chunks(SETTLE_CHUNK) {
            settled.clear();
            for &slot in chunk {
                let (Some(word), Some(key), Some(stats)) =
                    (self.slots.meta_word(slot), self.slots.key(slot), self.slots.stats(slot))
                else {
                    continue;
                };
                let reason = closing_reason(word).unwrap_or(flowctl_model::EndReason::ForcedEnd);
                settled.push((Ending { slot, key, reason }, stats));
                self.slots.free(slot);
                writer.moves.borrow_mut().forget(slot);
            }
            self.ring.give_back(chunk);
            for (ending, stats) in settled.drain(..) {
                sink(ending, stats);
            }
        }
        Ok(())
    }

    /// Datapath counters summed over CPUs.
    fn counters(&self) -> Result<DatapathCounters> {
        let per_cpu = self
            .counters
            .get(&0, 0)
            .map_err(|e| Error::bpf("reading the datapath counters", e))?;
        let mut sum = DatapathCounters::default();
        per_cpu.iter().for_each(|c| sum.accumulate(c));
        Ok(sum)
    }

    /// CLOCK_BOOTTIME, the clock of `bpf_ktime_get_boot_ns()`.
    fn now_ns(&self) -> u64 {
        flowctl_model::boot_time_ns()
    }

    fn boot_clock(&self) -> BootClock {
        BootClock::now()
    }
}
