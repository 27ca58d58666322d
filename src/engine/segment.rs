//! An open segment file: its header, its current length, and positional
//! reads and appends.
//!
//! Reads use `pread` at an explicit offset and appends `pwrite` at the
//! writer's tracked length, so readers and the one writer share the file
//! handle without a shared cursor. Only the engine's writer appends, and only
//! to the active (unsealed) segment.

use crate::io::clock::unix_now_ms;
use crate::io::fs::Fs;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use memmap2::Mmap;

use crate::error::{Error, IoContext, Result};
use crate::format::record;
use crate::format::scan;
use crate::format::segment_header::{SEGMENT_HEADER_LEN, SegmentHeader};
use crate::format::segment_id::SegmentId;

/// No segment s4db writes exceeds this (FORMAT.md §7); a larger file is
/// rejected before it is read into memory.
const MAX_SEGMENT_FILE: u64 = u32::MAX as u64;

#[derive(Debug)]
pub(crate) struct Segment {
    pub header: SegmentHeader,
    pub path: PathBuf,
    /// `None` for a segment that only the remote holds (reads go there).
    file: Option<File>,
    /// The calls appends and fsyncs go through.
    fs: Fs,
    /// Bytes of the file that hold complete, acknowledged batches.
    len: AtomicU64,
    sealed: AtomicBool,
    /// Address space reserved for the map: reads past it use `pread`.
    map_len: u64,
    /// Made on first read; `None` if mapping failed (reads then use `pread`).
    map: OnceLock<Option<Mmap>>,
}

impl Segment {
    /// `map_len`: address space to map on first read, at least the size the
    /// segment may reach (its size limit); reads beyond it use `pread`.
    pub(crate) fn new(
        header: SegmentHeader,
        path: PathBuf,
        file: File,
        len: u64,
        sealed: bool,
        map_len: u64,
        fs: Fs,
    ) -> Self {
        Segment {
            fs,
            header,
            path,
            file: Some(file),
            len: AtomicU64::new(len),
            sealed: AtomicBool::new(sealed),
            map_len: map_len.max(len),
            map: OnceLock::new(),
        }
    }

    /// A segment that only the remote holds: `len` bytes, sealed.
    pub(crate) fn remote(header: SegmentHeader, path: PathBuf, len: u64) -> Self {
        Segment {
            fs: Fs::real(),
            header,
            path,
            file: None,
            len: AtomicU64::new(len),
            sealed: AtomicBool::new(true),
            map_len: 0,
            map: OnceLock::new(),
        }
    }

    /// True when the segment's file is in the local directory.
    pub(crate) fn is_local(&self) -> bool {
        self.file.is_some()
    }

    /// The acknowledged bytes `[offset, offset + len)` straight from the map,
    /// if they are inside it.
    fn mapped(&self, offset: u64, len: usize) -> Option<&[u8]> {
        let end = offset.checked_add(len as u64)?;
        if end > self.len() {
            return None;
        }
        let map = self
            .map
            .get_or_init(|| {
                let file = self.file.as_ref()?;
                usize::try_from(self.map_len)
                    .ok()
                    .and_then(|n| crate::io::mmap::map(file, n).ok())
            })
            .as_ref()?;
        map.get(usize::try_from(offset).ok()?..usize::try_from(end).ok()?)
    }

    pub(crate) fn id(&self) -> SegmentId {
        self.header.id
    }

    pub(crate) fn name(&self) -> String {
        self.header.id.file_name()
    }

    pub(crate) fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }

    pub(crate) fn set_len(&self, len: u64) {
        self.len.store(len, Ordering::Release);
    }

    pub(crate) fn is_sealed(&self) -> bool {
        self.sealed.load(Ordering::Acquire)
    }

    pub(crate) fn mark_sealed(&self) {
        self.sealed.store(true, Ordering::Release);
    }

    /// The local file.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a segment only the remote holds.
    pub(crate) fn file(&self) -> Result<&File> {
        self.file.as_ref().ok_or_else(|| {
            Error::NotFound(format!(
                "segment {} is only on the remote (download it first)",
                self.name()
            ))
        })
    }

    /// Reads `len` bytes at `offset`, which must lie within the acknowledged
    /// length (checked before allocating, so a bad index entry cannot make
    /// s4db allocate more than the segment holds).
    pub(crate) fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > self.len())
        {
            return Err(Error::corruption(
                self.name(),
                offset,
                format!(
                    "a {len}-byte record at this offset runs past the segment's {} bytes",
                    self.len()
                ),
            ));
        }
        let file = self.file()?;
        let mut buf = vec![0u8; len];
        match file.read_exact_at(&mut buf, offset) {
            Ok(()) => Ok(buf),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(Error::corruption(
                self.name(),
                offset,
                format!("record of {len} bytes runs past the end of the file"),
            )),
            Err(e) => Err(Error::io(format!("reading {}", self.path.display()), e)),
        }
    }

    /// Calls `on_batch` with each complete batch of the segment's
    /// acknowledged bytes, in order (FORMAT.md §3.3). A segment that does
    /// not scan to its end is corrupt.
    ///
    /// # Errors
    /// As [`Segment::contents`]; [`Error::Corruption`] naming where the
    /// scan stopped; whatever `on_batch` returns.
    pub(crate) fn scan_batches(
        self: &Arc<Self>,
        on_batch: impl FnMut(&[scan::Item<'_>]) -> Result<()>,
    ) -> Result<()> {
        let buf = self.contents()?;
        let body = buf.get(SEGMENT_HEADER_LEN..).unwrap_or_default();
        let scanned = scan::scan(body, SEGMENT_HEADER_LEN as u64, false, on_batch)?;
        match scanned.tail {
            Some(t) => Err(Error::corruption(self.name(), t.offset, t.reason)),
            None => Ok(()),
        }
    }

    /// All acknowledged bytes of the segment. Through the map when there is
    /// one, without a copy: the bytes stay in the page cache instead of on
    /// the heap, so an upload of 8 segments in parallel does not hold 8 ×
    /// 64 MiB of memory. Otherwise read with `pread`.
    ///
    /// # Errors
    /// As [`Segment::read_at`].
    pub(crate) fn contents(self: &Arc<Self>) -> Result<Bytes> {
        let len = self.len() as usize;
        let mapped = Bytes::from_owner(Mapped {
            seg: Arc::clone(self),
            len,
        });
        if mapped.len() == len {
            return Ok(mapped);
        }
        self.read_at(0, len).map(Bytes::from)
    }

    /// Reads and checks the record at `offset` of `len` bytes, and that it is
    /// a put of `key`. Returns the value, or `None` if the record has expired
    /// (FORMAT.md §3.4).
    pub(crate) fn read_value(
        &self,
        key: &[u8],
        offset: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>> {
        let owned;
        let buf = match self.mapped(offset, len) {
            Some(b) => b,
            None => {
                owned = self.read_at(offset, len)?;
                &owned
            }
        };
        record::value_of(buf, key, &self.header.id, offset, unix_now_ms())
    }

    /// The file's current size on disk.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a file larger than 4 GiB; [`Error::Io`].
    pub(crate) fn file_len(&self) -> Result<u64> {
        let size = self
            .file()?
            .metadata()
            .ctx(|| format!("reading size of {}", self.path.display()))?
            .len();
        if size > MAX_SEGMENT_FILE {
            return Err(Error::corruption(
                self.name(),
                MAX_SEGMENT_FILE,
                "segment file is larger than 4 GiB",
            ));
        }
        Ok(size)
    }

    /// Reads the file from `from` to its end on disk. The end is the size
    /// when the read starts; a file that gets shorter meanwhile (a writer
    /// cutting a torn tail beside a read-only opener, FORMAT.md §6.4) ends
    /// where the bytes stop: what is returned is then a prefix of what the
    /// file held, shorter than its size was.
    pub(crate) fn read_from(&self, from: u64) -> Result<Vec<u8>> {
        let size = self.file_len()?;
        let file = self.file()?;
        let len = usize::try_from(size.saturating_sub(from)).map_err(|_| {
            Error::corruption(self.name(), from, "segment too large for this platform")
        })?;
        let mut buf = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            match self
                .fs
                .read_at(file, &mut buf[filled..], from + filled as u64)
            {
                Ok(0) => {
                    buf.truncate(filled);
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(format!("reading {}", self.path.display()), e)),
            }
        }
        Ok(buf)
    }

    /// Appends `bytes` at the tracked length (the caller is the writer).
    pub(crate) fn append(&self, bytes: &[u8]) -> Result<u64> {
        let at = self.len();
        let file = self.file()?;
        if let Err(e) = self.fs.write_all_at(file, bytes, at) {
            // Cut off whatever part landed, so the next append starts clean.
            let _ = file.set_len(at);
            return Err(Error::io(
                format!("appending to {}", self.path.display()),
                e,
            ));
        }
        self.set_len(at + bytes.len() as u64);
        Ok(at)
    }

    pub(crate) fn sync(&self) -> Result<()> {
        self.fs
            .sync_data(self.file()?)
            .ctx(|| format!("syncing {}", self.path.display()))
    }
}

/// Path of a segment in a directory.
pub(crate) fn segment_path(dir: &Path, id: SegmentId) -> PathBuf {
    dir.join(id.file_name())
}

/// The first `len` bytes of a mapped segment, as the owner of a `Bytes`
/// (which reads `as_ref` once, when it is made). `len` lies within the
/// segment's acknowledged length, and acknowledged bytes never change while
/// mapped.
struct Mapped {
    seg: Arc<Segment>,
    len: usize,
}

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        // Empty when the bytes are not all in the map (no map, or they reach
        // past it): `Segment::contents` then reads them with `pread`.
        self.seg.mapped(0, self.len).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::segment_id::SegmentId;

    fn segment(dir: &Path, max: u64) -> Arc<Segment> {
        let header = SegmentHeader::plain(SegmentId {
            number: 1,
            writer: 7,
        });
        Arc::new(crate::engine::create_segment_file(dir, header, max, &Fs::real()).unwrap())
    }

    #[test]
    fn contents_are_the_acknowledged_bytes_and_outlive_the_segment_handle() {
        let dir = tempfile::tempdir().unwrap();
        let seg = segment(dir.path(), 1 << 20);
        seg.append(b"first record bytes").unwrap();
        seg.append(b"second").unwrap();
        let want = seg.read_at(0, seg.len() as usize).unwrap();
        let got = seg.contents().unwrap();
        assert_eq!(&got[..], &want[..]);
        assert_eq!(got.len() as u64, seg.len());
        // Bytes appended later are not part of contents taken earlier.
        seg.append(b"third").unwrap();
        assert_eq!(got.len(), want.len());
        drop(seg);
        assert_eq!(&got[..], &want[..], "the map lives as long as the bytes");
    }

    #[test]
    fn contents_past_the_map_are_read_with_pread() {
        let dir = tempfile::tempdir().unwrap();
        // A map no larger than the header: the appended bytes lie past it.
        let seg = segment(dir.path(), 0);
        seg.append(&[9u8; 10_000]).unwrap();
        let got = seg.contents().unwrap();
        assert_eq!(got.len() as u64, seg.len());
        assert_eq!(&got[got.len() - 10_000..], &[9u8; 10_000][..]);
    }
}
