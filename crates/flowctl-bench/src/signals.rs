//! SIGINT/SIGTERM handling: a flag the work loops poll, or a blocking wait.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Installs handlers so SIGINT/SIGTERM set the flag read by [`stop_requested`].
pub fn install() -> Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        let prev = unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
        if prev == libc::SIG_ERR {
            return Err(std::io::Error::last_os_error()).context("installing a signal handler");
        }
    }
    Ok(())
}

/// Whether SIGINT or SIGTERM arrived since [`install`].
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Sleeps until SIGINT or SIGTERM arrives (handlers must be installed).
pub fn wait() {
    while !stop_requested() {
        // Interrupted by the signal; the timeout only bounds a lost race.
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
