//! Building one database from shards: stage, then ingest in one commit
//! (FORMAT.md §10.11), against a real S3 server on loopback.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::s3::TestS3;
use common::{contents, key_for, value_for};
use s4db::blocking::Db;
use s4db::{DbBuilder, Error};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A shard built from scratch in `dir` (no remote), in small segments,
/// holding `keys` with values tagged by `tag`.
fn shard(dir: &std::path::Path, keys: impl IntoIterator<Item = u64>, tag: &str) -> Db {
    let db = Db::builder(dir)
        .max_segment_size(8 << 10)
        .open_blocking()
        .unwrap();
    let pairs: Vec<(String, String)> = keys
        .into_iter()
        .map(|i| (key_for(i), format!("{tag}:{}", i)))
        .collect();
    for chunk in pairs.chunks(100) {
        db.put_many(chunk.iter().map(|(k, v)| (k, v))).unwrap();
    }
    db
}

#[test]
fn shards_ingested_read_back_as_their_union_with_the_later_shard_winning_everywhere() {
    let s3 = TestS3::start();
    let dirs: Vec<_> = (0..3).map(|_| tmp()).collect();
    // Shards a, b, c; 150..200 is in all three, 90..100 in a and b.
    let a = shard(dirs[0].path(), 0..100, "a");
    let b = shard(dirs[1].path(), (90..200).chain(300..400), "b");
    let c = shard(dirs[2].path(), 150..260, "c");
    for (db, name) in [(&a, "part-a"), (&b, "part-b"), (&c, "part-c")] {
        let r = db.stage(s3.remote("built"), name).unwrap();
        assert!(r.segments_uploaded >= 1 && r.runs_uploaded >= 1, "{r:?}");
        assert_eq!(r.keys, db.len());
    }
    // Staged: nothing committed yet.
    assert!(matches!(
        s3.remote("built").open_blocking(),
        Err(Error::NotFound(_))
    ));
    // Ingest in the order a, c, b: b's values win where b holds a key.
    let r = s3
        .remote("built")
        .ingest_blocking(["part-a", "part-c", "part-b"])
        .unwrap();
    assert_eq!(
        (r.shards, r.runs_added, r.manifests_removed),
        (3, 3, 3),
        "{r:?}"
    );
    assert_eq!(r.keys_added, 100 + 210 + 110);
    let mut want: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for (tag, keys) in [
        ("a", (0..100).collect::<Vec<u64>>()),
        ("c", (150..260).collect()),
        ("b", (90..200).chain(300..400).collect()),
    ] {
        for i in keys {
            want.insert(key_for(i).into_bytes(), format!("{tag}:{i}").into_bytes());
        }
    }
    // A cold public reader, by byte ranges.
    let reader = Db::open_remote(s3.public_url("built")).unwrap();
    assert_eq!(contents(&reader), want);
    assert_eq!(
        reader.get(key_for(170)).unwrap().unwrap(),
        "b:170",
        "the shard given last wins"
    );
    assert_eq!(reader.get(key_for(255)).unwrap().unwrap(), "c:255");
    assert!(
        reader.len() >= want.len() as u64,
        "the count is an upper bound"
    );
    assert!(reader.verify().unwrap().is_ok());
    // A local copy reads the same, verifies, and recounts at a full compaction.
    let local = tmp();
    let copy = s3.builder(local.path(), "built").open_blocking().unwrap();
    copy.download().unwrap();
    assert_eq!(contents(&copy), want);
    assert!(copy.verify().unwrap().is_ok());
    copy.compact_with(s4db::CompactOptions::default().full(true))
        .unwrap();
    assert_eq!(copy.len(), want.len() as u64);
    assert_eq!(contents(&copy), want);
    copy.rebuild_index().unwrap();
    assert_eq!(
        contents(&copy),
        want,
        "after a full compaction, a rebuild agrees"
    );
    // The manifests are spent.
    assert!(matches!(
        s3.remote("built").ingest_blocking(["part-a"]),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn ingest_adds_to_a_committed_database_and_a_writer_then_rebases_over_it() {
    let s3 = TestS3::start();
    let (w, s) = (tmp(), tmp());
    let writer = s3.builder(w.path(), "live").open_blocking().unwrap();
    writer
        .put_many((0..50).map(|i| (key_for(i), value_for(i, 20))))
        .unwrap();
    writer.set_metadata("schema", "v1").unwrap();
    writer.upload().unwrap();
    let part = shard(s.path(), 40..60, "s");
    part.stage(s3.remote("live"), "nightly").unwrap();
    // The writer commits after the shard was staged: no conflict.
    writer.put(key_for(45), "writer's").unwrap();
    writer.upload().unwrap();
    let r = s3.remote("live").ingest_blocking(["nightly"]).unwrap();
    assert_eq!(r.rebased, 0);
    let reader = s3.remote("live").open_blocking().unwrap();
    assert_eq!(
        reader.get(key_for(45)).unwrap().unwrap(),
        "s:45",
        "ingested last"
    );
    assert_eq!(reader.get(key_for(10)).unwrap().unwrap(), value_for(10, 20));
    assert_eq!(reader.get(key_for(59)).unwrap().unwrap(), "s:59");
    assert_eq!(reader.metadata().unwrap()["schema"], "v1", "metadata kept");
    assert_eq!(contents(&reader).len(), 60);
    // The writer's next upload conflicts, and a rebase carries its change
    // over the ingested state.
    writer.put(key_for(1), "after").unwrap();
    assert!(matches!(writer.upload(), Err(Error::Conflict(_))));
    writer
        .upload_with(s4db::UploadOptions::default().rebase(true))
        .unwrap();
    let reader = s3.remote("live").open_blocking().unwrap();
    assert_eq!(reader.get(key_for(1)).unwrap().unwrap(), "after");
    assert_eq!(reader.get(key_for(45)).unwrap().unwrap(), "s:45");
    assert!(reader.verify().unwrap().is_ok());
}

#[test]
fn gc_keeps_a_young_stage_and_removes_an_abandoned_one() {
    let s3 = TestS3::start();
    let (w, s) = (tmp(), tmp());
    let writer = s3.builder(w.path(), "g").open_blocking().unwrap();
    writer.put("k", "v").unwrap();
    writer.upload().unwrap();
    let before = s3.objects("g");
    let part = shard(s.path(), 0..300, "s");
    let staged = part.stage(s3.remote("g"), "late").unwrap();
    let r = writer.gc(Duration::from_secs(3600)).unwrap();
    assert_eq!((r.stages_deleted, r.orphans_deleted), (0, 0), "{r:?}");
    assert_eq!(
        s3.objects("g").len() as u64,
        before.len() as u64 + staged.segments_uploaded + staged.runs_uploaded + 1
    );
    // Abandoned: past the grace period, the manifest goes, then its objects.
    let r = writer.gc(Duration::ZERO).unwrap();
    assert_eq!(r.stages_deleted, 1, "{r:?}");
    assert_eq!(
        r.orphans_deleted,
        staged.segments_uploaded + staged.runs_uploaded
    );
    assert_eq!(s3.objects("g"), before);
    assert!(matches!(
        s3.remote("g").ingest_blocking(["late"]),
        Err(Error::NotFound(_))
    ));
    assert_eq!(writer.get("k").unwrap().unwrap(), "v");
}

#[test]
fn bad_stage_names_shards_that_are_copies_and_builders_with_a_directory_are_refused() {
    let s3 = TestS3::start();
    let (a, b) = (tmp(), tmp());
    let part = shard(a.path(), 0..10, "s");
    for bad in ["", "a/b", "with space"] {
        assert!(matches!(
            part.stage(s3.remote("r"), bad),
            Err(Error::InvalidArgument(_))
        ));
    }
    assert!(matches!(
        part.stage(DbBuilder::new(b.path()).remote(s3.url("r")), "x"),
        Err(Error::InvalidArgument(_))
    ));
    part.stage(s3.remote("r"), "one").unwrap();
    s3.remote("r").ingest_blocking(["one"]).unwrap();
    // A download of the database is not a shard: staging it is refused.
    let copy = s3.builder(b.path(), "r").open_blocking().unwrap();
    copy.download().unwrap();
    assert!(matches!(
        copy.stage(s3.remote("r"), "two"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        s3.remote("r").ingest_blocking(["one", "one"]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        s3.remote("r").ingest_blocking(Vec::<String>::new()),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn an_ingest_refuses_to_bury_a_database_whose_index_was_lost() {
    let s3 = TestS3::start();
    let (a, b) = (tmp(), tmp());
    let db = s3.builder(a.path(), "lost").open_blocking().unwrap();
    db.put("old", "data").unwrap();
    db.upload().unwrap();
    db.close().unwrap();
    s3.remove_object("lost", "index.idx");

    let part = shard(b.path(), 0..50, "s");
    part.stage(s3.remote("lost"), "part").unwrap();
    match s3.remote("lost").ingest_blocking(["part"]) {
        Err(Error::Conflict(m)) => assert!(m.contains("has no index.idx"), "{m}"),
        other => panic!("an ingest buried a database: {other:?}"),
    }
    // Nothing committed; the stage is still there to ingest once resolved.
    assert!(matches!(
        s3.remote("lost").open_blocking(),
        Err(Error::NotFound(_))
    ));
    assert!(s3.objects("lost").contains(&"stage_part.idx".to_string()));
}
