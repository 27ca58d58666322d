//! Remote sync against a real S3 server (s3s-fs, SigV4 checked) on loopback.

mod common;

use std::time::Duration;

use common::s3::TestS3;
use common::{contents, key_for, segment_files, value_for};
use s4db::blocking::Db;
use s4db::{Error, UploadOptions};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn load(db: &Db, n: u64, len: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        db.put_many(chunk.iter().map(|&i| (key_for(i), value_for(i, len))))
            .unwrap();
    }
}

#[test]
fn upload_download_round_trip_through_s3() {
    let s3 = TestS3::start();
    let (a, b) = (tmp(), tmp());
    let db = s3
        .builder(a.path(), "db1")
        .max_segment_size(16 << 10)
        .open_blocking()
        .unwrap();
    load(&db, 500, 80);
    let up = db.upload().unwrap();
    assert!(up.segments_uploaded >= 3, "{up:?}");
    assert_eq!(
        s3.objects("db1").len() as u64,
        up.segments_uploaded + up.runs_uploaded + 1,
        "segments, index runs and index.idx"
    );
    let copy = s3.builder(b.path(), "db1").open_blocking().unwrap();
    copy.download().unwrap();
    assert_eq!(contents(&copy), contents(&db));
    assert!(copy.verify().unwrap().is_ok());
}

#[test]
fn a_get_with_no_local_data_is_one_range_request_checked_end_to_end() {
    let s3 = TestS3::start();
    let (a, b) = (tmp(), tmp());
    let db = s3.builder(a.path(), "p").open_blocking().unwrap();
    load(&db, 200, 100);
    db.upload().unwrap();
    let reader = s3.builder(b.path(), "p").open_blocking().unwrap();
    assert!(segment_files(b.path()).is_empty());
    for i in [0, 77, 199] {
        let before = reader.remote_stats().unwrap().requests;
        assert_eq!(reader.get(key_for(i)).unwrap().unwrap(), value_for(i, 100));
        assert_eq!(reader.remote_stats().unwrap().requests - before, 1);
    }
}

#[test]
fn get_many_coalesces_near_records_into_few_requests() {
    let s3 = TestS3::start();
    let (a, b) = (tmp(), tmp());
    let db = s3
        .builder(a.path(), "p")
        .max_segment_size(64 << 10)
        .open_blocking()
        .unwrap();
    load(&db, 2000, 100);
    db.upload().unwrap();
    let segments = s3.objects("p").len() as u64 - 1;
    let keys: Vec<String> = (0..2000).step_by(3).map(key_for).collect();

    let reader = s3.builder(b.path(), "p").open_blocking().unwrap();
    let before = reader.remote_stats().unwrap().requests;
    let got = reader.get_many(&keys).unwrap();
    let used = reader.remote_stats().unwrap().requests - before;
    for (k, v) in keys.iter().zip(&got) {
        let i: u64 = k[3..].parse().unwrap();
        assert_eq!(v.as_deref(), Some(value_for(i, 100).as_slice()));
    }
    assert!(
        used <= segments,
        "{used} requests for {} keys in {segments} segments",
        keys.len()
    );

    // With no gap allowed, records that are not adjacent need one request each.
    let c = tmp();
    let strict = s3
        .builder(c.path(), "p")
        .remote_options(common::s3::quick_options().coalesce_gap(0))
        .open_blocking()
        .unwrap();
    let before = strict.remote_stats().unwrap().requests;
    strict.get_many(&keys[..50]).unwrap();
    assert_eq!(strict.remote_stats().unwrap().requests - before, 50);
}

#[test]
fn two_writers_one_conflict_no_lost_update_and_rebase() {
    let s3 = TestS3::start();
    let (a, b) = (tmp(), tmp());
    let w1 = s3.builder(a.path(), "shared").open_blocking().unwrap();
    w1.put("base", "0").unwrap();
    w1.upload().unwrap();
    let w2 = s3.builder(b.path(), "shared").open_blocking().unwrap();
    w2.download().unwrap();
    w1.put("w1", "1").unwrap();
    w2.put("w2", "2").unwrap();
    w1.upload().unwrap();
    assert!(matches!(w2.upload(), Err(Error::Conflict(_))));
    w2.upload_with(UploadOptions::default().rebase(true))
        .unwrap();
    // The rebase fetched w1's segment: b still opens and reads offline.
    w2.close().unwrap();
    let offline = Db::open(b.path()).unwrap();
    for (k, v) in [("base", "0"), ("w1", "1"), ("w2", "2")] {
        assert_eq!(offline.get(k).unwrap().unwrap(), v, "{k}");
    }
    assert!(offline.verify().unwrap().is_ok());
    let fresh = tmp();
    let check = s3.builder(fresh.path(), "shared").open_blocking().unwrap();
    check.download().unwrap();
    for (k, v) in [("base", "0"), ("w1", "1"), ("w2", "2")] {
        assert_eq!(check.get(k).unwrap().unwrap(), v, "{k}");
    }
}

#[test]
fn compaction_and_gc_keep_an_old_reader_working_until_the_grace_period_ends() {
    let s3 = TestS3::start();
    let a = tmp();
    let db = s3
        .builder(a.path(), "g")
        .max_segment_size(8 << 10)
        .open_blocking()
        .unwrap();
    for round in 0..3u64 {
        db.put_many((0..100).map(|i| (key_for(i), value_for(i * 10 + round, 60))))
            .unwrap();
    }
    db.upload().unwrap();
    // An anonymous reader over plain http, holding the pre-compaction index.
    let reader = Db::open_remote(s3.public_url("g")).unwrap();
    let want = contents(&db);
    assert_eq!(contents(&reader), want);
    let old = s3.objects("g");

    db.compact_with(s4db::CompactOptions::default().full(true))
        .unwrap();
    db.upload().unwrap();
    assert_eq!(
        db.gc(Duration::from_secs(3600)).unwrap().obsolete_deleted,
        0
    );
    for i in 0..100 {
        assert_eq!(
            reader.get(key_for(i)).unwrap().as_deref(),
            want.get(key_for(i).as_bytes()).map(Vec::as_slice)
        );
    }
    let gc = db.gc(Duration::ZERO).unwrap();
    assert!(gc.obsolete_deleted >= 3, "{gc:?}");
    let now = s3.objects("g");
    assert!(
        old.iter()
            .filter(|o| o.starts_with("data_"))
            .all(|o| !now.contains(o)),
        "old segments deleted"
    );
    // The reader's segments are gone: it reloads index.idx once and goes on.
    for i in 0..100 {
        assert_eq!(
            reader.get(key_for(i)).unwrap().as_deref(),
            want.get(key_for(i).as_bytes()).map(Vec::as_slice)
        );
    }
}

#[test]
fn a_large_segment_is_uploaded_in_parts() {
    let s3 = TestS3::start();
    let (a, b) = (tmp(), tmp());
    let db = s3
        .builder(a.path(), "mp")
        .max_segment_size(16 << 20)
        .remote_options(
            common::s3::quick_options()
                .multipart(6 << 20, 5 << 20)
                .request_timeout(Duration::from_secs(30)),
        )
        .open_blocking()
        .unwrap();
    // ~12 MiB of incompressible values in one segment: three parts.
    let big: Vec<(String, Vec<u8>)> = (0..1200)
        .map(|i| (key_for(i), value_for(2 * i + 1, 10_000)))
        .collect();
    for chunk in big.chunks(100) {
        db.put_many(chunk.iter().map(|(k, v)| (k, v))).unwrap();
    }
    let before = s3.faults.requests.load(std::sync::atomic::Ordering::SeqCst);
    let up = db.upload().unwrap();
    let requests = s3.faults.requests.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert_eq!(up.segments_uploaded, 1);
    assert!(up.segment_bytes > 11 << 20, "{up:?}");
    // HEAD index, create + 3 parts + complete, PUT index: multipart was used.
    assert!(
        requests >= 6,
        "{requests} requests: the segment did not go in parts"
    );
    let copy = s3.builder(b.path(), "mp").open_blocking().unwrap();
    copy.download().unwrap();
    assert_eq!(
        copy.get(key_for(1199)).unwrap().unwrap(),
        value_for(2399, 10_000)
    );
    assert!(copy.verify().unwrap().is_ok());
}

#[test]
fn public_prefix_reads_anonymously_over_http() {
    let s3 = TestS3::start();
    let a = tmp();
    let db = s3.builder(a.path(), "pub").open_blocking().unwrap();
    load(&db, 100, 50);
    db.upload().unwrap();
    let reader = Db::open_remote(s3.public_url("pub")).unwrap();
    assert_eq!(reader.len(), 100);
    assert_eq!(reader.get(key_for(42)).unwrap().unwrap(), value_for(42, 50));
    assert!(matches!(reader.put("x", "y"), Err(Error::ReadOnly)));
    // The signed server refuses unsigned requests: a clear error.
    let err = Db::open_remote(format!(
        "s3://{}/pub?endpoint={}&anonymous=true",
        common::s3::BUCKET,
        s3.endpoint
    ))
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Remote {
                status: Some(403),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn upload_download_and_gets_survive_injected_faults() {
    let s3 = TestS3::start();
    let (a, b, c) = (tmp(), tmp(), tmp());
    s3.faults.set_rate(100); // 10% of requests
    let db = s3
        .builder(a.path(), "f")
        .max_segment_size(16 << 10)
        .open_blocking()
        .unwrap();
    load(&db, 600, 80);
    db.upload().unwrap();
    db.put_many((600..700).map(|i| (key_for(i), value_for(i, 80))))
        .unwrap();
    db.upload().unwrap();
    let copy = s3.builder(b.path(), "f").open_blocking().unwrap();
    copy.download().unwrap();
    assert_eq!(contents(&copy), contents(&db));
    let reader = s3.builder(c.path(), "f").open_blocking().unwrap();
    for i in (0..700).step_by(7) {
        assert_eq!(
            reader.get(key_for(i)).unwrap().unwrap(),
            value_for(i, 80),
            "key {i}"
        );
    }
    let keys: Vec<String> = (0..700).step_by(2).map(key_for).collect();
    for (k, v) in keys.iter().zip(reader.get_many(&keys).unwrap()) {
        let i: u64 = k[3..].parse().unwrap();
        assert_eq!(v.unwrap(), value_for(i, 80));
    }
    let injected = s3.faults.injected.load(std::sync::atomic::Ordering::SeqCst);
    assert!(injected >= 10, "only {injected} faults were injected");
    for (kind, n) in common::s3::KINDS.iter().zip(&s3.faults.by_kind) {
        assert!(
            n.load(std::sync::atomic::Ordering::SeqCst) > 0,
            "no {kind:?} fault was injected"
        );
    }
}

#[test]
fn a_wrong_secret_is_a_clear_error_that_never_shows_the_secret() {
    let s3 = TestS3::start();
    let a = tmp();
    let builder = s4db::Db::builder(a.path())
        .remote(s3.url("x"))
        .credentials(s4db::Credentials::new(
            common::s3::ACCESS_KEY,
            "WRONG-secret-zz9",
        ))
        .remote_options(common::s3::quick_options());
    let shown = format!("{builder:?}");
    // Opening an empty directory with a remote reads the remote index: refused.
    let err = builder.open_blocking().unwrap_err();
    let text = format!("{err} {err:?} {shown}");
    assert!(
        matches!(
            err,
            Error::Remote {
                status: Some(403),
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.to_lowercase().contains("signature") || text.contains("access denied"),
        "{text}"
    );
    assert!(
        !text.contains("WRONG-secret-zz9") && !text.contains("X-Amz-Signature"),
        "{text}"
    );
}

#[test]
fn a_commit_whose_answer_was_lost_is_not_a_false_conflict() {
    let s3 = TestS3::start();
    let (a, b) = (tmp(), tmp());
    let db = s3.builder(a.path(), "lost").open_blocking().unwrap();
    db.put("first", "1").unwrap();
    db.upload().unwrap();
    db.put("second", "2").unwrap();
    // The segment PUT and the index PUT both land, but their answers are lost:
    // the retries see 412 and must recognise their own writes.
    s3.faults
        .lose_answer
        .lock()
        .unwrap()
        .extend([".s4db".to_string(), "/index.idx".to_string()]);
    let up = db.upload().unwrap();
    assert_eq!(up.segments_uploaded, 1);
    assert!(
        s3.faults.lose_answer.lock().unwrap().is_empty(),
        "both answers were lost"
    );
    db.put("third", "3").unwrap();
    db.upload().unwrap();
    let copy = s3.builder(b.path(), "lost").open_blocking().unwrap();
    copy.download().unwrap();
    assert_eq!(contents(&copy), contents(&db));
}

#[test]
fn a_missing_bucket_is_a_clear_error() {
    let s3 = TestS3::start();
    let a = tmp();
    let err = s4db::Db::builder(a.path())
        .remote(format!(
            "s3://no-such-bucket/p?endpoint={}&region=us-east-1",
            s3.endpoint
        ))
        .credentials(TestS3::credentials())
        .remote_options(common::s3::quick_options())
        .open_blocking()
        .unwrap_err();
    assert!(err.to_string().contains("bucket does not exist"), "{err}");
}

#[test]
fn compaction_of_a_remote_backed_directory_fetches_what_it_lacks_first() {
    let s3 = TestS3::start();
    let (a, b) = (tmp(), tmp());
    let db = s3
        .builder(a.path(), "h")
        .max_segment_size(8 << 10)
        .open_blocking()
        .unwrap();
    for round in 0..2u64 {
        db.put_many((0..100).map(|i| (key_for(i), value_for(i + round, 60))))
            .unwrap();
    }
    db.upload().unwrap();
    let reader = s3
        .builder(b.path(), "h")
        .max_segment_size(8 << 10)
        .open_blocking()
        .unwrap();
    reader.delete(key_for(5)).unwrap();
    let report = reader
        .compact_with(s4db::CompactOptions::default().full(true))
        .unwrap();
    assert_eq!(report.records_written, 99);
    assert!(reader.verify().unwrap().is_ok());
    assert_eq!(reader.get(key_for(6)).unwrap().unwrap(), value_for(7, 60));
    reader.upload().unwrap();
    // The first writer has nothing unsynced: it can take the compacted state.
    db.download().unwrap();
    assert_eq!(contents(&db), contents(&reader));
}

#[test]
fn delete_remote_leaves_no_object_and_the_next_upload_sends_everything_again() {
    let s3 = TestS3::start();
    let (a, b) = (tmp(), tmp());
    let db = s3
        .builder(a.path(), "gone")
        .max_segment_size(16 << 10)
        .open_blocking()
        .unwrap();
    load(&db, 400, 80);
    let up = db.upload().unwrap();
    // Another prefix of the same bucket is not touched.
    let other = s3.builder(b.path(), "kept").open_blocking().unwrap();
    other.put("k", "v").unwrap();
    other.upload().unwrap();
    let kept_before = s3.objects("kept");

    let r = db.delete_remote().unwrap();
    assert!(r.had_root);
    assert_eq!(
        r.objects_deleted,
        up.segments_uploaded + up.runs_uploaded + 1,
        "{r:?}"
    );
    assert_eq!(s3.objects("gone"), Vec::<String>::new());
    assert_eq!(s3.objects("kept"), kept_before);
    let cold = s3.remote("gone").open_blocking();
    assert!(matches!(cold, Err(Error::NotFound(_))), "{cold:?}");

    // The directory keeps its data and uploads all of it again.
    assert_eq!(db.len(), 400);
    let again = db.upload().unwrap();
    assert_eq!(again.segments_uploaded, up.segments_uploaded, "{again:?}");
    let c = tmp();
    let copy = s3.builder(c.path(), "gone").open_blocking().unwrap();
    copy.download().unwrap();
    assert_eq!(contents(&copy), contents(&db));
}

#[test]
fn an_upload_refuses_to_bury_a_database_whose_index_was_lost_and_a_restore_brings_it_back() {
    let s3 = TestS3::start();
    let (a, b, c) = (tmp(), tmp(), tmp());
    let db = s3
        .builder(a.path(), "lost")
        .max_segment_size(16 << 10)
        .open_blocking()
        .unwrap();
    load(&db, 300, 80);
    db.upload().unwrap();
    // A full compaction leaves the replaced segments in the bucket until gc.
    for i in 0..50 {
        db.delete(key_for(i)).unwrap();
    }
    db.compact_with(s4db::CompactOptions::default().full(true))
        .unwrap();
    db.upload().unwrap();
    let want = contents(&db);
    assert_eq!(want.len(), 250);
    db.close().unwrap();
    s3.remove_object("lost", "index.idx");
    let left = s3.objects("lost");

    // A new directory sees an empty remote; its upload does not commit over
    // the data (which gc would then delete as orphans).
    let fresh = s3.builder(b.path(), "lost").open_blocking().unwrap();
    assert_eq!(fresh.len(), 0);
    fresh.put("new", "v").unwrap();
    match fresh.upload() {
        Err(Error::Conflict(m)) => {
            assert!(m.contains("has no index.idx") && m.contains("data_"), "{m}")
        }
        other => panic!("an upload buried a database: {other:?}"),
    }
    assert_eq!(s3.objects("lost"), left, "nothing was sent");
    fresh.close().unwrap();

    // The repair the error names: a restore into an empty directory, then
    // an upload from it, which sends no segment again.
    let restored = s3.builder(c.path(), "lost").open_blocking().unwrap();
    let r = restored.restore_from_remote().unwrap();
    let segments = left.iter().filter(|n| n.starts_with("data_")).count() as u64;
    assert_eq!(r.segments_downloaded, segments, "{r:?}");
    assert!(r.rebuild.superseded_segments > 0, "{r:?}");
    assert_eq!(r.rebuild.keys, 250);
    assert_eq!(contents(&restored), want);
    let up = restored.upload().unwrap();
    assert_eq!(up.segments_uploaded, 0, "{up:?}");
    assert_eq!(
        up.segments_obsoleted, r.rebuild.superseded_segments,
        "{up:?}"
    );
    // gc then deletes exactly the superseded segments (and the lost root's
    // index runs, which hold no record).
    let g = restored.gc(Duration::ZERO).unwrap();
    assert_eq!(g.obsolete_deleted, r.rebuild.superseded_segments, "{g:?}");
    let segments_deleted = g.deleted.iter().filter(|n| n.starts_with("data_")).count();
    assert_eq!(
        segments_deleted as u64, r.rebuild.superseded_segments,
        "{g:?}"
    );
    restored.close().unwrap();
    let reader = s3.remote("lost").open_blocking().unwrap();
    assert_eq!(contents(&reader), want);
    assert!(reader.verify().unwrap().is_ok());
}

#[test]
fn a_copy_refuses_a_destination_that_holds_the_segments_of_a_database_whose_index_was_lost() {
    let s3 = TestS3::start();
    let (a, b) = (tmp(), tmp());
    let lost = s3.builder(a.path(), "dst").open_blocking().unwrap();
    lost.put("old", "data").unwrap();
    lost.upload().unwrap();
    lost.close().unwrap();
    s3.remove_object("dst", "index.idx");
    let left = s3.objects("dst");

    let src = s3.builder(b.path(), "src").open_blocking().unwrap();
    src.put("k", "v").unwrap();
    src.upload().unwrap();
    match src.copy_remote(s3.remote("dst")) {
        Err(Error::Conflict(m)) => assert!(m.contains("has no index.idx"), "{m}"),
        other => panic!("a copy buried a database: {other:?}"),
    }
    assert_eq!(s3.objects("dst"), left, "nothing was copied");
}

#[test]
fn a_restore_that_stopped_part_way_blocks_uploads_until_run_again_which_finishes_it() {
    let s3 = TestS3::start();
    let (a, c) = (tmp(), tmp());
    let db = s3
        .builder(a.path(), "half")
        .max_segment_size(16 << 10)
        .open_blocking()
        .unwrap();
    load(&db, 300, 80);
    db.upload().unwrap();
    let want = contents(&db);
    db.close().unwrap();
    s3.remove_object("half", "index.idx");
    let segments: Vec<String> = s3
        .objects("half")
        .into_iter()
        .filter(|n| n.starts_with("data_"))
        .collect();
    assert!(segments.len() >= 2, "{segments:?}");

    // What a restore killed after its first segment leaves: the marker
    // and one of the segments.
    s3.builder(c.path(), "half")
        .open_blocking()
        .unwrap()
        .close()
        .unwrap();
    std::fs::write(c.path().join("restore.pending"), "killed\n").unwrap();
    let first = &segments[0];
    std::fs::copy(s3.object_path("half", first), c.path().join(first)).unwrap();
    let db = s3.builder(c.path(), "half").open_blocking().unwrap();
    match db.upload() {
        Err(Error::Conflict(m)) => assert!(m.contains("restore.pending"), "{m}"),
        other => panic!("a part of a restore was published: {other:?}"),
    }
    assert!(!s3.objects("half").contains(&"index.idx".to_string()));

    // Running it again finishes it.
    let r = db.restore_from_remote().unwrap();
    assert_eq!(
        r.segments_downloaded + r.segments_present,
        segments.len() as u64,
        "{r:?}"
    );
    assert_eq!(contents(&db), want);
    assert!(!c.path().join("restore.pending").exists());
    db.upload().unwrap();
    let reader = s3.remote("half").open_blocking().unwrap();
    assert_eq!(contents(&reader), want);
}

#[test]
fn a_restore_refuses_a_remote_with_an_index_a_directory_with_keys_and_an_empty_prefix() {
    let s3 = TestS3::start();
    let (a, b, c) = (tmp(), tmp(), tmp());
    let db = s3.builder(a.path(), "p").open_blocking().unwrap();
    db.put("k", "v").unwrap();
    db.upload().unwrap();
    let other = s3.builder(b.path(), "p").open_blocking().unwrap();
    assert!(matches!(
        other.restore_from_remote(),
        Err(Error::InvalidArgument(m)) if m.contains("download")
    ));
    s3.remove_object("p", "index.idx");
    assert!(matches!(
        db.restore_from_remote(),
        Err(Error::InvalidArgument(m)) if m.contains("empty directory")
    ));
    let empty = s3
        .builder(c.path(), "nothing-here")
        .open_blocking()
        .unwrap();
    assert!(matches!(
        empty.restore_from_remote(),
        Err(Error::NotFound(_))
    ));
    assert_eq!(s3.objects("nothing-here"), Vec::<String>::new());
}

#[test]
fn copy_remote_on_one_s3_endpoint_is_done_by_the_server_and_the_copy_verifies() {
    let s3 = TestS3::start();
    let a = tmp();
    let db = s3
        .builder(a.path(), "src")
        .max_segment_size(16 << 10)
        .open_blocking()
        .unwrap();
    load(&db, 400, 80);
    let up = db.upload().unwrap();
    db.put("not-uploaded", "x").unwrap();

    let r = db.copy_remote(s3.remote("dst")).unwrap();
    assert_eq!(r.segments_copied, up.segments_uploaded, "{r:?}");
    assert_eq!(r.copied_server_side, r.segments_copied, "{r:?}");
    assert_eq!(r.keys, 400);
    assert!(!r.already_complete);
    // Only the index (its root and runs) passed through s4db.
    assert_eq!(
        r.bytes_copied,
        s3.object_size("src", "index.idx") + up.run_bytes
    );

    let copy = s3.remote("dst").open_blocking().unwrap();
    let v = copy.verify().unwrap();
    assert!(v.is_ok(), "{v:?}");
    assert_eq!(v.keys, 400);
    let mut expected = contents(&db);
    expected.remove(b"not-uploaded".as_slice());
    assert_eq!(contents(&copy), expected);

    let again = s3
        .remote("src")
        .copy_remote_blocking(s3.remote("dst"))
        .unwrap();
    assert!(again.already_complete, "{again:?}");
    assert_eq!(again.segments_copied, 0);

    // A public (http) source needs no credentials: a backup of a public dataset.
    let backup = tmp();
    let to = s4db::DbBuilder::for_remote(backup.path().to_str().unwrap());
    let r = s4db::DbBuilder::for_remote(s3.public_url("src"))
        .copy_remote_blocking(to)
        .unwrap();
    assert_eq!(r.segments_copied, up.segments_uploaded);
    let copy = s4db::DbBuilder::for_remote(backup.path().to_str().unwrap())
        .open_blocking()
        .unwrap();
    assert_eq!(contents(&copy), expected);
}

#[test]
fn copy_remote_from_s3_to_a_directory_while_the_source_keeps_committing_copies_one_commit_whole() {
    let s3 = TestS3::start();
    let (a, dest) = (tmp(), tmp());
    let db = s3
        .builder(a.path(), "live")
        .max_segment_size(8 << 10)
        .open_blocking()
        .unwrap();
    // Round r adds 50 keys and sets "round" to r, then commits.
    let round = |db: &Db, r: u64| {
        db.put_many((r * 50..r * 50 + 50).map(|i| (key_for(i), value_for(i, 200))))
            .unwrap();
        db.put("round", r.to_string()).unwrap();
        db.upload().unwrap();
    };
    for r in 0..20 {
        round(&db, r);
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut r = 20;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                round(&db, r);
                r += 1;
            }
            r - 20
        })
    };
    let to = s4db::DbBuilder::for_remote(dest.path().to_str().unwrap());
    let r = s3.remote("live").copy_remote_blocking(to).unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let commits_meanwhile = writer.join().unwrap();
    assert!(
        commits_meanwhile > 0,
        "the source committed during the copy"
    );
    assert_eq!(r.copied_server_side, 0, "{r:?}");
    assert!(r.bytes_copied > 0);

    let copy = s4db::DbBuilder::for_remote(dest.path().to_str().unwrap())
        .open_blocking()
        .unwrap();
    let v = copy.verify().unwrap();
    assert!(v.is_ok(), "{v:?}");
    let rounds: u64 = String::from_utf8(copy.get("round").unwrap().unwrap().to_vec())
        .unwrap()
        .parse()
        .unwrap();
    let mut expected: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = (0..rounds * 50 + 50)
        .map(|i| (key_for(i).into_bytes(), value_for(i, 200)))
        .collect();
    expected.insert(b"round".to_vec(), rounds.to_string().into_bytes());
    assert_eq!(
        contents(&copy),
        expected,
        "the copy is the state after round {rounds}"
    );
    assert_eq!(r.keys, expected.len() as u64);
}
