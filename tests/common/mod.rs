//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

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

/// Segment files of a directory, in name (= segment) order.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("data_") && n.ends_with(".s4db")
        })
        .collect();
    v.sort();
    v
}

/// The benchmark's value shape: even i compressible text, odd i random hex.
pub fn value_for(i: u64, len: usize) -> Vec<u8> {
    if i.is_multiple_of(2) {
        let text = format!("value {i} of the quick brown fox jumps over the lazy dog ");
        text.bytes().cycle().take(len).collect()
    } else {
        let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b"0123456789abcdef"[(x & 15) as usize]
            })
            .collect()
    }
}

pub fn key_for(i: u64) -> String {
    format!("key{i:08}")
}
