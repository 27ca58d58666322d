//! Entry points for the fuzz targets in `fuzz/` (not a stable API).
//!
//! Each takes arbitrary bytes and drives one decoder the way s4db does on
//! untrusted input. None may panic, and none may allocate more than the
//! input justifies (the fuzz script runs them under a small malloc limit).

use std::convert::Infallible;

use bytes::Bytes;

use crate::format::hash::{fingerprint, key_hash};
use crate::format::index_file::{
    IndexHeader, check_directory, decode_obsolete_table, decode_segment_table,
};
use crate::format::index_page::PageView;
use crate::format::{record, root, scan};
use crate::index::base::BaseIndex;

/// The record decoder, and decompression of what it accepts.
pub fn record(data: &[u8]) {
    if let Ok(r) = record::decode(data) {
        let _ = r.value();
    }
}

/// The segment scanner, strict and resynchronising.
pub fn scan(data: &[u8]) {
    for resync in [false, true] {
        let _ = scan::scan::<Infallible>(data, 48, resync, |batch| {
            for (_, r) in batch {
                let _ = r.value();
            }
            Ok(())
        });
    }
}

/// The `index.idx` decoder: header and tables as the byte-range reader
/// checks them, and the whole-file decode, lookups and iteration.
pub fn index(data: &[u8]) {
    if let Ok(h) = IndexHeader::decode(data) {
        let part = |(a, b): (u64, u64)| data.get(a as usize..b as usize);
        if let Some(t) = part(h.segment_table_range()) {
            let _ = decode_segment_table(t);
        }
        if let Some(t) = part(h.obsolete_table_range()) {
            let _ = decode_obsolete_table(t);
        }
        if let Some(t) = part(h.directory_range()) {
            let _ = check_directory(t, &h);
        }
    }
    if let Ok(b) = BaseIndex::decode(Bytes::copy_from_slice(data)) {
        let mut n = 0u64;
        let _ = b.for_each(|k, _| {
            n += 1;
            let _ = b.lookup(k, key_hash(k));
        });
        let _ = b.lookup(b"key00000001", key_hash(b"key00000001"));
    }
    // As a local open meets it: pages are checked on first use.
    if let Ok(b) = BaseIndex::decode_lazy(Bytes::copy_from_slice(data), false) {
        let _ = b.lookup(b"key00000001", key_hash(b"key00000001"));
        let _ = b.for_each(|k, _| {
            let _ = b.lookup(k, key_hash(k));
        });
        let _ = b.check_all();
    }
}

/// The version-2 root decoder (FORMAT.md §4.8), and the checks of every
/// run head it accepts.
pub fn root(data: &[u8]) {
    let _ = root::identity(data);
    let _ = root::root_len(data);
    if let Ok(r) = root::decode(data) {
        for run in &r.runs {
            let _ = root::check_head(&run.head);
        }
        // What a writer does with a root it read: encode it again.
        let again = root::encode(&r);
        assert_eq!(root::decode(&again).ok(), Some(r), "a root round-trips");
    }
}

/// Page lookup on untrusted bytes: the first byte says how long the key is.
pub fn page(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (key, page) = rest.split_at((n as usize).min(rest.len()));
    let fp = fingerprint(key_hash(key));
    for check in [true, false] {
        if let Ok(p) = PageView::parse(page, check) {
            let _ = p.lookup(key, fp);
        }
    }
    // The unchecked view must not panic either, whatever the bytes.
    let _ = PageView::checked_before(page).lookup(key, fp);
}

/// The Python s4db's decoders, as a migration meets them: its `index.idx`,
/// and a data file replayed record by record (or one record, when the bytes
/// do not start with a data file header).
pub fn python_s4db(data: &[u8]) {
    use crate::migrate::pyformat::{PY_HEADER_LEN, check_header, parse_index, parse_record};
    let _ = parse_index(data);
    if !check_header(data) {
        let _ = parse_record(data);
        return;
    }
    let mut at = PY_HEADER_LEN as usize;
    while let Some(rest) = data.get(at..).filter(|r| !r.is_empty()) {
        match parse_record(rest) {
            Ok(r) => at += r.len as usize,
            Err(_) => break,
        }
    }
}
