//! The engine: the synchronous core behind [`crate::Db`] and
//! [`crate::blocking::Db`].
//!
//! Concurrency: one writer at a time holds `writer` (appends, sealing,
//! checkpoints, compaction); readers take `state` for reading only long
//! enough to look up a location and clone the segment's handle, then read
//! without any lock. Lock order: `writer`, then `state`. A segment file that
//! compaction deletes stays readable through handles cloned before.
//!
//! Durability: an append reaches the page cache before the write returns;
//! `SyncPolicy` decides when it is fsynced (see [`GroupCommit`]). A
//! checkpoint fsyncs the active segment, then replaces `index.idx`
//! atomically, then deletes files the new index no longer needs.

pub(crate) mod checkpoint;
pub(crate) mod compaction;
#[cfg(test)]
mod fault_tests;
pub(crate) mod files;
pub(crate) mod group_commit;
pub(crate) mod rebuild;
pub(crate) mod recovery;
pub(crate) mod segment;
pub(crate) mod verify;
pub(crate) mod view;

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard, RwLock};

use crate::batch::{WriteBatch, check_key};
use crate::error::{Error, IoContext, Result};
use crate::format::index_file::{
    INDEX_FILE_NAME, IndexMeta, ObsoleteEntry, SEGTAB_SEALED, SegmentEntry,
};
use crate::format::limits::{MAX_SEGMENT_SIZE_LIMIT, MIN_SEGMENT_SIZE_LIMIT};
use crate::format::segment_header::{SEGMENT_HEADER_LEN, SegmentHeader};
use crate::format::segment_id::SegmentId;
use crate::index::layers::Layers;
use crate::index::live::Index;
use crate::index::loc::Loc;
use crate::io::fs::Fs;
use crate::io::fsutil::sync_dir;
use crate::io::lock::DirLock;
use crate::options::{Options, SyncPolicy};
use crate::remote::ctx::RemoteCtx;
use crate::report::{RebuildReport, Stats};
use group_commit::GroupCommit;
use recovery::Recovered;
use segment::{Segment, segment_path};
pub(crate) use view::Snapshot;
pub(crate) use view::View;

/// Fold the delta into a new `index.idx` once it holds this many keys, or as
/// many as the base, whichever is more (so rewrites cost O(1) per write).
const CHECKPOINT_MIN_DELTA: usize = 1 << 20;

/// How often a read-only open starts again when a writer replaced
/// `index.idx` while it was opening.
const READER_OPEN_ATTEMPTS: u32 = 20;

/// What only the writer touches.
#[derive(Debug)]
pub(crate) struct Writer {
    pub active: Option<(Arc<Segment>, u32)>,
    pub next_number: u64,
    pub generation: u64,
    /// Segments dropped from the index that remote readers may still need.
    pub obsolete: Vec<ObsoleteEntry>,
    /// Index runs dropped likewise.
    pub obsolete_runs: Vec<ObsoleteEntry>,
    pub pending_delete: Vec<PathBuf>,
    /// The state differs from what `index.idx` describes.
    pub dirty: bool,
    /// The database metadata the next index write commits (FORMAT.md §4.8),
    /// ascending by name.
    pub metadata: Vec<(String, Bytes)>,
}

pub(crate) struct Engine {
    dir: PathBuf,
    opts: Options,
    writer_id: u64,
    state: RwLock<View>,
    writer: Mutex<Writer>,
    group: GroupCommit,
    closed: AtomicBool,
    /// The attached remote, if any.
    remote: Option<Arc<RemoteCtx>>,
    /// Serialises remote operations (upload, download, gc) of this handle.
    sync_lock: tokio::sync::Mutex<()>,
    /// Released by `close()`, so the directory can be reopened at once.
    lock: Mutex<Option<DirLock>>,
    /// The directory of an in-memory database, removed by `close()` (and so
    /// when the engine is dropped).
    scratch: Mutex<Option<tempfile::TempDir>>,
}

/// Checks a metadata name: 1 to 65,535 bytes of UTF-8 (FORMAT.md §4.8).
fn check_metadata_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > usize::from(u16::MAX) {
        return Err(Error::InvalidArgument(format!(
            "a metadata name must be 1 to 65535 bytes, not {}",
            name.len()
        )));
    }
    Ok(())
}

/// Whether every segment `base` lists that `dir` lacks is one its remote
/// holds, as `remote.state` records it (FORMAT.md §10.4): the directory
/// reads through its remote, or a segment file went missing from a copy.
/// Such segments open as the remote's even with no remote attached, and
/// reading one fails with [`Error::OnRemote`], never as corruption. A
/// missing segment the remote does not hold stays corruption.
fn lacks_only_remote_segments(dir: &Path, base: &Layers, disk: &[(SegmentId, PathBuf)]) -> bool {
    let on_disk: std::collections::BTreeSet<SegmentId> = disk.iter().map(|(id, _)| *id).collect();
    let mut missing = base
        .segments()
        .iter()
        .map(|e| e.id)
        .filter(|id| !on_disk.contains(id))
        .peekable();
    if missing.peek().is_none() {
        return false;
    }
    // An unreadable remote.state proves nothing: the open then reports the
    // missing segment as corruption.
    let Some(state) = files::own_remote_state(dir) else {
        return false;
    };
    missing.all(|id| state.segments.contains(&id))
}

/// The error for a directory that holds no database.
fn no_database(dir: &Path) -> Error {
    Error::NotFound(format!("no s4db database in {}", dir.display()))
}

/// Creates a segment file with `header`, durable before it is used.
pub(crate) fn create_segment_file(
    dir: &Path,
    header: SegmentHeader,
    max_segment: u64,
    fs: &Fs,
) -> Result<Segment> {
    let path = segment_path(dir, header.id);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .ctx(|| format!("creating {}", path.display()))?;
    fs.write_all_at(&file, &header.encode(), 0)
        .and_then(|()| fs.sync_all(&file))
        .ctx(|| format!("writing {}", path.display()))?;
    sync_dir(dir)?;
    Ok(Segment::new(
        header,
        path,
        file,
        SEGMENT_HEADER_LEN as u64,
        false,
        max_segment,
        fs.clone(),
    ))
}

impl Engine {
    /// Opens (or creates) the database in `dir`.
    pub(crate) fn open(
        dir: &Path,
        opts: Options,
        remote: Option<Arc<RemoteCtx>>,
    ) -> Result<(Engine, Option<RebuildReport>)> {
        if !(MIN_SEGMENT_SIZE_LIMIT..=MAX_SEGMENT_SIZE_LIMIT).contains(&opts.max_segment_size) {
            return Err(Error::InvalidArgument(format!(
                "max_segment_size must be between {MIN_SEGMENT_SIZE_LIMIT} and {MAX_SEGMENT_SIZE_LIMIT} bytes"
            )));
        }
        let writable = !opts.read_only;
        if !dir.exists() {
            if !opts.create_if_missing || !writable {
                return Err(Error::NotFound(format!(
                    "no database directory at {}",
                    dir.display()
                )));
            }
            fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
        }
        if !dir.is_dir() {
            return Err(Error::InvalidArgument(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        let index_path = dir.join(INDEX_FILE_NAME);
        let has_index = fs::symlink_metadata(&index_path).is_ok();
        if !has_index
            && (!opts.create_if_missing || !writable)
            && files::list_segments(dir)?.is_empty()
        {
            // Nothing is created in a directory that is not a database.
            return Err(no_database(dir));
        }
        // Writers exclude each other; read-only handles take no lock, so they
        // work on read-only media and beside a writer (FORMAT.md §6.4).
        let lock = if writable {
            Some(DirLock::acquire(dir, opts.lock_wait)?)
        } else {
            None
        };
        if writable {
            crate::io::fsutil::ensure_dir_writable(dir)?;
            files::remove_stale_temp_files(dir)?;
        }
        let mut attempt = 0;
        let (rec, fresh) = loop {
            let before = recovery::index_identity(dir);
            match Self::recover(dir, &opts, writable, remote.is_some()) {
                Ok(r) => break r,
                // A reader raced the writer: the index was replaced (and the
                // segments it dropped deleted) while it opened. Open again.
                Err(e)
                    if !writable
                        && attempt < READER_OPEN_ATTEMPTS
                        && recovery::index_identity(dir) != before =>
                {
                    tracing::debug!(error = %e, "index.idx changed while opening; opening again");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        let rebuild = rec.rebuild.clone();
        // Files waiting for an index that no longer needs them (a torn
        // segment creation, an unfinished compaction's output): write that
        // index now, so their numbers stay used even if they go.
        let settle = !rec.pending_delete.is_empty();
        let engine = Engine::from_recovered(dir.to_path_buf(), opts, lock, rec, remote);
        if writable && (fresh || settle || rebuild.is_some()) {
            let mut w = engine.writer.lock();
            engine.checkpoint_locked(&mut w)?;
        }
        Ok((engine, rebuild))
    }

    /// Recovers the state of `dir` (FORMAT.md §6): from `index.idx`, or by a
    /// rebuild when asked for. The flag is true for a new, empty database.
    fn recover(
        dir: &Path,
        opts: &Options,
        writable: bool,
        remote_backed: bool,
    ) -> Result<(Recovered, bool)> {
        let disk = files::list_segments(dir)?;
        if opts.rebuild_index {
            let lineage = recovery::lineage_of(dir)?;
            let rec = crate::engine::rebuild::rebuild(
                disk,
                lineage,
                writable,
                writable,
                opts.max_segment_size,
                &opts.fs,
            )?;
            return Ok((rec, false));
        }
        match recovery::load_index(dir)? {
            Some(base) => {
                let remote_backed = remote_backed || lacks_only_remote_segments(dir, &base, &disk);
                Ok((
                    recovery::recover_with_index(
                        dir,
                        base,
                        disk,
                        writable,
                        opts.max_segment_size,
                        remote_backed,
                        &opts.fs,
                    )?,
                    false,
                ))
            }
            None if disk.is_empty() => {
                if !opts.create_if_missing || !writable {
                    return Err(no_database(dir));
                }
                Ok((
                    Self::fresh(crate::format::segment_id::new_writer_id()?)?,
                    true,
                ))
            }
            // Segments without an index: never rebuilt silently, since a
            // rebuild may have to skip damage (FORMAT.md §6.3).
            None => Err(Error::corruption(
                INDEX_FILE_NAME,
                0,
                format!(
                    "index.idx is missing but {} segment file(s) are present; rebuild it from the segments (CLI: s4db rebuild-index; library: DbBuilder::rebuild_index)",
                    disk.len()
                ),
            )),
        }
    }

    fn fresh(writer_id: u64) -> Result<Recovered> {
        let meta = IndexMeta::fresh(writer_id);
        Ok(Recovered {
            writer_id,
            segments: Vec::new(),
            index: Index::new(Arc::new(Layers::empty(meta))),
            active: None,
            next_number: 1,
            generation: 0,
            obsolete: Vec::new(),
            obsolete_runs: Vec::new(),
            pending_delete: Vec::new(),
            dirty: true,
            rebuild: None,
        })
    }

    pub(crate) fn from_recovered(
        dir: PathBuf,
        opts: Options,
        lock: Option<DirLock>,
        rec: Recovered,
        remote: Option<Arc<RemoteCtx>>,
    ) -> Engine {
        let (state, writer) = Self::split(rec);
        Engine {
            dir,
            opts,
            writer_id: writer.1,
            state: RwLock::new(state),
            writer: Mutex::new(writer.0),
            group: GroupCommit::default(),
            closed: AtomicBool::new(false),
            remote,
            sync_lock: tokio::sync::Mutex::new(()),
            lock: Mutex::new(lock),
            scratch: Mutex::new(None),
        }
    }

    fn split(rec: Recovered) -> (View, (Writer, u64)) {
        let active = rec.active.map(|a| {
            let pos = rec
                .segments
                .iter()
                .position(|s| Arc::ptr_eq(s, &a))
                .unwrap_or(0) as u32;
            (a, pos)
        });
        let dirty = rec.dirty || !rec.pending_delete.is_empty();
        let metadata = rec.index.base().root().metadata.clone();
        (
            View {
                index: rec.index,
                segments: rec.segments,
            },
            (
                Writer {
                    active,
                    next_number: rec.next_number,
                    generation: rec.generation,
                    obsolete: rec.obsolete,
                    obsolete_runs: rec.obsolete_runs,
                    pending_delete: rec.pending_delete,
                    dirty,
                    metadata,
                },
                rec.writer_id,
            ),
        )
    }

    /// Replaces the whole state with a recovered one (after a rebuild).
    pub(crate) fn install(&self, w: &mut Writer, rec: Recovered) {
        let (state, (writer, _)) = Self::split(rec);
        let pending = std::mem::take(&mut w.pending_delete);
        *w = writer;
        w.pending_delete.extend(pending);
        *self.state.write() = state;
    }

    /// The database directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// This directory's writer id (FORMAT.md §2).
    pub(crate) fn writer_id(&self) -> u64 {
        self.writer_id
    }

    /// The options the engine was opened with.
    pub(crate) fn options(&self) -> &Options {
        &self.opts
    }

    /// The attached remote, if any.
    pub(crate) fn remote(&self) -> Option<&Arc<RemoteCtx>> {
        self.remote.as_ref()
    }

    /// Serialises the remote operations (upload, download, gc) of this handle.
    pub(crate) fn sync_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.sync_lock
    }

    /// The open segments, in segment-table order, at this moment.
    pub(crate) fn segments(&self) -> Vec<Arc<Segment>> {
        self.state.read().segments.clone()
    }

    /// The base index (the loaded `index.idx`) at this moment.
    pub(crate) fn base_index(&self) -> Arc<Layers> {
        self.state.read().index.base().clone()
    }

    /// The attached remote.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when none is attached.
    pub(crate) fn remote_ctx(&self) -> Result<Arc<RemoteCtx>> {
        self.remote.clone().ok_or_else(|| {
            Error::InvalidArgument(
                "no remote is attached: give one (CLI: --remote URL or S4DB_REMOTE; library: DbBuilder::remote)"
                    .into(),
            )
        })
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed("close() was called".into()));
        }
        Ok(())
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        if self.opts.read_only {
            return Err(Error::ReadOnly);
        }
        self.group.check()
    }

    // ----- reads -----

    /// Where `key`'s record is: its segment and location.
    pub(crate) fn locate(&self, key: &[u8]) -> Result<Option<(Arc<Segment>, Loc)>> {
        self.check_open()?;
        check_key(key)?;
        self.state.read().locate(key)
    }

    /// The value of `key` when its record is local: `Ok(Err((segment, loc)))`
    /// when only the remote holds the segment (the caller reads it there).
    #[allow(clippy::type_complexity)]
    pub(crate) fn get_local(
        &self,
        key: &[u8],
    ) -> Result<Result<Option<Bytes>, (Arc<Segment>, Loc)>> {
        match self.locate(key)? {
            None => Ok(Ok(None)),
            Some((seg, loc)) if seg.is_local() => Ok(Ok(seg
                .read_value(key, u64::from(loc.offset), loc.len as usize)?
                .map(Bytes::from))),
            Some(remote) => Ok(Err(remote)),
        }
    }

    pub(crate) fn contains(&self, key: &[u8]) -> Result<bool> {
        self.check_open()?;
        check_key(key)?;
        Ok(self.state.read().index.get(key)?.is_some())
    }

    pub(crate) fn len(&self) -> u64 {
        self.state.read().index.live_keys()
    }

    /// Whether some record may carry an expiry (FORMAT.md §3.4).
    pub(crate) fn may_expire(&self) -> bool {
        self.state.read().index.may_expire()
    }

    /// The committed database metadata (what `index.idx` holds).
    pub(crate) fn metadata(&self) -> Vec<(String, Bytes)> {
        self.state.read().index.base().root().metadata.clone()
    }

    /// Applies `changes` (a value, or `None` to remove the name) to the
    /// database metadata and commits it with everything written before, by a
    /// checkpoint (FORMAT.md §4.8).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty or over-long name, or
    /// metadata that would exceed 64 KiB; [`Error::ReadOnly`],
    /// [`Error::Closed`], [`Error::Io`]. Nothing changes then.
    pub(crate) fn update_metadata(&self, changes: Vec<(String, Option<Bytes>)>) -> Result<()> {
        self.check_writable()?;
        let mut w = self.writer.lock();
        self.check_writable()?;
        let mut map: std::collections::BTreeMap<String, Bytes> =
            w.metadata.iter().cloned().collect();
        for (name, value) in changes {
            check_metadata_name(&name)?;
            match value {
                Some(v) => map.insert(name, v),
                None => map.remove(&name),
            };
        }
        let next: Vec<(String, Bytes)> = map.into_iter().collect();
        let size = crate::format::root::metadata_len(&next);
        if size > crate::format::root::METADATA_MAX {
            return Err(Error::InvalidArgument(format!(
                "database metadata of {size} bytes would exceed the limit of {} bytes (FORMAT.md §4.8)",
                crate::format::root::METADATA_MAX
            )));
        }
        if next == w.metadata {
            return Ok(());
        }
        let before = std::mem::replace(&mut w.metadata, next);
        if let Err(e) = self.checkpoint_locked(&mut w) {
            // Not committed: the old index.idx, and its metadata, are in place.
            w.metadata = before;
            return Err(e);
        }
        Ok(())
    }

    /// Live keys (optionally only those starting with `prefix`), sorted
    /// bytewise, with their locations.
    pub(crate) fn snapshot(&self, prefix: Option<&[u8]>) -> Result<Snapshot> {
        Ok(self.capture(prefix)?.sorted())
    }

    /// Live keys (optionally only those starting with `prefix`) with their
    /// locations, unsorted.
    pub(crate) fn capture(&self, prefix: Option<&[u8]>) -> Result<Snapshot> {
        self.check_open()?;
        self.state.read().capture(prefix)
    }

    /// Makes `dir` (the engine's own directory) an in-memory database's:
    /// `close()`, or dropping the engine, removes it with everything in it.
    pub(crate) fn remove_dir_on_close(&mut self, dir: tempfile::TempDir) {
        *self.scratch.get_mut() = Some(dir);
    }

    /// Runs `f` on the current index and segments, holding the state's read
    /// lock: readers go on, writers wait.
    pub(crate) fn with_view<R>(&self, f: impl FnOnce(&View) -> R) -> R {
        f(&self.state.read())
    }

    /// Every check of the committed index ([`Layers::check_all`]).
    ///
    /// # Errors
    /// [`Error::Corruption`] at the first failed check.
    pub(crate) fn check_index(&self) -> Result<()> {
        let base = self.state.read().index.base().clone();
        base.check_all()
    }

    pub(crate) fn stats(&self) -> Result<Stats> {
        self.check_open()?;
        let mut stats = self.state.read().stats();
        stats.damaged_files = files::list_damaged(&self.dir)?;
        Ok(stats)
    }

    /// Switches readers to `index` over `segments` (after a compaction).
    pub(crate) fn replace_view(&self, index: Index, segments: Vec<Arc<Segment>>) {
        *self.state.write() = View { index, segments };
    }

    // ----- writes -----

    /// Appends a batch and indexes it. Returns the sequence number to wait
    /// for when the policy is `EveryWrite`.
    pub(crate) fn write(&self, mut batch: WriteBatch) -> Result<Option<u64>> {
        self.check_writable()?;
        if batch.is_empty() {
            return Ok(None);
        }
        let mut w = self.writer.lock();
        self.check_writable()?;
        self.drop_idle_deletes(&mut batch);
        self.write_locked(&mut w, batch)
    }

    /// Deletes, in one atomic batch, every live key that starts with
    /// `prefix` (all keys when it is `None`) and that `doomed` picks. The
    /// keys are chosen and deleted under the writer lock, so no write lands
    /// between the two. Returns how many keys it deleted and the sequence
    /// number to wait for under `EveryWrite`. Reads the whole index once.
    pub(crate) fn delete_where(
        &self,
        prefix: Option<&[u8]>,
        doomed: impl Fn(&[u8]) -> bool,
    ) -> Result<(u64, Option<u64>)> {
        self.check_writable()?;
        let mut w = self.writer.lock();
        self.check_writable()?;
        let snap = self.state.read().capture(prefix)?;
        let mut batch = WriteBatch::new();
        for (key, _) in snap.items.iter().filter(|(k, _)| doomed(k)) {
            let before = batch.len();
            batch.delete(key).map_err(|_| {
                Error::InvalidArgument(format!(
                    "the tombstones of more than {before} keys would exceed one atomic batch \
                     ({} bytes); delete a narrower prefix or range first",
                    crate::format::limits::MAX_BATCH_BYTES
                ))
            })?;
        }
        let n = batch.len() as u64;
        Ok((n, self.write_locked(&mut w, batch)?))
    }

    /// Writes a batch whose idle deletes are gone, holding the writer lock.
    fn write_locked(&self, w: &mut Writer, mut batch: WriteBatch) -> Result<Option<u64>> {
        if batch.is_empty() {
            return Ok(None);
        }
        batch.finish();
        // Indexing after the append must not fail: check the index pages
        // the batch's keys live in before writing anything.
        self.state
            .read()
            .index
            .check_pages_for(batch.ops.iter().map(|op| batch.key(op)))?;
        let seg = self
            .append_batch(w, &batch)
            .inspect_err(|e| self.poison_on_io("a write", e))?;
        let seq = self.group.note_written(&seg, batch.buf.len() as u64);
        let (delta, base) = {
            let st = self.state.read();
            (st.index.delta_len(), st.index.base().key_count() as usize)
        };
        if delta >= CHECKPOINT_MIN_DELTA.max(base) {
            self.checkpoint_locked(w)?;
        }
        Ok((self.opts.sync == SyncPolicy::EveryWrite).then_some(seq))
    }

    /// Drops the deletes of keys that do not exist when they would apply:
    /// not in the index, nor put earlier in the batch. Such a delete would
    /// only write a tombstone. Called holding the writer lock.
    fn drop_idle_deletes(&self, batch: &mut WriteBatch) {
        if batch.ops.iter().all(|op| !op.tombstone) {
            return;
        }
        let tombstones: Vec<bool> = batch.ops.iter().map(|op| op.tombstone).collect();
        let st = self.state.read();
        let mut live: hashbrown::HashMap<Vec<u8>, bool> = hashbrown::HashMap::new();
        batch.retain(|i, key| {
            let exists = match live.get(key) {
                Some(e) => *e,
                // A page that fails its checks keeps the delete; the write
                // then reports the page (`write_locked`).
                None => !matches!(st.index.get(key), Ok(None)),
            };
            live.insert(key.to_vec(), !tombstones[i]);
            !tombstones[i] || exists
        });
    }

    /// Appends a finished batch to the active segment (rotating it first if
    /// needed) and indexes its records; returns the segment written to.
    fn append_batch(&self, w: &mut Writer, batch: &WriteBatch) -> Result<Arc<Segment>> {
        let expires = batch.ops.iter().any(|op| op.expires);
        let (seg, pos) = self.ensure_room(w, batch.buf.len() as u64, expires)?;
        let at = seg.append(&batch.buf)?;
        let mut st = self.state.write();
        for op in &batch.ops {
            if op.expires {
                st.index.note_expiry();
            }
            let loc = (!op.tombstone).then(|| Loc {
                segment: pos,
                offset: (at + op.offset as u64) as u32,
                len: op.len as u32,
            });
            if let Err(e) = st.index.apply(batch.key(op), loc) {
                // Unreachable: `write_locked` checked these pages. Should it
                // happen, the batch is written but not wholly indexed.
                self.group.fail(format!(
                    "indexing a written batch failed, so this handle takes no more writes; reopen the database ({e})"
                ));
                return Err(e);
            }
        }
        w.dirty = true;
        Ok(seg)
    }

    /// Waits until the write with sequence `seq` is durable.
    pub(crate) fn wait_durable(&self, seq: u64) -> Result<()> {
        self.group.wait_synced(seq)
    }

    /// The active segment, rotated first if `len` more bytes would push a
    /// non-empty segment past the size limit, or if the batch `expires` (has
    /// a record with an expiry) and the segment is of version 1, which holds
    /// none (FORMAT.md §2.1, §3.4).
    fn ensure_room(&self, w: &mut Writer, len: u64, expires: bool) -> Result<(Arc<Segment>, u32)> {
        if let Some((a, _)) = &w.active {
            let used = a.len();
            if (used > SEGMENT_HEADER_LEN as u64 && used + len > self.opts.max_segment_size)
                || (expires && !a.header.may_expire())
            {
                self.seal_active(w)?;
            }
        }
        if let Some(active) = &w.active {
            return Ok(active.clone());
        }
        let id = SegmentId {
            number: w.next_number,
            writer: self.writer_id,
        };
        w.next_number = crate::format::segment_id::next_number(w.next_number)?;
        let seg = Arc::new(create_segment_file(
            &self.dir,
            SegmentHeader::plain(id),
            self.opts.max_segment_size,
            &self.opts.fs,
        )?);
        let pos = {
            let mut st = self.state.write();
            st.segments.push(seg.clone());
            (st.segments.len() - 1) as u32
        };
        w.dirty = true;
        w.active = Some((seg.clone(), pos));
        Ok((seg, pos))
    }

    /// After a failed file operation the state on disk is no longer what
    /// this handle believes (a short write, a rename that may or may not have
    /// happened): it takes no more writes. Everything it acknowledged is on
    /// disk; a reopen recovers it (FORMAT.md §6).
    fn poison_on_io(&self, what: &str, e: &Error) {
        if matches!(e, Error::Io { .. }) {
            self.group.fail(format!(
                "{what} failed, so this handle takes no more writes; reopen the database ({e})"
            ));
        }
    }

    /// fsyncs a segment; a failure poisons the engine.
    pub(crate) fn sync_segment(&self, seg: &Segment) -> Result<()> {
        seg.sync().inspect_err(|e| self.poison_on_io("an fsync", e))
    }

    /// Seals the active segment: fsync, then never append to it again.
    pub(crate) fn seal_active(&self, w: &mut Writer) -> Result<()> {
        if let Some((a, _)) = w.active.take() {
            self.sync_segment(&a)?;
            a.mark_sealed();
            self.group.note_all_synced();
            w.dirty = true;
        }
        Ok(())
    }

    /// The index metadata describing `segments` now.
    pub(crate) fn meta(&self, w: &Writer, segments: &[Arc<Segment>]) -> IndexMeta {
        IndexMeta {
            writer_id: self.writer_id,
            generation: w.generation + 1,
            next_segment_number: w.next_number,
            segments: segments
                .iter()
                .map(|s| SegmentEntry {
                    id: s.id(),
                    indexed_len: s.len(),
                    flags: if s.is_sealed() { SEGTAB_SEALED } else { 0 },
                })
                .collect(),
            obsolete: w.obsolete.clone(),
        }
    }

    /// Deletes files that the durable index no longer needs.
    pub(crate) fn delete_pending(&self, w: &mut Writer) -> Result<()> {
        if w.pending_delete.is_empty() {
            return Ok(());
        }
        for path in w.pending_delete.drain(..) {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("removing {}", path.display()), e)),
            }
        }
        sync_dir(&self.dir)
    }

    // ----- maintenance -----

    pub(crate) fn flush(&self) -> Result<()> {
        self.check_writable()?;
        if self.opts.sync == SyncPolicy::Never {
            return Ok(());
        }
        let w = self.writer.lock();
        if let Some((a, _)) = &w.active {
            self.sync_segment(a)?;
            self.group.note_all_synced();
        }
        Ok(())
    }

    /// Writes the index if anything changed since it was written.
    pub(crate) fn checkpoint(&self) -> Result<()> {
        self.check_writable()?;
        let mut w = self.writer.lock();
        if w.dirty {
            self.checkpoint_locked(&mut w)
        } else {
            Ok(())
        }
    }

    /// Folds every index run into one base run (FORMAT.md §4.7): one run
    /// per lookup again, and exact counts (§10.11). Reads and writes the
    /// index only, no record.
    pub(crate) fn merge_index(&self) -> Result<()> {
        self.check_writable()?;
        let mut w = self.writer.lock();
        self.check_writable()?;
        self.seal_active(&mut w)?;
        self.checkpoint_with(&mut w, true)
    }

    pub(crate) fn rebuild_index(&self) -> Result<RebuildReport> {
        self.check_writable()?;
        let mut w = self.writer.lock();
        self.seal_active(&mut w)?;
        let disk = files::list_segments(&self.dir)?;
        let lineage = crate::engine::recovery::Lineage {
            writer_id: self.writer_id,
            generation: w.generation,
            min_next_number: w.next_number,
            keys_hint: self.len(),
        };
        let rec = crate::engine::rebuild::rebuild(
            disk,
            lineage,
            // Not writable: readers may have these files mapped, so nothing is
            // truncated; new writes go to a new segment.
            false,
            true,
            self.opts.max_segment_size,
            &self.opts.fs,
        )?;
        let report = rec.rebuild.clone().unwrap_or_default();
        // The segments do not hold the metadata: the index it replaces does.
        let metadata = std::mem::take(&mut w.metadata);
        self.install(&mut w, rec);
        w.metadata = metadata;
        self.checkpoint_locked(&mut w)?;
        Ok(report)
    }

    // ----- remote sync hooks -----

    /// Seals the active segment and writes the index, then returns the index
    /// and segments that describe everything written so far: what an upload
    /// sends. Later writes go to new segments and are not part of it.
    pub(crate) fn upload_snapshot(&self) -> Result<(Arc<Layers>, Vec<Arc<Segment>>)> {
        self.snapshot_for_sync(false)
    }

    /// As [`Engine::upload_snapshot`], for a shard about to be staged: its
    /// runs then also hold a tombstone for every key its segments delete
    /// ([`Engine::write_segment_deletes`], FORMAT.md §10.11).
    pub(crate) fn stage_snapshot(&self) -> Result<(Arc<Layers>, Vec<Arc<Segment>>)> {
        self.snapshot_for_sync(true)
    }

    fn snapshot_for_sync(&self, stage: bool) -> Result<(Arc<Layers>, Vec<Arc<Segment>>)> {
        self.check_writable()?;
        let mut w = self.writer.lock();
        self.seal_active(&mut w)?;
        // A version-1 index is committed as a root and runs (FORMAT.md §8).
        if w.dirty || self.state.read().index.base().is_v1() {
            self.checkpoint_locked(&mut w)?;
        }
        if stage {
            self.write_segment_deletes(&mut w)?;
        }
        let st = self.state.read();
        Ok((st.index.base().clone(), st.segments.clone()))
    }

    /// Segments that are local and not in `synced` (not on the remote as
    /// far as this directory knows).
    pub(crate) fn unsynced_segments(
        &self,
        synced: &std::collections::BTreeSet<SegmentId>,
    ) -> Vec<Arc<Segment>> {
        let st = self.state.read();
        st.segments
            .iter()
            .filter(|s| !synced.contains(&s.id()))
            .cloned()
            .collect()
    }

    /// Records the obsolete list a commit wrote, so local index writes carry it.
    pub(crate) fn set_obsolete(&self, obsolete: Vec<ObsoleteEntry>, runs: Vec<ObsoleteEntry>) {
        let mut w = self.writer.lock();
        if w.obsolete != obsolete || w.obsolete_runs != runs {
            w.obsolete = obsolete;
            w.obsolete_runs = runs;
            w.dirty = true;
        }
    }

    /// Replaces the state with one recovered from `base` (a remote index made
    /// this directory's own) and the files in the directory, then writes it
    /// as `index.idx`. Unlisted segments numbered below `base`'s next number
    /// are obsolete and deleted; those at or above it are replayed.
    pub(crate) fn adopt_index(&self, w: &mut Writer, base: Layers) -> Result<()> {
        let disk = files::list_segments(&self.dir)?;
        let rec = recovery::recover_with_index(
            &self.dir,
            base,
            disk,
            true,
            self.opts.max_segment_size,
            self.remote.is_some(),
            &self.opts.fs,
        )?;
        self.install(w, rec);
        w.dirty = true;
        self.checkpoint_locked(w)
    }

    /// The writer lock, for operations that must hold it while they work
    /// (compaction, verify, download, rebase).
    pub(crate) fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock()
    }

    /// Applies batches read from elsewhere (a rebase) as new writes, holding
    /// the writer lock; returns the number of the first segment they went to.
    pub(crate) fn write_batches_locked(
        &self,
        w: &mut Writer,
        batches: Vec<WriteBatch>,
    ) -> Result<u64> {
        self.seal_active(w)?;
        let first = w.next_number;
        for mut batch in batches {
            if batch.is_empty() {
                continue;
            }
            batch.finish();
            self.append_batch(w, &batch)?;
        }
        self.seal_active(w)?;
        w.dirty = true;
        Ok(first)
    }

    pub(crate) fn close(&self) -> Result<()> {
        // Holding the writer lock: no write can land after the last checkpoint.
        let mut w = self.writer.lock();
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        let scratch = self.scratch.lock().take();
        if !self.opts.read_only && self.group.check().is_ok() && w.dirty && scratch.is_none() {
            self.checkpoint_locked(&mut w)?;
        }
        self.closed.store(true, Ordering::Release);
        self.lock.lock().take();
        // An in-memory database ends here: its files go (iterators still
        // reading hold their segments open, which unlinking leaves intact).
        if let Some(dir) = scratch {
            let path = dir.path().to_path_buf();
            dir.close()
                .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Concise on purpose: the index holds megabytes of bytes.
        f.debug_struct("Engine")
            .field("dir", &self.dir)
            .field("writer_id", &format_args!("{:016x}", self.writer_id))
            .field("keys", &self.len())
            .field("read_only", &self.opts.read_only)
            .field("closed", &self.closed.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!(error = %e, "writing index.idx while dropping the database failed; the next open replays the segments");
        }
    }
}
