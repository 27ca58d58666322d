//! Read-only memory maps of segment files: the one module with `unsafe`.
//!
//! Why: a random `get` through `pread` costs a syscall plus a copy, about
//! 400 ns of the 1.1 µs a get took; through a map it is a memory load. The
//! README's benchmark table shows both (measured, not assumed).
//!
//! Safety contract. `memmap2::Mmap::map` is unsafe because the mapped bytes
//! can change underneath the program if the file is modified or truncated.
//! s4db upholds the contract for its own accesses:
//! - segment files are append-only: bytes below a segment's acknowledged
//!   length are never written again while the file is open (a compaction
//!   output's header is rewritten before any reader can see the segment);
//! - reads go only to `[offset, offset + len)` ranges that lie below the
//!   acknowledged length, so they never touch pages past the end of the file;
//! - files are truncated only past every acknowledged byte (a torn tail at
//!   open, before any map exists; a failed append) and deleted only by
//!   unlinking, which leaves existing maps valid;
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

use memmap2::{Mmap, MmapOptions};

/// Maps `len` bytes of `file` read-only. `len` may exceed the file's current
/// size (the tail is reserved address space for appends); callers must only
/// read bytes the file already holds.
pub(crate) fn map(file: &File, len: usize) -> std::io::Result<Mmap> {
    // SAFETY: see the module documentation: mapped bytes below the
    // acknowledged length never change while mapped, and only those are read.
    unsafe { MmapOptions::new().len(len).map(file) }
}
