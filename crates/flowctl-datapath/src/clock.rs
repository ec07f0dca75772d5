//! Converting the datapath's `bpf_ktime_get_boot_ns()` stamps to wall clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Offset between CLOCK_REALTIME and CLOCK_BOOTTIME, sampled once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootClock {
    /// Unix time (ns) at boot-time 0.
    boot_epoch_unix_ns: i128,
}

impl BootClock {
    /// Samples both clocks now, keeping the tightest of a few back-to-back reads.
    pub fn now() -> Self {
        let mut best: Option<(i128, i128)> = None;
        for _ in 0..5 {
            let r1 = clock_ns(libc::CLOCK_REALTIME);
            let b = clock_ns(libc::CLOCK_BOOTTIME);
            let r2 = clock_ns(libc::CLOCK_REALTIME);
            let gap = r2 - r1;
            let offset = (r1 + r2) / 2 - b;
            if best.is_none_or(|(g, _)| gap < g) {
                best = Some((gap, offset));
            }
        }
        Self {
            boot_epoch_unix_ns: best.expect("sampled").1,
        }
    }

    /// A clock whose boot happened at `boot_epoch_unix_ns` (for tests).
    pub fn with_boot_epoch(boot_epoch_unix_ns: i128) -> Self {
        Self { boot_epoch_unix_ns }
    }

    /// Unix time in nanoseconds of a boot-time stamp.
    pub fn unix_ns(&self, boot_ns: u64) -> i128 {
        self.boot_epoch_unix_ns + boot_ns as i128
    }

    /// Unix time in milliseconds of a boot-time stamp (IPFIX dateTimeMilliseconds).
    pub fn unix_ms(&self, boot_ns: u64) -> u64 {
        (self.unix_ns(boot_ns).max(0) / 1_000_000) as u64
    }

    /// [`SystemTime`] of a boot-time stamp.
    pub fn system_time(&self, boot_ns: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.unix_ns(boot_ns).max(0) as u64)
    }
}

/// Current CLOCK_BOOTTIME in nanoseconds (the datapath's clock).
pub fn boot_time_ns() -> u64 {
    clock_ns(libc::CLOCK_BOOTTIME) as u64
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own.
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
    fn now_maps_current_boot_time_to_current_wall_clock() {
        let c = BootClock::now();
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i128;
        let converted = c.unix_ms(boot_time_ns()) as i128;
        assert!((converted - wall).abs() < 50, "converted {converted} vs wall {wall}");
    }
}
