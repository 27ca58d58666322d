//! Retries with exponential backoff and jitter, within a deadline.
//!
//! Backoff starts at 100 ms and doubles to at most 5 s; each wait is
//! randomised between half and all of that ("equal jitter"), so writers that
//! failed together do not retry together. The operation is re-run whole
//! each time, so a signed request is signed again for every attempt.
//!
//! Every operation (one request and its retries) has an overall deadline
//! ([`crate::RemoteOptions::operation_timeout`]): an attempt still running
//! then is abandoned, and no retry starts that could not finish before it.
//! The error names the host, so a hung server is told apart from a slow one.

use std::future::Future;
use std::time::{Duration, Instant};

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

/// How often and for how long an operation is tried.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// The whole operation's time, attempts and waits together.
    pub deadline: Duration,
    /// The host the requests go to, for messages (`host:port`; no secrets).
    pub host: String,
}

impl Policy {
    /// The policy of a request that sends `body_len` bytes: one more second
    /// of deadline per MiB.
    pub(crate) fn for_body(&self, body_len: usize) -> Policy {
        Policy {
            deadline: self.deadline + Duration::from_secs((body_len >> 20) as u64),
            ..self.clone()
        }
    }
}

/// Runs `op` (given the attempt number from 0) until it is done, fails
/// finally, has been retried `policy.retries` times, or runs out of
/// `policy.deadline`.
pub(crate) async fn retry<T, F, Fut>(policy: &Policy, what: &str, mut op: F) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    let start = Instant::now();
    let end = start + policy.deadline;
    let mut attempt = 0;
    loop {
        let remaining = end.saturating_duration_since(Instant::now());
        let outcome = match tokio::time::timeout(remaining, op(attempt)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                return Err(Error::remote(
                    what,
                    None,
                    format!(
                        "no answer from {} within the operation timeout of {} s ({} attempt(s))",
                        policy.host,
                        policy.deadline.as_secs_f64(),
                        attempt + 1
                    ),
                ));
            }
        };
        match outcome {
            Attempt::Done(v) => return Ok(v),
            Attempt::Fail(e) => return Err(e),
            Attempt::Retry(e) if attempt >= policy.retries => {
                tracing::warn!(what, attempts = attempt + 1, error = %e, "giving up");
                return Err(e);
            }
            Attempt::Retry(e) => {
                let wait = backoff(attempt);
                if Instant::now() + wait >= end {
                    tracing::warn!(what, attempts = attempt + 1, error = %e, "giving up at the deadline");
                    return Err(e);
                }
                tracing::debug!(what, attempt, error = %e, "retrying");
                tokio::time::sleep(wait).await;
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

    fn policy(retries: u32) -> Policy {
        Policy {
            retries,
            deadline: Duration::from_secs(600),
            host: "example:1".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_that_never_ends_is_abandoned_at_the_deadline_naming_the_host() {
        let p = Policy {
            retries: 8,
            deadline: Duration::from_secs(3),
            host: "hung.example:9".into(),
        };
        let r: Result<()> = retry(&p, "reading index.idx", |_| std::future::pending()).await;
        let e = r.unwrap_err().to_string();
        assert!(e.contains("hung.example:9") && e.contains("timeout"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn no_retry_starts_past_the_deadline() {
        let p = Policy {
            retries: 1000,
            deadline: Duration::from_secs(2),
            host: "h:1".into(),
        };
        let mut calls = 0;
        let r: Result<()> = retry(&p, "test", |_| {
            calls += 1;
            async { Attempt::Retry(Error::remote("x", Some(503), "slow down")) }
        })
        .await;
        assert!(r.is_err());
        assert!((2..=10).contains(&calls), "{calls} attempts in 2 s");
    }

    #[tokio::test(start_paused = true)]
    async fn retries_then_gives_up_with_the_last_error() {
        let mut calls = 0;
        let r: Result<()> = retry(&policy(3), "test", |_| {
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
        let r: Result<()> = retry(&policy(3), "test", |_| {
            calls += 1;
            async { Attempt::Fail(Error::remote("x", Some(403), "denied")) }
        })
        .await;
        assert_eq!(calls, 1);
        assert!(r.is_err());
    }
}
