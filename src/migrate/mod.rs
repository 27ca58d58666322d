//! Migrating a database written by the Python s4db (0.8 or 0.10) into an
//! s4db database (FORMAT.md §11): read the source, check every record's
//! CRC-32 and key, and make the destination hold exactly the source's live
//! keys and values. The source is only read.
//!
//! Two ways to find the live records:
//! - **index** (the default for `s3://` and `http(s)://` sources): the
//!   source's `index.idx`, the Python s4db's committed state;
//! - **replay** (the default for a local directory): every data file in
//!   name order, later records winning and tombstones deleting, as the
//!   Python s4db's `rebuild_index` does; this includes writes that were
//!   never uploaded. A file's torn or damaged tail is skipped and reported.
//!
//! The destination is written in batches, so an interrupted migration
//! leaves part of the source; running it again finishes it: each run puts
//! only the keys whose value differs and deletes the keys the source does
//! not have. The directory's `migrate.source` file names the source it
//! migrates, so that a run never rewrites an unrelated database.

pub(crate) mod pyformat;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::WriteBatch;
use crate::db::Db;
use crate::error::{Error, IoContext, Result};
use crate::io::fsutil::atomic_write;
use crate::remote::ctx::RemoteCtx;
use crate::remote::{ObjectStore, RemoteUrl};
use crate::report::DamagedRange;
use pyformat::{PY_HEADER_LEN, PY_INDEX_NAME, PyEntry, RecordProblem};

/// The file in the destination directory naming the migration's source.
pub const MIGRATE_SOURCE_FILE: &str = "migrate.source";

/// Records written per batch.
const BATCH_RECORDS: usize = 4096;
/// Value bytes per batch, at most (one larger value gets a batch alone).
const BATCH_BYTES: usize = 8 << 20;

/// Where a migration finds the source's live records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MigrateFrom {
    /// The source's `index.idx` (its last commit). The default for remote
    /// sources.
    Index,
    /// Every data file, in name order (writes never uploaded included). The
    /// default for a local directory.
    Replay,
}

/// What a migration did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrateReport {
    /// Live keys in the source.
    pub keys: u64,
    /// Keys put into the destination (new or changed).
    pub written: u64,
    /// Keys the destination already held with the same value (an earlier
    /// run's work).
    pub unchanged: u64,
    /// Destination keys the source does not have, deleted.
    pub deleted: u64,
    /// Source data files read.
    pub files_read: u64,
    /// Their bytes.
    pub bytes_read: u64,
    /// Damaged or torn ranges skipped (replay only; an index that points at
    /// a damaged record is an error instead).
    pub skipped: Vec<DamagedRange>,
}

/// Migration is a [`Db`] method that lives beside its procedure.
impl Db {
    /// Migrates the database the Python s4db (0.8 or 0.10) wrote at the
    /// remote of `source` (a builder made with [`crate::DbBuilder::for_remote`]:
    /// `s3://…`, `http(s)://…`, or a local directory) into this one
    /// (FORMAT.md §11). Every record's CRC-32 and key are checked; the source
    /// is only read. `from` picks where the live records are found (default:
    /// the source's `index.idx` for a remote, a replay of every data file for
    /// a local directory).
    ///
    /// This database ends up holding exactly the source's live keys and
    /// values; it must be empty at the first run. An interrupted migration
    /// is finished by running it again: a run puts only the keys whose value
    /// differs and deletes the keys the source lacks. The file
    /// `migrate.source` in the directory names the source. Cost: the
    /// source's index and every data file it lists are read once; the
    /// writes grow with what differs.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if this directory holds a database that is
    /// not a migration of `source`; [`Error::NotFound`] if the source has no
    /// index (or, replayed, no data files) or lacks a file its index lists;
    /// [`Error::Corruption`] (file and offset) for a record the index points
    /// at that fails its checks: keys of files read before it are already
    /// written, and a second run after a repair finishes the migration;
    /// [`Error::ReadOnly`] for a read-only handle; [`Error::Remote`] for
    /// network failures.
    pub async fn migrate_from(
        &self,
        source: crate::DbBuilder,
        from: Option<MigrateFrom>,
    ) -> Result<MigrateReport> {
        let src = source.remote_alone(
            "migrate's source",
            "a builder made with DbBuilder::for_remote",
        )?;
        migrate(self, &src, from).await
    }
}

/// Migrates the Python s4db database at `src` into `db`.
pub(crate) async fn migrate(
    db: &Db,
    src: &Arc<RemoteCtx>,
    from: Option<MigrateFrom>,
) -> Result<MigrateReport> {
    let engine = db.engine()?;
    engine.check_writable()?;
    let from = from.unwrap_or(match src.url {
        RemoteUrl::File { .. } => MigrateFrom::Replay,
        _ => MigrateFrom::Index,
    });
    claim(db.path(), &src.url.describe(), db.is_empty())?;

    let mut report = MigrateReport::default();
    let entries = match from {
        MigrateFrom::Index => {
            let store = src.store.clone();
            let obj = src
                .run(async move { store.get(PY_INDEX_NAME).await })
                .await?
                .ok_or_else(|| {
                    Error::NotFound(format!(
                        "no Python s4db index.idx at {} (to migrate a directory of data files without one, replay them)",
                        src.url.describe()
                    ))
                })?;
            pyformat::parse_index(&obj.body)?
        }
        MigrateFrom::Replay => replay(src, &mut report).await?,
    };
    // The latest entry of each key (an index lists each once).
    let mut live: BTreeMap<Vec<u8>, PyEntry> = BTreeMap::new();
    for e in entries {
        live.insert(e.key.clone(), e);
    }
    report.keys = live.len() as u64;

    // Read each data file once, in name order, and write its keys.
    let mut by_file: BTreeMap<&str, Vec<&PyEntry>> = BTreeMap::new();
    for e in live.values() {
        by_file.entry(e.file.as_str()).or_default().push(e);
    }
    for (file, entries) in by_file {
        let body = fetch(src, file).await?;
        report.files_read += 1;
        report.bytes_read += body.len() as u64;
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        for e in entries {
            let value = value_at(file, &body, e)?;
            batch_bytes += value.len();
            batch.push((e.key.clone(), value));
            if batch.len() >= BATCH_RECORDS || batch_bytes >= BATCH_BYTES {
                write_changed(db, std::mem::take(&mut batch), &mut report).await?;
                batch_bytes = 0;
            }
        }
        write_changed(db, batch, &mut report).await?;
    }

    // Delete what the destination has and the source does not.
    let mut doomed = WriteBatch::new();
    let mut n: u64 = 0;
    for k in db.keys().await? {
        if !live.contains_key(k.as_ref()) {
            doomed.delete(&k)?;
            n += 1;
            if n.is_multiple_of(BATCH_RECORDS as u64) {
                db.write(std::mem::take(&mut doomed)).await?;
            }
        }
    }
    if !doomed.is_empty() {
        db.write(doomed).await?;
    }
    report.deleted = n;
    db.checkpoint().await?;
    Ok(report)
}

/// Writes `migrate.source` into `dir`, or checks that it names `source`.
/// A directory holding a database that is not a migration of `source`
/// is refused.
fn claim(dir: &Path, source: &str, empty: bool) -> Result<()> {
    let path = dir.join(MIGRATE_SOURCE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(named) if named.trim_end() == source => Ok(()),
        Ok(named) => Err(Error::InvalidArgument(format!(
            "{} is a migration of {}, not of {source}; migrate into a new directory",
            dir.display(),
            named.trim_end()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !empty {
                return Err(Error::InvalidArgument(format!(
                    "{} already holds a database that is not a migration of {source}; migrate into a new directory",
                    dir.display()
                )));
            }
            atomic_write(dir, MIGRATE_SOURCE_FILE, format!("{source}\n").as_bytes())
        }
        Err(e) => Err(e).ctx(|| format!("reading {}", path.display())),
    }
}

/// A whole source object; a missing one is an error naming it.
async fn fetch(src: &Arc<RemoteCtx>, name: &str) -> Result<Bytes> {
    let store = src.store.clone();
    let key = name.to_string();
    let obj = src.run(async move { store.get(&key).await }).await?;
    let obj = obj.ok_or_else(|| {
        Error::NotFound(format!(
            "{name} is missing from {}, but the Python s4db index lists it",
            src.url.describe()
        ))
    })?;
    if !pyformat::check_header(&obj.body) {
        return Err(Error::corruption(
            name,
            0,
            "not a Python s4db data file (no S4DB magic)",
        ));
    }
    Ok(obj.body)
}

/// The value of the record `e` points at, checked: CRC-32, a put, the key
/// asked for.
fn value_at(file: &str, body: &[u8], e: &PyEntry) -> Result<Vec<u8>> {
    let bad = |why: String| Error::corruption(file, e.offset, why);
    let end = e
        .offset
        .checked_add(e.len)
        .filter(|&end| end <= body.len() as u64);
    let Some(end) = end else {
        return Err(bad(format!(
            "the index points at bytes {}..{} of a {}-byte file",
            e.offset,
            e.offset.saturating_add(e.len),
            body.len()
        )));
    };
    let rec = &body[e.offset as usize..end as usize];
    let r = pyformat::parse_record(rec).map_err(|p| match p {
        RecordProblem::Truncated => bad("record truncated".into()),
        RecordProblem::Bad(why) => bad(why),
    })?;
    if r.len != e.len {
        return Err(bad(format!(
            "record is {} bytes, the index says {}",
            r.len, e.len
        )));
    }
    if r.key != e.key {
        return Err(bad(
            "the record holds another key than the index names".into()
        ));
    }
    r.value
        .ok_or_else(|| bad("the index points at a tombstone".into()))
}

/// Every data file of the source, scanned in name order: the latest record
/// of each key (a tombstone removes it). Damaged tails are skipped.
async fn replay(src: &Arc<RemoteCtx>, report: &mut MigrateReport) -> Result<Vec<PyEntry>> {
    let store = src.store.clone();
    let mut names: Vec<String> = src
        .run(async move { store.list().await })
        .await?
        .into_iter()
        .map(|e| e.key)
        .filter(|k| pyformat::is_data_file_name(k))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(Error::NotFound(format!(
            "no Python s4db data files (data_*.s4db) at {}",
            src.url.describe()
        )));
    }
    let mut live: BTreeMap<Vec<u8>, Option<PyEntry>> = BTreeMap::new();
    for name in names {
        let body = fetch(src, &name).await?;
        let mut at = PY_HEADER_LEN;
        while at < body.len() as u64 {
            match pyformat::parse_record(&body[at as usize..]) {
                Ok(r) => {
                    let entry = r.value.as_ref().map(|_| PyEntry {
                        key: r.key.clone(),
                        file: name.clone(),
                        offset: at,
                        len: r.len,
                    });
                    live.insert(r.key, entry);
                    at += r.len;
                }
                Err(p) => {
                    report.skipped.push(DamagedRange {
                        file: name.clone(),
                        start: at,
                        end: body.len() as u64,
                        reason: match p {
                            RecordProblem::Truncated => "record truncated (a torn tail)".into(),
                            RecordProblem::Bad(why) => why,
                        },
                    });
                    tracing::warn!(file = %name, offset = at, "skipping the rest of a damaged Python s4db data file");
                    break;
                }
            }
        }
    }
    Ok(live.into_values().flatten().collect())
}

/// Puts the pairs whose value the destination does not already hold.
async fn write_changed(
    db: &Db,
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
    report: &mut MigrateReport,
) -> Result<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    let have = db.get_many(pairs.iter().map(|(k, _)| k)).await?;
    let mut batch = WriteBatch::new();
    for ((k, v), old) in pairs.iter().zip(have) {
        if old.as_deref() == Some(v.as_slice()) {
            report.unchanged += 1;
        } else {
            batch.put(k, v)?;
            report.written += 1;
        }
    }
    if batch.is_empty() {
        return Ok(());
    }
    db.write(batch).await
}
