//! `rebase`: re-apply this directory's unsynced changes on top of the remote
//! state another writer committed (FORMAT.md §10.3).
//!
//! The changes are the batches in local segments the remote does not have.
//! Crash safety comes from the order:
//! 1. read those batches; write them again as new local segments numbered
//!    above every segment of either side (durable; the old copies stay);
//! 2. adopt the remote index as this directory's own, with its next segment
//!    number set to the first new segment: recovery replays the new segments
//!    on top of the remote state and deletes the old copies as obsolete;
//! 3. record the remote's entity tag in `remote.state`.
//!
//! A crash before 2 leaves the old state with its changes written twice
//! (same values); after 2, the rebased state.

use std::sync::Arc;

use crate::batch::WriteBatch;
use crate::engine::Engine;
use crate::engine::segment::Segment;
use crate::error::{Error, Result};
use crate::format::scan;
use crate::format::segment_header::SEGMENT_HEADER_LEN;
use crate::io::offload::offload;
use crate::remote::ctx::RemoteCtx;
use crate::sync::remote_index::fetch_index;
use crate::sync::state::SyncState;

/// The batches in `segments`, in order, as write batches.
fn read_batches(segments: &[Arc<Segment>]) -> Result<Vec<WriteBatch>> {
    let mut out = Vec::new();
    for seg in segments {
        let buf = seg.contents()?;
        let body = buf.get(SEGMENT_HEADER_LEN..).unwrap_or_default();
        let name = seg.name();
        let scanned = scan::scan(body, SEGMENT_HEADER_LEN as u64, false, |batch| {
            let mut b = WriteBatch::new();
            for (off, rec) in batch {
                if rec.is_tombstone() {
                    b.delete(rec.key)?;
                } else {
                    let v = rec
                        .value()
                        .map_err(|e| Error::corruption(name.as_str(), *off, e.describe()))?;
                    b.put(rec.key, v)?;
                }
            }
            out.push(b);
            Ok::<(), Error>(())
        })?;
        if let Some(t) = scanned.tail {
            return Err(Error::corruption(name, t.offset, t.reason));
        }
    }
    Ok(out)
}

pub(crate) async fn rebase(engine: &Arc<Engine>, ctx: &RemoteCtx, state: &SyncState) -> Result<()> {
    let (remote, etag) = fetch_index(ctx)
        .await?
        .ok_or_else(|| Error::Conflict("the remote index disappeared during the upload".into()))?;
    let ours = engine.unsynced_segments(&state.segments);
    if ours.iter().any(|s| s.header.is_compacted()) {
        return Err(Error::Conflict(
            "this directory was compacted since its last sync, so its own changes cannot be told apart; download, then redo the writes".into(),
        ));
    }
    let e = engine.clone();
    let table = remote.segments().iter().map(|s| s.id).collect();
    offload(move || {
        let batches = read_batches(&ours)?;
        let mut w = e.writer();
        w.next_number = w.next_number.max(remote.header().next_segment_number);
        let first_new = e.write_batches_locked(&mut w, batches)?;
        let mut meta = remote.meta();
        meta.writer_id = e.writer_id();
        meta.next_segment_number = first_new;
        meta.generation = meta.generation.max(w.generation);
        let adopted = remote.with_meta(&meta)?;
        e.adopt_index(&mut w, adopted)
    })
    .await?;
    SyncState::synced(&ctx.url.describe(), etag, table, state.conditions).save(engine.dir())
}
