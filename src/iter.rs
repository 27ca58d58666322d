//! [`Iter`]: sorted iteration over a snapshot, reading values a chunk at a
//! time from local segments or, with coalesced range requests, the remote.

use std::sync::Arc;

use bytes::Bytes;

use crate::engine::Snapshot;
use crate::error::Result;
use crate::remote::ctx::RemoteCtx;
use crate::sync::remote_read::{self, Wanted};

/// Iterates over a snapshot of keys (sorted bytewise) and their values.
/// Values are read lazily, a chunk at a time (records only the remote holds
/// are fetched with coalesced range requests); the snapshot stays valid
/// across later writes and compactions.
#[derive(Debug)]
pub struct Iter {
    /// The remote that holds the segments the snapshot's local files lack.
    remote: Option<Arc<RemoteCtx>>,
    snap: Snapshot,
    pos: usize,
    ready: std::collections::VecDeque<(Bytes, Bytes)>,
}

/// Entries an iterator reads ahead at a time.
const ITER_CHUNK: usize = 256;

impl Iter {
    /// The next key and value, or `None` at the end. A key whose record has
    /// expired (FORMAT.md §3.4) is skipped.
    ///
    /// # Errors
    /// [`Error::Corruption`](crate::Error::Corruption) if a record fails its
    /// checks, [`Error::Io`](crate::Error::Io),
    /// [`Error::Remote`](crate::Error::Remote). The entries of a chunk that
    /// failed are skipped.
    pub async fn next(&mut self) -> Option<Result<(Bytes, Bytes)>> {
        // A chunk whose every key expired yields nothing: read the next.
        while self.ready.is_empty() && self.pos < self.snap.items.len() {
            if let Err(e) = self.fill().await {
                return Some(Err(e));
            }
        }
        self.ready.pop_front().map(Ok)
    }

    async fn fill(&mut self) -> Result<()> {
        let end = (self.pos + ITER_CHUNK).min(self.snap.items.len());
        let chunk = &self.snap.items[self.pos..end];
        self.pos = end;
        let mut values: Vec<Option<Bytes>> = vec![None; chunk.len()];
        let mut remote: Vec<(Arc<crate::engine::segment::Segment>, Vec<Wanted>)> = Vec::new();
        for (slot, (key, loc)) in chunk.iter().enumerate() {
            let seg = self.snap.segment(*loc)?;
            if seg.is_local() {
                let v = seg.read_value(key, u64::from(loc.offset), loc.len as usize)?;
                values[slot] = v.map(Bytes::from);
            } else {
                let w = Wanted {
                    slot,
                    key: key.clone(),
                    loc: *loc,
                };
                remote_read::want(&mut remote, seg, w);
            }
        }
        if !remote.is_empty() {
            remote_read::get_many(self.remote.as_ref(), remote, &mut values).await?;
        }
        // A key without a value is one whose record has expired (FORMAT.md
        // §3.4): it is skipped.
        for ((key, _), v) in chunk.iter().zip(values) {
            if let Some(v) = v {
                self.ready.push_back((key.clone(), v));
            }
        }
        Ok(())
    }

    pub(crate) fn next_sync(&mut self) -> Option<Result<(Bytes, Bytes)>> {
        futures::executor::block_on(self.next())
    }

    /// Entries not yet returned.
    pub fn remaining(&self) -> usize {
        self.snap.items.len().saturating_sub(self.pos) + self.ready.len()
    }
}

impl Iter {
    /// An iterator over `snap`, reading the records of remote segments from
    /// `remote`.
    pub(crate) fn new(remote: Option<Arc<RemoteCtx>>, snap: Snapshot) -> Iter {
        Iter {
            remote,
            snap,
            pos: 0,
            ready: std::collections::VecDeque::new(),
        }
    }
}
