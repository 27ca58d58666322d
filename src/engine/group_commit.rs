//! Group commit: writers under `SyncPolicy::EveryWrite` share fsyncs.
//!
//! Every append advances a global byte sequence. A writer that needs its
//! bytes durable waits until the synced sequence passes its own. If no sync
//! is running, it becomes the syncer: it fsyncs the active segment for
//! everyone who wrote before it started, while later writers queue for the
//! next round. Sealing fsyncs a segment before the next one is used, so
//! syncing the active segment covers every byte before it in the sequence.
//!
//! A failed fsync may have dropped dirty pages (the kernel does not retry),
//! so it poisons the engine: no later write is acknowledged.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::engine::segment::Segment;
use crate::error::{Error, Result};

#[derive(Debug, Default)]
struct State {
    /// Sequence number of the last byte written (appended) so far.
    written: u64,
    /// Sequence number up to which everything is durable.
    synced: u64,
    syncing: bool,
    failed: Option<String>,
    active: Option<Arc<Segment>>,
}

#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    done: Condvar,
}

impl GroupCommit {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that `len` bytes were appended to `active`; returns the
    /// sequence number that makes them durable. Called under the writer lock.
    pub(crate) fn note_written(&self, active: &Arc<Segment>, len: u64) -> u64 {
        let mut s = self.lock();
        s.written += len;
        if !s.active.as_ref().is_some_and(|a| Arc::ptr_eq(a, active)) {
            s.active = Some(active.clone());
        }
        s.written
    }

    /// Records that everything written so far is durable (after a seal or a
    /// checkpoint fsynced it).
    pub(crate) fn note_all_synced(&self) {
        let mut s = self.lock();
        s.synced = s.written;
        self.done.notify_all();
    }

    /// Poisons the engine after a failed fsync elsewhere.
    pub(crate) fn fail(&self, why: String) {
        let mut s = self.lock();
        s.failed.get_or_insert(why);
        self.done.notify_all();
    }

    /// Fails if an fsync ever failed.
    pub(crate) fn check(&self) -> Result<()> {
        match &self.lock().failed {
            Some(why) => Err(Error::Closed(why.clone())),
            None => Ok(()),
        }
    }

    /// Blocks until every byte up to `seq` is durable, syncing if needed.
    pub(crate) fn wait_synced(&self, seq: u64) -> Result<()> {
        let mut s = self.lock();
        loop {
            if let Some(why) = &s.failed {
                return Err(Error::Closed(why.clone()));
            }
            if s.synced >= seq {
                return Ok(());
            }
            if s.syncing {
                s = self.done.wait(s).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            let Some(active) = s.active.clone() else {
                s.synced = s.written;
                continue;
            };
            s.syncing = true;
            let target = s.written;
            drop(s);
            let res = active.sync();
            s = self.lock();
            s.syncing = false;
            match res {
                Ok(()) => s.synced = s.synced.max(target),
                Err(e) => {
                    s.failed.get_or_insert(format!(
                        "an fsync failed, so recent writes may be lost; reopen the database ({e})"
                    ));
                }
            }
            self.done.notify_all();
        }
    }
}
