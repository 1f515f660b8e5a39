//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Queueing happens in [`super::execute`]: while `client.multi` is set, every command but
//! the transaction controls is checked (unknown, arity, auth: a refusal marks the
//! transaction failed) and queued. EXEC runs the queue under the lock the batch already
//! holds, so nothing can interleave, and wraps its writes in MULTI ... EXEC on the feed.

use super::{execute, Args, Command, Ctx, Flags, Reply};

/// Not allowed to a RESP2 subscriber: Redis refuses MULTI, WATCH, ... in subscribed mode
/// (a PING after them would otherwise be queued instead of answered).
const TX: Flags = Flags::NOSCRIPT
    .with(Flags::LOADING)
    .with(Flags::STALE)
    .with(Flags::FAST);

/// The transaction family.
pub static COMMANDS: &[Command] = &[
    Command::new("multi", multi, 1, TX),
    Command::new(
        "exec",
        exec,
        1,
        Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE),
    ),
    Command::new("discard", discard, 1, TX),
    Command::new("watch", watch, -2, TX).keys(1, -1, 1),
    Command::new("unwatch", unwatch, 1, TX),
];

fn multi(ctx: &mut Ctx, _: &Args) -> Reply {
    if ctx.client.multi.is_some() {
        return Reply::error("ERR MULTI calls can not be nested");
    }
    ctx.client.multi = Some(Vec::new());
    ctx.client.multi_error = false;
    Reply::Ok
}

fn discard(ctx: &mut Ctx, _: &Args) -> Reply {
    if ctx.client.multi.take().is_none() {
        return Reply::error("ERR DISCARD without MULTI");
    }
    ctx.client.multi_error = false;
    unwatch_all(ctx);
    Reply::Ok
}

fn exec(ctx: &mut Ctx, _: &Args) -> Reply {
    let Some(queue) = ctx.client.multi.take() else {
        return Reply::error("ERR EXEC without MULTI");
    };
    let failed = std::mem::take(&mut ctx.client.multi_error);
    let changed = watch_broken(ctx);
    unwatch_all(ctx);
    if failed {
        return Reply::error("EXECABORT Transaction discarded because of previous errors.");
    }
    if changed {
        return Reply::NullArray;
    }
    ctx.begin_exec();
    let replies = queue.iter().map(|req| execute(ctx, req)).collect();
    ctx.end_exec();
    Reply::Array(replies)
}

/// A refused EXEC (arity, auth, subscribed mode): the transaction is discarded and the
/// refusal becomes `EXECABORT Transaction discarded because of: <reason>`, as Redis's
/// `execCommandAbort` words it (the reason without its `ERR ` prefix).
pub fn abort(ctx: &mut Ctx, refusal: Reply) -> Reply {
    let Reply::Error(e) = refusal else {
        return refusal;
    };
    ctx.client.multi = None;
    ctx.client.multi_error = false;
    unwatch_all(ctx);
    let reason = e.strip_prefix("ERR ").unwrap_or(&e);
    Reply::error(format!(
        "EXECABORT Transaction discarded because of: {reason}"
    ))
}

/// Ends the transaction without running it, as Redis's `discardTransaction` (an EXEC
/// redirected in cluster mode: the client gets the redirection itself, not EXECABORT).
pub fn discard_transaction(ctx: &mut Ctx) {
    ctx.client.multi = None;
    ctx.client.multi_error = false;
    unwatch_all(ctx);
}

/// True if a watched key was changed, or expired since it was watched.
fn watch_broken(ctx: &mut Ctx) -> bool {
    if ctx.store.watches.is_dirty(ctx.client.id) {
        return true;
    }
    let store = &*ctx.store;
    ctx.client
        .watched
        .iter()
        .any(|(db, key, was_expired)| !was_expired && store.is_expired(*db, key))
}

fn watch(ctx: &mut Ctx, args: &Args) -> Reply {
    if ctx.client.multi.is_some() {
        return Reply::error("ERR WATCH inside MULTI is not allowed");
    }
    let db = ctx.db_index();
    for i in 1..args.len() {
        let key = args.get(i);
        if ctx
            .client
            .watched
            .iter()
            .any(|(d, k, _)| *d == db && k == key)
        {
            continue;
        }
        let expired = ctx.store.is_expired(db, key);
        let id = ctx.client.id;
        ctx.store.watches.watch(id, db, args.owned(i), expired);
        ctx.client.watched.push((db, args.owned(i), expired));
    }
    Reply::Ok
}

fn unwatch(ctx: &mut Ctx, _: &Args) -> Reply {
    unwatch_all(ctx);
    Reply::Ok
}

/// Drops every WATCH of the calling client (EXEC, DISCARD, UNWATCH, RESET, disconnect).
pub fn unwatch_all(ctx: &mut Ctx) {
    let watched = std::mem::take(&mut ctx.client.watched);
    ctx.store.watches.unwatch(ctx.client.id, &watched);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::client::ClientState;
    use crate::node::shared::Shared;
    use crate::node::store::Store;
    use crate::resp::Request;

    fn shared() -> Shared {
        Shared::for_tests()
    }

    fn run(ctx: &mut Ctx, args: &[&str]) -> Reply {
        execute(ctx, &Request::from_args(args))
    }

    #[test]
    fn exec_propagates_writes_as_one_multi_exec_block() {
        let shared = shared();
        let mut store = Store::new();
        store.feed.enabled = true;
        let mut client = ClientState {
            authed: true,
            ..ClientState::default()
        };
        let mut ctx = Ctx::new(&mut store, &mut client, &shared, true);
        assert_eq!(run(&mut ctx, &["MULTI"]), Reply::Ok);
        assert_eq!(run(&mut ctx, &["SET", "k", "1"]), Reply::simple("QUEUED"));
        assert_eq!(run(&mut ctx, &["GET", "k"]), Reply::simple("QUEUED"));
        assert_eq!(run(&mut ctx, &["INCR", "k"]), Reply::simple("QUEUED"));
        let reply = run(&mut ctx, &["EXEC"]);
        assert_eq!(
            reply,
            Reply::Array(vec![
                Reply::Ok,
                Reply::stored(Some(&"1".into())),
                Reply::Int(2)
            ])
        );
        // A read-only transaction propagates nothing.
        run(&mut ctx, &["MULTI"]);
        run(&mut ctx, &["GET", "k"]);
        run(&mut ctx, &["EXEC"]);
        let fed = ctx.store.feed.take();
        let expected: &[u8] = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*1\r\n$5\r\nMULTI\r\n\
            *3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n\
            *1\r\n$4\r\nEXEC\r\n";
        assert_eq!(&fed[..], expected);
    }

    #[test]
    fn queue_errors_abort_and_blocking_does_not_block() {
        let shared = shared();
        let mut store = Store::new();
        let mut client = ClientState {
            authed: true,
            ..ClientState::default()
        };
        let mut ctx = Ctx::new(&mut store, &mut client, &shared, true);
        run(&mut ctx, &["MULTI"]);
        run(&mut ctx, &["__block", "k", "0"]);
        assert_eq!(
            run(&mut ctx, &["EXEC"]),
            Reply::Array(vec![Reply::NullArray])
        );
        run(&mut ctx, &["MULTI"]);
        assert!(run(&mut ctx, &["GET"]).is_error());
        assert_eq!(
            run(&mut ctx, &["EXEC"]),
            Reply::error("EXECABORT Transaction discarded because of previous errors.")
        );
    }

    #[test]
    fn publish_is_replicated() {
        let shared = shared();
        let mut store = Store::new();
        store.feed.enabled = true;
        let mut client = ClientState {
            authed: true,
            ..ClientState::default()
        };
        let mut ctx = Ctx::new(&mut store, &mut client, &shared, true);
        assert_eq!(run(&mut ctx, &["PUBLISH", "ch", "m"]), Reply::Int(0));
        let fed = ctx.store.feed.take();
        assert!(fed.ends_with(b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$1\r\nm\r\n"));
    }
}
