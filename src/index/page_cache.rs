//! The page cache of a byte-range reader (FORMAT.md §10.6): index pages
//! kept in memory within a byte budget, least recently used evicted first.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;

/// A cached page's key: the object it is in and its number. Pages of a
/// version-1 `index.idx` are keyed with its entity tag in the name, since
/// that object is replaced; a run's pages never change.
pub(crate) type PageKey = (Arc<str>, u32);

/// Pages kept in memory, least recently used evicted first, within a byte
/// budget. Shared by the successive indexes a reader loads, so pages of the
/// runs a new commit keeps stay cached (FORMAT.md §10.6).
#[derive(Debug, Default)]
pub(crate) struct PageCache {
    pages: HashMap<PageKey, (Bytes, u64)>,
    by_age: BTreeMap<u64, PageKey>,
    tick: u64,
    bytes: usize,
}

impl PageCache {
    pub(crate) fn get(&mut self, p: &PageKey) -> Option<Bytes> {
        let (bytes, age) = self.pages.get_mut(p)?;
        self.by_age.remove(age);
        self.tick += 1;
        *age = self.tick;
        self.by_age.insert(self.tick, p.clone());
        Some(bytes.clone())
    }

    pub(crate) fn insert(&mut self, p: PageKey, bytes: Bytes, budget: usize) {
        if self.pages.contains_key(&p) || bytes.len() > budget {
            return;
        }
        self.tick += 1;
        self.bytes += bytes.len();
        self.pages.insert(p.clone(), (bytes, self.tick));
        self.by_age.insert(self.tick, p);
        while self.bytes > budget {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            if let Some((b, _)) = self.pages.remove(&oldest) {
                self.bytes -= b.len();
            }
        }
    }

    /// Pages held.
    pub(crate) fn len(&self) -> usize {
        self.pages.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_stays_within_its_budget_and_evicts_the_oldest() {
        let mut c = PageCache::default();
        let k = |p: u32| -> PageKey { (Arc::from("run"), p) };
        for p in 0..10u32 {
            c.insert(k(p), Bytes::from(vec![0u8; 100]), 350);
        }
        assert!(c.bytes <= 350);
        assert!(c.get(&k(9)).is_some() && c.get(&k(0)).is_none());
        c.get(&k(7));
        c.insert(k(10), Bytes::from(vec![0u8; 100]), 350);
        assert!(c.get(&k(7)).is_some(), "recently used pages stay");
    }
}
