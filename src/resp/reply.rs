//! Zero-copy reply framing: check that a complete frame is buffered, then split it off whole.

use bytes::Bytes;

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
pub fn scan_reply(buf: &[u8], limits: &Limits) -> Result<Option<ReplyScan>, ProtocolError> {
    let _ = (buf, limits);
    todo!()
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
