//! What readers share: an index and the segments its locations point into.
//!
//! The engine keeps one behind its read-write lock; a handle over a remote
//! alone keeps one built from the remote `index.idx` (FORMAT.md §10.6) once
//! it loads the whole index. Lookups, snapshots and sizes are answered here
//! the same way for both.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use crate::engine::segment::Segment;
use crate::error::{Error, Result};
use crate::format::index_file::{INDEX_FILE_NAME, SegmentEntry};
use crate::format::segment_header::SegmentHeader;
use crate::index::layers::Layers;
use crate::index::live::Index;
use crate::index::loc::Loc;
use crate::report::Stats;

/// An index and its segments.
#[derive(Debug)]
pub(crate) struct View {
    pub index: Index,
    /// Position `i` is segment-table position `i` of the index.
    pub segments: Vec<Arc<Segment>>,
}

/// Keys and locations captured at one moment, with the segments they point
/// into: iteration reads values from it without holding any lock.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub items: Vec<(Bytes, Loc)>,
    pub segments: Vec<Arc<Segment>>,
}

impl View {
    /// The view of a remote index alone: every segment is read from the
    /// remote.
    pub(crate) fn of_remote(base: Layers) -> View {
        let segments = remote_segments(base.segments());
        View {
            index: Index::new(Arc::new(base)),
            segments,
        }
    }

    /// Where `key`'s record is: its segment and location.
    ///
    /// # Errors
    /// [`Error::Corruption`] if the index names a segment it does not hold.
    pub(crate) fn locate(&self, key: &[u8]) -> Result<Option<(Arc<Segment>, Loc)>> {
        let Some(loc) = self.index.get(key)? else {
            return Ok(None);
        };
        Ok(Some((self.segment(loc)?.clone(), loc)))
    }

    /// The segment `loc` points into.
    ///
    /// # Errors
    /// [`Error::Corruption`] if the index names a segment it does not hold.
    pub(crate) fn segment(&self, loc: Loc) -> Result<&Arc<Segment>> {
        segment_of(&self.segments, loc)
    }

    /// Every live key (only those starting with `prefix`, if given) with its
    /// location, in no particular order.
    ///
    /// # Errors
    /// [`Error::Corruption`] if an index page fails its checks.
    pub(crate) fn capture(&self, prefix: Option<&[u8]>) -> Result<Snapshot> {
        let mut items = Vec::with_capacity(if prefix.is_none() {
            self.index.live_keys() as usize
        } else {
            0
        });
        self.index.for_each_live(|k, l| {
            if prefix.is_none_or(|p| k.starts_with(p)) {
                items.push((Bytes::copy_from_slice(k), l));
            }
        })?;
        Ok(Snapshot {
            items,
            segments: self.segments.clone(),
        })
    }

    /// Sizes and counts (`unuploaded_segments` is left 0).
    pub(crate) fn stats(&self) -> Stats {
        Stats {
            keys: self.index.live_keys(),
            segments: self.segments.len() as u64,
            live_bytes: self.index.live_bytes(),
            total_bytes: self.segments.iter().map(|s| s.len()).sum(),
            unindexed_changes: self.index.delta_len() as u64,
            index_memory_bytes: self.index.memory_bytes() as u64,
            index_mapped_bytes: self.index.mapped_bytes() as u64,
            index_runs: self.index.base().runs().len() as u64,
            unuploaded_segments: 0,
            damaged_files: Vec::new(),
        }
    }
}

impl Snapshot {
    /// The snapshot with its keys sorted bytewise.
    pub(crate) fn sorted(mut self) -> Snapshot {
        self.items.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self
    }

    /// The segment `loc` points into.
    ///
    /// # Errors
    /// [`Error::Corruption`] if the index named a segment it did not hold.
    pub(crate) fn segment(&self, loc: Loc) -> Result<&Arc<Segment>> {
        segment_of(&self.segments, loc)
    }
}

/// Handles for the segments of a remote segment table, by position; every
/// read goes to the remote.
pub(crate) fn remote_segments(table: &[SegmentEntry]) -> Vec<Arc<Segment>> {
    table
        .iter()
        .map(|e| {
            Arc::new(Segment::remote(
                SegmentHeader::plain(e.id),
                PathBuf::from(e.id.file_name()),
                e.indexed_len,
            ))
        })
        .collect()
}

fn segment_of(segments: &[Arc<Segment>], loc: Loc) -> Result<&Arc<Segment>> {
    segments.get(loc.segment as usize).ok_or_else(|| {
        Error::corruption(INDEX_FILE_NAME, 0, "index names a segment that is not open")
    })
}
