//! The two remote writes every publication makes (FORMAT.md §10.2): the
//! immutable objects first, create-only and in parallel, then `index.idx`
//! with a condition. Upload and ingest (§10.11) share them.

use std::sync::Arc;

use futures::StreamExt;

use crate::engine::segment::Segment;

use crate::error::{Error, Result};
use crate::format::index_file::{INDEX_FILE_NAME, INDEX_HEADER_LEN};
use crate::format::root;
use crate::format::segment_id::SegmentId;
use crate::io::offload::offload;
use crate::remote::ctx::RemoteCtx;
use crate::remote::{ObjectStore, PutMode, PutOutcome};

/// An object to send: its name, length, kind, and how to read it.
struct Object {
    name: String,
    len: u64,
    /// An index run (else a segment).
    run: bool,
    bytes: Box<dyn FnOnce() -> Result<bytes::Bytes> + Send>,
}

/// What [`send`] sent (or found there from an earlier attempt).
#[derive(Debug, Default)]
pub(crate) struct Sent {
    pub segments: u64,
    pub segment_bytes: u64,
    pub runs: u64,
    pub run_bytes: u64,
}

/// PUTs `segments` (each must be local) and then the index `runs` (their
/// ids and bytes) create-only, in parallel.
///
/// # Errors
/// As [`put_all`]; [`Error::Io`] for a segment that is not local.
pub(crate) async fn send(
    ctx: &RemoteCtx,
    segments: Vec<Arc<Segment>>,
    runs: Vec<(SegmentId, bytes::Bytes)>,
) -> Result<Sent> {
    let mut todo = Vec::with_capacity(segments.len() + runs.len());
    for seg in segments {
        seg.file()?; // fail early on a segment only the remote holds
        todo.push(Object {
            name: seg.name(),
            len: seg.len(),
            run: false,
            bytes: Box::new(move || seg.contents()),
        });
    }
    for (id, bytes) in runs {
        todo.push(Object {
            name: id.run_file_name(),
            len: bytes.len() as u64,
            run: true,
            bytes: Box::new(move || Ok(bytes)),
        });
    }
    let mut sent = Sent::default();
    for (len, run) in put_all(ctx, todo).await? {
        if run {
            sent.runs += 1;
            sent.run_bytes += len;
        } else {
            sent.segments += 1;
            sent.segment_bytes += len;
        }
    }
    Ok(sent)
}

/// PUTs every object create-only, in parallel; returns each one's length
/// and kind. A 412 means the object exists: its name holds the writer id
/// of the directory that made it, so it is that directory's own earlier
/// attempt, which a size check confirms.
///
/// # Errors
/// [`Error::Conflict`] if an object of the same name and another size is
/// there; [`Error::Remote`], and what reading an object returns.
async fn put_all(ctx: &RemoteCtx, todo: Vec<Object>) -> Result<Vec<(u64, bool)>> {
    let store = ctx.store.clone();
    let parallel = ctx.opts.parallelism;
    ctx.run(async move {
        let results: Vec<Result<(u64, bool)>> = futures::stream::iter(todo)
            .map(|o| {
                let store = store.clone();
                async move {
                    let Object { name, len, run, bytes } = o;
                    let bytes = offload(bytes).await?;
                    match store.put(&name, bytes, PutMode::Create).await? {
                        PutOutcome::Written(_) => Ok((len, run)),
                        PutOutcome::PreconditionFailed => match store.head(&name).await? {
                            Some(m) if m.size == len => Ok((len, run)),
                            _ => Err(Error::Conflict(format!(
                                "the remote already holds a different {name}: another directory is using this writer id (was the directory copied?)"
                            ))),
                        },
                    }
                }
            })
            .buffer_unordered(parallel)
            .collect()
            .await;
        results.into_iter().collect()
    })
    .await
}

/// PUTs `bytes` as `index.idx` under `mode`. In single-writer mode
/// (`Overwrite`), the remote's entity tag is re-read first and must still
/// be `expected`. Returns the new entity tag, or `None` if the condition
/// failed: another commit came first. A 412 is checked against the remote
/// header's `identity` (writer id, generation): a retry after a lost
/// answer that sees its own commit is a success, not a false conflict.
///
/// # Errors
/// [`Error::Remote`].
pub(crate) async fn commit_root(
    ctx: &RemoteCtx,
    bytes: bytes::Bytes,
    mode: PutMode,
    expected: Option<String>,
    identity: (u64, u64),
) -> Result<Option<String>> {
    let store = ctx.store.clone();
    ctx.run(async move {
        if matches!(mode, PutMode::Overwrite) {
            // Without enforced conditions, re-read right before the
            // commit: never overwrite a commit this writer has not seen.
            let now = store.head(INDEX_FILE_NAME).await?.map(|m| m.etag);
            if now != expected {
                return Ok(None);
            }
        }
        match store.put(INDEX_FILE_NAME, bytes, mode).await? {
            PutOutcome::Written(Some(tag)) => Ok(Some(tag)),
            PutOutcome::Written(None) => Ok(store.head(INDEX_FILE_NAME).await?.map(|m| m.etag)),
            PutOutcome::PreconditionFailed => {
                let landed = store
                    .get_range(INDEX_FILE_NAME, 0, INDEX_HEADER_LEN as u64)
                    .await?
                    .and_then(|r| root::identity(&r.bytes).ok())
                    .is_some_and(|(writer, generation, _)| (writer, generation) == identity);
                if landed {
                    Ok(store.head(INDEX_FILE_NAME).await?.map(|m| m.etag))
                } else {
                    Ok(None)
                }
            }
        }
    })
    .await
}
