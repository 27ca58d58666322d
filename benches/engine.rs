//! Engine benchmarks (issue #2's table). Data: N keys `key%08d`, 100-byte
//! values, even i compressible text, odd i random hex. N defaults to
//! 1,000,000; set `S4DB_BENCH_N` to change it (CI runs a small smoke version).
//!
//! ```text
//! cargo bench --bench engine
//! ```

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use s4db::blocking::Db;
use s4db::{CompactOptions, SyncPolicy, WriteBatch};

fn n() -> u64 {
    std::env::var("S4DB_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

#[path = "../tests/common/data.rs"]
mod data;

fn value_for(i: u64) -> Vec<u8> {
    data::value_for(i, 100)
}

struct Data {
    keys: Vec<Vec<u8>>,
    values: Vec<Vec<u8>>,
    /// A loaded, closed database of all N keys.
    dir: tempfile::TempDir,
    /// Random key order for gets.
    order: Vec<u32>,
}

fn data() -> &'static Data {
    static DATA: OnceLock<Data> = OnceLock::new();
    DATA.get_or_init(|| {
        let n = n();
        let keys: Vec<Vec<u8>> = (0..n).map(|i| format!("key{i:08}").into_bytes()).collect();
        let values: Vec<Vec<u8>> = (0..n).map(value_for).collect();
        let dir = tempfile::tempdir().unwrap();
        load(dir.path(), &keys, &values);
        let mut rng = data::Xorshift::default();
        let order = (0..n.min(1 << 20)).map(|_| rng.below(n) as u32).collect();
        Data {
            keys,
            values,
            dir,
            order,
        }
    })
}

fn load(dir: &Path, keys: &[Vec<u8>], values: &[Vec<u8>]) -> Db {
    let db = Db::builder(dir)
        .sync(SyncPolicy::OnFlush)
        .open_blocking()
        .unwrap();
    for (ks, vs) in keys.chunks(1000).zip(values.chunks(1000)) {
        let mut b = WriteBatch::new();
        for (k, v) in ks.iter().zip(vs) {
            b.put(k, v).unwrap();
        }
        db.write(b).unwrap();
    }
    db.flush().unwrap();
    db
}

fn bulk_put(c: &mut Criterion) {
    let d = data();
    let mut g = c.benchmark_group("bulk_put");
    g.sample_size(10)
        .throughput(Throughput::Elements(d.keys.len() as u64));
    g.bench_function("batches_of_1000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = tempfile::tempdir().unwrap();
                let start = Instant::now();
                let db = load(t.path(), &d.keys, &d.values);
                total += start.elapsed();
                drop(db);
            }
            total
        })
    });
    g.finish();
}

fn single_put(c: &mut Criterion) {
    let d = data();
    let count = d.keys.len().min(100_000);
    let mut g = c.benchmark_group("single_put");
    g.sample_size(10)
        .throughput(Throughput::Elements(count as u64));
    for policy in [SyncPolicy::OnFlush, SyncPolicy::EveryWrite] {
        let count = if policy == SyncPolicy::EveryWrite {
            count.min(2_000)
        } else {
            count
        };
        g.throughput(Throughput::Elements(count as u64));
        g.bench_function(BenchmarkId::from_parameter(format!("{policy:?}")), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = tempfile::tempdir().unwrap();
                    let db = Db::builder(t.path()).sync(policy).open_blocking().unwrap();
                    let start = Instant::now();
                    for i in 0..count {
                        db.put(&d.keys[i], &d.values[i]).unwrap();
                    }
                    total += start.elapsed();
                }
                total
            })
        });
    }
    g.finish();
}

/// Writes `key%08d` into a stack buffer: a caller has its key at hand, so
/// the benchmark should not add a cache miss to fetch it from a big table.
fn key_into(buf: &mut [u8; 11], k: u32) -> &[u8] {
    use std::io::Write;
    let mut w = &mut buf[..];
    let _ = write!(w, "key{k:08}");
    &buf[..]
}

fn random_get(c: &mut Criterion) {
    let d = data();
    let db = Db::builder(d.dir.path())
        .read_only(true)
        .open_blocking()
        .unwrap();
    let mut g = c.benchmark_group("random_get");
    g.throughput(Throughput::Elements(1));
    g.bench_function("one_thread", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let k = d.order[i % d.order.len()];
            i += 1;
            let mut buf = [0u8; 11];
            let v = db.get(key_into(&mut buf, k)).unwrap();
            debug_assert_eq!(v.as_deref(), Some(d.values[k as usize].as_slice()));
            v
        })
    });
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    g.throughput(Throughput::Elements(threads as u64));
    g.bench_function(BenchmarkId::new("all_threads", threads), |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for t in 0..threads {
                    let db = db.clone();
                    s.spawn(move || {
                        for i in 0..iters as usize {
                            let k = d.order[(i * threads + t) % d.order.len()];
                            let mut buf = [0u8; 11];
                            std::hint::black_box(db.get(key_into(&mut buf, k)).unwrap());
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    g.finish();
}

/// Times `iters` opens of the benchmark database with `builder`.
fn time_opens(iters: u64, builder: impl Fn() -> s4db::DbBuilder) -> Duration {
    let d = data();
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        let db = builder().open_blocking().unwrap();
        total += start.elapsed();
        assert_eq!(db.len(), d.keys.len() as u64);
    }
    total
}

fn open_and_rebuild(c: &mut Criterion) {
    let d = data();
    let mut g = c.benchmark_group("open");
    g.sample_size(10);
    g.bench_function("reopen", |b| {
        b.iter_custom(|iters| time_opens(iters, || Db::builder(d.dir.path()).read_only(true)))
    });
    g.bench_function("rebuild_index", |b| {
        b.iter_custom(|iters| {
            time_opens(iters, || {
                Db::builder(d.dir.path())
                    .read_only(true)
                    .rebuild_index(true)
            })
        })
    });
    g.finish();
}

fn compact(c: &mut Criterion) {
    let d = data();
    let mut g = c.benchmark_group("compact");
    g.sample_size(10);
    g.bench_function("after_overwriting_10_percent", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = tempfile::tempdir().unwrap();
                let db = load(t.path(), &d.keys, &d.values);
                for (ks, vs) in d.keys.chunks(1000).zip(d.values.chunks(1000)).step_by(10) {
                    db.put_many(ks.iter().zip(vs.iter().rev())).unwrap();
                }
                let start = Instant::now();
                db.compact_with(CompactOptions::default().full(true))
                    .unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    // The first 60% of the keys overwritten: they fill the first 64 MiB
    // segment, which becomes wholly dead; the others stay live. Selective
    // rewrites that one segment (its overwrites moved into the others), full
    // rewrites every live record.
    for (name, full) in [
        ("selective_after_overwriting_the_first_60_percent", false),
        ("full_after_overwriting_the_first_60_percent", true),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = tempfile::tempdir().unwrap();
                    let db = load(t.path(), &d.keys, &d.values);
                    let n = d.keys.len() * 6 / 10;
                    for (ks, vs) in d.keys[..n].chunks(1000).zip(d.values[..n].chunks(1000)) {
                        db.put_many(ks.iter().zip(vs.iter().rev())).unwrap();
                    }
                    let start = Instant::now();
                    let r = db
                        .compact_with(CompactOptions::default().full(full))
                        .unwrap();
                    total += start.elapsed();
                    assert!(full || r.segments_rewritten < r.segments_before, "{r:?}");
                }
                total
            })
        });
    }
    g.finish();
}

fn index_memory(_c: &mut Criterion) {
    let d = data();
    let db = Db::builder(d.dir.path())
        .read_only(true)
        .open_blocking()
        .unwrap();
    let s = db.stats().unwrap();
    let n = d.keys.len() as f64;
    let key_bytes = d.keys.iter().map(Vec::len).sum::<usize>() as f64;
    let index = (s.index_memory_bytes + s.index_mapped_bytes) as f64;
    println!(
        "index_memory: {:.1} bytes per key plus the key bytes ({:.1} in all, {:.1} of them on the heap, the rest mapped; {} keys)",
        (index - key_bytes) / n,
        index / n,
        s.index_memory_bytes as f64 / n,
        s.keys
    );
}

criterion_group!(
    benches,
    index_memory,
    bulk_put,
    single_put,
    random_get,
    open_and_rebuild,
    compact
);
criterion_main!(benches);
