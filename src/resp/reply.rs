//! Zero-copy reply framing: check that a complete frame is buffered, then split it off whole.

use bytes::Bytes;

use super::parse::{fast_len, find, is_big_number, parse_int, string2ll, Levels};
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
/// counted as part of the frame it precedes. Aggregates nested deeper than `limits.max_depth`
/// give `TooDeep`; streamed RESP3 types (`$?`, `*?`, ...), which Redis never
/// sends, give `InvalidReply`. `push` is set when the top-level frame (after any attribute) is
/// `>`.
pub fn scan_reply(buf: &[u8], limits: &Limits) -> Result<Option<ReplyScan>, ProtocolError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut s = Scanner {
        buf,
        limits,
        resp3: false,
    };
    let top = buf[0];
    let result = match s.item(0) {
        // Scalars (the common case) never pay for the aggregate stack.
        Ok(Item::Done(len)) => Ok(len),
        Ok(Item::Open { count, attr, next }) => s.nested(count, attr, next),
        Err(e) => Err(e),
    };
    match result {
        Ok(len) => Ok(Some(ReplyScan {
            len,
            resp3: s.resp3,
            push: top == b'>' || (top == b'|' && s.top_after_attributes(len) == Some(b'>')),
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

/// One header or scalar read by [`Scanner::item`].
enum Item {
    /// A complete value (scalar, null, or empty aggregate) ending at this position.
    Done(usize),
    /// An aggregate header announcing `count` values (2 per entry for maps and attributes).
    /// An attribute completes no value of its parent: the value it annotates follows it.
    Open { count: u64, attr: bool, next: usize },
}

/// Longest `$`/`*`/... header line accepted: `-9223372036854775808` is 20 bytes; anything much
/// longer is garbage, and we would rather say so than buffer it.
const MAX_HEADER_LINE: usize = 64;

/// Marks attribute levels in the scanner's stack of remaining counts.
const ATTR: u64 = 1 << 63;

const STREAMED: ProtocolError =
    ProtocolError::InvalidReply("streamed RESP3 types are not supported");

struct Scanner<'a> {
    buf: &'a [u8],
    limits: &'a Limits,
    resp3: bool,
}

impl Scanner<'_> {
    /// Walks the values of an aggregate opened at top level, keeping the number of values
    /// still expected at each level in [`Levels`]: no recursion, so a hostile (or a legitimate
    /// deep Lua) nesting cannot exhaust the thread stack; only `limits.max_depth` bounds it.
    fn nested(&mut self, count: u64, attr: bool, mut pos: usize) -> Result<usize, Stop> {
        let max_depth = self.limits.max_depth;
        let mut levels = Levels::new();
        let mut open = Some((count, attr));
        loop {
            if let Some((count, attr)) = open {
                if levels.len() >= max_depth {
                    return Err(ProtocolError::TooDeep.into());
                }
                levels.push(count | if attr { ATTR } else { 0 });
            }
            match self.item(pos)? {
                Item::Open { count, attr, next } => {
                    open = Some((count, attr));
                    pos = next;
                    continue;
                }
                Item::Done(end) => pos = end,
            }
            open = None;
            // A value is complete: count it against the enclosing levels, closing every level
            // it completes. A closed attribute is not a value, so it stops there.
            loop {
                let Some(top) = levels.top_mut() else {
                    return Ok(pos);
                };
                *top -= 1;
                if *top & !ATTR != 0 {
                    break;
                }
                let closed_attr = *top & ATTR != 0;
                levels.pop();
                if closed_attr {
                    break;
                }
            }
        }
    }

    /// The type byte of the value a top-level attribute annotates (for `push`).
    fn top_after_attributes(&self, len: usize) -> Option<u8> {
        let mut pos = 0;
        while self.buf.get(pos) == Some(&b'|') {
            let (n, mut p) = super::parse::header(&self.buf[..len], pos)?;
            for _ in 0..u64::try_from(n).ok()?.checked_mul(2)? {
                let rest = self.buf.get(p..len)?;
                p += scan_reply(rest, &super::parse::PERMISSIVE).ok()??.len;
            }
            pos = p;
        }
        self.buf.get(pos).copied()
    }

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

    /// Reads the scalar or aggregate header at `pos`.
    #[inline]
    fn item(&mut self, mut pos: usize) -> Result<Item, Stop> {
        let mut t = *self.buf.get(pos).ok_or(Stop::Incomplete)?;
        while t == b'|' {
            self.resp3 = true;
            match self.aggregate(pos, 2, false, true)? {
                // An empty attribute: the value it annotates takes its place.
                Item::Done(next) => pos = next,
                open => return Ok(open),
            }
            t = *self.buf.get(pos).ok_or(Stop::Incomplete)?;
        }
        match t {
            b'+' | b'-' => return Ok(Item::Done(self.simple(pos)?.1)),
            b':' => {
                let (s, next) = self.simple(pos)?;
                if parse_int(s).is_none() {
                    return Err(ProtocolError::InvalidReply("invalid integer").into());
                }
                return Ok(Item::Done(next));
            }
            b'$' => return self.blob(pos, true),
            b'*' => return self.aggregate(pos, 1, true, false),
            _ => {}
        }
        self.resp3 = true;
        let check = |ok: bool, what: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(Stop::Invalid(ProtocolError::InvalidReply(what)))
            }
        };
        match t {
            b'!' | b'=' => self.blob(pos, false),
            b'_' | b',' | b'#' | b'(' => {
                let (s, next) = self.simple(pos)?;
                match t {
                    b'_' => check(s.is_empty(), "invalid null")?,
                    b',' => check(!s.is_empty(), "invalid double")?,
                    b'#' => check(s == b"t" || s == b"f", "invalid boolean")?,
                    _ => check(is_big_number(s), "invalid big number")?,
                }
                Ok(Item::Done(next))
            }
            b'%' => self.aggregate(pos, 2, false, false),
            b'~' | b'>' => self.aggregate(pos, 1, false, false),
            _ => Err(ProtocolError::InvalidReply("unknown type byte").into()),
        }
    }

    /// `$`, `!` or `=` at `pos`.
    fn blob(&mut self, pos: usize, nullable: bool) -> Result<Item, Stop> {
        if let Some((n, cr)) = fast_len(&self.buf[pos..]) {
            if n <= self.limits.max_bulk_len as u64 && self.buf[pos..].get(cr + 1) == Some(&b'\n') {
                return self.blob_body(pos, pos + cr + 2, n as usize);
            }
        }
        let (end, next) = self.line(pos + 1, MAX_HEADER_LINE, ProtocolError::InvalidBulkLength)?;
        let s = &self.buf[pos + 1..end];
        if s == b"?" {
            return Err(STREAMED.into());
        }
        let n = string2ll(s).ok_or(ProtocolError::InvalidBulkLength)?;
        if n < 0 {
            if n == -1 && nullable {
                return Ok(Item::Done(next));
            }
            return Err(ProtocolError::InvalidBulkLength.into());
        }
        if n as u64 > self.limits.max_bulk_len as u64 {
            return Err(ProtocolError::InvalidBulkLength.into());
        }
        // n <= max_bulk_len, a usize.
        self.blob_body(pos, next, n as usize)
    }

    /// The payload of the blob at `pos`, `n` bytes starting at `next`.
    #[inline]
    fn blob_body(&self, pos: usize, next: usize, n: usize) -> Result<Item, Stop> {
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
        Ok(Item::Done(frame_end))
    }

    /// An aggregate header at `pos` announcing entries of `per` values each.
    fn aggregate(
        &mut self,
        pos: usize,
        per: u64,
        nullable: bool,
        attr: bool,
    ) -> Result<Item, Stop> {
        if let Some((n, cr)) = fast_len(&self.buf[pos..]) {
            // n < 10^18, so n * 2 leaves the ATTR bit free.
            let count = n * per;
            if n <= self.limits.max_multibulk_len as u64
                && self.buf[pos..].get(cr + 1) == Some(&b'\n')
            {
                let next = pos + cr + 2;
                if count == 0 {
                    return Ok(Item::Done(next));
                }
                return Ok(Item::Open { count, attr, next });
            }
        }
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
                return Ok(Item::Done(next));
            }
            return Err(ProtocolError::InvalidMultibulkLength.into());
        }
        if n as u64 > self.limits.max_multibulk_len as u64 {
            return Err(ProtocolError::InvalidMultibulkLength.into());
        }
        // n < 2^63, so count < 2^64; but the ATTR bit must stay free.
        let count = (n as u64) * per;
        if count & ATTR != 0 {
            return Err(ProtocolError::InvalidMultibulkLength.into());
        }
        if count == 0 {
            return Ok(Item::Done(next));
        }
        Ok(Item::Open { count, attr, next })
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn scan(b: &[u8]) -> Result<Option<ReplyScan>, ProtocolError> {
        scan_reply(b, &Limits::default())
    }

    fn full(b: &[u8]) -> ReplyScan {
        let s = scan(b).expect("valid").expect("complete");
        assert_eq!(s.len, b.len(), "{:?}", String::from_utf8_lossy(b));
        s
    }

    const RESP2: &[&[u8]] = &[
        b"+OK\r\n",
        b"-ERR wrong\r\n",
        b":0\r\n",
        b":-42\r\n",
        b"$5\r\nhello\r\n",
        b"$0\r\n\r\n",
        b"$4\r\na\r\nb\r\n",
        b"$-1\r\n",
        b"*-1\r\n",
        b"*0\r\n",
        b"*3\r\n:1\r\n$-1\r\n*2\r\n+a\r\n-b\r\n",
    ];

    const RESP3: &[&[u8]] = &[
        b"_\r\n",
        b",1.5\r\n",
        b",-inf\r\n",
        b"#t\r\n",
        b"#f\r\n",
        b"(3492890328409238509324850943850943825024385\r\n",
        b"!9\r\nERR x\r\nyz\r\n",
        b"=15\r\ntxt:Some string\r\n",
        b"%2\r\n+a\r\n:1\r\n+b\r\n_\r\n",
        b"~2\r\n:1\r\n:2\r\n",
        b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
        b"|1\r\n+ttl\r\n:3600\r\n+OK\r\n",
        b"*2\r\n:1\r\n%1\r\n+k\r\n#t\r\n",
    ];

    #[test]
    fn complete_frames() {
        for f in RESP2 {
            let s = full(f);
            assert!(!s.resp3, "{:?}", String::from_utf8_lossy(f));
            assert!(!s.push);
        }
        for f in RESP3 {
            let s = full(f);
            assert!(s.resp3, "{:?}", String::from_utf8_lossy(f));
            assert_eq!(s.push, f[0] == b'>');
        }
    }

    #[test]
    fn resp3_flag_found_deep_inside() {
        let s = full(b"*2\r\n*1\r\n*1\r\n,2.5\r\n:1\r\n");
        assert!(s.resp3);
        assert!(!s.push);
    }

    #[test]
    fn push_after_attribute_and_not_nested() {
        let s = full(b"|1\r\n+a\r\n+b\r\n>1\r\n+x\r\n");
        assert!(s.push);
        let s = full(b"*1\r\n>1\r\n+x\r\n");
        assert!(!s.push);
    }

    #[test]
    fn attribute_inside_array_is_not_an_element() {
        // The array has two elements; the attribute belongs to the first.
        let f = b"*2\r\n|1\r\n+k\r\n+v\r\n:1\r\n:2\r\n";
        full(f);
        assert_eq!(scan(&f[..f.len() - 4]).unwrap(), None);
    }

    #[test]
    fn pipelined_frames_scan_one_at_a_time() {
        let mut all = Vec::new();
        for f in RESP2.iter().chain(RESP3) {
            all.extend_from_slice(f);
        }
        let mut pos = 0;
        for f in RESP2.iter().chain(RESP3) {
            let s = scan(&all[pos..]).unwrap().unwrap();
            assert_eq!(s.len, f.len());
            pos += s.len;
        }
        assert_eq!(pos, all.len());
    }

    #[test]
    fn every_prefix_is_incomplete() {
        for f in RESP2.iter().chain(RESP3) {
            for cut in 0..f.len() {
                assert_eq!(
                    scan(&f[..cut]),
                    Ok(None),
                    "{:?} cut {cut}",
                    String::from_utf8_lossy(f)
                );
            }
        }
    }

    #[test]
    fn invalid_frames() {
        let cases: &[(&[u8], ProtocolError)] = &[
            (b"?x\r\n", ProtocolError::InvalidReply("unknown type byte")),
            (b"+OK\rX", ProtocolError::InvalidReply("expected CRLF")),
            (b":12a\r\n", ProtocolError::InvalidReply("invalid integer")),
            (
                b"$3\r\nabcde",
                ProtocolError::InvalidReply("bulk string not terminated by CRLF"),
            ),
            (b"$-2\r\n", ProtocolError::InvalidBulkLength),
            (b"$x\r\n", ProtocolError::InvalidBulkLength),
            (b"!-1\r\n", ProtocolError::InvalidBulkLength),
            (b"*-2\r\n", ProtocolError::InvalidMultibulkLength),
            (b"%-1\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*1x\r\n", ProtocolError::InvalidMultibulkLength),
            (b"$?\r\n", STREAMED),
            (b"*?\r\n", STREAMED),
            (b"%?\r\n", STREAMED),
            (b"_x\r\n", ProtocolError::InvalidReply("invalid null")),
            (b",\r\n", ProtocolError::InvalidReply("invalid double")),
            (b"#x\r\n", ProtocolError::InvalidReply("invalid boolean")),
            (
                b"(12a\r\n",
                ProtocolError::InvalidReply("invalid big number"),
            ),
            (
                b"=3\r\ntxt\r\n",
                ProtocolError::InvalidReply("invalid verbatim string"),
            ),
            (
                b"=5\r\ntxt-x\r\n",
                ProtocolError::InvalidReply("invalid verbatim string"),
            ),
            // A length header that cannot be a number, before its CR even arrives.
            (&[b'$'; 80], ProtocolError::InvalidBulkLength),
            (&[b'*'; 80], ProtocolError::InvalidMultibulkLength),
        ];
        for (input, want) in cases {
            assert_eq!(
                scan(input).as_ref(),
                Err(want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        assert_eq!(
            scan(b"?").unwrap_err().to_string(),
            "Protocol error: invalid reply frame: unknown type byte"
        );
    }

    #[test]
    fn limits_apply() {
        let l = Limits {
            max_bulk_len: 3,
            max_multibulk_len: 2,
            max_depth: 2,
            max_inline_len: 64,
            unauthenticated: false,
        };
        assert_eq!(scan_reply(b"$3\r\nabc\r\n", &l).unwrap().unwrap().len, 9);
        assert_eq!(
            scan_reply(b"$4\r\nabcd\r\n", &l),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            scan_reply(b"*3\r\n", &l),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            scan_reply(b"%3\r\n", &l),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            scan_reply(b"+abcd", &l),
            Err(ProtocolError::InvalidReply("line too long"))
        );
        assert!(scan_reply(b"*1\r\n*1\r\n:1\r\n", &l).unwrap().is_some());
        assert_eq!(
            scan_reply(b"*1\r\n*1\r\n*1\r\n:1\r\n", &l),
            Err(ProtocolError::TooDeep)
        );
        // An empty aggregate holds nothing nested, like a scalar.
        assert!(scan_reply(b"*1\r\n*1\r\n*0\r\n", &l).unwrap().is_some());
        assert_eq!(scan_reply(b"*1\r\n|1\r\n", &l), Ok(None));
        assert_eq!(
            scan_reply(b"*1\r\n*1\r\n|1\r\n", &l),
            Err(ProtocolError::TooDeep)
        );
        // A null array is not an aggregate level.
        assert!(scan_reply(b"*1\r\n*1\r\n*-1\r\n", &l).unwrap().is_some());
    }

    #[test]
    fn deep_nesting() {
        let nested = |depth: usize| {
            let mut v = b"*1\r\n".repeat(depth);
            v.extend_from_slice(b":1\r\n");
            v
        };
        full(&nested(128));
        let e = scan(&nested(129)).unwrap_err();
        assert_eq!(e, ProtocolError::TooDeep);
        assert_eq!(e.to_string(), "Protocol error: nesting too deep");
        // Still refused early when the frame is incomplete.
        assert_eq!(scan(&b"*1\r\n".repeat(200)), Err(ProtocolError::TooDeep));
        // Nodes are trusted to Redis's own limits (a Lua table may nest nearly 8000 deep):
        // any depth is walked without recursion, and an incomplete one waits for more.
        let deep = nested(100_000);
        let s = scan_reply(&deep, &Limits::node()).unwrap().unwrap();
        assert_eq!(s.len, deep.len());
        assert_eq!(
            scan_reply(&deep[..deep.len() - 1], &Limits::node()),
            Ok(None)
        );
        // Attributes and maps at depth too.
        let mut mixed = b"%1\r\n+k\r\n|1\r\n+a\r\n+b\r\n".repeat(5_000);
        mixed.extend_from_slice(b":1\r\n");
        let s = scan_reply(&mixed, &Limits::node()).unwrap().unwrap();
        assert_eq!((s.len, s.resp3), (mixed.len(), true));
    }

    #[test]
    fn hostile_counts_do_not_loop() {
        assert_eq!(scan(b"*1000000000\r\n:1\r\n"), Ok(None));
        assert_eq!(scan(b"$536870912\r\nabc"), Ok(None));
    }

    pub(crate) struct Rng(pub(crate) u64);
    impl Rng {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    /// Appends a random valid frame of any type, nested at most `depth` levels.
    pub(crate) fn random_frame(rng: &mut Rng, depth: usize, out: &mut Vec<u8>) {
        let kind = rng.next() % if depth == 0 { 12 } else { 17 };
        let small = |rng: &mut Rng| (rng.next() % 4) as usize;
        let text = |rng: &mut Rng| -> Vec<u8> {
            (0..rng.next() % 6)
                .map(|_| b"ab:\r\n x"[(rng.next() % 7) as usize])
                .collect()
        };
        match kind {
            0 => out.extend_from_slice(b"+OK\r\n"),
            1 => out.extend_from_slice(b"-ERR bad\r\n"),
            2 => out.extend_from_slice(format!(":{}\r\n", rng.next() as i64).as_bytes()),
            3 | 4 => {
                let t = text(rng);
                out.extend_from_slice(format!("${}\r\n", t.len()).as_bytes());
                out.extend_from_slice(&t);
                out.extend_from_slice(b"\r\n");
            }
            5 => out.extend_from_slice(b"$-1\r\n"),
            6 => out.extend_from_slice(b"*-1\r\n"),
            7 => out.extend_from_slice(b"_\r\n"),
            8 => {
                out.extend_from_slice([&b",1.5\r\n"[..], b",-inf\r\n", b",nan\r\n"][small(rng) % 3])
            }
            9 => out.extend_from_slice(if rng.next() & 1 == 0 {
                b"#t\r\n"
            } else {
                b"#f\r\n"
            }),
            10 => out.extend_from_slice(b"(-123456789012345678901234567890\r\n"),
            11 => {
                let t = text(rng);
                let (ty, prefix): (&str, &[u8]) = if rng.next() & 1 == 0 {
                    ("!", b"")
                } else {
                    ("=", b"txt:")
                };
                out.extend_from_slice(format!("{ty}{}\r\n", t.len() + prefix.len()).as_bytes());
                out.extend_from_slice(prefix);
                out.extend_from_slice(&t);
                out.extend_from_slice(b"\r\n");
            }
            _ => {
                let n = small(rng);
                let (ty, per) =
                    [("*", 1), ("%", 2), ("~", 1), (">", 1), ("|", 2)][kind as usize - 12];
                out.extend_from_slice(format!("{ty}{n}\r\n").as_bytes());
                for _ in 0..n * per {
                    random_frame(rng, depth - 1, out);
                }
                if ty == "|" {
                    random_frame(rng, depth - 1, out);
                }
            }
        }
    }

    #[test]
    fn random_valid_frames_scan_whole_and_prefixes_are_incomplete() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        for _ in 0..3000 {
            let mut f = Vec::new();
            random_frame(&mut rng, 4, &mut f);
            let s = full(&f);
            // Payload text never contains these bytes, so any of them is a RESP3 type byte.
            assert_eq!(s.resp3, f.iter().any(|c| b"_,#(!=%~>|".contains(c)));
            let cut = (rng.next() as usize) % f.len();
            assert_eq!(scan(&f[..cut]), Ok(None));
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        let mut complete = 0;
        for _ in 0..30_000 {
            let mut bytes = Vec::new();
            random_frame(&mut rng, 3, &mut bytes);
            // Corrupt a few bytes and cut somewhere.
            for _ in 0..rng.next() % 3 {
                let i = (rng.next() as usize) % bytes.len();
                bytes[i] = b"*$%|:\r\n-?0123456789"[(rng.next() % 18) as usize];
            }
            let cut = (rng.next() as usize) % (bytes.len() + 1);
            let bytes = &bytes[..cut];
            if let Ok(Some(s)) = scan(bytes) {
                complete += 1;
                assert!(s.len > 0 && s.len <= bytes.len());
                // The frame alone is complete and says the same.
                assert_eq!(scan(&bytes[..s.len]), Ok(Some(s)));
                // Conversion and parsing of anything the scanner accepts must not panic.
                let mut out = bytes::BytesMut::new();
                crate::resp::convert::to_resp2(&bytes[..s.len], false, &mut out);
                assert!(!out.is_empty());
                let parsed = crate::resp::Frame::parse(bytes);
                assert!(matches!(parsed, Ok(Some((_, n))) if n == s.len) || parsed.is_err());
            }
            // Arbitrary input to the converter must not panic either.
            let mut out = bytes::BytesMut::new();
            crate::resp::convert::to_resp2(bytes, true, &mut out);
        }
        assert!(complete > 1000, "generator too weak: {complete}");
    }

    #[test]
    fn reply_helpers() {
        let r = Reply::new(
            bytes::Bytes::from_static(b"-READONLY You can't write\r\n"),
            false,
        );
        assert!(r.is_error());
        assert!(r.is_error_with(b"READONLY"));
        assert!(!r.is_error_with(b"MOVED"));
        let r = Reply::new(bytes::Bytes::from_static(b"!3\r\nERR\r\n"), true);
        assert!(r.is_error());
        assert!(!Reply::new(bytes::Bytes::from_static(b"+OK\r\n"), false).is_error());
    }
}
