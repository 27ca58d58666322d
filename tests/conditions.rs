//! Servers that ignore conditional writes: detected, unsafe commits refused,
//! single-writer mode offered (issue #8). The "ignoring" server is s3s-fs
//! behind a layer that drops If-None-Match / If-Match from PUTs, as Garage 2.5
//! does; the same suite's positive cases run against s3s-fs itself.

mod common;

use assert_cmd::Command;
use common::s3::TestS3;
use common::{contents, key_for, value_for};
use s4db::blocking::Db;
use s4db::{Error, GcOptions, UploadOptions};

fn open(dir: &std::path::Path, url: &str) -> Db {
    Db::builder(dir)
        .remote(url)
        .remote_options(common::s3::quick_options())
        .open_blocking()
        .unwrap()
}

#[test]
fn an_upload_to_a_server_ignoring_conditions_is_refused_and_says_why() {
    let s3 = TestS3::start();
    let a = tempfile::tempdir().unwrap();
    let db = open(a.path(), &s3.ignoring_url("ign"));
    db.put("k", "v").unwrap();
    let err = db.upload().unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Remote { .. }), "{text}");
    assert!(
        text.contains("conditional") && text.contains("single-writer"),
        "{text}"
    );
    assert!(
        s3.objects("ign").iter().all(|o| o != "index.idx"),
        "nothing was committed"
    );
    assert!(
        s3.objects("ign")
            .iter()
            .all(|o| !o.starts_with("s4db-probe")),
        "the probe cleaned up"
    );
    // The answer is remembered: the next attempt does not probe again.
    let state = std::fs::read_to_string(a.path().join("remote.state")).unwrap();
    assert!(state.contains("conditions ignored"), "{state}");
    assert!(db.upload().unwrap_err().to_string().contains("conditional"));
    // gc, which also commits the index, is refused too.
    assert!(
        db.gc(std::time::Duration::ZERO)
            .unwrap_err()
            .to_string()
            .contains("conditional")
    );
}

#[test]
fn single_writer_mode_uploads_and_round_trips_on_such_a_server() {
    let s3 = TestS3::start();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = s3.ignoring_url("single");
    let db = open(a.path(), &url);
    db.put_many((0..300).map(|i| (key_for(i), value_for(i, 40))))
        .unwrap();
    let single = UploadOptions::default().single_writer(true);
    db.upload_with(single).unwrap();
    db.put("later", "write").unwrap();
    assert_eq!(db.upload_with(single).unwrap().segments_uploaded, 1);
    let copy = open(b.path(), &url);
    copy.download().unwrap();
    assert_eq!(contents(&copy), contents(&db));
    // Compaction, then single-writer gc: obsolete segments of this writer go.
    db.compact_with(s4db::CompactOptions::default().full(true))
        .unwrap();
    db.upload_with(single).unwrap();
    let gc = db
        .gc_with(
            GcOptions::default()
                .grace(std::time::Duration::ZERO)
                .single_writer(true),
        )
        .unwrap();
    assert!(gc.obsolete_deleted >= 1, "{gc:?}");
}

#[test]
fn the_pre_commit_re_read_catches_a_concurrent_commit_in_single_writer_mode() {
    let s3 = TestS3::start();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = s3.ignoring_url("race");
    let single = UploadOptions::default().single_writer(true);
    let w1 = open(a.path(), &url);
    w1.put("base", "0").unwrap();
    w1.upload_with(single).unwrap();
    let w2 = open(b.path(), &url);
    w2.download().unwrap();
    w1.put("w1", "1").unwrap();
    w1.upload_with(single).unwrap();
    w2.put("w2", "2").unwrap();
    let err = w2.upload_with(single).unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    // Nothing of w1's commit was lost.
    let c = tempfile::tempdir().unwrap();
    let check = open(c.path(), &url);
    check.download().unwrap();
    assert_eq!(check.get("w1").unwrap().unwrap(), "1");
    // And rebase works in this mode too.
    w2.upload_with(single.rebase(true)).unwrap();
    check.download().unwrap();
    assert_eq!(check.get("w2").unwrap().unwrap(), "2");
    assert_eq!(check.get("w1").unwrap().unwrap(), "1");
}

#[test]
fn a_server_that_enforces_conditions_passes_the_probe() {
    let s3 = TestS3::start();
    let a = tempfile::tempdir().unwrap();
    let db = s3.builder(a.path(), "enf").open_blocking().unwrap();
    db.put("k", "v").unwrap();
    db.upload().unwrap();
    let state = std::fs::read_to_string(a.path().join("remote.state")).unwrap();
    assert!(state.contains("conditions enforced"), "{state}");
    assert!(
        s3.objects("enf")
            .iter()
            .all(|o| !o.starts_with("s4db-probe"))
    );
}

#[test]
fn the_cli_refuses_with_exit_5_and_single_writer_works() {
    let s3 = TestS3::start();
    let a = tempfile::tempdir().unwrap();
    let url = s3.ignoring_url("cli");
    let s4db = || {
        let mut c = Command::cargo_bin("s4db").unwrap();
        c.arg("-q")
            .arg("--dir")
            .arg(a.path())
            .arg("--remote")
            .arg(&url);
        c
    };
    s4db().args(["put", "k", "v"]).assert().success();
    let out = s4db().arg("upload").output().unwrap();
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("s4db: error:") && err.contains("conditional"),
        "{err}"
    );
    s4db()
        .args(["upload", "--single-writer"])
        .assert()
        .success();
    s4db()
        .args(["gc", "--single-writer", "--grace", "0"])
        .assert()
        .success();
}
