//! A script's result as the caller's reply (Redis's `luaReplyToRedisReply`).
//!
//! Redis converts the result on the Lua stack, recursively. Lua 5.1 gives a C function at
//! most 8,000 stack slots (`LUAI_MAXCSTACK`) and Redis asks for room for 4 more before each
//! element, so an element that would sit above slot 7,996 is answered `-ERR reached lua stack
//! limit` in its place and the rest of the reply goes on. A result nested 7,000 deep is
//! therefore a normal reply. This conversion keeps its own stack of open aggregates (no Rust
//! recursion, so no thread stack limits it) and counts slots as Redis's does, so it stops
//! where Redis stops (`tests/limits.rs` compares both).

use bytes::{BufMut, Bytes, BytesMut};
use mlua::{Table, Value};

use crate::node::reply::Reply;
use crate::resp::{encode, Protocol};

/// The highest Lua stack slot an element may occupy (8,000 less the 4 Redis checks for).
const LUA_STACK_ROOM: usize = 7996;

/// Slots in use when the result itself is converted (it, and the frame's handler below it).
const RESULT_SLOT: usize = 2;

/// A script's result as the caller's reply. `script_resp3` is the protocol the script chose
/// with `redis.setresp`; `caller` is the caller's. Scalars, errors and status replies keep
/// their shape (errors are counted as such); arrays, maps and sets come encoded.
pub(crate) fn lua_to_reply(v: &Value, script_resp3: bool, caller: Protocol) -> Reply {
    let conv = Conv {
        resp3: script_resp3,
        caller,
    };
    match conv.level(v) {
        Level::Done(reply) => reply,
        open => {
            let mut out = BytesMut::new();
            conv.write_nested(open, &mut out);
            Reply::Raw(out.freeze())
        }
    }
}

/// One value, converted one level deep.
enum Level {
    /// Complete: a scalar, or a table that stands for one (`err`, `ok`, `double`, ...).
    Done(Reply),
    /// An aggregate whose elements are still to be converted.
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Set(Vec<Value>),
}

/// An aggregate being written: its elements left, each with the stack slot it is converted
/// at.
type Open = std::vec::IntoIter<(Value, usize)>;

struct Conv {
    resp3: bool,
    caller: Protocol,
}

impl Conv {
    /// Writes an aggregate and everything below it, depth first, as Redis does.
    fn write_nested(&self, top: Level, out: &mut BytesMut) {
        let mut stack = vec![self.open(top, RESULT_SLOT, out)];
        while let Some(open) = stack.last_mut() {
            let Some((v, slot)) = open.next() else {
                stack.pop();
                continue;
            };
            if slot > LUA_STACK_ROOM {
                out.extend_from_slice(b"-ERR reached lua stack limit\r\n");
                continue;
            }
            match self.level(&v) {
                Level::Done(reply) => reply.encode(self.caller, out),
                nested => stack.push(self.open(nested, slot, out)),
            }
        }
    }

    /// Writes an aggregate's header; returns its elements with their stack slots. Redis's
    /// conversion of a table at `slot` keeps an array element at `slot + 1`, a map's value at
    /// `slot + 3` and its key at `slot + 4` (the map table, the iteration key, the value and a
    /// copy of the key), a set's member at `slot + 3`.
    fn open(&self, level: Level, slot: usize, out: &mut BytesMut) -> Open {
        let items: Vec<(Value, usize)> = match level {
            Level::Done(_) => Vec::new(),
            Level::Array(items) => {
                encode::array_len(out, items.len());
                items.into_iter().map(|v| (v, slot + 1)).collect()
            }
            Level::Map(pairs) => {
                encode::map_len(out, self.caller, pairs.len());
                pairs
                    .into_iter()
                    .flat_map(|(k, v)| [(k, slot + 4), (v, slot + 3)])
                    .collect()
            }
            Level::Set(items) => {
                if self.caller == Protocol::Resp3 {
                    out.put_u8(b'~');
                    out.extend_from_slice(itoa::Buffer::new().format(items.len()).as_bytes());
                    out.extend_from_slice(b"\r\n");
                } else {
                    encode::array_len(out, items.len());
                }
                items.into_iter().map(|v| (v, slot + 3)).collect()
            }
        };
        items.into_iter()
    }

    /// `v` converted one level deep.
    fn level(&self, v: &Value) -> Level {
        let reply = match v {
            Value::String(s) => Reply::bulk(&s.as_bytes()),
            Value::Boolean(b) if !self.resp3 => {
                if *b {
                    Reply::Int(1)
                } else {
                    Reply::Null
                }
            }
            Value::Boolean(b) => Reply::Bool(*b),
            Value::Number(n) => Reply::Int(*n as i64),
            Value::Integer(n) => Reply::Int(*n),
            Value::Table(t) => return self.table(t),
            _ => Reply::Null,
        };
        Level::Done(reply)
    }

    /// A table: an error, status, double, big number or verbatim string, else a map, a set
    /// or an array (its elements up to the first nil), checked in Redis's order.
    fn table(&self, t: &Table) -> Level {
        if let Value::String(e) = field(t, "err") {
            return Level::Done(Reply::Error(one_line(&e.as_bytes()).into()));
        }
        if let Value::String(s) = field(t, "ok") {
            return Level::Done(Reply::Simple(one_line(&s.as_bytes()).into()));
        }
        match field(t, "double") {
            Value::Number(d) => return Level::Done(Reply::Double(d)),
            Value::Integer(d) => return Level::Done(Reply::Double(d as f64)),
            _ => {}
        }
        if let Value::String(s) = field(t, "big_number") {
            return Level::Done(Reply::Raw(self.big_number(&one_line(&s.as_bytes()))));
        }
        if let Value::Table(vt) = field(t, "verbatim_string") {
            if let (Value::String(f), Value::String(s)) =
                (field(&vt, "format"), field(&vt, "string"))
            {
                let mut out = BytesMut::new();
                match self.caller {
                    Protocol::Resp3 => {
                        encode::verbatim_with(&mut out, &f.as_bytes(), &s.as_bytes())
                    }
                    Protocol::Resp2 => encode::bulk(&mut out, &s.as_bytes()),
                }
                return Level::Done(Reply::Raw(out.freeze()));
            }
        }
        if let Value::Table(m) = field(t, "map") {
            return Level::Map(m.pairs::<Value, Value>().flatten().collect());
        }
        if let Value::Table(s) = field(t, "set") {
            return Level::Set(
                s.pairs::<Value, Value>()
                    .flatten()
                    .map(|(k, _)| k)
                    .collect(),
            );
        }
        let mut items = Vec::new();
        for i in 1.. {
            match t.raw_get::<Value>(i) {
                Ok(Value::Nil) | Err(_) => break,
                Ok(v) => items.push(v),
            }
        }
        Level::Array(items)
    }

    /// A big number: RESP3's `(`, a bulk string for a RESP2 caller.
    fn big_number(&self, text: &str) -> Bytes {
        let mut out = BytesMut::new();
        match self.caller {
            Protocol::Resp3 => {
                out.put_u8(b'(');
                out.extend_from_slice(text.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Protocol::Resp2 => encode::bulk(&mut out, text.as_bytes()),
        }
        out.freeze()
    }
}

fn field(t: &Table, name: &str) -> Value {
    t.raw_get(name).unwrap_or(Value::Nil)
}

/// Error and status texts are one line in RESP.
fn one_line(s: &[u8]) -> String {
    String::from_utf8_lossy(s).replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::Lua;

    /// `depth` arrays of one element around `leaf`, converted for a RESP2 caller.
    fn nested(depth: usize, leaf: &str) -> Vec<u8> {
        let lua = Lua::new();
        let code = format!("local t = {leaf} for i = 1, {depth} do t = {{t}} end return t");
        let v: Value = lua.load(code).eval().expect("script");
        let mut out = BytesMut::new();
        lua_to_reply(&v, false, Protocol::Resp2).encode(Protocol::Resp2, &mut out);
        out.to_vec()
    }

    /// Redis 7.0.15 converts 7,994 nested arrays around a leaf and answers the 7,996th
    /// element (the leaf of 7,995 arrays) with the stack-limit error, in its place.
    #[test]
    fn nesting_stops_where_redis_runs_out_of_lua_stack() {
        let mut want = b"*1\r\n".repeat(7994);
        want.extend_from_slice(b":1\r\n");
        assert_eq!(nested(7994, "1"), want);
        let mut want = b"*1\r\n".repeat(7995);
        want.extend_from_slice(b"-ERR reached lua stack limit\r\n");
        assert_eq!(nested(7995, "1"), want);
        assert_eq!(nested(9000, "1"), want);
    }
}
