//! The `bpf(2)` system call, map info, and the layout check every operation
//! of this module makes before the kernel writes into a Rust buffer.

use std::{
    io,
    mem::size_of,
    os::fd::{AsRawFd, BorrowedFd},
};

/// `enum bpf_cmd` values used here (include/uapi/linux/bpf.h).
pub(crate) mod cmd {
    pub const MAP_CREATE: libc::c_long = 0;
    pub const MAP_LOOKUP_ELEM: libc::c_long = 1;
    pub const MAP_UPDATE_ELEM: libc::c_long = 2;
    pub const MAP_DELETE_ELEM: libc::c_long = 3;
    pub const PROG_LOAD: libc::c_long = 5;
    pub const OBJ_GET: libc::c_long = 7;
    pub const OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    pub const MAP_UPDATE_BATCH: libc::c_long = 26;
    pub const MAP_DELETE_BATCH: libc::c_long = 27;
}

/// `BPF_MAP_TYPE_HASH`.
pub const MAP_TYPE_HASH: u32 = 1;
/// `BPF_MAP_TYPE_ARRAY`.
pub const MAP_TYPE_ARRAY: u32 = 2;
/// `BPF_MAP_TYPE_ARRAY_OF_MAPS`.
pub const MAP_TYPE_ARRAY_OF_MAPS: u32 = 12;
/// `BPF_F_MMAPABLE`: an array user space can mmap.
pub const F_MMAPABLE: u32 = 1 << 10;

/// The head of `union bpf_attr` for `BPF_MAP_CREATE` (the fields used here).
#[repr(C)]
#[derive(Default)]
pub(crate) struct CreateAttr {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub inner_map_fd: u32,
}

/// The head of `union bpf_attr` for the `BPF_MAP_*_ELEM` commands.
#[repr(C)]
#[derive(Default)]
pub(crate) struct ElemAttr {
    pub map_fd: u32,
    pub pad: u32,
    pub key: u64,
    pub value: u64,
    pub flags: u64,
}

/// The head of `union bpf_attr` for the `BPF_MAP_*_BATCH` commands.
#[repr(C)]
#[derive(Default)]
pub(crate) struct BatchAttr {
    pub in_batch: u64,
    pub out_batch: u64,
    pub keys: u64,
    pub values: u64,
    pub count: u32,
    pub map_fd: u32,
    pub elem_flags: u64,
    pub flags: u64,
}

// Checked at compile time: the kernel copies exactly these sizes.
const _: () = assert!(size_of::<ElemAttr>() == 32);
const _: () = assert!(size_of::<BatchAttr>() == 56);

/// Issues `bpf(cmd, attr, sizeof attr)`.
pub(crate) fn bpf<A>(cmd: libc::c_long, attr: &mut A) -> io::Result<()> {
    // SAFETY: attr is a live, writable #[repr(C)] bpf_attr prefix of the
    // given size; the pointers inside it are the caller's responsibility.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut A, size_of::<A>()) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Issues a `bpf(cmd, attr, sizeof attr)` that returns a new descriptor
/// (`BPF_MAP_CREATE`, `BPF_PROG_LOAD`, `BPF_OBJ_GET`).
pub(crate) fn bpf_fd<A>(cmd: libc::c_long, attr: &mut A) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: as in `bpf`.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut A, size_of::<A>()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: these commands return a new descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(rc as i32) })
}

/// Opens the object pinned at `path` (`BPF_OBJ_GET`).
pub(crate) fn obj_get(path: &std::path::Path) -> io::Result<std::os::fd::OwnedFd> {
    #[repr(C)]
    struct ObjAttr {
        pathname: u64,
        bpf_fd: u32,
        file_flags: u32,
    }
    let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut attr = ObjAttr {
        pathname: path.as_ptr() as u64,
        bpf_fd: 0,
        file_flags: 0,
    };
    bpf_fd(cmd::OBJ_GET, &mut attr)
}

/// The head of `struct bpf_map_info`: what the layout check needs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapInfo {
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Kernel map id.
    pub id: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes (one CPU's slot, unrounded, for per-CPU maps).
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// `BPF_F_*` creation flags.
    pub map_flags: u32,
}

#[repr(C)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

impl MapInfo {
    /// Asks the kernel about the map behind `map`.
    pub fn of(map: BorrowedFd<'_>) -> io::Result<Self> {
        let mut info = MapInfo::default();
        let mut attr = InfoAttr {
            bpf_fd: map.as_raw_fd() as u32,
            info_len: size_of::<MapInfo>() as u32,
            info: &mut info as *mut MapInfo as u64,
        };
        bpf(cmd::OBJ_GET_INFO_BY_FD, &mut attr)?;
        Ok(info)
    }

    /// Checks that this is a hash map of keys `K` and values `V`, so that
    /// buffers of `K` and `V` hold what the kernel writes.
    pub fn check_hash<K, V>(&self) -> io::Result<()> {
        self.check(MAP_TYPE_HASH, "hash", 0, size_of::<K>(), size_of::<V>())
    }

    /// Checks that this is a memory-mappable array of values `V`.
    pub fn check_mmapable_array<V>(&self) -> io::Result<()> {
        self.check(
            MAP_TYPE_ARRAY,
            "mmapable array",
            F_MMAPABLE,
            size_of::<u32>(),
            size_of::<V>(),
        )
    }

    fn check(&self, map_type: u32, what: &str, flags: u32, key: usize, value: usize) -> io::Result<()> {
        let invalid = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        if self.map_type != map_type || self.map_flags & flags != flags {
            return invalid(format!(
                "map {} is of type {} (flags {:#x}), not a {what}",
                self.id, self.map_type, self.map_flags
            ));
        }
        if self.key_size as usize != key || self.value_size as usize != value {
            return invalid(format!(
                "map {} has {}-byte keys and {}-byte values, expected {key} and {value}",
                self.id, self.key_size, self.value_size
            ));
        }
        Ok(())
    }
}

/// Number of possible CPUs: the number of per-CPU slots of every value.
pub fn possible_cpus() -> io::Result<usize> {
    aya::util::nr_cpus().map_err(|(what, e)| io::Error::new(e.kind(), format!("reading {what}: {e}")))
}
