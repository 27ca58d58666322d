//! Reading records that only the remote holds.
//!
//! A `get` is exactly one range GET of the record, whose checksum and key are
//! checked. `get_many` groups keys by segment, sorts them by offset, joins
//! records whose gap is at most `coalesce_gap` into one range, and runs at
//! most `parallelism` range GETs at once.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;

use crate::engine::segment::Segment;
use crate::error::{Error, Result};
use crate::format::record;
use crate::index::loc::Loc;
use crate::io::clock::unix_now_ms;
use crate::remote::ObjectStore;
use crate::remote::ctx::RemoteCtx;

/// One record wanted from a remote segment.
#[derive(Debug, Clone)]
pub(crate) struct Wanted {
    /// Position in the caller's answer.
    pub slot: usize,
    pub key: Bytes,
    pub loc: Loc,
}

/// Adds `w` to the records wanted from `seg`, keeping one group per segment
/// (what [`get_many`] takes).
pub(crate) fn want(groups: &mut Vec<(Arc<Segment>, Vec<Wanted>)>, seg: &Arc<Segment>, w: Wanted) {
    match groups.iter_mut().find(|(s, _)| Arc::ptr_eq(s, seg)) {
        Some((_, list)) => list.push(w),
        None => groups.push((seg.clone(), vec![w])),
    }
}

/// A byte range of one segment covering one or more wanted records.
#[derive(Debug)]
struct Range {
    segment: String,
    start: u64,
    end: u64,
    members: Vec<Wanted>,
}

/// Joins wanted records of one segment into ranges, in offset order.
fn coalesce(segment: &str, mut wanted: Vec<Wanted>, gap: u64) -> Vec<Range> {
    wanted.sort_by_key(|w| w.loc.offset);
    let mut out: Vec<Range> = Vec::new();
    for w in wanted {
        let (start, end) = (
            u64::from(w.loc.offset),
            u64::from(w.loc.offset) + u64::from(w.loc.len),
        );
        match out.last_mut() {
            Some(r) if start <= r.end.saturating_add(gap) => {
                r.end = r.end.max(end);
                r.members.push(w);
            }
            _ => out.push(Range {
                segment: segment.to_string(),
                start,
                end,
                members: vec![w],
            }),
        }
    }
    out
}

fn missing(segment: &str) -> Error {
    Error::NotFound(format!(
        "segment {segment} is not on the remote (deleted by garbage collection? download or reopen to get the current index)"
    ))
}

/// The error for a record in `segment`, which only the remote holds, read
/// with no remote attached.
fn on_remote(segment: &str) -> Error {
    Error::on_remote(format!("this key's segment {segment} is on the remote"))
}

/// Reads one record's value with one range GET.
/// `ctx` is the remote that holds the segment (`None`: none is attached,
/// [`Error::OnRemote`]).
pub(crate) async fn get_one(
    ctx: Option<&Arc<RemoteCtx>>,
    seg: &Segment,
    key: &[u8],
    loc: Loc,
) -> Result<Option<Bytes>> {
    let ctx = ctx.ok_or_else(|| on_remote(&seg.name()))?;
    let name = seg.name();
    let store = ctx.store.clone();
    let (n, off, len) = (name.clone(), u64::from(loc.offset), u64::from(loc.len));
    let bytes = ctx
        .run(async move { store.get_range(&n, off, len).await })
        .await?;
    let bytes = bytes.ok_or_else(|| missing(&name))?.bytes;
    Ok(record::value_of(&bytes, key, &name, off, unix_now_ms())?.map(Bytes::from))
}

/// A record read: its slot, and its value (`None` if it expired).
type Read = (usize, Option<Bytes>);

/// Fills `out[w.slot]` for every wanted record of the remote segments
/// (`None` for one that expired, FORMAT.md §3.4).
/// `ctx` as for [`get_one`].
pub(crate) async fn get_many(
    ctx: Option<&Arc<RemoteCtx>>,
    groups: Vec<(Arc<Segment>, Vec<Wanted>)>,
    out: &mut [Option<Bytes>],
) -> Result<()> {
    let Some(ctx) = ctx else {
        return Err(on_remote(
            &groups.first().map(|(s, _)| s.name()).unwrap_or_default(),
        ));
    };
    let gap = ctx.opts.coalesce_gap;
    let ranges: Vec<Range> = groups
        .into_iter()
        .flat_map(|(seg, w)| coalesce(&seg.name(), w, gap))
        .collect();
    let store = ctx.store.clone();
    let parallel = ctx.opts.read_parallelism.max(1);
    let now = unix_now_ms();
    let results: Vec<Read> = ctx
        .run(async move {
            let fetched: Vec<Result<Vec<Read>>> = futures::stream::iter(ranges)
                .map(|r| {
                    let store = store.clone();
                    async move {
                        let body = store
                            .get_range(&r.segment, r.start, r.end - r.start)
                            .await?
                            .ok_or_else(|| missing(&r.segment))?
                            .bytes;
                        r.members
                            .iter()
                            .map(|w| {
                                let at = (u64::from(w.loc.offset) - r.start) as usize;
                                let buf = body.get(at..at + w.loc.len as usize).unwrap_or_default();
                                let v = record::value_of(
                                    buf,
                                    &w.key,
                                    &r.segment,
                                    u64::from(w.loc.offset),
                                    now,
                                )?;
                                Ok((w.slot, v.map(Bytes::from)))
                            })
                            .collect()
                    }
                })
                .buffer_unordered(parallel)
                .collect()
                .await;
            Ok(fetched
                .into_iter()
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .flatten()
                .collect())
        })
        .await?;
    for (slot, v) in results {
        if let Some(o) = out.get_mut(slot) {
            *o = v;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(slot: usize, offset: u32, len: u32) -> Wanted {
        Wanted {
            slot,
            key: Bytes::new(),
            loc: Loc {
                segment: 0,
                offset,
                len,
            },
        }
    }

    #[test]
    fn near_records_share_a_range_and_far_ones_do_not() {
        let ranges = coalesce(
            "s",
            vec![w(0, 1000, 10), w(1, 100, 10), w(2, 115, 10), w(3, 5000, 10)],
            100,
        );
        let spans: Vec<(u64, u64, usize)> = ranges
            .iter()
            .map(|r| (r.start, r.end, r.members.len()))
            .collect();
        assert_eq!(spans, vec![(100, 125, 2), (1000, 1010, 1), (5000, 5010, 1)]);
        let ranges = coalesce("s", vec![w(0, 100, 10), w(1, 110, 10)], 0);
        assert_eq!(ranges.len(), 1, "adjacent records always join");
    }
}
