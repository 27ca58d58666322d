//! [`DbBuilder`]: the options of a handle and how it opens, over a local
//! directory (with or without a remote) or over a remote alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::db::Db;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::io::offload::offload;
use crate::options::{Options, SyncPolicy};
use crate::remote::RemoteOptions;
use crate::remote::ctx::{Credentials, RemoteCtx};
use crate::sync::copy::CopyRemoteReport;
use crate::sync::remote_reader::RemoteReader;
use crate::sync::remove::DeleteRemoteReport;

/// How a handle over a remote alone ([`Db::open_remote`]) reads `index.idx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadIndex {
    /// By byte ranges: `index.idx` (its first 256 KiB), then one page of each
    /// index run per lookup, cached across commits.
    /// A cold get is three requests at any database size. The default.
    #[default]
    Lazy,
    /// The whole file at open: for readers that will touch most keys.
    Full,
}

/// The ways to open a [`Db`]; they live beside the builder they use.
impl Db {
    /// Opens (creating if needed) the database in directory `path` with
    /// default options. See [`DbBuilder`] for the options.
    ///
    /// # Errors
    /// As [`DbBuilder::open`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Db> {
        DbBuilder::new(path).open().await
    }

    /// A builder for the database in `path`.
    pub fn builder(path: impl AsRef<Path>) -> DbBuilder {
        DbBuilder::new(path)
    }

    /// Opens a new, empty in-memory database with default options: see
    /// [`DbBuilder::memory`].
    ///
    /// # Errors
    /// As [`DbBuilder::open`].
    pub async fn memory() -> Result<Db> {
        DbBuilder::memory().open().await
    }

    /// Opens a read-only handle over the remote at `url` alone: no local
    /// directory, nothing downloaded but the index; every get reads its
    /// record with one range request. Works anonymously over `http(s)://`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad URL, [`Error::NotFound`] if the
    /// remote holds no database, [`Error::Corruption`] if its index fails its
    /// checks, [`Error::Remote`] for network and server failures.
    pub async fn open_remote(url: impl Into<String>) -> Result<Db> {
        DbBuilder::for_remote(url).open().await
    }
}

/// Configures and opens a [`Db`]. Every setter documents its default.
#[derive(Debug, Clone)]
#[must_use]
pub struct DbBuilder {
    /// `None` for a read-only handle over a remote alone.
    path: Option<PathBuf>,
    opts: Options,
    remote: Option<String>,
    credentials: Option<Credentials>,
    remote_opts: RemoteOptions,
    load_index: LoadIndex,
    /// A store in place of the one the remote URL names (tests only).
    store: Option<Arc<dyn crate::remote::ObjectStore>>,
    /// An in-memory database ([`DbBuilder::memory`]).
    memory: bool,
}

impl DbBuilder {
    /// A builder for the database in directory `path`, with default options.
    pub fn new(path: impl AsRef<Path>) -> Self {
        DbBuilder {
            path: Some(path.as_ref().to_path_buf()),
            opts: Options::default(),
            remote: None,
            credentials: None,
            remote_opts: RemoteOptions::default(),
            load_index: LoadIndex::default(),
            store: None,
            memory: false,
        }
    }

    /// A builder for a new, empty in-memory database: no directory of the
    /// caller's, nothing kept after the last handle is dropped, the same API.
    /// For tests and caches. It can still attach a remote: it then starts
    /// from the remote's index like an empty directory does (reads go to the
    /// remote until [`Db::download`]), and [`Db::upload`] publishes to it.
    ///
    /// Its files live in a private directory in RAM: under `/dev/shm` (a
    /// memory file system on Linux), else in the system's temporary
    /// directory; [`Db::path`] names it. [`Db::close`], or dropping the last
    /// handle, removes it: the data is gone (iterators made before keep
    /// reading theirs). Memory use is the database's size on disk, counted
    /// by the system as shared memory.
    pub fn memory() -> Self {
        DbBuilder {
            memory: true,
            ..DbBuilder::new("")
        }
    }

    /// A builder for a read-only handle over the remote at `url` alone, with
    /// no local directory (see [`Db::open_remote`]).
    pub fn for_remote(url: impl Into<String>) -> Self {
        DbBuilder {
            path: None,
            opts: Options {
                read_only: true,
                ..Options::default()
            },
            remote: Some(url.into()),
            credentials: None,
            remote_opts: RemoteOptions::default(),
            load_index: LoadIndex::default(),
            store: None,
            memory: false,
        }
    }

    /// Attaches a remote: `s3://BUCKET/PREFIX[?endpoint=…&region=…&style=path|virtual&anonymous=true]`,
    /// `http(s)://…` (read-only) or `file:///ABS/PATH`. Default: none.
    ///
    /// A directory with no database that is opened with a remote holding one
    /// fetches only the remote's index; its reads then go to the remote
    /// until [`Db::download`] fetches the segments.
    pub fn remote(mut self, url: impl Into<String>) -> Self {
        self.remote = Some(url.into());
        self
    }

    /// S3 credentials; default: the standard AWS variables
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`),
    /// and unsigned requests if they are unset.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// How a handle over a remote alone reads `index.idx`; default
    /// [`LoadIndex::Lazy`]. Ignored for local directories.
    pub fn load_index(mut self, how: LoadIndex) -> Self {
        self.load_index = how;
        self
    }

    /// Timeouts, retries, multipart and parallelism of remote requests;
    /// default [`RemoteOptions::default`].
    pub fn remote_options(mut self, opts: RemoteOptions) -> Self {
        self.remote_opts = opts;
        self
    }

    /// Soft size limit of a segment file. Default 64 MiB; allowed 4 KiB to 2 GiB.
    pub fn max_segment_size(mut self, bytes: u64) -> Self {
        self.opts.max_segment_size = bytes;
        self
    }

    /// When to fsync. Default [`SyncPolicy::OnFlush`].
    pub fn sync(mut self, policy: SyncPolicy) -> Self {
        self.opts.sync = policy;
        self
    }

    /// Open without writing anything. A read-only handle takes no lock: it
    /// works on read-only media and for users who can only read, and it opens
    /// beside a writer (in this or another process), seeing every batch that
    /// writer had completed when the handle opened (FORMAT.md §6.4). It does
    /// not see later writes: open again for a newer view. Default `false`.
    pub fn read_only(mut self, yes: bool) -> Self {
        self.opts.read_only = yes;
        self
    }

    /// Create the directory and an empty database if there is none. Default `true`.
    pub fn create_if_missing(mut self, yes: bool) -> Self {
        self.opts.create_if_missing = yes;
        self
    }

    /// Rebuild the index from the segments instead of loading `index.idx`:
    /// the repair path for a lost or corrupt index. The report is available
    /// from [`Db::rebuild_report`]. Default `false`.
    pub fn rebuild_index(mut self, yes: bool) -> Self {
        self.opts.rebuild_index = yes;
        self
    }

    /// How long opening for writing waits for another writer to close the
    /// directory before [`Error::Locked`]. Default 250 ms.
    pub fn lock_wait(mut self, wait: std::time::Duration) -> Self {
        self.opts.lock_wait = wait;
        self
    }

    /// Uses `store` for the remote instead of the one its URL names; the URL
    /// still names the remote (its sync state, its messages). For protocol
    /// tests without a server.
    #[cfg(test)]
    pub(crate) fn object_store(mut self, store: Arc<dyn crate::remote::ObjectStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Replaces all options at once.
    pub fn options(mut self, opts: Options) -> Self {
        self.opts = opts;
        self
    }

    /// Deletes the database at this builder's remote, with no local
    /// directory: as [`Db::delete_remote`], for a builder made with
    /// [`DbBuilder::for_remote`] (its credentials and remote options apply).
    /// Works when no `index.idx` is left (after a crash of an earlier run).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a builder with a local directory (open
    /// it and call [`Db::delete_remote`], so that its sync state follows), a
    /// bad URL or a read-only (`http(s)://`) one; [`Error::Remote`] for
    /// network and server failures (run it again).
    pub async fn delete_remote(self) -> Result<DeleteRemoteReport> {
        let ctx = self.remote_alone(
            "delete_remote",
            "Db::delete_remote, so that its sync state follows",
        )?;
        crate::sync::remove::delete_remote(&ctx, None).await
    }

    /// Commits the shards staged as `names` ([`Db::stage`]) to this
    /// builder's remote (made with [`DbBuilder::for_remote`]) in one
    /// conditional PUT of `index.idx`: readers see all of them or none
    /// (FORMAT.md §10.11). Shards apply in the order given, on top of the
    /// committed state: where several hold a key, the last one's value (or
    /// delete) wins. Another writer's commit in between is no conflict: the
    /// root is built again on it (up to 5 times). Then the manifests are
    /// deleted; their objects are now the database's.
    ///
    /// Cost: one GET per manifest and of `index.idx`, one PUT of the new
    /// `index.idx`, one DELETE; no record or index run is read or copied,
    /// so it barely changes with the number of records. Readers then
    /// consult one more index run per shard for each lookup, and the key
    /// count is an upper bound (keys may repeat across shards) until an
    /// index write recounts (a full compaction, or a checkpoint that
    /// writes a new base).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a builder with a local directory, a
    /// bad, repeated or missing name, a read-only URL, or more runs than a
    /// root may name (1,024); [`Error::NotFound`] for a name with no staged
    /// shard; [`Error::Corruption`] for a manifest that fails its checks;
    /// [`Error::Conflict`] if other commits kept coming first (nothing was
    /// committed; run it again) or the remote holds a version-1 index;
    /// [`Error::Remote`].
    pub async fn ingest<S: AsRef<str>>(
        self,
        names: impl IntoIterator<Item = S>,
    ) -> Result<crate::IngestReport> {
        let ctx = self.remote_alone("ingest", "DbBuilder::for_remote")?;
        let names: Vec<String> = names.into_iter().map(|n| n.as_ref().to_string()).collect();
        crate::sync::ingest::ingest(&ctx, &names).await
    }

    /// Copies the committed state of this builder's remote (made with
    /// [`DbBuilder::for_remote`]) to the remote of `to` (also made with
    /// [`DbBuilder::for_remote`], with its own credentials and options):
    /// as [`Db::copy_remote`].
    ///
    /// # Errors
    /// As [`Db::copy_remote`]; [`Error::InvalidArgument`] also for a
    /// builder with a local directory on either side.
    pub async fn copy_remote(self, to: DbBuilder) -> Result<CopyRemoteReport> {
        let src = self.remote_alone("copy_remote", "Db::copy_remote")?;
        let dst = to.remote_alone(
            "copy_remote's destination",
            "a builder made with DbBuilder::for_remote",
        )?;
        crate::sync::copy::copy_remote(&src, &dst).await
    }

    /// The remote of a builder made with [`DbBuilder::for_remote`], for an
    /// operation (`what`) on the remote alone; `instead` says what to use
    /// when the builder has a directory.
    pub(crate) fn remote_alone(&self, what: &str, instead: &str) -> Result<Arc<RemoteCtx>> {
        if self.path.is_some() {
            return Err(Error::InvalidArgument(format!(
                "{what} takes a builder with no local directory: use {instead}"
            )));
        }
        let url = self
            .remote
            .as_deref()
            .ok_or_else(|| Error::InvalidArgument(format!("{what} needs a remote URL")))?;
        Ok(Arc::new(RemoteCtx::open_with(
            url,
            self.credentials.as_ref(),
            self.remote_opts.clone(),
            self.store.clone(),
        )?))
    }

    /// Opens the database.
    ///
    /// # Errors
    /// [`Error::Locked`] if another writer holds the directory (after
    /// [`DbBuilder::lock_wait`]; read-only handles never are),
    /// [`Error::NotFound`] if there is no database and `create_if_missing` is
    /// off (or the handle is read-only), [`Error::Corruption`] if
    /// `index.idx` or a sealed segment fails its checks (see
    /// [`DbBuilder::rebuild_index`]), [`Error::InvalidArgument`] for bad
    /// options, [`Error::Io`] for I/O failures.
    pub async fn open(self) -> Result<Db> {
        let remote = match &self.remote {
            Some(url) => Some(Arc::new(RemoteCtx::open_with(
                url,
                self.credentials.as_ref(),
                self.remote_opts.clone(),
                self.store.clone(),
            )?)),
            None => None,
        };
        let scratch = if self.memory {
            if self.opts.read_only {
                return Err(Error::InvalidArgument(
                    "an in-memory database starts empty, so it cannot be read-only".into(),
                ));
            }
            Some(crate::io::fsutil::memory_dir()?)
        } else {
            None
        };
        let path = match &scratch {
            Some(dir) => Some(dir.path().to_path_buf()),
            None => self.path.clone(),
        };
        let Some(path) = path else {
            let ctx = remote.ok_or_else(|| {
                Error::InvalidArgument("a remote-only handle needs a remote URL".into())
            })?;
            let lazy = self.load_index == LoadIndex::Lazy;
            let reader = RemoteReader::open(ctx, self.opts, lazy).await?;
            return Ok(Db::over_remote(reader));
        };
        if let Some(ctx) = &remote
            && !self.opts.read_only
            && self.opts.create_if_missing
            && !path.join(crate::INDEX_FILE_NAME).exists()
            && crate::engine::files::list_segments(&path).map_or(true, |s| s.is_empty())
        {
            crate::sync::download::fetch_index_only(
                ctx,
                &path,
                crate::format::segment_id::new_writer_id()?,
            )
            .await?;
        }
        offload(move || {
            let (mut engine, rebuilt) = Engine::open(&path, self.opts, remote)?;
            if let Some(dir) = scratch {
                engine.remove_dir_on_close(dir);
            }
            Ok(Db::local(Arc::new(engine), rebuilt.map(Arc::new)))
        })
        .await
    }
}
