//! Server-side copies (S3 `CopyObject`): a `PUT` with a signed
//! `x-amz-copy-source` header. Used by `copy_remote` when the source and
//! the destination are on the same endpoint, so segment bytes never pass
//! through s4db. Facts relied on:
//! - the header's value is `BUCKET/KEY` with the key percent-encoded (`/`
//!   kept);
//! - a 200 answer may still carry an `<Error>` body (as with multipart
//!   completion); only a `<CopyObjectResult>` means the copy is done;
//! - a server or a policy that does not allow it answers 403 or 501 (or 400
//!   `NotImplemented`): the caller then copies the bytes itself.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::StatusCode;
use rusty_s3::S3Action;
use rusty_s3::actions::PutObject;

use super::{S3Store, full_key};
use crate::error::{Error, Result};
use crate::remote::http::transport;
use crate::remote::retry::{Attempt, retry};
use crate::remote::url::S3Location;
use crate::remote::xml::parse_error_body;

/// What stays literal in a copy source: RFC 3986's unreserved characters and
/// the `/` between key parts.
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// The `x-amz-copy-source` value of `key` under `source`'s prefix.
pub(super) fn copy_source(source: &S3Location, key: &str) -> String {
    let k = full_key(&source.prefix, key);
    format!("{}/{}", source.bucket, utf8_percent_encode(&k, COPY_SOURCE))
}

impl S3Store {
    /// Copies `key` of `source` to `key` here on the server; `false` if
    /// `source` is on another endpoint or the server refuses.
    pub(super) async fn copy_object(&self, source: &S3Location, key: &str) -> Result<bool> {
        if source.endpoint != self.endpoint {
            return Ok(false);
        }
        let (k, from) = (self.key(key), copy_source(source, key));
        let what = format!("copying {key} on the server");
        retry(&self.policy, &what, |_| async {
            let mut action = PutObject::new(&self.bucket, self.creds.as_ref(), &k);
            action.headers_mut().insert("x-amz-copy-source", &from);
            let resp = self
                .client
                .put(self.sign(&action))
                .header("x-amz-copy-source", &from)
                .header("content-length", 0)
                .send()
                .await;
            let resp = match resp {
                Ok(r) => r,
                Err(e) => return transport(&what, e),
            };
            let status = resp.status();
            if status == StatusCode::OK {
                return match resp.text().await {
                    Ok(t) if t.contains("<CopyObjectResult") => Attempt::Done(true),
                    Ok(t) => Attempt::Retry(Error::remote(
                        &what,
                        Some(200),
                        format!("the copy failed: {}", parse_error_body(&t).code),
                    )),
                    Err(e) => transport(&what, e),
                };
            }
            let refused = matches!(
                status,
                StatusCode::FORBIDDEN | StatusCode::NOT_IMPLEMENTED | StatusCode::NOT_FOUND
            );
            if refused {
                let text = resp.text().await.unwrap_or_default();
                tracing::debug!(key, status = status.as_u16(), code = %parse_error_body(&text).code, "server-side copy refused; copying the bytes");
                return Attempt::Done(false);
            }
            if status == StatusCode::BAD_REQUEST {
                let text = resp.text().await.unwrap_or_default();
                if parse_error_body(&text).code == "NotImplemented" {
                    return Attempt::Done(false);
                }
                return crate::remote::http::status_attempt(&what, status, &text, &self.region);
            }
            self.unexpected(&what, resp).await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_encodes_the_key_but_keeps_its_slashes() {
        let loc = S3Location {
            endpoint: "http://localhost:9000".parse().unwrap(),
            bucket: "b".into(),
            prefix: "with space/and+plus".into(),
            region: "us-east-1".into(),
            path_style: true,
            anonymous: false,
            access_key: None,
            secret_key: None,
            session_token: None,
        };
        assert_eq!(
            copy_source(&loc, "data_1_2.s4db"),
            "b/with%20space/and%2Bplus/data_1_2.s4db"
        );
    }
}
