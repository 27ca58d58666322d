//! Remote operations end in bounded time with an error that names the host:
//! a server that accepts connections but never answers, a port where
//! nothing listens, a TLS mismatch.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use common::cli::{fails, s4db};

/// A server on loopback that hands every connection it accepts to
/// `on_connection`; its thread ends after `life`.
fn server(
    life: Duration,
    mut on_connection: impl FnMut(std::net::TcpStream) + Send + 'static,
) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let end = Instant::now() + life;
        while Instant::now() < end {
            match l.accept() {
                Ok((s, _)) => on_connection(s),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    addr
}

/// A server that accepts every connection and never answers.
fn silent_server(life: Duration) -> SocketAddr {
    let mut held = Vec::new();
    server(life, move |s| held.push(s))
}

/// A server that answers every connection with plain HTTP bytes, so a TLS
/// client's handshake fails.
fn plain_http_server(life: Duration) -> SocketAddr {
    server(life, |mut s| {
        let mut buf = [0u8; 512];
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn remote_only(url: &str) -> Command {
    let mut c = Command::cargo_bin("s4db").unwrap();
    c.env_remove("AWS_ACCESS_KEY_ID")
        .args(["-q", "--remote", url]);
    c
}

#[test]
fn the_default_timeouts_are_bounded() {
    let o = s4db::RemoteOptions::default();
    assert_eq!(o.request_timeout, Duration::from_secs(30));
    assert_eq!(o.operation_timeout, Duration::from_secs(120));
}

#[test]
fn a_server_that_never_answers_fails_a_get_within_the_timeout_naming_the_host() {
    let addr = silent_server(Duration::from_secs(60));
    let url = format!("s3://bkt/db?endpoint=http://{addr}");
    let t = Instant::now();
    let err = fails(remote_only(&url).args(["--timeout", "3", "get", "k"]), 5);
    let took = t.elapsed();
    assert!(took < Duration::from_secs(15), "took {took:?}: {err}");
    assert!(err.contains(&addr.to_string()), "{err}");
    // The environment sets it too.
    let t = Instant::now();
    fails(
        remote_only(&url)
            .env("S4DB_TIMEOUT", "2")
            .args(["get", "k"]),
        5,
    );
    assert!(t.elapsed() < Duration::from_secs(15));
}

#[test]
fn an_upload_to_a_server_that_never_answers_ends_and_releases_the_directory() {
    let addr = silent_server(Duration::from_secs(60));
    let url = format!("s3://bkt/db?endpoint=http://{addr}");
    let d = tempfile::tempdir().unwrap();
    s4db(d.path()).args(["put", "k", "v"]).assert().success();
    let t = Instant::now();
    let err = fails(
        s4db(d.path()).args(["--remote", &url, "--timeout", "3", "upload"]),
        5,
    );
    assert!(t.elapsed() < Duration::from_secs(20), "{err}");
    assert!(err.contains(&addr.to_string()), "{err}");
    s4db(d.path()).args(["put", "k2", "v2"]).assert().success();
}

#[test]
fn a_refused_connection_fails_within_seconds() {
    let port = free_port();
    let url = format!("s3://bkt/db?endpoint=http://127.0.0.1:{port}");
    let t = Instant::now();
    let err = fails(remote_only(&url).args(["get", "k"]), 5);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "{:?}: {err}",
        t.elapsed()
    );
    assert!(
        err.contains("refused") && err.contains(&port.to_string()),
        "{err}"
    );
}

#[test]
fn a_tls_failure_is_told_apart_from_a_refused_connection() {
    let addr = plain_http_server(Duration::from_secs(60));
    let url = format!("https://{addr}/db");
    let t = Instant::now();
    let err = fails(remote_only(&url).args(["get", "k"]), 5);
    assert!(t.elapsed() < Duration::from_secs(10), "{err}");
    assert!(err.contains("TLS") && !err.contains("refused"), "{err}");
}
