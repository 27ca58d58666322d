//! # s4db
//!
//! An embedded key-value store whose data lives in numbered, append-only,
//! Snappy-compressed segment files plus an offset index, `index.idx`.
//!
//! - Keys and values are bytes. Keys are 1 to [`MAX_KEY_LEN`] bytes, values
//!   up to [`MAX_VALUE_LEN`].
//! - Writes append to the active segment; an in-memory index maps each key
//!   to its record. Every record and index page carries a CRC32C, checked on
//!   every read.
//! - [`WriteBatch`]es are atomic, also across crashes.
//! - Crash safe: a torn tail is cut on open, files are replaced by fsync +
//!   rename, and nothing is deleted before its replacement is durable.
//!
//! The byte formats are specified in `FORMAT.md` at the repository root.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> s4db::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let db = s4db::Db::builder(dir.path())
//!     .sync(s4db::SyncPolicy::OnFlush)
//!     .open()
//!     .await?;
//! db.put("apple", "red").await?;
//! db.put_many([("banana", "yellow"), ("cherry", "dark red")]).await?;
//! db.delete("apple").await?;
//! db.flush().await?;
//! assert_eq!(db.len(), 2);
//! assert_eq!(db.get("banana").await?.as_deref(), Some(&b"yellow"[..]));
//! // Selective (the default): less than half of the segment is dead.
//! assert_eq!(db.compact().await?.segments_rewritten, 0);
//! let full = s4db::CompactOptions::default().full(true);
//! assert_eq!(db.compact_with(full).await?.records_written, 2);
//! db.close().await?;
//! # Ok(()) }
//! ```
//!
//! Synchronous callers use [`blocking::Db`], which mirrors [`Db`].
//!
//! ## Remotes
//!
//! A database syncs with S3 or an S3-compatible store (`s3://BUCKET/PREFIX`),
//! a public bucket or CDN (`https://…`, read-only) or a local directory
//! (`file:///ABS/PATH`): [`DbBuilder::remote`], then [`Db::upload`] (new
//! segments, then `index.idx` committed with a conditional PUT),
//! [`Db::download`], and [`Db::gc`] after a grace period. [`Db::open_remote`]
//! reads a remote with no local copy: three range requests for a cold get, at
//! any size.
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> s4db::Result<()> {
//! let db = s4db::Db::builder("local.db")
//!     .remote("s3://my-bucket/db?endpoint=http://127.0.0.1:9000")
//!     .credentials(s4db::Credentials::new("ACCESS", "SECRET"))
//!     .open()
//!     .await?;
//! db.put("k", "v").await?;
//! db.upload().await?;
//! let public = s4db::Db::open_remote("https://my-bucket.s3.amazonaws.com/db").await?;
//! let _ = public.get("k").await?;
//! # Ok(()) }
//! ```
// `unsafe` is denied everywhere but src/io/mmap.rs, which documents why and how.
#![deny(unsafe_code)]
#![warn(missing_docs)]

// The layers, bottom up (README "Architecture"): byte codecs, file and
// process helpers, remote object stores, the in-memory index, the local
// engine, sync between a directory and a remote, and the public handles.
mod engine;
mod format;
mod index;
mod io;
mod migrate;
mod remote;
mod sync;

mod batch;
pub mod blocking;
mod builder;
mod db;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod iter;
mod options;
mod report;

pub use batch::WriteBatch;
pub use builder::{DbBuilder, LoadIndex};
pub use db::Db;
pub use engine::compaction::CompactOptions;
pub use error::{Error, Location, Result};
pub use format::index_file::INDEX_FILE_NAME;
pub use format::limits::{
    DEFAULT_MAX_SEGMENT_SIZE, MAX_BATCH_BYTES, MAX_KEY_LEN, MAX_SEGMENT_SIZE_LIMIT, MAX_VALUE_LEN,
    MIN_SEGMENT_SIZE_LIMIT,
};
pub use format::segment_id::SegmentId;
pub use iter::Iter;
pub use migrate::{MIGRATE_SOURCE_FILE, MigrateFrom, MigrateReport};
pub use options::{Options, SyncPolicy};
pub use remote::{Credentials, RemoteOptions, RemoteStats};
pub use report::{CompactionReport, DamagedRange, RebuildReport, Stats, VerifyReport};
pub use sync::changes::{Change, ChangeKind, Changes, DiscardReport};
pub use sync::conditions::PROBE_LIFETIME;
pub use sync::copy::CopyRemoteReport;
pub use sync::download::{DownloadOptions, DownloadReport};
pub use sync::gc::{DEFAULT_GC_GRACE, GcOptions, GcReport};
pub use sync::ingest::IngestReport;
pub use sync::remove::DeleteRemoteReport;
pub use sync::restore::RestoreReport;
pub use sync::stage::StageReport;
pub use sync::upload::{UploadOptions, UploadReport};
