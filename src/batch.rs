//! [`WriteBatch`]: puts and deletes applied atomically.
//!
//! Records are encoded (and compressed) as they are added, so applying a
//! batch only copies its bytes into the segment under the writer lock. The
//! batch is framed by `FLAG_BATCH_CONT` on every record but the last: after a
//! crash, replay keeps a batch whole or drops it whole.

use crate::error::{Error, Result};
use crate::format::limits::{MAX_BATCH_BYTES, MAX_KEY_LEN, MAX_VALUE_LEN};
use crate::format::record::{self, HEADER_LEN};

#[derive(Debug, Clone, Copy)]
pub(crate) struct Op {
    pub offset: usize,
    pub len: usize,
    pub key_len: usize,
    pub tombstone: bool,
    /// The record carries an expiry time (FORMAT.md §3.4).
    pub expires: bool,
}

/// An atomic group of puts and deletes: after a crash, either all of it is
/// visible or none of it. Later operations on the same key win.
///
/// ```
/// # fn main() -> s4db::Result<()> {
/// let mut batch = s4db::WriteBatch::new();
/// batch.put("a", "1")?;
/// batch.delete("b")?;
/// assert_eq!(batch.len(), 2);
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct WriteBatch {
    pub(crate) buf: Vec<u8>,
    pub(crate) ops: Vec<Op>,
    encoder: Option<snap::raw::Encoder>,
}

impl std::fmt::Debug for WriteBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBatch")
            .field("ops", &self.ops.len())
            .field("bytes", &self.buf.len())
            .finish()
    }
}

/// Checks a key against the documented limits.
pub(crate) fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidArgument("keys must not be empty".into()));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(Error::InvalidArgument(format!(
            "key of {} bytes is longer than the limit of {MAX_KEY_LEN}",
            key.len()
        )));
    }
    Ok(())
}

/// Checks a value against the documented limit.
fn check_value(value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::InvalidArgument(format!(
            "value of {} bytes is longer than the limit of {MAX_VALUE_LEN}",
            value.len()
        )));
    }
    Ok(())
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// A batch putting every pair, in order.
    ///
    /// # Errors
    /// As [`WriteBatch::put`], for the first bad pair.
    pub fn from_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self> {
        let mut b = WriteBatch::new();
        for (k, v) in pairs {
            b.put(k, v)?;
        }
        Ok(b)
    }

    /// Adds a put of `key` = `value`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty key, a key over
    /// [`MAX_KEY_LEN`](crate::MAX_KEY_LEN), a value over
    /// [`MAX_VALUE_LEN`](crate::MAX_VALUE_LEN), or a batch that would exceed
    /// [`MAX_BATCH_BYTES`](crate::MAX_BATCH_BYTES). The batch is unchanged then.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<&mut Self> {
        let value = value.as_ref();
        check_value(value)?;
        self.push(key.as_ref(), Some(value), None)
    }

    /// Adds a put of `key` that expires `ttl` from now: from then on the key
    /// reads as absent everywhere (gets, iteration, remote reads, export),
    /// and compaction drops its record. The record carries the expiry time
    /// in Unix milliseconds (8 more bytes, FORMAT.md §3.4); a later put or
    /// delete of the key replaces it as usual.
    ///
    /// Until a compaction drops it, an expired key still counts in
    /// [`crate::Db::len`] and [`crate::Stats::keys`], and its bytes in
    /// `live_bytes`.
    ///
    /// # Errors
    /// As [`WriteBatch::put`]; [`Error::InvalidArgument`] for a `ttl` that
    /// ends past the year 292,000,000.
    pub fn put_with_ttl(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: std::time::Duration,
    ) -> Result<&mut Self> {
        let at = std::time::SystemTime::now()
            .checked_add(ttl)
            .ok_or_else(|| Error::InvalidArgument("ttl too long".into()))?;
        self.put_expiring_at(key, value, at)
    }

    /// Adds a put of `key` that expires at `at` (see
    /// [`WriteBatch::put_with_ttl`]). A time already past writes a record
    /// that reads as absent at once.
    ///
    /// # Errors
    /// As [`WriteBatch::put_with_ttl`]; a time before 1970 is refused.
    pub fn put_expiring_at(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        at: std::time::SystemTime,
    ) -> Result<&mut Self> {
        let ms = at
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|d| u64::try_from(d.as_millis()).ok())
            .ok_or_else(|| {
                Error::InvalidArgument("expiry time before 1970 or too far ahead".into())
            })?;
        let value = value.as_ref();
        check_value(value)?;
        self.push(key.as_ref(), Some(value), Some(ms))
    }

    /// Adds a put whose record expires at `expires_at` (Unix milliseconds),
    /// if given: a record carried over as it was (a rebase).
    pub(crate) fn put_expiring_ms(
        &mut self,
        key: &[u8],
        value: impl AsRef<[u8]>,
        expires_at: Option<u64>,
    ) -> Result<&mut Self> {
        let value = value.as_ref();
        check_value(value)?;
        self.push(key, Some(value), expires_at)
    }

    /// Adds a delete of `key`. Deleting a key that does not exist is not an
    /// error and writes nothing: when the batch is written, deletes of keys
    /// that neither the database nor an earlier put of the batch holds are
    /// dropped from it.
    ///
    /// # Errors
    /// As [`WriteBatch::put`], for the key.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<&mut Self> {
        self.push(key.as_ref(), None, None)
    }

    fn push(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        expires_at: Option<u64>,
    ) -> Result<&mut Self> {
        check_key(key)?;
        let expiry = if expires_at.is_some() {
            record::EXPIRY_LEN
        } else {
            0
        };
        let need = HEADER_LEN + key.len() + expiry + value.map_or(0, <[u8]>::len);
        if self.buf.len() + need > MAX_BATCH_BYTES {
            return Err(Error::InvalidArgument(format!(
                "batch would exceed {MAX_BATCH_BYTES} bytes; split it"
            )));
        }
        let offset = self.buf.len();
        let encoder = self.encoder.get_or_insert_with(snap::raw::Encoder::new);
        let len = record::encode(&mut self.buf, key, value, expires_at, true, encoder);
        self.ops.push(Op {
            offset,
            len,
            key_len: key.len(),
            tombstone: value.is_none(),
            expires: expires_at.is_some() && value.is_some(),
        });
        Ok(self)
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Encoded size in bytes (what the batch adds to a segment).
    pub fn encoded_len(&self) -> usize {
        self.buf.len()
    }

    /// Keeps only the operations for which `keep` (given each operation's
    /// position and key, in order) returns true. Call before [`Self::finish`].
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(usize, &[u8]) -> bool) {
        let keep: Vec<bool> = (0..self.ops.len())
            .map(|i| keep(i, self.key(&self.ops[i])))
            .collect();
        if keep.iter().all(|k| *k) {
            return;
        }
        let mut buf = Vec::with_capacity(self.buf.len());
        let mut ops = Vec::with_capacity(self.ops.len());
        for (op, _) in self.ops.iter().zip(&keep).filter(|(_, k)| **k) {
            ops.push(Op {
                offset: buf.len(),
                ..*op
            });
            buf.extend_from_slice(&self.buf[op.offset..op.offset + op.len]);
        }
        self.buf = buf;
        self.ops = ops;
    }

    /// Marks the last record as the end of the batch.
    pub(crate) fn finish(&mut self) {
        if let Some(last) = self.ops.last() {
            record::set_batch_cont(&mut self.buf[last.offset..last.offset + last.len], false);
        }
    }

    pub(crate) fn key(&self, op: &Op) -> &[u8] {
        &self.buf[op.offset + HEADER_LEN..op.offset + HEADER_LEN + op.key_len]
    }
}
