//! `verify`: read every byte of every segment, check every checksum, and
//! check that the index and the segments agree.
//!
//! The segments are replayed into a fresh index, exactly as a rebuild would,
//! and the result compared key by key with the live index. Writers wait while
//! it runs; readers do not.
//!
//! `verify` only reads. A segment the index lists that the directory does
//! not hold (one that only the remote has) is counted in
//! [`VerifyReport::segments_missing`] and, unless the directory reads
//! through its remote on purpose (`reads-through` in `remote.state`,
//! FORMAT.md §10.4), named as a problem; it is never fetched here
//! (`download` fetches the missing segments, and says how many). The keys
//! whose latest record is in such a segment are not compared.

use std::sync::Arc;

use bytes::Bytes;

use crate::engine::recovery::apply_batch;
use crate::engine::segment::Segment;
use crate::engine::{Engine, Snapshot};
use crate::error::Result;
use crate::format::index_file::IndexMeta;
use crate::format::scan;
use crate::format::segment_header::{SEGMENT_HEADER_LEN, SegmentHeader};
use crate::index::layers::Layers;
use crate::index::live::Index;
use crate::report::VerifyReport;

/// How many problems are listed before the rest are only counted.
const MAX_LISTED: usize = 100;

/// Verifies the local database behind `engine`; writers wait meanwhile.
/// `index.idx` gets every check first (opening checks only its header,
/// tables and directory, and gets check the pages they touch).
///
/// # Errors
/// [`crate::Error::Corruption`] if `index.idx` fails a check.
pub(crate) fn verify(engine: &Engine) -> Result<VerifyReport> {
    engine.check_open()?;
    let _w = engine.writer();
    engine.check_index()?;
    // A directory that reads through its remote on purpose lacks the
    // remote's segments by design: they are counted, not problems.
    let reads_through =
        crate::engine::files::own_remote_state(engine.dir()).is_some_and(|s| s.reads_through);
    let mut report = verify_with(engine.capture(None)?, !reads_through, |seg| {
        if seg.is_local() {
            seg.contents().map(Some)
        } else {
            Ok(None)
        }
    })?;
    report.problems.extend(set_aside_problems(engine.dir())?);
    Ok(report)
}

/// One problem for each segment file a rebuild set aside in `dir` as
/// damaged (FORMAT.md §6.3): the records it could keep are in the segments,
/// but while the file is there the directory is not whole, and the user
/// decides when it may go.
fn set_aside_problems(dir: &std::path::Path) -> Result<Vec<String>> {
    Ok(crate::engine::files::list_damaged(dir)?
        .into_iter()
        .map(|name| {
            format!(
                "{name}: a damaged segment file a rebuild set aside (s4db never reads it again); check what the rebuild report said it kept, then delete the file"
            )
        })
        .collect())
}

/// Verifies the keys and segments of `snap`, with `bytes` giving each
/// segment's acknowledged bytes (read from the local file, or fetched from
/// the remote), or `None` for a segment the directory does not hold: a
/// problem if `missing_is_problem`, else only counted.
pub(crate) fn verify_with(
    snap: Snapshot,
    missing_is_problem: bool,
    bytes: impl Fn(&Arc<Segment>) -> Result<Option<Bytes>>,
) -> Result<VerifyReport> {
    let Snapshot {
        items: live,
        segments,
    } = snap;
    let mut report = VerifyReport {
        keys: live.len() as u64,
        ..VerifyReport::default()
    };
    let mut problems = Vec::new();
    let meta = IndexMeta {
        writer_id: 0,
        generation: 0,
        next_segment_number: 0,
        segments: Vec::new(),
        obsolete: Vec::new(),
    };
    let mut replayed = Index::new(Arc::new(Layers::empty(meta)));
    let mut missing = vec![false; segments.len()];
    for (pos, seg) in segments.iter().enumerate() {
        let name = seg.name();
        let Some(data) = bytes(seg)? else {
            missing[pos] = true;
            report.segments_missing += 1;
            if missing_is_problem {
                problems.push(format!(
                    "{name}: listed in index.idx but not in this directory (only the remote holds it); `download` fetches the missing segments"
                ));
            }
            continue;
        };
        match SegmentHeader::decode(&data) {
            Ok(h) if h.id == seg.id() => {}
            Ok(_) => problems.push(format!("{name}: header names another segment")),
            Err(d) => problems.push(format!("{name}: {d}")),
        }
        let body = data.get(SEGMENT_HEADER_LEN..).unwrap_or_default();
        report.bytes += data.len() as u64;
        report.segments += 1;
        let scanned = scan::scan(body, SEGMENT_HEADER_LEN as u64, true, |batch| {
            apply_batch(&mut replayed, pos as u32, &name, batch)
        })?;
        report.records += scanned.records;
        for s in scanned.skipped {
            problems.push(format!(
                "{name}: bytes {}..{} are damaged: {}",
                s.start, s.end, s.reason
            ));
        }
        if let Some(t) = scanned.tail {
            problems.push(format!(
                "{name}: damaged from offset {}: {}",
                t.offset, t.reason
            ));
        }
    }
    for (key, loc) in &live {
        if missing.get(loc.segment as usize) == Some(&true) {
            continue;
        }
        match replayed.get(key)? {
            Some(l) if l == *loc => {}
            Some(_) => problems.push(format!(
                "key {:?}: the index points at another record than the segments' latest",
                String::from_utf8_lossy(key)
            )),
            None => problems.push(format!(
                "key {:?}: in the index but deleted or absent in the segments",
                String::from_utf8_lossy(key)
            )),
        }
    }
    if report.segments_missing == 0 && replayed.live_keys() != live.len() as u64 {
        problems.push(format!(
            "the segments hold {} live keys but the index holds {}",
            replayed.live_keys(),
            live.len()
        ));
    }
    if problems.len() > MAX_LISTED {
        let more = problems.len() - MAX_LISTED;
        problems.truncate(MAX_LISTED);
        problems.push(format!("... and {more} more problems"));
    }
    report.problems = problems;
    Ok(report)
}
