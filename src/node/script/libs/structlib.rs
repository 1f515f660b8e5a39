//! `struct` (Roberto Ierusalimschy's library as Redis ships it): `pack`, `unpack` and
//! `size` with formats of `<`, `>`, `!n`, `x`, `b/B`, `h/H`, `i/In`, `l/L`, `T`, `f`, `d`,
//! `cn` and `s`, on a 64-bit little-endian host's sizes.

use mlua::{Lua, MultiValue, Table, Value, Variadic};

use super::{bad_number, number};

const MAX_INT_SIZE: usize = 32;
const MAX_ALIGN: usize = 8;

struct Format<'f> {
    f: &'f [u8],
    pos: usize,
    little: bool,
    align: usize,
}

impl Format<'_> {
    fn num(&mut self, default: usize) -> usize {
        if !self.f.get(self.pos).is_some_and(u8::is_ascii_digit) {
            return default;
        }
        let mut n = 0usize;
        while let Some(d) = self.f.get(self.pos).filter(|c| c.is_ascii_digit()) {
            n = n.saturating_mul(10).saturating_add(usize::from(d - b'0'));
            self.pos += 1;
        }
        n
    }
    /// The size of option `opt` (reading its count, if any).
    fn size(&mut self, opt: u8) -> mlua::Result<usize> {
        Ok(match opt {
            b'B' | b'b' | b'x' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => self.num(1),
            b'i' | b'I' => {
                let n = self.num(4);
                if n > MAX_INT_SIZE {
                    return Err(mlua::Error::runtime(format!(
                        "integral size {n} is larger than limit of {MAX_INT_SIZE}"
                    )));
                }
                n
            }
            _ => 0,
        })
    }
    fn to_align(&self, len: usize, opt: u8, size: usize) -> usize {
        if size == 0 || opt == b'c' {
            return 0;
        }
        let size = size.min(self.align);
        (size - (len & (size - 1))) & (size - 1)
    }
    fn control(&mut self, opt: u8) -> mlua::Result<()> {
        match opt {
            b' ' => {}
            b'>' => self.little = false,
            b'<' | b'=' => self.little = true,
            b'!' => {
                let a = self.num(MAX_ALIGN);
                if !a.is_power_of_two() {
                    return Err(mlua::Error::runtime(format!(
                        "alignment {a} is not a power of 2"
                    )));
                }
                self.align = a;
            }
            _ => {
                return Err(mlua::Error::runtime(format!(
                    "bad argument #1 to 'pack' (invalid format option '{}')",
                    opt as char
                )))
            }
        }
        Ok(())
    }
}

fn format(f: &[u8]) -> Format<'_> {
    Format {
        f,
        pos: 0,
        little: true,
        align: 1,
    }
}

fn put_int(out: &mut Vec<u8>, n: f64, little: bool, size: usize) {
    let mut v = if n < 0.0 { n as i64 as u64 } else { n as u64 };
    let mut bytes = vec![0u8; size];
    for b in bytes.iter_mut() {
        *b = (v & 0xff) as u8;
        v = v.checked_shr(8).unwrap_or(0);
    }
    if !little {
        bytes.reverse();
    }
    out.extend_from_slice(&bytes);
}

fn get_int(data: &[u8], little: bool, signed: bool) -> f64 {
    let mut v: u64 = 0;
    let ordered: Vec<u8> = if little {
        data.iter().rev().copied().collect()
    } else {
        data.to_vec()
    };
    for b in ordered {
        v = (v << 8) | u64::from(b);
    }
    let bits = data.len() * 8;
    if signed && bits > 0 && bits < 64 && v & (1 << (bits - 1)) != 0 {
        v |= u64::MAX << bits;
    }
    if signed {
        v as i64 as f64
    } else {
        v as f64
    }
}

fn pack(args: &Variadic<Value>) -> mlua::Result<Vec<u8>> {
    let Some(Value::String(f)) = args.first() else {
        return Err(mlua::Error::runtime(
            "bad argument #1 to 'pack' (string expected)",
        ));
    };
    let f = f.as_bytes().to_vec();
    let mut fmt = format(&f);
    let mut out = Vec::new();
    let mut arg = 1;
    let num_at = |i: usize| {
        let v = args.get(i).cloned().unwrap_or(Value::Nil);
        number(&v).ok_or_else(|| bad_number(i + 1, "pack", &v))
    };
    while let Some(&opt) = fmt.f.get(fmt.pos) {
        fmt.pos += 1;
        let mut size = fmt.size(opt)?;
        let pad = fmt.to_align(out.len(), opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                put_int(&mut out, num_at(arg)?, fmt.little, size);
                arg += 1;
            }
            b'x' => out.push(0),
            b'f' => {
                let b = (num_at(arg)? as f32).to_bits();
                out.extend_from_slice(&if fmt.little {
                    b.to_le_bytes()
                } else {
                    b.to_be_bytes()
                });
                arg += 1;
            }
            b'd' => {
                let b = num_at(arg)?.to_bits();
                out.extend_from_slice(&if fmt.little {
                    b.to_le_bytes()
                } else {
                    b.to_be_bytes()
                });
                arg += 1;
            }
            b'c' | b's' => {
                let s = match args.get(arg) {
                    Some(v) => super::super::arg_bytes(v),
                    None => None,
                }
                .ok_or_else(|| {
                    mlua::Error::runtime(format!(
                        "bad argument #{} to 'pack' (string expected)",
                        arg + 1
                    ))
                })?;
                arg += 1;
                if size == 0 || opt == b's' {
                    size = s.len();
                }
                if s.len() < size {
                    return Err(mlua::Error::runtime(format!(
                        "bad argument #{arg} to 'pack' (string too short)"
                    )));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            other => fmt.control(other)?,
        }
    }
    Ok(out)
}

fn unpack(lua: &Lua, args: &Variadic<Value>) -> mlua::Result<MultiValue> {
    let (Some(Value::String(f)), Some(Value::String(d))) = (args.first(), args.get(1)) else {
        return Err(mlua::Error::runtime(
            "bad argument #2 to 'unpack' (string expected)",
        ));
    };
    let (f, data) = (f.as_bytes().to_vec(), d.as_bytes().to_vec());
    let start = args.get(2).and_then(number).unwrap_or(1.0) as i64;
    if start < 1 {
        return Err(mlua::Error::runtime(
            "bad argument #3 to 'unpack' (offset must be 1 or greater)",
        ));
    }
    let mut pos = (start - 1) as usize;
    let mut fmt = format(&f);
    let mut out: Vec<Value> = Vec::new();
    let short = || mlua::Error::runtime("bad argument #2 to 'unpack' (data string too short)");
    while let Some(&opt) = fmt.f.get(fmt.pos) {
        fmt.pos += 1;
        let mut size = fmt.size(opt)?;
        pos += fmt.to_align(pos, opt, size);
        if size > data.len() || pos > data.len() - size {
            return Err(short());
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let signed = opt.is_ascii_lowercase();
                out.push(Value::Number(get_int(
                    &data[pos..pos + size],
                    fmt.little,
                    signed,
                )));
            }
            b'x' => {}
            b'f' => {
                let b: [u8; 4] = data[pos..pos + 4].try_into().map_err(|_| short())?;
                let v = if fmt.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                out.push(Value::Number(f64::from(v)));
            }
            b'd' => {
                let b: [u8; 8] = data[pos..pos + 8].try_into().map_err(|_| short())?;
                let v = if fmt.little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                out.push(Value::Number(v));
            }
            b'c' => {
                if size == 0 {
                    let Some(Value::Number(n)) = out.pop() else {
                        return Err(mlua::Error::runtime("format 'c0' needs a previous size"));
                    };
                    size = n as usize;
                    if size > data.len() || pos > data.len() - size {
                        return Err(short());
                    }
                }
                out.push(Value::String(lua.create_string(&data[pos..pos + size])?));
            }
            b's' => {
                let Some(end) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err(mlua::Error::runtime("unfinished string in data"));
                };
                out.push(Value::String(lua.create_string(&data[pos..pos + end])?));
                size = end + 1;
            }
            other => fmt.control(other)?,
        }
        pos += size;
    }
    out.push(Value::Number((pos + 1) as f64));
    Ok(MultiValue::from_vec(out))
}

fn size(args: &Variadic<Value>) -> mlua::Result<f64> {
    let Some(Value::String(f)) = args.first() else {
        return Err(mlua::Error::runtime(
            "bad argument #1 to 'size' (string expected)",
        ));
    };
    let f = f.as_bytes().to_vec();
    let mut fmt = format(&f);
    let mut pos = 0usize;
    while let Some(&opt) = fmt.f.get(fmt.pos) {
        fmt.pos += 1;
        let size = fmt.size(opt)?;
        pos += fmt.to_align(pos, opt, size);
        if opt == b's' {
            return Err(mlua::Error::runtime(
                "bad argument #1 to 'size' (option 's' has no fixed size)",
            ));
        }
        if opt == b'c' && size == 0 {
            return Err(mlua::Error::runtime(
                "bad argument #1 to 'size' (option 'c0' has no fixed size)",
            ));
        }
        if !opt.is_ascii_alphanumeric() {
            fmt.control(opt)?;
        }
        pos += size;
    }
    Ok(pos as f64)
}

/// The `struct` table.
pub(crate) fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, args: Variadic<Value>| lua.create_string(pack(&args)?))?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, args: Variadic<Value>| unpack(lua, &args))?,
    )?;
    t.raw_set(
        "size",
        lua.create_function(|_, args: Variadic<Value>| size(&args))?,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let lua = Lua::new();
        lua.globals().set("struct", module(&lua).unwrap()).unwrap();
        let ok: bool = lua
            .load(
                "local s = struct.pack('>HIc3s', 258, 7, 'abc', 'zz')
                 local a, b, c, d, nxt = struct.unpack('>HIc3s', s)
                 return s:byte(1) == 1 and a == 258 and b == 7 and c == 'abc' and d == 'zz'
                   and nxt == #s + 1 and struct.size('>HI') == 6",
            )
            .eval()
            .unwrap();
        assert!(ok);
    }
}
