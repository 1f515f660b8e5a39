//! **Interim, for this branch only**: minimal INFO and CLIENT KILL so replication can be
//! tested before the server-commands branch lands. At merge, drop this file (and its two
//! lines in `cmd/mod.rs`); the real INFO must include
//! `info_replication::replication_section`, `stats_lines` and `persistence_lines`, and the
//! real CLIENT KILL must handle `TYPE replica|slave` with `store.repl.kill_replicas(None)`.

use super::{Args, Command, Ctx, Flags, Reply};
use crate::node::info_replication;

/// INFO (replication, stats, persistence only) and CLIENT KILL TYPE replica.
pub static COMMANDS: &[Command] = &[
    Command::new("info", info, -1, Flags::LOADING.with(Flags::STALE)),
    Command::new(
        "client",
        client,
        -2,
        Flags::ADMIN
            .with(Flags::NOSCRIPT)
            .with(Flags::LOADING)
            .with(Flags::STALE),
    ),
];

fn info(ctx: &mut Ctx, args: &Args) -> Reply {
    let all = args.len() == 1;
    let want = |name: &str| all || (1..args.len()).any(|i| args.is(i, name));
    let mut out = String::new();
    if want("replication") {
        out.push_str(&info_replication::replication_section(ctx.store));
    }
    if want("stats") {
        out.push_str("\r\n# Stats\r\n");
        out.push_str(&info_replication::stats_lines(ctx.store));
    }
    if want("persistence") {
        out.push_str("\r\n# Persistence\r\n");
        out.push_str(&info_replication::persistence_lines(ctx.store));
    }
    Reply::Verbatim(out.trim_start().to_string().into())
}

/// `CLIENT KILL TYPE replica|slave` only.
fn client(ctx: &mut Ctx, args: &Args) -> Reply {
    if args.len() == 4
        && args.is(1, "kill")
        && args.is(2, "type")
        && (args.is(3, "replica") || args.is(3, "slave"))
    {
        return Reply::Int(ctx.store.repl.kill_replicas(None) as i64);
    }
    Reply::error("ERR syntax error")
}
