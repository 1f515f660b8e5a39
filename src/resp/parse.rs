//! Byte-level helpers shared by the request decoder, the reply scanner and the converters.

use super::Limits;

/// Limits that accept anything a stricter scan already accepted: used to re-walk frames that
/// were validated with the caller's limits (attribute skipping, conversion, `Frame::parse`).
pub(crate) const PERMISSIVE: Limits = Limits {
    max_bulk_len: usize::MAX,
    max_multibulk_len: usize::MAX,
    max_depth: usize::MAX,
    max_inline_len: usize::MAX,
    unauthenticated: false,
};

/// Levels kept inline by [`Levels`]: deeper nesting is rare enough to pay an allocation.
const INLINE_LEVELS: usize = 16;

/// The values still expected at each open aggregate level, for the iterative frame walkers
/// (scanner, converter). Nothing recurses, so depth costs no thread stack: it is bounded only
/// by the caller's `max_depth` and by the frame itself (every level takes at least 4 bytes of
/// it). The first levels live inline, so ordinary replies allocate nothing.
pub(crate) struct Levels {
    inline: [u64; INLINE_LEVELS],
    deeper: Vec<u64>,
    len: usize,
}

impl Levels {
    pub(crate) fn new() -> Levels {
        Levels {
            inline: [0; INLINE_LEVELS],
            deeper: Vec::new(),
            len: 0,
        }
    }

    /// Open levels.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn push(&mut self, remaining: u64) {
        if self.len < INLINE_LEVELS {
            self.inline[self.len] = remaining;
        } else {
            self.deeper.push(remaining);
        }
        self.len += 1;
    }

    /// The innermost open level's count.
    #[inline]
    pub(crate) fn top_mut(&mut self) -> Option<&mut u64> {
        match self.len {
            0 => None,
            n if n <= INLINE_LEVELS => Some(&mut self.inline[n - 1]),
            _ => self.deeper.last_mut(),
        }
    }

    #[inline]
    pub(crate) fn pop(&mut self) {
        if self.len > INLINE_LEVELS {
            self.deeper.pop();
        }
        self.len = self.len.saturating_sub(1);
    }
}

/// Position of the first `b` in `hay`.
#[inline]
pub(crate) fn find(hay: &[u8], b: u8) -> Option<usize> {
    hay.iter().position(|&c| c == b)
}

/// Redis's `string2ll`: a strict decimal `i64`, no `+`, no leading zeros, no `-0`, no spaces.
/// Lengths and counts are parsed with it because Redis rejects anything else with the same
/// "invalid ... length" error we must reproduce.
#[inline]
pub(crate) fn string2ll(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [] => return None,
        [b'0'] => return Some(0),
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    if !matches!(digits.first(), Some(b'1'..=b'9')) || digits.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        // 19 digits always fit in u64, so only the final i64 range check can fail.
        v = v * 10 + u64::from(d);
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

/// Fast path for the overwhelmingly common header `<type><digits>\r`: a canonical non-negative
/// number of at most 18 digits right after the type byte at `hdr[0]`, followed by `\r`.
/// Returns the value and the index of the `\r`; `None` sends the caller to the general
/// (exact, slower) path, which decides what anything else means.
#[inline(always)]
pub(crate) fn fast_len(hdr: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    let mut i = 1;
    loop {
        let c = *hdr.get(i)?;
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            // Empty, a leading zero other than "0" itself, or too long: not canonical.
            let canonical = i > 1 && i <= 19 && (hdr[1] != b'0' || i == 2);
            return if c == b'\r' && canonical {
                Some((v, i))
            } else {
                None
            };
        }
        if i > 18 {
            return None;
        }
        v = v * 10 + u64::from(d);
        i += 1;
    }
}

/// A lenient integer as servers may send it in `:` replies (optional sign, leading zeros).
pub(crate) fn parse_int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?;
        v = if neg {
            v.checked_sub(i64::from(d))?
        } else {
            v.checked_add(i64::from(d))?
        };
    }
    Some(v)
}

/// A RESP3 big number: optional sign and at least one digit.
pub(crate) fn is_big_number(s: &[u8]) -> bool {
    let digits = match s {
        [b'-' | b'+', rest @ ..] => rest,
        _ => s,
    };
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// A CRLF-terminated line starting at `pos`: `(end of content, start of next)`. `None` when
/// the terminator is missing or not a proper CRLF (callers here only walk validated frames).
#[inline]
pub(crate) fn line(buf: &[u8], pos: usize) -> Option<(usize, usize)> {
    let rest = buf.get(pos..)?;
    let i = find(rest, b'\r')?;
    if rest.get(i + 1) != Some(&b'\n') {
        return None;
    }
    Some((pos + i, pos + i + 2))
}

/// The length/count header of a blob or aggregate whose type byte is at `pos`.
#[inline]
pub(crate) fn header(buf: &[u8], pos: usize) -> Option<(i64, usize)> {
    if let Some((n, cr)) = buf.get(pos..).and_then(fast_len) {
        if buf.get(pos + cr + 1) == Some(&b'\n') {
            // fast_len accepts at most 18 digits: the value fits in i64.
            return Some((n as i64, pos + cr + 2));
        }
    }
    let (end, next) = line(buf, pos + 1)?;
    Some((string2ll(buf.get(pos + 1..end)?)?, next))
}

/// The payload of a blob (`$`, `!`, `=`) whose type byte is at `pos`: `(data, start of next)`;
/// `Ok(None)` data for a null bulk.
#[inline]
pub(crate) fn blob(buf: &[u8], pos: usize) -> Option<(Option<&[u8]>, usize)> {
    let (n, next) = header(buf, pos)?;
    if n < 0 {
        return Some((None, next));
    }
    let end = next.checked_add(usize::try_from(n).ok()?)?;
    let data = buf.get(next..end)?;
    Some((Some(data), end.checked_add(2)?))
}

/// Replaces CR and LF with spaces: a simple string or error cannot carry them (Redis does the
/// same before sending `-ERR ...` built from user input).
#[inline]
pub(crate) fn put_sanitized(out: &mut bytes::BytesMut, text: &[u8]) {
    if text.iter().any(|&c| c == b'\r' || c == b'\n') {
        out.extend(
            text.iter()
                .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
        );
    } else {
        out.extend_from_slice(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string2ll_is_strict() {
        assert_eq!(string2ll(b"0"), Some(0));
        assert_eq!(string2ll(b"123"), Some(123));
        assert_eq!(string2ll(b"-1"), Some(-1));
        assert_eq!(string2ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"00",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"1a",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"99999999999999999999",
        ] {
            assert_eq!(string2ll(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn fast_len_agrees_with_string2ll() {
        for ok in ["0", "7", "10", "123456789012345678"] {
            let h = format!("${ok}\r\n");
            assert_eq!(
                fast_len(h.as_bytes()),
                Some((ok.parse().unwrap(), ok.len() + 1))
            );
        }
        for other in ["", "-1", "01", "00", "?", "1x", "1234567890123456789", "1"] {
            let h = if other == "1" {
                "$1".to_owned()
            } else {
                format!("${other}\r\n")
            };
            assert_eq!(fast_len(h.as_bytes()), None, "{other}");
        }
    }

    #[test]
    fn parse_int_is_lenient_but_checked() {
        assert_eq!(parse_int(b"+007"), Some(7));
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int(b"9223372036854775808"), None);
        assert_eq!(parse_int(b"-"), None);
        assert_eq!(parse_int(b"1.0"), None);
    }

    #[test]
    fn sanitize_replaces_crlf() {
        let mut out = bytes::BytesMut::new();
        put_sanitized(&mut out, b"a\r\nb\nc");
        assert_eq!(&out[..], b"a  b c");
    }
}
