//! Metrics encoded at scrape time: build information, flows ended and
//! records made per flowEndReason, the cache and datapath counters as the
//! last aging pass read them, and every collector task's counters. The
//! datapath and collector counters are absolute values kept elsewhere; they
//! are exposed as counters that mirror them.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc, Mutex,
    },
};

use flowctl_aging::ScanOutcome;
use flowctl_export::collector::CollectorCounters;
use flowctl_model::{DatapathCounters, EndReason};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder},
    metrics::{counter::ConstCounter, gauge::ConstGauge, MetricType},
    registry::Unit,
};

use crate::lock;

/// A collector task to report, with its labels.
#[derive(Clone, Debug)]
pub struct CollectorSource {
    /// `host:port` (`[addr]:port` for IPv6): the `collector` label.
    pub address: String,
    /// `udp` or `tcp`: the `transport` label.
    pub transport: String,
    /// The task's counters.
    pub counters: Arc<CollectorCounters>,
}

/// What the last aging pass read.
#[derive(Clone, Copy, Debug)]
struct PassSnapshot {
    flows: u64,
    capacity: u64,
    datapath: DatapathCounters,
}

/// State shared with the event loop, encoded on each scrape.
#[derive(Debug, Default)]
pub(super) struct Live {
    /// Flows taken out of the cache, in [`EndReason::ALL`] order.
    ended: [AtomicU64; 5],
    /// Records made, in [`EndReason::ALL`] order.
    records: [AtomicU64; 5],
    pass: Mutex<Option<PassSnapshot>>,
    collectors: Mutex<Vec<CollectorSource>>,
}

impl Live {
    pub(super) fn add_pass(&self, outcome: &ScanOutcome) {
        for (slot, (_, n)) in self.ended.iter().zip(outcome.ended.iter()) {
            slot.fetch_add(n, Relaxed);
        }
        for (slot, (_, n)) in self.records.iter().zip(outcome.records_made.iter()) {
            slot.fetch_add(n, Relaxed);
        }
        *lock(&self.pass) = Some(PassSnapshot {
            flows: outcome.flows as u64,
            capacity: outcome.capacity as u64,
            datapath: outcome.counters,
        });
    }

    pub(super) fn set_collectors(&self, collectors: Vec<CollectorSource>) {
        *lock(&self.collectors) = collectors;
    }
}

/// One metric family: name (without unit and `_total`), help, unit, type.
struct Family {
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    kind: MetricType,
}

const fn family(name: &'static str, help: &'static str, unit: Option<Unit>, kind: MetricType) -> Family {
    Family { name, help, unit, kind }
}

/// A sample value: a count (exact) or a ratio.
#[derive(Clone, Copy)]
enum Value {
    Count(u64),
    Ratio(f64),
}

/// Writes one family and its samples (label pairs, value).
fn write<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    f: &Family,
    samples: impl IntoIterator<Item = (L, Value)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(f.name, f.help, f.unit.as_ref(), f.kind)?;
    for (labels, value) in samples {
        encode_value(f.kind, value, metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes a family with one sample without labels.
fn write_one(encoder: &mut DescriptorEncoder, f: &Family, value: Value) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(f.name, f.help, f.unit.as_ref(), f.kind)?;
    encode_value(f.kind, value, metric)
}

fn encode_value(kind: MetricType, value: Value, sample: MetricEncoder) -> Result<(), std::fmt::Error> {
    match (kind, value) {
        (MetricType::Counter, Value::Count(v)) => ConstCounter::new(v).encode(sample),
        (_, Value::Count(v)) => ConstGauge::new(v).encode(sample),
        (_, Value::Ratio(v)) => ConstGauge::new(v).encode(sample),
    }
}

const BUILD_INFO: Family = family(
    "flowctl_build_info",
    "Always 1: the flowctl version and the datapath's pinned-map layout version.",
    None,
    MetricType::Gauge,
);
const REASON_COUNTS: [Family; 2] = [
    family(
        "flowctl_flows_ended",
        "Flows taken out of the flow cache by aging, per flowEndReason.",
        None,
        MetricType::Counter,
    ),
    family(
        "flowctl_flow_records",
        "Flow records made by aging, per flowEndReason (a flow whose last record would be empty ends without one).",
        None,
        MetricType::Counter,
    ),
];
const CACHE: [Family; 3] = [
    family(
        "flowctl_cache_flows",
        "Flows in the flow cache when the last aging pass read it.",
        None,
        MetricType::Gauge,
    ),
    family(
        "flowctl_cache_capacity_flows",
        "Capacity of the flow cache (maxFlows).",
        None,
        MetricType::Gauge,
    ),
    family(
        "flowctl_cache_fill_ratio",
        "flowctl_cache_flows / flowctl_cache_capacity_flows (lack-of-resources eviction starts at 0.9).",
        None,
        MetricType::Gauge,
    ),
];
const DATAPATH: [Family; 6] = [
    family(
        "flowctl_datapath_not_recorded_packets",
        "IP packets the datapath could not record because the flow cache was full.",
        None,
        MetricType::Counter,
    ),
    family(
        "flowctl_datapath_not_recorded",
        "L3 octets of the packets the datapath could not record.",
        Some(Unit::Bytes),
        MetricType::Counter,
    ),
    family(
        "flowctl_datapath_non_ip_packets",
        "Frames that are neither IPv4 nor IPv6 (ARP, LLDP, ...), not metered.",
        None,
        MetricType::Counter,
    ),
    family(
        "flowctl_datapath_non_ip",
        "Octets of the non-IP frames, from the Ethernet header on.",
        Some(Unit::Bytes),
        MetricType::Counter,
    ),
    family(
        "flowctl_datapath_malformed_packets",
        "IP packets with a truncated or bogus header, not metered.",
        None,
        MetricType::Counter,
    ),
    family(
        "flowctl_datapath_malformed",
        "Octets of the malformed packets, from the Ethernet header on.",
        Some(Unit::Bytes),
        MetricType::Counter,
    ),
];
const EXPORT: [Family; 9] = [
    family(
        "flowctl_export_records",
        "Flow records sent to the collector.",
        None,
        MetricType::Counter,
    ),
    family(
        "flowctl_export_messages",
        "IPFIX messages sent to the collector (data, templates, options).",
        None,
        MetricType::Counter,
    ),
    family(
        "flowctl_export",
        "Bytes of the IPFIX messages sent to the collector.",
        Some(Unit::Bytes),
        MetricType::Counter,
    ),
    family(
        "flowctl_export_template_messages",
        "IPFIX messages carrying the templates sent to the collector.",
        None,
        MetricType::Counter,
    ),
    family(
        "flowctl_export_not_sent_records",
        "Flow records given up on (queue limit reached while the collector was down, or no template for their IP version).",
        None,
        MetricType::Counter,
    ),
    family(
        "flowctl_export_send_errors",
        "Failed connects and sends to the collector.",
        None,
        MetricType::Counter,
    ),
    family(
        "flowctl_export_connections",
        "Transport sessions started (TCP connections, UDP sockets).",
        None,
        MetricType::Counter,
    ),
    family(
        "flowctl_export_queue_records",
        "Flow records waiting to be sent to the collector.",
        None,
        MetricType::Gauge,
    ),
    family(
        "flowctl_export_up",
        "1 if the connection (TCP) or socket (UDP) to the collector is up.",
        None,
        MetricType::Gauge,
    ),
];

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let version = [
            ("version", env!("CARGO_PKG_VERSION").to_string()),
            ("layout_version", flowctl_model::LAYOUT_VERSION.to_string()),
        ];
        write(&mut encoder, &BUILD_INFO, [(version, Value::Count(1))])?;
        for (f, counts) in REASON_COUNTS.iter().zip([&self.ended, &self.records]) {
            let samples = EndReason::ALL
                .iter()
                .zip(counts)
                .map(|(r, count)| ([("reason", r.label())], Value::Count(count.load(Relaxed))));
            write(&mut encoder, f, samples)?;
        }

        if let Some(p) = *lock(&self.pass) {
            let fill = if p.capacity == 0 {
                0.0
            } else {
                p.flows as f64 / p.capacity as f64
            };
            let cache = [Value::Count(p.flows), Value::Count(p.capacity), Value::Ratio(fill)];
            for (f, v) in CACHE.iter().zip(cache) {
                write_one(&mut encoder, f, v)?;
            }
            let d = &p.datapath;
            let values = [
                d.not_recorded_packets,
                d.not_recorded_octets,
                d.non_ip_packets,
                d.non_ip_octets,
                d.malformed_packets,
                d.malformed_octets,
            ];
            for (f, v) in DATAPATH.iter().zip(values) {
                write_one(&mut encoder, f, Value::Count(v))?;
            }
        }

        // Two collector entries with the same address and transport (other
        // observation domains) are summed into one series.
        let mut per_label: BTreeMap<(String, String), [u64; 9]> = BTreeMap::new();
        for c in lock(&self.collectors).iter() {
            let n = &c.counters;
            let values = [
                n.records.load(Relaxed),
                n.messages.load(Relaxed),
                n.octets.load(Relaxed),
                n.template_messages.load(Relaxed),
                n.not_sent.load(Relaxed),
                n.errors.load(Relaxed),
                n.connections.load(Relaxed),
                n.queued.load(Relaxed),
                n.connected.load(Relaxed) as u64,
            ];
            let sums = per_label.entry((c.address.clone(), c.transport.clone())).or_default();
            for (s, v) in sums.iter_mut().zip(values) {
                *s += v;
            }
        }
        if !per_label.is_empty() {
            for (i, f) in EXPORT.iter().enumerate() {
                let samples = per_label.iter().map(|((address, transport), values)| {
                    let labels = [("collector", address.clone()), ("transport", transport.clone())];
                    (labels, Value::Count(values[i]))
                });
                write(&mut encoder, f, samples)?;
            }
        }
        Ok(())
    }
}
