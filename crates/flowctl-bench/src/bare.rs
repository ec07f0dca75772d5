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
unsafe impl Pod for BareValue {}

/// Attaches, waits for a signal, prints `{"packets":..,"bytes":..,"flows":..}`.
pub fn run(args: &BareArgs) -> Result<()> {
    signals::install()?;
    netns::enter(&args.netns)?;
    let mut ebpf = Ebpf::load(BARE_OBJECT).context("loading the bare counter")?;
    let prog: &mut SchedClassifier = ebpf
        .program_mut("bare_counter")
        .ok_or_else(|| anyhow!("program bare_counter missing from the object"))?
        .try_into()
        .context("program bare_counter")?;
    prog.load().context("verifying the bare counter")?;
    let link = prog
        .attach(&args.ifname, TcAttachType::Egress)
        .with_context(|| format!("attaching to {} egress", args.ifname))?;
    eprintln!(
        "flowctl-bench: bare counter attached to {} egress in {}",
        args.ifname, args.netns
    );

    signals::wait();

    let (packets, bytes, flows) = totals(&ebpf)?;
    let prog: &mut SchedClassifier = ebpf
        .program_mut("bare_counter")
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

/// Packets and bytes summed over flows and CPUs, and the number of flows.
fn totals(ebpf: &Ebpf) -> Result<(u64, u64, u64)> {
    let map = ebpf
        .map("bare_flows")
        .ok_or_else(|| anyhow!("map bare_flows missing"))?;
    let flows: PerCpuHashMap<_, BareKey, BareValue> = PerCpuHashMap::try_from(map).context("map bare_flows")?;
    let (mut packets, mut bytes, mut n) = (0u64, 0u64, 0u64);
    for entry in flows.iter() {
        let (_, per_cpu) = entry.context("reading bare_flows")?;
        n += 1;
        for v in per_cpu.iter() {
            packets += v.packets;
            bytes += v.bytes;
        }
    }
    Ok((packets, bytes, n))
}
