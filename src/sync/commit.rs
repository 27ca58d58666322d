//! The two remote writes every publication makes (FORMAT.md §10.2): the
//! immutable objects first, create-only and in parallel, then `index.idx`
//! with a condition. Upload and ingest (§10.11) share them.

use futures::StreamExt;

use crate::error::{Error, Result};
use crate::format::index_file::{INDEX_FILE_NAME, INDEX_HEADER_LEN};
use crate::format::root;
use crate::io::offload::offload;
use crate::remote::ctx::RemoteCtx;
use crate::remote::{ObjectStore, PutMode, PutOutcome};

/// An object to send: its name, length, kind, and how to read it.
pub(crate) struct Object {
    pub name: String,
    pub len: u64,
    /// An index run (else a segment).
    pub run: bool,
    pub bytes: Box<dyn FnOnce() -> Result<bytes::Bytes> + Send>,
}

/// PUTs every object create-only, in parallel; returns each one's length
/// and kind. A 412 means the object exists: its name holds the writer id
/// of the directory that made it, so it is that directory's own earlier
/// attempt, which a size check confirms.
///
/// # Errors
/// [`Error::Conflict`] if an object of the same name and another size is
/// there; [`Error::Remote`], and what reading an object returns.
pub(crate) async fn put_all(ctx: &RemoteCtx, todo: Vec<Object>) -> Result<Vec<(u64, bool)>> {
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
