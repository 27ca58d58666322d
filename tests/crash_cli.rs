//! Crash harness through the real binary (issue #6): `s4db import` with
//! `--sync always --batch 100`, killed with SIGKILL at a random moment,
//! `S4DB_CRASH_ROUNDS` times (default 100). After each kill: `verify` passes,
//! the keys present are exactly the first k records for a k that is a whole
//! number of batches, with exact values, and later writes work. Compaction is
//! interrupted the same way.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use s4db::blocking::Db;

const RECORDS: u64 = 200_000;

fn key(i: u64) -> String {
    format!("rec{i:08}")
}

fn value(i: u64) -> String {
    format!("value of record {i} {}", "xyz".repeat((i % 7) as usize))
}

fn bin() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("s4db")
}

fn input() -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORDS as usize * 60);
    for i in 0..RECORDS {
        writeln!(out, "{{\"key\":\"{}\",\"value\":\"{}\"}}", key(i), value(i)).unwrap();
    }
    out
}

/// The number of records present: they must be exactly the first k.
fn check_prefix(dir: &std::path::Path, seed: u64, round: u64) -> u64 {
    let db =
        Db::open(dir).unwrap_or_else(|e| panic!("seed {seed} round {round}: reopen failed: {e}"));
    let report = db.verify().unwrap();
    assert!(
        report.is_ok(),
        "seed {seed} round {round}: {:?}",
        report.problems
    );
    let n = db.len();
    assert_eq!(
        n % 100,
        0,
        "seed {seed} round {round}: {n} records is not whole batches"
    );
    // Exact values: every 97th record, and the whole last batch.
    for i in (0..n).step_by(97).chain(n.saturating_sub(100)..n) {
        assert_eq!(
            db.get(key(i)).unwrap().unwrap(),
            value(i),
            "seed {seed} round {round}: record {i}"
        );
    }
    assert!(
        !db.contains(key(n)).unwrap(),
        "seed {seed} round {round}: record {n} past the prefix"
    );
    let keys = db.keys().unwrap();
    assert!(
        keys.iter()
            .enumerate()
            .all(|(i, k)| &k[..] == key(i as u64).as_bytes()),
        "seed {seed}: not a prefix"
    );
    n
}

/// Kill rounds (`default`, or `S4DB_CRASH_ROUNDS / per + 1`), a seed from
/// the clock (failures print it), and a generator seeded with it.
/// Opens `b` and puts records `0..n` in batches of 1,000.
fn loaded(b: s4db::DbBuilder, n: u64) -> Db {
    let db = b.open_blocking().unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        db.put_many(chunk.iter().map(|&i| (key(i), value(i))))
            .unwrap();
    }
    db
}

/// Copies `base` (as a crash would leave it), runs `s4db --dir COPY ARGS…`
/// on the copy, kills it with SIGKILL after a random pause below `max_ms`,
/// and opens and verifies what is left.
fn killed_during<S: AsRef<std::ffi::OsStr>>(
    base: &std::path::Path,
    args: &[S],
    max_ms: u64,
    rng: &mut common::Xorshift,
    at: &str,
) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    common::crash_image(base, dir.path());
    let mut child = Command::new(bin())
        .arg("--dir")
        .arg(dir.path())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(rng.below(max_ms)));
    child.kill().unwrap();
    child.wait().unwrap();
    let db = Db::open(dir.path()).unwrap_or_else(|e| panic!("{at}: {e}"));
    assert!(db.verify().unwrap().is_ok(), "{at}");
    (dir, db)
}

fn rounds_and_rng(default: u64, per: u64) -> (u64, u64, common::Xorshift) {
    let rounds = std::env::var("S4DB_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(default, |r| r / per + 1);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    (rounds, seed, common::Xorshift::new(seed))
}

#[test]
fn kill_9_during_import_keeps_a_prefix_of_whole_batches() {
    let rounds: u64 = std::env::var("S4DB_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = common::Xorshift::new(seed);
    let data = input();
    let mut mid_import = 0;
    for round in 0..rounds {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(bin())
            .args(["-q", "--sync", "always", "--dir"])
            .arg(dir.path())
            .args(["import", "--batch", "100"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let data2 = data.clone();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(&data2);
        });
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let _ = feeder.join();
        let n = check_prefix(dir.path(), seed, round);
        eprintln!("round {round}: {n} records survived the kill");
        if n > 0 && n < RECORDS {
            mid_import += 1;
        }
        // Later writes work, and survive a reopen.
        let db = Db::open(dir.path())
            .unwrap_or_else(|e| panic!("seed {seed} round {round}: reopen for writing: {e:?}"));
        db.put(key(n), value(n)).unwrap();
        db.close().unwrap();
        assert_eq!(
            Db::open(dir.path()).unwrap().len(),
            n + 1,
            "seed {seed} round {round}"
        );
    }
    assert!(mid_import > 0, "no kill landed in the middle of an import");
}

#[test]
fn kill_9_during_upload_then_upload_again_makes_a_consistent_remote() {
    let (rounds, seed, mut rng) = rounds_and_rng(10, 10);
    for round in 0..rounds {
        let (dir, remote, copy) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let url = format!("file://{}", remote.path().display());
        {
            let db = loaded(Db::builder(dir.path()).max_segment_size(64 << 10), 30_000);
            db.close().unwrap();
        }
        let mut child = Command::new(bin())
            .args(["-q", "--dir"])
            .arg(dir.path())
            .args(["--remote", &url, "upload"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(150)));
        child.kill().unwrap();
        child.wait().unwrap();
        // Whatever the kill left (some segments, or the whole commit), a new
        // upload completes and the remote then holds exactly the local data.
        let db = Db::builder(dir.path())
            .remote(&url)
            .open_blocking()
            .unwrap();
        match db.upload() {
            Ok(_) => {}
            // The first upload committed but died before recording it: the
            // remote has this directory's data; a rebase reconciles.
            Err(s4db::Error::Conflict(_)) => {
                db.upload_with(s4db::UploadOptions::default().rebase(true))
                    .unwrap();
            }
            Err(e) => panic!("seed {seed} round {round}: {e}"),
        }
        let fresh = Db::builder(copy.path())
            .remote(&url)
            .open_blocking()
            .unwrap();
        fresh.download().unwrap();
        assert_eq!(fresh.len(), 30_000, "seed {seed} round {round}");
        assert!(fresh.verify().unwrap().is_ok());
        assert_eq!(fresh.get(key(29_999)).unwrap().unwrap(), value(29_999));
    }
}

#[test]
fn kill_9_during_compaction_loses_nothing() {
    let (rounds, seed, mut rng) = rounds_and_rng(20, 5);
    let base = tempfile::tempdir().unwrap();
    {
        let db = loaded(Db::builder(base.path()).max_segment_size(256 << 10), 60_000);
        // Garbage to compact, in the first half's segments only: a third of
        // each is dead, the second half's are wholly live.
        for i in (0..30_000u64).step_by(3) {
            db.put(key(i), value(i + 1)).unwrap();
        }
        db.close().unwrap();
    }
    let want: Vec<(u64, String)> = (0..60_000)
        .map(|i| {
            (
                i,
                if i % 3 == 0 && i < 30_000 {
                    value(i + 1)
                } else {
                    value(i)
                },
            )
        })
        .collect();
    for round in 0..rounds {
        let at = format!("seed {seed} round {round}");
        // Full and selective (the first half's segments) in turn.
        let how: &[&str] = if round % 2 == 0 {
            &["--full"]
        } else {
            &["--min-dead", "20"]
        };
        let args = [&["-q", "compact"][..], how].concat();
        let (_dir, db) = killed_during(base.path(), &args, 300, &mut rng, &at);
        assert_eq!(db.len(), 60_000, "seed {seed} round {round}");
        assert!(db.verify().unwrap().is_ok(), "seed {seed} round {round}");
        for (i, v) in want.iter().step_by(997) {
            assert_eq!(
                db.get(key(*i)).unwrap().unwrap(),
                v.as_str(),
                "seed {seed} round {round}"
            );
        }
    }
}

#[test]
fn kill_9_during_a_prefix_delete_leaves_all_of_the_prefix_or_none() {
    let (rounds, seed, mut rng) = rounds_and_rng(20, 5);
    let base = tempfile::tempdir().unwrap();
    {
        let db = loaded(Db::builder(base.path()).max_segment_size(256 << 10), 60_000);
        db.close().unwrap();
    }
    // `rec0002…`: records 20,000 to 29,999.
    let doomed = |i: u64| (20_000..30_000).contains(&i);
    let (mut none_gone, mut all_gone) = (0, 0);
    for round in 0..rounds {
        let at = format!("seed {seed} round {round}");
        let args = ["-q", "--sync", "always", "del", "--prefix", "rec0002"];
        let (_dir, db) = killed_during(base.path(), &args, 150, &mut rng, &at);
        let left = (0..60_000u64)
            .filter(|&i| doomed(i))
            .filter(|&i| db.contains(key(i)).unwrap())
            .count();
        match left {
            0 => all_gone += 1,
            10_000 => none_gone += 1,
            n => panic!("seed {seed} round {round}: {n} of the prefix's 10,000 keys survived"),
        }
        assert_eq!(
            db.len(),
            50_000 + left as u64,
            "seed {seed} round {round}: keys outside the prefix changed"
        );
        for i in (0..60_000u64).filter(|&i| !doomed(i)).step_by(991) {
            assert_eq!(
                db.get(key(i)).unwrap().unwrap(),
                value(i),
                "seed {seed} round {round}"
            );
        }
    }
    eprintln!("{all_gone} rounds found the prefix deleted, {none_gone} found it whole");
}

#[test]
fn kill_9_during_a_discard_leaves_the_named_keys_all_discarded_or_all_kept() {
    let (rounds, seed, mut rng) = rounds_and_rng(20, 5);
    let base = tempfile::tempdir().unwrap();
    let remote = tempfile::tempdir().unwrap();
    let url = remote.path().to_str().unwrap().to_string();
    let changed = |i: u64| format!("changed {i}");
    {
        let db = loaded(
            Db::builder(base.path())
                .remote(&url)
                .max_segment_size(256 << 10),
            60_000,
        );
        db.upload().unwrap();
        // Unsynced: records 20,000 to 39,999 changed.
        for chunk in (20_000..40_000u64).collect::<Vec<_>>().chunks(1000) {
            db.put_many(chunk.iter().map(|&i| (key(i), changed(i))))
                .unwrap();
        }
        db.close().unwrap();
    }
    // Discard the changes of 20,000 to 29,999; keep those of 30,000 to 39,999.
    let mut args: Vec<String> = ["-q", "--sync", "always", "--remote", &url, "discard"]
        .map(String::from)
        .to_vec();
    args.extend((20_000..30_000u64).map(key));
    let (mut done, mut not_done) = (0, 0);
    for round in 0..rounds {
        let at = format!("seed {seed} round {round}");
        let (_dir, db) = killed_during(base.path(), &args, 1500, &mut rng, &at);
        assert_eq!(db.len(), 60_000, "seed {seed} round {round}");
        let back = (20_000..30_000u64)
            .filter(|&i| db.get(key(i)).unwrap().unwrap() == value(i))
            .count();
        match back {
            10_000 => done += 1,
            0 => not_done += 1,
            n => panic!("seed {seed} round {round}: {n} of 10,000 discarded keys went back"),
        }
        for i in (0..60_000u64).step_by(97) {
            let want =
                if (30_000..40_000).contains(&i) || ((20_000..30_000).contains(&i) && back == 0) {
                    changed(i)
                } else {
                    value(i)
                };
            assert_eq!(
                db.get(key(i)).unwrap().unwrap(),
                want,
                "seed {seed} round {round}: key {i}"
            );
        }
    }
    eprintln!("{done} rounds found the discard done, {not_done} found it not done");
}
