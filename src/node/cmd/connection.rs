//! Connection commands: PING, ECHO, SELECT, QUIT, AUTH.

use super::{Args, Command, Ctx, Flags, Reply};
use crate::node::args::arity_error;
use crate::node::db::DATABASES;

/// The connection family.
pub static COMMANDS: &[Command] = &[
    Command::new("ping", ping, -1, Flags::FAST.with(Flags::ALLOW_SUBSCRIBED)),
    Command::new("echo", echo, 2, Flags::FAST),
    Command::new(
        "select",
        select,
        2,
        Flags::LOADING.with(Flags::STALE).with(Flags::FAST),
    ),
    Command::new(
        "quit",
        quit,
        -1,
        Flags::NO_AUTH
            .with(Flags::ALLOW_SUBSCRIBED)
            .with(Flags::LOADING)
            .with(Flags::STALE)
            .with(Flags::FAST),
    ),
    Command::new(
        "auth",
        auth,
        -2,
        Flags::NO_AUTH
            .with(Flags::LOADING)
            .with(Flags::STALE)
            .with(Flags::FAST),
    ),
];

fn ping(ctx: &mut Ctx, args: &Args) -> Reply {
    if args.len() > 2 {
        return arity_error("ping");
    }
    // A RESP2 client in pub/sub mode gets PING's answer in the shape of a message.
    if ctx.client.subscriptions() > 0 && ctx.proto() == crate::resp::Protocol::Resp2 {
        let payload = if args.len() == 2 { args.get(1) } else { b"" };
        return Reply::Array(vec![Reply::bulk(b"pong"), Reply::bulk(payload)]);
    }
    match args.len() {
        1 => Reply::simple("PONG"),
        _ => Reply::bulk(args.get(1)),
    }
}

fn echo(_: &mut Ctx, args: &Args) -> Reply {
    Reply::bulk(args.get(1))
}

fn select(ctx: &mut Ctx, args: &Args) -> Reply {
    let db = match args.int(1) {
        Ok(n) => n,
        Err(e) => return e,
    };
    match usize::try_from(db) {
        Ok(db) if db < DATABASES => {
            ctx.client.db = db;
            Reply::Ok
        }
        _ => Reply::error("ERR DB index is out of range"),
    }
}

fn quit(ctx: &mut Ctx, _: &Args) -> Reply {
    ctx.client.close = true;
    Reply::Ok
}

/// `AUTH password` or `AUTH default password` (only the default user exists).
fn auth(ctx: &mut Ctx, args: &Args) -> Reply {
    let (user, pass) = match args.len() {
        2 => (&b"default"[..], args.get(1)),
        3 => (args.get(1), args.get(2)),
        _ => return super::args::syntax(),
    };
    let Some(expected) = ctx.store.settings.requirepass().map(str::to_owned) else {
        if args.len() == 2 {
            return Reply::error(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            );
        }
        // With no password the default user accepts any password.
        return if user == b"default" {
            ctx.client.authed = true;
            Reply::Ok
        } else {
            wrongpass()
        };
    };
    if user == b"default" && pass == expected.as_bytes() {
        ctx.client.authed = true;
        Reply::Ok
    } else {
        wrongpass()
    }
}

fn wrongpass() -> Reply {
    Reply::error("WRONGPASS invalid username-password pair or user is disabled.")
}
