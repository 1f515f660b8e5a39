//! DUMP / RESTORE / RESTORE-ASKING, with Redis's own payload (`crate::node::rdb`): a
//! value DUMPed from redis-server RESTOREs here and the other way round, and MIGRATE moves
//! keys between sluice nodes and Redis alike.

use bytes::Bytes;

use crate::node::args::Args;
use crate::node::cmd::ctx::Ctx;
use crate::node::notify;
use crate::node::rdb;
use crate::node::reply::Reply;

/// The payload for `value`.
pub(crate) fn encode(value: &crate::node::value::Value) -> Vec<u8> {
    rdb::dump(value)
}

/// DUMP key
pub(crate) fn dump(ctx: &mut Ctx<'_>, args: &Args<'_>) -> Reply {
    match ctx.lookup(args.get(1)) {
        Some(v) => Reply::Bulk(Bytes::from(encode(v))),
        None => Reply::Null,
    }
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f] (and RESTORE-ASKING).
pub(crate) fn restore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> Reply {
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq) = (None, None);
    let mut i = 4;
    while i < args.len() {
        let more = i + 1 < args.len();
        if args.is(i, "replace") {
            replace = true;
        } else if args.is(i, "absttl") {
            absttl = true;
        } else if args.is(i, "idletime") && more && freq.is_none() {
            match args.int(i + 1) {
                Ok(n) => match u64::try_from(n) {
                    Ok(n) => idle = Some(n),
                    Err(_) => return Reply::error("ERR Invalid IDLETIME value, must be >= 0"),
                },
                Err(e) => return e,
            }
            i += 1;
        } else if args.is(i, "freq") && more && idle.is_none() {
            match args.int(i + 1) {
                Ok(n) => match u8::try_from(n) {
                    Ok(n) => freq = Some(n),
                    Err(_) => {
                        return Reply::error("ERR Invalid FREQ value, must be >= 0 and <= 255")
                    }
                },
                Err(e) => return e,
            }
            i += 1;
        } else {
            return crate::node::args::syntax();
        }
        i += 1;
    }
    // Redis's order: the key's existence, then the TTL, then the payload.
    let key = args.get(1);
    if !replace && ctx.exists(key) {
        return Reply::error("BUSYKEY Target key name already exists.");
    }
    let ttl = match args.int(2) {
        Ok(t) if t >= 0 => t,
        Ok(_) => return Reply::error("ERR Invalid TTL value, must be >= 0"),
        Err(e) => return e,
    };
    let value = match rdb::undump(args.get(3)) {
        Ok(v) => v,
        Err(e) => return Reply::error(format!("ERR {e}")),
    };
    let expire_at = match (ttl, absttl) {
        (0, _) => None,
        (t, true) => Some(t),
        (t, false) => Some(ctx.now_ms().saturating_add(t)),
    };
    if expire_at.is_some_and(|at| at <= ctx.now_ms()) {
        // Already expired: Redis deletes the key (if replacing) and answers OK.
        if ctx.delete(key) {
            ctx.changed(key, notify::GENERIC, "del");
        }
        return Reply::Ok;
    }
    let key = args.owned(1);
    let (touch, now) = (ctx.store.touch(), ctx.now_ms());
    let clock = ctx.store.access.restored(idle, freq, now);
    let db = ctx.db();
    db.remove(&key);
    db.insert_touched(&key, value, false, &touch);
    // Redis deletes a replaced key first, so a restored key is always `new`.
    ctx.notify(notify::NEW, "new", &key);
    let db = ctx.db();
    if let Some(at) = expire_at {
        db.set_expire(&key, at);
    }
    if let Some(c) = clock {
        db.set_clock(&key, c);
    }
    ctx.changed(&key, notify::GENERIC, "restore");
    Reply::Ok
}
