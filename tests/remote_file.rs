//! Remote sync against a `file://` remote: the embedded default, no server.

mod common;

use common::{contents, key_for, two_dirs_and_a_remote, value_for};
use s4db::blocking::Db;
use s4db::{ChangeKind, Error, UploadOptions};

fn remote_url(dir: &std::path::Path) -> String {
    format!("file://{}", dir.display())
}

/// The database in `dir`, attached to `url`, in 4 KiB segments.
fn in_4_kib_segments(dir: &std::path::Path, url: &str) -> Db {
    Db::builder(dir)
        .remote(url)
        .max_segment_size(4096)
        .open_blocking()
        .unwrap()
}

/// A directory attached to `url` holding 300 records over several segments.
fn three_hundred_records_in_8_kib_segments(dir: &std::path::Path, url: &str) -> Db {
    let db = Db::builder(dir)
        .remote(url)
        .max_segment_size(8192)
        .open_blocking()
        .unwrap();
    for i in 0..300 {
        db.put(key_for(i), value_for(i, 60)).unwrap();
    }
    db
}

#[test]
fn upload_then_download_round_trips_and_second_upload_sends_only_new_segments() {
    let (a, b, _remote_dir, url) = two_dirs_and_a_remote();
    let db = three_hundred_records_in_8_kib_segments(a.path(), &url);
    let first = db.upload().unwrap();
    assert!(first.segments_uploaded >= 2, "{first:?}");
    db.put("one-more", "value").unwrap();
    let second = db.upload().unwrap();
    assert_eq!(
        second.segments_uploaded, 1,
        "only the new segment travels: {second:?}"
    );
    assert!(second.segment_bytes < 200, "{second:?}");
    let nothing = db.upload().unwrap();
    assert_eq!(nothing.segments_uploaded, 0);

    let copy = Db::builder(b.path()).remote(&url).open_blocking().unwrap();
    let report = copy.download().unwrap();
    assert_eq!(report.keys, 301);
    assert_eq!(contents(&copy), contents(&db));
    assert!(copy.verify().unwrap().is_ok());
}

#[test]
fn an_empty_directory_opened_with_a_remote_reads_through_it() {
    let (a, b, _remote_dir, url) = two_dirs_and_a_remote();
    let db = Db::builder(a.path()).remote(&url).open_blocking().unwrap();
    db.put_many((0..50).map(|i| (key_for(i), value_for(i, 40))))
        .unwrap();
    db.upload().unwrap();

    let reader = Db::builder(b.path()).remote(&url).open_blocking().unwrap();
    assert_eq!(reader.len(), 50);
    assert!(
        common::segment_files(b.path()).is_empty(),
        "no segment was downloaded"
    );
    let before = reader.remote_stats().unwrap().requests;
    assert_eq!(reader.get(key_for(7)).unwrap().unwrap(), value_for(7, 40));
    assert_eq!(
        reader.remote_stats().unwrap().requests - before,
        1,
        "one range request per get"
    );
    assert_eq!(reader.get("missing").unwrap(), None);
    assert_eq!(
        reader.remote_stats().unwrap().requests - before,
        1,
        "a missing key costs nothing"
    );
    // Writes on top of a remote-backed directory work, and travel on upload.
    reader.put("local", "write").unwrap();
    assert_eq!(reader.upload().unwrap().segments_uploaded, 1);
}

#[test]
fn two_writers_conflict_and_rebase_loses_nothing() {
    let (a, b, _remote_dir, url) = two_dirs_and_a_remote();
    let w1 = Db::builder(a.path()).remote(&url).open_blocking().unwrap();
    w1.put("base", "0").unwrap();
    w1.upload().unwrap();
    let w2 = Db::builder(b.path()).remote(&url).open_blocking().unwrap();
    w2.download().unwrap();

    w1.put("from-1", "one").unwrap();
    w2.put("from-2", "two").unwrap();
    w2.put("base", "changed by 2").unwrap();
    w1.upload().unwrap();
    let err = w2.upload().unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert_eq!(
        w2.get("from-2").unwrap().unwrap(),
        "two",
        "nothing lost locally"
    );

    let report = w2
        .upload_with(UploadOptions::default().rebase(true))
        .unwrap();
    assert_eq!(report.rebased, 1);
    assert_eq!(w2.get("from-1").unwrap().unwrap(), "one");
    assert_eq!(w2.get("from-2").unwrap().unwrap(), "two");
    assert_eq!(w2.get("base").unwrap().unwrap(), "changed by 2");

    // w1 must now download to see both; its own writes are all uploaded.
    w1.download().unwrap();
    assert_eq!(contents(&w1), contents(&w2));
    assert!(w1.verify().unwrap().is_ok());
}

#[test]
fn download_refuses_to_discard_unuploaded_writes_unless_forced() {
    let (a, b, _remote_dir, url) = two_dirs_and_a_remote();
    let w1 = Db::builder(a.path()).remote(&url).open_blocking().unwrap();
    w1.put("k", "remote").unwrap();
    w1.upload().unwrap();
    let w2 = Db::builder(b.path()).remote(&url).open_blocking().unwrap();
    w2.put("local-only", "x").unwrap();
    assert!(matches!(w2.download(), Err(Error::Conflict(_))));
    assert_eq!(w2.get("local-only").unwrap().unwrap(), "x");
    w2.download_with(s4db::DownloadOptions::default().force(true))
        .unwrap();
    assert_eq!(w2.get("local-only").unwrap(), None);
    assert_eq!(w2.get("k").unwrap().unwrap(), "remote");
}

#[test]
fn compaction_then_upload_marks_old_segments_obsolete_and_gc_waits_for_the_grace_period() {
    let (a, r) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = remote_url(r.path());
    let db = in_4_kib_segments(a.path(), &url);
    for i in 0..200 {
        db.put(key_for(i % 50), value_for(i, 80)).unwrap();
    }
    db.upload().unwrap();
    let reader = Db::open_remote(&url).unwrap();
    let want = contents(&db);
    let on_remote_before = common::segment_files(r.path());
    let runs_before = common::run_files(r.path());
    assert!(!runs_before.is_empty());

    db.compact_with(s4db::CompactOptions::default().full(true))
        .unwrap();
    let up = db.upload().unwrap();
    assert_eq!(up.segments_obsoleted, on_remote_before.len() as u64);
    // Within the grace period nothing is deleted: the old reader still works.
    let gc = db.gc(std::time::Duration::from_secs(3600)).unwrap();
    assert_eq!(gc.obsolete_deleted, 0);
    assert_eq!(contents(&reader), want);
    // After it (grace 0), the old segments go, and the old reader recovers
    // through its reload on 404.
    let gc = db.gc(std::time::Duration::ZERO).unwrap();
    assert_eq!(
        gc.obsolete_deleted,
        (on_remote_before.len() + runs_before.len()) as u64,
        "the old segments and the index runs the full compaction replaced"
    );
    for f in on_remote_before.iter().chain(&runs_before) {
        assert!(!f.exists(), "{} still on the remote", f.display());
    }
    for i in 0..50 {
        assert_eq!(
            reader.get(key_for(i)).unwrap(),
            want.get(key_for(i).as_bytes()).cloned().map(Into::into)
        );
    }
    // A later upload still works (gc moved this directory to the new tag).
    db.put("after-gc", "x").unwrap();
    db.upload().unwrap();
}

#[test]
fn an_upload_after_a_selective_compaction_sends_only_the_rewritten_segments() {
    let (a, r) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = remote_url(r.path());
    let db = in_4_kib_segments(a.path(), &url);
    for i in 0..400 {
        db.put(key_for(i), value_for(i, 60)).unwrap();
    }
    for i in 0..100 {
        db.put(key_for(i), value_for(i + 1000, 60)).unwrap();
    }
    let first = db.upload().unwrap();
    let remote_before = common::segment_files(r.path()).len() as u64;
    let c = db.compact().unwrap();
    assert!(
        c.segments_rewritten > 0 && c.segments_rewritten < c.segments_before,
        "{c:?}"
    );
    let up = db.upload().unwrap();
    let outputs = c.segments_after - (c.segments_before - c.segments_rewritten);
    assert_eq!(up.segments_uploaded, outputs, "{up:?}");
    assert_eq!(up.segments_obsoleted, c.segments_rewritten);
    assert!(up.segment_bytes < c.bytes_after / 2, "{up:?} {c:?}");
    // The index sent is a run of the moved keys, not the whole index again.
    assert!(up.runs_uploaded <= 1, "{up:?}");
    assert!(up.run_bytes < first.run_bytes / 2, "{up:?} {first:?}");
    assert_eq!(
        common::segment_files(r.path()).len() as u64,
        remote_before + outputs,
        "the replaced segments wait for gc"
    );
    let reader = Db::open_remote(&url).unwrap();
    assert_eq!(contents(&reader), contents(&db));
    assert!(reader.verify().unwrap().is_ok());
}

/// The objects of a `file://` remote (its lock file and temporaries aside).
fn remote_objects(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

#[test]
fn delete_remote_run_again_after_a_crash_that_left_only_the_root_gone_deletes_the_rest() {
    let (a, _b, remote_dir, url) = two_dirs_and_a_remote();
    let db = three_hundred_records_in_8_kib_segments(a.path(), &url);
    let up = db.upload().unwrap();
    db.close().unwrap();
    // A first run that died right after deleting the root.
    std::fs::remove_file(remote_dir.path().join("index.idx")).unwrap();
    let left = remote_objects(remote_dir.path());
    assert_eq!(left.len() as u64, up.segments_uploaded + up.runs_uploaded);
    let r = s4db::DbBuilder::for_remote(&url)
        .delete_remote_blocking()
        .unwrap();
    assert!(!r.had_root);
    assert_eq!(r.objects_deleted, up.segments_uploaded + up.runs_uploaded);
    assert_eq!(remote_objects(remote_dir.path()), Vec::<String>::new());
    // And once more: nothing to do is not an error.
    let r = s4db::DbBuilder::for_remote(&url)
        .delete_remote_blocking()
        .unwrap();
    assert_eq!(r.objects_deleted, 0);
    // The directory was not told; its next upload finds no root and sends
    // every segment again rather than only what changed.
    let db = Db::builder(a.path()).remote(&url).open_blocking().unwrap();
    let again = db.upload().unwrap();
    assert_eq!(again.segments_uploaded, up.segments_uploaded, "{again:?}");
    assert_eq!(
        remote_objects(remote_dir.path()).len() as u64,
        up.segments_uploaded + up.runs_uploaded + 1
    );
}

#[test]
fn delete_remote_is_refused_where_it_cannot_or_must_not_run() {
    let (a, b, _remote_dir, url) = two_dirs_and_a_remote();
    let db = Db::builder(a.path()).remote(&url).open_blocking().unwrap();
    db.put("k", "v").unwrap();
    db.upload().unwrap();
    let reader = s4db::DbBuilder::for_remote(&url).open_blocking().unwrap();
    assert!(matches!(reader.delete_remote(), Err(Error::ReadOnly)));
    let no_remote = Db::open(b.path()).unwrap();
    assert!(matches!(
        no_remote.delete_remote(),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        Db::builder(b.path()).remote(&url).delete_remote_blocking(),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        s4db::DbBuilder::for_remote("https://example.invalid/db").delete_remote_blocking(),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(
        reader.get("k").unwrap().unwrap(),
        "v",
        "nothing was deleted"
    );
}

#[test]
fn copy_remote_run_again_after_a_crash_copies_only_what_is_missing() {
    let (a, b, src_dir, url) = two_dirs_and_a_remote();
    let db = three_hundred_records_in_8_kib_segments(a.path(), &url);
    let up = db.upload().unwrap();
    let dest = b.path().join("backup");
    let to = || s4db::DbBuilder::for_remote(dest.to_str().unwrap());
    let first = db.copy_remote(to()).unwrap();
    assert_eq!(first.segments_copied, up.segments_uploaded);
    assert_eq!(first.segments_present, 0);
    // A first run that died before its root and after half of the segments.
    std::fs::remove_file(dest.join("index.idx")).unwrap();
    let segments: Vec<String> = remote_objects(&dest)
        .into_iter()
        .filter(|n| n.ends_with(".s4db"))
        .collect();
    let lost = segments.len() / 2;
    for name in &segments[..lost] {
        std::fs::remove_file(dest.join(name)).unwrap();
    }
    let second = s4db::DbBuilder::for_remote(&url)
        .copy_remote_blocking(to())
        .unwrap();
    assert_eq!(second.segments_copied, lost as u64, "{second:?}");
    assert_eq!(second.segments_present, (segments.len() - lost) as u64);
    assert_eq!(remote_objects(&dest), remote_objects(src_dir.path()));
    let copy = to().open_blocking().unwrap();
    assert!(copy.verify().unwrap().is_ok());
    assert_eq!(contents(&copy), contents(&db));
}

#[test]
fn copy_remote_refuses_a_destination_holding_another_database_or_inside_its_source() {
    let (a, b, src_dir, url) = two_dirs_and_a_remote();
    let db = Db::builder(a.path()).remote(&url).open_blocking().unwrap();
    db.put("k", "v").unwrap();
    db.upload().unwrap();
    let other_remote = b.path().join("other");
    let other = Db::builder(b.path().join("dir"))
        .remote(other_remote.to_str().unwrap())
        .open_blocking()
        .unwrap();
    other.put("mine", "1").unwrap();
    other.upload().unwrap();
    let before = remote_objects(&other_remote);
    let to = s4db::DbBuilder::for_remote(other_remote.to_str().unwrap());
    assert!(matches!(db.copy_remote(to), Err(Error::Conflict(_))));
    assert_eq!(remote_objects(&other_remote), before, "nothing written");

    for inside in [src_dir.path().to_path_buf(), src_dir.path().join("nested")] {
        let to = s4db::DbBuilder::for_remote(inside.to_str().unwrap());
        assert!(
            matches!(db.copy_remote(to), Err(Error::InvalidArgument(_))),
            "{inside:?}"
        );
    }
    let local_only = Db::open(b.path().join("plain")).unwrap();
    let to = s4db::DbBuilder::for_remote(other_remote.to_str().unwrap());
    assert!(matches!(
        local_only.copy_remote(to),
        Err(Error::InvalidArgument(_))
    ));
    let with_dir = Db::builder(b.path().join("x")).remote(other_remote.to_str().unwrap());
    assert!(matches!(
        db.copy_remote(with_dir),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn copy_remote_stops_at_a_damaged_source_segment_and_writes_no_root() {
    let (a, b, src_dir, url) = two_dirs_and_a_remote();
    let db = three_hundred_records_in_8_kib_segments(a.path(), &url);
    db.upload().unwrap();
    let victim = remote_objects(src_dir.path())
        .into_iter()
        .find(|n| n.ends_with(".s4db"))
        .unwrap();
    let path = src_dir.path().join(&victim);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let dest = b.path().join("backup");
    let r = db.copy_remote(s4db::DbBuilder::for_remote(dest.to_str().unwrap()));
    assert!(
        matches!(&r, Err(Error::Corruption { location, .. }) if location.file.contains(&victim)),
        "{r:?}"
    );
    assert!(
        !dest.join("index.idx").exists(),
        "no root for a copy that failed"
    );
    assert!(!remote_objects(&dest).contains(&victim));
}

/// A directory synced with `url` holding `a`=1, `b`=2, `c`=3.
fn synced_abc(dir: &std::path::Path, url: &str) -> Db {
    let db = Db::builder(dir).remote(url).open_blocking().unwrap();
    db.put_many([("a", "1"), ("b", "2"), ("c", "3")]).unwrap();
    db.upload().unwrap();
    db
}

#[test]
fn changes_lists_the_latest_unsynced_write_of_each_key_and_is_empty_after_upload() {
    let (a, _b, _r, url) = two_dirs_and_a_remote();
    let db = synced_abc(a.path(), &url);
    assert!(db.changes().unwrap().is_empty());
    db.put("a", "longer value").unwrap();
    db.delete("b").unwrap();
    db.put("new", "x").unwrap();
    db.put("gone", "y").unwrap();
    db.delete("gone").unwrap();
    db.put("a", "ten bytes!").unwrap();
    let ch = db.changes().unwrap();
    let got: Vec<(Vec<u8>, ChangeKind, Option<u64>)> = ch
        .iter()
        .map(|c| (c.key.to_vec(), c.kind, c.value_len))
        .collect();
    assert_eq!(
        got,
        vec![
            (b"a".to_vec(), ChangeKind::Put, Some(10)),
            (b"b".to_vec(), ChangeKind::Delete, None),
            (b"gone".to_vec(), ChangeKind::Delete, None),
            (b"new".to_vec(), ChangeKind::Put, Some(1)),
        ]
    );
    assert_eq!((ch.puts, ch.deletes, ch.compacted), (2, 2, false));
    db.upload().unwrap();
    assert!(db.changes().unwrap().is_empty());
}

#[test]
fn discard_of_some_keys_returns_them_to_the_synced_state_and_keeps_the_rest() {
    let (a, _b, _r, url) = two_dirs_and_a_remote();
    let db = synced_abc(a.path(), &url);
    db.put("a", "10").unwrap();
    db.delete("b").unwrap();
    db.put("new", "x").unwrap();
    db.put("c", "30").unwrap();
    let r = db.discard(["a", "b", "new", "never-written"]).unwrap();
    assert_eq!(r.keys_discarded, 3);
    assert_eq!(r.records_kept, 1);
    let expect = |db: &Db| {
        assert_eq!(db.get("a").unwrap().unwrap(), "1");
        assert_eq!(db.get("b").unwrap().unwrap(), "2");
        assert_eq!(db.get("c").unwrap().unwrap(), "30");
        assert_eq!(db.get("new").unwrap(), None);
        assert_eq!(db.len(), 3);
    };
    expect(&db);
    let keys: Vec<Vec<u8>> = db
        .changes()
        .unwrap()
        .iter()
        .map(|c| c.key.to_vec())
        .collect();
    assert_eq!(keys, vec![b"c".to_vec()]);
    db.close().unwrap();
    let db = Db::builder(a.path()).remote(&url).open_blocking().unwrap();
    expect(&db);
    assert!(db.verify().unwrap().is_ok());
    // What stays is still published by the next upload.
    db.upload().unwrap();
    let reader = s4db::DbBuilder::for_remote(&url).open_blocking().unwrap();
    assert_eq!(contents(&reader), contents(&db));
}

#[test]
fn discard_all_returns_the_directory_to_its_last_sync() {
    let (a, _b, _r, url) = two_dirs_and_a_remote();
    let db = synced_abc(a.path(), &url);
    let before = contents(&db);
    db.put_many((0..500).map(|i| (key_for(i), value_for(i, 40))))
        .unwrap();
    db.delete("c").unwrap();
    let r = db.discard_all().unwrap();
    assert_eq!(r.keys_discarded, 501);
    assert_eq!(r.records_kept, 0);
    assert_eq!(contents(&db), before);
    assert!(db.changes().unwrap().is_empty());
    db.put("after", "1").unwrap();
    db.close().unwrap();
    let db = Db::builder(a.path()).remote(&url).open_blocking().unwrap();
    assert_eq!(db.len(), 4);
    assert_eq!(db.get("after").unwrap().unwrap(), "1");
}

#[test]
fn discard_is_refused_when_the_synced_state_is_unknown_or_gone() {
    let (a, b, _r, url) = two_dirs_and_a_remote();
    let no_remote = Db::open(b.path().join("plain")).unwrap();
    assert!(matches!(
        no_remote.discard_all(),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        no_remote.changes(),
        Err(Error::InvalidArgument(_))
    ));
    let never = Db::builder(b.path().join("never"))
        .remote(&url)
        .open_blocking()
        .unwrap();
    never.put("k", "v").unwrap();
    assert!(matches!(
        never.discard_all(),
        Err(Error::InvalidArgument(_))
    ));

    let db = synced_abc(a.path(), &url);
    db.put("a", "mine").unwrap();
    let other = Db::builder(b.path().join("other"))
        .remote(&url)
        .open_blocking()
        .unwrap();
    other.download().unwrap();
    other.put("z", "theirs").unwrap();
    other.upload().unwrap();
    assert!(matches!(db.discard(["a"]), Err(Error::Conflict(_))));
    assert_eq!(db.get("a").unwrap().unwrap(), "mine", "nothing changed");

    let (c, _d, _r2, url2) = two_dirs_and_a_remote();
    let db = synced_abc(c.path(), &url2);
    db.put("a", "mine").unwrap();
    db.compact_with(s4db::CompactOptions::default().full(true))
        .unwrap();
    assert!(db.changes().unwrap().compacted);
    assert!(matches!(db.discard(["a"]), Err(Error::Conflict(_))));
    assert_eq!(db.get("a").unwrap().unwrap(), "mine");
}

#[test]
fn an_in_memory_database_uploads_to_a_remote_and_starts_from_one() {
    let r = tempfile::tempdir().unwrap();
    let url = remote_url(r.path());
    let db = s4db::DbBuilder::memory()
        .remote(&url)
        .open_blocking()
        .unwrap();
    for i in 0..100 {
        db.put(key_for(i), value_for(i, 40)).unwrap();
    }
    assert_eq!(db.upload().unwrap().segments_uploaded, 1);
    let want = contents(&db);
    drop(db);
    let reader = Db::open_remote(&url).unwrap();
    assert_eq!(contents(&reader), want);
    // A second in-memory database over the same remote starts from its index.
    let again = s4db::DbBuilder::memory()
        .remote(&url)
        .open_blocking()
        .unwrap();
    assert_eq!(contents(&again), want);
    again.put("more", "x").unwrap();
    assert_eq!(again.upload().unwrap().segments_uploaded, 1);
    assert_eq!(
        Db::open_remote(&url).unwrap().get("more").unwrap().unwrap(),
        "x"
    );
}

/// The permission bits of every file under `dir` (recursively), by path.
fn modes_under(dir: &std::path::Path) -> Vec<(String, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(modes_under(&path));
        } else {
            let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
            out.push((path.display().to_string(), mode));
        }
    }
    out
}

#[test]
fn objects_written_to_a_file_remote_get_the_permissions_of_the_directorys_own_files() {
    let (a, _b, remote_dir, url) = two_dirs_and_a_remote();
    let db = three_hundred_records_in_8_kib_segments(a.path(), &url);
    db.upload().unwrap();
    db.put("one-more", "value").unwrap();
    db.upload().unwrap();
    let local = modes_under(a.path());
    let segment_mode = local
        .iter()
        .find(|(p, _)| p.ends_with(".s4db"))
        .map(|(_, m)| *m)
        .expect("a local segment file");
    // 0644 before the umask, as the directory's own files are created.
    assert_eq!(
        segment_mode & !0o644,
        0,
        "local segment mode {segment_mode:o}"
    );
    let objects: Vec<_> = modes_under(remote_dir.path())
        .into_iter()
        .filter(|(p, _)| !p.ends_with("/.s4db-remote.lock"))
        .collect();
    assert!(objects.len() >= 4, "{objects:?}");
    for (path, mode) in objects {
        assert_eq!(mode, segment_mode, "{path} has mode {mode:o}");
    }
}

/// `b` a downloaded copy of what `a` uploaded to `url`; then `a` commits
/// `n` more records in 4 KiB segments (many segments, numbered high) and `b`
/// writes `kb` = `vb`. Returns `b`'s handle.
fn a_copy_behind_the_other_writer(
    a: &std::path::Path,
    b: &std::path::Path,
    url: &str,
    n: u64,
) -> Db {
    let w1 = in_4_kib_segments(a, url);
    w1.put("k1", "v1").unwrap();
    w1.upload().unwrap();
    let w2 = Db::builder(b).remote(url).open_blocking().unwrap();
    w2.download().unwrap();
    for i in 0..n {
        w1.put(key_for(i), value_for(i, 60)).unwrap();
    }
    w1.upload().unwrap();
    w1.close().unwrap();
    w2.put("kb", "vb").unwrap();
    w2
}

#[test]
fn a_rebase_fetches_the_segments_of_the_index_it_adopts_so_the_copy_opens_offline() {
    let (a, b, _remote_dir, url) = two_dirs_and_a_remote();
    let w2 = a_copy_behind_the_other_writer(a.path(), b.path(), &url, 300);
    let report = w2
        .upload_with(UploadOptions::default().rebase(true))
        .unwrap();
    assert_eq!(report.rebased, 1);
    w2.close().unwrap();

    let offline = Db::open(b.path()).unwrap();
    assert_eq!(offline.get("k1").unwrap().unwrap(), "v1");
    assert_eq!(offline.get("kb").unwrap().unwrap(), "vb");
    for i in [0, 150, 299] {
        assert_eq!(offline.get(key_for(i)).unwrap().unwrap(), value_for(i, 60));
    }
    assert_eq!(offline.len(), 302);
    let v = offline.verify().unwrap();
    assert!(v.is_ok() && v.segments_missing == 0, "{v:?}");
    offline.compact().unwrap();
    offline
        .compact_with(s4db::CompactOptions::default().full(true))
        .unwrap();
    assert_eq!(offline.get(key_for(7)).unwrap().unwrap(), value_for(7, 60));
}

#[test]
fn a_rebase_that_stops_after_fetching_segments_leaves_the_directory_as_it_was() {
    let (a, b, _remote_dir, url) = two_dirs_and_a_remote();
    let w2 = a_copy_behind_the_other_writer(a.path(), b.path(), &url, 1000);
    // Compacted since its sync, b refuses to rebase once the other
    // writer's segments are fetched, before it adopts their index.
    w2.compact_with(s4db::CompactOptions::default().full(true))
        .unwrap();
    let err = w2
        .upload_with(UploadOptions::default().rebase(true))
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    w2.close().unwrap();

    // The fetched segments are not this directory's writes: a reopen does
    // not replay them.
    let offline = Db::open(b.path()).unwrap();
    assert_eq!(offline.len(), 2);
    assert_eq!(offline.get("kb").unwrap().unwrap(), "vb");
    assert_eq!(offline.get(key_for(999)).unwrap(), None);
    assert!(offline.verify().unwrap().is_ok());
}

#[test]
fn discard_on_a_copy_keeps_every_segment_it_names_local() {
    let (a, b, _remote_dir, url) = two_dirs_and_a_remote();
    let w2 = a_copy_behind_the_other_writer(a.path(), b.path(), &url, 300);
    w2.upload_with(UploadOptions::default().rebase(true))
        .unwrap();
    w2.put("kc", "vc").unwrap();
    w2.discard(["kc"]).unwrap();
    w2.close().unwrap();
    let offline = Db::open(b.path()).unwrap();
    assert_eq!(offline.get("kc").unwrap(), None);
    assert_eq!(
        offline.get(key_for(299)).unwrap().unwrap(),
        value_for(299, 60)
    );
    assert!(offline.verify().unwrap().is_ok());
}
