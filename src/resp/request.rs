//! Client request decoding: multibulk (`*N\r\n$len\r\n...`) and inline (telnet-style) commands.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::parse::{fast_len, find, string2ll};
use super::{Limits, ProtocolError, UNAUTH_MAX_BULK_LEN, UNAUTH_MAX_MULTIBULK_LEN};

/// One client command: the original bytes (forwarded unchanged) and the offsets of its arguments.
/// An inline command is re-encoded as multibulk so that `raw` can always be forwarded.
#[derive(Clone, Debug)]
pub struct Request {
    raw: Bytes,
    args: ArgList,
}

/// Arguments kept inline (no allocation per request) when there are this many or fewer: that
/// covers GET, SET, HSET with one field, and most of what proxies see.
const INLINE_ARGS: usize = 4;

/// Argument offsets: inline for short commands, on the heap for long ones.
#[derive(Clone, Debug)]
enum ArgList {
    Inline(u8, [(u32, u32); INLINE_ARGS]),
    Heap(Vec<(u32, u32)>),
}

impl ArgList {
    fn from_slice(args: &[(u32, u32)]) -> ArgList {
        if args.len() <= INLINE_ARGS {
            let mut items = [(0, 0); INLINE_ARGS];
            items[..args.len()].copy_from_slice(args);
            ArgList::Inline(args.len() as u8, items)
        } else {
            ArgList::Heap(args.to_vec())
        }
    }

    fn as_slice(&self) -> &[(u32, u32)] {
        match self {
            ArgList::Inline(n, items) => &items[..usize::from(*n)],
            ArgList::Heap(v) => v,
        }
    }
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
    /// The request's bytes, giving up the argument index.
    pub fn into_raw(self) -> Bytes {
        self.raw
    }
    /// Number of arguments, command name included.
    pub fn len(&self) -> usize {
        self.args.as_slice().len()
    }
    /// True for a request with no arguments (never produced by the decoder).
    pub fn is_empty(&self) -> bool {
        self.args.as_slice().is_empty()
    }
    /// Argument `i` (0 is the command name); empty slice when out of range.
    pub fn arg(&self, i: usize) -> &[u8] {
        match self.args.as_slice().get(i) {
            Some(&(s, e)) => &self.raw[s as usize..e as usize],
            None => &[],
        }
    }
    /// Argument `i` as a zero-copy `Bytes`.
    pub fn arg_bytes(&self, i: usize) -> Bytes {
        match self.args.as_slice().get(i) {
            Some(&(s, e)) => self.raw.slice(s as usize..e as usize),
            None => Bytes::new(),
        }
    }
    /// All arguments in order.
    pub fn args(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.args
            .as_slice()
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
                        ArgList::from_slice(&fast[..argc])
                    } else {
                        let mut v = Vec::with_capacity(argc);
                        walk_multibulk(&raw, limits, |_, s, e| v.push((s, e)))?;
                        ArgList::Heap(v)
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
    if limits.unauthenticated && count > UNAUTH_MAX_MULTIBULK_LEN as i64 {
        return Err(ProtocolError::UnauthenticatedMultibulkLength);
    }
    let mut pos = cr + 2;
    if count <= 0 {
        return Ok(Multibulk::Skip(pos));
    }
    let max_bulk = i64::try_from(limits.max_bulk_len).unwrap_or(i64::MAX);
    // Longest bulk taken by the fast path; longer ones go the slow way, which tells an
    // unauthenticated client's over-long bulk (refused) from a valid one.
    let max_fast = if limits.unauthenticated {
        max_bulk.min(UNAUTH_MAX_BULK_LEN as i64)
    } else {
        max_bulk
    };
    // `count` fits in i32, so in usize.
    let argc = count as usize;
    for i in 0..argc {
        let rest = &buf[pos..];
        // Common headers are read without the slow path's checks; everything unusual (long,
        // odd or incomplete headers) goes the slow way.
        let (len, cr) = match (rest.first(), fast_len(rest)) {
            (Some(b'$'), Some((len, cr))) if len <= max_fast as u64 && cr + 2 <= rest.len() => {
                (len, cr)
            }
            _ => match bulk_header(rest, limits, max_bulk)? {
                Some(header) => header,
                None => return Ok(Multibulk::Incomplete),
            },
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

/// The `$<len>\r` header of a bulk at the front of `rest`, checked the slow way (the fast
/// path in `walk_multibulk` handles common headers): `Ok(None)` while incomplete, else the
/// length and the position of the header's `\r`.
fn bulk_header(
    rest: &[u8],
    limits: &Limits,
    max_bulk: i64,
) -> Result<Option<(u64, usize)>, ProtocolError> {
    let Some(cr) = find(rest, b'\r') else {
        if rest.len() > limits.max_inline_len {
            return Err(ProtocolError::TooBigBulkCount);
        }
        return Ok(None);
    };
    if cr + 2 > rest.len() {
        return Ok(None);
    }
    if rest[0] != b'$' {
        return Err(ProtocolError::ExpectedDollar(char::from(rest[0])));
    }
    let len = match string2ll(&rest[1..cr]) {
        Some(n) if (0..=max_bulk).contains(&n) => n as u64,
        _ => return Err(ProtocolError::InvalidBulkLength),
    };
    if limits.unauthenticated && len > UNAUTH_MAX_BULK_LEN as u64 {
        return Err(ProtocolError::UnauthenticatedBulkLength);
    }
    Ok(Some((len, cr)))
}

/// Encodes requests one after another in a buffer kept across them (a script's
/// `redis.call`s): each request's bytes are a view of the buffer, and once a request is
/// dropped the next one reuses its memory, so a steady stream of requests allocates nothing.
#[derive(Debug, Default)]
pub struct RequestBuilder {
    w: MultibulkWriter,
}

impl RequestBuilder {
    /// Starts a request of `argc` arguments (command name included), dropping any request
    /// begun and not finished.
    pub fn begin(&mut self, argc: usize) {
        self.w.out.clear();
        self.w.args.clear();
        self.w.header(argc);
    }
    /// Appends the next argument.
    pub fn arg(&mut self, a: &[u8]) {
        self.w.arg_header(a.len());
        self.w.out.extend_from_slice(a);
        self.w.arg_end();
    }
    /// The request begun with [`begin`](Self::begin); it must have got its `argc` arguments.
    pub fn finish(&mut self) -> Request {
        let args = ArgList::from_slice(&self.w.args);
        self.w.args.clear();
        Request {
            raw: self.w.out.split().freeze(),
            args,
        }
    }
}

/// Builds the multibulk encoding of a request while recording argument offsets.
#[derive(Debug, Default)]
struct MultibulkWriter {
    out: BytesMut,
    args: Vec<(u32, u32)>,
    start: usize,
}

impl MultibulkWriter {
    fn new(argc: usize, data_len: usize) -> MultibulkWriter {
        // 16 bytes per argument covers `$<len>\r\n` + `\r\n` for any length below 10^10.
        let mut w = MultibulkWriter {
            out: BytesMut::with_capacity(16 + data_len + 16 * argc),
            args: Vec::with_capacity(argc),
            start: 0,
        };
        w.header(argc);
        w
    }
    fn header(&mut self, argc: usize) {
        self.out.put_u8(b'*');
        self.out
            .extend_from_slice(itoa::Buffer::new().format(argc).as_bytes());
        self.out.extend_from_slice(b"\r\n");
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
            args: ArgList::from_slice(&self.args),
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
    let start = p;
    while p < line.len() && !matches!(line[p], b' ' | b'\n' | b'\r' | b'\t' | b'"' | b'\'') {
        p += 1;
    }
    if p > start {
        emit(&line[start..p]);
    }
    match line.get(p) {
        None => Ok(p),
        Some(&q @ (b'"' | b'\'')) => quoted(line, p + 1, q, emit),
        Some(_) => Ok(p + 1),
    }
}

/// The rest of a quoted section (`quote` is `"` or `'`) starting after its opening quote.
/// Inside double quotes sdssplitargs decodes escapes (`backslash_escape`); inside single
/// quotes only `\'` is one, any other backslash is itself.
fn quoted(
    line: &[u8],
    mut p: usize,
    quote: u8,
    emit: &mut impl FnMut(&[u8]),
) -> Result<usize, ProtocolError> {
    loop {
        let start = p;
        while p < line.len() && line[p] != b'\\' && line[p] != quote {
            p += 1;
        }
        if p > start {
            emit(&line[start..p]);
        }
        match line.get(p) {
            None => return Err(ProtocolError::UnbalancedQuotes),
            Some(&c) if c == quote => return closing_quote(line, p),
            Some(_) if quote == b'"' => p = backslash_escape(line, p, emit)?,
            Some(_) if line.get(p + 1) == Some(&b'\'') => {
                emit(b"'");
                p += 2;
            }
            Some(_) => {
                emit(b"\\");
                p += 1;
            }
        }
    }
}

/// A backslash at `p` inside double quotes: emits the byte it stands for (`\xHH`, `\n`,
/// `\r`, `\t`, `\b`, `\a`, any other byte as itself), returns the position after the escape.
fn backslash_escape(
    line: &[u8],
    p: usize,
    emit: &mut impl FnMut(&[u8]),
) -> Result<usize, ProtocolError> {
    if let (Some(b'x'), Some(h), Some(l)) = (
        line.get(p + 1),
        hex_val(line.get(p + 2)),
        hex_val(line.get(p + 3)),
    ) {
        emit(&[h * 16 + l]);
        return Ok(p + 4);
    }
    let Some(&c) = line.get(p + 1) else {
        return Err(ProtocolError::UnbalancedQuotes);
    };
    emit(&[match c {
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'b' => 0x08,
        b'a' => 0x07,
        c => c,
    }]);
    Ok(p + 2)
}

/// A closing quote at `p` ends the argument and must be followed by a space or the line's end.
fn closing_quote(line: &[u8], p: usize) -> Result<usize, ProtocolError> {
    match line.get(p + 1) {
        Some(&c) if !is_space(c) => Err(ProtocolError::UnbalancedQuotes),
        _ => Ok(p + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim() -> Limits {
        Limits::default()
    }

    fn args(r: &Request) -> Vec<Vec<u8>> {
        r.args().map(<[u8]>::to_vec).collect()
    }

    fn v(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn builder_encodes_as_from_args() {
        let mut b = RequestBuilder::default();
        for round in 0..50 {
            let value = format!("value-{round}").repeat(round);
            let parts: [&[u8]; 3] = [b"SET", b"key", value.as_bytes()];
            b.begin(3);
            for p in parts {
                b.arg(p);
            }
            let req = b.finish();
            assert_eq!(req.raw(), Request::from_args(&parts).raw());
            assert_eq!(args(&req), v(&["SET", "key", &value]));
        }
        // A request begun and abandoned leaves nothing behind.
        b.begin(2);
        b.arg(b"GET");
        b.begin(1);
        b.arg(b"PING");
        assert_eq!(b.finish().raw().as_ref(), b"*1\r\n$4\r\nPING\r\n");
    }

    /// Decodes everything in `input`; panics on error.
    fn decode_all(input: &[u8]) -> (Vec<Request>, BytesMut) {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(r) = decode_request(&mut buf, &lim()).expect("decode") {
            out.push(r);
        }
        (out, buf)
    }

    fn err(input: &[u8], limits: &Limits) -> ProtocolError {
        let mut buf = BytesMut::from(input);
        loop {
            match decode_request(&mut buf, limits) {
                Err(e) => return e,
                Ok(Some(_)) => {}
                Ok(None) => panic!("no error for {:?}", String::from_utf8_lossy(input)),
            }
        }
    }

    fn inline(line: &str) -> Result<Vec<Vec<u8>>, ProtocolError> {
        let mut buf = BytesMut::from(format!("{line}\r\n").as_bytes());
        let r = decode_request(&mut buf, &lim())?.expect("complete");
        assert!(buf.is_empty());
        Ok(args(&r))
    }

    #[test]
    fn multibulk_single() {
        let (reqs, rest) = decode_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nva\r\nl\r\n");
        assert_eq!(reqs.len(), 1);
        assert!(rest.is_empty());
        let r = &reqs[0];
        assert_eq!(
            args(r),
            vec![b"SET".to_vec(), b"k".to_vec(), b"va\r\nl".to_vec()]
        );
        assert_eq!(r.len(), 3);
        assert!(!r.is_empty());
        assert_eq!(r.arg(0), b"SET");
        assert_eq!(r.arg(3), b"");
        assert_eq!(&r.arg_bytes(2)[..], b"va\r\nl");
        assert_eq!(r.arg_bytes(9), Bytes::new());
        assert_eq!(
            &r.raw()[..],
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nva\r\nl\r\n"
        );
    }

    #[test]
    fn empty_bulk_and_binary() {
        let (reqs, _) = decode_all(b"*2\r\n$0\r\n\r\n$3\r\n\0\r\xff\r\n");
        assert_eq!(args(&reqs[0]), vec![b"".to_vec(), b"\0\r\xff".to_vec()]);
    }

    const PIPELINE: &[u8] = b"*1\r\n$4\r\nPING\r\n\
        PING\r\n\
        \r\n\
        \n\
        *0\r\n\
        *-1\r\n\
        *2\r\n$3\r\nGET\r\n$3\r\nkey\r\n\
        set a \"b c\"\n\
        \t  \r\n\
        *-7\r\n\
        *3\r\n$3\r\nDEL\r\n$1\r\na\r\n$0\r\n\r\n\
        echo 'it''s'\r\n";

    fn pipeline_expected() -> Vec<Vec<Vec<u8>>> {
        vec![
            v(&["PING"]),
            v(&["PING"]),
            v(&["GET", "key"]),
            v(&["set", "a", "b c"]),
            v(&["DEL", "a", ""]),
        ]
    }

    #[test]
    fn pipeline_in_one_buffer() {
        let mut buf = BytesMut::from(PIPELINE);
        // The last line has an unbalanced quote pattern: 'it''s' closes and is followed by `'`.
        let mut got = Vec::new();
        let e = loop {
            match decode_request(&mut buf, &lim()) {
                Ok(Some(r)) => got.push(args(&r)),
                Ok(None) => panic!("expected an error at the end"),
                Err(e) => break e,
            }
        };
        assert_eq!(got, pipeline_expected());
        assert_eq!(e, ProtocolError::UnbalancedQuotes);
        // The bad request is left in the buffer.
        assert_eq!(&buf[..], b"echo 'it''s'\r\n");
    }

    #[test]
    fn pipeline_split_at_every_point_and_byte_by_byte() {
        let valid = &PIPELINE[..PIPELINE.len() - b"echo 'it''s'\r\n".len()];
        let (whole, rest) = decode_all(valid);
        assert!(rest.is_empty());
        let whole: Vec<_> = whole.iter().map(args).collect();
        assert_eq!(whole, pipeline_expected());

        for split in 0..=valid.len() {
            let mut buf = BytesMut::from(&valid[..split]);
            let mut got = Vec::new();
            while let Some(r) = decode_request(&mut buf, &lim()).unwrap() {
                got.push(args(&r));
            }
            buf.extend_from_slice(&valid[split..]);
            while let Some(r) = decode_request(&mut buf, &lim()).unwrap() {
                got.push(args(&r));
            }
            assert_eq!(got, whole, "split at {split}");
            assert!(buf.is_empty());
        }

        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut raws = Vec::new();
        for &b in valid {
            buf.extend_from_slice(&[b]);
            while let Some(r) = decode_request(&mut buf, &lim()).unwrap() {
                got.push(args(&r));
                raws.push(r.raw().clone());
            }
        }
        assert_eq!(got, whole);
        // Every raw is itself a decodable multibulk with the same arguments.
        for (raw, expected) in raws.iter().zip(&whole) {
            let (again, rest) = decode_all(raw);
            assert!(rest.is_empty());
            assert_eq!(&args(&again[0]), expected);
            assert_eq!(raw[0], b'*');
        }
    }

    #[test]
    fn incomplete_consumes_nothing() {
        for partial in [
            &b"*"[..],
            b"*2",
            b"*2\r",
            b"*2\r\n$3\r\nGET\r\n$3",
            b"*2\r\n$3\r\nGET\r\n$3\r\nke",
            b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r",
            b"GET key",
            b"GET key\r",
        ] {
            let mut buf = BytesMut::from(partial);
            assert!(decode_request(&mut buf, &lim()).unwrap().is_none());
            assert_eq!(&buf[..], partial);
        }
    }

    #[test]
    fn skipped_requests_are_consumed() {
        let mut buf = BytesMut::from(&b"*0\r\n\r\n  \n*-1\r\n"[..]);
        assert!(decode_request(&mut buf, &lim()).unwrap().is_none());
        assert!(buf.is_empty());
    }

    #[test]
    fn many_args_take_the_slow_path() {
        let names: Vec<String> = (0..40).map(|i| format!("arg{i}")).collect();
        let r = Request::from_args(&names);
        let (reqs, rest) = decode_all(r.raw());
        assert!(rest.is_empty());
        assert_eq!(reqs[0].len(), 40);
        assert_eq!(
            args(&reqs[0]),
            names
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect::<Vec<_>>()
        );
        // Exactly at and just past the on-stack boundary.
        for n in [FAST_ARGS - 1, FAST_ARGS, FAST_ARGS + 1] {
            let r = Request::from_args(&names[..n]);
            let (reqs, _) = decode_all(r.raw());
            assert_eq!(reqs[0].len(), n);
            assert_eq!(reqs[0].arg(n - 1), names[n - 1].as_bytes());
        }
    }

    #[test]
    fn from_args_encodes_multibulk() {
        let r = Request::from_args(&["SET", "k", ""]);
        assert_eq!(&r.raw()[..], b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
        assert_eq!(args(&r), v(&["SET", "k", ""]));
        let empty = Request::from_args::<&str>(&[]);
        assert!(empty.is_empty());
        assert_eq!(&empty.raw()[..], b"*0\r\n");
    }

    #[test]
    fn redis_quirks_in_multibulk() {
        // Redis skips the two bytes after a header's CR and after a payload without checking.
        let (reqs, rest) = decode_all(b"*1\rX$4\r\nPINGxy");
        assert!(rest.is_empty());
        assert_eq!(args(&reqs[0]), v(&["PING"]));
    }

    #[test]
    fn inline_plain_and_whitespace() {
        assert_eq!(inline("PING").unwrap(), v(&["PING"]));
        assert_eq!(inline("  set   k\tv  ").unwrap(), v(&["set", "k", "v"]));
        // \v and \f separate arguments only at their start; inside an argument they are data.
        assert_eq!(inline("\x0bab\x0bc d").unwrap(), v(&["ab\x0bc", "d"]));
        // A CR inside the line (not before LF) ends an argument.
        assert_eq!(inline("a\rb").unwrap(), v(&["a", "b"]));
        // NUL ends the line, as in C.
        assert_eq!(inline("get a\0 b c").unwrap(), v(&["get", "a"]));
    }

    #[test]
    fn inline_quotes_and_escapes() {
        assert_eq!(
            inline(r#"set "a b" 'c d'"#).unwrap(),
            v(&["set", "a b", "c d"])
        );
        assert_eq!(
            inline(r#"x "\n\r\t\b\a\\\"\x41\x7a\q""#).unwrap(),
            vec![b"x".to_vec(), b"\n\r\t\x08\x07\\\"Azq".to_vec()]
        );
        // \x with non-hex digits is just an escaped x.
        assert_eq!(inline(r#""\xZZ""#).unwrap(), v(&["xZZ"]));
        assert_eq!(inline(r#""\x4""#).unwrap(), v(&["x4"]));
        assert_eq!(inline(r#""\xff""#).unwrap(), vec![vec![0xff]]);
        // Single quotes: only \' is an escape.
        assert_eq!(inline(r"'a\'b\n'").unwrap(), v(&[r"a'b\n"]));
        // Quotes may open mid-argument; empty quotes give an empty argument.
        assert_eq!(inline(r#"ab"c d" '' """#).unwrap(), v(&["abc d", "", ""]));
        // A closing quote at the end of the line, or before a tab.
        assert_eq!(inline("\"a\"\t'b'").unwrap(), v(&["a", "b"]));
        let raw = {
            let mut buf = BytesMut::from(&b"set \"a\\r\\nb\" c\r\n"[..]);
            decode_request(&mut buf, &lim())
                .unwrap()
                .unwrap()
                .raw()
                .clone()
        };
        assert_eq!(&raw[..], b"*3\r\n$3\r\nset\r\n$4\r\na\r\nb\r\n$1\r\nc\r\n");
    }

    #[test]
    fn inline_unbalanced_quotes() {
        for bad in [
            r#""abc"#,
            r#"'abc"#,
            r#"set "a"b"#,
            r#"set 'a'b"#,
            r#"set "a\"#,
            r#"'a\'"#,
            "\"a\"\"",
        ] {
            assert_eq!(inline(bad), Err(ProtocolError::UnbalancedQuotes), "{bad}");
        }
    }

    #[test]
    fn bare_lf_terminates_inline() {
        let (reqs, rest) = decode_all(b"PING\nECHO x\n");
        assert!(rest.is_empty());
        assert_eq!(args(&reqs[0]), v(&["PING"]));
        assert_eq!(args(&reqs[1]), v(&["ECHO", "x"]));
        assert_eq!(&reqs[1].raw()[..], b"*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n");
    }

    #[test]
    fn errors_and_their_text() {
        let l = lim();
        let cases: &[(&[u8], ProtocolError, &str)] = &[
            (
                b"*x\r\n",
                ProtocolError::InvalidMultibulkLength,
                "Protocol error: invalid multibulk length",
            ),
            (
                b"*\r\n",
                ProtocolError::InvalidMultibulkLength,
                "Protocol error: invalid multibulk length",
            ),
            (
                b"*01\r\n",
                ProtocolError::InvalidMultibulkLength,
                "Protocol error: invalid multibulk length",
            ),
            (
                b"*2147483648\r\n",
                ProtocolError::InvalidMultibulkLength,
                "Protocol error: invalid multibulk length",
            ),
            (
                b"*1\r\n:1\r\n",
                ProtocolError::ExpectedDollar(':'),
                "Protocol error: expected '$', got ':'",
            ),
            (
                b"*2\r\n$1\r\na\r\nfoo\r\n",
                ProtocolError::ExpectedDollar('f'),
                "Protocol error: expected '$', got 'f'",
            ),
            (
                b"*1\r\n$-1\r\n",
                ProtocolError::InvalidBulkLength,
                "Protocol error: invalid bulk length",
            ),
            (
                b"*1\r\n$x\r\n",
                ProtocolError::InvalidBulkLength,
                "Protocol error: invalid bulk length",
            ),
            (
                b"*1\r\n$\r\n",
                ProtocolError::InvalidBulkLength,
                "Protocol error: invalid bulk length",
            ),
            (
                b"*1\r\n$536870913\r\n",
                ProtocolError::InvalidBulkLength,
                "Protocol error: invalid bulk length",
            ),
            (
                b"'a",
                ProtocolError::UnbalancedQuotes,
                "Protocol error: unbalanced quotes in request",
            ),
        ];
        for (input, want, text) in cases {
            let mut input = input.to_vec();
            if input[0] == b'\'' {
                input.extend_from_slice(b"\r\n");
            }
            let e = err(&input, &l);
            assert_eq!(&e, want, "{:?}", String::from_utf8_lossy(&input));
            assert_eq!(e.to_string(), *text);
        }
    }

    #[test]
    fn too_big_lines() {
        let l = lim();
        let mut big = vec![b'a'; 64 * 1024];
        let mut buf = BytesMut::from(&big[..]);
        // Exactly the limit: still waiting for the newline.
        assert!(decode_request(&mut buf, &l).unwrap().is_none());
        big.push(b'a');
        let e = err(&big, &l);
        assert_eq!(e, ProtocolError::TooBigInline);
        assert_eq!(e.to_string(), "Protocol error: too big inline request");
        // A long line that does end is accepted, as Redis does.
        let mut long = vec![b'a'; 70 * 1024];
        long.push(b'\n');
        let (reqs, _) = decode_all(&long);
        assert_eq!(reqs[0].arg(0).len(), 70 * 1024);

        let mut mb = b"*1".to_vec();
        mb.resize(64 * 1024 + 1, b'1');
        let e = err(&mb, &l);
        assert_eq!(e, ProtocolError::TooBigMbulkCount);
        assert_eq!(e.to_string(), "Protocol error: too big mbulk count string");

        let mut bb = b"*1\r\n$1".to_vec();
        bb.resize(4 + 64 * 1024 + 1, b'1');
        let e = err(&bb, &l);
        assert_eq!(e, ProtocolError::TooBigBulkCount);
        assert_eq!(e.to_string(), "Protocol error: too big bulk count string");
    }

    #[test]
    fn custom_limits() {
        let l = Limits {
            max_bulk_len: 4,
            max_multibulk_len: 2,
            max_depth: 4,
            max_inline_len: 8,
            unauthenticated: false,
        };
        let mut ok = BytesMut::from(&b"*2\r\n$4\r\nabcd\r\n$0\r\n\r\n"[..]);
        assert_eq!(decode_request(&mut ok, &l).unwrap().unwrap().len(), 2);
        assert_eq!(err(b"*3\r\n", &l), ProtocolError::InvalidMultibulkLength);
        assert_eq!(err(b"*1\r\n$5\r\n", &l), ProtocolError::InvalidBulkLength);
        assert_eq!(err(b"123456789", &l), ProtocolError::TooBigInline);
        assert_eq!(err(b"*123456789", &l), ProtocolError::TooBigMbulkCount);
        assert_eq!(err(b"*1\r\n$12345678", &l), ProtocolError::TooBigBulkCount);
    }

    #[test]
    fn unauthenticated_limits_are_redis_s() {
        let l = Limits::default().unauthenticated();
        let mut ok = BytesMut::from(&b"*10\r\n"[..]);
        for _ in 0..9 {
            ok.extend_from_slice(b"$1\r\na\r\n");
        }
        ok.extend_from_slice(format!("${0}\r\n{1}\r\n", 16384, "b".repeat(16384)).as_bytes());
        assert_eq!(decode_request(&mut ok, &l).unwrap().unwrap().len(), 10);
        let e = err(b"*11\r\n", &l);
        assert_eq!(e, ProtocolError::UnauthenticatedMultibulkLength);
        assert_eq!(
            e.to_string(),
            "Protocol error: unauthenticated multibulk length"
        );
        // Refused from the header alone, before any of the payload arrives.
        let e = err(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$16385\r\n", &l);
        assert_eq!(e, ProtocolError::UnauthenticatedBulkLength);
        assert_eq!(e.to_string(), "Protocol error: unauthenticated bulk length");
        // Malformed lengths keep their own errors, as in Redis.
        assert_eq!(err(b"*x\r\n", &l), ProtocolError::InvalidMultibulkLength);
        assert_eq!(err(b"*1\r\n$-2\r\n", &l), ProtocolError::InvalidBulkLength);
        // Authenticated, the same requests pass.
        let mut big = BytesMut::from(&b"*11\r\n"[..]);
        for _ in 0..11 {
            big.extend_from_slice(b"$1\r\na\r\n");
        }
        assert!(decode_request(&mut big, &Limits::default())
            .unwrap()
            .is_some());
    }

    #[test]
    fn hostile_bulk_length_does_not_reserve() {
        let mut buf = BytesMut::from(&b"*1\r\n$536870912\r\nabc"[..]);
        let cap = buf.capacity();
        assert!(decode_request(&mut buf, &lim()).unwrap().is_none());
        assert_eq!(buf.capacity(), cap);
        assert_eq!(buf.len(), 19);
    }

    /// xorshift64*: deterministic garbage without a crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    #[test]
    fn garbage_never_panics() {
        const ALPHABET: &[u8] = b"*$\r\n0123456789-+ \"'\\xabq\t\0";
        let l = Limits {
            max_inline_len: 64,
            ..Limits::default()
        };
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut decoded = 0;
        for _ in 0..20_000 {
            let len = (rng.next() % 48) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = rng.next();
                    if r & 3 == 0 {
                        (r >> 8) as u8
                    } else {
                        ALPHABET[(r >> 8) as usize % ALPHABET.len()]
                    }
                })
                .collect();
            let mut buf = BytesMut::from(&bytes[..]);
            let before = buf.len();
            if let Ok(Some(r)) = decode_request(&mut buf, &l) {
                decoded += 1;
                assert!(buf.len() < before);
                assert!(!r.is_empty());
                // Whatever was accepted re-decodes to the same arguments.
                let (again, rest) = decode_all(r.raw());
                assert!(rest.is_empty());
                assert_eq!(args(&again[0]), args(&r));
            }
        }
        assert!(decoded > 100, "generator too weak: {decoded}");
    }
}
