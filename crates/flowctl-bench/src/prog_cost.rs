//! `flowctl-bench prog-cost`: the cost of the flowctl classifier and of the
//! bare counter on one frame, measured by the kernel with
//! `BPF_PROG_TEST_RUN` (`repeat` runs, average ns per run). No traffic, no
//! attachment: the programs run on a copy of the frame, their maps are
//! private to this process. Every run after the first hits the same flow.
//! Optionally also the classifier sampling 1 in N (`--sample-interval`) and
//! another build of it (`--baseline-object`), all alternating in each round,
//! with the ratios of each round's neighbouring runs.

use anyhow::{anyhow, Context, Result};
use aya::{
    programs::{SchedClassifier, TestRun, TestRunOptions},
    Ebpf, EbpfLoader,
};
use flowctl_model::{Sampling, SAMPLE_INTERVAL_GLOBAL, SAMPLE_THRESHOLD_GLOBAL, SAMPLING_GLOBAL, SAMPLING_TAG_GLOBAL};

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
    let mut flowctl = load_flowctl(flowctl_datapath::DATAPATH_OBJECT, None)?;
    let sampling = args
        .sample_interval
        .map(|n| Sampling::new(n, args.sample_mode))
        .transpose()
        .map_err(|e| anyhow!(e))?;
    let mut sampled = sampling
        .map(|s| load_flowctl(flowctl_datapath::DATAPATH_OBJECT, Some(s)))
        .transpose()?;
    let baseline_object = args
        .baseline_object
        .as_ref()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let mut baseline = baseline_object.as_deref().map(|o| load_flowctl(o, None)).transpose()?;
    let (mut bare_ns, mut flowctl_ns) = (Vec::new(), Vec::new());
    let (mut sampled_ns, mut baseline_ns) = (Vec::new(), Vec::new());
    let (mut sampled_ratio, mut flowctl_vs_baseline) = (Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        bare_ns.push(ns_per_run(&mut bare, "bare_counter", &frame, args.repeat)?);
        let f = ns_per_run(&mut flowctl, "flowctl_egress", &frame, args.repeat)?;
        flowctl_ns.push(f);
        if let Some(s) = sampled.as_mut() {
            let v = ns_per_run(s, "flowctl_egress", &frame, args.repeat)?;
            sampled_ns.push(v);
            sampled_ratio.push(v / f);
        }
        if let Some(b) = baseline.as_mut() {
            let v = ns_per_run(b, "flowctl_egress", &frame, args.repeat)?;
            baseline_ns.push(v);
            flowctl_vs_baseline.push(f / v);
        }
    }
    let (b, f) = (median(&mut bare_ns), median(&mut flowctl_ns));
    let mut out = serde_json::json!({
        "size": args.size, "repeat": args.repeat, "rounds": args.rounds,
        "bare_ns": b, "flowctl_ns": f, "flowctl_minus_bare_ns": f - b,
    });
    if let Some(s) = sampling {
        out["sample_interval"] = s.interval.into();
        out["sample_mode"] = s.mode.to_string().into();
        out["sampled_ns"] = median(&mut sampled_ns).into();
        out["sampled_over_flowctl"] = median(&mut sampled_ratio).into();
    }
    if baseline.is_some() {
        out["baseline_ns"] = median(&mut baseline_ns).into();
        out["flowctl_over_baseline"] = median(&mut flowctl_vs_baseline).into();
    }
    println!("{out}");
    Ok(())
}

/// Loads and verifies a build of the classifier with private maps and its
/// ring of free slots filled; `sampling` sets its sampling globals (none:
/// the globals keep the object's defaults, every packet).
fn load_flowctl(object: &[u8], sampling: Option<Sampling>) -> Result<Ebpf> {
    let mut loader = EbpfLoader::new();
    let globals = sampling.map(|s| (s.interval, s.threshold(), s.word(), s.tag()));
    if let Some((interval, threshold, word, tag)) = &globals {
        loader
            .override_global(SAMPLE_INTERVAL_GLOBAL, interval, true)
            .override_global(SAMPLE_THRESHOLD_GLOBAL, threshold, true)
            .override_global(SAMPLING_GLOBAL, word, true)
            .override_global(SAMPLING_TAG_GLOBAL, tag, true);
    }
    let mut ebpf = loader.load(object).context("loading flowctl_egress")?;
    let prog: &mut SchedClassifier = ebpf
        .program_mut("flowctl_egress")
        .ok_or_else(|| anyhow!("program flowctl_egress missing from its object"))?
        .try_into()
        .context("program flowctl_egress")?;
    prog.load().context("verifying flowctl_egress")?;
    // Its private cache has no free slot until its ring is filled.
    flowctl_datapath::fill_ring(&ebpf).context("filling the ring of free slots")?;
    Ok(ebpf)
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
