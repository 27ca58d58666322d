//! The command line on the paths a new user takes by mistake or by need:
//! damaged files, a second remote, odd URLs, read-only directories, keys
//! that are not text. Each ends in a clear error or the right result, and
//! none loses data.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::cli::{NOBODY, fails, is_root, s4db, s4db_unprivileged, stdout};
use common::s3::{ACCESS_KEY, SECRET_KEY, TestS3};
use common::segment_files;

fn import(dir: &Path, n: usize) {
    let input: String = (0..n)
        .map(|i| format!("{{\"key\":\"key{i:08}\",\"value\":\"value {i}\"}}\n"))
        .collect();
    s4db(dir)
        .arg("import")
        .write_stdin(input)
        .assert()
        .success();
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
}

// ----- data loss -----

#[test]
fn a_segment_with_a_damaged_header_is_reported_and_never_deleted_without_an_index() {
    let d = tempfile::tempdir().unwrap();
    import(d.path(), 20_000);
    fs::remove_file(d.path().join("index.idx")).unwrap();
    let seg = segment_files(d.path())[0].clone();
    let size = fs::metadata(&seg).unwrap().len();
    let mut bytes = fs::read(&seg).unwrap();
    bytes[..4].copy_from_slice(b"XXXX");
    fs::write(&seg, &bytes).unwrap();

    for cmd in [
        &["stat"][..],
        &["verify"],
        &["compact"],
        &["get", "key00000001"],
    ] {
        let err = fails(s4db(d.path()).args(cmd), 4);
        assert!(err.contains("rebuild-index"), "{cmd:?}: {err}");
        assert_eq!(
            fs::metadata(&seg).unwrap().len(),
            size,
            "{cmd:?} touched it"
        );
    }
    // The repair rewrites the header, keeping every record, and keeps the
    // original file (set aside, named in the report)...
    let out = stdout(s4db(d.path()).arg("rebuild-index"));
    assert!(out.contains("1 segment header(s) repaired"), "{out}");
    assert!(out.contains("20000 keys"), "{out}");
    let aside = PathBuf::from(format!("{}.damaged", seg.display()));
    assert!(
        out.contains(&*aside.file_name().unwrap().to_string_lossy()),
        "{out}"
    );
    assert_eq!(fs::read(&aside).unwrap(), bytes);
    assert_eq!(
        s4db(d.path())
            .args(["get", "key00000001"])
            .output()
            .unwrap()
            .stdout,
        b"value 1"
    );
    // ...and nothing after it deletes it.
    s4db(d.path())
        .args(["compact", "--full"])
        .assert()
        .success();
    s4db(d.path()).args(["put", "x", "1"]).assert().success();
    s4db(d.path())
        .args(["compact", "--full"])
        .assert()
        .success();
    assert_eq!(fs::read(&aside).unwrap(), bytes);
}

#[test]
fn an_unlisted_segment_with_a_damaged_header_below_the_next_number_stops_the_open() {
    let d = tempfile::tempdir().unwrap();
    import(d.path(), 3_000);
    s4db(d.path())
        .args(["compact", "--full"])
        .assert()
        .success();
    // A file named like an old segment (number 1, superseded) whose header
    // is damaged: it may hold anything; s4db must not delete it.
    let name = fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("data_") && n.ends_with(".s4db"))
        .unwrap();
    let writer = &name[name.len() - 21..name.len() - 5];
    let stray = d.path().join(format!("data_00000001_{writer}.s4db"));
    fs::write(&stray, vec![7u8; 4096]).unwrap();
    let err = fails(s4db(d.path()).args(["put", "a", "1"]), 4);
    assert!(err.contains("damaged header"), "{err}");
    assert_eq!(fs::read(&stray).unwrap(), vec![7u8; 4096]);
}

#[test]
fn repair_keeps_every_record_of_a_damaged_batch_whose_checksum_is_good() {
    let d = tempfile::tempdir().unwrap();
    // One batch of 1,000 records, larger than the segment limit: a segment
    // of its own, sealed by the next write.
    let db = s4db::blocking::Db::builder(d.path())
        .max_segment_size(16 << 10)
        .open_blocking()
        .unwrap();
    db.put_many((0..1000).map(|i| (format!("key{i:08}"), format!("value {i}"))))
        .unwrap();
    db.put("later", "2").unwrap();
    db.close().unwrap();
    drop(db);
    let seg = segment_files(d.path())[0].clone();
    let mut bytes = fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 3] {
        *b ^= 0x5a;
    }
    fs::write(&seg, &bytes).unwrap();
    let readable = |dir: &Path| {
        let db = s4db::blocking::Db::builder(dir)
            .read_only(true)
            .open_blocking()
            .unwrap();
        (0..1000)
            .filter(|i| {
                db.get(format!("key{i:08}"))
                    .is_ok_and(|v| v.as_deref() == Some(format!("value {i}").as_bytes()))
            })
            .count()
    };
    let before = readable(d.path());
    assert!(before >= 998, "{before}");
    let out: serde_json::Value =
        serde_json::from_str(&stdout(s4db(d.path()).args(["--json", "rebuild-index"]))).unwrap();
    let skipped = out["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{out}");
    assert_eq!(
        readable(d.path()),
        before,
        "repair lost good records: {out}"
    );
    assert_eq!(
        s4db::blocking::Db::open(d.path())
            .unwrap()
            .get("later")
            .unwrap()
            .as_deref(),
        Some(&b"2"[..])
    );
}

// ----- the sync state belongs to its remote -----

#[test]
fn downloading_from_another_remote_needs_force_and_a_backup_upload_leaves_the_first_alone() {
    let root = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        file_url(&root.path().join("a")),
        file_url(&root.path().join("b")),
        file_url(&root.path().join("c")),
    );
    let d = root.path().join("d");
    let other = root.path().join("other");
    s4db(&other).args(["put", "y", "2"]).assert().success();
    s4db(&other)
        .args(["--remote", &b, "upload"])
        .assert()
        .success();

    s4db(&d).args(["put", "x", "1"]).assert().success();
    s4db(&d).args(["--remote", &a, "upload"]).assert().success();
    let own = fs::read_to_string(d.join("remote.state")).unwrap();

    // Another remote without --force: refused, nothing changes.
    let err = fails(s4db(&d).args(["--remote", &b, "download"]), 3);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(stdout(s4db(&d).args(["get", "x"])), "1");

    // A backup to a new, empty remote works and leaves the sync with A alone.
    s4db(&d).args(["--remote", &c, "upload"]).assert().success();
    assert_eq!(fs::read_to_string(d.join("remote.state")).unwrap(), own);
    s4db(&d).args(["put", "x2", "3"]).assert().success();
    s4db(&d).args(["--remote", &a, "upload"]).assert().success();
    s4db(&d).args(["--remote", &c, "upload"]).assert().success();
    let v: serde_json::Value =
        serde_json::from_str(&stdout(s4db(&d).args(["--remote", &a, "--json", "stat"]))).unwrap();
    assert_eq!(v["unuploaded_segments"], 0);
    // The backup reads back.
    let r = stdout(
        Command::cargo_bin("s4db")
            .unwrap()
            .args(["-q", "--remote", &c, "get", "x2"]),
    );
    assert_eq!(r, "3");

    // With --force, the directory becomes a copy of B.
    s4db(&d)
        .args(["--remote", &b, "download", "--force"])
        .assert()
        .success();
    assert_eq!(stdout(s4db(&d).args(["get", "y"])), "2");
    fails(s4db(&d).args(["get", "x"]), 1);
}

// ----- URLs -----

#[test]
fn s3_prefixes_are_written_exactly_as_typed_and_fragments_are_refused() {
    let s3 = TestS3::start();
    let d = tempfile::tempdir().unwrap();
    let url = s3.url("with space").replace(' ', "%20");
    s4db(d.path()).args(["put", "k", "v"]).assert().success();
    s4db(d.path())
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .args(["--remote", &url, "upload"])
        .assert()
        .success();
    assert!(
        s3.objects("with space").contains(&"index.idx".to_string()),
        "{:?}",
        s3.objects("with%20space")
    );
    let public = s3.public_url("with%20space");
    let got = stdout(
        Command::cargo_bin("s4db")
            .unwrap()
            .args(["-q", "--remote", &public, "get", "k"]),
    );
    assert_eq!(got, "v");
    let err = fails(
        s4db(d.path()).args(["--remote", "s3://bkt/hash#frag", "upload"]),
        2,
    );
    assert!(err.contains("%23"), "{err}");
}

#[test]
fn plain_paths_are_local_remotes_and_file_colon_without_slashes_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let d = root.path().join("d");
    s4db(&d).args(["put", "k", "v"]).assert().success();
    // A name of its own, so that `/NAME` cannot exist beforehand.
    let name = format!(
        "frem-{}",
        root.path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches('.')
    );
    let err = fails(
        s4db(&d)
            .current_dir(root.path())
            .args(["--remote", &format!("file:{name}"), "upload"]),
        2,
    );
    assert!(err.contains(&format!("./{name}")), "{err}");
    assert!(!Path::new("/").join(&name).exists());
    s4db(&d)
        .current_dir(root.path())
        .args(["--remote", "./frem", "upload"])
        .assert()
        .success();
    assert!(root.path().join("frem/index.idx").exists());
    let abs = root.path().join("abs");
    s4db(&d)
        .args(["--remote", abs.to_str().unwrap(), "upload"])
        .assert()
        .success();
    assert!(abs.join("index.idx").exists());
}

// ----- read commands never create, errors mean "not done" -----

#[test]
fn read_commands_never_create_a_database() {
    let root = tempfile::tempdir().unwrap();
    let typo = root.path().join("typo");
    for cmd in [
        &["verify"][..],
        &["stat"],
        &["keys"],
        &["get", "k"],
        &["export"],
    ] {
        let err = fails(s4db(&typo).args(cmd), 5);
        assert!(
            err.contains("no database") || err.contains("no s4db database"),
            "{err}"
        );
        assert!(!typo.exists(), "{cmd:?} created {}", typo.display());
    }
    // An existing directory that is not a database stays untouched too.
    let plain = root.path().join("plain");
    fs::create_dir(&plain).unwrap();
    fs::write(plain.join("notes.txt"), "mine").unwrap();
    for cmd in [&["verify"][..], &["compact"], &["del", "k"], &["upload"]] {
        fails(s4db(&plain).args(cmd), 5);
        let names: Vec<_> = fs::read_dir(&plain)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["notes.txt"], "{cmd:?} wrote into the directory");
    }
}

#[test]
fn deleting_a_missing_key_writes_nothing_and_counts_only_real_deletes() {
    let d = tempfile::tempdir().unwrap();
    s4db(d.path()).args(["put", "a", "1"]).assert().success();
    let size = |d: &Path| -> u64 {
        segment_files(d)
            .iter()
            .map(|p| fs::metadata(p).unwrap().len())
            .sum()
    };
    let before = size(d.path());
    let out = stdout(s4db(d.path()).args(["--json", "del", "nope", "nada"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["deleted"], 0, "{out}");
    assert_eq!(size(d.path()), before, "a tombstone was written");
    let out = stdout(s4db(d.path()).args(["del", "a", "nope"]));
    assert_eq!(out.trim(), "deleted 1 key(s)");
}

/// Makes `dir` (and its parents up to the temp root) enterable by `nobody`,
/// with `files_to_nobody` deciding who owns the files in it.
fn share_with_nobody(root: &Path, dir: &Path, files_to_nobody: bool) {
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    if files_to_nobody && is_root() {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            std::os::unix::fs::chown(&p, Some(NOBODY), Some(NOBODY)).unwrap();
        }
    }
}

#[test]
fn a_put_into_a_directory_it_cannot_write_fails_and_saves_nothing() {
    let root = tempfile::tempdir().unwrap();
    let d = root.path().join("db");
    s4db(&d).args(["put", "a", "1"]).assert().success();
    // The files are the user's, the directory is not (or is read-only).
    share_with_nobody(root.path(), &d, true);
    if !is_root() {
        fs::set_permissions(&d, fs::Permissions::from_mode(0o555)).unwrap();
    }
    let err = fails(s4db_unprivileged(&d).args(["put", "b", "2"]), 5);
    assert!(err.contains("writable"), "{err}");
    fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
    fails(s4db(&d).args(["get", "b"]), 1);
    assert_eq!(stdout(s4db(&d).args(["get", "a"])), "1");
}

#[test]
fn a_user_who_can_only_read_can_get_and_export() {
    let root = tempfile::tempdir().unwrap();
    let d = root.path().join("db");
    s4db(&d).args(["put", "a", "1"]).assert().success();
    s4db(&d).args(["put", "b", "2"]).assert().success();
    let mode = fs::metadata(d.join("index.idx"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o044,
        0o044,
        "index.idx is not readable by others: {mode:o}"
    );
    share_with_nobody(root.path(), &d, false);
    if !is_root() {
        fs::set_permissions(&d, fs::Permissions::from_mode(0o555)).unwrap();
    }
    assert_eq!(stdout(s4db_unprivileged(&d).args(["get", "a"])), "1");
    let out = stdout(s4db_unprivileged(&d).arg("export"));
    assert_eq!(out.lines().count(), 2, "{out}");
    stdout(s4db_unprivileged(&d).arg("verify"));
    fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
}

// ----- one writer and reader processes -----

#[test]
fn reader_processes_run_beside_a_writer_and_the_writer_can_wait_for_the_lock() {
    let d = tempfile::tempdir().unwrap();
    s4db(d.path()).args(["put", "a", "1"]).assert().success();
    let writer = s4db::blocking::Db::open(d.path()).unwrap();
    writer.put("b", "2").unwrap();
    // Readers open beside the writer: get, keys, export, verify, stat.
    assert_eq!(stdout(s4db(d.path()).args(["get", "b"])), "2");
    assert_eq!(stdout(s4db(d.path()).arg("keys")), "a\nb\n");
    stdout(s4db(d.path()).arg("verify"));
    stdout(s4db(d.path()).arg("export"));
    // A second writer is refused at once, or waits with --wait.
    let err = fails(s4db(d.path()).args(["put", "c", "3"]), 5);
    assert!(err.contains("locked"), "{err}");
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(700));
        writer.close().unwrap();
    });
    s4db(d.path())
        .args(["--wait", "20", "put", "c", "3"])
        .assert()
        .success();
    release.join().unwrap();
    assert_eq!(stdout(s4db(d.path()).args(["get", "c"])), "3");
}

#[test]
fn a_reader_process_sees_a_prefix_of_whole_batches_while_a_writer_appends() {
    let d = tempfile::tempdir().unwrap();
    let db = s4db::blocking::Db::builder(d.path())
        .max_segment_size(64 << 10)
        .open_blocking()
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 20_000 {
                let mut b = s4db::WriteBatch::new();
                for j in 0..10 {
                    b.put(format!("b{n:06}-{j}"), format!("{n}")).unwrap();
                }
                db.write(b).unwrap();
                if n.is_multiple_of(500) {
                    db.checkpoint().unwrap();
                }
                if n % 3000 == 2999 {
                    db.compact_with(s4db::CompactOptions::default().full(true))
                        .unwrap();
                }
                n += 1;
            }
            n
        })
    };
    let mut seen = 0;
    for _ in 0..15 {
        let out = stdout(s4db(d.path()).arg("keys"));
        let keys: Vec<&str> = out.lines().collect();
        assert_eq!(keys.len() % 10, 0, "a batch was seen in part");
        let batches = keys.len() / 10;
        for (i, chunk) in keys.chunks(10).enumerate() {
            for (j, k) in chunk.iter().enumerate() {
                assert_eq!(*k, format!("b{i:06}-{j}"), "not a prefix of whole batches");
            }
        }
        assert!(batches >= seen, "a later view saw less");
        seen = batches;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(seen > 0 && seen <= written as usize);
    db.close().unwrap();
}

// ----- the command line's conventions -----

#[test]
fn dash_means_stdin_for_import_and_put_file_and_stdout_for_out() {
    let d = tempfile::tempdir().unwrap();
    s4db(d.path())
        .args(["import", "-"])
        .write_stdin("{\"key\":\"k\",\"value\":\"v\"}\n")
        .assert()
        .success();
    s4db(d.path())
        .args(["put", "f", "--file", "-"])
        .write_stdin("from stdin")
        .assert()
        .success();
    assert_eq!(stdout(s4db(d.path()).args(["get", "k", "--out", "-"])), "v");
    assert_eq!(
        stdout(s4db(d.path()).args(["get", "f", "--out", "-"])),
        "from stdin"
    );
    let out = stdout(s4db(d.path()).args(["export", "--out", "-"]));
    assert_eq!(out.lines().count(), 2);
    assert!(!d.path().join("-").exists());
}

#[test]
fn keys_that_are_not_text_go_through_key_b64_and_keys_json() {
    let d = tempfile::tempdir().unwrap();
    // "a\nb" and the bytes ff 00.
    s4db(d.path())
        .args(["put", "--key-b64", "YQpi", "newline"])
        .assert()
        .success();
    s4db(d.path())
        .args(["put", "--key-b64", "/wA=", "binary"])
        .assert()
        .success();
    assert_eq!(
        stdout(s4db(d.path()).args(["get", "--key-b64", "YQpi"])),
        "newline"
    );
    let out = stdout(s4db(d.path()).args(["--json", "keys"]));
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["key"], "a\nb");
    assert_eq!(lines[1]["key_b64"], "/wA=");
    let out = stdout(s4db(d.path()).args(["--json", "del", "--key-b64", "/wA="]));
    assert!(out.contains("\"deleted\":1"), "{out}");
    let err = fails(s4db(d.path()).args(["get", "--key-b64", "***"]), 2);
    assert!(err.contains("base64"), "{err}");
}

#[test]
fn verify_prints_one_problem_per_line_and_json() {
    let d = tempfile::tempdir().unwrap();
    import(d.path(), 2_000);
    let db = s4db::blocking::Db::open(d.path()).unwrap();
    db.compact_with(s4db::CompactOptions::default().full(true))
        .unwrap();
    db.put("x", "1").unwrap();
    db.close().unwrap();
    drop(db);
    let seg = segment_files(d.path())[0].clone();
    let mut bytes = fs::read(&seg).unwrap();
    for at in [200, bytes.len() / 2, bytes.len() - 100] {
        bytes[at] ^= 0xff;
    }
    fs::write(&seg, &bytes).unwrap();
    let out = s4db(d.path()).arg("verify").output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let text = String::from_utf8(out.stdout).unwrap();
    let problems = text.lines().filter(|l| l.starts_with("problem: ")).count();
    assert!(problems >= 2, "{text}");
    assert!(text.lines().all(|l| l.len() < 1000), "{text}");
    let out = s4db(d.path()).args(["--json", "verify"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["problems"].as_array().unwrap().len(), problems);
}

#[test]
fn messages_name_cli_options_paths_and_valid_values() {
    let d = tempfile::tempdir().unwrap();
    s4db(d.path()).args(["put", "k", "v"]).assert().success();
    let err = fails(s4db(d.path()).arg("upload"), 2);
    assert!(err.contains("--remote"), "{err}");
    let err = fails(
        s4db(d.path()).args(["--remote", "http://127.0.0.1:9/db", "upload"]),
        2,
    );
    assert!(err.contains("read-only"), "{err}");
    let err = fails(
        s4db(d.path()).args(["get", "k", "--out", "/nonexistent/dir/file"]),
        5,
    );
    assert!(err.contains("/nonexistent/dir/file"), "{err}");
    let err = fails(s4db(d.path()).args(["--sync", "sometimes", "stat"]), 2);
    assert!(err.contains("never") && err.contains("always"), "{err}");
}

#[test]
fn the_bulk_load_example_prints_help() {
    // `cargo test` builds the examples as target/<profile>/examples/NAME-HASH.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let example = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("bulk_load-") && !n.contains('.')
        })
        .max_by_key(|p| fs::metadata(p).unwrap().modified().unwrap())
        .expect("cargo test builds the bulk_load example");
    let built = fs::metadata(&example).unwrap().modified().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bulk_load.rs");
    assert!(
        built >= fs::metadata(source).unwrap().modified().unwrap(),
        "{} is older than its source: run the whole `cargo test` (or `cargo build --examples`)",
        example.display()
    );
    let out = std::process::Command::new(&example)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("usage: bulk_load") && text.contains("--records"),
        "{text}"
    );
    let out = std::process::Command::new(&example)
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

// ----- a full disk -----

/// `s4db` run with a file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored): writes
/// past `bytes` fail with EFBIG, as they would on a full disk.
fn s4db_with_file_limit(dir: &Path, bytes: u64) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!(
            "trap '' XFSZ; exec prlimit --fsize={bytes} \"$0\" \"$@\""
        ))
        .arg(assert_cmd::cargo::cargo_bin("s4db"))
        .arg("--dir")
        .arg(dir)
        .arg("-q");
    c
}

#[test]
fn an_import_that_runs_out_of_space_says_what_it_kept_and_the_database_stays_whole() {
    let d = tempfile::tempdir().unwrap();
    s4db(d.path())
        .args(["put", "first", "1"])
        .assert()
        .success();
    let input: String = (0..20_000)
        .map(|i| {
            format!(
                "{{\"key\":\"key{i:08}\",\"value\":\"value {i} {}\"}}\n",
                "x".repeat(40)
            )
        })
        .collect();
    let out = s4db_with_file_limit(d.path(), 256 << 10)
        .args(["import", "--batch", "100"])
        .write_stdin(input)
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(
        err.starts_with("s4db: error: ") && err.lines().count() == 1,
        "{err}"
    );
    let kept: u64 = err
        .split("record(s)")
        .next()
        .and_then(|s| s.rsplit(' ').nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the error does not say what was kept: {err}"));
    assert!(kept > 0 && kept.is_multiple_of(100), "{err}");
    // With room again: the database opens, checks clean, and holds exactly
    // what the error said, in whole batches.
    stdout(s4db(d.path()).arg("verify"));
    let keys = stdout(s4db(d.path()).arg("keys"));
    let imported = keys.lines().filter(|k| k.starts_with("key")).count() as u64;
    assert_eq!(imported, kept, "{err}");
    assert_eq!(stdout(s4db(d.path()).args(["get", "first"])), "1");
    s4db(d.path())
        .args(["put", "after", "2"])
        .assert()
        .success();
}
