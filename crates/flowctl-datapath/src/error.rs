//! Errors of the datapath layer, each a clear one-line message.

use std::{io, path::PathBuf};

/// Everything that can go wrong loading, attaching or reading the datapath.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller lacks the privileges the operation needs.
    #[error("permission denied while {action}: flowctl needs root (CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN to mount bpffs)")]
    PermissionDenied {
        /// What was being done.
        action: String,
    },
    /// No interface of that name exists in the network namespace.
    #[error("interface {name:?} not found in {netns}")]
    UnknownInterface {
        /// Interface name as given.
        name: String,
        /// Human-readable netns description.
        netns: String,
    },
    /// No network namespace of that name exists.
    #[error("network namespace {0:?} not found (looked in /var/run/netns)")]
    UnknownNetns(String),
    /// The flow cache is not pinned: nothing was ever attached.
    #[error("flowctl is not attached anywhere: no flow cache pinned at {}", .0.display())]
    NotAttached(PathBuf),
    /// The interface carries packets flowctl cannot parse.
    #[error("interface {interface} has link type {link_type}: flowctl parses Ethernet and bare IP (tun, WireGuard, ip tunnels, ppp) interfaces only")]
    UnsupportedLinkType {
        /// Interface name.
        interface: String,
        /// Its ARPHRD link type, as rtnetlink names it.
        link_type: String,
    },
    /// The kernel lacks something flowctl needs.
    #[error("this kernel ({kernel}) lacks {feature}, which flowctl needs (Linux {since} or newer)")]
    KernelTooOld {
        /// Running kernel release.
        kernel: String,
        /// What is missing.
        feature: &'static str,
        /// First Linux release that has it.
        since: &'static str,
    },
    /// tcx was asked for on a kernel without it.
    #[error("tcx needs Linux 6.6 or newer (this kernel: {kernel}); use --attach-mode tc or auto")]
    TcxUnavailable {
        /// Running kernel version.
        kernel: String,
    },
    /// The interface has no flowctl program in that direction.
    #[error("flowctl is not attached to {interface} ({direction})")]
    NotAttachedTo {
        /// Interface name.
        interface: String,
        /// ingress or egress.
        direction: String,
    },
    /// A pinned map exists but was built with another layout.
    #[error("pinned map {} has {what} {found}, this build expects {expected}; detach everything (flowctl detach --all) and attach again", path.display())]
    LayoutMismatch {
        /// Pin path of the map.
        path: PathBuf,
        /// Which property differs.
        what: &'static str,
        /// Value found in the kernel.
        found: u32,
        /// Value this build needs.
        expected: u32,
    },
    /// The pinned flow cache has a different size than requested.
    #[error("the pinned flow cache holds {found} flows but --max-flows {requested} was requested; detach everything first to resize it")]
    MaxFlowsMismatch {
        /// Size of the pinned map.
        found: u32,
        /// Size requested.
        requested: u32,
    },
    /// More flows than any cache may hold were asked for.
    #[error("maxFlows {requested} is above the limit of {limit} flows")]
    MaxFlowsTooLarge {
        /// Size requested.
        requested: u32,
        /// The limit.
        limit: u32,
    },
    /// The cache would take more memory than the machine can spare.
    #[error("a flow cache of {max_flows} flows takes about {mib} MiB of kernel memory with {cpus} CPUs, more than half of the {available_mib} MiB available ({bound}); lower maxFlows")]
    CacheTooLarge {
        /// Size requested.
        max_flows: u32,
        /// Possible CPUs (one value per CPU per flow).
        cpus: usize,
        /// Estimated size of the cache.
        mib: u64,
        /// Memory available.
        available_mib: u64,
        /// Where the bound on available memory comes from.
        bound: String,
    },
    /// Another process ends the flows of this cache.
    #[error("another flowctl process (the agent, or a flush) is ending the flows of the cache under {}; stop it first, or go through the agent", .0.display())]
    CacheBusy(PathBuf),
    /// Ending flows was asked of a table opened for reading only.
    #[error("the flow cache was opened for reading only")]
    NotWriter,
    /// The kernel's verifier refused a program.
    #[error(
        "the kernel's verifier refused {program} ({errno}): {reason}; please report it with the output of `uname -r`"
    )]
    VerifierRefused {
        /// The program.
        program: String,
        /// The error of BPF_PROG_LOAD.
        errno: String,
        /// The verifier's last message.
        reason: String,
    },
    /// A kernel or bpffs operation failed.
    #[error("{action}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// Underlying error.
        source: io::Error,
    },
    /// An aya operation failed.
    #[error("{action}: {message}")]
    Bpf {
        /// What was being done.
        action: String,
        /// Flattened aya error chain.
        message: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error, mapping EPERM/EACCES to [`Error::PermissionDenied`].
    pub fn io(action: impl Into<String>, source: io::Error) -> Self {
        let action = action.into();
        match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => Error::PermissionDenied { action },
            _ => Error::Io { action, source },
        }
    }

    /// A program the kernel refused to load: the verifier's own reason
    /// when it gave one (a refusal is EACCES or EINVAL, which must not read
    /// as a missing privilege), else what [`Error::bpf`] makes of it.
    pub fn program_load(program: &str, err: aya::programs::ProgramError) -> Self {
        if let aya::programs::ProgramError::LoadError { io_error, verifier_log } = &err {
            log::debug!("the verifier's log of {program}:\n{verifier_log}");
            if let Some(reason) = verifier_reason(&verifier_log.to_string()) {
                return Error::VerifierRefused {
                    program: program.to_string(),
                    errno: io_error.to_string(),
                    reason,
                };
            }
        }
        Error::bpf(format!("verifying {program}"), err)
    }

    /// Wraps any aya error, flattening its source chain into one line and
    /// mapping permission failures to [`Error::PermissionDenied`].
    pub fn bpf(action: impl Into<String>, err: impl std::error::Error) -> Self {
        let action = action.into();
        let mut message = err.to_string();
        let mut source = err.source();
        let mut denied = false;
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<io::Error>() {
                denied |= matches!(io.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES));
            }
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        if denied || message.contains("Operation not permitted") {
            return Error::PermissionDenied { action };
        }
        Error::Bpf { action, message }
    }
}

/// The line of a verifier log that says why it refused the program: the
/// last one that is not statistics; `None` for an empty log.
fn verifier_reason(log: &str) -> Option<String> {
    const STATS: [&str; 5] = [
        "processed ",
        "verification time",
        "stack depth",
        "-- END",
        "max_states_per_insn",
    ];
    log.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !STATS.iter().any(|s| l.starts_with(s)))
        .map(str::to_string)
}

#[cfg(test)]
mod verifier_tests {
    use super::verifier_reason;

    #[test]
    fn the_reason_is_the_last_line_before_the_statistics() {
        let log = "func#0 @0\n1433: (63) *(u32 *)(r10 -40) = r6\nattempt to corrupt spilled pointer on stack\nverification time 26433 usec\nstack depth 56\nprocessed 3734 insns (limit 1000000) max_states_per_insn 4\n";
        assert_eq!(
            verifier_reason(log).as_deref(),
            Some("attempt to corrupt spilled pointer on stack")
        );
        assert_eq!(verifier_reason(""), None);
        assert_eq!(verifier_reason("\nverification time 1 usec\n"), None);
    }
}
