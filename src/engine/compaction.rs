//! Compaction: rewrite live records into new segments and drop the rest
//! (FORMAT.md §5).
//!
//! **Selective** (the default): only segments whose dead fraction (bytes no
//! live key points to) is at least [`CompactOptions::min_dead_percent`] are
//! rewritten; the others stay as they are. The live records of the chosen
//! segments, and those of their tombstones that an older segment left alone
//! may still need, are copied into a new *run* flagged selective, which
//! supersedes nothing (§5.2). Its cost: reading and writing only the chosen
//! segments, plus two passes over the index (count live bytes per segment,
//! collect the moving keys), then one new index run: of the moved keys and
//! of the delta and index runs it replaces (O(moved + replaced), see
//! `new_run`), or, where it replaces every run, of every live key
//! (`new_index`). An upload afterwards sends only the run's segments, the
//! new index run and the root.
//!
//! **Full**: the active segment is sealed and every live record (checksum
//! and key checked) is copied into a run that holds every live key, so
//! nothing older is needed afterwards: every overwritten record and every
//! tombstone is dropped. A selective compaction that chose every segment is
//! a full one.
//!
//! Either way the outputs have new numbers above every existing segment, and
//! the active segment is sealed first, so that later writes replay after
//! the copies. Crash safety, in order: (1) the run is written and fsynced,
//! (2) the new `index.idx` is committed atomically, (3) only then are the
//! replaced segments deleted. A crash before (2) leaves an unfinished run
//! that the next open removes; a crash after (2) leaves replaced segments
//! that the next open deletes as obsolete. Readers keep working throughout:
//! they hold handles to the old segments until they look up through the new
//! index.

use std::collections::HashSet;
use std::sync::Arc;

use crate::engine::checkpoint::{TOMBSTONE, merged_entries, runs_to_absorb};
use crate::engine::segment::Segment;
use crate::engine::{Engine, View, create_segment_file};
use crate::error::{Error, IoContext, Result};
use crate::format::index_file::{IndexMeta, SEGTAB_SEALED, SegmentEntry};
use crate::format::record::{self, FLAG_BATCH_CONT};
use crate::format::scan;
use crate::format::segment_header::{
    SEG_FLAG_COMPACTED, SEG_FLAG_RUN_LAST, SEG_FLAG_SELECTIVE, SEGMENT_HEADER_LEN, SegmentHeader,
};
use crate::format::segment_id::{SegmentId, next_number as next_segment_number};
use crate::index::live::Index;
use crate::index::loc::Loc;
use crate::io::clock::unix_now_ms;
use crate::io::fsutil::sync_dir;
use crate::options::setters;
use crate::report::CompactionReport;

const WRITE_CHUNK: usize = 1 << 20;

/// How to compact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactOptions {
    /// Rewrite every segment, dropping every tombstone, instead of only the
    /// segments at or above `min_dead_percent`. Default `false`.
    pub full: bool,
    /// A segment is rewritten when at least this percentage of its record
    /// bytes is dead (overwritten, deleted, or a tombstone); 1 to 100,
    /// default 50, which bounds the space the sealed segments take at about
    /// twice their live bytes.
    pub min_dead_percent: u8,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            full: false,
            min_dead_percent: 50,
        }
    }
}

setters!(CompactOptions {
    /// Sets `full`.
    full: bool,
    /// Sets `min_dead_percent`.
    min_dead_percent: u8,
});

/// Writes the output run.
struct RunWriter<'a> {
    engine: &'a Engine,
    /// The run rewrites only some segments (flag `0x4`).
    selective: bool,
    run_first: u64,
    next_number: u64,
    outputs: Vec<Segment>,
    buf: Vec<u8>,
    /// Length of the current output including buffered bytes.
    cur_len: u64,
}

impl RunWriter<'_> {
    fn header(&self, number: u64, last: bool) -> SegmentHeader {
        let flags = SEG_FLAG_COMPACTED
            | if last { SEG_FLAG_RUN_LAST } else { 0 }
            | if self.selective {
                SEG_FLAG_SELECTIVE
            } else {
                0
            };
        SegmentHeader::new(
            SegmentId {
                number,
                writer: self.engine.writer_id(),
            },
            flags,
            self.run_first,
        )
    }

    fn start_segment(&mut self) -> Result<()> {
        self.drain()?;
        let number = self.next_number;
        self.next_number = crate::format::segment_id::next_number(number)?;
        let seg = create_segment_file(
            self.engine.dir(),
            self.header(number, false),
            self.engine.options().max_segment_size,
            &self.engine.options().fs,
        )?;
        self.outputs.push(seg);
        self.cur_len = SEGMENT_HEADER_LEN as u64;
        Ok(())
    }

    fn drain(&mut self) -> Result<()> {
        if let Some(seg) = self.outputs.last()
            && !self.buf.is_empty()
        {
            seg.append(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Appends one record; returns its new location.
    fn push(&mut self, rec: &[u8]) -> Result<Loc> {
        let len = rec.len() as u64;
        if self.cur_len > SEGMENT_HEADER_LEN as u64
            && self.cur_len + len > self.engine.options().max_segment_size
        {
            self.start_segment()?;
        }
        let offset = self.cur_len;
        let start = self.buf.len();
        self.buf.extend_from_slice(rec);
        if rec.get(4).is_some_and(|f| f & FLAG_BATCH_CONT != 0) {
            // Each record now stands alone: the batch it came in was applied
            // whole long ago.
            record::set_batch_cont(&mut self.buf[start..], false);
        }
        self.cur_len += len;
        if self.buf.len() >= WRITE_CHUNK {
            self.drain()?;
        }
        Ok(Loc {
            segment: (self.outputs.len() - 1) as u32,
            offset: offset as u32,
            len: len as u32,
        })
    }

    /// Flags the last output as the run's end and makes the run durable.
    fn finish(&mut self) -> Result<()> {
        self.drain()?;
        if let Some(last) = self.outputs.last() {
            let header = self.header(last.id().number, true);
            self.engine
                .opts
                .fs
                .write_all_at(last.file()?, &header.encode(), 0)
                .ctx(|| format!("writing {}", last.path.display()))?;
        }
        for seg in &self.outputs {
            self.engine
                .opts
                .fs
                .sync_all(seg.file()?)
                .ctx(|| format!("syncing {}", seg.path.display()))?;
            seg.mark_sealed();
        }
        sync_dir(self.engine.dir())
    }

    /// Deletes the outputs after a failure (nothing references them).
    fn abandon(&self) {
        for seg in &self.outputs {
            let _ = std::fs::remove_file(&seg.path);
        }
    }
}

/// Compacts the database behind `engine` as `opts` says.
///
/// # Errors
/// [`Error::InvalidArgument`] for a `min_dead_percent` outside 1 to 100;
/// [`Error::Corruption`] if a record to copy fails its checks (nothing is
/// changed then); [`Error::Io`].
pub(crate) fn compact(engine: &Engine, opts: CompactOptions) -> Result<CompactionReport> {
    if !(1..=100).contains(&opts.min_dead_percent) {
        return Err(Error::InvalidArgument(format!(
            "min_dead_percent must be 1 to 100, not {}",
            opts.min_dead_percent
        )));
    }
    engine.check_writable()?;
    let mut w = engine.writer();
    engine.check_open()?;
    // No write can land while the writer lock is held: the index seen here
    // is the one the new index replaces.
    let planned = engine.with_view(|v| plan(v, opts))?;
    let chosen = &planned.chosen;
    let old = planned.segments.clone();
    let mut report = CompactionReport {
        segments_before: old.len() as u64,
        bytes_before: old.iter().map(|s| s.len()).sum(),
        ..CompactionReport::default()
    };
    if !chosen.contains(&true) {
        report.segments_after = report.segments_before;
        report.bytes_after = report.bytes_before;
        return Ok(report);
    }
    // Later writes must go to a segment numbered after the run.
    engine.seal_active(&mut w)?;
    let selective = chosen.contains(&false);

    let mut run = RunWriter {
        engine,
        selective,
        run_first: w.next_number,
        next_number: w.next_number,
        outputs: Vec::new(),
        buf: Vec::with_capacity(WRITE_CHUNK + (64 << 10)),
        cur_len: 0,
    };
    let result = copy(&mut run, engine, &planned).and_then(|copied| {
        run.finish()?;
        Ok(copied)
    });
    let copied = match result {
        Ok(c) => c,
        Err(e) => {
            run.abandon();
            return Err(e);
        }
    };
    let outputs: Vec<Arc<Segment>> = std::mem::take(&mut run.outputs)
        .into_iter()
        .map(Arc::new)
        .collect();
    let next_number = run.next_number;

    // The new table: the segments left alone, in order, then the run.
    let kept: Vec<Arc<Segment>> = old
        .iter()
        .zip(chosen)
        .filter(|(_, c)| !**c)
        .map(|(s, _)| s.clone())
        .collect();
    let table: Vec<Arc<Segment>> = kept.iter().chain(&outputs).cloned().collect();
    let meta = IndexMeta {
        writer_id: engine.writer_id(),
        generation: w.generation + 1,
        next_segment_number: next_number,
        segments: table
            .iter()
            .map(|s| SegmentEntry {
                id: s.id(),
                indexed_len: s.len(),
                flags: SEGTAB_SEALED,
            })
            .collect(),
        obsolete: w.obsolete.clone(),
    };
    // The new index's run is numbered after the output segments.
    let committed = next_segment_number(next_number).and_then(|after| {
        let meta = IndexMeta {
            next_segment_number: after,
            ..meta
        };
        engine.with_view(|v| {
            let old = v.index.base();
            // A selective compaction adds a run of what moved (merged by
            // the usual rule); a full one writes a new base.
            let changed = (planned.moving.len() + v.index.delta_len()) as u64;
            let absorb = if selective {
                runs_to_absorb(old, changed)
            } else {
                old.runs().len()
            };
            let keep = old.runs().len() - absorb;
            let entries = if keep == 0 {
                new_index(v, &planned, &copied.locs, copied.expired.0)?
            } else {
                new_run(v, &planned, &copied.locs, keep)?
            };
            // A run of no entry is written only as a new base (§4.7).
            let new_run = (keep == 0 || !entries.is_empty()).then_some((next_number, entries));
            engine.publish(&mut w, &v.index, keep, new_run, meta, copied.expired)
        })
    });
    let base = match committed {
        Ok(b) => b,
        Err(e) => {
            for s in &outputs {
                let _ = std::fs::remove_file(&s.path);
            }
            return Err(e);
        }
    };
    // The new index is durable: switch readers over, then delete the
    // replaced files.
    w.generation += 1;
    w.next_number = next_segment_number(next_number)?;
    w.active = None;
    w.dirty = false;
    engine.replace_view(Index::new(Arc::new(base)), table.clone());
    w.pending_delete.extend(
        old.iter()
            .zip(chosen)
            .filter(|(_, c)| **c)
            .map(|(s, _)| s.path.clone()),
    );
    engine.delete_pending(&mut w)?;

    report.segments_rewritten = chosen.iter().filter(|c| **c).count() as u64;
    report.records_expired = copied.expired.0;
    report.records_written =
        (copied.locs.len() as u64 - copied.expired.0) + copied.tombstones as u64;
    report.segments_after = table.len() as u64;
    report.bytes_after = table.iter().map(|s| s.len()).sum();
    Ok(report)
}

/// What a compaction will do, decided from one view of the index.
struct Plan {
    /// The segments, by table position.
    segments: Vec<Arc<Segment>>,
    /// Per table position: whether the segment is rewritten.
    chosen: Vec<bool>,
    /// The live keys whose records lie in rewritten segments, with their
    /// locations, sorted by location.
    moving: Moving,
}

/// Keys with their locations, the key bytes in one arena: no allocation per
/// key, about 24 bytes per key plus its bytes.
#[derive(Default)]
struct Moving {
    arena: Vec<u8>,
    /// Location, then where the key starts in the arena and its length.
    entries: Vec<(Loc, usize, u32)>,
}

impl Moving {
    fn push(&mut self, key: &[u8], loc: Loc) {
        self.entries.push((loc, self.arena.len(), key.len() as u32));
        self.arena.extend_from_slice(key);
    }

    /// Orders the keys by (segment, offset) of their records, the order
    /// `copy` reads them in.
    fn sort_by_location(&mut self) {
        self.entries
            .sort_unstable_by_key(|(l, _, _)| (l.segment, l.offset));
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn loc(&self, i: usize) -> Loc {
        self.entries[i].0
    }

    fn key(&self, i: usize) -> &[u8] {
        let (_, at, len) = self.entries[i];
        self.arena.get(at..at + len as usize).unwrap_or_default()
    }

    /// Every key with its location, in order.
    fn iter(&self) -> impl Iterator<Item = (&[u8], Loc)> + '_ {
        (0..self.len()).map(|i| (self.key(i), self.loc(i)))
    }
}

/// Picks the segments to rewrite (all with `opts.full`; else those with at
/// least `min_dead_percent` of their record bytes dead, empty ones aside)
/// and the live keys in them: a pass over the index to count live bytes per
/// segment (skipped for a full compaction), and one more to collect the
/// moving keys (copied only for the rewritten segments).
fn plan(v: &View, opts: CompactOptions) -> Result<Plan> {
    let mut live = vec![0u64; v.segments.len()];
    if !opts.full {
        v.index.for_each_live(|_, loc| {
            if let Some(l) = live.get_mut(loc.segment as usize) {
                *l += u64::from(loc.len);
            }
        })?;
    }
    let chosen: Vec<bool> = v
        .segments
        .iter()
        .zip(live)
        .map(|(seg, live)| {
            let records = seg.len().saturating_sub(SEGMENT_HEADER_LEN as u64);
            let dead = records.saturating_sub(live);
            opts.full || (records > 0 && dead * 100 >= records * u64::from(opts.min_dead_percent))
        })
        .collect();
    let mut moving = Moving::default();
    if chosen.contains(&true) {
        v.index.for_each_live(|k, loc| {
            if chosen.get(loc.segment as usize).copied().unwrap_or(false) {
                moving.push(k, loc);
            }
        })?;
    }
    moving.sort_by_location();
    Ok(Plan {
        segments: v.segments.clone(),
        chosen,
        moving,
    })
}

/// New table positions of the segments left alone, and how many there are.
fn positions(plan: &Plan) -> (Vec<u32>, u32) {
    let mut position = vec![0u32; plan.chosen.len()];
    let mut kept = 0u32;
    for (p, c) in position.iter_mut().zip(&plan.chosen) {
        if !*c {
            *p = kept;
            kept += 1;
        }
    }
    (position, kept)
}

/// The entries of the new index's new run when a selective compaction
/// keeps the first `keep` runs of the index (FORMAT.md §5.2, §4.7): every
/// key that moved, every key of the delta and of the runs it replaces, at
/// its new location. Costs O(moved + delta + replaced runs), not O(N).
fn new_run<'a>(
    v: &'a View,
    plan: &'a Plan,
    moved: &[Loc],
    keep: usize,
) -> Result<Vec<(&'a [u8], Loc)>> {
    let (position, kept) = positions(plan);
    if moved.len() != plan.moving.len() {
        return Err(lost_track());
    }
    let new_loc: hashbrown::HashMap<&[u8], Loc> = plan
        .moving
        .iter()
        .zip(moved)
        .map(|((k, _), l)| {
            // An expired record dropped: a tombstone in the new run.
            let at = if l.len == 0 {
                TOMBSTONE
            } else {
                Loc {
                    segment: l.segment + kept,
                    ..*l
                }
            };
            (k, at)
        })
        .collect();
    merged_entries(&v.index, keep, new_loc.keys().copied(), |k, l| {
        match plan.chosen.get(l.segment as usize) {
            Some(true) => new_loc.get(k).copied().ok_or_else(lost_track),
            _ => Ok(Loc {
                segment: position
                    .get(l.segment as usize)
                    .copied()
                    .unwrap_or(u32::MAX),
                ..l
            }),
        }
    })
}

fn lost_track() -> Error {
    Error::corruption(
        "index.idx",
        0,
        "compaction lost track of a live record (a bug)",
    )
}

/// The entries of the new index's one base run: the keys that moved at
/// `moved` (aligned with `plan.moving`; in the run, which follows the
/// segments left alone), then every other live key of `v` at its segment's
/// new position. No per-key lookup: the moved keys come from the plan.
fn new_index<'a>(
    v: &'a View,
    plan: &'a Plan,
    moved: &[Loc],
    expired: u64,
) -> Result<Vec<(&'a [u8], Loc)>> {
    let (position, kept) = positions(plan);
    if moved.len() != plan.moving.len() {
        return Err(lost_track());
    }
    let mut entries: Vec<(&[u8], Loc)> = Vec::with_capacity(v.index.live_keys() as usize);
    for ((key, _), l) in plan.moving.iter().zip(moved) {
        if l.len == 0 {
            continue; // expired and dropped
        }
        entries.push((
            key,
            Loc {
                segment: l.segment + kept,
                ..*l
            },
        ));
    }
    if kept > 0 {
        v.index.for_each_live(|key, loc| {
            let at = loc.segment as usize;
            if !plan.chosen.get(at).copied().unwrap_or(false) {
                let segment = position.get(at).copied().unwrap_or(0);
                entries.push((key, Loc { segment, ..loc }));
            }
        })?;
    }
    let estimated = v.index.base().root().counts_estimated;
    if !estimated && entries.len() as u64 + expired != v.index.live_keys() {
        return Err(Error::corruption(
            "index.idx",
            0,
            "the index changed during compaction (a bug: writers wait for it)",
        ));
    }
    Ok(entries)
}

/// What [`copy`] wrote: the new location of every record of `plan.moving`,
/// in its order ([`TOMBSTONE`] for one dropped because it expired), and
/// how many tombstones it wrote.
struct Copied {
    locs: Vec<Loc>,
    tombstones: usize,
    /// Records dropped because they expired, and their bytes.
    expired: (u64, u64),
}

/// Copies the live records of the chosen segments into the run, and, when
/// some segments are left alone, the tombstones they may still need: a
/// tombstone of a key that is absent now, from a chosen segment with an
/// older segment left alone (which may hold a put of that key that a
/// rebuild would otherwise replay; FORMAT.md §5.2).
fn copy(run: &mut RunWriter<'_>, engine: &Engine, plan: &Plan) -> Result<Copied> {
    let live = &plan.moving;
    run.start_segment()?;
    let mut copied = Copied {
        locs: Vec::with_capacity(live.len()),
        tombstones: 0,
        expired: (0, 0),
    };
    let now = unix_now_ms();
    let mut encoder = snap::raw::Encoder::new();
    let mut tombstone = Vec::new();
    let mut kept_tombstones: HashSet<Vec<u8>> = HashSet::new();
    let first_kept = plan.chosen.iter().position(|c| !c);
    let mut i = 0;
    for (pos, seg) in plan.segments.iter().enumerate() {
        if !plan.chosen.get(pos).copied().unwrap_or(false) {
            continue;
        }
        let start = i;
        while i < live.len() && live.loc(i).segment as usize == pos {
            i += 1;
        }
        let data = seg.contents()?;
        for j in start..i {
            let (key, loc) = (live.key(j), live.loc(j));
            let (bytes, expires_at) = checked_record(seg, &data, key, loc)?;
            if expires_at.is_some_and(|t| t <= now) {
                // Expired: dropped. Where older segments stay, one of them
                // may hold an older put of the key that a rebuild would
                // replay: a tombstone goes in its place (FORMAT.md §5.2).
                if first_kept.is_some() {
                    tombstone.clear();
                    record::encode(&mut tombstone, key, None, None, false, &mut encoder);
                    run.push(&tombstone)?;
                    copied.tombstones += 1;
                }
                copied.locs.push(TOMBSTONE);
                copied.expired.0 += 1;
                copied.expired.1 += u64::from(loc.len);
                continue;
            }
            copied.locs.push(run.push(bytes)?);
        }
        if first_kept.is_some_and(|k| k < pos) {
            copy_tombstones(run, engine, seg, &data, &mut kept_tombstones, &mut copied)?;
        }
    }
    Ok(copied)
}

/// The bytes of the live record at `loc` in `data` (segment `seg`), its
/// checksum checked and its key `key`, and its expiry time if it has one.
fn checked_record<'d>(
    seg: &Segment,
    data: &'d [u8],
    key: &[u8],
    loc: Loc,
) -> Result<(&'d [u8], Option<u64>)> {
    let (off, len) = (loc.offset as usize, loc.len as usize);
    let bytes = data.get(off..off + len).ok_or_else(|| {
        Error::corruption(
            seg.name(),
            off as u64,
            "record runs past the end of the segment",
        )
    })?;
    let rec = record::decode(bytes)
        .map_err(|e| Error::corruption(seg.name(), off as u64, e.describe()))?;
    if rec.key != key || rec.len != len || rec.is_tombstone() {
        return Err(Error::corruption(
            seg.name(),
            off as u64,
            "record does not match its index entry",
        ));
    }
    Ok((bytes, rec.expires_at))
}

/// Copies the tombstones of `seg` (contents `data`) whose keys are absent
/// now, each key once. Damage in the segment stops the compaction: a
/// tombstone in it could not be carried over.
fn copy_tombstones(
    run: &mut RunWriter<'_>,
    engine: &Engine,
    seg: &Segment,
    data: &[u8],
    kept: &mut HashSet<Vec<u8>>,
    copied: &mut Copied,
) -> Result<()> {
    let body = data.get(SEGMENT_HEADER_LEN..).unwrap_or_default();
    let mut wanted: Vec<(u64, usize)> = Vec::new();
    let scanned = scan::scan(body, SEGMENT_HEADER_LEN as u64, false, |batch| {
        for (off, rec) in batch {
            if rec.is_tombstone() && !kept.contains(rec.key) && !engine.contains(rec.key)? {
                kept.insert(rec.key.to_vec());
                wanted.push((*off, rec.len));
            }
        }
        Ok::<(), Error>(())
    })?;
    if let Some(t) = scanned.tail {
        return Err(Error::corruption(
            seg.name(),
            t.offset,
            format!(
                "{}; a selective compaction must read every tombstone of the segments it rewrites (repair it with rebuild-index, or compact with full)",
                t.reason
            ),
        ));
    }
    for (off, len) in wanted {
        let bytes = data
            .get(off as usize..off as usize + len)
            .unwrap_or_default();
        run.push(bytes)?;
        copied.tombstones += 1;
    }
    Ok(())
}
