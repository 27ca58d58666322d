//! The key hash and how it picks an index page (FORMAT.md §4.1).
//!
//! `h = XXH3-64(key, seed 0)`. The page is `((h >> 32) * page_count) >> 32`
//! (the high 32 bits scaled to the page count), and the fingerprint stored in
//! the page is the low 32 bits, `h & 0xffff_ffff`. The same hash serves the
//! in-memory tables, so a key is hashed once per operation.

/// XXH3-64 of the key with seed 0.
#[inline]
pub(crate) fn key_hash(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

/// The page (bucket) of a hash among `page_count` pages.
#[inline]
pub(crate) fn page_of(h: u64, page_count: u32) -> u32 {
    (((h >> 32) * u64::from(page_count)) >> 32) as u32
}

/// The fingerprint stored for a key in its page.
#[inline]
pub(crate) fn fingerprint(h: u64) -> u32 {
    h as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_published_xxh3_vectors() {
        // XXH3-64 of the empty input with seed 0, from the reference implementation.
        assert_eq!(key_hash(b""), 0x2D06_8005_38D3_94C2);
        assert_eq!(key_hash(b"key00000001"), key_hash(b"key00000001"));
    }

    #[test]
    fn pages_stay_in_range() {
        for pc in [1u32, 2, 7, 6144, u32::MAX] {
            for h in [0u64, u64::MAX, 0x8000_0000_0000_0000, 12345] {
                assert!(page_of(h, pc) < pc);
            }
        }
    }
}
