//! The segment scanner: walks the records in a byte range of a segment and
//! hands out whole batches (FORMAT.md §3.3, §6).
//!
//! A batch is a run of records whose last one lacks `FLAG_BATCH_CONT`; a
//! plain put is a batch of one. In [`Mode::Strict`] the scanner only ever
//! reports complete batches, so a caller that applies what it is given keeps
//! batches whole or absent. In [`Mode::Repair`] it keeps every record whose
//! own checksum is good, also those of a batch that damage broke (FORMAT.md
//! §6.3). Pure over a byte slice: it never panics, whatever the bytes.

use crate::format::record::{self, RecordError, RecordView};

/// Where the scan stopped early, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tail {
    /// Absolute offset of the first byte that is not part of a complete batch.
    pub offset: u64,
    pub reason: String,
}

/// A damaged range skipped in resync (repair) mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skipped {
    pub start: u64,
    pub end: u64,
    pub reason: String,
}

/// The result of scanning a range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Absolute offset just past the last complete batch.
    pub good_end: u64,
    /// Bytes from here to the end of the range are not complete, valid
    /// batches. `None` when the range ended on a batch boundary.
    pub tail: Option<Tail>,
    /// Repair mode: damaged ranges that were skipped (the good records
    /// around them are delivered).
    pub skipped: Vec<Skipped>,
    /// Records delivered.
    pub records: u64,
}

/// One record of a batch with its absolute offset.
pub(crate) type Item<'a> = (u64, RecordView<'a>);

/// How a scan treats a bad record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Stop at the first bad record or unfinished batch: the tail.
    Strict,
    /// Resynchronise record by record after a bad record, reporting the
    /// damaged bytes in `skipped`. The good records of a batch the damage
    /// broke are delivered too (as a batch of their own on each side of the
    /// damage). Damage that reaches the end of the range is the tail; the good
    /// records before it in its batch are delivered only when `sealed` (a
    /// sealed segment cannot end in a torn write, so they are not the start
    /// of an unacknowledged batch).
    Repair {
        /// The range is a sealed segment's.
        sealed: bool,
    },
}

/// Scans `buf`, whose first byte sits at absolute offset `base`: strictly,
/// or with `resync` as [`Mode::Repair`] of a segment that may end in a torn
/// write. See [`scan_with`].
pub(crate) fn scan<E>(
    buf: &[u8],
    base: u64,
    resync: bool,
    on_batch: impl FnMut(&[Item<'_>]) -> Result<(), E>,
) -> Result<Scan, E> {
    let mode = if resync {
        Mode::Repair { sealed: false }
    } else {
        Mode::Strict
    };
    scan_with(buf, base, mode, on_batch)
}

/// Scans `buf`, whose first byte sits at absolute offset `base`.
///
/// In [`Mode::Strict`], the scan stops at the first bad record (or at the
/// end with an unfinished batch) and reports it as the tail. In
/// [`Mode::Repair`], a bad record starts a search for the next offset where a
/// valid record begins; the damaged range is reported in `skipped`, and only
/// a damaged range that reaches the end becomes the tail.
///
/// `on_batch` receives each batch in order; its error aborts the scan.
pub(crate) fn scan_with<E>(
    buf: &[u8],
    base: u64,
    mode: Mode,
    mut on_batch: impl FnMut(&[Item<'_>]) -> Result<(), E>,
) -> Result<Scan, E> {
    let (resync, sealed) = match mode {
        Mode::Strict => (false, false),
        Mode::Repair { sealed } => (true, sealed),
    };
    let mut out = Scan {
        good_end: base,
        ..Scan::default()
    };
    let mut pending: Vec<Item<'_>> = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        match record::decode(&buf[pos..]) {
            Ok(rec) => {
                let cont = rec.batch_continues();
                pending.push((base + pos as u64, rec));
                pos += rec.len;
                if !cont {
                    deliver(&mut pending, &mut out, &mut on_batch)?;
                    out.good_end = base + pos as u64;
                }
            }
            Err(err) => {
                let bad_at = pos;
                let batch_start = pending.first().map_or(pos, |(o, _)| (*o - base) as usize);
                let reason = describe(err);
                match resync.then(|| next_valid(buf, bad_at + 1)).flatten() {
                    Some(next) => {
                        // Damage in the middle: the good records before it
                        // are kept, and so are those after it.
                        if !pending.is_empty() {
                            deliver(&mut pending, &mut out, &mut on_batch)?;
                        }
                        out.skipped.push(Skipped {
                            start: base + bad_at as u64,
                            end: base + next as u64,
                            reason,
                        });
                        pos = next;
                    }
                    None => {
                        let salvage = sealed && !pending.is_empty();
                        if salvage {
                            deliver(&mut pending, &mut out, &mut on_batch)?;
                            out.good_end = base + bad_at as u64;
                        }
                        out.tail = Some(Tail {
                            offset: base + if salvage { bad_at } else { batch_start } as u64,
                            reason,
                        });
                        return Ok(out);
                    }
                }
            }
        }
    }
    if let Some((start, _)) = pending.first() {
        if sealed {
            // A sealed segment's last batch lacks its end: damage, not a torn
            // write; its records are good.
            let start = *start;
            deliver(&mut pending, &mut out, &mut on_batch)?;
            out.good_end = base + pos as u64;
            out.skipped.push(Skipped {
                start,
                end: base + pos as u64,
                reason: "batch not finished (its last record is missing); its records were kept"
                    .into(),
            });
            return Ok(out);
        }
        out.tail = Some(Tail {
            offset: *start,
            reason: "batch not finished (its last record is missing)".into(),
        });
    }
    Ok(out)
}

/// Hands `pending` (a batch, or the good records of a broken one) to
/// `on_batch`, counts its records and empties it.
fn deliver<'a, E>(
    pending: &mut Vec<Item<'a>>,
    out: &mut Scan,
    on_batch: &mut impl FnMut(&[Item<'_>]) -> Result<(), E>,
) -> Result<(), E> {
    on_batch(pending)?;
    out.records += pending.len() as u64;
    pending.clear();
    Ok(())
}

fn describe(err: RecordError) -> String {
    err.describe()
}

/// The first offset at or after `from` where a valid record starts.
fn next_valid(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf.len()).find(|&p| record::decode(&buf[p..]).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    fn build(batches: &[&[(&str, Option<&str>)]]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = snap::raw::Encoder::new();
        for batch in batches {
            for (i, (k, v)) in batch.iter().enumerate() {
                let cont = i + 1 < batch.len();
                record::encode(
                    &mut out,
                    k.as_bytes(),
                    v.map(str::as_bytes),
                    None,
                    cont,
                    &mut enc,
                );
            }
        }
        out
    }

    fn keys_of(buf: &[u8], resync: bool) -> (Vec<Vec<String>>, Scan) {
        let mut got = Vec::new();
        let s = scan::<Infallible>(buf, 100, resync, |b| {
            got.push(
                b.iter()
                    .map(|(_, r)| String::from_utf8_lossy(r.key).into_owned())
                    .collect(),
            );
            Ok(())
        })
        .unwrap();
        (got, s)
    }

    #[test]
    fn delivers_batches_whole() {
        let buf = build(&[&[("a", Some("1"))], &[("b", Some("2")), ("c", None)]]);
        let (got, s) = keys_of(&buf, false);
        assert_eq!(got, vec![vec!["a"], vec!["b", "c"]]);
        assert_eq!(s.good_end, 100 + buf.len() as u64);
        assert_eq!(s.tail, None);
        assert_eq!(s.records, 3);
    }

    #[test]
    fn every_cut_keeps_a_prefix_of_whole_batches() {
        let batches: &[&[(&str, Option<&str>)]] = &[
            &[("a", Some("1"))],
            &[("b", Some("2")), ("c", Some("3")), ("d", None)],
            &[("e", Some("5"))],
        ];
        let buf = build(batches);
        for cut in 0..=buf.len() {
            let (got, s) = keys_of(&buf[..cut], false);
            let flat: Vec<&str> = batches.iter().map(|b| b[0].0).collect();
            assert!(got.len() <= flat.len());
            for (g, want) in got.iter().zip(batches.iter()) {
                assert_eq!(g.len(), want.len(), "batch split at cut {cut}");
            }
            assert!(s.good_end <= 100 + cut as u64);
            assert_eq!(s.tail.is_none(), s.good_end == 100 + cut as u64);
        }
    }

    #[test]
    fn resync_skips_a_damaged_record_and_keeps_the_rest() {
        let buf = build(&[
            &[("a", Some("1"))],
            &[("b", Some("2"))],
            &[("c", Some("3"))],
        ]);
        let mut bad = buf.clone();
        let second = record::claimed_len(&buf).unwrap();
        bad[second + 13] ^= 0x40; // inside b's key
        let (strict, s) = keys_of(&bad, false);
        assert_eq!(strict, vec![vec!["a"]]);
        assert_eq!(s.tail.unwrap().offset, 100 + second as u64);
        let (got, s) = keys_of(&bad, true);
        assert_eq!(got, vec![vec!["a"], vec!["c"]]);
        assert_eq!(s.skipped.len(), 1);
        assert_eq!(s.skipped[0].start, 100 + second as u64);
        assert_eq!(s.tail, None);
    }

    #[test]
    fn repair_keeps_every_good_record_of_a_damaged_batch() {
        let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
        let batch: Vec<(&str, Option<&str>)> =
            keys.iter().map(|k| (k.as_str(), Some("v"))).collect();
        let buf = build(&[&batch, &[("z", Some("1"))]]);
        let mut offsets = vec![0usize];
        while offsets.len() < 11 {
            let at = *offsets.last().unwrap();
            offsets.push(at + record::claimed_len(&buf[at..]).unwrap());
        }
        let mut bad = buf.clone();
        bad[offsets[4] + 12] ^= 0x40; // inside k4's key
        let (got, s) = keys_of(&bad, true);
        let flat: Vec<String> = got.into_iter().flatten().collect();
        let want: Vec<String> = ["k0", "k1", "k2", "k3", "k5", "k6", "k7", "k8", "k9", "z"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(flat, want);
        assert_eq!(s.skipped.len(), 1);
        assert_eq!(
            (s.skipped[0].start, s.skipped[0].end),
            (100 + offsets[4] as u64, 100 + offsets[5] as u64),
            "exactly the damaged record is reported"
        );
    }

    #[test]
    fn repair_of_a_sealed_segment_keeps_the_good_records_before_damage_at_its_end() {
        let buf = build(&[&[("a", Some("1")), ("b", Some("2")), ("c", Some("3"))]]);
        let last = record::claimed_len(&buf).unwrap() * 2;
        let mut bad = buf.clone();
        bad[last + 12] ^= 0x40; // inside c's key, the last record
        let mut got = Vec::new();
        let s = scan_with::<Infallible>(&bad, 100, Mode::Repair { sealed: true }, |b| {
            got.extend(b.iter().map(|(_, r)| r.key.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(got, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(s.tail.unwrap().offset, 100 + last as u64);
        // Not sealed: the same bytes may be a torn write; nothing of it is kept.
        let (got, _) = keys_of(&bad, true);
        assert!(got.is_empty());
    }

    #[test]
    fn garbage_never_panics() {
        let mut x = 0x1234_5678u32;
        for len in 0..300 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = keys_of(&buf, true);
            let _ = keys_of(&buf, false);
        }
    }
}
