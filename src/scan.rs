//! The segment scanner: walks the records in a byte range of a segment and
//! hands out whole batches (FORMAT.md §3.3, §6).
//!
//! A batch is a run of records whose last one lacks `FLAG_BATCH_CONT`; a
//! plain put is a batch of one. The scanner only ever reports complete
//! batches, so a caller that applies what it is given keeps batches whole or
//! absent. Pure over a byte slice: it never panics, whatever the bytes.

use crate::record::{self, RecordError, RecordView};

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
    /// Resync mode: damaged ranges that were skipped (batches containing them
    /// are dropped whole).
    pub skipped: Vec<Skipped>,
    /// Records delivered in complete batches.
    pub records: u64,
}

/// One record of a batch with its absolute offset.
pub(crate) type Item<'a> = (u64, RecordView<'a>);

/// Scans `buf`, whose first byte sits at absolute offset `base`.
///
/// Without `resync`, the scan stops at the first bad record (or at the end
/// with an unfinished batch) and reports it as the tail. With `resync`, a bad
/// record starts a search for the next offset where a valid record begins;
/// the damaged range is reported in `skipped`, and only a damaged range that
/// reaches the end becomes the tail.
///
/// `on_batch` receives each complete batch in order; its error aborts the scan.
pub(crate) fn scan<E>(
    buf: &[u8],
    base: u64,
    resync: bool,
    mut on_batch: impl FnMut(&[Item<'_>]) -> Result<(), E>,
) -> Result<Scan, E> {
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
                    on_batch(&pending)?;
                    out.records += pending.len() as u64;
                    pending.clear();
                    out.good_end = base + pos as u64;
                }
            }
            Err(err) => {
                let bad_at = pos;
                let batch_start = pending.first().map_or(pos, |(o, _)| (*o - base) as usize);
                pending.clear();
                let reason = describe(err);
                match resync.then(|| next_valid(buf, bad_at + 1)).flatten() {
                    Some(next) => {
                        out.skipped.push(Skipped {
                            start: base + batch_start as u64,
                            end: base + next as u64,
                            reason,
                        });
                        pos = next;
                    }
                    None => {
                        out.tail = Some(Tail {
                            offset: base + batch_start as u64,
                            reason,
                        });
                        return Ok(out);
                    }
                }
            }
        }
    }
    if let Some((start, _)) = pending.first() {
        out.tail = Some(Tail {
            offset: *start,
            reason: "batch not finished (its last record is missing)".into(),
        });
    }
    Ok(out)
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
                record::encode(&mut out, k.as_bytes(), v.map(str::as_bytes), cont, &mut enc);
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
