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
//! A file named like a segment whose header is damaged is never left where a
//! later open could take it for an obsolete segment and delete it: with
//! `move_aside` it is renamed to `NAME.damaged` (kept, reported); without,
//! it is reported only.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use crate::engine::files::read_header;
use crate::engine::recovery::{Lineage, Recovered, apply_batch, cut_tail, open_segment};
use crate::engine::segment::Segment;
use crate::error::{IoContext, Result};
use crate::format::index_file::IndexMeta;
use crate::format::scan;
use crate::format::segment_header::{SEG_FLAG_RUN_LAST, SEGMENT_HEADER_LEN, SegmentHeader};
use crate::format::segment_id::SegmentId;
use crate::index::layers::Layers;
use crate::index::live::Index;
use crate::io::fs::Fs;
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

/// Rebuilds an index from `disk` (the directory's segment files, in order).
/// `writable`: a torn tail of the last segment may be cut. `move_aside`:
/// files with a damaged header are renamed to `NAME.damaged`.
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
    let last_path = disk.last().map(|(_, p)| p.clone());
    for (id, path) in disk {
        match read_header(&path)? {
            Ok(h) if h.id == id => headers.push((h, path)),
            Ok(_) | Err(_) => {
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                if Some(&path) == last_path.as_ref() && size < SEGMENT_HEADER_LEN as u64 {
                    continue; // a segment whose creation crashed: nothing in it
                }
                let reason = if move_aside {
                    let aside = path.with_file_name(format!("{}.damaged", id.file_name()));
                    std::fs::rename(&path, &aside)
                        .ctx(|| format!("moving {} aside", path.display()))?;
                    if let Some(dir) = path.parent() {
                        crate::io::fsutil::sync_dir(dir)?;
                    }
                    format!(
                        "segment header is damaged; none of its records could be placed, and the file was kept as {}",
                        aside
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    )
                } else {
                    "segment header is damaged; file skipped (left in place)".into()
                };
                report.skipped.push(DamagedRange {
                    file: id.file_name(),
                    start: 0,
                    end: size,
                    reason,
                });
            }
        }
    }
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
