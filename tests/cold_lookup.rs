//! Cold lookups from a remote with no local copy: request and byte counts
//! (issue #5), and freshness across another writer's uploads.

mod common;

use common::s3::TestS3;
use common::{key_for, value_for};
use s4db::blocking::Db;
use s4db::{LoadIndex, RemoteStats};

fn delta(after: RemoteStats, before: RemoteStats) -> (u64, u64) {
    (
        after.requests - before.requests,
        after.bytes_received - before.bytes_received,
    )
}

/// A remote database of `n` keys (short values, to keep it quick to build).
fn remote_of(n: u64, dir: &std::path::Path, remote: &std::path::Path) -> String {
    let url = format!("file://{}", remote.display());
    let db = Db::builder(dir)
        .remote(&url)
        .sync(s4db::SyncPolicy::Never)
        .open_blocking()
        .unwrap();
    let mut i = 0;
    while i < n {
        db.put_many((i..(i + 20_000).min(n)).map(|k| (key_for(k), value_for(k, 8))))
            .unwrap();
        i += 20_000;
    }
    db.upload().unwrap();
    db.close().unwrap();
    url
}

#[test]
fn a_cold_get_on_a_million_keys_takes_three_requests_and_little_data() {
    let (d, r) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = remote_of(1_000_000, d.path(), r.path());
    let index_size: u64 = common::run_files(r.path())
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(index_size > 20 << 20, "a big index: {index_size} bytes");
    let root_size = std::fs::metadata(r.path().join("index.idx")).unwrap().len();
    assert!(root_size < 64 << 10, "a small root: {root_size} bytes");

    let reader = Db::open_remote(&url).unwrap();
    assert_eq!(reader.len(), 1_000_000);
    let opened = reader.remote_stats().unwrap();
    assert_eq!(
        opened.requests, 1,
        "one read of the header, tables and directory"
    );

    let before = reader.remote_stats().unwrap();
    assert_eq!(
        reader.get(key_for(123_456)).unwrap().unwrap(),
        value_for(123_456, 8)
    );
    let (reqs, bytes) = delta(reader.remote_stats().unwrap(), before);
    assert_eq!(reqs, 2, "one page, one record");
    let (cold_reqs, cold_bytes) = (opened.requests + reqs, opened.bytes_received + bytes);
    assert!(cold_reqs <= 3);
    assert!(
        cold_bytes <= 256 << 10,
        "a cold get transferred {cold_bytes} bytes"
    );

    // The page is cached now: one request, for the record.
    let before = reader.remote_stats().unwrap();
    assert_eq!(
        reader.get(key_for(123_456)).unwrap().unwrap(),
        value_for(123_456, 8)
    );
    assert_eq!(delta(reader.remote_stats().unwrap(), before).0, 1);

    // A missing key costs no record request: at most its page, then nothing.
    let before = reader.remote_stats().unwrap();
    assert_eq!(reader.get("no-such-key").unwrap(), None);
    assert!(delta(reader.remote_stats().unwrap(), before).0 <= 1);
    let before = reader.remote_stats().unwrap();
    assert_eq!(reader.get("no-such-key").unwrap(), None);
    assert_eq!(delta(reader.remote_stats().unwrap(), before).0, 0);

    // get_many fetches pages and records with few requests.
    let keys: Vec<String> = (0..200).map(|i| key_for(i * 4999)).collect();
    let before = reader.remote_stats().unwrap();
    let got = reader.get_many(&keys).unwrap();
    assert!(
        got.iter()
            .zip(0..)
            .all(|(v, i)| v.as_deref() == Some(value_for(i * 4999, 8).as_slice()))
    );
    let (reqs, _) = delta(reader.remote_stats().unwrap(), before);
    assert!(reqs < 400, "{reqs} requests for 200 keys");

    // The full download is still available, and costs the whole index.
    let full = s4db::DbBuilder::for_remote(&url)
        .load_index(LoadIndex::Full)
        .open_blocking()
        .unwrap();
    assert!(full.remote_stats().unwrap().bytes_received >= index_size);
    assert_eq!(
        full.get(key_for(999_999)).unwrap().unwrap(),
        value_for(999_999, 8)
    );
}

#[test]
fn a_lazy_reader_over_http_counts_the_same_requests() {
    let s3 = TestS3::start();
    let a = tempfile::tempdir().unwrap();
    let db = s3.builder(a.path(), "lazy").open_blocking().unwrap();
    db.put_many((0..5000).map(|i| (key_for(i), value_for(i, 30))))
        .unwrap();
    db.upload().unwrap();
    let reader = Db::open_remote(s3.public_url("lazy")).unwrap();
    assert_eq!(reader.remote_stats().unwrap().requests, 1);
    assert_eq!(
        reader.get(key_for(4321)).unwrap().unwrap(),
        value_for(4321, 30)
    );
    assert_eq!(reader.remote_stats().unwrap().requests, 3);
    assert!(reader.contains(key_for(4321)).unwrap());
    assert_eq!(
        reader.remote_stats().unwrap().requests,
        3,
        "contains reads no record"
    );
    assert_eq!(
        reader.keys().unwrap().len(),
        5000,
        "listing loads the whole index"
    );
}

#[test]
fn the_reader_stays_correct_across_another_writers_uploads() {
    let s3 = TestS3::start();
    let a = tempfile::tempdir().unwrap();
    let writer = s3
        .builder(a.path(), "fresh")
        .max_segment_size(8 << 10)
        .open_blocking()
        .unwrap();
    writer
        .put_many((0..2000).map(|i| (key_for(i), format!("v1-{i}"))))
        .unwrap();
    writer.upload().unwrap();

    let reader = Db::open_remote(s3.public_url("fresh")).unwrap();
    assert_eq!(reader.get(key_for(10)).unwrap().unwrap(), "v1-10");
    assert!(!reader.refresh().unwrap(), "nothing changed yet");

    writer.put(key_for(10), "v2-10").unwrap();
    writer.put("new-key", "new").unwrap();
    writer.upload().unwrap();
    // Until it refreshes, the reader keeps its consistent older view: the
    // runs its root names never change, so a page it had not read yet is
    // still of that commit.
    assert_eq!(reader.get(key_for(10)).unwrap().unwrap(), "v1-10");
    assert_eq!(reader.get("new-key").unwrap(), None);
    let cached = reader.remote_stats().unwrap().cached_index_pages;
    assert!(reader.refresh().unwrap());
    assert_eq!(
        reader.remote_stats().unwrap().cached_index_pages,
        cached,
        "the pages of the runs the new commit keeps stay cached"
    );
    assert_eq!(reader.get(key_for(10)).unwrap().unwrap(), "v2-10");
    assert_eq!(reader.get("new-key").unwrap().as_deref(), Some(&b"new"[..]));
    assert!(!reader.refresh().unwrap());

    // Compaction and garbage collection remove the segments the reader's
    // pages point at: it reloads on 404 and answers from the new index.
    writer
        .compact_with(s4db::CompactOptions::default().full(true))
        .unwrap();
    writer.upload().unwrap();
    writer.gc(std::time::Duration::ZERO).unwrap();
    for i in [0, 10, 1999] {
        let want = if i == 10 {
            "v2-10".to_string()
        } else {
            format!("v1-{i}")
        };
        assert_eq!(reader.get(key_for(i)).unwrap().unwrap(), want);
    }
    assert!(!reader.refresh().unwrap());
}
