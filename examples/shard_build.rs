//! A build on many workers, measured on one machine (FORMAT.md §10.11):
//! for each shard count S, N records (`key%08d`, 100-byte values, as
//! `bulk_load`) are split into S shards; each shard is built and staged the
//! way one worker would (one after the other here, each timed on its own),
//! then one ingest commits them all. Prints, per S, a worker's throughput
//! (build and stage), and the ingest's time and bytes, then a cold get
//! through the ingested index; then the optional index merge done after
//! it (`merge_index` in a directory reading through the remote, then an
//! upload of the one new run), and a cold get again.
//!
//! ```text
//! cargo run --release --example shard_build [-- REMOTE_URL] [--records N] [--shards 2,8,64]
//! ```
//! With no remote URL, the shards go to a `file://` directory in a
//! temporary directory. For S3, pass `s3://BUCKET/PREFIX[?endpoint=…]` with
//! the AWS variables set; each shard count uses its own prefix under it.

use std::time::Instant;

use s4db::blocking::Db;
use s4db::{DbBuilder, SyncPolicy, WriteBatch};

#[path = "../tests/common/data.rs"]
mod data;

const USAGE: &str = "\
usage: shard_build [REMOTE_URL] [--records N] [--shards S1,S2,...]

Splits N records (default 10,000,000) into S shards for each S (default
2,8,64), builds and stages each shard, ingests them, and prints the times
and bytes. REMOTE_URL defaults to a file:// directory in a temporary directory.";

struct Args {
    records: u64,
    shards: Vec<u64>,
    remote: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        records: 10_000_000,
        shards: vec![2, 8, 64],
        remote: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => data::help(USAGE),
            "--records" => args.records = data::count_arg(it.next(), "--records")?,
            "--shards" => {
                args.shards = it
                    .next()
                    .and_then(|s| s.split(',').map(|n| n.parse().ok()).collect())
                    .filter(|v: &Vec<u64>| !v.is_empty() && v.iter().all(|n| *n > 0))
                    .ok_or("--shards takes counts above 0, separated by commas")?;
            }
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            url if args.remote.is_none() => args.remote = Some(url.to_string()),
            extra => return Err(format!("unexpected argument {extra}")),
        }
    }
    Ok(args)
}

/// The requests a new reader of `url` makes for one get (after its open).
fn cold_get_requests(url: &str, n: u64) -> s4db::Result<u64> {
    let reader = DbBuilder::for_remote(url).open_blocking()?;
    let before = reader.remote_stats().map_or(0, |s| s.requests);
    let probe = n / 2 + 1;
    let got = reader.get(data::key_for(probe))?;
    assert_eq!(got.as_deref(), Some(data::value_for(probe, 100).as_slice()));
    Ok(reader.remote_stats().map_or(0, |s| s.requests) - before)
}

/// `url` with `/sub` appended to its path (before any `?query`).
fn under(url: &str, sub: &str) -> String {
    match url.split_once('?') {
        Some((path, query)) => format!("{}/{sub}?{query}", path.trim_end_matches('/')),
        None => format!("{}/{sub}", url.trim_end_matches('/')),
    }
}

fn main() -> s4db::Result<()> {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("shard_build: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let (tmp, _, remote) = data::workplace(None, args.remote)?;
    let n = args.records;
    println!("{n} records per build; a shard is built and staged as one worker would");
    println!(
        "{:>6} {:>9} {:>22} {:>10} {:>12} {:>12} {:>9} | {:>8} {:>11} {:>9}",
        "shards",
        "per shard",
        "worker: records/s",
        "ingest ms",
        "index.idx B",
        "manifests B",
        "cold get",
        "merge s",
        "run sent MB",
        "cold get"
    );
    for &s in &args.shards {
        let url = under(&remote, &format!("build-{n}-{s}"));
        let per = n.div_ceil(s);
        let mut rates = Vec::new();
        let mut names = Vec::new();
        for shard in 0..s {
            let (lo, hi) = (shard * per, ((shard + 1) * per).min(n));
            if lo >= hi {
                break;
            }
            // The data, before the clock starts.
            let keys: Vec<String> = (lo..hi).map(data::key_for).collect();
            let values: Vec<Vec<u8>> = (lo..hi).map(|i| data::value_for(i, 100)).collect();
            let dir = tmp.path().join(format!("shard-{s}-{shard}"));
            let t = Instant::now();
            let db = Db::builder(&dir)
                .sync(SyncPolicy::OnFlush)
                .open_blocking()?;
            for (ks, vs) in keys.chunks(1000).zip(values.chunks(1000)) {
                db.write(WriteBatch::from_pairs(ks.iter().zip(vs))?)?;
            }
            let name = format!("part-{shard:05}");
            db.stage(DbBuilder::for_remote(&url), &name)?;
            db.close()?;
            rates.push((hi - lo) as f64 / t.elapsed().as_secs_f64());
            names.push(name);
            drop(db);
            let _ = std::fs::remove_dir_all(&dir);
        }
        let t = Instant::now();
        let r = DbBuilder::for_remote(&url).ingest_blocking(&names)?;
        let ingest = t.elapsed();
        let cold = cold_get_requests(&url, n)?;
        // The optional merge: one machine folds the runs into one.
        let t = Instant::now();
        let merger = Db::builder(tmp.path().join(format!("merge-{s}")))
            .remote(&url)
            .open_blocking()?;
        merger.merge_index()?;
        let up = merger.upload()?;
        let merge = t.elapsed();
        merger.close()?;
        let merged = cold_get_requests(&url, n)?;
        rates.sort_by(f64::total_cmp);
        println!(
            "{:>6} {:>9} {:>10.0} to {:>9.0} {:>10.1} {:>12} {:>12} {:>5} req | {:>8.2} {:>11.1} {:>5} req",
            s,
            per,
            rates[0],
            rates[rates.len() - 1],
            ingest.as_secs_f64() * 1e3,
            r.index_bytes,
            r.manifest_bytes,
            cold,
            merge.as_secs_f64(),
            up.run_bytes as f64 / 1e6,
            merged
        );
    }
    Ok(())
}
