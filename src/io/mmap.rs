//! Read-only memory maps of segment files and of `index.idx`: the one
//! module with `unsafe`.
//!
//! Why segments: a random `get` through `pread` costs a syscall plus a copy,
//! about 400 ns of the 1.1 µs a get took; through a map it is a memory load.
//! The README's benchmark table shows both (measured, not assumed).
//!
//! Why `index.idx`: reading it whole at open costs time and heap memory in
//! proportion to the database (31 bytes per key); mapped, open reads only
//! its header, tables and directory, and the kernel pages in what gets
//! touch (README, "Opening a large database", has the numbers).
//!
//! Safety contract. `memmap2::Mmap::map` is unsafe because the mapped bytes
//! can change underneath the program if the file is modified or truncated.
//! s4db upholds the contract for its own accesses:
//! - segment files are append-only: bytes below a segment's acknowledged
//!   length are never written again while the file is open (a compaction
//!   output's header is rewritten before any reader can see the segment);
//! - reads go only to `[offset, offset + len)` ranges that lie below the
//!   acknowledged length, so they never touch pages past the end of the file;
//! - files are truncated only past every complete batch (a torn tail at
//!   open, a failed append) and deleted only by unlinking, which leaves
//!   existing maps valid. A read-only handle in another process may hold a
//!   map of the segment a writer's open cuts: its length ends at a complete
//!   batch it read, which the cut keeps, and a cut segment is never written
//!   again (FORMAT.md §6.2, §6.4), so it reads no page past the new end;
//! - `index.idx` is never written in place: every new version is written to
//!   a temporary file, fsynced, mapped, and only then renamed over the old
//!   name ([`crate::io::fsutil::atomic_write_keeping`]); a map always shows
//!   one complete version, which stays valid after it is replaced;
//! - the directory lock keeps other s4db writers out;
//! - mapped bytes handed out as `Bytes` (`Segment::contents`, for uploads,
//!   compaction and verify) own an `Arc` of their segment, so the map
//!   outlives every such borrow.
//!
//! What s4db cannot prevent: another program truncating or rewriting a
//! segment file of an open database. That is unsupported, as for every
//! mmap-based store (LMDB, for example): it can crash the process with SIGBUS.
#![allow(unsafe_code)]

use std::fs::File;

use bytes::Bytes;
use memmap2::{Mmap, MmapOptions};

/// Maps `len` bytes of `file` read-only. `len` may exceed the file's current
/// size (the tail is reserved address space for appends); callers must only
/// read bytes the file already holds.
pub(crate) fn map(file: &File, len: usize) -> std::io::Result<Mmap> {
    // SAFETY: see the module documentation: mapped bytes below the
    // acknowledged length never change while mapped, and only those are read.
    unsafe { MmapOptions::new().len(len).map(file) }
}

/// Maps the whole of `file`, `len` bytes long, read-only as [`Bytes`]; the map
/// lives as long as any slice of it. `Ok(None)` for an empty file, which
/// cannot be mapped. For files that are never written again once mapped
/// (`index.idx`, see the module documentation).
///
/// # Errors
/// The system's, when it cannot map the file (the caller may read it instead).
pub(crate) fn map_whole(file: &File, len: u64) -> std::io::Result<Option<Bytes>> {
    let Ok(len) = usize::try_from(len) else {
        return Err(std::io::Error::other("file larger than the address space"));
    };
    if len == 0 {
        return Ok(None);
    }
    Ok(Some(Bytes::from_owner(map(file, len)?)))
}
