//! The agent at scale (run as root, release build: `misc/bench/scale.sh`).
//!
//! Loads the real datapath maps (not attached anywhere) with `--max-flows`
//! entries under a pin directory of its own, fills them from user space with
//! `--flows` distinct flows (batch update), then times what the agent does
//! with them and prints this process's memory (VmRSS, and VmHWM reset before
//! each step through /proc/self/clear_refs):
//!
//! - `read_all` (a walk of the mapped slots);
//! - one aging pass that ends nothing, one that ends every flow (idle
//!   timeout), one at the fill's watermark (eviction if >= 90 % full), and
//!   the shutdown pass (every flow ended, reason 4).
//!
//! Targets (issue 4): one aging pass over 1,000,000 flows in under 1 s;
//! agent RSS under 50 MB + 100 bytes per live flow.
//!
//! `--fill-only --keep` fills an existing pin directory and leaves it, so a
//! real `flowctl agent` can be measured on it. Figures are printed, never
//! asserted.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    fs,
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use flowctl_aging::{Scanner, Timeouts, Watermarks};
use flowctl_datapath::{netns::current_netns_ino, test_run::DetachedDatapath, FlowTable, PinLayout};
use flowctl_model::{boot_time_ns, FlowKey, FlowSource, FlowStats};

const MB: f64 = 1e6;
const TARGET_SECONDS: f64 = 1.0;
const TARGET_BASE_BYTES: f64 = 50e6;
const TARGET_BYTES_PER_FLOW: f64 = 100.0;

struct Args {
    flows: u32,
    max_flows: u32,
    base: PathBuf,
    keep: bool,
    fill_only: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        flows: 1_000_000,
        max_flows: 0,
        base: PathBuf::from(format!("/sys/fs/bpf/flowctl-scale-{}", std::process::id())),
        keep: false,
        fill_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--flows" => args.flows = value("--flows")?.parse().map_err(|e| format!("--flows: {e}"))?,
            "--max-flows" => args.max_flows = value("--max-flows")?.parse().map_err(|e| format!("--max-flows: {e}"))?,
            "--pin-dir" => args.base = PathBuf::from(value("--pin-dir")?),
            "--keep" => args.keep = true,
            "--fill-only" => args.fill_only = true,
            other => {
                return Err(format!(
                    "unknown argument {other:?} (--flows N, --max-flows N, --pin-dir DIR, --keep, --fill-only)"
                ))
            }
        }
    }
    if args.max_flows == 0 {
        args.max_flows = args.flows;
    }
    if args.flows == 0 || args.flows > args.max_flows {
        return Err(format!("--flows must be 1..=--max-flows ({})", args.max_flows));
    }
    Ok(args)
}

/// Removes the pin directory on exit unless asked to keep it.
struct Pins {
    base: PathBuf,
    keep: bool,
}

impl Drop for Pins {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.base);
        }
    }
}

/// A field of /proc/self/status in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// CPU time this process has run, all its threads together (the flow
/// hash's deletes run on several): less sensitive than wall time to other
/// work on a shared machine.
fn cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid timespec for the call to write.
    if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn rss() -> u64 {
    status_bytes("VmRSS")
}

/// Resets VmHWM to the current RSS (Linux >= 4.0).
fn reset_peak() {
    let _ = fs::write("/proc/self/clear_refs", "5");
}

/// Flow `i`: distinct UDP (or TCP, no FIN/RST) 5-tuples, one packet each,
/// last seen 1 to 2 s ago (a distinct time per flow, as traffic gives).
fn flow(i: u32, netns_ino: u32, now_ns: u64) -> (FlowKey, FlowStats) {
    let mut key = FlowKey {
        netns_ino,
        egress_ifindex: 2,
        protocol: if i.is_multiple_of(4) { 6 } else { 17 },
        ip_version: 4,
        direction: 1,
        src_port: (i % 50_000) as u16 + 10_000,
        dst_port: 443,
        ..Default::default()
    };
    key.src_addr[10..12].copy_from_slice(&[0xff, 0xff]);
    key.src_addr[12..].copy_from_slice(&(0x0a00_0000 | (i / 50_000)).to_be_bytes());
    key.dst_addr[10..12].copy_from_slice(&[0xff, 0xff]);
    key.dst_addr[12..].copy_from_slice(&[192, 0, 2, 1]);
    let value = FlowStats {
        packets: 1,
        octets: 100,
        first_seen_ns: now_ns - 2_000_000_000 - u64::from(i % 1_000_000) * 1000,
        last_seen_ns: now_ns - 1_000_000_000 - u64::from(i % 1_000_000) * 1000,
        tcp_flags: if key.protocol == 6 { 0x02 } else { 0 },
        min_ttl: 64,
        max_ttl: 64,
        ..Default::default()
    };
    (key, value)
}

fn fill(table: &FlowTable, flows: u32, netns_ino: u32) -> Result<Duration, String> {
    let started = Instant::now();
    let now = boot_time_ns();
    let mut chunk = Vec::with_capacity(65536);
    for start in (0..flows).step_by(65536) {
        chunk.clear();
        chunk.extend((start..flows.min(start + 65536)).map(|i| flow(i, netns_ino, now)));
        table.insert(&chunk).map_err(|e| e.to_string())?;
    }
    Ok(started.elapsed())
}

/// One measured step.
struct Step {
    name: String,
    flows: usize,
    records: usize,
    took: Duration,
    cpu: Duration,
    rss_before: u64,
    rss_after: u64,
    peak: u64,
}

fn measure(name: &str, f: impl FnOnce() -> Result<(usize, usize), String>) -> Result<Step, String> {
    reset_peak();
    let rss_before = rss();
    let (started, cpu_before) = (Instant::now(), cpu_time());
    let (flows, records) = f()?;
    let (took, cpu) = (started.elapsed(), cpu_time().saturating_sub(cpu_before));
    let step = Step {
        name: name.to_string(),
        flows,
        records,
        took,
        cpu,
        rss_before,
        rss_after: rss(),
        peak: status_bytes("VmHWM"),
    };
    println!(
        "{:<36} {:>7.3} s (CPU {:>6.3} s) {:>8} flows {:>8} records  RSS {:>6.1} -> {:>6.1} MB, peak {:>6.1} MB",
        step.name,
        step.took.as_secs_f64(),
        step.cpu.as_secs_f64(),
        step.flows,
        step.records,
        step.rss_before as f64 / MB,
        step.rss_after as f64 / MB,
        step.peak as f64 / MB,
    );
    Ok(step)
}

fn run(args: &Args) -> Result<(), String> {
    let layout = PinLayout::under(&args.base);
    let _pins = Pins {
        base: args.base.clone(),
        keep: args.keep,
    };
    let netns_ino = current_netns_ino().map_err(|e| e.to_string())?;
    let datapath = DetachedDatapath::load(&layout, netns_ino, Some(args.max_flows)).map_err(|e| e.to_string())?;
    drop(datapath); // the maps stay pinned
    let table = FlowTable::open_writer(&layout).map_err(|e| e.to_string())?;
    println!(
        "flow cache: {} entries, {} free slots; pins under {}",
        table.capacity(),
        table.free_slots(),
        args.base.display()
    );

    let took = fill(&table, args.flows, netns_ino)?;
    println!(
        "filled {} flows from user space (slots written in place, keys in batches) in {:.3} s ({:.0} flows/s)",
        args.flows,
        took.as_secs_f64(),
        f64::from(args.flows) / took.as_secs_f64()
    );
    if args.fill_only {
        return Ok(());
    }
    let baseline = rss();
    println!(
        "RSS with the cache filled, before any read: {:.1} MB (of which the mapped slots, shared with the kernel: {:.1} MB)",
        baseline as f64 / MB,
        status_bytes("RssFile") as f64 / MB
    );

    let mut steps = Vec::new();
    steps.push(measure("read_all (walk of the mapped slots)", || {
        let all = table.read_all().map_err(|e| e.to_string())?;
        Ok((all.len(), 0))
    })?);

    // Timers long enough that only what a pass is about happens in it,
    // however slow the machine is today.
    let long = Timeouts {
        idle_tcp: Duration::from_secs(3600),
        idle_udp: Duration::from_secs(3600),
        idle_icmp: Duration::from_secs(3600),
        idle_other: Duration::from_secs(3600),
        active: Duration::from_secs(3600),
        tcp_end_grace: Duration::from_secs(5),
    };
    let no_eviction = Watermarks { high: 2.0, low: 2.0 };
    let mut scanner = Scanner::new(table, long, no_eviction);
    // The records of a pass are counted and dropped as the agent's sink
    // hands them on, a chunk at a time.
    let pass = |name: &str, scanner: &mut Scanner<FlowTable>, end_all: bool| {
        measure(name, || {
            let mut records = 0;
            let mut sink = |chunk: Vec<_>| records += chunk.len();
            let out = if end_all {
                scanner.end_all(&mut sink)
            } else {
                scanner.scan(&mut sink)
            };
            let out = out.map_err(|e| e.to_string())?;
            Ok((out.flows, records))
        })
    };

    steps.push(pass("aging pass, nothing ends", &mut scanner, false)?);
    scanner.set_timeouts(Timeouts {
        idle_tcp: Duration::ZERO,
        idle_udp: Duration::ZERO,
        idle_icmp: Duration::ZERO,
        idle_other: Duration::ZERO,
        ..long
    });
    steps.push(pass("aging pass, every flow ends (idle)", &mut scanner, false)?);

    // Every flow reported by an active timeout (unmeasured), then going on
    // in a new entry: the next pass looks up each flow's carried totals.
    fill(scanner.source(), args.flows, netns_ino)?;
    scanner.set_timeouts(Timeouts {
        active: Duration::ZERO,
        ..long
    });
    scanner.scan(&mut |_| {}).map_err(|e| e.to_string())?;
    scanner.set_timeouts(long);
    fill(scanner.source(), args.flows, netns_ino)?;
    steps.push(pass("aging pass, nothing ends, totals carried", &mut scanner, false)?);
    scanner.end_all(&mut |_| {}).map_err(|e| e.to_string())?;

    fill(scanner.source(), args.flows, netns_ino)?;
    scanner.set_watermarks(Watermarks::default());
    let fill_pct = 100.0 * f64::from(args.flows) / f64::from(args.max_flows);
    steps.push(pass(
        &format!("aging pass at {fill_pct:.0} % full"),
        &mut scanner,
        false,
    )?);

    // What eviction left goes first, unmeasured: the shutdown pass ends a
    // full cache of fresh flows.
    scanner.end_all(&mut |_| {}).map_err(|e| e.to_string())?;
    fill(scanner.source(), args.flows, netns_ino)?;
    steps.push(pass("shutdown pass (end_all)", &mut scanner, true)?);

    summary(&steps, baseline);
    Ok(())
}

fn summary(steps: &[Step], baseline: u64) {
    println!();
    println!("targets: one aging pass < {TARGET_SECONDS} s; RSS < 50 MB + 100 B per live flow");
    for s in steps.iter().filter(|s| s.name.contains("pass") && s.flows > 0) {
        let budget = TARGET_BASE_BYTES + TARGET_BYTES_PER_FLOW * s.flows as f64;
        let per_flow = s.peak.saturating_sub(baseline) as f64 / s.flows.max(1) as f64;
        println!(
            "{:<36} time {:>5.2}x target (CPU {:>5.2}x); peak RSS {:>6.1} MB = {:>4.2}x budget ({:.1} MB); {:>5.0} B/flow above the filled baseline",
            s.name,
            s.took.as_secs_f64() / TARGET_SECONDS,
            s.cpu.as_secs_f64() / TARGET_SECONDS,
            s.peak as f64 / MB,
            s.peak as f64 / budget,
            budget / MB,
            per_flow
        );
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("scale: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scale: {e}");
            ExitCode::FAILURE
        }
    }
}
