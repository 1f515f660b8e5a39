//! The libraries Redis loads into its Lua VM besides Lua's own: `bit` (LuaBitOp), `cjson`,
//! `cmsgpack` and `struct`, written in Rust with Redis's formatting and edge cases.

mod bit;
mod cjson;
mod cmsgpack;
mod structlib;

use mlua::{Lua, Table};

/// Installs every library as a global table of `g`.
pub(crate) fn install(lua: &Lua, g: &Table) -> mlua::Result<()> {
    g.raw_set("bit", bit::module(lua)?)?;
    g.raw_set("cjson", cjson::module(lua)?)?;
    g.raw_set("cmsgpack", cmsgpack::module(lua)?)?;
    g.raw_set("struct", structlib::module(lua)?)?;
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

/// C's `%.{prec}g`.
pub(crate) fn format_g(d: f64, prec: usize) -> String {
    if d.is_nan() {
        return if d.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if d.is_infinite() {
        return if d < 0.0 { "-inf" } else { "inf" }.into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let p = prec.max(1);
    let sci = format!("{:.*e}", p - 1, d);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let strip = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exp < -4 || exp >= p as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", strip(mantissa), exp.unsigned_abs());
    }
    let decimals = usize::try_from(p as i32 - 1 - exp).unwrap_or(0);
    strip(&format!("{d:.decimals$}"))
}

#[cfg(test)]
mod tests {
    use super::format_g;

    #[test]
    fn g_format_matches_c() {
        assert_eq!(format_g(0.1, 14), "0.1");
        assert_eq!(format_g(100.0, 14), "100");
        assert_eq!(format_g(1e20, 14), "1e+20");
        assert_eq!(format_g(1.0 / 3.0, 14), "0.33333333333333");
        assert_eq!(format_g(0.0001, 14), "0.0001");
        assert_eq!(format_g(0.00001, 14), "1e-05");
        assert_eq!(format_g(123456.0, 3), "1.23e+05");
    }
}
