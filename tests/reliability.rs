//! Reliability suites (issue #6): concurrent writers on one remote prefix,
//! readers during maintenance, and hostile files through the CLI.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use assert_cmd::Command;
use common::s3::TestS3;
use common::{Xorshift, key_for, value_for};
use s4db::blocking::Db;
use s4db::{Error, UploadOptions};

#[test]
fn eight_writers_on_one_s3_prefix_lose_no_committed_key() {
    let s3 = TestS3::start();
    eight_writers(|dir| s3.builder(dir, "shared"));
}

#[test]
fn eight_writers_on_one_file_remote_lose_no_committed_key() {
    let remote = tempfile::tempdir().unwrap();
    let url = format!("file://{}", remote.path().display());
    eight_writers(|dir| Db::builder(dir).remote(&url));
}

/// 8 writers, each with its own directory, upload disjoint keys over 4
/// rounds to one remote; a fresh download must hold every committed key.
fn eight_writers(open: impl Fn(&std::path::Path) -> s4db::DbBuilder + Sync) {
    let dirs: Vec<tempfile::TempDir> = (0..8).map(|_| tempfile::tempdir().unwrap()).collect();
    let committed = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let conflicts = Arc::new(AtomicU64::new(0));
    std::thread::scope(|s| {
        for (w, dir) in dirs.iter().enumerate() {
            let (open, committed, conflicts) = (&open, committed.clone(), conflicts.clone());
            s.spawn(move || {
                let db = open(dir.path()).open_blocking().unwrap();
                for round in 0..4 {
                    let keys: Vec<(String, String)> = (0..25)
                        .map(|i| {
                            (
                                format!("w{w}-r{round}-{i:02}"),
                                format!("value {w}/{round}/{i}"),
                            )
                        })
                        .collect();
                    db.put_many(keys.iter().map(|(k, v)| (k, v))).unwrap();
                    // Upload until committed; every failure must be a conflict.
                    loop {
                        match db.upload_with(UploadOptions::default().rebase(true)) {
                            Ok(r) => {
                                conflicts.fetch_add(u64::from(r.rebased), Ordering::Relaxed);
                                break;
                            }
                            Err(Error::Conflict(_)) => {
                                conflicts.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => panic!("writer {w}: {e}"),
                        }
                    }
                    committed.lock().unwrap().extend(keys);
                }
            });
        }
    });
    let fresh = tempfile::tempdir().unwrap();
    let check = open(fresh.path()).open_blocking().unwrap();
    check.download().unwrap();
    let committed = committed.lock().unwrap();
    assert_eq!(committed.len(), 8 * 4 * 25);
    for (k, v) in committed.iter() {
        assert_eq!(
            check.get(k).unwrap().as_deref(),
            Some(v.as_bytes()),
            "{k} lost"
        );
    }
    assert_eq!(check.len(), committed.len() as u64);
    assert!(
        conflicts.load(Ordering::Relaxed) > 0,
        "the writers never raced: the test proved nothing"
    );
}

#[test]
fn readers_keep_working_while_another_handle_compacts_uploads_and_collects() {
    let s3 = TestS3::start();
    let a = tempfile::tempdir().unwrap();
    let writer = s3
        .builder(a.path(), "maint")
        .max_segment_size(16 << 10)
        .open_blocking()
        .unwrap();
    writer
        .put_many((0..500).map(|i| (key_for(i), value_for(i, 50))))
        .unwrap();
    writer.upload().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (gets, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let reader = {
        let (url, stop, gets, failures) = (
            s3.public_url("maint"),
            stop.clone(),
            gets.clone(),
            failures.clone(),
        );
        std::thread::spawn(move || {
            let db = Db::open_remote(url).unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) || gets.load(Ordering::Relaxed) < 300 {
                i = (i * 7 + 13) % 500;
                match db.get(key_for(i)) {
                    Ok(Some(v)) if v == value_for(i, 50) => {}
                    other => {
                        eprintln!("reader: key {i}: {other:?}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                gets.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    for _ in 0..3 {
        writer
            .put_many((0..500).step_by(5).map(|i| (key_for(i), value_for(i, 50))))
            .unwrap();
        writer
            .compact_with(s4db::CompactOptions::default().full(true))
            .unwrap();
        writer.upload().unwrap();
        writer.gc(std::time::Duration::from_secs(3600)).unwrap(); // within the grace period: nothing goes
    }
    // After the grace period the old segments go; the reader reloads on 404.
    writer.gc(std::time::Duration::ZERO).unwrap();
    let before = gets.load(Ordering::Relaxed);
    while gets.load(Ordering::Relaxed) < before + 300 {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "of {} gets",
        gets.load(Ordering::Relaxed)
    );
}

fn s4db(dir: &std::path::Path) -> Command {
    let mut c = Command::cargo_bin("s4db").unwrap();
    c.arg("-q").arg("--dir").arg(dir);
    c
}

/// A closed database of a few hundred keys.
fn sample() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let db = Db::builder(d.path())
        .max_segment_size(8 << 10)
        .open_blocking()
        .unwrap();
    db.put_many((0..300).map(|i| (key_for(i), value_for(i, 60))))
        .unwrap();
    db.close().unwrap();
    d
}

fn exits_4_cleanly(c: &mut Command, what: &str) {
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(4), "{what}: {err}");
    assert!(
        err.starts_with("s4db: error: corruption") && err.lines().count() == 1,
        "{what}: {err}"
    );
}

#[test]
fn hostile_files_through_the_cli_exit_4_with_a_clear_message() {
    let mut rng = Xorshift::new(0x1234_5678_9abc_def1);
    let mut junk = |n: usize| -> Vec<u8> { (0..n).map(|_| rng.next_u64() as u8).collect() };
    // Random bytes in place of index.idx, of several sizes.
    for n in [0usize, 10, 96, 5000, 100_000] {
        let d = sample();
        fs::write(d.path().join("index.idx"), junk(n)).unwrap();
        exits_4_cleanly(
            s4db(d.path()).args(["get", "key00000001"]),
            &format!("junk index of {n} bytes"),
        );
    }
    // Random bytes in place of a segment the index lists.
    let d = sample();
    let seg = common::segment_files(d.path())[0].clone();
    let len = fs::metadata(&seg).unwrap().len() as usize;
    fs::write(&seg, junk(len)).unwrap();
    exits_4_cleanly(s4db(d.path()).args(["get", "key00000001"]), "junk segment");
    // A truncated index and a truncated segment.
    let d = sample();
    let idx = d.path().join("index.idx");
    let bytes = fs::read(&idx).unwrap();
    fs::write(&idx, &bytes[..bytes.len() / 2]).unwrap();
    exits_4_cleanly(s4db(d.path()).arg("keys"), "truncated index");
    let d = sample();
    let seg = common::segment_files(d.path())[0].clone();
    let b = fs::read(&seg).unwrap();
    fs::write(&seg, &b[..b.len() / 2]).unwrap();
    exits_4_cleanly(s4db(d.path()).arg("verify"), "truncated sealed segment");
    // An index whose directory points past the end, with every checksum valid.
    let d = sample();
    let idx = d.path().join("index.idx");
    let mut b = fs::read(&idx).unwrap();
    let huge = (b.len() as u64 * 4).to_le_bytes();
    let dir = u64::from_le_bytes(b[64..72].try_into().unwrap()) as usize;
    b[dir + 8..dir + 16].copy_from_slice(&huge); // second directory entry, past the end
    let page_count = u32::from_le_bytes(b[60..64].try_into().unwrap()) as usize;
    let n = (page_count + 1) * 8;
    let crc = crc32c::crc32c(&b[dir..dir + n]);
    b[dir + n..dir + n + 4].copy_from_slice(&crc.to_le_bytes());
    fs::write(&idx, &b).unwrap();
    exits_4_cleanly(
        s4db(d.path()).args(["get", "key00000001"]),
        "directory past the end",
    );
}
