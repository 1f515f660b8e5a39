//! String commands (phase 1: GET, SET with every option).

use bytes::Bytes;

use super::{Args, Command, Ctx, Flags, Reply, Value};
use crate::node::args::{syntax, NOT_INT};

/// The string family.
pub static COMMANDS: &[Command] = &[
    Command::new("get", get, 2, Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1),
    Command::new("set", set, -3, Flags::WRITE.with(Flags::DENYOOM)).keys(1, 1, 1),
];

fn get(ctx: &mut Ctx, args: &Args) -> Reply {
    match ctx.read::<Bytes>(args.get(1)) {
        Ok(v) => Reply::opt_bulk(v.cloned()),
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
            let unit = if args.is(i, "EX") {
                Expiry::Relative(1000)
            } else if args.is(i, "PX") {
                Expiry::Relative(1)
            } else if args.is(i, "EXAT") {
                Expiry::Absolute(1000)
            } else if args.is(i, "PXAT") {
                Expiry::Absolute(1)
            } else {
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
    let found = ctx.exists(key);
    if (nx && found) || (xx && !found) {
        return old.unwrap_or(Reply::Null);
    }
    ctx.set(
        args.owned(1),
        Value::Str(args.owned(2)),
        expiry == Expiry::KeepTtl,
    );
    if let Some(at) = at_ms {
        ctx.db().set_expire(key, at);
        // Replicas and the AOF get the absolute time, so a delayed replay expires the key
        // at the same moment.
        if matches!(expiry, Expiry::Relative(_) | Expiry::Absolute(1000)) {
            let mut n = itoa::Buffer::new();
            ctx.propagate_as(vec![
                Bytes::from_static(b"SET"),
                args.owned(1),
                args.owned(2),
                Bytes::from_static(b"PXAT"),
                Bytes::copy_from_slice(n.format(at).as_bytes()),
            ]);
        }
    }
    ctx.modified(key);
    old.unwrap_or(Reply::Ok)
}
