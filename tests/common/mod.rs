//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod cli;
mod data;
pub mod kill;
pub mod s3;

#[allow(unused_imports)]
pub use data::{Xorshift, key_for, value_for};

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Two database directories and a `file://` remote in a third (kept alive
/// by the returned guards), with the remote's URL.
pub fn two_dirs_and_a_remote() -> (
    tempfile::TempDir,
    tempfile::TempDir,
    tempfile::TempDir,
    String,
) {
    let (a, b, r) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let url = format!("file://{}", r.path().display());
    (a, b, r, url)
}

/// Copies every file of a live database directory: what a crash at this
/// moment would leave on disk (the page cache survives a process kill).
pub fn crash_image(dir: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The index run files (FORMAT.md §4.7) in `dir`, sorted.
#[allow(dead_code)]
pub fn run_files(dir: &Path) -> Vec<PathBuf> {
    files_named(dir, "index_", ".run")
}

/// Segment files of a directory, in name (= segment) order.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    files_named(dir, "data_", ".s4db")
}

/// The files of `dir` whose names start with `prefix` and end with
/// `suffix`, sorted by name.
fn files_named(dir: &Path, prefix: &str, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with(prefix) && n.ends_with(suffix)
        })
        .collect();
    v.sort();
    v
}

/// Every key and value of a database, read through `iter`.
pub fn contents(db: &s4db::blocking::Db) -> BTreeMap<Vec<u8>, Vec<u8>> {
    db.iter()
        .unwrap()
        .map(|kv| {
            let (k, v) = kv.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
}
