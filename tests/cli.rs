//! The `s4db` binary: every command and every exit code.

mod common;

use std::fs;

use assert_cmd::Command;
use common::cli::{fails, json, s4db, s4db_no_dir, stdout};
use common::s3::{ACCESS_KEY, SECRET_KEY, TestS3};

#[test]
fn put_get_del_keys_and_stdin_and_file_values() {
    let d = tempfile::tempdir().unwrap();
    s4db(d.path())
        .args(["put", "a", "alpha"])
        .assert()
        .success();
    s4db(d.path())
        .args(["put", "b", "-"])
        .write_stdin(&b"from\x00stdin\n"[..])
        .assert()
        .success();
    let f = d.path().join("v.bin");
    fs::write(&f, [0u8, 159, 146, 150]).unwrap();
    s4db(d.path())
        .args(["put", "c", "--file"])
        .arg(&f)
        .assert()
        .success();

    let out = s4db(d.path()).args(["get", "a"]).output().unwrap();
    assert_eq!(out.stdout, b"alpha", "exact bytes, no newline");
    assert_eq!(
        s4db(d.path()).args(["get", "b"]).output().unwrap().stdout,
        b"from\x00stdin\n"
    );
    let to = d.path().join("out.bin");
    s4db(d.path())
        .args(["get", "c", "--out"])
        .arg(&to)
        .assert()
        .success();
    assert_eq!(fs::read(&to).unwrap(), [0u8, 159, 146, 150]);

    assert_eq!(stdout(s4db(d.path()).arg("keys")), "a\nb\nc\n");
    assert_eq!(
        stdout(s4db(d.path()).args(["keys", "--prefix", "b"])),
        "b\n"
    );
    s4db(d.path())
        .args(["del", "a", "c", "nope"])
        .assert()
        .success();
    assert_eq!(stdout(s4db(d.path()).arg("keys")), "b\n");
}

#[test]
fn get_of_a_missing_key_exits_1() {
    let d = tempfile::tempdir().unwrap();
    s4db(d.path()).args(["put", "a", "1"]).assert().success();
    let err = fails(s4db(d.path()).args(["get", "zz"]), 1);
    assert!(err.contains("zz"), "{err}");
}

#[test]
fn usage_errors_and_invalid_input_exit_2() {
    let d = tempfile::tempdir().unwrap();
    fails(s4db(d.path()).arg("frobnicate"), 2);
    fails(s4db(d.path()).args(["put", "", "v"]), 2);
    fails(s4db(d.path()).args(["put", "k"]), 2);
    fails(
        Command::cargo_bin("s4db")
            .unwrap()
            .args(["get", "k"])
            .env_remove("S4DB_DIR")
            .env_remove("S4DB_REMOTE"),
        2,
    );
    fails(
        s4db(d.path()).args(["--remote", "ftp://nowhere/x", "keys"]),
        2,
    );
    fails(
        Command::cargo_bin("s4db")
            .unwrap()
            .args(["--remote", "file:///tmp/x", "put", "k", "v"]),
        2,
    );
    fails(s4db(d.path()).args(["import", "--batch", "0"]), 2);
}

#[test]
fn an_import_stops_at_a_bad_line_keeping_every_batch_before_it() {
    let d = tempfile::tempdir().unwrap();
    let mut input = String::new();
    for i in 0..25 {
        input.push_str(&format!("{{\"key\":\"k{i:02}\",\"value\":\"v{i}\"}}\n"));
    }
    input.push_str("{\"key\": \"broken\"\n");
    input.push_str("{\"key\":\"after\",\"value\":\"never\"}\n");
    let err = fails(
        s4db(d.path())
            .args(["import", "--batch", "10"])
            .write_stdin(input),
        2,
    );
    assert!(
        err.contains("line 26") && err.contains("20 record"),
        "{err}"
    );
    let keys = stdout(s4db(d.path()).arg("keys"));
    assert_eq!(keys.lines().count(), 20, "two whole batches of 10: {keys}");
    assert!(!keys.contains("after"));
}

#[test]
fn binary_values_round_trip_through_import_and_export() {
    let d = tempfile::tempdir().unwrap();
    let input = "{\"key\":\"text\",\"value\":\"plain \\\"quoted\\\" ✓\"}\n{\"key\":\"bin\",\"value_b64\":\"AP8QgA==\"}\n";
    let r = stdout(s4db(d.path()).args(["--json", "import"]).write_stdin(input));
    assert_eq!(r.trim(), r#"{"batches":1,"imported":2}"#);
    assert_eq!(
        s4db(d.path()).args(["get", "bin"]).output().unwrap().stdout,
        [0u8, 255, 16, 128]
    );
    let exported = stdout(s4db(d.path()).arg("export"));
    assert_eq!(
        exported,
        "{\"key\":\"bin\",\"value_b64\":\"AP8QgA==\"}\n{\"key\":\"text\",\"value\":\"plain \\\"quoted\\\" ✓\"}\n"
    );
    // And back into a fresh database, through a file.
    let e = tempfile::tempdir().unwrap();
    let file = e.path().join("dump.jsonl");
    s4db(d.path())
        .args(["export", "--out"])
        .arg(&file)
        .assert()
        .success();
    s4db(&e.path().join("db"))
        .arg("import")
        .arg(&file)
        .assert()
        .success();
    assert_eq!(stdout(s4db(&e.path().join("db")).arg("export")), exported);
}

#[test]
fn stat_verify_compact_and_rebuild_index_report_in_json() {
    let d = tempfile::tempdir().unwrap();
    let input: String = (0..100)
        .map(|i| format!("{{\"key\":\"k{i:03}\",\"value\":\"{}\"}}\n", "x".repeat(i)))
        .collect();
    s4db(d.path())
        .args(["import"])
        .write_stdin(input.clone())
        .assert()
        .success();
    s4db(d.path())
        .args(["import"])
        .write_stdin(input)
        .assert()
        .success();
    let stat: serde_json::Value =
        serde_json::from_str(&stdout(s4db(d.path()).args(["--json", "stat"]))).unwrap();
    assert_eq!(stat["keys"], 100);
    assert_eq!(stat["segments"], 1);
    let v: serde_json::Value =
        serde_json::from_str(&stdout(s4db(d.path()).args(["--json", "verify"]))).unwrap();
    assert_eq!(v["ok"], true);
    let c: serde_json::Value =
        serde_json::from_str(&stdout(s4db(d.path()).args(["--json", "compact"]))).unwrap();
    assert_eq!(c["records_written"], 100);
    assert!(c["bytes_after"].as_u64() < c["bytes_before"].as_u64());
    let r: serde_json::Value =
        serde_json::from_str(&stdout(s4db(d.path()).args(["--json", "rebuild-index"]))).unwrap();
    assert_eq!(r["keys"], 100);
}

#[test]
fn corruption_exits_4_and_rebuild_index_repairs_a_damaged_index() {
    let d = tempfile::tempdir().unwrap();
    s4db(d.path()).args(["put", "a", "1"]).assert().success();
    s4db(d.path()).args(["put", "b", "2"]).assert().success();
    let idx = d.path().join("index.idx");
    let mut bytes = fs::read(&idx).unwrap();
    bytes[100] ^= 0xff;
    fs::write(&idx, bytes).unwrap();
    let err = fails(s4db(d.path()).args(["get", "a"]), 4);
    assert!(
        err.contains("index.idx") && err.contains("rebuild"),
        "{err}"
    );
    s4db(d.path()).arg("rebuild-index").assert().success();
    assert_eq!(
        s4db(d.path()).args(["get", "b"]).output().unwrap().stdout,
        b"2"
    );

    // A damaged record: verify exits 4.
    let seg = common::segment_files(d.path())[0].clone();
    let mut bytes = fs::read(&seg).unwrap();
    bytes[60] ^= 0x01;
    fs::write(&seg, bytes).unwrap();
    fails(s4db(d.path()).arg("verify"), 4);
}

#[test]
fn rebuild_index_repairs_a_flipped_byte_in_a_segment_header_keeping_every_record() {
    let d = tempfile::tempdir().unwrap();
    let input: String = (0..2_000)
        .map(|i| format!("{{\"key\":\"key{i:05}\",\"value\":\"value {i}\"}}\n"))
        .collect();
    s4db(d.path())
        .arg("import")
        .write_stdin(input)
        .assert()
        .success();
    let seg = common::segment_files(d.path())[0].clone();
    let name = seg.file_name().unwrap().to_string_lossy().into_owned();
    let aside = format!("{name}.damaged");
    let mut bytes = fs::read(&seg).unwrap();
    bytes[20] ^= 0x10;
    fs::write(&seg, &bytes).unwrap();
    for cmd in [&["get", "key00001"][..], &["stat"], &["verify"]] {
        let err = fails(s4db(d.path()).args(cmd), 4);
        assert!(err.contains(&name), "{cmd:?}: {err}");
    }
    let r = json(s4db(d.path()).args(["--json", "rebuild-index"]));
    assert_eq!(r["keys"], 2_000, "{r}");
    assert_eq!(r["records"], 2_000, "{r}");
    assert_eq!(r["skipped"], serde_json::json!([]), "{r}");
    assert_eq!(r["repaired"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["damaged_files"], serde_json::json!([aside]), "{r}");
    for i in [0, 1, 999, 1_999] {
        let out = s4db(d.path())
            .args(["get", &format!("key{i:05}")])
            .output()
            .unwrap();
        assert_eq!(out.stdout, format!("value {i}").as_bytes());
    }
    assert_eq!(fs::read(d.path().join(&aside)).unwrap(), bytes, "kept");
    // The loss does not go quiet: verify fails naming the set-aside file,
    // stat shows it, and a second rebuild lists it.
    let v = s4db(d.path()).args(["--json", "verify"]).output().unwrap();
    assert_eq!(v.status.code(), Some(4));
    let v: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(v["records"], 2_000, "{v}");
    assert!(v["problems"][0].as_str().unwrap().contains(&aside), "{v}");
    let stat = json(s4db(d.path()).args(["--json", "stat"]));
    assert_eq!(stat["damaged_files"], serde_json::json!([aside]), "{stat}");
    assert!(stdout(s4db(d.path()).arg("stat")).contains(&aside));
    let again = json(s4db(d.path()).args(["--json", "rebuild-index"]));
    assert_eq!(
        again["damaged_files"],
        serde_json::json!([aside]),
        "{again}"
    );
    assert_eq!(again["repaired"], serde_json::json!([]), "{again}");
    // The set-aside file is no segment: an upload sends the repaired one only.
    let r = tempfile::tempdir().unwrap();
    let url = format!("file://{}", r.path().display());
    s4db(d.path())
        .args(["--remote", &url, "upload"])
        .assert()
        .success();
    let mut sent = Vec::new();
    let mut dirs = vec![r.path().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                sent.push(p.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    assert!(sent.contains(&name), "{sent:?}");
    assert!(sent.iter().all(|n| !n.contains("damaged")), "{sent:?}");
    // Deleting it once satisfied makes the directory whole again.
    fs::remove_file(d.path().join(&aside)).unwrap();
    s4db(d.path()).arg("verify").assert().success();
}

#[test]
fn other_failures_exit_5() {
    let d = tempfile::tempdir().unwrap();
    let _holder = s4db::blocking::Db::open(d.path()).unwrap();
    let err = fails(s4db(d.path()).args(["put", "a", "1"]), 5);
    assert!(err.contains("locked"), "{err}");
}

#[test]
fn upload_download_gc_and_remote_only_reads_against_s3() {
    let s3 = TestS3::start();
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let url = s3.url("cli");
    let with_creds = |mut cmd: Command| {
        cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .arg("--remote")
            .arg(&url);
        cmd
    };
    let input: String = (0..200)
        .map(|i| format!("{{\"key\":\"key{i:08}\",\"value\":\"value {i}\"}}\n"))
        .collect();
    with_creds(s4db(a.path()))
        .arg("import")
        .write_stdin(input)
        .assert()
        .success();
    let up: serde_json::Value = serde_json::from_str(&stdout(
        with_creds(s4db(a.path())).args(["--json", "upload"]),
    ))
    .unwrap();
    assert_eq!(up["segments_uploaded"], 1);

    // --remote only: read commands go straight to the remote, read-only.
    let remote_only = || {
        let mut cmd = Command::cargo_bin("s4db").unwrap();
        cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .args(["-q", "--remote", &url]);
        cmd
    };
    assert_eq!(
        remote_only()
            .args(["get", "key00000042"])
            .output()
            .unwrap()
            .stdout,
        b"value 42"
    );
    assert_eq!(stdout(remote_only().arg("keys")).lines().count(), 200);
    let stat: serde_json::Value =
        serde_json::from_str(&stdout(remote_only().args(["--json", "stat"]))).unwrap();
    assert_eq!(stat["keys"], 200);
    fails(remote_only().args(["get", "nope"]), 1);
    fails(remote_only().args(["put", "x", "y"]), 2);
    assert!(stdout(remote_only().arg("verify")).contains("200 keys"));

    // Another directory downloads; two uploads race: exit 3, then --rebase.
    with_creds(s4db(b.path()))
        .arg("download")
        .assert()
        .success();
    with_creds(s4db(a.path()))
        .args(["put", "from-a", "1"])
        .assert()
        .success();
    with_creds(s4db(b.path()))
        .args(["put", "from-b", "2"])
        .assert()
        .success();
    with_creds(s4db(a.path())).arg("upload").assert().success();
    fails(with_creds(s4db(b.path())).arg("upload"), 3);
    with_creds(s4db(b.path()))
        .args(["upload", "--rebase"])
        .assert()
        .success();
    // a uploaded everything it wrote, so it may take b's rebased commit.
    with_creds(s4db(a.path()))
        .arg("download")
        .assert()
        .success();
    assert_eq!(
        s4db(a.path())
            .args(["get", "from-b"])
            .output()
            .unwrap()
            .stdout,
        b"2"
    );
    with_creds(s4db(c.path()))
        .arg("download")
        .assert()
        .success();
    assert_eq!(
        s4db(c.path())
            .args(["get", "from-a"])
            .output()
            .unwrap()
            .stdout,
        b"1"
    );
    assert_eq!(
        s4db(c.path())
            .args(["get", "from-b"])
            .output()
            .unwrap()
            .stdout,
        b"2"
    );

    with_creds(s4db(c.path()))
        .args(["compact", "--full"])
        .assert()
        .success();
    with_creds(s4db(c.path())).arg("upload").assert().success();
    let gc: serde_json::Value = serde_json::from_str(&stdout(
        with_creds(s4db(c.path())).args(["--json", "gc", "--grace", "0"]),
    ))
    .unwrap();
    let n = gc["obsolete_deleted"].as_u64().unwrap();
    assert!(n >= 1, "{gc}");
    let names = gc["deleted"].as_array().unwrap();
    assert_eq!(names.len() as u64, n, "{gc}");
    // Old segments and the index runs the compaction replaced.
    assert!(
        names.iter().all(|n| {
            let n = n.as_str().unwrap();
            s4db::SegmentId::parse_file_name(n).is_some()
                || (n.starts_with("index_") && n.ends_with(".run"))
        }),
        "{gc}"
    );
}

#[test]
fn del_prefix_and_del_range_delete_in_one_write_and_report_the_count() {
    let d = tempfile::tempdir().unwrap();
    s4db(d.path())
        .args(["import", "-"])
        .write_stdin(
            ["a/1", "a/2", "a/3", "b/1", "b/2", "c"]
                .iter()
                .map(|k| format!("{{\"key\":\"{k}\",\"value\":\"v\"}}\n"))
                .collect::<String>(),
        )
        .assert()
        .success();
    assert_eq!(
        stdout(s4db(d.path()).args(["--json", "del", "--prefix", "a/"])),
        "{\"deleted\":3}\n"
    );
    assert_eq!(
        stdout(s4db(d.path()).args(["del", "--range", "b/2", "c"])),
        "deleted 1 key(s)\n"
    );
    assert_eq!(stdout(s4db(d.path()).arg("keys")), "b/1\nc\n");
    // base64 bounds: "Yg==" is "b", "Yw==" is "c".
    assert_eq!(
        stdout(s4db(d.path()).args(["del", "--key-b64", "--range", "Yg==", "Yw=="])),
        "deleted 1 key(s)\n"
    );
    let err = fails(s4db(d.path()).args(["del", "--range", "z", "a"]), 2);
    assert!(err.contains("starts after it ends"), "{err}");
    // Keys and a prefix together are a usage error; so is nothing at all.
    Command::cargo_bin("s4db")
        .unwrap()
        .arg("--dir")
        .arg(d.path())
        .args(["del", "c", "--prefix", "x"])
        .assert()
        .code(2);
    Command::cargo_bin("s4db")
        .unwrap()
        .arg("--dir")
        .arg(d.path())
        .arg("del")
        .assert()
        .code(2);
    assert_eq!(stdout(s4db(d.path()).arg("keys")), "c\n");
}

#[test]
fn after_a_lost_index_a_new_directory_cannot_upload_over_the_data_and_restore_brings_it_back() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let r = tempfile::tempdir().unwrap();
    let url = format!("file://{}", r.path().display());
    for (k, v) in [("a", "1"), ("b", "2")] {
        s4db(a.path()).args(["put", k, v]).assert().success();
        s4db(a.path())
            .args(["--remote", &url, "upload"])
            .assert()
            .success();
    }
    fs::remove_file(r.path().join("index.idx")).unwrap();

    s4db(b.path()).args(["put", "c", "3"]).assert().success();
    let err = fails(s4db(b.path()).args(["--remote", &url, "upload"]), 3);
    assert!(
        err.contains("has no index.idx") && err.contains("restore"),
        "{err}"
    );
    assert!(!r.path().join("index.idx").exists());

    let j = json(s4db(c.path()).args(["--json", "--remote", &url, "restore"]));
    assert_eq!(
        (j["segments_downloaded"].as_u64(), j["keys"].as_u64()),
        (Some(2), Some(2)),
        "{j}"
    );
    let j = json(s4db(c.path()).args(["--json", "--remote", &url, "status"]));
    assert_eq!(
        (j["restored"].as_bool(), j["changes"].as_u64()),
        (Some(true), Some(0)),
        "{j}"
    );
    let j = json(s4db(c.path()).args(["--json", "--remote", &url, "upload"]));
    assert_eq!(j["segments_uploaded"], 0, "{j}");
    let j = json(s4db(c.path()).args(["--json", "--remote", &url, "status"]));
    assert_eq!(j["restored"], false, "{j}");
    assert_eq!(
        stdout(s4db_no_dir().args(["--remote", &url, "keys"])),
        "a\nb\n"
    );
    // Restoring a remote that has an index again is refused: download it.
    let err = fails(s4db(b.path()).args(["--remote", &url, "restore"]), 2);
    assert!(err.contains("download"), "{err}");
}

#[test]
fn delete_remote_wants_yes_and_then_empties_the_remote() {
    let (d, r) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = format!("file://{}", r.path().display());
    s4db(d.path()).args(["put", "a", "1"]).assert().success();
    s4db(d.path())
        .args(["--remote", &url, "upload"])
        .assert()
        .success();
    let objects = || {
        fs::read_dir(r.path())
            .unwrap()
            .filter(|e| {
                !e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with('.')
            })
            .count()
    };
    assert_eq!(objects(), 3, "index.idx, a segment, an index run");
    let err = fails(s4db(d.path()).args(["--remote", &url, "delete-remote"]), 2);
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(objects(), 3, "nothing deleted without --yes");
    let j = json(s4db_no_dir().args(["--json", "--remote", &url, "delete-remote", "--yes"]));
    assert_eq!(j["objects_deleted"], 3);
    assert_eq!(j["had_root"], true);
    assert_eq!(objects(), 0);
    // The directory still has its data and can upload it again.
    assert_eq!(stdout(s4db(d.path()).args(["get", "a"])), "1");
    s4db(d.path())
        .args(["--remote", &url, "upload"])
        .assert()
        .success();
    assert_eq!(objects(), 3);
}

#[test]
fn copy_copies_the_committed_remote_and_a_second_run_finds_it_complete() {
    let (d, r, b) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (src, dest) = (
        r.path().to_str().unwrap().to_string(),
        b.path().join("copy").to_str().unwrap().to_string(),
    );
    s4db(d.path()).args(["put", "a", "1"]).assert().success();
    s4db(d.path())
        .args(["--remote", &src, "upload"])
        .assert()
        .success();
    let copy = || json(s4db_no_dir().args(["--json", "--remote", &src, "copy", &dest]));
    let first = copy();
    assert_eq!(first["segments_copied"], 1, "{first}");
    assert_eq!(first["keys"], 1);
    assert_eq!(first["already_complete"], false);
    assert_eq!(copy()["already_complete"], true);
    assert_eq!(
        stdout(s4db_no_dir().args(["--remote", &dest, "get", "a"])),
        "1"
    );
    let err = fails(s4db_no_dir().args(["copy", &dest]), 2);
    assert!(err.contains("--remote"), "{err}");
}

#[test]
fn status_lists_unsynced_changes_and_discard_drops_them() {
    let (d, r) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = r.path().to_str().unwrap().to_string();
    let with_remote = || {
        let mut c = s4db(d.path());
        c.args(["--remote", &url]);
        c
    };
    with_remote().args(["put", "a", "1"]).assert().success();
    with_remote().arg("upload").assert().success();
    with_remote().args(["put", "a", "22"]).assert().success();
    with_remote().args(["put", "b", "3"]).assert().success();
    with_remote().args(["del", "a"]).assert().success();
    let j = json(with_remote().args(["--json", "status"]));
    assert_eq!(
        (
            j["changes"].clone(),
            j["puts"].clone(),
            j["deletes"].clone()
        ),
        (2.into(), 1.into(), 1.into())
    );
    assert_eq!(j["keys"][0]["key"], "a");
    assert_eq!(j["keys"][0]["kind"], "delete");
    assert_eq!(j["keys"][1]["value_len"], 1);
    let err = fails(with_remote().arg("discard"), 2);
    assert!(err.contains("required"), "{err}");
    let j = json(with_remote().args(["--json", "discard", "a"]));
    assert_eq!(j["keys_discarded"], 1);
    assert_eq!(stdout(with_remote().args(["get", "a"])), "1");
    with_remote().args(["discard", "--all"]).assert().success();
    assert_eq!(stdout(s4db(d.path()).arg("keys")), "a\n");
    assert_eq!(json(with_remote().args(["--json", "status"]))["changes"], 0);
}

#[test]
fn compact_is_selective_unless_full_and_refuses_thresholds_outside_1_to_100() {
    let d = tempfile::tempdir().unwrap();
    let db = s4db::blocking::Db::builder(d.path())
        .max_segment_size(4096)
        .open_blocking()
        .unwrap();
    for i in 0..400 {
        db.put(format!("k{i:04}"), [b'v'; 60]).unwrap();
    }
    for i in 0..100 {
        db.put(format!("k{i:04}"), [b'w'; 60]).unwrap();
    }
    db.close().unwrap();
    drop(db);
    for bad in ["0", "101", "x"] {
        s4db(d.path())
            .args(["compact", "--min-dead", bad])
            .assert()
            .code(2);
    }
    s4db(d.path())
        .args(["compact", "--full", "--min-dead", "30"])
        .assert()
        .code(2);
    let json = |args: &[&str]| -> serde_json::Value {
        serde_json::from_str(&stdout(s4db(d.path()).args(args))).unwrap()
    };
    let c = json(&["--json", "compact"]);
    let (before, rewritten) = (
        c["segments_before"].as_u64().unwrap(),
        c["segments_rewritten"].as_u64().unwrap(),
    );
    assert!(rewritten > 0 && rewritten < before, "{c}");
    let c = json(&["--json", "compact", "--full"]);
    assert_eq!(c["segments_rewritten"], c["segments_before"], "{c}");
    assert_eq!(c["records_written"], 400, "{c}");
}

#[test]
fn meta_sets_gets_lists_and_removes_database_metadata_with_stdin_and_stdout() {
    let d = tempfile::tempdir().unwrap();
    s4db(d.path())
        .args(["meta", "set", "schema", "v3"])
        .assert()
        .success();
    s4db(d.path())
        .args(["meta", "set", "blob", "-"])
        .write_stdin(&[0u8, 255][..])
        .assert()
        .success();
    assert_eq!(
        json(s4db(d.path()).args(["--json", "meta"])),
        serde_json::json!({ "blob": { "b64": "AP8=" }, "schema": "v3" })
    );
    let out = s4db(d.path())
        .args(["meta", "get", "blob", "--out", "-"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, [0u8, 255], "exact bytes");
    s4db(d.path())
        .args(["meta", "rm", "blob"])
        .assert()
        .success();
    assert_eq!(stdout(s4db(d.path()).arg("meta")), "schema: v3\n");
    let err = fails(s4db(d.path()).args(["meta", "get", "blob"]), 1);
    assert!(err.contains("blob"), "{err}");
    let big = "x".repeat(70_000);
    let err = fails(s4db(d.path()).args(["meta", "set", "big", &big]), 2);
    assert!(err.contains("64") || err.contains("65536"), "{err}");
}

#[test]
fn put_with_ttl_reads_until_it_expires_then_get_exits_1() {
    let d = tempfile::tempdir().unwrap();
    s4db(d.path())
        .args(["put", "s", "v", "--ttl", "1"])
        .assert()
        .success();
    s4db(d.path()).args(["put", "k", "v"]).assert().success();
    assert_eq!(stdout(s4db(d.path()).args(["get", "s"])), "v");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    fails(s4db(d.path()).args(["get", "s"]), 1);
    assert_eq!(stdout(s4db(d.path()).arg("keys")), "k\n");
    let r = json(s4db(d.path()).args(["--json", "compact", "--full"]));
    assert_eq!(r["records_expired"], 1);
    fails(s4db(d.path()).args(["put", "x", "v", "--ttl", "0"]), 2);
}

#[test]
fn a_key_a_later_shard_put_then_deleted_stays_deleted_after_ingest_and_merge_index() {
    let d = tempfile::tempdir().unwrap();
    let remote = format!("file://{}", d.path().join("remote").display());
    let (s1, s3) = (d.path().join("s1"), d.path().join("s3"));
    s4db(&s1).args(["put", "a1", "one"]).assert().success();
    s4db(&s1).args(["put", "k", "one"]).assert().success();
    // Each command closes the database: the delete's checkpoint merges the
    // run holding a1 into a new base.
    s4db(&s3).args(["put", "a1", "three"]).assert().success();
    s4db(&s3).args(["del", "a1"]).assert().success();
    s4db(&s3).args(["put", "b", "three"]).assert().success();
    for (dir, name) in [(&s1, "s1"), (&s3, "s3")] {
        s4db(dir)
            .args(["--remote", &remote, "upload", "--stage", name])
            .assert()
            .success();
    }
    s4db_no_dir()
        .args(["--remote", &remote, "ingest", "s1", "s3"])
        .assert()
        .success();
    fails(s4db_no_dir().args(["--remote", &remote, "get", "a1"]), 1);
    let merger = d.path().join("merger");
    s4db(&merger)
        .args(["--remote", &remote, "merge-index"])
        .assert()
        .success();
    fails(s4db(&merger).args(["--remote", &remote, "get", "a1"]), 1);
    assert_eq!(
        stdout(s4db(&merger).args(["--remote", &remote, "keys"])),
        "b\nk\n"
    );
}

#[test]
fn upload_stage_then_ingest_then_merge_index_build_one_database_from_shards() {
    let d = tempfile::tempdir().unwrap();
    let remote = format!("file://{}", d.path().join("remote").display());
    for (i, lines) in [
        "{\"key\":\"a\",\"value\":\"1\"}\n{\"key\":\"both\",\"value\":\"from 0\"}\n",
        "{\"key\":\"b\",\"value\":\"2\"}\n{\"key\":\"both\",\"value\":\"from 1\"}\n",
    ]
    .iter()
    .enumerate()
    {
        let shard = d.path().join(format!("shard-{i}"));
        s4db(&shard)
            .args(["import", "-"])
            .write_stdin(*lines)
            .assert()
            .success();
        let r = json(s4db(&shard).args([
            "--json",
            "--remote",
            &remote,
            "upload",
            "--stage",
            &format!("part-{i}"),
        ]));
        assert_eq!(r["keys"], 2);
    }
    // Nothing is committed until the ingest.
    fails(s4db_no_dir().args(["--remote", &remote, "keys"]), 5);
    let r = json(s4db_no_dir().args(["--json", "--remote", &remote, "ingest", "part-1", "part-0"]));
    assert_eq!(
        (r["shards"].as_u64(), r["runs_added"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(
        stdout(s4db_no_dir().args(["--remote", &remote, "get", "both"])),
        "from 0",
        "the name given last wins"
    );
    let merger = d.path().join("merger");
    let r = json(s4db(&merger).args(["--json", "--remote", &remote, "merge-index"]));
    assert_eq!(
        (
            r["runs_before"].as_u64(),
            r["runs_after"].as_u64(),
            r["keys"].as_u64()
        ),
        (Some(2), Some(1), Some(3))
    );
    s4db(&merger)
        .args(["--remote", &remote, "upload"])
        .assert()
        .success();
    assert_eq!(
        stdout(s4db_no_dir().args(["--remote", &remote, "keys"])),
        "a\nb\nboth\n"
    );
    let err = fails(
        s4db_no_dir().args(["--remote", &remote, "ingest", "part-0"]),
        5,
    );
    assert!(err.contains("part-0"), "{err}");
    fails(
        s4db_no_dir().args(["--remote", &remote, "ingest", "bad/name"]),
        2,
    );
}

/// The sizes of the objects under a `file://` remote whose names end with
/// `suffix`, added up, and their count.
fn objects_ending_with(remote: &std::path::Path, suffix: &str) -> (u64, u64) {
    fs::read_dir(remote)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
        .fold((0, 0), |(n, b), e| (n + 1, b + e.metadata().unwrap().len()))
}

#[test]
fn upload_reports_every_object_it_sent_index_runs_included() {
    let d = tempfile::tempdir().unwrap();
    let remote = d.path().join("remote");
    let url = format!("file://{}", remote.display());
    let input: String = (0..2000)
        .map(|i| format!("{{\"key\":\"k{i:05}\",\"value\":\"v{i}\"}}\n"))
        .collect();
    s4db(&d.path().join("db"))
        .args(["import"])
        .write_stdin(input)
        .assert()
        .success();
    let r = json(s4db(&d.path().join("db")).args(["--json", "--remote", &url, "upload"]));
    let (runs, run_bytes) = objects_ending_with(&remote, ".run");
    let (segments, segment_bytes) = objects_ending_with(&remote, ".s4db");
    let root = fs::metadata(remote.join("index.idx")).unwrap().len();
    assert!(runs >= 1 && run_bytes > 0, "the upload sent no run?");
    assert_eq!(r["runs_uploaded"], runs, "{r}");
    assert_eq!(r["run_bytes"], run_bytes, "{r}");
    assert_eq!(r["segments_uploaded"], segments, "{r}");
    assert_eq!(r["segment_bytes"], segment_bytes, "{r}");
    assert_eq!(r["index_bytes"], root, "{r}");
    assert_eq!(r["bytes_sent"], run_bytes + segment_bytes + root, "{r}");
    let text = stdout(s4db(&d.path().join("db")).args(["--remote", &url, "put", "one", "more"]));
    assert_eq!(text, "");
    let text = stdout(s4db(&d.path().join("db")).args(["--remote", &url, "upload"]));
    assert!(
        text.contains("1 index run(s)") && text.contains("bytes in all"),
        "{text}"
    );
}

/// Every file in `dir` with its bytes, sorted by name.
fn files_of(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// `s4db --dir DIR --remote URL`.
fn with_remote(dir: &std::path::Path, url: &str) -> Command {
    let mut c = s4db(dir);
    c.args(["--remote", url]);
    c
}

#[test]
fn a_rebased_copy_opens_offline_and_reads_the_other_writers_keys() {
    let (a, b, _r, url) = common::two_dirs_and_a_remote();
    let remote = |dir: &std::path::Path| with_remote(dir, &url);
    s4db(a.path()).args(["put", "k1", "v1"]).assert().success();
    remote(a.path()).arg("upload").assert().success();
    remote(b.path()).arg("download").assert().success();
    s4db(a.path()).args(["put", "ka", "va"]).assert().success();
    remote(a.path()).arg("upload").assert().success();
    s4db(b.path()).args(["put", "kb", "vb"]).assert().success();
    remote(b.path())
        .args(["upload", "--rebase"])
        .assert()
        .success();

    // Every command works on b without its remote: it is a whole copy.
    for (k, v) in [("k1", "v1"), ("ka", "va"), ("kb", "vb")] {
        assert_eq!(stdout(s4db(b.path()).args(["get", k])), v, "{k}");
    }
    let stat = json(s4db(b.path()).args(["--json", "stat"]));
    assert_eq!(stat["keys"], 3);
    let v = json(s4db(b.path()).args(["--json", "verify"]));
    assert_eq!(
        (v["ok"].clone(), v["keys"].clone()),
        (true.into(), 3.into())
    );
    s4db(b.path()).args(["put", "kc", "vc"]).assert().success();
    s4db(b.path()).arg("compact").assert().success();
    s4db(b.path())
        .args(["compact", "--full"])
        .assert()
        .success();
    for (k, v) in [("k1", "v1"), ("ka", "va"), ("kb", "vb"), ("kc", "vc")] {
        assert_eq!(stdout(s4db(b.path()).args(["get", k])), v, "{k}");
    }
    assert_eq!(json(s4db(b.path()).args(["--json", "verify"]))["ok"], true);
}

#[test]
fn verify_reports_a_missing_segment_without_fetching_it_and_download_fetches_it() {
    let (a, b, _r, url) = common::two_dirs_and_a_remote();
    let remote = |dir: &std::path::Path| with_remote(dir, &url);
    s4db(a.path()).args(["put", "k1", "v1"]).assert().success();
    s4db(a.path()).args(["put", "k2", "v2"]).assert().success();
    remote(a.path()).arg("upload").assert().success();
    remote(b.path()).arg("download").assert().success();
    let segments: Vec<_> = common::segment_files(b.path());
    assert_eq!(segments.len(), 1);
    let name = segments[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    fs::remove_file(&segments[0]).unwrap();
    let before = files_of(b.path());

    let out = remote(b.path())
        .args(["--json", "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["segments_missing"], 1);
    assert!(v["problems"][0].as_str().unwrap().contains(&name), "{v}");
    assert_eq!(files_of(b.path()), before, "verify changed the directory");
    // Offline, the segment is the remote's, not damage: exit 6.
    let err = fails(s4db(b.path()).args(["get", "k1"]), 6);
    assert!(err.contains(&name) && err.contains("--remote"), "{err}");

    let d = json(remote(b.path()).args(["--json", "download"]));
    assert_eq!(d["segments_downloaded"], 1);
    assert_eq!(stdout(s4db(b.path()).args(["get", "k1"])), "v1");
    assert_eq!(json(s4db(b.path()).args(["--json", "verify"]))["ok"], true);
}

#[test]
fn offline_a_directory_reading_through_its_remote_says_which_segment_is_there_with_exit_6() {
    let (a, c, _r, url) = common::two_dirs_and_a_remote();
    s4db(a.path()).args(["put", "k1", "v1"]).assert().success();
    s4db(a.path())
        .args(["--remote", &url, "upload"])
        .assert()
        .success();
    // Opened empty with its remote: only the index is fetched.
    s4db(c.path())
        .args(["--remote", &url, "put", "kc", "vc"])
        .assert()
        .success();
    assert_eq!(common::segment_files(c.path()).len(), 1);

    assert_eq!(stdout(s4db(c.path()).args(["get", "kc"])), "vc");
    let err = fails(s4db(c.path()).args(["get", "k1"]), 6);
    assert!(
        err.contains("is on the remote") && err.contains("--remote URL"),
        "{err}"
    );
    assert_eq!(stdout(s4db(c.path()).arg("keys")), "k1\nkc\n");
    fails(s4db(c.path()).arg("export"), 6);
    fails(s4db(c.path()).arg("compact"), 6);
    assert_eq!(json(s4db(c.path()).args(["--json", "stat"]))["keys"], 2);
    // verify checks what is here and counts, without failing, what the
    // directory leaves on its remote on purpose; with the remote too.
    for args in [
        vec!["--json", "verify"],
        vec!["--json", "--remote", &url, "verify"],
    ] {
        let v = json(s4db(c.path()).args(&args));
        assert_eq!(
            (
                v["ok"].clone(),
                v["segments"].clone(),
                v["segments_missing"].clone()
            ),
            (true.into(), 1.into(), 1.into()),
            "{args:?}: {v}"
        );
    }
    s4db(c.path()).args(["put", "kd", "vd"]).assert().success();
    assert_eq!(
        stdout(s4db(c.path()).args(["--remote", &url, "get", "k1"])),
        "v1"
    );
    // After an upload and a rebase it still reads through on purpose.
    with_remote(c.path(), &url).arg("upload").assert().success();
    s4db(a.path()).args(["put", "k2", "v2"]).assert().success();
    with_remote(a.path(), &url)
        .args(["upload", "--rebase"])
        .assert()
        .success();
    s4db(c.path()).args(["put", "ke", "ve"]).assert().success();
    with_remote(c.path(), &url)
        .args(["upload", "--rebase"])
        .assert()
        .success();
    assert_eq!(json(s4db(c.path()).args(["--json", "verify"]))["ok"], true);
    // A download makes it a whole copy: then a missing segment is a problem.
    with_remote(c.path(), &url)
        .arg("download")
        .assert()
        .success();
    let v = json(s4db(c.path()).args(["--json", "verify"]));
    assert_eq!(
        (v["ok"].clone(), v["segments_missing"].clone()),
        (true.into(), 0.into()),
        "{v}"
    );
    let first = common::segment_files(c.path()).into_iter().next().unwrap();
    fs::remove_file(&first).unwrap();
    let out = s4db(c.path()).args(["--json", "verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["segments_missing"], 1, "{v}");
}
