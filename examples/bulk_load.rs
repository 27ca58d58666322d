//! Bulk load: 1M records (`key%08d`, 100-byte values, half compressible text,
//! half random hex) in atomic batches of 1,000 into a local database; reopen
//! it and read it back; then upload it to a remote. Prints timings.
//!
//! ```text
//! cargo run --release --example bulk_load [-- REMOTE_URL] [--records N] [--dir PATH]
//! ```
//! With no `--dir`, a temporary directory is used and removed afterwards.
//! With no remote URL, the upload goes to a `file://` directory in a temporary
//! directory, so the example runs with no server. For S3, pass
//! `s3://BUCKET/PREFIX[?endpoint=…]` with the AWS variables set.

use std::time::Instant;

use s4db::{Db, SyncPolicy, WriteBatch};

#[path = "../tests/common/data.rs"]
mod data;

fn value_for(i: u64) -> Vec<u8> {
    data::value_for(i, 100)
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> s4db::Result<()> {
    let n: u64 = match arg("--records").map(|s| s.parse()) {
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("--records takes a whole number");
            std::process::exit(2);
        }
        None => 1_000_000,
    };
    let tmp = tempfile::tempdir().map_err(|e| s4db::Error::Io {
        context: "creating a temp dir".into(),
        source: e,
    })?;
    let dir = arg("--dir").map_or_else(|| tmp.path().join("db"), Into::into);
    // The remote: the first argument that is not an option or an option's value.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let remote = args
        .iter()
        .enumerate()
        .find(|(i, a)| !a.starts_with("--") && (*i == 0 || !args[i - 1].starts_with("--")))
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| format!("file://{}", tmp.path().join("remote").display()));
    println!("loading {n} records into {}", dir.display());

    let db = Db::builder(&dir).sync(SyncPolicy::OnFlush).open().await?;
    let t = Instant::now();
    let mut i = 0;
    while i < n {
        let mut batch = WriteBatch::new();
        for j in i..(i + 1000).min(n) {
            batch.put(format!("key{j:08}"), value_for(j))?;
        }
        db.write(batch).await?;
        i += 1000;
    }
    db.flush().await?;
    let load = t.elapsed();
    println!(
        "bulk put:   {:>8.3} s  {:>10.0} records/s",
        load.as_secs_f64(),
        n as f64 / load.as_secs_f64()
    );
    let stats = db.stats().await?;
    println!(
        "index mem:  {:>8.1} bytes/key before checkpoint (keys are 11 bytes)",
        stats.index_memory_bytes as f64 / n as f64
    );
    let t = Instant::now();
    db.close().await?;
    println!(
        "close:      {:>8.3} s  (writes index.idx)",
        t.elapsed().as_secs_f64()
    );
    drop(db);

    let t = Instant::now();
    let db = Db::open(&dir).await?;
    println!("reopen:     {:>8.3} s", t.elapsed().as_secs_f64());
    let stats = db.stats().await?;
    println!(
        "index mem:  {:>8.1} bytes/key after reopen; {} segments, {:.1} MB on disk",
        stats.index_memory_bytes as f64 / n as f64,
        stats.segments,
        stats.total_bytes as f64 / 1e6
    );

    let t = Instant::now();
    let mut rng = data::Xorshift::default();
    let gets = n.min(1_000_000);
    for _ in 0..gets {
        let k = rng.below(n);
        let v = db.get(format!("key{k:08}")).await?;
        if v.as_deref() != Some(value_for(k).as_slice()) {
            eprintln!("wrong value for key{k:08}");
            std::process::exit(1);
        }
    }
    let el = t.elapsed();
    println!(
        "random get: {:>8.3} s  {:>10.0} gets/s (checked)",
        el.as_secs_f64(),
        gets as f64 / el.as_secs_f64()
    );
    db.close().await?;
    drop(db);

    let db = Db::builder(&dir).remote(remote.clone()).open().await?;
    let t = Instant::now();
    let up = db.upload().await?;
    let el = t.elapsed();
    println!(
        "upload:     {:>8.3} s  {:>10.1} MB/s to {remote} ({} segments, index {:.1} MB)",
        el.as_secs_f64(),
        (up.segment_bytes + up.index_bytes) as f64 / 1e6 / el.as_secs_f64(),
        up.segments_uploaded,
        up.index_bytes as f64 / 1e6
    );
    db.put("one-more", "record").await?;
    let t = Instant::now();
    let up = db.upload().await?;
    println!(
        "re-upload:  {:>8.3} s  after one more put: {} segment(s), {} bytes",
        t.elapsed().as_secs_f64(),
        up.segments_uploaded,
        up.segment_bytes
    );
    db.close().await?;
    Ok(())
}
