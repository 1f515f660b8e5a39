//! Encoders for replies the proxy writes itself, in the client's protocol.

use bytes::{BufMut, BytesMut};

use super::parse::put_sanitized;
use super::Protocol;

/// Writes `<prefix><n>\r\n`.
#[inline]
fn header(out: &mut BytesMut, prefix: u8, n: impl itoa::Integer) {
    let mut b = itoa::Buffer::new();
    let digits = b.format(n).as_bytes();
    out.reserve(digits.len() + 3);
    out.put_u8(prefix);
    out.extend_from_slice(digits);
    out.extend_from_slice(b"\r\n");
}

/// `+text\r\n`; CR/LF inside `text` become spaces, as Redis does.
pub fn simple(out: &mut BytesMut, text: &str) {
    out.reserve(text.len() + 3);
    out.put_u8(b'+');
    put_sanitized(out, text.as_bytes());
    out.extend_from_slice(b"\r\n");
}
/// `-text\r\n`; `text` is the whole message without the dash, e.g. `ERR unknown command`.
/// CR/LF inside `text` become spaces, as Redis does.
pub fn error(out: &mut BytesMut, text: &str) {
    out.reserve(text.len() + 3);
    out.put_u8(b'-');
    put_sanitized(out, text.as_bytes());
    out.extend_from_slice(b"\r\n");
}
/// `:n\r\n`
pub fn integer(out: &mut BytesMut, n: i64) {
    header(out, b':', n);
}
/// `$len\r\ndata\r\n`
pub fn bulk(out: &mut BytesMut, data: &[u8]) {
    header(out, b'$', data.len());
    out.reserve(data.len() + 2);
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}
/// Null bulk: `$-1` in RESP2, `_` in RESP3.
pub fn null(out: &mut BytesMut, proto: Protocol) {
    out.extend_from_slice(match proto {
        Protocol::Resp2 => b"$-1\r\n",
        Protocol::Resp3 => b"_\r\n",
    });
}
/// Null array: `*-1` in RESP2, `_` in RESP3.
pub fn null_array(out: &mut BytesMut, proto: Protocol) {
    out.extend_from_slice(match proto {
        Protocol::Resp2 => b"*-1\r\n",
        Protocol::Resp3 => b"_\r\n",
    });
}
/// `*n\r\n`
pub fn array_len(out: &mut BytesMut, n: usize) {
    header(out, b'*', n);
}
/// `%n` in RESP3; `*2n` in RESP2 (caller then writes n key/value pairs).
pub fn map_len(out: &mut BytesMut, proto: Protocol, n: usize) {
    match proto {
        Protocol::Resp2 => header(out, b'*', u128::from(n as u64) * 2),
        Protocol::Resp3 => header(out, b'%', n),
    }
}
/// `>n` in RESP3; `*n` in RESP2.
pub fn push_len(out: &mut BytesMut, proto: Protocol, n: usize) {
    match proto {
        Protocol::Resp2 => header(out, b'*', n),
        Protocol::Resp3 => header(out, b'>', n),
    }
}
/// `=len\r\ntxt:data` in RESP3; bulk string in RESP2.
pub fn verbatim(out: &mut BytesMut, proto: Protocol, data: &[u8]) {
    match proto {
        Protocol::Resp2 => bulk(out, data),
        Protocol::Resp3 => verbatim_with(out, b"txt", data),
    }
}
/// `=len\r\nfmt:data\r\n` (RESP3 only); `fmt` must be 3 bytes, `txt` is used otherwise.
pub(crate) fn verbatim_with(out: &mut BytesMut, fmt: &[u8], data: &[u8]) {
    let fmt = if fmt.len() == 3 { fmt } else { b"txt" };
    header(out, b'=', data.len() + 4);
    out.reserve(data.len() + 6);
    out.extend_from_slice(fmt);
    out.put_u8(b':');
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}
/// Appends an already-encoded request/arguments as a multibulk command.
pub fn command(out: &mut BytesMut, args: &[&[u8]]) {
    array_len(out, args.len());
    for a in args {
        bulk(out, a);
    }
}

/// Appends `SELECT db` as a multibulk command (injected on shared connections, and issued on
/// dedicated ones, whenever a client's database differs from the connection's).
pub fn select(out: &mut BytesMut, db: u16) {
    let mut n = itoa::Buffer::new();
    command(out, &[b"SELECT", n.format(db).as_bytes()]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut BytesMut)) -> String {
        let mut out = BytesMut::new();
        f(&mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn simple_and_error_are_sanitized() {
        assert_eq!(with(|o| simple(o, "OK")), "+OK\r\n");
        assert_eq!(with(|o| simple(o, "a\r\nb")), "+a  b\r\n");
        assert_eq!(with(|o| error(o, "ERR x")), "-ERR x\r\n");
        assert_eq!(with(|o| error(o, "ERR bad\ncmd\r")), "-ERR bad cmd \r\n");
    }

    #[test]
    fn numbers_and_bulks() {
        assert_eq!(with(|o| integer(o, 0)), ":0\r\n");
        assert_eq!(with(|o| integer(o, i64::MIN)), ":-9223372036854775808\r\n");
        assert_eq!(with(|o| bulk(o, b"a\r\nb")), "$4\r\na\r\nb\r\n");
        assert_eq!(with(|o| bulk(o, b"")), "$0\r\n\r\n");
        assert_eq!(with(|o| array_len(o, 12)), "*12\r\n");
    }

    #[test]
    fn protocol_dependent() {
        use Protocol::*;
        assert_eq!(with(|o| null(o, Resp2)), "$-1\r\n");
        assert_eq!(with(|o| null(o, Resp3)), "_\r\n");
        assert_eq!(with(|o| null_array(o, Resp2)), "*-1\r\n");
        assert_eq!(with(|o| null_array(o, Resp3)), "_\r\n");
        assert_eq!(with(|o| map_len(o, Resp2, 3)), "*6\r\n");
        assert_eq!(with(|o| map_len(o, Resp3, 3)), "%3\r\n");
        assert_eq!(with(|o| push_len(o, Resp2, 3)), "*3\r\n");
        assert_eq!(with(|o| push_len(o, Resp3, 3)), ">3\r\n");
        assert_eq!(with(|o| verbatim(o, Resp2, b"hi")), "$2\r\nhi\r\n");
        assert_eq!(with(|o| verbatim(o, Resp3, b"hi")), "=6\r\ntxt:hi\r\n");
        assert_eq!(
            with(|o| verbatim_with(o, b"toolong", b"x")),
            "=5\r\ntxt:x\r\n"
        );
    }

    #[test]
    fn command_is_a_decodable_request() {
        let s = with(|o| command(o, &[b"GET", b"k"]));
        assert_eq!(s, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
        let mut buf = BytesMut::from(s.as_bytes());
        let r = crate::resp::decode_request(&mut buf, &Default::default())
            .unwrap()
            .unwrap();
        assert_eq!(r.arg(1), b"k");
    }
}
