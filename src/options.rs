//! Settings for opening a database: plain data with defaults.

use crate::format::limits::DEFAULT_MAX_SEGMENT_SIZE;

/// When s4db calls fsync on segment data.
///
/// Whatever the policy, `index.idx` is always written atomically and fsynced,
/// a segment is fsynced when it is sealed, and segments are fsynced before an
/// index that covers them is written: the database is always consistent after
/// a crash. The policy decides only how many of the latest writes a power
/// loss may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Writes reach the operating system's page cache when they return: they
    /// survive a crash of the process, not a power loss. `flush()` does not
    /// fsync. For throwaway data and bulk loads that can be redone.
    Never,
    /// As `Never`, but `flush()` and `close()` fsync: everything written before
    /// a successful `flush()` survives power loss. The default.
    #[default]
    OnFlush,
    /// Every `put`, `delete` and batch returns only after its bytes are
    /// fsynced. Concurrent writers share one fsync (group commit).
    EveryWrite,
}

/// Options for [`crate::DbBuilder`], which is their builder (one setter
/// each). All fields have documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Soft size limit of a segment file; default 64 MiB, allowed 4 KiB to
    /// 2 GiB. A record or batch larger than the limit gets a segment of its own.
    pub max_segment_size: u64,
    /// fsync policy; default [`SyncPolicy::OnFlush`].
    pub sync: SyncPolicy,
    /// Open without writing anything; default `false`.
    pub read_only: bool,
    /// Create the directory and an empty database if none exists; default `true`.
    pub create_if_missing: bool,
    /// Ignore `index.idx` and rebuild the index from the segments while
    /// opening: the repair path for a lost or corrupt index. Default `false`.
    pub rebuild_index: bool,
    /// How long a writer's open waits for another writer to release the
    /// directory; default 250 ms (a just-released lock can stay held
    /// briefly by a process the application is spawning). Read-only
    /// handles never wait: they take no lock.
    pub lock_wait: std::time::Duration,
    /// The file operations the engine's writes go through (tests fail them
    /// on purpose); always the real ones outside the crate's own tests.
    pub(crate) fs: crate::io::fs::Fs,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_segment_size: DEFAULT_MAX_SEGMENT_SIZE,
            sync: SyncPolicy::default(),
            read_only: false,
            create_if_missing: true,
            rebuild_index: false,
            lock_wait: std::time::Duration::from_millis(250),
            fs: crate::io::fs::Fs::real(),
        }
    }
}

/// Builder-style setters for the `#[non_exhaustive]` options structs (which
/// callers outside the crate cannot build with a literal): each
/// `/// doc` `field: Type` becomes `#[must_use] pub fn field(mut self, value:
/// Type) -> Self` that sets the field of that name.
macro_rules! setters {
    ($ty:ty { $( $(#[$doc:meta])* $field:ident: $t:ty ),* $(,)? }) => {
        impl $ty {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $field(mut self, value: $t) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}
pub(crate) use setters;
