//! Linux capabilities: which ones each datapath operation needs, and checking
//! the process has them before it touches the kernel, so that a missing one
//! is named instead of surfacing as an EPERM from deep inside the loader.
//!
//! What the kernel (6.6 to 6.18) checks for what flowctl does:
//!
//! - every `bpf()` command (pinned maps, pinned links, program info), with
//!   `kernel.unprivileged_bpf_disabled` set as distributions ship it:
//!   CAP_BPF;
//! - loading a `sched_cls` program: CAP_BPF and CAP_NET_ADMIN. The classifier
//!   reads headers straight from the packet only at constant offsets (a
//!   variable packet offset would need CAP_PERFMON), everything else with
//!   `bpf_skb_load_bytes`, and its clock helpers (`bpf_jiffies64`,
//!   `bpf_ktime_get_boot_ns`) are allowed with CAP_BPF, so CAP_PERFMON is not
//!   required. Without it the verifier adds Spectre v1/v4 mitigations to the
//!   program (a somewhat larger program), so it is recommended but not
//!   checked;
//! - entering another network namespace (`setns`): CAP_SYS_ADMIN;
//! - mounting bpffs when nothing is mounted at `/sys/fs/bpf`: CAP_SYS_ADMIN.
//!
//! CAP_SYS_ADMIN stands in for CAP_BPF, CAP_PERFMON and, for loading
//! networking programs, CAP_NET_ADMIN (the kernel accepts it in their place).

use std::{fmt, path::Path};

use crate::{pins, PinLayout};

/// A capability flowctl may need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// `bpf()`: maps, programs, links, pins.
    Bpf,
    /// Loading and attaching networking programs.
    NetAdmin,
    /// Verifier without Spectre mitigations (recommended, never required).
    Perfmon,
    /// `setns` into another network namespace, mounting bpffs.
    SysAdmin,
}

impl Capability {
    /// The capability's number (`linux/capability.h`).
    pub const fn number(self) -> u32 {
        match self {
            Capability::NetAdmin => 12,
            Capability::SysAdmin => 21,
            Capability::Perfmon => 38,
            Capability::Bpf => 39,
        }
    }

    /// The capability's name, e.g. `CAP_BPF`.
    pub const fn name(self) -> &'static str {
        match self {
            Capability::Bpf => "CAP_BPF",
            Capability::NetAdmin => "CAP_NET_ADMIN",
            Capability::Perfmon => "CAP_PERFMON",
            Capability::SysAdmin => "CAP_SYS_ADMIN",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A capability set: bit `n` is capability number `n`, as in the `CapEff`
/// line of `/proc/<pid>/status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSet(u64);

impl CapSet {
    /// The set with exactly these bits.
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// The set with exactly these capabilities.
    pub fn of(caps: &[Capability]) -> Self {
        Self(caps.iter().fold(0, |bits, c| bits | 1 << c.number()))
    }

    /// The calling thread's effective set, `None` if `/proc` cannot tell.
    pub fn effective() -> Option<Self> {
        let status = std::fs::read_to_string("/proc/thread-self/status")
            .or_else(|_| std::fs::read_to_string("/proc/self/status"))
            .ok()?;
        Self::from_status(&status)
    }

    /// The `CapEff` line of a `/proc/<pid>/status` text.
    pub fn from_status(status: &str) -> Option<Self> {
        let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
        u64::from_str_radix(hex, 16).ok().map(Self)
    }

    /// Whether the set holds exactly this capability.
    pub fn has(self, cap: Capability) -> bool {
        self.0 & (1 << cap.number()) != 0
    }

    /// Whether the kernel grants what `cap` guards: CAP_SYS_ADMIN stands in
    /// for the others.
    pub fn allows(self, cap: Capability) -> bool {
        self.has(cap) || self.has(Capability::SysAdmin)
    }
}

/// What an operation does that the kernel guards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Uses `bpf()`: pinned maps or links (CAP_BPF).
    pub bpf: bool,
    /// Loads and attaches the classifier (CAP_BPF and CAP_NET_ADMIN).
    pub attach: bool,
    /// Enters another network namespace (CAP_SYS_ADMIN).
    pub enter_netns: bool,
    /// Mounts bpffs (CAP_SYS_ADMIN).
    pub mount_bpffs: bool,
}

impl Needs {
    /// Reading or clearing the pinned cache, detaching.
    pub const PINS: Needs = Needs {
        bpf: true,
        attach: false,
        enter_netns: false,
        mount_bpffs: false,
    };

    /// Loading and attaching the classifier.
    pub const ATTACH: Needs = Needs {
        bpf: true,
        attach: true,
        enter_netns: false,
        mount_bpffs: false,
    };

    /// These needs, plus mounting bpffs when `layout` lives under
    /// `/sys/fs/bpf` and no bpffs is mounted there (what
    /// [`PinLayout::prepare`] would do).
    pub fn preparing(self, layout: &PinLayout) -> Self {
        let bpffs = Path::new(pins::BPFFS);
        Self {
            mount_bpffs: self.mount_bpffs || (layout.root().starts_with(bpffs) && !pins::is_bpffs(bpffs)),
            ..self
        }
    }

    /// Every capability this needs, each with the reason, in the order they are checked.
    pub fn required(&self) -> Vec<(Capability, &'static str)> {
        let mut out = Vec::new();
        if self.bpf || self.attach {
            out.push((Capability::Bpf, ""));
        }
        if self.attach {
            out.push((Capability::NetAdmin, ""));
        }
        if self.enter_netns {
            out.push((Capability::SysAdmin, "to enter another network namespace"));
        } else if self.mount_bpffs {
            out.push((Capability::SysAdmin, "to mount bpffs at /sys/fs/bpf"));
        }
        out
    }

    /// Checks `have` against what this needs; the error names the first
    /// missing capability and every capability to grant.
    pub fn check(&self, have: CapSet) -> Result<(), MissingCapability> {
        let required = self.required();
        match required.iter().find(|(cap, _)| !have.allows(*cap)) {
            None => Ok(()),
            Some(&(missing, reason)) => Err(MissingCapability {
                missing,
                reason,
                grant: required.iter().map(|(c, _)| *c).collect(),
            }),
        }
    }

    /// Checks the calling thread's effective set. When `/proc` cannot be
    /// read the check is skipped and the kernel decides.
    pub fn check_current(&self) -> Result<(), MissingCapability> {
        match CapSet::effective() {
            Some(have) => self.check(have),
            None => {
                log::debug!("cannot read the effective capabilities; skipping the check");
                Ok(())
            }
        }
    }
}

/// A capability the process lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingCapability {
    /// The first missing capability.
    pub missing: Capability,
    /// Why it is needed, when not obvious (may be empty).
    pub reason: &'static str,
    /// Everything the operation needs.
    pub grant: Vec<Capability>,
}

impl fmt::Display for MissingCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "missing capability {}", self.missing)?;
        if !self.reason.is_empty() {
            write!(f, " {}", self.reason)?;
        }
        let grant: Vec<&str> = self.grant.iter().map(|c| c.name()).collect();
        write!(f, " (run as root or grant {})", grant.join(", "))
    }
}

impl std::error::Error for MissingCapability {}

#[cfg(test)]
mod tests {
    use super::*;
    use Capability::*;

    #[test]
    fn parses_cap_eff_from_proc_status() {
        let status = "Name:\tflowctl\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t0000008000001000\nCapBnd:\t000001ffffffffff\n";
        let set = CapSet::from_status(status).unwrap();
        assert_eq!(set, CapSet::of(&[Bpf, NetAdmin]));
        assert!(set.has(Bpf) && set.has(NetAdmin) && !set.has(Perfmon) && !set.has(SysAdmin));
        assert_eq!(CapSet::from_status("Name:\tx\n"), None);
        assert_eq!(CapSet::from_status("CapEff:\tzz\n"), None);
    }

    #[test]
    fn this_process_has_a_readable_effective_set() {
        let from_proc = CapSet::effective().expect("/proc/thread-self/status");
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert_eq!(Some(from_proc), CapSet::from_status(&status));
    }

    #[test]
    fn sys_admin_stands_in_for_the_others() {
        let sys_admin = CapSet::of(&[SysAdmin]);
        for cap in [Bpf, NetAdmin, Perfmon, SysAdmin] {
            assert!(sys_admin.allows(cap), "{cap}");
        }
        assert_eq!(Needs::ATTACH.check(sys_admin), Ok(()));
        assert!(!CapSet::of(&[NetAdmin]).allows(Bpf));
    }

    #[test]
    fn names_the_first_missing_capability_and_everything_to_grant() {
        let err = Needs::ATTACH.check(CapSet::of(&[NetAdmin, Perfmon])).unwrap_err();
        assert_eq!(err.missing, Bpf);
        assert_eq!(
            err.to_string(),
            "missing capability CAP_BPF (run as root or grant CAP_BPF, CAP_NET_ADMIN)"
        );
        let err = Needs::ATTACH.check(CapSet::of(&[Bpf])).unwrap_err();
        assert_eq!(err.missing, NetAdmin);
        assert_eq!(Needs::ATTACH.check(CapSet::of(&[Bpf, NetAdmin])), Ok(()));
        assert_eq!(Needs::PINS.check(CapSet::of(&[Bpf])), Ok(()));
        assert_eq!(Needs::PINS.check(CapSet::default()).unwrap_err().grant, vec![Bpf]);
    }

    #[test]
    fn entering_a_namespace_or_mounting_bpffs_needs_sys_admin() {
        let in_netns = Needs {
            enter_netns: true,
            ..Needs::ATTACH
        };
        let err = in_netns.check(CapSet::of(&[Bpf, NetAdmin, Perfmon])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing capability CAP_SYS_ADMIN to enter another network namespace \
             (run as root or grant CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)"
        );
        let mount = Needs {
            mount_bpffs: true,
            ..Needs::PINS
        };
        assert_eq!(mount.check(CapSet::of(&[Bpf])).unwrap_err().missing, SysAdmin);
        assert_eq!(mount.check(CapSet::of(&[SysAdmin])), Ok(()));
        assert_eq!(Needs::default().check(CapSet::default()), Ok(()));
    }

    #[test]
    fn mounting_bpffs_is_needed_only_for_pins_under_an_unmounted_sys_fs_bpf() {
        let elsewhere = Needs::ATTACH.preparing(&PinLayout::under("/tmp/flowctl-pins"));
        assert_eq!(elsewhere, Needs::ATTACH);
        let default = Needs::ATTACH.preparing(&PinLayout::default());
        assert_eq!(default.mount_bpffs, !pins::is_bpffs(Path::new(pins::BPFFS)));
    }
}
