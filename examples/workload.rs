//! The comparison workload: the same phases `benches/compare/workload.py`
//! runs through the Python s4db, timed, printed as one JSON object on stdout
//! (progress goes to stderr).
//!
//! ```text
//! cargo run --release --example workload -- [--records N] [--dir PATH] [REMOTE_URL]
//! ```
//!
//! Data: N keys `key%08d` (default 1,000,000) with 100-byte values, even i
//! compressible text, odd i random hex. With no remote URL the remote phases
//! use a `file://` directory in a temporary directory; give
//! `s3://BUCKET/PREFIX` (with the AWS variables set) to use an S3 server.
//!
//! The phases, in order (both sides run them identically):
//! 1. `bulk_put_per_s`: N puts in atomic batches of 1,000, then `flush`.
//! 2. `single_put_per_s`: min(N, 100,000) single puts (keys 0.. rewritten
//!    with their own values), then `flush`.
//! 3. `local_get_per_s`: min(N, 200,000) gets of random keys on one thread,
//!    each value checked.
//! 4. `upload_s`: the first upload (all segments and the index).
//! 5. `open_s`: close, then reopen the local database; then
//!    `index_bytes_per_key`: heap bytes of the index after the reopen / N.
//! 6. `rebuild_index_s`: rebuild the index from the segments.
//! 7. `upload_changes_s`: overwrite every key with i % 10 == 0, delete every
//!    key with i % 10 == 5 (batches of 1,000), then upload: only the changes
//!    travel.
//! 8. `compact_s`: compaction; `compact_and_upload_s` adds the upload of the
//!    compacted database (the Python s4db's `compact` uploads as it goes).
//! 9. `cold_open_and_first_get_s`: open the remote with no local copy and get
//!    one key; `remote_get_per_s`: min(N, 1,000) random gets one at a time on
//!    that reader; `get_many_1000_s`: one `get_many` of 1,000 other random
//!    keys. Every value is checked against the expected final state.
//! 10. `peak_rss_bytes`: the process's peak resident memory (`VmHWM`), which
//!     includes the workload's own copy of the keys and values (about
//!     140 bytes per key on both sides).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use s4db::{Db, WriteBatch};
use serde_json::json;

#[path = "../tests/common/data.rs"]
mod data;

#[derive(Parser)]
#[command(about = "Runs the comparison workload and prints one JSON object")]
struct Args {
    /// Number of keys.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(100..=99_999_999))]
    records: u64,
    /// The local database directory (default: a temporary directory, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Where the remote phases go (default: a temporary `file://` directory).
    remote: Option<String>,
}

/// FNV-1a (64-bit) over the first 1,000 keys and values: both sides print
/// it, and the table refuses to compare runs whose data differ.
fn data_fingerprint(keys: &[String], values: &[Vec<u8>]) -> String {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for (k, v) in keys.iter().zip(values).take(1000) {
        for &b in k.as_bytes().iter().chain(v) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// The value of key i once phase 7 has run.
fn final_value(i: u64, n: u64) -> Option<Vec<u8>> {
    match i % 10 {
        0 => Some(data::value_for(i + n, 100)),
        5 => None,
        _ => Some(data::value_for(i, 100)),
    }
}

fn rate(count: u64, t: Instant) -> f64 {
    count as f64 / t.elapsed().as_secs_f64()
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// Peak resident memory from `/proc/self/status`; `None` where there is none.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A wrong value: the workload stops, because its timings would be meaningless.
fn mismatch(what: &str, i: u64) -> s4db::Error {
    s4db::Error::InvalidArgument(format!("{what}: wrong value for key{i:08}"))
}

async fn run(args: Args) -> s4db::Result<serde_json::Value> {
    let n = args.records;
    let (_tmp, dir, remote) = data::workplace(args.dir, args.remote)?;
    let keys: Vec<String> = (0..n).map(data::key_for).collect();
    let values: Vec<Vec<u8>> = (0..n).map(|i| data::value_for(i, 100)).collect();
    let open = || Db::builder(&dir).remote(remote.clone()).open();

    eprintln!("workload: {n} keys in {}, remote {remote}", dir.display());
    let db = open().await?;
    let t = Instant::now();
    for (ks, vs) in keys.chunks(1000).zip(values.chunks(1000)) {
        db.write(WriteBatch::from_pairs(ks.iter().zip(vs))?).await?;
    }
    db.flush().await?;
    let bulk_put_per_s = rate(n, t);

    let singles = n.min(100_000);
    let t = Instant::now();
    for i in 0..singles as usize {
        db.put(&keys[i], &values[i]).await?;
    }
    db.flush().await?;
    let single_put_per_s = rate(singles, t);

    let gets = n.min(200_000);
    let mut rng = data::Xorshift::default();
    let t = Instant::now();
    for _ in 0..gets {
        let i = rng.below(n) as usize;
        if db.get(&keys[i]).await?.as_deref() != Some(values[i].as_slice()) {
            return Err(mismatch("local get", i as u64));
        }
    }
    let local_get_per_s = rate(gets, t);

    let t = Instant::now();
    db.upload().await?;
    let upload_s = secs(t);

    db.close().await?;
    drop(db);
    let t = Instant::now();
    let db = open().await?;
    let open_s = secs(t);
    // Heap plus mapped: the mapped `index.idx` is resident once gets touch it.
    let stats = db.stats().await?;
    let index_bytes_per_key =
        (stats.index_memory_bytes + stats.index_mapped_bytes) as f64 / n as f64;

    let t = Instant::now();
    db.rebuild_index().await?;
    let rebuild_index_s = secs(t);

    eprintln!("workload: overwrite 10%, delete 10%, upload, compact");
    for start in (0..n).step_by(1000) {
        let mut batch = WriteBatch::new();
        for i in start..(start + 1000).min(n) {
            match i % 10 {
                0 => batch.put(&keys[i as usize], data::value_for(i + n, 100))?,
                5 => batch.delete(&keys[i as usize])?,
                _ => continue,
            };
        }
        db.write(batch).await?;
    }
    let t = Instant::now();
    db.upload().await?;
    let upload_changes_s = secs(t);

    let t = Instant::now();
    // Full, as the Python s4db's compact is (the 10% overwritten and 10%
    // deleted are spread evenly, so a selective pass would rewrite nothing).
    db.compact_with(s4db::CompactOptions::default().full(true))
        .await?;
    let compact_s = secs(t);
    db.upload().await?;
    let compact_and_upload_s = secs(t);
    db.close().await?;
    drop(db);

    eprintln!("workload: cold reader");
    let t = Instant::now();
    let reader = Db::open_remote(remote.clone()).await?;
    let first = rng.below(n);
    if reader.get(&keys[first as usize]).await?.map(|v| v.to_vec()) != final_value(first, n) {
        return Err(mismatch("cold get", first));
    }
    let cold_open_and_first_get_s = secs(t);

    let remote_gets = n.min(1000);
    let t = Instant::now();
    for _ in 0..remote_gets {
        let i = rng.below(n);
        if reader.get(&keys[i as usize]).await?.map(|v| v.to_vec()) != final_value(i, n) {
            return Err(mismatch("remote get", i));
        }
    }
    let remote_get_per_s = rate(remote_gets, t);

    let many: Vec<u64> = (0..1000).map(|_| rng.below(n)).collect();
    let t = Instant::now();
    let got = reader
        .get_many(many.iter().map(|&i| &keys[i as usize]))
        .await?;
    let get_many_1000_s = secs(t);
    for (&i, v) in many.iter().zip(got) {
        if v.map(|v| v.to_vec()) != final_value(i, n) {
            return Err(mismatch("get_many", i));
        }
    }

    Ok(json!({
        "tool": concat!("s4db (Rust) ", env!("CARGO_PKG_VERSION")),
        "records": n,
        "data_fnv1a": data_fingerprint(&keys, &values),
        "bulk_put_per_s": bulk_put_per_s,
        "single_put_per_s": single_put_per_s,
        "local_get_per_s": local_get_per_s,
        "open_s": open_s,
        "rebuild_index_s": rebuild_index_s,
        "compact_s": compact_s,
        "compact_and_upload_s": compact_and_upload_s,
        "index_bytes_per_key": index_bytes_per_key,
        "upload_s": upload_s,
        "upload_changes_s": upload_changes_s,
        "cold_open_and_first_get_s": cold_open_and_first_get_s,
        "remote_get_per_s": remote_get_per_s,
        "get_many_1000_s": get_many_1000_s,
        "peak_rss_bytes": peak_rss_bytes(),
    }))
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("workload: error: {e}");
            ExitCode::FAILURE
        }
    }
}
