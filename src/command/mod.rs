//! The command table: every Redis 7.0 command with its arity, flags and key positions, generated
//! from a live redis-server's `COMMAND` reply and checked in (`commands.tsv`), plus the routing
//! questions the proxy asks of it (read or write? blocking? which keys?).

use crate::resp::Request;

/// Command flags as Redis reports them in `COMMAND`, one bit each.
pub mod flags {
    /// `write`
    pub const WRITE: u32 = 1 << 0;
    /// `readonly`
    pub const READONLY: u32 = 1 << 1;
    /// `denyoom`
    pub const DENYOOM: u32 = 1 << 2;
    /// `admin`
    pub const ADMIN: u32 = 1 << 3;
    /// `pubsub`
    pub const PUBSUB: u32 = 1 << 4;
    /// `noscript`
    pub const NOSCRIPT: u32 = 1 << 5;
    /// `blocking`
    pub const BLOCKING: u32 = 1 << 6;
    /// `loading`
    pub const LOADING: u32 = 1 << 7;
    /// `stale`
    pub const STALE: u32 = 1 << 8;
    /// `skip_monitor`
    pub const SKIP_MONITOR: u32 = 1 << 9;
    /// `fast`
    pub const FAST: u32 = 1 << 10;
    /// `no_auth`
    pub const NO_AUTH: u32 = 1 << 11;
    /// `may_replicate`
    pub const MAY_REPLICATE: u32 = 1 << 12;
    /// `movablekeys`
    pub const MOVABLEKEYS: u32 = 1 << 13;
    /// `no_multi`
    pub const NO_MULTI: u32 = 1 << 14;
    /// `allow_busy`
    pub const ALLOW_BUSY: u32 = 1 << 15;
    /// `no_mandatory_keys`
    pub const NO_MANDATORY_KEYS: u32 = 1 << 16;
    /// `no_async_loading`
    pub const NO_ASYNC_LOADING: u32 = 1 << 17;
    /// `skip_slowlog`
    pub const SKIP_SLOWLOG: u32 = 1 << 18;
    /// `asking`
    pub const ASKING: u32 = 1 << 19;
    /// `sort_for_script`
    pub const SORT_FOR_SCRIPT: u32 = 1 << 20;
}

/// One row of the command table. Subcommands are rows of their own named `parent|sub`
/// (e.g. `config|set`), as Redis 7 names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandInfo {
    /// Lower-case name, `parent|sub` for subcommands.
    pub name: &'static str,
    /// Redis arity: positive = exact argument count, negative = at least `-arity`.
    pub arity: i32,
    /// Bitwise OR of [`flags`] constants.
    pub flags: u32,
    /// Position of the first key (0 = no keys).
    pub first_key: i32,
    /// Position of the last key (negative counts from the end).
    pub last_key: i32,
    /// Step between keys.
    pub step: i32,
}

impl CommandInfo {
    /// True when every flag in `mask` is set.
    pub fn has(&self, mask: u32) -> bool {
        self.flags & mask == mask
    }
}

/// Looks a request up, descending into the subcommand row for container commands
/// (CONFIG, CLIENT, SCRIPT, ...). Case-insensitive, no allocation.
pub fn lookup(req: &Request) -> Option<&'static CommandInfo> {
    let _ = req;
    todo!()
}

/// Looks a command up by name (`get`, `GET`, `config|set`); case-insensitive.
pub fn lookup_name(name: &[u8]) -> Option<&'static CommandInfo> {
    let _ = name;
    todo!()
}

/// May this request be served by a replica? True only for commands Redis flags `readonly`
/// and not `write`/`may_replicate`/`admin`/`pubsub`/`noscript`-only-admin, plus the read-only
/// script commands (EVAL_RO, EVALSHA_RO, FCALL_RO). Unknown commands are not reads.
pub fn is_read(req: &Request, info: Option<&CommandInfo>) -> bool {
    let _ = (req, info);
    todo!()
}

/// Does this request block the connection it runs on (BLPOP, BLMOVE, BZPOPMIN, WAIT,
/// XREAD/XREADGROUP with BLOCK, ...)? Such requests need a connection of their own.
pub fn is_blocking(req: &Request, info: Option<&CommandInfo>) -> bool {
    let _ = (req, info);
    todo!()
}

/// Is the RESP2 form of this command's nil reply a null *array* (`*-1`) rather than a null
/// bulk (`$-1`)? (BLPOP/BRPOP/BZPOP*/BLMPOP/BZMPOP timeouts, EXEC aborted by WATCH, XREAD
/// timeouts, ...) Needed to downconvert a RESP3 `_` faithfully.
pub fn nil_is_array(req: &Request) -> bool {
    let _ = req;
    todo!()
}
