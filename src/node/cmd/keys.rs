//! Key commands (phase 1: DEL, UNLINK, EXISTS, TYPE, TTL/PTTL, EXPIRETIME/PEXPIRETIME,
//! EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT with NX/XX/GT/LT, PERSIST, DBSIZE).

use bytes::Bytes;

use super::{Args, Command, Ctx, Flags, Reply};
use crate::node::args::NOT_INT;
use crate::node::notify;

const W: Flags = Flags::WRITE;
const RF: Flags = Flags::READONLY.with(Flags::FAST);
const WF: Flags = Flags::WRITE.with(Flags::FAST);

/// The keys family.
pub static COMMANDS: &[Command] = &[
    Command::new("del", del, -2, W).keys(1, -1, 1),
    Command::new("unlink", del, -2, WF).keys(1, -1, 1),
    Command::new("exists", exists, -2, RF).keys(1, -1, 1),
    Command::new("type", type_, 2, RF).keys(1, 1, 1),
    Command::new("ttl", ttl, 2, RF).keys(1, 1, 1),
    Command::new("pttl", pttl, 2, RF).keys(1, 1, 1),
    Command::new("expiretime", expiretime, 2, RF).keys(1, 1, 1),
    Command::new("pexpiretime", pexpiretime, 2, RF).keys(1, 1, 1),
    Command::new("expire", expire, -3, WF)
        .reply_first()
        .keys(1, 1, 1),
    Command::new("pexpire", pexpire, -3, WF)
        .reply_first()
        .keys(1, 1, 1),
    Command::new("expireat", expireat, -3, WF)
        .reply_first()
        .keys(1, 1, 1),
    Command::new("pexpireat", pexpireat, -3, WF)
        .reply_first()
        .keys(1, 1, 1),
    Command::new("persist", persist, 2, WF).keys(1, 1, 1),
    Command::new("dbsize", dbsize, 1, RF),
];

fn del(ctx: &mut Ctx, args: &Args) -> Reply {
    let mut n = 0;
    for key in args.from(1) {
        if ctx.delete(key) {
            ctx.changed(key, notify::GENERIC, "del");
            n += 1;
        }
    }
    Reply::Int(n)
}

fn exists(ctx: &mut Ctx, args: &Args) -> Reply {
    let n = args.from(1).filter(|k| ctx.exists_read(k)).count();
    Reply::Int(n as i64)
}

fn type_(ctx: &mut Ctx, args: &Args) -> Reply {
    Reply::simple(ctx.peek(args.get(1)).map_or("none", |v| v.type_name()))
}

/// Remaining time in ms: -2 missing, -1 no expiry.
fn remaining_ms(ctx: &mut Ctx, key: &[u8]) -> i64 {
    if !ctx.exists_read(key) {
        return -2;
    }
    match ctx.expire_at(key) {
        Some(at) => (at - ctx.now_ms()).max(0),
        None => -1,
    }
}

fn ttl(ctx: &mut Ctx, args: &Args) -> Reply {
    match remaining_ms(ctx, args.get(1)) {
        n if n < 0 => Reply::Int(n),
        // Rounded to the nearest second, as Redis does.
        ms => Reply::Int((ms + 500) / 1000),
    }
}

fn pttl(ctx: &mut Ctx, args: &Args) -> Reply {
    Reply::Int(remaining_ms(ctx, args.get(1)))
}

fn expire_time(ctx: &mut Ctx, key: &[u8], unit: i64) -> Reply {
    if !ctx.exists_read(key) {
        return Reply::Int(-2);
    }
    Reply::Int(ctx.expire_at(key).map_or(-1, |at| at / unit))
}

fn expiretime(ctx: &mut Ctx, args: &Args) -> Reply {
    expire_time(ctx, args.get(1), 1000)
}

fn pexpiretime(ctx: &mut Ctx, args: &Args) -> Reply {
    expire_time(ctx, args.get(1), 1)
}

fn expire(ctx: &mut Ctx, args: &Args) -> Reply {
    let now = ctx.now_ms();
    expire_generic(ctx, args, now, 1000)
}

fn pexpire(ctx: &mut Ctx, args: &Args) -> Reply {
    let now = ctx.now_ms();
    expire_generic(ctx, args, now, 1)
}

fn expireat(ctx: &mut Ctx, args: &Args) -> Reply {
    expire_generic(ctx, args, 0, 1000)
}

fn pexpireat(ctx: &mut Ctx, args: &Args) -> Reply {
    expire_generic(ctx, args, 0, 1)
}

/// Redis's `expireGenericCommand`: options, then the time (with overflow checks), then the
/// key; a time already past deletes the key (propagated as DEL) except on a replica.
fn expire_generic(ctx: &mut Ctx, args: &Args, base: i64, unit: i64) -> Reply {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for (i, opt) in args.from(3).enumerate() {
        match () {
            _ if args.is(i + 3, "NX") => nx = true,
            _ if args.is(i + 3, "XX") => xx = true,
            _ if args.is(i + 3, "GT") => gt = true,
            _ if args.is(i + 3, "LT") => lt = true,
            _ => {
                return Reply::error(format!(
                    "ERR Unsupported option {}",
                    String::from_utf8_lossy(opt)
                ))
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Reply::error("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return Reply::error("ERR GT and LT options at the same time are not compatible");
    }
    let Ok(n) = args.int(2) else {
        return Reply::error(NOT_INT);
    };
    let Some(when) = n.checked_mul(unit).and_then(|ms| ms.checked_add(base)) else {
        let name = String::from_utf8_lossy(args.get(0)).to_ascii_lowercase();
        return Reply::error(format!("ERR invalid expire time in '{name}' command"));
    };
    let key = args.get(1);
    if !ctx.exists(key) {
        return Reply::Int(0);
    }
    let current = ctx.expire_at(key);
    let refused = (nx && current.is_some())
        || (xx && current.is_none())
        || (gt && current.is_none_or(|c| when <= c))
        || (lt && current.is_some_and(|c| when >= c));
    if refused {
        return Reply::Int(0);
    }
    if when <= ctx.now_ms() && !ctx.store.replica && !ctx.client.from_master {
        ctx.delete(key);
        ctx.changed(key, notify::GENERIC, "del");
        ctx.propagate_as(vec![Bytes::from_static(b"DEL"), args.owned(1)]);
        return Reply::Int(1);
    }
    ctx.db().set_expire(key, when);
    ctx.changed(key, notify::GENERIC, "expire");
    let mut rewritten = vec![
        Bytes::from_static(b"PEXPIREAT"),
        args.owned(1),
        Bytes::copy_from_slice(itoa::Buffer::new().format(when).as_bytes()),
    ];
    rewritten.extend(args.from(3).map(Bytes::copy_from_slice));
    ctx.propagate_as(rewritten);
    Reply::Int(1)
}

/// Counts expired keys not yet deleted, as Redis does: what active expiry left.
fn dbsize(ctx: &mut Ctx, _: &Args) -> Reply {
    Reply::Int(ctx.db().len() as i64)
}

fn persist(ctx: &mut Ctx, args: &Args) -> Reply {
    let key = args.get(1);
    if ctx.exists(key) && ctx.db().persist(key) {
        ctx.changed(key, notify::GENERIC, "persist");
        Reply::Int(1)
    } else {
        Reply::Int(0)
    }
}
