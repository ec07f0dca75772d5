//! The exporter's sysUptime, the clock NetFlow v9 times are relative to.
//!
//! A v9 header carries `sysUptime` (milliseconds since the exporter booted)
//! and `unix_secs`; `FIRST_SWITCHED`/`LAST_SWITCHED` are sysUptime values.
//! Collectors (nfdump, pmacct, goflow2) take the boot time as
//! `unix_secs * 1000 - sysUptime` and add the field to it. So flowctl keeps
//! a boot time `B` in Unix milliseconds and writes `sysUptime =
//! unix_secs * 1000 - B` (computed from the header's own whole seconds, not
//! from a finer clock): every collector then recovers `B` exactly, and each
//! flow time to the millisecond.
//!
//! `B` starts at the first message's export time and moves back to a
//! second before the start of any record not later than it (flows in a
//! pinned cache or a spool that predate the agent): no time is negative or
//! 0 (tshark shows a `FIRST_SWITCHED` of 0 as the Unix epoch), and
//! sysUptime only grows then. Before it would pass 2^31 ms (24.8 days) `B` starts over at the
//! export time, as after a reboot, to keep clear of the 32-bit wrap.
//! Records more than 2^32 - 1 ms (49.7 days) older than their message are
//! sent at the oldest time sysUptime can express.

/// Milliseconds after which a new boot time is taken.
const NEW_EPOCH_AFTER_MS: u64 = 1 << 31;
/// The largest sysUptime.
const MAX_UPTIME_MS: u64 = u32::MAX as u64;
/// How far before a record's start a boot time moved for it goes.
const LEAD_MS: u64 = 1000;

/// The boot time that sysUptime counts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Uptime {
    boot_ms: Option<u64>,
}

impl Uptime {
    /// The boot time, Unix milliseconds, once a message was finished.
    pub fn boot_ms(&self) -> Option<u64> {
        self.boot_ms
    }

    /// Sets the boot time for a message exported at `export_secs` (the
    /// header's `unix_secs`) with records starting no earlier than
    /// `earliest_ms` (Unix milliseconds); returns the header's sysUptime.
    pub fn anchor(&mut self, export_secs: u32, earliest_ms: Option<u64>) -> u32 {
        let now = u64::from(export_secs) * 1000;
        let mut boot = self.boot_ms.unwrap_or(now).min(now);
        if now - boot >= NEW_EPOCH_AFTER_MS {
            boot = now;
        }
        if let Some(earliest) = earliest_ms.filter(|&e| e <= boot) {
            boot = earliest.saturating_sub(LEAD_MS);
        }
        boot = boot.max(now.saturating_sub(MAX_UPTIME_MS));
        self.boot_ms = Some(boot);
        u32::try_from(now - boot).unwrap_or(u32::MAX)
    }

    /// `unix_ms` as sysUptime milliseconds (0 for times before the boot
    /// time, the largest value for times too far after it).
    pub fn relative(&self, unix_ms: u64) -> u32 {
        let since = unix_ms.saturating_sub(self.boot_ms.unwrap_or(unix_ms));
        u32::try_from(since).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u32 = 1_700_000_000;
    const T_MS: u64 = T as u64 * 1000;

    /// What a collector computes: the boot time, then the flow time.
    fn collector_time(export_secs: u32, uptime: u32, field: u32) -> u64 {
        u64::from(export_secs) * 1000 - u64::from(uptime) + u64::from(field)
    }

    #[test]
    fn collectors_recover_every_millisecond() {
        let mut u = Uptime::default();
        assert_eq!(u.anchor(T, None), 0, "the first message is the boot");
        let start = T_MS + 1234;
        let up = u.anchor(T + 5, Some(start));
        assert_eq!(up, 5000);
        assert_eq!(collector_time(T + 5, up, u.relative(start)), start);
        assert_eq!(collector_time(T + 5, up, u.relative(T_MS + 4999)), T_MS + 4999);
    }

    #[test]
    fn older_records_move_the_boot_back_and_uptime_only_grows() {
        let mut u = Uptime::default();
        let first = u.anchor(T, None);
        let old = T_MS - 3_600_007;
        let up = u.anchor(T + 1, Some(old));
        assert!(up > first);
        assert_eq!(u.boot_ms(), Some(old - 1000), "a second before: no time is 0");
        assert_eq!(u.relative(old), 1000);
        assert_eq!(u.anchor(T + 1, Some(T_MS)), up, "a later record moves nothing");
        assert_eq!(collector_time(T + 1, up, u.relative(old + 10)), old + 10);
        assert_eq!(u.anchor(T + 2, None), up + 1000, "the boot stays where it went");
    }

    #[test]
    fn a_long_uptime_starts_over_and_ancient_records_are_clamped() {
        let mut u = Uptime::default();
        u.anchor(T, None);
        let later = T + (NEW_EPOCH_AFTER_MS / 1000) as u32 + 1;
        assert_eq!(u.anchor(later, None), 0, "a new epoch");
        let ancient = T_MS - 60 * 86_400_000;
        assert_eq!(u.anchor(later, Some(ancient)), u32::MAX);
        assert_eq!(u.relative(ancient), 0, "clamped to the oldest expressible time");
        let mut stepped = Uptime::default();
        stepped.anchor(T, None);
        assert_eq!(
            stepped.anchor(T - 10, None),
            0,
            "a clock stepped back moves the boot with it"
        );
    }
}
