//! Databases written by earlier releases keep opening (FORMAT.md §8).
//!
//! `tests/fixtures/v1-plain/` was written by s4db with FORMAT.md version 1
//! before selective compaction existed: a full compaction run, later
//! segments, and writes after the last `index.idx` (replayed at open).
//! `tests/fixtures/v1-selective/` adds a selective compaction run (segment
//! flag `0x4`). Both hold the state [`expected`] computes. The fixtures are
//! committed bytes: they are never rewritten by the tests, which work on
//! copies. They were written by `write_fixtures` at commit 07ac0cb, the last
//! version-1 writer; run today, it writes version-2 databases (FORMAT.md §8),
//! so it stays ignored and is kept to show how the fixtures came about.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use s4db::CompactOptions;
use s4db::blocking::Db;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn key(i: u32) -> String {
    format!("k{i:03}")
}

fn value(i: u32, round: u32) -> String {
    format!("value {i} of round {round} ").repeat(1 + (i % 4) as usize)
}

/// The writes, in order; `selective` adds a selective compaction and what
/// precedes it.
fn write(dir: &Path, selective: bool) {
    let db = Db::builder(dir)
        .max_segment_size(4096)
        .open_blocking()
        .unwrap();
    for i in 0..300 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    for i in (0..300).step_by(3) {
        db.put(key(i), value(i, 1)).unwrap();
    }
    db.compact_with(CompactOptions::default().full(true))
        .unwrap();
    for i in (0..300).step_by(7) {
        db.delete(key(i)).unwrap();
    }
    if selective {
        // The first keys rewritten twice: the run's first segments die.
        for round in 2..4 {
            for i in 0..60 {
                db.put(key(i), value(i, round)).unwrap();
            }
        }
        let r = db.compact().unwrap();
        assert!(r.segments_rewritten > 0 && r.segments_rewritten < r.segments_before);
    }
    db.checkpoint().unwrap();
    // After the last index.idx: replayed by every open.
    for i in 300..320 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    db.delete(key(1)).unwrap();
    db.flush().unwrap();
    // Dropped without close: the tail stays unindexed.
    std::mem::forget(db);
}

/// The state the fixture holds.
fn expected(selective: bool) -> BTreeMap<Vec<u8>, Vec<u8>> {
    expected_at(selective, true)
}

/// The state the fixture holds, with or without the writes made after its
/// last `index.idx`.
fn expected_at(selective: bool, tail: bool) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    for i in 0..300 {
        m.insert(key(i), value(i, 0));
    }
    for i in (0..300).step_by(3) {
        m.insert(key(i), value(i, 1));
    }
    for i in (0..300).step_by(7) {
        m.remove(&key(i));
    }
    if selective {
        for i in 0..60 {
            m.insert(key(i), value(i, 3));
        }
    }
    if tail {
        for i in 300..320 {
            m.insert(key(i), value(i, 0));
        }
        m.remove(&key(1));
    }
    m.into_iter()
        .map(|(k, v)| (k.into_bytes(), v.into_bytes()))
        .collect()
}

const FIXTURES: [(&str, bool); 2] = [("v1-plain", false), ("v1-selective", true)];

#[test]
#[ignore = "wrote the version-1 fixtures at 07ac0cb; this version writes version 2"]
fn write_fixtures() {
    for (name, selective) in FIXTURES {
        let dir = fixture(name);
        let _ = std::fs::remove_dir_all(&dir);
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), selective);
        std::fs::create_dir_all(&dir).unwrap();
        for f in std::fs::read_dir(tmp.path()).unwrap() {
            let f = f.unwrap();
            let n = f.file_name().to_string_lossy().into_owned();
            if n.starts_with("data_") || n == "index.idx" {
                std::fs::copy(f.path(), dir.join(&n)).unwrap();
            }
        }
    }
}

/// A copy of fixture `name` in a new temporary directory.
fn copy_of(name: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    common::crash_image(&fixture(name), t.path());
    t
}

#[test]
fn version_1_databases_open_read_only_with_every_key_and_verify_clean() {
    for (name, selective) in FIXTURES {
        let d = copy_of(name);
        let db = Db::builder(d.path())
            .read_only(true)
            .open_blocking()
            .unwrap();
        assert_eq!(common::contents(&db), expected(selective), "{name}");
        assert!(db.verify().unwrap().is_ok(), "{name}");
    }
}

#[test]
fn version_1_databases_take_writes_compact_and_rebuild() {
    for (name, selective) in FIXTURES {
        let d = copy_of(name);
        let mut want = expected(selective);
        let db = Db::open(d.path()).unwrap();
        db.put("new", "write").unwrap();
        want.insert(b"new".to_vec(), b"write".to_vec());
        db.compact().unwrap();
        assert_eq!(common::contents(&db), want, "{name}");
        let r = db.rebuild_index().unwrap();
        assert!(r.skipped.is_empty() && r.torn_tail.is_none(), "{name}");
        assert_eq!(common::contents(&db), want, "{name}");
        db.close().unwrap();
        let db = Db::open(d.path()).unwrap();
        assert_eq!(common::contents(&db), want, "{name}");
    }
}

#[test]
fn version_1_databases_rebuild_from_their_segments_alone() {
    for (name, selective) in FIXTURES {
        let d = copy_of(name);
        std::fs::remove_file(d.path().join(s4db::INDEX_FILE_NAME)).unwrap();
        let db = Db::builder(d.path())
            .rebuild_index(true)
            .open_blocking()
            .unwrap();
        assert_eq!(common::contents(&db), expected(selective), "{name}");
    }
}

#[test]
fn version_1_databases_read_as_a_remote_with_no_local_copy() {
    for (name, selective) in FIXTURES {
        let d = copy_of(name);
        let url = format!("file://{}", d.path().display());
        let db = Db::open_remote(&url).unwrap();
        // A remote reader sees the committed index.idx, without the writes
        // made after it.
        assert_eq!(
            common::contents(&db),
            expected_at(selective, false),
            "{name}"
        );
    }
}

/// Whether `dir/index.idx` is a version-2 root (FORMAT.md §4.8).
fn is_root(dir: &Path) -> bool {
    let b = std::fs::read(dir.join(s4db::INDEX_FILE_NAME)).unwrap();
    b[..8] == *b"S4DBIDX\0" && b[8..10] == [2, 0]
}

#[test]
fn the_first_index_write_upgrades_a_version_1_database_keeping_its_index_as_the_base_run() {
    for (name, selective) in FIXTURES {
        let d = copy_of(name);
        let old_index = std::fs::read(d.path().join(s4db::INDEX_FILE_NAME)).unwrap();
        let db = Db::open(d.path()).unwrap();
        assert_eq!(common::contents(&db), expected(selective), "{name}");
        db.close().unwrap();
        assert!(is_root(d.path()), "{name}: closing wrote a root");
        let runs = common::run_files(d.path());
        assert!(
            runs.iter().any(|r| std::fs::read(r).unwrap() == old_index),
            "{name}: the version-1 index is the base run, byte for byte"
        );
        let db = Db::open(d.path()).unwrap();
        assert_eq!(common::contents(&db), expected(selective), "{name}");
        assert!(db.verify().unwrap().is_ok(), "{name}");
    }
}

#[test]
fn a_version_1_remote_downloads_and_an_upload_upgrades_it() {
    for (name, selective) in FIXTURES {
        let remote = copy_of(name);
        // A remote holds segments as committed: cut the writes made after
        // index.idx (FORMAT.md §4.3: indexed_len of each table entry).
        let idx = std::fs::read(remote.path().join(s4db::INDEX_FILE_NAME)).unwrap();
        let count = u32::from_le_bytes(idx[56..60].try_into().unwrap()) as usize;
        for e in idx[96..96 + 32 * count].chunks(32) {
            let id = s4db::SegmentId {
                number: u64::from_le_bytes(e[0..8].try_into().unwrap()),
                writer: u64::from_le_bytes(e[8..16].try_into().unwrap()),
            };
            let len = u64::from_le_bytes(e[16..24].try_into().unwrap());
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(remote.path().join(id.file_name()))
                .unwrap();
            f.set_len(len).unwrap();
        }
        let url = format!("file://{}", remote.path().display());
        let committed = expected_at(selective, false);
        let local = tempfile::tempdir().unwrap();
        let db = Db::builder(local.path())
            .remote(&url)
            .open_blocking()
            .unwrap();
        db.download().unwrap();
        assert_eq!(common::contents(&db), committed, "{name}");
        assert!(
            is_root(local.path()),
            "{name}: the download is kept as version 2"
        );
        db.put("after", "upgrade").unwrap();
        let up = db.upload().unwrap();
        assert!(up.runs_uploaded >= 1, "{name}: {up:?}");
        assert!(
            is_root(remote.path()),
            "{name}: the remote is version 2 now"
        );
        let mut want = committed.clone();
        want.insert(b"after".to_vec(), b"upgrade".to_vec());
        let cold = Db::open_remote(&url).unwrap();
        assert_eq!(common::contents(&cold), want, "{name}");
        assert!(cold.verify().unwrap().is_ok(), "{name}");
    }
}
