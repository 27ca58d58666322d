//! Running blocking work (file I/O, fsync, compaction) from async code.
//!
//! Inside a tokio runtime the work goes to its blocking pool, so async worker
//! threads stay free; outside one it simply runs on the calling thread.

use crate::error::{Error, Result};

pub(crate) async fn offload<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => h.spawn_blocking(f).await.map_err(|e| {
            Error::io(
                "running a background task",
                std::io::Error::other(e.to_string()),
            )
        })?,
        Err(_) => f(),
    }
}
