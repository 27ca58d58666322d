//! The remote attached to a database: the store, and the small runtime its
//! I/O runs on.
//!
//! Remote requests run on a runtime s4db owns (two worker threads), and
//! callers wait on the task's handle. So remote I/O works from any executor
//! (a current-thread runtime without I/O enabled, another async runtime, or
//! the blocking API) and never needs the caller to provide a reactor.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::url::{Env, ProcessEnv};
use super::{Counted, RemoteOptions, RemoteStats, RemoteUrl};
use crate::error::{Error, Result};

/// S3 credentials given explicitly (instead of, or over, the AWS variables).
/// `Debug` never shows the secret key or the session token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key: String,
    secret_key: String,
    session_token: Option<String>,
}

impl Credentials {
    /// An access key id and secret access key.
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Credentials {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            session_token: None,
        }
    }

    /// Adds a session token (temporary credentials).
    #[must_use]
    pub fn with_session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(token.into());
        self
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Explicit credentials first, then the process environment.
struct ConfigEnv<'a>(Option<&'a Credentials>);

impl Env for ConfigEnv<'_> {
    fn var(&self, name: &str) -> Option<String> {
        if let Some(c) = self.0 {
            match name {
                "AWS_ACCESS_KEY_ID" => return Some(c.access_key.clone()),
                "AWS_SECRET_ACCESS_KEY" => return Some(c.secret_key.clone()),
                "AWS_SESSION_TOKEN" => return c.session_token.clone(),
                _ => {}
            }
        }
        ProcessEnv.var(name)
    }
}

/// A runtime that is shut down without blocking, so dropping it inside async
/// code is safe.
struct BgRuntime(Option<tokio::runtime::Runtime>);

impl Drop for BgRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// A remote and the runtime its requests run on.
pub(crate) struct RemoteCtx {
    pub store: Arc<Counted>,
    pub url: RemoteUrl,
    pub opts: RemoteOptions,
    rt: BgRuntime,
}

impl fmt::Debug for RemoteCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteCtx")
            .field("remote", &self.url.describe())
            .finish_non_exhaustive()
    }
}

impl RemoteCtx {
    /// The error for a remote that holds no database (no `index.idx`).
    pub(crate) fn no_database(&self) -> Error {
        Error::NotFound(format!("no database at {}", self.url.describe()))
    }

    /// Refuses a write to a remote that cannot take one (an `http(s)://`
    /// remote is read-only by its URL).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] that says so.
    pub(crate) fn ensure_writable(&self, what: &str) -> Result<()> {
        if let RemoteUrl::Http { base } = &self.url {
            return Err(Error::InvalidArgument(format!(
                "cannot {what} {base}: an http(s):// remote is read-only (plain GETs); use its s3:// URL (with credentials) or a file:// path to write"
            )));
        }
        Ok(())
    }

    /// Parses `url` and opens its store, or uses `store` in place of the one
    /// the URL names (protocol tests without a server; the URL still names
    /// the remote).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad URL; [`Error::Io`] if the runtime
    /// or HTTP client cannot start.
    pub(crate) fn open_with(
        url: &str,
        creds: Option<&Credentials>,
        opts: RemoteOptions,
        store: Option<Arc<dyn super::ObjectStore>>,
    ) -> Result<Self> {
        let url = RemoteUrl::parse_with_env(url, &ConfigEnv(creds))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("s4db-remote")
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the remote I/O runtime", e))?;
        // The HTTP client must be built inside the runtime it will run on.
        let store = match store {
            Some(s) => super::counted(s),
            None => {
                let _guard = rt.enter();
                super::open(&url, &opts)?
            }
        };
        Ok(RemoteCtx {
            store,
            url,
            opts,
            rt: BgRuntime(Some(rt)),
        })
    }

    /// Runs `fut` on the remote runtime and waits for it from any executor.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let rt = self
            .rt
            .0
            .as_ref()
            .ok_or_else(|| Error::Closed("the remote runtime is shut down".into()))?;
        rt.spawn(fut).await.map_err(|e| {
            Error::io(
                "running a remote task",
                std::io::Error::other(e.to_string()),
            )
        })?
    }

    pub(crate) fn stats(&self) -> RemoteStats {
        self.store.stats()
    }
}
