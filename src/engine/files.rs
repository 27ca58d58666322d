//! The files of a database directory (FORMAT.md §2): which names are
//! segments, which are leftovers of an interrupted write, and a segment
//! file's header.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::format::index_file::INDEX_FILE_NAME;
use crate::format::remote_state::{STATE_FILE_NAME, SyncState};
use crate::format::segment_header::{SEGMENT_HEADER_LEN, SegmentHeader};
use crate::format::segment_id::SegmentId;
use crate::io::fsutil::PROBE_PREFIX;

/// The directory's own `remote.state` (FORMAT.md §10.4), if there is one
/// that reads and decodes: what the engine consults, read-only, to tell a
/// segment its remote holds from a lost one. The sync layer owns the file;
/// an unreadable one proves nothing here, so it is `None`.
pub(crate) fn own_remote_state(dir: &Path) -> Option<SyncState> {
    let bytes = fs::read(dir.join(STATE_FILE_NAME)).ok()?;
    SyncState::parse(&bytes).ok()
}

/// Segment files in `dir`, in segment order.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(SegmentId, PathBuf)>> {
    list_named(dir, SegmentId::parse_file_name)
}

/// Index run files in `dir` (FORMAT.md §4.7), in number order.
pub(crate) fn list_runs(dir: &Path) -> Result<Vec<(SegmentId, PathBuf)>> {
    list_named(dir, SegmentId::parse_run_file_name)
}

fn list_named(
    dir: &Path,
    parse: fn(&str) -> Option<SegmentId>,
) -> Result<Vec<(SegmentId, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).ctx(|| format!("listing {}", dir.display()))? {
        let entry = entry.ctx(|| format!("listing {}", dir.display()))?;
        if let Some(id) = entry.file_name().to_str().and_then(parse) {
            out.push((id, entry.path()));
        }
    }
    out.sort_by_key(|(id, _)| *id);
    Ok(out)
}

/// Removes temporary files a crash left behind: of an index write, of a
/// segment's repair (FORMAT.md §6.3), or of a writer's check that it may
/// create files (FORMAT.md §2).
pub(crate) fn remove_stale_temp_files(dir: &Path) -> Result<()> {
    let prefixes = [
        format!(".{INDEX_FILE_NAME}."),
        ".index_".to_string(),
        ".data_".to_string(),
        PROBE_PREFIX.to_string(),
    ];
    for entry in fs::read_dir(dir).ctx(|| format!("listing {}", dir.display()))? {
        let entry = entry.ctx(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if prefixes.iter().any(|p| name.starts_with(p.as_str())) && name.ends_with(".tmp") {
            fs::remove_file(entry.path()).ctx(|| format!("removing {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The suffix of a segment file set aside because its header failed its
/// checks (FORMAT.md §2, §6.3).
pub(crate) const DAMAGED_SUFFIX: &str = ".damaged";

/// The names of the segment files set aside in `dir` as damaged
/// (`data_….s4db.damaged`, FORMAT.md §6.3), sorted: they are no segment
/// (never read, uploaded or deleted by s4db), and while one is there the
/// directory is not whole.
pub(crate) fn list_damaged(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).ctx(|| format!("listing {}", dir.display()))? {
        let entry = entry.ctx(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("data_") && name.ends_with(DAMAGED_SUFFIX) {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// Reads and checks a segment file's header.
pub(crate) fn read_header(path: &Path) -> Result<std::result::Result<SegmentHeader, &'static str>> {
    let mut f = fs::File::open(path).ctx(|| format!("opening {}", path.display()))?;
    let mut buf = Vec::with_capacity(SEGMENT_HEADER_LEN);
    f.by_ref()
        .take(SEGMENT_HEADER_LEN as u64)
        .read_to_end(&mut buf)
        .ctx(|| format!("reading {}", path.display()))?;
    Ok(SegmentHeader::decode(&buf))
}
