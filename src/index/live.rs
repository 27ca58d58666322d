//! The live index: the committed layers (`index.idx` and its runs)
//! overlaid with the delta (changes since), plus the live key count and live
//! record bytes.
//!
//! Invariant: a key is live iff the delta holds `Put` for it, or the delta
//! does not mention it and the layers hold it.

use std::sync::Arc;

use crate::error::Result;
use crate::format::hash::key_hash;
use crate::index::delta::{Delta, DeltaValue};
use crate::index::layers::Layers;
use crate::index::loc::Loc;

#[derive(Debug)]
pub(crate) struct Index {
    base: Arc<Layers>,
    delta: Delta,
    live_keys: u64,
    live_bytes: u64,
    /// Some record may carry an expiry (FORMAT.md §3.4): the base's root
    /// says so, or a record applied since did.
    may_expire: bool,
}

impl Index {
    pub(crate) fn new(base: Arc<Layers>) -> Self {
        let (live_keys, live_bytes) = (base.key_count(), base.live_bytes());
        let may_expire = base.root().may_expire;
        Index {
            base,
            delta: Delta::default(),
            live_keys,
            live_bytes,
            may_expire,
        }
    }

    /// Notes that a record carrying an expiry was applied.
    pub(crate) fn note_expiry(&mut self) {
        self.may_expire = true;
    }

    /// Whether some record may carry an expiry: then an answer from the
    /// index alone (is the key there?) must read the record.
    pub(crate) fn may_expire(&self) -> bool {
        self.may_expire
    }

    /// Where `key`'s record is.
    ///
    /// # Errors
    /// [`Error::Corruption`](crate::Error::Corruption) if the base page that
    /// can hold the key fails its checks.
    #[inline]
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Loc>> {
        self.get_hashed(key, key_hash(key))
    }

    #[inline]
    fn get_hashed(&self, key: &[u8], h: u64) -> Result<Option<Loc>> {
        match self.delta.get(key, h) {
            Some(DeltaValue::Put(l)) => Ok(Some(l)),
            Some(DeltaValue::Deleted) => Ok(None),
            None => self.base.lookup(key, h),
        }
    }

    /// Checks the base pages that [`Index::apply`] will read for `keys`, so
    /// that applying them after their records are written cannot fail.
    ///
    /// # Errors
    /// [`Error::Corruption`](crate::Error::Corruption) for the first such
    /// page that fails its checks.
    pub(crate) fn check_pages_for<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k [u8]>,
    ) -> Result<()> {
        keys.into_iter()
            .try_for_each(|k| self.base.check_pages_of(key_hash(k)))
    }

    /// Records a put (`Some`) or delete (`None`) of `key`. On an error the
    /// index is unchanged.
    ///
    /// # Errors
    /// As [`Index::get`]; none for keys passed to [`Index::check_pages_for`]
    /// first.
    pub(crate) fn apply(&mut self, key: &[u8], loc: Option<Loc>) -> Result<()> {
        let h = key_hash(key);
        let value = match loc {
            Some(l) => DeltaValue::Put(l),
            None => DeltaValue::Deleted,
        };
        let base = &self.base;
        let prev = match self.delta.insert_or(key, h, value, || {
            base.lookup(key, h).map(|l| l.map(DeltaValue::Put))
        })? {
            Some(DeltaValue::Put(l)) => Some(l),
            Some(DeltaValue::Deleted) | None => None,
        };
        if let Some(p) = prev {
            self.live_keys -= 1;
            self.live_bytes -= u64::from(p.len);
        }
        if let Some(l) = loc {
            self.live_keys += 1;
            self.live_bytes += u64::from(l.len);
        }
        Ok(())
    }

    /// Makes room in the delta for `additional` more keys, so that a rebuild
    /// that knows about how many come does not grow it step by step.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.delta.reserve(additional);
    }

    /// Calls `f` for every live key, in no particular order.
    ///
    /// # Errors
    /// As [`Layers::for_each_live`].
    pub(crate) fn for_each_live<'a>(&'a self, mut f: impl FnMut(&'a [u8], Loc)) -> Result<()> {
        let h = |k: &[u8]| key_hash(k);
        if self.delta.is_empty() {
            return self.base.for_each_live(f);
        }
        self.base.for_each_live(|k, l| {
            if self.delta.get(k, h(k)).is_none() {
                f(k, l)
            }
        })?;
        for (k, v) in self.delta.iter() {
            if let DeltaValue::Put(l) = v {
                f(k, l)
            }
        }
        Ok(())
    }

    pub(crate) fn live_keys(&self) -> u64 {
        self.live_keys
    }

    pub(crate) fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    pub(crate) fn delta_len(&self) -> usize {
        self.delta.len()
    }

    /// The committed layers under the delta.
    pub(crate) fn base(&self) -> &Arc<Layers> {
        &self.base
    }

    /// The delta's entries: `None` for a delete.
    pub(crate) fn delta_entries(&self) -> impl Iterator<Item = (&[u8], Option<Loc>)> + '_ {
        self.delta.iter().map(|(k, v)| match v {
            DeltaValue::Put(l) => (k, Some(l)),
            DeltaValue::Deleted => (k, None),
        })
    }

    /// Heap bytes of the index: the runs' (see
    /// [`BaseIndex::heap_bytes`](crate::index::base::BaseIndex::heap_bytes))
    /// plus the delta.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.base.heap_bytes() + self.delta.memory_bytes()
    }

    /// Bytes of the index files mapped into memory.
    pub(crate) fn mapped_bytes(&self) -> usize {
        self.base.mapped_bytes()
    }
}
