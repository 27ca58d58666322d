//! Byte-range access to a remote `index.idx` (FORMAT.md §4.6, §10.6): the
//! header, segment tables and directory are read once; pages are read on
//! demand and kept in a bounded LRU cache.
//!
//! A cold get costs three requests however large the database: the first
//! 64 KiB of `index.idx` (header, tables, directory), the one page that can
//! hold the key, and the record. Page reads are pinned to the entity tag the
//! first read saw: a page from another version of the file is never mixed
//! with this directory; the caller reloads instead.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::format::hash::{fingerprint, key_hash, page_of};
use crate::format::index_file::{
    BLOCK_PAGES, INDEX_FILE_NAME, IndexHeader, SegmentEntry, check_directory,
    decode_obsolete_table, decode_segment_table, offsets_table,
};
use crate::format::index_page::{PAGE_OVERHEAD, PageView};
use crate::format::le::u64_at;
use crate::index::loc::Loc;
use crate::remote::ctx::RemoteCtx;
use crate::remote::{ObjectStore, Prefix};

/// The first read of `index.idx`.
pub(crate) const FIRST_READ: u64 = 64 << 10;

/// The remote index changed since it was opened: reload and retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Changed;

fn corrupt(offset: u64, detail: &str) -> Error {
    Error::corruption(format!("{INDEX_FILE_NAME} (remote)"), offset, detail)
}

/// Pages kept in memory, least recently used evicted first, within a byte budget.
#[derive(Debug, Default)]
struct PageCache {
    pages: HashMap<u32, (Bytes, u64)>,
    by_age: BTreeMap<u64, u32>,
    tick: u64,
    bytes: usize,
}

impl PageCache {
    fn get(&mut self, p: u32) -> Option<Bytes> {
        let (bytes, age) = self.pages.get_mut(&p)?;
        self.by_age.remove(age);
        self.tick += 1;
        *age = self.tick;
        self.by_age.insert(self.tick, p);
        Some(bytes.clone())
    }

    fn insert(&mut self, p: u32, bytes: Bytes, budget: usize) {
        if self.pages.contains_key(&p) || bytes.len() > budget {
            return;
        }
        self.tick += 1;
        self.bytes += bytes.len();
        self.pages.insert(p, (bytes, self.tick));
        self.by_age.insert(self.tick, p);
        while self.bytes > budget {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            if let Some((b, _)) = self.pages.remove(&oldest) {
                self.bytes -= b.len();
            }
        }
    }
}

/// An `index.idx` read by byte ranges.
#[derive(Debug)]
pub(crate) struct LazyIndex {
    pub etag: String,
    pub header: IndexHeader,
    pub segment_table: Vec<SegmentEntry>,
    /// One level: the `page_count + 1` page offsets. Two levels: the block
    /// offsets; each block's page offsets are read on demand into `blocks`.
    dir: Vec<u64>,
    blocks: Mutex<HashMap<u32, Arc<Vec<u64>>>>,
    cache: Mutex<PageCache>,
    budget: usize,
}

impl LazyIndex {
    /// Opens the remote index with its first read; `None` if there is none.
    pub(crate) async fn open(ctx: &RemoteCtx) -> Result<Option<LazyIndex>> {
        let store = ctx.store.clone();
        let first = ctx
            .run(async move { store.get_prefix(INDEX_FILE_NAME, FIRST_READ, None).await })
            .await?;
        match first {
            Prefix::Got { bytes, etag, total } => Self::from_first_read(ctx, bytes, etag, total)
                .await
                .map(Some),
            Prefix::Missing => Ok(None),
            Prefix::NotModified => Err(Error::remote(
                "reading index.idx",
                Some(304),
                "unexpected 304 Not Modified",
            )),
        }
    }

    /// Builds the reader from the first bytes of the file (read with tag
    /// `etag`, file size `total`), fetching the rest of the tables and
    /// directory if they did not fit.
    pub(crate) async fn from_first_read(
        ctx: &RemoteCtx,
        first: Bytes,
        etag: String,
        total: u64,
    ) -> Result<LazyIndex> {
        let header = IndexHeader::decode(&first).map_err(|(o, d)| corrupt(o, d))?;
        if header.file_len != total {
            return Err(corrupt(
                80,
                "the header's file length differs from the object's size",
            ));
        }
        let (_, dir_end) = header.directory_range();
        if dir_end > header.file_len || header.page_count == 0 {
            return Err(corrupt(64, "the directory runs past the end of the file"));
        }
        let head = if dir_end <= first.len() as u64 {
            first
        } else {
            // A large segment table or directory: one more read.
            let store = ctx.store.clone();
            let start = first.len() as u64;
            let rest = ctx
                .run(async move {
                    store
                        .get_range(INDEX_FILE_NAME, start, dir_end - start)
                        .await
                })
                .await?
                .ok_or_else(|| Error::NotFound("index.idx disappeared while being read".into()))?;
            if rest.etag.as_ref().is_some_and(|t| *t != etag) {
                return Err(Error::remote(
                    "reading index.idx",
                    None,
                    "the index changed while being read; retry",
                ));
            }
            let mut all = BytesMut::from(&first[..]);
            all.extend_from_slice(&rest.bytes);
            all.freeze()
        };
        let slice = |(a, b): (u64, u64)| {
            head.get(a as usize..b as usize)
                .ok_or_else(|| corrupt(a, "truncated table"))
        };
        let segment_table = decode_segment_table(slice(header.segment_table_range())?)
            .map_err(|d| corrupt(header.segment_table_range().0, d))?;
        // Checked, not kept: a reader has no use for the obsolete list.
        decode_obsolete_table(slice(header.obsolete_table_range())?)
            .map_err(|d| corrupt(header.obsolete_table_range().0, d))?;
        if header.obsolete_table_range().1 != header.directory_offset {
            return Err(corrupt(
                64,
                "directory does not follow the segment and obsolete tables",
            ));
        }
        let dir_bytes = slice(header.directory_range())?;
        check_directory(dir_bytes, &header).map_err(|d| corrupt(header.directory_offset, d))?;
        let dir = (0..=header.page_count as usize)
            .map(|i| u64_at(dir_bytes, 8 * i).unwrap_or(0))
            .collect();
        Ok(LazyIndex {
            etag,
            header,
            segment_table,
            dir,
            blocks: Mutex::new(HashMap::new()),
            cache: Mutex::new(PageCache::default()),
            budget: ctx.opts.page_cache_bytes,
        })
    }

    /// The byte range of page `p`, if its directory entry is at hand.
    fn page_range(&self, p: u32) -> Option<(u64, u64)> {
        if self.header.dir_levels == 1 {
            return Some((self.dir[p as usize], self.dir[p as usize + 1]));
        }
        let b = p / BLOCK_PAGES as u32;
        let blocks = self.blocks.lock();
        let offs = blocks.get(&b)?;
        let i = (p - b * BLOCK_PAGES as u32) as usize;
        Some((offs[i], offs[i + 1]))
    }

    /// Reads the directory blocks (two-level indexes) that list `pages`.
    async fn load_blocks(&self, ctx: &RemoteCtx, pages: &[u32]) -> Result<Result<(), Changed>> {
        if self.header.dir_levels == 1 {
            return Ok(Ok(()));
        }
        let mut wanted: Vec<u32> = pages.iter().map(|p| p / BLOCK_PAGES as u32).collect();
        wanted.dedup();
        wanted.retain(|b| !self.blocks.lock().contains_key(b));
        for b in wanted {
            let (start, end) = (self.dir[b as usize], self.dir[b as usize + 1]);
            let store = ctx.store.clone();
            let r = ctx
                .run(async move { store.get_range(INDEX_FILE_NAME, start, end - start).await })
                .await?
                .ok_or_else(|| Error::NotFound("index.idx disappeared".into()))?;
            if r.etag.as_ref().is_some_and(|t| *t != self.etag) {
                return Ok(Err(Changed));
            }
            let n = self.header.block_pages(b).len();
            let offs = offsets_table(&r.bytes, n, None, None, PAGE_OVERHEAD as u64)
                .map_err(|d| corrupt(start, d))?;
            if offs[0] < self.header.pages_offset || offs[n] > self.header.file_len {
                return Err(corrupt(start, "a directory block points outside the pages"));
            }
            self.blocks.lock().insert(b, Arc::new(offs));
        }
        Ok(Ok(()))
    }

    /// Checks fetched page bytes and caches them.
    fn accept(&self, p: u32, start: u64, bytes: Bytes) -> Result<Bytes> {
        PageView::parse(&bytes, true).map_err(|d| corrupt(start, d))?;
        self.cache.lock().insert(p, bytes.clone(), self.budget);
        Ok(bytes)
    }

    /// The bytes of each page in `pages` (sorted, distinct): from the cache,
    /// or fetched, joining runs of adjacent pages into one request.
    async fn pages(
        &self,
        ctx: &RemoteCtx,
        pages: &[u32],
    ) -> Result<Result<HashMap<u32, Bytes>, Changed>> {
        let mut have = HashMap::new();
        let mut missing = Vec::new();
        {
            let mut c = self.cache.lock();
            for &p in pages {
                match c.get(p) {
                    Some(b) => {
                        have.insert(p, b);
                    }
                    None => missing.push(p),
                }
            }
        }
        if let Err(c) = self.load_blocks(ctx, &missing).await? {
            return Ok(Err(c));
        }
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for p in missing {
            match runs.last_mut() {
                Some((_, last)) if *last + 1 == p => *last = p,
                _ => runs.push((p, p)),
            }
        }
        let mut reqs: Vec<(u32, u32, u64, u64)> = Vec::with_capacity(runs.len());
        for (a, b) in runs {
            let (Some((start, _)), Some((_, end))) = (self.page_range(a), self.page_range(b))
            else {
                return Err(corrupt(
                    self.header.directory_offset,
                    "a page's directory entry is missing",
                ));
            };
            reqs.push((a, b, start, end));
        }
        let store = ctx.store.clone();
        let parallel = ctx.opts.parallelism;
        let fetched: Vec<(u32, u32, u64, crate::remote::Ranged)> = ctx
            .run(async move {
                let results: Vec<Result<_>> = futures::stream::iter(reqs)
                    .map(|(a, b, start, end)| {
                        let store = store.clone();
                        async move {
                            let r = store
                                .get_range(INDEX_FILE_NAME, start, end - start)
                                .await?
                                .ok_or_else(|| Error::NotFound("index.idx disappeared".into()))?;
                            Ok((a, b, start, r))
                        }
                    })
                    .buffer_unordered(parallel)
                    .collect()
                    .await;
                results.into_iter().collect()
            })
            .await?;
        for (a, b, start, r) in fetched {
            if r.etag.as_ref().is_some_and(|t| *t != self.etag) {
                return Ok(Err(Changed));
            }
            for p in a..=b {
                let (s, e) = self.page_range(p).unwrap_or((start, start));
                let (from, to) = ((s - start) as usize, (e - start) as usize);
                if r.bytes.get(from..to).is_none() {
                    return Err(corrupt(s, "a page lies outside the range read"));
                }
                let bytes = self.accept(p, s, r.bytes.slice(from..to))?;
                have.insert(p, bytes);
            }
        }
        Ok(Ok(have))
    }

    fn page_of_key(&self, key: &[u8]) -> (u32, u32) {
        let h = key_hash(key);
        (page_of(h, self.header.page_count), fingerprint(h))
    }

    /// Where `key`'s record is, or `Changed` if the remote index changed.
    pub(crate) async fn lookup(
        &self,
        ctx: &RemoteCtx,
        key: &[u8],
    ) -> Result<Result<Option<Loc>, Changed>> {
        Ok(self
            .lookup_many(ctx, &[key])
            .await?
            .map(|mut v| v.pop().flatten()))
    }

    /// Where each key's record is; the pages needed are fetched together.
    pub(crate) async fn lookup_many(
        &self,
        ctx: &RemoteCtx,
        keys: &[&[u8]],
    ) -> Result<Result<Vec<Option<Loc>>, Changed>> {
        let placed: Vec<(u32, u32)> = keys.iter().map(|k| self.page_of_key(k)).collect();
        let mut pages: Vec<u32> = placed.iter().map(|(p, _)| *p).collect();
        pages.sort_unstable();
        pages.dedup();
        let have = match self.pages(ctx, &pages).await? {
            Ok(h) => h,
            Err(c) => return Ok(Err(c)),
        };
        let mut out = Vec::with_capacity(keys.len());
        for (key, (p, fp)) in keys.iter().zip(placed) {
            let bytes = have.get(&p).cloned().unwrap_or_default();
            let loc = PageView::checked_before(&bytes).lookup(key, fp);
            if let Some(l) = loc
                && l.segment as usize >= self.segment_table.len()
            {
                return Err(corrupt(
                    self.page_range(p).map_or(0, |r| r.0),
                    "an entry names a segment not in the table",
                ));
            }
            out.push(loc);
        }
        Ok(Ok(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::segment_header::SegmentHeader;

    /// A remote (a `file://` directory) holding one segment of `n` records
    /// and a two-level index over them, built with tiny pages.
    fn two_level_remote(n: u32) -> (tempfile::TempDir, String) {
        use crate::format::index_file::{IndexMeta, Layout, build_with};
        use crate::format::segment_id::SegmentId;
        let dir = tempfile::tempdir().unwrap();
        let id = SegmentId {
            number: 1,
            writer: 7,
        };
        let mut seg = SegmentHeader::plain(id).encode().to_vec();
        let mut enc = snap::raw::Encoder::new();
        let keys: Vec<Vec<u8>> = (0..n).map(|i| format!("key{i:08}").into_bytes()).collect();
        let mut locs = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let at = seg.len() as u32;
            let len = crate::format::record::encode(
                &mut seg,
                k,
                Some(format!("value {i}").as_bytes()),
                false,
                &mut enc,
            );
            locs.push(Loc {
                segment: 0,
                offset: at,
                len: len as u32,
            });
        }
        let meta = IndexMeta {
            writer_id: 7,
            generation: 1,
            next_segment_number: 2,
            segments: vec![SegmentEntry {
                id,
                indexed_len: seg.len() as u64,
                flags: 1,
            }],
            obsolete: Vec::new(),
        };
        let entries: Vec<(&[u8], Loc)> = keys.iter().map(Vec::as_slice).zip(locs).collect();
        let layout = Layout {
            target_page: 24,
            max_entries: 8,
            max_one_level_page: 32,
        };
        let index = build_with(&meta, &entries, &layout);
        std::fs::write(dir.path().join(id.file_name()), &seg).unwrap();
        std::fs::write(dir.path().join(INDEX_FILE_NAME), &index).unwrap();
        let url = format!("file://{}", dir.path().display());
        (dir, url)
    }

    #[test]
    fn a_cold_get_through_a_two_level_directory_takes_four_requests() {
        let (_dir, url) = two_level_remote(6000);
        let db = crate::blocking::Db::open_remote(&url).unwrap();
        assert_eq!(db.remote_stats().unwrap().requests, 1);
        assert_eq!(db.get("key00004321").unwrap().unwrap(), "value 4321");
        assert_eq!(
            db.remote_stats().unwrap().requests,
            4,
            "head, block, page, record"
        );
        assert_eq!(db.get("key00004321").unwrap().unwrap(), "value 4321");
        assert_eq!(
            db.remote_stats().unwrap().requests,
            5,
            "block and page cached"
        );
        assert_eq!(db.get("missing").unwrap(), None);
        let keys: Vec<String> = (0..6000)
            .step_by(37)
            .map(|i| format!("key{i:08}"))
            .collect();
        let got = db.get_many(&keys).unwrap();
        for (k, v) in keys.iter().zip(got) {
            let i: u32 = k[3..].parse().unwrap();
            assert_eq!(v.unwrap(), format!("value {i}"));
        }
        assert_eq!(
            db.keys().unwrap().len(),
            6000,
            "the full load reads two levels too"
        );
    }

    #[test]
    fn the_cache_stays_within_its_budget_and_evicts_the_oldest() {
        let mut c = PageCache::default();
        for p in 0..10u32 {
            c.insert(p, Bytes::from(vec![0u8; 100]), 350);
        }
        assert!(c.bytes <= 350);
        assert!(c.get(9).is_some() && c.get(0).is_none());
        c.get(7);
        c.insert(10, Bytes::from(vec![0u8; 100]), 350);
        assert!(c.get(7).is_some(), "recently used pages stay");
    }
}
