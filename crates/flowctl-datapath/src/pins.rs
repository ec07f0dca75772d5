//! Where flowctl keeps its objects in bpffs, and making sure bpffs is there.
//!
//! ```text
//! /sys/fs/bpf/flowctl/                 0700
//! └── v<LAYOUT_VERSION>/               0700, one per map layout
//!     ├── flowctl_flows                flow hash: key -> slot (pinned map)
//!     ├── flowctl_slots                flow slots (pinned, memory-mappable array)
//!     ├── flowctl_ring                 ring of free slots (pinned, memory-mappable array)
//!     ├── flowctl_ringctl              the ring's positions (pinned, memory-mappable array)
//!     ├── flowctl_spare                per-CPU spare slots (pinned map)
//!     ├── flowctl_front                the CPUs' front caches (pinned array)
//!     ├── flowctl_stats                per-CPU datapath counters (pinned map)
//!     └── links/<netns inode>/<ifindex>-<ingress|egress>   pinned tcx links
//! ```

use std::{
    ffi::CString,
    fs,
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
};

use flowctl_model::{COUNTERS_MAP, FLOWS_MAP, FRONT_MAP, LAYOUT_VERSION, RINGCTL_MAP, RING_MAP, SLOTS_MAP, SPARE_MAP};

use crate::{Direction, Error, Result};

/// Default bpffs mount point.
pub const BPFFS: &str = "/sys/fs/bpf";
const BPF_FS_MAGIC: i64 = 0xcafe4a11;

/// The pin directory tree of one flowctl layout version.
#[derive(Clone, Debug)]
pub struct PinLayout {
    root: PathBuf,
}

/// Default base directory of flowctl's pins.
pub const DEFAULT_PIN_BASE: &str = "/sys/fs/bpf/flowctl";

impl Default for PinLayout {
    fn default() -> Self {
        Self::under(DEFAULT_PIN_BASE)
    }
}

impl PinLayout {
    /// A layout rooted at `base/v<LAYOUT_VERSION>` (`base` is usually `/sys/fs/bpf/flowctl`).
    pub fn under(base: impl AsRef<Path>) -> Self {
        Self {
            root: base.as_ref().join(format!("v{LAYOUT_VERSION}")),
        }
    }

    /// The versioned directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Pin path of the flow hash map.
    pub fn flows_map(&self) -> PathBuf {
        self.root.join(FLOWS_MAP)
    }

    /// Pin path of the flow slots.
    pub fn slots_map(&self) -> PathBuf {
        self.root.join(SLOTS_MAP)
    }

    /// Pin path of the ring of free slots.
    pub fn ring_map(&self) -> PathBuf {
        self.root.join(RING_MAP)
    }

    /// Pin path of the ring's positions.
    pub fn ringctl_map(&self) -> PathBuf {
        self.root.join(RINGCTL_MAP)
    }

    /// Pin path of the per-CPU spare slots.
    pub fn spare_map(&self) -> PathBuf {
        self.root.join(SPARE_MAP)
    }

    /// Pin path of the CPUs' front caches.
    pub fn front_map(&self) -> PathBuf {
        self.root.join(FRONT_MAP)
    }

    /// Pin path of the datapath counters map.
    pub fn counters_map(&self) -> PathBuf {
        self.root.join(COUNTERS_MAP)
    }

    /// Directory holding the link pins of all network namespaces.
    pub fn links_dir(&self) -> PathBuf {
        self.root.join("links")
    }

    /// Pin path of the link of one attachment.
    pub fn link(&self, netns_ino: u32, ifindex: u32, direction: Direction) -> PathBuf {
        self.links_dir()
            .join(netns_ino.to_string())
            .join(format!("{ifindex}-{direction}"))
    }

    /// Mounts bpffs if needed and creates the directories (mode 0700).
    pub fn prepare(&self) -> Result<()> {
        if self.root.starts_with(BPFFS) {
            ensure_bpffs(Path::new(BPFFS))?;
        }
        for dir in [self.root.parent().unwrap_or(&self.root), &self.root, &self.links_dir()] {
            create_private_dir(dir)?;
        }
        Ok(())
    }
}

/// Creates `dir` with mode 0700, or tightens an existing one to 0700.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io(format!("setting mode 0700 on {}", dir.display()), e))
}

/// Mounts bpffs at `mount_point` unless a bpffs is already mounted there.
pub fn ensure_bpffs(mount_point: &Path) -> Result<()> {
    if is_bpffs(mount_point) {
        return Ok(());
    }
    fs::create_dir_all(mount_point).map_err(|e| Error::io(format!("creating {}", mount_point.display()), e))?;
    let target = CString::new(mount_point.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::io("bpffs path", std::io::ErrorKind::InvalidInput.into()))?;
    // SAFETY: all pointers are valid NUL-terminated strings; data is null.
    let rc = unsafe { libc::mount(c"bpf".as_ptr(), target.as_ptr(), c"bpf".as_ptr(), 0, std::ptr::null()) };
    if rc != 0 {
        return Err(Error::io(
            format!("mounting bpffs at {}", mount_point.display()),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Whether a bpffs is mounted at `path`.
pub fn is_bpffs(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs is a plain C struct of integers; all zeroes is valid.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and statfs only writes into `st`,
    // which we own.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    rc == 0 && st.f_type as i64 == BPF_FS_MAGIC
}
