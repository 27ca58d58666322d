//! The file-system seam: the calls through which the engine makes its
//! writes durable (appends, fsyncs, the rename that publishes `index.idx`,
//! FORMAT.md §5), and the read of a segment's unindexed tail at open.
//! [`Fs::real`] makes them; tests put a failing implementation in their
//! place to check that a failed write is never acknowledged and that the
//! handle then refuses further writes, or to cut a file between the moment
//! its size is read and its bytes are (a writer beside a reader, §6.4).

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// The operations behind [`Fs`].
pub(crate) trait FileOps: Send + Sync {
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()>;
    /// fsyncs a file's data (`fdatasync`).
    fn sync_data(&self, file: &File) -> io::Result<()>;
    /// fsyncs a file's data and metadata (`fsync`).
    fn sync_all(&self, file: &File) -> io::Result<()>;
    /// Renames `from` over `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Reads into `buf` at `offset` once (`pread`): the bytes read, 0 at the
    /// end of the file.
    fn read_at(&self, file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

/// The real calls.
struct RealOps;

impl FileOps for RealOps {
    fn write_all_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        file.write_all_at(buf, offset)
    }
    fn sync_data(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }
    fn sync_all(&self, file: &File) -> io::Result<()> {
        file.sync_all()
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn read_at(&self, file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        file.read_at(buf, offset)
    }
}

/// A cheap handle on the file operations an engine uses. Default: the real
/// ones. Two handles are equal when they make the same calls.
#[derive(Clone)]
pub(crate) struct Fs(Arc<dyn FileOps>);

static REAL: std::sync::LazyLock<Arc<dyn FileOps>> = std::sync::LazyLock::new(|| Arc::new(RealOps));

impl Fs {
    /// The real file system.
    pub(crate) fn real() -> Fs {
        Fs(REAL.clone())
    }

    /// Operations of the caller's (tests).
    #[cfg(test)]
    pub(crate) fn with(ops: Arc<dyn FileOps>) -> Fs {
        Fs(ops)
    }
}

impl Default for Fs {
    fn default() -> Self {
        Fs::real()
    }
}

impl std::ops::Deref for Fs {
    type Target = dyn FileOps;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl fmt::Debug for Fs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if *self == Fs::real() {
            "Fs(real)"
        } else {
            "Fs(test)"
        })
    }
}

impl PartialEq for Fs {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Fs {}

/// A [`FileOps`] that fails on purpose: the next write writes only half its
/// bytes and fails (a short write), the next fsync fails, or the next rename
/// fails, as armed; every other call is real.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct FailingOps {
    short_write: std::sync::atomic::AtomicBool,
    failed_sync: std::sync::atomic::AtomicBool,
    failed_rename: std::sync::atomic::AtomicBool,
}

#[cfg(test)]
impl FailingOps {
    pub(crate) fn fail_next_write(&self) {
        arm(&self.short_write);
    }
    pub(crate) fn fail_next_sync(&self) {
        arm(&self.failed_sync);
    }
    pub(crate) fn fail_next_rename(&self) {
        arm(&self.failed_rename);
    }
}

#[cfg(test)]
fn arm(flag: &std::sync::atomic::AtomicBool) {
    flag.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Disarms `flag`: the injected failure of `what` if it was armed.
#[cfg(test)]
fn fired(flag: &std::sync::atomic::AtomicBool, what: &str) -> io::Result<()> {
    if flag.swap(false, std::sync::atomic::Ordering::SeqCst) {
        return Err(io::Error::other(format!("injected: {what} failed")));
    }
    Ok(())
}

#[cfg(test)]
impl FileOps for FailingOps {
    fn write_all_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        if let Err(e) = fired(&self.short_write, "a short write") {
            file.write_all_at(&buf[..buf.len() / 2], offset)?;
            return Err(e);
        }
        file.write_all_at(buf, offset)
    }
    fn sync_data(&self, file: &File) -> io::Result<()> {
        fired(&self.failed_sync, "fsync")?;
        file.sync_data()
    }
    fn sync_all(&self, file: &File) -> io::Result<()> {
        fired(&self.failed_sync, "fsync")?;
        file.sync_all()
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fired(&self.failed_rename, "rename")?;
        std::fs::rename(from, to)
    }
    fn read_at(&self, file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        file.read_at(buf, offset)
    }
}
