//! Copying one committed state of a remote to another remote (FORMAT.md
//! §10.9): every segment the source's `index.idx` lists, then that
//! `index.idx`, byte for byte, last. Segments go server-side (S3
//! `CopyObject`) when both remotes are on one S3 endpoint and the server
//! allows it; otherwise through s4db, a few at a time, each checked as a
//! download checks it. A run that stopped part way is resumed by running it
//! again: what the destination already holds is not copied twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;

use crate::error::{Error, Result};
use crate::format::index_file::{INDEX_FILE_NAME, SegmentEntry};
use crate::remote::ctx::RemoteCtx;
use crate::remote::{ObjectStore, PutMode, PutOutcome, RemoteUrl};
use crate::sync::download::check_segment;
use crate::sync::remote_index::{fetch_index, fetch_root};
use crate::sync::unindexed::{ensure_nothing_buried, listing};

/// Most segments held in memory at once by a copy through s4db.
const MAX_IN_FLIGHT: usize = 4;

/// How often a copy starts over from the source's newer `index.idx` when a
/// segment of the one it read was garbage collected meanwhile.
const MAX_RESTARTS: u32 = 3;

/// What copying a remote did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CopyRemoteReport {
    /// Segments this run copied.
    pub segments_copied: u64,
    /// Of those, how many the server copied itself (S3 `CopyObject`).
    pub copied_server_side: u64,
    /// Segments the destination already held (from an earlier run that
    /// stopped part way).
    pub segments_present: u64,
    /// Bytes of the segments copied through s4db (server-side copies not
    /// counted), plus the `index.idx`.
    pub bytes_copied: u64,
    /// Keys in the copied commit.
    pub keys: u64,
    /// The source `index.idx`'s entity tag: the commit copied.
    pub source_etag: String,
    /// The destination already held this very commit; nothing was copied.
    pub already_complete: bool,
}

/// Copies the committed state of `src` to `dst`. The destination must hold
/// no database, or the same commit (then nothing is done).
pub(crate) async fn copy_remote(
    src: &Arc<RemoteCtx>,
    dst: &Arc<RemoteCtx>,
) -> Result<CopyRemoteReport> {
    dst.ensure_writable("copy to")?;
    if overlap(&src.url, &dst.url) {
        return Err(Error::InvalidArgument(format!(
            "cannot copy {} to {}: one lies inside the other",
            src.url.describe(),
            dst.url.describe()
        )));
    }
    let mut restarts = 0;
    loop {
        match copy_once(src, dst).await? {
            Attempt::Done(report) => return Ok(report),
            Attempt::SourceMoved(segment) if restarts < MAX_RESTARTS => {
                tracing::info!(%segment, "the source committed and collected meanwhile; starting over");
                restarts += 1;
            }
            Attempt::SourceMoved(segment) => {
                return Err(Error::NotFound(format!(
                    "segment {segment} was deleted from the source during the copy"
                )));
            }
        }
    }
}

/// How one pass of a copy ended.
enum Attempt {
    Done(CopyRemoteReport),
    /// A segment of the commit being copied was garbage collected from the
    /// source (it committed again meanwhile): start over from its new root.
    SourceMoved(String),
}

/// How one segment was copied.
enum Copied {
    /// By the server (S3 `CopyObject`).
    OnServer,
    /// Through s4db: this many bytes.
    Through(u64),
    /// The source no longer has it.
    Gone,
}

/// Whether one remote lies inside the other (the same place, or a prefix
/// or directory under the other's), where a listing of one would see the
/// other's objects.
fn overlap(a: &RemoteUrl, b: &RemoteUrl) -> bool {
    let nested = |x: &str, y: &str| {
        let (x, y) = (x.trim_end_matches('/'), y.trim_end_matches('/'));
        x.is_empty()
            || y.is_empty()
            || x == y
            || y.starts_with(&format!("{x}/"))
            || x.starts_with(&format!("{y}/"))
    };
    match (a, b) {
        (RemoteUrl::S3(a), RemoteUrl::S3(b)) => {
            a.endpoint == b.endpoint && a.bucket == b.bucket && nested(&a.prefix, &b.prefix)
        }
        (RemoteUrl::File { root: a }, RemoteUrl::File { root: b }) => {
            a.starts_with(b) || b.starts_with(a)
        }
        _ => a.describe() == b.describe(),
    }
}

async fn copy_once(src: &Arc<RemoteCtx>, dst: &Arc<RemoteCtx>) -> Result<Attempt> {
    let (index, etag) = fetch_index(src, None)
        .await?
        .ok_or_else(|| src.no_database())?;
    let root = index.root_bytes();
    let mut report = CopyRemoteReport {
        keys: index.key_count(),
        source_etag: etag,
        ..CopyRemoteReport::default()
    };
    if let Some(there) = fetch_root(dst).await? {
        if there.body == root {
            report.already_complete = true;
            report.segments_present = index.segments().len() as u64;
            return Ok(Attempt::Done(report));
        }
        return Err(Error::Conflict(format!(
            "{} already holds another database; delete it first (delete_remote) or copy elsewhere",
            dst.url.describe()
        )));
    }
    let entries = listing(dst).await?;
    // Segments of a database whose index.idx was lost stay unburied.
    let named = index.segments().iter().map(|e| e.id).collect();
    ensure_nothing_buried(dst, &entries, None, &named).await?;
    let listed: HashMap<String, u64> = entries.into_iter().map(|e| (e.key, e.size)).collect();
    let (present, wanted): (Vec<SegmentEntry>, Vec<SegmentEntry>) =
        index.segments().iter().partition(|e| {
            listed
                .get(&e.id.file_name())
                .is_some_and(|&size| size >= e.indexed_len)
        });
    report.segments_present = present.len() as u64;
    report.segments_copied = wanted.len() as u64;

    let server_side = match &src.url {
        RemoteUrl::S3(loc) => Some(Arc::new(loc.clone())),
        _ => None,
    };
    let try_server = Arc::new(AtomicBool::new(server_side.is_some()));
    let results: Vec<Result<(String, Copied)>> = futures::stream::iter(wanted)
        .map(|entry| {
            let (src, dst) = (src.clone(), dst.clone());
            let (server_side, try_server) = (server_side.clone(), try_server.clone());
            async move { copy_segment(&src, &dst, entry, server_side, &try_server).await }
        })
        .buffer_unordered(MAX_IN_FLIGHT.min(dst.opts.parallelism).max(1))
        .collect()
        .await;
    for r in results {
        match r? {
            (_, Copied::OnServer) => report.copied_server_side += 1,
            (_, Copied::Through(bytes)) => report.bytes_copied += bytes,
            (segment, Copied::Gone) => return Ok(Attempt::SourceMoved(segment)),
        }
    }

    // Then the index runs (immutable: one already there is this one), and
    // the root last: only now does the destination hold a database.
    let runs: Vec<(String, bytes::Bytes)> = index
        .runs()
        .iter()
        .filter_map(|r| Some((r.id?.run_file_name(), r.index.bytes().clone())))
        .collect();
    for (name, body) in runs {
        report.bytes_copied += body.len() as u64;
        let store = dst.store.clone();
        dst.run(async move { store.put(&name, body, PutMode::Create).await })
            .await?;
    }
    report.bytes_copied += root.len() as u64;
    let store = dst.store.clone();
    let outcome = dst
        .run(async move { store.put(INDEX_FILE_NAME, root, PutMode::Create).await })
        .await?;
    if outcome == PutOutcome::PreconditionFailed {
        return Err(Error::Conflict(format!(
            "another writer committed to {} during the copy; its segments were copied, its index.idx was not",
            dst.url.describe()
        )));
    }
    Ok(Attempt::Done(report))
}

/// Copies one segment; returns its name and how it went.
async fn copy_segment(
    src: &Arc<RemoteCtx>,
    dst: &Arc<RemoteCtx>,
    entry: SegmentEntry,
    server_side: Option<Arc<crate::remote::url::S3Location>>,
    try_server: &AtomicBool,
) -> Result<(String, Copied)> {
    let name = entry.id.file_name();
    if let Some(loc) = server_side.filter(|_| try_server.load(Ordering::Relaxed)) {
        let (store, n) = (dst.store.clone(), name.clone());
        if dst
            .run(async move { store.copy_from(&loc, &n).await })
            .await?
        {
            return Ok((name, Copied::OnServer));
        }
        // Refused once: copy the rest through s4db without asking again.
        try_server.store(false, Ordering::Relaxed);
    }
    let (store, n) = (src.store.clone(), name.clone());
    let Some(obj) = src.run(async move { store.get(&n).await }).await? else {
        return Ok((name, Copied::Gone));
    };
    let body = obj.body;
    let n = body.len() as u64;
    let (entry2, b) = (entry, body.clone());
    crate::io::offload::offload(move || check_segment(&entry2, &b)).await?;
    let (store, key) = (dst.store.clone(), name.clone());
    // Segments never change, so an object already there (a concurrent run
    // of this same copy) is as good as this one.
    dst.run(async move { store.put(&key, body, PutMode::Create).await })
        .await?;
    Ok((name, Copied::Through(n)))
}
