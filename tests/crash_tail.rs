//! Crash images: the last segment cut at every byte offset, or garbled, across
//! its last records. Reopen must give exactly the state after some prefix of
//! the writes, with every batch whole or absent.

mod common;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::path::Path;

use common::{Xorshift, contents, crash_image, segment_files, value_for};

fn hex(i: u32, len: usize) -> String {
    String::from_utf8(value_for(u64::from(i) * 2 + 1, len)).unwrap()
}
use s4db::WriteBatch;
use s4db::blocking::Db;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Writes a checkpointed base, then a tail of singles, batches and deletes.
/// Returns the crash image dir, the last segment, and for each operation the
/// segment length after it with the model state after it.
fn build(
    max_segment: u64,
    pad: usize,
) -> (tempfile::TempDir, std::path::PathBuf, Vec<(u64, Model)>) {
    let live = tempfile::tempdir().unwrap();
    let db = Db::builder(live.path())
        .max_segment_size(max_segment)
        .open_blocking()
        .unwrap();
    let mut model = Model::new();
    for i in 0..20u32 {
        let (k, v) = (format!("base{i}"), format!("base value {i}"));
        db.put(&k, &v).unwrap();
        model.insert(k.into_bytes(), v.into_bytes());
    }
    db.checkpoint().unwrap();
    let mut states = Vec::new();
    let seg_len = |dir: &Path| {
        fs::metadata(segment_files(dir).last().unwrap())
            .unwrap()
            .len()
    };
    states.push((seg_len(live.path()), model.clone()));
    for step in 0..8u32 {
        match step % 4 {
            0 => {
                let (k, v) = (
                    format!("single{step}"),
                    format!("{}{}", "x".repeat(40 + step as usize), hex(step, pad)),
                );
                db.put(&k, &v).unwrap();
                model.insert(k.into_bytes(), v.into_bytes());
            }
            1 => {
                let mut b = WriteBatch::new();
                for j in 0..3 {
                    let (k, v) = (
                        format!("batch{step}-{j}"),
                        format!(
                            "batch value {step} {j} abcabcabcabcabcabcabcabcabc{}",
                            hex(step * 7 + j, pad)
                        ),
                    );
                    b.put(&k, &v).unwrap();
                    model.insert(k.into_bytes(), v.into_bytes());
                }
                b.delete("base3").unwrap();
                model.remove(&b"base3"[..]);
                db.write(b).unwrap();
            }
            2 => {
                db.delete(format!("base{step}")).unwrap();
                model.remove(format!("base{step}").as_bytes());
            }
            _ => {
                let (k, v) = (
                    format!("base{}", step + 1),
                    format!("overwritten {step}{}", hex(step * 3 + 1, pad)),
                );
                db.put(&k, &v).unwrap();
                model.insert(k.into_bytes(), v.into_bytes());
            }
        }
        states.push((seg_len(live.path()), model.clone()));
    }
    let img = tempfile::tempdir().unwrap();
    crash_image(live.path(), img.path());
    let last = segment_files(img.path()).last().unwrap().clone();
    (img, last, states)
}

fn expected_at(states: &[(u64, Model)], cut: u64) -> &Model {
    &states.iter().rev().find(|(end, _)| *end <= cut).unwrap().1
}

fn reopen_and_check(dir: &Path, want: &Model, what: &str) {
    let db = Db::open(dir).unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
    assert_eq!(&contents(&db), want, "{what}");
    assert!(db.verify().unwrap().is_ok(), "{what}: verify");
    db.put("later", "write").unwrap();
    db.close().unwrap();
    let db = Db::open(dir).unwrap();
    assert_eq!(db.get("later").unwrap().unwrap(), "write", "{what}");
    assert_eq!(
        db.len(),
        want.len() as u64 + u64::from(!want.contains_key(&b"later"[..]))
    );
}

fn with_copy(img: &Path, f: impl FnOnce(&Path)) {
    let t = tempfile::tempdir().unwrap();
    crash_image(img, t.path());
    f(t.path());
}

#[test]
fn cutting_the_last_segment_at_every_offset_keeps_a_prefix_of_whole_batches() {
    let (img, last, states) = build(1 << 20, 0);
    let name = last.file_name().unwrap().to_owned();
    let (start, end) = (states[0].0, states.last().unwrap().0);
    for cut in start..=end {
        with_copy(img.path(), |dir| {
            let seg = dir.join(&name);
            OpenOptions::new()
                .write(true)
                .open(&seg)
                .unwrap()
                .set_len(cut)
                .unwrap();
            reopen_and_check(dir, expected_at(&states, cut), &format!("cut at {cut}"));
        });
    }
}

#[test]
fn garbage_after_any_offset_keeps_a_prefix_and_saves_the_cut_bytes() {
    let (img, last, states) = build(1 << 20, 0);
    let name = last.file_name().unwrap().to_owned();
    let (start, end) = (states[0].0, states.last().unwrap().0);
    let mut rng = Xorshift::default();
    for cut in (start..end).step_by(3) {
        with_copy(img.path(), |dir| {
            let seg = dir.join(&name);
            let mut bytes = fs::read(&seg).unwrap();
            for b in &mut bytes[cut as usize..] {
                *b = rng.next_u64() as u8;
            }
            bytes.extend_from_slice(&[0u8; 100]); // and a zero-filled extension
            fs::write(&seg, &bytes).unwrap();
            let want = expected_at(&states, cut);
            let good_end = states.iter().rev().find(|(e, _)| *e <= cut).unwrap().0;
            reopen_and_check(dir, want, &format!("garbage from {cut}"));
            let kept = dir.join(format!("{}.torn-{good_end}", name.to_string_lossy()));
            assert_eq!(
                fs::read(&kept).unwrap(),
                bytes[good_end as usize..],
                "cut bytes are kept"
            );
        });
    }
}

#[test]
fn a_torn_tail_in_a_segment_created_after_the_index_is_cut_too() {
    // Small segments: the tail writes span several segments the index never saw.
    let (img, last, states) = build(4096, 1500);
    let segs = segment_files(img.path());
    assert!(segs.len() >= 2);
    let name = last.file_name().unwrap().to_owned();
    let len = fs::metadata(&last).unwrap().len();
    for cut in (48..len).step_by(7) {
        with_copy(img.path(), |dir| {
            OpenOptions::new()
                .write(true)
                .open(dir.join(&name))
                .unwrap()
                .set_len(cut)
                .unwrap();
            let db = Db::open(dir).unwrap();
            let got = contents(&db);
            assert!(
                states.iter().any(|(_, m)| *m == got),
                "cut {cut}: not a prefix state"
            );
            assert!(db.verify().unwrap().is_ok());
        });
    }
}

#[test]
fn a_segment_whose_creation_was_torn_is_dropped_and_its_number_not_reused() {
    let (img, _, states) = build(1 << 20, 0);
    with_copy(img.path(), |dir| {
        let torn = plant_torn_segment_99(dir);
        let db = Db::open(dir).unwrap();
        assert_eq!(&contents(&db), &states.last().unwrap().1);
        assert!(!torn.exists());
        db.compact_with(s4db::CompactOptions::default().full(true))
            .unwrap();
        let numbers = segment_numbers(dir);
        assert!(numbers.iter().all(|&n| n > 99), "{numbers:?}");
    });
}

/// A segment file numbered 99 whose creation was torn (shorter than its
/// header).
fn plant_torn_segment_99(dir: &Path) -> std::path::PathBuf {
    let torn = dir.join(
        s4db::SegmentId {
            number: 99,
            writer: 1,
        }
        .file_name(),
    );
    fs::write(&torn, b"S4DB").unwrap();
    torn
}

/// The numbers of the segment files in `dir`.
fn segment_numbers(dir: &Path) -> Vec<u64> {
    segment_files(dir)
        .iter()
        .map(|p| {
            s4db::SegmentId::parse_file_name(&p.file_name().unwrap().to_string_lossy())
                .unwrap()
                .number
        })
        .collect()
}

#[test]
fn a_torn_segment_creations_number_stays_used_across_a_reopen_before_compaction() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let db = Db::open(dir).unwrap();
    db.put("k", "v").unwrap();
    db.close().unwrap();
    drop(db);
    plant_torn_segment_99(dir);
    // Open and close without writing, then compact in a later session.
    Db::open(dir).unwrap().close().unwrap();
    let db = Db::open(dir).unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    db.compact_with(s4db::CompactOptions::default().full(true))
        .unwrap();
    let numbers = segment_numbers(dir);
    assert!(
        numbers.iter().all(|&n| n > 99),
        "number 99 reused: {numbers:?}"
    );
}

/// Readers beside a writer that restarts over a torn tail (FORMAT.md §6.2,
/// §6.4): reader processes loop `s4db get` while, round after round, an
/// unfinished ~8 MB batch is left at the end of the last segment (as a
/// writer killed mid-batch leaves it) and `s4db put` opens, cuts it and
/// writes. No reader may fail, and each sees only committed values.
/// Rounds: 10, or `S4DB_CRASH_ROUNDS / 10`.
#[test]
fn readers_beside_a_writer_that_cuts_a_torn_tail_see_only_committed_values() {
    use std::io::Write;
    use std::process::Command;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    let rounds: u64 = std::env::var("S4DB_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(10, |r| (r / 10).max(1));
    let d = tempfile::tempdir().unwrap();
    let db = Db::open(d.path()).unwrap();
    for i in 0..50u64 {
        db.put(format!("base{i}"), format!("base value {i}"))
            .unwrap();
    }
    db.checkpoint().unwrap();
    // The torn batch: a whole batch of ~8 MB of incompressible values, less
    // the end of its last record.
    let seg = segment_files(d.path()).last().unwrap().clone();
    let before = fs::metadata(&seg).unwrap().len();
    let mut b = WriteBatch::new();
    for i in 0..2_000u64 {
        b.put(format!("torn{i}"), value_for(2 * i + 1, 4_000))
            .unwrap();
    }
    db.write(b).unwrap();
    db.flush().unwrap();
    let after = fs::metadata(&seg).unwrap().len();
    let torn = fs::read(&seg).unwrap()[before as usize..after as usize - 100].to_vec();
    assert!(torn.len() > 7 << 20, "{}", torn.len());
    drop(db);
    // The database without the batch: rebuilt from the committed keys.
    let d = tempfile::tempdir().unwrap();
    let db = Db::open(d.path()).unwrap();
    for i in 0..50u64 {
        db.put(format!("base{i}"), format!("base value {i}"))
            .unwrap();
    }
    db.close().unwrap();
    drop(db);

    let bin = assert_cmd::cargo::cargo_bin("s4db");
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let reads = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..6u64)
        .map(|r| {
            let (stop, committed, errors, reads) = (
                stop.clone(),
                committed.clone(),
                errors.clone(),
                reads.clone(),
            );
            let (dir, bin) = (d.path().to_path_buf(), bin.clone());
            std::thread::spawn(move || {
                let mut n = r;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    // A base key, a round's key, or a key of the torn batch.
                    let done = committed.load(Ordering::Acquire);
                    let (key, want) = match n % 3 {
                        0 => (
                            format!("base{}", n % 50),
                            Some(format!("base value {}", n % 50)),
                        ),
                        1 => (
                            format!("round{done}"),
                            (done > 0).then(|| format!("v{done}")),
                        ),
                        _ => (format!("torn{}", n % 2_000), None),
                    };
                    let out = Command::new(&bin)
                        .arg("--dir")
                        .arg(&dir)
                        .args(["-q", "get", &key])
                        .output()
                        .unwrap();
                    reads.fetch_add(1, Ordering::Relaxed);
                    let got = String::from_utf8_lossy(&out.stdout).into_owned();
                    let ok = match (&want, out.status.code()) {
                        (Some(w), Some(0)) => got == *w,
                        (None, Some(1)) => true,
                        // A round's key put after this reader opened.
                        (Some(_), Some(1)) => key.starts_with("round"),
                        _ => false,
                    };
                    if !ok {
                        errors.lock().unwrap().push(format!(
                            "get {key}: {:?} {got:?} {}",
                            out.status,
                            String::from_utf8_lossy(&out.stderr)
                        ));
                    }
                }
            })
        })
        .collect();
    for round in 1..=rounds {
        // A writer killed mid-batch leaves this at the end of the last segment.
        let last = segment_files(d.path()).last().unwrap().clone();
        fs::OpenOptions::new()
            .append(true)
            .open(&last)
            .unwrap()
            .write_all(&torn)
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let out = Command::new(&bin)
            .arg("--dir")
            .arg(d.path())
            .args(["-q", "put", &format!("round{round}"), &format!("v{round}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        committed.store(round, Ordering::Release);
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    let errors = errors.lock().unwrap();
    assert!(
        errors.is_empty(),
        "{} of {} reads failed: {:#?}",
        errors.len(),
        reads.load(Ordering::Relaxed),
        &errors[..errors.len().min(5)]
    );
    let db = Db::open(d.path()).unwrap();
    assert_eq!(db.len(), 50 + rounds);
    assert!(!db.contains("torn0").unwrap());
    assert!(db.verify().unwrap().is_ok());
}
