//! Pub/sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB.
//!
//! A subscription command answers one push per channel, so handlers encode the pushes
//! themselves (for the client's protocol) and return them as one raw reply.

use bytes::{Bytes, BytesMut};

use super::{Args, Command, Ctx, Flags, Reply};
use crate::node::glob;
use crate::node::pubsub::Kind;

const SUB: Flags = Flags::PUBSUB
    .with(Flags::NOSCRIPT)
    .with(Flags::LOADING)
    .with(Flags::STALE)
    .with(Flags::ALLOW_SUBSCRIBED);
const PUB: Flags = Flags::PUBSUB
    .with(Flags::LOADING)
    .with(Flags::STALE)
    .with(Flags::FAST);

/// The pub/sub family.
pub static COMMANDS: &[Command] = &[
    Command::new("subscribe", subscribe, -2, SUB),
    Command::new("unsubscribe", unsubscribe, -1, SUB),
    Command::new("psubscribe", psubscribe, -2, SUB),
    Command::new("punsubscribe", punsubscribe, -1, SUB),
    Command::new("ssubscribe", ssubscribe, -2, SUB).keys(1, -1, 1),
    Command::new("sunsubscribe", sunsubscribe, -1, SUB).keys(1, -1, 1),
    Command::new("publish", publish, 3, PUB),
    Command::new("spublish", spublish, 3, PUB).keys(1, 1, 1),
    Command::new("pubsub", pubsub, -2, PUB).has_subcommands(),
];

fn subscribe(ctx: &mut Ctx, args: &Args) -> Reply {
    sub(ctx, args, Kind::Channel)
}
fn psubscribe(ctx: &mut Ctx, args: &Args) -> Reply {
    sub(ctx, args, Kind::Pattern)
}
fn ssubscribe(ctx: &mut Ctx, args: &Args) -> Reply {
    sub(ctx, args, Kind::Shard)
}
fn unsubscribe(ctx: &mut Ctx, args: &Args) -> Reply {
    unsub(ctx, args, Kind::Channel)
}
fn punsubscribe(ctx: &mut Ctx, args: &Args) -> Reply {
    unsub(ctx, args, Kind::Pattern)
}
fn sunsubscribe(ctx: &mut Ctx, args: &Args) -> Reply {
    unsub(ctx, args, Kind::Shard)
}

fn names(kind: Kind) -> (&'static [u8], &'static [u8]) {
    match kind {
        Kind::Channel => (b"subscribe", b"unsubscribe"),
        Kind::Pattern => (b"psubscribe", b"punsubscribe"),
        Kind::Shard => (b"ssubscribe", b"sunsubscribe"),
    }
}

/// The client's subscription set of `kind`.
fn own(
    client: &mut crate::node::client::ClientState,
    kind: Kind,
) -> &mut indexmap::IndexSet<Bytes> {
    match kind {
        Kind::Channel => &mut client.channels,
        Kind::Pattern => &mut client.patterns,
        Kind::Shard => &mut client.shard_channels,
    }
}

/// The count a (un)subscribe push reports: channels + patterns, or shard channels alone
/// (Redis 7.0 counts them separately).
fn count(ctx: &Ctx, kind: Kind) -> i64 {
    let c = &ctx.client;
    let n = match kind {
        Kind::Shard => c.shard_channels.len(),
        _ => c.channels.len() + c.patterns.len(),
    };
    n as i64
}

fn push(ctx: &Ctx, out: &mut BytesMut, what: &[u8], name: Reply, n: i64) {
    Reply::Push(vec![Reply::bulk(what), name, Reply::Int(n)]).encode(ctx.proto(), out);
}

fn sub(ctx: &mut Ctx, args: &Args, kind: Kind) -> Reply {
    let mut out = BytesMut::new();
    let id = ctx.client.id;
    for i in 1..args.len() {
        let name = args.owned(i);
        if own(ctx.client, kind).insert(name.clone()) {
            ctx.store.pubsub.add(kind, name.clone(), id);
        }
        push(
            ctx,
            &mut out,
            names(kind).0,
            Reply::Bulk(name),
            count(ctx, kind),
        );
    }
    Reply::Raw(out.freeze())
}

fn unsub(ctx: &mut Ctx, args: &Args, kind: Kind) -> Reply {
    let mut out = BytesMut::new();
    let targets: Vec<Bytes> = if args.len() > 1 {
        (1..args.len()).map(|i| args.owned(i)).collect()
    } else {
        own(ctx.client, kind).iter().cloned().collect()
    };
    let what = names(kind).1;
    if targets.is_empty() {
        push(ctx, &mut out, what, Reply::Null, count(ctx, kind));
    }
    for name in targets {
        if own(ctx.client, kind).shift_remove(&name) {
            ctx.store.pubsub.remove(kind, &name, ctx.client.id);
        }
        push(ctx, &mut out, what, Reply::Bulk(name), count(ctx, kind));
    }
    Reply::Raw(out.freeze())
}

/// Drops every subscription of the calling client (RESET, disconnect).
pub fn unsubscribe_all(
    store: &mut crate::node::store::Store,
    client: &mut crate::node::client::ClientState,
) {
    for (kind, set) in [
        (Kind::Channel, std::mem::take(&mut client.channels)),
        (Kind::Pattern, std::mem::take(&mut client.patterns)),
        (Kind::Shard, std::mem::take(&mut client.shard_channels)),
    ] {
        for name in set {
            store.pubsub.remove(kind, &name, client.id);
        }
    }
}

fn publish(ctx: &mut Ctx, args: &Args) -> Reply {
    publish_to(ctx, args, false)
}
fn spublish(ctx: &mut Ctx, args: &Args) -> Reply {
    publish_to(ctx, args, true)
}

/// Publishes; the command goes on the write feed too, because Redis replicates PUBLISH so
/// that subscribers connected to replicas get the message (an AOF writer may skip it: it
/// changes no data).
fn publish_to(ctx: &mut Ctx, args: &Args, shard: bool) -> Reply {
    // Redis Cluster sends PUBLISH to every node over the bus instead of replicating it.
    if shard || !crate::node::cluster::broadcast_publish(ctx.store, args.owned(1), args.owned(2)) {
        ctx.propagate_as(vec![args.owned(0), args.owned(1), args.owned(2)]);
    }
    let mut own = BytesMut::new();
    let store = &*ctx.store;
    let n = store.pubsub.publish(
        &store.clients,
        args.get(1),
        args.get(2),
        shard,
        ctx.client.id,
        &mut own,
    );
    if own.is_empty() {
        return Reply::Int(n);
    }
    Reply::Int(n).encode(ctx.proto(), &mut own);
    Reply::Raw(own.freeze())
}

fn pubsub(ctx: &mut Ctx, args: &Args) -> Reply {
    let ps = &ctx.store.pubsub;
    let listing = |map: &std::collections::HashMap<Bytes, indexmap::IndexSet<u64>>| {
        let pattern = (args.len() > 2).then(|| args.get(2));
        Reply::Array(
            map.keys()
                .filter(|c| pattern.is_none_or(|p| glob::matches(p, c)))
                .map(|c| Reply::Bulk(c.clone()))
                .collect(),
        )
    };
    let numsub = |map: &std::collections::HashMap<Bytes, indexmap::IndexSet<u64>>| {
        // A flat array even in RESP3, as Redis 7.0 answers.
        let mut items = Vec::new();
        for ch in args.from(2) {
            let n = map.get(ch).map_or(0, |s| s.len());
            items.push(Reply::bulk(ch));
            items.push(Reply::Int(n as i64));
        }
        Reply::Array(items)
    };
    match () {
        _ if args.is(1, "CHANNELS") && args.len() <= 3 => listing(&ps.channels),
        _ if args.is(1, "SHARDCHANNELS") && args.len() <= 3 => listing(&ps.shard),
        _ if args.is(1, "NUMSUB") => numsub(&ps.channels),
        _ if args.is(1, "SHARDNUMSUB") => numsub(&ps.shard),
        _ if args.is(1, "NUMPAT") && args.len() == 2 => Reply::Int(ps.patterns.len() as i64),
        _ if ["CHANNELS", "SHARDCHANNELS", "NUMPAT"]
            .iter()
            .any(|s| args.is(1, s)) =>
        {
            super::subcommand_arity(args)
        }
        _ => super::subcommand_error(args, "PUBSUB"),
    }
}
