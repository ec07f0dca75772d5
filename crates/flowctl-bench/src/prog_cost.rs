//! `flowctl-bench prog-cost`: the cost of the flowctl classifier and of the
//! bare counter on one frame, measured by the kernel with
//! `BPF_PROG_TEST_RUN` (`repeat` runs, average ns per run). No traffic, no
//! attachment: the programs run on a copy of the frame, their maps are
//! private to this process. Every run after the first hits the same flow.

use anyhow::{anyhow, Context, Result};
use aya::{
    programs::{SchedClassifier, TestRun, TestRunOptions},
    Ebpf,
};

use crate::{bare::BARE_OBJECT, cli::ProgCostArgs, frames};

/// Loads both programs, runs them alternately `rounds` times and prints one
/// JSON line with the median ns per run of each and their ratio.
pub fn run(args: &ProgCostArgs) -> Result<()> {
    let spec = frames::FrameSpec {
        src_mac: [2, 0, 0, 0, 0, 1],
        dst_mac: [2, 0, 0, 0, 0, 2],
        src_ip: [10, 0, 0, 1].into(),
        dst_ip: [10, 0, 0, 2].into(),
        dst_port: 9,
        size: args.size,
    };
    let frame = frames::frame(&spec, frames::FIRST_SRC_PORT);
    let mut bare = load(BARE_OBJECT, "bare_counter")?;
    let mut flowctl = load(flowctl_datapath::DATAPATH_OBJECT, "flowctl_egress")?;
    // Its private cache has no free slot until its ring is filled.
    flowctl_datapath::fill_ring(&flowctl).context("filling the ring of free slots")?;
    let (mut bare_ns, mut flowctl_ns) = (Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        bare_ns.push(ns_per_run(&mut bare, "bare_counter", &frame, args.repeat)?);
        flowctl_ns.push(ns_per_run(&mut flowctl, "flowctl_egress", &frame, args.repeat)?);
    }
    let (b, f) = (median(&mut bare_ns), median(&mut flowctl_ns));
    println!(
        "{}",
        serde_json::json!({
            "size": args.size, "repeat": args.repeat, "rounds": args.rounds,
            "bare_ns": b, "flowctl_ns": f, "flowctl_minus_bare_ns": f - b,
        })
    );
    Ok(())
}

fn load(object: &[u8], program: &str) -> Result<Ebpf> {
    let mut ebpf = Ebpf::load(object).with_context(|| format!("loading {program}"))?;
    let prog: &mut SchedClassifier = ebpf
        .program_mut(program)
        .ok_or_else(|| anyhow!("program {program} missing from its object"))?
        .try_into()
        .with_context(|| format!("program {program}"))?;
    prog.load().with_context(|| format!("verifying {program}"))?;
    Ok(ebpf)
}

fn ns_per_run(ebpf: &mut Ebpf, program: &str, frame: &[u8], repeat: u32) -> Result<f64> {
    let prog: &SchedClassifier = ebpf
        .program(program)
        .ok_or_else(|| anyhow!("program {program} missing"))?
        .try_into()
        .with_context(|| format!("program {program}"))?;
    let mut out = vec![0u8; frame.len() + 256];
    let opts = TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        repeat,
        ..TestRunOptions::new()
    };
    let result = prog
        .test_run(opts)
        .with_context(|| format!("BPF_PROG_TEST_RUN of {program}"))?;
    // The kernel reports the average per run, in whole nanoseconds.
    Ok(result.duration.as_nanos() as f64)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
