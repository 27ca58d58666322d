//! Whether a remote enforces conditional writes (FORMAT.md §10.7).
//!
//! s4db's commit protocol relies on `If-None-Match: *` and `If-Match`. Some
//! S3-compatible servers (Garage 2.5, some gateways) accept those headers and
//! then overwrite anyway, which would let two writers silently lose each
//! other's commits. Before relying on conditions, s4db probes: a plain PUT of
//! a probe object, a PUT of it with `If-None-Match: *` and one with a wrong
//! `If-Match` (both must answer 412), then a DELETE. The probe object's name
//! is unique to this writer and attempt, and is not a segment name, so it
//! never touches another writer's objects. The answer is remembered in
//! `remote.state` for [`PROBE_LIFETIME`].

use std::time::Duration;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::remote_state::SyncState;
use crate::remote::ctx::RemoteCtx;
use crate::remote::{ObjectStore, PutMode, PutOutcome};

/// How long a probe's answer is trusted: one day.
pub const PROBE_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Probes the remote; `true` if it enforces both conditions.
pub(crate) async fn probe(ctx: &RemoteCtx, writer_id: u64) -> Result<bool> {
    let name = format!(
        "s4db-probe-{writer_id:016x}-{:08x}",
        getrandom::u32().unwrap_or(0)
    );
    let store = ctx.store.clone();
    ctx.run(async move {
        let result = async {
            store
                .put(
                    &name,
                    Bytes::from_static(b"s4db conditional-write probe 1"),
                    PutMode::Overwrite,
                )
                .await?;
            let create = store
                .put(&name, Bytes::from_static(b"s4db probe 2"), PutMode::Create)
                .await?;
            let mismatch = store
                .put(
                    &name,
                    Bytes::from_static(b"s4db probe 3"),
                    PutMode::Update("\"s4db-no-such-etag\"".into()),
                )
                .await?;
            Ok::<bool, Error>(
                create == PutOutcome::PreconditionFailed
                    && mismatch == PutOutcome::PreconditionFailed,
            )
        }
        .await;
        // Remove the probe whatever happened (a missing object is fine).
        let cleanup = store.delete(std::slice::from_ref(&name)).await;
        let enforced = result?;
        cleanup?;
        Ok(enforced)
    })
    .await
}

/// Makes sure the remote enforces conditional writes before a commit relies
/// on them: uses the answer in `state` if it is for this remote and younger
/// than [`PROBE_LIFETIME`], else probes and records the answer in `state`.
///
/// # Errors
/// The refusal (an [`Error::Remote`] that names conditional writes) if the
/// server ignores them; errors of the probe's requests.
pub(crate) async fn ensure_enforced(
    ctx: &RemoteCtx,
    writer_id: u64,
    state: &mut SyncState,
) -> Result<()> {
    let now = crate::io::clock::unix_now();
    let fresh = state.remote == ctx.url.describe()
        && state
            .conditions
            .is_some_and(|(_, when)| now.saturating_sub(when) < PROBE_LIFETIME.as_secs());
    if !fresh {
        let enforced = probe(ctx, writer_id).await?;
        state.remote = ctx.url.describe();
        state.conditions = Some((enforced, now));
    }
    match state.conditions {
        Some((true, _)) => Ok(()),
        _ => Err(refused(&ctx.url.describe())),
    }
}

/// [`ensure_enforced`] for the writes of `writer_id`, remembering a new
/// answer in the state of directory `dir` for this remote (a handle over a
/// remote alone, `dir` `None`, has nowhere to remember it).
///
/// # Errors
/// As [`ensure_enforced`]; [`Error::Io`] if the state cannot be saved.
pub(crate) async fn ensure_enforced_for(
    ctx: &RemoteCtx,
    writer_id: u64,
    dir: Option<&std::path::Path>,
    state: &mut SyncState,
) -> Result<()> {
    let before = state.conditions;
    let checked = ensure_enforced(ctx, writer_id, state).await;
    if let Some(dir) = dir
        && state.conditions != before
    {
        state.save(dir)?; // remember the probe's answer
    }
    checked
}

/// The error for a commit refused because the server ignores conditions.
pub(crate) fn refused(remote: &str) -> Error {
    Error::remote(
        format!("committing to {remote}"),
        None,
        "the server does not enforce conditional writes (If-None-Match / If-Match), so two writers could \
         silently overwrite each other's commits; if this prefix has exactly one writer, upload in \
         single-writer mode (CLI: upload --single-writer)",
    )
}
