//! Time conversions: Unix nanoseconds to and from the 64-bit NTP format of
//! `dateTimeMicroseconds` / `dateTimeNanoseconds` (RFC 7011 §6.1.9–10), and
//! UTC calendar formatting for display.

use std::fmt;

/// Seconds from 1900-01-01 (NTP epoch) to 1970-01-01 (Unix epoch).
pub const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Unix nanoseconds to a 64-bit NTP timestamp.
///
/// Seconds wrap modulo 2^32 (NTP era 1 starts in 2036, RFC 5905); the
/// fraction is rounded up so that [`ntp_to_unix_ns`] gives back the exact
/// nanosecond.
pub fn unix_ns_to_ntp(unix_ns: u64) -> u64 {
    let secs = (unix_ns / NANOS_PER_SEC).wrapping_add(NTP_UNIX_OFFSET) & 0xffff_ffff;
    let nanos = unix_ns % NANOS_PER_SEC;
    let fraction = (nanos << 32).div_ceil(NANOS_PER_SEC);
    (secs << 32) | fraction
}

/// A 64-bit NTP timestamp to Unix nanoseconds.
///
/// Era by the RFC 4330 §3 rule: with the top bit of the seconds set the time
/// is in 1968–2036, else in 2036–2104. Times before 1970 become 0.
pub fn ntp_to_unix_ns(ntp: u64) -> u64 {
    let secs = ntp >> 32;
    let fraction = ntp & 0xffff_ffff;
    let secs_since_1900 = if secs & 0x8000_0000 != 0 {
        secs
    } else {
        secs + (1 << 32)
    };
    let Some(unix_secs) = secs_since_1900.checked_sub(NTP_UNIX_OFFSET) else {
        return 0;
    };
    let nanos = (fraction * NANOS_PER_SEC) >> 32;
    unix_secs * NANOS_PER_SEC + nanos
}

/// Displays Unix nanoseconds as UTC, `YYYY-MM-DDTHH:MM:SS.fffffffffZ`, with
/// `digits` fraction digits (0, 3, 6 or 9).
#[derive(Clone, Copy, Debug)]
pub struct Utc {
    /// Nanoseconds since the Unix epoch.
    pub unix_ns: u64,
    /// Fraction digits to show: 0, 3, 6 or 9 (others are clamped to 9).
    pub digits: u8,
}

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.unix_ns / NANOS_PER_SEC;
        let nanos = self.unix_ns % NANOS_PER_SEC;
        let (year, month, day) = civil_from_days(secs / 86_400);
        let rem = secs % 86_400;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )?;
        match self.digits {
            0 => {}
            3 => write!(f, ".{:03}", nanos / 1_000_000)?,
            6 => write!(f, ".{:06}", nanos / 1_000)?,
            _ => write!(f, ".{nanos:09}")?,
        }
        f.write_str("Z")
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`, for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic xorshift64 for test inputs.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn ntp_round_trips_every_nanosecond_between_1970_and_2104() {
        let limit = ((1u64 << 32) + (1u64 << 31) - NTP_UNIX_OFFSET) * NANOS_PER_SEC;
        let mut state = 0x9e37_79b9_7f4a_7c15;
        let mut samples = vec![0, 1, NANOS_PER_SEC - 1, limit - 1];
        samples.extend((0..10_000).map(|_| xorshift(&mut state) % limit));
        for ns in samples {
            assert_eq!(ntp_to_unix_ns(unix_ns_to_ntp(ns)), ns, "{ns}");
        }
    }

    #[test]
    fn ntp_layout_is_seconds_since_1900_and_a_binary_fraction() {
        let ntp = unix_ns_to_ntp(5 * NANOS_PER_SEC + NANOS_PER_SEC / 2);
        assert_eq!(ntp >> 32, NTP_UNIX_OFFSET + 5);
        assert_eq!(ntp & 0xffff_ffff, 1 << 31);
    }

    #[test]
    fn utc_formats_known_instants() {
        let cases = [
            (0, 0, "1970-01-01T00:00:00Z"),
            (951_782_400_123_456_789, 3, "2000-02-29T00:00:00.123Z"),
            (4_102_444_799_000_000_001, 9, "2099-12-31T23:59:59.000000001Z"),
        ];
        for (ns, digits, text) in cases {
            assert_eq!(Utc { unix_ns: ns, digits }.to_string(), text);
        }
    }
}
