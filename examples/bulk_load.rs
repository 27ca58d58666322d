//! Bulk load: 1M records (`key%08d`, 100-byte values, half compressible text,
//! half random hex) in atomic batches of 1,000 into a local database; reopen
//! it and read it back; then upload it to a remote. Then what the index
//! layers (FORMAT.md §4.7) make cheap: an upload after changing 1,000 keys,
//! a cold get (requests, round trips), a cold reader's cache across another
//! commit, and the upload after compacting with 1% of the records dead.
//! Prints timings and bytes.
//!
//! ```text
//! cargo run --release --example bulk_load [-- REMOTE_URL] [--records N] [--dir PATH]
//! ```
//! With no `--dir`, a temporary directory is used and removed afterwards.
//! With no remote URL, the upload goes to a `file://` directory in a temporary
//! directory, so the example runs with no server. For S3, pass
//! `s3://BUCKET/PREFIX[?endpoint=…]` with the AWS variables set.
//!
//! What is timed is the engine's work: the keys and values are generated
//! before each clock starts, and the values read back are checked after it
//! stops (a CRC32C of each is taken in the timed loop), so the rates are the
//! ones README quotes.

use std::time::Instant;

use s4db::blocking::Db;
use s4db::{SyncPolicy, WriteBatch};

#[path = "../tests/common/data.rs"]
mod data;

const USAGE: &str = "\
usage: bulk_load [REMOTE_URL] [--records N] [--dir PATH]

Bulk-loads N records (default 1,000,000) in batches of 1,000 into a local
database, reopens it, reads it back, and uploads it to REMOTE_URL (default: a
file:// directory in a temporary directory). With no --dir, the database goes
to a temporary directory that is removed afterwards.";

struct Args {
    records: u64,
    dir: Option<std::path::PathBuf>,
    remote: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        records: 1_000_000,
        dir: None,
        remote: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => data::help(USAGE),
            "--records" => args.records = data::count_arg(it.next(), "--records")?,
            "--dir" => args.dir = Some(it.next().ok_or("--dir takes a path")?.into()),
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            url if args.remote.is_none() => args.remote = Some(url.to_string()),
            extra => return Err(format!("unexpected argument {extra}")),
        }
    }
    Ok(args)
}

fn main() -> s4db::Result<()> {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bulk_load: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let n = args.records;
    let (_tmp, dir, remote) = data::workplace(args.dir, args.remote)?;
    println!("loading {n} records into {}", dir.display());

    // The data, before any clock starts.
    let keys: Vec<String> = (0..n).map(|i| format!("key{i:08}")).collect();
    let values: Vec<Vec<u8>> = (0..n).map(|i| data::value_for(i, 100)).collect();

    let db = Db::builder(&dir)
        .sync(SyncPolicy::OnFlush)
        .open_blocking()?;
    let t = Instant::now();
    for (ks, vs) in keys.chunks(1000).zip(values.chunks(1000)) {
        db.write(WriteBatch::from_pairs(ks.iter().zip(vs))?)?;
    }
    db.flush()?;
    let load = t.elapsed();
    println!(
        "bulk put:   {:>8.3} s  {:>10.0} records/s (batches of 1,000, then flush)",
        load.as_secs_f64(),
        n as f64 / load.as_secs_f64()
    );
    let stats = db.stats()?;
    println!(
        "index mem:  {:>8.1} bytes/key before checkpoint (keys are 11 bytes)",
        stats.index_memory_bytes as f64 / n as f64
    );
    let t = Instant::now();
    db.close()?;
    println!(
        "close:      {:>8.3} s  (writes index.idx)",
        t.elapsed().as_secs_f64()
    );
    drop(db);

    let rss = resident_mb();
    let t = Instant::now();
    let db = Db::open(&dir)?;
    let el = t.elapsed();
    println!(
        "reopen:     {:>8.2} ms {}",
        el.as_secs_f64() * 1e3,
        grew(rss, "resident memory")
    );
    let stats = db.stats()?;
    println!(
        "index mem:  {:>8.1} bytes/key on the heap and {:.1} mapped after reopen; {} segments, {:.1} MB on disk",
        stats.index_memory_bytes as f64 / n as f64,
        stats.index_mapped_bytes as f64 / n as f64,
        stats.segments,
        stats.total_bytes as f64 / 1e6
    );

    let mut rng = data::Xorshift::default();
    let gets = n.min(1_000_000) as usize;
    let order: Vec<usize> = (0..gets).map(|_| rng.below(n) as usize).collect();
    let mut crcs = Vec::with_capacity(gets);
    let t = Instant::now();
    for &k in &order {
        let v = db.get(&keys[k])?;
        crcs.push(v.map(|v| crc32c::crc32c(&v)));
    }
    let el = t.elapsed();
    for (&k, crc) in order.iter().zip(&crcs) {
        if *crc != Some(crc32c::crc32c(&values[k])) {
            eprintln!("wrong value for {}", keys[k]);
            std::process::exit(1);
        }
    }
    println!(
        "random get: {:>8.3} s  {:>10.0} gets/s (one thread; values checked after the clock; {} since reopen)",
        el.as_secs_f64(),
        gets as f64 / el.as_secs_f64(),
        grew(rss, "resident memory")
    );
    db.close()?;
    drop(db);

    let db = Db::builder(&dir).remote(remote.clone()).open_blocking()?;
    let t = Instant::now();
    let up = db.upload()?;
    let el = t.elapsed();
    println!(
        "upload:     {:>8.3} s  {:>10.1} MB/s to {remote} ({} segments, index {:.1} MB in {} run(s) and a {} byte root)",
        el.as_secs_f64(),
        (up.segment_bytes + up.run_bytes + up.index_bytes) as f64 / 1e6 / el.as_secs_f64(),
        up.segments_uploaded,
        up.run_bytes as f64 / 1e6,
        up.runs_uploaded,
        up.index_bytes
    );
    // A small change: 1,000 keys spread over the database.
    let mut rng = data::Xorshift::new(7);
    let changed: Vec<usize> = (0..1000.min(n)).map(|_| rng.below(n) as usize).collect();
    db.write(WriteBatch::from_pairs(
        changed.iter().map(|&k| (&keys[k], b"changed".as_slice())),
    )?)?;
    let t = Instant::now();
    let up = db.upload()?;
    println!(
        "re-upload:  {:>8.3} s  after changing {} keys: index objects {} bytes ({} run(s) {} bytes + root {} bytes), {} segment(s) {} bytes",
        t.elapsed().as_secs_f64(),
        changed.len(),
        up.run_bytes + up.index_bytes,
        up.runs_uploaded,
        up.run_bytes,
        up.index_bytes,
        up.segments_uploaded,
        up.segment_bytes
    );

    // A cold public reader: no cache, byte ranges only.
    let reader = Db::open_remote(&remote)?;
    let opened = reader.remote_stats().unwrap_or_default();
    let k = rng.below(n) as usize;
    let v = reader.get(&keys[k])?;
    let after = reader.remote_stats().unwrap_or_default();
    let runs = db.stats()?.index_runs;
    println!(
        "cold get:   {} requests ({} to open, {} for the pages of {runs} run(s) and the record) in 3 round trips, {} bytes; value {}",
        after.requests,
        opened.requests,
        after.requests - opened.requests,
        after.bytes_received,
        if v.is_some() { "found" } else { "MISSING" }
    );
    // Its cache across an unrelated commit.
    for _ in 0..2000 {
        reader.get(&keys[rng.below(n) as usize])?;
    }
    let cached = reader.remote_stats().unwrap_or_default().cached_index_pages;
    db.put("unrelated", "commit")?;
    db.upload()?;
    reader.refresh()?;
    let kept = reader.remote_stats().unwrap_or_default().cached_index_pages;
    println!(
        "reader cache: {kept} of {cached} cached index pages kept after another writer's commit ({:.1}%)",
        100.0 * kept as f64 / cached.max(1) as f64
    );

    // 1% of the records dead, uniformly; compaction (selective by default)
    // finds no segment worth rewriting, and the upload after it sends nothing.
    for chunk in keys.iter().step_by(100).collect::<Vec<_>>().chunks(1000) {
        let mut b = WriteBatch::new();
        for k in chunk {
            b.delete(k)?;
        }
        db.write(b)?;
    }
    db.upload()?;
    let t = Instant::now();
    let c = db.compact()?;
    let up = db.upload()?;
    println!(
        "1% dead:    compact + upload {:>6.3} s: {} of {} segment(s) rewritten (the small ones the commits above wrote); upload sent {} segment(s) {} bytes, {} run(s) {} bytes, root {} bytes",
        t.elapsed().as_secs_f64(),
        c.segments_rewritten,
        c.segments_before,
        up.segments_uploaded,
        up.segment_bytes,
        up.runs_uploaded,
        up.run_bytes,
        up.index_bytes
    );
    db.close()?;
    Ok(())
}

/// This process's resident memory in MB (Linux; `None` elsewhere).
fn resident_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1e3)
}

/// "+N MB what", the growth of resident memory since `before`.
fn grew(before: Option<f64>, what: &str) -> String {
    match (before, resident_mb()) {
        (Some(a), Some(b)) => format!("{:+.1} MB {what}", b - a),
        _ => format!("({what} not measurable here)"),
    }
}
