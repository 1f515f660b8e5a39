//! `cjson` (lua-cjson 2.1.0 as Redis ships it): `encode`, `decode`, `null` and the
//! configuration functions, with its number format (`%.14g`), its escapes (`/` and DEL
//! included), its sparse-array rule and its error messages.

use std::sync::{Arc, Mutex};

use mlua::{LightUserData, Lua, Table, Value, Variadic};

use super::format_g;

/// lua-cjson's settings (per VM).
#[derive(Debug, Clone)]
struct Config {
    sparse_convert: bool,
    sparse_ratio: i64,
    sparse_safe: i64,
    encode_max_depth: i64,
    decode_max_depth: i64,
    /// 0: refuse NaN/Inf, 1: write them (`nan`, `inf`), 2: write `null`.
    encode_invalid: u8,
    keep_buffer: bool,
    precision: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid: 0,
            keep_buffer: true,
            precision: 14,
        }
    }
}

type Shared = Arc<Mutex<Config>>;

fn cfg(c: &Shared) -> Config {
    c.lock().map(|g| g.clone()).unwrap_or_default()
}

fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// The `cjson` table.
pub(crate) fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let config: Shared = Arc::default();
    let c = config.clone();
    t.raw_set(
        "encode",
        lua.create_function(move |lua, args: Variadic<Value>| {
            if args.len() != 1 {
                return Err(mlua::Error::runtime(
                    "bad argument #1 to 'encode' (expected 1 argument)",
                ));
            }
            let mut out = Vec::new();
            encode(&cfg(&c), &args[0], 0, &mut out)?;
            lua.create_string(out)
        })?,
    )?;
    let c = config.clone();
    t.raw_set(
        "decode",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let Some(Value::String(s)) = args.first() else {
                return Err(mlua::Error::runtime(
                    "bad argument #1 to 'decode' (string expected)",
                ));
            };
            let bytes = s.as_bytes().to_vec();
            if bytes.len() >= 2 && (bytes[0] == 0 || bytes[1] == 0) {
                return Err(mlua::Error::runtime(
                    "JSON parser does not support UTF-16 or UTF-32",
                ));
            }
            let mut p = Decoder {
                lua,
                s: &bytes,
                pos: 0,
                max_depth: cfg(&c).decode_max_depth,
            };
            let v = p.value(0)?;
            p.ws();
            if p.pos < bytes.len() {
                return Err(p.expected("the end"));
            }
            Ok(v)
        })?,
    )?;
    t.raw_set("null", null())?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    settings(lua, &t, &config)?;
    Ok(t)
}

fn num_arg(args: &Variadic<Value>, i: usize) -> Option<i64> {
    args.get(i).and_then(super::number).map(|n| n as i64)
}

/// The configuration functions: each sets when given arguments and returns the setting.
fn settings(lua: &Lua, t: &Table, config: &Shared) -> mlua::Result<()> {
    let c = config.clone();
    t.raw_set(
        "encode_sparse_array",
        lua.create_function(move |_, args: Variadic<Value>| {
            let mut g = c.lock().map_err(|_| mlua::Error::runtime("cjson config"))?;
            if let Some(Value::Boolean(b)) = args.first() {
                g.sparse_convert = *b;
            }
            if let Some(n) = num_arg(&args, 1) {
                g.sparse_ratio = n;
            }
            if let Some(n) = num_arg(&args, 2) {
                g.sparse_safe = n;
            }
            Ok((g.sparse_convert, g.sparse_ratio, g.sparse_safe))
        })?,
    )?;
    let int_setting = |name: &'static str, get: fn(&mut Config) -> &mut i64, lo: i64, hi: i64| {
        let c = config.clone();
        lua.create_function(move |_, args: Variadic<Value>| {
            let mut g = c.lock().map_err(|_| mlua::Error::runtime("cjson config"))?;
            if let Some(n) = num_arg(&args, 0) {
                if n < lo || n > hi {
                    return Err(mlua::Error::runtime(format!(
                        "bad argument #1 to '{name}' (expected integer between {lo} and {hi})"
                    )));
                }
                *get(&mut g) = n;
            }
            Ok(*get(&mut g))
        })
    };
    t.raw_set(
        "encode_max_depth",
        int_setting(
            "encode_max_depth",
            |c| &mut c.encode_max_depth,
            1,
            i64::from(i32::MAX),
        )?,
    )?;
    t.raw_set(
        "decode_max_depth",
        int_setting(
            "decode_max_depth",
            |c| &mut c.decode_max_depth,
            1,
            i64::from(i32::MAX),
        )?,
    )?;
    let c = config.clone();
    t.raw_set(
        "encode_number_precision",
        lua.create_function(move |_, args: Variadic<Value>| {
            let mut g = c.lock().map_err(|_| mlua::Error::runtime("cjson config"))?;
            if let Some(n) = num_arg(&args, 0) {
                if !(1..=14).contains(&n) {
                    return Err(mlua::Error::runtime(
                        "bad argument #1 to 'encode_number_precision' (expected integer between 1 and 14)",
                    ));
                }
                g.precision = n as usize;
            }
            Ok(g.precision as i64)
        })?,
    )?;
    settings_more(lua, t, config)
}

/// `encode_keep_buffer`, `encode_invalid_numbers` and `decode_invalid_numbers`.
fn settings_more(lua: &Lua, t: &Table, config: &Shared) -> mlua::Result<()> {
    let c = config.clone();
    t.raw_set(
        "encode_keep_buffer",
        lua.create_function(move |_, args: Variadic<Value>| {
            let mut g = c.lock().map_err(|_| mlua::Error::runtime("cjson config"))?;
            if let Some(v) = args.first() {
                g.keep_buffer = !matches!(v, Value::Boolean(false) | Value::Nil);
            }
            Ok(g.keep_buffer)
        })?,
    )?;
    let c = config.clone();
    t.raw_set(
        "encode_invalid_numbers",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let mut g = c.lock().map_err(|_| mlua::Error::runtime("cjson config"))?;
            match args.first() {
                Some(Value::Boolean(b)) => g.encode_invalid = u8::from(*b),
                Some(Value::String(s)) if s.as_bytes().as_ref() == b"null" => g.encode_invalid = 2,
                Some(Value::String(s)) if s.as_bytes().as_ref() == b"on" => g.encode_invalid = 1,
                Some(Value::String(s)) if s.as_bytes().as_ref() == b"off" => g.encode_invalid = 0,
                _ => {}
            }
            Ok(match g.encode_invalid {
                0 => Value::Boolean(false),
                1 => Value::Boolean(true),
                _ => Value::String(lua.create_string("null")?),
            })
        })?,
    )?;
    t.raw_set(
        "decode_invalid_numbers",
        lua.create_function(|_, args: Variadic<Value>| {
            if matches!(args.first(), Some(Value::Boolean(true))) {
                return Err(mlua::Error::runtime(
                    "Infinity, NaN, and/or hexadecimal numbers are not supported.",
                ));
            }
            Ok(false)
        })?,
    )?;
    Ok(())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::LightUserData(_) => "userdata",
        other => super::type_name(other),
    }
}

fn cannot(v: &Value, why: &str) -> mlua::Error {
    mlua::Error::runtime(format!("Cannot serialise {}: {why}", type_name(v)))
}

fn encode_number(c: &Config, n: f64, v: &Value, out: &mut Vec<u8>) -> mlua::Result<()> {
    if !n.is_finite() {
        match c.encode_invalid {
            0 => return Err(cannot(v, "must not be NaN or Inf")),
            2 => {
                out.extend_from_slice(b"null");
                return Ok(());
            }
            _ if n.is_nan() => {
                out.extend_from_slice(b"nan");
                return Ok(());
            }
            _ => {}
        }
    }
    out.extend_from_slice(format_g(n, c.precision).as_bytes());
    Ok(())
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// The array length lua-cjson uses: `Ok(Some(n))` for an array of n, `Ok(None)` for an
/// object, an error for an excessively sparse array.
fn array_length(c: &Config, t: &Table) -> mlua::Result<Option<i64>> {
    let (mut max, mut items) = (0i64, 0i64);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair?;
        let k = match k {
            Value::Number(n) => n,
            Value::Integer(n) => n as f64,
            _ => return Ok(None),
        };
        if k.floor() != k || k < 1.0 {
            return Ok(None);
        }
        max = max.max(k as i64);
        items += 1;
    }
    if c.sparse_ratio > 0 && max > items * c.sparse_ratio && max > c.sparse_safe {
        if !c.sparse_convert {
            return Err(cannot(&Value::Table(t.clone()), "excessively sparse array"));
        }
        return Ok(None);
    }
    Ok((max > 0).then_some(max))
}

fn encode(c: &Config, v: &Value, depth: i64, out: &mut Vec<u8>) -> mlua::Result<()> {
    match v {
        Value::String(s) => encode_string(&s.as_bytes(), out),
        Value::Number(n) => encode_number(c, *n, v, out)?,
        Value::Integer(n) => encode_number(c, *n as f64, v, out)?,
        Value::Boolean(true) => out.extend_from_slice(b"true"),
        Value::Boolean(false) => out.extend_from_slice(b"false"),
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Table(t) => {
            let depth = depth + 1;
            if depth > c.encode_max_depth {
                return Err(mlua::Error::runtime(format!(
                    "Cannot serialise, excessive nesting ({depth})"
                )));
            }
            match array_length(c, t)? {
                Some(n) => {
                    out.push(b'[');
                    for i in 1..=n {
                        if i > 1 {
                            out.push(b',');
                        }
                        encode(c, &t.raw_get::<Value>(i)?, depth, out)?;
                    }
                    out.push(b']');
                }
                None => {
                    out.push(b'{');
                    for (i, pair) in t.clone().pairs::<Value, Value>().enumerate() {
                        let (k, val) = pair?;
                        if i > 0 {
                            out.push(b',');
                        }
                        match &k {
                            Value::Number(n) => {
                                out.push(b'"');
                                encode_number(c, *n, &k, out)?;
                                out.extend_from_slice(b"\":");
                            }
                            Value::Integer(n) => {
                                out.push(b'"');
                                encode_number(c, *n as f64, &k, out)?;
                                out.extend_from_slice(b"\":");
                            }
                            Value::String(s) => {
                                encode_string(&s.as_bytes(), out);
                                out.push(b':');
                            }
                            other => {
                                return Err(cannot(other, "table key must be a number or string"))
                            }
                        }
                        encode(c, &val, depth, out)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => return Err(cannot(other, "type not supported")),
    }
    Ok(())
}

struct Decoder<'l, 's> {
    lua: &'l Lua,
    s: &'s [u8],
    pos: usize,
    max_depth: i64,
}

impl Decoder<'_, '_> {
    fn ws(&mut self) {
        while self.pos < self.s.len() && matches!(self.s[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }
    /// lua-cjson's name for the token at the current position.
    fn token_name(&self) -> &'static str {
        match self.s.get(self.pos) {
            None => "T_END",
            Some(b'{') => "T_OBJ_BEGIN",
            Some(b'}') => "T_OBJ_END",
            Some(b'[') => "T_ARR_BEGIN",
            Some(b']') => "T_ARR_END",
            Some(b'"') => "T_STRING",
            Some(b':') => "T_COLON",
            Some(b',') => "T_COMMA",
            Some(b'-' | b'0'..=b'9') => "T_NUMBER",
            Some(b't' | b'f') if self.literal_ahead() => "T_BOOLEAN",
            Some(b'n') if self.literal_ahead() => "T_NULL",
            _ => "invalid token",
        }
    }
    fn literal_ahead(&self) -> bool {
        let rest = &self.s[self.pos..];
        rest.starts_with(b"true") || rest.starts_with(b"false") || rest.starts_with(b"null")
    }
    fn expected(&self, what: &str) -> mlua::Error {
        mlua::Error::runtime(format!(
            "Expected {what} but found {} at character {}",
            self.token_name(),
            self.pos + 1
        ))
    }
    fn nested(&self, depth: i64) -> mlua::Result<()> {
        if depth > self.max_depth {
            return Err(mlua::Error::runtime(format!(
                "Found too many nested data structures ({depth}) at character {}",
                self.pos + 1
            )));
        }
        Ok(())
    }
    fn value(&mut self, depth: i64) -> mlua::Result<Value> {
        self.ws();
        let Some(&b) = self.s.get(self.pos) else {
            return Err(self.expected("value"));
        };
        match b {
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b'"' => Ok(Value::String(self.lua.create_string(self.string()?)?)),
            b'-' | b'0'..=b'9' => self.number(),
            _ => {
                let rest = &self.s[self.pos..];
                let (v, len) = if rest.starts_with(b"true") {
                    (Value::Boolean(true), 4)
                } else if rest.starts_with(b"false") {
                    (Value::Boolean(false), 5)
                } else if rest.starts_with(b"null") {
                    (null(), 4)
                } else {
                    return Err(self.expected("value"));
                };
                self.pos += len;
                Ok(v)
            }
        }
    }
    fn number(&mut self) -> mlua::Result<Value> {
        let start = self.pos;
        let rest = &self.s[start..];
        let digits = if rest.first() == Some(&b'-') {
            &rest[1..]
        } else {
            rest
        };
        if digits.first() == Some(&b'0')
            && digits
                .get(1)
                .is_some_and(|c| c.is_ascii_digit() || (c | 0x20) == b'x')
        {
            return Err(self.expected("value"));
        }
        let len = rest
            .iter()
            .position(|c| !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .unwrap_or(rest.len());
        let text = std::str::from_utf8(&rest[..len]).unwrap_or("");
        match text.parse::<f64>() {
            Ok(n) => {
                self.pos += len;
                Ok(Value::Number(n))
            }
            Err(_) => Err(self.expected("value")),
        }
    }
    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.pos..self.pos + 4)?;
        let v = u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
        self.pos += 4;
        Some(v)
    }
    fn string(&mut self) -> mlua::Result<Vec<u8>> {
        let err = |d: &Self| {
            mlua::Error::runtime(format!(
                "Expected value but found invalid token at character {}",
                d.pos + 1
            ))
        };
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.s.get(self.pos) else {
                return Err(err(self));
            };
            self.pos += 1;
            match b {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(&e) = self.s.get(self.pos) else {
                        return Err(err(self));
                    };
                    self.pos += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let mut cp = self.hex4().ok_or_else(|| err(self))?;
                            if (0xD800..0xDC00).contains(&cp)
                                && self.s.get(self.pos..self.pos + 2) == Some(b"\\u")
                            {
                                self.pos += 2;
                                let lo = self.hex4().ok_or_else(|| err(self))?;
                                cp = 0x10000
                                    + ((cp - 0xD800) << 10)
                                    + (lo.wrapping_sub(0xDC00) & 0x3FF);
                            }
                            let ch = char::from_u32(cp).ok_or_else(|| err(self))?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(err(self)),
                    }
                }
                _ => out.push(b),
            }
        }
    }
    fn object(&mut self, depth: i64) -> mlua::Result<Value> {
        self.nested(depth)?;
        self.pos += 1;
        let t = self.lua.create_table()?;
        self.ws();
        if self.s.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(Value::Table(t));
        }
        loop {
            self.ws();
            if self.s.get(self.pos) != Some(&b'"') {
                return Err(self.expected("object key string"));
            }
            let k = self.string()?;
            self.ws();
            if self.s.get(self.pos) != Some(&b':') {
                return Err(self.expected("colon"));
            }
            self.pos += 1;
            let v = self.value(depth)?;
            t.raw_set(self.lua.create_string(k)?, v)?;
            self.ws();
            match self.s.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Table(t));
                }
                _ => return Err(self.expected("comma or object end")),
            }
        }
    }
    fn array(&mut self, depth: i64) -> mlua::Result<Value> {
        self.nested(depth)?;
        self.pos += 1;
        let t = self.lua.create_table()?;
        self.ws();
        if self.s.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(Value::Table(t));
        }
        for i in 1.. {
            let v = self.value(depth)?;
            t.raw_set(i, v)?;
            self.ws();
            match self.s.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.expected("comma or array end")),
            }
        }
        Ok(Value::Table(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(lua: &Lua, s: &str) -> String {
        lua.load(s).eval::<String>().unwrap()
    }

    #[test]
    fn encodes_like_lua_cjson() {
        let lua = Lua::new();
        lua.globals().set("cjson", module(&lua).unwrap()).unwrap();
        assert_eq!(
            eval(&lua, "return cjson.encode({1, 2.5, 'a/b'})"),
            "[1,2.5,\"a\\/b\"]"
        );
        assert_eq!(eval(&lua, "return cjson.encode({})"), "{}");
        assert_eq!(eval(&lua, "return cjson.encode(0.1)"), "0.1");
        assert_eq!(eval(&lua, "return cjson.encode(1/3)"), "0.33333333333333");
        assert_eq!(eval(&lua, "return cjson.encode(cjson.null)"), "null");
        assert!(lua
            .load("return cjson.encode({[1]=1, [100]=2})")
            .exec()
            .is_err());
        assert_eq!(
            eval(
                &lua,
                "return table.concat(cjson.decode('[0.0, -5e3, -1, 0.3e-3, 1023.2, 0e10]'), ' ')"
            ),
            "0 -5000 -1 0.0003 1023.2 0"
        );
        assert_eq!(
            eval(&lua, "return cjson.decode('{\"a\":\"\\\\u00e9\"}').a"),
            "é"
        );
        assert!(lua.load("return cjson.decode('[1,]')").exec().is_err());
        assert!(lua.load("return cjson.decode('01')").exec().is_err());
    }
}
