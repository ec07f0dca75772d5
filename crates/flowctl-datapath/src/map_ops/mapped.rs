//! A memory-mappable BPF array (`BPF_F_MMAPABLE`, Linux >= 5.5) mapped into
//! this process: the flow slots, the ring of free slots and its positions
//! are read and written in place, shared with the datapath, without a
//! system call per element.

use std::{
    io,
    marker::PhantomData,
    mem::size_of,
    os::fd::{AsRawFd, BorrowedFd},
    ptr::NonNull,
};

use super::sys::MapInfo;

/// An array of `T` shared with the kernel. Its elements are written by
/// eBPF programs at any time: they are only ever accessed through raw
/// pointers and atomics, never through references.
pub struct MappedArray<T> {
    base: NonNull<T>,
    len: usize,
    bytes: usize,
    value: PhantomData<T>,
}

// SAFETY: the mapping is plain shared memory; every access goes through raw
// pointers with atomic operations, so sharing the handle between threads
// adds nothing the datapath does not already do.
unsafe impl<T> Send for MappedArray<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for MappedArray<T> {}

impl<T> MappedArray<T> {
    /// Maps the array behind `map`, after checking it is a mappable array
    /// of `T` (whose size must be a multiple of 8, as the kernel lays
    /// elements out).
    pub fn new(map: BorrowedFd<'_>) -> io::Result<Self> {
        let info = MapInfo::of(map)?;
        info.check_mmapable_array::<T>()?;
        // The kernel lays elements out in strides rounded up to 8 bytes.
        let stride = size_of::<T>();
        if stride == 0 || !stride.is_multiple_of(8) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{stride}-byte elements are not laid out contiguously"),
            ));
        }
        let len = info.max_entries as usize;
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let bytes = (len * stride).next_multiple_of(page);
        // SAFETY: mapping a BPF array fd: the kernel checks the length and
        // offset against the map and returns either a valid shared mapping
        // of `bytes` bytes or MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(ptr.cast::<T>()).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))?;
        Ok(Self {
            base,
            len,
            bytes,
            value: PhantomData,
        })
    }

    /// Number of elements.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// A pointer to element `i`, `None` past the end.
    pub fn get(&self, i: usize) -> Option<NonNull<T>> {
        // SAFETY: i < len, so the offset stays inside the mapping.
        (i < self.len).then(|| unsafe { self.base.add(i) })
    }
}

impl<T> Drop for MappedArray<T> {
    fn drop(&mut self) {
        // SAFETY: base and bytes are exactly what mmap returned and mapped.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.bytes);
        }
    }
}
