//! `upload`: send new segments, then commit `index.idx` conditionally
//! (FORMAT.md §10.2).
//!
//! 1. Seal the active segment and write the local index (a snapshot).
//! 2. Compare the remote index's entity tag with the one this directory last
//!    saw. If another writer committed in between: `Conflict`, or with
//!    `rebase`, re-apply this directory's changes on top of the remote state
//!    and start over.
//!    A prefix with no `index.idx` is listed first: if it holds segments of
//!    another database that this commit does not continue from, the upload
//!    refuses (`Conflict`) rather than leave them for `gc`.
//! 3. PUT every sealed segment the remote lacks with `If-None-Match: *`. A 412
//!    means the object exists: its name is unique to this writer, so it is
//!    this writer's own earlier attempt, which a size check confirms.
//! 4. PUT `index.idx` with `If-Match` on the last-seen tag (or
//!    `If-None-Match: *` for a new remote). Segments the remote listed before
//!    and this index drops go into its obsolete table, stamped with the time,
//!    for `gc`. A 412 is checked against the remote header's writer id and
//!    generation: a retried commit that had landed is a success, not a
//!    false conflict.
//! 5. Remember the new tag and segment list in `remote.state`.
//!
//! Nothing local is deleted or changed by a failed upload.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::format::index_file::{INDEX_FILE_NAME, ObsoleteEntry};
use crate::format::remote_state::SyncState;
use crate::format::root;
use crate::format::segment_id::SegmentId;
use crate::io::offload::offload;
use crate::options::setters;
use crate::remote::ctx::RemoteCtx;
use crate::remote::{ObjectStore, PutMode};
use crate::sync::commit::{commit_root, send};
use crate::sync::unindexed::{ensure_nothing_buried, listing};

/// What an upload did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct UploadReport {
    /// Segments sent.
    pub segments_uploaded: u64,
    /// Bytes of the segments sent.
    pub segment_bytes: u64,
    /// Bytes of the committed `index.idx` (the root, FORMAT.md §4.8).
    pub index_bytes: u64,
    /// Index runs sent (FORMAT.md §4.7): the changes since the last upload,
    /// and the runs they were merged with.
    pub runs_uploaded: u64,
    /// Bytes of the index runs sent.
    pub run_bytes: u64,
    /// Segments the new index dropped (kept on the remote until `gc`).
    pub segments_obsoleted: u64,
    /// Times this upload was rebased onto another writer's commit.
    pub rebased: u32,
}

impl UploadReport {
    /// Bytes of every object this upload sent and the remote kept: the
    /// segments, the index runs and the committed root.
    #[must_use]
    pub fn bytes_sent(&self) -> u64 {
        self.segment_bytes + self.run_bytes + self.index_bytes
    }
}

/// How to upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct UploadOptions {
    /// On a conflict, re-read the remote index, re-apply this directory's
    /// changes since its last sync on top of it, and retry (up to 5 times).
    /// Not possible after a local compaction since the last sync. Default `false`.
    pub rebase: bool,
    /// Commit without relying on conditional writes, for a server that does
    /// not enforce them, when this prefix has exactly one writer. The remote
    /// index is still re-read right before the commit, and the upload refuses
    /// if it changed since this directory last synced; but between that read
    /// and the commit, another writer's commit could be overwritten. Default
    /// `false`: uploads check that the server enforces conditions and refuse
    /// if it does not.
    pub single_writer: bool,
}

setters!(UploadOptions {
    /// Sets `rebase`.
    rebase: bool,
    /// Sets `single_writer`.
    single_writer: bool,
});

const MAX_REBASES: u32 = 5;

pub(crate) async fn upload(engine: &Arc<Engine>, opts: UploadOptions) -> Result<UploadReport> {
    let ctx = engine.remote_ctx()?;
    ctx.ensure_writable("upload to")?;
    engine.check_writable()?;
    let _sync = engine.sync_lock().lock().await;
    crate::sync::restore::ensure_no_restore_pending(engine.dir())?;
    let mut report = UploadReport::default();
    loop {
        let mut state = SyncState::load_or_new(engine.dir(), &ctx.url.describe())?;
        if !opts.single_writer {
            crate::sync::conditions::ensure_enforced_for(
                &ctx,
                engine.writer_id(),
                Some(engine.dir()),
                &mut state,
            )
            .await?;
        }
        let e = engine.clone();
        let (base, segments) = offload(move || e.upload_snapshot()).await?;
        let store = ctx.store.clone();
        let head = ctx
            .run(async move { store.head(INDEX_FILE_NAME).await })
            .await?;
        let remote_tag = head.map(|h| h.etag);
        if remote_tag.is_none() && state.etag.is_some() {
            // The remote lost its database (deleted, FORMAT.md §10.8): it is
            // empty to this upload, which sends every segment again.
            state.forget_uploads();
        }
        if remote_tag != state.etag {
            if opts.rebase && remote_tag.is_some() && report.rebased < MAX_REBASES {
                crate::sync::rebase::rebase(engine, &ctx, &state).await?;
                report.rebased += 1;
                continue;
            }
            return Err(conflict(&ctx, state.etag.is_none()));
        }

        let table: BTreeSet<SegmentId> = base.segments().iter().map(|s| s.id).collect();
        if remote_tag.is_none() {
            // A prefix without index.idx may still hold a database's data.
            let entries = listing(&ctx).await?;
            ensure_nothing_buried(&ctx, &entries, Some(base.writer_id()), &table).await?;
        }

        // Segments first, then index runs: create-only, in parallel.
        let new_segments = segments
            .iter()
            .filter(|s| !state.segments.contains(&s.id()))
            .cloned()
            .collect();
        let new_runs = base
            .runs()
            .iter()
            .filter_map(|r| r.id.map(|id| (id, r)))
            .filter(|(id, _)| !state.runs.contains(id))
            .map(|(id, r)| (id, r.index.bytes().clone()))
            .collect();
        let sent = send(&ctx, new_segments, new_runs).await?;
        report.segments_uploaded += sent.segments;
        report.segment_bytes += sent.segment_bytes;
        report.runs_uploaded += sent.runs;
        report.run_bytes += sent.run_bytes;

        // Then the root, conditionally. What the remote named before and
        // this commit drops becomes obsolete, for gc.
        let run_ids: BTreeSet<SegmentId> = base.run_ids().collect();
        let now = crate::io::clock::unix_now();
        let (obsolete, newly) = obsolete_after(base.obsolete(), &state.segments, &table, now);
        report.segments_obsoleted += newly;
        let (obsolete_runs, _) =
            obsolete_after(&base.root().obsolete_runs, &state.runs, &run_ids, now);
        let mut root = base.root().clone();
        root.meta.obsolete = obsolete.clone();
        root.obsolete_runs = obsolete_runs.clone();
        let bytes: bytes::Bytes = root::encode(&root).into();
        report.index_bytes = bytes.len() as u64;
        let mode = match (&state.etag, opts.single_writer) {
            (_, true) => PutMode::Overwrite,
            (Some(t), false) => PutMode::Update(t.clone()),
            (None, false) => PutMode::Create,
        };
        let identity = (base.writer_id(), base.generation());
        let committed = commit_root(&ctx, bytes, mode, state.etag.clone(), identity).await?;
        let Some(tag) = committed else {
            if opts.rebase && report.rebased < MAX_REBASES {
                crate::sync::rebase::rebase(engine, &ctx, &state).await?;
                report.rebased += 1;
                continue;
            }
            return Err(conflict(&ctx, false));
        };
        SyncState::synced(&ctx.url.describe(), tag, table, state.conditions)
            .of_index(&base)
            .reading_through(state.reads_through)
            .save(engine.dir())?;
        engine.set_obsolete(obsolete, obsolete_runs);
        return Ok(report);
    }
}

/// The obsolete list after a commit that names `now_named`: the entries of
/// `before` still absent from it, plus what the remote named (`had`) and
/// the commit drops, stamped `now`. Also returns how many were added.
fn obsolete_after(
    before: &[ObsoleteEntry],
    had: &BTreeSet<SegmentId>,
    now_named: &BTreeSet<SegmentId>,
    now: u64,
) -> (Vec<ObsoleteEntry>, u64) {
    let mut out: Vec<ObsoleteEntry> = before
        .iter()
        .filter(|o| !now_named.contains(&o.id))
        .copied()
        .collect();
    let mut added = 0;
    for id in had.difference(now_named) {
        if !out.iter().any(|o| o.id == *id) {
            out.push(ObsoleteEntry {
                id: *id,
                since: now,
            });
            added += 1;
        }
    }
    out.sort_by_key(|o| o.id);
    (out, added)
}

fn conflict(ctx: &RemoteCtx, first: bool) -> Error {
    if first {
        Error::Conflict(format!(
            "{} already holds a database that this directory did not download; download it first, or upload with rebase (CLI: upload --rebase)",
            ctx.url.describe()
        ))
    } else {
        Error::Conflict(format!(
            "another writer committed to {} since this directory last synced; nothing was lost locally: upload with rebase (CLI: upload --rebase), or download",
            ctx.url.describe()
        ))
    }
}
