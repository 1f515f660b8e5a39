//! CLIENT PAUSE, CLIENT UNPAUSE and CLIENT UNBLOCK, and which requests a pause postpones
//! (Redis 7.0's `processCommand`: under `WRITE`, the commands flagged write or
//! may-replicate, scripts and functions that may write, and EXEC of a transaction holding
//! any of those; under `ALL`, everything). Requests with a wrong arity or an unknown name
//! are answered at once.

use super::{lookup, Args, Command, Ctx, Reply};
use crate::node::args::parse_int;
use crate::node::client::ClientState;
use crate::node::clients::Unblock;
use crate::node::pause::PauseKind;
use crate::node::script::{flags, shebang};
use crate::node::store::Store;
use crate::resp::Request;

/// `CLIENT PAUSE timeout [WRITE|ALL]`.
pub(super) fn pause(ctx: &mut Ctx, args: &Args) -> Reply {
    let kind = if args.len() < 4 || args.is(3, "ALL") {
        PauseKind::All
    } else if args.is(3, "WRITE") {
        PauseKind::Write
    } else {
        return Reply::error("ERR CLIENT PAUSE mode must be WRITE or ALL");
    };
    let Some(ms) = parse_int(args.get(2)) else {
        return Reply::error("ERR timeout is not an integer or out of range");
    };
    if ms < 0 {
        return Reply::error("ERR timeout is negative");
    }
    let now = ctx.now_ms();
    // As Redis: a timeout of 0 is a pause that has already ended.
    let end = if ms > 0 { now.saturating_add(ms) } else { 0 };
    ctx.store.pause.pause(kind, end, now);
    Reply::Ok
}

/// `CLIENT UNPAUSE`.
pub(super) fn unpause(ctx: &mut Ctx) -> Reply {
    ctx.store.pause.unpause();
    Reply::Ok
}

/// `CLIENT UNBLOCK id [TIMEOUT|ERROR]`: 1 if the client was blocked on keys (it then
/// answers its timeout reply, or the UNBLOCKED error), 0 otherwise.
pub(super) fn unblock(ctx: &mut Ctx, args: &Args) -> Reply {
    let how = if args.len() < 4 || args.is(3, "TIMEOUT") {
        Unblock::Timeout
    } else if args.is(3, "ERROR") {
        Unblock::Error
    } else {
        return Reply::error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
    };
    let Some(id) = parse_int(args.get(2)) else {
        return Reply::error("ERR value is not an integer or out of range");
    };
    let target = u64::try_from(id)
        .ok()
        .and_then(|id| ctx.store.clients.get_mut(id));
    match target {
        Some(c) if c.parked.is_some() && c.unblock.is_none() => {
            c.unblock = Some(how);
            if let Some(n) = &c.parked {
                n.notify_one();
            }
            Reply::Int(1)
        }
        _ => Reply::Int(0),
    }
}

/// If a CLIENT PAUSE holds `req` back: when the pause ends by itself (unix ms).
pub fn postponed(store: &Store, client: &ClientState, req: &Request) -> Option<i64> {
    let kind = store.pause.active(store.now_ms);
    if kind == PauseKind::None || req.is_empty() {
        return None;
    }
    let args = Args::new(req);
    let cmd = lookup(args.get(0))?;
    if !cmd.arity_ok(args.len()) {
        return None;
    }
    (kind == PauseKind::All || may_write(store, client, cmd, &args)).then(|| store.pause.end_ms())
}

/// True if running `cmd` may change data or the replication stream.
fn may_write(store: &Store, client: &ClientState, cmd: &Command, args: &Args) -> bool {
    if cmd.is_write() {
        return true;
    }
    match cmd.name {
        "publish" | "spublish" | "pfcount" => true,
        "eval" => shebang(args.get(1), true).map_or(true, |(f, _)| script_may_write(f)),
        "evalsha" => crate::node::script::Sha::parse(args.get(1))
            .and_then(|sha| store.scripting.scripts.get(&sha))
            .is_none_or(|s| script_may_write(s.flags)),
        "fcall" => {
            let name = String::from_utf8_lossy(args.get(1));
            store
                .scripting
                .functions
                .find(&name)
                .is_none_or(|(_, _, f)| f & flags::NO_WRITES == 0)
        }
        "exec" => client.multi.iter().flatten().any(|r| {
            let a = Args::new(r);
            lookup(a.get(0)).is_some_and(|c| c.name != "exec" && may_write(store, client, c, &a))
        }),
        _ => false,
    }
}

/// True unless a `#!lua` shebang declares `no-writes` (scripts without one may write).
fn script_may_write(script_flags: u32) -> bool {
    script_flags & flags::EVAL_COMPAT != 0 || script_flags & flags::NO_WRITES == 0
}
