//! Set commands: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SPOP, SRANDMEMBER, SMOVE,
//! SINTER, SUNION, SDIFF and their STORE forms, SINTERCARD, SSCAN.

use bytes::Bytes;

use super::elems::tri;
use super::elems::{self, SMALL};
use super::{args, Args, Command, Ctx, Flags, Reply, Set, Value};
use crate::node::args::parse_int;
use crate::node::notify;

const W: Flags = Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST);
const WF: Flags = Flags::WRITE.with(Flags::FAST);
const WD: Flags = Flags::WRITE.with(Flags::DENYOOM);
const R: Flags = Flags::READONLY;
const RF: Flags = Flags::READONLY.with(Flags::FAST);

/// The set family.
pub static COMMANDS: &[Command] = &[
    Command::new("sadd", sadd, -3, W).keys(1, 1, 1),
    Command::new("srem", srem, -3, WF).keys(1, 1, 1),
    Command::new("smembers", smembers, 2, R).keys(1, 1, 1),
    Command::new("sismember", sismember, 3, RF).keys(1, 1, 1),
    Command::new("smismember", smismember, -3, RF).keys(1, 1, 1),
    Command::new("scard", scard, 2, RF).keys(1, 1, 1),
    Command::new("spop", spop, -2, WF).keys(1, 1, 1),
    Command::new("srandmember", srandmember, -2, R).keys(1, 1, 1),
    Command::new("smove", smove, 4, WF).keys(1, 2, 1),
    Command::new("sinter", sinter, -2, R).keys(1, -1, 1),
    Command::new("sunion", sunion, -2, R).keys(1, -1, 1),
    Command::new("sdiff", sdiff, -2, R).keys(1, -1, 1),
    Command::new("sinterstore", sinterstore, -3, WD)
        .reply_first()
        .reads_keys_first()
        .keys(1, -1, 1),
    Command::new("sunionstore", sunionstore, -3, WD)
        .reply_first()
        .reads_keys_first()
        .keys(1, -1, 1),
    Command::new("sdiffstore", sdiffstore, -3, WD)
        .reply_first()
        .reads_keys_first()
        .keys(1, -1, 1),
    Command::new("sintercard", sintercard, -3, R).keys(0, 0, 0),
    Command::new("sscan", sscan, -3, R).keys(1, 1, 1),
];

/// Removes `member` keeping the order of the rest while the set is small, so small sets
/// list their members predictably; large sets use the O(1) removal.
fn remove_member(s: &mut Set, member: &[u8]) -> bool {
    if s.len() <= SMALL {
        s.shift_remove(member)
    } else {
        s.swap_remove(member)
    }
}

fn sadd(ctx: &mut Ctx, args: &Args) -> Reply {
    let key = args.get(1);
    let s = tri!(ctx.get_or_create::<Set>(key));
    let mut added = 0;
    for i in 2..args.len() {
        if !s.contains(args.get(i)) {
            s.insert(args.owned(i));
            added += 1;
        }
    }
    if added > 0 {
        ctx.changed(key, notify::SET, "sadd");
    }
    Reply::Int(added)
}

fn srem(ctx: &mut Ctx, args: &Args) -> Reply {
    let key = args.get(1);
    let Some(s) = tri!(ctx.write::<Set>(key)) else {
        return Reply::Int(0);
    };
    let mut n = 0;
    for m in args.from(2) {
        if remove_member(s, m) {
            n += 1;
            if s.is_empty() {
                break;
            }
        }
    }
    if n > 0 {
        ctx.shrunk::<Set>(key, notify::SET, "srem");
    }
    Reply::Int(n)
}

/// Redis 7.0 keeps a set of at most this many integers as a sorted "intset".
const INTSET_MAX: usize = 512;

/// Members in the order Redis lists them where that order is defined: a small all-integer
/// set is an intset there, listed in ascending numeric order; any other set comes out in
/// hash-table order, for which ours (insertion order) is as good as any.
fn in_redis_order<'a>(items: impl Iterator<Item = &'a Bytes> + Clone, len: usize) -> Vec<Reply> {
    if len <= INTSET_MAX {
        let ints: Option<Vec<(i64, &Bytes)>> = items
            .clone()
            .map(|m| parse_int(m).map(|n| (n, m)))
            .collect();
        if let Some(mut ints) = ints {
            ints.sort_unstable_by_key(|(n, _)| *n);
            return ints
                .into_iter()
                .map(|(_, m)| Reply::Bulk(m.clone()))
                .collect();
        }
    }
    items.map(|m| Reply::Bulk(m.clone())).collect()
}

fn members(s: &Set) -> Vec<Reply> {
    in_redis_order(s.iter(), s.len())
}

fn smembers(ctx: &mut Ctx, args: &Args) -> Reply {
    let s = tri!(ctx.read::<Set>(args.get(1)));
    Reply::Set(s.map_or_else(Vec::new, members))
}

fn sismember(ctx: &mut Ctx, args: &Args) -> Reply {
    let s = tri!(ctx.read::<Set>(args.get(1)));
    Reply::Int(s.is_some_and(|s| s.contains(args.get(2))).into())
}

fn smismember(ctx: &mut Ctx, args: &Args) -> Reply {
    let s = tri!(ctx.read::<Set>(args.get(1)));
    Reply::Array(
        args.from(2)
            .map(|m| Reply::Int(s.is_some_and(|s| s.contains(m)).into()))
            .collect(),
    )
}

fn scard(ctx: &mut Ctx, args: &Args) -> Reply {
    Reply::Int(tri!(ctx.read::<Set>(args.get(1))).map_or(0, |s| s.len() as i64))
}

fn spop(ctx: &mut Ctx, args: &Args) -> Reply {
    let key = args.get(1);
    if args.len() > 3 {
        return args::syntax();
    }
    if args.len() == 3 {
        let count = tri!(elems::positive_count(args, 2));
        return spop_count(ctx, args, count);
    }
    let len = match tri!(ctx.read::<Set>(key)) {
        None => return Reply::Null,
        Some(s) => s.len(),
    };
    let i = elems::random_index(ctx, len);
    let Some(s) = tri!(ctx.write::<Set>(key)) else {
        return Reply::Null;
    };
    let Some(m) = s.swap_remove_index(i) else {
        return Reply::Null;
    };
    ctx.shrunk::<Set>(key, notify::SET, "spop");
    // A random choice: replicas must remove the same member.
    ctx.propagate_as(vec![Bytes::from_static(b"SREM"), args.owned(1), m.clone()]);
    Reply::Bulk(m)
}

fn spop_count(ctx: &mut Ctx, args: &Args, count: usize) -> Reply {
    let key = args.get(1);
    let len = match tri!(ctx.read::<Set>(key)) {
        None => return Reply::Set(Vec::new()),
        Some(s) => s.len(),
    };
    if count == 0 {
        return Reply::Set(Vec::new());
    }
    if count >= len {
        let Some(Value::Set(s)) = ctx.db().remove(key) else {
            return Reply::Set(Vec::new());
        };
        ctx.changed(key, notify::SET, "spop");
        ctx.notify(notify::GENERIC, "del", key);
        ctx.propagate_as(vec![Bytes::from_static(b"DEL"), args.owned(1)]);
        return Reply::Set(members(&s));
    }
    let mut picks = elems::distinct_indices(ctx, len, count);
    // Remove from the highest position down so each swap-removal leaves the positions still
    // to visit untouched.
    picks.sort_unstable_by(|a, b| b.cmp(a));
    let Some(s) = tri!(ctx.write::<Set>(key)) else {
        return Reply::Set(Vec::new());
    };
    let popped: Vec<Bytes> = picks
        .into_iter()
        .filter_map(|i| s.swap_remove_index(i))
        .collect();
    ctx.changed(key, notify::SET, "spop");
    let mut srem = Vec::with_capacity(popped.len() + 2);
    srem.push(Bytes::from_static(b"SREM"));
    srem.push(args.owned(1));
    srem.extend(popped.iter().cloned());
    ctx.propagate_as(srem);
    Reply::Set(popped.into_iter().map(Reply::Bulk).collect())
}

fn srandmember(ctx: &mut Ctx, args: &Args) -> Reply {
    let key = args.get(1);
    if args.len() > 3 {
        return args::syntax();
    }
    let count = if args.len() == 3 {
        let n = tri!(args.int(2));
        tri!(elems::check_repeats(n));
        Some(n)
    } else {
        None
    };
    let len = match tri!(ctx.read::<Set>(key)) {
        None if count.is_none() => return Reply::Null,
        None => return Reply::Array(Vec::new()),
        Some(s) => s.len(),
    };
    let Some(count) = count else {
        let i = elems::random_index(ctx, len);
        let s = tri!(ctx.read::<Set>(key));
        return Reply::opt_bulk(s.and_then(|s| s.get_index(i)).cloned());
    };
    let picks = elems::rand_positions(ctx, len, count);
    let Some(s) = tri!(ctx.read::<Set>(key)) else {
        return Reply::Array(Vec::new());
    };
    Reply::Array(
        picks
            .into_iter()
            .filter_map(|i| s.get_index(i).map(|m| Reply::Bulk(m.clone())))
            .collect(),
    )
}

fn smove(ctx: &mut Ctx, args: &Args) -> Reply {
    let (src, dst, member) = (args.get(1), args.get(2), args.get(3));
    let Some(s) = tri!(ctx.read::<Set>(src)) else {
        return Reply::Int(0);
    };
    let present = s.contains(member);
    tri!(ctx.read::<Set>(dst));
    if src == dst || !present {
        return Reply::Int(present.into());
    }
    if let Some(s) = tri!(ctx.write::<Set>(src)) {
        remove_member(s, member);
    }
    ctx.shrunk::<Set>(src, notify::SET, "srem");
    // Redis signals the destination only when the member was not there already
    // ("SMOVE only notify dstset when the addition is successful").
    if tri!(ctx.get_or_create::<Set>(dst)).insert(args.owned(3)) {
        ctx.changed(dst, notify::SET, "sadd");
    }
    Reply::Int(1)
}

/// Which set algebra.
#[derive(Clone, Copy, PartialEq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// The result of `op` over `keys`, after checking every key's type (a WRONGTYPE anywhere
/// wins over an empty result, as in Redis 7.0).
fn compute(ctx: &mut Ctx, args: &Args, keys: std::ops::Range<usize>, op: Op) -> Result<Set, Reply> {
    // Present keys, looked up once through the expiry-aware path.
    let mut present = Vec::new();
    for i in keys.clone() {
        present.push(ctx.read::<Set>(args.get(i))?.is_some());
    }
    let missing = present.contains(&false);
    if op == Op::Inter && missing {
        return Ok(Set::default());
    }
    let db = ctx.db_index();
    let store = &*ctx.store;
    let sets: Vec<Option<&Set>> = keys
        .zip(present)
        .map(|(i, here)| {
            here.then(|| store.db(db).get(args.get(i)))
                .flatten()
                .and_then(|v| match v {
                    Value::Set(s) => Some(&**s),
                    _ => None,
                })
        })
        .collect();
    Ok(match op {
        Op::Inter => {
            let mut present: Vec<&Set> = sets.into_iter().flatten().collect();
            // Walk the smallest set and probe the others.
            present.sort_by_key(|s| s.len());
            let Some((first, rest)) = present.split_first() else {
                return Ok(Set::default());
            };
            first
                .iter()
                .filter(|m| rest.iter().all(|s| s.contains(*m)))
                .cloned()
                .collect()
        }
        Op::Union => {
            let mut out = Set::default();
            for s in sets.into_iter().flatten() {
                out.extend(s.iter().cloned());
            }
            out
        }
        Op::Diff => {
            let mut it = sets.into_iter();
            let Some(Some(first)) = it.next() else {
                return Ok(Set::default());
            };
            let rest: Vec<&Set> = it.flatten().collect();
            first
                .iter()
                .filter(|m| !rest.iter().any(|s| s.contains(*m)))
                .cloned()
                .collect()
        }
    })
}

fn algebra(ctx: &mut Ctx, args: &Args, op: Op) -> Reply {
    let result = tri!(compute(ctx, args, 1..args.len(), op));
    Reply::Set(members(&result))
}

fn sinter(ctx: &mut Ctx, args: &Args) -> Reply {
    algebra(ctx, args, Op::Inter)
}
fn sunion(ctx: &mut Ctx, args: &Args) -> Reply {
    algebra(ctx, args, Op::Union)
}
fn sdiff(ctx: &mut Ctx, args: &Args) -> Reply {
    algebra(ctx, args, Op::Diff)
}

/// The STORE forms: the result replaces the destination (any type, TTL cleared), or deletes
/// it when empty.
fn algebra_store(ctx: &mut Ctx, args: &Args, op: Op) -> Reply {
    let result = tri!(compute(ctx, args, 2..args.len(), op));
    let dst = args.get(1);
    let n = result.len() as i64;
    if result.is_empty() {
        if ctx.delete(dst) {
            ctx.changed(dst, notify::GENERIC, "del");
        }
    } else {
        ctx.set(args.get(1), Value::Set(Box::new(result)), false);
        let event = match op {
            Op::Inter => "sinterstore",
            Op::Union => "sunionstore",
            Op::Diff => "sdiffstore",
        };
        ctx.changed(dst, notify::SET, event);
    }
    Reply::Int(n)
}

fn sinterstore(ctx: &mut Ctx, args: &Args) -> Reply {
    algebra_store(ctx, args, Op::Inter)
}
fn sunionstore(ctx: &mut Ctx, args: &Args) -> Reply {
    algebra_store(ctx, args, Op::Union)
}
fn sdiffstore(ctx: &mut Ctx, args: &Args) -> Reply {
    algebra_store(ctx, args, Op::Diff)
}

fn sintercard(ctx: &mut Ctx, args: &Args) -> Reply {
    let numkeys = match args::parse_int(args.get(1)) {
        Some(n) if n > 0 => n as usize,
        _ => return Reply::error("ERR numkeys should be greater than 0"),
    };
    if numkeys > args.len() - 2 {
        return Reply::error("ERR Number of keys can't be greater than number of args");
    }
    let mut limit = 0usize;
    let mut i = 2 + numkeys;
    while i < args.len() {
        if args.is(i, "LIMIT") && i + 1 < args.len() {
            limit = match args::parse_int(args.get(i + 1)) {
                Some(n) if n >= 0 => n as usize,
                _ => return Reply::error("ERR LIMIT can't be negative"),
            };
            i += 2;
        } else {
            return args::syntax();
        }
    }
    let result = tri!(compute(ctx, args, 2..2 + numkeys, Op::Inter));
    let n = if limit == 0 {
        result.len()
    } else {
        result.len().min(limit)
    };
    Reply::Int(n as i64)
}

fn sscan(ctx: &mut Ctx, args: &Args) -> Reply {
    let cursor = tri!(elems::cursor(args.get(2)));
    let Some(s) = tri!(ctx.read::<Set>(args.get(1))) else {
        return elems::scan_reply(0, Vec::new());
    };
    let scan = tri!(elems::scan_options(args, cursor, 3));
    // An intset in Redis is scanned whole, in ascending order.
    if s.len() <= INTSET_MAX && s.iter().all(|m| parse_int(m).is_some()) {
        let out = members(s)
            .into_iter()
            .filter(|r| matches!(r, Reply::Bulk(m) if scan.matches(m)))
            .collect();
        return elems::scan_reply(0, out);
    }
    let (range, next) = scan.window(s.len());
    let out = range
        .filter_map(|i| s.get_index(i))
        .filter(|m| scan.matches(m))
        .map(|m| Reply::Bulk(m.clone()))
        .collect();
    elems::scan_reply(next, out)
}
