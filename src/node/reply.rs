//! What a command handler answers, and its RESP2/RESP3 encoding.
//!
//! Handlers build a `Reply` value instead of writing bytes so that the same handler serves
//! both protocols, MULTI/EXEC can collect replies, and the blocking mechanism can travel
//! through the same return type. Encoding happens once, straight into the connection's
//! output buffer.

use std::borrow::Cow;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use crate::resp::{encode, Protocol};

/// A command's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// `+OK`, the commonest reply, without building a string.
    Ok,
    /// `+text` (a status reply such as `PONG`).
    Simple(Cow<'static, str>),
    /// `-text`: the whole message, code included, e.g. `ERR syntax error`.
    Error(Cow<'static, str>),
    /// `:n`
    Int(i64),
    /// `$len\r\ndata`
    Bulk(Bytes),
    /// `$len\r\ndata` of a stored string short enough to travel inside the reply (see
    /// [`Reply::stored`]).
    Short(ShortBulk),
    /// Null bulk: `$-1` (RESP2), `_` (RESP3).
    Null,
    /// Null array: `*-1` (RESP2), `_` (RESP3).
    NullArray,
    /// `*n` followed by the items.
    Array(Vec<Reply>),
    /// `%n` in RESP3; a flat array of 2n items in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// `~n` in RESP3; a plain array in RESP2.
    Set(Vec<Reply>),
    /// `,d` in RESP3; a bulk string in RESP2 (Redis 7.0's `%.17g` text, see [`format_double`]).
    Double(f64),
    /// `#t`/`#f` in RESP3; `:1`/`:0` in RESP2.
    Bool(bool),
    /// `=len\r\ntxt:...` in RESP3; a bulk string in RESP2 (INFO, CLIENT LIST).
    Verbatim(Bytes),
    /// `>n` in RESP3; an array in RESP2 (pub/sub messages).
    Push(Vec<Reply>),
    /// Already encoded bytes, written as they are (valid in both protocols by construction).
    Raw(Bytes),
    /// Not an answer: the command cannot proceed until one of `keys` is written. The
    /// connection parks the client and re-runs the same command when a key is signalled
    /// (see `cmd/mod.rs`, "Blocking"). Never encoded.
    Block(Box<Block>),
}

/// The longest string [`Reply::Short`] carries: the most that keeps a `Reply` at 40 bytes.
const SHORT: usize = 38;

/// The bytes of a [`Reply::Short`].
#[derive(Clone, Copy, PartialEq)]
pub struct ShortBulk {
    len: u8,
    bytes: [u8; SHORT],
}

impl ShortBulk {
    /// The string.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for ShortBulk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", Bytes::copy_from_slice(self.as_bytes()))
    }
}

/// A blocked command's wait: which keys (of the client's current db) can wake it, until when,
/// and what to answer if nothing arrives in time.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// Keys whose writes may let the command proceed.
    pub keys: Vec<Bytes>,
    /// How long to wait; `None` waits forever (a timeout argument of 0).
    pub timeout: Option<Duration>,
    /// The reply on timeout (a null array for BLPOP/BZPOPMIN, a null bulk for BLMOVE).
    pub on_timeout: Reply,
}

impl Reply {
    /// An error reply; `text` includes the code (`ERR ...`, `WRONGTYPE ...`).
    pub fn error(text: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Error(text.into())
    }
    /// A status reply.
    pub fn simple(text: &'static str) -> Reply {
        Reply::Simple(Cow::Borrowed(text))
    }
    /// A bulk reply copying `data`.
    pub fn bulk(data: &[u8]) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(data))
    }
    /// A bulk reply, or a null bulk for `None`.
    pub fn opt_bulk(data: Option<Bytes>) -> Reply {
        data.map_or(Reply::Null, Reply::Bulk)
    }
    /// A stored string as a bulk reply, or a null bulk for `None` (GET). A short one is
    /// copied into the reply: sharing the stored `Bytes` instead costs two atomic updates on
    /// its reference count, which sits on a cache line of its own, and an allocation the
    /// first time a value is shared.
    pub fn stored(data: Option<&Bytes>) -> Reply {
        match data {
            None => Reply::Null,
            Some(b) if b.len() <= SHORT => {
                let mut bytes = [0u8; SHORT];
                bytes[..b.len()].copy_from_slice(b);
                // Fits: SHORT < 256.
                Reply::Short(ShortBulk {
                    len: b.len() as u8,
                    bytes,
                })
            }
            Some(b) => Reply::Bulk(b.clone()),
        }
    }
    /// True for error replies (they are not propagated and count as failed calls).
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Appends the encoding of this reply in `proto` to `out`. `Block` encodes nothing: the
    /// connection handles it before encoding.
    pub fn encode(&self, proto: Protocol, out: &mut BytesMut) {
        let resp3 = proto == Protocol::Resp3;
        match self {
            Reply::Ok => out.extend_from_slice(b"+OK\r\n"),
            Reply::Simple(s) => encode::simple(out, s),
            Reply::Error(e) => encode::error(out, e),
            Reply::Int(n) => encode::integer(out, *n),
            Reply::Bulk(b) => encode::bulk(out, b),
            Reply::Short(s) => encode::bulk(out, s.as_bytes()),
            Reply::Null => encode::null(out, proto),
            Reply::NullArray => encode::null_array(out, proto),
            Reply::Array(items) => {
                encode::array_len(out, items.len());
                items.iter().for_each(|r| r.encode(proto, out));
            }
            Reply::Map(pairs) => {
                encode::map_len(out, proto, pairs.len());
                for (k, v) in pairs {
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Reply::Set(items) => {
                if resp3 {
                    header(out, b'~', items.len());
                } else {
                    encode::array_len(out, items.len());
                }
                items.iter().for_each(|r| r.encode(proto, out));
            }
            Reply::Double(d) => {
                let text = format_double(*d);
                if resp3 {
                    out.put_u8(b',');
                    out.extend_from_slice(text.as_bytes());
                    out.extend_from_slice(b"\r\n");
                } else {
                    encode::bulk(out, text.as_bytes());
                }
            }
            Reply::Bool(b) => out.extend_from_slice(match (resp3, b) {
                (true, true) => b"#t\r\n",
                (true, false) => b"#f\r\n",
                (false, true) => b":1\r\n",
                (false, false) => b":0\r\n",
            }),
            Reply::Verbatim(b) => encode::verbatim(out, proto, b),
            Reply::Push(items) => {
                encode::push_len(out, proto, items.len());
                items.iter().for_each(|r| r.encode(proto, out));
            }
            Reply::Raw(b) => out.extend_from_slice(b),
            Reply::Block(_) => {}
        }
    }
}

fn header(out: &mut BytesMut, prefix: u8, n: usize) {
    out.put_u8(prefix);
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A double as Redis 7.0 prints it (`d2string`): `nan`, `inf`/`-inf`, `0`/`-0`, integral
/// values within ±2^52 without a fraction, everything else as C's `%.17g`. Clients compare
/// scores textually (ZSCORE of 1.1 is `1.1000000000000001`), so the exact text matters.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d < 0.0 { "-inf" } else { "inf" }.into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.into();
    }
    if d > -4_503_599_627_370_495.0 && d < 4_503_599_627_370_496.0 && d == d.trunc() {
        return (d as i64).to_string();
    }
    format_g17(d)
}

/// C's `%.17g` for a finite non-zero double.
fn format_g17(d: f64) -> String {
    // 17 significant digits in scientific form gives both the digits and the exponent
    // after rounding, which decides between fixed and exponent notation as %g does.
    let sci = format!("{d:.16e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..17).contains(&exp) {
        let m = strip_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.unsigned_abs());
    }
    let decimals = usize::try_from(16 - exp).unwrap_or(0);
    strip_zeros(&format!("{d:.decimals$}")).to_string()
}

/// Drops trailing fractional zeros (and a trailing point), as %g does.
fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_strings_short_and_long_encode_as_bulk() {
        // The short form must not make every reply bigger.
        assert_eq!(std::mem::size_of::<Reply>(), 40);
        for len in [0, 1, SHORT, SHORT + 1, 1000] {
            let data = Bytes::from(vec![b'x'; len]);
            let reply = Reply::stored(Some(&data));
            assert_eq!(matches!(reply, Reply::Short(_)), len <= SHORT);
            for p in [Protocol::Resp2, Protocol::Resp3] {
                assert_eq!(enc(&reply, p), enc(&Reply::Bulk(data.clone()), p));
            }
        }
        assert_eq!(Reply::stored(None), Reply::Null);
    }

    fn enc(r: &Reply, p: Protocol) -> String {
        let mut out = BytesMut::new();
        r.encode(p, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn doubles_match_redis_7_0() {
        assert_eq!(format_double(1.1), "1.1000000000000001");
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(-2.5), "-2.5");
        assert_eq!(format_double(1e20), "1e+20");
        assert_eq!(format_double(1e-7), "9.9999999999999995e-08");
        assert_eq!(format_double(0.5), "0.5");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(f64::NEG_INFINITY), "-inf");
        assert_eq!(format_double(-0.0), "-0");
    }

    #[test]
    fn both_protocols() {
        use Protocol::*;
        let m = Reply::Map(vec![(Reply::bulk(b"a"), Reply::Int(1))]);
        assert_eq!(enc(&m, Resp2), "*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&m, Resp3), "%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&Reply::Double(2.0), Resp2), "$1\r\n2\r\n");
        assert_eq!(enc(&Reply::Double(2.0), Resp3), ",2\r\n");
        assert_eq!(enc(&Reply::Set(vec![]), Resp3), "~0\r\n");
        assert_eq!(enc(&Reply::Set(vec![]), Resp2), "*0\r\n");
        assert_eq!(enc(&Reply::NullArray, Resp2), "*-1\r\n");
        assert_eq!(enc(&Reply::Null, Resp3), "_\r\n");
        assert_eq!(enc(&Reply::Bool(true), Resp2), ":1\r\n");
        assert_eq!(enc(&Reply::error("ERR x"), Resp2), "-ERR x\r\n");
        assert_eq!(enc(&Reply::Ok, Resp3), "+OK\r\n");
    }
}
