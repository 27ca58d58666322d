//! Databases written by earlier releases keep opening (FORMAT.md §8).
//!
//! `tests/fixtures/v1-plain/` was written by s4db with FORMAT.md version 1
//! before selective compaction existed: a full compaction run, later
//! segments, and writes after the last `index.idx` (replayed at open).
//! `tests/fixtures/v1-selective/` adds a selective compaction run (segment
//! flag `0x4`). Both hold the state [`expected`] computes. The fixtures are
//! committed bytes: they are never rewritten by the tests, which work on
//! copies. `cargo test --test format_fixtures -- --ignored write_fixtures`
//! writes them again (only for a deliberate change, with a FORMAT.md note).

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
#[ignore = "writes the fixtures again: only for a deliberate format change"]
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
