//! What the tests that run the classifier on chosen CPUs share: pinning
//! the calling thread, and a pin directory removed at the end.

use std::path::PathBuf;

/// Pins the calling thread to `cpu`.
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and
    // sched_setaffinity only touch the set we own (0: this thread).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set), 0);
    }
}

/// A pin directory under /sys/fs/bpf, removed when dropped (test failed
/// or not).
pub struct Pins(pub PathBuf);

impl Pins {
    /// `/sys/fs/bpf/flowctl-test-<name>-<pid>`.
    pub fn new(name: &str) -> Self {
        Self(PathBuf::from(format!(
            "/sys/fs/bpf/flowctl-test-{name}-{}",
            std::process::id()
        )))
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
