//! `flowctl-bench sink`: UDP sockets bound in a namespace that never read,
//! so traffic sent to them is dropped by the receiver's socket layer instead
//! of being answered with ICMP port unreachable.

use std::net::UdpSocket;

use anyhow::{Context, Result};

use crate::{cli::SinkArgs, netns, signals};

/// Binds every address, then waits for SIGTERM/SIGINT.
pub fn run(args: &SinkArgs) -> Result<()> {
    signals::install()?;
    netns::enter(&args.netns)?;
    let sockets = args
        .bind
        .iter()
        .map(|a| UdpSocket::bind(a).with_context(|| format!("binding UDP {a} in {}", args.netns)))
        .collect::<Result<Vec<_>>>()?;
    signals::wait();
    drop(sockets);
    Ok(())
}
