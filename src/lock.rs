//! The database directory lock: one writer per directory, across processes.
//!
//! A writer holds an exclusive lock on `dir/LOCK` (std `File::try_lock`, an
//! advisory `flock` on Unix); a read-only handle holds a shared one. The lock
//! is released when the handle is dropped or the process dies, so a crash
//! never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// Name of the lock file in a database directory.
pub(crate) const LOCK_FILE_NAME: &str = "LOCK";

#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock without waiting.
    ///
    /// # Errors
    /// [`Error::Locked`] when another handle holds a conflicting lock.
    pub(crate) fn acquire(dir: &Path, exclusive: bool) -> Result<Self> {
        let path = dir.join(LOCK_FILE_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .ctx(|| format!("opening lock file {}", path.display()))?;
        let res = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match res {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(Error::Locked(dir.to_path_buf())),
            Err(TryLockError::Error(e)) => Err(Error::io(format!("locking {}", path.display()), e)),
        }
    }
}
