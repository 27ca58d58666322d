//! The base index: a checked `index.idx`, kept as the file's own bytes and
//! searched in place.
//!
//! Keeping the file's bytes (about 20 bytes per key plus the key) instead of
//! inserting every key into a hash map is what makes open fast. A local
//! `index.idx` is mapped, not read ([`BaseIndex::decode_lazy`]): opening
//! checks the header, the segment tables and the directory, and each page's
//! checksum and structure is checked the first time a lookup or a scan
//! touches it. Open therefore costs the same at 1,000 keys as at 100 million,
//! and resident memory grows only with the pages that gets touch. The whole
//! file's cross-checks (every key in the page its hash names, the header's
//! totals) run in [`BaseIndex::check_all`], which `verify` calls.
//!
//! Writes made since the file was written live in the
//! [`Delta`](crate::index::delta::Delta).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::hash::{fingerprint, key_hash, page_of};
use crate::format::index_file::{
    self, INDEX_FILE_NAME, IndexHeader, IndexMeta, ObsoleteEntry, RUN_TOMBSTONES, SegmentEntry,
    decode_obsolete_table, decode_segment_table, page_offsets,
};
use crate::format::index_page::PageView;
use crate::index::loc::Loc;

/// An immutable index whose pages are checked before use.
pub(crate) struct BaseIndex {
    bytes: Bytes,
    /// Whether `bytes` is a map of the file rather than heap memory.
    mapped: bool,
    /// Whether pages are checked on first use (a local `index.idx` opened by
    /// [`BaseIndex::decode_lazy`]): their errors then say how to repair.
    lazy: bool,
    header: IndexHeader,
    segments: Vec<SegmentEntry>,
    obsolete: Vec<ObsoleteEntry>,
    /// Offset of every page and the end of the last (`page_count + 1`),
    /// from the directory of either level.
    page_offsets: Vec<u64>,
    /// Per page: whether its checksum and structure passed. Set once, never
    /// cleared: the bytes are immutable.
    checked: Box<[AtomicBool]>,
}

impl fmt::Debug for BaseIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BaseIndex")
            .field("len", &self.bytes.len())
            .field("mapped", &self.mapped)
            .field("header", &self.header)
            .field("segments", &self.segments.len())
            .field("obsolete", &self.obsolete.len())
            .finish_non_exhaustive()
    }
}

fn corrupt(offset: u64, detail: &str) -> Error {
    Error::corruption(INDEX_FILE_NAME, offset, detail)
}

/// What to do about a damaged local `index.idx`, appended to its errors.
pub(crate) const REBUILD_HINT: &str = "the segments are intact: rebuild it with CLI: s4db rebuild-index; library: DbBuilder::rebuild_index";

impl BaseIndex {
    /// An index with no entries.
    ///
    /// # Errors
    /// As [`BaseIndex::from_built`].
    #[cfg(test)]
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
        let mut base = Self::decode_lazy(bytes, false)?;
        base.lazy = false;
        base.check_all()?;
        Ok(base)
    }

    /// Decodes the header, the segment and obsolete tables and the directory
    /// of an index file, and checks them; the pages are checked as they are
    /// first used. `mapped` says whether `bytes` maps the file (for
    /// [`BaseIndex::heap_bytes`]).
    ///
    /// # Errors
    /// [`Error::Corruption`] naming `index.idx` and the offset of the first
    /// failed check.
    pub(crate) fn decode_lazy(bytes: Bytes, mapped: bool) -> Result<Self> {
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
        let checked = unchecked(header.page_count);
        Ok(BaseIndex {
            bytes,
            mapped,
            lazy: true,
            header,
            segments,
            obsolete,
            page_offsets,
            checked,
        })
    }

    /// The same index over `bytes`, a map of the file these bytes were
    /// written to. Pages are checked again as they are used.
    pub(crate) fn remapped(self, bytes: Bytes) -> BaseIndex {
        if bytes.len() != self.bytes.len() {
            return self;
        }
        let checked = unchecked(self.header.page_count);
        BaseIndex {
            bytes,
            mapped: true,
            lazy: true,
            checked,
            ..self
        }
    }

    /// Checks every page as a lookup does, and more: that every key sits in
    /// the page its hash names, that every entry names a segment of the
    /// table, and that the header's key count and live bytes are the pages'
    /// sums. Reads the whole file.
    ///
    /// # Errors
    /// [`Error::Corruption`] naming `index.idx` and the offset of the first
    /// failed check.
    pub(crate) fn check_all(&self) -> Result<()> {
        let (mut keys, mut live) = (0u64, 0u64);
        for p in 0..self.header.page_count {
            let (start, view) = self.page(p)?;
            for i in 0..view.len() {
                let key = view.key(i);
                if page_of(key_hash(key), self.header.page_count) != p {
                    return Err(self.damaged(start, "a key is stored in the wrong page"));
                }
                let loc = self.in_table(start, view.loc(i))?;
                live += u64::from(loc.len);
            }
            keys += view.len() as u64;
        }
        if keys != self.header.key_count || live != self.header.live_bytes {
            return Err(self.damaged(40, "key count or live bytes disagree with the pages"));
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

    /// Page `p` and its offset, its checksum and structure checked (on first
    /// use; later uses skip the check).
    #[inline]
    fn page(&self, p: u32) -> Result<(u64, PageView<'_>)> {
        let (start, bytes) = self.page_bytes(p);
        let Some(flag) = self.checked.get(p as usize) else {
            return Err(self.damaged(start, "page number out of range"));
        };
        // Relaxed: the flag guards no other memory; the bytes never change.
        if flag.load(Ordering::Relaxed) {
            return Ok((start, PageView::checked_before(bytes)));
        }
        let view = PageView::parse(bytes, true).map_err(|d| self.damaged(start, d))?;
        flag.store(true, Ordering::Relaxed);
        Ok((start, view))
    }

    /// A failed check at `offset`; for a local `index.idx`, with how to repair.
    fn damaged(&self, offset: u64, detail: &str) -> Error {
        if self.lazy {
            corrupt(offset, &format!("{detail} ({REBUILD_HINT})"))
        } else {
            corrupt(offset, detail)
        }
    }

    /// `loc`, if it names a segment of the table.
    #[inline]
    fn in_table(&self, page_start: u64, loc: Loc) -> Result<Loc> {
        if loc.len == 0 {
            // A tombstone: only a run's (FORMAT.md §4.7).
            if self.header.flags & RUN_TOMBSTONES == 0 || loc.segment != 0 || loc.offset != 0 {
                return Err(self.damaged(page_start, "an entry has length 0"));
            }
            return Ok(loc);
        }
        if loc.segment as usize >= self.segments.len() {
            return Err(self.damaged(page_start, "an entry names a segment not in the table"));
        }
        Ok(loc)
    }

    /// Checks the page that holds keys whose hash is `h`.
    ///
    /// # Errors
    /// [`Error::Corruption`] if that page fails its checks.
    #[inline]
    pub(crate) fn check_page_of(&self, h: u64) -> Result<()> {
        self.page(page_of(h, self.header.page_count)).map(|_| ())
    }

    /// Looks up a key whose hash is `h`.
    ///
    /// # Errors
    /// [`Error::Corruption`] if the page that can hold the key fails its
    /// checks, or the entry names a segment not in the table.
    #[inline]
    pub(crate) fn lookup(&self, key: &[u8], h: u64) -> Result<Option<Loc>> {
        let (start, view) = self.page(page_of(h, self.header.page_count))?;
        view.lookup(key, fingerprint(h))
            .map(|l| self.in_table(start, l))
            .transpose()
    }

    /// Calls `f` for every entry, page by page.
    ///
    /// # Errors
    /// [`Error::Corruption`] at the first page that fails its checks or entry
    /// that names a segment not in the table; `f` has then seen the entries
    /// of the pages before it.
    pub(crate) fn for_each<'a>(&'a self, mut f: impl FnMut(&'a [u8], Loc)) -> Result<()> {
        for p in 0..self.header.page_count {
            let (start, view) = self.page(p)?;
            for i in 0..view.len() {
                f(view.key(i), self.in_table(start, view.loc(i))?);
            }
        }
        Ok(())
    }

    /// The same entries under new metadata (a new writer id or obsolete list).
    ///
    /// # Errors
    /// As [`BaseIndex::from_built`].
    pub(crate) fn with_meta(&self, meta: &IndexMeta) -> Result<BaseIndex> {
        let mut entries = Vec::with_capacity(self.header.key_count as usize);
        self.for_each(|k, l| entries.push((k, l)))?;
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

    #[cfg(test)]
    pub(crate) fn obsolete(&self) -> &[ObsoleteEntry] {
        &self.obsolete
    }

    pub(crate) fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Heap bytes this index holds: the file's bytes unless they are mapped,
    /// plus a page-offset table of 8 bytes and a flag of 1 byte per page.
    pub(crate) fn heap_bytes(&self) -> usize {
        let own = if self.mapped { 0 } else { self.bytes.len() };
        own + self.page_offsets.len() * 8 + self.checked.len()
    }

    /// Bytes of the file mapped into memory (0 when it is on the heap); the
    /// kernel loads them as they are touched.
    pub(crate) fn mapped_bytes(&self) -> usize {
        if self.mapped { self.bytes.len() } else { 0 }
    }
}

/// A "checked" flag, not yet set, for each of `pages` pages.
fn unchecked(pages: u32) -> Box<[AtomicBool]> {
    (0..pages).map(|_| AtomicBool::new(false)).collect()
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
            let loc = b.lookup(k, key_hash(k)).unwrap().unwrap();
            assert_eq!(loc.offset, i as u32 * 10);
        }
        assert_eq!(b.lookup(b"nope", key_hash(b"nope")).unwrap(), None);
        let mut n = 0;
        b.for_each(|_, _| n += 1).unwrap();
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
            assert_eq!(b.lookup(k, key_hash(k)).unwrap().unwrap().offset, i as u32);
        }
        let mut n = 0;
        b.for_each(|_, _| n += 1).unwrap();
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
    fn a_lazily_opened_index_checks_each_page_when_first_used() {
        let (keys, bytes) = built(20_000);
        let full = BaseIndex::decode(Bytes::from(bytes.clone())).unwrap();
        // A flipped bit in the middle of the pages: one page is damaged.
        let mid = bytes.len() / 2;
        let mut bad = bytes.clone();
        bad[mid] ^= 0x10;
        assert!(BaseIndex::decode(Bytes::from(bad.clone())).is_err());
        let lazy = BaseIndex::decode_lazy(Bytes::from(bad), true).unwrap();
        assert_eq!(lazy.header().key_count, 20_000);
        assert_eq!(
            (lazy.mapped_bytes(), lazy.heap_bytes() < bytes.len() / 50),
            (bytes.len(), true)
        );
        let (mut found, mut damaged) = (0, 0);
        for k in &keys {
            let h = key_hash(k);
            match lazy.lookup(k, h) {
                Ok(loc) => {
                    assert_eq!(loc, full.lookup(k, h).unwrap());
                    found += 1;
                }
                Err(e) => {
                    assert!(
                        e.is_corruption() && e.to_string().contains("rebuild"),
                        "{e}"
                    );
                    assert!(lazy.check_page_of(h).is_err(), "stays damaged");
                    damaged += 1;
                }
            }
        }
        assert!(
            found > 19_000 && damaged > 0,
            "{found} found, {damaged} damaged"
        );
        assert!(lazy.check_all().unwrap_err().is_corruption());
        assert!(lazy.for_each(|_, _| {}).unwrap_err().is_corruption());
    }

    #[test]
    fn only_the_full_check_catches_totals_that_disagree_with_the_pages() {
        use crate::format::index_file::IndexHeader;
        let (_, bytes) = built(500);
        let mut h = IndexHeader::decode(&bytes).unwrap();
        h.key_count += 1;
        let mut bad = bytes.clone();
        bad[..INDEX_HEADER_LEN].copy_from_slice(&h.encode());
        let lazy = BaseIndex::decode_lazy(Bytes::from(bad.clone()), false).unwrap();
        assert!(lazy.for_each(|_, _| {}).is_ok());
        assert!(lazy.check_all().unwrap_err().is_corruption());
        assert!(
            BaseIndex::decode(Bytes::from(bad))
                .unwrap_err()
                .is_corruption()
        );
    }

    #[test]
    fn empty_index_round_trips() {
        let b = BaseIndex::empty(&meta()).unwrap();
        assert_eq!(b.header().key_count, 0);
        assert_eq!(b.header().next_segment_number, 5);
        assert_eq!(b.lookup(b"a", key_hash(b"a")).unwrap(), None);
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
