//! The libraries Redis loads into its Lua VM besides Lua's own: `bit` (LuaBitOp), `cjson`,
//! `cmsgpack` and `struct`, written in Rust with Redis's formatting and edge cases.

mod bit;

use mlua::{Lua, Table};

/// Installs every library as a global table of `g`.
pub(crate) fn install(lua: &Lua, g: &Table) -> mlua::Result<()> {
    g.raw_set("bit", bit::module(lua)?)?;
    Ok(())
}

/// A Lua number argument (numbers and numeric strings, as `luaL_checknumber`).
pub(crate) fn number(v: &mlua::Value) -> Option<f64> {
    match v {
        mlua::Value::Number(n) => Some(*n),
        mlua::Value::Integer(n) => Some(*n as f64),
        mlua::Value::String(s) => {
            let t = s.to_str().ok()?;
            let t = t.trim();
            if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                return u64::from_str_radix(hex, 16).ok().map(|n| n as f64);
            }
            t.parse::<f64>().ok()
        }
        _ => None,
    }
}

/// `bad argument #n to 'name' (number expected, got x)`, as `luaL_checknumber` says it.
pub(crate) fn bad_number(n: usize, name: &str, v: &mlua::Value) -> mlua::Error {
    mlua::Error::runtime(format!(
        "bad argument #{n} to '{name}' (number expected, got {})",
        type_name(v)
    ))
}

/// Lua's name for a value's type.
pub(crate) fn type_name(v: &mlua::Value) -> &'static str {
    match v {
        mlua::Value::Nil => "no value",
        mlua::Value::Boolean(_) => "boolean",
        mlua::Value::Number(_) | mlua::Value::Integer(_) => "number",
        mlua::Value::String(_) => "string",
        mlua::Value::Table(_) => "table",
        mlua::Value::Function(_) => "function",
        mlua::Value::Thread(_) => "thread",
        _ => "userdata",
    }
}
