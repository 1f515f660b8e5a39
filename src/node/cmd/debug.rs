//! DEBUG: the subcommands Redis's test suites use. RELOAD re-creates the dataset from what an
//! AOF rewrite writes (the node's persistence format, where Redis goes through an RDB
//! file), so a test that reloads checks that round trip; OBJECT reports a key's encoding as
//! Redis's does; the encoding and checksum knobs are accepted and change nothing.

use std::time::Duration;

use bytes::BytesMut;

use super::{Args, Ctx, Reply};
use crate::node::args::parse_float;
use crate::node::client::ClientState;
use crate::node::db::{Db, DATABASES};
use crate::resp::{decode_request, Limits};

/// Knobs of Redis's internals that tests set; accepted, without effect here.
const KNOBS: &[&str] = &[
    "JMAP",
    "QUICKLIST-PACKED-THRESHOLD",
    "SET-SKIP-CHECKSUM-VALIDATION",
    "SET-DISABLE-DENY-SCRIPTS",
    "REPLYBUFFER",
    "DICT-RESIZING",
    "LISTPACK",
    "QUICKLIST",
];

pub(super) fn debug(ctx: &mut Ctx, args: &Args) -> Reply {
    let n = args.len();
    if args.is(1, "SLEEP") && n == 3 {
        let secs = parse_float(args.get(2)).unwrap_or(0.0).max(0.0);
        // Holds the store lock on purpose: Redis's DEBUG SLEEP blocks the whole server.
        std::thread::sleep(Duration::try_from_secs_f64(secs).unwrap_or_default());
        Reply::Ok
    } else if args.is(1, "SET-ACTIVE-EXPIRE") && n == 3 {
        ctx.store.active_expire = args.get(2) != b"0";
        Reply::Ok
    } else if args.is(1, "RELOAD") {
        reload(ctx)
    } else if args.is(1, "OBJECT") && n == 3 {
        object(ctx, args)
    } else if KNOBS.iter().any(|k| args.is(1, k)) && n >= 2 {
        Reply::Ok
    } else {
        Reply::error(format!(
            "ERR Unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(args.get(1))
        ))
    }
}

/// DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: empties the databases and the function libraries
/// and replays the commands an AOF rewrite would write for them. Nothing is propagated
/// (replicas and the AOF already hold the same data).
fn reload(ctx: &mut Ctx) -> Reply {
    let commands = crate::node::aof_rewrite::commands(ctx.store);
    for i in 0..DATABASES {
        ctx.store.touch_watched_db(i, None);
        *ctx.store.db_mut(i) = Db::default();
    }
    ctx.store.scripting.functions.flush();
    let feed = std::mem::replace(&mut ctx.store.feed.enabled, false);
    let mut loader = ClientState {
        authed: true,
        // Not a client: keys are loaded as they are, expired or not (as Redis loads).
        from_master: true,
        ..ClientState::default()
    };
    let mut buf = BytesMut::from(&commands[..]);
    let mut failed = None;
    while let Ok(Some(req)) = decode_request(&mut buf, &Limits::node()) {
        let mut load = Ctx::new(ctx.store, &mut loader, ctx.shared, false);
        if let Reply::Error(e) = super::execute(&mut load, &req) {
            failed.get_or_insert(e);
        }
    }
    ctx.store.feed.enabled = feed;
    match failed {
        None => Reply::Ok,
        Some(e) => Reply::error(format!("ERR Error trying to load the RDB dump: {e}")),
    }
}

/// DEBUG OBJECT key: Redis's line, with the key's raw access clock and its idle time
/// (addresses are not real: 0). Like Redis it reads the key as stored: no expiry check, no
/// recorded access, no keyspace hit counted.
fn object(ctx: &mut Ctx, args: &Args) -> Reply {
    let key = args.get(2);
    let now = ctx.now_ms();
    let db = ctx.db();
    let (Some(v), Some(clock)) = (db.get(key), db.clock(key)) else {
        return Reply::error("ERR no such key");
    };
    let encoding = crate::node::encoding::encoding(v);
    use crate::node::value::Value;
    let len = match v {
        Value::Str(s) => s.len(),
        Value::Hash(h) => h.len(),
        Value::List(l) => l.len(),
        Value::Set(s) => s.len(),
        Value::ZSet(z) => z.len(),
    };
    // Under an LFU policy Redis prints the same fields from the LFU stamp, idle time included.
    let idle = crate::node::access::AccessPolicy::idle_ms(clock, now) / 1000;
    Reply::Simple(
        format!(
            "Value at:0x0 refcount:1 encoding:{encoding} serializedlength:{len} lru:{clock} lru_seconds_idle:{idle}"
        )
        .into(),
    )
}
