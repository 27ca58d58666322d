//! What a database directory knows about its remote: `remote.state`
//! (FORMAT.md §10.4).
//!
//! ```text
//! s4db-remote-state 1
//! remote s3://bucket/prefix at http://127.0.0.1:9000/
//! etag "9b2cf535f27731c974343645a3985328"
//! segment data_00000001_0102030405060708.s4db
//! segment ...
//! run index_00000003_0102030405060708.run
//! run ...
//! meta 736368656d61 7633
//! conditions enforced 1763716380
//! ```
//! `etag` is the entity tag of the remote `index.idx` this directory last
//! uploaded or downloaded (`-` if none); each `segment` line names a segment
//! that remote index lists, each `run` an index run it names (FORMAT.md
//! §4.7; a version-1 remote has none), each `meta` line one entry of its
//! database metadata (name and value in hex, FORMAT.md §4.8); `conditions` records whether the remote was last
//! found to enforce conditional writes, and when (Unix seconds). The file is
//! replaced atomically; it never holds a credential.
//!
//! The state belongs to one remote, named by its `remote` line (endpoint,
//! bucket and prefix for S3; the URL or directory otherwise). `remote.state`
//! is the directory's own remote: the one it reads through, downloads from
//! and counts unuploaded segments against. Uploading to another remote (a
//! backup copy) keeps that remote's state in `remote-HASH.state`, HASH being
//! the XXH3-64 of its `remote` line in 16 hex digits, and leaves
//! `remote.state` alone. Only a forced download switches the directory's own
//! remote (FORMAT.md §10.4).

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::{Error, Result};
use crate::format::segment_id::SegmentId;
use crate::io::fsutil::atomic_write;

/// The file's name in a database directory.
pub(crate) const STATE_FILE_NAME: &str = "remote.state";
const MAGIC: &str = "s4db-remote-state 1";

/// The sync state of a directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SyncState {
    /// The remote it was synced with, as described (no credentials).
    pub remote: String,
    /// Entity tag of the remote index last seen.
    pub etag: Option<String>,
    /// Segments the remote index lists.
    pub segments: BTreeSet<SegmentId>,
    /// Index runs the remote index names.
    pub runs: BTreeSet<SegmentId>,
    /// The database metadata of the remote index, ascending by name: what
    /// a rebase compares the local metadata with to find local changes.
    pub metadata: Vec<(String, bytes::Bytes)>,
    /// Whether the remote enforces conditional writes, and when that was
    /// last checked (Unix seconds).
    pub conditions: Option<(bool, u64)>,
    /// The directory reads through its remote on purpose (FORMAT.md §10.4):
    /// it was opened empty with its remote and fetched only the index, so
    /// the remote's segments it lacks are not damage and `verify` counts
    /// them without failing. Set by that open; a `download`, which fetches
    /// every segment, clears it; uploads and rebases keep it.
    pub reads_through: bool,
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn bad(line: usize, why: &str) -> Error {
    Error::corruption(STATE_FILE_NAME, line as u64, format!("line {line}: {why}"))
}

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
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(bad(1, "not UTF-8"));
            }
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        Self::parse(&text).map(Some)
    }

    pub(crate) fn parse(text: &str) -> Result<SyncState> {
        let mut lines = text.lines().enumerate();
        if lines.next().map(|(_, l)| l) != Some(MAGIC) {
            return Err(bad(1, "not an s4db remote state file"));
        }
        let mut state = SyncState::default();
        for (i, line) in lines {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "remote" => state.remote = value.to_string(),
                "etag" => state.etag = (value != "-").then(|| value.to_string()),
                "segment" => {
                    let id = SegmentId::parse_file_name(value)
                        .ok_or_else(|| bad(i + 1, "bad segment name"))?;
                    state.segments.insert(id);
                }
                "run" => {
                    let id = SegmentId::parse_run_file_name(value)
                        .ok_or_else(|| bad(i + 1, "bad run name"))?;
                    state.runs.insert(id);
                }
                "meta" => {
                    let entry = value.split_once(' ').and_then(|(n, v)| {
                        let name = String::from_utf8(from_hex(n)?).ok()?;
                        Some((name, bytes::Bytes::from(from_hex(v)?)))
                    });
                    state
                        .metadata
                        .push(entry.ok_or_else(|| bad(i + 1, "bad meta line"))?);
                }
                "conditions" => {
                    let (what, when) = value
                        .split_once(' ')
                        .ok_or_else(|| bad(i + 1, "bad conditions line"))?;
                    let enforced = match what {
                        "enforced" => true,
                        "ignored" => false,
                        _ => return Err(bad(i + 1, "bad conditions line")),
                    };
                    let when = when
                        .parse()
                        .map_err(|_| bad(i + 1, "bad conditions time"))?;
                    state.conditions = Some((enforced, when));
                }
                "reads-through" if value.is_empty() => state.reads_through = true,
                "" => {}
                _ => return Err(bad(i + 1, "unknown line")),
            }
        }
        Ok(state)
    }

    pub(crate) fn render(&self) -> String {
        let mut out = format!(
            "{MAGIC}\nremote {}\netag {}\n",
            self.remote,
            self.etag.as_deref().unwrap_or("-")
        );
        for s in &self.segments {
            out.push_str("segment ");
            out.push_str(&s.file_name());
            out.push('\n');
        }
        for r in &self.runs {
            out.push_str("run ");
            out.push_str(&r.run_file_name());
            out.push('\n');
        }
        for (name, value) in &self.metadata {
            out.push_str(&format!(
                "meta {} {}\n",
                to_hex(name.as_bytes()),
                to_hex(value)
            ));
        }
        if let Some((enforced, when)) = self.conditions {
            out.push_str(&format!(
                "conditions {} {when}\n",
                if enforced { "enforced" } else { "ignored" }
            ));
        }
        if self.reads_through {
            out.push_str("reads-through\n");
        }
        out
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

/// The file of a remote other than the directory's own.
fn other_file_name(remote: &str) -> String {
    format!(
        "remote-{:016x}.state",
        xxhash_rust::xxh3::xxh3_64(remote.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of FORMAT.md §10.4: the hash covers the description
    /// alone, not the `remote ` line around it.
    #[test]
    fn another_remotes_state_file_is_named_by_the_xxh3_of_its_description() {
        assert_eq!(
            other_file_name("file:///srv/r"),
            "remote-ad0322e9a3aed587.state"
        );
        assert_ne!(
            other_file_name("file:///srv/r"),
            other_file_name("remote file:///srv/r")
        );
    }

    #[test]
    fn state_round_trips() {
        let mut s = SyncState {
            remote: "s3://b/p at http://127.0.0.1:9000/".into(),
            etag: Some("\"abc\"".into()),
            segments: BTreeSet::new(),
            runs: BTreeSet::new(),
            metadata: vec![
                ("schema".into(), bytes::Bytes::from_static(b"v3")),
                ("z \u{e9}".into(), bytes::Bytes::from_static(b"\x00\xff ")),
            ],
            conditions: Some((false, 1_763_716_380)),
            reads_through: false,
        };
        s.segments.insert(SegmentId {
            number: 3,
            writer: 9,
        });
        s.runs.insert(SegmentId {
            number: 4,
            writer: 9,
        });
        assert_eq!(SyncState::parse(&s.render()).unwrap(), s);
        s.etag = None;
        assert_eq!(SyncState::parse(&s.render()).unwrap(), s);
        s.reads_through = true;
        assert!(s.render().ends_with("\nreads-through\n"));
        assert_eq!(SyncState::parse(&s.render()).unwrap(), s);
    }

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

    #[test]
    fn damaged_state_is_corruption() {
        for text in [
            "",
            "nope",
            "s4db-remote-state 1\nsegment x\n",
            "s4db-remote-state 1\nwhat now\n",
        ] {
            assert!(
                SyncState::parse(text).unwrap_err().is_corruption(),
                "{text:?}"
            );
        }
    }
}
