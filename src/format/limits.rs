//! The documented size limits, in one place (FORMAT.md §7).
//!
//! These bound every length field s4db writes, so that every offset fits in
//! the `u32` fields of an index entry: a segment never grows past 4 GiB.

/// Longest key, in bytes: 65,535 (the record's `key_len` is a `u16`). Keys
/// must also be at least one byte long.
pub const MAX_KEY_LEN: usize = u16::MAX as usize;

/// Longest value, in bytes: 1 GiB (1,073,741,824).
pub const MAX_VALUE_LEN: usize = 1 << 30;

/// Largest encoded size of one atomic batch: 2 GiB. A batch is written into a
/// single segment, so this keeps every record offset below 4 GiB.
pub const MAX_BATCH_BYTES: usize = 1 << 31;

/// Default soft limit of a segment's size: 64 MiB.
pub const DEFAULT_MAX_SEGMENT_SIZE: u64 = 64 << 20;

/// Largest allowed `max_segment_size`: 2 GiB.
pub const MAX_SEGMENT_SIZE_LIMIT: u64 = 1 << 31;

/// Smallest allowed `max_segment_size`: 4 KiB (small sizes are useful in tests).
pub const MIN_SEGMENT_SIZE_LIMIT: u64 = 4 << 10;
