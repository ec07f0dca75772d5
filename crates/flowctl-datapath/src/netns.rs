//! Network namespaces: entering one by name for the current thread and
//! naming namespaces by their inode.
//!
//! Only the network namespace is switched (`setns(CLONE_NEWNET)`), never the
//! mount namespace, so `/sys/fs/bpf` stays the host's bpffs.

use std::{
    fs::File,
    os::{fd::AsRawFd, unix::fs::MetadataExt},
    path::{Path, PathBuf},
};

use crate::{Error, Result};

const NETNS_DIRS: [&str; 2] = ["/run/netns", "/var/run/netns"];
const THREAD_NETNS: &str = "/proc/thread-self/ns/net";

/// While alive, the current thread is in another network namespace; drop
/// returns it to the namespace it came from.
#[derive(Debug)]
pub struct NetnsGuard {
    original: File,
}

impl NetnsGuard {
    /// Moves the current thread into the named namespace (`ip netns` name).
    pub fn enter(name: &str) -> Result<Self> {
        Self::enter_path(&netns_path(name)?)
    }

    /// Moves the current thread into the namespace of an nsfs file
    /// (`/run/netns/NAME`, `/proc/PID/ns/net`).
    pub fn enter_path(path: &Path) -> Result<Self> {
        let name = path.display();
        let target = File::open(path).map_err(|e| Error::io(format!("opening {name}"), e))?;
        let original = File::open(THREAD_NETNS).map_err(|e| Error::io("opening own netns", e))?;
        setns(&target).map_err(|e| Error::io(format!("entering network namespace {name}"), e))?;
        Ok(Self { original })
    }

    /// Enters `name` if given; `None` keeps the current namespace.
    pub fn enter_optional(name: Option<&str>) -> Result<Option<Self>> {
        name.map(Self::enter).transpose()
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        if let Err(e) = setns(&self.original) {
            log::error!("cannot return to the original network namespace: {e}");
        }
    }
}

fn setns(ns: &File) -> std::io::Result<()> {
    // SAFETY: plain syscall on a valid fd.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Path of a named namespace, checking that it exists.
pub fn netns_path(name: &str) -> Result<PathBuf> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(Error::UnknownNetns(name.to_string()));
    }
    NETNS_DIRS
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .ok_or_else(|| Error::UnknownNetns(name.to_string()))
}

/// Inode of the current thread's network namespace (what the datapath keys flows by).
pub fn current_netns_ino() -> Result<u32> {
    let md = std::fs::metadata(THREAD_NETNS).map_err(|e| Error::io("reading own netns", e))?;
    Ok(md.ino() as u32)
}

/// The nsfs file of a namespace inode: `/proc/1/ns/net` for the initial
/// namespace or `/run/netns/NAME`.
pub fn netns_file(ino: u32) -> Option<PathBuf> {
    let same = |p: &Path| std::fs::metadata(p).map(|m| m.ino() as u32 == ino).unwrap_or(false);
    let init = Path::new("/proc/1/ns/net");
    if same(init) {
        return Some(init.to_path_buf());
    }
    NETNS_DIRS
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|entries| entries.flatten())
        .map(|e| e.path())
        .find(|p| same(p))
}

/// Human name of a namespace inode: its `ip netns` name, `init` for the
/// initial namespace, or `netns:<inode>`.
pub fn describe_netns(ino: u32) -> String {
    match netns_file(ino) {
        Some(p) if p.starts_with("/proc") => "init".to_string(),
        Some(p) => p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        None => format!("netns:{ino}"),
    }
}
