//! An owned, parsed frame: for the few replies the proxy must inspect (INFO, ROLE, HELLO,
//! subscribe counts) and for tests. Not used to forward traffic.

use bytes::{Bytes, BytesMut};

use super::encode;
use super::parse::{blob, header, line, parse_int, PERMISSIVE};
use super::{scan_reply, Limits, Protocol, ProtocolError};

/// A parsed RESP2/RESP3 value. Null bulk, null array and RESP3 null all parse to `Null`.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+...`
    Simple(Bytes),
    /// `-...` or `!...`
    Error(Bytes),
    /// `:n`
    Integer(i64),
    /// `$...`
    Bulk(Bytes),
    /// `$-1`, `*-1`, `_`
    Null,
    /// `*...`
    Array(Vec<Frame>),
    /// `%...`
    Map(Vec<(Frame, Frame)>),
    /// `~...`
    Set(Vec<Frame>),
    /// `>...`
    Push(Vec<Frame>),
    /// `,...`
    Double(f64),
    /// `#t` / `#f`
    Boolean(bool),
    /// `(...`
    BigNumber(Bytes),
    /// `=...`: format (e.g. `txt`) and data
    Verbatim(Bytes, Bytes),
}

impl Frame {
    /// Parses one complete frame from the start of `buf`; returns it and the bytes consumed.
    /// `Ok(None)` when incomplete. Attributes are skipped.
    /// Validates with the default [`Limits`] first, so a hostile frame is refused before
    /// anything is allocated for it.
    pub fn parse(buf: &[u8]) -> Result<Option<(Frame, usize)>, ProtocolError> {
        let Some(scan) = scan_reply(buf, &Limits::default())? else {
            return Ok(None);
        };
        let (frame, end) = build(&buf[..scan.len], 0)?;
        Ok(Some((frame, end)))
    }
    /// Encodes in the given protocol (RESP3 types degrade as in `convert::to_resp2`).
    pub fn encode(&self, proto: Protocol, out: &mut BytesMut) {
        let resp3 = proto == Protocol::Resp3;
        match self {
            Frame::Simple(b) => {
                out.extend_from_slice(b"+");
                super::parse::put_sanitized(out, b);
                out.extend_from_slice(b"\r\n");
            }
            // A RESP3 blob error keeps line breaks a simple error would have to lose.
            Frame::Error(b) if resp3 && b.iter().any(|&c| c == b'\r' || c == b'\n') => {
                encode_len(out, b'!', b.len());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Frame::Error(b) => {
                out.extend_from_slice(b"-");
                super::parse::put_sanitized(out, b);
                out.extend_from_slice(b"\r\n");
            }
            Frame::Integer(n) => encode::integer(out, *n),
            Frame::Bulk(b) => encode::bulk(out, b),
            Frame::Null => encode::null(out, proto),
            Frame::Array(items) => {
                encode::array_len(out, items.len());
                items.iter().for_each(|f| f.encode(proto, out));
            }
            Frame::Map(pairs) => {
                encode::map_len(out, proto, pairs.len());
                for (k, v) in pairs {
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Frame::Set(items) => {
                if resp3 {
                    encode_len(out, b'~', items.len());
                } else {
                    encode::array_len(out, items.len());
                }
                items.iter().for_each(|f| f.encode(proto, out));
            }
            Frame::Push(items) => {
                encode::push_len(out, proto, items.len());
                items.iter().for_each(|f| f.encode(proto, out));
            }
            Frame::Double(d) => {
                let text = format_double(*d);
                if resp3 {
                    out.extend_from_slice(b",");
                    out.extend_from_slice(text.as_bytes());
                    out.extend_from_slice(b"\r\n");
                } else {
                    encode::bulk(out, text.as_bytes());
                }
            }
            Frame::Boolean(b) => out.extend_from_slice(match (resp3, b) {
                (true, true) => b"#t\r\n",
                (true, false) => b"#f\r\n",
                (false, true) => b":1\r\n",
                (false, false) => b":0\r\n",
            }),
            Frame::BigNumber(b) => {
                if resp3 {
                    out.extend_from_slice(b"(");
                    out.extend_from_slice(b);
                    out.extend_from_slice(b"\r\n");
                } else {
                    encode::bulk(out, b);
                }
            }
            Frame::Verbatim(fmt, data) => {
                if resp3 {
                    encode::verbatim_with(out, fmt, data);
                } else {
                    encode::bulk(out, data);
                }
            }
        }
    }
    /// The bytes of a simple string, bulk string, verbatim string or error.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Frame::Simple(b) | Frame::Bulk(b) | Frame::Error(b) | Frame::Verbatim(_, b) => Some(b),
            _ => None,
        }
    }
    /// The value of an integer (or of a string holding an integer).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Frame::Integer(n) => Some(*n),
            Frame::Simple(b) | Frame::Bulk(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        }
    }
}

fn encode_len(out: &mut BytesMut, prefix: u8, n: usize) {
    out.extend_from_slice(&[prefix]);
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// RESP3 doubles: `inf`, `-inf`, `nan`, otherwise the shortest text that reads back the same
/// value (plain notation in the usual range, exponent notation outside it).
fn format_double(d: f64) -> String {
    if d.is_nan() {
        "nan".to_owned()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else if d == 0.0 || (1e-5..1e17).contains(&d.abs()) {
        format!("{d}")
    } else {
        format!("{d:e}")
    }
}

const MALFORMED: ProtocolError = ProtocolError::InvalidReply("malformed frame");

/// Builds the value at `pos` of a frame already validated by `scan_reply`.
fn build(buf: &[u8], mut pos: usize) -> Result<(Frame, usize), ProtocolError> {
    loop {
        let t = *buf.get(pos).ok_or(MALFORMED)?;
        return match t {
            b'+' | b'-' | b',' | b'(' | b':' | b'#' | b'_' => {
                let (end, next) = line(buf, pos + 1).ok_or(MALFORMED)?;
                Ok((line_frame(t, &buf[pos + 1..end])?, next))
            }
            b'$' | b'!' | b'=' => {
                let (data, next) = blob(buf, pos).ok_or(MALFORMED)?;
                Ok((blob_frame(t, data)?, next))
            }
            b'*' | b'~' | b'>' | b'%' => {
                let (n, p) = header(buf, pos).ok_or(MALFORMED)?;
                aggregate(buf, t, n, p)
            }
            b'|' => {
                // An attribute: skipped, the frame it annotates follows.
                let (n, mut p) = header(buf, pos).ok_or(MALFORMED)?;
                for _ in 0..u64::try_from(n).map_err(|_| MALFORMED)?.saturating_mul(2) {
                    let rest = buf.get(p..).ok_or(MALFORMED)?;
                    p += scan_reply(rest, &PERMISSIVE)?.ok_or(MALFORMED)?.len;
                }
                pos = p;
                continue;
            }
            _ => Err(MALFORMED),
        };
    }
}

/// A one-line frame of type `t` whose text (without type byte and CRLF) is `s`.
fn line_frame(t: u8, s: &[u8]) -> Result<Frame, ProtocolError> {
    Ok(match t {
        b'+' => Frame::Simple(Bytes::copy_from_slice(s)),
        b'-' => Frame::Error(Bytes::copy_from_slice(s)),
        b'(' => Frame::BigNumber(Bytes::copy_from_slice(s)),
        b':' => Frame::Integer(parse_int(s).ok_or(MALFORMED)?),
        b'#' => Frame::Boolean(s == b"t"),
        b'_' => Frame::Null,
        _ => Frame::Double(
            std::str::from_utf8(s)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(ProtocolError::InvalidReply("invalid double"))?,
        ),
    })
}

/// A length-prefixed frame of type `t` (`$`, `!`, `=`); `None` is a null bulk.
fn blob_frame(t: u8, data: Option<&[u8]>) -> Result<Frame, ProtocolError> {
    Ok(match (t, data) {
        (_, None) => Frame::Null,
        (b'$', Some(d)) => Frame::Bulk(Bytes::copy_from_slice(d)),
        (b'!', Some(d)) => Frame::Error(Bytes::copy_from_slice(d)),
        (_, Some(d)) => Frame::Verbatim(
            Bytes::copy_from_slice(d.get(..3).ok_or(MALFORMED)?),
            Bytes::copy_from_slice(d.get(4..).ok_or(MALFORMED)?),
        ),
    })
}

/// An aggregate of type `t` with `n` elements (pairs for a map) starting at `p`.
fn aggregate(buf: &[u8], t: u8, n: i64, mut p: usize) -> Result<(Frame, usize), ProtocolError> {
    if n < 0 {
        return Ok((Frame::Null, p));
    }
    // The count was checked against the bytes actually present by the scan, so this
    // capacity is bounded by the frame size.
    let n = usize::try_from(n).map_err(|_| MALFORMED)?;
    if t == b'%' {
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            let (k, q) = build(buf, p)?;
            let (v, q) = build(buf, q)?;
            pairs.push((k, v));
            p = q;
        }
        return Ok((Frame::Map(pairs), p));
    }
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        let (f, q) = build(buf, p)?;
        items.push(f);
        p = q;
    }
    let f = match t {
        b'*' => Frame::Array(items),
        b'~' => Frame::Set(items),
        _ => Frame::Push(items),
    };
    Ok((f, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn parse(raw: &[u8]) -> Frame {
        let (f, n) = Frame::parse(raw).unwrap().unwrap();
        assert_eq!(n, raw.len());
        f
    }

    fn enc(f: &Frame, proto: Protocol) -> Vec<u8> {
        let mut out = BytesMut::new();
        f.encode(proto, &mut out);
        out.to_vec()
    }

    #[test]
    fn parses_every_type() {
        assert_eq!(parse(b"+OK\r\n"), Frame::Simple(b("OK")));
        assert_eq!(parse(b"-ERR x\r\n"), Frame::Error(b("ERR x")));
        assert_eq!(parse(b"!3\r\nERR\r\n"), Frame::Error(b("ERR")));
        assert_eq!(parse(b":-12\r\n"), Frame::Integer(-12));
        assert_eq!(parse(b"$2\r\nhi\r\n"), Frame::Bulk(b("hi")));
        assert_eq!(parse(b"$-1\r\n"), Frame::Null);
        assert_eq!(parse(b"*-1\r\n"), Frame::Null);
        assert_eq!(parse(b"_\r\n"), Frame::Null);
        assert_eq!(parse(b",1.5\r\n"), Frame::Double(1.5));
        assert_eq!(parse(b",-inf\r\n"), Frame::Double(f64::NEG_INFINITY));
        assert!(matches!(parse(b",nan\r\n"), Frame::Double(d) if d.is_nan()));
        assert_eq!(parse(b"#t\r\n"), Frame::Boolean(true));
        assert_eq!(parse(b"#f\r\n"), Frame::Boolean(false));
        assert_eq!(parse(b"(123\r\n"), Frame::BigNumber(b("123")));
        assert_eq!(
            parse(b"=6\r\ntxt:hi\r\n"),
            Frame::Verbatim(b("txt"), b("hi"))
        );
        assert_eq!(
            parse(b"*2\r\n:1\r\n%1\r\n+k\r\n~1\r\n>0\r\n"),
            Frame::Array(vec![
                Frame::Integer(1),
                Frame::Map(vec![(
                    Frame::Simple(b("k")),
                    Frame::Set(vec![Frame::Push(vec![])])
                )]),
            ])
        );
    }

    #[test]
    fn parse_skips_attributes_and_reports_length() {
        let raw = b"|1\r\n+ttl\r\n:1\r\n*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n+next\r\n";
        let (f, n) = Frame::parse(raw).unwrap().unwrap();
        assert_eq!(f, Frame::Array(vec![Frame::Integer(1), Frame::Integer(2)]));
        assert_eq!(n, raw.len() - b"+next\r\n".len());
    }

    #[test]
    fn parse_incomplete_and_invalid() {
        assert_eq!(Frame::parse(b"*2\r\n:1\r\n"), Ok(None));
        assert_eq!(Frame::parse(b""), Ok(None));
        assert_eq!(
            Frame::parse(b",abc\r\n"),
            Err(ProtocolError::InvalidReply("invalid double"))
        );
        assert_eq!(
            Frame::parse(b"?\r\n"),
            Err(ProtocolError::InvalidReply("unknown type byte"))
        );
        let deep = [b"*1\r\n".repeat(200), b":1\r\n".to_vec()].concat();
        assert_eq!(Frame::parse(&deep), Err(ProtocolError::TooDeep));
    }

    #[test]
    fn encode_resp3_round_trips() {
        for raw in [
            &b"+OK\r\n"[..],
            b"-ERR x\r\n",
            b"!5\r\na\r\nbc\r\n",
            b":7\r\n",
            b"$2\r\nhi\r\n",
            b"_\r\n",
            b",1.5\r\n",
            b",inf\r\n",
            b",1e300\r\n",
            b"#t\r\n",
            b"(123\r\n",
            b"=6\r\nmkd:hi\r\n",
            b"*2\r\n%1\r\n+k\r\n:1\r\n~1\r\n>1\r\n#f\r\n",
        ] {
            let f = parse(raw);
            assert_eq!(enc(&f, Protocol::Resp3), raw, "{f:?}");
            assert_eq!(parse(&enc(&f, Protocol::Resp3)), f);
        }
    }

    #[test]
    fn encode_resp2_matches_to_resp2() {
        for raw in [
            &b"_\r\n"[..],
            b",1.5\r\n",
            b",-inf\r\n",
            b"#t\r\n",
            b"#f\r\n",
            b"(123\r\n",
            b"=6\r\ntxt:hi\r\n",
            b"!5\r\na\r\nbc\r\n",
            b"*3\r\n:1\r\n%2\r\n$1\r\nk\r\n~1\r\n,0.5\r\n+x\r\n_\r\n>1\r\n#f\r\n",
        ] {
            let mut want = BytesMut::new();
            crate::resp::convert::to_resp2(raw, false, &mut want);
            assert_eq!(
                String::from_utf8_lossy(&enc(&parse(raw), Protocol::Resp2)),
                String::from_utf8_lossy(&want)
            );
        }
        assert_eq!(enc(&Frame::Null, Protocol::Resp2), b"$-1\r\n");
        assert_eq!(enc(&Frame::Double(1.0), Protocol::Resp2), b"$1\r\n1\r\n");
        assert_eq!(enc(&Frame::Simple(b("a\nb")), Protocol::Resp2), b"+a b\r\n");
        assert_eq!(
            enc(&Frame::Error(b("E\r\nx")), Protocol::Resp2),
            b"-E  x\r\n"
        );
    }

    #[test]
    fn accessors() {
        assert_eq!(parse(b"$2\r\n42\r\n").as_int(), Some(42));
        assert_eq!(parse(b":42\r\n").as_int(), Some(42));
        assert_eq!(parse(b"+x\r\n").as_int(), None);
        assert_eq!(parse(b"=6\r\ntxt:hi\r\n").as_bytes(), Some(&b"hi"[..]));
        assert_eq!(parse(b":1\r\n").as_bytes(), None);
    }

    #[test]
    fn doubles_format_shortest() {
        assert_eq!(format_double(0.1), "0.1");
        assert_eq!(format_double(-2.0), "-2");
        assert_eq!(format_double(1e300), "1e300");
        assert_eq!(format_double(1.5e-10), "1.5e-10");
        assert_eq!(format_double(f64::NAN), "nan");
        assert_eq!(format_double(f64::INFINITY), "inf");
    }
}
