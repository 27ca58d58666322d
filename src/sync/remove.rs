//! Deleting a database from its remote (FORMAT.md §10.8): the root
//! `index.idx` first, so that a reader sees "no database" rather than a
//! half-deleted one, then every other object under the prefix. Running it
//! again after a crash deletes what is left.

use std::sync::Arc;

use crate::engine::Engine;
use crate::error::Result;
use crate::format::index_file::INDEX_FILE_NAME;
use crate::format::remote_state::SyncState;
use crate::remote::ObjectStore;
use crate::remote::ctx::RemoteCtx;

/// What deleting a remote did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DeleteRemoteReport {
    /// Objects deleted, `index.idx` included.
    pub objects_deleted: u64,
    /// Their bytes.
    pub bytes_deleted: u64,
    /// Whether there was an `index.idx` (a committed database) to delete;
    /// `false` when a crashed earlier run had deleted it already.
    pub had_root: bool,
}

/// Deletes every object under the remote's prefix, `index.idx` first. With
/// `local`, the directory then remembers nothing as uploaded to this remote,
/// so that a later upload sends every segment again.
pub(crate) async fn delete_remote(
    ctx: &Arc<RemoteCtx>,
    local: Option<&Engine>,
) -> Result<DeleteRemoteReport> {
    ctx.ensure_writable("delete")?;
    let store = ctx.store.clone();
    let report = ctx
        .run(async move {
            let mut report = DeleteRemoteReport::default();
            if let Some(root) = store.head(INDEX_FILE_NAME).await? {
                store.delete(&[INDEX_FILE_NAME.to_string()]).await?;
                report.had_root = true;
                report.objects_deleted = 1;
                report.bytes_deleted = root.size;
            }
            let rest = store.list().await?;
            let keys: Vec<String> = rest.iter().map(|e| e.key.clone()).collect();
            store.delete(&keys).await?;
            report.objects_deleted += keys.len() as u64;
            report.bytes_deleted += rest.iter().map(|e| e.size).sum::<u64>();
            Ok(report)
        })
        .await?;
    if let Some(engine) = local {
        let remote = ctx.url.describe();
        let mut state = SyncState::load_or_new(engine.dir(), &remote)?;
        state.forget_uploads();
        state.save(engine.dir())?;
    }
    Ok(report)
}
