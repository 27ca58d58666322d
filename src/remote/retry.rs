//! Retries with exponential backoff and jitter.
//!
//! Backoff starts at 100 ms and doubles to at most 5 s; each wait is
//! randomised between half and all of that ("equal jitter"), so writers that
//! failed together do not retry together. The operation is re-run whole
//! each time, so a signed request is signed again for every attempt.

use std::future::Future;
use std::time::Duration;

use crate::error::{Error, Result};

/// What one attempt of an operation came to.
#[derive(Debug)]
pub(crate) enum Attempt<T> {
    Done(T),
    /// Worth another try (5xx, 429, 408, a connection error, a timeout, a
    /// truncated body). The error is returned if retries run out.
    Retry(Error),
    /// Final.
    Fail(Error),
}

const BASE: Duration = Duration::from_millis(100);
const MAX: Duration = Duration::from_secs(5);

fn backoff(attempt: u32) -> Duration {
    let exp = BASE.saturating_mul(1u32 << attempt.min(16)).min(MAX);
    let jitter = f64::from(getrandom::u32().unwrap_or(u32::MAX / 2)) / f64::from(u32::MAX);
    exp.mul_f64(0.5 + jitter / 2.0)
}

/// Runs `op` (given the attempt number from 0) until it is done, fails
/// finally, or has been retried `retries` times.
pub(crate) async fn retry<T, F, Fut>(retries: u32, what: &str, mut op: F) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    let mut attempt = 0;
    loop {
        match op(attempt).await {
            Attempt::Done(v) => return Ok(v),
            Attempt::Fail(e) => return Err(e),
            Attempt::Retry(e) if attempt >= retries => {
                tracing::warn!(what, attempts = attempt + 1, error = %e, "giving up");
                return Err(e);
            }
            Attempt::Retry(e) => {
                tracing::debug!(what, attempt, error = %e, "retrying");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        assert!(backoff(0) >= BASE / 2 && backoff(0) <= BASE);
        assert!(backoff(3) >= BASE * 4 && backoff(3) <= BASE * 8);
        assert!(backoff(30) <= MAX && backoff(30) >= MAX / 2);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_then_gives_up_with_the_last_error() {
        let mut calls = 0;
        let r: Result<()> = retry(3, "test", |_| {
            calls += 1;
            async { Attempt::Retry(Error::remote("x", Some(503), "slow down")) }
        })
        .await;
        assert_eq!(calls, 4);
        assert!(matches!(
            r,
            Err(Error::Remote {
                status: Some(503),
                ..
            })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_final_failure_is_not_retried() {
        let mut calls = 0;
        let r: Result<()> = retry(3, "test", |_| {
            calls += 1;
            async { Attempt::Fail(Error::remote("x", Some(403), "denied")) }
        })
        .await;
        assert_eq!(calls, 1);
        assert!(r.is_err());
    }
}
