//! Sorted-set ranges: score bounds (`1`, `(1`, `-inf`, `+inf`), lex bounds (`[a`, `(a`, `-`,
//! `+`), rank ranges, and ZRANGE's generic form shared by ZRANGE, ZRANGESTORE,
//! ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX and ZREVRANGE.

use std::ops::Bound;

use bytes::{Bytes, BytesMut};

use crate::node::args::{parse_float, Args};
use crate::node::cmd::elems::{push_pair, tri};
use crate::node::cmd::list::rank_range;
use crate::node::cmd::{args, elems, Ctx, Reply, Value, ZSet};
use crate::node::notify;
use crate::node::reply::format_double;
use crate::node::value::Score;
use crate::resp::encode;
use crate::resp::Protocol;

/// `ERR min or max is not a float`
pub const NOT_FLOAT_RANGE: &str = "ERR min or max is not a float";
/// `ERR min or max not valid string range item`
pub const NOT_LEX_RANGE: &str = "ERR min or max not valid string range item";

/// A score interval with optionally exclusive ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRange {
    min: f64,
    max: f64,
    min_ex: bool,
    max_ex: bool,
}

/// One score bound: `(` makes it exclusive; NaN is refused.
fn score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    let (ex, text) = match arg.strip_prefix(b"(") {
        Some(rest) => (true, rest),
        None => (false, arg),
    };
    let v = parse_float(text)?;
    // -0 and 0 are the same score; stored scores are normalised to +0.
    Some((if v == 0.0 { 0.0 } else { v }, ex))
}

impl ScoreRange {
    /// Parses `min max` as Redis's `zslParseRange` does.
    pub fn parse(min: &[u8], max: &[u8]) -> Result<ScoreRange, Reply> {
        let err = || Reply::error(NOT_FLOAT_RANGE);
        let (min, min_ex) = score_bound(min).ok_or_else(err)?;
        let (max, max_ex) = score_bound(max).ok_or_else(err)?;
        Ok(ScoreRange {
            min,
            max,
            min_ex,
            max_ex,
        })
    }
    fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.min_ex || self.max_ex))
    }
    /// The members in range, ascending (reverse the iterator for descending), found through
    /// the ordered index rather than a scan.
    pub fn iter<'z>(&self, z: &'z ZSet) -> impl DoubleEndedIterator<Item = (&'z Bytes, f64)> {
        let floor = |s: f64| (Score(s), Bytes::new());
        let bounds = if self.is_empty() {
            (Bound::Included(floor(0.0)), Bound::Excluded(floor(0.0)))
        } else {
            let lo = if self.min_ex {
                self.min.next_up()
            } else {
                self.min
            };
            let hi = if self.max_ex {
                Bound::Excluded(floor(self.max))
            } else if self.max == f64::INFINITY {
                Bound::Unbounded
            } else {
                Bound::Excluded(floor(self.max.next_up()))
            };
            (Bound::Included(floor(lo)), hi)
        };
        z.ordered().range(bounds).map(|(s, m)| (m, s.0))
    }
}

/// One end of a lex range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Lex<'a> {
    /// `-`
    Min,
    /// `+`
    Max,
    /// `[x`
    In(&'a [u8]),
    /// `(x`
    Ex(&'a [u8]),
}

impl<'a> Lex<'a> {
    fn parse(arg: &'a [u8]) -> Option<Lex<'a>> {
        match arg {
            b"-" => Some(Lex::Min),
            b"+" => Some(Lex::Max),
            [b'[', rest @ ..] => Some(Lex::In(rest)),
            [b'(', rest @ ..] => Some(Lex::Ex(rest)),
            _ => None,
        }
    }
}

/// A lex interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LexRange<'a> {
    min: Lex<'a>,
    max: Lex<'a>,
}

impl<'a> LexRange<'a> {
    /// Parses `min max` as Redis's `zslParseLexRange` does.
    pub fn parse(min: &'a [u8], max: &'a [u8]) -> Result<LexRange<'a>, Reply> {
        match (Lex::parse(min), Lex::parse(max)) {
            (Some(min), Some(max)) => Ok(LexRange { min, max }),
            _ => Err(Reply::error(NOT_LEX_RANGE)),
        }
    }
    /// True if `m` is at or above the lower end.
    pub fn above_min(&self, m: &[u8]) -> bool {
        match self.min {
            Lex::Min => true,
            Lex::Max => false,
            Lex::In(v) => m >= v,
            Lex::Ex(v) => m > v,
        }
    }
    /// True if `m` is at or below the upper end.
    pub fn below_max(&self, m: &[u8]) -> bool {
        match self.max {
            Lex::Min => false,
            Lex::Max => true,
            Lex::In(v) => m <= v,
            Lex::Ex(v) => m < v,
        }
    }
    /// Members in range in the given direction. Like Redis, this assumes every member has
    /// the same score (the only case where lex ranges are meaningful): it skips to the first
    /// member inside and stops at the first one past the other end.
    pub fn collect<'z>(&self, z: &'z ZSet, rev: bool) -> Vec<(&'z Bytes, f64)> {
        // Redis first rules out ranges entirely past either end, judged by the first and
        // last members only; with mixed scores this decides the answer, so do the same.
        let (Some((first, _)), Some((last, _))) = (z.iter().next(), z.iter().next_back()) else {
            return Vec::new();
        };
        if !self.above_min(last) || !self.below_max(first) {
            return Vec::new();
        }
        if rev {
            z.iter()
                .rev()
                .skip_while(|(m, _)| !self.below_max(m))
                .take_while(|(m, _)| self.above_min(m))
                .collect()
        } else {
            z.iter()
                .skip_while(|(m, _)| !self.above_min(m))
                .take_while(|(m, _)| self.below_max(m))
                .collect()
        }
    }
}

/// Members at ranks `start..=stop` (Redis's negative-index rules), in the given direction.
pub fn by_rank(z: &ZSet, start: i64, stop: i64, rev: bool) -> Vec<(&Bytes, f64)> {
    let Some((a, b)) = rank_range(start, stop, z.len()) else {
        return Vec::new();
    };
    // The ordered index has no positional access: walk in from whichever end is nearer, so
    // "the last ten" costs as little as "the first ten".
    let (n, last) = (b - a + 1, z.len() - 1);
    let near_end = a > last - b;
    match (rev, near_end) {
        (false, false) => z.iter().skip(a).take(n).collect(),
        (true, false) => z.iter().rev().skip(a).take(n).collect(),
        (false, true) => {
            let mut v: Vec<_> = z.iter().rev().skip(last - b).take(n).collect();
            v.reverse();
            v
        }
        (true, true) => {
            let mut v: Vec<_> = z.iter().skip(last - b).take(n).collect();
            v.reverse();
            v
        }
    }
}

/// How a ZRANGE-style command selects.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// By position.
    Rank,
    /// By score (BYSCORE, ZRANGEBYSCORE).
    Score,
    /// By member (BYLEX, ZRANGEBYLEX).
    Lex,
}

/// A ZRANGE-family command's shape: what the command name fixes, and where its arguments
/// are.
pub struct Shape {
    /// Fixed by the command (ZRANGEBYSCORE), or chosen by BYSCORE/BYLEX.
    pub kind: Option<Kind>,
    /// Fixed by the command (ZREVRANGE), or chosen by REV.
    pub rev: Option<bool>,
    /// Destination argument for ZRANGESTORE.
    pub dst: Option<usize>,
    /// The source key's argument.
    pub src: usize,
}

/// Redis's `zrangeGenericCommand`: options, then conflicts, then the range, then the key.
pub fn zrange(ctx: &mut Ctx, args: &Args, shape: Shape) -> Reply {
    let opts = tri!(RangeOpts::parse(args, &shape));
    let sel = tri!(Sel::parse(args, shape.src, &opts));
    let resp3 = ctx.proto() == Protocol::Resp3;
    let picked = match tri!(ctx.read::<ZSet>(args.get(shape.src))) {
        Some(z) => sel.pick(z, &opts),
        None if shape.dst.is_some() => Vec::new(),
        None => return Reply::Array(Vec::new()),
    };
    if let Some(d) = shape.dst {
        let mut out = ZSet::default();
        for (m, s) in picked {
            out.insert(m, s);
        }
        return store_result(ctx, args, d, out, "zrangestore");
    }
    if !opts.with_scores {
        return elems::bulk_array(picked.iter().map(|(m, _)| &m[..]));
    }
    scored_raw(&picked, resp3)
}

/// ZRANGE's options after the range: how it selects, which way, what comes back.
struct RangeOpts {
    kind: Kind,
    rev: bool,
    with_scores: bool,
    /// LIMIT's offset and count (-1: no limit).
    offset: i64,
    limit: i64,
}

impl RangeOpts {
    /// The options, then their conflicts, checked in Redis's order.
    fn parse(args: &Args, shape: &Shape) -> Result<RangeOpts, Reply> {
        let store = shape.dst.is_some();
        let (mut kind, mut rev) = (shape.kind, shape.rev);
        let (mut with_scores, mut offset, mut limit) = (false, 0i64, -1i64);
        let mut i = shape.src + 3;
        while i < args.len() {
            let left = args.len() - i - 1;
            if !store && args.is(i, "WITHSCORES") {
                with_scores = true;
            } else if args.is(i, "LIMIT") && left >= 2 {
                offset = args.int(i + 1)?;
                limit = args.int(i + 2)?;
                i += 2;
            } else if rev.is_none() && args.is(i, "REV") {
                rev = Some(true);
            } else if kind.is_none() && args.is(i, "BYLEX") {
                kind = Some(Kind::Lex);
            } else if kind.is_none() && args.is(i, "BYSCORE") {
                kind = Some(Kind::Score);
            } else {
                return Err(args::syntax());
            }
            i += 1;
        }
        let kind = kind.unwrap_or(Kind::Rank);
        if limit != -1 && kind == Kind::Rank {
            return Err(Reply::error(
                "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
            ));
        }
        if with_scores && kind == Kind::Lex {
            return Err(Reply::error(
                "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
            ));
        }
        Ok(RangeOpts {
            kind,
            rev: rev.unwrap_or(false),
            with_scores,
            offset,
            limit,
        })
    }

    /// LIMIT as (skip, take): a negative offset selects nothing, a negative count everything.
    fn window(&self) -> (usize, usize) {
        if self.offset < 0 {
            return (0, 0);
        }
        (
            usize::try_from(self.offset).unwrap_or(usize::MAX),
            usize::try_from(self.limit).unwrap_or(usize::MAX),
        )
    }
}

/// The range a ZRANGE-style command asked for.
enum Sel<'a> {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange<'a>),
}

impl<'a> Sel<'a> {
    /// The range's two arguments after the key `src` (reversed score and lex ranges name
    /// the high end first).
    fn parse(args: &'a Args, src: usize, opts: &RangeOpts) -> Result<Sel<'a>, Reply> {
        let (mut lo, mut hi) = (src + 1, src + 2);
        if opts.rev && opts.kind != Kind::Rank {
            std::mem::swap(&mut lo, &mut hi);
        }
        Ok(match opts.kind {
            Kind::Rank => Sel::Rank(args.int(lo)?, args.int(hi)?),
            Kind::Score => Sel::Score(ScoreRange::parse(args.get(lo), args.get(hi))?),
            Kind::Lex => Sel::Lex(LexRange::parse(args.get(lo), args.get(hi))?),
        })
    }

    /// The members (and scores) of `z` in the range, in reply order, within LIMIT.
    fn pick(self, z: &ZSet, opts: &RangeOpts) -> Vec<(Bytes, f64)> {
        let (skip, take) = opts.window();
        let own = |(m, s): (&Bytes, f64)| (m.clone(), s);
        match self {
            Sel::Rank(a, b) => by_rank(z, a, b, opts.rev).into_iter().map(own).collect(),
            Sel::Score(r) if opts.rev => r.iter(z).rev().skip(skip).take(take).map(own).collect(),
            Sel::Score(r) => r.iter(z).skip(skip).take(take).map(own).collect(),
            Sel::Lex(r) => r
                .collect(z, opts.rev)
                .into_iter()
                .skip(skip)
                .take(take)
                .map(own)
                .collect(),
        }
    }
}

/// Member/score pairs encoded up front (see [`elems::bulk_array`]): RESP2 flat with scores
/// as bulk text, RESP3 as `[member, double]` pairs.
fn scored_raw(items: &[(Bytes, f64)], resp3: bool) -> Reply {
    let size: usize = items.iter().map(|(m, _)| m.len() + 48).sum();
    let mut out = BytesMut::with_capacity(size + 16);
    encode::array_len(&mut out, items.len() * if resp3 { 1 } else { 2 });
    for (m, s) in items {
        let score = format_double(*s);
        if resp3 {
            encode::array_len(&mut out, 2);
            encode::bulk(&mut out, m);
            out.extend_from_slice(b",");
            out.extend_from_slice(score.as_bytes());
            out.extend_from_slice(b"\r\n");
        } else {
            encode::bulk(&mut out, m);
            encode::bulk(&mut out, score.as_bytes());
        }
    }
    Reply::Raw(out.freeze())
}

/// Member/score pairs as ZRANGE answers them: members only, or with scores (RESP2 flat,
/// RESP3 as `[member, double]` pairs, as Redis 7 does).
pub fn scored_items(items: Vec<(Bytes, f64)>, with_scores: bool, resp3: bool) -> Vec<Reply> {
    let mut out = Vec::with_capacity(items.len() * if with_scores { 2 } else { 1 });
    for (m, s) in items {
        if with_scores {
            push_pair(&mut out, resp3, Reply::Bulk(m), Reply::Double(s));
        } else {
            out.push(Reply::Bulk(m));
        }
    }
    out
}

/// Stores a computed sorted set under argument `dst` (replacing any value, TTL cleared), or
/// deletes `dst` when the result is empty; answers the result's size. `event` is the
/// keyspace event of a stored result (the command's name).
pub fn store_result(ctx: &mut Ctx, args: &Args, dst: usize, z: ZSet, event: &str) -> Reply {
    let key = args.get(dst);
    let n = z.len() as i64;
    if z.is_empty() {
        if ctx.delete(key) {
            ctx.changed(key, notify::GENERIC, "del");
        }
    } else {
        ctx.set(args.get(dst), Value::ZSet(Box::new(z)), false);
        ctx.changed(key, notify::ZSET, event);
    }
    Reply::Int(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zset(items: &[(&'static str, f64)]) -> ZSet {
        let mut z = ZSet::default();
        for (m, s) in items {
            z.insert(Bytes::from_static(m.as_bytes()), *s);
        }
        z
    }

    fn members(v: impl Iterator<Item = (impl AsRef<[u8]>, f64)>) -> Vec<String> {
        v.map(|(m, _)| String::from_utf8_lossy(m.as_ref()).into_owned())
            .collect()
    }

    #[test]
    fn score_bounds() {
        let z = zset(&[("a", 1.0), ("b", 2.0), ("c", 2.0), ("d", 3.0)]);
        let r = |a: &str, b: &str| {
            members(
                ScoreRange::parse(a.as_bytes(), b.as_bytes())
                    .expect("valid")
                    .iter(&z),
            )
        };
        assert_eq!(r("-inf", "+inf"), ["a", "b", "c", "d"]);
        assert_eq!(r("(1", "2"), ["b", "c"]);
        assert_eq!(r("1", "(2"), ["a"]);
        assert_eq!(r("(2", "(2"), Vec::<String>::new());
        assert_eq!(r("3", "1"), Vec::<String>::new());
        assert_eq!(r("(1", "(1.5"), Vec::<String>::new());
        assert_eq!(r("2", "inf"), ["b", "c", "d"]);
        assert_eq!(r("(3", "+inf"), Vec::<String>::new());
        assert_eq!(r("-inf", "(-inf"), Vec::<String>::new());
        assert!(ScoreRange::parse(b"x", b"1").is_err());
        assert!(ScoreRange::parse(b"(nan", b"1").is_err());
        assert!(ScoreRange::parse(b"1", b"(").is_err());
    }

    #[test]
    fn lex_bounds() {
        let z = zset(&[("a", 0.0), ("b", 0.0), ("c", 0.0), ("d", 0.0)]);
        let r = |a: &str, b: &str, rev| {
            let range = LexRange::parse(a.as_bytes(), b.as_bytes()).expect("valid");
            members(range.collect(&z, rev).into_iter())
        };
        assert_eq!(r("-", "+", false), ["a", "b", "c", "d"]);
        assert_eq!(r("[b", "(d", false), ["b", "c"]);
        assert_eq!(r("(a", "[c", true), ["c", "b"]);
        assert_eq!(r("+", "-", false), Vec::<String>::new());
        assert!(LexRange::parse(b"a", b"+").is_err());
        assert!(LexRange::parse(b"-", b"").is_err());
    }

    #[test]
    fn ranks() {
        let z = zset(&[("a", 1.0), ("b", 2.0), ("c", 3.0)]);
        assert_eq!(
            members(by_rank(&z, 0, -1, false).into_iter()),
            ["a", "b", "c"]
        );
        assert_eq!(members(by_rank(&z, 0, 0, true).into_iter()), ["c"]);
        assert_eq!(members(by_rank(&z, -2, 10, false).into_iter()), ["b", "c"]);
        // Ranges near either end, both directions, agree with a plain walk.
        let mut big = ZSet::default();
        for i in 0..50 {
            big.insert(Bytes::from(format!("m{i:02}")), f64::from(i));
        }
        let all: Vec<String> = members(big.iter());
        for (a, b) in [(0, 3), (45, 49), (-3, -1), (10, 40), (48, 100)] {
            let (s, e) = rank_range(a, b, 50).expect("non-empty");
            assert_eq!(members(by_rank(&big, a, b, false).into_iter()), all[s..=e]);
            let rev: Vec<String> = all.iter().rev().cloned().collect();
            assert_eq!(members(by_rank(&big, a, b, true).into_iter()), rev[s..=e]);
        }
    }
}
