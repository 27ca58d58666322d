//! The reports returned by maintenance operations and `stats`.

/// A snapshot of a database's size, from [`crate::Db::stats`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Live keys.
    pub keys: u64,
    /// Segment files.
    pub segments: u64,
    /// Bytes of the records that live keys point to.
    pub live_bytes: u64,
    /// Bytes of all segment files.
    pub total_bytes: u64,
    /// Keys changed since `index.idx` was last written.
    pub unindexed_changes: u64,
    /// Heap bytes held by the index: the changes since `index.idx` was
    /// written, a small table per index page, and `index.idx` itself when it
    /// is not mapped (a remote index loaded whole, or a just-built one the
    /// system could not map).
    pub index_memory_bytes: u64,
    /// Bytes of the index runs mapped read-only into memory. The kernel reads
    /// them in as gets touch their pages, and can drop them again under
    /// memory pressure, so they count towards resident memory only as they
    /// are used.
    pub index_mapped_bytes: u64,
    /// Index runs a lookup consults (FORMAT.md §4.7): at most 8 after a
    /// checkpoint; 1 for a version-1 index.
    pub index_runs: u64,
    /// Segments that are not on the remote as far as this directory knows
    /// (all of them when it never synced); 0 without a remote.
    pub unuploaded_segments: u64,
    /// Segment files a rebuild set aside because their header failed its
    /// checks (`data_….s4db.damaged`, FORMAT.md §6.3): while there is one,
    /// the directory is not whole. Empty for a remote database.
    pub damaged_files: Vec<String>,
}

/// What [`crate::Db::compact`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CompactionReport {
    /// Segment files before.
    pub segments_before: u64,
    /// Segment files after.
    pub segments_after: u64,
    /// Bytes of all segment files before.
    pub bytes_before: u64,
    /// Bytes of all segment files after.
    pub bytes_after: u64,
    /// Records rewritten: the live records of the rewritten segments, and
    /// the tombstones a selective compaction carried over.
    pub records_written: u64,
    /// Segments rewritten (all of them in a full compaction; 0 when no
    /// segment reached the threshold and nothing was done).
    pub segments_rewritten: u64,
    /// Records of rewritten segments dropped because they had expired
    /// (FORMAT.md §3.4); a selective compaction writes a tombstone for each.
    pub records_expired: u64,
}

/// A damaged byte range found while scanning segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedRange {
    /// Segment file name.
    pub file: String,
    /// First damaged byte.
    pub start: u64,
    /// One past the last damaged byte (the file's end for a torn tail).
    pub end: u64,
    /// What check failed.
    pub reason: String,
}

/// What [`crate::Db::rebuild_index`] (or opening with
/// [`crate::DbBuilder::rebuild_index`]) found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RebuildReport {
    /// Segment files scanned.
    pub segments: u64,
    /// Segment files skipped because a later compaction run superseded them.
    pub superseded_segments: u64,
    /// Valid records read.
    pub records: u64,
    /// Live keys in the rebuilt index.
    pub keys: u64,
    /// Damaged ranges skipped in segments: the damaged bytes only (the good
    /// records around them are kept), or a whole file with a damaged header
    /// that `index.idx` shows obsolete (set aside, not replayed).
    pub skipped: Vec<DamagedRange>,
    /// A torn tail cut from the last segment (its bytes are kept beside it in a
    /// `.torn-OFFSET` file).
    pub torn_tail: Option<DamagedRange>,
    /// Segment headers that failed their checks and were rebuilt from the
    /// file name and the neighbouring segments (bytes `0..48`; the reason
    /// says what the new header holds and where the original file was kept).
    /// The records of such a segment are kept as any other segment's.
    pub repaired: Vec<DamagedRange>,
    /// Segment files set aside as damaged in the directory after the rebuild
    /// (`data_….s4db.damaged`, by this rebuild or an earlier one): never read
    /// again by s4db; delete each once satisfied nothing more is to be taken
    /// from it.
    pub damaged_files: Vec<String>,
}

/// What [`crate::Db::verify`] checked and found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Segment files read.
    pub segments: u64,
    /// Records whose checksum was checked.
    pub records: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Live keys in the index.
    pub keys: u64,
    /// Segments the index lists that the directory does not hold (only the
    /// remote has them): not checked. Each is also listed as a problem,
    /// unless the directory reads through its remote on purpose (it was
    /// opened empty with its remote, FORMAT.md §10.4). `download` fetches
    /// them.
    pub segments_missing: u64,
    /// Every problem found; empty when the database is sound.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// True when no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}
