//! An object store in memory, with S3's semantics for conditional puts, for
//! protocol tests without a server (tests only). It can be told to lose the
//! answer of the next put of an object: the write lands, and the caller sees
//! what a retry of that request would see (412 for a conditional put).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use bytes::Bytes;

use super::{
    BoxFut, ListEntry, Object, ObjectMeta, ObjectStore, Prefix, PutMode, PutOutcome, Ranged,
};

#[derive(Debug, Default)]
pub(crate) struct MemStore {
    objects: Mutex<BTreeMap<String, (Bytes, String, SystemTime)>>,
    next_tag: AtomicU64,
    /// Objects whose next put loses its answer.
    lose_answer: Mutex<Vec<String>>,
    /// Objects whose next put another writer's put of the same object
    /// (these bytes) comes just before: a commit that loses a race.
    overtake: Mutex<Vec<(String, Bytes)>>,
}

impl MemStore {
    /// The next put of `key` lands but its answer is lost.
    pub(crate) fn lose_next_answer(&self, key: &str) {
        self.lose_answer.lock().unwrap().push(key.to_string());
    }

    /// Just before the next put of `key`, another writer puts `body` there.
    pub(crate) fn overtake_next_put(&self, key: &str, body: Bytes) {
        self.overtake.lock().unwrap().push((key.to_string(), body));
    }

    /// The names of the objects held.
    pub(crate) fn keys(&self) -> Vec<String> {
        self.objects.lock().unwrap().keys().cloned().collect()
    }

    /// `f` of an object's bytes and entity tag; `None` if there is none.
    fn with_object<T>(&self, key: &str, f: impl FnOnce(&Bytes, &str) -> T) -> Option<T> {
        self.objects
            .lock()
            .unwrap()
            .get(key)
            .map(|(b, t, _)| f(b, t))
    }

    /// An object's bytes, read behind the writers' backs.
    pub(crate) fn bytes_of(&self, key: &str) -> Option<Bytes> {
        self.with_object(key, |b, _| b.clone())
    }

    /// Replaces an object behind the writers' backs (a new entity tag).
    pub(crate) fn replace(&self, key: &str, body: Bytes) {
        let tag = format!("\"{}\"", self.next_tag.fetch_add(1, Ordering::SeqCst));
        self.objects
            .lock()
            .unwrap()
            .insert(key.to_string(), (body, tag, SystemTime::now()));
    }

    /// Removes an object behind the writers' backs.
    pub(crate) fn remove(&self, key: &str) {
        self.objects.lock().unwrap().remove(key);
    }
}

impl ObjectStore for MemStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFut<'a, Option<Object>> {
        Box::pin(async move {
            Ok(self.with_object(key, |b, t| Object {
                body: b.clone(),
                etag: t.to_string(),
            }))
        })
    }
    fn get_range<'a>(&'a self, key: &'a str, start: u64, len: u64) -> BoxFut<'a, Option<Ranged>> {
        Box::pin(async move {
            Ok(self.with_object(key, |b, t| {
                let end = (start + len).min(b.len() as u64) as usize;
                Ranged {
                    bytes: b.slice((start as usize).min(end)..end),
                    etag: Some(t.to_string()),
                }
            }))
        })
    }
    fn get_prefix<'a>(
        &'a self,
        key: &'a str,
        max: u64,
        if_none_match: Option<&'a str>,
    ) -> BoxFut<'a, Prefix> {
        Box::pin(async move {
            let objects = self.objects.lock().unwrap();
            Ok(match objects.get(key) {
                None => Prefix::Missing,
                Some((_, t, _)) if if_none_match == Some(t.as_str()) => Prefix::NotModified,
                Some((b, t, _)) => Prefix::Got {
                    bytes: b.slice(..(max as usize).min(b.len())),
                    etag: t.clone(),
                    total: b.len() as u64,
                },
            })
        })
    }
    fn head<'a>(&'a self, key: &'a str) -> BoxFut<'a, Option<ObjectMeta>> {
        Box::pin(async move {
            Ok(self.with_object(key, |b, t| ObjectMeta {
                size: b.len() as u64,
                etag: t.to_string(),
            }))
        })
    }
    fn put<'a>(&'a self, key: &'a str, body: Bytes, mode: PutMode) -> BoxFut<'a, PutOutcome> {
        Box::pin(async move {
            let mut objects = self.objects.lock().unwrap();
            let mut overtake = self.overtake.lock().unwrap();
            if let Some(i) = overtake.iter().position(|(k, _)| k == key) {
                let (_, other) = overtake.remove(i);
                let tag = format!("\"{}\"", self.next_tag.fetch_add(1, Ordering::SeqCst));
                objects.insert(key.to_string(), (other, tag, SystemTime::now()));
            }
            drop(overtake);
            let allowed = match &mode {
                PutMode::Overwrite => true,
                PutMode::Create => !objects.contains_key(key),
                PutMode::Update(tag) => objects.get(key).is_some_and(|(_, t, _)| t == tag),
            };
            if !allowed {
                return Ok(PutOutcome::PreconditionFailed);
            }
            let tag = format!("\"{}\"", self.next_tag.fetch_add(1, Ordering::SeqCst));
            objects.insert(key.to_string(), (body, tag.clone(), SystemTime::now()));
            let mut lose = self.lose_answer.lock().unwrap();
            if let Some(i) = lose.iter().position(|k| k == key) {
                lose.remove(i);
                // The retried request finds its own write: a conditional
                // one fails its condition now.
                return Ok(match mode {
                    PutMode::Overwrite => PutOutcome::Written(None),
                    _ => PutOutcome::PreconditionFailed,
                });
            }
            Ok(PutOutcome::Written(Some(tag)))
        })
    }
    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFut<'a, ()> {
        Box::pin(async move {
            let mut objects = self.objects.lock().unwrap();
            for k in keys {
                objects.remove(k);
            }
            Ok(())
        })
    }
    fn list(&self) -> BoxFut<'_, Vec<ListEntry>> {
        Box::pin(async move {
            Ok(self
                .objects
                .lock()
                .unwrap()
                .iter()
                .map(|(k, (b, _, m))| ListEntry {
                    key: k.clone(),
                    size: b.len() as u64,
                    modified: Some(*m),
                })
                .collect())
        })
    }
    fn check(&self) -> BoxFut<'_, ()> {
        Box::pin(async { Ok(()) })
    }
}
