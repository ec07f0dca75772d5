//! Entering a named network namespace (only the network namespace, so
//! `/sys/fs/bpf` stays the host's bpffs).

use std::{fs::File, os::fd::AsRawFd};

use anyhow::{Context, Result};

/// Moves the calling thread into the network namespace `/var/run/netns/NAME`
/// (or `/run/netns/NAME`) for the rest of its life.
pub fn enter(name: &str) -> Result<()> {
    let path = flowctl_datapath::netns::netns_path(name)?;
    let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: plain syscall on a valid fd.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("entering network namespace {name}"));
    }
    Ok(())
}
