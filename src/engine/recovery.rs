//! Opening a database directory: load `index.idx`, account for every segment
//! file on disk, and replay only the bytes written after the index
//! (FORMAT.md §6).
//!
//! Segment files on disk that the index does not list are classified by the
//! index's `next_segment_number`:
//! - number below it, with a valid header naming it: obsolete (compaction
//!   replaced it and committed a new index before it could be deleted) and
//!   deleted now; with a damaged header it is reported (corruption), never
//!   deleted: s4db cannot prove what it holds;
//! - number at or above it, written by compaction: an orphan of a compaction
//!   that crashed before its index commit; its data is a copy of data the old
//!   segments still hold, and it is deleted after the next index write;
//! - any other at or above it: written after the index; replayed in order.
//!
//! Only the last segment may end in a torn tail: every earlier one was
//! fsynced when it was sealed. A torn tail is cut, its bytes kept in a
//! `.torn-OFFSET` file beside the segment; bad bytes anywhere else are a
//! corruption error that names the segment and offset.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::engine::files::read_header;
use crate::engine::segment::Segment;
use crate::error::{Error, IoContext, Result};
use crate::format::index_file::{INDEX_FILE_NAME, INDEX_HEADER_LEN, ObsoleteEntry, SEGTAB_SEALED};
use crate::format::root;
use crate::format::scan::{self, Item};
use crate::format::segment_header::{SEGMENT_HEADER_LEN, SegmentHeader};
use crate::format::segment_id::SegmentId;
use crate::index::base::{BaseIndex, REBUILD_HINT};
use crate::index::layers::Layers;
use crate::index::live::Index;
use crate::index::loc::Loc;
use crate::io::fs::Fs;
use crate::report::{DamagedRange, RebuildReport};

/// Everything an engine needs to start, as recovered from disk.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub writer_id: u64,
    pub segments: Vec<Arc<Segment>>,
    pub index: Index,
    /// The segment new writes append to, if the last one can take them.
    pub active: Option<Arc<Segment>>,
    pub next_number: u64,
    pub generation: u64,
    /// Segments dropped by earlier commits, awaiting remote garbage collection.
    pub obsolete: Vec<ObsoleteEntry>,
    /// Index runs dropped by earlier commits, awaiting remote garbage
    /// collection.
    pub obsolete_runs: Vec<ObsoleteEntry>,
    /// Files to delete once an index that does not need them is durable.
    pub pending_delete: Vec<PathBuf>,
    /// The index on disk does not describe this state; write one soon.
    pub dirty: bool,
    /// Set when the index was rebuilt from the segments.
    pub rebuild: Option<RebuildReport>,
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// Opens a segment file whose header was checked. `max_segment` is the
/// size limit: the segment's map reserves at least that much.
pub(crate) fn open_segment(
    path: &Path,
    header: SegmentHeader,
    len: u64,
    sealed: bool,
    writable: bool,
    max_segment: u64,
    fs: &Fs,
) -> Result<Segment> {
    let file = OpenOptions::new()
        .read(true)
        .write(writable)
        .open(path)
        .ctx(|| format!("opening {}", path.display()))?;
    let size = file
        .metadata()
        .ctx(|| format!("reading size of {}", path.display()))?
        .len();
    Ok(Segment::new(
        header,
        path.to_path_buf(),
        file,
        len,
        sealed,
        size.max(max_segment),
        fs.clone(),
    ))
}

/// Applies one complete batch found in segment `pos` to the index.
pub(crate) fn apply_batch(
    index: &mut Index,
    pos: u32,
    seg_name: &str,
    batch: &[Item<'_>],
) -> Result<()> {
    // All or nothing: check the pages first, so no apply below can fail.
    index.check_pages_for(batch.iter().map(|(_, rec)| rec.key))?;
    for (off, rec) in batch {
        let offset = u32::try_from(*off).map_err(|_| {
            Error::corruption(seg_name, *off, "record beyond the 4 GiB segment limit")
        })?;
        let loc = (!rec.is_tombstone()).then_some(Loc {
            segment: pos,
            offset,
            len: rec.len as u32,
        });
        if rec.expires_at.is_some() {
            index.note_expiry();
        }
        index.apply(rec.key, loc)?;
    }
    Ok(())
}

/// Cuts a torn tail off `seg` at `good_end`, keeping the cut bytes in a
/// `.torn-OFFSET` file beside it, and seals it: nothing is appended to a cut
/// segment again, so a reader that read the cut bytes before they went
/// never meets other bytes in their place (FORMAT.md §6.2, §6.4). Read-only
/// handles only report it.
pub(crate) fn cut_tail(
    seg: &Segment,
    good_end: u64,
    reason: &str,
    writable: bool,
) -> Result<DamagedRange> {
    let tail = seg.read_from(good_end)?;
    let range = DamagedRange {
        file: seg.name(),
        start: good_end,
        end: good_end + tail.len() as u64,
        reason: reason.to_string(),
    };
    if writable {
        tracing::warn!(segment = %range.file, offset = good_end, bytes = tail.len(), reason, "cutting a torn tail");
        let keep = seg
            .path
            .with_file_name(format!("{}.torn-{good_end}", seg.name()));
        fs::write(&keep, &tail)
            .and_then(|()| fs::File::open(&keep)?.sync_all())
            .ctx(|| format!("saving torn tail to {}", keep.display()))?;
        let file = seg.file()?;
        file.set_len(good_end)
            .and_then(|()| file.sync_all())
            .ctx(|| format!("truncating {}", seg.path.display()))?;
        seg.mark_sealed();
    } else {
        // A read-only view ends at the last complete batch; a writer may be
        // appending the rest right now (FORMAT.md §6.4).
        tracing::debug!(segment = %range.file, offset = good_end, bytes = tail.len(), reason, "leaving out an unfinished batch");
    }
    seg.set_len(good_end);
    Ok(range)
}

/// Opens `index.idx` in `dir` and the runs it names (FORMAT.md §4.7, §4.8),
/// each run mapped when the system allows (else read), with its header,
/// tables and directory checked; pages are checked as they are used. A
/// version-1 `index.idx` is mapped and is its own only run. `Ok(None)` when
/// there is no `index.idx`.
///
/// # Errors
/// [`Error::Corruption`] naming the file that fails a check, or a run the
/// root names that is missing; [`Error::Io`] if reading fails.
pub(crate) fn load_index(dir: &Path) -> Result<Option<Layers>> {
    let Some((root, root_mapped)) = map_file(dir, INDEX_FILE_NAME)? else {
        return Ok(None);
    };
    let layers = if root::is_root(&root) {
        let decoded =
            root::decode(&root).map_err(|(o, d)| Error::corruption(INDEX_FILE_NAME, o, d));
        let decoded = decoded.map_err(with_hint)?;
        let mut runs = Vec::with_capacity(decoded.runs.len());
        for r in &decoded.runs {
            let name = r.id.run_file_name();
            let Some((bytes, mapped)) = map_file(dir, &name)? else {
                return Err(with_hint(Error::corruption(
                    name,
                    0,
                    "index.idx names this index run, but it is missing",
                )));
            };
            let run =
                BaseIndex::decode_lazy(bytes, mapped).map_err(|e| with_hint(e.in_file(&name)))?;
            runs.push(Arc::new(run));
        }
        Layers::new(decoded, runs).map_err(with_hint)?
    } else {
        Layers::from_v1(BaseIndex::decode_lazy(root, root_mapped).map_err(with_hint)?)
    };
    Ok(Some(layers))
}

/// The bytes of `dir/name`, mapped (or read, where mapping fails), and
/// whether they are mapped; `None` if there is no such file.
///
/// # Errors
/// [`Error::Io`] if the file cannot be opened or read.
pub(crate) fn map_file(dir: &Path, name: &str) -> Result<Option<(bytes::Bytes, bool)>> {
    let path = dir.join(name);
    let io = |e| Error::io(format!("reading {}", path.display()), e);
    let mut file = match fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let len = file.metadata().map_err(io)?.len();
    match crate::io::mmap::map_whole(&file, len) {
        Ok(Some(map)) => Ok(Some((map, true))),
        Ok(None) | Err(_) => {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).map_err(io)?;
            Ok(Some((bytes.into(), false)))
        }
    }
}

/// A corruption error of the local index, with how to repair it.
fn with_hint(e: Error) -> Error {
    match e {
        Error::Corruption { location, detail } if !detail.contains(REBUILD_HINT) => {
            Error::Corruption {
                location,
                detail: format!("{detail} ({REBUILD_HINT})"),
            }
        }
        other => other,
    }
}

/// What a rebuild continues from: the identity and counters of the index it
/// replaces, where they are known (FORMAT.md §6.3 step 4).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lineage {
    pub writer_id: u64,
    /// The rebuilt index's generation is above this one.
    pub generation: u64,
    /// No segment number below this is given out again.
    pub min_next_number: u64,
    /// How many keys the index it replaces held, where known (else 0): the
    /// rebuilt index makes room for that many up front.
    pub keys_hint: u64,
}

/// What identifies the current `index.idx` (inode, size, modification
/// time): it changes when the file is replaced. `None` if there is none.
pub(crate) fn index_identity(dir: &Path) -> Option<(u64, u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(dir.join(INDEX_FILE_NAME)).ok()?;
    Some((m.ino(), m.len(), m.modified().ok()?))
}

/// The identity and counters a rebuild continues from: those of the
/// current `index.idx` when its header is intact, else a new writer id
/// (FORMAT.md §6.3 step 4).
pub(crate) fn lineage_of(dir: &Path) -> Result<Lineage> {
    let path = dir.join(INDEX_FILE_NAME);
    let mut head = Vec::with_capacity(INDEX_HEADER_LEN);
    if let Ok(f) = fs::File::open(&path) {
        f.take(INDEX_HEADER_LEN as u64)
            .read_to_end(&mut head)
            .ctx(|| format!("reading {}", path.display()))?;
    }
    Ok(match root::identity(&head) {
        Ok((writer_id, generation, min_next_number)) => Lineage {
            writer_id,
            generation,
            min_next_number,
            keys_hint: 0,
        },
        Err(_) => Lineage {
            writer_id: crate::format::segment_id::new_writer_id()?,
            generation: 0,
            min_next_number: 0,
            keys_hint: 0,
        },
    })
}

/// Recovers a directory whose `index.idx` loaded as `base`.
pub(crate) fn recover_with_index(
    dir: &Path,
    base: Layers,
    disk: Vec<(SegmentId, PathBuf)>,
    writable: bool,
    max_segment: u64,
    remote_backed: bool,
    fs: &Fs,
) -> Result<Recovered> {
    let (writer_id, generation) = (base.writer_id(), base.generation());
    let next_segment_number = base.next_segment_number();
    let table = base.segments().to_vec();
    let obsolete = base.obsolete().to_vec();
    let obsolete_runs = base.root().obsolete_runs.clone();
    let mut on_disk: BTreeMap<SegmentId, PathBuf> = disk.into_iter().collect();
    // Runs share the segments' number sequence: a number on disk stays used.
    let listed: Vec<SegmentId> = base.run_ids().collect();
    let mut unlisted_runs = Vec::new();
    let mut max_on_disk = on_disk.keys().map(|id| id.number).max().unwrap_or(0);
    for (id, path) in crate::engine::files::list_runs(dir)? {
        max_on_disk = max_on_disk.max(id.number);
        if !listed.contains(&id) {
            unlisted_runs.push(path);
        }
    }
    let mut segments = Vec::with_capacity(table.len());
    for e in &table {
        let Some(path) = on_disk.remove(&e.id) else {
            if remote_backed {
                // Only the remote holds it: reads go there.
                let path = dir.join(e.id.file_name());
                segments.push(Arc::new(Segment::remote(
                    SegmentHeader::plain(e.id),
                    path,
                    e.indexed_len,
                )));
                continue;
            }
            return Err(Error::corruption(
                INDEX_FILE_NAME,
                96,
                format!(
                    "segment {} listed in index.idx is missing (if this directory reads through a remote, open it with that remote attached)",
                    e.id
                ),
            ));
        };
        let header = read_header(&path)?.map_err(|d| Error::corruption(e.id.file_name(), 0, d))?;
        if header.id != e.id {
            return Err(Error::corruption(
                e.id.file_name(),
                0,
                "segment header names another segment",
            ));
        }
        let sealed = e.flags & SEGTAB_SEALED != 0;
        segments.push(Arc::new(open_segment(
            &path,
            header,
            e.indexed_len,
            sealed,
            writable,
            max_segment,
            fs,
        )?));
    }

    let mut index = Index::new(Arc::new(base));
    // An index run that index.idx does not name is left by a checkpoint
    // that crashed before its root, or dropped by a merge: it holds no
    // record, only locations, and goes after the next index write (the
    // index.idx on disk may still name it while `base` is being adopted).
    let mut dirty = !unlisted_runs.is_empty();
    let mut pending_delete = if writable { unlisted_runs } else { Vec::new() };
    let mut fresh: Vec<(PathBuf, std::result::Result<SegmentHeader, &'static str>)> = Vec::new();
    for (id, path) in on_disk {
        if id.number < next_segment_number {
            let header = match read_header(&path) {
                // Gone since the listing: a writer deleted it once an index
                // that no longer needs it was durable (a reader beside a
                // writer sees this, FORMAT.md §6.4). Nothing to keep.
                Err(_) if !path.exists() => continue,
                other => other?,
            };
            match header {
                Ok(hdr) if hdr.id == id => {}
                _ => {
                    return Err(Error::corruption(
                        id.file_name(),
                        0,
                        "a file named like a segment, not listed in index.idx, has a damaged header; s4db keeps it and stops: move it out of the directory, or rebuild the index (`s4db rebuild-index`) to set it aside",
                    ));
                }
            }
            // Deleted only once an index that does not list it is durable:
            // `base` may be an index about to be adopted (a download, a
            // rebase, a discard), while index.idx on disk still lists it.
            tracing::info!(segment = %id, "a segment obsoleted by compaction or a sync will be removed");
            if writable {
                pending_delete.push(path);
            }
            dirty = true;
            continue;
        }
        match read_header(&path)? {
            Ok(hdr) if hdr.is_compacted() => {
                tracing::info!(segment = %id, "found the output of an unfinished compaction; it will be removed");
                pending_delete.push(path);
            }
            Ok(hdr) if hdr.id != id => {
                return Err(Error::corruption(
                    id.file_name(),
                    0,
                    "segment header names another segment",
                ));
            }
            other => fresh.push((path, other)),
        }
    }

    // Replay the tails of listed segments, then every newer segment.
    let fresh_count = fresh.len();
    for (i, (path, hdr)) in fresh.into_iter().enumerate() {
        let is_last = i + 1 == fresh_count;
        let hdr = match hdr {
            Ok(hdr) => hdr,
            Err(d) => {
                let size = fs::metadata(&path)
                    .ctx(|| format!("reading size of {}", path.display()))?
                    .len();
                if is_last && size < SEGMENT_HEADER_LEN as u64 {
                    // A crash while the segment was being created: no record
                    // can be in it. Its number stays used: it is deleted only
                    // after an index whose next_segment_number is past it.
                    pending_delete.push(path);
                    continue;
                }
                return Err(Error::corruption(file_name(&path), 0, d));
            }
        };
        let seg = open_segment(
            &path,
            hdr,
            SEGMENT_HEADER_LEN as u64,
            false,
            writable,
            max_segment,
            fs,
        )?;
        segments.push(Arc::new(seg));
    }
    let last = segments.len().saturating_sub(1);
    for (pos, seg) in segments.iter().enumerate() {
        if !seg.is_local() {
            continue; // held by the remote; sealed, nothing to replay
        }
        let size = seg
            .file()?
            .metadata()
            .ctx(|| format!("reading size of {}", seg.path.display()))?
            .len();
        let from = seg.len();
        if size < from {
            return Err(Error::corruption(
                seg.name(),
                size,
                format!("file is {size} bytes but index.idx covers {from}"),
            ));
        }
        if size == from {
            continue;
        }
        dirty = true;
        let buf = seg.read_from(from)?;
        let name = seg.name();
        let scanned = scan::scan(&buf, from, false, |batch| {
            apply_batch(&mut index, pos as u32, &name, batch)
        })?;
        seg.set_len(scanned.good_end);
        if let Some(tail) = scanned.tail {
            if pos != last {
                return Err(Error::corruption(
                    name,
                    tail.offset,
                    format!(
                        "{} in a sealed segment (repair, keeping every good record: CLI: s4db rebuild-index; library: DbBuilder::rebuild_index)",
                        tail.reason
                    ),
                ));
            }
            cut_tail(seg, scanned.good_end, &tail.reason, writable)?;
        }
    }
    for seg in segments.iter().take(last) {
        seg.mark_sealed();
    }
    let active = segments
        .last()
        .filter(|s| {
            writable && s.id().writer == writer_id && !s.header.is_compacted() && !s.is_sealed()
        })
        .cloned();
    Ok(Recovered {
        writer_id,
        segments,
        index,
        active,
        next_number: next_segment_number.max(max_on_disk.saturating_add(1)),
        generation,
        obsolete,
        obsolete_runs,
        pending_delete,
        dirty,
        rebuild: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::files::list_segments;

    /// The race a reader beside a writer meets: the reader lists the
    /// directory, the writer's compaction publishes an index that no longer
    /// needs the old segments and deletes them, the reader loads that index
    /// and reads the headers of what it listed.
    #[test]
    fn a_read_only_open_skips_an_obsolete_segment_deleted_after_its_listing() {
        let d = tempfile::tempdir().unwrap();
        let db = crate::blocking::Db::open(d.path()).unwrap();
        for v in ["old", "new"] {
            for i in 0..100 {
                db.put(format!("k{i:03}"), v).unwrap();
            }
        }
        db.flush().unwrap();
        let listed = list_segments(d.path()).unwrap();
        db.compact().unwrap();
        db.close().unwrap();
        let gone: Vec<_> = listed.iter().filter(|(_, p)| !p.exists()).collect();
        assert!(!gone.is_empty(), "compaction deleted none of {listed:?}");
        // The listing saw the compaction's new segment and the old ones.
        let mut disk: BTreeMap<SegmentId, PathBuf> = listed.into_iter().collect();
        disk.extend(list_segments(d.path()).unwrap());

        let base = load_index(d.path()).unwrap().unwrap();
        let disk = disk.into_iter().collect();
        let rec =
            recover_with_index(d.path(), base, disk, false, 64 << 20, false, &Fs::real()).unwrap();
        assert!(rec.active.is_none());
        assert_eq!(rec.index.live_keys(), 100);
        assert!(rec.index.get(b"k042").unwrap().is_some());
    }

    /// Leaves `dir` holding `base0..base49`, indexed, and at the end of its
    /// last segment an unfinished batch (`torn0..torn199`, less the end of
    /// its last record), as a writer killed mid-batch leaves it. Returns the
    /// last segment and its good end.
    fn with_a_torn_tail(dir: &Path) -> (PathBuf, u64) {
        let other = tempfile::tempdir().unwrap();
        let db = crate::blocking::Db::open(other.path()).unwrap();
        let seg = list_segments(other.path()).unwrap();
        let before = seg
            .last()
            .map_or(0, |(_, p)| fs::metadata(p).unwrap().len());
        let mut b = crate::WriteBatch::new();
        for i in 0..200 {
            b.put(format!("torn{i}"), vec![i as u8; 1000]).unwrap();
        }
        db.write(b).unwrap();
        db.flush().unwrap();
        let (_, path) = list_segments(other.path()).unwrap().pop().unwrap();
        let bytes = fs::read(&path).unwrap();
        let torn = bytes[before.max(SEGMENT_HEADER_LEN as u64) as usize..bytes.len() - 10].to_vec();
        db.close().unwrap();

        let db = crate::blocking::Db::open(dir).unwrap();
        for i in 0..50 {
            db.put(format!("base{i}"), format!("value {i}")).unwrap();
        }
        db.close().unwrap();
        let (_, last) = list_segments(dir).unwrap().pop().unwrap();
        let good_end = fs::metadata(&last).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&last).unwrap();
        std::io::Write::write_all(&mut f, &torn).unwrap();
        (last, good_end)
    }

    /// Reads as the real calls do, but first cuts `path` to `to`, once: a
    /// writer's open cutting the torn tail after a reader read the size of
    /// the file and before it read its bytes.
    struct CutBeforeRead {
        path: PathBuf,
        to: u64,
        done: std::sync::atomic::AtomicBool,
    }

    impl crate::io::fs::FileOps for CutBeforeRead {
        fn write_all_at(&self, f: &fs::File, buf: &[u8], at: u64) -> std::io::Result<()> {
            std::os::unix::fs::FileExt::write_all_at(f, buf, at)
        }
        fn sync_data(&self, f: &fs::File) -> std::io::Result<()> {
            f.sync_data()
        }
        fn sync_all(&self, f: &fs::File) -> std::io::Result<()> {
            f.sync_all()
        }
        fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
            fs::rename(from, to)
        }
        fn read_at(&self, f: &fs::File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
            if !self.done.swap(true, std::sync::atomic::Ordering::SeqCst) {
                OpenOptions::new()
                    .write(true)
                    .open(&self.path)?
                    .set_len(self.to)?;
            }
            std::os::unix::fs::FileExt::read_at(f, buf, at)
        }
    }

    #[test]
    fn a_read_only_open_whose_segment_is_cut_between_its_size_and_its_read_sees_the_committed_batches()
     {
        let d = tempfile::tempdir().unwrap();
        let (last, good_end) = with_a_torn_tail(d.path());
        let fs = Fs::with(Arc::new(CutBeforeRead {
            path: last.clone(),
            to: good_end,
            done: false.into(),
        }));
        let base = load_index(d.path()).unwrap().unwrap();
        let disk = list_segments(d.path()).unwrap();
        let rec = recover_with_index(d.path(), base, disk, false, 64 << 20, false, &fs).unwrap();
        assert_eq!(
            fs::metadata(&last).unwrap().len(),
            good_end,
            "the cut happened"
        );
        assert_eq!(rec.index.live_keys(), 50);
        let (seg, loc) = (
            rec.segments.last().unwrap(),
            rec.index.get(b"base49").unwrap().unwrap(),
        );
        assert_eq!(seg.len(), good_end);
        let value = seg.read_value(b"base49", u64::from(loc.offset), loc.len as usize);
        assert_eq!(value.unwrap().unwrap(), b"value 49");
        assert!(rec.index.get(b"torn0").unwrap().is_none());
    }

    /// A writer never appends to a segment whose torn tail it cut, so a
    /// reader that read the cut bytes never meets other bytes in their
    /// place (FORMAT.md §6.2, §6.4).
    #[test]
    fn a_writer_that_cut_a_torn_tail_appends_to_a_new_segment() {
        let d = tempfile::tempdir().unwrap();
        let (last, good_end) = with_a_torn_tail(d.path());
        let db = crate::blocking::Db::open(d.path()).unwrap();
        assert_eq!(
            fs::metadata(&last).unwrap().len(),
            good_end,
            "the tail was cut"
        );
        db.put("after", "the cut").unwrap();
        db.close().unwrap();
        assert_eq!(
            fs::metadata(&last).unwrap().len(),
            good_end,
            "appended to the cut segment"
        );
        let (_, newest) = list_segments(d.path()).unwrap().pop().unwrap();
        assert_ne!(newest, last);
        let db = crate::blocking::Db::open(d.path()).unwrap();
        assert_eq!(db.get("after").unwrap().unwrap(), "the cut");
        assert_eq!(db.get("base7").unwrap().unwrap(), "value 7");
        assert_eq!(db.len(), 51);
    }
}
