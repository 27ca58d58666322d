//! Staging a shard (FORMAT.md §10.11): a directory built on its own sends
//! its segments and index runs under a database's prefix, then a manifest
//! `stage_{NAME}.idx` (the shard's own root), without touching the
//! committed `index.idx`. Readers never see a staged shard; an ingest
//! ([`crate::sync::ingest`]) commits it. First the shard's index gets a
//! tombstone for each key its segments delete that no run mentions
//! ([`Engine::stage_snapshot`]), so that its deletes hide the keys of the
//! shards ingested before it.

use std::sync::Arc;

use crate::engine::Engine;
use crate::engine::segment::Segment;
use crate::error::{Error, Result};
use crate::format::root;
use crate::format::segment_id::SegmentId;
use crate::index::layers::Layers;
use crate::io::offload::offload;
use crate::remote::ctx::RemoteCtx;
use crate::remote::{ObjectStore, PutMode};
use crate::sync::commit::send;

/// What staging a shard did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StageReport {
    /// Segments sent (or found there from an earlier attempt).
    pub segments_uploaded: u64,
    /// Their bytes.
    pub segment_bytes: u64,
    /// Index runs sent.
    pub runs_uploaded: u64,
    /// Their bytes.
    pub run_bytes: u64,
    /// Bytes of the manifest `stage_{NAME}.idx`.
    pub manifest_bytes: u64,
    /// Live keys of the shard.
    pub keys: u64,
}

/// The longest stage name.
const MAX_NAME: usize = 100;

/// Checks a stage name: 1 to 100 characters of `A-Z a-z 0-9 . _ -`.
///
/// # Errors
/// [`Error::InvalidArgument`] otherwise.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "a stage name is 1 to {MAX_NAME} characters of A-Z, a-z, 0-9, '.', '_' and '-', not {name:?}"
        )))
    }
}

/// The object holding stage `name`'s manifest.
pub(crate) fn manifest_name(name: &str) -> String {
    format!("stage_{name}.idx")
}

/// The stage name of a manifest object's name, if it is one.
pub(crate) fn parse_manifest_name(key: &str) -> Option<&str> {
    let name = key.strip_prefix("stage_")?.strip_suffix(".idx")?;
    check_name(name).ok().map(|()| name)
}

/// The segments and runs (`true`) the manifests `keys` name.
///
/// # Errors
/// [`Error::Remote`](crate::Error::Remote), or a corruption error for a
/// manifest that fails its checks.
pub(crate) async fn staged_objects(
    ctx: &RemoteCtx,
    keys: Vec<String>,
) -> Result<Vec<(SegmentId, bool)>> {
    let store = ctx.store.clone();
    ctx.run(async move {
        let mut out = Vec::new();
        for key in keys {
            // Gone since the listing (ingested): its objects are committed.
            let Some(obj) = store.get(&key).await? else {
                continue;
            };
            let root = crate::format::root::decode(&obj.body)
                .map_err(|(o, d)| crate::Error::corruption(&key, o, d))?;
            out.extend(root.meta.segments.iter().map(|s| (s.id, false)));
            out.extend(root.runs.iter().map(|r| (r.id, true)));
        }
        Ok(out)
    })
    .await
}

/// Stages the database of `engine` (a shard) as `name` under `ctx`'s
/// prefix: every segment and index run, create-only, then the manifest,
/// replacing a manifest of the same name.
///
/// # Errors
/// [`Error::InvalidArgument`] for a bad name, a read-only destination, or
/// a directory holding segments another directory wrote (a shard is built
/// from scratch); as [`put_all`]; [`Error::Remote`].
pub(crate) async fn stage(
    engine: &Arc<Engine>,
    ctx: &RemoteCtx,
    name: &str,
) -> Result<StageReport> {
    check_name(name)?;
    ctx.ensure_writable("stage to")?;
    engine.check_writable()?;
    // Refused before the shard's segments are read for its deletes.
    let e = engine.clone();
    let (base, segments) = offload(move || e.upload_snapshot()).await?;
    ensure_own(engine, &base, &segments)?;
    let e = engine.clone();
    let (base, segments) = offload(move || e.stage_snapshot()).await?;
    ensure_own(engine, &base, &segments)?;
    let runs = base
        .runs()
        .iter()
        .filter_map(|r| r.id.map(|id| (id, r.index.bytes().clone())))
        .collect();
    let sent = send(ctx, segments, runs).await?;
    let mut report = StageReport {
        keys: base.key_count(),
        segments_uploaded: sent.segments,
        segment_bytes: sent.segment_bytes,
        runs_uploaded: sent.runs,
        run_bytes: sent.run_bytes,
        ..StageReport::default()
    };
    // Last, the manifest: the shard's root with nothing obsolete.
    let mut manifest = base.root().clone();
    manifest.meta.obsolete.clear();
    manifest.obsolete_runs.clear();
    let bytes: bytes::Bytes = root::encode(&manifest).into();
    report.manifest_bytes = bytes.len() as u64;
    let store = ctx.store.clone();
    let key = manifest_name(name);
    ctx.run(async move { store.put(&key, bytes, PutMode::Overwrite).await })
        .await?;
    Ok(report)
}

/// Checks that every segment and run of a snapshot is `engine`'s own.
///
/// # Errors
/// [`Error::InvalidArgument`] naming the first that is not.
fn ensure_own(engine: &Engine, base: &Layers, segments: &[Arc<Segment>]) -> Result<()> {
    let foreign = segments
        .iter()
        .map(|s| s.id())
        .chain(base.run_ids())
        .find(|id| id.writer != engine.writer_id());
    match foreign {
        Some(id) => Err(Error::InvalidArgument(format!(
            "this directory holds {} written by writer {:016x}, not by itself (a download or a copy): a shard must be built on its own, in a new directory with no remote attached",
            id.file_name(),
            id.writer
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_names_are_checked_and_round_trip_through_manifest_names() {
        for good in ["part-0001", "a", "x.y_z", &"n".repeat(100)] {
            assert!(check_name(good).is_ok(), "{good}");
            assert_eq!(parse_manifest_name(&manifest_name(good)), Some(good));
        }
        for bad in ["", "a/b", "a b", "é", "a?b", &"n".repeat(101)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_manifest_name("index.idx"), None);
        assert_eq!(parse_manifest_name("stage_a/b.idx"), None);
    }
}
