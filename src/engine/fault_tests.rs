//! Failed file operations through the file-system seam (`io/fs.rs`): after
//! a short write, a failed fsync or a failed rename of `index.idx`, the
//! failing call reports the error, the handle refuses every later write with
//! a clear error, and a reopen finds every acknowledged write.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::blocking::Db;
use crate::error::Error;
use crate::io::fs::{FailingOps, Fs};
use crate::options::Options;

fn open_failing(dir: &Path, ops: &Arc<FailingOps>) -> Db {
    let opts = Options {
        fs: Fs::with(ops.clone()),
        ..Options::default()
    };
    Db::builder(dir).options(opts).open_blocking().unwrap()
}

/// Puts `n` keys, flushes, and returns what was acknowledged.
fn acknowledged(db: &Db, n: u32) -> BTreeMap<String, String> {
    let mut want = BTreeMap::new();
    for i in 0..n {
        let (k, v) = (format!("k{i:04}"), format!("value {i}"));
        db.put(&k, &v).unwrap();
        want.insert(k, v);
    }
    db.flush().unwrap();
    want
}

/// The handle refuses a write with an error that says to reopen.
fn refuses_writes(db: &Db) {
    match db.put("later", "x") {
        Err(Error::Closed(why)) => assert!(why.contains("reopen"), "{why}"),
        other => panic!("a poisoned handle took a write: {other:?}"),
    }
}

/// A fresh handle on the real file system finds every acknowledged write.
fn reopen_finds(dir: &Path, want: &BTreeMap<String, String>) {
    let db = Db::open(dir).unwrap();
    for (k, v) in want {
        assert_eq!(
            db.get(k).unwrap().as_deref(),
            Some(v.as_bytes()),
            "acknowledged {k} lost"
        );
    }
    assert_eq!(db.get("later").unwrap(), None);
    assert!(db.verify().unwrap().is_ok());
}

#[test]
fn a_short_write_fails_the_put_poisons_the_handle_and_loses_nothing_acknowledged() {
    let d = tempfile::tempdir().unwrap();
    let ops = Arc::new(FailingOps::default());
    let db = open_failing(d.path(), &ops);
    let want = acknowledged(&db, 100);
    ops.fail_next_write();
    assert!(matches!(
        db.put("torn", "half of me"),
        Err(Error::Io { .. })
    ));
    refuses_writes(&db);
    drop(db);
    reopen_finds(d.path(), &want);
    assert_eq!(Db::open(d.path()).unwrap().get("torn").unwrap(), None);
}

#[test]
fn a_failed_fsync_fails_the_flush_poisons_the_handle_and_loses_nothing_acknowledged() {
    let d = tempfile::tempdir().unwrap();
    let ops = Arc::new(FailingOps::default());
    let db = open_failing(d.path(), &ops);
    let want = acknowledged(&db, 100);
    db.put("unflushed", "v").unwrap();
    ops.fail_next_sync();
    assert!(matches!(db.flush(), Err(Error::Io { .. })));
    refuses_writes(&db);
    drop(db);
    reopen_finds(d.path(), &want);
}

#[test]
fn a_failed_rename_of_the_index_keeps_the_old_one_and_poisons_the_handle() {
    let d = tempfile::tempdir().unwrap();
    let ops = Arc::new(FailingOps::default());
    let db = open_failing(d.path(), &ops);
    let want = acknowledged(&db, 100);
    let before = std::fs::read(d.path().join("index.idx")).unwrap();
    ops.fail_next_rename();
    assert!(matches!(db.checkpoint(), Err(Error::Io { .. })));
    assert_eq!(std::fs::read(d.path().join("index.idx")).unwrap(), before);
    let leftovers: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    refuses_writes(&db);
    drop(db);
    reopen_finds(d.path(), &want);
}
