//! Packet selection (sampling) of an attachment: 1 packet in N, at random or
//! count-based, and how it is carried in flow keys and described to
//! collectors (IPFIX selector options records, RFC 5476 / RFC 7014 PSAMP
//! semantics, and the older NetFlow v9 `samplingInterval` and
//! `samplingAlgorithm`).

use core::fmt;
use core::str::FromStr;

/// Largest sampling interval: 2^24 (1 packet in 16,777,216).
pub const MAX_SAMPLE_INTERVAL: u32 = 1 << 24;
/// Set in [`FlowKey::sampling`](crate::FlowKey::sampling) when the selection
/// is random (`FLOWCTL_SAMPLING_RANDOM`).
pub const SAMPLING_RANDOM: u32 = 1 << 31;
/// The interval bits of a sampling word (`FLOWCTL_SAMPLING_INTERVAL_MASK`).
pub const SAMPLING_INTERVAL_MASK: u32 = 0x01ff_ffff;

/// How packets are selected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SampleMode {
    /// Each packet is selected with probability 1/N (`bpf_get_prandom_u32`).
    #[default]
    Random,
    /// Every Nth packet on each CPU.
    Deterministic,
}

impl fmt::Display for SampleMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SampleMode::Random => "random",
            SampleMode::Deterministic => "deterministic",
        })
    }
}

impl FromStr for SampleMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "random" => Ok(SampleMode::Random),
            "deterministic" => Ok(SampleMode::Deterministic),
            other => Err(format!(
                "unknown sampling mode {other:?} (expected random, deterministic)"
            )),
        }
    }
}

/// The packet selection of one attachment: 1 packet in `interval`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sampling {
    /// N: one packet in N is metered; 0 and 1 meter every packet.
    pub interval: u32,
    /// How the packets are selected (no meaning when every packet is).
    pub mode: SampleMode,
}

/// `selectorAlgorithm` (IPFIX IE 304, IANA "Packet Selection Method")
/// value: systematic count-based sampling.
pub const SELECTOR_SYSTEMATIC_COUNT: u64 = 1;
/// `selectorAlgorithm` value: random n-out-of-N sampling.
pub const SELECTOR_RANDOM_N_OUT_OF_N: u64 = 3;
/// `samplingAlgorithm` (IE 35, NetFlow v9) value: deterministic.
pub const SAMPLING_ALGORITHM_DETERMINISTIC: u64 = 1;
/// `samplingAlgorithm` value: random.
pub const SAMPLING_ALGORITHM_RANDOM: u64 = 2;

impl Sampling {
    /// Every packet.
    pub const NONE: Sampling = Sampling {
        interval: 1,
        mode: SampleMode::Deterministic,
    };

    /// One packet in `interval`, checked: 1..=[`MAX_SAMPLE_INTERVAL`].
    pub fn new(interval: u32, mode: SampleMode) -> Result<Self, String> {
        if !(1..=MAX_SAMPLE_INTERVAL).contains(&interval) {
            return Err(format!(
                "sampling interval {interval} is out of range (1 to {MAX_SAMPLE_INTERVAL})"
            ));
        }
        Ok(Self { interval, mode })
    }

    /// Whether packets are passed over (an interval of 2 or more).
    pub fn is_sampled(&self) -> bool {
        self.interval > 1
    }

    /// What the flows of the attachment carry in
    /// [`FlowKey::sampling`](crate::FlowKey::sampling): 0 for every packet,
    /// else the interval, with [`SAMPLING_RANDOM`] for random selection.
    pub fn word(&self) -> u32 {
        match (self.is_sampled(), self.mode) {
            (false, _) => 0,
            (true, SampleMode::Deterministic) => self.interval & SAMPLING_INTERVAL_MASK,
            (true, SampleMode::Random) => (self.interval & SAMPLING_INTERVAL_MASK) | SAMPLING_RANDOM,
        }
    }

    /// What the flows of the attachment carry in
    /// [`FlowKey::sampling_tag`](crate::FlowKey::sampling_tag): 0 for every
    /// packet, else 1..=255 from a hash of the [`Sampling::word`].
    pub fn tag(&self) -> u8 {
        let word = self.word();
        if word == 0 {
            return 0;
        }
        (1 + (word.wrapping_mul(0x9e37_79b1) >> 16) % 255) as u8
    }

    /// The sampling a [`Sampling::word`] stands for.
    pub fn from_word(word: u32) -> Self {
        let interval = word & SAMPLING_INTERVAL_MASK;
        if interval <= 1 {
            return Self::NONE;
        }
        let mode = if word & SAMPLING_RANDOM != 0 {
            SampleMode::Random
        } else {
            SampleMode::Deterministic
        };
        Self { interval, mode }
    }

    /// The random selection threshold the datapath compares
    /// `bpf_get_prandom_u32()` with: round(2^32 / N), so a packet is
    /// selected with probability 1/N (to within 2^-33 absolute); 0 for
    /// count-based selection or every packet.
    pub fn threshold(&self) -> u32 {
        if !self.is_sampled() || self.mode == SampleMode::Deterministic {
            return 0;
        }
        let n = u64::from(self.interval);
        (((1u64 << 32) + n / 2) / n) as u32
    }

    /// `selectorId` (IPFIX IE 302) of this selection in the selector options
    /// records and in flow records: the [`Sampling::word`], 1 for every
    /// packet. So deterministic 1:N is N, random 1:N is 2^31 + N, and
    /// never 0.
    pub fn selector_id(&self) -> u64 {
        u64::from(self.word().max(1))
    }

    /// `selectorAlgorithm` (IE 304): random n-out-of-N (3) for random
    /// selection, systematic count-based (1) otherwise (every packet is
    /// count-based with interval 1, space 0).
    pub fn selector_algorithm(&self) -> u64 {
        if self.is_sampled() && self.mode == SampleMode::Random {
            SELECTOR_RANDOM_N_OUT_OF_N
        } else {
            SELECTOR_SYSTEMATIC_COUNT
        }
    }

    /// The interval as collectors read it: `samplingInterval` (IE 34), N; 1
    /// for every packet.
    pub fn packets_per_sample(&self) -> u32 {
        self.interval.max(1)
    }

    /// `samplingPacketInterval` (IE 305): 1 packet selected ...
    pub fn packet_interval(&self) -> u32 {
        1
    }

    /// ... then `samplingPacketSpace` (IE 306) packets passed over: N - 1.
    pub fn packet_space(&self) -> u32 {
        self.packets_per_sample() - 1
    }

    /// `samplingAlgorithm` (IE 35, NetFlow v9): 2 random, 1 deterministic.
    pub fn sampling_algorithm(&self) -> u64 {
        if self.is_sampled() && self.mode == SampleMode::Random {
            SAMPLING_ALGORITHM_RANDOM
        } else {
            SAMPLING_ALGORITHM_DETERMINISTIC
        }
    }
}

impl fmt::Display for Sampling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_sampled() {
            write!(f, "1:{} {}", self.interval, self.mode)
        } else {
            f.write_str("every packet")
        }
    }
}

/// The per-CPU state of an attachment's count-based selection
/// (`struct sampler`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sampler {
    /// Packets passed over since the last one selected.
    pub count: u32,
    /// The attachment's [`Sampling::word`] (for `flowctl status`).
    pub sampling: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_name_selectors() {
        for s in [
            Sampling::new(100, SampleMode::Random).unwrap(),
            Sampling::new(100, SampleMode::Deterministic).unwrap(),
            Sampling::new(MAX_SAMPLE_INTERVAL, SampleMode::Random).unwrap(),
        ] {
            assert_eq!(Sampling::from_word(s.word()), s);
        }
        let none = Sampling::new(1, SampleMode::Random).unwrap();
        assert_eq!((none.word(), none.selector_id(), none.packet_space()), (0, 1, 0));
        assert_eq!(Sampling::from_word(0), Sampling::NONE);
        assert_eq!(none.tag(), 0);
        let tags: std::collections::BTreeSet<u8> = (2..2000)
            .flat_map(|n| [SampleMode::Random, SampleMode::Deterministic].map(|m| Sampling::new(n, m).unwrap().tag()))
            .collect();
        assert!(
            !tags.contains(&0) && tags.len() > 200,
            "tags spread over 1..=255: {}",
            tags.len()
        );
        let det = Sampling::new(100, SampleMode::Deterministic).unwrap();
        assert_eq!(
            (det.selector_id(), det.selector_algorithm(), det.sampling_algorithm()),
            (100, 1, 1)
        );
        let rnd = Sampling::new(100, SampleMode::Random).unwrap();
        assert_eq!(rnd.selector_id(), (1 << 31) + 100);
        assert_eq!((rnd.selector_algorithm(), rnd.sampling_algorithm()), (3, 2));
        assert_eq!(
            (rnd.packet_interval(), rnd.packet_space(), rnd.packets_per_sample()),
            (1, 99, 100)
        );
    }

    #[test]
    fn out_of_range_intervals_are_refused() {
        assert!(Sampling::new(0, SampleMode::Random).is_err());
        assert!(Sampling::new(MAX_SAMPLE_INTERVAL + 1, SampleMode::Random).is_err());
        assert_eq!(
            "sometimes".parse::<SampleMode>().unwrap_err(),
            "unknown sampling mode \"sometimes\" (expected random, deterministic)"
        );
    }

    #[test]
    fn the_threshold_selects_one_in_n() {
        let t = |n| Sampling::new(n, SampleMode::Random).unwrap().threshold();
        assert_eq!(t(2), 1 << 31);
        assert_eq!(t(100), 42_949_673);
        assert_eq!(t(1), 0, "every packet: no test at all");
        assert_eq!(Sampling::new(100, SampleMode::Deterministic).unwrap().threshold(), 0);
        assert_eq!(t(MAX_SAMPLE_INTERVAL), 256);
    }
}
