//! RESP3 → RESP2 downconversion, so RESP2 and RESP3 clients can share RESP3 node connections.

use bytes::{BufMut, BytesMut};

use super::encode;
use super::parse::{blob, header, line, put_sanitized, HARD_MAX_DEPTH, PERMISSIVE};
use super::scan_reply;

/// Appends the RESP2 form of the complete RESP3 frame `raw` to `out`.
/// Map → flat array, set/push → array, double/big number/verbatim → bulk string, boolean →
/// integer 1/0, attribute → dropped. A null (`_`) becomes `*-1` when `null_array` (commands whose
/// RESP2 nil is a null array: BLPOP, EXEC, XREAD, ...) else `$-1`, for top-level and nested nulls.
///
/// RESP2 parts are copied byte for byte, so a frame without RESP3 types comes out unchanged.
/// `raw` must be a frame accepted by [`scan_reply`](super::scan_reply); anything else is
/// appended unchanged rather than half-converted.
pub fn to_resp2(raw: &[u8], null_array: bool, out: &mut BytesMut) {
    let start = out.len();
    match convert(raw, 0, null_array, out, 0) {
        Some(end) if end == raw.len() => {}
        _ => {
            out.truncate(start);
            out.extend_from_slice(raw);
        }
    }
}

/// Converts the value at `pos`; returns where it ends, `None` on a malformed frame.
fn convert(
    raw: &[u8],
    mut pos: usize,
    null_array: bool,
    out: &mut BytesMut,
    depth: usize,
) -> Option<usize> {
    if depth > HARD_MAX_DEPTH {
        return None;
    }
    loop {
        let t = *raw.get(pos)?;
        match t {
            b'+' | b'-' | b':' => {
                let (_, next) = line(raw, pos + 1)?;
                out.extend_from_slice(&raw[pos..next]);
                return Some(next);
            }
            b'$' => {
                let (_, next) = blob(raw, pos)?;
                out.extend_from_slice(raw.get(pos..next)?);
                return Some(next);
            }
            b'*' | b'~' | b'>' | b'%' => {
                let (n, next) = header(raw, pos)?;
                if t == b'*' {
                    // RESP2 header (null array included): keep the node's bytes.
                    out.extend_from_slice(&raw[pos..next]);
                    if n <= 0 {
                        return Some(next);
                    }
                } else if n < 0 {
                    return None;
                }
                let values = if t == b'%' { n.checked_mul(2)? } else { n };
                if t != b'*' {
                    encode::array_len(out, usize::try_from(values).ok()?);
                }
                let mut p = next;
                for _ in 0..values {
                    p = convert(raw, p, null_array, out, depth + 1)?;
                }
                return Some(p);
            }
            b'_' => {
                let (_, next) = line(raw, pos + 1)?;
                out.extend_from_slice(if null_array { b"*-1\r\n" } else { b"$-1\r\n" });
                return Some(next);
            }
            b',' | b'(' => {
                let (end, next) = line(raw, pos + 1)?;
                encode::bulk(out, &raw[pos + 1..end]);
                return Some(next);
            }
            b'#' => {
                let (end, next) = line(raw, pos + 1)?;
                out.extend_from_slice(match &raw[pos + 1..end] {
                    b"t" => b":1\r\n",
                    b"f" => b":0\r\n",
                    _ => return None,
                });
                return Some(next);
            }
            b'!' => {
                // A blob error may hold CR/LF; a RESP2 simple error cannot.
                let (data, next) = blob(raw, pos)?;
                out.put_u8(b'-');
                put_sanitized(out, data?);
                out.extend_from_slice(b"\r\n");
                return Some(next);
            }
            b'=' => {
                // `=15\r\ntxt:Some string`: drop the `txt:` format prefix.
                let (data, next) = blob(raw, pos)?;
                encode::bulk(out, data?.get(4..)?);
                return Some(next);
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
