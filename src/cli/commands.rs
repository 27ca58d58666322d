//! What each command does, and how failures become exit codes.

use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use s4db::{Db, DbBuilder, Error, RemoteOptions, SyncPolicy, UploadOptions, WriteBatch};
use serde_json::json;

use super::args::{Cli, Command, MetaAction, SyncArg};
use super::jsonl;

/// A failure, with the exit code it means.
#[derive(Debug)]
pub enum Failure {
    /// Exit 1: `get` of a missing key.
    KeyNotFound(String),
    /// Exit 2: a usage error or invalid input.
    Usage(String),
    /// Exit 4: `verify` found problems.
    Unsound(String),
    /// Exit 5: output could not be written.
    Output(io::Error),
    /// From the library.
    Db(Error),
    /// From the library, after part of the work was done: says what.
    Partial {
        /// The failure.
        error: Error,
        /// What was done before it (durable, and kept).
        done: String,
    },
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Db(e)
    }
}

impl Failure {
    /// The exit code (README "Exit codes").
    pub fn code(&self) -> u8 {
        match self {
            Failure::KeyNotFound(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Unsound(_) => 4,
            Failure::Output(_) => 5,
            Failure::Db(e) | Failure::Partial { error: e, .. } => match e {
                Error::InvalidArgument(_) | Error::ReadOnly => 2,
                Error::Conflict(_) => 3,
                Error::Corruption { .. } => 4,
                Error::OnRemote(_) => 6,
                _ => 5,
            },
        }
    }

    /// The one-line message (no trailing newline, no secrets: library errors
    /// never hold any).
    pub fn message(&self) -> String {
        let m = match self {
            Failure::KeyNotFound(k) => format!("key {k} not found"),
            Failure::Usage(m) | Failure::Unsound(m) => m.clone(),
            Failure::Output(e) => format!("writing output: {e}"),
            Failure::Db(e) => e.to_string(),
            Failure::Partial { error, done } => format!("{error}; {done}"),
        };
        m.replace('\n', " ")
    }
}

type Result<T = (), E = Failure> = std::result::Result<T, E>;

/// What a command does to the directory.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Reads only: never creates, never locks out a writer.
    Read,
    /// Changes an existing database.
    Write,
    /// Changes the database, creating it if there is none (put, import,
    /// download).
    Create,
}

/// `gc` needs a local directory only to record what it learned: write
/// access with `--dir`, read access over a remote alone.
fn read_unless_dir(cli: &Cli) -> Access {
    if cli.dir.is_some() {
        Access::Write
    } else {
        Access::Read
    }
}

/// The remote settings the global options ask for.
fn remote_options(cli: &Cli) -> RemoteOptions {
    let o = RemoteOptions::default();
    match cli.timeout {
        Some(t) => o.timeout(Duration::from_secs(t)),
        None => o,
    }
}

/// A KEY argument as bytes: as typed, or decoded from base64 with --key-b64.
fn key_arg(key: &str, b64: bool) -> Result<Vec<u8>> {
    if !b64 {
        return Ok(key.as_bytes().to_vec());
    }
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|e| Failure::Usage(format!("--key-b64: {key:?} is not standard base64: {e}")))
}

/// A key for messages: as text when it is UTF-8, else as base64.
fn show_key(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(k) => format!("{k:?}"),
        Err(_) => {
            use base64::Engine as _;
            format!(
                "(base64) {}",
                base64::engine::general_purpose::STANDARD.encode(key)
            )
        }
    }
}

/// A PATH argument that is `-`: standard input or output.
fn is_dash(p: &std::path::Path) -> bool {
    p.as_os_str() == "-"
}

/// Closes a handle after `done` was written: an error then says what was
/// done, so it is never taken for "nothing happened".
async fn close_after(db: &Db, done: &str) -> Result {
    db.close().await.map_err(|error| Failure::Partial {
        error,
        done: format!("{done} before closing the database failed"),
    })
}

/// Closes a handle after an operation that returned `r`; after a failure
/// the handle is closed too and the operation's error is the one returned.
async fn closed_after<T>(db: &Db, r: std::result::Result<T, Error>) -> Result<T> {
    match r {
        Ok(v) => {
            db.close().await?;
            Ok(v)
        }
        Err(e) => {
            let _ = db.close().await;
            Err(e.into())
        }
    }
}

/// The human line naming the segment files set aside as damaged (empty
/// when there is none), and what to do about them.
fn damaged_files_line(files: &[String]) -> String {
    if files.is_empty() {
        return String::new();
    }
    format!(
        "\ndamaged files set aside: {} ({}); s4db never reads them again: delete each once satisfied with what the rebuild kept",
        files.len(),
        files.join(", ")
    )
}

/// Tells on stderr of each damaged range an operation skipped; returns them
/// as JSON for `--json`.
fn skipped_ranges(skipped: &[s4db::DamagedRange]) -> serde_json::Value {
    for d in skipped {
        eprintln!(
            "s4db: skipped bytes {}..{} of {}: {}",
            d.start, d.end, d.file, d.reason
        );
    }
    skipped
        .iter()
        .map(|d| json!({"file": d.file, "start": d.start, "end": d.end, "reason": d.reason}))
        .collect()
}

fn policy(s: SyncArg) -> SyncPolicy {
    match s {
        SyncArg::Never => SyncPolicy::Never,
        SyncArg::Flush => SyncPolicy::OnFlush,
        SyncArg::Always => SyncPolicy::EveryWrite,
    }
}

async fn open(cli: &Cli, access: Access, what: &str) -> Result<Db> {
    open_with(cli, access, what, true).await
}

/// Opens as [`open`]; with `attach` false, a directory is opened without
/// `--remote` (which then names where its shard goes, not its own remote).
async fn open_with(cli: &Cli, access: Access, what: &str, attach: bool) -> Result<Db> {
    match (&cli.dir, &cli.remote) {
        (Some(dir), remote) => {
            let mut b = Db::builder(dir)
                .sync(policy(cli.sync))
                .remote_options(remote_options(cli));
            if let Some(r) = remote.as_ref().filter(|_| attach) {
                b = b.remote(r.clone());
            }
            if let Some(w) = cli.wait {
                let wait = Duration::try_from_secs_f64(w).map_err(|_| {
                    Failure::Usage(format!("--wait {w}: give a number of seconds, 0 or more"))
                })?;
                b = b.lock_wait(wait);
            }
            match access {
                // Readers never change the directory, and open beside a writer.
                Access::Read => b = b.read_only(true).create_if_missing(false),
                Access::Write => b = b.create_if_missing(false),
                Access::Create => {}
            }
            Ok(b.open().await?)
        }
        (None, Some(remote)) if access == Access::Read => Ok(DbBuilder::for_remote(remote.clone())
            .remote_options(remote_options(cli))
            .open()
            .await?),
        (None, Some(_)) => Err(Failure::Usage(format!(
            "`{what}` needs a local database: give --dir DIR (or S4DB_DIR)"
        ))),
        (None, None) => Err(Failure::Usage(
            "give --dir DIR (or S4DB_DIR), or --remote URL (or S4DB_REMOTE) for read commands"
                .into(),
        )),
    }
}

/// Shows an indeterminate progress spinner while `what` runs, when stderr is
/// a terminal and --quiet is not given.
fn spinner(cli: &Cli, what: &str) -> Option<ProgressBar> {
    if cli.quiet || !io::stderr().is_terminal() {
        return None;
    }
    let pb = ProgressBar::new_spinner().with_message(what.to_string());
    pb.enable_steady_tick(Duration::from_millis(120));
    Some(pb)
}

fn out_err(e: io::Error) -> Failure {
    Failure::Output(e)
}

/// Prints a report: JSON with --json, else a human line.
fn report(cli: &Cli, value: serde_json::Value, human: String) -> Result {
    let mut out = io::stdout().lock();
    if cli.json {
        writeln!(out, "{value}").map_err(out_err)
    } else {
        writeln!(out, "{human}").map_err(out_err)
    }
}

pub async fn run(cli: &Cli) -> Result {
    match &cli.command {
        Command::Put {
            key,
            value,
            file,
            key_b64,
            ttl,
        } => {
            let key = key_arg(key, *key_b64)?;
            let bytes = value_arg(value.as_deref(), file.as_deref())?;
            let db = open(cli, Access::Create, "put").await?;
            match ttl {
                Some(s) => {
                    db.put_with_ttl(&key, bytes, Duration::from_secs(*s))
                        .await?
                }
                None => db.put(&key, bytes).await?,
            }
            close_after(&db, "the value was written").await
        }
        Command::Meta { action } => meta(cli, action.as_ref()).await,
        Command::Get { key, out, key_b64 } => {
            get(cli, &key_arg(key, *key_b64)?, out.as_deref()).await
        }
        Command::Del {
            prefix: Some(p),
            key_b64,
            ..
        } => {
            let p = key_arg(p, *key_b64)?;
            let db = open(cli, Access::Write, "del").await?;
            let n = db.delete_prefix(&p).await?;
            close_after(&db, &format!("{n} key(s) deleted")).await?;
            report(cli, json!({ "deleted": n }), format!("deleted {n} key(s)"))
        }
        Command::Del {
            range: Some(r),
            key_b64,
            ..
        } => {
            let (start, end) = (key_arg(&r[0], *key_b64)?, key_arg(&r[1], *key_b64)?);
            let db = open(cli, Access::Write, "del").await?;
            let n = db.delete_range(start..end).await?;
            close_after(&db, &format!("{n} key(s) deleted")).await?;
            report(cli, json!({ "deleted": n }), format!("deleted {n} key(s)"))
        }
        Command::Del { keys, key_b64, .. } => {
            let keys: Vec<Vec<u8>> = keys
                .iter()
                .map(|k| key_arg(k, *key_b64))
                .collect::<Result<_>>()?;
            let db = open(cli, Access::Write, "del").await?;
            // This process holds the writer lock: what exists now is what the
            // batch deletes (the engine drops deletes of missing keys).
            let mut present = std::collections::BTreeSet::new();
            for k in &keys {
                if db.contains(k).await? {
                    present.insert(k.clone());
                }
            }
            let mut b = WriteBatch::new();
            for k in &keys {
                b.delete(k)?;
            }
            db.write(b).await?;
            close_after(&db, &format!("{} key(s) deleted", present.len())).await?;
            report(
                cli,
                json!({ "deleted": present.len(), "missing": keys.len() - keys.iter().filter(|k| present.contains(*k)).count() }),
                format!("deleted {} key(s)", present.len()),
            )
        }
        Command::Keys { prefix } => {
            let db = open(cli, Access::Read, "keys").await?;
            let keys = db.keys().await?;
            let mut out = io::BufWriter::new(io::stdout().lock());
            for k in keys
                .iter()
                .filter(|k| prefix.as_ref().is_none_or(|p| k.starts_with(p.as_bytes())))
            {
                if cli.json {
                    writeln!(out, "{}", jsonl::render_key(k)).map_err(out_err)?;
                } else {
                    out.write_all(k)
                        .and_then(|()| out.write_all(b"\n"))
                        .map_err(out_err)?;
                }
            }
            out.flush().map_err(out_err)
        }
        Command::Import { file, batch } => import(cli, file.as_deref(), *batch).await,
        Command::Export { out } => export(cli, out.as_deref()).await,
        Command::Stat => {
            let db = open(cli, Access::Read, "stat").await?;
            let s = db.stats().await?;
            report(
                cli,
                json!({
                    "keys": s.keys,
                    "segments": s.segments,
                    "live_bytes": s.live_bytes,
                    "total_bytes": s.total_bytes,
                    "unuploaded_segments": s.unuploaded_segments,
                    "damaged_files": s.damaged_files,
                }),
                format!(
                    "keys: {}\nsegments: {}\nlive bytes: {}\ntotal bytes: {}\nsegments not yet uploaded: {}{}",
                    s.keys,
                    s.segments,
                    s.live_bytes,
                    s.total_bytes,
                    s.unuploaded_segments,
                    damaged_files_line(&s.damaged_files)
                ),
            )
        }
        Command::Verify => {
            // Only reads: a segment the directory lacks is reported, never
            // fetched (`download` fetches it).
            let db = open(cli, Access::Read, "verify").await?;
            let pb = spinner(cli, "verifying");
            let r = db.verify().await?;
            drop(pb);
            let mut human = format!(
                "{} segments, {} records, {} bytes, {} keys checked",
                r.segments, r.records, r.bytes, r.keys
            );
            if r.segments_missing > 0 {
                human.push_str(&format!(
                    "; {} segment(s) not in this directory, not checked",
                    r.segments_missing
                ));
            }
            for p in &r.problems {
                human.push_str("\nproblem: ");
                human.push_str(&p.replace('\n', " "));
            }
            report(
                cli,
                json!({ "ok": r.is_ok(), "segments": r.segments, "records": r.records, "bytes": r.bytes, "keys": r.keys, "segments_missing": r.segments_missing, "problems": r.problems }),
                human,
            )?;
            if r.is_ok() {
                Ok(())
            } else {
                Err(Failure::Unsound(format!(
                    "verify found {} problem(s), listed on standard output",
                    r.problems.len()
                )))
            }
        }
        Command::Status { keys } => {
            let db = open(cli, Access::Read, "status").await?;
            let changes = db.changes().await?;
            let shown = if *keys {
                changes.len()
            } else {
                changes.len().min(10)
            };
            let listed: Vec<serde_json::Value> = changes
                .iter()
                .take(shown)
                .map(|c| {
                    let mut obj = jsonl::key_fields(&c.key);
                    let kind = if c.kind == s4db::ChangeKind::Delete {
                        "delete"
                    } else {
                        "put"
                    };
                    obj.insert("kind".into(), kind.into());
                    obj.insert("value_len".into(), c.value_len.into());
                    serde_json::Value::Object(obj)
                })
                .collect();
            let mut human = format!(
                "{} change(s) to upload: {} put, {} deleted{}",
                changes.len(),
                changes.puts,
                changes.deletes,
                if changes.compacted {
                    " (compacted since the last sync: the keys it rewrote are re-sent)"
                } else {
                    ""
                }
            );
            for c in changes.iter().take(shown) {
                let key = String::from_utf8_lossy(&c.key);
                match c.value_len {
                    Some(n) => human.push_str(&format!("\nput {key} ({n} bytes)")),
                    None => human.push_str(&format!("\ndel {key}")),
                }
            }
            if shown < changes.len() {
                human.push_str(&format!(
                    "\n… and {} more (--keys lists all)",
                    changes.len() - shown
                ));
            }
            if changes.restored {
                human.push_str(
                    "\nrestored from a remote whose index.idx was lost: the next upload commits a new one",
                );
            }
            report(
                cli,
                json!({
                    "changes": changes.len(),
                    "puts": changes.puts,
                    "deletes": changes.deletes,
                    "compacted": changes.compacted,
                    "restored": changes.restored,
                    "keys": listed,
                }),
                human,
            )
        }
        Command::Discard { keys, all, key_b64 } => {
            let keys: Vec<Vec<u8>> = keys
                .iter()
                .map(|k| key_arg(k, *key_b64))
                .collect::<Result<_>>()?;
            let db = open(cli, Access::Write, "discard").await?;
            let r = if *all {
                db.discard_all().await?
            } else {
                db.discard(&keys).await?
            };
            close_after(&db, &format!("{} key(s) discarded", r.keys_discarded)).await?;
            report(
                cli,
                json!({ "keys_discarded": r.keys_discarded, "records_kept": r.records_kept }),
                format!(
                    "discarded the unsynced changes of {} key(s); {} other record(s) kept",
                    r.keys_discarded, r.records_kept
                ),
            )
        }
        Command::Copy { dest } => {
            let Some(url) = &cli.remote else {
                return Err(Failure::Usage(
                    "copy needs --remote URL (or S4DB_REMOTE): the database to copy".into(),
                ));
            };
            let pb = spinner(cli, "copying the remote");
            let r = DbBuilder::for_remote(url.clone())
                .remote_options(remote_options(cli))
                .copy_remote(
                    DbBuilder::for_remote(dest.clone()).remote_options(remote_options(cli)),
                )
                .await?;
            drop(pb);
            report(
                cli,
                json!({
                    "segments_copied": r.segments_copied,
                    "copied_server_side": r.copied_server_side,
                    "segments_present": r.segments_present,
                    "bytes_copied": r.bytes_copied,
                    "keys": r.keys,
                    "source_etag": r.source_etag,
                    "already_complete": r.already_complete,
                }),
                if r.already_complete {
                    format!("{dest} already holds this commit ({} keys)", r.keys)
                } else {
                    format!(
                        "copied {} keys: {} segment(s) ({} by the server), {} bytes; {} already there",
                        r.keys,
                        r.segments_copied,
                        r.copied_server_side,
                        r.bytes_copied,
                        r.segments_present
                    )
                },
            )
        }
        Command::DeleteRemote { yes } => {
            let Some(url) = &cli.remote else {
                return Err(Failure::Usage(
                    "delete-remote needs --remote URL (or S4DB_REMOTE)".into(),
                ));
            };
            if !*yes {
                return Err(Failure::Usage(format!(
                    "delete-remote deletes every object under {url}; add --yes to confirm"
                )));
            }
            let pb = spinner(cli, "deleting the remote");
            let r = if cli.dir.is_some() {
                let db = open(cli, Access::Write, "delete-remote").await?;
                let r = db.delete_remote().await?;
                db.close().await?;
                r
            } else {
                DbBuilder::for_remote(url.clone())
                    .remote_options(remote_options(cli))
                    .delete_remote()
                    .await?
            };
            drop(pb);
            report(
                cli,
                json!({ "objects_deleted": r.objects_deleted, "bytes_deleted": r.bytes_deleted, "had_root": r.had_root }),
                format!(
                    "deleted {} object(s), {} bytes{}",
                    r.objects_deleted,
                    r.bytes_deleted,
                    if r.had_root {
                        ""
                    } else {
                        " (no index.idx was left)"
                    }
                ),
            )
        }
        Command::Compact { full, min_dead } => {
            let db = open(cli, Access::Write, "compact").await?;
            let pb = spinner(cli, "compacting");
            let opts = s4db::CompactOptions::default()
                .full(*full)
                .min_dead_percent(*min_dead);
            let r = db.compact_with(opts).await?;
            db.close().await?;
            drop(pb);
            report(
                cli,
                json!({ "segments_before": r.segments_before, "segments_after": r.segments_after, "segments_rewritten": r.segments_rewritten, "bytes_before": r.bytes_before, "bytes_after": r.bytes_after, "records_written": r.records_written, "records_expired": r.records_expired }),
                format!(
                    "{} -> {} segments ({} rewritten), {} -> {} bytes, {} records written, {} expired dropped",
                    r.segments_before,
                    r.segments_after,
                    r.segments_rewritten,
                    r.bytes_before,
                    r.bytes_after,
                    r.records_written,
                    r.records_expired
                ),
            )
        }
        Command::MergeIndex => {
            let db = open(cli, Access::Create, "merge-index").await?;
            let before = db.stats().await?.index_runs;
            let pb = spinner(cli, "merging the index");
            db.merge_index().await?;
            let after = db.stats().await?;
            close_after(&db, "the index was merged").await?;
            drop(pb);
            report(
                cli,
                json!({ "runs_before": before, "runs_after": after.index_runs, "keys": after.keys }),
                format!(
                    "merged {before} index run(s) into {}; {} keys",
                    after.index_runs, after.keys
                ),
            )
        }
        Command::RebuildIndex => {
            let dir = cli.dir.as_ref().ok_or_else(|| {
                Failure::Usage("`rebuild-index` needs --dir DIR (or S4DB_DIR)".into())
            })?;
            // Open by rebuilding: works even when index.idx is unreadable.
            let mut b = Db::builder(dir)
                .sync(policy(cli.sync))
                .create_if_missing(false)
                .rebuild_index(true);
            if let Some(r) = &cli.remote {
                b = b.remote(r.clone());
            }
            let pb = spinner(cli, "rebuilding the index");
            let db = b.open().await?;
            let r = db.rebuild_report().cloned().unwrap_or_default();
            db.close().await?;
            drop(pb);
            let ranges = |v: &[s4db::DamagedRange]| -> Vec<String> {
                v.iter()
                    .map(|d| format!("{} {}..{}: {}", d.file, d.start, d.end, d.reason))
                    .collect()
            };
            let (damaged, repaired) = (ranges(&r.skipped), ranges(&r.repaired));
            let mut human = format!(
                "{} segments, {} records, {} keys; {} damaged range(s) skipped; {} segment header(s) repaired{}",
                r.segments,
                r.records,
                r.keys,
                r.skipped.len(),
                r.repaired.len(),
                r.torn_tail
                    .as_ref()
                    .map(|t| format!("; torn tail cut at {} {}", t.file, t.start))
                    .unwrap_or_default()
            );
            for line in damaged
                .iter()
                .map(|d| ("skipped", d))
                .chain(repaired.iter().map(|d| ("repaired", d)))
            {
                human.push_str(&format!("\n{}: {}", line.0, line.1));
            }
            human.push_str(&damaged_files_line(&r.damaged_files));
            report(
                cli,
                json!({ "segments": r.segments, "records": r.records, "keys": r.keys, "superseded_segments": r.superseded_segments, "skipped": damaged, "repaired": repaired, "damaged_files": r.damaged_files, "torn_tail": r.torn_tail.as_ref().map(|t| format!("{} {}..{}", t.file, t.start, t.end)) }),
                human,
            )
        }
        Command::Upload {
            stage: Some(name), ..
        } => {
            let Some(url) = &cli.remote else {
                return Err(Failure::Usage(
                    "upload --stage needs --remote URL (or S4DB_REMOTE): the database the shard is for".into(),
                ));
            };
            let db = open_with(cli, Access::Write, "upload --stage", false).await?;
            let pb = spinner(cli, "staging");
            let to = DbBuilder::for_remote(url.clone()).remote_options(remote_options(cli));
            let r = db.stage(to, name).await?;
            db.close().await?;
            drop(pb);
            report(
                cli,
                json!({ "stage": name, "keys": r.keys, "segments_uploaded": r.segments_uploaded, "segment_bytes": r.segment_bytes, "runs_uploaded": r.runs_uploaded, "run_bytes": r.run_bytes, "manifest_bytes": r.manifest_bytes }),
                format!(
                    "staged {name:?}: {} keys, {} segment(s) ({} bytes), {} index run(s) ({} bytes), manifest {} bytes; commit it with `s4db ingest {name}`",
                    r.keys,
                    r.segments_uploaded,
                    r.segment_bytes,
                    r.runs_uploaded,
                    r.run_bytes,
                    r.manifest_bytes
                ),
            )
        }
        Command::Ingest { names } => {
            let Some(url) = &cli.remote else {
                return Err(Failure::Usage(
                    "ingest needs --remote URL (or S4DB_REMOTE): the database to commit the shards to".into(),
                ));
            };
            let pb = spinner(cli, "ingesting");
            let r = DbBuilder::for_remote(url.clone())
                .remote_options(remote_options(cli))
                .ingest(names)
                .await?;
            drop(pb);
            report(
                cli,
                json!({ "shards": r.shards, "segments_added": r.segments_added, "runs_added": r.runs_added, "keys_added": r.keys_added, "index_bytes": r.index_bytes, "manifest_bytes": r.manifest_bytes, "rebased": r.rebased, "manifests_removed": r.manifests_removed }),
                format!(
                    "ingested {} shard(s): {} segment(s), {} index run(s), {} keys; index {} bytes{}",
                    r.shards,
                    r.segments_added,
                    r.runs_added,
                    r.keys_added,
                    r.index_bytes,
                    if r.rebased > 0 {
                        format!("; rebuilt on {} newer commit(s)", r.rebased)
                    } else {
                        String::new()
                    }
                ),
            )
        }
        Command::Upload {
            rebase,
            single_writer,
            ..
        } => {
            let db = open(cli, Access::Write, "upload").await?;
            let pb = spinner(cli, "uploading");
            let r = db
                .upload_with(
                    UploadOptions::default()
                        .rebase(*rebase)
                        .single_writer(*single_writer),
                )
                .await?;
            db.close().await?;
            drop(pb);
            report(
                cli,
                json!({ "segments_uploaded": r.segments_uploaded, "segment_bytes": r.segment_bytes, "runs_uploaded": r.runs_uploaded, "run_bytes": r.run_bytes, "index_bytes": r.index_bytes, "bytes_sent": r.bytes_sent(), "segments_obsoleted": r.segments_obsoleted, "rebased": r.rebased }),
                format!(
                    "uploaded {} segment(s), {} bytes, {} index run(s), {} bytes, and the root index.idx ({} bytes): {} bytes in all{}",
                    r.segments_uploaded,
                    r.segment_bytes,
                    r.runs_uploaded,
                    r.run_bytes,
                    r.index_bytes,
                    r.bytes_sent(),
                    if r.rebased > 0 {
                        format!("; rebased {} time(s)", r.rebased)
                    } else {
                        String::new()
                    }
                ),
            )
        }
        Command::Migrate {
            source,
            replay,
            index,
        } => {
            let db = open(cli, Access::Create, "migrate").await?;
            let from = match (*replay, *index) {
                (true, _) => Some(s4db::MigrateFrom::Replay),
                (_, true) => Some(s4db::MigrateFrom::Index),
                _ => None,
            };
            let pb = spinner(cli, "migrating");
            let r = db
                .migrate_from(
                    DbBuilder::for_remote(source.clone()).remote_options(remote_options(cli)),
                    from,
                )
                .await;
            drop(pb);
            let r = closed_after(&db, r).await?;
            let skipped = skipped_ranges(&r.skipped);
            report(
                cli,
                json!({
                    "keys": r.keys,
                    "written": r.written,
                    "unchanged": r.unchanged,
                    "deleted": r.deleted,
                    "files_read": r.files_read,
                    "bytes_read": r.bytes_read,
                    "skipped": skipped,
                }),
                format!(
                    "migrated {} keys from {} file(s), {} bytes: {} written, {} already there, {} deleted{}",
                    r.keys,
                    r.files_read,
                    r.bytes_read,
                    r.written,
                    r.unchanged,
                    r.deleted,
                    if r.skipped.is_empty() {
                        String::new()
                    } else {
                        format!("; {} damaged range(s) skipped", r.skipped.len())
                    }
                ),
            )
        }
        Command::Download { force } => {
            let db = open(cli, Access::Create, "download").await?;
            let pb = spinner(cli, "downloading");
            let r = db
                .download_with(s4db::DownloadOptions::default().force(*force))
                .await?;
            db.close().await?;
            drop(pb);
            report(
                cli,
                json!({ "segments_downloaded": r.segments_downloaded, "segment_bytes": r.segment_bytes, "segments_present": r.segments_present, "keys": r.keys }),
                format!(
                    "downloaded {} segment(s), {} bytes ({} already present); {} keys",
                    r.segments_downloaded, r.segment_bytes, r.segments_present, r.keys
                ),
            )
        }
        Command::Restore => {
            let db = open(cli, Access::Create, "restore").await?;
            let pb = spinner(cli, "restoring");
            let r = db.restore_from_remote().await;
            drop(pb);
            let r = closed_after(&db, r).await?;
            let b = &r.rebuild;
            let skipped = skipped_ranges(&b.skipped);
            report(
                cli,
                json!({
                    "segments_downloaded": r.segments_downloaded,
                    "segment_bytes": r.segment_bytes,
                    "segments_present": r.segments_present,
                    "keys": b.keys,
                    "records": b.records,
                    "superseded_segments": b.superseded_segments,
                    "skipped": skipped,
                }),
                format!(
                    "restored {} segment(s), {} bytes ({} already present): {} keys, {} superseded segment(s), {} damaged range(s) skipped; `upload` commits it",
                    r.segments_downloaded,
                    r.segment_bytes,
                    r.segments_present,
                    b.keys,
                    b.superseded_segments,
                    b.skipped.len()
                ),
            )
        }
        Command::Gc {
            grace,
            single_writer,
        } => {
            let db = open(cli, read_unless_dir(cli), "gc").await?;
            let opts = s4db::GcOptions::default()
                .grace(Duration::from_secs(*grace))
                .single_writer(*single_writer);
            let r = db.gc_with(opts).await?;
            report(
                cli,
                json!({ "obsolete_deleted": r.obsolete_deleted, "orphans_deleted": r.orphans_deleted, "stages_deleted": r.stages_deleted, "kept": r.kept, "deleted": r.deleted }),
                format!(
                    "deleted {} obsolete and {} orphaned segment(s); kept {} younger than {grace} s",
                    r.obsolete_deleted, r.orphans_deleted, r.kept
                ),
            )
        }
    }
}

/// A value given as VALUE, `-` (stdin), or --file PATH (`-`: stdin).
fn value_arg(value: Option<&str>, file: Option<&std::path::Path>) -> Result<Vec<u8>> {
    let stdin = || {
        let mut v = Vec::new();
        io::stdin()
            .lock()
            .read_to_end(&mut v)
            .map_err(|e| Failure::Usage(format!("reading stdin: {e}")))?;
        Ok::<_, Failure>(v)
    };
    let bytes = match (value, file) {
        (Some("-"), None) => stdin()?,
        (None, Some(path)) if is_dash(path) => stdin()?,
        (Some(v), None) => v.as_bytes().to_vec(),
        (None, Some(path)) => std::fs::read(path)
            .map_err(|e| Failure::Usage(format!("reading {}: {e}", path.display())))?,
        (None, None) => {
            return Err(Failure::Usage(
                "give a VALUE, `-` for stdin, or --file PATH".into(),
            ));
        }
        (Some(_), Some(_)) => {
            return Err(Failure::Usage("give a VALUE or --file, not both".into()));
        }
    };
    Ok(bytes)
}

async fn get(cli: &Cli, key: &[u8], out: Option<&std::path::Path>) -> Result {
    let db = open(cli, Access::Read, "get").await?;
    let value = db
        .get(key)
        .await?
        .ok_or_else(|| Failure::KeyNotFound(show_key(key)))?;
    write_out(&value, out)
}

/// `s4db meta`: lists the metadata, or gets, sets or removes one name.
async fn meta(cli: &Cli, action: Option<&MetaAction>) -> Result {
    match action {
        None => {
            let db = open(cli, Access::Read, "meta").await?;
            let all = db.metadata()?;
            let mut obj = serde_json::Map::new();
            let mut human = String::new();
            for (name, value) in &all {
                obj.insert(name.clone(), jsonl::value_json(value));
                human.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value)));
            }
            if all.is_empty() {
                human.push_str("(no metadata)\n");
            }
            human.pop();
            report(cli, serde_json::Value::Object(obj), human)
        }
        Some(MetaAction::Get { name, out }) => {
            let db = open(cli, Access::Read, "meta get").await?;
            let value = db
                .metadata()?
                .remove(name)
                .ok_or_else(|| Failure::KeyNotFound(format!("metadata {name}")))?;
            write_out(&value, out.as_deref())
        }
        Some(MetaAction::Set { name, value, file }) => {
            let bytes = value_arg(value.as_deref(), file.as_deref())?;
            let db = open(cli, Access::Create, "meta set").await?;
            db.set_metadata(name.as_str(), bytes).await?;
            close_after(&db, "the metadata was committed").await
        }
        Some(MetaAction::Rm { name }) => {
            let db = open(cli, Access::Write, "meta rm").await?;
            db.remove_metadata(name.as_str()).await?;
            close_after(&db, "the metadata was committed").await
        }
    }
}

/// Writes `value` exactly to stdout, or to `out` (`-`: stdout).
fn write_out(value: &[u8], out: Option<&std::path::Path>) -> Result {
    match out.filter(|p| !is_dash(p)) {
        Some(path) => std::fs::write(path, value).map_err(|e| {
            Failure::Output(io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        }),
        None => {
            let mut o = io::stdout().lock();
            o.write_all(value).and_then(|()| o.flush()).map_err(out_err)
        }
    }
}

async fn import(cli: &Cli, file: Option<&std::path::Path>, batch_size: u64) -> Result {
    let (reader, size): (Box<dyn BufRead>, Option<u64>) = match file.filter(|p| !is_dash(p)) {
        Some(p) => {
            let f = std::fs::File::open(p)
                .map_err(|e| Failure::Usage(format!("opening {}: {e}", p.display())))?;
            let size = f.metadata().ok().map(|m| m.len());
            (Box::new(BufReader::with_capacity(1 << 20, f)), size)
        }
        None => (
            Box::new(BufReader::with_capacity(1 << 20, io::stdin())),
            None,
        ),
    };
    let db = open(cli, Access::Create, "import").await?;
    let pb = (!cli.quiet && io::stderr().is_terminal()).then(|| match size {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner(),
    });
    let (mut imported, mut batches, mut line_no) = (0u64, 0u64, 0u64);
    let mut batch = WriteBatch::new();
    let stop = |line_no: u64, why: String, imported: u64| {
        Failure::Usage(format!(
            "line {line_no}: {why}; stopped there, after importing {imported} record(s) in whole batches before it"
        ))
    };
    for line in reader.split(b'\n') {
        let line = line.map_err(|e| Failure::Usage(format!("reading the input: {e}")))?;
        line_no += 1;
        if let Some(pb) = &pb {
            pb.inc(line.len() as u64 + 1);
        }
        let text = String::from_utf8_lossy(&line);
        if text.trim().is_empty() {
            continue;
        }
        let text =
            std::str::from_utf8(&line).map_err(|_| stop(line_no, "not UTF-8".into(), imported))?;
        let (k, v) = jsonl::parse(text).map_err(|why| stop(line_no, why, imported))?;
        batch
            .put(&k, &v)
            .map_err(|e| stop(line_no, e.to_string(), imported))?;
        if batch.len() as u64 >= batch_size {
            let n = batch.len() as u64;
            db.write(std::mem::take(&mut batch))
                .await
                .map_err(|e| kept(e, imported))?;
            imported += n;
            batches += 1;
        }
    }
    if !batch.is_empty() {
        let n = batch.len() as u64;
        db.write(batch).await.map_err(|e| kept(e, imported))?;
        imported += n;
        batches += 1;
    }
    close_after(&db, &format!("{imported} record(s) were imported")).await?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    report(
        cli,
        json!({ "imported": imported, "batches": batches }),
        format!("imported {imported} record(s) in {batches} batch(es)"),
    )
}

/// An import's write failure, with what the import kept.
fn kept(error: Error, imported: u64) -> Failure {
    Failure::Partial {
        error,
        done: format!("{imported} record(s) were imported, in whole batches, before it"),
    }
}

async fn export(cli: &Cli, out: Option<&std::path::Path>) -> Result {
    let db = open(cli, Access::Read, "export").await?;
    let mut it = db.iter().await?;
    let out = out.filter(|p| !is_dash(p));
    let sink: Box<dyn Write> = match out {
        Some(p) => Box::new(
            std::fs::File::create(p)
                .map_err(|e| Failure::Usage(format!("creating {}: {e}", p.display())))?,
        ),
        None => Box::new(io::stdout().lock()),
    };
    let named = |e: io::Error| match out {
        Some(p) => Failure::Output(io::Error::new(e.kind(), format!("{}: {e}", p.display()))),
        None => Failure::Output(e),
    };
    let mut w = io::BufWriter::with_capacity(1 << 20, sink);
    while let Some(kv) = it.next().await {
        let (k, v) = kv?;
        writeln!(w, "{}", jsonl::render(&k, &v)).map_err(named)?;
    }
    w.flush().map_err(named)
}
