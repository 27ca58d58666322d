//! Segment objects under a prefix that has no `index.idx` (FORMAT.md
//! §10.2): what a first commit must not bury.
//!
//! A prefix without `index.idx` is empty to s4db, but the objects of a
//! database whose `index.idx` was lost, or of a deletion that stopped part
//! way (§10.8), may still be there. A commit that named none of them would
//! make them orphans, and `gc` (§10.5) would delete them after the grace
//! period: the data of a whole database. So before the first commit to
//! such a prefix, an upload, an ingest or a copy lists it and refuses when
//! it holds segments that the commit does not continue from; a restore
//! (`sync/restore.rs`) brings such a database back.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::format::segment_id::SegmentId;
use crate::remote::ctx::RemoteCtx;
use crate::remote::{ListEntry, ObjectStore};
use crate::sync::stage::{parse_manifest_name, staged_objects};

/// How many names an error lists.
const NAMES_SHOWN: usize = 3;

/// Every object under the prefix: what the two functions below read.
///
/// # Errors
/// [`Error::Remote`].
pub(crate) async fn listing(ctx: &RemoteCtx) -> Result<Vec<ListEntry>> {
    let store = ctx.store.clone();
    ctx.run(async move { store.list().await }).await
}

/// The segment objects of `entries` (a [`listing`] of the prefix) that no
/// staged shard's manifest (§10.11) names, with their sizes: what a
/// database whose `index.idx` was lost left. Costs a GET per manifest.
///
/// # Errors
/// [`Error::Remote`]; a corruption error for a manifest that fails its
/// checks.
pub(crate) async fn unindexed_segments(
    ctx: &RemoteCtx,
    entries: &[ListEntry],
) -> Result<Vec<(SegmentId, u64)>> {
    let manifests: Vec<String> = entries
        .iter()
        .filter(|e| parse_manifest_name(&e.key).is_some())
        .map(|e| e.key.clone())
        .collect();
    let staged: BTreeSet<SegmentId> = if manifests.is_empty() {
        BTreeSet::new()
    } else {
        staged_objects(ctx, manifests)
            .await?
            .into_iter()
            .filter(|(_, run)| !run)
            .map(|(id, _)| id)
            .collect()
    };
    Ok(entries
        .iter()
        .filter_map(|e| Some((SegmentId::parse_file_name(&e.key)?, e.size)))
        .filter(|(id, _)| !staged.contains(id))
        .collect())
}

/// Checks, before a commit to a prefix that has no `index.idx`, that the
/// prefix holds no segment of another database. Segments written by
/// `writer_id` (this directory's earlier attempts; `None` for a commit of
/// no directory's) and segments a staged shard's manifest names are
/// expected. When any other segment is there,
/// the commit must continue from it: its `named` segments must include at
/// least one of them (a directory that had downloaded or restored that
/// database); otherwise this is refused. `entries` is a [`listing`] of
/// the prefix.
///
/// # Errors
/// [`Error::Conflict`] naming some of the segments; [`Error::Remote`] when
/// a staged manifest cannot be read (nothing is committed without knowing).
pub(crate) async fn ensure_nothing_buried(
    ctx: &RemoteCtx,
    entries: &[ListEntry],
    writer_id: Option<u64>,
    named: &BTreeSet<SegmentId>,
) -> Result<()> {
    let others: Vec<SegmentId> = unindexed_segments(ctx, entries)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| Some(id.writer) != writer_id)
        .collect();
    if others.is_empty() || others.iter().any(|id| named.contains(id)) {
        return Ok(());
    }
    let mut shown: Vec<String> = others
        .iter()
        .take(NAMES_SHOWN)
        .map(SegmentId::file_name)
        .collect();
    if others.len() > NAMES_SHOWN {
        shown.push("…".into());
    }
    Err(Error::Conflict(format!(
        "{} has no index.idx but holds {} segment(s) of another database ({}): its index.idx was lost, a deletion stopped part way, or another directory's first upload is under way. Nothing was committed (a commit here would leave them for gc to delete). If another upload is under way, upload again once it has committed (with rebase); to finish a deletion, delete the remote again (CLI: delete-remote); to restore that database, restore it into an empty directory (CLI: restore; Db::restore_from_remote) and upload from there",
        ctx.url.describe(),
        others.len(),
        shown.join(", ")
    )))
}
