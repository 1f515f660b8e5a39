//! RESP3 → RESP2 downconversion, so RESP2 and RESP3 clients can share RESP3 node connections.

use bytes::{BufMut, BytesMut};

use super::encode;
use super::parse::{blob, header, line, put_sanitized, Levels, PERMISSIVE};
use super::scan_reply;

/// Appends the RESP2 form of the complete RESP3 frame `raw` to `out`.
/// Map → flat array, set/push → array, double/big number/verbatim → bulk string, boolean →
/// integer 1/0, attribute → dropped. A null (`_`) becomes `*-1` when `null_array` (commands whose
/// RESP2 nil is a null array: BLPOP, EXEC, XREAD, ...) else `$-1`, for top-level and nested nulls.
///
/// RESP2 parts are copied byte for byte, so a frame without RESP3 types comes out unchanged.
/// `raw` must be a frame accepted by [`scan_reply`]; anything else is
/// appended unchanged rather than half-converted.
pub fn to_resp2(raw: &[u8], null_array: bool, out: &mut BytesMut) {
    let start = out.len();
    match convert(raw, 0, null_array, out) {
        Some(end) if end == raw.len() => {}
        _ => {
            out.truncate(start);
            out.extend_from_slice(raw);
        }
    }
}

/// Converts the value at `pos`; returns where it ends, `None` on a malformed frame. Iterative
/// (see [`Levels`]): a node may legitimately nest thousands of levels deep (Lua tables).
fn convert(raw: &[u8], mut pos: usize, null_array: bool, out: &mut BytesMut) -> Option<usize> {
    let mut levels = Levels::new();
    loop {
        match step(raw, pos, null_array, out)? {
            Step::Open { values, next } => {
                levels.push(values);
                pos = next;
                continue;
            }
            Step::Done(next) => pos = next,
        }
        // A value is complete: close every aggregate it completes.
        loop {
            let Some(top) = levels.top_mut() else {
                return Some(pos);
            };
            *top -= 1;
            if *top > 0 {
                break;
            }
            levels.pop();
        }
    }
}

/// What [`step`] found at a position.
enum Step {
    /// A whole value (scalar, null or empty aggregate), converted; the next position.
    Done(usize),
    /// An aggregate header, converted; `values` (> 0) values follow from `next`.
    Open { values: u64, next: usize },
}

/// Converts one scalar, or one aggregate's header, at `pos`.
fn step(raw: &[u8], mut pos: usize, null_array: bool, out: &mut BytesMut) -> Option<Step> {
    loop {
        let t = *raw.get(pos)?;
        match t {
            b'+' | b'-' | b':' => {
                let (_, next) = line(raw, pos + 1)?;
                out.extend_from_slice(&raw[pos..next]);
                return Some(Step::Done(next));
            }
            b'$' => {
                let (_, next) = blob(raw, pos)?;
                out.extend_from_slice(raw.get(pos..next)?);
                return Some(Step::Done(next));
            }
            b'*' | b'~' | b'>' | b'%' => {
                let (n, next) = header(raw, pos)?;
                if t == b'*' {
                    // RESP2 header (null array included): keep the node's bytes.
                    out.extend_from_slice(&raw[pos..next]);
                    if n <= 0 {
                        return Some(Step::Done(next));
                    }
                } else if n < 0 {
                    return None;
                }
                let values = if t == b'%' { n.checked_mul(2)? } else { n };
                if t != b'*' {
                    encode::array_len(out, usize::try_from(values).ok()?);
                }
                return Some(match u64::try_from(values).ok()? {
                    0 => Step::Done(next),
                    values => Step::Open { values, next },
                });
            }
            b'_' => {
                let (_, next) = line(raw, pos + 1)?;
                out.extend_from_slice(if null_array { b"*-1\r\n" } else { b"$-1\r\n" });
                return Some(Step::Done(next));
            }
            b',' | b'(' => {
                let (end, next) = line(raw, pos + 1)?;
                encode::bulk(out, &raw[pos + 1..end]);
                return Some(Step::Done(next));
            }
            b'#' => {
                let (end, next) = line(raw, pos + 1)?;
                out.extend_from_slice(match &raw[pos + 1..end] {
                    b"t" => b":1\r\n",
                    b"f" => b":0\r\n",
                    _ => return None,
                });
                return Some(Step::Done(next));
            }
            b'!' => {
                // A blob error may hold CR/LF; a RESP2 simple error cannot.
                let (data, next) = blob(raw, pos)?;
                out.put_u8(b'-');
                put_sanitized(out, data?);
                out.extend_from_slice(b"\r\n");
                return Some(Step::Done(next));
            }
            b'=' => {
                // `=15\r\ntxt:Some string`: drop the `txt:` format prefix.
                let (data, next) = blob(raw, pos)?;
                encode::bulk(out, data?.get(4..)?);
                return Some(Step::Done(next));
            }
            b'|' => {
                // Attributes carry out-of-band metadata RESP2 cannot express: skip the map and
                // convert the value it is attached to.
                let (n, next) = header(raw, pos)?;
                let mut p = next;
                for _ in 0..u64::try_from(n).ok()?.checked_mul(2)? {
                    p += scan_reply(raw.get(p..)?, &PERMISSIVE).ok()??.len;
                }
                pos = p;
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::{scan_reply, Limits};

    fn conv(raw: &[u8], null_array: bool) -> Vec<u8> {
        let mut out = BytesMut::new();
        to_resp2(raw, null_array, &mut out);
        // The output is a single RESP2 frame.
        let s = scan_reply(&out, &Limits::default()).unwrap().unwrap();
        assert_eq!(s.len, out.len());
        assert!(!s.resp3, "{:?}", String::from_utf8_lossy(&out));
        out.to_vec()
    }

    fn check(raw: &[u8], want: &[u8]) {
        assert_eq!(
            String::from_utf8_lossy(&conv(raw, false)),
            String::from_utf8_lossy(want),
            "from {:?}",
            String::from_utf8_lossy(raw)
        );
    }

    #[test]
    fn scalars() {
        check(b",1.5\r\n", b"$3\r\n1.5\r\n");
        check(b",inf\r\n", b"$3\r\ninf\r\n");
        check(b",-inf\r\n", b"$4\r\n-inf\r\n");
        check(b"#t\r\n", b":1\r\n");
        check(b"#f\r\n", b":0\r\n");
        check(b"!11\r\nERR no\r\nway\r\n", b"-ERR no  way\r\n");
        check(b"=15\r\ntxt:Some string\r\n", b"$11\r\nSome string\r\n");
        check(b"=4\r\nmkd:\r\n", b"$0\r\n\r\n");
        check(
            b"(12345678901234567890\r\n",
            b"$20\r\n12345678901234567890\r\n",
        );
        check(b"_\r\n", b"$-1\r\n");
        assert_eq!(conv(b"_\r\n", true), b"*-1\r\n");
    }

    #[test]
    fn aggregates() {
        check(
            b"%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n",
            b"*4\r\n+a\r\n:1\r\n+b\r\n:2\r\n",
        );
        check(b"~2\r\n:1\r\n#t\r\n", b"*2\r\n:1\r\n:1\r\n");
        check(
            b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n,2\r\n",
            b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\n2\r\n",
        );
        check(b"%0\r\n", b"*0\r\n");
        check(b"~0\r\n", b"*0\r\n");
    }

    #[test]
    fn nested_map_inside_array() {
        check(
            b"*3\r\n:1\r\n%2\r\n$1\r\nk\r\n~1\r\n,0.5\r\n+x\r\n_\r\n*1\r\n#f\r\n",
            b"*3\r\n:1\r\n*4\r\n$1\r\nk\r\n*1\r\n$3\r\n0.5\r\n+x\r\n$-1\r\n*1\r\n:0\r\n",
        );
    }

    #[test]
    fn nested_nulls_follow_null_array() {
        let raw = b"*2\r\n_\r\n%1\r\n+k\r\n_\r\n";
        assert_eq!(conv(raw, true), b"*2\r\n*-1\r\n*2\r\n+k\r\n*-1\r\n");
        assert_eq!(conv(raw, false), b"*2\r\n$-1\r\n*2\r\n+k\r\n$-1\r\n");
        // A RESP2 null is left alone either way.
        assert_eq!(conv(b"$-1\r\n", true), b"$-1\r\n");
    }

    #[test]
    fn attributes_are_dropped() {
        check(b"|1\r\n+ttl\r\n:3600\r\n+OK\r\n", b"+OK\r\n");
        check(b"|0\r\n:7\r\n", b":7\r\n");
        // Attribute values may themselves be aggregates or carry attributes.
        check(
            b"|2\r\n+a\r\n%1\r\n+x\r\n*1\r\n:1\r\n+b\r\n|1\r\n+c\r\n+d\r\n#t\r\n$2\r\nhi\r\n",
            b"$2\r\nhi\r\n",
        );
        // Inside an array the attribute is not an element.
        check(
            b"*2\r\n|1\r\n+k\r\n+v\r\n:1\r\n#t\r\n",
            b"*2\r\n:1\r\n:1\r\n",
        );
    }

    #[test]
    fn resp2_frames_are_byte_identical() {
        for raw in [
            &b"+OK\r\n"[..],
            b"-ERR x\r\n",
            b":-5\r\n",
            b"$3\r\na\r\n\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*2\r\n*2\r\n$1\r\na\r\n:1\r\n$-1\r\n",
        ] {
            assert_eq!(conv(raw, true), raw);
            assert_eq!(conv(raw, false), raw);
        }
    }

    #[test]
    fn random_frames_convert_to_single_resp2_frames() {
        let mut rng = crate::resp::reply::tests::Rng(0x1234_5678_9ABC_DEF1);
        for _ in 0..2000 {
            let mut f = Vec::new();
            crate::resp::reply::tests::random_frame(&mut rng, 4, &mut f);
            let out = conv(&f, rng.next() & 1 == 0);
            if !scan_reply(&f, &Limits::default()).unwrap().unwrap().resp3 {
                assert_eq!(out, f);
            }
        }
    }

    #[test]
    fn deep_frames_convert_without_recursion() {
        // Nested far deeper than any thread stack would allow a recursive walk (a Lua table
        // from a node may nest nearly 8000 deep), with RESP3 types at every level.
        let depth = 100_000;
        let mut raw = b"%1\r\n#t\r\n".repeat(depth);
        raw.extend_from_slice(b",1.5\r\n");
        let mut want = b"*2\r\n:1\r\n".repeat(depth);
        want.extend_from_slice(b"$3\r\n1.5\r\n");
        let mut out = BytesMut::new();
        to_resp2(&raw, false, &mut out);
        assert!(out[..] == want[..], "deep map not converted");
    }

    #[test]
    fn appends_and_keeps_existing_output() {
        let mut out = BytesMut::from(&b"+first\r\n"[..]);
        to_resp2(b"#t\r\n", false, &mut out);
        assert_eq!(&out[..], b"+first\r\n:1\r\n");
    }

    #[test]
    fn malformed_input_is_copied_unchanged() {
        for raw in [
            &b"%1\r\n+a\r\n"[..],
            b"#x\r\n",
            b"=2\r\nab\r\n",
            b"?",
            b"",
            b"*1\r\n:1\r\nextra",
        ] {
            let mut out = BytesMut::from(&b"X"[..]);
            to_resp2(raw, false, &mut out);
            assert_eq!(&out[1..], raw);
        }
    }
}

/// Replies whose RESP2 form is not a mechanical translation of their RESP3 form. Redis
/// builds these differently per protocol, so shared RESP3 node connections need to know the
/// command to answer a RESP2 client exactly as Redis would (shapes checked against Redis 7.0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReplyShape {
    /// Mechanical translation ([`to_resp2`]).
    #[default]
    Plain,
    /// RESP3 `[[member, score], ...]` is RESP2 `[member, score, ...]`: ZRANGE (and the
    /// BYSCORE/REV variants, ZUNION, ZINTER, ZDIFF) WITHSCORES, ZPOPMIN/ZPOPMAX with a count,
    /// ZRANDMEMBER WITHSCORES, HRANDFIELD WITHVALUES.
    FlattenPairs,
    /// RESP3 map `{stream: entries, ...}` is RESP2 `[[stream, entries], ...]`: XREAD, XREADGROUP.
    MapAsPairs,
    /// Nested RESP3 nulls are RESP2 null arrays: GEOPOS.
    NullArrays,
    /// `INFO` (default, `all`, `everything`): the master's text, to which the session appends
    /// the proxy's own sections before encoding it for the client's protocol.
    ProxyInfo,
    /// `INFO` of other sections: the master's text with the proxy's figures for its clients.
    AmendedInfo,
}

/// [`to_resp2`] for a reply of the given shape. Falls back to the mechanical translation when
/// the reply does not have the expected form (an error, a null, ...).
pub fn to_resp2_shaped(raw: &[u8], shape: ReplyShape, null_array: bool, out: &mut BytesMut) {
    if shape == ReplyShape::Plain {
        return to_resp2(raw, null_array, out);
    }
    let start = out.len();
    if shaped(raw, shape, null_array, out) != Some(raw.len()) {
        out.truncate(start);
        to_resp2(raw, null_array, out);
    }
}

fn shaped(raw: &[u8], shape: ReplyShape, null_array: bool, out: &mut BytesMut) -> Option<usize> {
    const PAIR: &[u8] = b"*2\r\n";
    match (shape, *raw.first()?) {
        (ReplyShape::FlattenPairs, b'*') => {
            let (n, mut p) = header(raw, 0)?;
            if n <= 0 {
                return convert(raw, 0, null_array, out);
            }
            let mut kids = Vec::with_capacity(usize::try_from(n).ok()?);
            for _ in 0..n {
                let len = scan_reply(raw.get(p..)?, &PERMISSIVE).ok()??.len;
                kids.push(p);
                p += len;
            }
            let total: usize = kids
                .iter()
                .map(|&k| if raw[k..].starts_with(PAIR) { 2 } else { 1 })
                .sum();
            encode::array_len(out, total);
            for k in kids {
                let at = if raw[k..].starts_with(PAIR) {
                    k + PAIR.len()
                } else {
                    k
                };
                let next = convert(raw, at, null_array, out)?;
                if at != k {
                    convert(raw, next, null_array, out)?;
                }
            }
            Some(p)
        }
        (ReplyShape::MapAsPairs, b'%') => {
            let (n, mut p) = header(raw, 0)?;
            encode::array_len(out, usize::try_from(n).ok()?);
            for _ in 0..n {
                out.extend_from_slice(PAIR);
                p = convert(raw, p, null_array, out)?;
                p = convert(raw, p, null_array, out)?;
            }
            Some(p)
        }
        (ReplyShape::NullArrays, b'*') => convert(raw, 0, true, out),
        _ => convert(raw, 0, null_array, out),
    }
}

#[cfg(test)]
mod shape_tests {
    use super::*;

    fn shaped(raw: &[u8], shape: ReplyShape, null_array: bool) -> Vec<u8> {
        let mut out = BytesMut::new();
        to_resp2_shaped(raw, shape, null_array, &mut out);
        out.to_vec()
    }

    // Every pair below is what Redis 7.0.15 sent for the same command in RESP3 and RESP2.
    #[test]
    fn shapes_match_redis() {
        let flat = ReplyShape::FlattenPairs;
        assert_eq!(
            shaped(
                b"*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n",
                flat,
                false
            ),
            b"*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$3\r\n2.5\r\n"
        );
        assert_eq!(
            shaped(b"*1\r\n*2\r\n$1\r\na\r\n,1\r\n", flat, false),
            b"*2\r\n$1\r\na\r\n$1\r\n1\r\n"
        );
        // ZPOPMIN without a count is already flat.
        assert_eq!(
            shaped(b"*2\r\n$1\r\na\r\n,1\r\n", flat, false),
            b"*2\r\n$1\r\na\r\n$1\r\n1\r\n"
        );
        assert_eq!(shaped(b"*0\r\n", flat, false), b"*0\r\n");
        assert_eq!(shaped(b"-ERR x\r\n", flat, false), b"-ERR x\r\n");
        assert_eq!(
            shaped(
                b"%1\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n",
                ReplyShape::MapAsPairs,
                true
            ),
            b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
        );
        assert_eq!(shaped(b"_\r\n", ReplyShape::MapAsPairs, true), b"*-1\r\n");
        assert_eq!(
            shaped(
                b"*2\r\n*2\r\n,13.5\r\n,38.25\r\n_\r\n",
                ReplyShape::NullArrays,
                false
            ),
            b"*2\r\n*2\r\n$4\r\n13.5\r\n$5\r\n38.25\r\n*-1\r\n"
        );
    }
}
