//! A throwaway S3 server on loopback, for trying s4db against S3 without an
//! account and for `benches/compare/run.sh`: s3s-fs (SigV4 checked,
//! conditional writes, range GETs, multipart) in a temporary directory, the
//! same server the tests use (`tests/common/s3.rs`), with no faults injected.
//!
//! ```text
//! cargo run --release --example s3_test_server
//! ```
//!
//! Prints one line, `ENDPOINT BUCKET ACCESS_KEY SECRET_KEY PUBLIC_ENDPOINT`
//! (test credentials, valid for this server only; PUBLIC_ENDPOINT serves the
//! same bucket to unsigned GETs, as a public bucket or a CDN does), then
//! serves until it is killed. The data is
//! removed when it stops with Ctrl-C; with SIGKILL the temporary directory
//! stays behind.

use std::io::Write;

#[path = "../tests/common/s3.rs"]
mod s3;

fn main() {
    let server = s3::TestS3::start();
    println!(
        "{} {} {} {} {}",
        server.endpoint,
        s3::BUCKET,
        s3::ACCESS_KEY,
        s3::SECRET_KEY,
        server.anon_endpoint
    );
    let _ = std::io::stdout().flush();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    if let Ok(rt) = rt {
        // Ctrl-C (or SIGINT from a script) drops the server and its directory.
        let _ = rt.block_on(tokio::signal::ctrl_c());
    } else {
        loop {
            std::thread::park();
        }
    }
    drop(server);
}
