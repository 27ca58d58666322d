//! A real S3 server for tests: s3s-fs in-process on a loopback port, with
//! SigV4 checked, plus a second, unauthenticated server on the same root for
//! anonymous reads, and a fault-injecting layer in front of the real service.
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};

pub const ACCESS_KEY: &str = "s4db-test-access";
pub const SECRET_KEY: &str = "s4db-TEST-secret-0123456789";
pub const BUCKET: &str = "s4db-test";

/// The faults the layer injects, in turn, into a share of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 500 Internal Error.
    Internal,
    /// 503 SlowDown.
    SlowDown,
    /// The connection is closed without an answer.
    Reset,
    /// The answer is held back longer than the client's timeout.
    Stall,
    /// The body stops halfway (the Content-Length promises more).
    Truncate,
    /// A Range GET is answered 200 with the whole object.
    IgnoreRange,
}

pub const KINDS: [Fault; 6] = [
    Fault::Internal,
    Fault::SlowDown,
    Fault::Reset,
    Fault::Stall,
    Fault::Truncate,
    Fault::IgnoreRange,
];

/// Fault settings, shared with the server; changeable while it runs.
#[derive(Debug, Default)]
pub struct Faults {
    /// Faults per thousand requests (0 = none).
    pub per_mille: AtomicU32,
    /// How long a stalled answer waits.
    pub stall_ms: AtomicU64,
    pub requests: AtomicU64,
    pub injected: AtomicU64,
    /// PUTs whose path ends with one of these are applied, then answered 500
    /// (once each): the answer is lost, the write is not.
    pub lose_answer: std::sync::Mutex<Vec<String>>,
    /// Drop `If-None-Match` / `If-Match` from PUTs (a server ignoring conditions).
    pub strip_conditions: std::sync::atomic::AtomicBool,
    /// Added before every answer (models S3's first-byte latency).
    pub delay_ms: AtomicU64,
    /// Injections per kind, in the order of `KINDS`.
    pub by_kind: [AtomicU64; 6],
    seq: AtomicU64,
}

impl Faults {
    pub fn set_rate(&self, per_mille: u32) {
        self.per_mille.store(per_mille, Ordering::SeqCst);
    }

    fn pick(&self, req: &Request<Incoming>) -> Option<Fault> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let rate = self.per_mille.load(Ordering::SeqCst);
        if rate == 0 {
            return None;
        }
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
        x ^= x >> 31;
        if (x % 1000) as u32 >= rate {
            return None;
        }
        let is_get = req.method() == hyper::Method::GET;
        let has_range = req.headers().contains_key("range");
        // Round-robin over the kinds, skipping any that does not apply.
        let cursor = self.injected.fetch_add(1, Ordering::SeqCst) as usize;
        (0..KINDS.len())
            .map(|k| (cursor + k) % KINDS.len())
            .find_map(|i| {
                let kind = KINDS[i];
                let applies = match kind {
                    Fault::Truncate => is_get,
                    Fault::IgnoreRange => has_range,
                    _ => true,
                };
                applies.then(|| {
                    self.by_kind[i].fetch_add(1, Ordering::SeqCst);
                    kind
                })
            })
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// s3s-fs is not atomic where S3 is: it checks a PUT's If-Match /
/// If-None-Match and then writes with no lock in between (two concurrent
/// conditional PUTs can both pass), and a GET reads an object's content and
/// its ETag separately (a GET racing a PUT can pair old content with the new
/// ETag). To test s4db against S3's semantics, this layer runs each PUT alone
/// and lets GETs and HEADs run only between PUTs (a server-side fix; what the
/// client sends is unchanged).
static ATOMIC: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A body that yields its bytes, then fails: the connection is cut midway
/// while the Content-Length header promised more.
struct Truncated(Option<Bytes>, bool);

impl futures::Stream for Truncated {
    type Item = Result<Bytes, s3s::StdError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if let Some(b) = self.0.take() {
            return std::task::Poll::Ready(Some(Ok(b)));
        }
        if !self.1 {
            self.1 = true;
            return std::task::Poll::Ready(Some(Err("injected truncation".into())));
        }
        std::task::Poll::Ready(None)
    }
}

impl s3s::stream::ByteStream for Truncated {}

async fn handle(
    svc: S3Service,
    faults: Arc<Faults>,
    mut req: Request<Incoming>,
) -> Result<Response<s3s::Body>, BoxError> {
    if req.method() == hyper::Method::PUT && faults.strip_conditions.load(Ordering::SeqCst) {
        req.headers_mut().remove("if-none-match");
        req.headers_mut().remove("if-match");
    }
    let delay = faults.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let lose = req.method() == hyper::Method::PUT && {
        let path = req.uri().path().to_string();
        let mut list = faults.lose_answer.lock().unwrap();
        match list
            .iter()
            .position(|suffix| path.ends_with(suffix.as_str()))
        {
            Some(i) => {
                list.remove(i);
                true
            }
            None => false,
        }
    };
    if lose {
        let applied = svc
            .call(req.map(s3s::Body::from))
            .await
            .map_err(|e| -> BoxError { format!("{e:?}").into() })?;
        assert!(
            applied.status().is_success(),
            "the write to lose was refused: {}",
            applied.status()
        );
        return Ok(Response::builder().status(500).body(s3s::Body::from(
            "<Error><Code>InternalError</Code></Error>".to_string(),
        ))?);
    }
    let fault = faults.pick(&req);
    let status = |code: u16, body: &'static str| {
        Ok(Response::builder()
            .status(code)
            .body(s3s::Body::from(body.to_string()))?)
    };
    match fault {
        Some(Fault::Internal) => return status(500, "<Error><Code>InternalError</Code></Error>"),
        Some(Fault::SlowDown) => {
            return status(
                503,
                "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
            );
        }
        Some(Fault::Reset) => return Err("injected connection reset".into()),
        Some(Fault::Stall) => {
            tokio::time::sleep(Duration::from_millis(
                faults.stall_ms.load(Ordering::SeqCst),
            ))
            .await
        }
        Some(Fault::IgnoreRange) => {
            req.headers_mut().remove("range");
        }
        _ => {}
    }
    let (write_guard, read_guard) = match *req.method() {
        hyper::Method::PUT | hyper::Method::POST | hyper::Method::DELETE => {
            (Some(ATOMIC.write().await), None)
        }
        _ => (None, Some(ATOMIC.read().await)),
    };
    let is_get = req.method() == hyper::Method::GET;
    let resp = svc
        .call(req.map(s3s::Body::from))
        .await
        .map_err(|e| -> BoxError { format!("{e:?}").into() })?;
    // s3s streams a GET's body after answering: read it while still between
    // PUTs, so content and ETag belong to the same version.
    let resp = if is_get {
        let (parts, body) = resp.into_parts();
        let full = read_content(&parts, body).await?;
        Response::from_parts(parts, s3s::Body::from(full))
    } else {
        resp
    };
    drop((write_guard, read_guard));
    if fault == Some(Fault::Truncate) {
        let (parts, body) = resp.into_parts();
        let full: Bytes = body.collect().await?.to_bytes();
        if full.len() >= 2 {
            let mut parts = parts;
            parts.headers.insert("content-length", full.len().into());
            let half: s3s::stream::DynByteStream =
                Box::pin(Truncated(Some(full.slice(..full.len() / 2)), false));
            return Ok(Response::from_parts(parts, s3s::Body::from(half)));
        }
        return Ok(Response::from_parts(parts, s3s::Body::from(full)));
    }
    Ok(resp)
}

/// A GET's body, read up to its Content-Length. s3s-fs's body stream goes on
/// reading the file to its end (yielding nothing more), so collecting it to
/// the end would make a 128-byte range GET cost a read of the rest of a
/// 64 MiB segment.
async fn read_content(
    parts: &hyper::http::response::Parts,
    mut body: s3s::Body,
) -> Result<Bytes, BoxError> {
    let want = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let mut buf = bytes::BytesMut::new();
    while want.is_none_or(|w| buf.len() < w) {
        let Some(frame) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame?.into_data() {
            buf.extend_from_slice(&data);
        }
    }
    if let Some(w) = want {
        buf.truncate(w);
    }
    Ok(buf.freeze())
}

/// The servers; stopped when dropped.
pub struct TestS3 {
    /// `http://127.0.0.1:PORT` of the signed server.
    pub endpoint: String,
    /// `http://127.0.0.1:PORT2` of the anonymous server (same data).
    pub anon_endpoint: String,
    /// `http://127.0.0.1:PORT3`: anonymous, and it drops `If-None-Match` and
    /// `If-Match` from PUTs before the real server sees them, like servers
    /// that ignore conditional writes (Garage 2.5).
    pub ignoring_endpoint: String,
    pub faults: Arc<Faults>,
    root: tempfile::TempDir,
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for TestS3 {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn serve(rt: &tokio::runtime::Runtime, svc: S3Service, faults: Arc<Faults>) -> String {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            // Avoid ~40 ms Nagle/delayed-ACK stalls on small answers.
            let _ = socket.set_nodelay(true);
            let (svc, faults) = (svc.clone(), faults.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(svc.clone(), faults.clone(), req));
                let _ = ConnBuilder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

impl TestS3 {
    pub fn start() -> TestS3 {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join(BUCKET)).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let faults = Arc::new(Faults::default());
        faults.stall_ms.store(3_000, Ordering::SeqCst);
        let signed = {
            let fs = s3s_fs::FileSystem::new(root.path()).unwrap();
            let mut b = S3ServiceBuilder::new(fs);
            b.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            b.build()
        };
        let anon = S3ServiceBuilder::new(s3s_fs::FileSystem::new(root.path()).unwrap()).build();
        let endpoint = serve(&rt, signed, faults.clone());
        let anon_endpoint = serve(&rt, anon.clone(), Arc::new(Faults::default()));
        let ignoring = Arc::new(Faults::default());
        ignoring.strip_conditions.store(true, Ordering::SeqCst);
        let ignoring_endpoint = serve(&rt, anon, ignoring);
        TestS3 {
            endpoint,
            anon_endpoint,
            ignoring_endpoint,
            faults,
            root,
            rt: Some(rt),
        }
    }

    /// `s3://BUCKET/PREFIX?endpoint=…&region=us-east-1`.
    pub fn url(&self, prefix: &str) -> String {
        format!(
            "s3://{BUCKET}/{prefix}?endpoint={}&region=us-east-1",
            self.endpoint
        )
    }

    /// The same prefix as a public, read-only http URL (anonymous server).
    pub fn public_url(&self, prefix: &str) -> String {
        format!("{}/{BUCKET}/{prefix}", self.anon_endpoint)
    }

    pub fn credentials() -> s4db::Credentials {
        s4db::Credentials::new(ACCESS_KEY, SECRET_KEY)
    }

    /// The same prefix on a server that ignores conditional writes.
    pub fn ignoring_url(&self, prefix: &str) -> String {
        format!(
            "s3://{BUCKET}/{prefix}?endpoint={}&region=us-east-1&anonymous=true",
            self.ignoring_endpoint
        )
    }

    /// A builder for a local directory attached to `prefix`, with short
    /// timeouts so that injected stalls are noticed quickly.
    pub fn builder(&self, dir: &std::path::Path, prefix: &str) -> s4db::DbBuilder {
        s4db::Db::builder(dir)
            .remote(self.url(prefix))
            .credentials(Self::credentials())
            .remote_options(quick_options())
    }

    /// A builder for `prefix` alone (no local directory), signed, with the
    /// same short timeouts.
    pub fn remote(&self, prefix: &str) -> s4db::DbBuilder {
        s4db::DbBuilder::for_remote(self.url(prefix))
            .credentials(Self::credentials())
            .remote_options(quick_options())
    }

    /// The size of one object.
    pub fn object_size(&self, prefix: &str, name: &str) -> u64 {
        std::fs::metadata(self.object_path(prefix, name))
            .unwrap()
            .len()
    }

    /// Where the server keeps one object's bytes.
    pub fn object_path(&self, prefix: &str, name: &str) -> std::path::PathBuf {
        self.root.path().join(BUCKET).join(prefix).join(name)
    }

    /// Removes one object behind the server's back (a lost object).
    pub fn remove_object(&self, prefix: &str, name: &str) {
        std::fs::remove_file(self.object_path(prefix, name)).unwrap();
    }

    /// Objects under the bucket, by file name.
    pub fn objects(&self, prefix: &str) -> Vec<String> {
        let dir = self.root.path().join(BUCKET).join(prefix);
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.retain(|n| !n.starts_with('.'));
        v.sort();
        v
    }
}

pub fn quick_options() -> s4db::RemoteOptions {
    s4db::RemoteOptions::default()
        .request_timeout(Duration::from_millis(1500))
        .connect_timeout(Duration::from_millis(1000))
        .retries(10)
}

#[allow(unused)]
fn _assert_infallible(_: Infallible) {}
