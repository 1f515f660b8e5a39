//! What a command is (name, handler, arity, flags, key positions) and the errors shared by
//! commands with subcommands. It sits below the command table and the families that fill
//! it, so a family (the cluster role's included) needs nothing from the table itself.

use super::ctx::Ctx;
use crate::node::args::Args;
use crate::node::reply::Reply;

/// A command handler.
pub type Handler = fn(&mut Ctx<'_>, &Args<'_>) -> Reply;

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
    /// A write that looks its keys up as a read does (Redis's `lookupKeyRead`: a missing
    /// key is a `keymiss` event): SET, GETSET, COPY, SORT, the *STORE commands, ... Not a
    /// Redis flag (COMMAND INFO does not list it).
    pub const READS_KEYS_FIRST: Flags = Flags(1 << 12);
    /// Runs a script (EVAL, EVALSHA, FCALL and their `_RO` forms): the connection may run
    /// it off the event loop, and monitors see it before the commands it calls. Not a
    /// Redis flag.
    pub const RUNS_SCRIPT: Flags = Flags(1 << 13);
    /// A write whose Redis implementation adds its reply before it notifies (measured
    /// against redis-server 7.0 with a RESP3 client subscribed to its own writes): that
    /// client reads these commands' keyspace events after the reply, other commands'
    /// before it. Not a Redis flag.
    pub const REPLY_FIRST: Flags = Flags(1 << 14);
    /// A container whose subcommands are counted and listed on their own (CONFIG GET is
    /// `cmdstat_config|get`, see `SUBCOMMANDS`). Not a Redis flag.
    pub const HAS_SUBCOMMANDS: Flags = Flags(1 << 15);

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
    /// Marks a write that reads its keys first (see [`Flags::READS_KEYS_FIRST`]).
    pub const fn reads_keys_first(mut self) -> Command {
        self.flags = self.flags.with(Flags::READS_KEYS_FIRST);
        self
    }
    /// Marks a command that runs a script (see [`Flags::RUNS_SCRIPT`]).
    pub const fn runs_script(mut self) -> Command {
        self.flags = self.flags.with(Flags::RUNS_SCRIPT);
        self
    }
    /// Marks a write that replies before it notifies (see [`Flags::REPLY_FIRST`]).
    pub const fn reply_first(mut self) -> Command {
        self.flags = self.flags.with(Flags::REPLY_FIRST);
        self
    }
    /// Marks a container counted per subcommand (see [`Flags::HAS_SUBCOMMANDS`]).
    pub const fn has_subcommands(mut self) -> Command {
        self.flags = self.flags.with(Flags::HAS_SUBCOMMANDS);
        self
    }
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

/// `ERR unknown subcommand 'x'. Try CMD HELP.`
pub fn subcommand_error(args: &Args, cmd: &str) -> Reply {
    let sub = String::from_utf8_lossy(args.get(1));
    Reply::error(format!(
        "ERR unknown subcommand '{}'. Try {cmd} HELP.",
        sub.chars().take(128).collect::<String>()
    ))
}

/// `ERR wrong number of arguments for 'cmd|sub' command`, for a known subcommand.
pub fn subcommand_arity(args: &Args) -> Reply {
    let name = |i| String::from_utf8_lossy(args.get(i)).to_ascii_lowercase();
    Reply::error(format!(
        "ERR wrong number of arguments for '{}|{}' command",
        name(0),
        name(1)
    ))
}
