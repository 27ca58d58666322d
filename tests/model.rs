//! Property test: random sequences of puts, deletes, batches, flushes,
//! checkpoints, full and selective compactions, index rebuilds, reopens and
//! crash-reopens,
//! checked after every step against a BTreeMap model.
//! `PROPTEST_CASES` raises the number of sequences (default 200).

mod common;

use std::collections::BTreeMap;

use proptest::prelude::*;
use s4db::blocking::Db;
use s4db::{CompactOptions, WriteBatch};

#[derive(Debug, Clone)]
enum Op {
    Put(u8, Vec<u8>),
    Delete(u8),
    Batch(Vec<(u8, Option<Vec<u8>>)>),
    Flush,
    Checkpoint,
    /// `None`: full; `Some(p)`: selective at `p` percent dead.
    Compact(Option<u8>),
    Rebuild,
    Reopen,
    CrashReopen,
}

fn key(k: u8) -> Vec<u8> {
    if k % 16 == 15 {
        // Now and then a long key.
        vec![b'L'; 300 + usize::from(k)]
    } else {
        format!("k{k}").into_bytes()
    }
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        (1usize..60, "[a-c]{1,4}").prop_map(|(n, s)| s.repeat(n).into_bytes()),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0u8..40, value()).prop_map(|(k, v)| Op::Put(k, v)),
        4 => (0u8..40).prop_map(Op::Delete),
        4 => proptest::collection::vec((0u8..40, proptest::option::of(value())), 1..8).prop_map(Op::Batch),
        1 => Just(Op::Flush),
        1 => Just(Op::Checkpoint),
        2 => proptest::option::of(1u8..=100).prop_map(Op::Compact),
        1 => Just(Op::Rebuild),
        1 => Just(Op::Reopen),
        1 => Just(Op::CrashReopen),
    ]
}

fn open(dir: &std::path::Path) -> Db {
    Db::builder(dir)
        .max_segment_size(4096)
        .open_blocking()
        .unwrap()
}

fn check(db: &Db, model: &BTreeMap<Vec<u8>, Vec<u8>>) -> Result<(), TestCaseError> {
    prop_assert_eq!(&common::contents(db), model);
    prop_assert_eq!(db.len(), model.len() as u64);
    for (k, v) in model {
        let got = db.get(k).unwrap();
        prop_assert_eq!(got.as_deref(), Some(v.as_slice()));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(200), ..ProptestConfig::default() })]

    #[test]
    fn the_database_behaves_like_a_map(ops in proptest::collection::vec(op(), 1..60)) {
        let mut dirs = vec![tempfile::tempdir().unwrap()];
        let mut db = open(dirs[0].path());
        let mut model = BTreeMap::new();
        for op in ops {
            match op {
                Op::Put(k, v) => { db.put(key(k), &v).unwrap(); model.insert(key(k), v); }
                Op::Delete(k) => { db.delete(key(k)).unwrap(); model.remove(&key(k)); }
                Op::Batch(items) => {
                    let mut b = WriteBatch::new();
                    for (k, v) in items {
                        match v {
                            Some(v) => { b.put(key(k), &v).unwrap(); model.insert(key(k), v); }
                            None => { b.delete(key(k)).unwrap(); model.remove(&key(k)); }
                        }
                    }
                    db.write(b).unwrap();
                }
                Op::Flush => db.flush().unwrap(),
                Op::Checkpoint => db.checkpoint().unwrap(),
                Op::Compact(how) => {
                    let opts = match how {
                        None => CompactOptions::default().full(true),
                        Some(p) => CompactOptions::default().min_dead_percent(p),
                    };
                    db.compact_with(opts).unwrap();
                }
                Op::Rebuild => {
                    let r = db.rebuild_index().unwrap();
                    prop_assert!(r.skipped.is_empty() && r.torn_tail.is_none());
                }
                Op::Reopen => {
                    db.close().unwrap();
                    drop(db);
                    db = open(dirs.last().unwrap().path());
                }
                Op::CrashReopen => {
                    let img = tempfile::tempdir().unwrap();
                    common::crash_image(dirs.last().unwrap().path(), img.path());
                    drop(db);
                    db = open(img.path());
                    dirs.push(img);
                }
            }
            check(&db, &model)?;
        }
        prop_assert!(db.verify().unwrap().is_ok());
    }
}
