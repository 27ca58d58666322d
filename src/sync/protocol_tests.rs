//! The sync protocol (FORMAT.md §10.2–§10.3) against an in-memory store
//! (`remote/mem_store.rs`), without a server: a lost answer to the commit,
//! two writers racing, a segment that vanishes under a reader. The same
//! cases also run against a real S3 server in `tests/remote_s3.rs`.

use std::sync::Arc;

use crate::blocking::Db;
use crate::error::Error;
use crate::remote::mem_store::MemStore;
use crate::sync::upload::UploadOptions;

const URL: &str = "file:///s4db-memory/protocol";

fn open(dir: &std::path::Path, store: &Arc<MemStore>) -> Db {
    Db::builder(dir)
        .remote(URL)
        .object_store(store.clone())
        .open_blocking()
        .unwrap()
}

#[test]
fn a_commit_whose_answer_was_lost_is_recognised_as_landed() {
    let store = Arc::new(MemStore::default());
    let d = tempfile::tempdir().unwrap();
    let db = open(d.path(), &store);
    db.put("k", "v").unwrap();
    store.lose_next_answer("index.idx");
    let report = db.upload().unwrap();
    assert_eq!(report.segments_uploaded, 1);
    // The next upload is not a false conflict either.
    db.put("k2", "v2").unwrap();
    db.upload().unwrap();
    let reader = tempfile::tempdir().unwrap();
    let copy = open(reader.path(), &store);
    copy.download().unwrap();
    assert_eq!(copy.get("k2").unwrap().as_deref(), Some(&b"v2"[..]));
}

#[test]
fn of_two_racing_writers_the_second_conflicts_then_rebases_losing_nothing() {
    let store = Arc::new(MemStore::default());
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let w1 = open(a.path(), &store);
    w1.put("base", "0").unwrap();
    w1.upload().unwrap();
    let w2 = open(b.path(), &store);
    w2.download().unwrap();
    w1.put("from-1", "1").unwrap();
    w2.put("from-2", "2").unwrap();
    w1.upload().unwrap();
    assert!(matches!(w2.upload(), Err(Error::Conflict(_))));
    let r = w2
        .upload_with(UploadOptions::default().rebase(true))
        .unwrap();
    assert_eq!(r.rebased, 1);
    let c = tempfile::tempdir().unwrap();
    let check = open(c.path(), &store);
    check.download().unwrap();
    for (k, v) in [("base", "0"), ("from-1", "1"), ("from-2", "2")] {
        assert_eq!(check.get(k).unwrap().as_deref(), Some(v.as_bytes()), "{k}");
    }
}

#[test]
fn a_segment_gone_from_the_remote_is_a_clear_error_for_a_reader_through_it() {
    let store = Arc::new(MemStore::default());
    let d = tempfile::tempdir().unwrap();
    let db = open(d.path(), &store);
    db.put("k", "v").unwrap();
    db.upload().unwrap();
    // A directory that reads through the remote (index only, no segments).
    let r = tempfile::tempdir().unwrap();
    let reader = open(r.path().join("through").as_path(), &store);
    assert_eq!(reader.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    for key in store.keys().into_iter().filter(|k| k.starts_with("data_")) {
        store.remove(&key);
    }
    let err = Db::builder(r.path().join("again"))
        .remote(URL)
        .object_store(store.clone())
        .open_blocking()
        .unwrap()
        .get("k")
        .unwrap_err();
    assert!(err.to_string().contains("data_"), "{err}");
}

#[test]
fn an_ingest_that_loses_a_race_builds_its_root_again_on_the_winner() {
    let store = Arc::new(MemStore::default());
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let writer = open(a.path(), &store);
    writer.put("base", "0").unwrap();
    writer.upload().unwrap();
    let first = store.bytes_of("index.idx").unwrap();
    // Another writer's commit, taken aside: the remote is put back to the
    // first commit, and that commit lands again while the ingest commits.
    writer.put("racer", "1").unwrap();
    writer.upload().unwrap();
    let their_root = store.bytes_of("index.idx").unwrap();
    store.replace("index.idx", first);
    let shard = Db::open(b.path()).unwrap();
    shard.put("shard", "s").unwrap();
    shard
        .stage(
            crate::DbBuilder::for_remote(URL).object_store(store.clone()),
            "s1",
        )
        .unwrap();
    store.overtake_next_put("index.idx", their_root);
    let r = crate::DbBuilder::for_remote(URL)
        .object_store(store.clone())
        .ingest_blocking(["s1"])
        .unwrap();
    assert_eq!(r.rebased, 1, "{r:?}");
    let check = open(c.path(), &store);
    check.download().unwrap();
    for (k, v) in [("base", "0"), ("racer", "1"), ("shard", "s")] {
        assert_eq!(check.get(k).unwrap().as_deref(), Some(v.as_bytes()), "{k}");
    }
    assert!(check.verify().unwrap().is_ok());
}
