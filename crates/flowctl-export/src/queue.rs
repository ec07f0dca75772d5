//! The records waiting for one collector, kept as the shared batches the
//! agent handed over (no copy per collector): a batch stays alive until
//! every collector has sent or given up its records.

use std::{collections::VecDeque, sync::Arc};

use flowctl_model::FlowRecord;

/// A queue of flow records made of shared batches plus a cursor in the first.
#[derive(Debug, Default)]
pub struct Pending {
    batches: VecDeque<Batch>,
    len: usize,
}

/// One shared batch and how many of its records already left the queue.
#[derive(Debug)]
struct Batch {
    records: Arc<Vec<FlowRecord>>,
    start: usize,
}

impl Pending {
    /// Records queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues a batch at the tail, shared (not copied).
    pub fn push_back(&mut self, records: Arc<Vec<FlowRecord>>) {
        if !records.is_empty() {
            self.len += records.len();
            self.batches.push_back(Batch { records, start: 0 });
        }
    }

    /// Puts records back at the head, in their order (a refused datagram).
    pub fn push_front(&mut self, records: Vec<FlowRecord>) {
        if !records.is_empty() {
            self.len += records.len();
            self.batches.push_front(Batch {
                records: Arc::new(records),
                start: 0,
            });
        }
    }

    /// The queued records, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &FlowRecord> + '_ {
        self.batches.iter().flat_map(|b| &b.records[b.start..])
    }

    /// Takes every queued record out, oldest first.
    pub fn take_all(&mut self) -> Vec<FlowRecord> {
        let out = self.iter().copied().collect();
        self.batches.clear();
        self.len = 0;
        out
    }

    /// Removes the `n` oldest records (or all), showing each removed run to `removed`.
    pub fn pop_front(&mut self, mut n: usize, mut removed: impl FnMut(&[FlowRecord])) {
        while n > 0 {
            let Some(front) = self.batches.front_mut() else { return };
            let k = n.min(front.records.len() - front.start);
            removed(&front.records[front.start..front.start + k]);
            front.start += k;
            n -= k;
            self.len -= k;
            if front.start == front.records.len() {
                self.batches.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(range: std::ops::Range<u64>) -> Vec<FlowRecord> {
        range
            .map(|i| FlowRecord {
                key: Default::default(),
                stats: flowctl_model::FlowStats {
                    packets: i,
                    octets: i,
                    ..Default::default()
                },
                total_packets: i,
                total_octets: i,
                reason: flowctl_model::EndReason::IdleTimeout,
                ..Default::default()
            })
            .collect()
    }

    fn order(p: &Pending) -> Vec<u64> {
        p.iter().map(|r| r.packets()).collect()
    }

    #[test]
    fn batches_are_shared_and_read_in_order_across_their_boundaries() {
        let a = Arc::new(records(0..3));
        let mut p = Pending::default();
        p.push_back(a.clone());
        p.push_back(Arc::new(Vec::new()));
        p.push_back(Arc::new(records(3..5)));
        assert_eq!(Arc::strong_count(&a), 2, "not copied");
        assert_eq!((p.len(), order(&p)), (5, vec![0, 1, 2, 3, 4]));
        let mut runs = Vec::new();
        p.pop_front(4, |r| runs.push(r.len()));
        assert_eq!(runs, [3, 1], "one run per batch");
        assert_eq!(Arc::strong_count(&a), 1, "a sent batch is released");
        assert_eq!((p.len(), order(&p)), (1, vec![4]));
        p.push_front(records(7..9));
        assert_eq!((p.len(), order(&p)), (3, vec![7, 8, 4]));
        p.pop_front(10, |_| {});
        assert!(p.is_empty() && order(&p).is_empty());
    }
}
