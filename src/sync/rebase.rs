//! `rebase`: re-apply this directory's unsynced changes on top of the remote
//! state another writer committed (FORMAT.md §10.3), and `discard`: re-apply
//! them, minus the dropped keys, on top of the state this directory last
//! synced (FORMAT.md §10.10). One procedure serves both.
//!
//! The changes are the batches in local segments the remote does not have.
//! Crash safety comes from the order:
//! 0. a directory that holds every segment of its index (a whole copy, not
//!    one reading through its remote) first fetches the segments of the
//!    index to adopt that it lacks, each durable before step 2, as a
//!    download does (`download::fetch_for_adoption`);
//! 1. under the writer lock (no write can land in between), read those
//!    batches; write the kept ones again as new local segments numbered
//!    above every segment of either side (durable; the old copies stay);
//! 2. adopt the remote index as this directory's own, with its next segment
//!    number set to the first new segment: recovery replays the new segments
//!    on top of the remote state and deletes the old copies as obsolete;
//! 3. (rebase) record the remote's entity tag in `remote.state`.
//!
//! A crash before 2 leaves the old state with its changes written twice
//! (same values), and fetched segments it deletes as obsolete; after 2, the
//! new state, with every segment it names.

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use std::sync::Arc;

use crate::batch::WriteBatch;
use crate::engine::Engine;
use crate::engine::segment::Segment;
use crate::error::{Error, Result};
use crate::format::record::RecordView;
use crate::format::remote_state::SyncState;
use crate::format::scan;
use crate::index::layers::Layers;
use crate::io::offload::offload;
use crate::remote::ctx::RemoteCtx;
use crate::sync::download::fetch_for_adoption;
use crate::sync::remote_index::fetch_index;

/// Calls `on_batch` with each batch of `segments`, in order, with its
/// segment's name. A segment that does not scan to its end is corrupt.
pub(crate) fn scan_batches(
    segments: &[Arc<Segment>],
    mut on_batch: impl FnMut(&str, &[scan::Item<'_>]) -> Result<()>,
) -> Result<()> {
    for seg in segments {
        let name = seg.name();
        seg.scan_batches(|batch| on_batch(&name, batch))?;
    }
    Ok(())
}

/// The error for a directory compacted since its last sync.
pub(crate) fn compacted_since_sync(what: &str) -> Error {
    Error::Conflict(format!(
        "this directory was compacted since its last sync, so its own changes cannot be told apart and {what} is not possible; download, then redo the writes"
    ))
}

/// The value of a record, or a corruption error that names where it is.
fn value_at(name: &str, off: u64, rec: &RecordView<'_>) -> Result<Vec<u8>> {
    rec.value()
        .map_err(|e| Error::corruption(name, off, e.describe()))
}

/// What [`reapply`] did.
pub(crate) struct Reapplied {
    /// Distinct keys whose changes were dropped.
    pub dropped_keys: u64,
    /// Records written again.
    pub kept_records: u64,
}

/// Re-applies the batches of this directory's segments that `synced` does
/// not list, minus the records whose key `drop` picks, on top of `remote`.
///
/// The database metadata becomes `remote`'s, with the names this directory
/// changed since `state` (its last sync) changed likewise when
/// `keep_metadata` (a rebase, or discarding some keys only).
pub(crate) async fn reapply(
    engine: &Arc<Engine>,
    remote: Layers,
    state: &SyncState,
    what: &'static str,
    keep_metadata: bool,
    drop: impl Fn(&[u8]) -> bool + Send + 'static,
) -> Result<Reapplied> {
    if engine.segments().iter().all(|s| s.is_local()) {
        // A whole copy stays one: it gets the segments the adopted index
        // names, durable before that index is.
        fetch_for_adoption(engine, &*engine.remote_ctx()?, &remote).await?;
    }
    let e = engine.clone();
    let synced = state.segments.clone();
    let synced_metadata = state.metadata.clone();
    offload(move || {
        let mut w = e.writer();
        let ours = e.unsynced_segments(&synced);
        if ours.iter().any(|s| s.header.is_compacted()) {
            return Err(compacted_since_sync(what));
        }
        let mut dropped: HashSet<Vec<u8>> = HashSet::new();
        let mut batches = Vec::new();
        let mut kept_records = 0;
        scan_batches(&ours, |name, batch| {
            let mut b = WriteBatch::new();
            for (off, rec) in batch {
                if drop(rec.key) {
                    dropped.insert(rec.key.to_vec());
                } else if rec.is_tombstone() {
                    b.delete(rec.key)?;
                } else {
                    b.put_expiring_ms(rec.key, value_at(name, *off, rec)?, rec.expires_at)?;
                }
            }
            kept_records += b.len() as u64;
            batches.push(b);
            Ok(())
        })?;
        w.next_number = w.next_number.max(remote.next_segment_number());
        let first_new = e.write_batches_locked(&mut w, batches)?;
        let mut meta = remote.meta();
        meta.writer_id = e.writer_id();
        meta.next_segment_number = first_new;
        meta.generation = meta.generation.max(w.generation);
        let metadata = if keep_metadata {
            merge_metadata(&synced_metadata, &w.metadata, &remote.root().metadata)
        } else {
            remote.root().metadata.clone()
        };
        let adopted = remote.with_meta(meta).with_metadata(metadata);
        e.adopt_index(&mut w, adopted)?;
        Ok(Reapplied {
            dropped_keys: dropped.len() as u64,
            kept_records,
        })
    })
    .await
}

/// `remote`'s metadata, with each name whose value in `local` differs
/// from `synced` (set, changed or removed here since the last sync) taking
/// the local value: names are merged one by one, and this directory's
/// change wins over the remote's to the same name.
pub(crate) fn merge_metadata(
    synced: &[(String, Bytes)],
    local: &[(String, Bytes)],
    remote: &[(String, Bytes)],
) -> Vec<(String, Bytes)> {
    let as_map = |m: &[(String, Bytes)]| -> BTreeMap<String, Bytes> { m.iter().cloned().collect() };
    let (synced, local) = (as_map(synced), as_map(local));
    let mut out = as_map(remote);
    for name in synced.keys().chain(local.keys()) {
        if synced.get(name) != local.get(name) {
            match local.get(name) {
                Some(v) => out.insert(name.clone(), v.clone()),
                None => out.remove(name),
            };
        }
    }
    out.into_iter().collect()
}

pub(crate) async fn rebase(engine: &Arc<Engine>, ctx: &RemoteCtx, state: &SyncState) -> Result<()> {
    let (remote, etag) = fetch_index(ctx, Some(engine.dir()))
        .await?
        .ok_or_else(|| Error::Conflict("the remote index disappeared during the upload".into()))?;
    let table = remote.segments().iter().map(|s| s.id).collect();
    let synced = SyncState::synced(&ctx.url.describe(), etag, table, state.conditions)
        .of_index(&remote)
        .reading_through(state.reads_through);
    reapply(engine, remote, state, "a rebase", true, |_| false).await?;
    synced.save(engine.dir())
}
