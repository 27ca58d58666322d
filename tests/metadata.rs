//! Database metadata (FORMAT.md §4.8): committed with the data, in the
//! root a cold reader reads first, merged by a rebase.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::s3::TestS3;
use s4db::blocking::Db;
use s4db::{Error, UploadOptions};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn map(entries: &[(&str, &str)]) -> BTreeMap<String, Bytes> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), Bytes::copy_from_slice(v.as_bytes())))
        .collect()
}

fn file_remote(dir: &std::path::Path) -> String {
    format!("file://{}", dir.display())
}

#[test]
fn metadata_is_set_removed_and_kept_across_reopen_rebuild_and_compaction() {
    let dir = tmp();
    let db = Db::open(dir.path()).unwrap();
    assert!(db.metadata().unwrap().is_empty());
    db.put("k", "v").unwrap();
    db.set_metadata("schema", "v3").unwrap();
    db.update_metadata([
        ("version".to_string(), Some(Bytes::from("7"))),
        ("gone".to_string(), Some(Bytes::from("x"))),
    ])
    .unwrap();
    db.remove_metadata("gone").unwrap();
    db.remove_metadata("never set").unwrap();
    let want = map(&[("schema", "v3"), ("version", "7")]);
    assert_eq!(db.metadata().unwrap(), want);
    db.close().unwrap();
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.metadata().unwrap(), want);
    db.rebuild_index().unwrap();
    db.compact().unwrap();
    db.put("more", "data").unwrap();
    db.checkpoint().unwrap();
    assert_eq!(db.metadata().unwrap(), want);
    // A read-only handle beside the writer reads it too.
    let ro = Db::builder(dir.path())
        .read_only(true)
        .open_blocking()
        .unwrap();
    assert_eq!(ro.metadata().unwrap(), want);
    assert!(matches!(ro.set_metadata("a", "b"), Err(Error::ReadOnly)));
}

#[test]
fn metadata_over_64_kib_or_with_a_bad_name_is_refused_and_nothing_changes() {
    let dir = tmp();
    let db = Db::open(dir.path()).unwrap();
    db.set_metadata("a", "1").unwrap();
    let big = vec![b'x'; 64 << 10];
    assert!(matches!(
        db.set_metadata("big", &big),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        db.set_metadata("", "v"),
        Err(Error::InvalidArgument(_))
    ));
    // Exactly at the limit: 65,536 bytes in all (8 + 6 + 1 + 1 for "a",
    // 8 for the section, 6 + 3 for "big").
    let fits = vec![b'y'; (64 << 10) - 8 - (6 + 1 + 1) - (6 + 3)];
    db.set_metadata("big", &fits).unwrap();
    assert!(matches!(
        db.set_metadata("c", ""),
        Err(Error::InvalidArgument(_))
    ));
    db.close().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let got = db.metadata().unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got["big"].len(), fits.len());
}

#[test]
fn metadata_is_published_with_the_data_and_a_cold_reader_has_it_from_its_first_read() {
    let s3 = TestS3::start();
    let a = tmp();
    let db = s3.builder(a.path(), "meta").open_blocking().unwrap();
    db.put("k", "v").unwrap();
    db.set_metadata("schema", "v3").unwrap();
    db.upload().unwrap();
    let reader = Db::open_remote(s3.public_url("meta")).unwrap();
    assert_eq!(reader.metadata().unwrap(), map(&[("schema", "v3")]));
    assert_eq!(
        reader.remote_stats().unwrap().requests,
        1,
        "the root's first read holds it"
    );
    assert!(matches!(
        reader.set_metadata("x", "y"),
        Err(Error::ReadOnly)
    ));
    // A change is invisible until the upload that publishes it.
    db.set_metadata("schema", "v4").unwrap();
    db.put("k", "v2").unwrap();
    reader.refresh().unwrap();
    assert_eq!(reader.metadata().unwrap()["schema"], "v3");
    db.upload().unwrap();
    reader.refresh().unwrap();
    assert_eq!(reader.metadata().unwrap()["schema"], "v4");
    assert_eq!(reader.get("k").unwrap().unwrap(), "v2");
}

#[test]
fn a_rebase_merges_metadata_name_by_name_and_a_download_takes_the_remotes() {
    let (a, b, c, r) = (tmp(), tmp(), tmp(), tmp());
    let url = file_remote(r.path());
    let w1 = Db::builder(a.path()).remote(&url).open_blocking().unwrap();
    w1.put("base", "0").unwrap();
    w1.update_metadata([
        ("kept".to_string(), Some(Bytes::from("1"))),
        ("dropped_by_w2".to_string(), Some(Bytes::from("1"))),
        ("changed_by_both".to_string(), Some(Bytes::from("0"))),
    ])
    .unwrap();
    w1.upload().unwrap();
    let w2 = Db::builder(b.path()).remote(&url).open_blocking().unwrap();
    w2.download().unwrap();
    assert_eq!(w2.metadata().unwrap()["kept"], "1");
    // w1 commits first; w2 changed other names, and one the same.
    w1.set_metadata("from_w1", "a").unwrap();
    w1.set_metadata("changed_by_both", "w1").unwrap();
    w1.upload().unwrap();
    w2.set_metadata("from_w2", "b").unwrap();
    w2.remove_metadata("dropped_by_w2").unwrap();
    w2.set_metadata("changed_by_both", "w2").unwrap();
    w2.upload_with(UploadOptions::default().rebase(true))
        .unwrap();
    let want = map(&[
        ("changed_by_both", "w2"),
        ("from_w1", "a"),
        ("from_w2", "b"),
        ("kept", "1"),
    ]);
    assert_eq!(w2.metadata().unwrap(), want);
    let fresh = Db::builder(c.path()).remote(&url).open_blocking().unwrap();
    fresh.download().unwrap();
    assert_eq!(fresh.metadata().unwrap(), want);
    w1.download().unwrap();
    assert_eq!(w1.metadata().unwrap(), want);
    // Discarding every unsynced change returns the metadata to the remote's.
    w1.set_metadata("kept", "changed").unwrap();
    w1.put("x", "y").unwrap();
    w1.discard_all().unwrap();
    assert_eq!(w1.metadata().unwrap(), want);
    assert_eq!(w1.get("x").unwrap(), None);
}

#[test]
fn an_in_memory_database_has_metadata_too() {
    let db = Db::memory().unwrap();
    db.set_metadata("k", [0u8, 255]).unwrap();
    assert_eq!(db.metadata().unwrap()["k"], Bytes::from_static(&[0, 255]));
    db.close().unwrap();
    assert!(matches!(db.metadata(), Err(Error::Closed(_))));
}
