//! Sorted-set pops: ZPOPMIN/ZPOPMAX, the blocking BZPOPMIN/BZPOPMAX, and ZMPOP/BZMPOP.

use bytes::Bytes;

use super::range::scored_items;
use crate::node::cmd::elems::tri;
use crate::node::cmd::{args, elems, Args, Ctx, Reply, ZSet};
use crate::node::notify;
use crate::resp::Protocol;

/// The keyspace event of a pop from the top (`max`) or the bottom.
fn pop_event(max: bool) -> &'static str {
    if max {
        "zpopmax"
    } else {
        "zpopmin"
    }
}

/// ZPOPMIN/ZPOPMAX: without a count a flat `[member, score]`; with one, pairs (nested in
/// RESP3).
fn zpop(ctx: &mut Ctx, args: &Args, max: bool) -> Reply {
    if args.len() > 3 {
        return args::syntax();
    }
    let count = if args.len() == 3 {
        Some(tri!(elems::positive_count(args, 2)))
    } else {
        None
    };
    let key = args.get(1);
    let resp3 = ctx.proto() == Protocol::Resp3;
    let Some(z) = tri!(ctx.write::<ZSet>(key)) else {
        return Reply::Array(Vec::new());
    };
    let n = count.unwrap_or(1).min(z.len());
    if n == 0 {
        return Reply::Array(Vec::new());
    }
    let popped: Vec<(Bytes, f64)> = (0..n).filter_map(|_| z.pop(max)).collect();
    ctx.shrunk::<ZSet>(key, notify::ZSET, pop_event(max));
    Reply::Array(scored_items(popped, true, resp3 && count.is_some()))
}

pub(super) fn zpopmin(ctx: &mut Ctx, args: &Args) -> Reply {
    zpop(ctx, args, false)
}
pub(super) fn zpopmax(ctx: &mut Ctx, args: &Args) -> Reply {
    zpop(ctx, args, true)
}

/// BZPOPMIN/BZPOPMAX: `[key, member, score]` from the first non-empty key, propagated as
/// ZPOPMIN/ZPOPMAX; otherwise block.
fn bzpop(ctx: &mut Ctx, args: &Args, max: bool) -> Reply {
    let timeout = tri!(args::timeout(args.get(args.len() - 1)));
    let keys = 1..args.len() - 1;
    for i in keys.clone() {
        let key = args.get(i);
        let Some(z) = tri!(ctx.write::<ZSet>(key)) else {
            continue;
        };
        let Some((m, s)) = z.pop(max) else { continue };
        ctx.shrunk::<ZSet>(key, notify::ZSET, pop_event(max));
        let name: &'static [u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
        ctx.propagate_as(vec![Bytes::from_static(name), args.owned(i)]);
        return Reply::Array(vec![
            Reply::Bulk(args.owned(i)),
            Reply::Bulk(m),
            Reply::Double(s),
        ]);
    }
    ctx.block(
        keys.map(|i| args.owned(i)).collect(),
        timeout,
        Reply::NullArray,
    )
}

pub(super) fn bzpopmin(ctx: &mut Ctx, args: &Args) -> Reply {
    bzpop(ctx, args, false)
}
pub(super) fn bzpopmax(ctx: &mut Ctx, args: &Args) -> Reply {
    bzpop(ctx, args, true)
}

/// ZMPOP/BZMPOP: up to COUNT members from the first non-empty sorted set, as
/// `[key, [[member, score]...]]` (nested in both protocols), propagated as ZPOPMIN/ZPOPMAX
/// with the count.
fn zmpop_generic(ctx: &mut Ctx, args: &Args, at: usize, blocking: bool) -> Reply {
    let m = tri!(elems::mpop_args(args, at));
    let max = if args.is(m.side, "MAX") {
        true
    } else if args.is(m.side, "MIN") {
        false
    } else {
        return args::syntax();
    };
    let timeout = if blocking {
        tri!(args::timeout(args.get(1)))
    } else {
        None
    };
    for i in m.keys.clone() {
        let key = args.get(i);
        let Some(z) = tri!(ctx.write::<ZSet>(key)) else {
            continue;
        };
        let n = m.count.min(z.len());
        let popped: Vec<(Bytes, f64)> = (0..n).filter_map(|_| z.pop(max)).collect();
        if popped.is_empty() {
            continue;
        }
        ctx.shrunk::<ZSet>(key, notify::ZSET, pop_event(max));
        let name: &'static [u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
        ctx.propagate_as(vec![Bytes::from_static(name), args.owned(i), m.count_arg]);
        let pairs = popped
            .into_iter()
            .map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)]))
            .collect();
        return Reply::Array(vec![Reply::Bulk(args.owned(i)), Reply::Array(pairs)]);
    }
    if blocking {
        ctx.block(
            m.keys.map(|i| args.owned(i)).collect(),
            timeout,
            Reply::NullArray,
        )
    } else {
        Reply::NullArray
    }
}

pub(super) fn zmpop(ctx: &mut Ctx, args: &Args) -> Reply {
    zmpop_generic(ctx, args, 1, false)
}
pub(super) fn bzmpop(ctx: &mut Ctx, args: &Args) -> Reply {
    zmpop_generic(ctx, args, 2, true)
}
