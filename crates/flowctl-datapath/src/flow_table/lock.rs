//! The cache's writer lock: only one process at a time closes flows and
//! gives slots back to the ring (it alone moves the ring's tail). An
//! exclusive `flock` on the layout's pin directory, held while the writer
//! lives and released by the kernel if it dies.

use std::{fs::File, os::fd::AsRawFd, path::Path};

use crate::{Error, Result};

/// The held lock.
pub(crate) struct WriterLock {
    _dir: File,
}

impl WriterLock {
    /// Takes the lock on `dir`, or says who may hold it.
    pub(crate) fn take(dir: &Path) -> Result<Self> {
        let file = File::open(dir).map_err(|e| Error::io(format!("opening {}", dir.display()), e))?;
        // SAFETY: flock on a descriptor we own; no pointers.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(Self { _dir: file });
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(Error::CacheBusy(dir.to_path_buf()));
        }
        Err(Error::io(format!("locking {}", dir.display()), err))
    }
}
