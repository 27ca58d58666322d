//! The record codec: one put or delete, as bytes in a segment (FORMAT.md §3).
//!
//! ```text
//! 0  crc32c   u32  over bytes [4, record_len)
//! 4  flags    u8   0x01 tombstone, 0x02 snappy, 0x04 batch continues,
//!                   0x08 expires
//! 5  reserved u8   0
//! 6  key_len  u16  1..=65535
//! 8  val_len  u32  stored value length (with the expiry's 8 bytes, if any)
//! 12 key, then [expires_at u64 Unix milliseconds, if 0x08], then the
//!    stored (possibly compressed) value
//! ```
//! Pure functions over byte slices: no I/O, no panics on any input, and no
//! allocation larger than the input justifies (a decompressed length is
//! checked against [`MAX_VALUE_LEN`] before allocating).

use crate::format::limits::{MAX_KEY_LEN, MAX_VALUE_LEN};

/// Length of the fixed record header.
pub(crate) const HEADER_LEN: usize = 12;
/// The record is a delete.
pub(crate) const FLAG_TOMBSTONE: u8 = 0x01;
/// The stored value is a raw Snappy block.
pub(crate) const FLAG_SNAPPY: u8 = 0x02;
/// More records of the same atomic batch follow this one.
pub(crate) const FLAG_BATCH_CONT: u8 = 0x04;
/// The value field starts with an expiry time (FORMAT.md §3.4).
pub(crate) const FLAG_EXPIRES: u8 = 0x08;
const KNOWN_FLAGS: u8 = FLAG_TOMBSTONE | FLAG_SNAPPY | FLAG_BATCH_CONT | FLAG_EXPIRES;
/// Bytes of an expiry time at the start of the value field.
pub(crate) const EXPIRY_LEN: usize = 8;
/// Values shorter than this are never worth compressing.
const MIN_COMPRESS_LEN: usize = 24;

/// Why bytes are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordError {
    /// Fewer bytes remain than the header or its lengths need.
    Truncated,
    /// The CRC32C does not match.
    Checksum,
    /// Flags, reserved bits or lengths are impossible.
    Malformed(&'static str),
}

impl RecordError {
    pub(crate) fn describe(self) -> String {
        match self {
            RecordError::Truncated => "record truncated".into(),
            RecordError::Checksum => "record checksum mismatch".into(),
            RecordError::Malformed(why) => format!("malformed record: {why}"),
        }
    }
}

/// A decoded record, borrowing from the buffer it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordView<'a> {
    pub flags: u8,
    pub key: &'a [u8],
    /// The value as stored (compressed when `FLAG_SNAPPY` is set), after
    /// the expiry time if there is one.
    pub stored: &'a [u8],
    /// When the record expires, in Unix milliseconds (`FLAG_EXPIRES`).
    pub expires_at: Option<u64>,
    /// Total encoded length, header included.
    pub len: usize,
}

impl<'a> RecordView<'a> {
    pub(crate) fn is_tombstone(&self) -> bool {
        self.flags & FLAG_TOMBSTONE != 0
    }

    pub(crate) fn batch_continues(&self) -> bool {
        self.flags & FLAG_BATCH_CONT != 0
    }

    /// Whether the record has expired at `now_ms` (Unix milliseconds): its
    /// expiry time is at or before it.
    pub(crate) fn expired_at(&self, now_ms: u64) -> bool {
        self.expires_at.is_some_and(|t| t <= now_ms)
    }

    /// The value's length once decompressed (its Snappy preamble when
    /// compressed), without decompressing it.
    pub(crate) fn value_len(&self) -> Result<usize, RecordError> {
        if self.flags & FLAG_SNAPPY == 0 {
            return Ok(self.stored.len());
        }
        snap::raw::decompress_len(self.stored)
            .map_err(|_| RecordError::Malformed("bad snappy length"))
    }

    /// The value bytes, decompressed if needed.
    pub(crate) fn value(&self) -> Result<Vec<u8>, RecordError> {
        if self.flags & FLAG_SNAPPY == 0 {
            return Ok(self.stored.to_vec());
        }
        decompress(self.stored).map_err(RecordError::Malformed)
    }
}

/// Decompresses a raw Snappy block, refusing before it allocates a claimed
/// length over [`MAX_VALUE_LEN`] or over what the input can expand to.
pub(crate) fn decompress(stored: &[u8]) -> Result<Vec<u8>, &'static str> {
    let n = snap::raw::decompress_len(stored).map_err(|_| "bad snappy length")?;
    // Snappy cannot expand input more than about 22 times (a 3-byte copy
    // yields at most 64 bytes): a larger claim is refused before allocating.
    if n > MAX_VALUE_LEN || n > stored.len().saturating_mul(32).saturating_add(64) {
        return Err("decompressed length over limit");
    }
    let mut out = vec![0u8; n];
    let got = snap::raw::Decoder::new()
        .decompress(stored, &mut out)
        .map_err(|_| "bad snappy data")?;
    if got != n {
        return Err("snappy length mismatch");
    }
    Ok(out)
}

/// Reads only the lengths in a header: the total record length it claims.
/// `Err(Truncated)` when fewer than `HEADER_LEN` bytes are given.
pub(crate) fn claimed_len(buf: &[u8]) -> Result<usize, RecordError> {
    let h = buf.get(..HEADER_LEN).ok_or(RecordError::Truncated)?;
    let key_len = u16::from_le_bytes([h[6], h[7]]) as usize;
    let val_len = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
    Ok(HEADER_LEN + key_len + val_len)
}

/// Decodes and checks the record at the start of `buf`.
pub(crate) fn decode(buf: &[u8]) -> Result<RecordView<'_>, RecordError> {
    let len = claimed_len(buf)?;
    let h = &buf[..HEADER_LEN];
    let flags = h[4];
    if flags & !KNOWN_FLAGS != 0 || h[5] != 0 {
        return Err(RecordError::Malformed("unknown flags"));
    }
    let key_len = u16::from_le_bytes([h[6], h[7]]) as usize;
    if key_len == 0 {
        return Err(RecordError::Malformed("empty key"));
    }
    let val_len = len - HEADER_LEN - key_len;
    let expiry_len = if flags & FLAG_EXPIRES != 0 {
        EXPIRY_LEN
    } else {
        0
    };
    if val_len > MAX_VALUE_LEN + expiry_len {
        return Err(RecordError::Malformed("value length over limit"));
    }
    if val_len < expiry_len {
        return Err(RecordError::Malformed("expiry time truncated"));
    }
    if flags & FLAG_TOMBSTONE != 0 && (val_len != 0 || flags & (FLAG_SNAPPY | FLAG_EXPIRES) != 0) {
        return Err(RecordError::Malformed("tombstone with a value"));
    }
    let rec = buf.get(..len).ok_or(RecordError::Truncated)?;
    let stored_crc = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    if crc32c::crc32c(&rec[4..]) != stored_crc {
        return Err(RecordError::Checksum);
    }
    let vstart = HEADER_LEN + key_len;
    let expires_at = (expiry_len != 0).then(|| {
        let mut t = [0u8; EXPIRY_LEN];
        t.copy_from_slice(&rec[vstart..vstart + EXPIRY_LEN]);
        u64::from_le_bytes(t)
    });
    Ok(RecordView {
        flags,
        key: &rec[HEADER_LEN..vstart],
        stored: &rec[vstart + expiry_len..],
        expires_at,
        len,
    })
}

/// Checks that `buf` is exactly one valid put record of `key`, as an index
/// entry says it is, and returns its value, or `None` if the record has
/// expired at `now_ms` (Unix milliseconds). Errors name `file` and `offset`
/// (`file` is only formatted for an error: this is every read's hot path).
pub(crate) fn value_of(
    buf: &[u8],
    key: &[u8],
    file: &dyn std::fmt::Display,
    offset: u64,
    now_ms: u64,
) -> crate::Result<Option<Vec<u8>>> {
    let corrupt = |why: String| crate::Error::corruption(file.to_string(), offset, why);
    let rec = decode(buf).map_err(|e| corrupt(e.describe()))?;
    if rec.len != buf.len() {
        return Err(corrupt("record length disagrees with the index".into()));
    }
    if rec.key != key {
        return Err(corrupt(
            "record holds a different key than the index says".into(),
        ));
    }
    if rec.is_tombstone() {
        return Err(corrupt("index points at a tombstone".into()));
    }
    if rec.expired_at(now_ms) {
        return Ok(None);
    }
    rec.value().map(Some).map_err(|e| corrupt(e.describe()))
}

/// Appends one record to `out` and returns its length. `value: None` writes
/// a tombstone; `expires_at` (Unix milliseconds) is only written with a
/// value. The caller has checked the key and value limits.
pub(crate) fn encode(
    out: &mut Vec<u8>,
    key: &[u8],
    value: Option<&[u8]>,
    expires_at: Option<u64>,
    batch_cont: bool,
    encoder: &mut snap::raw::Encoder,
) -> usize {
    debug_assert!(!key.is_empty() && key.len() <= MAX_KEY_LEN);
    let start = out.len();
    out.resize(start + HEADER_LEN, 0);
    out.extend_from_slice(key);
    let mut flags = if batch_cont { FLAG_BATCH_CONT } else { 0 };
    let fstart = out.len();
    if let (Some(t), Some(_)) = (expires_at, value) {
        flags |= FLAG_EXPIRES;
        out.extend_from_slice(&t.to_le_bytes());
    }
    let vstart = out.len();
    match value {
        None => flags |= FLAG_TOMBSTONE,
        Some(v) if v.len() >= MIN_COMPRESS_LEN => {
            out.resize(vstart + snap::raw::max_compress_len(v.len()), 0);
            match encoder.compress(v, &mut out[vstart..]) {
                Ok(n) if n < v.len() => {
                    out.truncate(vstart + n);
                    flags |= FLAG_SNAPPY;
                }
                _ => {
                    out.truncate(vstart);
                    out.extend_from_slice(v);
                }
            }
        }
        Some(v) => out.extend_from_slice(v),
    }
    let val_len = (out.len() - fstart) as u32;
    let h = &mut out[start..start + HEADER_LEN];
    h[4] = flags;
    h[5] = 0;
    h[6..8].copy_from_slice(&(key.len() as u16).to_le_bytes());
    h[8..12].copy_from_slice(&val_len.to_le_bytes());
    seal_crc(&mut out[start..]);
    out.len() - start
}

/// Sets or clears the batch-continues flag of the encoded record at the start
/// of `rec` (exactly one record) and recomputes its checksum.
pub(crate) fn set_batch_cont(rec: &mut [u8], cont: bool) {
    if cont {
        rec[4] |= FLAG_BATCH_CONT;
    } else {
        rec[4] &= !FLAG_BATCH_CONT;
    }
    seal_crc(rec);
}

fn seal_crc(rec: &mut [u8]) {
    let crc = crc32c::crc32c(&rec[4..]);
    rec[..4].copy_from_slice(&crc.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(key: &[u8], value: Option<&[u8]>, cont: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let n = encode(
            &mut out,
            key,
            value,
            None,
            cont,
            &mut snap::raw::Encoder::new(),
        );
        assert_eq!(n, out.len());
        out
    }

    #[test]
    fn round_trips_plain_value() {
        let buf = enc(b"k1", Some(b"hello"), false);
        let r = decode(&buf).unwrap();
        assert_eq!(r.key, b"k1");
        assert_eq!(r.value().unwrap(), b"hello");
        assert!(!r.is_tombstone() && !r.batch_continues());
        assert_eq!(r.len, HEADER_LEN + 2 + 5);
    }

    #[test]
    fn compresses_only_when_smaller() {
        let text = b"abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabc".to_vec();
        let buf = enc(b"k", Some(&text), false);
        let r = decode(&buf).unwrap();
        assert_ne!(r.flags & FLAG_SNAPPY, 0);
        assert!(r.stored.len() < text.len());
        assert_eq!(r.value().unwrap(), text);

        let random: Vec<u8> = (0..64u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let r2buf = enc(b"k", Some(&random), false);
        let r2 = decode(&r2buf).unwrap();
        assert_eq!(r2.flags & FLAG_SNAPPY, 0);
        assert_eq!(r2.value().unwrap(), random);
    }

    #[test]
    fn tombstone_round_trips() {
        let buf = enc(b"gone", None, true);
        let r = decode(&buf).unwrap();
        assert!(r.is_tombstone() && r.batch_continues());
        assert_eq!(r.stored, b"");
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let buf = enc(b"key", Some(b"value value value value value!"), false);
        for i in 0..buf.len() * 8 {
            let mut b = buf.clone();
            b[i / 8] ^= 1 << (i % 8);
            assert!(decode(&b).is_err(), "flip of bit {i} went unnoticed");
        }
    }

    #[test]
    fn every_truncation_is_detected() {
        let buf = enc(b"key", Some(b"some value"), false);
        for n in 0..buf.len() {
            assert!(decode(&buf[..n]).is_err(), "cut at {n} went unnoticed");
        }
    }

    #[test]
    fn zeroed_bytes_are_not_a_record() {
        assert_eq!(decode(&[0u8; 64]), Err(RecordError::Malformed("empty key")));
    }

    #[test]
    fn set_batch_cont_keeps_checksum_valid() {
        let mut buf = enc(b"k", Some(b"v"), true);
        set_batch_cont(&mut buf, false);
        let r = decode(&buf).unwrap();
        assert!(!r.batch_continues());
    }

    #[test]
    fn the_most_compressible_values_still_round_trip() {
        for v in [vec![0u8; 1 << 20], vec![b'a'; 100_000]] {
            let buf = enc(b"k", Some(&v), false);
            let r = decode(&buf).unwrap();
            assert_ne!(r.flags & FLAG_SNAPPY, 0);
            assert_eq!(r.value().unwrap(), v, "ratio {}", v.len() / r.stored.len());
        }
    }

    /// A sealed record of key `k` whose stored value is `stored`, flagged
    /// as Snappy-compressed whatever the bytes say.
    fn snappy_record_storing(stored: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; HEADER_LEN];
        buf.extend_from_slice(b"k");
        buf.extend_from_slice(stored);
        buf[4] = FLAG_SNAPPY;
        buf[6..8].copy_from_slice(&1u16.to_le_bytes());
        buf[8..12].copy_from_slice(&(stored.len() as u32).to_le_bytes());
        seal_crc(&mut buf);
        buf
    }

    #[test]
    fn a_decompressed_length_beyond_snappys_ratio_is_rejected() {
        // 600 bytes claimed from a 3-byte stored value.
        let buf = snappy_record_storing(&[0xd8, 0x04, 0x00]);
        assert_eq!(
            decode(&buf).unwrap().value(),
            Err(RecordError::Malformed("decompressed length over limit"))
        );
    }

    #[test]
    fn huge_claimed_decompressed_length_is_rejected_without_allocating() {
        // A snappy varint claiming 2^32 bytes.
        let buf = snappy_record_storing(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]);
        let r = decode(&buf).unwrap();
        assert!(r.value().is_err());
    }
}

#[cfg(test)]
mod vectors {
    use super::*;
    use crate::format::segment_header::SegmentHeader;
    use crate::format::segment_id::SegmentId;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// FORMAT.md §9 prints these bytes; a change here must change it too.
    #[test]
    fn records_and_segment_header_match_the_format_test_vectors() {
        let mut enc = snap::raw::Encoder::new();
        let mut rec = |k: &[u8], v: Option<&[u8]>, cont: bool| {
            let mut out = Vec::new();
            encode(&mut out, k, v, None, cont, &mut enc);
            hex(&out)
        };
        assert_eq!(rec(b"k", Some(b"v"), false), "971b873b00000100010000006b76");
        assert_eq!(rec(b"k", None, false), "7aaa97df01000100000000006b");
        // A put that expires at Unix millisecond 1,800,000,000,000 (§3.4).
        let mut enc = snap::raw::Encoder::new();
        let mut out = Vec::new();
        encode(
            &mut out,
            b"k",
            Some(b"v"),
            Some(1_800_000_000_000),
            false,
            &mut enc,
        );
        assert_eq!(hex(&out), "065bd80608000100090000006b00505c18a301000076");
        let r = decode(&out).unwrap();
        assert_eq!(
            (r.expires_at, r.value().unwrap()),
            (Some(1_800_000_000_000), b"v".to_vec())
        );
        assert!(r.expired_at(1_800_000_000_000) && !r.expired_at(1_799_999_999_999));
        assert_eq!(
            rec(b"key", Some(b"abcabcabcabcabcabcabcabcabcabcab"), true),
            "c7f321a60600030008000000".to_owned() + "6b6579" + "2008616263720300"
        );
        let h = SegmentHeader::plain(SegmentId {
            number: 1,
            writer: 0x0102_0304_0506_0708,
        });
        assert_eq!(
            hex(&h.encode()),
            concat!(
                "5334444253454700020000000000000008070605040302010100000000000000",
                "0000000000000000",
                "00000000",
                "0a2c713c"
            )
        );
        // The last output of a selective compaction run (FORMAT.md §5.2).
        let h = SegmentHeader::new(
            SegmentId {
                number: 5,
                writer: 0x0102_0304_0506_0708,
            },
            0x7,
            5,
        );
        assert!(h.is_compacted() && h.is_selective());
        assert_eq!(
            hex(&h.encode()),
            concat!(
                "5334444253454700020007000000000008070605040302010500000000000000",
                "0500000000000000",
                "00000000",
                "c8b3eb68"
            )
        );
    }
}
