//! CLUSTER's read-only subcommands and dispatch, READONLY/READWRITE/ASKING.

use bytes::Bytes;

use super::args::{disabled, slot_arg};
use super::{replies, setslots, topology};
use crate::cluster_slot;
use crate::node::args::parse_int;
use crate::node::args::Args;
use crate::node::cmd::command::{subcommand_arity, subcommand_error, Command, Flags};
use crate::node::cmd::ctx::Ctx;
use crate::node::reply::Reply;

/// The commands of the cluster role.
pub static COMMANDS: &[Command] = &[
    Command::new("cluster", cluster, -2, Flags::STALE),
    Command::new("readonly", readonly, 1, Flags::FAST.with(Flags::LOADING)),
    Command::new("readwrite", readwrite, 1, Flags::FAST.with(Flags::LOADING)),
    Command::new("asking", asking, 1, Flags::FAST),
    Command::new("dump", super::dump::dump, 2, Flags::READONLY).keys(1, 1, 1),
    Command::new(
        "restore",
        super::dump::restore,
        -4,
        Flags::WRITE.with(Flags::DENYOOM),
    )
    .keys(1, 1, 1),
    Command::new(
        "restore-asking",
        super::dump::restore,
        -4,
        Flags::WRITE.with(Flags::DENYOOM),
    )
    .keys(1, 1, 1),
    Command::new("migrate", super::migrate::migrate, -6, Flags::WRITE).keys(3, 3, 1),
];

fn readonly(ctx: &mut Ctx<'_>, _: &Args<'_>) -> Reply {
    if ctx.store.cluster.is_none() {
        return disabled();
    }
    ctx.client.cluster_readonly = true;
    Reply::Ok
}

fn readwrite(ctx: &mut Ctx<'_>, _: &Args<'_>) -> Reply {
    if ctx.store.cluster.is_none() {
        return disabled();
    }
    ctx.client.cluster_readonly = false;
    Reply::Ok
}

fn asking(ctx: &mut Ctx<'_>, _: &Args<'_>) -> Reply {
    if ctx.store.cluster.is_none() {
        return disabled();
    }
    ctx.client.asking = true;
    Reply::Ok
}

/// `(sub, minimum argc, exact argc?)`: arity of each subcommand, name included.
const ARITY: &[(&str, usize, bool)] = &[
    ("info", 2, true),
    ("myid", 2, true),
    ("nodes", 2, true),
    ("slots", 2, true),
    ("shards", 2, true),
    ("keyslot", 3, true),
    ("countkeysinslot", 3, true),
    ("getkeysinslot", 4, true),
    ("addslots", 3, false),
    ("addslotsrange", 4, false),
    ("delslots", 3, false),
    ("delslotsrange", 4, false),
    ("flushslots", 2, true),
    ("setslot", 4, false),
    ("meet", 4, false),
    ("replicate", 3, true),
    ("replicas", 3, true),
    ("slaves", 3, true),
    ("failover", 2, false),
    ("reset", 2, false),
    ("forget", 3, true),
    ("bumpepoch", 2, true),
    ("set-config-epoch", 3, true),
    ("saveconfig", 2, true),
    ("count-failure-reports", 3, true),
    ("help", 2, true),
];

fn cluster(ctx: &mut Ctx<'_>, args: &Args<'_>) -> Reply {
    if ctx.store.cluster.is_none() {
        return disabled();
    }
    let sub = String::from_utf8_lossy(args.get(1)).to_ascii_lowercase();
    let Some(&(_, min, exact)) = ARITY.iter().find(|(n, _, _)| *n == sub) else {
        return subcommand_error(args, "CLUSTER");
    };
    if args.len() < min || (exact && args.len() != min) {
        return subcommand_arity(args);
    }
    let reply = match sub.as_str() {
        "info" | "myid" | "nodes" | "slots" | "shards" | "count-failure-reports" => {
            view(ctx, &sub, args)
        }
        "keyslot" => Reply::Int(i64::from(cluster_slot::slot(args.get(2)))),
        "countkeysinslot" => count_keys(ctx, args),
        "getkeysinslot" => get_keys(ctx, args),
        "addslots" | "addslotsrange" | "delslots" | "delslotsrange" | "flushslots" => {
            setslots::assign(ctx, &sub, args)
        }
        "setslot" => setslots::setslot(ctx, args),
        "help" => Reply::Array(
            ["CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"]
                .iter()
                .map(|l| Reply::bulk(l.as_bytes()))
                .collect(),
        ),
        _ => topology::command(ctx, &sub, args),
    };
    super::sync_role(ctx.store);
    reply
}

/// INFO, MYID, NODES, SLOTS, SHARDS, COUNT-FAILURE-REPORTS.
fn view(ctx: &mut Ctx<'_>, sub: &str, args: &Args<'_>) -> Reply {
    let offset = ctx.store.repl.offset;
    let Some(c) = ctx.store.cluster.as_ref() else {
        return disabled();
    };
    match sub {
        "info" => Reply::Verbatim(Bytes::from(replies::info(c))),
        "myid" => Reply::bulk(c.myid.as_bytes()),
        "nodes" => Reply::Verbatim(Bytes::from(replies::nodes(c))),
        "slots" => replies::slots(c),
        "shards" => replies::shards(c, offset),
        _ => {
            let id = String::from_utf8_lossy(args.get(2));
            match c.nodes.get(id.as_ref()) {
                Some(n) => Reply::Int(n.fail_reports.len() as i64),
                None => Reply::error(format!("ERR Unknown node {id}")),
            }
        }
    }
}

fn keys_in_slot<'a>(ctx: &'a Ctx<'_>, slot: u16) -> impl Iterator<Item = &'a [u8]> + 'a {
    ctx.store
        .db(0)
        .iter()
        .map(|(k, _)| k)
        .filter(move |k| cluster_slot::slot(k) == slot)
}

fn count_keys(ctx: &mut Ctx<'_>, args: &Args<'_>) -> Reply {
    match slot_arg(args.get(2)) {
        Some(slot) => Reply::Int(keys_in_slot(ctx, slot).count() as i64),
        None => Reply::error("ERR Invalid slot"),
    }
}

fn get_keys(ctx: &mut Ctx<'_>, args: &Args<'_>) -> Reply {
    let count = parse_int(args.get(3)).filter(|&n| n >= 0);
    match (slot_arg(args.get(2)), count) {
        (Some(slot), Some(n)) => Reply::Array(
            keys_in_slot(ctx, slot)
                .take(usize::try_from(n).unwrap_or(usize::MAX))
                .map(|k| Reply::Bulk(Bytes::copy_from_slice(k)))
                .collect(),
        ),
        _ => Reply::error("ERR Invalid slot or number of keys"),
    }
}
