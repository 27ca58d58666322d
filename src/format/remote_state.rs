//! The `remote.state` codec (FORMAT.md §10.4): what a database directory
//! knows about a remote it synced with, as text. Bytes in, values out; the
//! sync layer (`sync/state.rs`) reads, writes and updates the files.
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
//! reads-through
//! ```

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::format::segment_id::SegmentId;

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
    /// Decodes a `remote.state` file; any line it does not know, or a bad
    /// one, is corruption naming the line.
    pub(crate) fn parse(bytes: &[u8]) -> Result<SyncState> {
        let text = std::str::from_utf8(bytes).map_err(|_| bad(1, "not UTF-8"))?;
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
}

/// The file of a remote other than the directory's own.
pub(crate) fn other_file_name(remote: &str) -> String {
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
        assert_eq!(SyncState::parse(s.render().as_bytes()).unwrap(), s);
        s.etag = None;
        assert_eq!(SyncState::parse(s.render().as_bytes()).unwrap(), s);
        s.reads_through = true;
        assert!(s.render().ends_with("\nreads-through\n"));
        assert_eq!(SyncState::parse(s.render().as_bytes()).unwrap(), s);
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
                SyncState::parse(text.as_bytes())
                    .unwrap_err()
                    .is_corruption(),
                "{text:?}"
            );
        }
    }
}
