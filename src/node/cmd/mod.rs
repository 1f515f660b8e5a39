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
//! replicas and the AOF verbatim — and it wakes clients blocked on that key (and invalidates
//! WATCHes). A command that must be propagated in another form (non-deterministic or
//! relative: SPOP → SREM, INCRBYFLOAT → SET KEEPTTL, EXPIRE → PEXPIREAT, BLPOP → LPOP) calls
//! `ctx.propagate_as(vec![...])` once per command to emit instead. Read-only commands do
//! none of this.
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
//! **Replies** are [`Reply`] values encoded later for RESP2 or RESP3: use `Reply::Map` for
//! field/value pairs, `Reply::Set` for set members (SMEMBERS), `Reply::Double` for scores
//! (Redis 7.0's `%.17g` text in RESP2), `Reply::NullArray` vs `Reply::Null` as Redis does.

mod connection;
mod ctx;
mod keys;
mod repl_interim;
mod replication;
mod strings;
#[cfg(test)]
mod testing;

use std::collections::HashMap;
use std::sync::OnceLock;

pub use ctx::Ctx;

pub use crate::node::args::{self, Args};
pub use crate::node::reply::Reply;
pub use crate::node::value::{Hash, Kind, List, Set, Value, ZSet};

use crate::resp::Request;

/// A command handler.
pub type Handler = fn(&mut Ctx<'_>, &Args<'_>) -> Reply;

/// Every family's commands. Register a new family with one line here (and its `mod`).
pub static FAMILIES: &[&[Command]] = &[
    connection::COMMANDS,
    keys::COMMANDS,
    strings::COMMANDS,
    replication::COMMANDS,
    repl_interim::COMMANDS,
    #[cfg(test)]
    testing::COMMANDS,
];

/// Command flags, as COMMAND INFO names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Flags(u32);

impl Flags {
    /// No flags.
    pub const NONE: Flags = Flags(0);
    /// Changes data: refused on replicas, propagated when it changed something.
    pub const WRITE: Flags = Flags(1);
    /// Only reads data.
    pub const READONLY: Flags = Flags(1 << 1);
    /// May grow memory (refused under maxmemory, in Redis).
    pub const DENYOOM: Flags = Flags(1 << 2);
    /// Administrative (CONFIG, DEBUG, SHUTDOWN, REPLICAOF).
    pub const ADMIN: Flags = Flags(1 << 3);
    /// Pub/sub command.
    pub const PUBSUB: Flags = Flags(1 << 4);
    /// Not allowed in scripts.
    pub const NOSCRIPT: Flags = Flags(1 << 5);
    /// May block the client.
    pub const BLOCKING: Flags = Flags(1 << 6);
    /// Allowed while loading the dataset.
    pub const LOADING: Flags = Flags(1 << 7);
    /// Allowed on a replica with a broken link.
    pub const STALE: Flags = Flags(1 << 8);
    /// O(1) or O(log n) command.
    pub const FAST: Flags = Flags(1 << 9);
    /// Allowed before AUTH (AUTH, HELLO, QUIT).
    pub const NO_AUTH: Flags = Flags(1 << 10);
    /// Allowed in MULTI-less subscribe context (PING, SUBSCRIBE, ...): RESP2 pub/sub mode.
    pub const ALLOW_SUBSCRIBED: Flags = Flags(1 << 11);

    const NAMES: [(Flags, &'static str); 11] = [
        (Flags::WRITE, "write"),
        (Flags::READONLY, "readonly"),
        (Flags::DENYOOM, "denyoom"),
        (Flags::ADMIN, "admin"),
        (Flags::PUBSUB, "pubsub"),
        (Flags::NOSCRIPT, "noscript"),
        (Flags::BLOCKING, "blocking"),
        (Flags::LOADING, "loading"),
        (Flags::STALE, "stale"),
        (Flags::FAST, "fast"),
        (Flags::NO_AUTH, "no_auth"),
    ];

    /// Both sets of flags.
    pub const fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
    /// True if every flag of `other` is set.
    pub const fn has(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    /// The flags' names as COMMAND INFO lists them.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Flags::NAMES
            .into_iter()
            .filter(move |(f, _)| self.has(*f))
            .map(|(_, n)| n)
    }
}

/// One command: its name, handler, arity, flags and key positions.
#[derive(Clone, Copy, Debug)]
pub struct Command {
    /// Lower-case name.
    pub name: &'static str,
    /// The code.
    pub handler: Handler,
    /// Redis arity: `n` exactly, `-n` at least.
    pub arity: i32,
    /// Flags.
    pub flags: Flags,
    /// First key argument (0 = no keys).
    pub first_key: i32,
    /// Last key argument (-1 = the last argument).
    pub last_key: i32,
    /// Step between keys.
    pub key_step: i32,
}

impl Command {
    /// A keyless command; add key positions with [`Command::keys`].
    pub const fn new(name: &'static str, handler: Handler, arity: i32, flags: Flags) -> Command {
        Command {
            name,
            handler,
            arity,
            flags,
            first_key: 0,
            last_key: 0,
            key_step: 0,
        }
    }
    /// Sets the key positions (first, last, step) as in Redis's command table.
    pub const fn keys(mut self, first: i32, last: i32, step: i32) -> Command {
        self.first_key = first;
        self.last_key = last;
        self.key_step = step;
        self
    }
    /// True if `argc` arguments (name included) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = i64::try_from(argc).unwrap_or(i64::MAX);
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }
    /// True for commands that change data.
    pub fn is_write(&self) -> bool {
        self.flags.has(Flags::WRITE)
    }
}

/// Longest command name looked up; longer names are unknown without hashing.
const MAX_NAME: usize = 32;

fn table() -> &'static HashMap<&'static [u8], &'static Command> {
    static TABLE: OnceLock<HashMap<&'static [u8], &'static Command>> = OnceLock::new();
    TABLE.get_or_init(|| {
        FAMILIES
            .iter()
            .flat_map(|family| family.iter())
            .map(|c| (c.name.as_bytes(), c))
            .collect()
    })
}

/// The command called `name` (any case).
pub fn lookup(name: &[u8]) -> Option<&'static Command> {
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

/// Runs one request: lookup, arity, auth, the handler, and propagation of what it changed.
pub fn execute(ctx: &mut Ctx<'_>, req: &Request) -> Reply {
    let args = Args::new(req);
    let Some(cmd) = lookup(args.get(0)) else {
        return args::unknown_command(&args);
    };
    if !cmd.arity_ok(args.len()) {
        return args::arity_error(cmd.name);
    }
    if !ctx.client.authed && !cmd.flags.has(Flags::NO_AUTH) {
        return Reply::error("NOAUTH Authentication required.");
    }
    if cmd.is_write() && ctx.store.replica && !ctx.client.from_master {
        return Reply::error("READONLY You can't write against a read only replica.");
    }
    let db = ctx.db_index();
    let reply = (cmd.handler)(ctx, &args);
    ctx.finish(db, req.raw());
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
