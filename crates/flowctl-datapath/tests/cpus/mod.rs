//! What the tests that run the classifier on chosen CPUs share: pinning
//! the calling thread, a pin directory removed at the end, a cache set up
//! for two CPUs, and the UDP flows they send.

use std::path::PathBuf;

use etherparse::PacketBuilder;
use flowctl_datapath::{
    test_run::{DetachedDatapath, SkbContext},
    Direction, FlowTable, PinLayout,
};

/// Pins the calling thread to `cpu`.
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and
    // sched_setaffinity only touch the set we own (0: this thread).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set), 0);
    }
}

/// A pin directory under /sys/fs/bpf, removed when dropped (test failed
/// or not).
pub struct Pins(pub PathBuf);

impl Pins {
    /// `/sys/fs/bpf/flowctl-test-<name>-<pid>`.
    pub fn new(name: &str) -> Self {
        Self(PathBuf::from(format!(
            "/sys/fs/bpf/flowctl-test-{name}-{}",
            std::process::id()
        )))
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A flow cache for a test that runs the classifier on CPUs 0 and 1 (the
/// machine must have two): the datapath loaded once, the cache's writer,
/// and the pins, removed when dropped (fields drop in order, pins last).
// Each test binary uses its own part of it.
#[allow(dead_code)]
pub struct TwoCpuCache {
    pub datapath: DetachedDatapath,
    pub table: FlowTable,
    pub layout: PinLayout,
    pub pins: Pins,
}

impl TwoCpuCache {
    /// A cache of `max_flows` slots pinned under
    /// `/sys/fs/bpf/flowctl-test-<name>-<pid>`, flows keyed with netns 9.
    pub fn new(name: &str, max_flows: u32) -> Self {
        let cpus = std::thread::available_parallelism().unwrap().get();
        assert!(cpus >= 2, "needs two CPUs");
        let pins = Pins::new(name);
        let layout = PinLayout::under(&pins.0);
        let datapath = DetachedDatapath::load(&layout, 9, Some(max_flows)).expect("load datapath (run as root)");
        let table = FlowTable::open_writer(&layout).unwrap();
        Self {
            datapath,
            table,
            layout,
            pins,
        }
    }
}

/// A 64-byte UDP packet (IPv4 length 46) of the flow from port `src_port`
/// of 10.0.0.1 to port 53 of 10.0.0.2.
#[allow(dead_code)] // not every test binary sends these
pub fn packet(src_port: u16) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(src_port, 53)
        .write(&mut out, &[0xab; 18])
        .unwrap();
    out
}

/// Runs `n` packets of the flow from `src_port` ([`packet`]) through
/// `datapath`'s egress program on `cpu`.
#[allow(dead_code)] // not every test binary sends these
pub fn send(datapath: &DetachedDatapath, cpu: usize, src_port: u16, n: u32) {
    pin_to_cpu(cpu);
    datapath
        .run_repeated(Direction::Egress, &packet(src_port), SkbContext::default(), n)
        .unwrap();
}
