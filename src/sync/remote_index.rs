//! Fetching a remote's committed index whole and checking it (FORMAT.md
//! §4, §4.7, §4.8, §10.2): what download, rebase, gc and a full-index
//! reader start from. A version-2 root is fetched, then every run it names
//! that is not already at hand: runs are immutable, so a run file of the
//! same name in the directory is the same run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;

use crate::engine::checkpoint::write_mapped;
use crate::engine::recovery::map_file;
use crate::error::{Error, Result};
use crate::format::index_file::INDEX_FILE_NAME;
use crate::format::root::{self, RunRef};
use crate::index::base::BaseIndex;
use crate::index::layers::Layers;
use crate::io::offload::offload;
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

/// A corruption error of a remote object, so marked.
pub(crate) fn remote_error(e: Error) -> Error {
    match e {
        Error::Corruption { location, detail } => Error::Corruption {
            location: crate::Location {
                file: format!("{} (remote)", location.file),
                offset: location.offset,
            },
            detail,
        },
        other => other,
    }
}

/// Fetches and checks the remote index and every run it names; `None` if
/// the remote has none. With `dir`, runs already in it are used as they
/// are and fetched runs are written to it (mapped afterwards), so that the
/// directory can adopt the index; without, runs are held in memory.
pub(crate) async fn fetch_index(
    ctx: &RemoteCtx,
    dir: Option<&Path>,
) -> Result<Option<(Layers, String)>> {
    let Some(obj) = fetch_root(ctx).await? else {
        return Ok(None);
    };
    if !root::is_root(&obj.body) {
        let base = BaseIndex::decode(obj.body).map_err(remote_error)?;
        return Ok(Some((Layers::from_v1(base), obj.etag)));
    }
    let decoded = root::decode(&obj.body)
        .map_err(|(o, d)| remote_error(Error::corruption(INDEX_FILE_NAME, o, d)))?;
    let runs = fetch_runs(ctx, &decoded.runs, dir.map(Path::to_path_buf)).await?;
    let layers = Layers::new(decoded, runs).map_err(remote_error)?;
    Ok(Some((layers, obj.etag)))
}

/// The runs `refs` names, in order: from `dir` where it holds them, else
/// fetched in parallel, checked whole, and (with `dir`) written there.
pub(crate) async fn fetch_runs(
    ctx: &RemoteCtx,
    refs: &[RunRef],
    dir: Option<PathBuf>,
) -> Result<Vec<Arc<BaseIndex>>> {
    let store = ctx.store.clone();
    let parallel = ctx.opts.parallelism;
    let refs = refs.to_vec();
    let fs = crate::io::fs::Fs::real();
    ctx.run(async move {
        let results: Vec<Result<Arc<BaseIndex>>> = futures::stream::iter(refs)
            .map(|r| {
                let (store, dir, fs) = (store.clone(), dir.clone(), fs.clone());
                async move {
                    let name = r.id.run_file_name();
                    if let Some(d) = &dir
                        && let Some(local) = local_run(d, &r)
                    {
                        return Ok(Arc::new(local));
                    }
                    let obj = store.get(&name).await?.ok_or_else(|| {
                        Error::NotFound(format!(
                            "index run {name} named by the remote index is missing from the remote"
                        ))
                    })?;
                    offload(move || {
                        let run = BaseIndex::decode(obj.body)
                            .map_err(|e| remote_error(e.in_file(&name)))?;
                        if run.bytes().len() as u64 != r.file_len
                            || !run.bytes().starts_with(&r.head)
                        {
                            return Err(remote_error(Error::corruption(
                                name,
                                0,
                                "the run is not the one the remote index names",
                            )));
                        }
                        let Some(d) = dir else {
                            return Ok(Arc::new(run));
                        };
                        Ok(Arc::new(write_mapped(&fs, &d, &name, run)?))
                    })
                    .await
                }
            })
            .buffered(parallel)
            .collect()
            .await;
        results.into_iter().collect()
    })
    .await
}

/// The run `r` from `dir`, if a file of its name there is that run.
fn local_run(dir: &Path, r: &RunRef) -> Option<BaseIndex> {
    let (bytes, mapped) = map_file(dir, &r.id.run_file_name()).ok()??;
    if bytes.len() as u64 != r.file_len || !bytes.starts_with(&r.head) {
        return None;
    }
    BaseIndex::decode_lazy(bytes, mapped).ok()
}

/// A remote's committed `index.idx` alone, checked: what garbage
/// collection reads and rewrites (no run is fetched).
pub(crate) enum Committed {
    /// A version-1 index (the whole index in one object).
    V1(BaseIndex),
    /// A version-2 root.
    V2(root::Root),
}

impl Committed {
    pub(crate) fn meta(&self) -> crate::format::index_file::IndexMeta {
        match self {
            Committed::V1(b) => b.meta(),
            Committed::V2(r) => r.meta.clone(),
        }
    }

    pub(crate) fn obsolete_runs(&self) -> &[crate::format::index_file::ObsoleteEntry] {
        match self {
            Committed::V1(_) => &[],
            Committed::V2(r) => &r.obsolete_runs,
        }
    }

    /// The runs the root names.
    pub(crate) fn runs(&self) -> Vec<crate::format::segment_id::SegmentId> {
        match self {
            Committed::V1(_) => Vec::new(),
            Committed::V2(r) => r.runs.iter().map(|r| r.id).collect(),
        }
    }

    /// The same index under new metadata and obsolete runs, encoded.
    ///
    /// # Errors
    /// As [`BaseIndex::with_meta`].
    pub(crate) fn encode_with(
        &self,
        meta: crate::format::index_file::IndexMeta,
        obsolete_runs: Vec<crate::format::index_file::ObsoleteEntry>,
    ) -> Result<bytes::Bytes> {
        Ok(match self {
            Committed::V1(b) => b.with_meta(&meta)?.bytes().clone(),
            Committed::V2(r) => root::encode(&root::Root {
                meta,
                obsolete_runs,
                ..r.clone()
            })
            .into(),
        })
    }
}

/// Fetches and checks the remote's `index.idx` alone; `None` if the remote
/// has none.
pub(crate) async fn fetch_committed(ctx: &RemoteCtx) -> Result<Option<(Committed, String)>> {
    let Some(obj) = fetch_root(ctx).await? else {
        return Ok(None);
    };
    let committed = if root::is_root(&obj.body) {
        Committed::V2(
            root::decode(&obj.body)
                .map_err(|(o, d)| remote_error(Error::corruption(INDEX_FILE_NAME, o, d)))?,
        )
    } else {
        Committed::V1(BaseIndex::decode(obj.body).map_err(remote_error)?)
    };
    Ok(Some((committed, obj.etag)))
}
