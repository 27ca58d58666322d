//! Corrupt bytes give clear errors that say where, and the repair paths
//! recover what can be recovered.

mod common;

use std::fs;
use std::path::Path;

use common::{Xorshift, contents, crash_image, key_for, segment_files, value_for};
use s4db::blocking::Db;
use s4db::{Error, INDEX_FILE_NAME};

/// A closed database of 200 keys over several sealed segments.
fn sample(dir: &Path) {
    let db = Db::builder(dir)
        .max_segment_size(4096)
        .open_blocking()
        .unwrap();
    for i in 0..200 {
        db.put(key_for(i), value_for(i, 80)).unwrap();
    }
    db.close().unwrap();
}

fn flip(path: &Path, offset: usize) {
    let mut b = fs::read(path).unwrap();
    b[offset] ^= 0x10;
    fs::write(path, b).unwrap();
}

#[test]
fn a_flipped_bit_in_a_sealed_segment_is_a_corruption_error_naming_it() {
    let d = tempfile::tempdir().unwrap();
    sample(d.path());
    let seg = segment_files(d.path())[0].clone();
    flip(&seg, 48 + 20); // inside the first record
    let db = Db::open(d.path()).unwrap(); // open does not read sealed segments
    let err = db.get(key_for(0)).unwrap_err();
    match &err {
        Error::Corruption { location, .. } => {
            assert_eq!(location.file, seg.file_name().unwrap().to_string_lossy());
            assert_eq!(location.offset, 48);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert!(err.to_string().contains("data_"), "{err}");
    assert_eq!(db.get(key_for(199)).unwrap().unwrap(), value_for(199, 80));
    let report = db.verify().unwrap();
    assert!(!report.is_ok());
    assert!(
        report.problems.iter().any(|p| p.contains("damaged")),
        "{:?}",
        report.problems
    );
}

#[test]
fn rebuild_index_skips_the_damaged_record_and_keeps_the_rest() {
    let d = tempfile::tempdir().unwrap();
    sample(d.path());
    let seg = segment_files(d.path())[0].clone();
    flip(&seg, 48 + 20);
    let db = Db::open(d.path()).unwrap();
    let report = db.rebuild_index().unwrap();
    assert_eq!(report.skipped.len(), 1, "{report:?}");
    assert_eq!(report.skipped[0].start, 48);
    assert_eq!(report.keys, 199);
    assert_eq!(db.get(key_for(0)).unwrap(), None);
    for i in 1..200 {
        assert_eq!(db.get(key_for(i)).unwrap().unwrap(), value_for(i, 80));
    }
    // The index now agrees with what the segments hold; the damage is still reported.
    let v = db.verify().unwrap();
    assert!(
        v.problems.iter().all(|p| p.contains("damaged")),
        "{:?}",
        v.problems
    );
}

/// `err` is corruption in `index.idx` whose message says how to repair.
fn assert_index_damage(err: &Error, offset: usize) {
    match err {
        Error::Corruption { location, detail } => {
            assert!(
                location.file == INDEX_FILE_NAME
                    || (location.file.starts_with("index_") && location.file.ends_with(".run")),
                "{location:?}"
            );
            assert!(
                detail.contains("rebuild"),
                "the message says how to repair: {detail}"
            );
        }
        other => panic!("offset {offset}: expected corruption, got {other:?}"),
    }
}

#[test]
fn a_flipped_bit_in_index_idx_is_reported_at_open_or_first_use_and_rebuild_recovers_everything() {
    let d = tempfile::tempdir().unwrap();
    sample(d.path());
    let want = contents(&Db::open(d.path()).unwrap());
    // index.idx is the small root, checked whole at open; the run's header,
    // tables and directory are checked at open, its pages at first use.
    let root_len = fs::metadata(d.path().join(INDEX_FILE_NAME)).unwrap().len() as usize;
    let run = common::run_files(d.path()).pop().unwrap();
    let run_name = run.file_name().unwrap().to_owned();
    let len = fs::metadata(&run).unwrap().len() as usize;
    let root_flips = [0, root_len / 2, root_len - 1].map(|o| (INDEX_FILE_NAME.as_ref(), o, true));
    let run_flips = [0, 20, 100, len / 2, len - 1].map(|o| (run_name.as_os_str(), o, o <= 100));
    for (file, offset, at_open) in root_flips.into_iter().chain(run_flips) {
        let t = tempfile::tempdir().unwrap();
        crash_image(d.path(), t.path());
        flip(&t.path().join(file), offset);
        match Db::open(t.path()) {
            // The header, the tables and the directory are checked at open.
            Err(err) => {
                assert!(at_open, "{file:?} offset {offset} failed open: {err}");
                assert_index_damage(&err, offset);
            }
            // A page is checked when first used: every read of it, the
            // iteration and verify report it; nothing reads it wrongly.
            Ok(db) => {
                assert!(!at_open, "{file:?} offset {offset} opened");
                assert_index_damage(&db.iter().unwrap_err(), offset);
                assert_index_damage(&db.verify().unwrap_err(), offset);
                let mut failed = 0;
                for (k, v) in &want {
                    match db.get(k) {
                        Ok(got) => assert_eq!(got.as_deref(), Some(v.as_slice())),
                        Err(e) => {
                            assert_index_damage(&e, offset);
                            // A write to such a key is refused before it is
                            // written: the rebuild below finds the old value.
                            assert_index_damage(&db.put(k, b"new").unwrap_err(), offset);
                            failed += 1;
                        }
                    }
                }
                assert!(failed > 0, "offset {offset}: the damaged page was read");
                db.close().unwrap();
            }
        }
        let db = Db::builder(t.path())
            .rebuild_index(true)
            .open_blocking()
            .unwrap();
        assert_eq!(db.rebuild_report().unwrap().keys, 200);
        assert_eq!(contents(&db), want);
        db.close().unwrap();
        assert_eq!(contents(&Db::open(t.path()).unwrap()), want);
    }
}

#[test]
fn a_missing_index_fails_open_naming_the_repair_which_recovers_everything() {
    let d = tempfile::tempdir().unwrap();
    sample(d.path());
    fs::remove_file(d.path().join(INDEX_FILE_NAME)).unwrap();
    for read_only in [false, true] {
        let err = Db::builder(d.path())
            .read_only(read_only)
            .open_blocking()
            .unwrap_err();
        assert!(
            err.is_corruption() && err.to_string().contains("rebuild-index"),
            "{err}"
        );
    }
    assert!(!d.path().join(INDEX_FILE_NAME).exists(), "nothing written");
    let db = Db::builder(d.path())
        .rebuild_index(true)
        .open_blocking()
        .unwrap();
    assert_eq!(db.rebuild_report().unwrap().keys, 200);
    assert_eq!(db.len(), 200);
    assert!(d.path().join(INDEX_FILE_NAME).exists());
}

#[test]
fn a_segment_missing_from_disk_is_corruption() {
    let d = tempfile::tempdir().unwrap();
    sample(d.path());
    fs::remove_file(&segment_files(d.path())[1]).unwrap();
    let err = Db::open(d.path()).unwrap_err();
    assert!(
        err.is_corruption() && err.to_string().contains("missing"),
        "{err}"
    );
}

#[test]
fn a_bad_record_in_a_sealed_unindexed_segment_is_an_error_not_a_silent_cut() {
    let d = tempfile::tempdir().unwrap();
    let img = tempfile::tempdir().unwrap();
    let db = Db::builder(d.path())
        .max_segment_size(4096)
        .open_blocking()
        .unwrap();
    db.checkpoint().unwrap();
    for i in 0..200 {
        db.put(key_for(i), value_for(i, 80)).unwrap();
    }
    crash_image(d.path(), img.path()); // none of these segments is in index.idx
    let first = segment_files(img.path())[0].clone();
    flip(&first, 48 + 20);
    let err = Db::open(img.path()).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(
        err.to_string()
            .contains(&*first.file_name().unwrap().to_string_lossy()),
        "{err}"
    );
    // The explicit repair path recovers all but the damaged batch.
    let db = Db::builder(img.path())
        .rebuild_index(true)
        .open_blocking()
        .unwrap();
    assert_eq!(db.len(), 199);
}

/// Interrupted compaction, at both sides of its index commit.
#[test]
fn a_crash_on_either_side_of_the_compaction_commit_loses_and_resurrects_nothing() {
    let live = tempfile::tempdir().unwrap();
    let before = tempfile::tempdir().unwrap();
    let after = tempfile::tempdir().unwrap();
    let db = Db::builder(live.path())
        .max_segment_size(4096)
        .open_blocking()
        .unwrap();
    for i in 0..300 {
        db.put(key_for(i % 100), value_for(i, 60)).unwrap();
    }
    for i in 0..30 {
        db.delete(key_for(i)).unwrap();
    }
    db.checkpoint().unwrap();
    let want = contents(&db);
    crash_image(live.path(), before.path());
    db.compact_with(s4db::CompactOptions::default().full(true))
        .unwrap();
    crash_image(live.path(), after.path());
    let old_segs = segment_files(before.path());
    let new_segs = segment_files(after.path());

    // Crash after writing the run, before committing its index: the run is an orphan.
    let t = tempfile::tempdir().unwrap();
    crash_image(before.path(), t.path());
    for s in &new_segs {
        fs::copy(s, t.path().join(s.file_name().unwrap())).unwrap();
    }
    let repaired = Db::builder(t.path())
        .rebuild_index(true)
        .open_blocking()
        .unwrap();
    assert_eq!(contents(&repaired), want, "repair with an orphan run");
    drop(repaired);
    let t = tempfile::tempdir().unwrap();
    crash_image(before.path(), t.path());
    for s in &new_segs {
        fs::copy(s, t.path().join(s.file_name().unwrap())).unwrap();
    }
    let db2 = Db::open(t.path()).unwrap();
    assert_eq!(contents(&db2), want, "open with an orphan run");
    db2.put("x", "y").unwrap();
    db2.close().unwrap();
    for s in &new_segs {
        assert!(
            !t.path().join(s.file_name().unwrap()).exists(),
            "orphan removed after the next index write"
        );
    }

    // Crash after the commit, before deleting the old segments.
    for repair in [false, true] {
        let t = tempfile::tempdir().unwrap();
        crash_image(after.path(), t.path());
        for s in &old_segs {
            fs::copy(s, t.path().join(s.file_name().unwrap())).unwrap();
        }
        if repair {
            // With the index lost, the complete run still supersedes the old
            // segments, so deleted keys stay deleted.
            fs::remove_file(t.path().join(INDEX_FILE_NAME)).unwrap();
        }
        let db3 = Db::builder(t.path())
            .rebuild_index(repair)
            .open_blocking()
            .unwrap();
        assert_eq!(
            contents(&db3),
            want,
            "old segments left behind (repair: {repair})"
        );
        if !repair {
            for s in &old_segs {
                assert!(
                    !t.path().join(s.file_name().unwrap()).exists(),
                    "obsolete segment removed"
                );
            }
        }
    }
}

#[test]
fn random_bytes_in_place_of_any_file_never_panic() {
    let d = tempfile::tempdir().unwrap();
    sample(d.path());
    let mut files = segment_files(d.path());
    files.push(d.path().join(INDEX_FILE_NAME));
    let mut rng = Xorshift::new(0x9E37_79B9);
    for f in files {
        for len in [0usize, 3, 47, 48, 100, 5000] {
            let t = tempfile::tempdir().unwrap();
            crash_image(d.path(), t.path());
            let target = t.path().join(f.file_name().unwrap());
            let junk: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            fs::write(&target, junk).unwrap();
            match Db::open(t.path()) {
                Ok(db) => {
                    let _ = db.verify();
                    let _ = contents_lossy(&db);
                }
                Err(e) => assert!(e.is_corruption(), "{}: {e}", target.display()),
            }
        }
    }
}

fn contents_lossy(db: &Db) -> usize {
    db.iter()
        .map(|it| it.filter(Result::is_ok).count())
        .unwrap_or(0)
}

#[test]
fn a_segment_named_with_the_largest_number_is_refused_without_panicking() {
    let d = tempfile::tempdir().unwrap();
    sample(d.path());
    let huge = s4db::SegmentId {
        number: u64::MAX,
        writer: 1,
    }
    .file_name();
    fs::copy(&segment_files(d.path())[0], d.path().join(huge)).unwrap();
    // The copy's header names another segment: a clear error, no overflow.
    let err = Db::open(d.path()).unwrap_err();
    assert!(err.is_corruption(), "{err}");
}

#[test]
fn an_index_entry_pointing_past_the_segment_is_corruption_not_a_huge_allocation() {
    let d = tempfile::tempdir().unwrap();
    let db = Db::open(d.path()).unwrap();
    db.put("k", "v").unwrap();
    db.close().unwrap();
    drop(db);
    // Shrink the segment below what index.idx covers: open refuses.
    let seg = segment_files(d.path())[0].clone();
    let len = fs::metadata(&seg).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    let err = Db::open(d.path()).unwrap_err();
    assert!(
        err.is_corruption() && err.to_string().contains("covers"),
        "{err}"
    );
}

/// Writer id and generation of the `index.idx` in `dir` (FORMAT.md §4.2).
fn lineage(dir: &std::path::Path) -> (u64, u64) {
    let b = fs::read(dir.join(INDEX_FILE_NAME)).unwrap();
    (
        u64::from_le_bytes(b[16..24].try_into().unwrap()),
        u64::from_le_bytes(b[24..32].try_into().unwrap()),
    )
}

#[test]
fn a_rebuild_keeps_the_writer_id_and_continues_the_generation() {
    let d = tempfile::tempdir().unwrap();
    sample(d.path());
    let (writer, generation) = lineage(d.path());
    // A rebuild of an open database.
    let db = Db::open(d.path()).unwrap();
    db.rebuild_index().unwrap();
    db.close().unwrap();
    drop(db);
    assert_eq!(lineage(d.path()), (writer, generation + 1));
    let rebuild_while_opening = |dir: &std::path::Path| {
        let db = Db::builder(dir)
            .rebuild_index(true)
            .open_blocking()
            .unwrap();
        db.close().unwrap();
    };
    // A rebuild while opening, with an intact index header.
    rebuild_while_opening(d.path());
    assert_eq!(lineage(d.path()), (writer, generation + 2));
    // Without an index, a new writer id and generation 1.
    fs::remove_file(d.path().join(INDEX_FILE_NAME)).unwrap();
    rebuild_while_opening(d.path());
    let (w2, g2) = lineage(d.path());
    assert_ne!(w2, writer);
    assert_eq!(g2, 1);
}

#[test]
fn a_writer_removes_temporary_files_a_crash_left_and_keeps_everything_else() {
    let d = tempfile::tempdir().unwrap();
    sample(d.path());
    let leftovers = [".index.idx.a1b2c3.tmp", ".s4db-probe.d4e5f6.tmp"];
    for name in leftovers {
        fs::write(d.path().join(name), b"half written").unwrap();
    }
    fs::write(d.path().join("notes.tmp"), b"mine").unwrap();
    let db = Db::open(d.path()).unwrap();
    assert_eq!(db.len(), 200);
    for name in leftovers {
        assert!(!d.path().join(name).exists(), "{name} left behind");
    }
    assert_eq!(fs::read(d.path().join("notes.tmp")).unwrap(), b"mine");
}

/// A closed database of 2,000 keys in one segment (imported as one batch).
fn one_segment_of(dir: &Path, n: u64) -> std::path::PathBuf {
    let db = Db::open(dir).unwrap();
    db.put_many((0..n).map(|i| (key_for(i), value_for(i, 40))))
        .unwrap();
    db.close().unwrap();
    let segs = segment_files(dir);
    assert_eq!(segs.len(), 1);
    segs[0].clone()
}

fn damaged_name(seg: &Path) -> String {
    format!("{}.damaged", seg.file_name().unwrap().to_string_lossy())
}

#[test]
fn a_flipped_byte_in_any_field_of_a_segment_header_loses_no_record_and_the_original_is_kept() {
    // One byte in each field of the header (FORMAT.md §2.1): magic,
    // version, flags, reserved, writer, number, run_first, reserved, crc32c.
    for offset in [0, 8, 10, 12, 16, 20, 24, 32, 40, 44] {
        for without_index in [false, true] {
            let d = tempfile::tempdir().unwrap();
            let seg = one_segment_of(d.path(), 2_000);
            let good = fs::read(&seg).unwrap();
            flip(&seg, offset);
            let damaged = fs::read(&seg).unwrap();
            if without_index {
                fs::remove_file(d.path().join(INDEX_FILE_NAME)).unwrap();
            } else {
                let err = Db::open(d.path()).unwrap_err();
                assert!(err.is_corruption(), "offset {offset}: {err}");
            }
            let at = format!("offset {offset}, without index {without_index}");
            // A read-only rebuild reads the records in place, writing nothing.
            let ro = Db::builder(d.path())
                .read_only(true)
                .rebuild_index(true)
                .open_blocking()
                .unwrap();
            assert_eq!(ro.rebuild_report().unwrap().repaired.len(), 1, "{at}");
            assert_eq!(
                ro.get(key_for(1_999)).unwrap().unwrap(),
                value_for(1_999, 40)
            );
            drop(ro);
            assert_eq!(fs::read(&seg).unwrap(), damaged, "{at}: read-only wrote");
            let db = Db::builder(d.path())
                .rebuild_index(true)
                .open_blocking()
                .unwrap();
            let r = db.rebuild_report().unwrap().clone();
            assert_eq!(r.keys, 2_000, "{at}: {r:?}");
            assert_eq!(r.records, 2_000, "{at}");
            assert!(r.skipped.is_empty(), "{at}: {:?}", r.skipped);
            assert_eq!(r.repaired.len(), 1, "{at}");
            assert_eq!((r.repaired[0].start, r.repaired[0].end), (0, 48));
            assert!(
                r.repaired[0].reason.contains(&damaged_name(&seg)),
                "{at}: {}",
                r.repaired[0].reason
            );
            assert_eq!(r.damaged_files, vec![damaged_name(&seg)], "{at}");
            for i in (0..2_000).step_by(7) {
                assert_eq!(db.get(key_for(i)).unwrap().unwrap(), value_for(i, 40));
            }
            // The rewritten file is the one before the damage, byte for byte;
            // the damaged original is kept beside it.
            assert_eq!(fs::read(&seg).unwrap(), good, "{at}");
            let aside = d.path().join(damaged_name(&seg));
            assert_eq!(fs::read(&aside).unwrap(), damaged, "{at}");
            // While it is there, verify fails naming it and stats show it.
            let v = db.verify().unwrap();
            assert_eq!(v.records, 2_000);
            assert_eq!(v.problems.len(), 1, "{at}: {:?}", v.problems);
            assert!(v.problems[0].contains(&damaged_name(&seg)), "{at}");
            assert_eq!(db.stats().unwrap().damaged_files, vec![damaged_name(&seg)]);
            // A second rebuild repairs nothing more but still names it.
            let again = db.rebuild_index().unwrap();
            assert!(again.repaired.is_empty() && again.skipped.is_empty());
            assert_eq!(again.damaged_files, vec![damaged_name(&seg)]);
            db.close().unwrap();
            drop(db);
            // Deleting it (the user's step once satisfied) makes the directory whole.
            fs::remove_file(&aside).unwrap();
            let db = Db::open(d.path()).unwrap();
            assert!(db.verify().unwrap().is_ok());
            assert!(db.stats().unwrap().damaged_files.is_empty());
            assert_eq!(db.len(), 2_000);
        }
    }
}

#[test]
fn a_damaged_header_in_a_compaction_run_is_rebuilt_with_its_run_flags() {
    let d = tempfile::tempdir().unwrap();
    sample(d.path());
    let db = Db::builder(d.path())
        .max_segment_size(4096)
        .open_blocking()
        .unwrap();
    db.delete(key_for(3)).unwrap();
    db.compact_with(s4db::CompactOptions::default().full(true))
        .unwrap();
    db.close().unwrap();
    drop(db);
    let segs = segment_files(d.path());
    assert!(segs.len() >= 3, "{segs:?}");
    // The first, a middle and the last output of the run: each header is
    // rebuilt as it was (flags and run_first from its neighbours).
    for pick in [0, segs.len() / 2, segs.len() - 1] {
        let t = tempfile::tempdir().unwrap();
        for e in fs::read_dir(d.path()).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                fs::copy(&p, t.path().join(p.file_name().unwrap())).unwrap();
            }
        }
        let seg = t.path().join(segs[pick].file_name().unwrap());
        let good = fs::read(&seg).unwrap();
        flip(&seg, 44);
        fs::remove_file(t.path().join(INDEX_FILE_NAME)).unwrap();
        let db = Db::builder(t.path())
            .rebuild_index(true)
            .open_blocking()
            .unwrap();
        let r = db.rebuild_report().unwrap();
        assert_eq!(r.repaired.len(), 1, "segment {pick}: {r:?}");
        assert_eq!(r.keys, 199, "segment {pick}: {r:?}");
        assert_eq!(db.get(key_for(3)).unwrap(), None);
        assert_eq!(fs::read(&seg).unwrap()[..48], good[..48], "segment {pick}");
    }
}

#[test]
fn a_damaged_header_of_a_segment_index_idx_shows_obsolete_is_set_aside_not_replayed() {
    let d = tempfile::tempdir().unwrap();
    sample(d.path());
    let first = segment_files(d.path())[0].clone();
    let old = fs::read(&first).unwrap(); // holds key 0's put
    let db = Db::builder(d.path())
        .max_segment_size(4096)
        .open_blocking()
        .unwrap();
    db.delete(key_for(0)).unwrap();
    db.compact_with(s4db::CompactOptions::default().full(true))
        .unwrap();
    db.close().unwrap();
    drop(db);
    assert!(!first.exists(), "compaction removed it");
    fs::write(&first, &old).unwrap();
    flip(&first, 20);
    let db = Db::builder(d.path())
        .rebuild_index(true)
        .open_blocking()
        .unwrap();
    let r = db.rebuild_report().unwrap();
    assert!(r.repaired.is_empty(), "{r:?}");
    assert_eq!(r.skipped.len(), 1, "{r:?}");
    assert!(r.skipped[0].reason.contains("obsolete"), "{r:?}");
    assert_eq!(r.damaged_files, vec![damaged_name(&first)]);
    assert_eq!(db.get(key_for(0)).unwrap(), None, "not brought back");
    assert_eq!(db.len(), 199);
}

#[test]
fn a_flipped_byte_in_the_middle_of_a_segment_loses_only_that_record() {
    let d = tempfile::tempdir().unwrap();
    let seg = one_segment_of(d.path(), 2_000);
    let size = fs::metadata(&seg).unwrap().len();
    flip(&seg, (size / 2) as usize);
    let db = Db::open(d.path()).unwrap();
    let r = db.rebuild_index().unwrap();
    assert_eq!(r.skipped.len(), 1, "{r:?}");
    assert!(r.skipped[0].end - r.skipped[0].start < 100, "{r:?}");
    assert_eq!(r.keys, 1_999, "{r:?}");
    let lost: Vec<u64> = (0..2_000)
        .filter(|&i| match db.get(key_for(i)).unwrap() {
            Some(v) => {
                assert_eq!(v, value_for(i, 40));
                false
            }
            None => true,
        })
        .collect();
    assert_eq!(lost.len(), 1, "{lost:?}");
}
