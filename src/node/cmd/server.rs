//! Server commands: INFO, CONFIG, DEBUG, TIME, SHUTDOWN, LASTSAVE, SAVE, BGSAVE,
//! BGREWRITEAOF (SLOWLOG and LATENCY are in `monitoring.rs`, COMMAND in
//! `introspection.rs`).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::{Args, Command, Ctx, Flags, Reply};
use crate::node::args::syntax;
use crate::node::info;
use crate::node::settings::SettingError;

const ADMIN: Flags = Flags::ADMIN.with(Flags::NOSCRIPT);
const LS: Flags = Flags::LOADING.with(Flags::STALE);

/// The server family.
pub static COMMANDS: &[Command] = &[
    Command::new("info", info_cmd, -1, LS),
    Command::new("config", config, -2, ADMIN.with(LS)).has_subcommands(),
    Command::new("command", super::introspection::command, -1, LS).has_subcommands(),
    Command::new("debug", super::debug::debug, -2, ADMIN.with(LS)),
    Command::new("time", time, 1, LS.with(Flags::FAST)),
    Command::new("shutdown", shutdown, -1, ADMIN.with(LS)),
    Command::new("lastsave", lastsave, 1, LS.with(Flags::FAST)),
    Command::new("save", save, 1, ADMIN),
    Command::new("bgsave", bgsave, -1, ADMIN),
    Command::new("monitor", monitor, 1, ADMIN.with(LS)),
];

/// `MONITOR`: from now on the client receives a line for every command others run.
fn monitor(ctx: &mut Ctx, _: &Args) -> Reply {
    let id = ctx.client.id;
    if !ctx.store.monitors.contains(&id) {
        ctx.store.monitors.push(id);
    }
    if let Some(info) = ctx.store.clients.get_mut(id) {
        info.monitor = true;
    }
    Reply::Ok
}

/// Moves the listener to the `port` CONFIG SET just stored, if it changed (Redis's
/// `updatePort`). A cluster node keeps its port: its peers know it by it.
fn apply_port(ctx: &mut Ctx) -> Result<(), &'static str> {
    let port = ctx
        .store
        .settings
        .get("port")
        .and_then(|p| p.parse::<u16>().ok());
    let Some(port) = port.filter(|&p| p != ctx.shared.port()) else {
        return Ok(());
    };
    if ctx.store.cluster.is_some() {
        return Err("can't set immutable config");
    }
    ctx.shared.move_listener(port).map_err(|e| {
        tracing::warn!(port, error = %e, "CONFIG SET port: cannot listen");
        "Unable to listen on this port. Check server logs."
    })
}

fn info_cmd(ctx: &mut Ctx, args: &Args) -> Reply {
    let sections: Vec<Vec<u8>> = args.from(1).map(<[u8]>::to_vec).collect();
    Reply::Verbatim(Bytes::from(info::render(ctx.shared, ctx.store, &sections)))
}

fn config(ctx: &mut Ctx, args: &Args) -> Reply {
    let n = args.len();
    if args.is(1, "GET") && n >= 3 {
        // RESP3 gets a map; each parameter once even if several patterns match it.
        let mut pairs: Vec<(Reply, Reply)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for pattern in args.from(2) {
            for (name, value) in ctx.store.settings.matching(pattern) {
                if seen.insert(name) {
                    pairs.push((Reply::bulk(name.as_bytes()), Reply::bulk(value.as_bytes())));
                }
            }
        }
        Reply::Map(pairs)
    } else if args.is(1, "SET") && n >= 4 && n.is_multiple_of(2) {
        // All or nothing, as Redis 7 applies a multi-parameter CONFIG SET.
        let pairs: Vec<(&[u8], &[u8])> = (2..n)
            .step_by(2)
            .map(|i| (args.get(i), args.get(i + 1)))
            .collect();
        let before = ctx.store.settings.clone_values();
        if let Err(e) = ctx.store.settings.set_all(&pairs) {
            return Reply::error(format!("ERR {e}"));
        }
        if let Err(why) = apply_port(ctx) {
            ctx.store.settings.restore(before);
            return Reply::error(format!(
                "ERR CONFIG SET failed (possibly related to argument 'port') - {why}"
            ));
        }
        ctx.store.apply_settings();
        if let Some(f) = ctx.shared.aof.get() {
            f.apply_settings(ctx.store);
        }
        Reply::Ok
    } else if args.is(1, "SET") && n >= 3 {
        let name = String::from_utf8_lossy(args.get(2)).into_owned();
        if n == 3 {
            return super::subcommand_arity(args);
        }
        Reply::error(format!("ERR {}", SettingError::Unknown(name)))
    } else if (args.is(1, "RESETSTAT") || args.is(1, "REWRITE")) && n == 2 {
        if args.is(1, "RESETSTAT") {
            ctx.store.stats.reset();
            ctx.store.expired_keys = 0;
        }
        Reply::Ok
    } else if ["GET", "SET", "RESETSTAT", "REWRITE"]
        .iter()
        .any(|w| args.is(1, w))
    {
        super::subcommand_arity(args)
    } else {
        super::subcommand_error(args, "CONFIG")
    }
}

fn time(_: &mut Ctx, _: &Args) -> Reply {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut a = itoa::Buffer::new();
    let mut b = itoa::Buffer::new();
    Reply::Array(vec![
        Reply::bulk(a.format(now.as_secs()).as_bytes()),
        Reply::bulk(b.format(now.subsec_micros()).as_bytes()),
    ])
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE]`: stops the node; like Redis, the caller gets no
/// reply, only the closed connection.
fn shutdown(ctx: &mut Ctx, args: &Args) -> Reply {
    let (mut save, mut nosave) = (false, false);
    for i in 1..args.len() {
        if args.is(i, "SAVE") {
            save = true;
        } else if args.is(i, "NOSAVE") {
            nosave = true;
        } else if !(args.is(i, "NOW") || args.is(i, "FORCE")) {
            return syntax();
        }
    }
    if save && nosave {
        return syntax();
    }
    ctx.shared.shutdown.cancel();
    ctx.client.close = true;
    Reply::Raw(Bytes::new())
}

fn lastsave(ctx: &mut Ctx, _: &Args) -> Reply {
    Reply::Int(ctx.store.lastsave)
}

fn save(ctx: &mut Ctx, _: &Args) -> Reply {
    ctx.store.lastsave = ctx.now_ms() / 1000;
    Reply::Ok
}

fn bgsave(ctx: &mut Ctx, args: &Args) -> Reply {
    if args.len() > 2 || (args.len() == 2 && !args.is(1, "SCHEDULE")) {
        return syntax();
    }
    ctx.store.lastsave = ctx.now_ms() / 1000;
    Reply::simple("Background saving started")
}
