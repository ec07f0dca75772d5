//! A memory cgroup with a limit, created for one test and removed when
//! dropped: commands started in it have their kernel memory (BPF maps
//! included) charged against that limit.

use std::{
    ffi::CString,
    fs, io,
    os::unix::{ffi::OsStringExt, process::CommandExt},
    path::PathBuf,
    process::Command,
};

/// A memory cgroup (v1 or v2, whichever this machine mounts).
pub struct MemoryCgroup {
    dir: PathBuf,
}

impl MemoryCgroup {
    /// A new cgroup limited to `limit` bytes.
    pub fn new(tag: &str, limit: u64) -> Self {
        let name = format!("flowctl-test-{tag}-{}", std::process::id());
        let (dir, limit_file) = if PathBuf::from("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
            (
                PathBuf::from("/sys/fs/cgroup/memory").join(&name),
                "memory.limit_in_bytes",
            )
        } else {
            let root = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
                .into_iter()
                .map(PathBuf::from)
                .find(|r| fs::read_to_string(r.join("cgroup.subtree_control")).is_ok_and(|c| c.contains("memory")))
                .expect("no memory cgroup controller (v1 or v2) on this machine");
            (root.join(&name), "memory.max")
        };
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join(limit_file), limit.to_string()).unwrap();
        Self { dir }
    }

    /// Makes `command` start inside this cgroup.
    pub fn enter(&self, command: &mut Command) {
        let procs = CString::new(self.dir.join("cgroup.procs").into_os_string().into_vec()).unwrap();
        // SAFETY: between fork and exec the closure only calls open, write
        // and close (async-signal-safe) on a path prepared before the fork.
        unsafe {
            command.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
                if written != 1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        // The processes in it have exited; an empty cgroup is removed.
        let _ = fs::remove_dir(&self.dir);
    }
}
