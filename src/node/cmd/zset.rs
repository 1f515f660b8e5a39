//! Sorted-set commands: ZADD, ZINCRBY, ZREM, ZCARD, ZSCORE, ZMSCORE, ZCOUNT, ZLEXCOUNT, ZRANK,
//! ZREVRANK and ZREMRANGEBYSCORE/BYRANK/BYLEX here; the ZRANGE family in `range`;
//! ZPOPMIN/ZPOPMAX/ZMPOP and their blocking forms in `pop`; ZUNION/ZINTER/ZDIFF, their STORE
//! forms and ZINTERCARD in `store`; ZRANDMEMBER and ZSCAN in `sample`.

mod pop;
mod range;
mod sample;
mod store;

use bytes::Bytes;

use self::range::{by_rank, LexRange, ScoreRange, Shape};
use self::store::{Op, Output};
use super::elems::tri;
use super::{args, Args, Command, Ctx, Flags, Reply, ZSet};
use crate::node::notify;
use crate::node::value::Score;

const W: Flags = Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST);
const WF: Flags = Flags::WRITE.with(Flags::FAST);
const WD: Flags = Flags::WRITE.with(Flags::DENYOOM);
const WB: Flags = Flags::WRITE.with(Flags::FAST).with(Flags::BLOCKING);
const R: Flags = Flags::READONLY;
const RF: Flags = Flags::READONLY.with(Flags::FAST);

/// The sorted-set family.
pub static COMMANDS: &[Command] = &[
    Command::new("zadd", zadd, -4, W)
        .reply_first()
        .keys(1, 1, 1),
    Command::new("zincrby", zincrby, 4, W)
        .reply_first()
        .keys(1, 1, 1),
    Command::new("zrem", zrem, -3, WF).keys(1, 1, 1),
    Command::new("zcard", zcard, 2, RF).keys(1, 1, 1),
    Command::new("zscore", zscore, 3, RF).keys(1, 1, 1),
    Command::new("zmscore", zmscore, -3, RF).keys(1, 1, 1),
    Command::new("zcount", zcount, 4, RF).keys(1, 1, 1),
    Command::new("zlexcount", zlexcount, 4, RF).keys(1, 1, 1),
    Command::new("zrank", zrank, 3, RF).keys(1, 1, 1),
    Command::new("zrevrank", zrevrank, 3, RF).keys(1, 1, 1),
    Command::new("zrange", zrange, -4, R).keys(1, 1, 1),
    Command::new("zrangestore", zrangestore, -5, WD)
        .reply_first()
        .reads_keys_first()
        .keys(1, 2, 1),
    Command::new("zrangebyscore", zrangebyscore, -4, R).keys(1, 1, 1),
    Command::new("zrevrangebyscore", zrevrangebyscore, -4, R).keys(1, 1, 1),
    Command::new("zrangebylex", zrangebylex, -4, R).keys(1, 1, 1),
    Command::new("zrevrangebylex", zrevrangebylex, -4, R).keys(1, 1, 1),
    Command::new("zrevrange", zrevrange, -4, R).keys(1, 1, 1),
    Command::new("zpopmin", pop::zpopmin, -2, WF).keys(1, 1, 1),
    Command::new("zpopmax", pop::zpopmax, -2, WF).keys(1, 1, 1),
    Command::new("bzpopmin", pop::bzpopmin, -3, WB).keys(1, -2, 1),
    Command::new("bzpopmax", pop::bzpopmax, -3, WB).keys(1, -2, 1),
    Command::new("zmpop", pop::zmpop, -4, Flags::WRITE).keys(0, 0, 0),
    Command::new(
        "bzmpop",
        pop::bzmpop,
        -5,
        Flags::WRITE.with(Flags::BLOCKING),
    )
    .keys(0, 0, 0),
    Command::new("zunionstore", zunionstore, -4, WD)
        .reply_first()
        .reads_keys_first()
        .keys(1, 1, 1),
    Command::new("zinterstore", zinterstore, -4, WD)
        .reply_first()
        .reads_keys_first()
        .keys(1, 1, 1),
    Command::new("zdiffstore", zdiffstore, -4, WD)
        .reply_first()
        .reads_keys_first()
        .keys(1, 1, 1),
    Command::new("zunion", zunion, -3, R).keys(0, 0, 0),
    Command::new("zinter", zinter, -3, R).keys(0, 0, 0),
    Command::new("zdiff", zdiff, -3, R).keys(0, 0, 0),
    Command::new("zintercard", zintercard, -3, R).keys(0, 0, 0),
    Command::new("zremrangebyscore", zremrangebyscore, 4, Flags::WRITE).keys(1, 1, 1),
    Command::new("zremrangebyrank", zremrangebyrank, 4, Flags::WRITE).keys(1, 1, 1),
    Command::new("zremrangebylex", zremrangebylex, 4, Flags::WRITE).keys(1, 1, 1),
    Command::new("zrandmember", sample::zrandmember, -2, R).keys(1, 1, 1),
    Command::new("zscan", sample::zscan, -3, R).keys(1, 1, 1),
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
    let (f, first) = tri!(AddFlags::parse(args));
    let mut scores = Vec::with_capacity((args.len() - first) / 2);
    for j in (first..args.len()).step_by(2) {
        scores.push(tri!(args.float(j)));
    }
    let key = args.get(1);
    let exists = tri!(ctx.read::<ZSet>(key)).is_some();
    let mut done = Added::default();
    if exists || !f.xx {
        let z = tri!(ctx.get_or_create::<ZSet>(key));
        let member = |n: usize| args.get(first + 2 * n + 1);
        let Some(d) = add_members(z, &f, &scores, member) else {
            ctx.delete_if_empty::<ZSet>(key);
            return Reply::error(NAN_SCORE);
        };
        done = d;
        // Only a key this call created can be empty here (every element skipped).
        if !exists {
            ctx.delete_if_empty::<ZSet>(key);
        }
        if done.added + done.updated > 0 {
            ctx.changed(key, notify::ZSET, if f.incr { "zincr" } else { "zadd" });
        }
    }
    if f.incr {
        return if done.processed > 0 {
            Reply::Double(done.last)
        } else {
            Reply::Null
        };
    }
    Reply::Int(if f.ch {
        done.added + done.updated
    } else {
        done.added
    })
}

impl AddFlags {
    /// The flags before the first score, checked for conflicts; (flags, the first score's
    /// position).
    fn parse(args: &Args) -> Result<(AddFlags, usize), Reply> {
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
            return Err(args::syntax());
        }
        if f.nx && f.xx {
            return Err(Reply::error(
                "ERR XX and NX options at the same time are not compatible",
            ));
        }
        if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
            return Err(Reply::error(
                "ERR GT, LT, and/or NX options at the same time are not compatible",
            ));
        }
        if f.incr && elements > 2 {
            return Err(Reply::error(
                "ERR INCR option supports a single increment-element pair",
            ));
        }
        Ok((f, i))
    }
}

/// What ZADD did: members added, scores changed, pairs applied and the last score set.
#[derive(Default)]
struct Added {
    added: i64,
    updated: i64,
    processed: i64,
    last: f64,
}

/// Applies the score/member pairs under the flags; `None` if an INCR made a NaN score.
fn add_members<'m>(
    z: &mut ZSet,
    f: &AddFlags,
    scores: &[f64],
    member: impl Fn(usize) -> &'m [u8],
) -> Option<Added> {
    let mut d = Added::default();
    for (n, &score) in scores.iter().enumerate() {
        let member = member(n);
        match z.score(member) {
            Some(cur) => {
                if f.nx {
                    continue;
                }
                let new = if f.incr { cur + score } else { score };
                if new.is_nan() {
                    return None;
                }
                if (f.gt && new <= cur) || (f.lt && new >= cur) {
                    continue;
                }
                if new != cur {
                    z.insert(Bytes::copy_from_slice(member), new);
                    d.updated += 1;
                }
                d.last = new;
                d.processed += 1;
            }
            None => {
                if f.xx {
                    continue;
                }
                z.insert(Bytes::copy_from_slice(member), score);
                d.added += 1;
                d.last = score;
                d.processed += 1;
            }
        }
    }
    Some(d)
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
    ctx.changed(key, notify::ZSET, "zincr");
    Reply::Double(new)
}

fn zrem(ctx: &mut Ctx, args: &Args) -> Reply {
    let key = args.get(1);
    let Some(z) = tri!(ctx.write::<ZSet>(key)) else {
        return Reply::Int(0);
    };
    let n = args.from(2).filter(|m| z.remove(m).is_some()).count();
    if n > 0 {
        ctx.shrunk::<ZSet>(key, notify::ZSET, "zrem");
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
    match rank_of(z, args.get(2)) {
        Some(r) if rev => Reply::Int((z.len() - 1 - r) as i64),
        Some(r) => Reply::Int(r as i64),
        None => Reply::Null,
    }
}

/// 0-based ascending rank of `member`. The ordered index has no rank counts, so this walks
/// in from both ends at once and stops at whichever reaches the member first: members near
/// either end (a leaderboard's top, ZREVRANK) cost little, the middle half of the set.
fn rank_of(z: &ZSet, member: &[u8]) -> Option<usize> {
    let key = (Score(z.score(member)?), Bytes::copy_from_slice(member));
    let mut below = z.ordered().range(..key.clone());
    let mut at_or_above = z.ordered().range(key..).rev();
    let (mut n_below, mut n_above) = (0, 0);
    loop {
        if below.next().is_none() {
            return Some(n_below);
        }
        n_below += 1;
        if at_or_above.next().is_none() {
            return Some(z.len() - n_above);
        }
        n_above += 1;
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
fn remove_selected(
    ctx: &mut Ctx,
    key: &[u8],
    event: &str,
    pick: impl Fn(&ZSet) -> Vec<Bytes>,
) -> Reply {
    let Some(z) = tri!(ctx.write::<ZSet>(key)) else {
        return Reply::Int(0);
    };
    let doomed = pick(z);
    for m in &doomed {
        z.remove(m);
    }
    if !doomed.is_empty() {
        ctx.shrunk::<ZSet>(key, notify::ZSET, event);
    }
    Reply::Int(doomed.len() as i64)
}

fn zremrangebyscore(ctx: &mut Ctx, args: &Args) -> Reply {
    let range = tri!(ScoreRange::parse(args.get(2), args.get(3)));
    remove_selected(ctx, args.get(1), "zremrangebyscore", |z| {
        range.iter(z).map(|(m, _)| m.clone()).collect()
    })
}

fn zremrangebyrank(ctx: &mut Ctx, args: &Args) -> Reply {
    let (start, stop) = (tri!(args.int(2)), tri!(args.int(3)));
    remove_selected(ctx, args.get(1), "zremrangebyrank", |z| {
        by_rank(z, start, stop, false)
            .into_iter()
            .map(|(m, _)| m.clone())
            .collect()
    })
}

fn zremrangebylex(ctx: &mut Ctx, args: &Args) -> Reply {
    let range = tri!(LexRange::parse(args.get(2), args.get(3)));
    remove_selected(ctx, args.get(1), "zremrangebylex", |z| {
        range
            .collect(z, false)
            .into_iter()
            .map(|(m, _)| m.clone())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_from_either_end() {
        let mut z = ZSet::default();
        for i in 0..101 {
            z.insert(Bytes::from(format!("m{i:03}")), f64::from(i % 7));
        }
        let order: Vec<Bytes> = z.iter().map(|(m, _)| m.clone()).collect();
        for (r, m) in order.iter().enumerate() {
            assert_eq!(rank_of(&z, m), Some(r), "{m:?}");
            assert_eq!(z.rank(m), Some(r));
        }
        assert_eq!(rank_of(&z, b"nope"), None);
    }
}
