//! Whole-keyspace and key-moving commands: RENAME, RENAMENX, COPY, KEYS, SCAN, RANDOMKEY,
//! TOUCH, OBJECT, FLUSHDB, FLUSHALL, SWAPDB.

use bytes::Bytes;

use super::{Args, Command, Ctx, Flags, Reply};
use crate::node::access::AccessPolicy;
use crate::node::args::{parse_int, syntax, NOT_INT};
use crate::node::db::DATABASES;
use crate::node::encoding::encoding;
use crate::node::glob;
use crate::node::notify;
use crate::node::value::Value;

const W: Flags = Flags::WRITE;
const R: Flags = Flags::READONLY;

/// The keyspace family.
pub static COMMANDS: &[Command] = &[
    Command::new("rename", rename, 3, W).keys(1, 2, 1),
    Command::new("renamenx", renamenx, 3, W.with(Flags::FAST)).keys(1, 2, 1),
    Command::new("copy", copy, -3, W.with(Flags::DENYOOM))
        .reads_keys_first()
        .keys(1, 2, 1),
    Command::new("keys", keys, 2, R),
    Command::new("scan", scan, -2, R),
    Command::new("randomkey", randomkey, 1, R),
    Command::new("touch", touch, -2, R.with(Flags::FAST)).keys(1, -1, 1),
    Command::new("object", object, -2, R)
        .has_subcommands()
        .keys(2, 2, 1),
    Command::new("flushdb", flushdb, -1, W),
    Command::new("flushall", flushall, -1, W),
    Command::new("swapdb", swapdb, 3, W.with(Flags::FAST)),
];

fn rename(ctx: &mut Ctx, args: &Args) -> Reply {
    rename_generic(ctx, args, false)
}

fn renamenx(ctx: &mut Ctx, args: &Args) -> Reply {
    rename_generic(ctx, args, true)
}

/// Moves the value and its TTL; the destination's old value is dropped (RENAME) or the
/// command refuses (RENAMENX).
fn rename_generic(ctx: &mut Ctx, args: &Args, nx: bool) -> Reply {
    let (src, dst) = (args.get(1), args.get(2));
    // A write access to the source (Redis's `lookupKeyWrite`), whose clock moves with it.
    if ctx.lookup_mut(src).is_none() {
        return Reply::error("ERR no such key");
    }
    if src == dst {
        return if nx { Reply::Int(0) } else { Reply::Ok };
    }
    if nx && ctx.exists(dst) {
        return Reply::Int(0);
    }
    let ttl = ctx.expire_at(src);
    let clock = ctx.db().clock(src);
    let Some(value) = ctx.db().remove(src) else {
        return Reply::error("ERR no such key");
    };
    // Redis deletes an existing destination before adding the value, so the destination
    // is always announced as `new`.
    ctx.db().remove(dst);
    ctx.set(args.get(2), value, false);
    let db = ctx.db();
    if let Some(at) = ttl {
        db.set_expire(dst, at);
    }
    if let Some(c) = clock {
        db.set_clock(dst, c);
    }
    ctx.modified(src);
    ctx.modified(dst);
    ctx.notify(notify::GENERIC, "rename_from", src);
    ctx.notify(notify::GENERIC, "rename_to", dst);
    if nx {
        Reply::Int(1)
    } else {
        Reply::Ok
    }
}

/// `COPY source destination [DB n] [REPLACE]`.
fn copy(ctx: &mut Ctx, args: &Args) -> Reply {
    let mut target_db = ctx.db_index();
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if args.is(i, "REPLACE") {
            replace = true;
        } else if args.is(i, "DB") && i + 1 < args.len() {
            let Some(n) = parse_int(args.get(i + 1)) else {
                return Reply::error(NOT_INT);
            };
            match usize::try_from(n) {
                Ok(n) if n < DATABASES => target_db = n,
                _ => return Reply::error("ERR DB index is out of range"),
            }
            i += 1;
        } else {
            return syntax();
        }
        i += 1;
    }
    let (src, dst) = (args.get(1), args.get(2));
    let here = ctx.db_index();
    if src == dst && target_db == here {
        return Reply::error("ERR source and destination objects are the same");
    }
    let Some(value) = ctx.lookup(src).cloned() else {
        return Reply::Int(0);
    };
    let ttl = ctx.expire_at(src);
    let from_master = ctx.client.from_master;
    let store = &mut *ctx.store;
    let dst_exists =
        !store.expire_if_needed(target_db, dst, from_master) && store.db(target_db).contains(dst);
    if dst_exists && !replace {
        return Reply::Int(0);
    }
    // A new object in Redis, so a new clock even where it replaces a key.
    let touch = store.touch();
    let db = store.db_mut(target_db);
    db.remove(dst);
    db.insert_touched(args.get(2), value, false, &touch);
    store.notify(target_db, notify::NEW, "new", dst);
    if let Some(at) = ttl {
        store.db_mut(target_db).set_expire(dst, at);
    }
    store.signal(target_db, dst, ctx.client.id);
    store.notify(target_db, notify::GENERIC, "copy_to", dst);
    ctx.dirty(1);
    Reply::Int(1)
}

fn keys(ctx: &mut Ctx, args: &Args) -> Reply {
    let pattern = args.get(1);
    let all = pattern == b"*";
    let db = ctx.db_index();
    let store = &*ctx.store;
    Reply::Array(
        store
            .db(db)
            .iter()
            .filter(|(k, _)| all || glob::matches(pattern, k))
            .filter(|(k, _)| !store.is_expired(db, k))
            .map(|(k, _)| Reply::Bulk(Bytes::copy_from_slice(k)))
            .collect(),
    )
}

/// `SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]`.
///
/// The cursor is a position in the database's key order, walked from the end towards 0:
/// "positions below the cursor are still to visit". New keys are appended at the end
/// (already visited ground), and a deletion moves the last key into the freed slot, which is
/// never from unvisited ground to visited ground. So every key present for the whole scan
/// is returned at least once, whatever is added or removed meanwhile (duplicates possible,
/// as in Redis).
fn scan(ctx: &mut Ctx, args: &Args) -> Reply {
    let cursor: u64 = match std::str::from_utf8(args.get(1))
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(c) => c,
        None => return Reply::error("ERR invalid cursor"),
    };
    let mut count = 10usize;
    let (mut pattern, mut kind) = (None, None);
    let mut i = 2;
    while i < args.len() {
        if i + 1 >= args.len() {
            return syntax();
        }
        if args.is(i, "COUNT") {
            match parse_int(args.get(i + 1)) {
                Some(n) if n >= 1 => count = usize::try_from(n).unwrap_or(usize::MAX),
                Some(_) => return syntax(),
                None => return Reply::error(NOT_INT),
            }
        } else if args.is(i, "MATCH") {
            pattern = Some(args.get(i + 1));
        } else if args.is(i, "TYPE") {
            kind = Some(args.get(i + 1));
        } else {
            return syntax();
        }
        i += 2;
    }
    let db = ctx.db_index();
    let store = &*ctx.store;
    let keys = store.db(db);
    let len = keys.len() as u64;
    let start = if cursor == 0 { len } else { cursor.min(len) };
    let end = start.saturating_sub(count as u64);
    let mut found = Vec::new();
    let mut expired = Vec::new();
    for pos in (end..start).rev() {
        let Some((k, v)) = keys.key_at(pos as usize) else {
            continue;
        };
        if pattern.is_some_and(|p| p != b"*" && !glob::matches(p, k))
            || kind.is_some_and(|t| !t.eq_ignore_ascii_case(v.type_name().as_bytes()))
        {
            continue;
        }
        if store.is_expired(db, k) {
            expired.push(Bytes::copy_from_slice(k));
            continue;
        }
        found.push(Reply::Bulk(Bytes::copy_from_slice(k)));
    }
    // Expired keys met on the way are deleted, as Redis's SCAN does. That keeps the cursor's
    // promise: a deletion moves the last key (at or above `end`, so already visited) into
    // the freed slot, which is also at or above `end`.
    for k in expired {
        ctx.exists(&k);
    }
    let next = if end == 0 { 0 } else { end };
    Reply::Array(vec![
        Reply::Bulk(Bytes::from(next.to_string())),
        Reply::Array(found),
    ])
}

fn randomkey(ctx: &mut Ctx, _: &Args) -> Reply {
    // Expired keys found on the way are deleted (lazily, as any access would) and another
    // pick is made; the tries are bounded in case every key is expired on a replica.
    for _ in 0..100 {
        let len = ctx.db().len();
        if len == 0 {
            return Reply::Null;
        }
        let pos = (ctx.store.random() % len as u64) as usize;
        let Some(key) = ctx.db().key_at(pos).map(|(k, _)| Bytes::copy_from_slice(k)) else {
            return Reply::Null;
        };
        if ctx.exists(&key) || ctx.store.replica {
            return Reply::Bulk(key);
        }
    }
    Reply::Null
}

fn touch(ctx: &mut Ctx, args: &Args) -> Reply {
    Reply::Int(args.from(1).filter(|k| ctx.lookup(k).is_some()).count() as i64)
}

/// OBJECT FREQ's refusal under an LRU policy (Redis's text).
const NOT_LFU: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
/// OBJECT IDLETIME's refusal under an LFU policy (Redis's text).
const LFU: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

/// OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT|HELP. Looks the key up without recording an access,
/// so asking for the idle time does not reset it.
fn object(ctx: &mut Ctx, args: &Args) -> Reply {
    let known = ["ENCODING", "FREQ", "IDLETIME", "REFCOUNT"];
    if args.is(1, "HELP") && args.len() == 2 {
        return Reply::Array(
            [
                "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ENCODING <key>",
                "    Return the kind of internal representation used in order to store the value",
                "    associated with a <key>.",
                "FREQ <key>",
                "    Return the access frequency index of the <key>. The returned integer is",
                "    proportional to the logarithm of the recent access frequency of the key.",
                "IDLETIME <key>",
                "    Return the idle time of the <key>, that is the approximated number of",
                "    seconds elapsed since the last access to the key.",
                "REFCOUNT <key>",
                "    Return the number of references of the value associated with the specified",
                "    <key>.",
                "HELP",
                "    Print this help.",
            ]
            .iter()
            .map(|l| Reply::Simple((*l).into()))
            .collect(),
        );
    }
    if !known.iter().any(|w| args.is(1, w)) {
        return super::subcommand_error(args, "OBJECT");
    }
    if args.len() != 3 {
        return super::subcommand_arity(args);
    }
    let key = args.get(2);
    let Some(v) = ctx.peek(key) else {
        return Reply::Null;
    };
    if args.is(1, "ENCODING") {
        return Reply::bulk(encoding(v).as_bytes());
    }
    if args.is(1, "REFCOUNT") {
        // Redis shares small integers, reported with the "shared" refcount INT_MAX.
        return Reply::Int(match v {
            Value::Str(s) if parse_int(s).is_some_and(|n| (0..10_000).contains(&n)) => {
                i64::from(i32::MAX)
            }
            _ => 1,
        });
    }
    let (policy, now) = (ctx.store.access, ctx.now_ms());
    let clock = ctx.db().clock(key).unwrap_or(0);
    match (args.is(1, "FREQ"), policy.lfu) {
        (true, false) => Reply::error(NOT_LFU),
        (true, true) => Reply::Int(i64::from(policy.decayed(clock, now))),
        (false, true) => Reply::error(LFU),
        (false, false) => Reply::Int((AccessPolicy::idle_ms(clock, now) / 1000) as i64),
    }
}

/// FLUSHDB/FLUSHALL accept `ASYNC` or `SYNC`; both flush at once here.
fn flush_mode_ok(args: &Args) -> bool {
    args.len() == 1 || (args.len() == 2 && (args.is(1, "ASYNC") || args.is(1, "SYNC")))
}

fn flushdb(ctx: &mut Ctx, args: &Args) -> Reply {
    if !flush_mode_ok(args) {
        return syntax();
    }
    let db = ctx.db_index();
    flush(ctx, Some(db));
    Reply::Ok
}

fn flushall(ctx: &mut Ctx, args: &Args) -> Reply {
    if !flush_mode_ok(args) {
        return syntax();
    }
    flush(ctx, None);
    Reply::Ok
}

/// Empties one database or all of them; always propagated, as Redis does, so replicas flush
/// even when this node was already empty.
fn flush(ctx: &mut Ctx, which: Option<usize>) {
    let mut removed = 0;
    for i in 0..DATABASES {
        if which.is_none_or(|d| d == i) {
            ctx.store.touch_watched_db(i, None);
            removed += ctx.store.db(i).len() as u64;
            ctx.store.db_mut(i).clear();
        }
    }
    let store = &mut *ctx.store;
    store.waiters.signal_all();
    store.tracking.invalidate_all(&store.clients);
    ctx.dirty(removed + 1);
}

fn swapdb(ctx: &mut Ctx, args: &Args) -> Reply {
    let Some(a) = parse_int(args.get(1)) else {
        return Reply::error("ERR invalid first DB index");
    };
    let Some(b) = parse_int(args.get(2)) else {
        return Reply::error("ERR invalid second DB index");
    };
    let (Ok(a), Ok(b)) = (usize::try_from(a), usize::try_from(b)) else {
        return Reply::error("ERR DB index is out of range");
    };
    if a >= DATABASES || b >= DATABASES {
        return Reply::error("ERR DB index is out of range");
    }
    if a != b {
        ctx.store.touch_watched_db(a, Some(b));
        ctx.store.touch_watched_db(b, Some(a));
        ctx.store.swap_dbs(a, b);
        ctx.store.waiters.signal_all();
    }
    ctx.dirty(1);
    Reply::Ok
}
