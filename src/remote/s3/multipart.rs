//! Multipart uploads of objects larger than
//! [`crate::RemoteOptions::multipart_threshold`]: create the upload, send
//! the parts in parallel (each retried on its own), complete it (a 200 may
//! still carry an `<Error>`), and abort it on failure.

use bytes::Bytes;
use futures::StreamExt;
use reqwest::StatusCode;
use rusty_s3::S3Action;
use rusty_s3::actions::{
    AbortMultipartUpload, CompleteMultipartUpload, CreateMultipartUpload, UploadPart,
};

use super::S3Store;
use super::condition;
use crate::error::{Error, Result};
use crate::remote::http::{etag, status_attempt, transport};
use crate::remote::retry::{Attempt, retry};
use crate::remote::xml::{field, parse_error_body, unescape};
use crate::remote::{PutMode, PutOutcome};

impl S3Store {
    pub(super) async fn put_multipart(
        &self,
        key: &str,
        body: Bytes,
        mode: &PutMode,
    ) -> Result<PutOutcome> {
        let k = self.key(key);
        let what = format!("uploading {key} in parts");
        let upload_id = retry(&self.policy, &what, |_| async {
            let url = self.sign(&CreateMultipartUpload::new(
                &self.bucket,
                self.creds.as_ref(),
                &k,
            ));
            let resp = match self
                .client
                .post(url)
                .header("content-length", 0)
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => return transport(&what, e),
            };
            if !resp.status().is_success() {
                return self.unexpected(&what, resp).await;
            }
            match resp.text().await {
                Ok(t) => match CreateMultipartUpload::parse_response(&t) {
                    Ok(r) => Attempt::Done(r.upload_id().to_string()),
                    Err(e) => Attempt::Fail(Error::remote(
                        &what,
                        Some(200),
                        format!("unreadable answer: {e}"),
                    )),
                },
                Err(e) => transport(&what, e),
            }
        })
        .await?;
        let result = self
            .upload_parts_and_complete(key, &k, &upload_id, body, mode)
            .await;
        if !matches!(result, Ok(PutOutcome::Written(_))) {
            let url = self.sign(&AbortMultipartUpload::new(
                &self.bucket,
                self.creds.as_ref(),
                &k,
                &upload_id,
            ));
            if let Err(e) = self
                .client
                .delete(url)
                .header("content-length", 0)
                .send()
                .await
            {
                tracing::warn!(key, error = %e.without_url(), "could not abort a multipart upload");
            }
        }
        result
    }

    async fn upload_parts_and_complete(
        &self,
        key: &str,
        k: &str,
        upload_id: &str,
        body: Bytes,
        mode: &PutMode,
    ) -> Result<PutOutcome> {
        let part_size = self.opts.part_size.max(5 << 20) as usize;
        let parts: Vec<(u16, Bytes)> = body
            .chunks(part_size)
            .enumerate()
            .map(|(i, c)| (i as u16 + 1, body.slice_ref(c)))
            .collect();
        if parts.len() > 10_000 {
            return Err(Error::InvalidArgument(format!(
                "{key} needs more than 10,000 parts; raise the part size"
            )));
        }
        let mut etags: Vec<(u16, String)> = futures::stream::iter(parts)
            .map(|(n, chunk)| async move {
                let what = format!("uploading part {n} of {key}");
                let tag = retry(&self.policy.for_body(chunk.len()), &what, |_| async {
                    let url = self.sign(&UploadPart::new(
                        &self.bucket,
                        self.creds.as_ref(),
                        k,
                        n,
                        upload_id,
                    ));
                    let resp = self
                        .client
                        .put(url)
                        .timeout(self.opts.put_timeout(chunk.len()))
                        .header("content-length", chunk.len())
                        .body(chunk.clone())
                        .send()
                        .await;
                    match resp {
                        Ok(r) if r.status().is_success() => match etag(r.headers()) {
                            Some(t) => Attempt::Done(t),
                            None => Attempt::Fail(Error::remote(
                                &what,
                                Some(200),
                                "the server sent no ETag for the part",
                            )),
                        },
                        Ok(r) => self.unexpected(&what, r).await,
                        Err(e) => transport(&what, e),
                    }
                })
                .await?;
                Ok::<_, Error>((n, tag))
            })
            .buffer_unordered(self.opts.parallelism)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_>>()?;
        etags.sort_by_key(|(n, _)| *n);

        let what = format!("completing the upload of {key}");
        retry(&self.policy, &what, |_| async {
            let mut action = CompleteMultipartUpload::new(
                &self.bucket,
                self.creds.as_ref(),
                k,
                upload_id,
                etags.iter().map(|(_, t)| t.as_str()),
            );
            let cond = condition(mode);
            if let Some((h, v)) = cond {
                action.headers_mut().insert(h, v);
            }
            let mut req = self.client.post(self.sign(&action));
            if let Some((h, v)) = cond {
                req = req.header(h, v);
            }
            let xml = action.body();
            let req = req.header("content-length", xml.len()).body(xml);
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => return transport(&what, e),
            };
            match resp.status() {
                StatusCode::PRECONDITION_FAILED => Attempt::Done(PutOutcome::PreconditionFailed),
                StatusCode::NOT_FOUND if matches!(mode, PutMode::Update(_)) => {
                    Attempt::Done(PutOutcome::PreconditionFailed)
                }
                s if s.is_success() => {
                    let text = match resp.text().await {
                        Ok(t) => t,
                        Err(e) => return transport(&what, e),
                    };
                    // A 200 can carry an <Error> body.
                    let err = parse_error_body(&text);
                    if text.contains("<Error>") || !err.code.is_empty() {
                        return status_attempt(
                            &what,
                            StatusCode::INTERNAL_SERVER_ERROR,
                            &text,
                            &self.region,
                        );
                    }
                    Attempt::Done(PutOutcome::Written(field(&text, "ETag").map(unescape)))
                }
                _ => self.unexpected(&what, resp).await,
            }
        })
        .await
    }
}
