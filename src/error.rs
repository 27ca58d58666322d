//! The one public error type of s4db.
//!
//! Every failure a caller can see is an [`Error`]. The variants separate what
//! the caller should do next: retry or check the disk ([`Error::Io`]), repair
//! ([`Error::Corruption`], which always says where), fix the call
//! ([`Error::InvalidArgument`]), wait for another process ([`Error::Locked`]),
//! or stop using a handle ([`Error::Closed`]). Corruption is never reported as
//! plain I/O. Messages name files and offsets, never secrets.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// `Result` with s4db's [`Error`] as the default error type.
pub type Result<T = (), E = Error> = std::result::Result<T, E>;

/// Where corrupt bytes were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file (a segment, or `index.idx`), relative to the database directory.
    pub file: String,
    /// Byte offset in that file of the record, page or field that failed its check.
    pub offset: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.file, self.offset)
    }
}

/// Every error s4db returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed. `context` says what s4db was doing.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What s4db was doing, with the file involved.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Stored bytes failed a checksum or structural check. Nothing was
    /// silently skipped; the location names the file and offset.
    #[error("corruption in {location}: {detail}")]
    Corruption {
        /// The file and offset of the bad bytes.
        location: Location,
        /// What check failed.
        detail: String,
    },
    /// The caller passed something s4db cannot accept (an empty key, a key or
    /// value over the documented limit, a bad option).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Another handle (in this or another process) holds the database
    /// directory's lock.
    #[error("database at {} is locked by another handle or process", .0.display())]
    Locked(PathBuf),
    /// The handle was closed with `close()`, or a previous fsync failed and
    /// the handle refuses further writes to avoid acknowledging lost data.
    #[error("database handle is closed: {0}")]
    Closed(String),
    /// A write was attempted on a handle opened read-only.
    #[error("database was opened read-only")]
    ReadOnly,
    /// Something that must exist does not (a database directory opened
    /// without `create_if_missing`).
    #[error("not found: {0}")]
    NotFound(String),
    /// What was asked for is in a segment that only the remote holds (the
    /// directory reads through its remote, or a segment file went missing
    /// from a copy) and no remote is attached: attach it (CLI: `--remote
    /// URL`) to read it, or download to fetch the segments the directory
    /// lacks. Nothing is damaged.
    #[error("only on the remote: {0}")]
    OnRemote(String),
    /// The state changed underneath the operation: another writer committed
    /// to the remote first. Nothing local was lost; see `rebase`.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A remote store failed or refused a request (after retries). `status`
    /// is the HTTP status when there was one; `detail` says what it means
    /// (access denied, missing bucket, wrong region, clock skew...). Never
    /// holds a credential or a signed URL.
    #[error("remote error while {context}{}: {detail}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Remote {
        /// What s4db was doing, with the object involved.
        context: String,
        /// The HTTP status, if the server answered.
        status: Option<u16>,
        /// What went wrong, in words.
        detail: String,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn corruption(
        file: impl Into<String>,
        offset: u64,
        detail: impl Into<String>,
    ) -> Self {
        Error::Corruption {
            location: Location {
                file: file.into(),
                offset,
            },
            detail: detail.into(),
        }
    }

    pub(crate) fn remote(
        context: impl Into<String>,
        status: Option<u16>,
        detail: impl Into<String>,
    ) -> Self {
        Error::Remote {
            context: context.into(),
            status,
            detail: detail.into(),
        }
    }

    /// A corruption error that the index-file decoder reported against
    /// `index.idx`, re-pointed at `name` (an index run uses the same codec);
    /// any other error as it is.
    pub(crate) fn in_file(self, name: &str) -> Self {
        match self {
            Error::Corruption { location, detail } if location.file == "index.idx" => {
                Error::corruption(name, location.offset, detail)
            }
            other => other,
        }
    }

    /// [`Error::OnRemote`]: `what` (which segment is only on the remote),
    /// then how to reach it.
    pub(crate) fn on_remote(what: String) -> Self {
        Error::OnRemote(format!(
            "{what}; run with --remote URL (library: DbBuilder::remote), or download to fetch the segments this directory lacks"
        ))
    }

    /// True for [`Error::Corruption`].
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }
}

/// Adds "while doing X" context to `io::Result`s.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(context(), e))
    }
}
