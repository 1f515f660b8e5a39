//! Hash commands: HSET, HSETNX, HMSET, HGET, HMGET, HDEL, HEXISTS, HLEN, HSTRLEN, HKEYS, HVALS,
//! HGETALL, HINCRBY, HINCRBYFLOAT, HRANDFIELD, HSCAN.

use bytes::{Bytes, BytesMut};

use super::elems::{self, push_pair, rand_args, rand_positions, tri, SMALL};
use super::{Args, Command, Ctx, Flags, Hash, Reply};
use crate::node::args::{arity_error, parse_float, parse_int};
use crate::node::notify;
use crate::resp::encode;

const W: Flags = Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST);
const WF: Flags = Flags::WRITE.with(Flags::FAST);
const R: Flags = Flags::READONLY;
const RF: Flags = Flags::READONLY.with(Flags::FAST);

/// The hash family.
pub static COMMANDS: &[Command] = &[
    Command::new("hset", hset, -4, W)
        .reply_first()
        .keys(1, 1, 1),
    Command::new("hmset", hmset, -4, W)
        .reply_first()
        .keys(1, 1, 1),
    Command::new("hsetnx", hsetnx, 4, W)
        .reply_first()
        .keys(1, 1, 1),
    Command::new("hget", hget, 3, RF).keys(1, 1, 1),
    Command::new("hmget", hmget, -3, RF).keys(1, 1, 1),
    Command::new("hdel", hdel, -3, WF).keys(1, 1, 1),
    Command::new("hexists", hexists, 3, RF).keys(1, 1, 1),
    Command::new("hlen", hlen, 2, RF).keys(1, 1, 1),
    Command::new("hstrlen", hstrlen, 3, RF).keys(1, 1, 1),
    Command::new("hkeys", hkeys, 2, R).keys(1, 1, 1),
    Command::new("hvals", hvals, 2, R).keys(1, 1, 1),
    Command::new("hgetall", hgetall, 2, R).keys(1, 1, 1),
    Command::new("hincrby", hincrby, 4, W)
        .reply_first()
        .keys(1, 1, 1),
    Command::new("hincrbyfloat", hincrbyfloat, 4, W)
        .reply_first()
        .keys(1, 1, 1),
    Command::new("hrandfield", hrandfield, -2, R).keys(1, 1, 1),
    Command::new("hscan", hscan, -3, R).keys(1, 1, 1),
];

/// Removes `field` keeping the order of the rest while the hash is small (Redis's listpack
/// keeps insertion order, and clients see it in HGETALL); large hashes use the O(1) removal.
pub(crate) fn remove_field(h: &mut Hash, field: &[u8]) -> bool {
    if h.len() <= SMALL {
        h.shift_remove(field).is_some()
    } else {
        h.swap_remove(field).is_some()
    }
}

/// Sets the field/value pairs from `args[2..]`; returns how many fields were new.
fn set_pairs(ctx: &mut Ctx, args: &Args) -> Result<i64, Reply> {
    let h = ctx.get_or_create::<Hash>(args.get(1))?;
    let mut added = 0;
    let mut i = 2;
    while i + 1 < args.len() {
        let value = args.owned(i + 1);
        match h.get_mut(args.get(i)) {
            Some(v) => *v = value,
            None => {
                h.insert(args.owned(i), value);
                added += 1;
            }
        }
        i += 2;
    }
    ctx.changed(args.get(1), notify::HASH, "hset");
    Ok(added)
}

fn hset(ctx: &mut Ctx, args: &Args) -> Reply {
    if args.len() % 2 == 1 {
        return arity_error("hset");
    }
    Reply::Int(tri!(set_pairs(ctx, args)))
}

fn hmset(ctx: &mut Ctx, args: &Args) -> Reply {
    if args.len() % 2 == 1 {
        return arity_error("hmset");
    }
    tri!(set_pairs(ctx, args));
    Reply::Ok
}

fn hsetnx(ctx: &mut Ctx, args: &Args) -> Reply {
    let key = args.get(1);
    if tri!(ctx.read::<Hash>(key)).is_some_and(|h| h.contains_key(args.get(2))) {
        return Reply::Int(0);
    }
    tri!(ctx.get_or_create::<Hash>(key)).insert(args.owned(2), args.owned(3));
    ctx.changed(key, notify::HASH, "hset");
    Reply::Int(1)
}

fn hget(ctx: &mut Ctx, args: &Args) -> Reply {
    let h = tri!(ctx.read::<Hash>(args.get(1)));
    Reply::opt_bulk(h.and_then(|h| h.get(args.get(2))).cloned())
}

fn hmget(ctx: &mut Ctx, args: &Args) -> Reply {
    let h = tri!(ctx.read::<Hash>(args.get(1)));
    Reply::Array(
        args.from(2)
            .map(|f| Reply::opt_bulk(h.and_then(|h| h.get(f)).cloned()))
            .collect(),
    )
}

fn hdel(ctx: &mut Ctx, args: &Args) -> Reply {
    let key = args.get(1);
    let Some(h) = tri!(ctx.write::<Hash>(key)) else {
        return Reply::Int(0);
    };
    let mut n = 0;
    for f in args.from(2) {
        if remove_field(h, f) {
            n += 1;
            if h.is_empty() {
                break;
            }
        }
    }
    if n > 0 {
        ctx.shrunk::<Hash>(key, notify::HASH, "hdel");
    }
    Reply::Int(n)
}

fn hexists(ctx: &mut Ctx, args: &Args) -> Reply {
    let h = tri!(ctx.read::<Hash>(args.get(1)));
    Reply::Int(h.is_some_and(|h| h.contains_key(args.get(2))).into())
}

fn hlen(ctx: &mut Ctx, args: &Args) -> Reply {
    let h = tri!(ctx.read::<Hash>(args.get(1)));
    Reply::Int(h.map_or(0, |h| h.len() as i64))
}

fn hstrlen(ctx: &mut Ctx, args: &Args) -> Reply {
    let h = tri!(ctx.read::<Hash>(args.get(1)));
    Reply::Int(
        h.and_then(|h| h.get(args.get(2)))
            .map_or(0, |v| v.len() as i64),
    )
}

fn hkeys(ctx: &mut Ctx, args: &Args) -> Reply {
    let h = tri!(ctx.read::<Hash>(args.get(1)));
    match h {
        Some(h) => elems::bulk_array(h.keys().map(|k| &k[..])),
        None => Reply::Array(Vec::new()),
    }
}

fn hvals(ctx: &mut Ctx, args: &Args) -> Reply {
    let h = tri!(ctx.read::<Hash>(args.get(1)));
    match h {
        Some(h) => elems::bulk_array(h.values().map(|v| &v[..])),
        None => Reply::Array(Vec::new()),
    }
}

fn hgetall(ctx: &mut Ctx, args: &Args) -> Reply {
    let proto = ctx.proto();
    let Some(h) = tri!(ctx.read::<Hash>(args.get(1))) else {
        return Reply::Map(Vec::new());
    };
    // Encoded up front, like the range replies (see `elems::bulk_array`).
    let size: usize = h.iter().map(|(k, v)| k.len() + v.len() + 32).sum();
    let mut out = BytesMut::with_capacity(size + 16);
    encode::map_len(&mut out, proto, h.len());
    for (k, v) in h {
        encode::bulk(&mut out, k);
        encode::bulk(&mut out, v);
    }
    Reply::Raw(out.freeze())
}

fn hincrby(ctx: &mut Ctx, args: &Args) -> Reply {
    let incr = tri!(args.int(3));
    let key = args.get(1);
    let h = tri!(ctx.get_or_create::<Hash>(key));
    let current = match h.get(args.get(2)) {
        Some(v) => match parse_int(v) {
            Some(n) => n,
            None => {
                return Reply::error("ERR hash value is not an integer");
            }
        },
        None => 0,
    };
    let Some(next) = current.checked_add(incr) else {
        ctx.delete_if_empty::<Hash>(key);
        return Reply::error("ERR increment or decrement would overflow");
    };
    h.insert(args.owned(2), elems::int_bytes(next));
    ctx.changed(key, notify::HASH, "hincrby");
    Reply::Int(next)
}

fn hincrbyfloat(ctx: &mut Ctx, args: &Args) -> Reply {
    let incr = tri!(args.float(3));
    if !incr.is_finite() {
        return Reply::error("ERR value is NaN or Infinity");
    }
    let key = args.get(1);
    let h = tri!(ctx.get_or_create::<Hash>(key));
    let current = match h.get(args.get(2)) {
        Some(v) => match parse_float(v) {
            Some(n) => n,
            None => return Reply::error("ERR hash value is not a float"),
        },
        None => 0.0,
    };
    let next = current + incr;
    if !next.is_finite() {
        ctx.delete_if_empty::<Hash>(key);
        return Reply::error("ERR increment would produce NaN or Infinity");
    }
    let text = Bytes::from(human_float(next));
    h.insert(args.owned(2), text.clone());
    ctx.changed(key, notify::HASH, "hincrbyfloat");
    // Replicas must not redo float arithmetic: they get the resulting value.
    ctx.propagate_as(vec![
        Bytes::from_static(b"HSET"),
        args.owned(1),
        args.owned(2),
        text.clone(),
    ]);
    Reply::Bulk(text)
}

/// A float as Redis's "human" long-double format prints it (`%.17Lf` with trailing zeros
/// trimmed): plain decimal notation, no exponent. Redis adds in 80-bit long doubles, whose
/// extra precision hides the binary noise of decimal sums (0.1 + 0.2 prints `0.3`); a
/// double carries that noise in its 16th-17th digit. So the shortest round-trip text is
/// used, cut back to 15 significant digits when it needs more: that recovers the decimal
/// Redis prints in the usual cases (values with genuinely more digits print shorter).
pub(crate) fn human_float(v: f64) -> String {
    let shortest = format!("{v}");
    let digits = shortest
        .bytes()
        .filter(u8::is_ascii_digit)
        .skip_while(|&d| d == b'0')
        .count();
    if digits <= 15 {
        return shortest;
    }
    let rounded: f64 = format!("{v:.14e}").parse().unwrap_or(v);
    format!("{rounded}")
}

fn hrandfield(ctx: &mut Ctx, args: &Args) -> Reply {
    let opts = tri!(rand_args(args, "WITHVALUES"));
    let key = args.get(1);
    let len = match tri!(ctx.read::<Hash>(key)) {
        None if opts.is_none() => return Reply::Null,
        None => return Reply::Array(Vec::new()),
        Some(h) => h.len(),
    };
    let Some((count, with_values)) = opts else {
        let i = elems::random_index(ctx, len);
        let h = tri!(ctx.read::<Hash>(key));
        return Reply::opt_bulk(h.and_then(|h| h.get_index(i)).map(|(k, _)| k.clone()));
    };
    let picks = rand_positions(ctx, len, count);
    let resp3 = ctx.proto() == crate::resp::Protocol::Resp3;
    let Some(h) = tri!(ctx.read::<Hash>(key)) else {
        return Reply::Array(Vec::new());
    };
    let mut out = Vec::with_capacity(picks.len() * if with_values { 2 } else { 1 });
    for i in picks {
        if let Some((k, v)) = h.get_index(i) {
            if with_values {
                push_pair(
                    &mut out,
                    resp3,
                    Reply::Bulk(k.clone()),
                    Reply::Bulk(v.clone()),
                );
            } else {
                out.push(Reply::Bulk(k.clone()));
            }
        }
    }
    Reply::Array(out)
}

fn hscan(ctx: &mut Ctx, args: &Args) -> Reply {
    let cursor = tri!(elems::cursor(args.get(2)));
    let Some(h) = tri!(ctx.read::<Hash>(args.get(1))) else {
        return elems::scan_reply(0, Vec::new());
    };
    let scan = tri!(elems::scan_options(args, cursor, 3));
    let (range, next) = scan.window(h.len());
    let mut out = Vec::new();
    for i in range {
        if let Some((k, v)) = h.get_index(i) {
            if scan.matches(k) {
                out.push(Reply::Bulk(k.clone()));
                out.push(Reply::Bulk(v.clone()));
            }
        }
    }
    elems::scan_reply(next, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_floats_have_no_exponent_or_noise() {
        assert_eq!(human_float(0.1), "0.1");
        assert_eq!(human_float(3.0), "3");
        assert_eq!(human_float(1e21), "1000000000000000000000");
        assert_eq!(human_float(-2.5), "-2.5");
        assert_eq!(human_float(0.1 + 0.2), "0.3");
        assert_eq!(human_float(1.1 + 1.1 + 1.1), "3.3");
        assert_eq!(human_float(-0.0), "-0");
        assert_eq!(human_float(123456.789), "123456.789");
    }
}
