//! Lua scripting as Redis 7.0 does it: EVAL's script cache and VM, FUNCTION's libraries
//! and VM, the sandbox, reply conversions, and how a running script calls commands.
//!
//! * [`engine`]: one sandboxed Lua 5.1 VM (mlua, vendored), with `prelude.lua` building the
//!   read-only globals and the error handler.
//! * [`run`]: one script run. Commands called with `redis.call` run as a separate script
//!   client (its own db and protocol) through the normal dispatcher, so statistics,
//!   key signalling and propagation work as for any command; their writes are wrapped in
//!   MULTI ... EXEC on the write feed, which is how scripts replicate: as their effects.
//! * [`convert`]: replies to Lua values and back.
//! * [`libs`]: cjson, cmsgpack, bit and struct, written in Rust.
//! * [`functions`]: FUNCTION libraries.
//! * `handoff`: an inline script that wrote and turned slow finishes on its thread while
//!   the event loop moves to another one.
//! * [`busy`]: the state a long-running script shares with other connections (BUSY replies,
//!   SCRIPT KILL / FUNCTION KILL).

pub(crate) mod busy;
pub(crate) mod convert;
pub(crate) mod engine;
pub(crate) mod functions;
mod handoff;
pub(crate) mod libs;
mod rawcall;
mod result;
pub(crate) mod run;
mod state;

use std::collections::HashMap;

use bytes::Bytes;
use mlua::Function;

pub use busy::Busy;
use engine::Engine;

/// Shebang flags (`#!lua flags=...`) as Redis 7.0 names them.
pub(crate) mod flags {
    /// No shebang: the pre-7.0 rules apply.
    pub const EVAL_COMPAT: u32 = 1;
    /// `no-writes`
    pub const NO_WRITES: u32 = 1 << 1;
    /// `allow-oom`
    pub const ALLOW_OOM: u32 = 1 << 2;
    /// `allow-stale`
    pub const ALLOW_STALE: u32 = 1 << 3;
    /// `no-cluster`
    pub const NO_CLUSTER: u32 = 1 << 4;
    /// `allow-cross-slot-keys`
    pub const ALLOW_CROSS_SLOT: u32 = 1 << 5;

    /// Flag names, in Redis's order.
    pub const NAMES: [(u32, &str); 5] = [
        (NO_WRITES, "no-writes"),
        (ALLOW_OOM, "allow-oom"),
        (ALLOW_STALE, "allow-stale"),
        (NO_CLUSTER, "no-cluster"),
        (ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
    ];
}

/// A cached EVAL script.
#[derive(Debug)]
pub(crate) struct Script {
    /// Shebang flags.
    pub(crate) flags: u32,
    /// The compiled chunk.
    pub(crate) func: Function,
    /// Its last run took under [`FAST_RUN`]: the next one runs in the caller's batch (see
    /// `conn/busy.rs`), without the hand-over to a blocking thread.
    pub(crate) fast: bool,
}

/// A script whose run takes less than this runs inline next time.
pub(crate) const FAST_RUN: std::time::Duration = std::time::Duration::from_millis(1);

/// Scripting state, kept in the store (scripts and libraries change with the data).
#[derive(Debug, Default)]
pub struct Scripting {
    /// The EVAL VM, created on first use.
    eval: Option<Engine>,
    /// EVAL's script cache, by SHA1.
    pub(crate) scripts: HashMap<Sha, Script>,
    /// Function libraries and their VM.
    pub(crate) functions: functions::Functions,
    /// Pseudo-random generator state of `math.random` (Redis's `lrand48`).
    pub(crate) rand48: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The running script, as other connections see it.
    pub busy: std::sync::Arc<Busy>,
    /// The script now running runs inline, on the event loop: it is stopped at its first
    /// time-limit hook if it has had no effect yet (it then runs again off the loop).
    pub(crate) inline: bool,
    /// The inline run was stopped that way: its reply is to be dropped and the request run
    /// off the loop.
    pub(crate) inline_aborted: bool,
    /// The SHA1 of the EVAL about to run inline, computed when the connection asked
    /// whether its script was fast (`cmd::scripting::fast_script`), so that the body is
    /// hashed once per EVAL, not twice. Set and cleared around that one request.
    pub(crate) inline_sha: Option<Sha>,
}

impl Scripting {
    /// The EVAL VM, creating it if needed.
    pub(crate) fn eval_engine(&mut self) -> Result<Engine, String> {
        if self.eval.is_none() {
            let e = Engine::new(self.rand48.clone()).map_err(|e| format!("ERR {e}"))?;
            self.eval = Some(e);
        }
        self.eval.clone().ok_or_else(|| "ERR no Lua VM".to_string())
    }
    /// SCRIPT FLUSH: forgets every script and starts a new VM.
    pub(crate) fn flush_scripts(&mut self) {
        self.scripts.clear();
        self.eval = None;
    }
    /// Memory of the EVAL VM (INFO `used_memory_lua`).
    pub fn lua_memory(&self) -> usize {
        self.eval.as_ref().map_or(32 * 1024, Engine::used_memory)
    }
    /// Memory of the functions VM (INFO `used_memory_vm_functions`).
    pub fn functions_memory(&self) -> usize {
        self.functions.memory()
    }
    /// Number of functions (INFO `number_of_functions`).
    pub fn function_count(&self) -> usize {
        self.functions.function_count()
    }
    /// Number of function libraries (INFO `number_of_libraries`).
    pub fn library_count(&self) -> usize {
        self.functions.libraries.len()
    }
    /// Number of cached scripts (INFO `number_of_cached_scripts`).
    pub fn cached_scripts(&self) -> usize {
        self.scripts.len()
    }
    /// Compiles and caches `body` if it is new; returns its SHA1.
    pub(crate) fn load_script(&mut self, body: &[u8]) -> Result<Sha, String> {
        self.load_script_as(Sha::of(body), body)
    }
    /// [`Scripting::load_script`] for a body whose SHA1 the caller has computed already.
    pub(crate) fn load_script_as(&mut self, sha: Sha, body: &[u8]) -> Result<Sha, String> {
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let (script_flags, skip) = shebang(body, true)?;
        let engine = self.eval_engine()?;
        // Keep the shebang line's newline so line numbers stay the user's.
        let func = engine
            .compile("@user_script", &body[skip..])
            .map_err(|e| format!("ERR Error compiling script (new function): {e}"))?;
        self.scripts.insert(
            sha,
            Script {
                flags: script_flags,
                func,
                fast: false,
            },
        );
        Ok(sha)
    }
}

/// A script's SHA1 as 40 lower-case hex digits (script ids, `redis.sha1hex`): a value
/// rather than a `String`, so that EVALSHA finds its script without allocating and EVAL
/// names its script without allocating either.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Sha([u8; 40]);

impl Sha {
    /// The SHA1 of `data`.
    pub(crate) fn of(data: &[u8]) -> Sha {
        // By hand rather than through `Display`: EVAL hashes its script on every call, and
        // the formatting machinery cost more than the hashing.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 40];
        let digest = sha1_smol::Sha1::from(data).digest().bytes();
        for (pair, b) in out.chunks_exact_mut(2).zip(digest) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 15)];
        }
        Sha(out)
    }
    /// An id as a client sends it (EVALSHA, SCRIPT EXISTS), in either case; `None` unless
    /// it is 40 hex digits (no such script can exist then).
    pub(crate) fn parse(text: &[u8]) -> Option<Sha> {
        let hex: [u8; 40] = text.try_into().ok()?;
        hex.iter()
            .all(u8::is_ascii_hexdigit)
            .then(|| Sha(hex.map(|b| b.to_ascii_lowercase())))
    }
    /// The 40 hex digits.
    pub(crate) fn as_str(&self) -> &str {
        // Only hex digits are ever stored (`of`, `parse`): always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for Sha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a `#!lua flags=a,b` first line: (flags, bytes to skip before compiling).
/// Without a shebang, EVAL scripts get [`flags::EVAL_COMPAT`] (`eval` true).
pub(crate) fn shebang(body: &[u8], eval: bool) -> Result<(u32, usize), String> {
    let compat = if eval { flags::EVAL_COMPAT } else { 0 };
    if !body.starts_with(b"#!") {
        return Ok((compat, 0));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let Some(words) = split_args(&line) else {
        return Err("ERR Invalid engine in script shebang".into());
    };
    let mut parts = words.iter().map(String::as_str);
    let engine = parts.next().unwrap_or("");
    if engine != "#!lua" {
        return Err(format!("ERR Unexpected engine in script shebang: {engine}"));
    }
    let mut out = 0;
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(format!("ERR Unknown lua shebang option: {part}"));
        };
        for name in list.split(',').filter(|n| !n.is_empty()) {
            match flags::NAMES.iter().find(|(_, n)| *n == name) {
                Some((f, _)) => out |= f,
                None => return Err(format!("ERR Unexpected flag in script shebang: {name}")),
            }
        }
    }
    Ok((out, end))
}

/// Bytes of a Lua string or number argument.
pub(crate) fn arg_bytes(v: &mlua::Value) -> Option<Bytes> {
    match v {
        mlua::Value::String(s) => Some(Bytes::copy_from_slice(&s.as_bytes())),
        mlua::Value::Number(n) => Some(Bytes::from(convert::number_text(*n))),
        mlua::Value::Integer(n) => Some(Bytes::from(n.to_string())),
        _ => None,
    }
}

/// Redis's `sdssplitargs` for a shebang line: words separated by blanks, with "double"
/// (escapes allowed) and 'single' quoted parts; `None` for unbalanced quotes.
pub(crate) fn split_args(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut word = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' | '\'' => {
                    let quote = c;
                    loop {
                        match chars.next()? {
                            '\\' if quote == '"' => word.push(chars.next()?),
                            q if q == quote => break,
                            other => word.push(other),
                        }
                    }
                    // A closing quote must end the word.
                    if chars.peek().is_some_and(|c| !c.is_ascii_whitespace()) {
                        return None;
                    }
                }
                c if c.is_ascii_whitespace() => break,
                c => word.push(c),
            }
        }
        out.push(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs_parse_like_redis() {
        assert_eq!(shebang(b"return 1", true), Ok((flags::EVAL_COMPAT, 0)));
        assert_eq!(
            shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1", true),
            Ok((flags::NO_WRITES | flags::ALLOW_OOM, 31))
        );
        assert!(shebang(b"#!lua", true).is_err());
        assert!(shebang(b"#!python\n", true).is_err());
        assert!(shebang(b"#!lua flags=bogus\n", true).is_err());
        assert!(shebang(b"#!lua name=x\n", true).is_err());
    }

    #[test]
    fn sha1_matches_redis() {
        let sha = Sha::of(b"return 1");
        assert_eq!(sha.as_str(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
        assert_eq!(
            Sha::parse(b"E0E1F9FABFC9D4800C877A703B823AC0578FF8DB"),
            Some(sha)
        );
        assert_eq!(Sha::parse(b"e0e1f9fabfc9d4800c877a703b823ac0578ff8d"), None);
        assert_eq!(
            Sha::parse(b"g0e1f9fabfc9d4800c877a703b823ac0578ff8db"),
            None
        );
    }
}
