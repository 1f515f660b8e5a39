//! Sorted-set commands: ZADD, ZINCRBY, ZREM, ZCARD, ZSCORE, ZMSCORE, ZCOUNT, ZLEXCOUNT, ZRANK,
//! ZREVRANK, the ZRANGE family (in `range`), ZPOPMIN/ZPOPMAX/ZMPOP and their blocking forms,
//! ZUNION/ZINTER/ZDIFF, their STORE forms and ZINTERCARD (in `store`), ZREMRANGEBYSCORE/BYRANK/BYLEX, ZRANDMEMBER, ZSCAN.

mod range;
mod store;

use bytes::Bytes;

use self::range::{by_rank, scored_items, LexRange, ScoreRange, Shape};
use self::store::{Op, Output};
use super::elems;
use super::hash::{push_pair, rand_args, rand_positions, tri};
use super::{args, Args, Command, Ctx, Flags, Reply, ZSet};
use crate::node::reply::format_double;
use crate::node::value::Score;
use crate::resp::Protocol;

const W: Flags = Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST);
const WF: Flags = Flags::WRITE.with(Flags::FAST);
const WD: Flags = Flags::WRITE.with(Flags::DENYOOM);
const WB: Flags = Flags::WRITE.with(Flags::FAST).with(Flags::BLOCKING);
const R: Flags = Flags::READONLY;
const RF: Flags = Flags::READONLY.with(Flags::FAST);

/// The sorted-set family.
pub static COMMANDS: &[Command] = &[
    Command::new("zadd", zadd, -4, W).keys(1, 1, 1),
    Command::new("zincrby", zincrby, 4, W).keys(1, 1, 1),
    Command::new("zrem", zrem, -3, WF).keys(1, 1, 1),
    Command::new("zcard", zcard, 2, RF).keys(1, 1, 1),
    Command::new("zscore", zscore, 3, RF).keys(1, 1, 1),
    Command::new("zmscore", zmscore, -3, RF).keys(1, 1, 1),
    Command::new("zcount", zcount, 4, RF).keys(1, 1, 1),
    Command::new("zlexcount", zlexcount, 4, RF).keys(1, 1, 1),
    Command::new("zrank", zrank, 3, RF).keys(1, 1, 1),
    Command::new("zrevrank", zrevrank, 3, RF).keys(1, 1, 1),
    Command::new("zrange", zrange, -4, R).keys(1, 1, 1),
    Command::new("zrangestore", zrangestore, -5, WD).keys(1, 2, 1),
    Command::new("zrangebyscore", zrangebyscore, -4, R).keys(1, 1, 1),
    Command::new("zrevrangebyscore", zrevrangebyscore, -4, R).keys(1, 1, 1),
    Command::new("zrangebylex", zrangebylex, -4, R).keys(1, 1, 1),
    Command::new("zrevrangebylex", zrevrangebylex, -4, R).keys(1, 1, 1),
    Command::new("zrevrange", zrevrange, -4, R).keys(1, 1, 1),
    Command::new("zpopmin", zpopmin, -2, WF).keys(1, 1, 1),
    Command::new("zpopmax", zpopmax, -2, WF).keys(1, 1, 1),
    Command::new("bzpopmin", bzpopmin, -3, WB).keys(1, -2, 1),
    Command::new("bzpopmax", bzpopmax, -3, WB).keys(1, -2, 1),
    Command::new("zmpop", zmpop, -4, Flags::WRITE).keys(0, 0, 0),
    Command::new("bzmpop", bzmpop, -5, Flags::WRITE.with(Flags::BLOCKING)).keys(0, 0, 0),
    Command::new("zunionstore", zunionstore, -4, WD).keys(1, 1, 1),
    Command::new("zinterstore", zinterstore, -4, WD).keys(1, 1, 1),
    Command::new("zdiffstore", zdiffstore, -4, WD).keys(1, 1, 1),
    Command::new("zunion", zunion, -3, R).keys(0, 0, 0),
    Command::new("zinter", zinter, -3, R).keys(0, 0, 0),
    Command::new("zdiff", zdiff, -3, R).keys(0, 0, 0),
    Command::new("zintercard", zintercard, -3, R).keys(0, 0, 0),
    Command::new("zremrangebyscore", zremrangebyscore, 4, Flags::WRITE).keys(1, 1, 1),
    Command::new("zremrangebyrank", zremrangebyrank, 4, Flags::WRITE).keys(1, 1, 1),
    Command::new("zremrangebylex", zremrangebylex, 4, Flags::WRITE).keys(1, 1, 1),
    Command::new("zrandmember", zrandmember, -2, R).keys(1, 1, 1),
    Command::new("zscan", zscan, -3, R).keys(1, 1, 1),
];

/// `ERR resulting score is not a number (NaN)`
const NAN_SCORE: &str = "ERR resulting score is not a number (NaN)";

/// ZADD's flags.
#[derive(Default)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// Redis's `zaddGenericCommand`: flags, pair count, conflicts, every score, then the key.
fn zadd(ctx: &mut Ctx, args: &Args) -> Reply {
    let mut f = AddFlags::default();
    let mut i = 2;
    while i < args.len() {
        let flag = if args.is(i, "NX") {
            &mut f.nx
        } else if args.is(i, "XX") {
            &mut f.xx
        } else if args.is(i, "GT") {
            &mut f.gt
        } else if args.is(i, "LT") {
            &mut f.lt
        } else if args.is(i, "CH") {
            &mut f.ch
        } else if args.is(i, "INCR") {
            &mut f.incr
        } else {
            break;
        };
        *flag = true;
        i += 1;
    }
    let elements = args.len() - i;
    if elements == 0 || elements % 2 == 1 {
        return args::syntax();
    }
    if f.nx && f.xx {
        return Reply::error("ERR XX and NX options at the same time are not compatible");
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Reply::error("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if f.incr && elements > 2 {
        return Reply::error("ERR INCR option supports a single increment-element pair");
    }
    let mut scores = Vec::with_capacity(elements / 2);
    for j in (i..args.len()).step_by(2) {
        scores.push(tri!(args.float(j)));
    }
    let key = args.get(1);
    let exists = tri!(ctx.read::<ZSet>(key)).is_some();
    let (mut added, mut updated, mut processed) = (0, 0, 0);
    let mut last = 0.0;
    if exists || !f.xx {
        let z = tri!(ctx.get_or_create::<ZSet>(key));
        for (n, score) in scores.into_iter().enumerate() {
            let member = args.get(i + 2 * n + 1);
            match z.score(member) {
                Some(cur) => {
                    if f.nx {
                        continue;
                    }
                    let new = if f.incr { cur + score } else { score };
                    if new.is_nan() {
                        ctx.delete_if_empty::<ZSet>(key);
                        return Reply::error(NAN_SCORE);
                    }
                    if (f.gt && new <= cur) || (f.lt && new >= cur) {
                        continue;
                    }
                    if new != cur {
                        z.insert(Bytes::copy_from_slice(member), new);
                        updated += 1;
                    }
                    last = new;
                    processed += 1;
                }
                None => {
                    if f.xx {
                        continue;
                    }
                    z.insert(Bytes::copy_from_slice(member), score);
                    added += 1;
                    last = score;
                    processed += 1;
                }
            }
        }
        // Only a key this call created can be empty here (every element skipped).
        if !exists {
            ctx.delete_if_empty::<ZSet>(key);
        }
        if added + updated > 0 {
            ctx.modified(key);
        }
    }
    if f.incr {
        return if processed > 0 {
            Reply::Double(last)
        } else {
            Reply::Null
        };
    }
    Reply::Int(if f.ch { added + updated } else { added })
}

fn zincrby(ctx: &mut Ctx, args: &Args) -> Reply {
    let incr = tri!(args.float(2));
    let key = args.get(1);
    let z = tri!(ctx.get_or_create::<ZSet>(key));
    let new = z.score(args.get(3)).unwrap_or(0.0) + incr;
    if new.is_nan() {
        ctx.delete_if_empty::<ZSet>(key);
        return Reply::error(NAN_SCORE);
    }
    z.insert(args.owned(3), new);
    ctx.modified(key);
    Reply::Double(new)
}

fn zrem(ctx: &mut Ctx, args: &Args) -> Reply {
    let key = args.get(1);
    let Some(z) = tri!(ctx.write::<ZSet>(key)) else {
        return Reply::Int(0);
    };
    let n = args.from(2).filter(|m| z.remove(m).is_some()).count();
    if n > 0 {
        ctx.delete_if_empty::<ZSet>(key);
        ctx.modified(key);
    }
    Reply::Int(n as i64)
}

fn zcard(ctx: &mut Ctx, args: &Args) -> Reply {
    Reply::Int(tri!(ctx.read::<ZSet>(args.get(1))).map_or(0, |z| z.len() as i64))
}

fn score_reply(s: Option<f64>) -> Reply {
    s.map_or(Reply::Null, Reply::Double)
}

fn zscore(ctx: &mut Ctx, args: &Args) -> Reply {
    let z = tri!(ctx.read::<ZSet>(args.get(1)));
    score_reply(z.and_then(|z| z.score(args.get(2))))
}

fn zmscore(ctx: &mut Ctx, args: &Args) -> Reply {
    let z = tri!(ctx.read::<ZSet>(args.get(1)));
    Reply::Array(
        args.from(2)
            .map(|m| score_reply(z.and_then(|z| z.score(m))))
            .collect(),
    )
}

fn zcount(ctx: &mut Ctx, args: &Args) -> Reply {
    let range = tri!(ScoreRange::parse(args.get(2), args.get(3)));
    let z = tri!(ctx.read::<ZSet>(args.get(1)));
    Reply::Int(z.map_or(0, |z| range.iter(z).count() as i64))
}

fn zlexcount(ctx: &mut Ctx, args: &Args) -> Reply {
    let range = tri!(LexRange::parse(args.get(2), args.get(3)));
    let z = tri!(ctx.read::<ZSet>(args.get(1)));
    Reply::Int(z.map_or(0, |z| range.collect(z, false).len() as i64))
}

fn rank(ctx: &mut Ctx, args: &Args, rev: bool) -> Reply {
    let Some(z) = tri!(ctx.read::<ZSet>(args.get(1))) else {
        return Reply::Null;
    };
    match z.rank(args.get(2)) {
        Some(r) if rev => Reply::Int((z.len() - 1 - r) as i64),
        Some(r) => Reply::Int(r as i64),
        None => Reply::Null,
    }
}

fn zrank(ctx: &mut Ctx, args: &Args) -> Reply {
    rank(ctx, args, false)
}
fn zrevrank(ctx: &mut Ctx, args: &Args) -> Reply {
    rank(ctx, args, true)
}

fn shape(kind: Option<range::Kind>, rev: Option<bool>) -> Shape {
    Shape {
        kind,
        rev,
        dst: None,
        src: 1,
    }
}

fn zrange(ctx: &mut Ctx, args: &Args) -> Reply {
    range::zrange(ctx, args, shape(None, None))
}
fn zrangestore(ctx: &mut Ctx, args: &Args) -> Reply {
    range::zrange(
        ctx,
        args,
        Shape {
            kind: None,
            rev: None,
            dst: Some(1),
            src: 2,
        },
    )
}
fn zrangebyscore(ctx: &mut Ctx, args: &Args) -> Reply {
    range::zrange(ctx, args, shape(Some(range::Kind::Score), Some(false)))
}
fn zrevrangebyscore(ctx: &mut Ctx, args: &Args) -> Reply {
    range::zrange(ctx, args, shape(Some(range::Kind::Score), Some(true)))
}
fn zrangebylex(ctx: &mut Ctx, args: &Args) -> Reply {
    range::zrange(ctx, args, shape(Some(range::Kind::Lex), Some(false)))
}
fn zrevrangebylex(ctx: &mut Ctx, args: &Args) -> Reply {
    range::zrange(ctx, args, shape(Some(range::Kind::Lex), Some(true)))
}
fn zrevrange(ctx: &mut Ctx, args: &Args) -> Reply {
    range::zrange(ctx, args, shape(Some(range::Kind::Rank), Some(true)))
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
    ctx.delete_if_empty::<ZSet>(key);
    ctx.modified(key);
    Reply::Array(scored_items(popped, true, resp3 && count.is_some()))
}

fn zpopmin(ctx: &mut Ctx, args: &Args) -> Reply {
    zpop(ctx, args, false)
}
fn zpopmax(ctx: &mut Ctx, args: &Args) -> Reply {
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
        ctx.delete_if_empty::<ZSet>(key);
        ctx.modified(key);
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

fn bzpopmin(ctx: &mut Ctx, args: &Args) -> Reply {
    bzpop(ctx, args, false)
}
fn bzpopmax(ctx: &mut Ctx, args: &Args) -> Reply {
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
        ctx.delete_if_empty::<ZSet>(key);
        ctx.modified(key);
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

fn zmpop(ctx: &mut Ctx, args: &Args) -> Reply {
    zmpop_generic(ctx, args, 1, false)
}
fn bzmpop(ctx: &mut Ctx, args: &Args) -> Reply {
    zmpop_generic(ctx, args, 2, true)
}

fn zunionstore(ctx: &mut Ctx, args: &Args) -> Reply {
    store::combine(ctx, args, Op::Union, Output::Store, "zunionstore")
}
fn zinterstore(ctx: &mut Ctx, args: &Args) -> Reply {
    store::combine(ctx, args, Op::Inter, Output::Store, "zinterstore")
}
fn zdiffstore(ctx: &mut Ctx, args: &Args) -> Reply {
    store::combine(ctx, args, Op::Diff, Output::Store, "zdiffstore")
}
fn zunion(ctx: &mut Ctx, args: &Args) -> Reply {
    store::combine(ctx, args, Op::Union, Output::Reply, "zunion")
}
fn zinter(ctx: &mut Ctx, args: &Args) -> Reply {
    store::combine(ctx, args, Op::Inter, Output::Reply, "zinter")
}
fn zdiff(ctx: &mut Ctx, args: &Args) -> Reply {
    store::combine(ctx, args, Op::Diff, Output::Reply, "zdiff")
}
fn zintercard(ctx: &mut Ctx, args: &Args) -> Reply {
    store::combine(ctx, args, Op::Inter, Output::Card, "zintercard")
}

/// Removes the selected members; answers how many.
fn remove_selected(ctx: &mut Ctx, key: &[u8], pick: impl Fn(&ZSet) -> Vec<Bytes>) -> Reply {
    let Some(z) = tri!(ctx.write::<ZSet>(key)) else {
        return Reply::Int(0);
    };
    let doomed = pick(z);
    for m in &doomed {
        z.remove(m);
    }
    if !doomed.is_empty() {
        ctx.delete_if_empty::<ZSet>(key);
        ctx.modified(key);
    }
    Reply::Int(doomed.len() as i64)
}

fn zremrangebyscore(ctx: &mut Ctx, args: &Args) -> Reply {
    let range = tri!(ScoreRange::parse(args.get(2), args.get(3)));
    remove_selected(ctx, args.get(1), |z| {
        range.iter(z).map(|(m, _)| m.clone()).collect()
    })
}

fn zremrangebyrank(ctx: &mut Ctx, args: &Args) -> Reply {
    let (start, stop) = (tri!(args.int(2)), tri!(args.int(3)));
    remove_selected(ctx, args.get(1), |z| {
        by_rank(z, start, stop, false)
            .into_iter()
            .map(|(m, _)| m.clone())
            .collect()
    })
}

fn zremrangebylex(ctx: &mut Ctx, args: &Args) -> Reply {
    let range = tri!(LexRange::parse(args.get(2), args.get(3)));
    remove_selected(ctx, args.get(1), |z| {
        range
            .collect(z, false)
            .into_iter()
            .map(|(m, _)| m.clone())
            .collect()
    })
}

fn zrandmember(ctx: &mut Ctx, args: &Args) -> Reply {
    let opts = tri!(rand_args(args, "WITHSCORES"));
    let key = args.get(1);
    let len = match tri!(ctx.read::<ZSet>(key)) {
        None if opts.is_none() => return Reply::Null,
        None => return Reply::Array(Vec::new()),
        Some(z) => z.len(),
    };
    let (picks, with_scores) = match opts {
        None => (vec![elems::random_index(ctx, len)], false),
        // Everything: Redis 7.0 lists the whole sorted set from the highest score down.
        Some((count, w)) if count >= len as i64 => ((0..len).rev().collect(), w),
        Some((count, w)) => (rand_positions(ctx, len, count), w),
    };
    let resp3 = ctx.proto() == Protocol::Resp3;
    let Some(z) = tri!(ctx.read::<ZSet>(key)) else {
        return Reply::Null;
    };
    // The ordered index has no positional access: fetch every wanted position in one
    // ascending walk, then answer in the picks' (random) order.
    let mut wanted = picks.clone();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found: Vec<(&Bytes, f64)> = Vec::with_capacity(wanted.len());
    let mut next = wanted.iter().peekable();
    for (pos, item) in z.iter().enumerate() {
        match next.peek() {
            Some(&&p) if p == pos => {
                found.push(item);
                next.next();
            }
            Some(_) => {}
            None => break,
        }
    }
    let at = |p: usize| wanted.binary_search(&p).ok().and_then(|i| found.get(i));
    if opts.is_none() {
        return Reply::opt_bulk(at(picks[0]).map(|(m, _)| (*m).clone()));
    }
    let mut out = Vec::with_capacity(picks.len() * if with_scores { 2 } else { 1 });
    for p in picks {
        if let Some((m, s)) = at(p) {
            if with_scores {
                push_pair(
                    &mut out,
                    resp3,
                    Reply::Bulk((*m).clone()),
                    Reply::Double(*s),
                );
            } else {
                out.push(Reply::Bulk((*m).clone()));
            }
        }
    }
    Reply::Array(out)
}

/// ZSCAN's cursor space: a score's position in the total order, halved so cursors stay
/// below 2^63 for clients that parse them as signed. Never 0 for a stored score.
fn scan_bucket(score: f64) -> u64 {
    let bits = score.to_bits();
    let key = if score.is_sign_negative() {
        !bits
    } else {
        bits | 1 << 63
    };
    key >> 1
}

/// The lowest score in cursor bucket `bucket`.
fn bucket_floor(bucket: u64) -> f64 {
    let key = bucket << 1;
    f64::from_bits(if key & 1 << 63 != 0 {
        key & !(1 << 63)
    } else {
        !key
    })
}

/// ZSCAN: small sorted sets whole; larger ones by score, the cursor being the score bucket
/// to resume from. Being value-based, it survives any additions and removals between
/// calls; a page ends on a bucket boundary so no member is split from its equals.
fn zscan(ctx: &mut Ctx, args: &Args) -> Reply {
    let cursor = tri!(elems::cursor(args.get(2)));
    let Some(z) = tri!(ctx.read::<ZSet>(args.get(1))) else {
        return elems::scan_reply(0, Vec::new());
    };
    let scan = tri!(elems::scan_options(args, cursor, 3));
    let mut out = Vec::new();
    let mut push = |m: &Bytes, s: f64| {
        if scan.matches(m) {
            out.push(Reply::Bulk(m.clone()));
            out.push(Reply::Bulk(Bytes::from(format_double(s))));
        }
    };
    if z.len() <= elems::SMALL {
        z.iter().for_each(|(m, s)| push(m, s));
        return elems::scan_reply(0, out);
    }
    let from = if cursor == 0 {
        f64::NEG_INFINITY
    } else {
        bucket_floor(cursor)
    };
    let lower = (Score(from), Bytes::new());
    let mut it = z.ordered().range(lower..).map(|(s, m)| (m, s.0)).peekable();
    let mut last = None;
    for _ in 0..scan.count {
        let Some((m, s)) = it.next() else { break };
        push(m, s);
        last = Some(scan_bucket(s));
    }
    let Some(last) = last else {
        return elems::scan_reply(0, out);
    };
    while let Some((m, s)) = it.next_if(|(_, s)| scan_bucket(*s) == last) {
        push(m, s);
    }
    let next = if it.peek().is_some() { last + 1 } else { 0 };
    elems::scan_reply(next, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_buckets_keep_score_order_and_stay_positive() {
        let scores = [
            f64::NEG_INFINITY,
            -1e300,
            -2.5,
            -0.0,
            0.0,
            1e-300,
            3.0,
            f64::INFINITY,
        ];
        for w in scores.windows(2) {
            assert!(scan_bucket(w[0]) <= scan_bucket(w[1]), "{w:?}");
        }
        for s in scores {
            let b = scan_bucket(s);
            assert!(b > 0 && b < 1 << 63);
            // In the total order used by the index (below -inf is a negative NaN, which the
            // index orders before everything: still a valid lower bound).
            assert!(bucket_floor(b).total_cmp(&s).is_le(), "{s}");
            assert_eq!(scan_bucket(bucket_floor(b)), b);
        }
    }
}
