//! A child process writing with `SyncPolicy::EveryWrite` is killed with
//! SIGKILL at a random moment. Every write it acknowledged must survive, and
//! the keys present must be a prefix of what each writer wrote, batches whole.
//!
//! The child is this same test binary, re-run with `S4DB_KILL_CHILD` set.

#[path = "common/data.rs"]
mod data;
#[path = "common/kill.rs"]
mod kill;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kill::run_child_and_kill;

use s4db::blocking::Db;
use s4db::{SyncPolicy, WriteBatch};

const THREADS: u64 = 2;
const BATCH: u64 = 5;

fn key(t: u64, i: u64) -> String {
    format!("t{t}-{i:08}")
}

fn value(t: u64, i: u64) -> String {
    format!(
        "value of thread {t} record {i} {}",
        "abc".repeat((i % 40) as usize)
    )
}

/// The child: THREADS writers, each appending batches of BATCH records from
/// where the database left off, printing `ack T END` after each durable batch.
fn child(dir: &str) {
    let db = Db::builder(dir)
        .sync(SyncPolicy::EveryWrite)
        .max_segment_size(64 << 10)
        .open_blocking()
        .unwrap();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut i = (0..).find(|&i| !db.contains(key(t, i)).unwrap()).unwrap();
                loop {
                    let mut b = WriteBatch::new();
                    for j in i..i + BATCH {
                        b.put(key(t, j), value(t, j)).unwrap();
                    }
                    db.write(b).unwrap();
                    i += BATCH;
                    println!("ack {t} {i}");
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}

#[test]
fn kill_9_loses_no_acknowledged_write() {
    if let Ok(dir) = std::env::var("S4DB_KILL_CHILD") {
        child(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut rng = data::Xorshift::new(seed | 1);
    let rounds: u64 = std::env::var("S4DB_KILL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let mut acked = [0u64; THREADS as usize];
    for round in 0..rounds {
        let kill_after = 1 + rng.below(400);
        let seen = run_child_and_kill(
            "kill_9_loses_no_acknowledged_write",
            "S4DB_KILL_CHILD",
            dir.path(),
            kill_after,
            Duration::ZERO,
            |rest| {
                let (t, n) = rest.split_once(' ').unwrap();
                let (t, n): (usize, u64) = (t.parse().unwrap(), n.parse().unwrap());
                acked[t] = acked[t].max(n);
            },
        );

        let db = Db::open(dir.path()).unwrap();
        let mut total = 0;
        for t in 0..THREADS {
            // Present keys: exactly 0..k for some k >= acknowledged, k a whole number of batches.
            let k = (0..).find(|&i| !db.contains(key(t, i)).unwrap()).unwrap();
            assert!(
                k >= acked[t as usize],
                "seed {seed} round {round}: thread {t} lost acknowledged writes ({k} < {})",
                acked[t as usize]
            );
            assert_eq!(k % BATCH, 0, "seed {seed}: a batch was split");
            for i in 0..k {
                assert_eq!(
                    db.get(key(t, i)).unwrap().unwrap(),
                    value(t, i),
                    "seed {seed}"
                );
            }
            assert!(
                !db.contains(key(t, k + 1)).unwrap(),
                "seed {seed}: not a prefix"
            );
            total += k;
            acked[t as usize] = k;
        }
        assert_eq!(db.len(), total, "seed {seed}");
        assert!(db.verify().unwrap().is_ok(), "seed {seed}");
        db.close().unwrap();
        eprintln!("round {round}: killed after {seen} acks; recovered {acked:?}");
    }
    assert!(acked.iter().all(|&n| n > 0), "the child never wrote");
}

/// Batch `i` of the checkpointing child: puts, overwrites and a delete, and
/// the count of batches done, in one atomic write.
fn layered_batch(i: u64) -> WriteBatch {
    let mut b = WriteBatch::new();
    for j in 0..10 {
        let k = (i * 7 + j) % 300;
        b.put(format!("c{k:03}"), format!("v{i}-{k}")).unwrap();
    }
    b.delete(format!("c{:03}", (i * 13 + 5) % 300)).unwrap();
    b.put("batches", (i + 1).to_string()).unwrap();
    b
}

/// The state after the first `n` batches.
fn layered_state(n: u64) -> std::collections::BTreeMap<String, String> {
    let mut m = std::collections::BTreeMap::new();
    for i in 0..n {
        for j in 0..10 {
            let k = (i * 7 + j) % 300;
            m.insert(format!("c{k:03}"), format!("v{i}-{k}"));
        }
        m.remove(&format!("c{:03}", (i * 13 + 5) % 300));
        m.insert("batches".to_string(), (i + 1).to_string());
    }
    m
}

/// The child: one batch, then a checkpoint (a new index run, often a
/// merge), over and over, printing `ack N` after each checkpoint.
fn checkpointing_child(dir: &str) {
    let db = Db::builder(dir)
        .sync(SyncPolicy::EveryWrite)
        .open_blocking()
        .unwrap();
    let mut i: u64 = db.get("batches").unwrap().map_or(0, |v| {
        String::from_utf8(v.to_vec()).unwrap().parse().unwrap()
    });
    loop {
        db.write(layered_batch(i)).unwrap();
        db.checkpoint().unwrap();
        i += 1;
        println!("ack {i}");
    }
}

#[test]
fn kill_9_between_an_index_run_and_its_root_or_during_a_merge_loses_nothing() {
    if let Ok(dir) = std::env::var("S4DB_KILL_CHECKPOINT_CHILD") {
        checkpointing_child(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut rng = data::Xorshift::new(seed | 1);
    let rounds: u64 = std::env::var("S4DB_KILL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let mut acked = 0u64;
    for round in 0..rounds {
        let kill_after = 1 + rng.below(60);
        // Most of the child's time is in checkpoints: the kill lands in one
        // (before its run, between the run and the root, or after).
        let seen = run_child_and_kill(
            "kill_9_between_an_index_run_and_its_root_or_during_a_merge_loses_nothing",
            "S4DB_KILL_CHECKPOINT_CHILD",
            dir.path(),
            kill_after,
            Duration::from_micros(rng.below(3000)),
            |n| acked = acked.max(n.parse().unwrap()),
        );

        let db = Db::open(dir.path()).unwrap();
        let n: u64 = db.get("batches").unwrap().map_or(0, |v| {
            String::from_utf8(v.to_vec()).unwrap().parse().unwrap()
        });
        assert!(
            n >= acked,
            "seed {seed} round {round}: {n} < {acked} acknowledged"
        );
        let got: std::collections::BTreeMap<String, String> = db
            .iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                (
                    String::from_utf8(k.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                )
            })
            .collect();
        assert_eq!(got, layered_state(n), "seed {seed} round {round}");
        assert!(db.verify().unwrap().is_ok(), "seed {seed} round {round}");
        db.checkpoint().unwrap();
        db.close().unwrap();
        // After an index write, every run file is one the root names (a
        // run left without its root is gone), and there are at most 8.
        let runs = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                let n = e.as_ref().unwrap().file_name();
                let n = n.to_string_lossy();
                n.starts_with("index_") && n.ends_with(".run")
            })
            .count();
        assert!((1..=8).contains(&runs), "seed {seed}: {runs} run files");
        acked = n;
        eprintln!("round {round}: killed after {seen} checkpoints; {n} batches");
    }
    assert!(acked > 0, "the child never checkpointed");
}
