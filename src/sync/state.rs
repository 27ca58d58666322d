//! What a database directory knows about its remote, `remote.state`
//! (FORMAT.md §10.4): loading, saving and updating the files. Their codec,
//! the text format, is `format/remote_state.rs`.
//!
//! The state belongs to one remote, named by its `remote` line (endpoint,
//! bucket and prefix for S3; the URL or directory otherwise). `remote.state`
//! is the directory's own remote: the one it reads through, downloads from
//! and counts unuploaded segments against. Uploading to another remote (a
//! backup copy) keeps that remote's state in `remote-HASH.state`, HASH being
//! the XXH3-64 of its description in 16 hex digits, and leaves
//! `remote.state` alone. Only a forced download switches the directory's own
//! remote (FORMAT.md §10.4). Each file is replaced atomically; it never
//! holds a credential.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::{Error, Result};
use crate::format::remote_state::{STATE_FILE_NAME, SyncState, other_file_name};
use crate::format::segment_id::SegmentId;
use crate::io::fsutil::atomic_write;

impl SyncState {
    /// Loads the directory's own remote's state; `None` if the directory was
    /// never synced.
    pub(crate) fn load(dir: &Path) -> Result<Option<SyncState>> {
        Self::load_file(dir, STATE_FILE_NAME)
    }

    /// Loads the state this directory keeps for `remote` (a
    /// `RemoteUrl::describe()`); `None` if it never synced with it.
    pub(crate) fn load_for(dir: &Path, remote: &str) -> Result<Option<SyncState>> {
        if let Some(own) = Self::load(dir)?
            && own.remote == remote
        {
            return Ok(Some(own));
        }
        Ok(Self::load_file(dir, &other_file_name(remote))?.filter(|s| s.remote == remote))
    }

    /// The state right after a sync with `remote`: its index has entity tag
    /// `etag` and lists `segments`.
    pub(crate) fn synced(
        remote: &str,
        etag: String,
        segments: BTreeSet<SegmentId>,
        conditions: Option<(bool, u64)>,
    ) -> SyncState {
        SyncState {
            remote: remote.to_string(),
            etag: Some(etag),
            segments,
            runs: BTreeSet::new(),
            metadata: Vec::new(),
            conditions,
            reads_through: false,
        }
    }

    /// The same state, reading through its remote or not
    /// ([`SyncState::reads_through`]).
    pub(crate) fn reading_through(mut self, yes: bool) -> SyncState {
        self.reads_through = yes;
        self
    }

    /// The same state, with the remote index being `index`: the runs it
    /// names and its metadata.
    pub(crate) fn of_index(mut self, index: &crate::index::layers::Layers) -> SyncState {
        self.runs = index.run_ids().collect();
        self.metadata = index.root().metadata.clone();
        self
    }

    /// Forgets what was uploaded to the remote: no entity tag, no segments,
    /// so the next upload sends every segment again (FORMAT.md §10.8).
    pub(crate) fn forget_uploads(&mut self) {
        self.etag = None;
        self.segments.clear();
        self.runs.clear();
    }

    /// The state for `remote`, or a fresh one that names it.
    pub(crate) fn load_or_new(dir: &Path, remote: &str) -> Result<SyncState> {
        Ok(Self::load_for(dir, remote)?.unwrap_or_else(|| SyncState {
            remote: remote.to_string(),
            ..SyncState::default()
        }))
    }

    fn load_file(dir: &Path, name: &str) -> Result<Option<SyncState>> {
        let path = dir.join(name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        Self::parse(&bytes).map(Some)
    }

    /// Saves the state where [`SyncState::load_for`] finds it: in
    /// `remote.state` if that names this remote or does not exist, else in
    /// this remote's own file. Replaced atomically.
    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        let name = match Self::load(dir)? {
            Some(own) if own.remote != self.remote => other_file_name(&self.remote),
            _ => STATE_FILE_NAME.to_string(),
        };
        atomic_write(dir, &name, self.render().as_bytes())
    }

    /// Makes this remote the directory's own (a forced download from another
    /// remote): saved as `remote.state`.
    pub(crate) fn save_as_own(&self, dir: &Path) -> Result<()> {
        atomic_write(dir, STATE_FILE_NAME, self.render().as_bytes())?;
        let other = dir.join(other_file_name(&self.remote));
        match std::fs::remove_file(&other) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("removing {}", other.display()), e))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_remote_keeps_its_own_state_and_leaves_the_directorys_own_alone() {
        let dir = tempfile::tempdir().unwrap();
        let a = SyncState {
            remote: "file:///a".into(),
            etag: Some("\"1\"".into()),
            ..SyncState::default()
        };
        a.save(dir.path()).unwrap();
        let b = SyncState {
            remote: "file:///b".into(),
            etag: Some("\"2\"".into()),
            ..SyncState::default()
        };
        b.save(dir.path()).unwrap();
        assert_eq!(SyncState::load(dir.path()).unwrap(), Some(a.clone()));
        assert_eq!(
            SyncState::load_for(dir.path(), "file:///a").unwrap(),
            Some(a)
        );
        assert_eq!(
            SyncState::load_for(dir.path(), "file:///b").unwrap(),
            Some(b.clone())
        );
        assert_eq!(SyncState::load_for(dir.path(), "file:///c").unwrap(), None);
        b.save_as_own(dir.path()).unwrap();
        assert_eq!(SyncState::load(dir.path()).unwrap(), Some(b));
    }
}
