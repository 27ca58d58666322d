//! The index as layers (FORMAT.md §4.7, §4.8): what a commit writes grows
//! with the change, runs merge, deletes survive merges, and readers and
//! writers of a remote fetch only the runs they lack.

mod common;

use std::path::Path;

use common::{key_for, run_files, value_for};
use s4db::blocking::Db;

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

/// `n` keys `key%08d` with 30-byte values, checkpointed.
fn loaded(dir: &Path, n: u64) -> Db {
    let db = Db::builder(dir)
        .sync(s4db::SyncPolicy::Never)
        .open_blocking()
        .unwrap();
    for start in (0..n).step_by(10_000) {
        db.put_many((start..(start + 10_000).min(n)).map(|i| (key_for(i), value_for(i, 30))))
            .unwrap();
    }
    db.checkpoint().unwrap();
    db
}

#[test]
fn a_checkpoint_of_a_few_changed_keys_writes_a_run_of_about_their_size_and_keeps_the_base() {
    let d = tempfile::tempdir().unwrap();
    let db = loaded(d.path(), 100_000);
    let base = run_files(d.path());
    assert_eq!(base.len(), 1, "{base:?}");
    let base_len = file_len(&base[0]);
    assert!(base_len > 2 << 20, "a base of {base_len} bytes");

    for i in (0..100_000).step_by(1000) {
        db.put(key_for(i), "changed").unwrap();
    }
    db.delete(key_for(7)).unwrap();
    db.checkpoint().unwrap();
    let runs = run_files(d.path());
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0], base[0], "the base is kept as it is");
    assert_eq!(file_len(&runs[0]), base_len);
    let delta = file_len(&runs[1]);
    // 101 entries of 20 bytes plus 11-byte keys, and a small head.
    assert!(delta < 8 << 10, "a run of {delta} bytes for 101 changes");
    let root = file_len(&d.path().join("index.idx"));
    assert!(root < 8 << 10, "a root of {root} bytes");

    assert_eq!(db.get(key_for(1000)).unwrap().unwrap(), "changed");
    assert_eq!(db.get(key_for(7)).unwrap(), None);
    assert_eq!(db.get(key_for(8)).unwrap().unwrap(), value_for(8, 30));
    assert_eq!(db.len(), 99_999);
    assert!(db.verify().unwrap().is_ok());
    db.close().unwrap();
    let db = Db::open(d.path()).unwrap();
    assert_eq!(db.get(key_for(7)).unwrap(), None);
    assert_eq!(db.get(key_for(5000)).unwrap().unwrap(), "changed");
    assert_eq!(db.len(), 99_999);
}

#[test]
fn runs_merge_so_that_at_most_eight_remain_and_deletes_survive_every_merge() {
    let d = tempfile::tempdir().unwrap();
    let db = loaded(d.path(), 20_000);
    let mut model: std::collections::BTreeMap<String, Vec<u8>> = (0..20_000)
        .map(|i| (key_for(i), value_for(i, 30)))
        .collect();
    let mut most = 0;
    for round in 0..120u64 {
        for j in 0..40 {
            let k = key_for((round * 131 + j * 17) % 25_000);
            let v = format!("r{round}").into_bytes();
            db.put(&k, &v).unwrap();
            model.insert(k, v);
        }
        let gone = key_for((round * 37) % 25_000);
        db.delete(&gone).unwrap();
        model.remove(&gone);
        db.checkpoint().unwrap();
        most = most.max(run_files(d.path()).len());
    }
    assert!(most <= 8, "{most} runs at once");
    assert!(
        run_files(d.path()).len() >= 2,
        "small runs stay apart from the base"
    );
    let check = |db: &Db| {
        assert_eq!(db.len(), model.len() as u64);
        for (k, v) in &model {
            assert_eq!(db.get(k).unwrap().as_deref(), Some(v.as_slice()), "{k}");
        }
        for round in 0..120u64 {
            let gone = key_for((round * 37) % 25_000);
            assert_eq!(db.get(&gone).unwrap().is_some(), model.contains_key(&gone));
        }
        let keys = db.keys().unwrap();
        assert_eq!(keys.len(), model.len());
        assert!(db.verify().unwrap().is_ok());
    };
    check(&db);
    // A full compaction writes one new base, without tombstones.
    db.compact_with(s4db::CompactOptions::default().full(true))
        .unwrap();
    let runs = run_files(d.path());
    assert_eq!(runs.len(), 1);
    let head = std::fs::read(&runs[0]).unwrap();
    assert_eq!(&head[10..12], &[0, 0], "a base has no tombstone flag");
    check(&db);
    db.close().unwrap();
    check(&Db::open(d.path()).unwrap());
}

#[test]
fn an_upload_after_changing_a_few_keys_sends_their_run_and_a_small_root() {
    let (d, r) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = format!("file://{}", r.path().display());
    let db = Db::builder(d.path()).remote(&url).open_blocking().unwrap();
    db.put_many((0..100_000).map(|i| (key_for(i), value_for(i, 30))))
        .unwrap();
    let first = db.upload().unwrap();
    assert!(first.run_bytes > 2 << 20, "{first:?}");

    db.put_many((0..100_000).step_by(100).map(|i| (key_for(i), "changed")))
        .unwrap();
    let up = db.upload().unwrap();
    assert_eq!((up.segments_uploaded, up.runs_uploaded), (1, 1), "{up:?}");
    assert!(up.run_bytes < 40 << 10, "{up:?}");
    assert!(up.index_bytes < 8 << 10, "{up:?}");

    let reader = Db::open_remote(&url).unwrap();
    assert_eq!(reader.get(key_for(500)).unwrap().unwrap(), "changed");
    assert_eq!(
        reader.get(key_for(501)).unwrap().unwrap(),
        value_for(501, 30)
    );
    assert_eq!(reader.len(), 100_000);
}

#[test]
fn a_rebase_fetches_only_the_runs_it_lacks() {
    let (a, b, r) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let url = format!("file://{}", r.path().display());
    let one = Db::builder(a.path()).remote(&url).open_blocking().unwrap();
    one.put_many((0..100_000).map(|i| (key_for(i), value_for(i, 30))))
        .unwrap();
    let first = one.upload().unwrap();
    let two = Db::builder(b.path()).remote(&url).open_blocking().unwrap();
    two.download().unwrap();

    one.put("from-one", "1").unwrap();
    one.upload().unwrap();
    two.put("from-two", "2").unwrap();
    let before = two.remote_stats().unwrap().bytes_received;
    let up = two
        .upload_with(s4db::UploadOptions::default().rebase(true))
        .unwrap();
    assert_eq!(up.rebased, 1);
    let fetched = two.remote_stats().unwrap().bytes_received - before;
    assert!(
        fetched < first.run_bytes / 10,
        "the rebase fetched {fetched} bytes; the base run is {}",
        first.run_bytes
    );
    let reader = Db::open_remote(&url).unwrap();
    assert_eq!(reader.get("from-one").unwrap().unwrap(), "1");
    assert_eq!(reader.get("from-two").unwrap().unwrap(), "2");
    assert_eq!(reader.len(), 100_002);
}

#[test]
fn a_cold_reader_keeps_the_pages_of_the_runs_a_new_commit_keeps() {
    let (d, r) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = format!("file://{}", r.path().display());
    let db = Db::builder(d.path()).remote(&url).open_blocking().unwrap();
    db.put_many((0..100_000).map(|i| (key_for(i), value_for(i, 30))))
        .unwrap();
    db.upload().unwrap();
    let reader = Db::open_remote(&url).unwrap();
    for i in (0..100_000).step_by(997) {
        assert_eq!(reader.get(key_for(i)).unwrap().unwrap(), value_for(i, 30));
    }
    let cached = reader.remote_stats().unwrap().cached_index_pages;
    assert!(cached > 50, "{cached} pages cached");

    db.put("unrelated", "x").unwrap();
    db.upload().unwrap();
    assert!(reader.refresh().unwrap());
    let kept = reader.remote_stats().unwrap().cached_index_pages;
    assert!(kept * 10 >= cached * 9, "{kept} of {cached} pages kept");
    // Those pages answer without a request for them: one per record.
    let before = reader.remote_stats().unwrap().requests;
    for i in (0..100_000).step_by(997).take(20) {
        assert_eq!(reader.get(key_for(i)).unwrap().unwrap(), value_for(i, 30));
    }
    let requests = reader.remote_stats().unwrap().requests - before;
    assert!(requests <= 20 + 1, "{requests} requests for 20 cached keys");
    assert_eq!(reader.get("unrelated").unwrap().unwrap(), "x");
}

#[test]
fn a_delete_survives_a_checkpoint_once_compaction_dropped_a_segment_an_older_run_names() {
    // An older run's entry may name a segment the root no longer lists once
    // a newer run shadows it (FORMAT.md §4.7). A checkpoint asks the older
    // runs only whether they mention a deleted key; it must not read such an
    // entry's location. (Found by tests/model.rs.)
    let d = tempfile::tempdir().unwrap();
    let db = Db::builder(d.path()).open_blocking().unwrap();
    // Enough keys that the base run outlives the checkpoint's merges.
    for i in 0..20 {
        db.put(key_for(i), value_for(i, 30)).unwrap();
    }
    db.compact_with(s4db::CompactOptions::default().full(true))
        .unwrap();
    // Its own segment; the rebuild writes one base run naming it.
    db.put("doomed", "v").unwrap();
    db.rebuild_index().unwrap();
    db.delete("doomed").unwrap();
    db.put(key_for(100), "new").unwrap();
    // Drops the wholly dead segment of "doomed"; the base run stays.
    let r = db
        .compact_with(s4db::CompactOptions::default().min_dead_percent(50))
        .unwrap();
    assert_eq!(r.segments_rewritten, 1, "{r:?}");
    db.put(key_for(101), "later").unwrap();
    db.close().unwrap();
    drop(db);

    let db = Db::builder(d.path()).open_blocking().unwrap();
    assert_eq!(db.get("doomed").unwrap(), None);
    assert_eq!(db.get(key_for(100)).unwrap().as_deref(), Some(&b"new"[..]));
    assert_eq!(
        db.get(key_for(101)).unwrap().as_deref(),
        Some(&b"later"[..])
    );
    assert_eq!(db.len(), 22);
    assert!(db.verify().unwrap().is_ok());
}

// Reading the bytes as FORMAT.md lays them out (§4.2-§4.8), little-endian.

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The segment table of an index file or a root (§4.3): `(number, writer)`
/// in table order.
fn segment_table(b: &[u8]) -> Vec<(u64, u64)> {
    (0..u32_at(b, 56) as usize)
        .map(|i| (u64_at(b, 96 + 32 * i), u64_at(b, 96 + 32 * i + 8)))
        .collect()
}

/// The runs a root names (§4.8), oldest first: `(number, writer)`.
fn root_runs(b: &[u8]) -> Vec<(u64, u64)> {
    let table = u64_at(b, 64) as usize;
    (0..u32_at(b, 12) as usize)
        .map(|i| (u64_at(b, table + 40 * i), u64_at(b, table + 40 * i + 8)))
        .collect()
}

/// The bytes of the run `(number, writer)` in `dir`.
fn run_bytes(dir: &Path, (number, writer): (u64, u64)) -> Vec<u8> {
    std::fs::read(dir.join(format!("index_{number:08}_{writer:016x}.run"))).unwrap()
}

/// Every entry of a run with a one-level directory (§4.4, §4.5):
/// `(segment, offset, length)`.
fn run_entries(b: &[u8]) -> Vec<(u32, u32, u32)> {
    assert_eq!(u32_at(b, 12), 1, "one directory level");
    let (pages, dir) = (u32_at(b, 60) as usize, u64_at(b, 64) as usize);
    let mut out = Vec::new();
    for p in 0..pages {
        let start = u64_at(b, dir + 8 * p) as usize;
        let n = u32_at(b, start) as usize;
        for i in 0..n {
            let e = start + 4 + 4 * n + 16 * i;
            out.push((u32_at(b, e), u32_at(b, e + 4), u32_at(b, e + 8)));
        }
    }
    out
}

#[test]
fn a_run_of_tombstones_only_lists_no_segment_and_its_entries_name_segment_0() {
    // FORMAT.md §4.5, §4.7: a tombstone names segment 0 whatever S is, so a
    // run holding only tombstones has S = 0 and still passes every check.
    let d = tempfile::tempdir().unwrap();
    let db = loaded(d.path(), 5_000);
    for i in [3, 70, 4_000] {
        db.delete(key_for(i)).unwrap();
    }
    db.checkpoint().unwrap();
    let root = std::fs::read(d.path().join("index.idx")).unwrap();
    let runs = root_runs(&root);
    assert_eq!(runs.len(), 2, "the base is kept: {runs:?}");
    let run = run_bytes(d.path(), runs[1]);
    assert_eq!(u32_at(&run, 10) & 0xffff, 0x1, "flag 0x1 (tombstones)");
    assert_eq!(u32_at(&run, 56), 0, "segment_count");
    assert_eq!(u64_at(&run, 40), 3, "key_count counts the tombstones");
    assert_eq!(u64_at(&run, 48), 0, "live_bytes");
    assert_eq!(run_entries(&run), vec![(0, 0, 0); 3]);
    assert!(db.verify().unwrap().is_ok());
    db.close().unwrap();
    drop(db);
    let db = Db::open(d.path()).unwrap();
    assert_eq!(db.get(key_for(70)).unwrap(), None);
    assert_eq!(db.len(), 4_997);
    assert!(db.verify().unwrap().is_ok());
}

#[test]
fn a_selective_compaction_writes_a_checkpoint_run_and_none_when_it_would_hold_no_entry() {
    // FORMAT.md §4.7, §5 step 2: a selective compaction keeps the base and
    // writes the moved keys as a checkpoint writes its changes; moving no
    // key, it writes no run at all.
    let d = tempfile::tempdir().unwrap();
    let db = Db::builder(d.path())
        .max_segment_size(8 << 10)
        .open_blocking()
        .unwrap();
    db.put_many((0..2_000).map(|i| (key_for(i), value_for(i, 30))))
        .unwrap();
    db.checkpoint().unwrap();
    // A segment of records that all die: nothing in it moves.
    let big = "x".repeat(3_000);
    for i in 0..4 {
        db.put(format!("doomed{i}"), &big).unwrap();
    }
    for i in 0..4 {
        db.delete(format!("doomed{i}")).unwrap();
    }
    db.checkpoint().unwrap();
    let before = root_runs(&std::fs::read(d.path().join("index.idx")).unwrap());
    for &id in &before {
        assert!(
            u64_at(&run_bytes(d.path(), id), 40) > 0,
            "a checkpoint's run of no entry"
        );
    }
    let r = db.compact().unwrap();
    assert!(r.segments_rewritten >= 1 && r.segments_after > r.segments_rewritten);
    let root = std::fs::read(d.path().join("index.idx")).unwrap();
    let runs = root_runs(&root);
    assert_eq!(runs[0], before[0], "the base is kept");
    for &id in &runs {
        assert!(
            u64_at(&run_bytes(d.path(), id), 40) > 0,
            "a run of no entry"
        );
    }
    // Moving some keys: a run of about their number, not a new base.
    for i in 0..100 {
        db.put(key_for(i), "new").unwrap();
    }
    db.checkpoint().unwrap();
    let r = db.compact().unwrap();
    assert!(r.segments_rewritten >= 1, "{r:?}");
    let root = std::fs::read(d.path().join("index.idx")).unwrap();
    let runs = root_runs(&root);
    assert!(runs.len() >= 2, "{runs:?}");
    assert_eq!(runs[0], before[0], "the base is kept");
    assert!(u64_at(&run_bytes(d.path(), runs[runs.len() - 1]), 40) < 1_000);
    assert_eq!(db.get(key_for(2)).unwrap().unwrap(), "new");
    assert_eq!(db.get(key_for(300)).unwrap().unwrap(), value_for(300, 30));
    assert_eq!(db.len(), 2_000);
    assert!(db.verify().unwrap().is_ok());
}

#[test]
fn after_merge_index_of_an_ingest_the_table_keeps_the_ingest_order_and_replaying_it_agrees() {
    // FORMAT.md §4.3: the table's own order is the replay order, also once
    // merge-index has made the counts exact again (flag 0x2 clear) and the
    // order no longer ascends.
    let (remote, a, b, m) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let url = format!("file://{}", remote.path().display());
    let mut shards = Vec::new();
    for (dir, tag) in [(&a, "a"), (&b, "b")] {
        let db = Db::builder(dir.path()).open_blocking().unwrap();
        db.put("both", tag).unwrap();
        db.put(format!("only-{tag}"), tag).unwrap();
        db.stage(s4db::DbBuilder::for_remote(&url), tag).unwrap();
        let writer = u64_at(&std::fs::read(dir.path().join("index.idx")).unwrap(), 16);
        shards.push((writer, tag));
    }
    // Both shards' segments are numbered 1: ingest the one of the larger
    // writer first, so that the table does not ascend.
    shards.sort();
    let (low, high) = (shards[0].1, shards[1].1);
    s4db::DbBuilder::for_remote(&url)
        .ingest_blocking([high, low])
        .unwrap();
    let db = Db::builder(m.path()).remote(&url).open_blocking().unwrap();
    db.download().unwrap();
    db.merge_index().unwrap();
    let root = std::fs::read(m.path().join("index.idx")).unwrap();
    assert_eq!(u32_at(&root, 8) & 0xffff, 2, "a version-2 root");
    assert_eq!(u32_at(&root, 10) & 0x2, 0, "exact counts: flag 0x2 clear");
    let table = segment_table(&root);
    assert_eq!(table.len(), 2);
    assert_eq!(table[0].1, shards[1].0, "the shard given first comes first");
    assert!(table[0] > table[1], "not ascending: {table:?}");
    let runs = root_runs(&root);
    assert_eq!(runs.len(), 1);
    assert_eq!(
        segment_table(&run_bytes(m.path(), runs[0])),
        table,
        "the run lists its segments in the root's order"
    );
    // Replaying the table in its order (verify) agrees: the shard given
    // last wins.
    assert_eq!(db.get("both").unwrap().unwrap(), low);
    assert!(db.verify().unwrap().is_ok());
    // Replaying in ascending order (a rebuild, §6.3) resolves it otherwise.
    db.rebuild_index().unwrap();
    assert_eq!(db.get("both").unwrap().unwrap(), high);
}
