//! Byte-range access to a remote index (FORMAT.md §4.6, §10.6): the root
//! (or a version-1 `index.idx`'s header, tables and directory) is read
//! once; pages are read on demand and kept in a bounded LRU cache.
//!
//! A cold get costs three round trips while every run has one directory
//! level: `index.idx` (the root, holding each run's directory), one page of
//! every run (in parallel), and the record. Pages of a version-1 index are
//! pinned to the entity tag the first read saw: a page from another version
//! of the file is never mixed with this directory; the caller reloads
//! instead. Runs never change, so their pages stay cached across commits.

use std::collections::HashMap;
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
use crate::format::root;
use crate::index::layers::{Said, translation};
use crate::index::loc::Loc;
use crate::index::page_cache::PageCache;
use crate::remote::ctx::RemoteCtx;
use crate::remote::{ObjectStore, Prefix};

/// The first read of `index.idx`.
/// 256 KiB holds a root with two runs of the largest one-level directory
/// (§4.8: about 100 KiB at 10 million keys), so opening is one request.
pub(crate) const FIRST_READ: u64 = 256 << 10;

/// The remote index changed since it was opened: reload and retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Changed;

fn corrupt(offset: u64, detail: &str) -> Error {
    corrupt_in(INDEX_FILE_NAME, offset, detail)
}

/// One index file read by byte ranges: a version-1 `index.idx` or a run.
#[derive(Debug)]
struct LazyRun {
    /// The object's name.
    object: String,
    /// The cache's name for it (with the entity tag for `index.idx`).
    cache_name: Arc<str>,
    /// Whether range answers must carry the pinned entity tag (only the
    /// replaced `index.idx`; runs are immutable).
    pinned: bool,
    header: IndexHeader,
    /// For each segment of the run's own table, its root position
    /// (`u32::MAX` if the root does not list it).
    to_root: Vec<u32>,
    /// One level: the `page_count + 1` page offsets. Two levels: the block
    /// offsets; each block's page offsets are read on demand into `blocks`.
    dir: Vec<u64>,
    blocks: Mutex<HashMap<u32, Arc<Vec<u64>>>>,
}

impl LazyRun {
    /// Builds the reader of a file whose head (header, tables, top
    /// directory) is `head`.
    fn new(
        object: String,
        cache_name: Arc<str>,
        pinned: bool,
        head: &[u8],
        root_table: Option<&[SegmentEntry]>,
    ) -> Result<(LazyRun, Vec<SegmentEntry>)> {
        let bad = |o: u64, d: &str| corrupt_in(&object, o, d);
        let header = IndexHeader::decode(head).map_err(|(o, d)| bad(o, d))?;
        let (_, dir_end) = header.directory_range();
        if dir_end > header.file_len || header.page_count == 0 {
            return Err(bad(64, "the directory runs past the end of the file"));
        }
        let slice = |(a, b): (u64, u64)| {
            head.get(a as usize..b as usize)
                .ok_or_else(|| bad(a, "truncated table"))
        };
        let table = decode_segment_table(slice(header.segment_table_range())?)
            .map_err(|d| bad(header.segment_table_range().0, d))?;
        // Checked, not kept: a reader has no use for the obsolete list.
        decode_obsolete_table(slice(header.obsolete_table_range())?)
            .map_err(|d| bad(header.obsolete_table_range().0, d))?;
        if header.obsolete_table_range().1 != header.directory_offset {
            return Err(bad(
                64,
                "directory does not follow the segment and obsolete tables",
            ));
        }
        let dir_bytes = slice(header.directory_range())?;
        check_directory(dir_bytes, &header).map_err(|d| bad(header.directory_offset, d))?;
        let dir = (0..=header.directory_entries() as usize)
            .map(|i| u64_at(dir_bytes, 8 * i).unwrap_or(0))
            .collect();
        let to_root = match root_table {
            None => (0..table.len() as u32).collect(),
            Some(root) => translation(&table, root),
        };
        Ok((
            LazyRun {
                object,
                cache_name,
                pinned,
                header,
                to_root,
                dir,
                blocks: Mutex::new(HashMap::new()),
            },
            table,
        ))
    }

    /// The byte range of page `p`, if its directory entry is at hand.
    fn page_range(&self, p: u32) -> Option<(u64, u64)> {
        if self.header.dir_levels == 1 {
            return Some((*self.dir.get(p as usize)?, *self.dir.get(p as usize + 1)?));
        }
        let b = p / BLOCK_PAGES as u32;
        let blocks = self.blocks.lock();
        let offs = blocks.get(&b)?;
        let i = (p - b * BLOCK_PAGES as u32) as usize;
        Some((*offs.get(i)?, *offs.get(i + 1)?))
    }

    fn corrupt(&self, offset: u64, detail: &str) -> Error {
        corrupt_in(&self.object, offset, detail)
    }

    fn page_of_key(&self, h: u64) -> u32 {
        page_of(h, self.header.page_count)
    }
}

/// A remote index read by byte ranges: a version-1 `index.idx`, or a
/// version-2 root and its runs.
#[derive(Debug)]
pub(crate) struct LazyIndex {
    pub etag: String,
    pub writer_id: u64,
    pub key_count: u64,
    pub live_bytes: u64,
    /// The segment table of `index.idx` (the root's).
    pub segment_table: Vec<SegmentEntry>,
    /// The database metadata (FORMAT.md §4.8; none in version 1).
    pub metadata: Vec<(String, Bytes)>,
    /// Some record may carry an expiry (the root's flag).
    pub may_expire: bool,
    /// Oldest first.
    runs: Vec<LazyRun>,
    cache: Arc<Mutex<PageCache>>,
    budget: usize,
}

impl LazyIndex {
    /// Opens the remote index with its first read; `None` if there is none.
    /// `cache` carries the pages of the index read before, if any.
    pub(crate) async fn open(
        ctx: &RemoteCtx,
        cache: Option<Arc<Mutex<PageCache>>>,
    ) -> Result<Option<LazyIndex>> {
        let store = ctx.store.clone();
        let first = ctx
            .run(async move { store.get_prefix(INDEX_FILE_NAME, FIRST_READ, None).await })
            .await?;
        match first {
            Prefix::Got { bytes, etag, total } => {
                Self::from_first_read(ctx, bytes, etag, total, cache)
                    .await
                    .map(Some)
            }
            Prefix::Missing => Ok(None),
            Prefix::NotModified => Err(Error::remote(
                "reading index.idx",
                Some(304),
                "unexpected 304 Not Modified",
            )),
        }
    }

    /// The runs a lookup consults.
    pub(crate) fn run_count(&self) -> usize {
        self.runs.len()
    }

    /// The page cache, to hand to the next index this reader loads.
    pub(crate) fn cache(&self) -> Arc<Mutex<PageCache>> {
        self.cache.clone()
    }

    /// Builds the reader from the first bytes of the file (read with tag
    /// `etag`, file size `total`), fetching the rest of the root, or of a
    /// version-1 index's tables and directory, if they did not fit.
    pub(crate) async fn from_first_read(
        ctx: &RemoteCtx,
        first: Bytes,
        etag: String,
        total: u64,
        cache: Option<Arc<Mutex<PageCache>>>,
    ) -> Result<LazyIndex> {
        let cache = cache.unwrap_or_default();
        let budget = ctx.opts.page_cache_bytes;
        if root::is_root(&first) {
            let len = root::root_len(&first).map_err(|(o, d)| corrupt(o, d))?;
            if len != total {
                return Err(corrupt(
                    80,
                    "the header's file length differs from the object's size",
                ));
            }
            let bytes = read_rest(ctx, first, len, &etag).await?;
            let decoded = root::decode(&bytes).map_err(|(o, d)| corrupt(o, d))?;
            let mut runs = Vec::with_capacity(decoded.runs.len());
            for r in &decoded.runs {
                let name = r.id.run_file_name();
                let (run, _) = LazyRun::new(
                    name.clone(),
                    Arc::from(name.as_str()),
                    false,
                    &r.head,
                    Some(&decoded.meta.segments),
                )?;
                runs.push(run);
            }
            return Ok(LazyIndex {
                etag,
                writer_id: decoded.meta.writer_id,
                key_count: decoded.key_count,
                live_bytes: decoded.live_bytes,
                segment_table: decoded.meta.segments,
                metadata: decoded.metadata,
                may_expire: decoded.may_expire,
                runs,
                cache,
                budget,
            });
        }
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
        let head = read_rest(ctx, first, dir_end, &etag).await?;
        let cache_name: Arc<str> = Arc::from(format!("{INDEX_FILE_NAME}@{etag}").as_str());
        let (run, table) = LazyRun::new(INDEX_FILE_NAME.into(), cache_name, true, &head, None)?;
        Ok(LazyIndex {
            etag,
            writer_id: header.writer_id,
            key_count: header.key_count,
            live_bytes: header.live_bytes,
            segment_table: table,
            metadata: Vec::new(),
            may_expire: false,
            runs: vec![run],
            cache,
            budget,
        })
    }

    /// Reads the directory blocks (two-level runs) that list `pages`.
    async fn load_blocks(
        &self,
        ctx: &RemoteCtx,
        wanted: &[(usize, u32)],
    ) -> Result<Result<(), Changed>> {
        let mut blocks: Vec<(usize, u32)> = wanted
            .iter()
            .filter(|(r, _)| self.runs[*r].header.dir_levels == 2)
            .map(|&(r, p)| (r, p / BLOCK_PAGES as u32))
            .collect();
        blocks.sort_unstable();
        blocks.dedup();
        blocks.retain(|(r, b)| !self.runs[*r].blocks.lock().contains_key(b));
        if blocks.is_empty() {
            return Ok(Ok(()));
        }
        let mut reqs = Vec::with_capacity(blocks.len());
        for &(r, b) in &blocks {
            let run = &self.runs[r];
            let (Some(&start), Some(&end)) = (run.dir.get(b as usize), run.dir.get(b as usize + 1))
            else {
                return Err(run.corrupt(run.header.directory_offset, "a block is missing"));
            };
            reqs.push((r, b, run.object.clone(), start, end));
        }
        let fetched = match self.fetch_ranges(ctx, reqs).await? {
            Ok(f) => f,
            Err(c) => return Ok(Err(c)),
        };
        for (r, b, start, got) in fetched {
            let run = &self.runs[r];
            let n = run.header.block_pages(b).len();
            let offs = offsets_table(&got, n, None, None, PAGE_OVERHEAD as u64)
                .map_err(|d| run.corrupt(start, d))?;
            if offs[0] < run.header.pages_offset || offs[n] > run.header.file_len {
                return Err(run.corrupt(start, "a directory block points outside the pages"));
            }
            run.blocks.lock().insert(b, Arc::new(offs));
        }
        Ok(Ok(()))
    }

    /// The bytes of each page in `pages` (`(run, page)`, sorted, distinct):
    /// from the cache, or fetched, joining pages of a run that lie within
    /// `coalesce_gap` bytes of each other into one request; every run's
    /// requests go out together.
    async fn pages(
        &self,
        ctx: &RemoteCtx,
        pages: &[(usize, u32)],
    ) -> Result<Result<HashMap<(usize, u32), Bytes>, Changed>> {
        let mut have = HashMap::new();
        let mut missing = Vec::new();
        {
            let mut c = self.cache.lock();
            for &(r, p) in pages {
                match c.get(&(self.runs[r].cache_name.clone(), p)) {
                    Some(b) => {
                        have.insert((r, p), b);
                    }
                    None => missing.push((r, p)),
                }
            }
        }
        if let Err(c) = self.load_blocks(ctx, &missing).await? {
            return Ok(Err(c));
        }
        // Spans of pages of one run, each page's range starting at most
        // `coalesce_gap` bytes after the previous one's end: one request each.
        let gap = ctx.opts.coalesce_gap;
        let mut spans: Vec<(usize, u64, u64, Vec<u32>)> = Vec::new();
        for (r, p) in missing {
            let run = &self.runs[r];
            let Some((start, end)) = run.page_range(p) else {
                return Err(run.corrupt(
                    run.header.directory_offset,
                    "a page's directory entry is missing",
                ));
            };
            match spans.last_mut() {
                Some((lr, _, last_end, members))
                    if *lr == r && start >= *last_end && start - *last_end <= gap =>
                {
                    *last_end = end;
                    members.push(p);
                }
                _ => spans.push((r, start, end, vec![p])),
            }
        }
        let mut reqs = Vec::with_capacity(spans.len());
        let mut bounds = Vec::with_capacity(spans.len());
        for (r, start, end, members) in spans {
            bounds.push(members);
            reqs.push((
                r,
                bounds.len() as u32 - 1,
                self.runs[r].object.clone(),
                start,
                end,
            ));
        }
        let fetched = match self.fetch_ranges(ctx, reqs).await? {
            Ok(f) => f,
            Err(c) => return Ok(Err(c)),
        };
        for (r, i, start, got) in fetched {
            let run = &self.runs[r];
            for &p in &bounds[i as usize] {
                let (s, e) = run.page_range(p).unwrap_or((start, start));
                let (from, to) = (
                    s.saturating_sub(start) as usize,
                    e.saturating_sub(start) as usize,
                );
                let Some(bytes) = got.get(from..to) else {
                    return Err(run.corrupt(s, "a page lies outside the range read"));
                };
                PageView::parse(bytes, true).map_err(|d| run.corrupt(s, d))?;
                let bytes = got.slice(from..to);
                self.cache
                    .lock()
                    .insert((run.cache_name.clone(), p), bytes.clone(), self.budget);
                have.insert((r, p), bytes);
            }
        }
        Ok(Ok(have))
    }

    /// Range reads `(run, tag, object, start, end)`, in parallel; each
    /// answer's bytes with its run, tag and start. `Changed` if an object is
    /// gone (collected after a newer commit) or a version-1 `index.idx`
    /// answers with another entity tag (replaced).
    async fn fetch_ranges(
        &self,
        ctx: &RemoteCtx,
        reqs: Vec<(usize, u32, String, u64, u64)>,
    ) -> Result<Result<Vec<(usize, u32, u64, Bytes)>, Changed>> {
        let store = ctx.store.clone();
        let parallel = ctx.opts.read_parallelism.max(1);
        let fetched: Vec<(usize, u32, u64, Option<crate::remote::Ranged>)> = ctx
            .run(async move {
                let results: Vec<Result<_>> = futures::stream::iter(reqs)
                    .map(|(r, tag, object, start, end)| {
                        let store = store.clone();
                        async move {
                            let got = store.get_range(&object, start, end - start).await?;
                            Ok((r, tag, start, got))
                        }
                    })
                    .buffer_unordered(parallel)
                    .collect()
                    .await;
                results.into_iter().collect()
            })
            .await?;
        let mut out = Vec::with_capacity(fetched.len());
        for (r, tag, start, got) in fetched {
            let Some(got) = got else {
                return Ok(Err(Changed));
            };
            if self.runs[r].pinned && got.etag.as_ref().is_some_and(|t| *t != self.etag) {
                return Ok(Err(Changed));
            }
            out.push((r, tag, start, got.bytes));
        }
        Ok(Ok(out))
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

    /// Where each key's record is; the pages needed, of every run, are
    /// fetched together.
    pub(crate) async fn lookup_many(
        &self,
        ctx: &RemoteCtx,
        keys: &[&[u8]],
    ) -> Result<Result<Vec<Option<Loc>>, Changed>> {
        let hashes: Vec<u64> = keys.iter().map(|k| key_hash(k)).collect();
        let mut pages: Vec<(usize, u32)> = Vec::with_capacity(keys.len() * self.runs.len());
        for &h in &hashes {
            for (r, run) in self.runs.iter().enumerate() {
                pages.push((r, run.page_of_key(h)));
            }
        }
        pages.sort_unstable();
        pages.dedup();
        let have = match self.pages(ctx, &pages).await? {
            Ok(h) => h,
            Err(c) => return Ok(Err(c)),
        };
        let mut out = Vec::with_capacity(keys.len());
        for (key, &h) in keys.iter().zip(&hashes) {
            let mut located = None;
            for (r, run) in self.runs.iter().enumerate().rev() {
                let p = run.page_of_key(h);
                let bytes = have.get(&(r, p)).cloned().unwrap_or_default();
                let entry = PageView::checked_before(&bytes).lookup(key, fingerprint(h));
                let page_at = run.page_range(p).map_or(0, |x| x.0);
                if run.pinned && entry.is_some_and(|l| l.len == 0) {
                    // A version-1 index has no tombstones.
                    return Err(run.corrupt(page_at, "an entry has length 0"));
                }
                let Some(said) = Said::of(entry, &run.to_root) else {
                    return Err(run.corrupt(page_at, "an entry names a segment not in the table"));
                };
                match said {
                    Said::Nothing => continue,
                    Said::Deleted => break,
                    Said::Put(l) => {
                        located = Some(l);
                        break;
                    }
                }
            }
            out.push(located);
        }
        Ok(Ok(out))
    }
}

/// The whole of `first`'s object up to `len` bytes: `first` if it holds
/// them, else `first` and one more range read pinned to `etag`.
async fn read_rest(ctx: &RemoteCtx, first: Bytes, len: u64, etag: &str) -> Result<Bytes> {
    if len <= first.len() as u64 {
        return Ok(first);
    }
    let store = ctx.store.clone();
    let start = first.len() as u64;
    let rest = ctx
        .run(async move { store.get_range(INDEX_FILE_NAME, start, len - start).await })
        .await?
        .ok_or_else(|| Error::NotFound("index.idx disappeared while being read".into()))?;
    if rest.etag.as_ref().is_some_and(|t| t != etag) {
        return Err(Error::remote(
            "reading index.idx",
            None,
            "the index changed while being read; retry",
        ));
    }
    let mut all = BytesMut::from(&first[..]);
    all.extend_from_slice(&rest.bytes);
    Ok(all.freeze())
}

fn corrupt_in(object: &str, offset: u64, detail: &str) -> Error {
    Error::corruption(format!("{object} (remote)"), offset, detail)
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
                None,
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
    fn get_many_joins_pages_that_lie_within_the_coalesce_gap_into_one_request() {
        use crate::{DbBuilder, RemoteOptions};
        let (_dir, url) = two_level_remote(6000);
        let keys: Vec<String> = (0..6000)
            .step_by(37)
            .map(|i| format!("key{i:08}"))
            .collect();
        let requests_with_gap = |gap: u64| {
            let db = DbBuilder::for_remote(&url)
                .remote_options(RemoteOptions::default().coalesce_gap(gap))
                .open_blocking()
                .unwrap();
            let got = db.get_many(&keys).unwrap();
            for (k, v) in keys.iter().zip(got) {
                let i: u32 = k[3..].parse().unwrap();
                assert_eq!(v.unwrap(), format!("value {i}"), "gap {gap}");
            }
            db.remote_stats().unwrap().requests
        };
        let apart = requests_with_gap(0);
        let joined = requests_with_gap(32 << 10);
        // 163 keys on as many pages: a request per page and per record
        // without a gap; with the default gap, one for the pages of each
        // directory block and one for the records of the one segment.
        assert!(apart > 163, "{apart} requests without a gap");
        assert!(joined < 10, "{joined} requests with a 32 KiB gap");
    }
}
