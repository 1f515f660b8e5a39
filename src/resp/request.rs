//! Client request decoding: multibulk (`*N\r\n$len\r\n...`) and inline (telnet-style) commands.

use bytes::{Bytes, BytesMut};

use super::{Limits, ProtocolError};

/// One client command: the original bytes (forwarded unchanged) and the offsets of its arguments.
/// An inline command is re-encoded as multibulk so that `raw` can always be forwarded.
#[derive(Clone, Debug)]
pub struct Request {
    raw: Bytes,
    args: Vec<(u32, u32)>,
}

impl Request {
    /// Builds a request (multibulk-encoded) from arguments.
    pub fn from_args<A: AsRef<[u8]>>(args: &[A]) -> Request {
        let _ = args;
        todo!()
    }
    /// The original (or re-encoded, for inline) multibulk bytes.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }
    /// Number of arguments, command name included.
    pub fn len(&self) -> usize {
        self.args.len()
    }
    /// True for a request with no arguments (never produced by the decoder).
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }
    /// Argument `i` (0 is the command name); empty slice when out of range.
    pub fn arg(&self, i: usize) -> &[u8] {
        match self.args.get(i) {
            Some(&(s, e)) => &self.raw[s as usize..e as usize],
            None => &[],
        }
    }
    /// Argument `i` as a zero-copy `Bytes`.
    pub fn arg_bytes(&self, i: usize) -> Bytes {
        match self.args.get(i) {
            Some(&(s, e)) => self.raw.slice(s as usize..e as usize),
            None => Bytes::new(),
        }
    }
    /// All arguments in order.
    pub fn args(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.args.iter().map(|&(s, e)| &self.raw[s as usize..e as usize])
    }
}

/// Decodes one request from the front of `buf`. `Ok(None)`: need more bytes (nothing consumed).
/// Empty inline lines and `*0`/`*-1` are skipped as Redis skips them.
pub fn decode_request(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Request>, ProtocolError> {
    let _ = (buf, limits);
    todo!()
}
