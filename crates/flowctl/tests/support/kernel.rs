//! What the kernel the tests run on offers.

/// `(major, minor)` of the running kernel.
pub fn version() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut parts = release.trim().split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Whether the kernel has tcx (Linux 6.6).
pub fn has_tcx() -> bool {
    version() >= (6, 6)
}

/// Whether this run is inside the kernel guest (misc/guest), where every
/// module the tests need exists: a test that cannot set up its interfaces
/// there fails instead of skipping.
pub fn in_guest() -> bool {
    std::env::var_os("FLOWCTL_GUEST").is_some()
}

/// The attach modes this kernel can test: tc always, tcx from 6.6.
pub fn attach_modes() -> Vec<&'static str> {
    if has_tcx() {
        vec!["tcx", "tc"]
    } else {
        vec!["tc"]
    }
}
