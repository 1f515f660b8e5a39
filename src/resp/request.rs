//! Client request decoding: multibulk (`*N\r\n$len\r\n...`) and inline (telnet-style) commands.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::parse::{find, string2ll};
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
        let data: usize = args.iter().map(|a| a.as_ref().len()).sum();
        let mut w = MultibulkWriter::new(args.len(), data);
        for a in args {
            let a = a.as_ref();
            w.arg_header(a.len());
            w.out.extend_from_slice(a);
            w.arg_end();
        }
        w.finish()
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
        self.args
            .iter()
            .map(|&(s, e)| &self.raw[s as usize..e as usize])
    }
}

/// Decodes one request from the front of `buf`. `Ok(None)`: need more bytes; nothing of the
/// incomplete request is consumed (no-op input skipped on the way, see below, is).
/// Empty inline lines and `*0`/`*-1` are skipped as Redis skips them.
///
/// Errors are those Redis would reply with; after one the connection should be closed, as
/// Redis does, since the stream position is lost.
pub fn decode_request(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<Request>, ProtocolError> {
    loop {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        if first == b'*' {
            // Check first, without allocating; the offsets of the first few arguments are
            // kept on the stack so that common commands need a single walk.
            let mut fast = [(0u32, 0u32); FAST_ARGS];
            let scan = walk_multibulk(buf, limits, |i, s, e| {
                if let Some(slot) = fast.get_mut(i) {
                    *slot = (s, e);
                }
            })?;
            match scan {
                Multibulk::Incomplete => return Ok(None),
                Multibulk::Skip(n) => buf.advance(n),
                Multibulk::Complete { len, argc } => {
                    let raw = buf.split_to(len).freeze();
                    let args = if argc <= FAST_ARGS {
                        fast[..argc].to_vec()
                    } else {
                        let mut v = Vec::with_capacity(argc);
                        walk_multibulk(&raw, limits, |_, s, e| v.push((s, e)))?;
                        v
                    };
                    return Ok(Some(Request { raw, args }));
                }
            }
        } else {
            // Redis looks for '\n' only and then drops one '\r' before it, so a bare LF ends
            // an inline command too (telnet, `nc`).
            let Some(nl) = find(buf, b'\n') else {
                if buf.len() > limits.max_inline_len {
                    return Err(ProtocolError::TooBigInline);
                }
                return Ok(None);
            };
            let mut line = &buf[..nl];
            if let [head @ .., b'\r'] = line {
                line = head;
            }
            // sdssplitargs works on a C string: a NUL ends the line.
            if let Some(z) = find(line, 0) {
                line = &line[..z];
            }
            let req = inline_request(line)?;
            buf.advance(nl + 1);
            if let Some(req) = req {
                return Ok(Some(req));
            }
        }
    }
}

/// Requests with at most this many arguments are decoded in a single walk.
const FAST_ARGS: usize = 16;

enum Multibulk {
    Incomplete,
    /// `*0`, `*-1` (any count <= 0): Redis drops the header and goes on.
    Skip(usize),
    Complete {
        len: usize,
        argc: usize,
    },
}

/// Walks a multibulk request at the front of `buf` (which starts with `*`) exactly as Redis's
/// `processMultibulkBuffer` does, calling `on_arg(index, start, end)` for every argument.
///
/// Redis quirks kept on purpose, so that we accept and reject exactly what the node would:
/// a header ends at the first `\r` and the byte after it is skipped unchecked, as are the two
/// bytes after a bulk payload; a header without any `\r` is an error only once more than 64 KiB
/// (`PROTO_INLINE_MAX_SIZE`, here `max_inline_len`) are buffered; the `$` is checked only once
/// the header line is complete.
#[inline]
fn walk_multibulk(
    buf: &[u8],
    limits: &Limits,
    mut on_arg: impl FnMut(usize, u32, u32),
) -> Result<Multibulk, ProtocolError> {
    let Some(cr) = find(buf, b'\r') else {
        if buf.len() > limits.max_inline_len {
            return Err(ProtocolError::TooBigMbulkCount);
        }
        return Ok(Multibulk::Incomplete);
    };
    if cr + 2 > buf.len() {
        return Ok(Multibulk::Incomplete);
    }
    let max_count = i64::try_from(limits.max_multibulk_len)
        .unwrap_or(i64::MAX)
        .min(i64::from(i32::MAX));
    let count = match buf.get(1..cr).and_then(string2ll) {
        Some(n) if n <= max_count => n,
        _ => return Err(ProtocolError::InvalidMultibulkLength),
    };
    let mut pos = cr + 2;
    if count <= 0 {
        return Ok(Multibulk::Skip(pos));
    }
    let max_bulk = i64::try_from(limits.max_bulk_len).unwrap_or(i64::MAX);
    // `count` fits in i32, so in usize.
    let argc = count as usize;
    for i in 0..argc {
        let rest = &buf[pos..];
        let Some(cr) = find(rest, b'\r') else {
            if rest.len() > limits.max_inline_len {
                return Err(ProtocolError::TooBigBulkCount);
            }
            return Ok(Multibulk::Incomplete);
        };
        if cr + 2 > rest.len() {
            return Ok(Multibulk::Incomplete);
        }
        if rest[0] != b'$' {
            return Err(ProtocolError::ExpectedDollar(char::from(rest[0])));
        }
        let len = match string2ll(&rest[1..cr]) {
            Some(n) if (0..=max_bulk).contains(&n) => n as u64,
            _ => return Err(ProtocolError::InvalidBulkLength),
        };
        let start = pos + cr + 2;
        let end = (start as u64).saturating_add(len);
        let next = end.saturating_add(2);
        if next > buf.len() as u64 {
            return Ok(Multibulk::Incomplete);
        }
        // Offsets are u32 to keep `Request` small; a single request over 4 GiB is refused.
        let (Ok(s), Ok(e)) = (u32::try_from(start), u32::try_from(end)) else {
            return Err(ProtocolError::InvalidBulkLength);
        };
        on_arg(i, s, e);
        pos = next as usize;
    }
    Ok(Multibulk::Complete { len: pos, argc })
}

/// Builds the multibulk encoding of a request while recording argument offsets.
struct MultibulkWriter {
    out: BytesMut,
    args: Vec<(u32, u32)>,
    start: usize,
}

impl MultibulkWriter {
    fn new(argc: usize, data_len: usize) -> MultibulkWriter {
        // 16 bytes per argument covers `$<len>\r\n` + `\r\n` for any length below 10^10.
        let mut out = BytesMut::with_capacity(16 + data_len + 16 * argc);
        out.put_u8(b'*');
        out.extend_from_slice(itoa::Buffer::new().format(argc).as_bytes());
        out.extend_from_slice(b"\r\n");
        MultibulkWriter {
            out,
            args: Vec::with_capacity(argc),
            start: 0,
        }
    }
    fn arg_header(&mut self, len: usize) {
        self.out.put_u8(b'$');
        self.out
            .extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
        self.out.extend_from_slice(b"\r\n");
        self.start = self.out.len();
    }
    fn arg_end(&mut self) {
        // Saturation only matters past 4 GiB, which neither caller can reach in practice
        // (inline lines are refused before that); it keeps this path panic-free.
        let s = u32::try_from(self.start).unwrap_or(u32::MAX);
        let e = u32::try_from(self.out.len()).unwrap_or(u32::MAX);
        self.args.push((s, e));
        self.out.extend_from_slice(b"\r\n");
    }
    fn finish(self) -> Request {
        Request {
            raw: self.out.freeze(),
            args: self.args,
        }
    }
}

/// Splits an inline command line (terminator and anything after a NUL already removed) with
/// Redis's `sdssplitargs` rules and re-encodes it as multibulk. `Ok(None)` for a blank line.
fn inline_request(line: &[u8]) -> Result<Option<Request>, ProtocolError> {
    // First pass validates and counts, so the output is allocated once at the right size.
    let mut argc = 0usize;
    let mut p = skip_blanks(line, 0);
    while p < line.len() {
        p = skip_blanks(line, token(line, p, &mut |_| {})?);
        argc += 1;
    }
    if argc == 0 {
        return Ok(None);
    }
    if line.len() > u32::MAX as usize / 2 {
        return Err(ProtocolError::TooBigInline);
    }
    let mut w = MultibulkWriter::new(argc, line.len());
    let mut p = skip_blanks(line, 0);
    while p < line.len() {
        let mut len = 0;
        token(line, p, &mut |s| len += s.len())?;
        w.arg_header(len);
        p = skip_blanks(line, token(line, p, &mut |s| w.out.extend_from_slice(s))?);
        w.arg_end();
    }
    Ok(Some(w.finish()))
}

/// C `isspace`, which sdssplitargs uses between arguments and after a closing quote.
#[inline]
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

#[inline]
fn skip_blanks(line: &[u8], mut p: usize) -> usize {
    while p < line.len() && is_space(line[p]) {
        p += 1;
    }
    p
}

fn hex_val(c: Option<&u8>) -> Option<u8> {
    match c? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'a'..=b'f' => Some(c - b'a' + 10),
        c @ b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// One argument of an inline line starting at `p` (a non-blank byte); its decoded bytes go to
/// `emit` in pieces. Returns the position after it.
///
/// Follows sdssplitargs: quotes may open mid-argument (`a"b c"` is `ab c`), but a closing
/// quote ends the argument and must be followed by a space or the end of the line; unquoted
/// arguments end only at space, tab, CR or LF (not at `\v`/`\f`, which are skipped only
/// *between* arguments).
fn token(line: &[u8], mut p: usize, emit: &mut impl FnMut(&[u8])) -> Result<usize, ProtocolError> {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Double,
        Single,
    }
    let mut q = Quote::None;
    let closing = |p: usize| match line.get(p + 1) {
        Some(&c) if !is_space(c) => Err(ProtocolError::UnbalancedQuotes),
        _ => Ok(p + 1),
    };
    loop {
        let start = p;
        match q {
            Quote::None => {
                while p < line.len()
                    && !matches!(line[p], b' ' | b'\n' | b'\r' | b'\t' | b'"' | b'\'')
                {
                    p += 1;
                }
                if p > start {
                    emit(&line[start..p]);
                }
                match line.get(p) {
                    None => return Ok(p),
                    Some(b'"') => q = Quote::Double,
                    Some(b'\'') => q = Quote::Single,
                    Some(_) => return Ok(p + 1),
                }
                p += 1;
            }
            Quote::Double => {
                while p < line.len() && line[p] != b'\\' && line[p] != b'"' {
                    p += 1;
                }
                if p > start {
                    emit(&line[start..p]);
                }
                match line.get(p) {
                    None => return Err(ProtocolError::UnbalancedQuotes),
                    Some(b'"') => return closing(p),
                    Some(_) => {
                        // A backslash.
                        if let (Some(b'x'), Some(h), Some(l)) = (
                            line.get(p + 1),
                            hex_val(line.get(p + 2)),
                            hex_val(line.get(p + 3)),
                        ) {
                            emit(&[h * 16 + l]);
                            p += 4;
                        } else if let Some(&c) = line.get(p + 1) {
                            let c = match c {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                b'b' => 0x08,
                                b'a' => 0x07,
                                c => c,
                            };
                            emit(&[c]);
                            p += 2;
                        } else {
                            return Err(ProtocolError::UnbalancedQuotes);
                        }
                    }
                }
            }
            Quote::Single => {
                while p < line.len() && line[p] != b'\\' && line[p] != b'\'' {
                    p += 1;
                }
                if p > start {
                    emit(&line[start..p]);
                }
                match line.get(p) {
                    None => return Err(ProtocolError::UnbalancedQuotes),
                    Some(b'\'') => return closing(p),
                    Some(_) => {
                        // Only `\'` is an escape inside single quotes.
                        if line.get(p + 1) == Some(&b'\'') {
                            emit(b"'");
                            p += 2;
                        } else {
                            emit(b"\\");
                            p += 1;
                        }
                    }
                }
            }
        }
    }
}
