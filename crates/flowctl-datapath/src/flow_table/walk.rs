//! Reading the flow cache chunk by chunk: batch system calls, or one call
//! per key where the kernel refuses batches.

use std::collections::HashSet;

use flowctl_model::{FlowEntry, FlowKey, FlowStats, FlowWalk};

use super::FlowTable;
use crate::{
    map_ops::{is_unsupported, BatchOp, PerCpuHashBatch},
    Error, Result,
};

/// How [`TableWalk`] reads the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// `BPF_MAP_LOOKUP_BATCH` (or its delete variant), falling back to
    /// [`ReadMode::PerKey`] if the kernel refuses it.
    Batch,
    /// List every key first (`BPF_MAP_GET_NEXT_KEY`), then read each one.
    PerKey,
}

enum Source<'t> {
    Batch(PerCpuHashBatch<'t, FlowKey, FlowStats>),
    /// Keys listed up front, read (or taken) one by one from `next`.
    PerKey {
        keys: Vec<FlowKey>,
        next: usize,
    },
}

/// One pass over the flow cache, a chunk of flows (with counters merged over
/// CPUs) at a time. Flows whose every CPU slot is empty are skipped.
pub struct TableWalk<'t> {
    table: &'t FlowTable,
    delete: bool,
    source: Option<Source<'t>>,
    chunk: Vec<FlowEntry>,
}

impl<'t> TableWalk<'t> {
    pub(super) fn new(table: &'t FlowTable, delete: bool) -> Self {
        Self {
            table,
            delete,
            source: None,
            chunk: Vec::with_capacity(table.batch_size),
        }
    }

    /// Lists every key. `BPF_MAP_GET_NEXT_KEY` restarts from the first key
    /// when the one it is given was deleted meanwhile: keys seen again are
    /// skipped, so each flow is still read at most once.
    fn list_keys(&self) -> Result<Source<'t>> {
        let mut keys = Vec::new();
        let mut seen = HashSet::new();
        let mut at = None;
        while let Some(k) = self
            .table
            .flows
            .next_key(at.as_ref())
            .map_err(|e| Error::io("listing flows", e))?
        {
            if seen.insert(k) {
                keys.push(k);
            }
            at = Some(k);
        }
        Ok(Source::PerKey { keys, next: 0 })
    }
}

impl FlowWalk for TableWalk<'_> {
    type Error = Error;

    /// Whether the following chunks are read and deleted (`true`) or only
    /// read; a walk can switch between chunks (the cursor is the same).
    fn set_drain(&mut self, drain: bool) {
        self.delete = drain;
    }

    /// Whether the next chunk will be read and deleted.
    fn drains(&self) -> bool {
        self.delete
    }

    /// The next chunk of flows, `None` once every flow was read. The slice
    /// is overwritten by the next call.
    fn next_chunk(&mut self) -> Result<Option<&[FlowEntry]>> {
        self.chunk.clear();
        let action = if self.delete {
            "draining the flow cache"
        } else {
            "reading the flow cache"
        };
        loop {
            let more = match self.source.as_mut() {
                None => {
                    self.source = Some(match self.table.mode {
                        ReadMode::Batch => {
                            Source::Batch(PerCpuHashBatch::new(&self.table.flows, self.table.batch_size))
                        }
                        ReadMode::PerKey => self.list_keys()?,
                    });
                    continue;
                }
                Some(Source::Batch(batch)) => {
                    let op = if self.delete {
                        BatchOp::LookupAndDelete
                    } else {
                        BatchOp::Lookup
                    };
                    match batch.next(op) {
                        Ok(more) => {
                            let merged = batch.entries().filter_map(|(k, v)| Some((*k, FlowStats::merge(v)?)));
                            self.chunk.extend(merged);
                            more
                        }
                        // Only the very first call can tell that batches are not there.
                        Err(e) if is_unsupported(&e) && self.chunk.is_empty() && !batch.started() => {
                            log::debug!("batch map operations refused ({e}), reading flows one by one");
                            self.source = Some(self.list_keys()?);
                            continue;
                        }
                        Err(e) => return Err(Error::io(action, e)),
                    }
                }
                Some(Source::PerKey { keys, next }) => {
                    let end = (*next + self.table.batch_size).min(keys.len());
                    for key in &keys[*next..end] {
                        let flows = &self.table.flows;
                        let values = if self.delete {
                            flows.lookup_and_delete(key)
                        } else {
                            flows.lookup(key)
                        };
                        let values = values.map_err(|e| Error::io(action, e))?;
                        if let Some(stats) = values.and_then(|v| FlowStats::merge(&v)) {
                            self.chunk.push((*key, stats));
                        }
                    }
                    *next = end;
                    end < keys.len()
                }
            };
            if !self.chunk.is_empty() {
                return Ok(Some(&self.chunk));
            }
            if !more {
                return Ok(None);
            }
        }
    }
}
