//! String commands: GET, SET (every option), GETSET, GETDEL, GETEX, MGET, MSET, MSETNX,
//! SETNX, SETEX, PSETEX, APPEND, STRLEN, GETRANGE/SUBSTR, SETRANGE. Counters are in
//! `counters.rs`, bit operations in `bits.rs`.

use bytes::Bytes;

use super::{Args, Command, Ctx, Flags, Reply, Value};
use crate::node::args::{syntax, NOT_INT};
use crate::node::notify;

/// The string family.
pub static COMMANDS: &[Command] = &[
    Command::new("get", get, 2, Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1),
    Command::new("set", set, -3, Flags::WRITE.with(Flags::DENYOOM))
        .reads_keys_first()
        .keys(1, 1, 1),
    Command::new("getset", getset, 3, WD.with(Flags::FAST))
        .reply_first()
        .reads_keys_first()
        .keys(1, 1, 1),
    Command::new("getdel", getdel, 2, WF)
        .reply_first()
        .reads_keys_first()
        .keys(1, 1, 1),
    Command::new("getex", getex, -2, WF)
        .reply_first()
        .reads_keys_first()
        .keys(1, 1, 1),
    Command::new("mget", mget, -2, RF).keys(1, -1, 1),
    Command::new("mset", mset, -3, WD).keys(1, -1, 2),
    Command::new("msetnx", msetnx, -3, WD).keys(1, -1, 2),
    Command::new("setnx", setnx, 3, WD.with(Flags::FAST)).keys(1, 1, 1),
    Command::new("setex", setex, 4, WD).keys(1, 1, 1),
    Command::new("psetex", psetex, 4, WD).keys(1, 1, 1),
    Command::new("append", append, 3, WD.with(Flags::FAST)).keys(1, 1, 1),
    Command::new("strlen", strlen, 2, RF).keys(1, 1, 1),
    Command::new("getrange", getrange, 4, Flags::READONLY).keys(1, 1, 1),
    Command::new("substr", getrange, 4, Flags::READONLY).keys(1, 1, 1),
    Command::new("setrange", setrange, 4, WD).keys(1, 1, 1),
];

const RF: Flags = Flags::READONLY.with(Flags::FAST);
const WF: Flags = Flags::WRITE.with(Flags::FAST);
const WD: Flags = Flags::WRITE.with(Flags::DENYOOM);

/// Longest string Redis accepts (`proto-max-bulk-len`).
const MAX_STRING: i64 = 512 * 1024 * 1024;

fn get(ctx: &mut Ctx, args: &Args) -> Reply {
    match ctx.read::<Bytes>(args.get(1)) {
        Ok(v) => Reply::stored(v),
        Err(e) => e,
    }
}

/// How SET was told to expire the key.
#[derive(Clone, Copy, PartialEq)]
enum Expiry {
    None,
    /// EX/PX: relative, in this many ms per unit.
    Relative(i64),
    /// EXAT/PXAT: absolute unix time, in this many ms per unit.
    Absolute(i64),
    KeepTtl,
}

/// The expiry option at `args[i]` (EX, PX, EXAT, PXAT) of SET and GETEX, if it is one.
fn expiry_unit(args: &Args, i: usize) -> Option<Expiry> {
    Some(if args.is(i, "EX") {
        Expiry::Relative(1000)
    } else if args.is(i, "PX") {
        Expiry::Relative(1)
    } else if args.is(i, "EXAT") {
        Expiry::Absolute(1000)
    } else if args.is(i, "PXAT") {
        Expiry::Absolute(1)
    } else {
        return None;
    })
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ms-ts|KEEPTTL]`, parsed in Redis's
/// order: option syntax first, then the expiry number.
fn set(ctx: &mut Ctx, args: &Args) -> Reply {
    let (mut nx, mut xx, mut get) = (false, false, false);
    let mut expiry = Expiry::None;
    let mut expire_arg = 0;
    let mut i = 3;
    while i < args.len() {
        let has_next = i + 1 < args.len();
        let timed = matches!(expiry, Expiry::Relative(_) | Expiry::Absolute(_));
        if args.is(i, "NX") && !xx {
            nx = true;
        } else if args.is(i, "XX") && !nx {
            xx = true;
        } else if args.is(i, "GET") {
            get = true;
        } else if args.is(i, "KEEPTTL") && !timed {
            expiry = Expiry::KeepTtl;
        } else if expiry != Expiry::KeepTtl && has_next {
            // A unit may be repeated (the last one wins) but not mixed with another.
            let Some(unit) = expiry_unit(args, i) else {
                return syntax();
            };
            if timed && unit != expiry {
                return syntax();
            }
            expiry = unit;
            expire_arg = i + 1;
            i += 1;
        } else {
            return syntax();
        }
        i += 1;
    }
    let at_ms = match expiry {
        Expiry::Relative(unit) | Expiry::Absolute(unit) => {
            let Ok(n) = args.int(expire_arg) else {
                return Reply::error(NOT_INT);
            };
            let relative = matches!(expiry, Expiry::Relative(_));
            let base = if relative { ctx.now_ms() } else { 0 };
            match n
                .checked_mul(unit)
                .filter(|_| n > 0)
                .and_then(|ms| ms.checked_add(base))
            {
                Some(at) => Some(at),
                None => return Reply::error("ERR invalid expire time in 'set' command"),
            }
        }
        _ => None,
    };
    let key = args.get(1);
    let old = if get {
        match ctx.read::<Bytes>(key) {
            Ok(v) => Some(Reply::opt_bulk(v.cloned())),
            Err(e) => return e,
        }
    } else {
        None
    };
    // Looked up only for NX/XX: a plain SET finds the key once, in `set_from`.
    let found = (nx || xx) && ctx.exists(key);
    if (nx && found) || (xx && !found) {
        return old.unwrap_or(Reply::Null);
    }
    ctx.set_from(key, Value::Str(args.owned(2)), expiry == Expiry::KeepTtl);
    ctx.notify(notify::STRING, "set", key);
    if let Some(at) = at_ms {
        ctx.db().set_expire(key, at);
        if matches!(expiry, Expiry::Relative(_) | Expiry::Absolute(1000)) {
            propagate_set_pxat(ctx, args.owned(1), args.owned(2), at);
        }
        ctx.notify(notify::GENERIC, "expire", key);
    }
    ctx.modified(key);
    old.unwrap_or(Reply::Ok)
}

/// Propagates an absolute expiry set by `key`'s command as `SET key value PXAT at`, so a
/// delayed replay expires the key at the same moment.
fn propagate_set_pxat(ctx: &mut Ctx, key: Bytes, value: Bytes, at: i64) {
    let mut n = itoa::Buffer::new();
    ctx.propagate_as(vec![
        Bytes::from_static(b"SET"),
        key,
        value,
        Bytes::from_static(b"PXAT"),
        Bytes::copy_from_slice(n.format(at).as_bytes()),
    ]);
}

fn getset(ctx: &mut Ctx, args: &Args) -> Reply {
    let old = match ctx.read::<Bytes>(args.get(1)) {
        Ok(v) => v.cloned(),
        Err(e) => return e,
    };
    ctx.set(args.get(1), Value::Str(args.owned(2)), false);
    ctx.changed(args.get(1), notify::STRING, "set");
    Reply::opt_bulk(old)
}

fn getdel(ctx: &mut Ctx, args: &Args) -> Reply {
    let key = args.get(1);
    let old = match ctx.read::<Bytes>(key) {
        Ok(Some(v)) => v.clone(),
        Ok(None) => return Reply::Null,
        Err(e) => return e,
    };
    ctx.delete(key);
    ctx.changed(key, notify::GENERIC, "del");
    Reply::Bulk(old)
}

/// `GETEX key [EX s | PX ms | EXAT ts | PXAT ms-ts | PERSIST]`, in Redis's order: option
/// syntax, then the key, then the expiry value.
fn getex(ctx: &mut Ctx, args: &Args) -> Reply {
    let mut expiry = Expiry::None;
    let mut persist = false;
    let mut expire_arg = 0;
    let mut i = 2;
    while i < args.len() {
        let timed = matches!(expiry, Expiry::Relative(_) | Expiry::Absolute(_));
        if args.is(i, "PERSIST") && !timed {
            persist = true;
        } else if !persist && i + 1 < args.len() {
            let Some(unit) = expiry_unit(args, i) else {
                return syntax();
            };
            if timed && unit != expiry {
                return syntax();
            }
            expiry = unit;
            expire_arg = i + 1;
            i += 1;
        } else {
            return syntax();
        }
        i += 1;
    }
    let key = args.get(1);
    let value = match ctx.read::<Bytes>(key) {
        Ok(Some(v)) => v.clone(),
        Ok(None) => return Reply::Null,
        Err(e) => return e,
    };
    if let Expiry::Relative(unit) | Expiry::Absolute(unit) = expiry {
        let Ok(n) = args.int(expire_arg) else {
            return Reply::error(NOT_INT);
        };
        let base = if matches!(expiry, Expiry::Relative(_)) {
            ctx.now_ms()
        } else {
            0
        };
        let Some(at) = n
            .checked_mul(unit)
            .filter(|_| n > 0)
            .and_then(|ms| ms.checked_add(base))
        else {
            return Reply::error("ERR invalid expire time in 'getex' command");
        };
        if at <= ctx.now_ms() && !ctx.store.replica && !ctx.client.from_master {
            ctx.delete(key);
            ctx.changed(key, notify::GENERIC, "del");
            ctx.propagate_as(vec![Bytes::from_static(b"DEL"), args.owned(1)]);
        } else {
            ctx.db().set_expire(key, at);
            ctx.changed(key, notify::GENERIC, "expire");
            let mut n = itoa::Buffer::new();
            ctx.propagate_as(vec![
                Bytes::from_static(b"PEXPIREAT"),
                args.owned(1),
                Bytes::copy_from_slice(n.format(at).as_bytes()),
            ]);
        }
    } else if persist && ctx.db().persist(key) {
        ctx.changed(key, notify::GENERIC, "persist");
        ctx.propagate_as(vec![Bytes::from_static(b"PERSIST"), args.owned(1)]);
    }
    Reply::Bulk(value)
}

fn mget(ctx: &mut Ctx, args: &Args) -> Reply {
    Reply::Array(
        args.from(1)
            .map(|k| match ctx.read::<Bytes>(k) {
                Ok(Some(v)) => Reply::Bulk(v.clone()),
                _ => Reply::Null,
            })
            .collect(),
    )
}

fn mset(ctx: &mut Ctx, args: &Args) -> Reply {
    if args.len().is_multiple_of(2) {
        return crate::node::args::arity_error("mset");
    }
    set_pairs(ctx, args);
    Reply::Ok
}

fn msetnx(ctx: &mut Ctx, args: &Args) -> Reply {
    if args.len().is_multiple_of(2) {
        return crate::node::args::arity_error("msetnx");
    }
    if (1..args.len()).step_by(2).any(|i| ctx.exists(args.get(i))) {
        return Reply::Int(0);
    }
    set_pairs(ctx, args);
    Reply::Int(1)
}

fn set_pairs(ctx: &mut Ctx, args: &Args) {
    for i in (1..args.len()).step_by(2) {
        ctx.set(args.get(i), Value::Str(args.owned(i + 1)), false);
        ctx.changed(args.get(i), notify::STRING, "set");
    }
}

fn setnx(ctx: &mut Ctx, args: &Args) -> Reply {
    if ctx.exists(args.get(1)) {
        return Reply::Int(0);
    }
    ctx.set(args.get(1), Value::Str(args.owned(2)), false);
    ctx.changed(args.get(1), notify::STRING, "set");
    Reply::Int(1)
}

fn setex(ctx: &mut Ctx, args: &Args) -> Reply {
    set_with_ttl(ctx, args, 1000, "setex")
}

fn psetex(ctx: &mut Ctx, args: &Args) -> Reply {
    set_with_ttl(ctx, args, 1, "psetex")
}

fn set_with_ttl(ctx: &mut Ctx, args: &Args, unit: i64, name: &str) -> Reply {
    let Ok(n) = args.int(2) else {
        return Reply::error(NOT_INT);
    };
    let Some(at) = n
        .checked_mul(unit)
        .filter(|_| n > 0)
        .and_then(|ms| ms.checked_add(ctx.now_ms()))
    else {
        return Reply::error(format!("ERR invalid expire time in '{name}' command"));
    };
    ctx.set(args.get(1), Value::Str(args.owned(3)), false);
    ctx.notify(notify::STRING, "set", args.get(1));
    ctx.db().set_expire(args.get(1), at);
    ctx.changed(args.get(1), notify::GENERIC, "expire");
    propagate_set_pxat(ctx, args.owned(1), args.owned(3), at);
    Reply::Ok
}

fn append(ctx: &mut Ctx, args: &Args) -> Reply {
    let key = args.get(1);
    let joined = match ctx.read::<Bytes>(key) {
        Err(e) => return e,
        Ok(None) => args.owned(2),
        Ok(Some(old)) => {
            if old.len() as i64 + args.get(2).len() as i64 > MAX_STRING {
                return Reply::error(
                    "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
                );
            }
            let mut v = Vec::with_capacity(old.len() + args.get(2).len());
            v.extend_from_slice(old);
            v.extend_from_slice(args.get(2));
            Bytes::from(v)
        }
    };
    let len = joined.len() as i64;
    ctx.set(args.get(1), Value::Str(joined), true);
    ctx.changed(key, notify::STRING, "append");
    Reply::Int(len)
}

fn strlen(ctx: &mut Ctx, args: &Args) -> Reply {
    match ctx.read::<Bytes>(args.get(1)) {
        Ok(v) => Reply::Int(v.map_or(0, |b| b.len() as i64)),
        Err(e) => e,
    }
}

fn getrange(ctx: &mut Ctx, args: &Args) -> Reply {
    let (Ok(start), Ok(end)) = (args.int(2), args.int(3)) else {
        return Reply::error(NOT_INT);
    };
    let value = match ctx.read::<Bytes>(args.get(1)) {
        Err(e) => return e,
        Ok(None) => return Reply::bulk(b""),
        Ok(Some(v)) => v,
    };
    let len = value.len() as i64;
    if (start < 0 && end < 0 && start > end) || len == 0 {
        return Reply::bulk(b"");
    }
    let fix = |n: i64| {
        if n < 0 {
            len.saturating_add(n).max(0)
        } else {
            n
        }
    };
    let (s, e) = (fix(start), fix(end).min(len - 1));
    if s > e {
        return Reply::bulk(b"");
    }
    Reply::Bulk(value.slice(s as usize..=e as usize))
}

fn setrange(ctx: &mut Ctx, args: &Args) -> Reply {
    let Ok(offset) = args.int(2) else {
        return Reply::error(NOT_INT);
    };
    if offset < 0 {
        return Reply::error("ERR offset is out of range");
    }
    let key = args.get(1);
    let patch = args.get(3);
    let old = match ctx.read::<Bytes>(key) {
        Err(e) => return e,
        Ok(v) => v.cloned(),
    };
    if patch.is_empty() {
        return Reply::Int(old.map_or(0, |v| v.len() as i64));
    }
    if offset.saturating_add(patch.len() as i64) > MAX_STRING {
        return Reply::error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    }
    let offset = offset as usize;
    let mut v = old.map(|b| b.to_vec()).unwrap_or_default();
    if v.len() < offset + patch.len() {
        v.resize(offset + patch.len(), 0);
    }
    v[offset..offset + patch.len()].copy_from_slice(patch);
    let len = v.len() as i64;
    ctx.set(args.get(1), Value::Str(Bytes::from(v)), true);
    ctx.changed(key, notify::STRING, "setrange");
    Reply::Int(len)
}
