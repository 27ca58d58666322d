//! Quickstart: a local database, put, get, delete, compact.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use s4db::{Db, WriteBatch};

#[tokio::main(flavor = "current_thread")]
async fn main() -> s4db::Result<()> {
    let dir = tempfile::tempdir().map_err(|e| s4db::Error::Io {
        context: "creating a temp dir".into(),
        source: e,
    })?;
    let db = Db::open(dir.path()).await?;

    db.put("apple", "red").await?;
    db.put("banana", "yellow").await?;
    let mut batch = WriteBatch::new(); // atomic, also across crashes
    batch.put("cherry", "dark red")?.delete("banana")?;
    db.write(batch).await?;

    let apple = db.get("apple").await?;
    println!(
        "apple  = {:?}",
        apple.as_deref().map(String::from_utf8_lossy)
    );
    println!("banana = {:?}", db.get("banana").await?);
    println!("{} keys: {:?}", db.len(), db.keys().await?);

    db.delete("apple").await?;
    let report = db.compact().await?;
    println!(
        "compaction: {} -> {} bytes, {} live records",
        report.bytes_before, report.bytes_after, report.records_written
    );
    db.close().await
}
