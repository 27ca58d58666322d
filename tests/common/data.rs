//! The benchmark data shape, shared by tests, benches and examples:
//! keys `key%08d`; values with even i compressible text, odd i random hex.
//! (Included with `#[path]` by benches and examples, so there is one copy.)
#![allow(dead_code)]

/// `key%08d`.
pub fn key_for(i: u64) -> String {
    format!("key{i:08}")
}

/// A `len`-byte value: compressible text for even `i`, random hex for odd.
pub fn value_for(i: u64, len: usize) -> Vec<u8> {
    if i.is_multiple_of(2) {
        let text = format!("value {i} of the quick brown fox jumps over the lazy dog ");
        text.bytes().cycle().take(len).collect()
    } else {
        let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b"0123456789abcdef"[(x & 15) as usize]
            })
            .collect()
    }
}
