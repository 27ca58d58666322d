//! Readers running while a writer puts, deletes and compacts never see a
//! wrong value: every value read is one that was written for that key, and a
//! reader never sees a key go back to an older version.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use s4db::Db;

const KEYS: u64 = 200;

fn value(k: u64, version: u64) -> String {
    format!("k{k}:v{version}:{}", "pad".repeat((k % 20) as usize))
}

fn parse(v: &[u8]) -> (u64, u64) {
    let s = std::str::from_utf8(v).unwrap();
    let mut parts = s.split(':');
    let k = parts.next().unwrap()[1..].parse().unwrap();
    let ver = parts.next().unwrap()[1..].parse().unwrap();
    (k, ver)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_never_see_a_wrong_value_while_a_writer_puts_and_compacts() {
    let d = tempfile::tempdir().unwrap();
    let db = Db::builder(d.path())
        .max_segment_size(16 << 10)
        .open()
        .await
        .unwrap();
    for k in 0..KEYS {
        db.put(format!("key{k}"), value(k, 0)).await.unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..4u64 {
        let (db, stop) = (db.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let mut last = vec![0u64; KEYS as usize];
            let mut reads = 0u64;
            let mut k = r;
            while !stop.load(Ordering::Relaxed) || reads < 1000 {
                k = (k * 31 + 7) % KEYS;
                if let Some(v) = db.get(format!("key{k}")).await.unwrap() {
                    let (got_k, ver) = parse(&v);
                    assert_eq!(got_k, k, "value of another key");
                    assert_eq!(&v[..], value(k, ver).as_bytes(), "garbled value");
                    assert!(
                        ver >= last[k as usize],
                        "key {k} went back from v{} to v{ver}",
                        last[k as usize]
                    );
                    last[k as usize] = ver;
                }
                reads += 1;
                if reads.is_multiple_of(64) {
                    tokio::task::yield_now().await;
                }
            }
            reads
        }));
    }
    for version in 1..=30u64 {
        for k in 0..KEYS {
            if (k + version) % 11 == 0 {
                db.delete(format!("key{k}")).await.unwrap();
            } else {
                db.put(format!("key{k}"), value(k, version)).await.unwrap();
            }
        }
        if version.is_multiple_of(5) {
            db.compact_with(s4db::CompactOptions::default().full(true))
                .await
                .unwrap();
        }
        if version.is_multiple_of(7) {
            db.checkpoint().await.unwrap();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for r in readers {
        total += r.await.unwrap();
    }
    assert!(total >= 4000);
    assert!(db.verify().await.unwrap().is_ok());
    for k in 0..KEYS {
        let want = ((k + 30) % 11 != 0).then(|| value(k, 30));
        assert_eq!(
            db.get(format!("key{k}"))
                .await
                .unwrap()
                .map(|b| String::from_utf8(b.to_vec()).unwrap()),
            want
        );
    }
}

#[test]
fn concurrent_every_write_writers_share_fsyncs_and_lose_nothing() {
    let d = tempfile::tempdir().unwrap();
    let db = s4db::blocking::Db::builder(d.path())
        .sync(s4db::SyncPolicy::EveryWrite)
        .open_blocking()
        .unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    db.put(format!("t{t}-{i}"), format!("{t}/{i}")).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    db.close().unwrap();
    let db = s4db::blocking::Db::open(d.path()).unwrap();
    assert_eq!(db.len(), 1600);
    assert_eq!(db.get("t7-199").unwrap().unwrap(), "7/199");
}
