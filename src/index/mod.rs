//! The in-memory index (README "How it works"): the base (a loaded or mapped
//! `index.idx`), the delta of writes since, the two as one live index, the
//! lazy byte-range reader of a remote `index.idx`, and record locations.

pub(crate) mod base;
pub(crate) mod delta;
pub(crate) mod layers;
pub(crate) mod lazy;
pub(crate) mod live;
pub(crate) mod loc;
pub(crate) mod page_cache;
pub(crate) mod tiering;
