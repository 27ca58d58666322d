//! The pure codecs: bytes in, values out (FORMAT.md §2–§4). Nothing here
//! touches a file or the network; every decoder takes untrusted bytes and
//! never panics.

pub(crate) mod hash;
pub(crate) mod index_file;
pub(crate) mod index_page;
pub(crate) mod le;
pub(crate) mod limits;
pub(crate) mod record;
pub(crate) mod remote_state;
pub(crate) mod root;
pub(crate) mod scan;
pub(crate) mod segment_header;
pub(crate) mod segment_id;
