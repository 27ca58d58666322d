//! The delta: every put and delete since the base index was written.
//!
//! A `hashbrown::HashTable` of `u32` slot numbers over a `Vec` of fixed
//! 24-byte slots and one arena holding all key bytes. No allocation per key,
//! about 35 bytes per entry plus the key: the same budget as the base index.
//! Deletes are kept as tombstone slots until the next checkpoint folds the
//! delta into a new base.

use hashbrown::HashTable;

use crate::format::hash::key_hash;
use crate::index::loc::Loc;

/// What the delta knows about a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeltaValue {
    Put(Loc),
    Deleted,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    key_off: u64,
    key_len: u32,
    /// `segment == TOMBSTONE` marks a delete.
    loc: Loc,
}

const TOMBSTONE: u32 = u32::MAX;

impl Slot {
    fn value(&self) -> DeltaValue {
        if self.loc.segment == TOMBSTONE {
            DeltaValue::Deleted
        } else {
            DeltaValue::Put(self.loc)
        }
    }
}

fn encode_value(v: DeltaValue) -> Loc {
    match v {
        DeltaValue::Put(l) => l,
        DeltaValue::Deleted => Loc {
            segment: TOMBSTONE,
            offset: 0,
            len: 0,
        },
    }
}

/// The in-memory change set.
#[derive(Debug, Default)]
pub(crate) struct Delta {
    table: HashTable<u32>,
    slots: Vec<Slot>,
    arena: Vec<u8>,
}

impl Delta {
    fn key_of<'a>(arena: &'a [u8], s: &Slot) -> &'a [u8] {
        let start = s.key_off as usize;
        arena
            .get(start..start + s.key_len as usize)
            .unwrap_or_default()
    }

    /// Looks up a key whose hash is `h`.
    #[inline]
    pub(crate) fn get(&self, key: &[u8], h: u64) -> Option<DeltaValue> {
        let (slots, arena) = (&self.slots, &self.arena);
        self.table
            .find(h, |&i| Self::key_of(arena, &slots[i as usize]) == key)
            .map(|&i| slots[i as usize].value())
    }

    /// Sets a key's value and returns what the delta held before.
    #[cfg(test)]
    pub(crate) fn insert(&mut self, key: &[u8], h: u64, v: DeltaValue) -> Option<DeltaValue> {
        self.insert_or(key, h, v, || Ok::<_, std::convert::Infallible>(None))
            .unwrap_or_else(|never| match never {})
    }

    /// Sets a key's value and returns what it was before: the delta's value,
    /// or, when the delta has none, what `before` says (the base index's).
    /// One probe of the table. If `before` fails, nothing changes.
    pub(crate) fn insert_or<E>(
        &mut self,
        key: &[u8],
        h: u64,
        v: DeltaValue,
        before: impl FnOnce() -> Result<Option<DeltaValue>, E>,
    ) -> Result<Option<DeltaValue>, E> {
        let (slots, arena) = (&mut self.slots, &mut self.arena);
        let entry = self.table.entry(
            h,
            |&i| Self::key_of(arena, &slots[i as usize]) == key,
            |&j| key_hash(Self::key_of(arena, &slots[j as usize])),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(e) => {
                let slot = &mut slots[*e.get() as usize];
                let prev = slot.value();
                slot.loc = encode_value(v);
                Ok(Some(prev))
            }
            hashbrown::hash_table::Entry::Vacant(e) => {
                let prev = before()?;
                e.insert(slots.len() as u32);
                slots.push(Slot {
                    key_off: arena.len() as u64,
                    key_len: key.len() as u32,
                    loc: encode_value(v),
                });
                arena.extend_from_slice(key);
                Ok(prev)
            }
        }
    }

    /// Makes room for `additional` more keys.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let (slots, arena) = (&self.slots, &self.arena);
        self.table.reserve(additional, |&j| {
            key_hash(Self::key_of(arena, &slots[j as usize]))
        });
        self.slots.reserve(additional);
    }

    /// Number of keys the delta holds (puts and deletes).
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Every key with its value, in insertion order of first touch.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], DeltaValue)> + '_ {
        self.slots
            .iter()
            .map(|s| (Self::key_of(&self.arena, s), s.value()))
    }

    /// Heap bytes held.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.table.allocation_size()
            + self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.arena.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(n: u32) -> Loc {
        Loc {
            segment: n,
            offset: n,
            len: n,
        }
    }

    #[test]
    fn insert_overwrite_delete_and_iterate() {
        let mut d = Delta::default();
        let h = |k: &[u8]| key_hash(k);
        assert_eq!(d.insert(b"a", h(b"a"), DeltaValue::Put(loc(1))), None);
        assert_eq!(d.insert(b"b", h(b"b"), DeltaValue::Deleted), None);
        assert_eq!(
            d.insert(b"a", h(b"a"), DeltaValue::Put(loc(2))),
            Some(DeltaValue::Put(loc(1)))
        );
        assert_eq!(d.get(b"a", h(b"a")), Some(DeltaValue::Put(loc(2))));
        assert_eq!(d.get(b"b", h(b"b")), Some(DeltaValue::Deleted));
        assert_eq!(d.get(b"c", h(b"c")), None);
        assert_eq!(d.len(), 2);
        let all: Vec<_> = d.iter().collect();
        assert_eq!(
            all,
            vec![
                (&b"a"[..], DeltaValue::Put(loc(2))),
                (&b"b"[..], DeltaValue::Deleted)
            ]
        );
    }

    #[test]
    fn survives_growth() {
        let mut d = Delta::default();
        for i in 0..100_000u32 {
            let k = format!("k{i}");
            d.insert(
                k.as_bytes(),
                key_hash(k.as_bytes()),
                DeltaValue::Put(loc(i)),
            );
        }
        for i in 0..100_000u32 {
            let k = format!("k{i}");
            assert_eq!(
                d.get(k.as_bytes(), key_hash(k.as_bytes())),
                Some(DeltaValue::Put(loc(i)))
            );
        }
    }
}
