//! Segment identity and file naming: the only place that knows how a segment
//! is named (FORMAT.md §2).
//!
//! A segment is identified by `(number, writer)`. Numbers grow and are never
//! reused by a database directory; the writer id (random, 64-bit, chosen when a
//! directory is created) keeps two writers that start from the same remote from
//! ever choosing the same name. Segments are ordered by number, then writer:
//! replay applies them in that order, so a higher number always wins.

use std::fmt;

use crate::error::{Error, Result};

/// A new random writer id (FORMAT.md §2).
///
/// # Errors
/// [`Error::Io`] if the system's random source fails.
pub(crate) fn new_writer_id() -> Result<u64> {
    getrandom::u64()
        .map_err(|e| Error::io("choosing a writer id", std::io::Error::other(e.to_string())))
}

/// A segment's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId {
    /// Position in the writer's sequence; ordering key.
    pub number: u64,
    /// The writer (database directory) that created the segment.
    pub writer: u64,
}

const PREFIX: &str = "data_";
const SUFFIX: &str = ".s4db";
const RUN_PREFIX: &str = "index_";
const RUN_SUFFIX: &str = ".run";

impl SegmentId {
    /// The segment's file name: `data_{number:08}_{writer:016x}.s4db`.
    pub fn file_name(&self) -> String {
        format!("{PREFIX}{:08}_{:016x}{SUFFIX}", self.number, self.writer)
    }

    /// Parses a segment file name; `None` for any other name.
    pub fn parse_file_name(name: &str) -> Option<SegmentId> {
        Self::parse_with(name, PREFIX, SUFFIX)
    }

    /// The file name of the index run with this number and writer
    /// (FORMAT.md §4.7): `index_{number:08}_{writer:016x}.run`. Runs take
    /// their numbers from the same sequence as segments.
    pub(crate) fn run_file_name(&self) -> String {
        format!(
            "{RUN_PREFIX}{:08}_{:016x}{RUN_SUFFIX}",
            self.number, self.writer
        )
    }

    /// Parses an index run's file name; `None` for any other name.
    pub(crate) fn parse_run_file_name(name: &str) -> Option<SegmentId> {
        Self::parse_with(name, RUN_PREFIX, RUN_SUFFIX)
    }

    fn parse_with(name: &str, prefix: &str, suffix: &str) -> Option<SegmentId> {
        let body = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
        let (num, writer) = body.split_once('_')?;
        if num.len() < 8 || writer.len() != 16 || !num.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !writer
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return None;
        }
        Some(SegmentId {
            number: num.parse().ok()?,
            writer: u64::from_str_radix(writer, 16).ok()?,
        })
    }
}

/// The number after `n`; an error once numbers run out (only a hostile file
/// name or index can get there: 2^64 segments are never written).
pub(crate) fn next_number(n: u64) -> crate::Result<u64> {
    n.checked_add(1).filter(|&m| m < u64::MAX).ok_or_else(|| {
        crate::Error::InvalidArgument(
            "segment numbers are exhausted (a segment file or index claims number 2^64-1)".into(),
        )
    })
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_round_trips() {
        for id in [
            SegmentId {
                number: 1,
                writer: 0,
            },
            SegmentId {
                number: 123_456_789_012,
                writer: u64::MAX,
            },
        ] {
            assert_eq!(SegmentId::parse_file_name(&id.file_name()), Some(id));
        }
        assert_eq!(
            SegmentId {
                number: 7,
                writer: 0xab
            }
            .file_name(),
            "data_00000007_00000000000000ab.s4db"
        );
    }

    #[test]
    fn run_file_names_round_trip_and_differ_from_segments() {
        let id = SegmentId {
            number: 12,
            writer: 0xab,
        };
        assert_eq!(id.run_file_name(), "index_00000012_00000000000000ab.run");
        assert_eq!(
            SegmentId::parse_run_file_name(&id.run_file_name()),
            Some(id)
        );
        assert_eq!(SegmentId::parse_file_name(&id.run_file_name()), None);
        assert_eq!(SegmentId::parse_run_file_name(&id.file_name()), None);
        assert_eq!(SegmentId::parse_run_file_name("index.idx"), None);
    }

    #[test]
    fn other_names_are_not_segments() {
        for name in [
            "index.idx",
            "data_1_00000000000000ab.s4db",
            "data_00000001_00000000000000AB.s4db",
            "data_00000001_00000000000000ab.s4db.torn-40",
            // Set aside by a rebuild (FORMAT.md §6.3): never a segment, so
            // never opened, uploaded or counted.
            "data_00000001_00000000000000ab.s4db.damaged",
            "data_00000001_00000000000000ab.s4db.2.damaged",
            "data_0000000x_00000000000000ab.s4db",
            "data_99999999999999999999999_00000000000000ab.s4db",
        ] {
            assert_eq!(SegmentId::parse_file_name(name), None, "{name}");
        }
    }

    #[test]
    fn order_is_number_then_writer() {
        let a = SegmentId {
            number: 1,
            writer: 9,
        };
        let b = SegmentId {
            number: 2,
            writer: 0,
        };
        assert!(a < b);
    }
}
