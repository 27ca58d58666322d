//! Rebuilding the index from the segment files alone (FORMAT.md §6.3).
//!
//! Segments are replayed in segment order, every checksum checked. A
//! complete full compaction run (its segments `run_first..=last` all present,
//! the last flagged as such) holds every live key as of that compaction, so
//! every segment numbered below the newest one is superseded and skipped.
//! Replaying them would resurrect keys deleted before the compaction. A
//! complete selective run supersedes nothing: it is replayed in its place,
//! after the older segments it left alone (FORMAT.md §5.2). Outputs of an
//! unfinished run of either kind are skipped.
//!
//! Damage in the middle of a segment is skipped by resynchronising record by
//! record at the next valid record; every record whose own checksum is good
//! is kept, also in the batch the damage broke, and exactly the damaged
//! bytes are reported. A torn tail of the last segment is cut as on a normal
//! open when `writable`; otherwise (read-only, or a rebuild of an open
//! database whose readers may have the file mapped) it is kept and reported
//! as skipped.
//!
//! A file named like a segment whose header fails its checks loses none of
//! its records: its header is rebuilt from the file name (number, writer)
//! and the neighbouring segments' headers (compaction run flags), and with
//! `move_aside` the file is rewritten under that header, after the original
//! was linked to `NAME.damaged`, where it stays; without, its records are
//! read in place. Only a damaged file that `index.idx` shows to be obsolete
//! (not listed, numbered below its next number) is not replayed: it is set
//! aside whole and reported as skipped. Every set-aside file in the
//! directory is named in the report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::engine::files::{DAMAGED_SUFFIX, list_damaged, read_header};
use crate::engine::recovery::{Lineage, Recovered, apply_batch, cut_tail, open_segment};
use crate::engine::segment::Segment;
use crate::error::{IoContext, Result};
use crate::format::index_file::{INDEX_FILE_NAME, IndexMeta};
use crate::format::root;
use crate::format::scan;
use crate::format::segment_header::{SEG_FLAG_RUN_LAST, SEGMENT_HEADER_LEN, SegmentHeader};
use crate::format::segment_id::SegmentId;
use crate::index::layers::Layers;
use crate::index::live::Index;
use crate::io::fs::Fs;
use crate::io::fsutil::{atomic_write_with, sync_dir};
use crate::report::{DamagedRange, RebuildReport};

/// The number below which every segment is superseded by the newest complete
/// compaction run, and the segments of unfinished runs to skip.
fn supersession(headers: &[(SegmentHeader, PathBuf)]) -> (u64, Vec<SegmentId>) {
    let mut runs: BTreeMap<(u64, u64), Vec<&SegmentHeader>> = BTreeMap::new();
    for (h, _) in headers {
        if h.is_compacted() {
            runs.entry((h.id.writer, h.run_first)).or_default().push(h);
        }
    }
    let mut floor = 0u64;
    let mut unfinished = Vec::new();
    for ((_, first), segs) in &runs {
        let complete = segs
            .iter()
            .enumerate()
            .all(|(i, h)| h.id.number == first + i as u64)
            && segs
                .last()
                .is_some_and(|h| h.flags & SEG_FLAG_RUN_LAST != 0)
            && segs
                .iter()
                .rev()
                .skip(1)
                .all(|h| h.flags & SEG_FLAG_RUN_LAST == 0);
        if complete {
            // A selective run rewrote only some segments: the others below
            // it still hold live keys and tombstones (FORMAT.md §5.2).
            if segs.iter().all(|h| !h.is_selective()) {
                floor = floor.max(*first);
            }
        } else {
            unfinished.extend(segs.iter().map(|h| h.id));
        }
    }
    (floor, unfinished)
}

/// The next segment number and the segments `index.idx` lists, when it is
/// a root that checks whole (FORMAT.md §4.8); `None` otherwise.
fn root_table(dir: &Path) -> Option<(u64, Vec<SegmentId>)> {
    let bytes = std::fs::read(dir.join(INDEX_FILE_NAME)).ok()?;
    let r = root::decode(&bytes).ok()?;
    let ids = r.meta.segments.iter().map(|s| s.id).collect();
    Some((r.meta.next_segment_number, ids))
}

/// Names a set-aside copy of segment `id` (`NAME.damaged`, or
/// `NAME.K.damaged` when that is taken by another file) and puts `path`
/// there: renamed, or with `link` hard-linked (the original name stays),
/// then the directory fsynced. Returns the new name. A link that a repair
/// cut short made already is taken as it is.
fn set_aside(path: &Path, id: &SegmentId, link: bool) -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = id.file_name();
    let same_file = |a: &Path| {
        let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(path)) else {
            return false;
        };
        x.ino() == y.ino() && x.dev() == y.dev()
    };
    let mut k = 1u32;
    let aside = loop {
        let candidate = if k == 1 {
            format!("{name}{DAMAGED_SUFFIX}")
        } else {
            format!("{name}.{k}{DAMAGED_SUFFIX}")
        };
        let at = dir.join(&candidate);
        if std::fs::symlink_metadata(&at).is_err() {
            let done = if link {
                std::fs::hard_link(path, &at)
            } else {
                std::fs::rename(path, &at)
            };
            done.ctx(|| format!("setting {} aside as {candidate}", path.display()))?;
            break candidate;
        }
        if link && same_file(&at) {
            break candidate;
        }
        k += 1;
    };
    sync_dir(dir)?;
    Ok(aside)
}

/// Rewrites segment `id` at `path` with the header `h`
/// and every byte after its header as it is (FORMAT.md §6.3): the original
/// is first linked to a set-aside name (fsynced), then the rewritten file
/// replaces it at its name (temporary file, fsync, rename, fsync of the
/// directory), so both stay on disk at every step. Returns the set-aside
/// name.
fn repair(path: &Path, id: &SegmentId, h: &SegmentHeader, fs: &Fs) -> Result<String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let old = std::fs::read(path).ctx(|| format!("reading {}", path.display()))?;
    let mut new = Vec::with_capacity(old.len().max(SEGMENT_HEADER_LEN));
    new.extend_from_slice(&h.encode());
    new.extend_from_slice(old.get(SEGMENT_HEADER_LEN..).unwrap_or_default());
    let aside = set_aside(path, id, true)?;
    atomic_write_with(fs, dir, &id.file_name(), &new)?;
    Ok(aside)
}

/// Rebuilds an index from `disk` (the directory's segment files, in order).
/// `writable`: a torn tail of the last segment may be cut. `move_aside`:
/// a file with a damaged header is rewritten under its rebuilt header, the
/// original kept as `NAME.damaged` (without, its records are read in place).
pub(crate) fn rebuild(
    disk: Vec<(SegmentId, PathBuf)>,
    lineage: Lineage,
    writable: bool,
    move_aside: bool,
    max_segment: u64,
    fs: &Fs,
) -> Result<Recovered> {
    let Lineage {
        writer_id,
        generation,
        min_next_number,
        keys_hint,
    } = lineage;
    let mut report = RebuildReport::default();
    let next_number = disk
        .iter()
        .map(|(id, _)| id.number.saturating_add(1))
        .max()
        .unwrap_or(1)
        .max(min_next_number);
    let mut headers = Vec::with_capacity(disk.len());
    let mut damaged = Vec::new();
    let last_path = disk.last().map(|(_, p)| p.clone());
    let dir = last_path
        .as_ref()
        .and_then(|p| p.parent())
        .map(Path::to_path_buf);
    for (id, path) in disk {
        match read_header(&path)? {
            Ok(h) if h.id == id => headers.push((h, path)),
            Ok(_) | Err(_) => {
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                if Some(&path) == last_path.as_ref() && size < SEGMENT_HEADER_LEN as u64 {
                    continue; // a segment whose creation crashed: nothing in it
                }
                damaged.push((id, path, size));
            }
        }
    }
    // What index.idx recorded, if its root still reads whole: a damaged
    // segment it does not list below its next number was obsolete.
    let table = if damaged.is_empty() {
        None
    } else {
        dir.as_deref().and_then(root_table)
    };
    for (id, path, size) in damaged {
        let obsolete = table.as_ref().and_then(|(next, listed)| {
            (id.number < *next && !listed.contains(&id)).then_some(*next)
        });
        if let Some(next) = obsolete {
            // Its records were superseded: replaying them could bring back
            // deleted keys. Kept aside, never replayed.
            let reason = if move_aside {
                let aside = set_aside(&path, &id, false)?;
                format!(
                    "segment header is damaged, and index.idx (next segment number {next}) does not list it: an obsolete segment, whose records are not replayed; the file was kept as {aside}"
                )
            } else {
                format!(
                    "segment header is damaged, and index.idx (next segment number {next}) does not list it: an obsolete segment, skipped (left in place)"
                )
            };
            report.skipped.push(DamagedRange {
                file: id.file_name(),
                start: 0,
                end: size,
                reason,
            });
            continue;
        }
        let neighbour = |number: Option<u64>| {
            let want = SegmentId {
                number: number?,
                writer: id.writer,
            };
            headers.iter().map(|(h, _)| h).find(|h| h.id == want)
        };
        let (h, kind) = SegmentHeader::recovered(
            id,
            neighbour(id.number.checked_sub(1)),
            neighbour(id.number.checked_add(1)),
        );
        let listed = if table.as_ref().is_some_and(|(_, l)| l.contains(&id)) {
            "index.idx lists it; "
        } else {
            ""
        };
        let kept = if move_aside {
            let aside = repair(&path, &id, &h, fs)?;
            format!("the file was rewritten with this header, and the original kept as {aside}")
        } else {
            "its records were read in place (read-only: the file is left as it is)".into()
        };
        report.repaired.push(DamagedRange {
            file: id.file_name(),
            start: 0,
            end: size.min(SEGMENT_HEADER_LEN as u64),
            reason: format!(
                "segment header failed its checks; {listed}rebuilt from the file name as {kind}; {kept}"
            ),
        });
        headers.push((h, path));
    }
    headers.sort_by_key(|(h, _)| h.id);
    let (floor, unfinished) = supersession(&headers);
    let mut live: Vec<(SegmentHeader, PathBuf)> = Vec::new();
    for (h, path) in headers {
        if h.id.number < floor || unfinished.contains(&h.id) {
            report.superseded_segments += 1;
        } else {
            live.push((h, path));
        }
    }

    let meta = IndexMeta {
        writer_id,
        generation,
        next_segment_number: next_number,
        segments: Vec::new(),
        obsolete: Vec::new(),
    };
    let mut index = Index::new(Arc::new(Layers::empty(meta)));
    index.reserve(usize::try_from(keys_hint).unwrap_or(0));
    let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(live.len());
    let count = live.len();
    for (pos, (h, path)) in live.into_iter().enumerate() {
        let sealed = pos + 1 < count;
        let seg = Arc::new(open_segment(
            &path,
            h,
            SEGMENT_HEADER_LEN as u64,
            sealed,
            writable,
            max_segment,
            fs,
        )?);
        // A sealed segment keeps all its bytes: it is scanned through its
        // map, without a copy on the heap. The last one may lose a torn tail,
        // cut by this handle or, beside a read-only one, by a writer's open in
        // another process (FORMAT.md §6.4), and a map must not reach past the
        // end of a file (io/mmap.rs): it is read, and a read that finds the
        // file shorter ends there.
        let buf = if sealed {
            seg.set_len(seg.file_len()?);
            let all = seg.contents()?;
            all.slice(SEGMENT_HEADER_LEN.min(all.len())..)
        } else {
            Bytes::from(seg.read_from(SEGMENT_HEADER_LEN as u64)?)
        };
        let name = seg.name();
        let mode = scan::Mode::Repair { sealed };
        let scanned = scan::scan_with(&buf, SEGMENT_HEADER_LEN as u64, mode, |batch| {
            apply_batch(&mut index, pos as u32, &name, batch)
        })?;
        report.segments += 1;
        report.records += scanned.records;
        report
            .skipped
            .extend(scanned.skipped.into_iter().map(|s| DamagedRange {
                file: name.clone(),
                start: s.start,
                end: s.end,
                reason: s.reason,
            }));
        let end = SEGMENT_HEADER_LEN as u64 + buf.len() as u64;
        seg.set_len(end);
        if let Some(tail) = scanned.tail {
            if pos + 1 == count && writable {
                report.torn_tail = Some(cut_tail(&seg, scanned.good_end, &tail.reason, writable)?);
            } else {
                // Bytes stay where they are (a sealed segment, or a handle that
                // may not truncate); the damaged end is skipped and reported.
                report.skipped.push(DamagedRange {
                    file: name.clone(),
                    start: tail.offset,
                    end,
                    reason: tail.reason,
                });
            }
        }
        segments.push(seg);
    }
    report.keys = index.live_keys();
    if let Some(dir) = &dir {
        report.damaged_files = list_damaged(dir)?;
    }
    let active = segments
        .last()
        .filter(|s| {
            writable
                && s.id().writer == writer_id
                && !s.header.is_compacted()
                && !s.is_sealed()
                && report.skipped.iter().all(|d| d.file != s.name())
        })
        .cloned();
    for s in &segments {
        if active.as_ref().is_none_or(|a| !Arc::ptr_eq(a, s)) {
            s.mark_sealed();
        }
    }
    Ok(Recovered {
        writer_id,
        segments,
        index,
        active,
        next_number,
        generation,
        obsolete: Vec::new(),
        obsolete_runs: Vec::new(),
        pending_delete: Vec::new(),
        dirty: true,
        rebuild: Some(report),
    })
}
