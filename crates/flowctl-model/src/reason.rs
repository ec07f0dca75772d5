//! Why a flow record was made: IPFIX `flowEndReason` (IE 136).

use std::fmt;

/// IPFIX `flowEndReason` (IE 136) values, RFC 5102 §5.11.3 and the IANA
/// registry: the complete list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(u8)]
pub enum EndReason {
    /// No packet for the idle timeout (the default of a record built field
    /// by field).
    #[default]
    IdleTimeout = 1,
    /// Still active; reported because the active timeout elapsed.
    ActiveTimeout = 2,
    /// End of flow detected (TCP FIN or RST, after the grace period).
    EndOfFlow = 3,
    /// Forced end: flush or shutdown.
    ForcedEnd = 4,
    /// The flow cache was nearly full.
    LackOfResources = 5,
}

impl EndReason {
    /// Every reason, in value order.
    pub const ALL: [EndReason; 5] = [
        EndReason::IdleTimeout,
        EndReason::ActiveTimeout,
        EndReason::EndOfFlow,
        EndReason::ForcedEnd,
        EndReason::LackOfResources,
    ];

    /// The IPFIX value.
    pub fn value(self) -> u8 {
        self as u8
    }

    /// The reason of an IPFIX value, `None` for values IANA does not define.
    pub fn from_value(value: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.value() == value)
    }

    /// Short label, as metrics and logs show it: `idle`, `active`, `end`,
    /// `forced`, `lack_of_resources`.
    pub fn label(self) -> &'static str {
        match self {
            EndReason::IdleTimeout => "idle",
            EndReason::ActiveTimeout => "active",
            EndReason::EndOfFlow => "end",
            EndReason::ForcedEnd => "forced",
            EndReason::LackOfResources => "lack_of_resources",
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A count per [`EndReason`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReasonCounts([u64; 5]);

impl ReasonCounts {
    /// Adds `n` to `reason`'s count.
    pub fn add(&mut self, reason: EndReason, n: u64) {
        self.0[usize::from(reason.value() - 1)] += n;
    }

    /// The count of `reason`.
    pub fn get(&self, reason: EndReason) -> u64 {
        self.0[usize::from(reason.value() - 1)]
    }

    /// The sum over every reason.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Every reason with its count, in value order.
    pub fn iter(&self) -> impl Iterator<Item = (EndReason, u64)> + '_ {
        EndReason::ALL.into_iter().map(|r| (r, self.get(r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_unknown_values_are_refused() {
        for r in EndReason::ALL {
            assert_eq!(EndReason::from_value(r.value()), Some(r));
        }
        assert_eq!(EndReason::from_value(0), None);
        assert_eq!(EndReason::from_value(6), None);
        assert_eq!(EndReason::LackOfResources.value(), 5);
    }

    #[test]
    fn counts_are_kept_per_reason() {
        let mut c = ReasonCounts::default();
        c.add(EndReason::EndOfFlow, 3);
        c.add(EndReason::LackOfResources, 2);
        assert_eq!((c.get(EndReason::EndOfFlow), c.get(EndReason::IdleTimeout)), (3, 0));
        assert_eq!(c.total(), 5);
        assert_eq!(c.iter().filter(|(_, n)| *n > 0).count(), 2);
    }
}
