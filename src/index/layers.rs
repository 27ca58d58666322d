//! The committed index as layers (FORMAT.md §4.7, §4.8): the root's tables
//! and metadata, and the immutable runs it names, searched newest first.
//!
//! A version-1 `index.idx` is one layer: the whole file is its only run.
//! Each run names segments by position in its *own* segment table; a layer
//! keeps the translation to positions in the root's table, so every
//! location leaving this module is a root position, as the engine expects.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::hash::key_hash;
use crate::format::index_file::{INDEX_FILE_NAME, IndexMeta, ObsoleteEntry, SegmentEntry};
use crate::format::root::{self, Root};
use crate::format::segment_id::SegmentId;
use crate::index::base::BaseIndex;
use crate::index::loc::Loc;

/// A translation entry for a run segment the root does not list: only a
/// shadowed entry may name one.
const NOT_IN_ROOT: u32 = u32::MAX;

/// One run: its identity, its pages, and where its segments sit in the root.
#[derive(Debug)]
pub(crate) struct Run {
    /// `None` for a version-1 `index.idx`, which is its own only run.
    pub id: Option<SegmentId>,
    pub index: Arc<BaseIndex>,
    to_root: Vec<u32>,
}

impl Run {
    /// Entries in the run, tombstones included.
    pub(crate) fn entries(&self) -> u64 {
        self.index.header().key_count
    }

    fn translate(&self, loc: Loc) -> Result<Loc> {
        in_root(&self.to_root, loc).ok_or_else(|| self.not_in_root())
    }

    fn not_in_root(&self) -> Error {
        Error::corruption(
            self.name(),
            0,
            "an entry names a segment that index.idx does not list",
        )
    }

    /// The run's file name (`index.idx` for a version-1 index).
    pub(crate) fn name(&self) -> String {
        self.id
            .map_or_else(|| INDEX_FILE_NAME.to_string(), |id| id.run_file_name())
    }
}

/// What one run says of a key.
pub(crate) enum Said {
    /// The key's record, by position in the root's segment table.
    Put(Loc),
    /// The key is deleted.
    Deleted,
    /// The run has no entry for the key: ask an older one.
    Nothing,
}

impl Said {
    /// What a run's entry `found` says (a length of 0 is a tombstone),
    /// its segment translated by `to_root` (see [`translation`]); `None` if
    /// it names a segment the root does not list.
    pub(crate) fn of(found: Option<Loc>, to_root: &[u32]) -> Option<Said> {
        Some(match found {
            None => Said::Nothing,
            Some(l) if l.len == 0 => Said::Deleted,
            Some(l) => Said::Put(in_root(to_root, l)?),
        })
    }
}

/// `loc`, its run segment position translated by `to_root`; `None` if the
/// root does not list that segment.
fn in_root(to_root: &[u32], loc: Loc) -> Option<Loc> {
    match to_root.get(loc.segment as usize) {
        Some(&p) if p != NOT_IN_ROOT => Some(Loc { segment: p, ..loc }),
        _ => None,
    }
}

/// The root and its runs, oldest first.
#[derive(Debug)]
pub(crate) struct Layers {
    root: Root,
    runs: Vec<Run>,
    /// Whether `index.idx` is a version-1 index (its one run is itself).
    v1: bool,
}

impl Layers {
    /// A version-1 `index.idx`, one layer.
    pub(crate) fn from_v1(base: BaseIndex) -> Layers {
        let h = *base.header();
        let root = Root {
            key_count: h.key_count,
            live_bytes: h.live_bytes,
            ..Root::empty(base.meta())
        };
        let to_root = (0..base.segments().len() as u32).collect();
        Layers {
            root,
            runs: vec![Run {
                id: None,
                index: Arc::new(base),
                to_root,
            }],
            v1: true,
        }
    }

    /// An empty index of version 2 under `meta`.
    pub(crate) fn empty(meta: IndexMeta) -> Layers {
        Layers {
            root: Root::empty(meta),
            runs: Vec::new(),
            v1: false,
        }
    }

    /// A root and the runs it names (`runs[i]` is the run of
    /// `root.runs[i]`), checked against each other: each run's head must be
    /// the root's copy of it.
    ///
    /// # Errors
    /// [`Error::Corruption`] naming the run that disagrees with the root.
    pub(crate) fn new(root: Root, runs: Vec<Arc<BaseIndex>>) -> Result<Layers> {
        if runs.len() != root.runs.len() {
            return Err(Error::corruption(INDEX_FILE_NAME, 12, "run count mismatch"));
        }
        let mut out = Vec::with_capacity(runs.len());
        for (r, index) in root.runs.iter().zip(runs) {
            let b = index.bytes();
            if b.len() as u64 != r.file_len || !b.starts_with(&r.head) {
                return Err(Error::corruption(
                    r.id.run_file_name(),
                    0,
                    "the run is not the one index.idx names (its head or length differs)",
                ));
            }
            out.push(Run {
                id: Some(r.id),
                to_root: translation(index.segments(), &root.meta.segments),
                index,
            });
        }
        Ok(Layers {
            root,
            runs: out,
            v1: false,
        })
    }

    /// The same layers (and obsolete runs) under new metadata (writer,
    /// next number, segment table, obsolete segments): translations are
    /// recomputed; the runs are shared.
    pub(crate) fn with_meta(&self, meta: IndexMeta) -> Layers {
        let runs = self
            .runs
            .iter()
            .map(|r| Run {
                id: r.id,
                index: r.index.clone(),
                to_root: translation(r.index.segments(), &meta.segments),
            })
            .collect();
        Layers {
            root: Root {
                meta,
                ..self.root.clone()
            },
            runs,
            v1: self.v1,
        }
    }

    /// The same layers with `metadata` as the database metadata.
    pub(crate) fn with_metadata(mut self, metadata: Vec<(String, bytes::Bytes)>) -> Layers {
        self.root.metadata = metadata;
        self
    }

    fn said(run: &Run, key: &[u8], h: u64) -> Result<Said> {
        let found = run
            .index
            .lookup(key, h)
            .map_err(|e| e.in_file(&run.name()))?;
        Said::of(found, &run.to_root).ok_or_else(|| run.not_in_root())
    }

    /// Where `key` (whose hash is `h`) is: the newest run that mentions it.
    ///
    /// # Errors
    /// [`Error::Corruption`] if a page that can hold the key fails its
    /// checks, or the entry names a segment the root does not list.
    #[inline]
    pub(crate) fn lookup(&self, key: &[u8], h: u64) -> Result<Option<Loc>> {
        for run in self.runs.iter().rev() {
            match Self::said(run, key, h)? {
                Said::Put(l) => return Ok(Some(l)),
                Said::Deleted => return Ok(None),
                Said::Nothing => {}
            }
        }
        Ok(None)
    }

    /// Whether any of the `below` oldest runs has an entry (put or
    /// tombstone) for `key`. Only that an entry exists counts: a shadowed
    /// entry may name a segment the root no longer lists (FORMAT.md §4.7),
    /// so its location is not translated.
    ///
    /// # Errors
    /// [`Error::Corruption`] if a page that can hold the key fails its
    /// checks.
    pub(crate) fn mentioned_below(&self, below: usize, key: &[u8], h: u64) -> Result<bool> {
        for run in &self.runs[..below.min(self.runs.len())] {
            let found = run
                .index
                .lookup(key, h)
                .map_err(|e| e.in_file(&run.name()))?;
            if found.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Checks, in every run, the page that holds keys whose hash is `h`.
    ///
    /// # Errors
    /// [`Error::Corruption`] for the first such page that fails.
    pub(crate) fn check_pages_of(&self, h: u64) -> Result<()> {
        self.runs
            .iter()
            .try_for_each(|r| r.index.check_page_of(h).map_err(|e| e.in_file(&r.name())))
    }

    /// Calls `f` for every live key, in no particular order. A key is live
    /// in the newest run that mentions it, if that run's entry is a put.
    /// Costs one page lookup in every newer run for each entry of an older
    /// one.
    ///
    /// # Errors
    /// [`Error::Corruption`] for the first page or entry that fails its
    /// checks; `f` has then seen some of the keys.
    pub(crate) fn for_each_live<'a>(&'a self, mut f: impl FnMut(&'a [u8], Loc)) -> Result<()> {
        let mut failed = None;
        for (i, run) in self.runs.iter().enumerate().rev() {
            let newer = &self.runs[i + 1..];
            run.index.for_each(|k, l| {
                if failed.is_some() || l.len == 0 {
                    return;
                }
                if !newer.is_empty() {
                    let h = key_hash(k);
                    for n in newer {
                        match n.index.lookup(k, h) {
                            Ok(None) => {}
                            Ok(Some(_)) => return,
                            Err(e) => {
                                failed = Some(e);
                                return;
                            }
                        }
                    }
                }
                match run.translate(l) {
                    Ok(l) => f(k, l),
                    Err(e) => failed = Some(e),
                }
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Every check of every run ([`BaseIndex::check_all`]), then that the
    /// root's key count and live bytes are what the live entries add up to
    /// (at least that, when the root says they are estimates).
    ///
    /// # Errors
    /// [`Error::Corruption`] naming the file that fails.
    pub(crate) fn check_all(&self) -> Result<()> {
        for r in &self.runs {
            r.index.check_all().map_err(|e| e.in_file(&r.name()))?;
        }
        let (mut keys, mut bytes) = (0u64, 0u64);
        self.for_each_live(|_, l| {
            keys += 1;
            bytes += u64::from(l.len);
        })?;
        let agree = if self.root.counts_estimated {
            keys <= self.root.key_count && bytes <= self.root.live_bytes
        } else {
            keys == self.root.key_count && bytes == self.root.live_bytes
        };
        if !agree {
            return Err(Error::corruption(
                INDEX_FILE_NAME,
                40,
                "key count or live bytes disagree with the runs",
            ));
        }
        Ok(())
    }

    pub(crate) fn root(&self) -> &Root {
        &self.root
    }

    pub(crate) fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// The ids of the run files the root names (none for a version-1 index).
    pub(crate) fn run_ids(&self) -> impl Iterator<Item = SegmentId> + '_ {
        self.runs.iter().filter_map(|r| r.id)
    }

    /// Whether `index.idx` is a version-1 index (FORMAT.md §8).
    pub(crate) fn is_v1(&self) -> bool {
        self.v1
    }

    pub(crate) fn meta(&self) -> IndexMeta {
        self.root.meta.clone()
    }

    pub(crate) fn writer_id(&self) -> u64 {
        self.root.meta.writer_id
    }

    pub(crate) fn generation(&self) -> u64 {
        self.root.meta.generation
    }

    pub(crate) fn next_segment_number(&self) -> u64 {
        self.root.meta.next_segment_number
    }

    pub(crate) fn key_count(&self) -> u64 {
        self.root.key_count
    }

    pub(crate) fn live_bytes(&self) -> u64 {
        self.root.live_bytes
    }

    pub(crate) fn segments(&self) -> &[SegmentEntry] {
        &self.root.meta.segments
    }

    pub(crate) fn obsolete(&self) -> &[ObsoleteEntry] {
        &self.root.meta.obsolete
    }

    /// Heap bytes of every run (see [`BaseIndex::heap_bytes`]).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.runs.iter().map(|r| r.index.heap_bytes()).sum()
    }

    /// Mapped bytes of every run.
    pub(crate) fn mapped_bytes(&self) -> usize {
        self.runs.iter().map(|r| r.index.mapped_bytes()).sum()
    }

    /// The bytes of `index.idx` for these layers: the version-1 file, or
    /// the root encoded.
    pub(crate) fn root_bytes(&self) -> bytes::Bytes {
        if self.v1 {
            return self.runs[0].index.bytes().clone();
        }
        root::encode(&self.root).into()
    }

    /// The bytes of an `index.idx` for these layers under `meta` (a
    /// download's own writer id): a version-1 index is rewritten whole, a
    /// root re-encoded.
    ///
    /// # Errors
    /// As [`BaseIndex::with_meta`].
    pub(crate) fn own_root_bytes(&self, meta: IndexMeta) -> Result<bytes::Bytes> {
        if self.v1 {
            return Ok(self.runs[0].index.with_meta(&meta)?.bytes().clone());
        }
        Ok(root::encode(&Root {
            meta,
            ..self.root.clone()
        })
        .into())
    }
}

/// For each segment of a run's table, its position in the root's table
/// (`u32::MAX` where the root does not list it).
pub(crate) fn translation(run: &[SegmentEntry], root: &[SegmentEntry]) -> Vec<u32> {
    // The root's table is in replay order, not always sorted (FORMAT.md §4.3).
    let mut by_id: Vec<(crate::format::segment_id::SegmentId, u32)> = root
        .iter()
        .enumerate()
        .map(|(p, r)| (r.id, p as u32))
        .collect();
    by_id.sort_unstable();
    run.iter()
        .map(|s| {
            by_id
                .binary_search_by_key(&s.id, |&(id, _)| id)
                .map_or(NOT_IN_ROOT, |i| by_id[i].1)
        })
        .collect()
}
