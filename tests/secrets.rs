//! Secrets never appear in Debug output, error messages or logs, even on a
//! 403, and not even with every client-side crate logging at TRACE (issue #6).

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::s3::{ACCESS_KEY, BUCKET, SECRET_KEY, TestS3};
use s4db::Credentials;
use s4db::blocking::Db;

const TOKEN: &str = "SESSION-TOKEN-s3cr3t-7f3a";
const WRONG: &str = "WRONG-secret-key-9q8w";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn no_secret_in_debug_output_errors_or_logs() {
    let logs = Captured::default();
    let sink = logs.clone();
    // Everything the client side logs, at TRACE, reqwest and hyper included.
    // The in-process S3 server's own crates are left out: in a deployment the
    // server is another system (and s3s logs request URIs, which for presigned
    // requests carry the session token, as any S3 server access log does).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "trace,s3s=off,s3s_fs=off",
        ))
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .init();

    let s3 = TestS3::start();
    s3.faults.set_rate(200); // retries and warnings get logged
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut seen = String::new();

    // A successful session through faults, with a secret key.
    let db = s3.builder(a.path(), "sec").open_blocking().unwrap();
    db.put_many((0..200).map(|i| (common::key_for(i), common::value_for(i, 40))))
        .unwrap();
    db.upload().unwrap();
    seen.push_str(&format!("{db:?} {:?}", db.stats().unwrap()));

    // A 403: a wrong secret, and a session token the server does not know.
    s3.faults.set_rate(0);
    let creds = Credentials::new(ACCESS_KEY, WRONG).with_session_token(TOKEN);
    let builder = Db::builder(b.path())
        .remote(s3.url("sec"))
        .credentials(creds.clone())
        .remote_options(common::s3::quick_options());
    seen.push_str(&format!("{builder:?} {creds:?}"));
    let err = builder.open_blocking().unwrap_err();
    seen.push_str(&format!("{err} {err:?}"));
    assert!(
        matches!(
            err,
            s4db::Error::Remote {
                status: Some(403),
                ..
            }
        ),
        "{err}"
    );
    let err = Db::open_remote(format!(
        "s3://{BUCKET}/sec?endpoint={}&anonymous=true",
        s3.endpoint
    ))
    .unwrap_err();
    seen.push_str(&format!("{err} {err:?}"));

    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        logs.contains("hyper_util::client") && logs.contains("s4db::"),
        "the client's and s4db's own logs were captured ({} bytes)",
        logs.len()
    );
    for secret in [SECRET_KEY, WRONG, TOKEN] {
        assert!(
            !seen.contains(secret),
            "{secret} in Debug or error output: {seen}"
        );
        if let Some(at) = logs.find(secret) {
            panic!(
                "{secret} in the logs: …{}…",
                &logs[at.saturating_sub(300)..(at + 100).min(logs.len())]
            );
        }
    }
}
