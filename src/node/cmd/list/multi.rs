//! Popping from several lists: the blocking BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, and LMPOP with
//! its blocking form BLMPOP.

use bytes::Bytes;

use super::{move_one, End};
use crate::node::cmd::elems::tri;
use crate::node::cmd::{args, elems, Args, Ctx, List, Reply};
use crate::node::notify;

/// BLPOP/BRPOP: the first non-empty list among the keys gives an element; otherwise block.
fn bpop(ctx: &mut Ctx, args: &Args, end: End) -> Reply {
    let timeout = tri!(args::timeout(args.get(args.len() - 1)));
    let keys = 1..args.len() - 1;
    for i in keys.clone() {
        let key = args.get(i);
        let Some(l) = tri!(ctx.write::<List>(key)) else {
            continue;
        };
        let Some(v) = end.pop(l) else { continue };
        ctx.shrunk::<List>(key, notify::LIST, end.pop_event());
        let name: &'static [u8] = match end {
            End::Left => b"LPOP",
            End::Right => b"RPOP",
        };
        ctx.propagate_as(vec![Bytes::from_static(name), args.owned(i)]);
        return Reply::Array(vec![Reply::Bulk(args.owned(i)), Reply::Bulk(v)]);
    }
    ctx.block(
        keys.map(|i| args.owned(i)).collect(),
        timeout,
        Reply::NullArray,
    )
}

pub(super) fn blpop(ctx: &mut Ctx, args: &Args) -> Reply {
    bpop(ctx, args, End::Left)
}
pub(super) fn brpop(ctx: &mut Ctx, args: &Args) -> Reply {
    bpop(ctx, args, End::Right)
}

/// BLMOVE/BRPOPLPUSH: LMOVE if the source has an element (propagated as LMOVE), else block
/// on the source.
fn bmove(ctx: &mut Ctx, args: &Args, from: End, to: End, timeout_arg: usize) -> Reply {
    let timeout = tri!(args::timeout(args.get(timeout_arg)));
    match tri!(move_one(ctx, args.get(1), args.get(2), from, to)) {
        Some(v) => {
            ctx.propagate_as(vec![
                Bytes::from_static(b"LMOVE"),
                args.owned(1),
                args.owned(2),
                Bytes::from_static(from.word()),
                Bytes::from_static(to.word()),
            ]);
            Reply::Bulk(v)
        }
        // Redis 7.0 answers a BLMOVE timeout with the null *array* in RESP2.
        None => ctx.block(vec![args.owned(1)], timeout, Reply::NullArray),
    }
}

pub(super) fn blmove(ctx: &mut Ctx, args: &Args) -> Reply {
    let from = tri!(End::parse(args.get(3)));
    let to = tri!(End::parse(args.get(4)));
    bmove(ctx, args, from, to, 5)
}

pub(super) fn brpoplpush(ctx: &mut Ctx, args: &Args) -> Reply {
    bmove(ctx, args, End::Right, End::Left, 3)
}

/// LMPOP/BLMPOP: up to COUNT elements from the first non-empty list, as `[key, [elements]]`,
/// propagated as LPOP/RPOP with the count.
fn mpop(ctx: &mut Ctx, args: &Args, at: usize, blocking: bool) -> Reply {
    let m = tri!(elems::mpop_args(args, at));
    let end = tri!(End::parse(args.get(m.side)));
    let timeout = if blocking {
        tri!(args::timeout(args.get(1)))
    } else {
        None
    };
    for i in m.keys.clone() {
        let key = args.get(i);
        let Some(l) = tri!(ctx.write::<List>(key)) else {
            continue;
        };
        let n = m.count.min(l.len());
        let popped: Vec<Reply> = (0..n).filter_map(|_| end.pop(l).map(Reply::Bulk)).collect();
        if popped.is_empty() {
            continue;
        }
        ctx.shrunk::<List>(key, notify::LIST, end.pop_event());
        let name: &'static [u8] = match end {
            End::Left => b"LPOP",
            End::Right => b"RPOP",
        };
        ctx.propagate_as(vec![Bytes::from_static(name), args.owned(i), m.count_arg]);
        return Reply::Array(vec![Reply::Bulk(args.owned(i)), Reply::Array(popped)]);
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

pub(super) fn lmpop(ctx: &mut Ctx, args: &Args) -> Reply {
    mpop(ctx, args, 1, false)
}
pub(super) fn blmpop(ctx: &mut Ctx, args: &Args) -> Reply {
    mpop(ctx, args, 2, true)
}
