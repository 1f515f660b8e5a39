//! LuaBitOp (`bit.*`): 32-bit operations on Lua numbers, results as signed 32-bit numbers.

use mlua::{Lua, Table, Value, Variadic};

use super::{bad_number, number};

/// LuaBitOp's conversion: the low 32 bits of the number rounded to an integer (adding
/// 2^52 + 2^51 puts the integer part in the low bits of the mantissa).
fn tobit(n: f64) -> i32 {
    (n + 6_755_399_441_055_744.0).to_bits() as u32 as i32
}

fn arg(args: &Variadic<Value>, i: usize, name: &str) -> mlua::Result<i32> {
    let v = args.get(i).cloned().unwrap_or(Value::Nil);
    number(&v)
        .map(tobit)
        .ok_or_else(|| bad_number(i + 1, name, &v))
}

/// Registers a function folding every argument with `op` (band, bor, bxor).
fn fold(lua: &Lua, t: &Table, name: &'static str, op: fn(i32, i32) -> i32) -> mlua::Result<()> {
    t.raw_set(
        name,
        lua.create_function(move |_, args: Variadic<Value>| {
            let mut acc = arg(&args, 0, name)?;
            for i in 1..args.len() {
                acc = op(acc, arg(&args, i, name)?);
            }
            Ok(f64::from(acc))
        })?,
    )
}

/// Registers a shift/rotate taking (x, n).
fn shift(lua: &Lua, t: &Table, name: &'static str, op: fn(i32, u32) -> i32) -> mlua::Result<()> {
    t.raw_set(
        name,
        lua.create_function(move |_, args: Variadic<Value>| {
            let x = arg(&args, 0, name)?;
            let n = arg(&args, 1, name)? as u32 & 31;
            Ok(f64::from(op(x, n)))
        })?,
    )
}

/// The `bit` table.
pub(crate) fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "tobit",
        lua.create_function(|_, args: Variadic<Value>| Ok(f64::from(arg(&args, 0, "tobit")?)))?,
    )?;
    t.raw_set(
        "bnot",
        lua.create_function(|_, args: Variadic<Value>| Ok(f64::from(!arg(&args, 0, "bnot")?)))?,
    )?;
    t.raw_set(
        "bswap",
        lua.create_function(|_, args: Variadic<Value>| {
            Ok(f64::from(arg(&args, 0, "bswap")?.swap_bytes()))
        })?,
    )?;
    t.raw_set(
        "tohex",
        lua.create_function(|lua, args: Variadic<Value>| {
            let x = arg(&args, 0, "tohex")? as u32;
            let mut n = if args.len() > 1 {
                arg(&args, 1, "tohex")?
            } else {
                8
            };
            let upper = n < 0;
            if upper {
                n = n.saturating_neg();
            }
            let n = n.clamp(1, 8) as usize;
            let masked = if n == 8 {
                x
            } else {
                x & ((1u32 << (4 * n)) - 1)
            };
            let s = if upper {
                format!("{masked:0n$X}")
            } else {
                format!("{masked:0n$x}")
            };
            lua.create_string(s)
        })?,
    )?;
    fold(lua, &t, "band", |a, b| a & b)?;
    fold(lua, &t, "bor", |a, b| a | b)?;
    fold(lua, &t, "bxor", |a, b| a ^ b)?;
    shift(lua, &t, "lshift", |x, n| ((x as u32) << n) as i32)?;
    shift(lua, &t, "rshift", |x, n| ((x as u32) >> n) as i32)?;
    shift(lua, &t, "arshift", |x, n| x >> n)?;
    shift(lua, &t, "rol", |x, n| (x as u32).rotate_left(n) as i32)?;
    shift(lua, &t, "ror", |x, n| (x as u32).rotate_right(n) as i32)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tobit_wraps_and_rounds_like_luabitop() {
        assert_eq!(tobit(0xffff_ffffu32 as f64), -1);
        assert_eq!(tobit(4_294_967_296.0 + 5.0), 5);
        assert_eq!(tobit(-1.0), -1);
        assert_eq!(tobit(1.5), 2);
    }

    #[test]
    fn operations() {
        let lua = Lua::new();
        lua.globals().set("bit", module(&lua).unwrap()).unwrap();
        let eval = |s: &str| lua.load(s).eval::<mlua::Value>().unwrap();
        assert_eq!(eval("return bit.band(0xff, 0x0f)"), Value::Number(15.0));
        assert_eq!(
            eval("return bit.lshift(1, 31)"),
            Value::Number(-2147483648.0)
        );
        assert_eq!(
            eval("return bit.tohex(255, 4)").to_string().unwrap(),
            "00ff"
        );
        assert_eq!(eval("return bit.tohex(-1, -2)").to_string().unwrap(), "FF");
    }
}
