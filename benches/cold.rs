//! Cold lookups (issue #5): a reader with no local copy, at 1M and 10M keys,
//! against an in-process S3 server on loopback, with no added latency and
//! with 20 ms added to every request (S3's first-byte latency).
//!
//! For each size it prints requests, bytes and time of: the lazy open, the
//! first get, later gets, a `get_many` of 1,000 random keys on a new reader,
//! and the full-download open for comparison; and
//! criterion measures the cold open + first get.
//!
//! ```text
//! cargo bench --bench cold                      # 1M and 10M keys
//! S4DB_BENCH_COLD_SIZES=100000 cargo bench --bench cold -- --test
//! ```

#[path = "../tests/common/data.rs"]
mod data;
#[path = "../tests/common/s3.rs"]
mod s3;

use std::sync::atomic::Ordering;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use s3::TestS3;
use s4db::blocking::Db;
use s4db::{DbBuilder, LoadIndex, SyncPolicy};

fn sizes() -> Vec<u64> {
    std::env::var("S4DB_BENCH_COLD_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000_000, 10_000_000])
}

fn build(s3: &TestS3, prefix: &str, n: u64) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let db = s3
        .builder(dir.path(), prefix)
        .sync(SyncPolicy::Never)
        .open_blocking()
        .unwrap();
    let mut i = 0;
    while i < n {
        db.put_many((i..(i + 10_000).min(n)).map(|k| (data::key_for(k), data::value_for(k, 20))))
            .unwrap();
        i += 10_000;
    }
    let up = db.upload().unwrap();
    db.close().unwrap();
    up.index_bytes
}

fn reader(s3: &TestS3, prefix: &str, load: LoadIndex) -> Db {
    DbBuilder::for_remote(s3.url(prefix))
        .credentials(TestS3::credentials())
        .load_index(load)
        .open_blocking()
        .unwrap()
}

fn cold(c: &mut Criterion) {
    let s3 = TestS3::start();
    let mut g = c.benchmark_group("cold");
    g.sample_size(10);
    for n in sizes() {
        let prefix = format!("n{n}");
        let index_bytes = build(&s3, &prefix, n);
        for delay in [0u64, 20] {
            s3.faults.delay_ms.store(delay, Ordering::SeqCst);
            let t = Instant::now();
            let r = reader(&s3, &prefix, LoadIndex::Lazy);
            let open = (t.elapsed(), r.remote_stats().unwrap());
            let t = Instant::now();
            r.get(data::key_for(n / 3)).unwrap().unwrap();
            let first = (t.elapsed(), r.remote_stats().unwrap());
            let mut rng = data::Xorshift::default();
            let t = Instant::now();
            for _ in 0..50 {
                r.get(data::key_for(rng.below(n))).unwrap().unwrap();
            }
            let later = (t.elapsed() / 50, r.remote_stats().unwrap());
            let fresh = reader(&s3, &prefix, LoadIndex::Lazy);
            let keys: Vec<String> = (0..1000).map(|_| data::key_for(rng.below(n))).collect();
            let before = fresh.remote_stats().unwrap();
            let t = Instant::now();
            assert!(fresh.get_many(&keys).unwrap().iter().all(Option::is_some));
            let many = (t.elapsed(), fresh.remote_stats().unwrap());
            let t = Instant::now();
            let full = reader(&s3, &prefix, LoadIndex::Full);
            let full_open = (t.elapsed(), full.remote_stats().unwrap());
            println!(
                "{n} keys, +{delay} ms/request: lazy open {} req {} B {:.1} ms | first get {} req {} B {:.1} ms | \
                 later gets {:.1} req {:.0} B {:.2} ms each | get_many of 1,000 on a new reader {} req {} B {:.1} ms | full-download open {} req {} B {:.1} ms (index {} B)",
                open.1.requests,
                open.1.bytes_received,
                open.0.as_secs_f64() * 1e3,
                first.1.requests - open.1.requests,
                first.1.bytes_received - open.1.bytes_received,
                first.0.as_secs_f64() * 1e3,
                (later.1.requests - first.1.requests) as f64 / 50.0,
                (later.1.bytes_received - first.1.bytes_received) as f64 / 50.0,
                later.0.as_secs_f64() * 1e3,
                many.1.requests - before.requests,
                many.1.bytes_received - before.bytes_received,
                many.0.as_secs_f64() * 1e3,
                full_open.1.requests,
                full_open.1.bytes_received,
                full_open.0.as_secs_f64() * 1e3,
                index_bytes
            );
            g.bench_function(format!("open_and_first_get/{n}_keys/{delay}ms"), |b| {
                let mut k = 0;
                b.iter(|| {
                    k += 7919;
                    let r = reader(&s3, &prefix, LoadIndex::Lazy);
                    r.get(data::key_for(k % n)).unwrap().unwrap()
                })
            });
        }
        s3.faults.delay_ms.store(0, Ordering::SeqCst);
    }
    g.finish();
}

criterion_group!(benches, cold);
criterion_main!(benches);
