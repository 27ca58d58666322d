//! What the next upload would publish, and dropping it (FORMAT.md §10.10):
//! `changes` lists the keys put and deleted in this directory's segments
//! that its last sync did not include; `discard` returns all of them, or
//! only some keys, to the state this directory last synced.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::format::remote_state::SyncState;
use crate::io::offload::offload;
use crate::sync::rebase::{reapply, scan_batches};
use crate::sync::remote_index::fetch_index;

/// What a change did to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChangeKind {
    /// The key was put (its latest unsynced write is a put).
    Put,
    /// The key was deleted (its latest unsynced write is a delete).
    Delete,
}

/// One key's unsynced change: the latest write to it that the last sync did
/// not include.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Change {
    /// The key.
    pub key: Bytes,
    /// Put or delete.
    pub kind: ChangeKind,
    /// The value's length for a put (the value itself is not read).
    pub value_len: Option<u64>,
}

/// The changes the next upload would publish, sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Changes {
    /// Keys whose latest change is a put.
    pub puts: u64,
    /// Keys whose latest change is a delete.
    pub deletes: u64,
    /// The directory compacted since its last sync: compaction rewrote live
    /// keys into new segments (every one, for a full compaction; those of
    /// the rewritten segments, for a selective one), so the next upload
    /// re-sends them and they are listed (as puts; a carried-over tombstone
    /// as a delete).
    pub compacted: bool,
    /// The directory restored a database whose remote `index.idx` was lost
    /// ([`crate::Db::restore_from_remote`]) and has not uploaded since: the
    /// next upload commits a new `index.idx` even if no key changed.
    pub restored: bool,
    list: Vec<Change>,
}

impl Changes {
    /// The changes, sorted by key.
    pub fn iter(&self) -> std::slice::Iter<'_, Change> {
        self.list.iter()
    }

    /// Changed keys.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when the next upload would publish nothing: no key changed,
    /// and no restored database waits for its `index.idx`.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty() && !self.restored
    }
}

impl IntoIterator for Changes {
    type Item = Change;
    type IntoIter = std::vec::IntoIter<Change>;
    fn into_iter(self) -> Self::IntoIter {
        self.list.into_iter()
    }
}

impl<'a> IntoIterator for &'a Changes {
    type Item = &'a Change;
    type IntoIter = std::slice::Iter<'a, Change>;
    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

/// What discarding did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiscardReport {
    /// Keys whose unsynced changes were dropped (they read as at the last
    /// sync again).
    pub keys_discarded: u64,
    /// Unsynced records of other keys, kept (written again).
    pub records_kept: u64,
}

/// The sync state of the engine's own remote.
fn own_state(engine: &Engine) -> Result<SyncState> {
    let ctx = engine.remote_ctx()?;
    SyncState::load_or_new(engine.dir(), &ctx.url.describe())
}

pub(crate) async fn changes(engine: &Arc<Engine>) -> Result<Changes> {
    let state = own_state(engine)?;
    // Segments known to be the remote's, but no commit seen: a restore.
    let restored = state.etag.is_none() && !state.segments.is_empty();
    let e = engine.clone();
    offload(move || {
        // The writer lock: the active segment holds no half-written batch.
        let _w = e.writer();
        let ours = e.unsynced_segments(&state.segments);
        let compacted = ours.iter().any(|s| s.header.is_compacted());
        let mut latest: BTreeMap<Vec<u8>, Option<u64>> = BTreeMap::new();
        scan_batches(&ours, |name, batch| {
            for (off, rec) in batch {
                let len = if rec.is_tombstone() {
                    None
                } else {
                    let n = rec
                        .value_len()
                        .map_err(|e| Error::corruption(name, *off, e.describe()))?;
                    Some(n as u64)
                };
                latest.insert(rec.key.to_vec(), len);
            }
            Ok(())
        })?;
        let mut out = Changes {
            compacted,
            restored,
            ..Changes::default()
        };
        out.list = latest
            .into_iter()
            .map(|(key, len)| {
                let kind = match len {
                    Some(_) => ChangeKind::Put,
                    None => ChangeKind::Delete,
                };
                Change {
                    key: Bytes::from(key),
                    kind,
                    value_len: len,
                }
            })
            .collect();
        out.puts = out
            .list
            .iter()
            .filter(|c| c.kind == ChangeKind::Put)
            .count() as u64;
        out.deletes = out.list.len() as u64 - out.puts;
        Ok(out)
    })
    .await
}

pub(crate) async fn discard(
    engine: &Arc<Engine>,
    keys: Option<HashSet<Vec<u8>>>,
) -> Result<DiscardReport> {
    let ctx = engine.remote_ctx()?;
    engine.check_writable()?;
    let _sync = engine.sync_lock().lock().await;
    let describe = ctx.url.describe();
    let state = SyncState::load_for(engine.dir(), &describe)?
        .filter(|s| s.etag.is_some())
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "this directory has never synced with {describe}: there is no synced state to return to"
            ))
        })?;
    let (remote, etag) = fetch_index(&ctx, Some(engine.dir())).await?.ok_or_else(|| {
        Error::Conflict(format!(
            "{describe} no longer holds the database this directory synced; its synced state is gone"
        ))
    })?;
    if state.etag.as_deref() != Some(etag.as_str()) {
        return Err(Error::Conflict(format!(
            "another writer committed to {describe} since this directory's last sync, so the synced state is no longer there to return to; upload with rebase, or download with force to take the remote's state"
        )));
    }
    let done = match keys {
        None => reapply(engine, remote, &state, "discarding", false, |_| true).await?,
        Some(set) => {
            reapply(engine, remote, &state, "discarding", true, move |k| {
                set.contains(k)
            })
            .await?
        }
    };
    Ok(DiscardReport {
        keys_discarded: done.dropped_keys,
        records_kept: done.kept_records,
    })
}
