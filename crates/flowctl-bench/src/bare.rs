//! `flowctl-bench bare`: the bare per-CPU-hash tc counter
//! (`bpf/bench/bare_counter.bpf.c`) on an interface's tcx egress until
//! SIGTERM/SIGINT; prints what it counted and detaches.

use anyhow::{anyhow, Context, Result};
use aya::{
    maps::PerCpuHashMap,
    programs::{SchedClassifier, TcAttachType},
    Ebpf, Pod,
};

use crate::{cli::BareArgs, netns, signals};

/// The eBPF object built by `build.rs`.
pub(crate) static BARE_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/bare_counter.bpf.o"));

/// Mirror of `struct bare_key`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct BareKey {
    src: u32,
    dst: u32,
    sport: u16,
    dport: u16,
    proto: u8,
    pad: [u8; 3],
}

/// Mirror of `struct bare_wide_key`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct BareWideKey {
    tuple: BareKey,
    zeros: [u8; 44],
}

/// Mirror of `struct bare_value`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct BareValue {
    packets: u64,
    bytes: u64,
}

// SAFETY: plain #[repr(C)] integers, no padding holes beyond explicit fields.
unsafe impl Pod for BareKey {}
// SAFETY: as above.
unsafe impl Pod for BareWideKey {}
// SAFETY: as above.
unsafe impl Pod for BareValue {}

/// Attaches, waits for a signal, prints `{"packets":..,"bytes":..,"flows":..}`.
pub fn run(args: &BareArgs) -> Result<()> {
    signals::install()?;
    netns::enter(&args.netns)?;
    let (program, map) = if args.wide_key {
        ("bare_counter_wide", "bare_flows_wide")
    } else {
        ("bare_counter", "bare_flows")
    };
    let mut ebpf = Ebpf::load(BARE_OBJECT).context("loading the bare counter")?;
    let prog: &mut SchedClassifier = ebpf
        .program_mut(program)
        .ok_or_else(|| anyhow!("program {program} missing from the object"))?
        .try_into()
        .with_context(|| format!("program {program}"))?;
    prog.load().context("verifying the bare counter")?;
    let link = prog
        .attach(&args.ifname, TcAttachType::Egress)
        .with_context(|| format!("attaching to {} egress", args.ifname))?;
    eprintln!(
        "flowctl-bench: bare counter ({program}) attached to {} egress in {}",
        args.ifname, args.netns
    );

    signals::wait();

    let (packets, bytes, flows) = if args.wide_key {
        totals::<BareWideKey>(&ebpf, map)?
    } else {
        totals::<BareKey>(&ebpf, map)?
    };
    let prog: &mut SchedClassifier = ebpf
        .program_mut(program)
        .context("the bare counter program is gone")?
        .try_into()
        .context("the bare counter is not a classifier")?;
    prog.detach(link).context("detaching the bare counter")?;
    println!(
        "{}",
        serde_json::json!({"packets": packets, "bytes": bytes, "flows": flows})
    );
    Ok(())
}

/// Packets and bytes summed over the flows (keys K) of map `name` and over
/// CPUs, and the number of flows.
fn totals<K: Pod>(ebpf: &Ebpf, name: &str) -> Result<(u64, u64, u64)> {
    let map = ebpf.map(name).ok_or_else(|| anyhow!("map {name} missing"))?;
    let flows: PerCpuHashMap<_, K, BareValue> = PerCpuHashMap::try_from(map).with_context(|| format!("map {name}"))?;
    let (mut packets, mut bytes, mut n) = (0u64, 0u64, 0u64);
    for entry in flows.iter() {
        let (_, per_cpu) = entry.with_context(|| format!("reading {name}"))?;
        n += 1;
        for v in per_cpu.iter() {
            packets += v.packets;
            bytes += v.bytes;
        }
    }
    Ok((packets, bytes, n))
}
