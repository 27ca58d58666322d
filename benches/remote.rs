//! Remote benchmarks (issue #3) against an in-process S3 server (s3s-fs,
//! SigV4 checked) on loopback. Data: N keys `key%08d`, 100-byte values
//! (half compressible text, half random hex); N defaults to 200,000
//! (`S4DB_BENCH_REMOTE_N`).
//!
//! - `remote_get/one`: a get with no local data (the request count of the
//!   first get is printed: 2, the index page and then the record; later gets
//!   whose page is cached take 1);
//! - `remote_get/get_many_1000`: 1,000 random keys with coalescing;
//! - `upload/whole_database` against `upload/raw_put_same_bytes`: s4db's
//!   upload of all segments and the index, and one plain PUT of the same
//!   number of bytes to the same server.
//!
//! ```text
//! cargo bench --bench remote
//! ```

#[path = "../tests/common/data.rs"]
mod data;
#[path = "../tests/common/s3.rs"]
mod s3;

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use s3::TestS3;
use s4db::blocking::Db;
use s4db::{SyncPolicy, WriteBatch};

fn n() -> u64 {
    std::env::var("S4DB_BENCH_REMOTE_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000)
}

struct Setup {
    s3: TestS3,
    /// A loaded local database (not attached to any remote).
    local: tempfile::TempDir,
    /// Bytes of all its segment files.
    segment_bytes: u64,
    order: Vec<u64>,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name != "LOCK" && name != "remote.state" {
            std::fs::copy(e.path(), to.join(name)).unwrap();
        }
    }
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let s3 = TestS3::start();
        let local = tempfile::tempdir().unwrap();
        let db = Db::builder(local.path())
            .sync(SyncPolicy::Never)
            .open_blocking()
            .unwrap();
        let n = n();
        let mut i = 0;
        while i < n {
            let mut b = WriteBatch::new();
            for j in i..(i + 1000).min(n) {
                b.put(data::key_for(j), data::value_for(j, 100)).unwrap();
            }
            db.write(b).unwrap();
            i += 1000;
        }
        let segment_bytes = db.stats().unwrap().total_bytes;
        db.close().unwrap();
        drop(db);
        // The database the read benchmarks use, uploaded once.
        let up = tempfile::tempdir().unwrap();
        copy_dir(local.path(), up.path());
        let db = s3.builder(up.path(), "read").open_blocking().unwrap();
        db.upload().unwrap();
        let mut rng = data::Xorshift::default();
        let order = (0..100_000).map(|_| rng.below(n)).collect();
        Setup {
            s3,
            local,
            segment_bytes,
            order,
        }
    })
}

fn remote_get(c: &mut Criterion) {
    let s = setup();
    let reader = s4db::DbBuilder::for_remote(s.s3.url("read"))
        .credentials(TestS3::credentials())
        .open_blocking()
        .unwrap();
    let mut g = c.benchmark_group("remote_get");
    let before = reader.remote_stats().unwrap().requests;
    reader.get(data::key_for(1)).unwrap().unwrap();
    println!(
        "requests for the first remote get (index page, then record): {}",
        reader.remote_stats().unwrap().requests - before
    );
    g.throughput(Throughput::Elements(1));
    g.bench_function("one", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            reader
                .get(data::key_for(s.order[i % s.order.len()]))
                .unwrap()
        })
    });
    g.throughput(Throughput::Elements(1000));
    g.sample_size(20);
    let mut start = 0;
    let before = reader.remote_stats().unwrap().requests;
    let keys: Vec<String> = s.order[..1000].iter().map(|&k| data::key_for(k)).collect();
    reader.get_many(&keys).unwrap();
    println!(
        "requests for get_many of 1,000 random keys: {}",
        reader.remote_stats().unwrap().requests - before
    );
    g.bench_function("get_many_1000", |b| {
        b.iter(|| {
            start = (start + 1000) % (s.order.len() - 1000);
            let keys: Vec<String> = s.order[start..start + 1000]
                .iter()
                .map(|&k| data::key_for(k))
                .collect();
            reader.get_many(&keys).unwrap()
        })
    });
    g.finish();
}

fn upload(c: &mut Criterion) {
    let s = setup();
    let mut g = c.benchmark_group("upload");
    g.sample_size(10)
        .throughput(Throughput::Bytes(s.segment_bytes));
    let mut round = 0;
    g.bench_function("whole_database", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let dir = tempfile::tempdir().unwrap();
                copy_dir(s.local.path(), dir.path());
                let db =
                    s.s3.builder(dir.path(), &format!("up{round}"))
                        .open_blocking()
                        .unwrap();
                let t = Instant::now();
                db.upload().unwrap();
                total += t.elapsed();
            }
            total
        })
    });
    let body = bytes::Bytes::from(vec![7u8; s.segment_bytes as usize]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let bucket = rusty_s3::Bucket::new(
        s.s3.endpoint.parse().unwrap(),
        rusty_s3::UrlStyle::Path,
        s3::BUCKET.to_string(),
        "us-east-1".to_string(),
    )
    .unwrap();
    let creds = rusty_s3::Credentials::new(s3::ACCESS_KEY, s3::SECRET_KEY);
    g.bench_function("raw_put_same_bytes", |b| {
        b.iter(|| {
            use rusty_s3::S3Action;
            let url = rusty_s3::actions::PutObject::new(&bucket, Some(&creds), "raw/blob")
                .sign(Duration::from_secs(600));
            let resp = rt
                .block_on(
                    client
                        .put(url)
                        .header("content-length", body.len())
                        .body(body.clone())
                        .send(),
                )
                .unwrap();
            assert!(resp.status().is_success());
        })
    });
    g.finish();
}

criterion_group!(benches, remote_get, upload);
criterion_main!(benches);
