//! File and process helpers under the engine and the stores: durable file
//! replacement, the directory lock, read-only maps, running blocking work
//! from async code.

pub(crate) mod clock;
pub(crate) mod fs;
pub(crate) mod fsutil;
pub(crate) mod lock;
pub(crate) mod mmap;
pub(crate) mod offload;
