//! The `index.idx` page codec (FORMAT.md §4.4): one hash bucket of entries.
//!
//! ```text
//! count        u32
//! fingerprints [u32; count]          ascending; ties ordered by key bytes
//! entries      [(segment u32, offset u32, length u32, key_end u32); count]
//! key heap     concatenated keys     key i = heap[key_end(i-1) .. key_end(i)], key_end(-1) = 0
//! crc32c       u32 over every byte of the page before it
//! ```
//! A lookup touches few cache lines: fingerprints are uniform within a page
//! (the page was chosen by other bits of the hash), so an interpolation guess
//! lands next to the match; an entry's location and key end share 16 bytes.
//!
//! [`PageView::parse`] checks the structure of untrusted bytes once; every
//! accessor is bounds-checked as well, so no bytes can cause a panic.

use crate::format::le::u32_at;
use crate::index::loc::Loc;

/// Fixed bytes per entry besides the key: fingerprint, loc, key end.
pub(crate) const ENTRY_FIXED: usize = 4 + 12 + 4;
/// Bytes a page adds besides its entries: count and checksum.
pub(crate) const PAGE_OVERHEAD: usize = 8;

/// A structurally checked page.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageView<'a> {
    bytes: &'a [u8],
    count: usize,
}

impl<'a> PageView<'a> {
    /// Checks the checksum (when `check_crc`) and the structure: the counts
    /// fit, key ends are ascending and inside the heap, fingerprints ascend.
    pub(crate) fn parse(bytes: &'a [u8], check_crc: bool) -> Result<Self, &'static str> {
        if bytes.len() < PAGE_OVERHEAD {
            return Err("page shorter than 8 bytes");
        }
        let body = &bytes[..bytes.len() - 4];
        if check_crc {
            let crc = u32_at(bytes, bytes.len() - 4).ok_or("page truncated")?;
            if crc32c::crc32c(body) != crc {
                return Err("page checksum mismatch");
            }
        }
        let count = u32_at(body, 0).ok_or("page truncated")? as usize;
        let fixed = count
            .checked_mul(ENTRY_FIXED)
            .and_then(|n| n.checked_add(4))
            .ok_or("page entry count overflows")?;
        if fixed > body.len() {
            return Err("page entry count larger than the page");
        }
        let heap_len = body.len() - fixed;
        let view = PageView { bytes: body, count };
        let mut prev_end = 0usize;
        let mut prev_fp = 0u32;
        for i in 0..count {
            let end = view.key_end(i) as usize;
            if end <= prev_end || end > heap_len {
                return Err("page key offsets out of order or out of bounds");
            }
            let fp = view.fp(i);
            if fp < prev_fp {
                return Err("page fingerprints not ascending");
            }
            prev_end = end;
            prev_fp = fp;
        }
        if prev_end != heap_len {
            return Err("page key heap has trailing bytes");
        }
        Ok(view)
    }

    /// A view of a page that [`PageView::parse`] already accepted: O(1),
    /// reading only the count. Every accessor stays bounds-checked, so even
    /// bytes that were never checked cannot cause a panic, only misses.
    #[inline]
    pub(crate) fn checked_before(bytes: &'a [u8]) -> Self {
        let body = &bytes[..bytes.len().saturating_sub(4)];
        let count = u32_at(body, 0).unwrap_or(0) as usize;
        let fits = count
            .checked_mul(ENTRY_FIXED)
            .and_then(|n| n.checked_add(4))
            .is_some_and(|n| n <= body.len());
        PageView {
            bytes: body,
            count: if fits { count } else { 0 },
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.count
    }

    #[inline]
    fn fp(&self, i: usize) -> u32 {
        u32_at(self.bytes, 4 + 4 * i).unwrap_or(u32::MAX)
    }

    #[inline]
    fn entry(&self, i: usize) -> usize {
        4 + 4 * self.count + 16 * i
    }

    #[inline]
    fn key_end(&self, i: usize) -> u32 {
        u32_at(self.bytes, self.entry(i) + 12).unwrap_or(0)
    }

    /// The key of entry `i` (empty if out of range).
    #[inline]
    pub(crate) fn key(&self, i: usize) -> &'a [u8] {
        let heap = 4 + ENTRY_FIXED * self.count;
        let start = if i == 0 {
            0
        } else {
            self.key_end(i - 1) as usize
        };
        let end = self.key_end(i) as usize;
        self.bytes.get(heap + start..heap + end).unwrap_or_default()
    }

    /// The location of entry `i`.
    #[inline]
    pub(crate) fn loc(&self, i: usize) -> Loc {
        let o = self.entry(i);
        Loc {
            segment: u32_at(self.bytes, o).unwrap_or(u32::MAX),
            offset: u32_at(self.bytes, o + 4).unwrap_or(0),
            len: u32_at(self.bytes, o + 8).unwrap_or(0),
        }
    }

    /// Finds `key` (whose fingerprint is `fp`) in the page.
    pub(crate) fn lookup(&self, key: &[u8], fp: u32) -> Option<Loc> {
        // Interpolation guess, then walk to the first entry >= fp.
        let mut i = ((u64::from(fp) * self.count as u64) >> 32) as usize;
        while i > 0 && self.fp(i - 1) >= fp {
            i -= 1;
        }
        while i < self.count && self.fp(i) < fp {
            i += 1;
        }
        while i < self.count && self.fp(i) == fp {
            if self.key(i) == key {
                return Some(self.loc(i));
            }
            i += 1;
        }
        None
    }
}

/// Appends one page holding `entries` (already sorted by fingerprint, then
/// key) to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, entries: &[(u32, &[u8], Loc)]) {
    let start = out.len();
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (fp, _, _) in entries {
        out.extend_from_slice(&fp.to_le_bytes());
    }
    let mut end = 0u32;
    for (_, key, loc) in entries {
        end += key.len() as u32;
        out.extend_from_slice(&loc.segment.to_le_bytes());
        out.extend_from_slice(&loc.offset.to_le_bytes());
        out.extend_from_slice(&loc.len.to_le_bytes());
        out.extend_from_slice(&end.to_le_bytes());
    }
    for (_, key, _) in entries {
        out.extend_from_slice(key);
    }
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(n: u32) -> Loc {
        Loc {
            segment: n,
            offset: n * 10,
            len: n + 1,
        }
    }

    #[test]
    fn lookup_finds_every_entry_including_fingerprint_ties() {
        let entries: Vec<(u32, &[u8], Loc)> = vec![
            (1, b"a", loc(1)),
            (5, b"b", loc(2)),
            (5, b"c", loc(3)),
            (9, b"dd", loc(4)),
        ];
        let mut buf = Vec::new();
        encode(&mut buf, &entries);
        let p = PageView::parse(&buf, true).unwrap();
        assert_eq!(p.len(), 4);
        for (fp, k, l) in &entries {
            assert_eq!(p.lookup(k, *fp), Some(*l));
        }
        assert_eq!(p.lookup(b"zz", 5), None);
        assert_eq!(p.lookup(b"a", 2), None);
    }

    #[test]
    fn empty_page_is_valid() {
        let mut buf = Vec::new();
        encode(&mut buf, &[]);
        assert_eq!(buf.len(), PAGE_OVERHEAD);
        let p = PageView::parse(&buf, true).unwrap();
        assert_eq!(p.lookup(b"a", 0), None);
    }

    #[test]
    fn damaged_pages_are_rejected() {
        let entries: Vec<(u32, &[u8], Loc)> = vec![(1, b"a", loc(1)), (2, b"bb", loc(2))];
        let mut buf = Vec::new();
        encode(&mut buf, &entries);
        for i in 0..buf.len() * 8 {
            let mut b = buf.clone();
            b[i / 8] ^= 1 << (i % 8);
            assert!(PageView::parse(&b, true).is_err(), "bit {i}");
        }
        for n in 0..buf.len() {
            assert!(PageView::parse(&buf[..n], true).is_err(), "cut {n}");
        }
    }

    #[test]
    fn structure_is_checked_even_without_crc() {
        // count claims 1000 entries in a tiny page.
        let mut buf = 1000u32.to_le_bytes().to_vec();
        buf.extend_from_slice(&[0u8; 8]);
        assert!(PageView::parse(&buf, false).is_err());
    }
}
