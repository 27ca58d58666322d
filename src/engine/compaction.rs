//! Compaction: rewrite every live record into new segments and drop the rest
//! (FORMAT.md §5).
//!
//! Compaction is always full: the active segment is sealed, every live
//! record (checksum and key checked) is copied into a new *run* of segments
//! with new numbers, flagged as compaction output with the run's first
//! number, the last flagged as the run's end. Because the run holds every
//! live key, nothing older is needed afterwards, so every overwritten record
//! and every tombstone is dropped.
//!
//! Crash safety, in order: (1) the run is written and fsynced, (2) the new
//! `index.idx` is committed atomically, (3) only then are the old segments
//! deleted. A crash before (2) leaves an unfinished run that the next open
//! removes; a crash after (2) leaves old segments that the next open deletes
//! as obsolete. Readers keep working throughout: they hold handles to the old
//! segments until they look up through the new index.

use std::sync::Arc;

use crate::engine::segment::Segment;
use crate::engine::{Engine, Snapshot, create_segment_file};
use crate::error::{Error, IoContext, Result};
use crate::format::index_file::{self, IndexMeta, SEGTAB_SEALED, SegmentEntry};
use crate::format::record::{self, FLAG_BATCH_CONT};
use crate::format::segment_header::{
    SEG_FLAG_COMPACTED, SEG_FLAG_RUN_LAST, SEGMENT_HEADER_LEN, SegmentHeader,
};
use crate::format::segment_id::SegmentId;
use crate::index::base::BaseIndex;
use crate::index::live::Index;
use crate::index::loc::Loc;
use crate::io::fsutil::sync_dir;
use crate::report::CompactionReport;

const WRITE_CHUNK: usize = 1 << 20;

/// Writes the output run.
struct RunWriter<'a> {
    engine: &'a Engine,
    run_first: u64,
    next_number: u64,
    outputs: Vec<Segment>,
    buf: Vec<u8>,
    /// Length of the current output including buffered bytes.
    cur_len: u64,
}

impl RunWriter<'_> {
    fn header(&self, number: u64, last: bool) -> SegmentHeader {
        let flags = SEG_FLAG_COMPACTED | if last { SEG_FLAG_RUN_LAST } else { 0 };
        SegmentHeader {
            id: SegmentId {
                number,
                writer: self.engine.writer_id(),
            },
            flags,
            run_first: self.run_first,
        }
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

/// Compacts the database behind `engine`.
pub(crate) fn compact(engine: &Engine) -> Result<CompactionReport> {
    engine.check_writable()?;
    let mut w = engine.writer();
    engine.seal_active(&mut w)?;
    let mut snap = engine.capture(None)?;
    snap.items
        .sort_unstable_by_key(|(_, l)| (l.segment, l.offset));
    let (old, live) = (&snap.segments, &snap.items);
    let mut report = CompactionReport {
        segments_before: old.len() as u64,
        bytes_before: old.iter().map(|s| s.len()).sum(),
        ..CompactionReport::default()
    };

    let mut run = RunWriter {
        engine,
        run_first: w.next_number,
        next_number: w.next_number,
        outputs: Vec::new(),
        buf: Vec::with_capacity(WRITE_CHUNK + (64 << 10)),
        cur_len: 0,
    };
    let result = copy_live(&mut run, &snap).and_then(|locs| {
        run.finish()?;
        Ok(locs)
    });
    let new_locs = match result {
        Ok(l) => l,
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

    let entries: Vec<(&[u8], Loc)> = live
        .iter()
        .zip(&new_locs)
        .map(|((k, _), l)| (k.as_ref(), *l))
        .collect();
    let meta = IndexMeta {
        writer_id: engine.writer_id(),
        generation: w.generation + 1,
        next_segment_number: next_number,
        segments: outputs
            .iter()
            .map(|s| SegmentEntry {
                id: s.id(),
                indexed_len: s.len(),
                flags: SEGTAB_SEALED,
            })
            .collect(),
        obsolete: w.obsolete.clone(),
    };
    let committed = BaseIndex::from_built(index_file::build(&meta, &entries))
        .and_then(|base| engine.publish_index(base));
    let base = match committed {
        Ok(b) => b,
        Err(e) => {
            for s in &outputs {
                let _ = std::fs::remove_file(&s.path);
            }
            return Err(e);
        }
    };
    // The new index is durable: switch readers over, then delete the old files.
    w.generation += 1;
    w.next_number = next_number;
    w.active = None;
    w.dirty = false;
    engine.replace_view(Index::new(Arc::new(base)), outputs.clone());
    w.pending_delete.extend(old.iter().map(|s| s.path.clone()));
    engine.delete_pending(&mut w)?;

    report.records_written = live.len() as u64;
    report.segments_after = outputs.len() as u64;
    report.bytes_after = outputs.iter().map(|s| s.len()).sum();
    Ok(report)
}

fn copy_live(run: &mut RunWriter<'_>, snap: &Snapshot) -> Result<Vec<Loc>> {
    let live = &snap.items;
    run.start_segment()?;
    let mut locs = Vec::with_capacity(live.len());
    let mut i = 0;
    while i < live.len() {
        let first = live[i].1;
        let end = live[i..]
            .iter()
            .position(|(_, l)| l.segment != first.segment)
            .map_or(live.len(), |n| i + n);
        let seg = snap.segment(first)?;
        let data = seg.contents()?;
        for (key, loc) in &live[i..end] {
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
            if rec.key != key.as_ref() || rec.len != len || rec.is_tombstone() {
                return Err(Error::corruption(
                    seg.name(),
                    off as u64,
                    "record does not match its index entry",
                ));
            }
            locs.push(run.push(bytes)?);
        }
        i = end;
    }
    Ok(locs)
}
