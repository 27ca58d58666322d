//! Durable file operations: atomic replace and directory sync.
//!
//! `index.idx` is only ever replaced whole: the new bytes go to a temporary
//! file in the same directory, which is fsynced, renamed over the old name,
//! and the directory is fsynced so the rename itself survives power loss.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, Result};

/// fsyncs a directory, making creations, renames and removals in it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(|| format!("syncing directory {}", dir.display()))
}

/// Atomically replaces `dir/name` with `bytes`: temp file, fsync, rename,
/// fsync of the directory.
pub(crate) fn atomic_write(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let target = dir.join(name);
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .ctx(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .ctx(|| format!("writing {}", tmp.path().display()))?;
    tmp.persist(&target)
        .map_err(|e| e.error)
        .ctx(|| format!("renaming into {}", target.display()))?;
    sync_dir(dir)
}
