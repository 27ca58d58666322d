//! The base index: a loaded, fully checked `index.idx`, kept in memory as the
//! file's own bytes and searched in place.
//!
//! Keeping the file's bytes (about 20 bytes per key plus the key) instead of
//! inserting every key into a hash map is what makes open fast: loading is one
//! read and one checksum pass, with no per-key allocation. Writes made since
//! the file was written live in the [`Delta`](crate::index::delta::Delta).

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::hash::{fingerprint, key_hash, page_of};
use crate::format::index_file::{
    self, INDEX_FILE_NAME, IndexHeader, IndexMeta, ObsoleteEntry, SegmentEntry,
    decode_obsolete_table, decode_segment_table, page_offsets,
};
use crate::format::index_page::PageView;
use crate::index::loc::Loc;

/// A checked, immutable index.
#[derive(Debug)]
pub(crate) struct BaseIndex {
    bytes: Bytes,
    header: IndexHeader,
    segments: Vec<SegmentEntry>,
    obsolete: Vec<ObsoleteEntry>,
    /// Offset of every page and the end of the last (`page_count + 1`),
    /// from the directory of either level.
    page_offsets: Vec<u64>,
}

fn corrupt(offset: u64, detail: &str) -> Error {
    Error::corruption(INDEX_FILE_NAME, offset, detail)
}

impl BaseIndex {
    /// An index with no entries.
    ///
    /// # Errors
    /// As [`BaseIndex::from_built`].
    pub(crate) fn empty(meta: &IndexMeta) -> Result<Self> {
        Self::from_built(index_file::build(meta, &[]))
    }

    /// Wraps bytes this process just built. They are checked all the same, so
    /// that a builder bug can never reach the disk unnoticed.
    ///
    /// # Errors
    /// [`Error::Corruption`] if the built bytes fail their own checks.
    pub(crate) fn from_built(bytes: Vec<u8>) -> Result<Self> {
        Self::decode(Bytes::from(bytes))
    }

    /// Decodes and checks every byte of an index file: header, segment table,
    /// directory, each page's checksum and structure, that every key sits in
    /// the page its hash names, and the header's totals.
    ///
    /// # Errors
    /// [`Error::Corruption`] naming `index.idx` and the offset of the first
    /// failed check.
    pub(crate) fn decode(bytes: Bytes) -> Result<Self> {
        let header = IndexHeader::decode(&bytes).map_err(|(o, d)| corrupt(o, d))?;
        if header.file_len != bytes.len() as u64 {
            return Err(corrupt(
                80,
                &format!(
                    "header says the file is {} bytes but it is {}",
                    header.file_len,
                    bytes.len()
                ),
            ));
        }
        if header.page_count == 0 {
            return Err(corrupt(60, "page count is zero"));
        }
        let (s0, s1) = header.segment_table_range();
        let (o0, o1) = header.obsolete_table_range();
        if o1 != header.directory_offset {
            return Err(corrupt(
                64,
                "directory does not follow the segment and obsolete tables",
            ));
        }
        let (_, d1) = header.directory_range();
        if d1 > header.file_len || (header.dir_levels == 1 && d1 != header.pages_offset) {
            return Err(corrupt(72, "pages do not follow the directory"));
        }
        let seg_bytes =
            slice(&bytes, s0, s1).ok_or_else(|| corrupt(s0, "segment table truncated"))?;
        let segments = decode_segment_table(seg_bytes).map_err(|d| corrupt(s0, d))?;
        let obs_bytes =
            slice(&bytes, o0, o1).ok_or_else(|| corrupt(o0, "obsolete table truncated"))?;
        let obsolete = decode_obsolete_table(obs_bytes).map_err(|d| corrupt(o0, d))?;
        let page_offsets = page_offsets(&bytes, &header).map_err(|(o, d)| corrupt(o, d))?;
        let base = BaseIndex {
            bytes,
            header,
            segments,
            obsolete,
            page_offsets,
        };
        base.check_pages()?;
        Ok(base)
    }

    fn check_pages(&self) -> Result<()> {
        let (mut keys, mut live) = (0u64, 0u64);
        for p in 0..self.header.page_count {
            let (start, page) = self.page_bytes(p);
            let view = PageView::parse(page, true).map_err(|d| corrupt(start, d))?;
            for i in 0..view.len() {
                let key = view.key(i);
                let h = key_hash(key);
                if page_of(h, self.header.page_count) != p {
                    return Err(corrupt(start, "a key is stored in the wrong page"));
                }
                let loc = view.loc(i);
                if loc.segment as usize >= self.segments.len() {
                    return Err(corrupt(start, "an entry names a segment not in the table"));
                }
                live += u64::from(loc.len);
            }
            keys += view.len() as u64;
        }
        if keys != self.header.key_count || live != self.header.live_bytes {
            return Err(corrupt(
                40,
                "key count or live bytes disagree with the pages",
            ));
        }
        Ok(())
    }

    /// The bytes of page `p` and their offset in the file. Offsets were
    /// checked at decode, so the slice is in bounds.
    fn page_bytes(&self, p: u32) -> (u64, &[u8]) {
        let start = self.page_offsets.get(p as usize).copied().unwrap_or(0);
        let end = self.page_offsets.get(p as usize + 1).copied().unwrap_or(0);
        (start, slice(&self.bytes, start, end).unwrap_or_default())
    }

    /// Page `p`, whose structure and checksum were checked at decode.
    #[inline]
    fn page(&self, p: u32) -> Option<PageView<'_>> {
        Some(PageView::checked_before(self.page_bytes(p).1))
    }

    /// Looks up a key whose hash is `h`.
    #[inline]
    pub(crate) fn lookup(&self, key: &[u8], h: u64) -> Option<Loc> {
        self.page(page_of(h, self.header.page_count))?
            .lookup(key, fingerprint(h))
    }

    /// Calls `f` for every entry, page by page.
    pub(crate) fn for_each<'a>(&'a self, mut f: impl FnMut(&'a [u8], Loc)) {
        for p in 0..self.header.page_count {
            if let Some(view) = self.page(p) {
                for i in 0..view.len() {
                    f(view.key(i), view.loc(i));
                }
            }
        }
    }

    /// The same entries under new metadata (a new writer id or obsolete list).
    ///
    /// # Errors
    /// As [`BaseIndex::from_built`].
    pub(crate) fn with_meta(&self, meta: &IndexMeta) -> Result<BaseIndex> {
        let mut entries = Vec::with_capacity(self.header.key_count as usize);
        self.for_each(|k, l| entries.push((k, l)));
        BaseIndex::from_built(index_file::build(meta, &entries))
    }

    /// This index's own metadata.
    pub(crate) fn meta(&self) -> IndexMeta {
        IndexMeta {
            writer_id: self.header.writer_id,
            generation: self.header.generation,
            next_segment_number: self.header.next_segment_number,
            segments: self.segments.clone(),
            obsolete: self.obsolete.clone(),
        }
    }

    pub(crate) fn header(&self) -> &IndexHeader {
        &self.header
    }

    pub(crate) fn segments(&self) -> &[SegmentEntry] {
        &self.segments
    }

    pub(crate) fn obsolete(&self) -> &[ObsoleteEntry] {
        &self.obsolete
    }

    pub(crate) fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

fn slice(b: &[u8], start: u64, end: u64) -> Option<&[u8]> {
    b.get(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::index_file::{INDEX_HEADER_LEN, IndexMeta, SEGTAB_SEALED};
    use crate::format::segment_id::SegmentId;

    fn meta() -> IndexMeta {
        IndexMeta {
            writer_id: 7,
            generation: 3,
            next_segment_number: 5,
            segments: vec![
                SegmentEntry {
                    id: SegmentId {
                        number: 1,
                        writer: 7,
                    },
                    indexed_len: 1000,
                    flags: SEGTAB_SEALED,
                },
                SegmentEntry {
                    id: SegmentId {
                        number: 4,
                        writer: 7,
                    },
                    indexed_len: 48,
                    flags: 0,
                },
            ],
            obsolete: vec![ObsoleteEntry {
                id: SegmentId {
                    number: 2,
                    writer: 9,
                },
                since: 1_700_000_000,
            }],
        }
    }

    /// `n` keys `key%08d`, each with the location `at(i)`.
    fn keyed(n: u32, at: impl Fn(u32) -> Loc) -> (Vec<Vec<u8>>, Vec<Loc>) {
        (0..n)
            .map(|i| (format!("key{i:08}").into_bytes(), at(i)))
            .unzip()
    }

    fn entries<'k>(keys: &'k [Vec<u8>], locs: &[Loc]) -> Vec<(&'k [u8], Loc)> {
        keys.iter()
            .map(Vec::as_slice)
            .zip(locs.iter().copied())
            .collect()
    }

    fn built(n: u32) -> (Vec<Vec<u8>>, Vec<u8>) {
        let (keys, locs) = keyed(n, |i| Loc {
            segment: i % 2,
            offset: i * 10,
            len: 30,
        });
        let bytes = index_file::build(&meta(), &entries(&keys, &locs));
        (keys, bytes)
    }

    #[test]
    fn every_key_is_found_and_absent_keys_are_not() {
        let (keys, bytes) = built(20_000);
        let b = BaseIndex::decode(Bytes::from(bytes)).unwrap();
        assert_eq!(b.header().key_count, 20_000);
        assert_eq!(b.header().live_bytes, 600_000);
        assert!(b.header().page_count > 1);
        for (i, k) in keys.iter().enumerate() {
            let loc = b.lookup(k, key_hash(k)).unwrap();
            assert_eq!(loc.offset, i as u32 * 10);
        }
        assert_eq!(b.lookup(b"nope", key_hash(b"nope")), None);
        let mut n = 0;
        b.for_each(|_, _| n += 1);
        assert_eq!(n, 20_000);
        assert_eq!(b.segments(), meta().segments.as_slice());
        assert_eq!(b.obsolete(), meta().obsolete.as_slice());
        assert_eq!(b.obsolete(), meta().obsolete.as_slice());
    }

    #[test]
    fn a_two_level_directory_finds_every_key_and_catches_every_flip() {
        use crate::format::index_file::{Layout, build_with};
        // Tiny pages: 6,000 keys make more than one block of 4,096 pages.
        let layout = Layout {
            target_page: 24,
            max_entries: 8,
            max_one_level_page: 32,
        };
        let (keys, locs) = keyed(6000, |i| Loc {
            segment: 0,
            offset: i,
            len: 20,
        });
        let bytes = build_with(&meta(), &entries(&keys, &locs), &layout);
        let b = BaseIndex::decode(Bytes::from(bytes.clone())).unwrap();
        assert_eq!(b.header().dir_levels, 2);
        assert!(
            b.header().page_count > 4096,
            "{} pages",
            b.header().page_count
        );
        // FORMAT.md §4.2: pages_offset = directory_offset + 8·P + 20·B + 12.
        let h = b.header();
        let (p, blocks) = (
            u64::from(h.page_count),
            u64::from(h.page_count).div_ceil(4096),
        );
        assert_eq!(
            h.pages_offset,
            h.directory_offset + 8 * p + 20 * blocks + 12
        );
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(b.lookup(k, key_hash(k)).unwrap().offset, i as u32);
        }
        let mut n = 0;
        b.for_each(|_, _| n += 1);
        assert_eq!(n, 6000);
        // Every bit of the header, tables and top directory; a sample of the blocks.
        let tables_end = b.header().pages_offset as usize;
        let top_end = b.header().directory_range().1 as usize;
        let bits = (0..top_end * 8).chain((top_end * 8..tables_end * 8).step_by(997));
        for i in bits {
            let mut c = bytes.clone();
            c[i / 8] ^= 1 << (i % 8);
            assert!(
                BaseIndex::decode(Bytes::from(c))
                    .unwrap_err()
                    .is_corruption(),
                "bit {i}"
            );
        }
    }

    #[test]
    fn the_layout_stays_one_level_until_pages_would_pass_64_kib() {
        use crate::format::index_file::{LAYOUT, choose_layout};
        assert_eq!(choose_layout(0, &LAYOUT), (1, 1));
        assert_eq!(choose_layout(4096 * 6144, &LAYOUT), (1, 6144));
        assert_eq!(choose_layout(4096 * 6145, &LAYOUT), (1, 6144));
        assert_eq!(choose_layout((64 << 10) * 6144, &LAYOUT), (1, 6144));
        assert_eq!(choose_layout((64 << 10) * 6144 + 1, &LAYOUT).0, 2);
        let (levels, pages) = choose_layout(1 << 40, &LAYOUT);
        assert_eq!(
            (levels, pages),
            (2, 6144 * 4096),
            "beyond 100 GiB the page count is capped"
        );
    }

    #[test]
    fn empty_index_round_trips() {
        let b = BaseIndex::empty(&meta()).unwrap();
        assert_eq!(b.header().key_count, 0);
        assert_eq!(b.header().next_segment_number, 5);
        assert_eq!(b.lookup(b"a", key_hash(b"a")), None);
    }

    #[test]
    fn a_flipped_bit_anywhere_is_corruption() {
        let (_, bytes) = built(50);
        // Every bit of the header, segment table and directory, and a sample
        // of page bits.
        let step = |i: usize| {
            if i < INDEX_HEADER_LEN * 8 + 2000 {
                1
            } else {
                7
            }
        };
        let mut i = 0;
        while i < bytes.len() * 8 {
            let mut b = bytes.clone();
            b[i / 8] ^= 1 << (i % 8);
            let err = BaseIndex::decode(Bytes::from(b)).unwrap_err();
            assert!(err.is_corruption(), "bit {i}: {err}");
            i += step(i);
        }
    }

    #[test]
    fn truncation_is_corruption() {
        let (_, bytes) = built(50);
        for n in [0, 10, 95, 96, 200, bytes.len() - 1] {
            assert!(
                BaseIndex::decode(Bytes::copy_from_slice(&bytes[..n]))
                    .unwrap_err()
                    .is_corruption()
            );
        }
    }
}
