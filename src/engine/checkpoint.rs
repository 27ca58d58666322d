//! Writing the index (FORMAT.md §4.7, §4.8, §5): a checkpoint turns the
//! delta into a new immutable run, merging the newest runs into it by the
//! size-tiered rule ([`tiering`]), and then commits a new root.
//!
//! Order, for crash safety: the run file is written and fsynced under a
//! temporary name and renamed; then `index.idx` (the root) is replaced the
//! same way; only then are the runs it no longer names deleted. A crash
//! before the root leaves an unnamed run, removed at the next open (it holds
//! locations only, never a record). A checkpoint of `k` changed keys writes
//! O(k) bytes of run plus the root, except when the rule merges runs: then
//! it rewrites the merged runs' entries too (O(log N) times per key over
//! its life).

use std::path::Path;
use std::sync::Arc;

use crate::engine::Engine;
use crate::engine::Writer;
use crate::error::{Error, Result};
use crate::format::hash::key_hash;
use crate::format::index_file::{self, INDEX_FILE_NAME, IndexMeta};
use crate::format::root::{self, Root};
use crate::format::segment_id::{SegmentId, next_number};
use crate::index::base::BaseIndex;
use crate::index::layers::Layers;
use crate::index::live::Index;
use crate::index::loc::Loc;
use crate::index::tiering;
use crate::io::fs::Fs;
use crate::io::fsutil::atomic_write_keeping;

/// A run entry's location meaning "deleted" (FORMAT.md §4.7).
pub(crate) const TOMBSTONE: Loc = Loc {
    segment: 0,
    offset: 0,
    len: 0,
};

/// A run to write: its number and its entries.
pub(crate) type NewRun<'a> = (u64, Vec<(&'a [u8], Loc)>);

impl Engine {
    /// Commits the current state as the durable index: the delta becomes a
    /// new run (merged with the newest runs as [`tiering`] says), and a new
    /// root names it.
    pub(crate) fn checkpoint_locked(&self, w: &mut Writer) -> Result<()> {
        self.checkpoint_with(w, false)
    }

    /// A checkpoint that, with `merge_all`, folds every run and the delta
    /// into one new base run (exact counts, one run per lookup).
    pub(crate) fn checkpoint_with(&self, w: &mut Writer, merge_all: bool) -> Result<()> {
        if let Some((a, _)) = &w.active {
            self.sync_segment(a)?;
        }
        self.group.note_all_synced();
        let layers = {
            let st = self.state.read();
            let index = &st.index;
            let old = index.base().clone();
            let delta = index.delta_len() as u64;
            let absorb = if merge_all {
                old.runs().len()
            } else if delta == 0 && !old.is_v1() {
                0
            } else {
                runs_to_absorb(&old, delta)
            };
            let keep = old.runs().len() - absorb;
            let entries: Option<Vec<(&[u8], Loc)>> = if keep == 0 {
                // A new base: the live keys only.
                let mut e = Vec::with_capacity(index.live_keys() as usize);
                index.for_each_live(|k, l| e.push((k, l)))?;
                Some(e)
            } else if delta == 0 && absorb == 0 {
                None
            } else {
                Some(merged_entries(index, keep, [], |_, l| Ok(l))?)
            };
            let entries = entries.filter(|e| keep == 0 || !e.is_empty());
            let number = entries.as_ref().map(|_| w.next_number);
            if let Some(n) = number {
                w.next_number = next_number(n)?;
            }
            let meta = self.meta(w, &st.segments);
            self.publish(
                w,
                index,
                keep,
                entries.map(|e| (number.unwrap_or_default(), e)),
                meta,
                (0, 0),
            )
        }
        .inspect_err(|e| self.poison_on_io("writing index.idx", e))?;
        w.generation += 1;
        self.state.write().index = Index::new(Arc::new(layers));
        w.dirty = false;
        self.delete_pending(w)
    }

    /// For a shard about to be staged (FORMAT.md §10.11, stage step 1),
    /// called after a checkpoint: writes a run holding a tombstone for each
    /// key that a segment's tombstone record deletes, that is absent now and
    /// that no run has an entry for. A checkpoint that absorbs every run
    /// holding a key drops the key's tombstone, as it may in a database on
    /// its own (§4.7); in an ingest, earlier shards may still hold the key,
    /// and replaying the table in order (§4.3) finds it deleted. With this
    /// run the shard's runs agree. Reads every segment, under the writer
    /// lock; writes nothing when no such key is found.
    ///
    /// # Errors
    /// [`Error::Io`] if a read or write fails; [`Error::Corruption`] for a
    /// segment whose records fail their checks, or a page of the index.
    pub(crate) fn write_segment_deletes(&self, w: &mut Writer) -> Result<()> {
        let segments = self.state.read().segments.clone();
        let mut deleted: hashbrown::HashSet<Vec<u8>> = hashbrown::HashSet::new();
        for seg in &segments {
            seg.scan_batches(|batch| {
                for (_, rec) in batch {
                    if rec.is_tombstone() {
                        deleted.insert(rec.key.to_vec());
                    }
                }
                Ok(())
            })?;
        }
        let layers = {
            let st = self.state.read();
            let index = &st.index;
            let keep = index.base().runs().len();
            let mut entries: Vec<(&[u8], Loc)> = Vec::new();
            for k in &deleted {
                let k = k.as_slice();
                if index.get(k)?.is_none() && !index.base().mentioned_below(keep, k, key_hash(k))? {
                    entries.push((k, TOMBSTONE));
                }
            }
            if entries.is_empty() {
                return Ok(());
            }
            let number = w.next_number;
            w.next_number = next_number(number)?;
            let meta = self.meta(w, &st.segments);
            self.publish(w, index, keep, Some((number, entries)), meta, (0, 0))
        }
        .inspect_err(|e| self.poison_on_io("writing index.idx", e))?;
        w.generation += 1;
        self.state.write().index = Index::new(Arc::new(layers));
        Ok(())
    }

    /// Writes a new index made of the first `keep` runs of `index`'s base
    /// and, if given, a new run numbered `number` holding `entries` (a run
    /// with no entry is worth writing only as a new base, `keep` 0: callers
    /// pass `None` otherwise, FORMAT.md §4.7)
    /// (locations by position in `meta`'s segment table; [`TOMBSTONE`] for
    /// a delete), then the root naming them under `meta`, with `index`'s
    /// counts less `dropped` (keys and bytes a compaction dropped because
    /// they expired) and the metadata `w` holds. The base's runs it drops are
    /// deleted after the root is durable (queued on `w`). Returns the new
    /// layers, each new file read through a map where the system allows.
    ///
    /// # Errors
    /// [`Error::Io`] if a write fails: the old `index.idx` is then in place,
    /// and a run written without its root is removed at the next open.
    pub(crate) fn publish(
        &self,
        w: &mut Writer,
        index: &Index,
        keep: usize,
        new_run: Option<NewRun<'_>>,
        meta: IndexMeta,
        dropped: (u64, u64),
    ) -> Result<Layers> {
        let old = index.base();
        // A new base holds every live key once: its entries are the exact
        // counts, whatever the old root said (FORMAT.md §10.11).
        let (key_count, live_bytes, counts_estimated) = match &new_run {
            Some((_, entries)) if keep == 0 => (
                entries.iter().filter(|(_, l)| l.len != 0).count() as u64,
                entries.iter().map(|(_, l)| u64::from(l.len)).sum(),
                false,
            ),
            _ => (
                index.live_keys().saturating_sub(dropped.0),
                index.live_bytes().saturating_sub(dropped.1),
                old.root().counts_estimated,
            ),
        };
        let mut runs: Vec<Arc<BaseIndex>> = Vec::with_capacity(keep + 1);
        let mut refs = Vec::with_capacity(keep + 1);
        for r in &old.runs()[..keep] {
            // Never a version-1 index: `runs_to_absorb` absorbs it.
            let id = r.id.ok_or_else(|| {
                Error::corruption(
                    INDEX_FILE_NAME,
                    0,
                    "a version-1 index cannot be kept as a run (it is rewritten as a new base)",
                )
            })?;
            runs.push(r.index.clone());
            refs.push(root::RunRef::of(id, r.index.bytes()));
        }
        if let Some((number, entries)) = new_run {
            let id = SegmentId {
                number,
                writer: self.writer_id,
            };
            let run = self.write_run(id, &meta, &entries)?;
            refs.push(root::RunRef::of(id, run.bytes()));
            runs.push(Arc::new(run));
        }
        let root = Root {
            meta,
            key_count,
            live_bytes,
            obsolete_runs: w.obsolete_runs.clone(),
            runs: refs,
            metadata: w.metadata.clone(),
            may_expire: index.may_expire(),
            counts_estimated,
        };
        let bytes = root::encode(&root);
        let layers = Layers::new(root, runs)?;
        atomic_write_keeping(&self.opts.fs, &self.dir, INDEX_FILE_NAME, &bytes, |_| ())?;
        for r in &old.runs()[keep..] {
            if let Some(id) = r.id {
                w.pending_delete.push(self.dir.join(id.run_file_name()));
            }
        }
        Ok(layers)
    }

    /// Writes run `id` holding `entries`, with a segment table of only the
    /// segments they name, and returns it mapped.
    fn write_run(
        &self,
        id: SegmentId,
        meta: &IndexMeta,
        entries: &[(&[u8], Loc)],
    ) -> Result<BaseIndex> {
        let mut used: Vec<u32> = entries
            .iter()
            .filter(|(_, l)| l.len != 0)
            .map(|(_, l)| l.segment)
            .collect();
        used.sort_unstable();
        used.dedup();
        let mut table = Vec::with_capacity(used.len());
        for &p in &used {
            let seg = meta.segments.get(p as usize).ok_or_else(|| {
                Error::corruption(
                    INDEX_FILE_NAME,
                    0,
                    "an entry names a segment not in the table",
                )
            })?;
            table.push(*seg);
        }
        let local: Vec<(&[u8], Loc)> = entries
            .iter()
            .map(|&(k, l)| {
                if l.len == 0 {
                    return (k, TOMBSTONE);
                }
                let pos = used.binary_search(&l.segment).unwrap_or_default() as u32;
                (k, Loc { segment: pos, ..l })
            })
            .collect();
        let run_meta = IndexMeta {
            segments: table,
            obsolete: Vec::new(),
            ..meta.clone()
        };
        let run = BaseIndex::from_built(index_file::build(&run_meta, &local))?;
        write_mapped(&self.opts.fs, &self.dir, &id.run_file_name(), run)
    }
}

/// How many of the newest runs of `old` a new run of `changed` entries
/// absorbs: as [`tiering`] says, except that a version-1 index is always
/// absorbed, so that its upgrade is a new base written as every run is
/// (FORMAT.md §4.7, §8): numbered below the root's `next_segment_number`,
/// its header's writer that of its name, its segment table only the
/// segments its entries name.
pub(crate) fn runs_to_absorb(old: &Layers, changed: u64) -> usize {
    if old.is_v1() {
        return old.runs().len();
    }
    let counts: Vec<u64> = old.runs().iter().map(|r| r.entries()).collect();
    tiering::runs_to_absorb(&counts, changed)
}

/// Writes `run` durably as `dir/name` and returns it over a map of the file
/// written, so that its heap copy is freed (as it is, where the system
/// cannot map the file).
///
/// # Errors
/// [`Error::Io`] if the write fails; nothing is then at `name`.
pub(crate) fn write_mapped(fs: &Fs, dir: &Path, name: &str, run: BaseIndex) -> Result<BaseIndex> {
    let len = run.bytes().len() as u64;
    let map = atomic_write_keeping(fs, dir, name, run.bytes(), |file| {
        crate::io::mmap::map_whole(file, len).ok().flatten()
    })?;
    Ok(match map {
        Some(map) => run.remapped(map),
        None => run,
    })
}

/// The entries of a run that replaces the runs from position `keep` on and
/// the delta: every key any of them (or `extra`) mentions, with its current
/// state, its location passed through `relocate` (a compaction's new
/// positions; as it is for a checkpoint). A key deleted now gets a
/// tombstone only where an older, kept run still has it.
///
/// # Errors
/// As [`Index::get`], and what `relocate` returns.
pub(crate) fn merged_entries<'a>(
    index: &'a Index,
    keep: usize,
    extra: impl IntoIterator<Item = &'a [u8]>,
    relocate: impl Fn(&[u8], Loc) -> Result<Loc>,
) -> Result<Vec<(&'a [u8], Loc)>> {
    let old = index.base();
    let mut keys: hashbrown::HashSet<&'a [u8]> = hashbrown::HashSet::new();
    keys.extend(index.delta_entries().map(|(k, _)| k));
    keys.extend(extra);
    for r in &old.runs()[keep..] {
        r.index.for_each(|k, _| {
            keys.insert(k);
        })?;
    }
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        match index.get(k)? {
            Some(l) => out.push((k, relocate(k, l)?)),
            None if old.mentioned_below(keep, k, key_hash(k))? => out.push((k, TOMBSTONE)),
            None => {}
        }
    }
    Ok(out)
}
