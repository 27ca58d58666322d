//! Ingest (FORMAT.md §10.11): commit staged shards to a remote's root in
//! one conditional PUT. It reads the committed root and each shard's
//! manifest, names every shard's segments and runs in a new root (the
//! shards in the order given, so that a later shard's value or delete of a
//! key wins over an earlier one's and over the committed one: a shard's
//! runs carry its deletes, [`crate::sync::stage`]), and commits it. No
//! record or run is read or moved: the cost grows with the number of shards
//! (and of their segments and runs), not with the number of records.

use std::sync::Arc;

use futures::StreamExt;

use crate::error::{Error, Result};
use crate::format::index_file::{IndexMeta, SEGTAB_SEALED};
use crate::format::remote_state::SyncState;
use crate::format::root::{self, MAX_RUNS, Root};
use crate::format::segment_id::new_writer_id;
use crate::remote::ctx::RemoteCtx;
use crate::remote::{ObjectStore, PutMode};
use crate::sync::commit::commit_root;
use crate::sync::remote_index::{Committed, fetch_committed, remote_error};
use crate::sync::stage::{check_name, manifest_name};
use crate::sync::unindexed::{ensure_nothing_buried, listing};

/// How often an ingest starts again when another commit came first.
const ATTEMPTS: u32 = 6;

/// What an ingest did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct IngestReport {
    /// Shards committed.
    pub shards: u64,
    /// Segments the new root names that the committed one did not.
    pub segments_added: u64,
    /// Index runs likewise.
    pub runs_added: u64,
    /// The shards' live keys, added up (a key in several shards, or already
    /// committed, counts each time).
    pub keys_added: u64,
    /// Bytes of the committed `index.idx`.
    pub index_bytes: u64,
    /// Bytes of the manifests read.
    pub manifest_bytes: u64,
    /// Times the root was rebuilt on another writer's newer commit.
    pub rebased: u32,
    /// Manifests deleted after the commit (the rest are left for `gc`).
    pub manifests_removed: u64,
}

/// Commits the shards staged as `names` (in that order: later wins) to the
/// remote of `ctx` in one conditional PUT of `index.idx`, then deletes
/// their manifests.
///
/// # Errors
/// [`Error::InvalidArgument`] for a bad or repeated name, no names, a
/// read-only remote, or more runs than a root may name;
/// [`Error::NotFound`] for a name with no staged shard;
/// [`Error::Corruption`] for a manifest or root that fails its checks;
/// [`Error::Conflict`] if other commits kept coming first, the remote
/// holds a version-1 index, or it has no `index.idx` but holds segments of
/// another database; [`Error::Remote`].
pub(crate) async fn ingest(ctx: &Arc<RemoteCtx>, names: &[String]) -> Result<IngestReport> {
    ctx.ensure_writable("ingest into")?;
    if names.is_empty() {
        return Err(Error::InvalidArgument(
            "ingest needs at least one stage name".into(),
        ));
    }
    for (i, n) in names.iter().enumerate() {
        check_name(n)?;
        if names[..i].contains(n) {
            return Err(Error::InvalidArgument(format!(
                "stage {n:?} is named twice"
            )));
        }
    }
    let writer_id = new_writer_id()?;
    crate::sync::conditions::ensure_enforced_for(ctx, writer_id, None, &mut SyncState::default())
        .await?;
    let (shards, manifest_bytes) = fetch_manifests(ctx, names).await?;
    let mut report = IngestReport {
        shards: shards.len() as u64,
        keys_added: shards.iter().map(|s| s.key_count).sum(),
        manifest_bytes,
        ..IngestReport::default()
    };
    loop {
        let committed = match fetch_committed(ctx).await? {
            None => None,
            Some((Committed::V2(r), etag)) => Some((r, etag)),
            Some((Committed::V1(_), _)) => {
                return Err(Error::Conflict(format!(
                    "{} holds a version-1 index: upload to it once from a directory (which upgrades it, FORMAT.md §8), then ingest",
                    ctx.url.describe()
                )));
            }
        };
        let (root, added) = merged_root(committed.as_ref().map(|(r, _)| r), &shards, writer_id)?;
        let bytes: bytes::Bytes = root::encode(&root).into();
        report.index_bytes = bytes.len() as u64;
        (report.segments_added, report.runs_added) = added;
        let (mode, expected) = match committed {
            Some((_, etag)) => (PutMode::Update(etag.clone()), Some(etag)),
            None => {
                let named = root.meta.segments.iter().map(|s| s.id).collect();
                let entries = listing(ctx).await?;
                ensure_nothing_buried(ctx, &entries, Some(writer_id), &named).await?;
                (PutMode::Create, None)
            }
        };
        let identity = (root.meta.writer_id, root.meta.generation);
        if commit_root(ctx, bytes, mode, expected, identity)
            .await?
            .is_some()
        {
            break;
        }
        report.rebased += 1;
        if report.rebased >= ATTEMPTS {
            return Err(Error::Conflict(format!(
                "other writers kept committing to {} first; nothing was ingested: run it again",
                ctx.url.describe()
            )));
        }
    }
    // Committed: the manifests are spent. One left behind is harmless (a
    // second ingest of it adds nothing) and gc removes it.
    let doomed: Vec<String> = names.iter().map(|n| manifest_name(n)).collect();
    let store = ctx.store.clone();
    match ctx.run(async move { store.delete(&doomed).await }).await {
        Ok(()) => report.manifests_removed = names.len() as u64,
        Err(e) => tracing::warn!(error = %e, "could not delete the ingested manifests; gc will"),
    }
    Ok(report)
}

/// Fetches and checks each stage's manifest, in order; returns them and
/// their total size.
async fn fetch_manifests(ctx: &RemoteCtx, names: &[String]) -> Result<(Vec<Root>, u64)> {
    let store = ctx.store.clone();
    let parallel = ctx.opts.parallelism;
    let names = names.to_vec();
    let fetched: Vec<Result<(Root, u64)>> = ctx
        .run(async move {
            let got: Vec<Result<(Root, u64)>> = futures::stream::iter(names)
                .map(|n| {
                    let store = store.clone();
                    async move {
                        let key = manifest_name(&n);
                        let obj = store.get(&key).await?.ok_or_else(|| {
                            Error::NotFound(format!(
                                "no shard is staged as {n:?} (no {key}): stage it first, or it was ingested or collected already"
                            ))
                        })?;
                        let root = root::decode(&obj.body)
                            .map_err(|(o, d)| remote_error(Error::corruption(&key, o, d)))?;
                        Ok((root, obj.body.len() as u64))
                    }
                })
                .buffered(parallel)
                .collect()
                .await;
            Ok(got)
        })
        .await?;
    let mut out = Vec::with_capacity(fetched.len());
    let mut bytes = 0;
    for f in fetched {
        let (root, n) = f?;
        out.push(root);
        bytes += n;
    }
    Ok((out, bytes))
}

/// The root an ingest commits: `committed` (or an empty database) with
/// every shard's segments and runs added after its own, in order, each
/// named once; the counts added up and marked as estimates when more than
/// one source holds keys (they may overlap); the committed metadata;
/// written by `writer_id` at the next generation. Also returns how many
/// segments and runs were added.
///
/// # Errors
/// [`Error::InvalidArgument`] if the root would name more than
/// [`MAX_RUNS`] runs.
pub(crate) fn merged_root(
    committed: Option<&Root>,
    shards: &[Root],
    writer_id: u64,
) -> Result<(Root, (u64, u64))> {
    let mut root = committed
        .cloned()
        .unwrap_or_else(|| Root::empty(IndexMeta::fresh(writer_id)));
    let mut sources = u64::from(root.key_count > 0);
    let (mut segments_added, mut runs_added) = (0, 0);
    for shard in shards {
        let before = (segments_added, runs_added);
        for s in &shard.meta.segments {
            if !root.meta.segments.iter().any(|e| e.id == s.id) {
                root.meta
                    .segments
                    .push(crate::format::index_file::SegmentEntry {
                        flags: s.flags | SEGTAB_SEALED,
                        ..*s
                    });
                segments_added += 1;
            }
        }
        for r in &shard.runs {
            if !root.runs.iter().any(|e| e.id == r.id) {
                root.runs.push(r.clone());
                runs_added += 1;
            }
        }
        if (segments_added, runs_added) == before {
            continue; // committed already (an ingest run again)
        }
        root.key_count += shard.key_count;
        root.live_bytes += shard.live_bytes;
        sources += u64::from(shard.key_count > 0);
        root.may_expire |= shard.may_expire;
        root.counts_estimated |= shard.counts_estimated;
        root.meta.next_segment_number = root
            .meta
            .next_segment_number
            .max(shard.meta.next_segment_number);
    }
    if root.runs.len() > MAX_RUNS {
        return Err(Error::InvalidArgument(format!(
            "the root would name {} index runs, over the limit of {MAX_RUNS}: ingest fewer shards at a time, or merge the index first (a checkpoint of a downloaded copy after a write)",
            root.runs.len()
        )));
    }
    root.counts_estimated |= sources > 1;
    // The table is in replay order (FORMAT.md §4.3): the committed
    // segments, then each shard's in the order given, so that replaying
    // them (verify, §6.1) agrees with the runs on which value wins.
    // A segment or run named again is no longer obsolete.
    let named: std::collections::HashSet<_> = root.meta.segments.iter().map(|s| s.id).collect();
    root.meta.obsolete.retain(|o| !named.contains(&o.id));
    let runs: std::collections::HashSet<_> = root.runs.iter().map(|r| r.id).collect();
    root.obsolete_runs.retain(|o| !runs.contains(&o.id));
    root.meta.writer_id = writer_id;
    root.meta.generation += 1;
    Ok((root, (segments_added, runs_added)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::index_file::SegmentEntry;
    use crate::format::root::RunRef;
    use crate::format::segment_id::SegmentId;

    fn shard(writer: u64, keys: u64) -> Root {
        let id = |number| SegmentId { number, writer };
        Root {
            meta: IndexMeta {
                writer_id: writer,
                generation: 3,
                next_segment_number: 4,
                segments: vec![SegmentEntry {
                    id: id(1),
                    indexed_len: 100,
                    flags: SEGTAB_SEALED,
                }],
                obsolete: Vec::new(),
            },
            key_count: keys,
            live_bytes: keys * 10,
            obsolete_runs: Vec::new(),
            runs: vec![RunRef {
                id: id(3),
                file_len: 1,
                head: bytes::Bytes::new(),
            }],
            metadata: vec![("shard".into(), bytes::Bytes::from_static(b"x"))],
            may_expire: false,
            counts_estimated: false,
        }
    }

    #[test]
    fn shards_are_added_in_order_once_each_with_estimated_counts() {
        let (a, b) = (shard(1, 5), shard(2, 7));
        let (root, added) = merged_root(None, &[a.clone(), b.clone(), a.clone()], 9).unwrap();
        assert_eq!(added, (2, 2));
        let writers: Vec<u64> = root.runs.iter().map(|r| r.id.writer).collect();
        assert_eq!(writers, vec![1, 2], "later shards' runs come later (newer)");
        assert_eq!(root.meta.segments.len(), 2);
        assert_eq!(root.key_count, 12, "added up, a repeated shard once");
        assert!(root.counts_estimated);
        assert_eq!(root.meta.writer_id, 9);
        assert_eq!(root.meta.generation, 1);
        assert!(root.metadata.is_empty(), "a shard's metadata is not taken");
        // One source alone has exact counts; the committed generation grows.
        let (one, _) = merged_root(None, std::slice::from_ref(&a), 9).unwrap();
        assert!(!one.counts_estimated);
        let (next, added) = merged_root(Some(&one), &[a], 10).unwrap();
        assert_eq!(added, (0, 0), "ingesting a shard again adds nothing");
        assert_eq!((next.key_count, next.counts_estimated), (5, false));
        assert_eq!(next.meta.generation, 2);
    }

    #[test]
    fn more_runs_than_a_root_may_name_are_refused() {
        let shards: Vec<Root> = (0..=MAX_RUNS as u64).map(|w| shard(w + 1, 1)).collect();
        assert!(matches!(
            merged_root(None, &shards, 1),
            Err(Error::InvalidArgument(_))
        ));
    }
}
