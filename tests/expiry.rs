//! Records that expire (FORMAT.md §3.4): absent everywhere once expired,
//! dropped by compaction, kept through replay and rebase.

mod common;

use std::time::{Duration, SystemTime};

use common::s3::TestS3;
use common::{contents, crash_image, key_for, value_for};
use s4db::blocking::Db;
use s4db::{CompactOptions, UploadOptions, WriteBatch};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// One second ago: a record written with it reads as expired at once.
fn past() -> SystemTime {
    SystemTime::now() - Duration::from_secs(1)
}

/// `keep` (no expiry), `later` (expires in an hour) and `gone` (already
/// expired), written in one batch.
fn three_keys(db: &Db) {
    let mut b = WriteBatch::new();
    b.put("keep", "k").unwrap();
    b.put_with_ttl("later", "l", Duration::from_secs(3600))
        .unwrap();
    b.put_expiring_at("gone", "g", past()).unwrap();
    db.write(b).unwrap();
}

/// Every way of reading a local database leaves `gone` out and keeps the rest.
fn assert_only_gone_is_absent(db: &Db) {
    assert_eq!(db.get("gone").unwrap(), None);
    assert_eq!(db.get("later").unwrap().unwrap(), "l");
    assert_eq!(
        db.get_many(["keep", "gone", "later"]).unwrap(),
        vec![Some("k".into()), None, Some("l".into())]
    );
    assert!(!db.contains("gone").unwrap());
    assert!(db.contains("later").unwrap() && db.contains("keep").unwrap());
    let keys: Vec<Vec<u8>> = db.keys().unwrap().iter().map(|k| k.to_vec()).collect();
    assert_eq!(keys, vec![b"keep".to_vec(), b"later".to_vec()]);
    let all: Vec<Vec<u8>> = contents(db).into_keys().collect();
    assert_eq!(all, keys);
    assert_eq!(db.scan_prefix("go").unwrap().count(), 0);
}

#[test]
fn an_expired_key_is_absent_from_get_get_many_contains_keys_and_iteration() {
    let dir = tmp();
    let db = Db::open(dir.path()).unwrap();
    three_keys(&db);
    assert_only_gone_is_absent(&db);
    // Until a compaction drops it, the index still counts it (documented).
    assert_eq!(db.len(), 3);
    db.close().unwrap();
    let db = Db::open(dir.path()).unwrap();
    assert_only_gone_is_absent(&db);
}

#[test]
fn a_key_with_a_ttl_reads_until_it_expires_and_a_later_put_replaces_the_expiry() {
    let dir = tmp();
    let db = Db::open(dir.path()).unwrap();
    db.put_with_ttl("session", "abc", Duration::from_millis(400))
        .unwrap();
    db.put_with_ttl("renewed", "1", Duration::from_millis(400))
        .unwrap();
    assert_eq!(db.get("session").unwrap().unwrap(), "abc");
    db.put("renewed", "2").unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(db.get("session").unwrap(), None);
    assert_eq!(db.get("renewed").unwrap().unwrap(), "2");
}

#[test]
fn an_expiring_record_replayed_after_a_crash_still_expires() {
    let (dir, image) = (tmp(), tmp());
    let db = Db::open(dir.path()).unwrap();
    db.put("a", "1").unwrap();
    db.checkpoint().unwrap();
    // Written after the last index: only replay knows about it.
    let mut b = WriteBatch::new();
    b.put_expiring_at("gone", "g", past()).unwrap();
    db.write(b).unwrap();
    db.flush().unwrap();
    crash_image(dir.path(), image.path());
    let db = Db::open(image.path()).unwrap();
    assert_eq!(db.get("gone").unwrap(), None);
    assert!(!db.contains("gone").unwrap());
    assert_eq!(db.keys().unwrap(), vec![bytes::Bytes::from("a")]);
}

#[test]
fn full_compaction_drops_expired_records_and_a_rebuild_does_not_bring_them_back() {
    let dir = tmp();
    let db = Db::open(dir.path()).unwrap();
    db.put("gone", "old value").unwrap();
    three_keys(&db);
    let r = db
        .compact_with(CompactOptions::default().full(true))
        .unwrap();
    assert_eq!(r.records_expired, 1, "{r:?}");
    assert_eq!(r.records_written, 2, "{r:?}");
    assert_eq!(db.len(), 2);
    assert_only_gone_is_absent(&db);
    assert!(db.verify().unwrap().is_ok());
    db.rebuild_index().unwrap();
    assert_eq!(db.get("gone").unwrap(), None);
    assert_eq!(db.len(), 2);
}

#[test]
fn selective_compaction_leaves_a_tombstone_for_an_expired_record_so_older_segments_stay_dead() {
    let dir = tmp();
    let db = Db::builder(dir.path())
        .max_segment_size(4096)
        .open_blocking()
        .unwrap();
    // Segment 1: an old value of `k`, and many live keys (kept: mostly live).
    db.put("k", "old value").unwrap();
    for i in 0..40 {
        db.put(key_for(i), value_for(i, 60)).unwrap();
    }
    db.flush().unwrap();
    let first_segments = common::segment_files(dir.path()).len();
    // A later segment: `k` expired, and keys overwritten (mostly dead).
    let mut b = WriteBatch::new();
    b.put_expiring_at("k", "new value", past()).unwrap();
    for i in 1000..1030 {
        b.put(key_for(i), value_for(i, 60)).unwrap();
    }
    db.write(b).unwrap();
    for i in 1000..1030 {
        db.delete(key_for(i)).unwrap();
    }
    let r = db
        .compact_with(CompactOptions::default().min_dead_percent(50))
        .unwrap();
    assert!(
        r.segments_rewritten >= 1 && (r.segments_rewritten as usize) < r.segments_before as usize,
        "a selective compaction: {r:?} (first segments {first_segments})"
    );
    assert_eq!(r.records_expired, 1, "{r:?}");
    assert_eq!(db.get("k").unwrap(), None);
    assert!(db.verify().unwrap().is_ok());
    // The segments left alone still hold `k` = "old value": the tombstone
    // written in place of the expired record keeps it dead.
    db.rebuild_index().unwrap();
    assert_eq!(db.get("k").unwrap(), None);
    assert_eq!(db.len(), 40);
}

#[test]
fn an_expired_key_is_absent_from_a_cold_remote_read_and_a_rebase_keeps_the_expiry() {
    let s3 = TestS3::start();
    let (a, b) = (tmp(), tmp());
    let w1 = s3.builder(a.path(), "ttl").open_blocking().unwrap();
    three_keys(&w1);
    w1.upload().unwrap();
    // A cold reader, by byte ranges, signed and anonymous.
    for reader in [
        s3.remote("ttl").open_blocking().unwrap(),
        Db::open_remote(s3.public_url("ttl")).unwrap(),
    ] {
        assert_eq!(reader.get("gone").unwrap(), None);
        assert_eq!(reader.get("keep").unwrap().unwrap(), "k");
        assert_eq!(
            reader.get_many(["gone", "later"]).unwrap(),
            vec![None, Some("l".into())]
        );
        assert!(!reader.contains("gone").unwrap());
        assert!(reader.contains("later").unwrap());
        let keys: Vec<_> = contents(&reader).into_keys().collect();
        assert_eq!(keys, vec![b"keep".to_vec(), b"later".to_vec()]);
    }
    // A rebase writes the changes again: their expiry goes with them.
    let w2 = s3.builder(b.path(), "ttl").open_blocking().unwrap();
    w2.download().unwrap();
    w2.put("w2", "2").unwrap();
    w2.upload().unwrap();
    let soon = SystemTime::now() + Duration::from_millis(700);
    let mut batch = WriteBatch::new();
    batch.put_expiring_at("brief", "b", soon).unwrap();
    w1.write(batch).unwrap();
    let up = w1
        .upload_with(UploadOptions::default().rebase(true))
        .unwrap();
    assert_eq!(up.rebased, 1);
    let reader = s3.remote("ttl").open_blocking().unwrap();
    assert_eq!(reader.get("brief").unwrap().unwrap(), "b");
    assert_eq!(reader.get("w2").unwrap().unwrap(), "2");
    std::thread::sleep(soon.duration_since(SystemTime::now()).unwrap_or_default());
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(reader.get("brief").unwrap(), None);
    assert_eq!(w1.get("brief").unwrap(), None);
}

#[test]
fn a_ttl_too_long_or_a_time_before_1970_is_refused_and_the_batch_is_unchanged() {
    let mut b = WriteBatch::new();
    assert!(matches!(
        b.put_with_ttl("k", "v", Duration::MAX),
        Err(s4db::Error::InvalidArgument(_))
    ));
    assert!(matches!(
        b.put_expiring_at("k", "v", SystemTime::UNIX_EPOCH - Duration::from_secs(1)),
        Err(s4db::Error::InvalidArgument(_))
    ));
    assert!(b.is_empty());
}
