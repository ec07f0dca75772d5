//! The datapath's clock (CLOCK_BOOTTIME, which counts suspend) and its
//! conversion to wall-clock time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Offset between CLOCK_REALTIME and CLOCK_BOOTTIME: converts the
/// datapath's boot-time stamps to Unix time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootClock {
    /// Unix time (ns) at boot-time 0.
    boot_epoch_unix_ns: i128,
}

impl BootClock {
    /// Samples both clocks now, keeping the tightest of a few back-to-back reads.
    pub fn now() -> Self {
        let (mut best_gap, mut best_offset) = (i128::MAX, 0);
        for _ in 0..5 {
            let r1 = clock_ns(libc::CLOCK_REALTIME);
            let b = clock_ns(libc::CLOCK_BOOTTIME);
            let r2 = clock_ns(libc::CLOCK_REALTIME);
            if r2 - r1 < best_gap {
                (best_gap, best_offset) = (r2 - r1, (r1 + r2) / 2 - b);
            }
        }
        Self {
            boot_epoch_unix_ns: best_offset,
        }
    }

    /// A clock whose boot happened at `boot_epoch_unix_ns` (Unix ns).
    pub fn with_boot_epoch(boot_epoch_unix_ns: i128) -> Self {
        Self { boot_epoch_unix_ns }
    }

    /// Unix time in nanoseconds of a boot-time stamp.
    pub fn unix_ns(&self, boot_ns: u64) -> i128 {
        self.boot_epoch_unix_ns + boot_ns as i128
    }

    /// Unix time in nanoseconds of a boot-time stamp, 0 before 1970.
    pub fn unix_ns_u64(&self, boot_ns: u64) -> u64 {
        u64::try_from(self.unix_ns(boot_ns).max(0)).unwrap_or(u64::MAX)
    }

    /// Unix time in milliseconds of a boot-time stamp (IPFIX dateTimeMilliseconds).
    pub fn unix_ms(&self, boot_ns: u64) -> u64 {
        self.unix_ns_u64(boot_ns) / 1_000_000
    }

    /// [`SystemTime`] of a boot-time stamp.
    pub fn system_time(&self, boot_ns: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.unix_ns_u64(boot_ns))
    }
}

/// Current CLOCK_BOOTTIME in nanoseconds (the datapath's clock).
pub fn boot_time_ns() -> u64 {
    u64::try_from(clock_ns(libc::CLOCK_BOOTTIME)).unwrap_or(0)
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime only writes into the timespec we own.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_with_the_sampled_offset() {
        let c = BootClock::with_boot_epoch(1_700_000_000_000_000_000);
        assert_eq!(c.unix_ns(5_000_000_123), 1_700_000_005_000_000_123);
        assert_eq!(c.unix_ms(5_000_000_123), 1_700_000_005_000);
    }

    #[test]
    fn times_before_1970_become_0() {
        let c = BootClock::with_boot_epoch(-10);
        assert_eq!(c.unix_ns_u64(5), 0);
        assert_eq!(c.system_time(5), UNIX_EPOCH);
    }

    #[test]
    fn now_maps_current_boot_time_to_current_wall_clock() {
        let c = BootClock::now();
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i128;
        let converted = c.unix_ms(boot_time_ns()) as i128;
        assert!((converted - wall).abs() < 50, "converted {converted} vs wall {wall}");
    }
}
