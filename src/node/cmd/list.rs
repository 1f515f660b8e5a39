//! List commands: LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LLEN, LRANGE, LINDEX, LSET,
//! LINSERT, LREM, LTRIM, LPOS, LMOVE, RPOPLPUSH and the blocking BLPOP, BRPOP, BLMOVE,
//! BRPOPLPUSH, LMPOP, BLMPOP (the multi-list pops in `multi`).

mod multi;

use bytes::Bytes;

use super::elems;
use super::elems::tri;
use super::{args, Args, Command, Ctx, Flags, List, Reply};
use crate::node::args::arity_error;
use crate::node::notify;

const W: Flags = Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST);
const WF: Flags = Flags::WRITE.with(Flags::FAST);
const WD: Flags = Flags::WRITE.with(Flags::DENYOOM);
const WB: Flags = Flags::WRITE.with(Flags::BLOCKING);
const WDB: Flags = Flags::WRITE.with(Flags::DENYOOM).with(Flags::BLOCKING);
const R: Flags = Flags::READONLY;
const RF: Flags = Flags::READONLY.with(Flags::FAST);

/// The list family.
pub static COMMANDS: &[Command] = &[
    Command::new("lpush", lpush, -3, W)
        .reply_first()
        .keys(1, 1, 1),
    Command::new("rpush", rpush, -3, W)
        .reply_first()
        .keys(1, 1, 1),
    Command::new("lpushx", lpushx, -3, W)
        .reply_first()
        .keys(1, 1, 1),
    Command::new("rpushx", rpushx, -3, W)
        .reply_first()
        .keys(1, 1, 1),
    Command::new("lpop", lpop, -2, WF)
        .reply_first()
        .keys(1, 1, 1),
    Command::new("rpop", rpop, -2, WF)
        .reply_first()
        .keys(1, 1, 1),
    Command::new("llen", llen, 2, RF).keys(1, 1, 1),
    Command::new("lrange", lrange, 4, R).keys(1, 1, 1),
    Command::new("lindex", lindex, 3, R).keys(1, 1, 1),
    Command::new("lset", lset, 4, WD)
        .reply_first()
        .keys(1, 1, 1),
    Command::new("linsert", linsert, 5, WD).keys(1, 1, 1),
    Command::new("lrem", lrem, 4, Flags::WRITE).keys(1, 1, 1),
    Command::new("ltrim", ltrim, 4, Flags::WRITE).keys(1, 1, 1),
    Command::new("lpos", lpos, -3, R).keys(1, 1, 1),
    Command::new("lmove", lmove, 5, WD).keys(1, 2, 1),
    Command::new("rpoplpush", rpoplpush, 3, WD).keys(1, 2, 1),
    Command::new("blpop", multi::blpop, -3, WB)
        .reply_first()
        .keys(1, -2, 1),
    Command::new("brpop", multi::brpop, -3, WB)
        .reply_first()
        .keys(1, -2, 1),
    Command::new("blmove", multi::blmove, 6, WDB).keys(1, 2, 1),
    Command::new("brpoplpush", multi::brpoplpush, 4, WDB).keys(1, 2, 1),
    Command::new("lmpop", multi::lmpop, -4, Flags::WRITE).keys(0, 0, 0),
    Command::new("blmpop", multi::blmpop, -5, WB).keys(0, 0, 0),
];

/// A list end.
#[derive(Clone, Copy, PartialEq)]
enum End {
    Left,
    Right,
}

impl End {
    fn parse(arg: &[u8]) -> Result<End, Reply> {
        if arg.eq_ignore_ascii_case(b"LEFT") {
            Ok(End::Left)
        } else if arg.eq_ignore_ascii_case(b"RIGHT") {
            Ok(End::Right)
        } else {
            Err(args::syntax())
        }
    }
    fn word(self) -> &'static [u8] {
        match self {
            End::Left => b"LEFT",
            End::Right => b"RIGHT",
        }
    }
    /// The keyspace event of a pop at this end.
    pub(super) fn pop_event(self) -> &'static str {
        match self {
            End::Left => "lpop",
            End::Right => "rpop",
        }
    }
    /// The keyspace event of a push at this end.
    fn push_event(self) -> &'static str {
        match self {
            End::Left => "lpush",
            End::Right => "rpush",
        }
    }
    fn pop(self, l: &mut List) -> Option<Bytes> {
        match self {
            End::Left => l.pop_front(),
            End::Right => l.pop_back(),
        }
    }
    fn push(self, l: &mut List, v: Bytes) {
        match self {
            End::Left => l.push_front(v),
            End::Right => l.push_back(v),
        }
    }
}

fn push(ctx: &mut Ctx, args: &Args, end: End, only_existing: bool) -> Reply {
    let key = args.get(1);
    let l = if only_existing {
        match tri!(ctx.write::<List>(key)) {
            Some(l) => l,
            None => return Reply::Int(0),
        }
    } else {
        tri!(ctx.get_or_create::<List>(key))
    };
    for i in 2..args.len() {
        end.push(l, args.owned(i));
    }
    let len = l.len() as i64;
    ctx.changed(key, notify::LIST, end.push_event());
    Reply::Int(len)
}

fn lpush(ctx: &mut Ctx, args: &Args) -> Reply {
    push(ctx, args, End::Left, false)
}
fn rpush(ctx: &mut Ctx, args: &Args) -> Reply {
    push(ctx, args, End::Right, false)
}
fn lpushx(ctx: &mut Ctx, args: &Args) -> Reply {
    push(ctx, args, End::Left, true)
}
fn rpushx(ctx: &mut Ctx, args: &Args) -> Reply {
    push(ctx, args, End::Right, true)
}

/// LPOP/RPOP: one element (bulk or null), or with a count an array (a null array when the
/// key is missing, as Redis 7.0 answers).
fn pop(ctx: &mut Ctx, args: &Args, end: End, name: &str) -> Reply {
    if args.len() > 3 {
        return arity_error(name);
    }
    let count = if args.len() == 3 {
        Some(tri!(elems::positive_count(args, 2)))
    } else {
        None
    };
    let key = args.get(1);
    let Some(l) = tri!(ctx.write::<List>(key)) else {
        return if count.is_some() {
            Reply::NullArray
        } else {
            Reply::Null
        };
    };
    let reply = match count {
        None => Reply::opt_bulk(end.pop(l)),
        Some(0) => return Reply::Array(Vec::new()),
        Some(n) => {
            let n = n.min(l.len());
            Reply::Array((0..n).filter_map(|_| end.pop(l).map(Reply::Bulk)).collect())
        }
    };
    ctx.shrunk::<List>(key, notify::LIST, end.pop_event());
    reply
}

fn lpop(ctx: &mut Ctx, args: &Args) -> Reply {
    pop(ctx, args, End::Left, "lpop")
}
fn rpop(ctx: &mut Ctx, args: &Args) -> Reply {
    pop(ctx, args, End::Right, "rpop")
}

fn llen(ctx: &mut Ctx, args: &Args) -> Reply {
    Reply::Int(tri!(ctx.read::<List>(args.get(1))).map_or(0, |l| l.len() as i64))
}

/// Redis's index normalisation for a `start stop` range over `len` elements: `None` when
/// the range is empty.
pub(crate) fn rank_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { start + len } else { start }.max(0);
    let stop = if stop < 0 { stop + len } else { stop };
    if start > stop || start >= len {
        return None;
    }
    let stop = stop.min(len - 1);
    Some((start as usize, stop as usize))
}

fn lrange(ctx: &mut Ctx, args: &Args) -> Reply {
    let (start, stop) = (tri!(args.int(2)), tri!(args.int(3)));
    let Some(l) = tri!(ctx.read::<List>(args.get(1))) else {
        return Reply::Array(Vec::new());
    };
    match rank_range(start, stop, l.len()) {
        None => Reply::Array(Vec::new()),
        Some((a, b)) => elems::bulk_array(l.range(a..=b).map(|v| &v[..])),
    }
}

/// A possibly negative list index resolved against `len`.
fn resolve(index: i64, len: usize) -> Option<usize> {
    let i = if index < 0 { index + len as i64 } else { index };
    usize::try_from(i).ok().filter(|&i| i < len)
}

fn lindex(ctx: &mut Ctx, args: &Args) -> Reply {
    let index = tri!(args.int(2));
    let l = tri!(ctx.read::<List>(args.get(1)));
    Reply::opt_bulk(l.and_then(|l| resolve(index, l.len()).and_then(|i| l.get(i)).cloned()))
}

fn lset(ctx: &mut Ctx, args: &Args) -> Reply {
    let index = tri!(args.int(2));
    let key = args.get(1);
    let Some(l) = tri!(ctx.write::<List>(key)) else {
        return Reply::error("ERR no such key");
    };
    let Some(slot) = resolve(index, l.len()).and_then(|i| l.get_mut(i)) else {
        return Reply::error("ERR index out of range");
    };
    *slot = args.owned(3);
    ctx.changed(key, notify::LIST, "lset");
    Reply::Ok
}

fn linsert(ctx: &mut Ctx, args: &Args) -> Reply {
    let after = if args.is(2, "AFTER") {
        true
    } else if args.is(2, "BEFORE") {
        false
    } else {
        return args::syntax();
    };
    let key = args.get(1);
    let Some(l) = tri!(ctx.write::<List>(key)) else {
        return Reply::Int(0);
    };
    let Some(pos) = l.iter().position(|v| v == args.get(3)) else {
        return Reply::Int(-1);
    };
    l.insert(pos + usize::from(after), args.owned(4));
    let len = l.len() as i64;
    ctx.changed(key, notify::LIST, "linsert");
    Reply::Int(len)
}

fn lrem(ctx: &mut Ctx, args: &Args) -> Reply {
    let count = tri!(args.int(2));
    let key = args.get(1);
    let Some(l) = tri!(ctx.write::<List>(key)) else {
        return Reply::Int(0);
    };
    let target = args.get(3);
    let limit = if count == 0 {
        usize::MAX
    } else {
        usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX)
    };
    let before = l.len();
    if count >= 0 {
        let mut seen = 0;
        l.retain(|v| {
            let drop = seen < limit && v == target;
            seen += usize::from(drop);
            !drop
        });
    } else {
        // From the tail: the last `limit` matches, found in descending index order so each
        // removal leaves the remaining indices valid.
        let doomed: Vec<usize> = l
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, v)| *v == target)
            .map(|(i, _)| i)
            .take(limit)
            .collect();
        for i in doomed {
            l.remove(i);
        }
    }
    let removed = before - l.len();
    if removed > 0 {
        ctx.shrunk::<List>(key, notify::LIST, "lrem");
    }
    Reply::Int(removed as i64)
}

fn ltrim(ctx: &mut Ctx, args: &Args) -> Reply {
    let (start, stop) = (tri!(args.int(2)), tri!(args.int(3)));
    let key = args.get(1);
    let Some(l) = tri!(ctx.write::<List>(key)) else {
        return Reply::Ok;
    };
    match rank_range(start, stop, l.len()) {
        None => l.clear(),
        Some((a, b)) => {
            l.truncate(b + 1);
            l.drain(..a);
        }
    }
    ctx.shrunk::<List>(key, notify::LIST, "ltrim");
    Reply::Ok
}

fn lpos(ctx: &mut Ctx, args: &Args) -> Reply {
    let (mut rank, mut count, mut maxlen) = (1i64, None::<i64>, 0i64);
    let mut i = 3;
    while i < args.len() {
        if i + 1 >= args.len() {
            return args::syntax();
        }
        if args.is(i, "RANK") {
            rank = tri!(args.int(i + 1));
            if rank == 0 {
                return Reply::error(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the \
                     second ... or use negative to start from the end of the list",
                );
            }
            if rank == i64::MIN {
                return Reply::error(
                    "ERR value is out of range, value must between -9223372036854775807 and \
                     9223372036854775807",
                );
            }
        } else if args.is(i, "COUNT") {
            let n = tri!(args.int(i + 1));
            if n < 0 {
                return Reply::error("ERR COUNT can't be negative");
            }
            count = Some(n);
        } else if args.is(i, "MAXLEN") {
            maxlen = tri!(args.int(i + 1));
            if maxlen < 0 {
                return Reply::error("ERR MAXLEN can't be negative");
            }
        } else {
            return args::syntax();
        }
        i += 2;
    }
    let Some(l) = tri!(ctx.read::<List>(args.get(1))) else {
        return if count.is_some() {
            Reply::Array(Vec::new())
        } else {
            Reply::Null
        };
    };
    let target = args.get(2);
    let scan = if maxlen == 0 {
        l.len()
    } else {
        usize::try_from(maxlen).unwrap_or(usize::MAX).min(l.len())
    };
    let want = match count {
        Some(0) => usize::MAX,
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        None => 1,
    };
    let skip = usize::try_from(rank.unsigned_abs() - 1).unwrap_or(usize::MAX);
    let matches: Vec<Reply> = if rank > 0 {
        l.iter()
            .take(scan)
            .enumerate()
            .filter(|(_, v)| *v == target)
            .skip(skip)
            .take(want)
            .map(|(i, _)| Reply::Int(i as i64))
            .collect()
    } else {
        l.iter()
            .enumerate()
            .rev()
            .take(scan)
            .filter(|(_, v)| *v == target)
            .skip(skip)
            .take(want)
            .map(|(i, _)| Reply::Int(i as i64))
            .collect()
    };
    match count {
        Some(_) => Reply::Array(matches),
        None => matches.into_iter().next().unwrap_or(Reply::Null),
    }
}

/// Moves one element from `src`'s `from` end to `dst`'s `to` end; `Ok(None)` when `src` is
/// missing. The destination's type is checked before anything is popped, as Redis does.
fn move_one(
    ctx: &mut Ctx,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
) -> Result<Option<Bytes>, Reply> {
    if ctx.read::<List>(src)?.is_none() {
        return Ok(None);
    }
    ctx.read::<List>(dst)?;
    let Some(v) = ctx.write::<List>(src)?.and_then(|l| from.pop(l)) else {
        return Ok(None);
    };
    // Pushed before the source is deleted if empty, so a rotation of a one-element list
    // (source = destination) keeps its key, and in Redis's event order: push, pop, del.
    to.push(ctx.get_or_create::<List>(dst)?, v.clone());
    ctx.changed(dst, notify::LIST, to.push_event());
    ctx.shrunk::<List>(src, notify::LIST, from.pop_event());
    Ok(Some(v))
}

fn lmove(ctx: &mut Ctx, args: &Args) -> Reply {
    let from = tri!(End::parse(args.get(3)));
    let to = tri!(End::parse(args.get(4)));
    Reply::opt_bulk(tri!(move_one(ctx, args.get(1), args.get(2), from, to)))
}

fn rpoplpush(ctx: &mut Ctx, args: &Args) -> Reply {
    Reply::opt_bulk(tri!(move_one(
        ctx,
        args.get(1),
        args.get(2),
        End::Right,
        End::Left
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_ranges_follow_redis() {
        assert_eq!(rank_range(0, -1, 3), Some((0, 2)));
        assert_eq!(rank_range(-100, 100, 3), Some((0, 2)));
        assert_eq!(rank_range(2, 1, 3), None);
        assert_eq!(rank_range(3, 5, 3), None);
        assert_eq!(rank_range(-1, -1, 3), Some((2, 2)));
        assert_eq!(rank_range(0, -4, 3), None);
    }
}
