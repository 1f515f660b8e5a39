//! `cmsgpack` (lua-cmsgpack as Redis ships it): `pack`, `unpack`, `unpack_one`,
//! `unpack_limit`. Integral numbers pack as the smallest integer encoding, others as a
//! float when a float holds them exactly, else a double; a table whose keys are exactly
//! 1..n packs as an array, any other as a map; tables nested deeper than 16 pack as nil
//! (so circular references terminate), as lua-cmsgpack does.

use mlua::{Lua, MultiValue, Table, Value, Variadic};

/// lua-cmsgpack's `LUACMSGPACK_MAX_NESTING`.
const MAX_NESTING: usize = 16;

/// The `cmsgpack` table.
pub(crate) fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, args: Variadic<Value>| {
            if args.is_empty() {
                return Err(mlua::Error::runtime("MessagePack pack needs input."));
            }
            let mut out = Vec::new();
            for a in args.iter() {
                pack(a, 0, &mut out)?;
            }
            lua.create_string(out)
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, s: mlua::LuaString| {
            let data = s.as_bytes().to_vec();
            let mut d = Unpacker {
                lua,
                s: &data,
                pos: 0,
            };
            let mut out = Vec::new();
            while d.pos < data.len() {
                out.push(d.value()?);
            }
            Ok(MultiValue::from_vec(out))
        })?,
    )?;
    t.raw_set(
        "unpack_one",
        lua.create_function(|lua, (s, offset): (mlua::LuaString, Option<i64>)| {
            unpack_limited(lua, &s.as_bytes(), 1, offset.unwrap_or(0))
        })?,
    )?;
    t.raw_set(
        "unpack_limit",
        lua.create_function(
            |lua, (s, limit, offset): (mlua::LuaString, i64, Option<i64>)| {
                unpack_limited(lua, &s.as_bytes(), limit, offset.unwrap_or(0))
            },
        )?,
    )?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    Ok(t)
}

/// Decodes up to `limit` objects (0 = all) from `offset`: returns the offset after them
/// (-1 at the end of the input) followed by the objects.
fn unpack_limited(lua: &Lua, data: &[u8], limit: i64, offset: i64) -> mlua::Result<MultiValue> {
    let start = usize::try_from(offset)
        .ok()
        .filter(|&o| o <= data.len())
        .ok_or_else(|| mlua::Error::runtime("Start offset greater than input length"))?;
    let mut d = Unpacker {
        lua,
        s: data,
        pos: start,
    };
    let mut out = vec![Value::Nil];
    let mut n = 0;
    while d.pos < data.len() && (limit <= 0 || n < limit) {
        out.push(d.value()?);
        n += 1;
    }
    out[0] = Value::Number(if d.pos >= data.len() {
        -1.0
    } else {
        d.pos as f64
    });
    Ok(MultiValue::from_vec(out))
}

fn pack_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        match n {
            0..=127 => out.push(n as u8),
            128..=0xff => out.extend_from_slice(&[0xcc, n as u8]),
            0x100..=0xffff => {
                out.push(0xcd);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(0xce);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            _ => {
                out.push(0xcf);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn pack_number(n: f64, out: &mut Vec<u8>) {
    if n.is_finite() && (n as i64) as f64 == n {
        pack_int(n as i64, out);
    } else if f64::from(n as f32) == n || n.is_nan() {
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn pack_len(out: &mut Vec<u8>, n: usize, fix: (u8, usize), m16: u8, m32: u8) {
    if n <= fix.1 {
        out.push(fix.0 | n as u8);
    } else if n <= 0xffff {
        out.push(m16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(m32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn pack(v: &Value, level: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match v {
        Value::String(s) => {
            let b = s.as_bytes();
            let n = b.len();
            if n < 32 {
                out.push(0xa0 | n as u8);
            } else if n <= 0xff {
                out.extend_from_slice(&[0xd9, n as u8]);
            } else if n <= 0xffff {
                out.push(0xda);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            out.extend_from_slice(&b);
        }
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Number(n) => pack_number(*n, out),
        Value::Integer(n) => pack_int(*n, out),
        Value::Table(t) if level < MAX_NESTING => {
            let mut count = 0usize;
            let mut max = 0f64;
            let mut array = true;
            for pair in t.clone().pairs::<Value, Value>() {
                let (k, _) = pair?;
                match k {
                    Value::Number(n) if n > 0.0 && n.floor() == n => max = max.max(n),
                    Value::Integer(n) if n > 0 => max = max.max(n as f64),
                    _ => array = false,
                }
                count += 1;
            }
            if array && max as usize == count {
                pack_len(out, count, (0x90, 15), 0xdc, 0xdd);
                for i in 1..=count {
                    pack(&t.raw_get::<Value>(i)?, level + 1, out)?;
                }
            } else {
                pack_len(out, count, (0x80, 15), 0xde, 0xdf);
                for pair in t.clone().pairs::<Value, Value>() {
                    let (k, val) = pair?;
                    pack(&k, level + 1, out)?;
                    pack(&val, level + 1, out)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

struct Unpacker<'l, 's> {
    lua: &'l Lua,
    s: &'s [u8],
    pos: usize,
}

impl Unpacker<'_, '_> {
    fn take(&mut self, n: usize) -> mlua::Result<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.s.len())
            .ok_or_else(|| mlua::Error::runtime("Missing bytes in input."))?;
        let out = &self.s[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn be(&mut self, n: usize) -> mlua::Result<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |a, &b| (a << 8) | u64::from(b)))
    }
    fn str(&mut self, n: usize) -> mlua::Result<Value> {
        let b = self.take(n)?.to_vec();
        Ok(Value::String(self.lua.create_string(b)?))
    }
    fn array(&mut self, n: usize) -> mlua::Result<Value> {
        let t = self.lua.create_table()?;
        for i in 1..=n {
            let v = self.value()?;
            t.raw_set(i, v)?;
        }
        Ok(Value::Table(t))
    }
    fn map(&mut self, n: usize) -> mlua::Result<Value> {
        let t = self.lua.create_table()?;
        for _ in 0..n {
            let k = self.value()?;
            let v = self.value()?;
            if !matches!(k, Value::Nil) {
                t.raw_set(k, v)?;
            }
        }
        Ok(Value::Table(t))
    }
    fn value(&mut self) -> mlua::Result<Value> {
        let m = self.take(1)?[0];
        let num = |n: f64| Ok(Value::Number(n));
        match m {
            0x00..=0x7f => num(f64::from(m)),
            0x80..=0x8f => self.map(usize::from(m & 0x0f)),
            0x90..=0x9f => self.array(usize::from(m & 0x0f)),
            0xa0..=0xbf => self.str(usize::from(m & 0x1f)),
            0xc0 => Ok(Value::Nil),
            0xc2 => Ok(Value::Boolean(false)),
            0xc3 => Ok(Value::Boolean(true)),
            0xc4 | 0xd9 => {
                let n = self.be(1)? as usize;
                self.str(n)
            }
            0xc5 | 0xda => {
                let n = self.be(2)? as usize;
                self.str(n)
            }
            0xc6 | 0xdb => {
                let n = self.be(4)? as usize;
                self.str(n)
            }
            0xca => num(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => num(f64::from_bits(self.be(8)?)),
            0xcc => num(self.be(1)? as f64),
            0xcd => num(self.be(2)? as f64),
            0xce => num(self.be(4)? as f64),
            0xcf => num(self.be(8)? as f64),
            0xd0 => num(f64::from(self.be(1)? as u8 as i8)),
            0xd1 => num(f64::from(self.be(2)? as u16 as i16)),
            0xd2 => num(f64::from(self.be(4)? as u32 as i32)),
            0xd3 => num(self.be(8)? as i64 as f64),
            0xdc => {
                let n = self.be(2)? as usize;
                self.array(n)
            }
            0xdd => {
                let n = self.be(4)? as usize;
                self.array(n)
            }
            0xde => {
                let n = self.be(2)? as usize;
                self.map(n)
            }
            0xdf => {
                let n = self.be(4)? as usize;
                self.map(n)
            }
            0xe0..=0xff => num(f64::from(m as i8)),
            _ => Err(mlua::Error::runtime("Bad data format in input.")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(lua: &Lua, expr: &str) -> String {
        let s: mlua::LuaString = lua
            .load(format!("return cmsgpack.pack({expr})"))
            .eval()
            .unwrap();
        s.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn packs_like_lua_cmsgpack() {
        let lua = Lua::new();
        lua.globals()
            .set("cmsgpack", module(&lua).unwrap())
            .unwrap();
        assert_eq!(hex(&lua, "0.1"), "cb3fb999999999999a");
        assert_eq!(hex(&lua, "-1099511627776"), "d3ffffff0000000000");
        assert_eq!(hex(&lua, "{1, 2}"), "920102");
        assert_eq!(hex(&lua, "1.5"), "ca3fc00000");
        let ok: bool = lua
            .load("local t = cmsgpack.unpack(cmsgpack.pack({a = {1, 'x'}})) return t.a[2] == 'x'")
            .eval()
            .unwrap();
        assert!(ok);
    }
}
