//! The root of a version-2 index (FORMAT.md §4.8): the small `index.idx`
//! that names the immutable index runs (§4.7) a lookup consults, and carries
//! the segment tables, the obsolete tables and the user metadata.
//!
//! ```text
//! header (96) | segment table | obsolete segments | obsolete runs
//!             | run table | run heads | metadata
//! ```
//! Each run's head (its header, tables and top directory) is copied into the
//! root, so that a reader holding the root reads one page of every run in
//! one round trip, with no request for the runs' own heads.

use bytes::Bytes;

use crate::format::index_file::{
    INDEX_HEADER_LEN, IndexHeader, IndexMeta, OBSOLETE_ENTRY_LEN, ObsoleteEntry, SEGMENT_ENTRY_LEN,
    check_directory, decode_obsolete_table, decode_segment_table, encode_obsolete_table,
    encode_segment_table,
};
use crate::format::le::{u16_at, u32_at, u64_at};
use crate::format::segment_id::SegmentId;

const MAGIC: &[u8; 8] = b"S4DBIDX\0";
/// The root's version; a version-1 `index.idx` is a whole index (§4).
pub(crate) const ROOT_VERSION: u16 = 2;
/// Bytes of one run-table entry.
pub(crate) const RUN_ENTRY_LEN: usize = 40;
/// The largest metadata section, count and checksum included (§4.8).
pub(crate) const METADATA_MAX: usize = 64 << 10;
/// The most runs a root may name (§4.8): lookups consult every one. A
/// writer keeps far fewer (`tiering`); only an ingest of many shards
/// (§10.11) comes near it.
pub(crate) const MAX_RUNS: usize = 1024;

/// One run the root names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunRef {
    /// Its number and writer: the file `index_{number}_{writer}.run`.
    pub id: SegmentId,
    /// Length of the run file.
    pub file_len: u64,
    /// The run file's first [`IndexHeader::head_len`] bytes.
    pub head: Bytes,
}

impl RunRef {
    /// The reference to run `id` whose file holds `bytes` (a checked run).
    pub(crate) fn of(id: SegmentId, bytes: &Bytes) -> RunRef {
        let head = IndexHeader::decode(bytes)
            .map(|h| (h.head_len() as usize).min(bytes.len()))
            .unwrap_or(0);
        RunRef {
            id,
            file_len: bytes.len() as u64,
            head: bytes.slice(..head),
        }
    }
}

/// A decoded root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Root {
    /// Writer, generation, next number, segment table and obsolete segments.
    pub meta: IndexMeta,
    /// Live keys of the whole index.
    pub key_count: u64,
    /// Sum of the lengths of the live keys' records.
    pub live_bytes: u64,
    /// Runs dropped by a commit that a reader of an older root may still
    /// read; garbage collection deletes them after the grace period.
    pub obsolete_runs: Vec<ObsoleteEntry>,
    /// The runs, oldest first: a lookup consults them newest first.
    pub runs: Vec<RunRef>,
    /// The user's metadata, ascending by name.
    pub metadata: Vec<(String, Bytes)>,
    /// Some record of the database may carry an expiry (header flag
    /// [`ROOT_FLAG_MAY_EXPIRE`], FORMAT.md §3.4): a reader that answers from
    /// the index alone (a key count, a membership test) must read the record.
    pub may_expire: bool,
    /// `key_count` and `live_bytes` are upper bounds, not exact (header
    /// flag [`ROOT_FLAG_COUNTS_ESTIMATED`]): an ingest (FORMAT.md §10.11)
    /// added runs whose keys may overlap, and no index write has recounted
    /// since.
    pub counts_estimated: bool,
}

/// Root header flag: records may carry an expiry (FORMAT.md §3.4, §4.8).
pub(crate) const ROOT_FLAG_MAY_EXPIRE: u16 = 0x1;
/// Root header flag: the counts are upper bounds (FORMAT.md §4.8, §10.11).
pub(crate) const ROOT_FLAG_COUNTS_ESTIMATED: u16 = 0x2;
const ROOT_FLAGS: u16 = ROOT_FLAG_MAY_EXPIRE | ROOT_FLAG_COUNTS_ESTIMATED;

impl Root {
    /// A root naming no run under `meta`: no keys, no metadata, no flag.
    pub(crate) fn empty(meta: IndexMeta) -> Root {
        Root {
            meta,
            key_count: 0,
            live_bytes: 0,
            obsolete_runs: Vec::new(),
            runs: Vec::new(),
            metadata: Vec::new(),
            may_expire: false,
            counts_estimated: false,
        }
    }
}

/// Whether `bytes` (at least the first 10 of an `index.idx`) is a root of
/// version 2 rather than a whole index of version 1.
pub(crate) fn is_root(bytes: &[u8]) -> bool {
    bytes.get(..8) == Some(MAGIC.as_slice()) && u16_at(bytes, 8) == Some(ROOT_VERSION)
}

/// The length of the root whose header starts `bytes`, if that header
/// checks: a reader that read a prefix learns how much more to read.
pub(crate) fn root_len(bytes: &[u8]) -> Result<u64, (u64, &'static str)> {
    let h = Header::decode(bytes)?;
    Ok(h.file_len)
}

/// Who wrote an `index.idx` of either version, and its counters:
/// `(writer_id, generation, next_segment_number)`, from a header whose
/// checksum holds (both versions keep them at the same offsets).
///
/// # Errors
/// The offset and what failed, if the header does not check.
pub(crate) fn identity(bytes: &[u8]) -> Result<(u64, u64, u64), (u64, &'static str)> {
    if is_root(bytes) {
        let h = Header::decode(bytes)?;
        Ok((h.writer_id, h.generation, h.next_segment_number))
    } else {
        let h = IndexHeader::decode(bytes)?;
        Ok((h.writer_id, h.generation, h.next_segment_number))
    }
}

/// Checks a run's head: its header (a run file's), tables and top directory.
///
/// # Errors
/// The offset in the head and what failed.
pub(crate) fn check_head(head: &[u8]) -> Result<IndexHeader, (u64, &'static str)> {
    let h = IndexHeader::decode(head)?;
    if head.len() as u64 != h.head_len() {
        return Err((64, "run head length disagrees with its header"));
    }
    let (s0, s1) = h.segment_table_range();
    let (o0, o1) = h.obsolete_table_range();
    if o1 != h.directory_offset {
        return Err((64, "run directory does not follow its tables"));
    }
    let part = |a: u64, b: u64| head.get(a as usize..b as usize);
    decode_segment_table(part(s0, s1).ok_or((s0, "run segment table truncated"))?)
        .map_err(|d| (s0, d))?;
    decode_obsolete_table(part(o0, o1).ok_or((o0, "run obsolete table truncated"))?)
        .map_err(|d| (o0, d))?;
    let (d0, d1) = h.directory_range();
    check_directory(part(d0, d1).ok_or((d0, "run directory truncated"))?, &h)
        .map_err(|d| (d0, d))?;
    if h.page_count == 0 {
        return Err((60, "run page count is zero"));
    }
    Ok(h)
}

/// The fixed 96-byte header of a root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    flags: u16,
    run_count: u32,
    writer_id: u64,
    generation: u64,
    next_segment_number: u64,
    key_count: u64,
    live_bytes: u64,
    segment_count: u32,
    obsolete_count: u32,
    run_table_offset: u64,
    metadata_offset: u64,
    file_len: u64,
    obsolete_run_count: u32,
}

impl Header {
    fn decode(b: &[u8]) -> Result<Self, (u64, &'static str)> {
        let b = b
            .get(..INDEX_HEADER_LEN)
            .ok_or((0, "root header truncated"))?;
        if &b[..8] != MAGIC {
            return Err((0, "not an s4db index (bad magic)"));
        }
        if crc32c::crc32c(&b[..92]) != u32_at(b, 92).unwrap_or_default() {
            return Err((0, "index header checksum mismatch"));
        }
        if u16_at(b, 8) != Some(ROOT_VERSION) {
            return Err((8, "unsupported index version"));
        }
        let flags = u16_at(b, 10).unwrap_or_default();
        if flags & !ROOT_FLAGS != 0 {
            return Err((10, "unknown index flags"));
        }
        let r64 = |o| u64_at(b, o).unwrap_or_default();
        let r32 = |o| u32_at(b, o).unwrap_or_default();
        Ok(Header {
            flags,
            run_count: r32(12),
            writer_id: r64(16),
            generation: r64(24),
            next_segment_number: r64(32),
            key_count: r64(40),
            live_bytes: r64(48),
            segment_count: r32(56),
            obsolete_count: r32(60),
            run_table_offset: r64(64),
            metadata_offset: r64(72),
            file_len: r64(80),
            obsolete_run_count: r32(88),
        })
    }

    fn encode(&self) -> [u8; INDEX_HEADER_LEN] {
        let mut b = [0u8; INDEX_HEADER_LEN];
        b[..8].copy_from_slice(MAGIC);
        b[8..10].copy_from_slice(&ROOT_VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&self.flags.to_le_bytes());
        b[12..16].copy_from_slice(&self.run_count.to_le_bytes());
        b[16..24].copy_from_slice(&self.writer_id.to_le_bytes());
        b[24..32].copy_from_slice(&self.generation.to_le_bytes());
        b[32..40].copy_from_slice(&self.next_segment_number.to_le_bytes());
        b[40..48].copy_from_slice(&self.key_count.to_le_bytes());
        b[48..56].copy_from_slice(&self.live_bytes.to_le_bytes());
        b[56..60].copy_from_slice(&self.segment_count.to_le_bytes());
        b[60..64].copy_from_slice(&self.obsolete_count.to_le_bytes());
        b[64..72].copy_from_slice(&self.run_table_offset.to_le_bytes());
        b[72..80].copy_from_slice(&self.metadata_offset.to_le_bytes());
        b[80..88].copy_from_slice(&self.file_len.to_le_bytes());
        b[88..92].copy_from_slice(&self.obsolete_run_count.to_le_bytes());
        let crc = crc32c::crc32c(&b[..92]);
        b[92..96].copy_from_slice(&crc.to_le_bytes());
        b
    }
}

/// Encodes a root. The caller keeps the limits ([`MAX_RUNS`],
/// [`METADATA_MAX`]); [`decode`] refuses a root that breaks them.
pub(crate) fn encode(root: &Root) -> Vec<u8> {
    let meta = &root.meta;
    let mut out = vec![0u8; INDEX_HEADER_LEN];
    encode_segment_table(&mut out, &meta.segments);
    encode_obsolete_table(&mut out, &meta.obsolete);
    encode_obsolete_table(&mut out, &root.obsolete_runs);
    let run_table_offset = out.len() as u64;
    let table_len = root.runs.len() * RUN_ENTRY_LEN;
    let mut head_offset = run_table_offset + table_len as u64 + 4;
    for r in &root.runs {
        out.extend_from_slice(&r.id.number.to_le_bytes());
        out.extend_from_slice(&r.id.writer.to_le_bytes());
        out.extend_from_slice(&r.file_len.to_le_bytes());
        out.extend_from_slice(&head_offset.to_le_bytes());
        out.extend_from_slice(&(r.head.len() as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        head_offset += r.head.len() as u64;
    }
    let crc = crc32c::crc32c(&out[run_table_offset as usize..]);
    out.extend_from_slice(&crc.to_le_bytes());
    for r in &root.runs {
        out.extend_from_slice(&r.head);
    }
    let metadata_offset = out.len() as u64;
    out.extend_from_slice(&(root.metadata.len() as u32).to_le_bytes());
    for (k, v) in &root.metadata {
        out.extend_from_slice(&(k.len() as u16).to_le_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    let crc = crc32c::crc32c(&out[metadata_offset as usize..]);
    out.extend_from_slice(&crc.to_le_bytes());
    let header = Header {
        flags: if root.may_expire {
            ROOT_FLAG_MAY_EXPIRE
        } else {
            0
        } | if root.counts_estimated {
            ROOT_FLAG_COUNTS_ESTIMATED
        } else {
            0
        },
        run_count: root.runs.len() as u32,
        writer_id: meta.writer_id,
        generation: meta.generation,
        next_segment_number: meta.next_segment_number,
        key_count: root.key_count,
        live_bytes: root.live_bytes,
        segment_count: meta.segments.len() as u32,
        obsolete_count: meta.obsolete.len() as u32,
        run_table_offset,
        metadata_offset,
        file_len: out.len() as u64,
        obsolete_run_count: root.obsolete_runs.len() as u32,
    };
    out[..INDEX_HEADER_LEN].copy_from_slice(&header.encode());
    out
}

/// Decodes and checks a whole root: every table's checksum, every run
/// head's header, tables and directory, and the metadata.
///
/// # Errors
/// The offset of the first failed check and what failed.
pub(crate) fn decode(bytes: &[u8]) -> Result<Root, (u64, &'static str)> {
    let h = Header::decode(bytes)?;
    if h.file_len != bytes.len() as u64 {
        return Err((80, "header says the root has another length"));
    }
    let part = |a: u64, b: u64| {
        bytes
            .get(usize::try_from(a).ok()?..usize::try_from(b).ok()?)
            .filter(|_| a <= b)
    };
    let table = |start: u64, count: u32, width: usize| {
        let end = u64::from(count)
            .checked_mul(width as u64)
            .and_then(|n| n.checked_add(start + 4))
            .filter(|&e| e <= h.file_len);
        end.map(|e| (start, e))
    };
    let (s0, s1) = table(INDEX_HEADER_LEN as u64, h.segment_count, SEGMENT_ENTRY_LEN)
        .ok_or((56, "segment table runs past the end"))?;
    let segments = decode_segment_table(part(s0, s1).unwrap_or_default()).map_err(|d| (s0, d))?;
    let (o0, o1) = table(s1, h.obsolete_count, OBSOLETE_ENTRY_LEN)
        .ok_or((60, "obsolete table runs past the end"))?;
    let obsolete = decode_obsolete_table(part(o0, o1).unwrap_or_default()).map_err(|d| (o0, d))?;
    let (q0, q1) = table(o1, h.obsolete_run_count, OBSOLETE_ENTRY_LEN)
        .ok_or((88, "obsolete run table runs past the end"))?;
    let obsolete_runs =
        decode_obsolete_table(part(q0, q1).unwrap_or_default()).map_err(|d| (q0, d))?;
    if h.run_table_offset != q1 {
        return Err((64, "run table does not follow the obsolete tables"));
    }
    if h.run_count as usize > MAX_RUNS {
        return Err((12, "more runs than a root may name"));
    }
    let (r0, r1) =
        table(q1, h.run_count, RUN_ENTRY_LEN).ok_or((12, "run table runs past the end"))?;
    let run_table = part(r0, r1).unwrap_or_default();
    let n = run_table.len() - 4;
    if crc32c::crc32c(&run_table[..n]) != u32_at(run_table, n).unwrap_or_default() {
        return Err((r0, "run table checksum mismatch"));
    }
    let mut runs = Vec::with_capacity(h.run_count as usize);
    let mut next_head = r1;
    for (i, e) in run_table[..n].chunks_exact(RUN_ENTRY_LEN).enumerate() {
        let at = r0 + (i * RUN_ENTRY_LEN) as u64;
        let r64 = |o| u64_at(e, o).unwrap_or_default();
        let id = SegmentId {
            number: r64(0),
            writer: r64(8),
        };
        let (file_len, head_offset) = (r64(16), r64(24));
        let head_len = u64::from(u32_at(e, 32).unwrap_or_default());
        if head_offset != next_head {
            return Err((at + 24, "run heads are not back to back"));
        }
        let head = part(head_offset, head_offset.saturating_add(head_len))
            .ok_or((at + 32, "run head runs past the end"))?;
        let rh = check_head(head).map_err(|(o, d)| (head_offset + o, d))?;
        if rh.file_len != file_len {
            return Err((at + 16, "run length disagrees with the run's header"));
        }
        if runs.iter().any(|r: &RunRef| r.id == id) {
            return Err((at, "a run is named twice"));
        }
        next_head = head_offset + head_len;
        runs.push(RunRef {
            id,
            file_len,
            head: Bytes::copy_from_slice(head),
        });
    }
    if h.metadata_offset != next_head {
        return Err((72, "metadata does not follow the run heads"));
    }
    let metadata = decode_metadata(part(next_head, h.file_len).unwrap_or_default())
        .map_err(|(o, d)| (next_head + o, d))?;
    Ok(Root {
        meta: IndexMeta {
            writer_id: h.writer_id,
            generation: h.generation,
            next_segment_number: h.next_segment_number,
            segments,
            obsolete,
        },
        key_count: h.key_count,
        live_bytes: h.live_bytes,
        obsolete_runs,
        runs,
        metadata,
        may_expire: h.flags & ROOT_FLAG_MAY_EXPIRE != 0,
        counts_estimated: h.flags & ROOT_FLAG_COUNTS_ESTIMATED != 0,
    })
}

/// The bytes the metadata section of `entries` takes, count and checksum
/// included: at most [`METADATA_MAX`].
pub(crate) fn metadata_len(entries: &[(String, Bytes)]) -> usize {
    entries
        .iter()
        .map(|(k, v)| 2 + k.len() + 4 + v.len())
        .sum::<usize>()
        + 8
}

/// The metadata section: a count, the entries, a CRC32C.
fn decode_metadata(b: &[u8]) -> Result<Vec<(String, Bytes)>, (u64, &'static str)> {
    if b.len() > METADATA_MAX {
        return Err((0, "metadata larger than 64 KiB"));
    }
    let n = b.len().checked_sub(4).ok_or((0, "metadata truncated"))?;
    if crc32c::crc32c(&b[..n]) != u32_at(b, n).unwrap_or_default() {
        return Err((0, "metadata checksum mismatch"));
    }
    let body = &b[..n];
    let count = u32_at(body, 0).ok_or((0, "metadata truncated"))?;
    let mut at = 4usize;
    let mut out: Vec<(String, Bytes)> = Vec::new();
    for _ in 0..count {
        let klen = usize::from(u16_at(body, at).ok_or((at as u64, "metadata truncated"))?);
        let key = body
            .get(at + 2..at + 2 + klen)
            .ok_or((at as u64, "metadata truncated"))?;
        let key =
            std::str::from_utf8(key).map_err(|_| (at as u64, "metadata name is not UTF-8"))?;
        let vat = at + 2 + klen;
        let vlen = u32_at(body, vat).ok_or((vat as u64, "metadata truncated"))? as usize;
        let value = body
            .get(vat + 4..vat + 4 + vlen)
            .ok_or((vat as u64, "metadata truncated"))?;
        if out.last().is_some_and(|(k, _)| k.as_str() >= key) {
            return Err((at as u64, "metadata names not ascending"));
        }
        out.push((key.to_string(), Bytes::copy_from_slice(value)));
        at = vat + 4 + vlen;
    }
    if at != n {
        return Err((at as u64, "metadata has trailing bytes"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::index_file::{self, SEGTAB_SEALED, SegmentEntry};
    use crate::index::loc::Loc;

    fn seg(number: u64) -> SegmentEntry {
        SegmentEntry {
            id: SegmentId { number, writer: 7 },
            indexed_len: 100,
            flags: SEGTAB_SEALED,
        }
    }

    fn meta() -> IndexMeta {
        IndexMeta {
            writer_id: 7,
            generation: 4,
            next_segment_number: 9,
            segments: vec![seg(1), seg(3)],
            obsolete: vec![ObsoleteEntry {
                id: SegmentId {
                    number: 2,
                    writer: 7,
                },
                since: 1_700_000_000,
            }],
        }
    }

    /// A run holding `key` → a record and `gone` → a tombstone.
    fn run_bytes() -> Vec<u8> {
        let run_meta = IndexMeta {
            obsolete: vec![],
            segments: vec![seg(3)],
            ..meta()
        };
        index_file::build(
            &run_meta,
            &[
                (
                    b"key".as_slice(),
                    Loc {
                        segment: 0,
                        offset: 48,
                        len: 30,
                    },
                ),
                (
                    b"gone".as_slice(),
                    Loc {
                        segment: 0,
                        offset: 0,
                        len: 0,
                    },
                ),
            ],
        )
    }

    fn root() -> Root {
        let run = run_bytes();
        let h = IndexHeader::decode(&run).unwrap();
        Root {
            meta: meta(),
            key_count: 1,
            live_bytes: 30,
            obsolete_runs: vec![ObsoleteEntry {
                id: SegmentId {
                    number: 5,
                    writer: 7,
                },
                since: 1_700_000_100,
            }],
            runs: vec![RunRef {
                id: SegmentId {
                    number: 8,
                    writer: 7,
                },
                file_len: run.len() as u64,
                head: Bytes::copy_from_slice(&run[..h.head_len() as usize]),
            }],
            metadata: vec![("schema".into(), Bytes::from_static(b"v3"))],
            may_expire: true,
            counts_estimated: true,
        }
    }

    #[test]
    fn a_root_round_trips_and_names_its_runs() {
        let r = root();
        let bytes = encode(&r);
        assert!(is_root(&bytes));
        assert_eq!(root_len(&bytes), Ok(bytes.len() as u64));
        assert_eq!(decode(&bytes), Ok(r.clone()));
        let h = IndexHeader::decode(&r.runs[0].head).unwrap();
        assert_eq!(h.key_count, 2);
        assert_eq!(h.flags, index_file::RUN_TOMBSTONES);
    }

    #[test]
    fn a_run_without_tombstones_has_no_flag() {
        let bytes = index_file::build(
            &meta(),
            &[(
                b"k".as_slice(),
                Loc {
                    segment: 1,
                    offset: 48,
                    len: 20,
                },
            )],
        );
        assert_eq!(IndexHeader::decode(&bytes).unwrap().flags, 0);
    }

    #[test]
    fn every_flipped_byte_of_a_root_is_caught() {
        let bytes = encode(&root());
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(decode(&b).is_err(), "flip at {i} not caught");
        }
    }

    #[test]
    fn every_truncation_of_a_root_is_refused() {
        let bytes = encode(&root());
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "length {n} accepted");
        }
    }

    #[test]
    fn a_version_1_index_is_not_a_root() {
        let v1 = index_file::build(&meta(), &[]);
        assert!(!is_root(&v1));
        assert!(decode(&v1).is_err());
    }

    #[test]
    fn an_empty_root_is_the_format_test_vector() {
        let r = Root {
            meta: IndexMeta {
                writer_id: 0xab,
                generation: 1,
                next_segment_number: 1,
                segments: vec![],
                obsolete: vec![],
            },
            key_count: 0,
            live_bytes: 0,
            obsolete_runs: vec![],
            runs: vec![],
            metadata: vec![],
            may_expire: false,
            counts_estimated: false,
        };
        let bytes = encode(&r);
        assert_eq!(bytes.len(), 96 + 4 + 4 + 4 + 4 + 8);
        assert_eq!(decode(&bytes), Ok(r));
        // FORMAT.md §9: the empty root's header checksum.
        assert_eq!(u32_at(&bytes, 92), Some(crc32c::crc32c(&bytes[..92])));
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "53344442494458000200000000000000ab000000000000000100000000000000\
             01000000000000000000000000000000000000000000000000000000000000006c\
             00000000000000700000000000000078000000000000000000000040475d3c0000\
             000000000000000000000000000000000000c74b6748",
            "FORMAT.md §9"
        );
    }
}
