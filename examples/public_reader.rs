//! Reads keys from a database by URL, read-only, with no local copy: each get
//! is one range request of the record.
//!
//! ```text
//! cargo run --example public_reader -- https://my-bucket.s3.amazonaws.com/db key00000001 key00000002
//! cargo run --example public_reader        # builds a small demo remote first
//! ```

use std::time::Instant;

use s4db::Db;

#[tokio::main(flavor = "current_thread")]
async fn main() -> s4db::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let demo = tempfile::tempdir().map_err(|e| s4db::Error::Io {
        context: "creating a temp dir".into(),
        source: e,
    })?;
    let (url, keys) = match args.split_first() {
        Some((url, keys)) => (url.clone(), keys.to_vec()),
        None => {
            // No URL: publish a small database to a file:// remote and read that.
            let url = format!("file://{}", demo.path().join("remote").display());
            let writer = Db::builder(demo.path().join("local"))
                .remote(url.clone())
                .open()
                .await?;
            writer
                .put_many((0..1000).map(|i| (format!("key{i:08}"), format!("value {i}"))))
                .await?;
            writer.upload().await?;
            writer.close().await?;
            (
                url,
                vec!["key00000001".into(), "key00000500".into(), "nope".into()],
            )
        }
    };
    let t = Instant::now();
    let db = Db::open_remote(url.clone()).await?;
    println!(
        "opened {url}: {} keys in {:.1} ms",
        db.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    for key in &keys {
        let t = Instant::now();
        let value = db.get(key).await?;
        let shown = value
            .as_deref()
            .map(|v| String::from_utf8_lossy(v).into_owned());
        println!(
            "{key} = {shown:?} ({:.2} ms)",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    if let Some(stats) = db.remote_stats() {
        println!(
            "{} requests, {} bytes received",
            stats.requests, stats.bytes_received
        );
    }
    Ok(())
}
