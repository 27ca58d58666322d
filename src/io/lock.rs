//! The database directory lock: one writer per directory, across processes.
//!
//! A writer holds an exclusive lock on `dir/LOCK` (std `File::try_lock`, an
//! advisory `flock` on Unix). Read-only handles take no lock: they open a
//! consistent view beside a writer (FORMAT.md §6.4), also on read-only media.
//! The lock is released when the handle is dropped or the process dies, so a
//! crash never leaves a stale lock behind.
//!
//! A lock that is busy is tried again for `Options::lock_wait` (default
//! 250 ms) before `Locked` is returned: a child process forked by the
//! application (or by anything else in the process) holds a copy of the lock
//! file's descriptor until it execs, which briefly keeps a just-released
//! lock held.

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
    /// Takes the writer's lock, waiting up to `wait` for another writer to
    /// release it.
    ///
    /// # Errors
    /// [`Error::Locked`] when another writer still holds it after `wait`.
    pub(crate) fn acquire(dir: &Path, wait: std::time::Duration) -> Result<Self> {
        let path = dir.join(LOCK_FILE_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .ctx(|| format!("opening lock file {}", path.display()))?;
        let deadline = std::time::Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(DirLock { _file: file }),
                Err(TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(TryLockError::WouldBlock) => return Err(Error::Locked(dir.to_path_buf())),
                Err(TryLockError::Error(e)) => {
                    return Err(Error::io(format!("locking {}", path.display()), e));
                }
            }
        }
    }
}
