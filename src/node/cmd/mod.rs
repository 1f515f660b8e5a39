//! Command dispatch: one table built from every family's static slice.
//!
//! # Contract for command families
//!
//! **Adding a family.** Create `src/node/cmd/<family>.rs` exporting
//! `pub static COMMANDS: &[Command] = &[Command::new("lpush", lpush, -3, Flags::WRITE.with(Flags::DENYOOM)).keys(1, 1, 1), ...];`
//! then register it with two lines in this file: `mod <family>;` and `<family>::COMMANDS,` in
//! [`FAMILIES`]. Nothing else needs touching. Names are lower-case; arity follows Redis
//! (`n` = exactly n arguments including the name, `-n` = at least n); keys are Redis's
//! first/last/step (last `-1` = up to the last argument). Arity is checked before the
//! handler runs, and the arity/unknown-command errors are produced here.
//!
//! **Handlers** are `fn(&mut Ctx, &Args) -> Reply` ([`Handler`]). Parse with
//! [`Args`] (`args.int(i)?`, `args.float(i)?`, `args.is(i, "WITHSCORES")`,
//! `args.owned(i)` for anything stored — never keep a slice of the request). Errors are
//! replies: `return Err(args::syntax())`-style via `?` inside a helper, or
//! `Reply::error("ERR ...")` with Redis's exact text.
//!
//! **Typed lookups.** `ctx.read::<List>(key)?` → `Option<&List>`,
//! `ctx.write::<Hash>(key)?` → `Option<&mut Hash>`, `ctx.get_or_create::<Set>(key)?` →
//! `&mut Set`; types are `Bytes` (string), [`Hash`], [`List`], [`Set`], [`ZSet`]
//! (`crate::node::value`). They apply lazy expiry and answer WRONGTYPE through `?`.
//! `ctx.lookup(key)` gives a `&Value` of any type (TYPE, OBJECT).
//!
//! **Empty containers.** Redis never keeps an empty hash/list/set/zset: after removing
//! elements call `ctx.delete_if_empty::<T>(key)`; a command that creates a key with
//! `get_or_create` must add at least one element.
//!
//! **Changes, propagation, wake-ups.** After changing a key call `ctx.modified(key)` once per
//! key (deletions included): it counts the change — a command with changes is propagated to
//! replicas and the AOF verbatim — and it wakes clients blocked on that key, breaks WATCHes
//! on it and sends client-side cache invalidations (`Store::signal`). A command that must be propagated in another form (non-deterministic or
//! relative: SPOP → SREM, INCRBYFLOAT → SET KEEPTTL, EXPIRE → PEXPIREAT, BLPOP → LPOP) calls
//! `ctx.propagate_as(vec![...])` once per command to emit instead. Read-only commands do
//! none of this. Each change is also a keyspace notification with Redis's event name:
//! `ctx.changed(key, notify::LIST, "lpush")` (= `modified` + `notify`), and
//! `ctx.shrunk::<T>(key, class, event)` after removing elements (deletes an emptied key and
//! adds Redis's `del` event).
//!
//! **Blocking** (BLPOP, BRPOP, BLMOVE, BZPOPMIN/MAX). Parse the timeout with
//! [`args::timeout`]. If an element is available, serve it like the non-blocking form
//! (propagating that form via `propagate_as`). If not, `return ctx.block(keys, timeout,
//! on_timeout)` with the reply for a timeout (`Reply::NullArray` for BLPOP/BZPOP*,
//! `Reply::Null` for BLMOVE). The connection then parks the client until a write calls
//! `ctx.modified` on one of those keys and **re-runs the same command from scratch**; a
//! command that still finds nothing blocks again. Inside MULTI/EXEC `ctx.block` returns
//! `on_timeout` at once. Writers that make a key ready (LPUSH, ZADD, LMOVE destination, ...)
//! need nothing beyond `ctx.modified(key)`.
//!
//! **Statistics and transactions** need nothing from handlers: [`execute`] counts calls,
//! time and failures per command (INFO commandstats), feeds MONITOR, records keys read by
//! tracking clients (from the key positions), and queues commands inside MULTI.
//!
//! **Replies** are [`Reply`] values encoded later for RESP2 or RESP3: use `Reply::Map` for
//! field/value pairs, `Reply::Set` for set members (SMEMBERS), `Reply::Double` for scores
//! (Redis 7.0's `%.17g` text in RESP2), `Reply::NullArray` vs `Reply::Null` as Redis does.

mod bits;
mod client;
pub mod client_pause;
pub mod command;
mod connection;
mod counters;
pub mod ctx;
mod debug;
mod elems;
pub(crate) mod function;
mod hash;
mod hll;
mod introspection;
mod keys;
mod keyspace;
mod keyspec;
mod latency_histogram;
mod lcs;
mod list;
mod memory;
mod monitoring;
mod multi;
pub(crate) mod oom;
mod pubsub;
mod replication;
pub(crate) mod scripting;
mod server;
mod set;
mod sort;
mod strings;
#[cfg(test)]
mod testing;
mod zset;

use std::collections::HashMap;
use std::sync::OnceLock;

pub use command::{subcommand_arity, subcommand_error, Command, Flags, Handler};
pub use ctx::Ctx;

pub use crate::node::args::{self, Args};
pub use crate::node::reply::Reply;
pub use crate::node::value::{Hash, Kind, List, Set, Value, ZSet};

use crate::resp::Request;

/// Every family's commands. Register a new family with one line here (and its `mod`).
pub static FAMILIES: &[&[Command]] = &[
    connection::COMMANDS,
    keys::COMMANDS,
    keyspace::COMMANDS,
    strings::COMMANDS,
    counters::COMMANDS,
    bits::COMMANDS,
    lcs::COMMANDS,
    memory::COMMANDS,
    monitoring::COMMANDS,
    sort::COMMANDS,
    multi::COMMANDS,
    pubsub::COMMANDS,
    client::COMMANDS,
    server::COMMANDS,
    hash::COMMANDS,
    list::COMMANDS,
    set::COMMANDS,
    zset::COMMANDS,
    hll::COMMANDS,
    replication::COMMANDS,
    scripting::COMMANDS,
    function::COMMANDS,
    crate::node::cluster::commands::COMMANDS,
    #[cfg(test)]
    testing::COMMANDS,
];

/// Longest command name looked up; longer names are unknown without hashing.
const MAX_NAME: usize = 32;

type NameTable = HashMap<
    &'static [u8],
    (usize, &'static Command),
    std::hash::BuildHasherDefault<crate::command::Fnv>,
>;

/// Name → (position in [`all`], command). The position indexes per-command statistics.
fn table() -> &'static NameTable {
    static TABLE: OnceLock<NameTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        all()
            .enumerate()
            .map(|(i, c)| (c.name.as_bytes(), (i, c)))
            .collect()
    })
}

/// The command called `name` (any case).
pub fn lookup(name: &[u8]) -> Option<&'static Command> {
    lookup_indexed(name).map(|(_, c)| c)
}

/// The command called `name` (any case) with its position in [`all`].
pub fn lookup_indexed(name: &[u8]) -> Option<(usize, &'static Command)> {
    if name.len() > MAX_NAME {
        return None;
    }
    let mut lower = [0u8; MAX_NAME];
    let lower = &mut lower[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    table().get(&lower[..]).copied()
}

/// Every command, in table order (COMMAND, COMMAND COUNT).
pub fn all() -> impl Iterator<Item = &'static Command> {
    FAMILIES.iter().flat_map(|family| family.iter())
}

/// Runs one request: lookup, the checks Redis makes before running a command (arity, auth,
/// pub/sub context, replica refusal), MULTI queueing, the handler, propagation of what it
/// changed, and the statistics INFO reports.
pub fn execute(ctx: &mut Ctx<'_>, req: &Request) -> Reply {
    let args = Args::new(req);
    let Some((idx, cmd)) = lookup_indexed(args.get(0)) else {
        return refused(ctx, None, args::unknown_command(&args));
    };
    execute_found(ctx, req, idx, cmd)
}

/// [`execute`] for a request whose command the caller looked up already (`redis.call`).
pub fn execute_found(ctx: &mut Ctx<'_>, req: &Request, idx: usize, cmd: &'static Command) -> Reply {
    let args = Args::new(req);
    if let Some(refusal) = check(ctx, cmd, &args) {
        let refusal = if cmd.name == "exec" && is_redirection(&refusal) {
            // Redis discards the transaction and redirects the EXEC itself.
            multi::discard_transaction(ctx);
            refusal
        } else if cmd.name == "exec" {
            // Redis's `execCommandAbort` shows the EXEC to monitors: their MULTI is closed.
            if !ctx.store.monitors.is_empty() {
                feed_monitors(ctx, &args);
            }
            multi::abort(ctx, refusal)
        } else {
            refusal
        };
        return refused(ctx, Some(idx), refusal);
    }
    if ctx.store.cluster.is_some() {
        // A master pausing its writes for a manual failover parks the client (Redis checks
        // the pause after the refusals, before MULTI queues).
        if let Some(hold) = crate::node::cluster::manual::hold(ctx, cmd) {
            return hold;
        }
    }
    if ctx.client.multi.is_some() && !is_tx_control(cmd) {
        if let Some(queue) = ctx.client.multi.as_mut() {
            queue.push(req.clone());
        }
        return Reply::simple("QUEUED");
    }
    let sub = subcommand_name(cmd, &args);
    ctx.client.last_cmd = sub.unwrap_or(cmd.name);
    // Subcommands (OBJECT ...) look up without notifying.
    ctx.client.last_cmd_reads =
        sub.is_none() && (!cmd.is_write() || cmd.flags.has(Flags::READS_KEYS_FIRST));
    ctx.client.last_cmd_reply_first = cmd.flags.has(Flags::REPLY_FIRST);
    let db = ctx.db_index();
    // Monitors see a command once it has run (so EXEC's commands come before the EXEC),
    // except scripts, shown before the commands they call (Redis 7.0's `call()` and
    // `evalCommand`).
    let monitor_first = cmd.flags.has(Flags::RUNS_SCRIPT);
    if monitor_first && !ctx.store.monitors.is_empty() {
        feed_monitors(ctx, &args);
    }
    let started = ctx.command_start();
    let reply = (cmd.handler)(ctx, &args);
    let usec = ctx.command_usec(started);
    if !monitor_first && !ctx.store.monitors.is_empty() && !cmd.flags.has(Flags::ADMIN) {
        feed_monitors(ctx, &args);
    }
    if ctx.client.tracking
        && cmd.flags.has(Flags::READONLY)
        && !ctx.store.tracking.bcast.contains_key(&ctx.client.id)
    {
        let id = ctx.client.id;
        for i in key_indexes(cmd, args.len()) {
            ctx.store.tracking.remember(id, args.get(i));
        }
    }
    ctx.finish(db, req.raw());
    let stats = &mut ctx.store.stats;
    stats.total_commands_processed += 1;
    let failed = reply.is_error();
    if let Reply::Error(e) = &reply {
        if !std::mem::take(&mut ctx.client.error_counted) {
            stats.error(e);
        }
    }
    let st = match sub {
        Some(name) => stats.sub(name),
        None => stats.cmd(idx),
    };
    st.calls += 1;
    st.usec += usec;
    st.failed += u64::from(failed);
    st.record(usec);
    if !ctx.client.in_script && !matches!(reply, Reply::Block(_)) {
        monitoring::record(ctx, cmd, &args, usec);
    }
    ctx.with_own_pushes(reply)
}

/// The positions of `cmd`'s key arguments in a call with `argc` arguments (COMMAND
/// GETKEYS, tracking), from its first/last/step.
pub fn key_indexes(cmd: &Command, argc: usize) -> impl Iterator<Item = usize> {
    let first = usize::try_from(cmd.first_key).unwrap_or(0);
    let last = if cmd.last_key < 0 {
        argc as i64 + i64::from(cmd.last_key)
    } else {
        i64::from(cmd.last_key)
    };
    let last = usize::try_from(last)
        .unwrap_or(0)
        .min(argc.saturating_sub(1));
    let step = usize::try_from(cmd.key_step).unwrap_or(1).max(1);
    // Keyless commands (first 0) get an empty range.
    let end = if first == 0 { 0 } else { last + 1 };
    (first.max(1)..end).step_by(step)
}

/// A cluster redirection or refusal (MOVED, ASK, TRYAGAIN, CROSSSLOT, CLUSTERDOWN).
fn is_redirection(reply: &Reply) -> bool {
    matches!(reply, Reply::Error(e) if ["MOVED ", "ASK ", "TRYAGAIN ", "CROSSSLOT ", "CLUSTERDOWN "]
        .iter()
        .any(|p| e.starts_with(p)))
}

/// Sends the MONITOR line for a command to every monitoring client:
/// `+<unix s>.<µs> [<db> <addr>] "arg" ...`, arguments quoted as Redis's `sdscatrepr`.
fn feed_monitors(ctx: &mut Ctx<'_>, args: &Args) {
    use std::fmt::Write;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let me = ctx.client.id;
    let addr = if ctx.client.in_script {
        "lua".to_string()
    } else {
        ctx.store
            .clients
            .get(me)
            .map(|c| c.addr.to_string())
            .unwrap_or_default()
    };
    let mut line = format!(
        "+{}.{:06} [{} {addr}]",
        now.as_secs(),
        now.subsec_micros(),
        ctx.db_index()
    );
    for a in args.from(0) {
        line.push_str(" \"");
        for &b in a {
            match b {
                b'\\' => line.push_str("\\\\"),
                b'"' => line.push_str("\\\""),
                b'\n' => line.push_str("\\n"),
                b'\r' => line.push_str("\\r"),
                b'\t' => line.push_str("\\t"),
                0x07 => line.push_str("\\a"),
                0x08 => line.push_str("\\b"),
                0x20..=0x7e => line.push(b as char),
                _ => {
                    let _ = write!(line, "\\x{b:02x}");
                }
            }
        }
        line.push('"');
    }
    line.push_str("\r\n");
    for id in &ctx.store.monitors {
        if *id != me {
            if let Some(c) = ctx.store.clients.get(*id) {
                c.send(line.as_bytes(), &ctx.store.clients.limits);
            }
        }
    }
}

/// Subcommands counted and listed on their own (`cmdstat_config|get`, `cmd=client|list`),
/// as Redis 7 does for container commands.
pub const SUBCOMMANDS: &[&str] = &[
    "client|getname",
    "client|id",
    "client|info",
    "client|kill",
    "client|list",
    "client|no-evict",
    "client|reply",
    "client|setinfo",
    "client|setname",
    "command|count",
    "command|docs",
    "command|getkeys",
    "command|info",
    "command|list",
    "config|get",
    "config|resetstat",
    "config|rewrite",
    "config|set",
    "memory|doctor",
    "memory|purge",
    "memory|usage",
    "object|encoding",
    "object|freq",
    "object|help",
    "object|idletime",
    "object|refcount",
    "pubsub|channels",
    "pubsub|numpat",
    "pubsub|numsub",
    "pubsub|shardchannels",
    "pubsub|shardnumsub",
    "slowlog|get",
    "slowlog|len",
    "slowlog|reset",
];

/// `cmd|sub` for a known subcommand of a container command.
fn subcommand_name(cmd: &Command, args: &Args) -> Option<&'static str> {
    if args.len() < 2 || !cmd.flags.has(Flags::HAS_SUBCOMMANDS) {
        return None;
    }
    let sub = args.get(1);
    SUBCOMMANDS.iter().copied().find(|full| {
        full.split_once('|')
            .is_some_and(|(c, s)| c == cmd.name && s.as_bytes().eq_ignore_ascii_case(sub))
    })
}

/// Commands MULTI runs at once instead of queueing them.
fn is_tx_control(cmd: &Command) -> bool {
    matches!(
        cmd.name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

/// The refusals Redis's `processCommand` makes before running a known command, in its order.
fn check(ctx: &mut Ctx<'_>, cmd: &Command, args: &Args) -> Option<Reply> {
    if !cmd.arity_ok(args.len()) {
        return Some(args::arity_error(cmd.name));
    }
    if !ctx.client.authed && !cmd.flags.has(Flags::NO_AUTH) {
        return Some(Reply::error("NOAUTH Authentication required."));
    }
    // Redis 7.0's `no-multi` commands (SAVE would block, SHUTDOWN would run at EXEC).
    if ctx.client.multi.is_some() && matches!(cmd.name, "save" | "shutdown" | "sync" | "psync") {
        return Some(Reply::error("ERR Command not allowed inside a transaction"));
    }
    if ctx.store.cluster.is_some() {
        if let Some(r) = crate::node::cluster::redirect::check(ctx, cmd, args) {
            return Some(r);
        }
    }
    if let Some(r) = oom::refusal(ctx, cmd, args) {
        return Some(r);
    }
    if let Some(r) = replica_refusal(ctx, cmd) {
        return Some(r);
    }
    if ctx.client.proto == crate::resp::Protocol::Resp2
        && ctx.client.subscriptions() > 0
        && !cmd.flags.has(Flags::ALLOW_SUBSCRIBED)
    {
        return Some(Reply::error(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            cmd.name
        )));
    }
    None
}

/// Replication's hook: the refusal for `cmd` on this node's current role, e.g. `-READONLY
/// You can't write against a read only replica.` for a write on a replica (commands from
/// our master, `ctx.client.from_master`, must pass). `None` lets the command run.
fn replica_refusal(ctx: &Ctx<'_>, cmd: &Command) -> Option<Reply> {
    (cmd.is_write() && ctx.store.replica && !ctx.client.from_master)
        .then(|| Reply::error("READONLY You can't write against a read only replica."))
}

/// Forgets a disconnected client: its subscriptions, watches and registry entry.
pub fn forget_client(
    store: &mut crate::node::store::Store,
    client: &mut crate::node::client::ClientState,
) {
    pubsub::unsubscribe_all(store, client);
    store.tracking.stop(client.id);
    store.monitors.retain(|&id| id != client.id);
    let watched = std::mem::take(&mut client.watched);
    store.watches.unwatch(client.id, &watched);
    store.clients.remove(client.id);
}

/// Counts a refused command and, inside MULTI, marks the transaction failed (EXECABORT).
fn refused(ctx: &mut Ctx<'_>, idx: Option<usize>, reply: Reply) -> Reply {
    if ctx.client.multi.is_some() {
        ctx.client.multi_error = true;
    }
    if let Reply::Error(e) = &reply {
        ctx.store.stats.error(e);
    }
    if let Some(i) = idx {
        ctx.store.stats.cmd(i).rejected += 1;
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_lowercase_and_arities_sane() {
        let mut seen = std::collections::HashSet::new();
        for c in all() {
            assert!(seen.insert(c.name), "duplicate command {}", c.name);
            assert_eq!(c.name, c.name.to_ascii_lowercase());
            assert!(c.arity != 0, "{} has arity 0", c.name);
            assert!(c.name.len() <= MAX_NAME);
        }
        assert_eq!(table().len(), seen.len());
    }

    /// The connection decides "script or not" from the table, not from names: exactly the
    /// six script commands carry the flag, and the common commands carry none of ours.
    #[test]
    fn script_and_container_flags_are_on_their_commands() {
        let with = |f: Flags| {
            let mut v: Vec<_> = all().filter(|c| c.flags.has(f)).map(|c| c.name).collect();
            v.sort_unstable();
            v
        };
        assert_eq!(
            with(Flags::RUNS_SCRIPT),
            [
                "eval",
                "eval_ro",
                "evalsha",
                "evalsha_ro",
                "fcall",
                "fcall_ro"
            ]
        );
        let mut containers: Vec<_> = SUBCOMMANDS
            .iter()
            .filter_map(|s| s.split_once('|').map(|(c, _)| c))
            .collect();
        containers.dedup();
        assert_eq!(with(Flags::HAS_SUBCOMMANDS), containers);
        for name in ["get", "set", "ping", "incr"] {
            let c = lookup(name.as_bytes()).expect("known");
            assert!(!c.flags.has(Flags::RUNS_SCRIPT) && !c.flags.has(Flags::HAS_SUBCOMMANDS));
        }
        assert!(with(Flags::REPLY_FIRST)
            .iter()
            .all(|n| lookup(n.as_bytes()).is_some_and(Command::is_write)));
    }

    #[test]
    fn lookup_ignores_case() {
        assert_eq!(lookup(b"GeT").map(|c| c.name), Some("get"));
        assert!(lookup(b"nope").is_none());
        assert!(lookup(&[b'a'; 100]).is_none());
        let get = lookup(b"get").expect("get");
        assert!(get.arity_ok(2) && !get.arity_ok(3));
        let del = lookup(b"del").expect("del");
        assert!(del.arity_ok(2) && del.arity_ok(9) && !del.arity_ok(1));
        assert_eq!(
            lookup(b"set").map(|c| c.flags.names().collect::<Vec<_>>()),
            Some(vec!["write", "denyoom"])
        );
    }
}
