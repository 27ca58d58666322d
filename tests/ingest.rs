//! Building one database from shards: stage, then ingest in one commit
//! (FORMAT.md §10.11), against a real S3 server on loopback.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::s3::TestS3;
use common::{Xorshift, contents, key_for, value_for};
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
    // So is a directory reading through the remote, before its segments
    // would be read for the shard's deletes.
    let c = tmp();
    let through = s3.builder(c.path(), "r").open_blocking().unwrap();
    assert_eq!(through.len(), 10);
    match through.stage(s3.remote("r"), "three") {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("not by itself"), "{m}"),
        other => panic!("{other:?}"),
    }
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

/// `db` holds exactly `want`, the deleted keys `gone` read as absent, and
/// the segments replayed in table order agree with the index (verify).
fn holds(db: &Db, want: &BTreeMap<Vec<u8>, Vec<u8>>, gone: &[&str], when: &str) {
    for k in gone {
        assert_eq!(db.get(k).unwrap(), None, "{k} {when}");
        assert!(!db.contains(k).unwrap(), "{k} {when}");
    }
    let got = contents(db);
    let differ: Vec<String> = got
        .keys()
        .chain(want.keys())
        .filter(|k| got.get(*k) != want.get(*k))
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert!(differ.is_empty(), "{when}: keys {differ:?} differ");
    let v = db.verify().unwrap();
    assert!(v.is_ok(), "{when}: {v:?}");
}

#[test]
fn a_later_shards_delete_hides_the_key_of_an_earlier_shard_after_ingest_merge_compact_and_download()
{
    let s3 = TestS3::start();
    let dirs: Vec<_> = (0..3).map(|_| tmp()).collect();
    // s1 puts a1 and a2 among keys enough that its segments stay mostly live.
    let s1 = shard(dirs[0].path(), 0..300, "s1");
    s1.put("a1", "s1").unwrap();
    s1.put("a2", "s1").unwrap();
    // s3 puts a1, checkpoints, deletes it: the delete's checkpoint merges the
    // run holding a1 into a new base. a2 is put and deleted between two
    // checkpoints. Both deletes live only in s3's segments.
    let s3db = shard(dirs[1].path(), 1000..1010, "s3");
    // Large, so that s3's segments are mostly dead once they are deleted.
    s3db.put("a1", "s3".repeat(1500)).unwrap();
    s3db.checkpoint().unwrap();
    s3db.delete("a1").unwrap();
    s3db.put("a2", "s3".repeat(1500)).unwrap();
    s3db.delete("a2").unwrap();
    s3db.checkpoint().unwrap();
    assert_eq!(s3db.get("a1").unwrap(), None);
    let s4 = shard(dirs[2].path(), 2000..2010, "s4");
    for (db, name) in [(&s1, "s1"), (&s3db, "s3"), (&s4, "s4")] {
        db.stage(s3.remote("d"), name).unwrap();
    }
    // Staging did not change what the shard holds.
    assert_eq!(s3db.get("a1").unwrap(), None);
    assert_eq!(s3db.len(), 10);
    s3.remote("d").ingest_blocking(["s1", "s3", "s4"]).unwrap();

    let mut want: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for (tag, keys) in [("s1", 0..300), ("s3", 1000..1010), ("s4", 2000..2010)] {
        for i in keys {
            want.insert(key_for(i).into_bytes(), format!("{tag}:{i}").into_bytes());
        }
    }
    let gone = ["a1", "a2"];
    holds(
        &s3.remote("d").open_blocking().unwrap(),
        &want,
        &gone,
        "read remotely after the ingest",
    );
    holds(
        &Db::open_remote(s3.public_url("d")).unwrap(),
        &want,
        &gone,
        "by a cold public reader",
    );

    // A download into a fresh directory, then a selective compaction (s3's
    // segments are dead, s1's stay: the tombstones must stay with them).
    let a = tmp();
    let copy = s3.builder(a.path(), "d").open_blocking().unwrap();
    copy.download().unwrap();
    holds(&copy, &want, &gone, "after a download");
    let r = copy.compact().unwrap();
    assert!(r.segments_rewritten >= 1, "{r:?}");
    assert!(r.segments_after > r.segments_rewritten, "{r:?}");
    holds(&copy, &want, &gone, "after a selective compaction");
    copy.close().unwrap();
    drop(copy);
    let copy = s3.builder(a.path(), "d").open_blocking().unwrap();
    holds(&copy, &want, &gone, "reopened after a selective compaction");
    copy.merge_index().unwrap();
    holds(&copy, &want, &gone, "after merge-index");
    copy.compact_with(s4db::CompactOptions::default().full(true))
        .unwrap();
    holds(&copy, &want, &gone, "after a full compaction");
    copy.rebuild_index().unwrap();
    holds(&copy, &want, &gone, "rebuilt after a full compaction");

    // merge-index of a fresh download, uploaded, then downloaded again.
    let b = tmp();
    let merger = s3.builder(b.path(), "d").open_blocking().unwrap();
    merger.download().unwrap();
    merger.merge_index().unwrap();
    holds(&merger, &want, &gone, "after merge-index of a download");
    merger.upload().unwrap();
    merger.close().unwrap();
    drop(merger);
    let merger = s3.builder(b.path(), "d").open_blocking().unwrap();
    holds(&merger, &want, &gone, "reopened after merge-index");
    let c = tmp();
    let last = s3.builder(c.path(), "d").open_blocking().unwrap();
    last.download().unwrap();
    holds(&last, &want, &gone, "downloaded after merge-index");
    last.compact_with(s4db::CompactOptions::default().full(true))
        .unwrap();
    holds(&last, &want, &gone, "after a full compaction of it");
}

/// One shard's last word on each key it touched: a value, or deleted
/// (`None`). A delete of a key the shard does not hold writes nothing.
type ShardModel = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

#[test]
fn shards_of_random_puts_and_deletes_ingest_to_the_last_state_of_each_key_in_the_last_shard_touching_it()
 {
    let remote = tmp();
    let url = format!("file://{}", remote.path().display());
    let mut rng = Xorshift::new(0x5eed_0030);
    for case in 0..12 {
        let prefix = format!("{url}/case{case}");
        let shards = 2 + rng.below(3) as usize;
        let dirs: Vec<_> = (0..shards).map(|_| tmp()).collect();
        let mut models: Vec<ShardModel> = Vec::new();
        for (s, dir) in dirs.iter().enumerate() {
            let mut db = Db::builder(dir.path())
                .max_segment_size(4 << 10)
                .open_blocking()
                .unwrap();
            let mut m = ShardModel::new();
            for op in 0..40 {
                let k = format!("k{}", rng.below(12)).into_bytes();
                match rng.below(10) {
                    0..=4 => {
                        let v = format!("{case}.{s}.{op}").repeat(1 + rng.below(40) as usize);
                        db.put(&k, &v).unwrap();
                        m.insert(k, Some(v.into_bytes()));
                    }
                    5..=7 => {
                        db.delete(&k).unwrap();
                        if let Some(state) = m.get_mut(&k) {
                            *state = None;
                        }
                    }
                    8 => db.checkpoint().unwrap(),
                    _ => {
                        db.close().unwrap();
                        drop(db);
                        db = Db::builder(dir.path())
                            .max_segment_size(4 << 10)
                            .open_blocking()
                            .unwrap();
                    }
                }
            }
            db.stage(DbBuilder::for_remote(&prefix), &format!("p{s}"))
                .unwrap();
            models.push(m);
        }
        // Ingested in a shuffled order: the last shard given wins.
        let mut order: Vec<usize> = (0..shards).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut want: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for &s in &order {
            for (k, state) in &models[s] {
                match state {
                    Some(v) => want.insert(k.clone(), v.clone()),
                    None => want.remove(k),
                };
            }
        }
        let names: Vec<String> = order.iter().map(|s| format!("p{s}")).collect();
        DbBuilder::for_remote(&prefix)
            .ingest_blocking(&names)
            .unwrap();
        let when = format!("case {case}, order {order:?}");
        let reader = DbBuilder::for_remote(&prefix).open_blocking().unwrap();
        holds(&reader, &want, &[], &format!("{when}: remote"));
        let d = tmp();
        let copy = Db::builder(d.path())
            .remote(&prefix)
            .open_blocking()
            .unwrap();
        copy.download().unwrap();
        holds(&copy, &want, &[], &format!("{when}: downloaded"));
        copy.compact().unwrap();
        holds(&copy, &want, &[], &format!("{when}: selective compaction"));
        copy.merge_index().unwrap();
        holds(&copy, &want, &[], &format!("{when}: merge-index"));
        copy.close().unwrap();
        drop(copy);
        let copy = Db::builder(d.path())
            .remote(&prefix)
            .open_blocking()
            .unwrap();
        holds(&copy, &want, &[], &format!("{when}: reopened"));
        copy.compact_with(s4db::CompactOptions::default().full(true))
            .unwrap();
        holds(&copy, &want, &[], &format!("{when}: full compaction"));
    }
}
