//! S3 and S3-compatible stores: rusty-s3 signs (SigV4 query presigning),
//! reqwest sends.
//!
//! Facts this module relies on (S3's documented behaviour and what we saw
//! of S3-compatible servers):
//! - Only `host` and the headers put into `headers_mut()` are signed, and they
//!   must be sent with exactly the signed values; `Range` may go unsigned.
//! - Conditional writes: `If-None-Match: *` creates only; `If-Match` swaps.
//!   412 means the condition failed; AWS answers 404 to `If-Match` on a
//!   missing key, which means the same; 409 `ConditionalRequestConflict`
//!   means a concurrent conditional write: retry.
//! - `Content-Length` is always sent, also for an empty body (S3 answers 411).
//! - CompleteMultipartUpload may answer 200 with an `<Error>` body.
//! - DeleteObjects takes at most 1,000 keys and needs `Content-MD5`; a 200
//!   can still list per-key errors.
//! - A 403 `RequestTimeTooSkewed` is fixed by signing with the server's time
//!   (from the `Date` header).
//! - Some servers' ListObjectsV2 answers omit `<ETag>`; the listing is parsed
//!   leniently here rather than with rusty-s3's strict parser.

mod copy;
mod multipart;

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reqwest::{Response, StatusCode};
use rusty_s3::actions::{
    DeleteObjects, GetObject, HeadBucket, HeadObject, ObjectIdentifier, PutObject,
};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use super::http::{
    body, client, content_length, etag, prefix_body, range_body, range_header, status_attempt,
    transport,
};
use super::retry::{Attempt, Policy, retry};
use super::url::S3Location;
use super::xml::{field, parse_error_body, parse_list_page};
use super::{
    BoxFut, ListEntry, Object, ObjectMeta, ObjectStore, Prefix, PutMode, PutOutcome, Ranged,
    RemoteOptions,
};
use crate::error::{Error, Result};

/// How long a presigned URL stays valid: longer than any retry sequence.
const SIGNATURE_TTL: Duration = Duration::from_secs(3600);

pub(crate) struct S3Store {
    bucket: Bucket,
    creds: Option<Credentials>,
    client: reqwest::Client,
    opts: RemoteOptions,
    policy: Policy,
    prefix: String,
    region: String,
    endpoint: url::Url,
    describe: String,
    /// Server time minus local time, in seconds, learned from a skew error.
    clock_offset: AtomicI64,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("remote", &self.describe)
            .field("signed", &self.creds.is_some())
            .finish_non_exhaustive()
    }
}

impl S3Store {
    pub(crate) fn new(loc: S3Location, opts: &RemoteOptions) -> Result<Self> {
        let style = if loc.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(
            loc.endpoint.clone(),
            style,
            loc.bucket.clone(),
            loc.region.clone(),
        )
        .map_err(|e| Error::InvalidArgument(format!("bad S3 endpoint or bucket: {e:?}")))?;
        let creds = match (&loc.access_key, &loc.secret_key, loc.anonymous) {
            (Some(k), Some(s), false) => Some(match &loc.session_token {
                Some(t) => Credentials::new_with_token(k.clone(), s.clone(), t.clone()),
                None => Credentials::new(k.clone(), s.clone()),
            }),
            _ => None,
        };
        Ok(S3Store {
            describe: format!("s3://{}/{} at {}", loc.bucket, loc.prefix, loc.endpoint),
            bucket,
            creds,
            client: client(opts)?,
            opts: opts.clone(),
            policy: opts.retry_policy(super::host_of(&loc.endpoint)),
            prefix: loc.prefix,
            region: loc.region,
            endpoint: loc.endpoint,
            clock_offset: AtomicI64::new(0),
        })
    }

    fn key(&self, k: &str) -> String {
        full_key(&self.prefix, k)
    }

    fn sign<'a>(&self, action: &impl S3Action<'a>) -> url::Url {
        let offset = self.clock_offset.load(Ordering::Relaxed);
        let now = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(offset))
            .unwrap_or_else(|_| jiff::Timestamp::now());
        action.sign_with_time(SIGNATURE_TTL, &now)
    }

    /// Retry-or-fail for an unexpected answer; learns the server's clock
    /// from a `RequestTimeTooSkewed` answer and retries with it.
    async fn unexpected<T>(&self, what: &str, resp: Response) -> Attempt<T> {
        let status = resp.status();
        let date = resp
            .headers()
            .get("date")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = resp.text().await.unwrap_or_default();
        if parse_error_body(&text).code == "RequestTimeTooSkewed"
            && let Some(server) = date.and_then(|d| jiff::fmt::rfc2822::parse(&d).ok())
        {
            let skew = server.timestamp().as_second() - jiff::Timestamp::now().as_second();
            let before = self.clock_offset.swap(skew, Ordering::Relaxed);
            if before != skew {
                return Attempt::Retry(Error::remote(
                    what,
                    Some(status.as_u16()),
                    "clock skew; signing with the server's time",
                ));
            }
        }
        status_attempt(what, status, &text, &self.region)
    }

    async fn put_single(&self, key: &str, body: Bytes, mode: &PutMode) -> Result<PutOutcome> {
        let k = self.key(key);
        let what = format!("uploading {key}");
        retry(&self.policy.for_body(body.len()), &what, |_| async {
            let mut action = PutObject::new(&self.bucket, self.creds.as_ref(), &k);
            let cond = condition(mode);
            if let Some((h, v)) = cond {
                action.headers_mut().insert(h, v);
            }
            let mut req = self.client.put(self.sign(&action));
            if let Some((h, v)) = cond {
                req = req.header(h, v);
            }
            let resp = req
                .timeout(self.opts.put_timeout(body.len()))
                .header("content-length", body.len())
                .body(body.clone())
                .send()
                .await;
            let resp = match resp {
                Ok(r) => r,
                Err(e) => return transport(&what, e),
            };
            match (resp.status(), mode) {
                (s, _) if s.is_success() => {
                    Attempt::Done(PutOutcome::Written(etag(resp.headers())))
                }
                (StatusCode::PRECONDITION_FAILED, _)
                | (StatusCode::NOT_FOUND, PutMode::Update(_)) => {
                    Attempt::Done(PutOutcome::PreconditionFailed)
                }
                _ => self.unexpected(&what, resp).await,
            }
        })
        .await
    }
}

/// The bucket key of `k` under `prefix`.
fn full_key(prefix: &str, k: &str) -> String {
    if prefix.is_empty() {
        k.to_string()
    } else {
        format!("{prefix}/{k}")
    }
}

/// The signed header that makes a put conditional.
pub(super) fn condition(mode: &PutMode) -> Option<(&'static str, &str)> {
    match mode {
        PutMode::Overwrite => None,
        PutMode::Create => Some(("if-none-match", "*")),
        PutMode::Update(tag) => Some(("if-match", tag.as_str())),
    }
}

impl ObjectStore for S3Store {
    fn get<'a>(&'a self, key: &'a str) -> BoxFut<'a, Option<Object>> {
        Box::pin(async move {
            let k = self.key(key);
            let what = format!("reading {key}");
            retry(&self.policy, &what, |_| async {
                let url = self.sign(&GetObject::new(&self.bucket, self.creds.as_ref(), &k));
                let resp = match self.client.get(url).send().await {
                    Ok(r) => r,
                    Err(e) => return transport(&what, e),
                };
                match resp.status() {
                    StatusCode::OK => {
                        let tag = etag(resp.headers()).unwrap_or_default();
                        match body(&what, resp).await {
                            Attempt::Done(b) => Attempt::Done(Some(Object { body: b, etag: tag })),
                            Attempt::Retry(e) => Attempt::Retry(e),
                            Attempt::Fail(e) => Attempt::Fail(e),
                        }
                    }
                    StatusCode::NOT_FOUND => {
                        let text = resp.text().await.unwrap_or_default();
                        if parse_error_body(&text).code == "NoSuchBucket" {
                            status_attempt(&what, StatusCode::NOT_FOUND, &text, &self.region)
                        } else {
                            Attempt::Done(None)
                        }
                    }
                    _ => self.unexpected(&what, resp).await,
                }
            })
            .await
        })
    }

    fn get_range<'a>(&'a self, key: &'a str, start: u64, len: u64) -> BoxFut<'a, Option<Ranged>> {
        Box::pin(async move {
            if len == 0 {
                return Ok(Some(Ranged {
                    bytes: Bytes::new(),
                    etag: None,
                }));
            }
            let k = self.key(key);
            let what = format!("reading bytes {start}..{} of {key}", start + len);
            retry(&self.policy, &what, |_| async {
                let url = self.sign(&GetObject::new(&self.bucket, self.creds.as_ref(), &k));
                match self
                    .client
                    .get(url)
                    .header("range", range_header(start, len))
                    .send()
                    .await
                {
                    Ok(r) if r.status() == StatusCode::FORBIDDEN => self.unexpected(&what, r).await,
                    Ok(r) => range_body(&what, r, start, len, &self.region).await,
                    Err(e) => transport(&what, e),
                }
            })
            .await
        })
    }

    fn get_prefix<'a>(
        &'a self,
        key: &'a str,
        max: u64,
        if_none_match: Option<&'a str>,
    ) -> BoxFut<'a, Prefix> {
        Box::pin(async move {
            let k = self.key(key);
            let what = format!("reading the start of {key}");
            let result = retry(&self.policy, &what, |_| async {
                // Range and If-None-Match may go unsigned.
                let url = self.sign(&GetObject::new(&self.bucket, self.creds.as_ref(), &k));
                let mut req = self.client.get(url).header("range", range_header(0, max));
                if let Some(tag) = if_none_match {
                    req = req.header("if-none-match", tag);
                }
                match req.send().await {
                    Ok(r) if r.status() == StatusCode::FORBIDDEN => self.unexpected(&what, r).await,
                    Ok(r) => prefix_body(&what, r, max, &self.region).await,
                    Err(e) => transport(&what, e),
                }
            })
            .await?;
            if matches!(result, Prefix::Missing) {
                // Some servers answer NoSuchKey for a missing bucket.
                self.check().await?;
            }
            Ok(result)
        })
    }

    fn head<'a>(&'a self, key: &'a str) -> BoxFut<'a, Option<ObjectMeta>> {
        Box::pin(async move {
            let k = self.key(key);
            let what = format!("checking {key}");
            retry(&self.policy, &what, |_| async {
                let url = self.sign(&HeadObject::new(&self.bucket, self.creds.as_ref(), &k));
                let resp = match self.client.head(url).send().await {
                    Ok(r) => r,
                    Err(e) => return transport(&what, e),
                };
                match resp.status() {
                    StatusCode::OK => Attempt::Done(Some(ObjectMeta {
                        size: content_length(resp.headers()).unwrap_or(0),
                        etag: etag(resp.headers()).unwrap_or_default(),
                    })),
                    StatusCode::NOT_FOUND => Attempt::Done(None),
                    _ => self.unexpected(&what, resp).await,
                }
            })
            .await
        })
    }

    fn put<'a>(&'a self, key: &'a str, body: Bytes, mode: PutMode) -> BoxFut<'a, PutOutcome> {
        Box::pin(async move {
            if body.len() as u64 > self.opts.multipart_threshold {
                self.put_multipart(key, body, &mode).await
            } else {
                self.put_single(key, body, &mode).await
            }
        })
    }

    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFut<'a, ()> {
        Box::pin(async move {
            for chunk in keys.chunks(1000) {
                let full: Vec<ObjectIdentifier> = chunk
                    .iter()
                    .map(|k| ObjectIdentifier::new(self.key(k)))
                    .collect();
                let what = format!("deleting {} objects", full.len());
                retry(&self.policy, &what, |_| async {
                    let mut action =
                        DeleteObjects::new(&self.bucket, self.creds.as_ref(), full.iter());
                    action.set_quiet(true);
                    // Sign first: body_with_md5 consumes the action.
                    let url = self.sign(&action);
                    let (xml, md5) = action.body_with_md5();
                    let resp = self
                        .client
                        .post(url)
                        .header("content-md5", md5)
                        .header("content-length", xml.len())
                        .body(xml)
                        .send()
                        .await;
                    let resp = match resp {
                        Ok(r) => r,
                        Err(e) => return transport(&what, e),
                    };
                    if !resp.status().is_success() {
                        return self.unexpected(&what, resp).await;
                    }
                    let text = match resp.text().await {
                        Ok(t) => t,
                        Err(e) => return transport(&what, e),
                    };
                    // A 200 can list per-key errors.
                    match text.split("<Error>").nth(1) {
                        Some(err) => Attempt::Retry(Error::remote(
                            &what,
                            Some(200),
                            format!(
                                "the server could not delete {} ({})",
                                field(err, "Key").unwrap_or("an object"),
                                field(err, "Code").unwrap_or("no code")
                            ),
                        )),
                        None => Attempt::Done(()),
                    }
                })
                .await?;
            }
            Ok(())
        })
    }

    fn copy_from<'a>(&'a self, source: &'a S3Location, key: &'a str) -> BoxFut<'a, bool> {
        Box::pin(self.copy_object(source, key))
    }

    fn check(&self) -> BoxFut<'_, ()> {
        Box::pin(async move {
            let what = format!("checking bucket {}", self.bucket.name());
            retry(&self.policy, &what, |_| async {
                let url = self.sign(&HeadBucket::new(&self.bucket, self.creds.as_ref()));
                match self.client.head(url).send().await {
                    Ok(r) if r.status().is_success() => Attempt::Done(()),
                    Ok(r) if r.status() == StatusCode::NOT_FOUND => {
                        Attempt::Fail(Error::remote(&what, Some(404), "the bucket does not exist"))
                    }
                    Ok(r) => self.unexpected(&what, r).await,
                    Err(e) => transport(&what, e),
                }
            })
            .await
        })
    }

    fn list(&self) -> BoxFut<'_, Vec<ListEntry>> {
        Box::pin(async move {
            let prefix = if self.prefix.is_empty() {
                String::new()
            } else {
                format!("{}/", self.prefix)
            };
            let mut out = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let what = "listing the remote".to_string();
                let (page, next) = retry(&self.policy, &what, |_| async {
                    let mut action = self.bucket.list_objects_v2(self.creds.as_ref());
                    action.with_prefix(prefix.as_str());
                    if let Some(t) = &token {
                        action.with_continuation_token(t.as_str());
                    }
                    let url = self.sign(&action);
                    let resp = match self.client.get(url).send().await {
                        Ok(r) => r,
                        Err(e) => return transport(&what, e),
                    };
                    if !resp.status().is_success() {
                        return self.unexpected(&what, resp).await;
                    }
                    match resp.text().await {
                        Ok(t) => Attempt::Done(parse_list_page(&t)),
                        Err(e) => transport(&what, e),
                    }
                })
                .await?;
                out.extend(page.into_iter().filter_map(|mut e| {
                    e.key = e.key.strip_prefix(&prefix)?.to_string();
                    (!e.key.contains('/')).then_some(e)
                }));
                match next {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            Ok(out)
        })
    }
}
