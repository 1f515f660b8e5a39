//! Replication commands: PSYNC, SYNC, REPLCONF (master side), REPLICAOF/SLAVEOF, ROLE, WAIT.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Args, Command, Ctx, Flags, Reply};
use crate::node::repl::attach::{self, SyncRequest, WAIT_KEY};
use crate::node::repl::{role, LinkState};

const ADMIN: Flags = Flags::ADMIN.with(Flags::NOSCRIPT);

/// The replication family.
pub static COMMANDS: &[Command] = &[
    Command::new("psync", psync, -3, ADMIN),
    Command::new("sync", sync, 1, ADMIN),
    Command::new(
        "replconf",
        replconf,
        -1,
        ADMIN.with(Flags::LOADING).with(Flags::STALE),
    ),
    Command::new("replicaof", replicaof, 3, ADMIN.with(Flags::STALE)),
    Command::new("slaveof", replicaof, 3, ADMIN.with(Flags::STALE)),
    Command::new(
        "role",
        role,
        1,
        Flags::NOSCRIPT
            .with(Flags::LOADING)
            .with(Flags::STALE)
            .with(Flags::FAST),
    ),
    Command::new("wait", wait, 3, Flags::NOSCRIPT),
    Command::new(
        "bgrewriteaof",
        bgrewriteaof,
        1,
        Flags::ADMIN.with(Flags::NOSCRIPT),
    ),
];

/// `BGREWRITEAOF`: rewrites the AOF as the commands that re-create the keyspace. Not in the
/// background: the commands are generated under the lock (like a snapshot), the writer
/// thread replaces the file. Without `appendonly yes` it only answers, as Redis schedules
/// nothing useful then either.
fn bgrewriteaof(ctx: &mut Ctx, _: &Args) -> Reply {
    crate::node::aof_rewrite::rewrite(ctx.store);
    Reply::simple("Background append only file rewriting started")
}

/// Nothing to write: the resync preamble goes out through the replica's stream buffer.
fn silent() -> Reply {
    Reply::Raw(Bytes::new())
}

fn refuse_sync(ctx: &Ctx) -> Option<Reply> {
    if ctx.client.from_master {
        return Some(silent());
    }
    let r = &ctx.store.repl;
    if r.master
        .as_ref()
        .is_some_and(|m| m.state != LinkState::Connected)
    {
        return Some(Reply::error(
            "NOMASTERLINK Can't SYNC while not connected with my master",
        ));
    }
    None
}

/// `PSYNC replid offset`: `+CONTINUE` from the backlog when the history matches, else
/// `+FULLRESYNC` and a snapshot; the connection then becomes a replica link.
fn psync(ctx: &mut Ctx, args: &Args) -> Reply {
    if let Some(r) = refuse_sync(ctx) {
        return r;
    }
    let offset = match args.int(2) {
        Ok(n) => n,
        Err(e) => return e,
    };
    attach::attach(
        ctx.store,
        ctx.client,
        SyncRequest::Psync(args.get(1), offset),
    );
    ctx.client.handoff = true;
    silent()
}

/// `SYNC`: the pre-PSYNC protocol, always a full snapshot without a status line.
fn sync(ctx: &mut Ctx, _: &Args) -> Reply {
    if let Some(r) = refuse_sync(ctx) {
        return r;
    }
    attach::attach(ctx.store, ctx.client, SyncRequest::Sync);
    ctx.client.handoff = true;
    silent()
}

/// `REPLCONF option value ...` from a replica during its handshake.
fn replconf(ctx: &mut Ctx, args: &Args) -> Reply {
    if args.len().is_multiple_of(2) {
        return super::args::syntax();
    }
    let mut i = 1;
    while i < args.len() {
        let opt = args.get(i);
        if opt.eq_ignore_ascii_case(b"listening-port") {
            match args.int(i + 1).map(u16::try_from) {
                Ok(Ok(p)) => ctx.client.repl_port = p,
                Ok(Err(_)) => return Reply::error(super::args::NOT_INT),
                Err(e) => return e,
            }
        } else if opt.eq_ignore_ascii_case(b"ack") || opt.eq_ignore_ascii_case(b"getack") {
            // ACKs are read by the replica link task once the connection is handed over;
            // before that (or from a non-replica) they get no reply, as in Redis.
            return silent();
        } else if !(opt.eq_ignore_ascii_case(b"capa")
            || opt.eq_ignore_ascii_case(b"ip-address")
            || opt.eq_ignore_ascii_case(b"rdb-only")
            || opt.eq_ignore_ascii_case(b"rdb-filter-only"))
        {
            return Reply::error(format!(
                "ERR Unrecognized REPLCONF option: {}",
                String::from_utf8_lossy(opt)
            ));
        }
        i += 2;
    }
    Reply::Ok
}

/// `REPLICAOF host port` / `REPLICAOF NO ONE` (and SLAVEOF).
fn replicaof(ctx: &mut Ctx, args: &Args) -> Reply {
    if args.get(1).eq_ignore_ascii_case(b"no") && args.get(2).eq_ignore_ascii_case(b"one") {
        if role::promote(ctx.store) {
            tracing::info!("MASTER MODE enabled (REPLICAOF NO ONE)");
        }
        return Reply::Ok;
    }
    let port = match args.int(2) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let Ok(port) = u16::try_from(port) else {
        return Reply::error("ERR Invalid master port");
    };
    let host = String::from_utf8_lossy(args.get(1)).into_owned();
    if role::set_master(ctx.store, &host, port) {
        tracing::info!(master = %format!("{host}:{port}"), "REPLICAOF: connecting to master");
        Reply::Ok
    } else {
        Reply::simple("OK Already connected to specified master")
    }
}

/// `ROLE`: `master offset [[ip port offset] ...]` or `slave host port state offset`.
fn role(ctx: &mut Ctx, _: &Args) -> Reply {
    let r = &ctx.store.repl;
    match &r.master {
        Some(m) => {
            let offset = if m.state == LinkState::Connected {
                r.offset
            } else {
                -1
            };
            Reply::Array(vec![
                Reply::bulk(b"slave"),
                Reply::bulk(m.host.as_bytes()),
                Reply::Int(i64::from(m.port)),
                Reply::bulk(m.state.name().as_bytes()),
                Reply::Int(offset),
            ])
        }
        None => Reply::Array(vec![
            Reply::bulk(b"master"),
            Reply::Int(r.offset),
            Reply::Array(
                r.replicas
                    .iter()
                    .filter(|l| !l.killed)
                    .map(|l| {
                        Reply::Array(vec![
                            Reply::bulk(l.ip.as_bytes()),
                            Reply::bulk(l.port.to_string().as_bytes()),
                            Reply::bulk(l.ack.to_string().as_bytes()),
                        ])
                    })
                    .collect(),
            ),
        ]),
    }
}

/// `WAIT numreplicas timeout`: blocks until that many replicas acknowledged everything
/// written so far, or the timeout (ms, 0 = forever) passes; answers the count.
fn wait(ctx: &mut Ctx, args: &Args) -> Reply {
    if ctx.store.repl.is_replica() {
        return Reply::error("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.");
    }
    let (want, ms) = match (args.int(1), args.int(2)) {
        (Ok(n), Ok(t)) => (n, t),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    if ms < 0 {
        return Reply::error("ERR timeout is negative");
    }
    let r = &mut ctx.store.repl;
    let target = r.offset;
    let acked = r
        .replicas
        .iter()
        .filter(|l| !l.killed && l.ack >= target)
        .count() as i64;
    let now = Instant::now();
    // A WAIT that timed out is answered by the connection without re-running us, so a
    // deadline well in the past belongs to an earlier WAIT, not to this one.
    if ctx
        .client
        .wait_until
        .is_some_and(|d| now > d + Duration::from_millis(50))
    {
        ctx.client.wait_until = None;
    }
    let first = ctx.client.wait_until.is_none();
    let deadline = *ctx
        .client
        .wait_until
        .get_or_insert_with(|| now + Duration::from_millis(ms as u64));
    if acked >= want || (ms > 0 && now >= deadline) || r.replicas.is_empty() {
        ctx.client.wait_until = None;
        return Reply::Int(acked);
    }
    if first {
        // Ask for ACKs now rather than waiting for the replicas' next one-second ACK.
        r.stream(b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n");
    }
    let timeout = (ms > 0).then(|| deadline.saturating_duration_since(now));
    let reply = ctx.block(
        vec![Bytes::from_static(WAIT_KEY)],
        timeout,
        Reply::Int(acked),
    );
    if !matches!(reply, Reply::Block(_)) {
        ctx.client.wait_until = None;
    }
    reply
}
