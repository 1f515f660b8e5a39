//! Helpers shared by the data-type families (hashes, lists, sets, sorted sets): the handler
//! error macro, pair replies, HSCAN/SSCAN/ZSCAN arguments and paging, glob matching for
//! MATCH (`crate::node::glob`), random picks (`pick`), count arguments, LMPOP/ZMPOP arguments, and
//! pre-encoded bulk arrays for range replies.

mod pick;

use bytes::Bytes;

use super::{args, Args, Reply};
use crate::resp::encode;

/// Redis's glob, shared with KEYS/SCAN and pub/sub patterns.
pub use crate::node::glob::matches as glob_match;
pub(crate) use pick::{check_repeats, distinct_indices, rand_args, rand_positions, random_index};

/// Unwraps a `Result<_, Reply>` inside a handler: the error is the reply.
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return e,
        }
    };
}
pub(crate) use tri;

/// A pair reply element: RESP3 nests pairs, RESP2 flattens them (done by the caller).
pub(crate) fn push_pair(out: &mut Vec<Reply>, resp3: bool, a: Reply, b: Reply) {
    if resp3 {
        out.push(Reply::Array(vec![a, b]));
    } else {
        out.push(a);
        out.push(b);
    }
}

/// Collections up to this size are scanned in one reply with cursor 0, as Redis does for its
/// compact (listpack) encodings; callers then see exactly Redis's replies for small keys.
pub const SMALL: usize = 128;

/// `ERR value is out of range, must be positive`
pub const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";

/// Parsed `cursor [MATCH pattern] [COUNT n]` of a *SCAN command.
pub struct Scan<'a> {
    /// Where to resume.
    pub cursor: u64,
    /// Only elements matching this glob.
    pub pattern: Option<&'a [u8]>,
    /// Roughly how many elements to visit.
    pub count: usize,
}

/// The cursor argument (`ERR invalid cursor`), checked before the key as Redis does.
pub fn cursor(arg: &[u8]) -> Result<u64, Reply> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| Reply::error("ERR invalid cursor"))
}

/// The options after the cursor at `args[from..]`.
pub fn scan_options<'a>(args: &Args<'a>, cursor: u64, from: usize) -> Result<Scan<'a>, Reply> {
    let mut scan = Scan {
        cursor,
        pattern: None,
        count: 10,
    };
    let mut i = from;
    while i < args.len() {
        let has_value = i + 1 < args.len();
        if args.is(i, "COUNT") && has_value {
            let n = args.int(i + 1)?;
            if n < 1 {
                return Err(args::syntax());
            }
            scan.count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if args.is(i, "MATCH") && has_value {
            let p = args.get(i + 1);
            // `*` matches everything: skip the matching work entirely.
            scan.pattern = (p != b"*").then_some(p);
        } else {
            return Err(args::syntax());
        }
        i += 2;
    }
    Ok(scan)
}

impl Scan<'_> {
    /// Which positions of a collection of `len` elements this call visits, and the cursor
    /// to return. Small collections are returned whole. Larger ones are paged by position
    /// from the end down: the cursor is how many positions are still to visit. Removals
    /// (swap or shift) only ever move an element from a visited position into the
    /// unvisited range, never the other way, so every element present for the whole scan
    /// is returned at least once, as SCAN guarantees; additions land past the end, in the
    /// visited range, and may or may not be seen, as SCAN allows.
    pub fn window(&self, len: usize) -> (std::ops::Range<usize>, u64) {
        if len <= SMALL {
            return (0..len, 0);
        }
        let end = match usize::try_from(self.cursor) {
            Ok(0) => len,
            Ok(c) => c.min(len),
            Err(_) => len,
        };
        let start = end.saturating_sub(self.count);
        (start..end, start as u64)
    }
    /// True if `item` passes MATCH.
    pub fn matches(&self, item: &[u8]) -> bool {
        self.pattern.is_none_or(|p| glob_match(p, item))
    }
}

/// A *SCAN reply: the next cursor and the elements.
pub fn scan_reply(next: u64, items: Vec<Reply>) -> Reply {
    let mut n = itoa::Buffer::new();
    Reply::Array(vec![
        Reply::Bulk(Bytes::copy_from_slice(n.format(next).as_bytes())),
        Reply::Array(items),
    ])
}

/// An optional "count" that must be non-negative (SPOP, LPOP, ZPOPMIN), with Redis's error.
pub fn positive_count(args: &Args, i: usize) -> Result<usize, Reply> {
    match args::parse_int(args.get(i)) {
        Some(n) if n >= 0 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        _ => Err(Reply::error(NOT_POSITIVE)),
    }
}

/// Parsed `numkeys key... <where> [COUNT n]` of LMPOP/ZMPOP and their blocking forms.
pub struct Mpop {
    /// The key arguments' positions.
    pub keys: std::ops::Range<usize>,
    /// The position of LEFT/RIGHT or MIN/MAX.
    pub side: usize,
    /// How many to pop (1 without COUNT).
    pub count: usize,
    /// The COUNT argument's text, for the rewritten propagation.
    pub count_arg: Bytes,
}

/// Parses the `numkeys ...` part starting at `at`, with Redis 7.0's errors. The side word
/// is checked by the caller.
pub fn mpop_args(args: &Args, at: usize) -> Result<Mpop, Reply> {
    let numkeys = match args::parse_int(args.get(at)) {
        Some(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
        _ => return Err(Reply::error("ERR numkeys should be greater than 0")),
    };
    if numkeys > args.len().saturating_sub(at + 2) {
        return Err(args::syntax());
    }
    let side = at + 1 + numkeys;
    let mut count = None;
    let mut i = side + 1;
    while i < args.len() {
        if count.is_none() && args.is(i, "COUNT") && i + 1 < args.len() {
            count = match args::parse_int(args.get(i + 1)) {
                Some(n) if n > 0 => Some((usize::try_from(n).unwrap_or(usize::MAX), i + 1)),
                _ => return Err(Reply::error("ERR count should be greater than 0")),
            };
            i += 2;
        } else {
            return Err(args::syntax());
        }
    }
    let (count, count_arg) = match count {
        Some((n, i)) => (n, args.owned(i)),
        None => (1, Bytes::from_static(b"1")),
    };
    Ok(Mpop {
        keys: at + 1..side,
        side,
        count,
        count_arg,
    })
}

/// An array of bulk strings, encoded up front (the same bytes in RESP2 and RESP3). Range
/// replies (LRANGE, ZRANGE, HKEYS) are the hot path of read-heavy workloads: one buffer
/// beats building a `Reply` per element, each holding a reference-counted handle that must
/// be taken and released.
pub fn bulk_array<'a, I>(items: I) -> Reply
where
    I: ExactSizeIterator<Item = &'a [u8]> + Clone,
{
    let size: usize = items.clone().map(|b| b.len() + 16).sum();
    let mut out = bytes::BytesMut::with_capacity(size + 16);
    encode::array_len(&mut out, items.len());
    for b in items {
        encode::bulk(&mut out, b);
    }
    Reply::Raw(out.freeze())
}

/// Bytes of a decimal integer (for rewritten propagation and cursors).
pub fn int_bytes(n: i64) -> Bytes {
    Bytes::copy_from_slice(itoa::Buffer::new().format(n).as_bytes())
}

#[cfg(test)]
mod harness;
#[cfg(test)]
mod propagation;
#[cfg(test)]
mod resp3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_page_large_collections() {
        let scan = Scan {
            cursor: 0,
            pattern: None,
            count: 100,
        };
        assert_eq!(scan.window(10), (0..10, 0));
        assert_eq!(scan.window(250), (150..250, 150));
        let scan = Scan {
            cursor: 150,
            ..scan
        };
        assert_eq!(scan.window(250), (50..150, 50));
        // The collection shrank below the cursor: the rest is still visited.
        assert_eq!(scan.window(140), (40..140, 40));
        let scan = Scan { cursor: 50, ..scan };
        assert_eq!(scan.window(250), (0..50, 0));
    }
}
