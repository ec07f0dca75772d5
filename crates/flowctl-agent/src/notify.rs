//! systemd's readiness protocol (sd_notify(3)), for `Type=notify`: READY=1
//! once the datapath is attached and the collectors are started,
//! RELOADING=1 and READY=1 around a SIGHUP reload, STOPPING=1 on shutdown,
//! and WATCHDOG=1 at half of `WATCHDOG_USEC`. Outside systemd
//! (`NOTIFY_SOCKET` unset) every call does nothing.

use std::time::Duration;

use sd_notify::NotifyState;

/// Sends `states`; a failure is logged, never fatal (the agent works
/// without a service manager).
fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        log::warn!("sd_notify (NOTIFY_SOCKET): {e}");
    }
}

/// Startup (or a reload) is finished; `status` is shown by `systemctl status`.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload starts (systemd shows the unit as reloading until [`ready`]).
pub fn reloading() {
    let mut states = vec![NotifyState::Reloading];
    // systemd >= 253 wants the time the reload started with it.
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    send(&states);
}

/// The agent is shutting down: ending flows, exporting, spooling.
pub fn stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping: ending every flow"),
    ]);
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC` when systemd
/// set it for this process (`WatchdogSec=`), as sd_watchdog_enabled(3) advises.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        .map(|timeout| timeout / 2)
        .filter(|d| !d.is_zero())
}

/// The service is alive.
pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}
