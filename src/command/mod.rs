//! The command table: every Redis 7.0 command with its arity, flags and key positions, generated
//! from a live redis-server's `COMMAND` reply and checked in (`commands.tsv`), plus the routing
//! questions the proxy asks of it (read or write? blocking? which keys?).

use crate::resp::{ReplyShape, Request};

mod keys;
mod special;
mod table;

pub(crate) use table::Fnv;
#[cfg(test)]
mod tests;

pub use keys::{key_positions, KeyPositions};
pub use special::Special;

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

    /// Every flag with the name Redis gives it in `COMMAND`.
    pub const ALL: [(&str, u32); 21] = [
        ("write", WRITE),
        ("readonly", READONLY),
        ("denyoom", DENYOOM),
        ("admin", ADMIN),
        ("pubsub", PUBSUB),
        ("noscript", NOSCRIPT),
        ("blocking", BLOCKING),
        ("loading", LOADING),
        ("stale", STALE),
        ("skip_monitor", SKIP_MONITOR),
        ("fast", FAST),
        ("no_auth", NO_AUTH),
        ("may_replicate", MAY_REPLICATE),
        ("movablekeys", MOVABLEKEYS),
        ("no_multi", NO_MULTI),
        ("allow_busy", ALLOW_BUSY),
        ("no_mandatory_keys", NO_MANDATORY_KEYS),
        ("no_async_loading", NO_ASYNC_LOADING),
        ("skip_slowlog", SKIP_SLOWLOG),
        ("asking", ASKING),
        ("sort_for_script", SORT_FOR_SCRIPT),
    ];

    /// The bit for a flag name as Redis spells it (`"readonly"`), case-sensitively.
    pub fn from_name(name: &str) -> Option<u32> {
        ALL.iter().find(|(n, _)| *n == name).map(|&(_, bit)| bit)
    }
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
    /// What the proxy makes of the command beyond forwarding it, decided once at load.
    pub special: Special,
    /// Redis flags it `may-replicate` internally but COMMAND INFO does not show it (PFCOUNT,
    /// PUBLISH, SPUBLISH, EVAL): `CLIENT PAUSE WRITE` holds it like a write. Decided once at
    /// load (see `table::hidden_may_replicate`).
    pub hidden_may_replicate: bool,
}

impl CommandInfo {
    /// True when every flag in `mask` is set.
    pub fn has(&self, mask: u32) -> bool {
        self.flags & mask == mask
    }

    /// Whether `n` arguments (the name included) fit the arity (Redis's sign convention:
    /// negative means at least that many). Redis refuses the others before running them.
    pub fn arity_ok(&self, n: usize) -> bool {
        if self.arity >= 0 {
            n == self.arity as usize
        } else {
            n >= self.arity.unsigned_abs() as usize
        }
    }
}

/// Read access to a command's arguments, so that the routing questions can be asked of a
/// decoded [`Request`] and of a plain argument list (`&[&[u8]]`, `&[&str]`, `&[Vec<u8>]`)
/// alike. Argument 0 is the command name; out-of-range indexes give an empty slice.
pub trait Args {
    /// Number of arguments, command name included.
    fn arg_count(&self) -> usize;
    /// Argument `i`, or an empty slice when out of range.
    fn arg_at(&self, i: usize) -> &[u8];
}

impl Args for Request {
    fn arg_count(&self) -> usize {
        self.len()
    }
    fn arg_at(&self, i: usize) -> &[u8] {
        self.arg(i)
    }
}

impl<T: AsRef<[u8]>> Args for [T] {
    fn arg_count(&self) -> usize {
        self.len()
    }
    fn arg_at(&self, i: usize) -> &[u8] {
        self.get(i).map_or(&[], AsRef::as_ref)
    }
}

/// The whole table, sorted by name: every Redis 7.0 command and subcommand.
pub fn table() -> &'static [CommandInfo] {
    &table::TABLE.rows
}

/// Looks a request up, descending into the subcommand row for container commands
/// (CONFIG, CLIENT, SCRIPT, ...). Case-insensitive, no allocation.
///
/// A container with a missing or unknown subcommand yields the container's own row (no
/// flags, no keys): Redis answers such a request with an error, so it must not be taken for
/// a read.
pub fn lookup(req: &Request) -> Option<&'static CommandInfo> {
    lookup_args(req)
}

/// [`lookup`] over any argument list.
pub fn lookup_args<A: Args + ?Sized>(args: &A) -> Option<&'static CommandInfo> {
    if args.arg_count() == 0 {
        return None;
    }
    let sub = (args.arg_count() > 1).then(|| args.arg_at(1));
    table::lookup_command(args.arg_at(0), sub)
}

/// Looks a command up by name (`get`, `GET`, `config|set`); case-insensitive.
pub fn lookup_name(name: &[u8]) -> Option<&'static CommandInfo> {
    table::lookup_bytes(name)
}

/// May this request be served by a replica? True only for commands Redis flags `readonly`
/// and not `write`/`may_replicate`/`admin`/`pubsub`/`noscript`-only-admin, plus the read-only
/// script commands (EVAL_RO, EVALSHA_RO, FCALL_RO). Unknown commands are not reads.
///
/// Decisions beyond the flags:
/// * `noscript` does not disqualify: EVAL_RO, EVALSHA_RO and FCALL_RO carry it and are exactly
///   the scripts meant for replicas (as is SORT_RO).
/// * `blocking` disqualifies only when the request really blocks: XREAD is flagged `blocking`
///   even without `BLOCK`, and a plain XREAD is a read. An XREAD with `BLOCK` goes to the
///   master, where new entries appear first and where the proxy's blocking connections live.
///   XREADGROUP is `write` (it moves the consumer group's cursor) and never a read.
/// * Server and introspection commands (INFO, CLIENT, CONFIG, COMMAND, TIME, ROLE, SLOWLOG,
///   SCRIPT, FUNCTION, PUBSUB, ...) are not flagged `readonly` in Redis 7.0 and so go to the
///   master: their answers describe one node, and the client believes it talks to the master.
/// * Keyspace reads without keys (KEYS, SCAN, DBSIZE, RANDOMKEY) are `readonly` and are reads.
pub fn is_read(req: &Request, info: Option<&CommandInfo>) -> bool {
    is_read_args(req, info)
}

/// [`is_read`] over any argument list.
pub fn is_read_args<A: Args + ?Sized>(args: &A, info: Option<&CommandInfo>) -> bool {
    let Some(info) = info else {
        return false;
    };
    if matches!(info.name, "eval_ro" | "evalsha_ro" | "fcall_ro" | "sort_ro") {
        return true;
    }
    if !info.has(flags::READONLY)
        || info.flags & (flags::WRITE | flags::MAY_REPLICATE | flags::ADMIN | flags::PUBSUB) != 0
    {
        return false;
    }
    !(info.has(flags::BLOCKING) && is_blocking_args(args, Some(info)))
}

/// Does this request block the connection it runs on (BLPOP, BLMOVE, BZPOPMIN, WAIT,
/// XREAD/XREADGROUP with BLOCK, ...)? Such requests need a connection of their own.
///
/// Decided by name rather than by the `blocking` flag: WAIT blocks but is not flagged, and
/// XREAD/XREADGROUP are flagged but block only when `BLOCK` is given before `STREAMS`.
/// (Inside MULTI none of these block; that is for the caller to know.) `None` (an unknown
/// command) is not blocking.
pub fn is_blocking(req: &Request, info: Option<&CommandInfo>) -> bool {
    is_blocking_args(req, info)
}

/// [`is_blocking`] over any argument list.
pub fn is_blocking_args<A: Args + ?Sized>(args: &A, info: Option<&CommandInfo>) -> bool {
    let Some(info) = info else {
        return false;
    };
    match info.name {
        "blpop" | "brpop" | "brpoplpush" | "blmove" | "blmpop" | "bzpopmin" | "bzpopmax"
        | "bzmpop" | "wait" => true,
        "xread" | "xreadgroup" => keys::xread_scan(args).1,
        _ => false,
    }
}

/// Where a blocking command's timeout is: its argument index, and whether it is in
/// milliseconds (XREAD/XREADGROUP `BLOCK`) rather than seconds. `None` for other commands,
/// and for a request with too few arguments (Redis refuses it with an arity error before
/// looking for a timeout; without this check a bare `BLMPOP` would point past its end).
pub fn blocking_timeout_at(req: &Request, info: Option<&CommandInfo>) -> Option<(usize, bool)> {
    let info = info?;
    let argc = i64::try_from(req.len()).ok()?;
    let arity = i64::from(info.arity);
    if (arity > 0 && argc != arity) || argc < arity.abs() {
        return None;
    }
    let last = req.len().checked_sub(1)?;
    match info.name {
        "blpop" | "brpop" | "brpoplpush" | "blmove" | "bzpopmin" | "bzpopmax" => {
            Some((last, false))
        }
        "blmpop" | "bzmpop" => Some((1, false)),
        "xread" | "xreadgroup" => (1..last)
            .find(|&i| {
                req.arg(i).eq_ignore_ascii_case(b"block")
                    && keys::xread_scan(req).0.is_none_or(|streams| i < streams)
            })
            .map(|i| (i + 1, true)),
        _ => None,
    }
}

/// The request with its blocking timeout reduced by `elapsed` (a blocking command re-sent
/// after a redirect must not wait its whole timeout again). `None` when nothing changes: not
/// a blocking command with a timeout, a timeout of 0 (forever), or one that does not parse
/// (the node answers that with Redis's own error). A timeout already spent becomes 1 ms, as
/// 0 would mean forever.
pub fn with_remaining_timeout(
    req: &Request,
    info: Option<&CommandInfo>,
    elapsed: std::time::Duration,
) -> Option<bytes::Bytes> {
    let (at, millis) = blocking_timeout_at(req, info)?;
    let text = std::str::from_utf8(req.arg(at)).ok()?;
    let total: f64 = text.parse().ok()?;
    // Zero (forever), negative or NaN: left for the node to judge.
    if total.is_nan() || total <= 0.0 {
        return None;
    }
    let spent = if millis {
        elapsed.as_secs_f64() * 1000.0
    } else {
        elapsed.as_secs_f64()
    };
    let left = if millis {
        format!("{}", (total - spent).ceil().max(1.0) as u64)
    } else {
        format!("{:.3}", (total - spent).max(0.001))
    };
    let mut args: Vec<&[u8]> = req.args().collect();
    args[at] = left.as_bytes();
    let mut raw = bytes::BytesMut::new();
    crate::resp::encode::command(&mut raw, &args);
    Some(raw.freeze())
}

/// Is the RESP2 form of this command's nil reply a null *array* (`*-1`) rather than a null
/// bulk (`$-1`)? (BLPOP/BRPOP/BZPOP*/BLMPOP/BZMPOP timeouts, EXEC aborted by WATCH, XREAD
/// timeouts, ...) Needed to downconvert a RESP3 `_` faithfully.
///
/// This describes a *top-level* nil only. Checked against Redis 7.0.15 in RESP2
/// (`tests/command_table.rs` re-checks it): `*-1` for BLPOP, BRPOP, BRPOPLPUSH, BLMOVE,
/// BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP (timeouts), LMPOP, ZMPOP, XREAD, XREADGROUP (nothing
/// to read or timeout), EXEC (aborted) and LPOP/RPOP *with a count* on a missing key.
/// SPOP, SRANDMEMBER, ZRANDMEMBER and HRANDFIELD answer `$-1` without a count and `*0`
/// with one, so they are not here. Nils nested inside an array (GEOPOS, XPENDING, the
/// replies inside EXEC) are not described by this function.
pub fn nil_is_array(req: &Request, info: Option<&CommandInfo>) -> bool {
    info.is_some_and(|info| nil_is_array_info(req, info))
}

/// How this command's RESP3 reply maps onto its RESP2 form, where that is not mechanical
/// (see [`ReplyShape`]): score/value pairs flattened, XREAD's map as pairs, GEOPOS nulls.
pub fn reply_shape(req: &Request, info: Option<&CommandInfo>) -> ReplyShape {
    let Some(info) = info else {
        return ReplyShape::Plain;
    };
    let has = |word: &[u8]| req.args().skip(1).any(|a| a.eq_ignore_ascii_case(word));
    match info.name {
        "zrange" | "zrangebyscore" | "zrevrange" | "zrevrangebyscore" | "zunion" | "zinter"
        | "zdiff" | "zrandmember"
            if has(b"WITHSCORES") =>
        {
            ReplyShape::FlattenPairs
        }
        "hrandfield" if has(b"WITHVALUES") => ReplyShape::FlattenPairs,
        "zpopmin" | "zpopmax" => ReplyShape::FlattenPairs,
        "xread" | "xreadgroup" => ReplyShape::MapAsPairs,
        "geopos" => ReplyShape::NullArrays,
        _ => ReplyShape::Plain,
    }
}

/// [`nil_is_array`] over any argument list (looks the command up).
pub fn nil_is_array_args<A: Args + ?Sized>(args: &A) -> bool {
    lookup_args(args).is_some_and(|info| nil_is_array_info(args, info))
}

fn nil_is_array_info<A: Args + ?Sized>(args: &A, info: &CommandInfo) -> bool {
    match info.name {
        "blpop" | "brpop" | "brpoplpush" | "blmove" | "blmpop" | "bzpopmin" | "bzpopmax"
        | "bzmpop" | "lmpop" | "zmpop" | "xread" | "xreadgroup" | "exec" => true,
        // `LPOP key` → `$-1`, `LPOP key count` → `*-1`.
        "lpop" | "rpop" => args.arg_count() >= 3,
        _ => false,
    }
}

/// The keys of a request, in argument order (a ZUNIONSTORE destination first), following
/// `info`'s first/last/step, or command-specific rules for the `movablekeys` commands
/// (EVAL*, FCALL*, Z*STORE, ZUNION/ZINTER/ZDIFF, SINTERCARD, ZINTERCARD, LMPOP, ZMPOP,
/// BLMPOP, BZMPOP, XREAD, XREADGROUP, SORT, SORT_RO, GEORADIUS*, MIGRATE). Malformed
/// requests (a non-numeric or too-large `numkeys`, a missing `STREAMS`) have no keys.
pub fn keys<'a>(req: &'a Request, info: &CommandInfo) -> impl Iterator<Item = &'a [u8]> {
    key_positions(req, info).map(move |i| req.arg(i))
}

/// [`keys`] over any argument list.
pub fn keys_args<'a, A: Args + ?Sized>(
    args: &'a A,
    info: &CommandInfo,
) -> impl Iterator<Item = &'a [u8]> {
    key_positions(args, info).map(move |i| args.arg_at(i))
}
