//! Remote object stores: one async trait, three implementations chosen by
//! URL (`s3://`, `http(s)://`, `file://`), and a counting wrapper.
//!
//! Keys passed to a store are relative to the remote's prefix: `index.idx`
//! and segment file names (FORMAT.md §10). Conditional writes are data
//! ([`PutMode`]), and a failed condition is an outcome, not an error, so the
//! sync protocol decides what it means.

pub(crate) mod ctx;
mod file_store;
mod http;
mod http_store;
#[cfg(test)]
pub(crate) mod mem_store;
mod retry;
mod s3;
pub(crate) mod url;
mod xml;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::error::Result;
use crate::options::setters;
pub use ctx::Credentials;
pub(crate) use url::RemoteUrl;

/// A boxed, sendable future: keeps [`ObjectStore`] usable as a trait object.
pub(crate) type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// Size and entity tag of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectMeta {
    pub size: u64,
    pub etag: String,
}

/// A whole object.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    pub body: Bytes,
    pub etag: String,
}

/// The condition a put is made under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PutMode {
    /// Unconditional (single-writer mode, and the conditional-write probe).
    Overwrite,
    /// Only if no object has the key (`If-None-Match: *`).
    Create,
    /// Only if the object's entity tag is this one (`If-Match`).
    Update(String),
}

/// What a put did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PutOutcome {
    /// Written; the new entity tag when the server told it.
    Written(Option<String>),
    /// The condition did not hold (HTTP 412, or 404 for `Update` on AWS).
    PreconditionFailed,
}

/// Bytes of a range, with the entity tag of the object they came from.
#[derive(Debug, Clone)]
pub(crate) struct Ranged {
    pub bytes: Bytes,
    /// `None` when the server sent no `ETag`.
    pub etag: Option<String>,
}

/// The first bytes of an object, or why there are none.
#[derive(Debug, Clone)]
pub(crate) enum Prefix {
    /// The object still has the entity tag given as `If-None-Match`.
    NotModified,
    /// There is no object.
    Missing,
    /// Up to the bytes asked for, the entity tag, and the object's full size.
    Got {
        bytes: Bytes,
        etag: String,
        total: u64,
    },
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListEntry {
    pub key: String,
    pub size: u64,
    pub modified: Option<SystemTime>,
}

/// The operations s4db needs from a remote.
pub(crate) trait ObjectStore: Send + Sync + fmt::Debug {
    /// The whole object, or `None` if there is none.
    fn get<'a>(&'a self, key: &'a str) -> BoxFut<'a, Option<Object>>;
    /// Exactly `len` bytes from `start`, or `None` if there is no object.
    fn get_range<'a>(&'a self, key: &'a str, start: u64, len: u64) -> BoxFut<'a, Option<Ranged>>;
    /// The first `max` bytes (fewer if the object is shorter), with the
    /// object's size; with `if_none_match`, `NotModified` if the tag still holds.
    fn get_prefix<'a>(
        &'a self,
        key: &'a str,
        max: u64,
        if_none_match: Option<&'a str>,
    ) -> BoxFut<'a, Prefix>;
    /// Size and entity tag, or `None`.
    fn head<'a>(&'a self, key: &'a str) -> BoxFut<'a, Option<ObjectMeta>>;
    /// Writes an object under a condition.
    fn put<'a>(&'a self, key: &'a str, body: Bytes, mode: PutMode) -> BoxFut<'a, PutOutcome>;
    /// Deletes objects; missing ones are not an error.
    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFut<'a, ()>;
    /// Every object under the prefix.
    fn list(&self) -> BoxFut<'_, Vec<ListEntry>>;
    /// Copies `key` of the S3 remote `source` to `key` here without its bytes
    /// passing through s4db (S3 `CopyObject`). `false` when this store
    /// cannot: it is not S3, `source` is on another endpoint, or the server
    /// or the credentials refuse; the caller then copies the bytes itself.
    fn copy_from<'a>(&'a self, source: &'a url::S3Location, key: &'a str) -> BoxFut<'a, bool> {
        let _ = (source, key);
        Box::pin(async { Ok(false) })
    }
    /// Checks that the bucket (or directory) exists and is reachable.
    /// Called where a missing `index.idx` would otherwise pass for an empty
    /// database: some servers answer `NoSuchKey` for a missing bucket.
    fn check(&self) -> BoxFut<'_, ()>;
}

/// Settings for remote stores.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteOptions {
    /// Time allowed to connect; default 10 s.
    pub connect_timeout: Duration,
    /// Time allowed for one request, body included; default 30 s. A PUT gets
    /// one more second per MiB of its body.
    pub request_timeout: Duration,
    /// Time allowed for one remote operation: a request and all its retries;
    /// default 120 s. A server that accepts connections but never answers
    /// makes an operation fail after this long, naming the host.
    pub operation_timeout: Duration,
    /// Retries of a failed request (5xx, 429, 408, connection errors,
    /// timeouts, truncated bodies), with exponential backoff from 100 ms
    /// doubling to 5 s, with jitter; default 8.
    pub retries: u32,
    /// Objects larger than this are uploaded in parts (S3); default 100 MiB,
    /// so that segments at the default 64 MiB limit go in one request.
    pub multipart_threshold: u64,
    /// Size of each part of a multipart upload; default 16 MiB (S3's minimum is 5 MiB).
    pub part_size: u64,
    /// Requests an upload, a download or the load of a whole index runs at
    /// once; default 8.
    pub parallelism: usize,
    /// Range reads a `get_many` (index pages, then records) runs at once;
    /// default 32. Each costs a round trip of first-byte latency (tens of
    /// milliseconds on S3) and few bytes, so more at once cut the time of a
    /// large `get_many` nearly in proportion.
    pub read_parallelism: usize,
    /// `get_many` reads two records of a segment, or two index pages of a
    /// run, with one range request when at most this many bytes lie between
    /// them; default 32 KiB.
    pub coalesce_gap: u64,
    /// Bytes of `index.idx` pages a handle over a remote alone keeps cached;
    /// default 64 MiB.
    pub page_cache_bytes: usize,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            operation_timeout: Duration::from_secs(120),
            retries: 8,
            multipart_threshold: 100 << 20,
            part_size: 16 << 20,
            parallelism: 8,
            read_parallelism: 32,
            coalesce_gap: 32 << 10,
            page_cache_bytes: 64 << 20,
        }
    }
}

setters!(RemoteOptions {
    /// Sets the connect timeout.
    connect_timeout: Duration,
    /// Sets the per-request timeout.
    request_timeout: Duration,
    /// Sets the overall time of one operation, retries included.
    operation_timeout: Duration,
    /// Sets the number of retries.
    retries: u32,
    /// Sets the largest gap `get_many` reads through to join two records or
    /// two index pages.
    coalesce_gap: u64,
    /// Sets the page cache budget of a handle over a remote alone.
    page_cache_bytes: usize,
});

impl RemoteOptions {
    /// Sets the multipart threshold and part size (the part size is raised
    /// to S3's 5 MiB minimum).
    #[must_use]
    pub fn multipart(mut self, threshold: u64, part_size: u64) -> Self {
        self.multipart_threshold = threshold;
        self.part_size = part_size.max(5 << 20);
        self
    }
    /// Sets the number of requests an upload, download or whole-index load
    /// runs at once (at least 1).
    #[must_use]
    pub fn parallelism(mut self, n: usize) -> Self {
        self.parallelism = n.max(1);
        self
    }
    /// Sets the number of range reads a `get_many` runs at once (at least 1).
    #[must_use]
    pub fn read_parallelism(mut self, n: usize) -> Self {
        self.read_parallelism = n.max(1);
        self
    }
    /// Sets the time one remote operation may take, its retries included
    /// (`operation_timeout`), and lowers `request_timeout` to it where that
    /// is longer: the one limit the CLI's `--timeout` and the Python
    /// package's `timeout=` give. A zero duration makes every remote
    /// operation fail at once.
    #[must_use]
    pub fn timeout(mut self, t: Duration) -> Self {
        self.operation_timeout = t;
        self.request_timeout = self.request_timeout.min(t);
        self
    }
}

impl RemoteOptions {
    /// The retry policy of requests to `host`.
    pub(crate) fn retry_policy(&self, host: String) -> retry::Policy {
        retry::Policy {
            retries: self.retries,
            deadline: self.operation_timeout,
            host,
        }
    }

    /// The timeout of a request that sends `body_len` bytes.
    pub(crate) fn put_timeout(&self, body_len: usize) -> Duration {
        self.request_timeout + Duration::from_secs((body_len >> 20) as u64)
    }
}

/// `host:port` of a URL, for messages.
pub(crate) fn host_of(url: &::url::Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => url.scheme().to_string(),
    }
}

/// Counts of requests made through a remote, from [`crate::Db::remote_stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RemoteStats {
    /// Requests issued by s4db (retries of one request are not counted again).
    pub requests: u64,
    /// Body bytes received.
    pub bytes_received: u64,
    /// Body bytes sent.
    pub bytes_sent: u64,
    /// Index pages a handle over a remote alone holds in its cache (0 for
    /// a handle with a local directory). Pages of index runs stay cached
    /// across the remote's commits (FORMAT.md §10.6).
    pub cached_index_pages: u64,
}

/// Wraps a store and counts what goes through it.
#[derive(Debug)]
pub(crate) struct Counted {
    inner: Arc<dyn ObjectStore>,
    requests: AtomicU64,
    received: AtomicU64,
    sent: AtomicU64,
}

impl Counted {
    pub(crate) fn stats(&self) -> RemoteStats {
        RemoteStats {
            requests: self.requests.load(Ordering::Relaxed),
            bytes_received: self.received.load(Ordering::Relaxed),
            bytes_sent: self.sent.load(Ordering::Relaxed),
            cached_index_pages: 0,
        }
    }

    fn count(&self, received: usize, sent: usize) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.received.fetch_add(received as u64, Ordering::Relaxed);
        self.sent.fetch_add(sent as u64, Ordering::Relaxed);
    }
}

impl ObjectStore for Counted {
    fn get<'a>(&'a self, key: &'a str) -> BoxFut<'a, Option<Object>> {
        Box::pin(async move {
            let r = self.inner.get(key).await;
            self.count(
                r.as_ref()
                    .ok()
                    .and_then(|o| o.as_ref())
                    .map_or(0, |o| o.body.len()),
                0,
            );
            r
        })
    }
    fn get_range<'a>(&'a self, key: &'a str, start: u64, len: u64) -> BoxFut<'a, Option<Ranged>> {
        Box::pin(async move {
            let r = self.inner.get_range(key, start, len).await;
            self.count(
                r.as_ref()
                    .ok()
                    .and_then(|o| o.as_ref())
                    .map_or(0, |r| r.bytes.len()),
                0,
            );
            r
        })
    }
    fn get_prefix<'a>(
        &'a self,
        key: &'a str,
        max: u64,
        if_none_match: Option<&'a str>,
    ) -> BoxFut<'a, Prefix> {
        Box::pin(async move {
            let r = self.inner.get_prefix(key, max, if_none_match).await;
            let n = match &r {
                Ok(Prefix::Got { bytes, .. }) => bytes.len(),
                _ => 0,
            };
            self.count(n, 0);
            r
        })
    }
    fn head<'a>(&'a self, key: &'a str) -> BoxFut<'a, Option<ObjectMeta>> {
        Box::pin(async move {
            let r = self.inner.head(key).await;
            self.count(0, 0);
            r
        })
    }
    fn put<'a>(&'a self, key: &'a str, body: Bytes, mode: PutMode) -> BoxFut<'a, PutOutcome> {
        Box::pin(async move {
            let n = body.len();
            let r = self.inner.put(key, body, mode).await;
            self.count(0, n);
            r
        })
    }
    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFut<'a, ()> {
        Box::pin(async move {
            let r = self.inner.delete(keys).await;
            self.count(0, 0);
            r
        })
    }
    fn list(&self) -> BoxFut<'_, Vec<ListEntry>> {
        Box::pin(async move {
            let r = self.inner.list().await;
            self.count(0, 0);
            r
        })
    }
    fn copy_from<'a>(&'a self, source: &'a url::S3Location, key: &'a str) -> BoxFut<'a, bool> {
        Box::pin(async move {
            let r = self.inner.copy_from(source, key).await;
            self.count(0, 0);
            r
        })
    }
    fn check(&self) -> BoxFut<'_, ()> {
        Box::pin(async move {
            let r = self.inner.check().await;
            self.count(0, 0);
            r
        })
    }
}

/// Opens the store a URL names.
///
/// # Errors
/// [`crate::Error::InvalidArgument`] for a bad URL, [`crate::Error::Io`] if
/// the HTTP client cannot be built.
pub(crate) fn open(url: &RemoteUrl, opts: &RemoteOptions) -> Result<Arc<Counted>> {
    let inner: Arc<dyn ObjectStore> = match url {
        RemoteUrl::File { root } => Arc::new(file_store::FileStore::new(root.clone())),
        RemoteUrl::Http { base } => Arc::new(http_store::HttpStore::new(base.clone(), opts)?),
        RemoteUrl::S3(loc) => Arc::new(s3::S3Store::new(loc.clone(), opts)?),
    };
    Ok(counted(inner))
}

/// Counts what goes through `inner`.
pub(crate) fn counted(inner: Arc<dyn ObjectStore>) -> Arc<Counted> {
    Arc::new(Counted {
        inner,
        requests: AtomicU64::new(0),
        received: AtomicU64::new(0),
        sent: AtomicU64::new(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_sets_the_operation_limit_and_caps_each_request_at_it() {
        let short = RemoteOptions::default().timeout(Duration::from_secs(5));
        assert_eq!(short.operation_timeout, Duration::from_secs(5));
        assert_eq!(short.request_timeout, Duration::from_secs(5));
        let long = RemoteOptions::default().timeout(Duration::from_secs(600));
        assert_eq!(long.operation_timeout, Duration::from_secs(600));
        assert_eq!(long.request_timeout, Duration::from_secs(30));
    }
}
