//! `flowctl-bench`: tools for the flowctl benchmarks (misc/bench/).
//!
//! - `send`: a raw UDP traffic generator (AF_PACKET, sendmmsg) for N flows.
//! - `bare`: attaches a bare per-CPU-hash tc counter, the baseline the
//!   flowctl datapath is compared with.
//! - `sink`: bound UDP sockets that absorb traffic without answering it.
//! - `prog-cost`: ns per packet of both programs, by BPF_PROG_TEST_RUN.

mod bare;
mod cli;
mod frames;
mod netns;
mod prog_cost;
mod send;
mod signals;
mod sink;

fn main() {
    let args = <cli::Cli as clap::Parser>::parse();
    let result = match args.command {
        cli::Command::Send(a) => send::run(&a),
        cli::Command::Bare(a) => bare::run(&a),
        cli::Command::Sink(a) => sink::run(&a),
        cli::Command::ProgCost(a) => prog_cost::run(&a),
    };
    if let Err(e) = result {
        eprintln!("flowctl-bench: {e:#}");
        std::process::exit(1);
    }
}
