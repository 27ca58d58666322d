//! The public API, one behaviour per test.

mod common;

use common::{crash_image, key_for, segment_files, value_for};
use s4db::{CompactOptions, Db, Error, MAX_KEY_LEN, SyncPolicy, WriteBatch};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A database with 4 KiB segments, so that a few hundred records span many.
async fn small_segments(dir: &std::path::Path) -> Db {
    Db::builder(dir)
        .max_segment_size(4096)
        .open()
        .await
        .unwrap()
}

#[tokio::test]
async fn put_get_delete_round_trip() {
    let d = tmp();
    let db = Db::open(d.path()).await.unwrap();
    assert_eq!(db.get("a").await.unwrap(), None);
    db.put("a", "1").await.unwrap();
    db.put(b"bin\x00key", [0u8, 255, 7]).await.unwrap();
    assert_eq!(db.get("a").await.unwrap().unwrap(), "1");
    assert_eq!(
        db.get(b"bin\x00key").await.unwrap().unwrap(),
        vec![0u8, 255, 7]
    );
    assert!(db.contains("a").await.unwrap());
    assert_eq!(db.len(), 2);
    db.delete("a").await.unwrap();
    db.delete("never-existed").await.unwrap();
    assert_eq!(db.get("a").await.unwrap(), None);
    assert!(!db.contains("a").await.unwrap());
    assert_eq!(db.len(), 1);
}

#[tokio::test]
async fn empty_value_is_a_value_not_a_delete() {
    let d = tmp();
    let db = Db::open(d.path()).await.unwrap();
    db.put("k", "").await.unwrap();
    assert_eq!(db.get("k").await.unwrap().unwrap().len(), 0);
    db.close().await.unwrap();
    let db = Db::open(d.path()).await.unwrap();
    assert_eq!(db.get("k").await.unwrap().unwrap().len(), 0);
}

#[tokio::test]
async fn empty_and_oversized_keys_are_rejected_and_max_key_works() {
    let d = tmp();
    let db = Db::open(d.path()).await.unwrap();
    assert!(matches!(
        db.put("", "v").await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(db.get("").await, Err(Error::InvalidArgument(_))));
    let long = vec![b'k'; MAX_KEY_LEN + 1];
    assert!(matches!(
        db.put(&long, "v").await,
        Err(Error::InvalidArgument(_))
    ));
    let max = vec![b'k'; MAX_KEY_LEN];
    db.put(&max, "v").await.unwrap();
    db.close().await.unwrap();
    let db = Db::open(d.path()).await.unwrap();
    assert_eq!(db.get(&max).await.unwrap().unwrap(), "v");
    assert_eq!(db.len(), 1);
}

#[tokio::test]
async fn data_survives_close_and_reopen_without_replay() {
    let d = tmp();
    let db = Db::open(d.path()).await.unwrap();
    for i in 0..1000 {
        db.put(key_for(i), value_for(i, 100)).await.unwrap();
    }
    db.close().await.unwrap();
    let db = Db::open(d.path()).await.unwrap();
    assert_eq!(db.stats().await.unwrap().unindexed_changes, 0);
    assert_eq!(db.len(), 1000);
    for i in 0..1000 {
        assert_eq!(
            db.get(key_for(i)).await.unwrap().unwrap(),
            value_for(i, 100)
        );
    }
}

#[tokio::test]
async fn writes_after_the_last_index_are_replayed_on_open() {
    let d = tmp();
    let img = tmp();
    let db = Db::open(d.path()).await.unwrap();
    db.put("before", "1").await.unwrap();
    db.checkpoint().await.unwrap();
    db.put("after", "2").await.unwrap();
    db.delete("before").await.unwrap();
    crash_image(d.path(), img.path());
    let db2 = Db::open(img.path()).await.unwrap();
    assert_eq!(db2.get("after").await.unwrap().unwrap(), "2");
    assert_eq!(db2.get("before").await.unwrap(), None);
    assert_eq!(db2.len(), 1);
    assert!(db2.verify().await.unwrap().is_ok());
}

#[tokio::test]
async fn a_second_writer_gets_locked_and_read_only_handles_open_beside_the_writer() {
    let d = tmp();
    let db = Db::open(d.path()).await.unwrap();
    db.put("k", "v").await.unwrap();
    assert!(matches!(Db::open(d.path()).await, Err(Error::Locked(_))));
    // Readers open beside the writer and see what it had written.
    let r1 = Db::builder(d.path()).read_only(true).open().await.unwrap();
    assert_eq!(r1.get("k").await.unwrap().unwrap(), "v");
    db.put("k2", "v2").await.unwrap();
    assert_eq!(r1.get("k2").await.unwrap(), None, "a view is fixed at open");
    let r2 = Db::builder(d.path()).read_only(true).open().await.unwrap();
    assert_eq!(r2.get("k2").await.unwrap().unwrap(), "v2");
    db.close().await.unwrap();
    drop(db);
    assert!(matches!(r1.put("x", "y").await, Err(Error::ReadOnly)));
    assert!(matches!(r1.compact().await, Err(Error::ReadOnly)));
    // A writer opens beside readers.
    let w = Db::open(d.path()).await.unwrap();
    assert_eq!(r2.get("k").await.unwrap().unwrap(), "v");
    w.close().await.unwrap();
}

#[tokio::test]
async fn a_writer_waits_for_the_lock_up_to_lock_wait() {
    let d = tmp();
    let db = Db::open(d.path()).await.unwrap();
    let p = d.path().to_path_buf();
    let t = std::time::Instant::now();
    let waiter = tokio::spawn(async move {
        Db::builder(&p)
            .lock_wait(std::time::Duration::from_secs(10))
            .open()
            .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    db.close().await.unwrap();
    drop(db);
    let second = waiter.await.unwrap().unwrap();
    assert!(t.elapsed() >= std::time::Duration::from_millis(450));
    second.close().await.unwrap();
}

#[tokio::test]
async fn missing_database_without_create_is_not_found() {
    let d = tmp();
    let p = d.path().join("nope");
    assert!(matches!(
        Db::builder(&p).create_if_missing(false).open().await,
        Err(Error::NotFound(_))
    ));
    assert!(!p.exists());
    assert!(matches!(
        Db::builder(d.path()).create_if_missing(false).open().await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        Db::builder(&p).read_only(true).open().await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn bad_segment_size_option_is_invalid_argument() {
    let d = tmp();
    for size in [0, 100, 3 << 30] {
        assert!(matches!(
            Db::builder(d.path()).max_segment_size(size).open().await,
            Err(Error::InvalidArgument(_))
        ));
    }
}

#[tokio::test]
async fn keys_iter_and_scan_prefix_are_sorted_bytewise() {
    let d = tmp();
    let db = Db::open(d.path()).await.unwrap();
    for k in ["b2", "a", "b1", "c", "b10", "\u{ff}z"] {
        db.put(k, format!("v-{k}")).await.unwrap();
    }
    db.delete("c").await.unwrap();
    let keys: Vec<String> = db
        .keys()
        .await
        .unwrap()
        .iter()
        .map(|k| String::from_utf8(k.to_vec()).unwrap())
        .collect();
    assert_eq!(keys, ["a", "b1", "b10", "b2", "\u{ff}z"]);
    let mut it = db.scan_prefix("b1").await.unwrap();
    let mut got = Vec::new();
    while let Some(kv) = it.next().await {
        let (k, v) = kv.unwrap();
        got.push((
            String::from_utf8(k.to_vec()).unwrap(),
            String::from_utf8(v.to_vec()).unwrap(),
        ));
    }
    assert_eq!(
        got,
        [("b1".into(), "v-b1".into()), ("b10".into(), "v-b10".into())]
    );
    let mut it = db.iter().await.unwrap();
    assert_eq!(it.remaining(), 5);
    let mut n = 0;
    while let Some(kv) = it.next().await {
        kv.unwrap();
        n += 1;
    }
    assert_eq!(n, 5);
}

#[tokio::test]
async fn an_iterator_snapshot_survives_writes_and_compaction() {
    let d = tmp();
    let db = Db::open(d.path()).await.unwrap();
    db.put("a", "old").await.unwrap();
    db.put("b", "old").await.unwrap();
    let mut it = db.iter().await.unwrap();
    db.put("a", "new").await.unwrap();
    db.delete("b").await.unwrap();
    db.compact().await.unwrap();
    let (k, v) = it.next().await.unwrap().unwrap();
    assert_eq!((&k[..], &v[..]), (&b"a"[..], &b"old"[..]));
    let (k, v) = it.next().await.unwrap().unwrap();
    assert_eq!((&k[..], &v[..]), (&b"b"[..], &b"old"[..]));
    assert!(it.next().await.is_none());
}

#[tokio::test]
async fn get_many_answers_in_the_order_asked() {
    let d = tmp();
    let db = Db::open(d.path()).await.unwrap();
    db.put_many([("a", "1"), ("c", "3")]).await.unwrap();
    let got = db.get_many(["c", "b", "a"]).await.unwrap();
    assert_eq!(got, vec![Some("3".into()), None, Some("1".into())]);
}

#[tokio::test]
async fn later_operations_in_a_batch_win() {
    let d = tmp();
    let db = Db::open(d.path()).await.unwrap();
    db.put("x", "keep").await.unwrap();
    let mut b = WriteBatch::new();
    b.put("a", "1")
        .unwrap()
        .put("a", "2")
        .unwrap()
        .delete("x")
        .unwrap()
        .put("y", "3")
        .unwrap()
        .delete("y")
        .unwrap();
    db.write(b).await.unwrap();
    assert_eq!(db.get("a").await.unwrap().unwrap(), "2");
    assert_eq!(db.get("x").await.unwrap(), None);
    assert_eq!(db.get("y").await.unwrap(), None);
    assert_eq!(db.len(), 1);
}

#[tokio::test]
async fn a_batch_with_a_bad_key_writes_nothing() {
    let d = tmp();
    let db = Db::open(d.path()).await.unwrap();
    assert!(db.put_many([("a", "1"), ("", "2")]).await.is_err());
    assert_eq!(db.len(), 0);
    assert_eq!(db.get("a").await.unwrap(), None);
}

#[tokio::test]
async fn segments_rotate_at_the_size_limit_and_big_records_get_their_own() {
    let d = tmp();
    let db = small_segments(d.path()).await;
    for i in 0..100 {
        db.put(key_for(i), value_for(i + 1, 100)).await.unwrap(); // random hex: incompressible
    }
    let big = value_for(7, 20_000);
    db.put("big", &big).await.unwrap();
    db.put("after", "x").await.unwrap();
    let files = segment_files(d.path());
    assert!(files.len() >= 4, "{} segments", files.len());
    let sizes: Vec<u64> = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .collect();
    assert_eq!(
        sizes.iter().filter(|&&s| s > 4096).count(),
        1,
        "only the big record's segment is oversized: {sizes:?}"
    );
    assert_eq!(db.get("big").await.unwrap().unwrap(), big);
    db.close().await.unwrap();
    let db = Db::open(d.path()).await.unwrap();
    assert_eq!(db.get("big").await.unwrap().unwrap(), big);
    assert_eq!(
        db.get(key_for(50)).await.unwrap().unwrap(),
        value_for(51, 100)
    );
}

#[tokio::test]
async fn compaction_drops_dead_records_keeps_live_ones_and_never_reuses_numbers() {
    let d = tmp();
    let db = Db::builder(d.path())
        .max_segment_size(8192)
        .open()
        .await
        .unwrap();
    for round in 0..3u64 {
        for i in 0..200 {
            db.put(key_for(i), value_for(i * 10 + round, 60))
                .await
                .unwrap();
        }
    }
    for i in 0..50 {
        db.delete(key_for(i)).await.unwrap();
    }
    let names_before: Vec<_> = segment_files(d.path());
    let report = db
        .compact_with(CompactOptions::default().full(true))
        .await
        .unwrap();
    assert_eq!(report.records_written, 150);
    assert_eq!(report.segments_rewritten, names_before.len() as u64);
    assert!(report.bytes_after < report.bytes_before / 2, "{report:?}");
    assert_eq!(report.segments_before, names_before.len() as u64);
    let names_after = segment_files(d.path());
    assert_eq!(report.segments_after, names_after.len() as u64);
    assert!(
        names_after.iter().all(|n| !names_before.contains(n)),
        "a segment name was reused"
    );
    for i in 0..200 {
        let want = (i >= 50).then(|| value_for(i * 10 + 2, 60));
        assert_eq!(db.get(key_for(i)).await.unwrap().map(|b| b.to_vec()), want);
    }
    assert!(db.verify().await.unwrap().is_ok());
    db.put("new", "after compaction").await.unwrap();
    db.close().await.unwrap();
    let db = Db::open(d.path()).await.unwrap();
    assert_eq!(db.len(), 151);
    assert_eq!(db.get("new").await.unwrap().unwrap(), "after compaction");
    assert!(db.verify().await.unwrap().is_ok());
}

#[tokio::test]
async fn compaction_of_an_empty_database_works() {
    let d = tmp();
    let db = Db::open(d.path()).await.unwrap();
    db.put("a", "1").await.unwrap();
    db.delete("a").await.unwrap();
    let r = db.compact().await.unwrap();
    assert_eq!(r.records_written, 0);
    assert_eq!(db.len(), 0);
    db.close().await.unwrap();
    let db = Db::open(d.path()).await.unwrap();
    assert_eq!(db.get("a").await.unwrap(), None);
}

#[tokio::test]
async fn rebuild_index_reproduces_the_same_contents() {
    let d = tmp();
    let db = small_segments(d.path()).await;
    for i in 0..300 {
        db.put(key_for(i % 120), value_for(i, 50)).await.unwrap();
        if i % 7 == 0 {
            db.delete(key_for(i % 13)).await.unwrap();
        }
    }
    db.compact().await.unwrap();
    db.put("post", "compaction").await.unwrap();
    let before: Vec<_> = collect(&db).await;
    let report = db.rebuild_index().await.unwrap();
    assert_eq!(report.keys, before.len() as u64);
    assert!(report.skipped.is_empty() && report.torn_tail.is_none());
    assert_eq!(collect(&db).await, before);
    db.close().await.unwrap();
    let db = Db::open(d.path()).await.unwrap();
    assert_eq!(collect(&db).await, before);
}

async fn collect(db: &Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut it = db.iter().await.unwrap();
    let mut out = Vec::new();
    while let Some(kv) = it.next().await {
        let (k, v) = kv.unwrap();
        out.push((k.to_vec(), v.to_vec()));
    }
    out
}

#[tokio::test]
async fn a_closed_handle_refuses_work() {
    let d = tmp();
    let db = Db::open(d.path()).await.unwrap();
    let clone = db.clone();
    db.close().await.unwrap();
    assert!(matches!(clone.get("a").await, Err(Error::Closed(_))));
    assert!(matches!(clone.put("a", "b").await, Err(Error::Closed(_))));
    db.close().await.unwrap(); // idempotent
    drop((db, clone));
    Db::open(d.path()).await.unwrap(); // and the lock is released
}

#[tokio::test]
async fn every_sync_policy_round_trips() {
    for policy in [
        SyncPolicy::Never,
        SyncPolicy::OnFlush,
        SyncPolicy::EveryWrite,
    ] {
        let d = tmp();
        let db = Db::builder(d.path()).sync(policy).open().await.unwrap();
        db.put("k", "v").await.unwrap();
        db.flush().await.unwrap();
        assert_eq!(db.get("k").await.unwrap().unwrap(), "v");
    }
}

#[tokio::test]
async fn stats_count_keys_segments_and_bytes() {
    let d = tmp();
    let db = Db::open(d.path()).await.unwrap();
    db.put("a", "1").await.unwrap();
    db.put("a", "2").await.unwrap();
    db.put("b", "3").await.unwrap();
    let s = db.stats().await.unwrap();
    assert_eq!(s.keys, 2);
    assert_eq!(s.segments, 1);
    assert_eq!(s.live_bytes, 2 * (12 + 1 + 1));
    assert_eq!(s.total_bytes, 48 + 3 * 14);
    assert_eq!(s.unindexed_changes, 2);
}

#[test]
fn the_blocking_handle_mirrors_the_async_one() {
    let d = tmp();
    let db = s4db::blocking::Db::open(d.path()).unwrap();
    db.put("a", "1").unwrap();
    db.put_many([("b", "2"), ("c", "3")]).unwrap();
    db.delete("c").unwrap();
    assert_eq!(db.get("a").unwrap().unwrap(), "1");
    assert_eq!(db.len(), 2);
    let all: Vec<_> = db.iter().unwrap().map(|kv| kv.unwrap().0).collect();
    assert_eq!(all, vec!["a", "b"]);
    let full = CompactOptions::default().full(true);
    assert_eq!(db.compact_with(full).unwrap().records_written, 2);
    assert!(db.verify().unwrap().is_ok());
    db.put_many([("p1", "x"), ("p2", "y"), ("q", "z")]).unwrap();
    assert_eq!(db.delete_prefix("p").unwrap(), 2);
    assert_eq!(db.delete_range("a"..="b").unwrap(), 2);
    let all: Vec<_> = db.iter().unwrap().map(|kv| kv.unwrap().0).collect();
    assert_eq!(all, vec!["q"]);
    db.close().unwrap();
}

#[test]
fn the_async_handle_works_without_a_runtime_too() {
    // The async methods never need tokio's reactor: a minimal executor works.
    let d = tmp();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let db = Db::open(d.path()).await.unwrap();
        db.put("k", "v").await.unwrap();
        assert_eq!(db.get("k").await.unwrap().unwrap(), "v");
    });
}

#[test]
fn db_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Db>();
    check::<s4db::blocking::Db>();
    check::<s4db::Iter>();
}

#[tokio::test]
async fn debug_output_is_short_and_names_the_directory() {
    let d = tmp();
    let db = Db::open(d.path()).await.unwrap();
    for i in 0..1000 {
        db.put(key_for(i), value_for(i, 100)).await.unwrap();
    }
    let s = format!("{db:?}");
    assert!(s.len() < 400, "{} bytes of Debug output", s.len());
    assert!(
        s.contains(&*d.path().to_string_lossy()) && s.contains("keys: 1000"),
        "{s}"
    );
}

/// The sorted keys of `db`, as text.
async fn key_list(db: &Db) -> Vec<String> {
    db.keys()
        .await
        .unwrap()
        .iter()
        .map(|k| String::from_utf8(k.to_vec()).unwrap())
        .collect()
}

#[tokio::test]
async fn delete_prefix_removes_exactly_the_keys_under_it_and_stays_removed() {
    let d = tmp();
    let db = small_segments(d.path()).await;
    for k in ["a", "ab", "abc", "abd", "ac", "b", "ab\u{e9}"] {
        db.put(k, format!("v{k}")).await.unwrap();
    }
    db.delete("abd").await.unwrap();
    assert_eq!(db.delete_prefix("ab").await.unwrap(), 3);
    assert_eq!(key_list(&db).await, ["a", "ac", "b"]);
    assert_eq!(db.delete_prefix("zzz").await.unwrap(), 0);
    assert_eq!(db.get("ac").await.unwrap().unwrap(), "vac");
    db.close().await.unwrap();
    let db = Db::open(d.path()).await.unwrap();
    assert_eq!(key_list(&db).await, ["a", "ac", "b"]);
    assert_eq!(
        db.delete_prefix("").await.unwrap(),
        3,
        "an empty prefix is every key"
    );
    assert_eq!(db.len(), 0);
    assert!(db.verify().await.unwrap().is_ok());
}

#[tokio::test]
async fn delete_range_is_half_open_in_bytewise_order_and_refuses_a_backward_range() {
    let d = tmp();
    let db = Db::open(d.path()).await.unwrap();
    for i in 0..100u64 {
        db.put(key_for(i), value_for(i, 20)).await.unwrap();
    }
    // key00000010 .. key00000020: 10 keys, the end excluded.
    assert_eq!(db.delete_range(key_for(10)..key_for(20)).await.unwrap(), 10);
    assert!(db.contains(key_for(20)).await.unwrap());
    assert!(!db.contains(key_for(19)).await.unwrap());
    assert!(db.contains(key_for(9)).await.unwrap());
    // Inclusive and open-ended forms.
    assert_eq!(db.delete_range(key_for(20)..=key_for(20)).await.unwrap(), 1);
    assert_eq!(db.delete_range(key_for(95)..).await.unwrap(), 5);
    assert_eq!(db.delete_range(..key_for(5)).await.unwrap(), 5);
    assert_eq!(db.len(), 100 - 21);
    let before = key_list(&db).await;
    assert!(matches!(
        db.delete_range("b".."a").await,
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(db.delete_range("a".."a").await.unwrap(), 0);
    assert_eq!(
        key_list(&db).await,
        before,
        "a refused range deletes nothing"
    );
}

#[tokio::test]
async fn prefix_and_range_deletes_are_refused_by_a_read_only_handle() {
    let d = tmp();
    let db = Db::open(d.path()).await.unwrap();
    db.put("p1", "x").await.unwrap();
    db.close().await.unwrap();
    let r = Db::builder(d.path()).read_only(true).open().await.unwrap();
    assert!(matches!(r.delete_prefix("p").await, Err(Error::ReadOnly)));
    assert!(matches!(
        r.delete_range("a".."z").await,
        Err(Error::ReadOnly)
    ));
    assert_eq!(r.len(), 1);
}

#[tokio::test]
async fn the_index_is_mapped_not_loaded_at_open_and_after_every_checkpoint() {
    let d = tmp();
    let db = Db::open(d.path()).await.unwrap();
    let mut batch = WriteBatch::new();
    for i in 0..20_000 {
        batch.put(key_for(i), value_for(i, 20)).unwrap();
    }
    db.write(batch).await.unwrap();
    db.close().await.unwrap();
    // The runs are mapped (FORMAT.md §4.7); the small root is read.
    let file_len = |d: &tempfile::TempDir| {
        common::run_files(d.path())
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum::<u64>()
    };

    let db = Db::open(d.path()).await.unwrap();
    let reader = Db::builder(d.path()).read_only(true).open().await.unwrap();
    let s = db.stats().await.unwrap();
    assert_eq!(s.index_mapped_bytes, file_len(&d));
    assert!(
        s.index_memory_bytes * 50 < s.index_mapped_bytes,
        "heap {} of a {}-byte index",
        s.index_memory_bytes,
        s.index_mapped_bytes
    );
    // A checkpoint writes a new index.idx and maps it in place of the heap
    // copy it built; the reader keeps its map of the replaced file.
    for i in 0..20_000 {
        db.put(key_for(i), value_for(i + 1, 20)).await.unwrap();
    }
    db.checkpoint().await.unwrap();
    let s = db.stats().await.unwrap();
    assert_eq!(
        (s.index_mapped_bytes, s.unindexed_changes),
        (file_len(&d), 0)
    );
    assert!(s.index_memory_bytes * 50 < s.index_mapped_bytes);
    for i in (0..20_000).step_by(97) {
        assert_eq!(
            db.get(key_for(i)).await.unwrap().unwrap(),
            value_for(i + 1, 20)
        );
        assert_eq!(
            reader.get(key_for(i)).await.unwrap().unwrap(),
            value_for(i, 20)
        );
    }
    assert!(db.verify().await.unwrap().problems.is_empty());
}

/// Every key and value of `db`.
async fn all_of(db: &Db) -> std::collections::BTreeMap<Vec<u8>, Vec<u8>> {
    let mut it = db.iter().await.unwrap();
    let mut out = std::collections::BTreeMap::new();
    while let Some(kv) = it.next().await {
        let (k, v) = kv.unwrap();
        out.insert(k.to_vec(), v.to_vec());
    }
    out
}

/// 400 keys in 4 KiB segments, then the first 100 overwritten twice: the
/// early segments are mostly dead, the later ones wholly live.
async fn early_segments_mostly_dead(dir: &std::path::Path) -> Db {
    let db = small_segments(dir).await;
    for i in 0..400 {
        db.put(key_for(i), value_for(i, 60)).await.unwrap();
    }
    for round in 1..3 {
        for i in 0..100 {
            db.put(key_for(i), value_for(i + round * 1000, 60))
                .await
                .unwrap();
        }
    }
    db
}

#[tokio::test]
async fn selective_compaction_rewrites_only_segments_past_the_threshold() {
    let d = tmp();
    let db = early_segments_mostly_dead(d.path()).await;
    let want = all_of(&db).await;
    db.checkpoint().await.unwrap();
    let before: Vec<(std::path::PathBuf, Vec<u8>)> = segment_files(d.path())
        .into_iter()
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    let r = db.compact().await.unwrap();
    assert!(
        r.segments_rewritten > 0 && r.segments_rewritten < r.segments_before,
        "{r:?}"
    );
    // Every segment left alone is still there, byte for byte.
    let after = segment_files(d.path());
    let untouched = before
        .iter()
        .filter(|(p, bytes)| after.contains(p) && std::fs::read(p).unwrap() == *bytes)
        .count() as u64;
    assert_eq!(untouched, r.segments_before - r.segments_rewritten);
    assert_eq!(all_of(&db).await, want);
    assert!(db.verify().await.unwrap().is_ok());
    // A second pass finds nothing dead enough.
    let again = db.compact().await.unwrap();
    assert_eq!((again.segments_rewritten, again.records_written), (0, 0));
    assert_eq!(again.segments_after, again.segments_before);
    // The directory reopens, and rebuilds from its segments, to the same.
    db.close().await.unwrap();
    let db = Db::open(d.path()).await.unwrap();
    assert_eq!(all_of(&db).await, want);
    db.rebuild_index().await.unwrap();
    assert_eq!(all_of(&db).await, want);
}

#[tokio::test]
async fn a_selective_compaction_keeps_the_tombstones_older_segments_still_need() {
    let d = tmp();
    let db = small_segments(d.path()).await;
    // Segment 1 (wholly live, left alone) holds "victim"; later segments
    // hold filler that is then overwritten, and the delete of "victim".
    db.put("victim", "old value").await.unwrap();
    for i in 0..40 {
        db.put(key_for(i), value_for(i, 60)).await.unwrap();
    }
    db.delete("victim").await.unwrap();
    for i in 40..200 {
        db.put(key_for(i), value_for(i, 60)).await.unwrap();
    }
    for i in 40..200 {
        db.put(key_for(i), value_for(i + 7, 60)).await.unwrap();
    }
    let r = db.compact().await.unwrap();
    assert!(r.segments_rewritten > 0, "{r:?}");
    assert_eq!(db.get("victim").await.unwrap(), None);
    // A rebuild replays the segments left alone, then the run: the carried
    // tombstone keeps the old put from coming back.
    db.rebuild_index().await.unwrap();
    assert_eq!(db.get("victim").await.unwrap(), None);
    assert_eq!(db.len(), 200);
}

#[tokio::test]
async fn compaction_thresholds_outside_1_to_100_percent_are_refused() {
    let d = tmp();
    let db = early_segments_mostly_dead(d.path()).await;
    for p in [0u8, 101, 255] {
        let err = db
            .compact_with(CompactOptions::default().min_dead_percent(p))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{p}: {err}");
    }
    // 100 %: only wholly dead segments (the first ones here), replaced by
    // one empty output.
    let r = db
        .compact_with(CompactOptions::default().min_dead_percent(100))
        .await
        .unwrap();
    assert!(r.segments_rewritten > 0, "{r:?}");
    assert_eq!(r.records_written, 0);
    assert_eq!(
        r.segments_after,
        r.segments_before - r.segments_rewritten + 1
    );
    assert_eq!(db.len(), 400);
}

#[tokio::test]
async fn an_in_memory_database_has_the_same_api_and_leaves_nothing_behind() {
    let db = Db::memory().await.unwrap();
    let dir = db.path().to_path_buf();
    if std::path::Path::new("/dev/shm").is_dir() {
        assert!(dir.starts_with("/dev/shm"), "{}", dir.display());
    }
    db.put("a", "1").await.unwrap();
    db.put_many([("b", "2"), ("c", "3")]).await.unwrap();
    db.delete("c").await.unwrap();
    assert_eq!(db.get("a").await.unwrap().unwrap(), "1");
    assert_eq!(db.len(), 2);
    let full = CompactOptions::default().full(true);
    assert_eq!(db.compact_with(full).await.unwrap().records_written, 2);
    db.checkpoint().await.unwrap();
    assert!(db.verify().await.unwrap().is_ok());
    assert_eq!(all_of(&db).await.len(), 2);
    // Every clone shares it; an iterator made before close keeps reading;
    // close removes the directory.
    let other = db.clone();
    drop(db);
    assert_eq!(other.get("b").await.unwrap().unwrap(), "2");
    let mut it = other.iter().await.unwrap();
    other.close().await.unwrap();
    assert!(!dir.exists(), "{} is left behind", dir.display());
    assert!(matches!(other.get("b").await, Err(Error::Closed(_))));
    assert_eq!(it.next().await.unwrap().unwrap().0, "a");
    drop(other);
    // Dropped without close: the same.
    let dropped = Db::memory().await.unwrap();
    dropped.put("k", "v").await.unwrap();
    let dir = dropped.path().to_path_buf();
    drop(dropped);
    assert!(!dir.exists(), "{} is left behind", dir.display());
    // Each one is new and empty.
    let (x, y) = (Db::memory().await.unwrap(), Db::memory().await.unwrap());
    x.put("k", "v").await.unwrap();
    assert_ne!(x.path(), y.path());
    assert_eq!(y.len(), 0);
    assert!(matches!(
        s4db::DbBuilder::memory().read_only(true).open().await,
        Err(Error::InvalidArgument(_))
    ));
}

/// A crash after a selective compaction committed but before it deleted the
/// segments it replaced leaves them beside the new index; an open deletes
/// them as obsolete, and a rebuild then gives the same data as before, the
/// compaction's copies winning over older values.
#[tokio::test]
async fn a_rebuild_after_a_crash_that_left_replaced_segments_keeps_the_latest_values() {
    let d = tmp();
    let db = small_segments(d.path()).await;
    for round in 0..2 {
        for i in 0..40u64 {
            db.put(key_for(i), value_for(i + round, 60)).await.unwrap();
        }
    }
    for i in 40..120u64 {
        db.put(key_for(i), value_for(i, 60)).await.unwrap();
    }
    db.flush().await.unwrap();
    let before: Vec<(std::path::PathBuf, Vec<u8>)> = segment_files(d.path())
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    let r = db
        .compact_with(CompactOptions::default().min_dead_percent(50))
        .await
        .unwrap();
    assert!(
        r.segments_rewritten > 0 && r.segments_rewritten < before.len() as u64,
        "{r:?}"
    );
    db.close().await.unwrap();
    // The crash before the deletion: the replaced segments are back.
    for (p, bytes) in &before {
        if !p.exists() {
            std::fs::write(p, bytes).unwrap();
        }
    }

    let db = small_segments(d.path()).await;
    db.rebuild_index().await.unwrap();
    db.close().await.unwrap();
    let db = small_segments(d.path()).await;
    assert_eq!(db.len(), 120);
    for i in 0..120u64 {
        let want = value_for(if i < 40 { i + 1 } else { i }, 60);
        assert_eq!(db.get(key_for(i)).await.unwrap().unwrap(), want, "key {i}");
    }
    assert!(db.verify().await.unwrap().is_ok());
}
