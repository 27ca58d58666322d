//! The ceilings of this machine, measured with the same data as the
//! workload, so that README can say how close s4db comes to them:
//!
//! - `snappy/compress`, `snappy/decompress`: each 100-byte workload value on
//!   its own (as records are stored);
//! - `crc32c/value_100B` (per value) and `crc32c/block_64KiB` (bandwidth);
//! - `fsync/sequential_write_64MiB`: 1 MiB writes then one `fdatasync`, and
//!   `fsync/append_128B`: one record-sized append and its `fdatasync` (the
//!   floor under `SyncPolicy::EveryWrite`);
//! - `pread/random_128B`: one 128-byte `pread` at a random offset of a
//!   256 MiB file in the page cache;
//! - `hashbrown/insert_1M`, `hashbrown/get`: 1M `key%08d` keys to a `u64`;
//! - `s3/raw_put_64MiB`, `s3/raw_get_64MiB`: one signed PUT and one GET of a
//!   64 MiB object (rusty-s3 + reqwest, nothing of s4db's).
//!
//! The S3 server is the one named by `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY` and `S4DB_LIMITS_BUCKET` (as `benches/compare/run.sh`
//! sets them); without `S4DB_LIMITS_BUCKET`, an in-process s3s-fs.
//! `S4DB_LIMITS_SMALL=1` shrinks every size (for CI's smoke run).
//!
//! ```text
//! cargo bench --bench limits
//! ```

#[path = "../tests/common/data.rs"]
mod data;
#[path = "../tests/common/s3.rs"]
mod s3;

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

fn small() -> bool {
    std::env::var("S4DB_LIMITS_SMALL").is_ok_and(|v| v == "1")
}

/// `full` normally, `full / 64` for the smoke run.
fn size(full: usize) -> usize {
    if small() { full / 64 } else { full }
}

const MIB: usize = 1 << 20;

fn values() -> Vec<Vec<u8>> {
    (0..10_000).map(|i| data::value_for(i, 100)).collect()
}

fn snappy(c: &mut Criterion) {
    let values = values();
    let bytes: usize = values.iter().map(Vec::len).sum();
    let mut enc = snap::raw::Encoder::new();
    let compressed: Vec<Vec<u8>> = values
        .iter()
        .map(|v| enc.compress_vec(v).unwrap())
        .collect();
    let mut g = c.benchmark_group("snappy");
    g.throughput(Throughput::Bytes(bytes as u64));
    let mut out = vec![0u8; snap::raw::max_compress_len(100)];
    g.bench_function("compress", |b| {
        b.iter(|| {
            for v in &values {
                std::hint::black_box(enc.compress(v, &mut out).unwrap());
            }
        })
    });
    let mut dec = snap::raw::Decoder::new();
    let mut plain = vec![0u8; 100];
    g.bench_function("decompress", |b| {
        b.iter(|| {
            for v in &compressed {
                std::hint::black_box(dec.decompress(v, &mut plain).unwrap());
            }
        })
    });
    g.finish();
}

fn crc(c: &mut Criterion) {
    let values = values();
    let mut g = c.benchmark_group("crc32c");
    g.throughput(Throughput::Bytes(100));
    let mut i = 0;
    g.bench_function("value_100B", |b| {
        b.iter(|| {
            i = (i + 1) % values.len();
            crc32c::crc32c(&values[i])
        })
    });
    let block: Vec<u8> = values.concat()[..64 * 1024].to_vec();
    g.throughput(Throughput::Bytes(block.len() as u64));
    g.bench_function("block_64KiB", |b| b.iter(|| crc32c::crc32c(&block)));
    g.finish();
}

fn fsync(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let chunk = vec![0x5au8; MIB];
    let total = size(64 * MIB);
    let mut g = c.benchmark_group("fsync");
    g.sample_size(10)
        .throughput(Throughput::Bytes(total as u64));
    let path = dir.path().join("seq");
    g.bench_function("sequential_write_64MiB", |b| {
        b.iter_batched(
            || {
                let _ = std::fs::remove_file(&path);
                std::fs::File::create(&path).unwrap()
            },
            |mut f| {
                for _ in 0..total / MIB {
                    f.write_all(&chunk).unwrap();
                }
                f.sync_data().unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    let mut f = std::fs::File::create(dir.path().join("append")).unwrap();
    let record = [0xa5u8; 128];
    g.sample_size(50).throughput(Throughput::Elements(1));
    g.bench_function("append_128B", |b| {
        b.iter(|| {
            f.write_all(&record).unwrap();
            f.sync_data().unwrap();
        })
    });
    g.finish();
}

fn pread(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let len = size(256 * MIB);
    let path = dir.path().join("big");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let values = values().concat();
        let mut written = 0;
        while written < len {
            let n = values.len().min(len - written);
            f.write_all(&values[..n]).unwrap();
            written += n;
        }
        f.flush().unwrap();
    }
    let f = std::fs::File::open(&path).unwrap();
    // Warm the page cache, as the workload's gets find it.
    let mut buf = vec![0u8; MIB];
    for off in (0..len).step_by(MIB) {
        f.read_at(&mut buf, off as u64).unwrap();
    }
    let mut g = c.benchmark_group("pread");
    g.throughput(Throughput::Elements(1));
    let mut rng = data::Xorshift::default();
    let mut rec = [0u8; 128];
    g.bench_function("random_128B", |b| {
        b.iter(|| {
            let off = rng.below(len as u64 - 128);
            f.read_at(&mut rec, off).unwrap()
        })
    });
    g.finish();
}

fn hashmap(c: &mut Criterion) {
    let n = size(1 << 20) as u64;
    let n = n.min(1_000_000);
    let keys: Vec<Vec<u8>> = (0..n).map(|i| data::key_for(i).into_bytes()).collect();
    let mut g = c.benchmark_group("hashbrown");
    g.sample_size(10).throughput(Throughput::Elements(n));
    g.bench_function("insert_1M", |b| {
        b.iter_batched(
            || keys.clone(),
            |keys| {
                let mut m = hashbrown::HashMap::new();
                for (i, k) in keys.into_iter().enumerate() {
                    m.insert(k, i as u64);
                }
                m
            },
            BatchSize::PerIteration,
        )
    });
    let map: hashbrown::HashMap<Vec<u8>, u64> = keys.iter().cloned().zip(0..).collect();
    let mut rng = data::Xorshift::default();
    g.sample_size(100).throughput(Throughput::Elements(1));
    g.bench_function("get", |b| {
        b.iter(|| {
            // The key is formatted on the stack, as s4db's get bench does.
            let mut key = [0u8; 11];
            let i = rng.below(n);
            let _ = write!(&mut key[..], "key{i:08}");
            map.get(&key[..]).copied()
        })
    });
    g.finish();
}

/// Where the raw PUT and GET go: the compare run's server, or our own.
struct Target {
    endpoint: String,
    bucket: String,
    access: String,
    secret: String,
    _own: Option<s3::TestS3>,
}

fn target() -> Target {
    let env = |k: &str| std::env::var(k).ok();
    if let (Some(bucket), Some(endpoint), Some(access), Some(secret)) = (
        env("S4DB_LIMITS_BUCKET"),
        env("AWS_ENDPOINT_URL"),
        env("AWS_ACCESS_KEY_ID"),
        env("AWS_SECRET_ACCESS_KEY"),
    ) {
        return Target {
            endpoint,
            bucket,
            access,
            secret,
            _own: None,
        };
    }
    let own = s3::TestS3::start();
    Target {
        endpoint: own.endpoint.clone(),
        bucket: s3::BUCKET.into(),
        access: s3::ACCESS_KEY.into(),
        secret: s3::SECRET_KEY.into(),
        _own: Some(own),
    }
}

fn raw_s3(c: &mut Criterion) {
    use rusty_s3::S3Action;
    let t = target();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let bucket = rusty_s3::Bucket::new(
        t.endpoint.parse().unwrap(),
        rusty_s3::UrlStyle::Path,
        t.bucket.clone(),
        "us-east-1".to_string(),
    )
    .unwrap();
    let creds = rusty_s3::Credentials::new(&t.access, &t.secret);
    let len = size(64 * MIB);
    let body = bytes::Bytes::from(data::value_for(1, len));
    let key = format!("limits-{}/blob", std::process::id());
    let put = || {
        let url = rusty_s3::actions::PutObject::new(&bucket, Some(&creds), &key)
            .sign(Duration::from_secs(600));
        let resp = rt
            .block_on(client.put(url).body(body.clone()).send())
            .unwrap();
        assert!(resp.status().is_success(), "PUT: {}", resp.status());
    };
    let mut g = c.benchmark_group("s3");
    g.sample_size(10).throughput(Throughput::Bytes(len as u64));
    g.bench_function("raw_put_64MiB", |b| b.iter(put));
    g.bench_function("raw_get_64MiB", |b| {
        b.iter(|| {
            let url = rusty_s3::actions::GetObject::new(&bucket, Some(&creds), &key)
                .sign(Duration::from_secs(600));
            let got = rt
                .block_on(async { client.get(url).send().await?.bytes().await })
                .unwrap();
            assert_eq!(got.len(), len);
        })
    });
    g.finish();
    let url = rusty_s3::actions::DeleteObject::new(&bucket, Some(&creds), &key)
        .sign(Duration::from_secs(600));
    let _ = rt.block_on(client.delete(url).send());
}

criterion_group!(benches, snappy, crc, fsync, pread, hashmap, raw_s3);
criterion_main!(benches);
