//! The 48-byte segment file header codec (FORMAT.md §2.1).
//!
//! ```text
//! 0  magic      "S4DBSEG\0"
//! 8  version    u16 = 2 (1 still read: its records never carry an expiry)
//! 10 flags      u16  0x1 compaction output, 0x2 last segment of its compaction run,
//!                    0x4 the run is selective (it supersedes nothing)
//! 12 reserved   u32 = 0
//! 16 writer     u64
//! 24 number     u64
//! 32 run_first  u64  compaction outputs: number of the run's first segment; else 0
//! 40 reserved   u32 = 0
//! 44 crc32c     u32 over bytes [0, 44)
//! ```

use crate::format::segment_id::SegmentId;

pub(crate) const SEGMENT_HEADER_LEN: usize = 48;
const MAGIC: &[u8; 8] = b"S4DBSEG\0";
/// The version written. Version 2 added records that carry an expiry
/// (FORMAT.md §3.4): a reader of version 1 rejects a segment that may hold
/// one rather than misread it.
const VERSION: u16 = 2;
/// The oldest version still read.
const OLDEST_VERSION: u16 = 1;
/// The segment was written by compaction.
pub(crate) const SEG_FLAG_COMPACTED: u16 = 0x1;
/// The segment is the last one of its compaction run.
pub(crate) const SEG_FLAG_RUN_LAST: u16 = 0x2;
/// The segment's compaction run rewrote only some segments (FORMAT.md §5.2):
/// it supersedes no older segment. Readers older than this flag reject it.
pub(crate) const SEG_FLAG_SELECTIVE: u16 = 0x4;
const KNOWN: u16 = SEG_FLAG_COMPACTED | SEG_FLAG_RUN_LAST | SEG_FLAG_SELECTIVE;

/// A decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub id: SegmentId,
    /// The format version: [`SegmentHeader::new`] makes the one written,
    /// a decoded header keeps the file's.
    pub version: u16,
    pub flags: u16,
    pub run_first: u64,
}

impl SegmentHeader {
    /// The header of a new segment, of the version written.
    pub(crate) fn new(id: SegmentId, flags: u16, run_first: u64) -> Self {
        SegmentHeader {
            id,
            version: VERSION,
            flags,
            run_first,
        }
    }

    /// The header of a new segment of writes (no compaction flag).
    pub(crate) fn plain(id: SegmentId) -> Self {
        Self::new(id, 0, 0)
    }

    /// Whether the segment's records may carry an expiry (FORMAT.md §2.1,
    /// §3.4): not in a segment of version 1, which a writer therefore
    /// never appends an expiring record to.
    pub(crate) fn may_expire(&self) -> bool {
        self.version >= 2
    }

    pub(crate) fn is_compacted(&self) -> bool {
        self.flags & SEG_FLAG_COMPACTED != 0
    }

    /// Output of a selective compaction (FORMAT.md §5.2).
    pub(crate) fn is_selective(&self) -> bool {
        self.flags & SEG_FLAG_SELECTIVE != 0
    }

    /// The header of segment `id` whose own header failed its checks, from
    /// what else tells (FORMAT.md §6.3): the number and the writer come from
    /// the file name; the compaction flags and `run_first` from the valid
    /// headers of the segments numbered just below (`prev`) and just above
    /// (`next`) of the same writer, since a compaction run's segments have
    /// consecutive numbers and only its last has the run-last flag. With no
    /// neighbour in a run, it is a plain segment. The version written is
    /// the current one, which reads the records of every version. The
    /// second value says how the flags were found.
    pub(crate) fn recovered(
        id: SegmentId,
        prev: Option<&SegmentHeader>,
        next: Option<&SegmentHeader>,
    ) -> (Self, &'static str) {
        let run_bits = SEG_FLAG_COMPACTED | SEG_FLAG_SELECTIVE;
        if let Some(n) = next.filter(|n| n.is_compacted() && n.run_first <= id.number) {
            let h = SegmentHeader::new(id, n.flags & run_bits, n.run_first);
            return (
                h,
                "a compaction output, not its run's last (from the next segment's header)",
            );
        }
        if let Some(p) = prev.filter(|p| p.is_compacted() && p.flags & SEG_FLAG_RUN_LAST == 0) {
            let h = SegmentHeader::new(id, (p.flags & run_bits) | SEG_FLAG_RUN_LAST, p.run_first);
            return (
                h,
                "the last output of a compaction run (from the previous segment's header)",
            );
        }
        (
            SegmentHeader::plain(id),
            "a plain segment (no neighbouring segment belongs to a compaction run with it)",
        )
    }

    pub(crate) fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[..8].copy_from_slice(MAGIC);
        b[8..10].copy_from_slice(&self.version.to_le_bytes());
        b[10..12].copy_from_slice(&self.flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.id.writer.to_le_bytes());
        b[24..32].copy_from_slice(&self.id.number.to_le_bytes());
        b[32..40].copy_from_slice(&self.run_first.to_le_bytes());
        let crc = crc32c::crc32c(&b[..44]);
        b[44..48].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a header; the error says which check failed.
    pub(crate) fn decode(b: &[u8]) -> Result<Self, &'static str> {
        let b = b
            .get(..SEGMENT_HEADER_LEN)
            .ok_or("segment header truncated")?;
        if &b[..8] != MAGIC {
            return Err("not an s4db segment (bad magic)");
        }
        let crc = u32::from_le_bytes(b[44..48].try_into().unwrap_or_default());
        if crc32c::crc32c(&b[..44]) != crc {
            return Err("segment header checksum mismatch");
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if !(OLDEST_VERSION..=VERSION).contains(&version) {
            return Err("unsupported segment format version");
        }
        let flags = u16::from_le_bytes([b[10], b[11]]);
        if flags & !KNOWN != 0 {
            return Err("unknown segment flags");
        }
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default());
        Ok(SegmentHeader {
            id: SegmentId {
                writer: u64_at(16),
                number: u64_at(24),
            },
            version,
            flags,
            run_first: u64_at(32),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_detects_flips() {
        let h = SegmentHeader::new(
            SegmentId {
                number: 42,
                writer: 0xdead_beef,
            },
            SEG_FLAG_COMPACTED | SEG_FLAG_RUN_LAST,
            40,
        );
        let b = h.encode();
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        for i in 0..SEGMENT_HEADER_LEN * 8 {
            let mut c = b;
            c[i / 8] ^= 1 << (i % 8);
            assert!(SegmentHeader::decode(&c).is_err(), "bit {i}");
        }
        assert!(SegmentHeader::decode(&b[..47]).is_err());
    }

    #[test]
    fn a_version_1_header_is_still_read_and_its_segment_takes_no_expiry() {
        let id = SegmentId {
            number: 3,
            writer: 9,
        };
        assert!(
            SegmentHeader::plain(id).may_expire(),
            "new segments: version 2"
        );
        let v1 = SegmentHeader {
            version: 1,
            ..SegmentHeader::plain(id)
        };
        let b = v1.encode();
        assert_eq!(u16::from_le_bytes([b[8], b[9]]), 1);
        let read = SegmentHeader::decode(&b).unwrap();
        assert_eq!(read, v1);
        assert!(!read.may_expire());
        let v3 = SegmentHeader { version: 3, ..v1 };
        assert!(SegmentHeader::decode(&v3.encode()).is_err());
    }

    #[test]
    fn a_lost_header_is_rebuilt_from_its_run_neighbours() {
        let id = |number| SegmentId { number, writer: 7 };
        let run = |number, flags| SegmentHeader::new(id(number), SEG_FLAG_COMPACTED | flags, 10);
        // First or middle of a run: the next one names the run.
        let (h, _) = SegmentHeader::recovered(id(10), None, Some(&run(11, 0)));
        assert_eq!(h, run(10, 0));
        let (h, _) = SegmentHeader::recovered(id(11), Some(&run(10, 0)), Some(&run(12, 0)));
        assert_eq!(h, run(11, 0));
        // Last of a run: the previous one is in it and not its last.
        let (h, _) = SegmentHeader::recovered(id(12), Some(&run(11, 0)), None);
        assert_eq!(h, run(12, SEG_FLAG_RUN_LAST));
        let selective = SEG_FLAG_SELECTIVE;
        let (h, _) = SegmentHeader::recovered(id(12), Some(&run(11, selective)), None);
        assert_eq!(h, run(12, SEG_FLAG_RUN_LAST | selective));
        // After a run's last, or beside plain segments: plain.
        let plain = SegmentHeader::plain(id(9));
        let (h, _) = SegmentHeader::recovered(id(13), Some(&run(12, SEG_FLAG_RUN_LAST)), None);
        assert_eq!(h, SegmentHeader::plain(id(13)));
        let (h, _) = SegmentHeader::recovered(id(10), Some(&plain), None);
        assert_eq!(h, SegmentHeader::plain(id(10)));
        // A next run that starts above it says nothing about it.
        let later = SegmentHeader {
            run_first: 11,
            ..run(11, 0)
        };
        let (h, _) = SegmentHeader::recovered(id(10), None, Some(&later));
        assert_eq!(h, SegmentHeader::plain(id(10)));
        // The header written decodes, as the current version.
        assert_eq!(SegmentHeader::decode(&h.encode()), Ok(h));
    }
}
