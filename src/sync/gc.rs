//! `gc`: delete remote objects no reader can need any more (FORMAT.md §10.5).
//!
//! - An **obsolete** segment (in the remote index's obsolete table) is
//!   deleted once the grace period has passed since the commit that dropped
//!   it: a reader holding the index before that commit can read it until
//!   then.
//! - An **orphan** (a segment object no index lists, live or obsolete: an
//!   upload that never committed) is deleted once its last-modified time is
//!   older than the grace period, so an upload still in flight keeps its
//!   segments.
//! - A **staged shard** (FORMAT.md §10.11) protects its segments and runs
//!   while its manifest is younger than the grace period; an older one is
//!   abandoned: its manifest is deleted first, then its objects as orphans.
//! - Then the index is committed again without the deleted obsolete entries
//!   (`If-Match`); if another writer committed first, that is left to the
//!   next `gc` (deleting an object twice is harmless).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::engine::Engine;
use crate::error::Result;
use crate::format::index_file::INDEX_FILE_NAME;
use crate::format::index_file::ObsoleteEntry;
use crate::format::remote_state::SyncState;
use crate::format::segment_id::SegmentId;
use crate::io::clock::unix_now;
use crate::options::setters;
use crate::remote::ctx::RemoteCtx;
use crate::remote::{ObjectStore, PutMode, PutOutcome};
use crate::sync::remote_index::fetch_committed;
use crate::sync::stage::{parse_manifest_name, staged_objects};

/// Default grace period: one hour.
pub const DEFAULT_GC_GRACE: Duration = Duration::from_secs(3600);

/// How to collect garbage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcOptions {
    /// How long a dropped or uncommitted segment is kept; default
    /// [`DEFAULT_GC_GRACE`] (one hour).
    pub grace: Duration,
    /// For a server that does not enforce conditional writes: delete only
    /// this writer's own segments, and commit the index after re-reading it
    /// instead of conditionally. Default `false` (refuse on such a server).
    pub single_writer: bool,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            grace: DEFAULT_GC_GRACE,
            single_writer: false,
        }
    }
}

setters!(GcOptions {
    /// Sets the grace period.
    grace: Duration,
    /// Sets single-writer mode.
    single_writer: bool,
});

/// What garbage collection did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct GcReport {
    /// Obsolete segments deleted.
    pub obsolete_deleted: u64,
    /// Orphaned segment objects (never committed) deleted.
    pub orphans_deleted: u64,
    /// Obsolete or orphaned segments kept because they are younger than the grace period.
    pub kept: u64,
    /// Manifests of staged shards deleted: never ingested, and older than
    /// the grace period.
    pub stages_deleted: u64,
    /// The names of the objects deleted (relative to the prefix), sorted.
    pub deleted: Vec<String>,
}

/// Who runs a `gc`: a local directory (whose sync state follows the
/// commit), or a handle over a remote alone.
pub(crate) struct Collector<'a> {
    pub ctx: Arc<RemoteCtx>,
    /// The local directory's engine; `None` over a remote alone.
    pub local: Option<&'a Engine>,
    /// The writer whose segments are "its own" in single-writer mode.
    pub writer_id: u64,
    /// Serialises this handle's remote operations.
    pub sync_lock: &'a tokio::sync::Mutex<()>,
}

pub(crate) async fn gc(by: Collector<'_>, opts: GcOptions) -> Result<GcReport> {
    let ctx = by.ctx;
    ctx.ensure_writable("collect garbage on")?;
    let _sync = by.sync_lock.lock().await;
    let grace = opts.grace;
    let dir = by.local.map(Engine::dir);
    if !opts.single_writer {
        let mut state = match dir {
            None => SyncState::default(),
            Some(dir) => SyncState::load_or_new(dir, &ctx.url.describe())?,
        };
        crate::sync::conditions::ensure_enforced_for(&ctx, by.writer_id, dir, &mut state).await?;
    }
    // In single-writer mode, only this writer's own segments are deleted.
    let mine = |id: &SegmentId| !opts.single_writer || id.writer == by.writer_id;
    let mut report = GcReport::default();
    let Some((remote, etag)) = fetch_committed(&ctx).await? else {
        return Ok(report);
    };
    let now = unix_now();
    let grace_s = grace.as_secs();
    let meta = remote.meta();
    let is_due = |o: &&ObsoleteEntry| now.saturating_sub(o.since) >= grace_s && mine(&o.id);
    let (due, young): (Vec<_>, Vec<_>) = meta.obsolete.iter().partition(is_due);
    let (due_runs, young_runs): (Vec<_>, Vec<_>) = remote.obsolete_runs().iter().partition(is_due);
    report.kept += (young.len() + young_runs.len()) as u64;
    let mut referenced: BTreeSet<SegmentId> = meta
        .segments
        .iter()
        .map(|s| s.id)
        .chain(meta.obsolete.iter().map(|o| o.id))
        .collect();
    let mut referenced_runs: BTreeSet<SegmentId> = remote
        .runs()
        .into_iter()
        .chain(remote.obsolete_runs().iter().map(|o| o.id))
        .collect();

    let store = ctx.store.clone();
    let listing = ctx.run(async move { store.list().await }).await;
    let mut orphans = Vec::new();
    let mut stale_stages = Vec::new();
    let cutoff = SystemTime::now().checked_sub(grace);
    let is_old = |m: Option<SystemTime>| matches!((m, cutoff), (Some(m), Some(c)) if m <= c);
    let listing = match listing {
        // Staged shards: a young one's objects are not orphans.
        Ok(entries) if !opts.single_writer => {
            let mut young = Vec::new();
            for e in &entries {
                if parse_manifest_name(&e.key).is_none() {
                    continue;
                }
                if is_old(e.modified) {
                    stale_stages.push(e.key.clone());
                } else {
                    young.push(e.key.clone());
                }
            }
            staged_objects(&ctx, young).await.map(|ids| {
                for (id, run) in ids {
                    if run {
                        referenced_runs.insert(id);
                    } else {
                        referenced.insert(id);
                    }
                }
                entries
            })
        }
        other => other,
    };
    match listing {
        Ok(entries) => {
            for e in entries {
                let named = match (
                    SegmentId::parse_file_name(&e.key),
                    SegmentId::parse_run_file_name(&e.key),
                ) {
                    (Some(id), _) => Some((id, referenced.contains(&id))),
                    (_, Some(id)) => Some((id, referenced_runs.contains(&id))),
                    _ => None,
                };
                let Some((id, is_referenced)) = named else {
                    continue;
                };
                if is_referenced || !mine(&id) {
                    continue;
                }
                if is_old(e.modified) {
                    orphans.push(e.key);
                } else {
                    report.kept += 1;
                }
            }
        }
        // Listing is an extra: without it, obsolete segments are still collected.
        Err(err) => {
            stale_stages.clear();
            tracing::warn!(error = %err, "could not list the remote or a staged shard's manifest; orphans are not collected")
        }
    }
    // An abandoned stage's manifest goes first: an ingest can then no
    // longer name the objects deleted after it.
    if !stale_stages.is_empty() {
        report.stages_deleted = stale_stages.len() as u64;
        let doomed = stale_stages.clone();
        let store = ctx.store.clone();
        ctx.run(async move { store.delete(&doomed).await }).await?;
    }

    let mut doomed: Vec<String> = due
        .iter()
        .map(|o: &&ObsoleteEntry| o.id.file_name())
        .chain(
            due_runs
                .iter()
                .map(|o: &&ObsoleteEntry| o.id.run_file_name()),
        )
        .collect();
    doomed.extend(orphans.iter().cloned());
    doomed.sort();
    report.deleted = doomed.iter().chain(&stale_stages).cloned().collect();
    report.deleted.sort();
    if !doomed.is_empty() {
        let store = ctx.store.clone();
        ctx.run(async move { store.delete(&doomed).await }).await?;
    }
    report.obsolete_deleted = (due.len() + due_runs.len()) as u64;
    report.orphans_deleted = orphans.len() as u64;

    if !due.is_empty() || !due_runs.is_empty() {
        let mut meta = meta.clone();
        meta.obsolete = young.into_iter().copied().collect();
        meta.generation += 1;
        let young_runs: Vec<ObsoleteEntry> = young_runs.into_iter().copied().collect();
        let bytes = remote.encode_with(meta.clone(), young_runs.clone())?;
        let store = ctx.store.clone();
        let old_tag = etag.clone();
        let single = opts.single_writer;
        let outcome = ctx
            .run(async move {
                if single {
                    // Re-read right before the commit instead of a condition.
                    if store.head(INDEX_FILE_NAME).await?.map(|m| m.etag) != Some(old_tag) {
                        return Ok(PutOutcome::PreconditionFailed);
                    }
                    return store.put(INDEX_FILE_NAME, bytes, PutMode::Overwrite).await;
                }
                store
                    .put(INDEX_FILE_NAME, bytes, PutMode::Update(old_tag))
                    .await
            })
            .await?;
        if let PutOutcome::Written(tag) = outcome {
            // If this directory was in sync with the index gc replaced, it
            // still is: it moves to the new tag and obsolete list.
            let state = match by.local {
                None => None,
                Some(engine) => {
                    SyncState::load_for(engine.dir(), &ctx.url.describe())?.map(|s| (engine, s))
                }
            };
            if let Some((engine, mut state)) = state.filter(|(_, s)| s.etag.as_ref() == Some(&etag))
            {
                let store = ctx.store.clone();
                state.etag = match tag {
                    Some(t) => Some(t),
                    None => ctx
                        .run(async move { store.head(INDEX_FILE_NAME).await })
                        .await?
                        .map(|m| m.etag),
                };
                state.save(engine.dir())?;
                engine.set_obsolete(meta.obsolete.clone(), young_runs);
            }
        }
    }
    Ok(report)
}
