//! Durable file operations: atomic replace and directory sync.
//!
//! `index.idx` is only ever replaced whole: the new bytes go to a temporary
//! file in the same directory, which is fsynced, renamed over the old name,
//! and the directory is fsynced so the rename itself survives power loss.

use std::fs::File;
use std::path::Path;

use crate::error::{IoContext, Result};
use crate::io::fs::Fs;

/// The name prefix of [`ensure_dir_writable`]'s temporary file.
pub(crate) const PROBE_PREFIX: &str = ".s4db-probe.";

/// Checks that files can be created in `dir`, as every writer must (index
/// writes go through a temporary file): a writer that could append but not
/// then write its index would leave a failed write saved.
///
/// # Errors
/// [`crate::Error::Io`] naming the directory.
pub(crate) fn ensure_dir_writable(dir: &Path) -> Result<()> {
    tempfile::Builder::new()
        .prefix(PROBE_PREFIX)
        .suffix(".tmp")
        .tempfile_in(dir)
        .map(drop)
        .ctx(|| {
            format!(
                "checking that {} is writable (a read-only directory can only be opened read-only)",
                dir.display()
            )
        })
}

/// A new private directory in RAM for an in-memory database: under
/// `/dev/shm` where it is a writable directory (a memory file system on
/// Linux), else in the system's temporary directory. Removed on drop.
///
/// # Errors
/// [`crate::Error::Io`] if neither can hold a new directory.
pub(crate) fn memory_dir() -> Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    let make = |root: &Path| {
        tempfile::Builder::new()
            .prefix("s4db-memory-")
            .tempdir_in(root)
    };
    match make(shm) {
        Ok(dir) => Ok(dir),
        Err(_) => {
            let tmp = std::env::temp_dir();
            make(&tmp).ctx(|| {
                format!(
                    "creating a directory for an in-memory database in {}",
                    tmp.display()
                )
            })
        }
    }
}

/// fsyncs a directory, making creations, renames and removals in it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(|| format!("syncing directory {}", dir.display()))
}

/// Atomically replaces `dir/name` with `bytes`: temp file, fsync, rename,
/// fsync of the directory. The file is readable by everyone the umask
/// allows (mode 0644 before the umask), like the segment files, so users who
/// may only read the directory can open it read-only.
pub(crate) fn atomic_write(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    atomic_write_with(&Fs::real(), dir, name, bytes)
}

/// [`atomic_write`] through the file operations `fs`. On failure the old
/// file is in place and the temporary file is removed.
pub(crate) fn atomic_write_with(fs: &Fs, dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    atomic_write_keeping(fs, dir, name, bytes, |_| ())
}

/// [`atomic_write_with`], calling `keep` on the written and fsynced file just
/// before it is renamed into place (to map it: the map then shows exactly
/// the file that was published). Returns what `keep` returned.
pub(crate) fn atomic_write_keeping<T>(
    fs: &Fs,
    dir: &Path,
    name: &str,
    bytes: &[u8],
    keep: impl FnOnce(&File) -> T,
) -> Result<T> {
    use std::os::unix::fs::PermissionsExt;
    let target = dir.join(name);
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .ctx(|| format!("creating a temporary file in {}", dir.display()))?;
    fs.write_all_at(tmp.as_file(), bytes, 0)
        .and_then(|()| fs.sync_all(tmp.as_file()))
        .ctx(|| format!("writing {}", tmp.path().display()))?;
    let kept = keep(tmp.as_file());
    // Dropping `tmp` on an error removes the temporary file.
    fs.rename(tmp.path(), &target)
        .ctx(|| format!("renaming into {}", target.display()))?;
    // Renamed: nothing is left at the temporary path to remove.
    let _ = tmp.into_temp_path().keep();
    sync_dir(dir)?;
    Ok(kept)
}
