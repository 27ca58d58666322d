//! Fetching a remote's committed `index.idx` whole and checking it
//! (FORMAT.md §4, §10.2): what download, rebase, gc and a full-index reader
//! start from.

use crate::error::{Error, Result};
use crate::format::index_file::INDEX_FILE_NAME;
use crate::index::base::BaseIndex;
use crate::remote::ObjectStore;
use crate::remote::ctx::RemoteCtx;

/// Fetches and checks the remote index; `None` if the remote has none.
pub(crate) async fn fetch_index(ctx: &RemoteCtx) -> Result<Option<(BaseIndex, String)>> {
    let store = ctx.store.clone();
    let Some(obj) = ctx
        .run(async move {
            match store.get(INDEX_FILE_NAME).await? {
                Some(obj) => Ok(Some(obj)),
                None => store.check().await.map(|()| None),
            }
        })
        .await?
    else {
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
