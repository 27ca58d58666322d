//! Sync between a database directory and a remote (FORMAT.md §10): upload,
//! download, rebase, garbage collection, unsynced changes and discarding
//! them, deleting and copying a remote, the conditional-write probe, the
//! per-remote sync state, and reads of records only the remote holds.

pub(crate) mod changes;
pub(crate) mod commit;
pub(crate) mod conditions;
pub(crate) mod copy;
pub(crate) mod download;
pub(crate) mod gc;
pub(crate) mod ingest;
#[cfg(test)]
mod protocol_tests;
pub(crate) mod rebase;
pub(crate) mod remote_index;
pub(crate) mod remote_read;
pub(crate) mod remote_reader;
pub(crate) mod remove;
pub(crate) mod restore;
pub(crate) mod stage;
pub(crate) mod state;
pub(crate) mod unindexed;
pub(crate) mod upload;
