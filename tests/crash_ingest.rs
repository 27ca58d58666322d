//! kill -9 of a worker while it stages its shard, and of the driver while
//! it ingests (FORMAT.md §10.11): the remote's committed state is exactly
//! the previous commit or exactly the new one, and what a killed step left
//! behind is harmless.
//!
//! The children are this test binary, re-run on one test with an
//! environment variable naming the work directory and the remote: a prefix
//! of the real S3 server (s3s-fs) the parent runs on loopback.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::contents;

use common::kill::run_child_and_kill;
use common::s3::TestS3;
use common::{Xorshift, key_for};
use s4db::DbBuilder;
use s4db::blocking::Db;

const SHARDS: u64 = 6;
const PER_SHARD: u64 = 400;

/// A work directory and the remote's URL, as handed to a child:
/// `WORK|URL`.
struct Job {
    work: std::path::PathBuf,
    url: String,
}

impl Job {
    fn parse(s: &str) -> Job {
        let (work, url) = s.split_once('|').unwrap();
        Job {
            work: work.into(),
            url: url.into(),
        }
    }

    fn arg(&self) -> String {
        format!("{}|{}", self.work.display(), self.url)
    }

    fn remote(&self) -> DbBuilder {
        DbBuilder::for_remote(&self.url).credentials(TestS3::credentials())
    }
}

/// Builds shard `s` (keys overlapping the next shard's) in `work/shard-s`
/// and stages it as `part-s`.
fn build_and_stage(job: &Job, s: u64) {
    let db = Db::builder(job.work.join(format!("shard-{s}")))
        .max_segment_size(4 << 10)
        .open_blocking()
        .unwrap();
    let keys: Vec<u64> = (s * PER_SHARD / 2..s * PER_SHARD / 2 + PER_SHARD).collect();
    for chunk in keys.chunks(50) {
        db.put_many(
            chunk
                .iter()
                .map(|&i| (key_for(i), format!("shard {s} {i}"))),
        )
        .unwrap();
    }
    db.stage(job.remote(), &format!("part-{s}")).unwrap();
}

/// The committed database before any shard: keys 0..100.
fn committed_base(job: &Job) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let db = Db::builder(job.work.join("base"))
        .remote(&job.url)
        .credentials(TestS3::credentials())
        .open_blocking()
        .unwrap();
    db.put_many((0..100).map(|i| (key_for(i), format!("base {i}"))))
        .unwrap();
    db.upload().unwrap();
    contents(&db)
}

/// What the database holds after every shard, in order, on `base`.
fn with_all_shards(mut state: BTreeMap<Vec<u8>, Vec<u8>>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    for s in 0..SHARDS {
        for i in s * PER_SHARD / 2..s * PER_SHARD / 2 + PER_SHARD {
            state.insert(
                key_for(i).into_bytes(),
                format!("shard {s} {i}").into_bytes(),
            );
        }
    }
    state
}

fn committed(job: &Job) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let reader = job.remote().open_blocking().unwrap();
    assert!(reader.verify().unwrap().is_ok());
    contents(&reader)
}

fn rounds() -> u64 {
    std::env::var("S4DB_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

fn seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1
}

#[test]
fn kill_9_of_a_worker_while_it_stages_leaves_the_committed_state_as_it_was() {
    if let Ok(arg) = std::env::var("S4DB_KILL_STAGE_CHILD") {
        let job = Job::parse(&arg);
        println!(); // past the test harness's "test … " line
        for s in 0..SHARDS {
            build_and_stage(&job, s);
            println!("ack {s}");
        }
        return;
    }
    let s3 = TestS3::start();
    let mut rng = Xorshift::new(seed());
    for round in 0..rounds() {
        let work = tempfile::tempdir().unwrap();
        let job = Job {
            work: work.path().into(),
            url: s3.url(&format!("stage-{round}")),
        };
        let base = committed_base(&job);
        let mut staged = Vec::new();
        run_child_and_kill(
            "kill_9_of_a_worker_while_it_stages_leaves_the_committed_state_as_it_was",
            "S4DB_KILL_STAGE_CHILD",
            Path::new(&job.arg()),
            1 + rng.below(SHARDS - 1),
            Duration::from_micros(rng.below(20_000)),
            |s| staged.push(s.trim().to_string()),
        );
        assert_eq!(
            committed(&job),
            base,
            "round {round}: staging committed nothing"
        );
        // Whatever the killed worker left: the acknowledged stages ingest,
        // and gc (grace 0) collects the rest without touching the commit.
        let names: Vec<String> = staged.iter().map(|s| format!("part-{s}")).collect();
        job.remote().ingest_blocking(&names).unwrap();
        let after = committed(&job);
        job.remote()
            .open_blocking()
            .unwrap()
            .gc(Duration::ZERO)
            .unwrap();
        assert_eq!(committed(&job), after, "round {round}: gc kept the commit");
        assert!(after.len() > base.len(), "round {round}");
    }
}

#[test]
fn kill_9_of_the_driver_while_it_ingests_leaves_the_previous_commit_or_the_new_one() {
    if let Ok(arg) = std::env::var("S4DB_KILL_INGEST_CHILD") {
        let job = Job::parse(&arg);
        // A line of its own: the test harness's "test … " has no newline.
        println!("\nack start");
        let names: Vec<String> = (0..SHARDS).map(|s| format!("part-{s}")).collect();
        job.remote().ingest_blocking(&names).unwrap();
        println!("ack done");
        return;
    }
    let s3 = TestS3::start();
    let mut rng = Xorshift::new(seed());
    let (mut old, mut new) = (0, 0);
    for round in 0..rounds() * 2 {
        let work = tempfile::tempdir().unwrap();
        let job = Job {
            work: work.path().into(),
            url: s3.url(&format!("ingest-{round}")),
        };
        let base = committed_base(&job);
        for s in 0..SHARDS {
            build_and_stage(&job, s);
        }
        let all = with_all_shards(base.clone());
        run_child_and_kill(
            "kill_9_of_the_driver_while_it_ingests_leaves_the_previous_commit_or_the_new_one",
            "S4DB_KILL_INGEST_CHILD",
            Path::new(&job.arg()),
            1,
            Duration::from_micros(rng.below(80_000)),
            |_| {},
        );
        let now = committed(&job);
        if now == base {
            old += 1;
            // Not committed: the same ingest, run again, finishes it.
            let names: Vec<String> = (0..SHARDS).map(|s| format!("part-{s}")).collect();
            job.remote().ingest_blocking(&names).unwrap();
            assert_eq!(committed(&job), all, "round {round}");
        } else {
            new += 1;
            assert_eq!(now, all, "round {round}: all shards or none");
        }
    }
    eprintln!("kills before the commit: {old}, after it: {new}");
}
