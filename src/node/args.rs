//! Argument access and parsing, with Redis 7's exact error texts.
//!
//! Parsers return `Result<T, Reply>` so a handler can write `let n = args.int(2)?;` and the
//! error reply goes straight back to the client.

use std::time::Duration;

use bytes::Bytes;

use super::reply::Reply;
use crate::resp::Request;

/// `ERR syntax error`
pub const SYNTAX: &str = "ERR syntax error";
/// `ERR value is not an integer or out of range`
pub const NOT_INT: &str = "ERR value is not an integer or out of range";
/// `ERR value is not a valid float`
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
/// `WRONGTYPE ...`, for a key holding another type than the command works on.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// The arguments of one command (index 0 is the command name), borrowed from the request.
#[derive(Clone, Copy)]
pub struct Args<'a> {
    req: &'a Request,
}

impl<'a> Args<'a> {
    /// Wraps a decoded request.
    pub fn new(req: &'a Request) -> Args<'a> {
        Args { req }
    }
    /// The underlying request (its raw bytes are what gets propagated verbatim).
    pub fn request(&self) -> &'a Request {
        self.req
    }
    /// Number of arguments, command name included.
    pub fn len(&self) -> usize {
        self.req.len()
    }
    /// Never true for a decoded request.
    pub fn is_empty(&self) -> bool {
        self.req.is_empty()
    }
    /// Argument `i`; empty when out of range (arity is checked before handlers run).
    pub fn get(&self, i: usize) -> &'a [u8] {
        self.req.arg(i)
    }
    /// Argument `i` as an owned copy, for anything stored in the keyspace. A copy, not a
    /// slice of the request: a slice would pin the connection's whole read buffer in memory
    /// for as long as the key lives.
    pub fn owned(&self, i: usize) -> Bytes {
        Bytes::copy_from_slice(self.get(i))
    }
    /// Arguments from `i` to the end.
    pub fn from(&self, i: usize) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.req.args().skip(i)
    }
    /// True if argument `i` equals `word` ignoring ASCII case (`word` is given in any case).
    pub fn is(&self, i: usize, word: &str) -> bool {
        self.get(i).eq_ignore_ascii_case(word.as_bytes())
    }
    /// Argument `i` as an integer (Redis's strict `string2ll`).
    pub fn int(&self, i: usize) -> Result<i64, Reply> {
        parse_int(self.get(i)).ok_or(Reply::Error(NOT_INT.into()))
    }
    /// Argument `i` as a float (`ERR value is not a valid float`).
    pub fn float(&self, i: usize) -> Result<f64, Reply> {
        parse_float(self.get(i)).ok_or(Reply::Error(NOT_FLOAT.into()))
    }
}

/// `ERR wrong number of arguments for 'name' command`
pub fn arity_error(name: &str) -> Reply {
    Reply::Error(format!("ERR wrong number of arguments for '{name}' command").into())
}

/// `ERR syntax error`
pub fn syntax() -> Reply {
    Reply::Error(SYNTAX.into())
}

/// The WRONGTYPE error reply.
pub fn wrongtype() -> Reply {
    Reply::Error(WRONGTYPE.into())
}

/// Redis 7's unknown command error: name and the first arguments quoted, each cut to what
/// fits in 128 bytes, with the trailing space Redis leaves.
pub fn unknown_command(args: &Args) -> Reply {
    let mut text = String::from("ERR unknown command '");
    text.push_str(&c_text(args.get(0), 128));
    text.push_str("', with args beginning with: ");
    let mut listed = String::new();
    for a in args.from(1) {
        if listed.len() >= 128 {
            break;
        }
        let room = 128 - listed.len();
        listed.push('\'');
        listed.push_str(&c_text(a, room));
        listed.push_str("' ");
    }
    text.push_str(&listed);
    Reply::Error(text.into())
}

/// How C's `%.Ns` prints an argument: up to `max` bytes, stopping at a NUL. Invalid UTF-8 is
/// replaced (the reply is sanitized text anyway).
fn c_text(arg: &[u8], max: usize) -> String {
    let end = arg
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(arg.len())
        .min(max);
    String::from_utf8_lossy(&arg[..end]).into_owned()
}

/// Redis's `string2ll`: optional `-`, no `+`, no leading zeros, no spaces, within i64 (the
/// codec's own parser, so requests and arguments agree on what an integer is).
pub fn parse_int(s: &[u8]) -> Option<i64> {
    crate::resp::parse::string2ll(s)
}

/// Redis's float parsing (`strtold` on the whole string): no spaces, no NaN; `inf`, `+inf`,
/// `-inf`, `infinity` allowed.
pub fn parse_float(s: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(s).ok()?;
    if text.is_empty() || text.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let v: f64 = match text.parse() {
        Ok(v) => v,
        Err(_) => parse_hex_float(text)?,
    };
    (!v.is_nan()).then_some(v)
}

/// C's hexadecimal float syntax, which `strtod`/`strtold` accept: `[+-]0x<hex>[.<hex>][p<exp>]`.
fn parse_hex_float(text: &str) -> Option<f64> {
    let (neg, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let rest = rest
        .strip_prefix("0x")
        .or_else(|| rest.strip_prefix("0X"))?;
    let (mantissa, exp) = match rest.find(['p', 'P']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp);
    Some(if neg { -v } else { v })
}

/// A blocking command's timeout argument, in seconds (fractions allowed, 0 = forever).
/// Errors as Redis 7 words them.
pub fn timeout(arg: &[u8]) -> Result<Option<Duration>, Reply> {
    let secs = parse_float(arg).ok_or(Reply::Error(
        "ERR timeout is not a float or out of range".into(),
    ))?;
    // Redis converts to milliseconds in a long long first: `inf` and huge values wrap
    // negative there, so it reports them as negative too.
    if secs < 0.0 || secs * 1000.0 >= i64::MAX as f64 {
        return Err(Reply::Error("ERR timeout is negative".into()));
    }
    if secs == 0.0 {
        return Ok(None);
    }
    Ok(Duration::try_from_secs_f64(secs).ok())
}

/// Redis's `memtoull`: digits with an optional b/k/kb/m/mb/g/gb suffix (any case).
pub(crate) fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1_000_000,
        "mb" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" => 1 << 30,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(mul)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn req(args: &[&[u8]]) -> Request {
        Request::from_args(args)
    }

    #[test]
    fn ints_follow_string2ll() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-12"), Some(-12));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"+1",
            b"01",
            b"-0",
            b" 1",
            b"1 ",
            b"9223372036854775808",
            b"1x",
        ] {
            assert_eq!(parse_int(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn floats() {
        assert_eq!(parse_float(b"1.5"), Some(1.5));
        assert_eq!(parse_float(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_float(b"nan"), None);
        assert_eq!(parse_float(b" 1"), None);
        assert_eq!(parse_float(b""), None);
    }

    #[test]
    fn unknown_command_text_matches_redis() {
        let r = req(&[b"foo", b"a", b"b"]);
        assert_eq!(
            unknown_command(&Args::new(&r)),
            Reply::error("ERR unknown command 'foo', with args beginning with: 'a' 'b' ")
        );
        let r = req(&[b"foo"]);
        assert_eq!(
            unknown_command(&Args::new(&r)),
            Reply::error("ERR unknown command 'foo', with args beginning with: ")
        );
        let _ = BytesMut::new();
    }

    #[test]
    fn keywords_and_timeouts() {
        let r = req(&[b"set", b"k", b"v", b"Ex"]);
        let a = Args::new(&r);
        assert!(a.is(3, "EX"));
        assert!(!a.is(3, "PX"));
        assert_eq!(a.int(1), Err(Reply::error(NOT_INT)));
        assert_eq!(timeout(b"0"), Ok(None));
        assert_eq!(timeout(b"0.5"), Ok(Some(Duration::from_millis(500))));
        assert!(timeout(b"-1").is_err());
        assert!(timeout(b"x").is_err());
    }
}
