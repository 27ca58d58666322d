//! Where a record lives: a segment (by its position in the index's segment
//! table) and a byte range in it.

/// The location of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Loc {
    /// Position of the segment in the index's segment table.
    pub segment: u32,
    /// Byte offset of the record in the segment file.
    pub offset: u32,
    /// Encoded length of the whole record, header included.
    pub len: u32,
}
