//! Fetching a remote's committed `index.idx` whole and checking it
//! (FORMAT.md §4, §10.2): what download, rebase, gc and a full-index reader
//! start from.

use crate::error::{Error, Result};
use crate::format::index_file::INDEX_FILE_NAME;
use crate::index::base::BaseIndex;
use crate::remote::ctx::RemoteCtx;
use crate::remote::{Object, ObjectStore};

/// The remote's `index.idx` as stored, unchecked; `None` if the remote has
/// none (after checking that the remote itself is reachable).
pub(crate) async fn fetch_root(ctx: &RemoteCtx) -> Result<Option<Object>> {
    let store = ctx.store.clone();
    ctx.run(async move {
        match store.get(INDEX_FILE_NAME).await? {
            Some(obj) => Ok(Some(obj)),
            None => store.check().await.map(|()| None),
        }
    })
    .await
}

/// Fetches and checks the remote index; `None` if the remote has none.
pub(crate) async fn fetch_index(ctx: &RemoteCtx) -> Result<Option<(BaseIndex, String)>> {
    let Some(obj) = fetch_root(ctx).await? else {
        return Ok(None);
    };
    let base = BaseIndex::decode(obj.body).map_err(|e| match e {
        Error::Corruption { location, detail } => Error::Corruption {
            location: crate::Location {
                file: format!("{} (remote)", location.file),
                offset: location.offset,
            },
            detail,
        },
        other => other,
    })?;
    Ok(Some((base, obj.etag)))
}
