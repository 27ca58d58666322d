//! The `index.idx` file codec (FORMAT.md §4): header, segment table,
//! directory, and building a whole file from entries.
//!
//! ```text
//! header (96 bytes) | segment table | directory | pages
//! ```
//! The header, segment table and directory come first, so that a reader with
//! only byte-range access finds one key with two reads: the first bytes of the
//! file, then the one page that can hold the key.

use crate::format::hash::{fingerprint, key_hash, page_of};
use crate::format::index_page::{self, ENTRY_FIXED, PAGE_OVERHEAD};
use crate::format::le::{u16_at, u32_at, u64_at};
use crate::format::segment_id::SegmentId;
use crate::index::loc::Loc;

/// The index file's name in a database directory and under a remote prefix.
pub const INDEX_FILE_NAME: &str = "index.idx";
pub(crate) const INDEX_HEADER_LEN: usize = 96;
const MAGIC: &[u8; 8] = b"S4DBIDX\0";
const VERSION: u16 = 1;
pub(crate) const SEGMENT_ENTRY_LEN: usize = 32;
pub(crate) const OBSOLETE_ENTRY_LEN: usize = 24;
/// Header flag of a run file (FORMAT.md §4.7): entries of length 0 are
/// tombstones. An `index.idx` of version 1 never sets it.
pub(crate) const RUN_TOMBSTONES: u16 = 0x1;
/// Segment table flag: the segment is sealed and will never change.
pub(crate) const SEGTAB_SEALED: u32 = 0x1;
/// How an index is cut into pages (FORMAT.md §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Pages aim at this many bytes...
    pub target_page: usize,
    /// ...the (top) directory lists at most this many pages or blocks, so that
    /// it fits in the first 64 KiB with the header and tables...
    pub max_entries: usize,
    /// ...and a single-level index lets pages grow to this size before it
    /// uses a second level, whose blocks list [`BLOCK_PAGES`] pages each.
    pub max_one_level_page: usize,
}

/// Pages listed by each block of a two-level directory (a format constant).
pub(crate) const BLOCK_PAGES: usize = 4096;

/// The layout s4db writes.
pub(crate) const LAYOUT: Layout = Layout {
    target_page: 4096,
    max_entries: 6144,
    max_one_level_page: 64 << 10,
};

/// Directory levels and page count for `total` bytes of page entries.
pub(crate) fn choose_layout(total: usize, layout: &Layout) -> (u32, u32) {
    let natural = total.div_ceil(layout.target_page).max(1);
    if natural <= layout.max_entries {
        return (1, natural as u32);
    }
    if total.div_ceil(layout.max_one_level_page) <= layout.max_entries {
        return (1, layout.max_entries as u32);
    }
    let pages = natural.min(layout.max_entries * BLOCK_PAGES);
    (2, u32::try_from(pages).unwrap_or(u32::MAX))
}

/// A decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexHeader {
    pub writer_id: u64,
    pub generation: u64,
    pub next_segment_number: u64,
    pub key_count: u64,
    pub live_bytes: u64,
    pub segment_count: u32,
    pub page_count: u32,
    pub obsolete_count: u32,
    /// 1: the directory lists pages; 2: it lists blocks that list pages.
    pub dir_levels: u32,
    /// [`RUN_TOMBSTONES`] or 0.
    pub flags: u16,
    pub directory_offset: u64,
    pub pages_offset: u64,
    pub file_len: u64,
}

/// One row of the segment table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentEntry {
    pub id: SegmentId,
    /// Bytes of the segment file covered by this index: records past this
    /// offset were written after the index and are replayed on open.
    pub indexed_len: u64,
    pub flags: u32,
}

/// A segment that an index commit dropped but that remote readers holding an
/// older index may still read: garbage collection deletes it once `since`
/// (Unix seconds) is older than the grace period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ObsoleteEntry {
    pub id: SegmentId,
    pub since: u64,
}

/// What an index file says besides its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexMeta {
    pub writer_id: u64,
    pub generation: u64,
    pub next_segment_number: u64,
    pub segments: Vec<SegmentEntry>,
    pub obsolete: Vec<ObsoleteEntry>,
}

impl IndexMeta {
    /// A new database's, by `writer_id`: generation 0, no segment yet.
    pub(crate) fn fresh(writer_id: u64) -> IndexMeta {
        IndexMeta {
            writer_id,
            generation: 0,
            next_segment_number: 1,
            segments: Vec::new(),
            obsolete: Vec::new(),
        }
    }
}

impl IndexHeader {
    /// Decodes and checks the 96-byte header.
    pub(crate) fn decode(b: &[u8]) -> Result<Self, (u64, &'static str)> {
        // The Python s4db's index.idx starts with its version, 1 or 2
        // (FORMAT.md §11); s4db's with the magic.
        if matches!(b.first(), Some(1 | 2)) {
            return Err((
                0,
                "not an s4db index: the Python s4db wrote it; convert the database with `s4db migrate` (or s4db_rs.migrate)",
            ));
        }
        let b = b
            .get(..INDEX_HEADER_LEN)
            .ok_or((0, "index header truncated"))?;
        if &b[..8] != MAGIC {
            return Err((0, "not an s4db index (bad magic)"));
        }
        let crc = u32_at(b, 92).unwrap_or_default();
        if crc32c::crc32c(&b[..92]) != crc {
            return Err((0, "index header checksum mismatch"));
        }
        let flags = u16_at(b, 10).unwrap_or(u16::MAX);
        if u16_at(b, 8) != Some(VERSION) || flags & !RUN_TOMBSTONES != 0 {
            return Err((8, "unsupported index version or flags"));
        }
        let dir_levels = u32_at(b, 12).unwrap_or(0);
        if dir_levels != 1 && dir_levels != 2 {
            return Err((12, "unsupported directory levels"));
        }
        let r64 = |o| u64_at(b, o).unwrap_or_default();
        let r32 = |o| u32_at(b, o).unwrap_or_default();
        Ok(IndexHeader {
            writer_id: r64(16),
            generation: r64(24),
            next_segment_number: r64(32),
            key_count: r64(40),
            live_bytes: r64(48),
            segment_count: r32(56),
            page_count: r32(60),
            directory_offset: r64(64),
            pages_offset: r64(72),
            file_len: r64(80),
            obsolete_count: r32(88),
            dir_levels,
            flags,
        })
    }

    pub(crate) fn encode(&self) -> [u8; INDEX_HEADER_LEN] {
        let mut b = [0u8; INDEX_HEADER_LEN];
        b[..8].copy_from_slice(MAGIC);
        b[8..10].copy_from_slice(&VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&self.flags.to_le_bytes());
        b[12..16].copy_from_slice(&self.dir_levels.to_le_bytes());
        b[16..24].copy_from_slice(&self.writer_id.to_le_bytes());
        b[24..32].copy_from_slice(&self.generation.to_le_bytes());
        b[32..40].copy_from_slice(&self.next_segment_number.to_le_bytes());
        b[40..48].copy_from_slice(&self.key_count.to_le_bytes());
        b[48..56].copy_from_slice(&self.live_bytes.to_le_bytes());
        b[56..60].copy_from_slice(&self.segment_count.to_le_bytes());
        b[60..64].copy_from_slice(&self.page_count.to_le_bytes());
        b[64..72].copy_from_slice(&self.directory_offset.to_le_bytes());
        b[72..80].copy_from_slice(&self.pages_offset.to_le_bytes());
        b[80..88].copy_from_slice(&self.file_len.to_le_bytes());
        b[88..92].copy_from_slice(&self.obsolete_count.to_le_bytes());
        let crc = crc32c::crc32c(&b[..92]);
        b[92..96].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// The byte range of the segment table (entries plus its checksum).
    pub(crate) fn segment_table_range(&self) -> (u64, u64) {
        let start = INDEX_HEADER_LEN as u64;
        (
            start,
            start + u64::from(self.segment_count) * SEGMENT_ENTRY_LEN as u64 + 4,
        )
    }

    /// The byte range of the obsolete-segment table (entries plus checksum).
    pub(crate) fn obsolete_table_range(&self) -> (u64, u64) {
        let start = self.segment_table_range().1;
        (
            start,
            start + u64::from(self.obsolete_count) * OBSOLETE_ENTRY_LEN as u64 + 4,
        )
    }

    /// The byte range of the directory (offsets plus its checksum).
    pub(crate) fn directory_range(&self) -> (u64, u64) {
        let start = self.directory_offset;
        (
            start,
            start + (u64::from(self.directory_entries()) + 1) * 8 + 4,
        )
    }

    /// Length of the part a reader needs before any page (FORMAT.md §4.6):
    /// header, tables and the one-level directory or the block-offset table.
    /// A run's root copies exactly these bytes (§4.8).
    pub(crate) fn head_len(&self) -> u64 {
        self.directory_range().1
    }

    /// Entries of the (top) directory: pages, or blocks of `block_pages` pages.
    pub(crate) fn directory_entries(&self) -> u32 {
        match self.dir_levels {
            2 => self.page_count.div_ceil(BLOCK_PAGES as u32),
            _ => self.page_count,
        }
    }

    /// The pages block `b` of a two-level directory lists.
    pub(crate) fn block_pages(&self, b: u32) -> std::ops::Range<u32> {
        let per = BLOCK_PAGES as u32;
        b * per..((b + 1) * per).min(self.page_count)
    }
}

/// Appends the segment table (§4.3): the entries and their CRC32C.
pub(crate) fn encode_segment_table(out: &mut Vec<u8>, segments: &[SegmentEntry]) {
    let start = out.len();
    for s in segments {
        out.extend_from_slice(&s.id.number.to_le_bytes());
        out.extend_from_slice(&s.id.writer.to_le_bytes());
        out.extend_from_slice(&s.indexed_len.to_le_bytes());
        out.extend_from_slice(&s.flags.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
    }
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Appends an obsolete table (§4.3a, and the root's tables of §4.8): the
/// entries and their CRC32C.
pub(crate) fn encode_obsolete_table(out: &mut Vec<u8>, obsolete: &[ObsoleteEntry]) {
    let start = out.len();
    for o in obsolete {
        out.extend_from_slice(&o.id.number.to_le_bytes());
        out.extend_from_slice(&o.id.writer.to_le_bytes());
        out.extend_from_slice(&o.since.to_le_bytes());
    }
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Decodes the segment table (`bytes` is exactly its range).
pub(crate) fn decode_segment_table(bytes: &[u8]) -> Result<Vec<SegmentEntry>, &'static str> {
    let n = bytes
        .len()
        .checked_sub(4)
        .ok_or("segment table truncated")?;
    if n % SEGMENT_ENTRY_LEN != 0 {
        return Err("segment table length is not a whole number of entries");
    }
    let crc = u32_at(bytes, n).ok_or("segment table truncated")?;
    if crc32c::crc32c(&bytes[..n]) != crc {
        return Err("segment table checksum mismatch");
    }
    let mut out = Vec::with_capacity(n / SEGMENT_ENTRY_LEN);
    for e in bytes[..n].chunks_exact(SEGMENT_ENTRY_LEN) {
        let r64 = |o| u64_at(e, o).unwrap_or_default();
        out.push(SegmentEntry {
            id: SegmentId {
                number: r64(0),
                writer: r64(8),
            },
            indexed_len: r64(16),
            flags: u32_at(e, 24).unwrap_or_default(),
        });
    }
    // In replay order (FORMAT.md §4.3): ascending, except where an ingest
    // placed shards in the order given. Each segment once.
    if out.windows(2).any(|w| w[0].id >= w[1].id) {
        let mut ids: Vec<SegmentId> = out.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err("segment table names a segment twice");
        }
    }
    Ok(out)
}

/// Decodes the obsolete-segment table (`bytes` is exactly its range).
pub(crate) fn decode_obsolete_table(bytes: &[u8]) -> Result<Vec<ObsoleteEntry>, &'static str> {
    let n = bytes
        .len()
        .checked_sub(4)
        .ok_or("obsolete table truncated")?;
    if n % OBSOLETE_ENTRY_LEN != 0 {
        return Err("obsolete table length is not a whole number of entries");
    }
    let crc = u32_at(bytes, n).ok_or("obsolete table truncated")?;
    if crc32c::crc32c(&bytes[..n]) != crc {
        return Err("obsolete table checksum mismatch");
    }
    Ok(bytes[..n]
        .chunks_exact(OBSOLETE_ENTRY_LEN)
        .map(|e| {
            let r64 = |o| u64_at(e, o).unwrap_or_default();
            ObsoleteEntry {
                id: SegmentId {
                    number: r64(0),
                    writer: r64(8),
                },
                since: r64(16),
            }
        })
        .collect())
}

/// Decodes the directory (`bytes` is exactly its range): `page_count + 1`
/// ascending absolute offsets.
pub(crate) fn check_directory(bytes: &[u8], h: &IndexHeader) -> Result<Vec<u64>, &'static str> {
    match h.dir_levels {
        1 => offsets_table(
            bytes,
            h.page_count as usize,
            Some(h.pages_offset),
            Some(h.file_len),
            PAGE_OVERHEAD as u64,
        ),
        _ => {
            let (_, l1_end) = h.directory_range();
            // A block is at least two offsets and a checksum.
            offsets_table(
                bytes,
                h.directory_entries() as usize,
                Some(l1_end),
                Some(h.pages_offset),
                20,
            )
        }
    }
}

/// Checks a table of `count + 1` ascending `u64` offsets and its CRC32C:
/// the first is `first` (if given), the last `last` (if given), and they
/// grow by at least `min_step`.
pub(crate) fn offsets_table(
    bytes: &[u8],
    count: usize,
    first: Option<u64>,
    last: Option<u64>,
    min_step: u64,
) -> Result<Vec<u64>, &'static str> {
    let n = bytes.len().checked_sub(4).ok_or("directory truncated")?;
    if n != (count + 1) * 8 {
        return Err("directory has the wrong size");
    }
    let crc = u32_at(bytes, n).ok_or("directory truncated")?;
    if crc32c::crc32c(&bytes[..n]) != crc {
        return Err("directory checksum mismatch");
    }
    let offsets: Vec<u64> = (0..=count)
        .map(|i| u64_at(bytes, 8 * i).unwrap_or(0))
        .collect();
    if first.is_some_and(|f| offsets[0] != f) {
        return Err("directory does not start where the next part begins");
    }
    if offsets
        .windows(2)
        .any(|w| w[1] < w[0].saturating_add(min_step))
    {
        return Err("directory offsets not ascending");
    }
    if last.is_some_and(|l| offsets[count] != l) {
        return Err("directory does not end where the next part begins");
    }
    Ok(offsets)
}

/// Every page's offset (`page_count + 1` of them), from the directory of
/// either level, checked. `bytes` is the whole file.
pub(crate) fn page_offsets(bytes: &[u8], h: &IndexHeader) -> Result<Vec<u64>, (u64, &'static str)> {
    let (d0, d1) = h.directory_range();
    let table = bytes
        .get(d0 as usize..d1 as usize)
        .ok_or((d0, "directory truncated"))?;
    let top = check_directory(table, h).map_err(|d| (d0, d))?;
    if h.dir_levels == 1 {
        return Ok(top);
    }
    // Grown block by block (each checked against the file), never reserved
    // from the header's claimed page count.
    let mut all = Vec::new();
    let mut prev_end = h.pages_offset;
    for b in 0..h.directory_entries() {
        let (s, e) = (top[b as usize], top[b as usize + 1]);
        let block = bytes
            .get(s as usize..e as usize)
            .ok_or((s, "directory block truncated"))?;
        let pages = h.block_pages(b);
        let last = (b + 1 == h.directory_entries()).then_some(h.file_len);
        let offs = offsets_table(
            block,
            pages.len(),
            Some(prev_end),
            last,
            PAGE_OVERHEAD as u64,
        )
        .map_err(|d| (s, d))?;
        prev_end = offs[pages.len()];
        all.extend_from_slice(&offs[..pages.len()]);
    }
    all.push(prev_end);
    Ok(all)
}

/// Builds a complete index file. `entries` holds each live key once.
pub(crate) fn build(meta: &IndexMeta, entries: &[(&[u8], Loc)]) -> Vec<u8> {
    build_with(meta, entries, &LAYOUT)
}

/// [`build`] with a given layout (tests use small ones).
pub(crate) fn build_with(meta: &IndexMeta, entries: &[(&[u8], Loc)], layout: &Layout) -> Vec<u8> {
    let key_bytes: usize = entries.iter().map(|(k, _)| k.len()).sum();
    let (dir_levels, page_count) = choose_layout(entries.len() * ENTRY_FIXED + key_bytes, layout);
    let live_bytes: u64 = entries.iter().map(|(_, l)| u64::from(l.len)).sum();

    // Bucket by page with a counting sort, then order each page by (fp, key).
    let mut hashed: Vec<(u32, u32, usize)> = entries
        .iter()
        .enumerate()
        .map(|(i, (k, _))| {
            let h = key_hash(k);
            (page_of(h, page_count), fingerprint(h), i)
        })
        .collect();
    let mut starts = vec![0usize; page_count as usize + 1];
    for (p, _, _) in &hashed {
        starts[*p as usize + 1] += 1;
    }
    for i in 0..page_count as usize {
        starts[i + 1] += starts[i];
    }
    let mut order = vec![(0u32, 0usize); hashed.len()];
    let mut fill = starts.clone();
    for (p, fp, i) in hashed.drain(..) {
        order[fill[p as usize]] = (fp, i);
        fill[p as usize] += 1;
    }

    let seg_len = meta.segments.len() * SEGMENT_ENTRY_LEN + 4;
    let obs_len = meta.obsolete.len() * OBSOLETE_ENTRY_LEN + 4;
    let directory_offset = (INDEX_HEADER_LEN + seg_len + obs_len) as u64;
    // Level 1: one table of page offsets. Level 2: a table of block offsets,
    // then one table of page offsets per block of `block_pages` pages.
    let block_pages = if dir_levels == 2 {
        BLOCK_PAGES
    } else {
        page_count as usize
    };
    let blocks = (page_count as usize).div_ceil(block_pages.max(1));
    let block_lens: Vec<usize> = (0..blocks)
        .map(|b| (((b + 1) * block_pages).min(page_count as usize) - b * block_pages + 1) * 8 + 4)
        .collect();
    let dir_len = if dir_levels == 2 {
        (blocks + 1) * 8 + 4
    } else {
        block_lens[0]
    };
    let tables_len = if dir_levels == 2 {
        dir_len + block_lens.iter().sum::<usize>()
    } else {
        dir_len
    };
    let pages_offset = directory_offset + tables_len as u64;
    let mut out = Vec::with_capacity(
        pages_offset as usize + entries.len() * ENTRY_FIXED + key_bytes + page_count as usize * 8,
    );
    out.resize(INDEX_HEADER_LEN, 0);
    encode_segment_table(&mut out, &meta.segments);
    encode_obsolete_table(&mut out, &meta.obsolete);
    let dir_start = out.len();
    out.resize(dir_start + tables_len, 0);

    let mut page: Vec<(u32, &[u8], Loc)> = Vec::new();
    let mut offsets = Vec::with_capacity(page_count as usize + 1);
    for p in 0..page_count as usize {
        offsets.push(out.len() as u64);
        page.clear();
        page.extend(order[starts[p]..starts[p + 1]].iter().map(|&(fp, i)| {
            let (k, l) = entries[i];
            (fp, k, l)
        }));
        page.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        index_page::encode(&mut out, &page);
    }
    offsets.push(out.len() as u64);
    let write_table = |out: &mut Vec<u8>, at: usize, values: &[u64]| {
        for (i, o) in values.iter().enumerate() {
            out[at + 8 * i..at + 8 * i + 8].copy_from_slice(&o.to_le_bytes());
        }
        let end = at + 8 * values.len();
        let crc = crc32c::crc32c(&out[at..end]);
        out[end..end + 4].copy_from_slice(&crc.to_le_bytes());
    };
    if dir_levels == 2 {
        let mut block_offsets = Vec::with_capacity(blocks + 1);
        let mut at = dir_start + dir_len;
        for (b, len) in block_lens.iter().enumerate() {
            block_offsets.push(at as u64);
            let pages = b * block_pages..((b + 1) * block_pages).min(page_count as usize);
            write_table(&mut out, at, &offsets[pages.start..=pages.end]);
            at += len;
        }
        block_offsets.push(at as u64);
        write_table(&mut out, dir_start, &block_offsets);
    } else {
        write_table(&mut out, dir_start, &offsets);
    }

    let header = IndexHeader {
        writer_id: meta.writer_id,
        generation: meta.generation,
        next_segment_number: meta.next_segment_number,
        key_count: entries.len() as u64,
        live_bytes,
        segment_count: meta.segments.len() as u32,
        page_count,
        obsolete_count: meta.obsolete.len() as u32,
        dir_levels,
        flags: if entries.iter().any(|(_, l)| l.len == 0) {
            RUN_TOMBSTONES
        } else {
            0
        },
        directory_offset,
        pages_offset,
        file_len: out.len() as u64,
    };
    out[..INDEX_HEADER_LEN].copy_from_slice(&header.encode());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-key index of FORMAT.md's test vectors.
    pub(crate) fn vector() -> Vec<u8> {
        let meta = IndexMeta {
            writer_id: 0x0102_0304_0506_0708,
            generation: 1,
            next_segment_number: 2,
            segments: vec![SegmentEntry {
                id: SegmentId {
                    number: 1,
                    writer: 0x0102_0304_0506_0708,
                },
                indexed_len: 62,
                flags: 0,
            }],
            obsolete: Vec::new(),
        };
        build(
            &meta,
            &[(
                b"k".as_slice(),
                Loc {
                    segment: 0,
                    offset: 48,
                    len: 14,
                },
            )],
        )
    }

    #[test]
    fn a_python_s4db_index_is_refused_with_a_pointer_to_migrate() {
        for version in [1u8, 2] {
            let mut py = vec![version, 0, 0, 0, 1, 0, 0, 0, 0];
            py.resize(120, 0);
            let (at, why) = IndexHeader::decode(&py).unwrap_err();
            assert_eq!(at, 0);
            assert!(why.contains("s4db migrate"), "{why}");
        }
        let (_, why) = IndexHeader::decode(b"XXXX").unwrap_err();
        assert!(!why.contains("migrate"), "{why}");
    }

    /// FORMAT.md §9 prints these bytes; a change here must change it too.
    #[test]
    fn one_key_index_matches_the_format_test_vector() {
        let hex: String = vector().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            concat!(
                "53344442494458000100000001000000",
                "08070605040302010100000000000000",
                "02000000000000000100000000000000",
                "0e000000000000000100000001000000",
                "88000000000000009c00000000000000",
                "b9000000000000000000000082a9e3bd",
                "01000000000000000807060504030201",
                "3e000000000000000000000000000000",
                "48509709000000009c00000000000000",
                "b900000000000000d5f7f61c01000000",
                "1d88da4f00000000300000000e000000",
                "010000006bbb164845",
            )
        );
    }
}
