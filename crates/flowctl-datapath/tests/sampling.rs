//! Packet sampling in the real classifier, fed through BPF_PROG_TEST_RUN
//! (root needed): 1 packet in N is metered, at random (the count is within 5
//! standard deviations of the binomial mean) or every Nth packet per CPU
//! (exact on one CPU), and the flows carry the attachment's sampling in
//! their key.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use etherparse::PacketBuilder;
use flowctl_datapath::{
    test_run::{DetachedDatapath, SkbContext},
    Direction, FlowTable, PinLayout,
};
use flowctl_model::{FlowKey, FlowStats, SampleMode, Sampling};

const TC_ACT_UNSPEC: i32 = -1;

/// A datapath loaded with `sampling`, its own pins removed on drop.
struct Sampled {
    base: PathBuf,
    layout: PinLayout,
    datapath: DetachedDatapath,
}

impl Sampled {
    fn new(tag: &str, sampling: Sampling) -> Self {
        let base = PathBuf::from(format!(
            "/sys/fs/bpf/flowctl-test-sampling-{tag}-{}",
            std::process::id()
        ));
        let layout = PinLayout::under(&base);
        let datapath =
            DetachedDatapath::load_sampled(&layout, 31, Some(1024), sampling).expect("load datapath (run as root)");
        Self { base, layout, datapath }
    }

    /// Sends the same packet `n` times, in runs of at most 100,000.
    fn send(&self, packet: &[u8], mut n: u32) {
        while n > 0 {
            let run = n.min(100_000);
            let verdict = self
                .datapath
                .run_repeated(Direction::Egress, packet, SkbContext::default(), run)
                .expect("test run");
            assert_eq!(verdict, TC_ACT_UNSPEC);
            n -= run;
        }
    }

    fn flows(&self) -> Vec<(FlowKey, FlowStats)> {
        FlowTable::open(&self.layout)
            .unwrap()
            .read_all()
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.stats))
            .collect()
    }
}

impl Drop for Sampled {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn udp4() -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .udp(1000, 2000);
    let mut out = Vec::new();
    b.write(&mut out, &[0xab; 64]).unwrap();
    out
}

/// Keeps the calling thread on one CPU (the per-CPU counter of count-based
/// sampling is then one counter), restoring its CPU set on drop.
struct OneCpu(libc::cpu_set_t);

impl OneCpu {
    fn pin() -> Self {
        // SAFETY: cpu_set_t is plain data; the calls get valid pointers to
        // sets of the size they are told.
        unsafe {
            let mut old: libc::cpu_set_t = std::mem::zeroed();
            assert_eq!(libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut old), 0);
            let cpu = (0..libc::CPU_SETSIZE as usize)
                .find(|&c| libc::CPU_ISSET(c, &old))
                .unwrap();
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut one);
            assert_eq!(libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &one), 0);
            Self(old)
        }
    }
}

impl Drop for OneCpu {
    fn drop(&mut self) {
        // SAFETY: as in pin.
        unsafe {
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &self.0);
        }
    }
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn random_one_in_100_meters_a_binomial_share_of_500k_packets() {
    let sampling = Sampling::new(100, SampleMode::Random).unwrap();
    let dp = Sampled::new("random", sampling);
    let sent: u32 = 500_000;
    dp.send(&udp4(), sent);
    let flows = dp.flows();
    assert_eq!(flows.len(), 1, "one flow: {flows:#?}");
    let (key, stats) = flows[0];
    assert_eq!(stats.sampling, sampling.word(), "the flow carries its sampling");
    assert_eq!(Sampling::from_word(stats.sampling), sampling);
    assert_eq!(key.sampling_tag, sampling.tag());
    assert_ne!(key.sampling_tag, 0);
    // Counted as they are: no scaling.
    let (n, p) = (f64::from(sent), 0.01);
    let sd = (n * p * (1.0 - p)).sqrt();
    let deviation = (stats.packets as f64 - n * p) / sd;
    eprintln!(
        "random 1:100 over {sent} packets: {} metered, x100 = {} (sent {sent}), {deviation:+.2} standard deviations",
        stats.packets,
        stats.packets * 100
    );
    assert!(
        deviation.abs() < 5.0,
        "{} packets metered of {sent} at 1:100: {deviation:.2} sd from the mean",
        stats.packets
    );
    assert_eq!(
        stats.octets,
        stats.packets * 92,
        "each metered packet counts its own 92 octets"
    );
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn deterministic_one_in_n_meters_exactly_every_nth_packet_on_one_cpu() {
    let _cpu = OneCpu::pin();
    let sampling = Sampling::new(100, SampleMode::Deterministic).unwrap();
    let dp = Sampled::new("deterministic", sampling);
    dp.send(&udp4(), 500_000);
    let (key, stats) = dp.flows()[0];
    assert_eq!((stats.sampling, key.sampling_tag), (100, sampling.tag()));
    assert_eq!(stats.packets, 5_000, "every 100th of 500,000 packets");
    // The count goes on across runs: 150 more packets make 1 more (the
    // 100th after the last one), and the next 50 are the next one's.
    dp.send(&udp4(), 99);
    assert_eq!(dp.flows()[0].1.packets, 5_000);
    dp.send(&udp4(), 1);
    assert_eq!(dp.flows()[0].1.packets, 5_001);
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn interval_one_meters_every_packet_and_keys_flows_unsampled() {
    for (tag, sampling) in [
        ("none", Sampling::NONE),
        ("one", Sampling::new(1, SampleMode::Random).unwrap()),
    ] {
        let dp = Sampled::new(tag, sampling);
        dp.send(&udp4(), 1_000);
        let (key, stats) = dp.flows()[0];
        assert_eq!(
            (key.sampling_tag, stats.sampling, stats.packets),
            (0, 0, 1_000),
            "{tag}"
        );
    }
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn two_rates_on_one_cache_make_two_flows() {
    let base = PathBuf::from(format!("/sys/fs/bpf/flowctl-test-sampling-two-{}", std::process::id()));
    let layout = PinLayout::under(&base);
    let _cleanup = Cleanup(base);
    let every = DetachedDatapath::load_sampled(&layout, 31, Some(1024), Sampling::NONE).unwrap();
    let tenth = Sampling::new(10, SampleMode::Deterministic).unwrap();
    let sampled = DetachedDatapath::load_sampled(&layout, 31, Some(1024), tenth).unwrap();
    let _cpu = OneCpu::pin();
    every
        .run_repeated(Direction::Egress, &udp4(), SkbContext::default(), 100)
        .unwrap();
    sampled
        .run_repeated(Direction::Egress, &udp4(), SkbContext::default(), 100)
        .unwrap();
    let mut flows: Vec<(u32, u64)> = FlowTable::open(&layout)
        .unwrap()
        .read_all()
        .unwrap()
        .into_iter()
        .map(|e| (e.stats.sampling, e.stats.packets))
        .collect();
    flows.sort();
    assert_eq!(flows, [(0, 100), (10, 10)]);
}

struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
