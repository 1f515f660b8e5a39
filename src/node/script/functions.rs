//! FUNCTION libraries: loading (`#!lua name=...` code calling `redis.register_function`),
//! the function index FCALL looks names up in, and the DUMP/RESTORE payload.
//!
//! Functions run in their own VM, as in Redis. While a library loads, its code sees only
//! `redis.register_function`, `redis.log` and the version fields; the functions it registers
//! run later with the full sandboxed globals.
//!
//! **DUMP payload.** Not Redis's RDB encoding: `"SLUICE-FUNCTIONS-1\n"`, then per library a
//! u32 length and its code, then an 8-byte FNV-1a checksum of everything before it (all
//! little-endian). It round-trips between sluice nodes only.

use std::cell::RefCell;
use std::collections::HashMap;

use bytes::Bytes;
use indexmap::IndexMap;
use mlua::{Function, Lua, MultiValue, Table, Value};

use super::engine::Engine;
use super::{convert, flags};

const DUMP_MAGIC: &[u8] = b"SLUICE-FUNCTIONS-1\n";

/// One registered function.
#[derive(Debug)]
pub(crate) struct FunctionInfo {
    pub(crate) name: String,
    pub(crate) desc: Option<String>,
    pub(crate) flags: u32,
    pub(crate) func: Function,
}

/// One library.
#[derive(Debug)]
pub(crate) struct Library {
    pub(crate) name: String,
    /// The code as loaded (shebang included).
    pub(crate) code: Bytes,
    pub(crate) functions: IndexMap<String, FunctionInfo>,
}

/// The functions VM: an [`Engine`] plus the environment libraries load in.
#[derive(Clone, Debug)]
pub(crate) struct FnEngine {
    pub(crate) engine: Engine,
    /// The environment of library code and of the functions it defines.
    env: Table,
    /// `loading(on)`: switches `env` between the load-time API and the full globals.
    loading: Function,
}

/// Loaded libraries.
#[derive(Debug, Default)]
pub(crate) struct Functions {
    engine: Option<FnEngine>,
    pub(crate) libraries: IndexMap<String, Library>,
    /// Function name → library name.
    index: HashMap<String, String>,
}

const ENV_LUA: &str = r#"
local G, readonly, register, rlog = ...
local function missing(_, k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end
local redis = G.redis
local api_redis = {register_function = register, log = rlog}
for _, k in ipairs({'LOG_DEBUG', 'LOG_VERBOSE', 'LOG_NOTICE', 'LOG_WARNING', 'REDIS_VERSION', 'REDIS_VERSION_NUM'}) do
  api_redis[k] = redis[k]
end
setmetatable(api_redis, {__index = missing})
local api = {redis = readonly(api_redis)}
setmetatable(api, {__index = missing})
local meta = {__index = G, __newindex = function() error('Attempt to modify a readonly table', 2) end}
local env = setmetatable({}, meta)
return env, function(on) if on then meta.__index = api else meta.__index = G end end
"#;

/// What one `redis.register_function` call registered.
struct Registered {
    name: String,
    desc: Option<String>,
    flags: u32,
    func: Function,
}

impl FnEngine {
    fn new(rand48: std::sync::Arc<std::sync::atomic::AtomicU64>) -> mlua::Result<FnEngine> {
        let engine = Engine::new(rand48)?;
        let lua = &engine.lua;
        let redis: Table = engine.real_globals.raw_get("redis")?;
        let rlog: Value = redis.get("log")?;
        let (env, loading): (Table, Function) = lua
            .load(ENV_LUA)
            .set_name("=sluice")
            .set_environment(engine.real_globals.clone())
            .call((
                engine.real_globals.clone(),
                engine.readonly.clone(),
                engine.register.clone(),
                rlog,
            ))?;
        Ok(FnEngine {
            engine,
            env,
            loading,
        })
    }

    /// Runs a library's code and returns what it registered.
    fn load(&self, code: &[u8]) -> Result<Vec<Registered>, String> {
        let lua = &self.engine.lua;
        let chunk = lua
            .load(code)
            .set_name("@user_function")
            .set_mode(mlua::chunk::ChunkMode::Text)
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| match e {
                mlua::Error::SyntaxError { message, .. } => {
                    format!("ERR Error compiling function: {message}")
                }
                other => format!("ERR Error compiling function: {other}"),
            })?;
        let found = RefCell::new(Vec::new());
        let started = std::time::Instant::now();
        let _ = lua.set_hook(
            mlua::HookTriggers::new().every_nth_instruction(super::engine::HOOK_EVERY),
            move |_, _| {
                if started.elapsed() > std::time::Duration::from_millis(500) {
                    return Err(mlua::Error::runtime("FUNCTION LOAD timeout"));
                }
                Ok(mlua::VmState::Continue)
            },
        );
        let _ = self.loading.call::<()>(true);
        let result = lua.scope(|scope| {
            self.engine.hooks.raw_set(
                "register",
                scope.create_function(|lua, args: MultiValue| register(lua, &found, args))?,
            )?;
            self.engine
                .runner
                .call::<(bool, Value)>((chunk, Value::Nil, Value::Nil))
        });
        let _ = self.loading.call::<()>(false);
        lua.remove_hook();
        // A function keeping `redis.register_function` must not reach the finished scope.
        if let Ok(outside) = lua
            .load("return {err = 'ERR redis.register_function can only be called on FUNCTION LOAD command'}, true")
            .set_name("=sluice")
            .into_function()
        {
            let _ = self.engine.hooks.raw_set("register", outside);
        }
        match result {
            Ok((true, _)) => Ok(found.into_inner()),
            Ok((false, Value::Table(t))) => {
                let msg = match t.raw_get::<Value>("err") {
                    Ok(Value::String(s)) => s.to_string_lossy(),
                    _ => "ERR unknown error".into(),
                };
                Err(format!("ERR Error registering functions: {msg}"))
            }
            Ok((false, _)) => Err("ERR Error registering functions: ERR unknown error".into()),
            Err(e) => Err(format!("ERR Error registering functions: {e}")),
        }
    }
}

/// `redis.register_function(name, f)` / `redis.register_function{...}`: (error, raise?).
fn register(
    lua: &Lua,
    found: &RefCell<Vec<Registered>>,
    args: MultiValue,
) -> mlua::Result<(Value, bool)> {
    let fail = |text: &str| -> mlua::Result<(Value, bool)> {
        Ok((Value::Table(convert::error_table(lua, text)?), true))
    };
    let args: Vec<Value> = args.into_iter().collect();
    let reg = match args.as_slice() {
        [Value::Table(t)] => match named_args(t) {
            Ok(r) => r,
            Err(e) => return fail(e),
        },
        [_] => return fail("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments)."),
        [name, f] => {
            let Some(name) = super::arg_bytes(name) else {
                return fail("first argument to redis.register_function must be a string");
            };
            let Value::Function(f) = f else {
                return fail("second argument to redis.register_function must be a function");
            };
            Registered {
                name: String::from_utf8_lossy(&name).into_owned(),
                desc: None,
                flags: 0,
                func: f.clone(),
            }
        }
        _ => return fail("wrong number of arguments to redis.register_function"),
    };
    if !valid_name(&reg.name) {
        return fail("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long");
    }
    let mut found = found.borrow_mut();
    if found.iter().any(|r| r.name.eq_ignore_ascii_case(&reg.name)) {
        return fail("Function already exists in the library");
    }
    found.push(reg);
    Ok((Value::Nil, false))
}

fn named_args(t: &Table) -> Result<Registered, &'static str> {
    let (mut name, mut desc, mut func, mut fl) = (None, None, None, 0);
    for pair in t.pairs::<Value, Value>() {
        let Ok((k, v)) = pair else {
            return Err("named argument key given to redis.register_function is not a string");
        };
        let Some(k) = super::arg_bytes(&k) else {
            return Err("named argument key given to redis.register_function is not a string");
        };
        match String::from_utf8_lossy(&k).to_ascii_lowercase().as_str() {
            "function_name" => {
                match super::arg_bytes(&v) {
                    Some(n) => name = Some(String::from_utf8_lossy(&n).into_owned()),
                    None => return Err(
                        "function_name argument given to redis.register_function must be a string",
                    ),
                }
            }
            "description" => {
                match super::arg_bytes(&v) {
                    Some(d) => desc = Some(String::from_utf8_lossy(&d).into_owned()),
                    None => return Err(
                        "description argument given to redis.register_function must be a string",
                    ),
                }
            }
            "callback" => match v {
                Value::Function(f) => func = Some(f),
                _ => {
                    return Err(
                        "callback argument given to redis.register_function must be a function",
                    )
                }
            },
            "flags" => {
                let Value::Table(list) = v else {
                    return Err("flags argument to redis.register_function must be a table representing function flags");
                };
                fl = read_flags(&list).ok_or("unknown flag given")?;
            }
            _ => return Err("unknown argument given to redis.register_function"),
        }
    }
    let name = name.ok_or("redis.register_function must get a function name argument")?;
    let func = func.ok_or("redis.register_function must get a callback argument")?;
    Ok(Registered {
        name,
        desc,
        flags: fl,
        func,
    })
}

fn read_flags(list: &Table) -> Option<u32> {
    let mut out = 0;
    for i in 1.. {
        match list.raw_get::<Value>(i).ok()? {
            Value::Nil => break,
            v => {
                let name = super::arg_bytes(&v)?;
                let name = String::from_utf8_lossy(&name).to_ascii_lowercase();
                out |= flags::NAMES.iter().find(|(_, n)| *n == name)?.0;
            }
        }
    }
    Some(out)
}

/// Letters, digits and underscores, at least one.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Parses `#!<engine> name=<lib>` and returns (engine, library name, code after the
/// shebang line, newline included).
fn metadata(code: &[u8]) -> Result<(String, String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid library metadata".into());
    };
    let line = String::from_utf8_lossy(&code[..end]).into_owned();
    let words = super::split_args(&line).ok_or("ERR Invalid library metadata")?;
    let mut parts = words.iter().map(String::as_str);
    let engine = parts
        .next()
        .unwrap_or("#!")
        .get(2..)
        .unwrap_or("")
        .to_string();
    let mut name = None;
    for part in parts {
        match part.get(..5) {
            Some(p) if p.eq_ignore_ascii_case("name=") => {
                if name.is_some() {
                    return Err(
                        "ERR Invalid metadata value, name argument was given multiple times".into(),
                    );
                }
                name = Some(part[5..].to_string());
            }
            _ => return Err(format!("ERR Invalid metadata value given: {part}")),
        }
    }
    let name = name.ok_or("ERR Library name was not given")?;
    Ok((engine, name, end))
}

impl Functions {
    fn engine(
        &mut self,
        rand48: &std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<FnEngine, String> {
        if self.engine.is_none() {
            self.engine = Some(FnEngine::new(rand48.clone()).map_err(|e| format!("ERR {e}"))?);
        }
        self.engine.clone().ok_or_else(|| "ERR no Lua VM".into())
    }

    /// FUNCTION LOAD [REPLACE]: returns the library's name.
    pub(crate) fn load(
        &mut self,
        code: &[u8],
        replace: bool,
        rand48: &std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<String, String> {
        let (engine_name, name, skip) = metadata(code)?;
        if !valid_name(&name) {
            return Err("ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
        }
        if !engine_name.eq_ignore_ascii_case("lua") {
            return Err(format!("ERR Engine '{engine_name}' not found"));
        }
        if self.libraries.contains_key(&name) && !replace {
            return Err(format!("ERR Library '{name}' already exists"));
        }
        let engine = self.engine(rand48)?;
        let registered = engine.load(&code[skip..])?;
        if registered.is_empty() {
            return Err("ERR No functions registered".into());
        }
        for r in &registered {
            let lower = r.name.to_ascii_lowercase();
            if self.index.get(&lower).is_some_and(|lib| *lib != name) {
                return Err(format!("ERR Function {} already exists", r.name));
            }
        }
        self.delete(&name);
        let mut lib = Library {
            name: name.clone(),
            code: Bytes::copy_from_slice(code),
            functions: IndexMap::new(),
        };
        for r in registered {
            self.index.insert(r.name.to_ascii_lowercase(), name.clone());
            lib.functions.insert(
                r.name.clone(),
                FunctionInfo {
                    name: r.name,
                    desc: r.desc,
                    flags: r.flags,
                    func: r.func,
                },
            );
        }
        self.libraries.insert(name.clone(), lib);
        Ok(name)
    }

    /// FUNCTION DELETE: true if the library existed.
    pub(crate) fn delete(&mut self, name: &str) -> bool {
        match self.libraries.shift_remove(name) {
            Some(lib) => {
                for f in lib.functions.keys() {
                    self.index.remove(&f.to_ascii_lowercase());
                }
                true
            }
            None => false,
        }
    }

    /// FUNCTION FLUSH: no libraries, a fresh VM.
    pub(crate) fn flush(&mut self) {
        self.libraries.clear();
        self.index.clear();
        self.engine = None;
    }

    /// The function called `name` (any case): (engine, function, flags).
    pub(crate) fn find(&self, name: &str) -> Option<(Engine, Function, u32)> {
        let lower = name.to_ascii_lowercase();
        let lib = self.libraries.get(self.index.get(&lower)?)?;
        let f = lib
            .functions
            .values()
            .find(|f| f.name.eq_ignore_ascii_case(name))?;
        let engine = self.engine.as_ref()?.engine.clone();
        Some((engine, f.func.clone(), f.flags))
    }

    /// Memory of the functions VM.
    pub(crate) fn memory(&self) -> usize {
        self.engine
            .as_ref()
            .map_or(32 * 1024, |e| e.engine.used_memory())
    }

    /// Number of functions.
    pub(crate) fn function_count(&self) -> usize {
        self.index.len()
    }

    /// Every library's code, in load order (snapshots, AOF rewrite, DUMP).
    pub fn codes(&self) -> Vec<Bytes> {
        self.libraries.values().map(|l| l.code.clone()).collect()
    }

    /// FUNCTION DUMP's payload.
    pub(crate) fn dump(&self) -> Vec<u8> {
        let mut out = DUMP_MAGIC.to_vec();
        for code in self.codes() {
            out.extend_from_slice(&(code.len() as u32).to_le_bytes());
            out.extend_from_slice(&code);
        }
        let sum = fnv1a(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }
}

/// Splits a DUMP payload into library codes; `None` if it is not a valid payload.
pub(crate) fn parse_dump(data: &[u8]) -> Option<Vec<Bytes>> {
    let body_len = data.len().checked_sub(8)?;
    let (body, sum) = data.split_at(body_len);
    if !body.starts_with(DUMP_MAGIC) || fnv1a(body).to_le_bytes() != sum {
        return None;
    }
    let mut rest = &body[DUMP_MAGIC.len()..];
    let mut codes = Vec::new();
    while !rest.is_empty() {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        codes.push(Bytes::copy_from_slice(rest.get(4..4 + len)?));
        rest = &rest[4 + len..];
    }
    Some(codes)
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_follows_redis() {
        assert_eq!(
            metadata(b"#!lua name=lib\nreturn 1"),
            Ok(("lua".into(), "lib".into(), 14))
        );
        assert!(metadata(b"return 1").is_err());
        assert!(metadata(b"#!lua\n").is_err());
        assert!(metadata(b"#!lua name=a name=b\n").is_err());
        assert!(metadata(b"#!lua foo=a\n").is_err());
    }

    #[test]
    fn dump_round_trips_and_rejects_corruption() {
        let rand = std::sync::Arc::default();
        let mut f = Functions::default();
        let code = b"#!lua name=lib\nredis.register_function('f', function() return 1 end)";
        assert_eq!(f.load(code, false, &rand), Ok("lib".into()));
        assert!(f.load(code, false, &rand).is_err());
        let payload = f.dump();
        assert_eq!(parse_dump(&payload), Some(vec![Bytes::from_static(code)]));
        let mut bad = payload.clone();
        bad[20] ^= 1;
        assert_eq!(parse_dump(&bad), None);
        assert!(f.find("f").is_some());
        assert!(f.delete("lib"));
        assert!(f.find("f").is_none());
    }
}
