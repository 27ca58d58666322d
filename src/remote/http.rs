//! HTTP plumbing shared by the S3 and plain-HTTP stores: the client, how a
//! status or transport error maps to retry-or-fail, S3 error bodies, and
//! range responses.
//!
//! Secrets: a signed URL carries the access key id and, with temporary
//! credentials, the session token. reqwest puts the URL in its errors, so
//! every transport error is stripped with `without_url()` before it is
//! formatted, and messages name objects by key, never by signed URL.

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{Response, StatusCode};

use super::retry::Attempt;
use super::xml::parse_error_body;
use super::{Prefix, Ranged, RemoteOptions};
use crate::error::{Error, Result};

/// Builds the HTTP client: rustls, timeouts, `TCP_NODELAY` (small requests
/// otherwise stall ~40 ms on Nagle against delayed ACKs), no proxy lookup.
pub(crate) fn client(opts: &RemoteOptions) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(opts.connect_timeout)
        .timeout(opts.request_timeout)
        .tcp_nodelay(true)
        .pool_max_idle_per_host(opts.parallelism.max(opts.read_parallelism).max(8))
        .build()
        .map_err(|e| {
            Error::io(
                "building the HTTP client",
                std::io::Error::other(e.without_url().to_string()),
            )
        })
}

/// A transport error: connection refused or reset, timeout, broken body.
/// Most are retried: the operations s4db retries are idempotent, or are
/// conditional writes whose retry is checked afterwards. A refused
/// connection (nothing listens there) and a TLS failure (a certificate or
/// protocol mismatch) fail at once: retrying cannot change them. The
/// message names the host (never the signed URL).
pub(crate) fn transport<T>(what: &str, e: reqwest::Error) -> Attempt<T> {
    let host = e.url().map(super::host_of).unwrap_or_default();
    let chain = error_chain(&e);
    let refused = chain
        .iter()
        .any(|s| s.contains("Connection refused") || s.contains("ConnectionRefused"));
    let https = e.url().is_some_and(|u| u.scheme() == "https");
    // rustls reports through an io::Error of kind InvalidData (marked by
    // `error_chain`), or names certificates and alerts.
    let tls = https
        && chain.iter().any(|s| {
            let l = s.to_ascii_lowercase();
            s == "InvalidData"
                || l.contains("certificate")
                || l.contains("handshake")
                || l.contains("corrupt message")
                || l.contains("alert")
        });
    let e = e.without_url();
    if e.is_connect() && refused {
        return Attempt::Fail(Error::remote(
            what,
            None,
            format!(
                "connection refused by {host}: is the server running, and is the endpoint right?"
            ),
        ));
    }
    if e.is_connect() && tls {
        return Attempt::Fail(Error::remote(
            what,
            None,
            format!(
                "TLS handshake with {host} failed (a certificate or protocol problem; is it an http:// endpoint?): {}",
                chain.last().map_or("", String::as_str)
            ),
        ));
    }
    let kind = if e.is_timeout() {
        "timed out (request timeout)"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the response body broke off"
    } else {
        "the request failed"
    };
    Attempt::Retry(Error::remote(
        what,
        None,
        format!("{kind} talking to {host}: {e}"),
    ))
}

/// The messages of an error and its sources, outermost first.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => out.push("ConnectionRefused".into()),
                std::io::ErrorKind::InvalidData => out.push("InvalidData".into()),
                _ => {}
            }
        }
        out.push(s.to_string());
        cur = s.source();
    }
    out
}

/// Turns a non-success status and its body into retry-or-fail, with a message
/// that says what the user can do.
pub(crate) fn status_attempt<T>(
    what: &str,
    status: StatusCode,
    body: &str,
    region: &str,
) -> Attempt<T> {
    let e = parse_error_body(body);
    let s = Some(status.as_u16());
    let detail = |plain: &str| {
        if e.code.is_empty() {
            plain.to_string()
        } else if e.message.is_empty() {
            format!("{plain} ({})", e.code)
        } else {
            format!("{plain} ({}: {})", e.code, e.message)
        }
    };
    match (status.as_u16(), e.code.as_str()) {
        (409, "ConditionalRequestConflict") => Attempt::Retry(Error::remote(
            what,
            s,
            detail("a concurrent conditional write; retrying"),
        )),
        (500..=599 | 429 | 408, _) | (_, "SlowDown" | "RequestTimeout" | "InternalError") => {
            Attempt::Retry(Error::remote(
                what,
                s,
                detail("the server is busy or failed"),
            ))
        }
        (_, "RequestTimeTooSkewed") => Attempt::Fail(Error::remote(
            what,
            s,
            detail(
                "this machine's clock differs from the server's by more than 15 minutes; fix the clock",
            ),
        )),
        (_, "NoSuchBucket") => {
            Attempt::Fail(Error::remote(what, s, detail("the bucket does not exist")))
        }
        (_, "AuthorizationHeaderMalformed" | "PermanentRedirect") | (301, _) => {
            let hint = if e.region.is_empty() {
                format!(
                    "wrong region or endpoint (s4db signed for {region:?}); set ?region= or AWS_REGION"
                )
            } else {
                format!(
                    "wrong region: the bucket is in {:?}, s4db signed for {region:?}; set ?region={}",
                    e.region, e.region
                )
            };
            Attempt::Fail(Error::remote(what, s, detail(&hint)))
        }
        (_, "SignatureDoesNotMatch") => Attempt::Fail(Error::remote(
            what,
            s,
            detail("the signature does not match: check AWS_SECRET_ACCESS_KEY and the region"),
        )),
        (_, "InvalidAccessKeyId") => Attempt::Fail(Error::remote(
            what,
            s,
            detail("the access key id is not known to the server"),
        )),
        (403, _) => Attempt::Fail(Error::remote(
            what,
            s,
            detail(
                "access denied: check the credentials and the bucket policy (a public bucket needs ?anonymous=true)",
            ),
        )),
        (416, _) => Attempt::Fail(Error::remote(
            what,
            s,
            detail("the requested range is past the end of the object"),
        )),
        _ => Attempt::Fail(Error::remote(what, s, detail("unexpected answer"))),
    }
}

/// Reads a whole body; a broken body is retried.
pub(crate) async fn body(what: &str, resp: Response) -> Attempt<Bytes> {
    match resp.bytes().await {
        Ok(b) => Attempt::Done(b),
        Err(e) => transport(what, e),
    }
}

/// The `ETag` header, as sent (quotes included).
pub(crate) fn etag(headers: &HeaderMap) -> Option<String> {
    headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The `Content-Length` header (read from the header, not the body).
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// The `Range` header value for `len` bytes from `start` (`len` ≥ 1).
pub(crate) fn range_header(start: u64, len: u64) -> String {
    format!("bytes={start}-{}", start + len.max(1) - 1)
}

/// Turns the answer to a Range GET into exactly `len` bytes.
///
/// 206 must carry exactly the range. A server that ignores `Range` answers
/// 200 with the whole object: the range is sliced out of it. A body shorter
/// than promised is a broken transfer and is retried.
pub(crate) async fn range_body(
    what: &str,
    resp: Response,
    start: u64,
    len: u64,
    region: &str,
) -> Attempt<Option<Ranged>> {
    let status = resp.status();
    let tag = etag(resp.headers());
    let total = range_total(resp.headers());
    match status {
        StatusCode::NOT_FOUND => Attempt::Done(None),
        StatusCode::PARTIAL_CONTENT | StatusCode::OK => {
            let b = match body(what, resp).await {
                Attempt::Done(b) => b,
                Attempt::Retry(e) => return Attempt::Retry(e),
                Attempt::Fail(e) => return Attempt::Fail(e),
            };
            let (s, l) = (start as usize, len as usize);
            if status == StatusCode::OK {
                // The server ignored Range and sent the whole object.
                return match b.get(s..s + l) {
                    Some(_) => Attempt::Done(Some(Ranged {
                        bytes: b.slice(s..s + l),
                        etag: tag,
                    })),
                    None => Attempt::Fail(Error::remote(
                        what,
                        Some(200),
                        format!(
                            "the object is {} bytes, too short for bytes {start}..{}",
                            b.len(),
                            start + len
                        ),
                    )),
                };
            }
            if b.len() == l {
                Attempt::Done(Some(Ranged {
                    bytes: b,
                    etag: tag,
                }))
            } else if total.is_some_and(|t| start + len > t) {
                // Not a broken transfer: the object is now shorter than the
                // range (it was replaced). Retrying would not help.
                Attempt::Fail(Error::remote(
                    what,
                    Some(206),
                    format!(
                        "the object is {} bytes, shorter than the range asked for (it changed?)",
                        total.unwrap_or(0)
                    ),
                ))
            } else {
                Attempt::Retry(Error::remote(
                    what,
                    Some(206),
                    format!("got {} bytes of a {len}-byte range", b.len()),
                ))
            }
        }
        _ => {
            let text = resp.text().await.unwrap_or_default();
            status_attempt(what, status, &text, region)
        }
    }
}

/// The size in a `Content-Range: bytes A-B/SIZE` header.
fn range_total(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("content-range")?
        .to_str()
        .ok()?
        .rsplit('/')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Turns the answer to a GET of `bytes=0-(max-1)` (maybe conditional) into a
/// [`Prefix`]. An object shorter than `max` is fine: its size comes from
/// `Content-Range` (206) or the body (200, a server that ignored Range).
pub(crate) async fn prefix_body(
    what: &str,
    resp: Response,
    max: u64,
    region: &str,
) -> Attempt<Prefix> {
    let status = resp.status();
    let tag = etag(resp.headers()).unwrap_or_default();
    match status {
        StatusCode::NOT_MODIFIED => Attempt::Done(Prefix::NotModified),
        StatusCode::NOT_FOUND => Attempt::Done(Prefix::Missing),
        StatusCode::RANGE_NOT_SATISFIABLE => Attempt::Done(Prefix::Got {
            bytes: Bytes::new(),
            etag: tag,
            total: 0,
        }),
        StatusCode::PARTIAL_CONTENT | StatusCode::OK => {
            let total = range_total(resp.headers());
            let b = match body(what, resp).await {
                Attempt::Done(b) => b,
                Attempt::Retry(e) => return Attempt::Retry(e),
                Attempt::Fail(e) => return Attempt::Fail(e),
            };
            let total = if status == StatusCode::OK {
                b.len() as u64
            } else {
                total.unwrap_or(b.len() as u64)
            };
            let want = total.min(max) as usize;
            match b.get(..want) {
                Some(_) => Attempt::Done(Prefix::Got {
                    bytes: b.slice(..want),
                    etag: tag,
                    total,
                }),
                None => Attempt::Retry(Error::remote(
                    what,
                    Some(status.as_u16()),
                    format!("got {} of {want} bytes", b.len()),
                )),
            }
        }
        _ => {
            let text = resp.text().await.unwrap_or_default();
            status_attempt(what, status, &text, region)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::xml::ErrorBody;

    #[test]
    fn error_bodies_are_read_leniently() {
        let b = parse_error_body(
            "<?xml version=\"1.0\"?><Error><Code>AuthorizationHeaderMalformed</Code><Message>bad</Message><Region>eu-west-1</Region></Error>",
        );
        assert_eq!(
            b,
            ErrorBody {
                code: "AuthorizationHeaderMalformed".into(),
                message: "bad".into(),
                region: "eu-west-1".into()
            }
        );
        assert_eq!(parse_error_body("garbage <Code>"), ErrorBody::default());
    }

    #[test]
    fn statuses_map_to_retry_or_a_clear_failure() {
        let retry = |s: u16, body: &str| {
            matches!(
                status_attempt::<()>("x", StatusCode::from_u16(s).unwrap(), body, "us-east-1"),
                Attempt::Retry(_)
            )
        };
        assert!(retry(500, ""));
        assert!(retry(503, "<Error><Code>SlowDown</Code></Error>"));
        assert!(retry(429, ""));
        assert!(retry(408, ""));
        assert!(retry(
            409,
            "<Error><Code>ConditionalRequestConflict</Code></Error>"
        ));
        assert!(!retry(403, ""));
        assert!(!retry(400, ""));
        let msg = |s: u16, body: &str| match status_attempt::<()>(
            "x",
            StatusCode::from_u16(s).unwrap(),
            body,
            "us-east-1",
        ) {
            Attempt::Fail(e) => e.to_string(),
            _ => panic!(),
        };
        assert!(msg(403, "").contains("access denied"));
        assert!(
            msg(404, "<Error><Code>NoSuchBucket</Code></Error>").contains("bucket does not exist")
        );
        assert!(
            msg(
                400,
                "<Error><Code>AuthorizationHeaderMalformed</Code><Region>eu-west-1</Region></Error>"
            )
            .contains("?region=eu-west-1")
        );
        assert!(msg(403, "<Error><Code>RequestTimeTooSkewed</Code></Error>").contains("clock"));
    }

    #[test]
    fn range_header_is_inclusive() {
        assert_eq!(range_header(10, 5), "bytes=10-14");
    }
}
