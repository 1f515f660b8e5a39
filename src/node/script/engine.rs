//! One sandboxed Lua 5.1 VM: the libraries Redis loads, the `redis` table, read-only
//! globals, and the runner that calls a script under the error handler.
//!
//! The sandbox itself is Lua (`prelude.lua`): every library table is replaced by a read-only
//! proxy, reading a missing global fails ("Script attempted to access nonexistent global
//! variable"), writing any global fails ("Attempt to modify a readonly table"), and `print`,
//! `dofile`, `loadfile`, `debug`, `require` and `package` are gone. `os` and `io` are never
//! loaded.

use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value, Variadic};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::libs;

/// `lrand48`'s initial state (Redis's `X0 X1 X2`).
pub(crate) const RAND48_INIT: u64 = 0x1234_ABCD_330E;

/// Number of instructions between two checks of the time limit and SCRIPT KILL.
pub(crate) const HOOK_EVERY: u32 = 100_000;

/// The size of the collection step after every 50th script, in KB (Redis's
/// `LUA_GC_CYCLE_PERIOD`, which it uses for both).
const GC_STEP_KB: std::ffi::c_int = 50;

/// A sandboxed Lua VM (a cheap handle: clones share the VM).
#[derive(Clone)]
pub(crate) struct Engine {
    pub(crate) lua: Lua,
    /// The globals scripts see (a read-only proxy of `real_globals`).
    pub(crate) env: Table,
    /// The real globals table: KEYS and ARGV are set here for EVAL.
    pub(crate) real_globals: Table,
    /// `run(f, a, b)`: calls `f(a, b)` under the error handler, returns ok, result.
    pub(crate) runner: Function,
    /// Callbacks the prelude's wrappers call (`setresp`, `set_repl`, `register`) and the
    /// `killed` flag of the run.
    pub(crate) hooks: Table,
    /// `readonly(t)`: a read-only view of a table (for function libraries' environments).
    pub(crate) readonly: Function,
    /// `redis.register_function` (for the environment function libraries load in).
    pub(crate) register: Function,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Engine")
    }
}

impl Engine {
    /// A fresh VM with Redis's libraries and the sandbox.
    pub(crate) fn new(rand48: Arc<AtomicU64>) -> mlua::Result<Engine> {
        // The debug library is needed by the error handler; the prelude hides it afterwards.
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH;
        // SAFETY: loading `debug` is what `unsafe_new_with` guards; scripts never see it.
        let lua = unsafe { Lua::unsafe_new_with(libs | StdLib::DEBUG, LuaOptions::default()) };
        let g = lua.globals();
        libs::install(&lua, &g)?;
        install_random(&lua, &g, rand48)?;
        g.raw_set("redis", redis_table(&lua)?)?;
        let (env, runner, hooks, real_globals, readonly, inner, redis): Prelude = lua
            .load(include_str!("prelude.lua"))
            .set_name("=sluice")
            .call(())?;
        let register = install_raising(&lua, &inner, &redis)?;
        install_per_run(&lua, &hooks, &redis)?;
        lua.set_globals(env.clone())?;
        // What loading the prelude left behind goes now: `used_memory_lua` of a fresh VM
        // is its live size, as Redis's is (it collects after loading its libraries).
        lua.gc_collect()?;
        Ok(Engine {
            lua,
            env,
            real_globals,
            runner,
            hooks,
            readonly,
            register,
        })
    }

    /// Compiles `body` as a chunk named `name` (`@user_script`), in the sandbox.
    pub(crate) fn compile(&self, name: &str, body: &[u8]) -> Result<Function, String> {
        self.lua
            .load(body)
            .set_name(name)
            .set_mode(mlua::chunk::ChunkMode::Text)
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| match e {
                mlua::Error::SyntaxError { message, .. } => message,
                other => other.to_string(),
            })
    }

    /// Redis's collection step, taken after every 50th script: `lua_gc(L, LUA_GCSTEP, 50)`,
    /// a step worth 50 KB of allocation. (mlua's `gc_step` asks for a step of 0, a single
    /// basic step, which the garbage of 50 scripts outgrows: the heap then swung between
    /// its live size and Lua's own collection threshold, twice that.)
    pub(crate) fn gc_step(&self) {
        // SAFETY: `lua_gc` only runs the collector on the state `exec_raw` hands us, in
        // protected mode (a finalizer's error is returned, not thrown through Rust).
        let _ = unsafe {
            self.lua.exec_raw::<()>((), |state| {
                mlua::ffi::lua_gc(state, mlua::ffi::LUA_GCSTEP, GC_STEP_KB);
            })
        };
    }

    /// Memory used by the VM in bytes (INFO `used_memory_lua`).
    pub(crate) fn used_memory(&self) -> usize {
        self.lua.used_memory()
    }
}

type Prelude = (Table, Function, Table, Table, Function, Table, Table);

/// Registry keys of the functions behind the raising C wrappers, by wrapper index.
const RAISING: [(&str, &std::ffi::CStr); 5] = [
    ("setresp", c"sluice.setresp"),
    ("set_repl", c"sluice.set_repl"),
    ("log", c"sluice.log"),
    ("sha1hex", c"sluice.sha1hex"),
    ("register", c"sluice.register"),
];

/// A C function calling the function registered under `RAISING[K]` with its arguments; that
/// function returns `(value, raise)`, and the wrapper raises `value` as the error object when
/// `raise` is true (mlua can only raise its own error type from Rust), else returns it.
unsafe extern "C-unwind" fn raising<const K: usize>(
    l: *mut mlua::ffi::lua_State,
) -> std::ffi::c_int {
    use mlua::ffi;
    // SAFETY: called by Lua with a valid state. A C function always has LUA_MINSTACK (20)
    // free slots on entry, so pushing one function needs no lua_checkstack (which would
    // refuse once a script passes thousands of arguments).
    unsafe {
        let n = ffi::lua_gettop(l);
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, RAISING[K].1.as_ptr());
        ffi::lua_insert(l, 1);
        ffi::lua_call(l, n, 2);
        let raise = ffi::lua_toboolean(l, -1) != 0;
        ffi::lua_settop(l, -2);
        if raise {
            ffi::lua_error(l)
        } else {
            1
        }
    }
}

/// Puts the raising wrappers in the `redis` table; returns `register_function`'s, which
/// only function libraries see.
fn install_raising(lua: &Lua, inner: &Table, redis: &Table) -> mlua::Result<Function> {
    let wrappers: [mlua::ffi::lua_CFunction; 5] = [
        raising::<0>,
        raising::<1>,
        raising::<2>,
        raising::<3>,
        raising::<4>,
    ];
    let mut register = None;
    for ((name, key), wrapper) in RAISING.iter().zip(wrappers) {
        let f: Function = inner.raw_get(*name)?;
        let key = key.to_str().map_err(mlua::Error::external)?;
        lua.set_named_registry_value(key, f)?;
        // SAFETY: `raising` only uses the Lua C API on the state it is given.
        let c = unsafe { lua.create_c_function(wrapper)? };
        if *name == "register" {
            register = Some(c);
        } else {
            redis.raw_set(*name, c)?;
        }
    }
    register.ok_or_else(|| mlua::Error::runtime("no register_function"))
}

/// The functions that work with the running script's state (see `rawcall.rs`): installed
/// once, each finds the run through [`rawcall::current`](super::rawcall::current) and
/// refuses outside one.
fn install_per_run(lua: &Lua, hooks: &Table, redis: &Table) -> mlua::Result<()> {
    use super::rawcall;
    // SAFETY: `redis_call` only uses the Lua C API on the state it is given.
    unsafe {
        redis.raw_set("call", lua.create_c_function(rawcall::redis_call::<true>)?)?;
        redis.raw_set(
            "pcall",
            lua.create_c_function(rawcall::redis_call::<false>)?,
        )?;
    }
    let pending = lua.create_function(|lua, ()| rawcall::pending(lua))?;
    let key = rawcall::PENDING.to_str().map_err(mlua::Error::external)?;
    lua.set_named_registry_value(key, pending)?;
    hooks.raw_set("setresp", lua.create_function(rawcall::setresp)?)?;
    hooks.raw_set("set_repl", lua.create_function(rawcall::set_repl)?)?;
    Ok(())
}

/// The `redis` table with the functions that need no per-run state.
fn redis_table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "sha1hex",
        lua.create_function(|lua, args: Variadic<Value>| {
            if args.len() != 1 {
                let e = super::convert::error_table(lua, "wrong number of arguments")?;
                return Ok((Value::Table(e), true));
            }
            let s = match &args[0] {
                Value::String(s) => s.as_bytes().to_vec(),
                Value::Number(n) => super::convert::number_text(*n).into_bytes(),
                Value::Integer(n) => n.to_string().into_bytes(),
                _ => Vec::new(),
            };
            Ok((
                Value::String(lua.create_string(super::Sha::of(&s).as_str())?),
                false,
            ))
        })?,
    )?;
    t.raw_set(
        "error_reply",
        lua.create_function(|lua, args: MultiValue| match single_string(&args) {
            Some(s) => {
                let text = if s.starts_with('-') {
                    s
                } else {
                    format!("-{s}")
                };
                super::convert::error_table(lua, &text)
            }
            None => super::convert::error_table(lua, "wrong number or type of arguments"),
        })?,
    )?;
    t.raw_set(
        "status_reply",
        lua.create_function(|lua, args: MultiValue| match single_string(&args) {
            Some(s) => {
                let t = lua.create_table()?;
                t.raw_set("ok", s)?;
                Ok(t)
            }
            None => super::convert::error_table(lua, "wrong number or type of arguments"),
        })?,
    )?;
    t.raw_set("log", lua.create_function(log)?)?;
    for (name, v) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        t.raw_set(name, v)?;
    }
    t.raw_set("REDIS_VERSION_NUM", 0x0007_000f)?;
    t.raw_set("REDIS_VERSION", "7.0.15")?;
    Ok(t)
}

/// The only argument, if it is exactly one string.
fn single_string(args: &MultiValue) -> Option<String> {
    match args.len() {
        1 => match args.iter().next() {
            Some(Value::String(s)) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
            _ => None,
        },
        _ => None,
    }
}

/// `redis.log(level, ...)`: returns (error table, true) on misuse, for the Lua wrapper to
/// raise.
fn log(lua: &Lua, args: MultiValue) -> mlua::Result<(Value, bool)> {
    let args: Vec<Value> = args.into_iter().collect();
    if args.len() < 2 {
        let e = super::convert::error_table(lua, "redis.log() requires two arguments or more.")?;
        return Ok((Value::Table(e), true));
    }
    let level = match &args[0] {
        Value::Number(n) => *n as i64,
        Value::Integer(n) => *n,
        Value::String(s) => match s.to_str().ok().and_then(|s| s.trim().parse::<f64>().ok()) {
            Some(n) => n as i64,
            None => {
                let e = super::convert::error_table(
                    lua,
                    "First argument must be a number (log level).",
                )?;
                return Ok((Value::Table(e), true));
            }
        },
        _ => {
            let e =
                super::convert::error_table(lua, "First argument must be a number (log level).")?;
            return Ok((Value::Table(e), true));
        }
    };
    if !(0..=3).contains(&level) {
        let e = super::convert::error_table(lua, "Invalid debug level.")?;
        return Ok((Value::Table(e), true));
    }
    let mut text = String::new();
    for (i, a) in args[1..].iter().enumerate() {
        let piece = match a {
            Value::String(s) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
            Value::Number(n) => super::convert::number_text(*n),
            Value::Integer(n) => n.to_string(),
            _ => continue,
        };
        if i > 0 {
            text.push(' ');
        }
        text.push_str(&piece);
    }
    match level {
        3 => tracing::warn!(target: "sluice::script", "{text}"),
        2 => tracing::info!(target: "sluice::script", "{text}"),
        _ => tracing::debug!(target: "sluice::script", "{text}"),
    }
    Ok((Value::Nil, false))
}

/// Redis's `redisLrand48`: the POSIX 48-bit generator, so scripts see the same sequence on
/// every platform.
fn lrand48(state: &AtomicU64) -> i32 {
    let mut x = state.load(Ordering::Relaxed);
    if x == 0 {
        x = RAND48_INIT;
    }
    x = x.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB) & 0xFFFF_FFFF_FFFF;
    state.store(x, Ordering::Relaxed);
    (x >> 17) as i32
}

/// Replaces `math.random` and `math.randomseed` with Redis's.
fn install_random(lua: &Lua, g: &Table, state: Arc<AtomicU64>) -> mlua::Result<()> {
    let math: Table = g.raw_get("math")?;
    let s = state.clone();
    math.raw_set(
        "random",
        lua.create_function(move |_, args: Variadic<Value>| {
            const MAX: f64 = i32::MAX as f64;
            let r = f64::from(lrand48(&s) % i32::MAX) / MAX;
            let int = |v: &Value| match v {
                Value::Number(n) => Ok(*n as i64),
                Value::Integer(n) => Ok(*n),
                Value::String(s) => s
                    .to_str()
                    .ok()
                    .and_then(|t| t.trim().parse::<f64>().ok())
                    .map(|f| f as i64)
                    .ok_or_else(|| {
                        mlua::Error::runtime("bad argument to 'random' (number expected)")
                    }),
                _ => Err(mlua::Error::runtime(
                    "bad argument to 'random' (number expected)",
                )),
            };
            match args.len() {
                0 => Ok(r),
                1 => {
                    let u = int(&args[0])?;
                    if u < 1 {
                        return Err(mlua::Error::runtime(
                            "bad argument #1 to 'random' (interval is empty)",
                        ));
                    }
                    Ok((r * u as f64).floor() + 1.0)
                }
                2 => {
                    let (l, u) = (int(&args[0])?, int(&args[1])?);
                    if l > u {
                        return Err(mlua::Error::runtime(
                            "bad argument #2 to 'random' (interval is empty)",
                        ));
                    }
                    Ok((r * (u - l + 1) as f64).floor() + l as f64)
                }
                _ => Err(mlua::Error::runtime("wrong number of arguments")),
            }
        })?,
    )?;
    math.raw_set(
        "randomseed",
        lua.create_function(move |_, seed: f64| {
            let seed = seed as i64 as i32 as u32 as u64;
            state.store((seed << 16) | 0x330E, Ordering::Relaxed);
            Ok(())
        })?,
    )?;
    Ok(())
}
