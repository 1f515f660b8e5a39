//! Conversions between Redis replies and Lua values, as Redis 7.0 makes them.
//!
//! A command's reply reaches a script the way it reaches Redis's Lua client: encoded in the
//! script's protocol (RESP2 unless `redis.setresp(3)`), then parsed into Lua values, so
//! every reply shape converts exactly as in Redis. A script's return value becomes a
//! [`Reply`] for the caller in [`super::result`].

use bytes::BytesMut;
use mlua::{Lua, Table, Value};

use crate::node::reply::{format_double, Reply};
use crate::resp::Protocol;

pub(crate) use super::result::lua_to_reply;

/// Deepest reply nesting converted (Redis would run out of Lua stack much earlier).
const MAX_DEPTH: usize = 200;

/// A Lua number as Redis turns it into a command argument (`%.17g`).
pub(crate) fn number_text(n: f64) -> String {
    format_double(n)
}

/// Redis's `luaPushErrorBuff`: `{err = "CODE message"}` from `-CODE message` or `message`
/// (which gets the `ERR` code), trailing CR/LF trimmed.
pub(crate) fn error_table(lua: &Lua, text: &str) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", error_text(text))?;
    Ok(t)
}

/// The `err` string of [`error_table`].
pub(crate) fn error_text(text: &str) -> String {
    let (code, msg) = match text.strip_prefix('-') {
        Some(rest) => match rest.split_once(' ') {
            Some((code, msg)) => (code, msg),
            None => ("ERR", rest),
        },
        None => ("ERR", text),
    };
    let msg = msg.trim_matches(|c| c == '\r' || c == '\n');
    format!("{code} {msg}")
}

/// A command's reply as the script sees it: the common shapes directly, the others
/// encoded in the script's protocol and parsed back (exactly Redis's conversions).
pub(crate) fn reply_to_lua(lua: &Lua, reply: &Reply, proto: Protocol) -> mlua::Result<Value> {
    match reply {
        Reply::Ok => status(lua, b"OK"),
        Reply::Simple(s) => status(lua, s.as_bytes()),
        Reply::Int(n) => Ok(Value::Number(*n as f64)),
        Reply::Bulk(b) => Ok(Value::String(lua.create_string(b)?)),
        Reply::Short(s) => Ok(Value::String(lua.create_string(s.as_bytes())?)),
        other => resp_to_lua(lua, &encode(other, proto)),
    }
}

/// `{ok = text}`, a status reply.
fn status(lua: &Lua, text: &[u8]) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set("ok", lua.create_string(text)?)?;
    Ok(Value::Table(t))
}

/// Parses one encoded reply into a Lua value (Redis's `redisProtocolToLuaType`). Errors
/// become error tables marked so Redis does not count them twice.
pub(crate) fn resp_to_lua(lua: &Lua, buf: &[u8]) -> mlua::Result<Value> {
    let mut p = Parser { buf, pos: 0 };
    p.value(lua, 0)
}

struct Parser<'b> {
    buf: &'b [u8],
    pos: usize,
}

impl Parser<'_> {
    fn line(&mut self) -> &[u8] {
        let rest = &self.buf[self.pos.min(self.buf.len())..];
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or(rest.len());
        self.pos += end + 2;
        &rest[..end]
    }
    fn int(&mut self) -> i64 {
        crate::node::args::parse_int(self.line()).unwrap_or(0)
    }
    fn bulk(&mut self, len: i64) -> &[u8] {
        let start = self.pos.min(self.buf.len());
        let end = (start + usize::try_from(len).unwrap_or(0)).min(self.buf.len());
        self.pos = end + 2;
        &self.buf[start..end]
    }
    fn value(&mut self, lua: &Lua, depth: usize) -> mlua::Result<Value> {
        if depth > MAX_DEPTH {
            return Err(mlua::Error::runtime("reply nested too deeply"));
        }
        let Some(&kind) = self.buf.get(self.pos) else {
            return Ok(Value::Nil);
        };
        self.pos += 1;
        Ok(match kind {
            b'+' => {
                let t = lua.create_table()?;
                t.raw_set("ok", lua.create_string(self.line())?)?;
                Value::Table(t)
            }
            b'-' => {
                let text = format!("-{}", String::from_utf8_lossy(self.line()));
                let t = error_table(lua, &text)?;
                t.raw_set("ignore_error_stats_update", true)?;
                Value::Table(t)
            }
            b':' => Value::Number(self.int() as f64),
            b'$' => match self.int() {
                n if n < 0 => Value::Boolean(false),
                n => Value::String(lua.create_string(self.bulk(n))?),
            },
            b'*' | b'>' => match self.int() {
                n if n < 0 => Value::Boolean(false),
                n => {
                    let t = lua.create_table()?;
                    for i in 0..n {
                        t.raw_set(i + 1, self.value(lua, depth + 1)?)?;
                    }
                    Value::Table(t)
                }
            },
            b'%' | b'~' => self.map_or_set(lua, kind == b'%', depth)?,
            b'_' => {
                self.line();
                Value::Nil
            }
            b'#' => Value::Boolean(self.line() == b"t"),
            b',' => {
                let text = String::from_utf8_lossy(self.line()).into_owned();
                let d = crate::node::args::parse_float(text.as_bytes()).unwrap_or(0.0);
                wrap(lua, "double", Value::Number(d))?
            }
            b'(' => {
                let s = lua.create_string(self.line())?;
                wrap(lua, "big_number", Value::String(s))?
            }
            b'=' => {
                let n = self.int();
                let data = self.bulk(n);
                let (format, text) = if data.len() >= 4 {
                    (&data[..3], &data[4..])
                } else {
                    (&b"txt"[..], data)
                };
                let v = lua.create_table()?;
                v.raw_set("string", lua.create_string(text)?)?;
                v.raw_set("format", lua.create_string(format)?)?;
                wrap(lua, "verbatim_string", Value::Table(v))?
            }
            _ => {
                self.line();
                Value::Nil
            }
        })
    }
}

impl Parser<'_> {
    /// A RESP3 map (`{map = {k = v}}`) or set (`{set = {k = true}}`).
    fn map_or_set(&mut self, lua: &Lua, map: bool, depth: usize) -> mlua::Result<Value> {
        let n = self.int();
        let m = lua.create_table()?;
        for _ in 0..n {
            let k = self.value(lua, depth + 1)?;
            let v = if map {
                self.value(lua, depth + 1)?
            } else {
                Value::Boolean(true)
            };
            m.raw_set(k, v)?;
        }
        wrap(lua, if map { "map" } else { "set" }, Value::Table(m))
    }
}

/// `{name = v}`.
fn wrap(lua: &Lua, name: &str, v: Value) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(name, v)?;
    Ok(Value::Table(t))
}

/// Encodes `reply` in `proto` (to hand it to [`resp_to_lua`]).
pub(crate) fn encode(reply: &Reply, proto: Protocol) -> BytesMut {
    let mut out = BytesMut::new();
    reply.encode(proto, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts_follow_redis() {
        assert_eq!(error_text("-WRONGTYPE bad\r\n"), "WRONGTYPE bad");
        assert_eq!(error_text("plain message"), "ERR plain message");
        assert_eq!(error_text("-NOSPACE"), "ERR NOSPACE");
    }

    #[test]
    fn replies_round_trip_through_lua() {
        let lua = Lua::new();
        let v = resp_to_lua(&lua, b"*3\r\n:1\r\n$2\r\nab\r\n$-1\r\n").unwrap();
        let r = lua_to_reply(&v, false, Protocol::Resp2);
        assert_eq!(
            &encode(&r, Protocol::Resp2)[..],
            b"*3\r\n:1\r\n$2\r\nab\r\n$-1\r\n"
        );
        let v = resp_to_lua(&lua, b"-ERR x\r\n").unwrap();
        assert_eq!(
            lua_to_reply(&v, false, Protocol::Resp2),
            Reply::error("ERR x")
        );
        let v = resp_to_lua(&lua, b",1.5\r\n").unwrap();
        assert_eq!(lua_to_reply(&v, true, Protocol::Resp3), Reply::Double(1.5));
    }
}
