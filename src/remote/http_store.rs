//! A read-only remote of unsigned GETs: public buckets and CDNs
//! (`http://…`, `https://…`). Writes are refused with `Error::ReadOnly`.

use bytes::Bytes;
use reqwest::StatusCode;
use url::Url;

use super::http::{
    body, client, etag, prefix_body, range_body, range_header, status_attempt, transport,
};
use super::retry::{Attempt, Policy, retry};
use super::{
    BoxFut, ListEntry, Object, ObjectMeta, ObjectStore, Prefix, PutMode, PutOutcome, Ranged,
    RemoteOptions,
};
use crate::error::{Error, Result};

#[derive(Debug)]
pub(crate) struct HttpStore {
    base: Url,
    client: reqwest::Client,
    policy: Policy,
}

impl HttpStore {
    pub(crate) fn new(base: Url, opts: &RemoteOptions) -> Result<Self> {
        Ok(HttpStore {
            policy: opts.retry_policy(super::host_of(&base)),
            base,
            client: client(opts)?,
        })
    }

    fn url(&self, key: &str) -> Result<Url> {
        self.base
            .join(key)
            .map_err(|e| Error::InvalidArgument(format!("bad object key {key:?}: {e}")))
    }
}

impl ObjectStore for HttpStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFut<'a, Option<Object>> {
        Box::pin(async move {
            let url = self.url(key)?;
            let what = format!("reading {key}");
            retry(&self.policy, &what, |_| async {
                let resp = match self.client.get(url.clone()).send().await {
                    Ok(r) => r,
                    Err(e) => return transport(&what, e),
                };
                match resp.status() {
                    StatusCode::NOT_FOUND => Attempt::Done(None),
                    StatusCode::OK => {
                        let tag = etag(resp.headers()).unwrap_or_default();
                        match body(&what, resp).await {
                            Attempt::Done(b) => Attempt::Done(Some(Object { body: b, etag: tag })),
                            Attempt::Retry(e) => Attempt::Retry(e),
                            Attempt::Fail(e) => Attempt::Fail(e),
                        }
                    }
                    s => status_attempt(&what, s, &resp.text().await.unwrap_or_default(), ""),
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
            let url = self.url(key)?;
            let what = format!("reading bytes {start}..{} of {key}", start + len);
            retry(&self.policy, &what, |_| async {
                match self
                    .client
                    .get(url.clone())
                    .header("range", range_header(start, len))
                    .send()
                    .await
                {
                    Ok(r) => range_body(&what, r, start, len, "").await,
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
            let url = self.url(key)?;
            let what = format!("reading the start of {key}");
            retry(&self.policy, &what, |_| async {
                let mut req = self
                    .client
                    .get(url.clone())
                    .header("range", range_header(0, max));
                if let Some(tag) = if_none_match {
                    req = req.header("if-none-match", tag);
                }
                match req.send().await {
                    Ok(r) => prefix_body(&what, r, max, "").await,
                    Err(e) => transport(&what, e),
                }
            })
            .await
        })
    }

    fn head<'a>(&'a self, key: &'a str) -> BoxFut<'a, Option<ObjectMeta>> {
        Box::pin(async move {
            let url = self.url(key)?;
            let what = format!("checking {key}");
            retry(&self.policy, &what, |_| async {
                let resp = match self.client.head(url.clone()).send().await {
                    Ok(r) => r,
                    Err(e) => return transport(&what, e),
                };
                match resp.status() {
                    StatusCode::NOT_FOUND => Attempt::Done(None),
                    StatusCode::OK => Attempt::Done(Some(ObjectMeta {
                        size: super::http::content_length(resp.headers()).unwrap_or(0),
                        etag: etag(resp.headers()).unwrap_or_default(),
                    })),
                    s => status_attempt(&what, s, "", ""),
                }
            })
            .await
        })
    }

    fn put<'a>(&'a self, _key: &'a str, _body: Bytes, _mode: PutMode) -> BoxFut<'a, PutOutcome> {
        Box::pin(async { Err(Error::ReadOnly) })
    }

    fn delete<'a>(&'a self, _keys: &'a [String]) -> BoxFut<'a, ()> {
        Box::pin(async { Err(Error::ReadOnly) })
    }

    fn check(&self) -> BoxFut<'_, ()> {
        // Plain HTTP has no bucket to check; a missing index says enough.
        Box::pin(async { Ok(()) })
    }

    fn list(&self) -> BoxFut<'_, Vec<ListEntry>> {
        Box::pin(async {
            Err(Error::InvalidArgument(
                "an http(s) remote cannot be listed".into(),
            ))
        })
    }
}
