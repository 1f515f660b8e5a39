//! Zero-copy reply framing: check that a complete frame is buffered, then split it off whole.

use bytes::Bytes;

use super::parse::{find, is_big_number, parse_int, string2ll, HARD_MAX_DEPTH};
use super::{Limits, ProtocolError};

/// What `scan_reply` learned about one complete frame at the front of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyScan {
    /// Length in bytes of the frame (attributes included).
    pub len: usize,
    /// The frame contains a RESP3-only type somewhere (map, set, double, boolean, null `_`,
    /// big number, verbatim, push, attribute) and must be converted for a RESP2 client.
    pub resp3: bool,
    /// The top-level frame is a push (`>`): out-of-band data, not a reply to a request.
    pub push: bool,
}

/// Finds one complete frame at the front of `buf` without allocating. `Ok(None)`: incomplete.
///
/// Accepts RESP2 and RESP3 (`+ - : $ *` and `_ , # ( ! = % ~ > |`); an attribute (`|`) is
/// counted as part of the frame it precedes. Aggregates deeper than `limits.max_depth` (capped
/// at 1024) give `TooDeep`; streamed RESP3 types (`$?`, `*?`, ...), which Redis never sends,
/// give `InvalidReply`. `push` is set when the top-level frame (after any attribute) is `>`.
pub fn scan_reply(buf: &[u8], limits: &Limits) -> Result<Option<ReplyScan>, ProtocolError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut s = Scanner {
        buf,
        limits,
        max_depth: limits.max_depth.min(HARD_MAX_DEPTH),
        resp3: false,
        top: 0,
    };
    match s.value(0, 0) {
        Ok(len) => Ok(Some(ReplyScan {
            len,
            resp3: s.resp3,
            push: s.top == b'>',
        })),
        Err(Stop::Incomplete) => Ok(None),
        Err(Stop::Invalid(e)) => Err(e),
    }
}

/// Why a scan stopped early.
enum Stop {
    Incomplete,
    Invalid(ProtocolError),
}

impl From<ProtocolError> for Stop {
    fn from(e: ProtocolError) -> Stop {
        Stop::Invalid(e)
    }
}

/// Longest `$`/`*`/... header line accepted: `-9223372036854775808` is 20 bytes; anything much
/// longer is garbage, and we would rather say so than buffer it.
const MAX_HEADER_LINE: usize = 64;

const STREAMED: ProtocolError =
    ProtocolError::InvalidReply("streamed RESP3 types are not supported");

struct Scanner<'a> {
    buf: &'a [u8],
    limits: &'a Limits,
    max_depth: usize,
    resp3: bool,
    top: u8,
}

impl Scanner<'_> {
    /// The CRLF-terminated line whose content starts at `pos`: `(content end, next frame)`.
    /// A line whose CR is not yet in view and that is already longer than `max` is refused
    /// now rather than buffered without bound.
    #[inline]
    fn line(
        &self,
        pos: usize,
        max: usize,
        too_long: ProtocolError,
    ) -> Result<(usize, usize), Stop> {
        let rest = self.buf.get(pos..).unwrap_or_default();
        match find(rest, b'\r') {
            Some(i) if i > max => Err(too_long.into()),
            Some(i) => match rest.get(i + 1) {
                None => Err(Stop::Incomplete),
                Some(b'\n') => Ok((pos + i, pos + i + 2)),
                Some(_) => Err(ProtocolError::InvalidReply("expected CRLF").into()),
            },
            None if rest.len() > max => Err(too_long.into()),
            None => Err(Stop::Incomplete),
        }
    }

    /// A line-typed value (`+ - : _ , # (`) at `pos`: its content and the next position.
    #[inline]
    fn simple(&self, pos: usize) -> Result<(&[u8], usize), Stop> {
        let (end, next) = self.line(
            pos + 1,
            self.limits.max_bulk_len,
            ProtocolError::InvalidReply("line too long"),
        )?;
        Ok((&self.buf[pos + 1..end], next))
    }

    /// One value starting at `pos`, nested in `depth` aggregates; returns where it ends.
    fn value(&mut self, mut pos: usize, depth: usize) -> Result<usize, Stop> {
        loop {
            let t = *self.buf.get(pos).ok_or(Stop::Incomplete)?;
            if depth == 0 && t != b'|' {
                self.top = t;
            }
            match t {
                b'+' | b'-' => return Ok(self.simple(pos)?.1),
                b':' => {
                    let (s, next) = self.simple(pos)?;
                    if parse_int(s).is_none() {
                        return Err(ProtocolError::InvalidReply("invalid integer").into());
                    }
                    return Ok(next);
                }
                b'$' => return self.blob(pos, true),
                b'*' => return self.aggregate(pos, depth, 1, true),
                _ => {}
            }
            self.resp3 = true;
            match t {
                b'!' | b'=' => return self.blob(pos, false),
                b'_' => {
                    let (s, next) = self.simple(pos)?;
                    if !s.is_empty() {
                        return Err(ProtocolError::InvalidReply("invalid null").into());
                    }
                    return Ok(next);
                }
                b',' => {
                    let (s, next) = self.simple(pos)?;
                    if s.is_empty() {
                        return Err(ProtocolError::InvalidReply("invalid double").into());
                    }
                    return Ok(next);
                }
                b'#' => {
                    let (s, next) = self.simple(pos)?;
                    if s != b"t" && s != b"f" {
                        return Err(ProtocolError::InvalidReply("invalid boolean").into());
                    }
                    return Ok(next);
                }
                b'(' => {
                    let (s, next) = self.simple(pos)?;
                    if !is_big_number(s) {
                        return Err(ProtocolError::InvalidReply("invalid big number").into());
                    }
                    return Ok(next);
                }
                b'%' => return self.aggregate(pos, depth, 2, false),
                b'~' | b'>' => return self.aggregate(pos, depth, 1, false),
                // The attribute's map belongs to the value that follows it, which is still
                // the value we were asked for.
                b'|' => pos = self.aggregate(pos, depth, 2, false)?,
                _ => return Err(ProtocolError::InvalidReply("unknown type byte").into()),
            }
        }
    }

    /// `$`, `!` or `=` at `pos`.
    fn blob(&mut self, pos: usize, nullable: bool) -> Result<usize, Stop> {
        let (end, next) = self.line(pos + 1, MAX_HEADER_LINE, ProtocolError::InvalidBulkLength)?;
        let s = &self.buf[pos + 1..end];
        if s == b"?" {
            return Err(STREAMED.into());
        }
        let n = string2ll(s).ok_or(ProtocolError::InvalidBulkLength)?;
        if n < 0 {
            if n == -1 && nullable {
                return Ok(next);
            }
            return Err(ProtocolError::InvalidBulkLength.into());
        }
        if n as u64 > self.limits.max_bulk_len as u64 {
            return Err(ProtocolError::InvalidBulkLength.into());
        }
        // n <= max_bulk_len, a usize.
        let n = n as usize;
        let data_end = next
            .checked_add(n)
            .ok_or(ProtocolError::InvalidBulkLength)?;
        let frame_end = data_end
            .checked_add(2)
            .ok_or(ProtocolError::InvalidBulkLength)?;
        let Some(tail) = self.buf.get(data_end..frame_end) else {
            return Err(Stop::Incomplete);
        };
        if tail != b"\r\n" {
            return Err(ProtocolError::InvalidReply("bulk string not terminated by CRLF").into());
        }
        // Verbatim strings carry a 3-byte format and a colon, which conversion strips.
        if self.buf[pos] == b'=' && (n < 4 || self.buf[next + 3] != b':') {
            return Err(ProtocolError::InvalidReply("invalid verbatim string").into());
        }
        Ok(frame_end)
    }

    /// An aggregate header at `pos` announcing `n` entries of `per` values each, then the values.
    fn aggregate(
        &mut self,
        pos: usize,
        depth: usize,
        per: u64,
        nullable: bool,
    ) -> Result<usize, Stop> {
        let (end, next) = self.line(
            pos + 1,
            MAX_HEADER_LINE,
            ProtocolError::InvalidMultibulkLength,
        )?;
        let s = &self.buf[pos + 1..end];
        if s == b"?" {
            return Err(STREAMED.into());
        }
        let n = string2ll(s).ok_or(ProtocolError::InvalidMultibulkLength)?;
        if n < 0 {
            if n == -1 && nullable {
                return Ok(next);
            }
            return Err(ProtocolError::InvalidMultibulkLength.into());
        }
        if n as u64 > self.limits.max_multibulk_len as u64 {
            return Err(ProtocolError::InvalidMultibulkLength.into());
        }
        if depth >= self.max_depth {
            return Err(ProtocolError::TooDeep.into());
        }
        let mut p = next;
        // Counting down stops at the first missing element, however large `n` claims to be.
        for _ in 0..(n as u64) * per {
            p = self.value(p, depth + 1)?;
        }
        Ok(p)
    }
}

/// One complete reply frame as the node sent it.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The frame's bytes, unchanged.
    pub raw: Bytes,
    /// Contains RESP3-only types (see [`ReplyScan::resp3`]).
    pub resp3: bool,
}

impl Reply {
    /// Wraps bytes known to hold exactly one complete frame.
    pub fn new(raw: Bytes, resp3: bool) -> Reply {
        Reply { raw, resp3 }
    }
    /// A simple or blob error (`-...` / `!...`).
    pub fn is_error(&self) -> bool {
        matches!(self.raw.first(), Some(b'-') | Some(b'!'))
    }
    /// True when this is an error whose text starts with `prefix` (e.g. `b"READONLY"`).
    pub fn is_error_with(&self, prefix: &[u8]) -> bool {
        self.raw.first() == Some(&b'-') && self.raw[1..].starts_with(prefix)
    }
}
