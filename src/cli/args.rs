//! The command-line interface, exactly as README "Command line" documents it.
//! Scripts depend on it: change it only compatibly.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// s4db: an embedded key-value store on append-only segment files that syncs with S3.
#[derive(Debug, Parser)]
#[command(name = "s4db", version, about)]
pub struct Cli {
    /// Local database directory.
    #[arg(long, env = "S4DB_DIR", global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Remote: s3://BUCKET/PREFIX[?endpoint=…&region=…&style=path|virtual&anonymous=true],
    /// http(s)://… (read-only) or file:///ABS/PATH. S3 credentials come from the AWS variables.
    #[arg(long, env = "S4DB_REMOTE", global = true, value_name = "URL")]
    pub remote: Option<String>,
    /// Durability policy for this invocation.
    #[arg(long, value_enum, default_value = "flush", global = true)]
    pub sync: SyncArg,
    /// Machine-readable output for commands that report something.
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bars.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Give up on a remote operation (one request and its retries) after
    /// SECONDS; each request also times out after at most 30 s. Default 120.
    #[arg(long, env = "S4DB_TIMEOUT", global = true, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    /// Wait up to SECONDS for another writer to release the directory
    /// (default: 0.25 s). Readers never wait: they open beside a writer.
    #[arg(long, env = "S4DB_WAIT", global = true, value_name = "SECONDS")]
    pub wait: Option<f64>,
    #[command(subcommand)]
    pub command: Command,
}

/// `s4db meta` actions; none lists every name (--json: one object).
#[derive(Debug, Subcommand)]
pub enum MetaAction {
    /// Write NAME's value, exactly, to stdout or to --out PATH (`-`:
    /// stdout). Exit 1 if there is none.
    Get {
        name: String,
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
    /// Set NAME to VALUE, to the contents of --file PATH, or to stdin when
    /// VALUE (or PATH) is `-`; committed at once, with everything written before.
    Set {
        name: String,
        value: Option<String>,
        #[arg(long, value_name = "PATH", conflicts_with = "value")]
        file: Option<PathBuf>,
    },
    /// Remove NAME (nothing happens if it is not set).
    Rm { name: String },
}

/// `--sync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyncArg {
    Never,
    Flush,
    Always,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set KEY to VALUE, to the contents of --file PATH, or to stdin when VALUE
    /// (or PATH) is `-`.
    Put {
        key: String,
        value: Option<String>,
        #[arg(long, value_name = "PATH", conflicts_with = "value")]
        file: Option<PathBuf>,
        /// KEY is standard base64 (for keys that are not UTF-8 or hold newlines).
        #[arg(long)]
        key_b64: bool,
        /// The key expires SECONDS from now: then it reads as absent, and
        /// compaction drops it.
        #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
        ttl: Option<u64>,
    },
    /// Write KEY's value, exactly, to stdout or to --out PATH (`-`: stdout).
    /// Exit 1 if there is none.
    Get {
        key: String,
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
        /// KEY is standard base64.
        #[arg(long)]
        key_b64: bool,
    },
    /// Delete the keys that exist, or every key under --prefix P, or every key
    /// in --range START END (START included, END not), in one atomic write;
    /// report how many were deleted.
    Del {
        #[arg(required_unless_present_any = ["prefix", "range"],
              conflicts_with_all = ["prefix", "range"])]
        keys: Vec<String>,
        /// Delete every key that starts with P (`""`: every key).
        #[arg(long, value_name = "P", conflicts_with = "range")]
        prefix: Option<String>,
        /// Delete every key from START up to, not including, END (bytewise order).
        #[arg(long, num_args = 2, value_names = ["START", "END"])]
        range: Option<Vec<String>>,
        /// The KEYS (or P, START and END) are standard base64.
        #[arg(long)]
        key_b64: bool,
    },
    /// List keys, one per line, sorted bytewise (--json: one JSON object per
    /// line, {"key": …} or {"key_b64": …} for keys that are not UTF-8).
    Keys {
        #[arg(long, value_name = "P")]
        prefix: Option<String>,
    },
    /// Import JSON Lines from FILE (or stdin, when FILE is absent or `-`):
    /// {"key": …, "value": …}, with "key_b64" / "value_b64" for bytes.
    Import {
        file: Option<PathBuf>,
        /// Records per atomic batch.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
        batch: u64,
    },
    /// Export every record as JSON Lines, sorted by key, to stdout or to
    /// --out FILE (`-`: stdout).
    Export {
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Keys, segments, live bytes, total bytes, segments not yet uploaded.
    Stat,
    /// The database metadata (a small map committed with the data, at most
    /// 64 KiB): list it, or get, set or remove one NAME.
    Meta {
        #[command(subcommand)]
        action: Option<MetaAction>,
    },
    /// Check every checksum and that the index and segments agree (exit 4 if
    /// not); one problem per line (--json: a "problems" list). Only reads: a
    /// segment the directory lacks is a problem, fetched by `download`.
    Verify,
    /// Rewrite the segments of which at least --min-dead percent (default 50) is
    /// dead (overwritten, deleted), leaving the others alone; --full rewrites every
    /// segment and drops every tombstone.
    Compact {
        /// Rewrite every segment.
        #[arg(long, conflicts_with = "min_dead")]
        full: bool,
        /// Rewrite a segment when at least this percentage of its bytes is dead (1-100).
        #[arg(long, value_name = "PERCENT", default_value_t = 50, value_parser = clap::value_parser!(u8).range(1..=100))]
        min_dead: u8,
    },
    /// Rebuild the index from the segments (the repair path for a damaged index.idx).
    RebuildIndex,
    /// Fold every index run into one (after an ingest of many shards: one run
    /// per lookup again, exact counts); reads and writes the index only. With
    /// --remote on a directory that reads through it, `upload` then sends the
    /// one new run and the root.
    MergeIndex,
    /// Upload new segments, then commit the index (exit 3 on a conflict).
    Upload {
        /// On a conflict, re-apply this directory's changes on the remote state and retry.
        #[arg(long)]
        rebase: bool,
        /// Commit without conditional writes, for servers that ignore them; only
        /// safe when this prefix has exactly one writer.
        #[arg(long)]
        single_writer: bool,
        /// Stage this directory as shard NAME of the database at --remote instead
        /// of committing it: its segments and index runs, then a manifest; readers
        /// see nothing until `s4db ingest NAME`. Build the shard with no --remote.
        #[arg(long, value_name = "NAME", conflicts_with_all = ["rebase", "single_writer"])]
        stage: Option<String>,
    },
    /// Commit the shards staged as NAMES (`upload --stage`) to --remote in one
    /// conditional write: readers see all of them or none. Later NAMES win
    /// where shards hold the same key.
    Ingest {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Download the remote database (refuses to discard unuploaded writes without --force).
    Download {
        #[arg(long)]
        force: bool,
    },
    /// Bring back the database on --remote whose index.idx was lost: fetch its
    /// segment objects into --dir (which must hold no key), rebuild the index
    /// from them keeping every record whose checksum is good, then `upload`
    /// commits a new index.idx. Writes nothing remote.
    Restore,
    /// Delete the database from --remote: its index.idx first (readers then see
    /// no database), then every object under the prefix. With --dir, the
    /// directory keeps its data and a later upload sends it all again.
    DeleteRemote {
        /// Confirm: without it nothing is deleted.
        #[arg(long)]
        yes: bool,
    },
    /// What the next upload would publish: the keys put and deleted since the
    /// last sync with --remote (counts and the first 10 keys; --keys for all).
    Status {
        /// List every changed key, not only the first 10.
        #[arg(long)]
        keys: bool,
    },
    /// Drop changes never uploaded to --remote: of the KEYS given, or of every
    /// key with --all. They read again as at the last sync. The remote must
    /// still hold the commit this directory last synced.
    Discard {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        keys: Vec<String>,
        /// Drop every unsynced change.
        #[arg(long)]
        all: bool,
        /// The KEYS are standard base64.
        #[arg(long)]
        key_b64: bool,
    },
    /// Copy the database committed at --remote to DEST (another prefix, bucket
    /// or store): every segment, then index.idx last. On one S3 endpoint the
    /// server copies the segments. Run it again to resume a copy that stopped.
    Copy {
        /// Destination remote URL (s3://BUCKET/PREFIX, file:///PATH or a path);
        /// it must hold no database. Credentials as for --remote.
        dest: String,
    },
    /// Convert a database written by the Python s4db (0.8 or 0.10) into the
    /// database in --dir (new, or an earlier migration of the same SOURCE:
    /// running it again finishes an interrupted one). Every record's CRC-32 is
    /// checked; SOURCE is only read.
    Migrate {
        /// The Python s4db database: s3://BUCKET/PREFIX (the prefix it was
        /// given, without its trailing /), https://…, or its local directory.
        /// Credentials as for --remote.
        source: String,
        /// Find the live records by replaying every data file in name order
        /// (the default for a local directory; includes writes never uploaded).
        #[arg(long, conflicts_with = "index")]
        replay: bool,
        /// Find the live records through SOURCE's index.idx, its last commit
        /// (the default for s3:// and http(s)://).
        #[arg(long)]
        index: bool,
    },
    /// Delete remote segments no reader can need any more.
    Gc {
        /// Grace period in seconds.
        #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
        grace: u64,
        /// For servers that ignore conditional writes: delete only this writer's
        /// segments and commit without conditions.
        #[arg(long)]
        single_writer: bool,
    },
}
