//! ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD: weighted union/intersection/
//! difference of sorted sets (and plain sets, whose members count with score 1) with SUM,
//! MIN or MAX aggregation.

use std::collections::HashMap;

use bytes::Bytes;

use super::range::{scored_items, store_result};
use crate::node::cmd::elems::tri;
use crate::node::cmd::{args, Args, Ctx, Reply, Set, Value, ZSet};
use crate::resp::Protocol;

/// How scores of the same member combine.
#[derive(Clone, Copy, PartialEq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, acc: f64, v: f64) -> f64 {
        match self {
            // inf + -inf is NaN; Redis makes it 0.
            Aggregate::Sum => {
                let s = acc + v;
                if s.is_nan() {
                    0.0
                } else {
                    s
                }
            }
            Aggregate::Min => acc.min(v),
            Aggregate::Max => acc.max(v),
        }
    }
}

/// One input: a sorted set, a set (scores of 1) or a missing key.
enum Source<'a> {
    Z(&'a ZSet),
    S(&'a Set),
    Missing,
}

impl Source<'_> {
    fn len(&self) -> usize {
        match self {
            Source::Z(z) => z.len(),
            Source::S(s) => s.len(),
            Source::Missing => 0,
        }
    }
    fn score(&self, m: &[u8]) -> Option<f64> {
        match self {
            Source::Z(z) => z.score(m),
            Source::S(s) => s.contains(m).then_some(1.0),
            Source::Missing => None,
        }
    }
    fn for_each(&self, mut f: impl FnMut(&Bytes, f64)) {
        match self {
            Source::Z(z) => z.iter().for_each(|(m, s)| f(m, s)),
            Source::S(s) => s.iter().for_each(|m| f(m, 1.0)),
            Source::Missing => {}
        }
    }
}

/// A weighted score; NaN (0 × inf) counts as 0, as in Redis.
fn weighted(score: f64, weight: f64) -> f64 {
    let v = score * weight;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

/// Which combination.
#[derive(Clone, Copy, PartialEq)]
pub enum Op {
    /// ZUNION, ZUNIONSTORE.
    Union,
    /// ZINTER, ZINTERSTORE, ZINTERCARD.
    Inter,
    /// ZDIFF, ZDIFFSTORE.
    Diff,
}

/// What the command does with the result.
#[derive(Clone, Copy, PartialEq)]
pub enum Output {
    /// Store it under argument 1 (the STORE forms).
    Store,
    /// Reply with it (ZUNION, ZINTER, ZDIFF).
    Reply,
    /// Reply with its size (ZINTERCARD).
    Card,
}

/// Redis's `zunionInterDiffGenericCommand`: `[dst] numkeys key... [WEIGHTS w...]
/// [AGGREGATE SUM|MIN|MAX] [WITHSCORES] [LIMIT n]`, options allowed per command, keys'
/// types checked before the options are parsed.
pub fn combine(ctx: &mut Ctx, args: &Args, op: Op, out: Output, name: &str) -> Reply {
    let at = if out == Output::Store { 2 } else { 1 };
    let numkeys = tri!(args.int(at));
    if numkeys < 1 {
        return Reply::error(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        ));
    }
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys > args.len() - at - 1 {
        return args::syntax();
    }
    let keys = at + 1..at + 1 + numkeys;
    // Types first: any key that is neither a set nor a sorted set fails the command.
    let mut present = Vec::with_capacity(numkeys);
    for i in keys.clone() {
        match ctx.lookup(args.get(i)) {
            None => present.push(false),
            Some(Value::ZSet(_) | Value::Set(_)) => present.push(true),
            Some(_) => return args::wrongtype(),
        }
    }
    let opts = tri!(CombineOpts::parse(args, keys.end, numkeys, op, out));
    let db = ctx.db_index();
    let result = {
        let store = ctx.store.db(db);
        let mut sources: Vec<(Source, f64)> = keys
            .zip(present)
            .zip(opts.weights)
            .map(|((k, here), w)| {
                let src = match here.then(|| store.get(args.get(k))).flatten() {
                    Some(Value::ZSet(z)) => Source::Z(z),
                    Some(Value::Set(s)) => Source::S(s),
                    _ => Source::Missing,
                };
                (src, w)
            })
            .collect();
        // Smallest first, as Redis orders its inputs (the intersection walks the smallest);
        // a difference keeps its first input in place.
        let from = usize::from(op == Op::Diff);
        sources[from..].sort_by_key(|(s, _)| s.len());
        match op {
            Op::Inter => intersect(&sources, opts.agg),
            Op::Union => union(&sources, opts.agg),
            Op::Diff => diff(&sources),
        }
    };
    match out {
        Output::Store => store_result(ctx, args, 1, result, name),
        Output::Card => Reply::Int(match opts.limit {
            0 => result.len(),
            n => result.len().min(n),
        } as i64),
        Output::Reply => {
            let resp3 = ctx.proto() == Protocol::Resp3;
            let items = result.iter().map(|(m, s)| (m.clone(), s)).collect();
            Reply::Array(scored_items(items, opts.with_scores, resp3))
        }
    }
}

/// The options after the keys, as far as the command allows them.
struct CombineOpts {
    weights: Vec<f64>,
    agg: Aggregate,
    /// WITHSCORES (ZUNION/ZINTER/ZDIFF).
    with_scores: bool,
    /// ZINTERCARD's LIMIT (0: none).
    limit: usize,
}

impl CombineOpts {
    fn parse(
        args: &Args,
        from: usize,
        numkeys: usize,
        op: Op,
        out: Output,
    ) -> Result<CombineOpts, Reply> {
        let mut o = CombineOpts {
            weights: vec![1.0; numkeys],
            agg: Aggregate::Sum,
            with_scores: false,
            limit: 0,
        };
        let weighs = op != Op::Diff && out != Output::Card;
        let mut i = from;
        while i < args.len() {
            let left = args.len() - i - 1;
            if weighs && args.is(i, "WEIGHTS") && left >= numkeys {
                for (j, w) in o.weights.iter_mut().enumerate() {
                    *w = args::parse_float(args.get(i + 1 + j))
                        .ok_or_else(|| Reply::error("ERR weight value is not a float"))?;
                }
                i += numkeys + 1;
            } else if weighs && args.is(i, "AGGREGATE") && left >= 1 {
                o.agg = if args.is(i + 1, "SUM") {
                    Aggregate::Sum
                } else if args.is(i + 1, "MIN") {
                    Aggregate::Min
                } else if args.is(i + 1, "MAX") {
                    Aggregate::Max
                } else {
                    return Err(args::syntax());
                };
                i += 2;
            } else if out == Output::Reply && args.is(i, "WITHSCORES") {
                o.with_scores = true;
                i += 1;
            } else if out == Output::Card && args.is(i, "LIMIT") && left >= 1 {
                o.limit = match args::parse_int(args.get(i + 1)) {
                    Some(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
                    _ => return Err(Reply::error("ERR LIMIT can't be negative")),
                };
                i += 2;
            } else {
                return Err(args::syntax());
            }
        }
        Ok(o)
    }
}

fn diff(sources: &[(Source, f64)]) -> ZSet {
    let mut out = ZSet::default();
    let Some(((first, _), rest)) = sources.split_first() else {
        return out;
    };
    first.for_each(|m, s| {
        if rest.iter().all(|(src, _)| src.score(m).is_none()) {
            out.insert(m.clone(), s);
        }
    });
    out
}

fn intersect(sources: &[(Source, f64)], agg: Aggregate) -> ZSet {
    let mut out = ZSet::default();
    let Some(((first, w0), rest)) = sources.split_first() else {
        return out;
    };
    if first.len() == 0 {
        return out;
    }
    first.for_each(|m, s| {
        let mut acc = weighted(s, *w0);
        for (src, w) in rest {
            // Unlike the first input's, later weighted scores are not cleaned of NaN
            // (0 × inf): as in Redis, a NaN there turns a SUM into 0.
            match src.score(m) {
                Some(v) => acc = agg.apply(acc, v * *w),
                None => return,
            }
        }
        out.insert(m.clone(), acc);
    });
    out
}

fn union(sources: &[(Source, f64)], agg: Aggregate) -> ZSet {
    let mut acc: HashMap<Bytes, f64> = HashMap::new();
    for (src, w) in sources {
        src.for_each(|m, s| {
            let v = weighted(s, *w);
            match acc.get_mut(m) {
                Some(a) => *a = agg.apply(*a, v),
                None => {
                    acc.insert(m.clone(), v);
                }
            }
        });
    }
    let mut out = ZSet::default();
    for (m, s) in acc {
        out.insert(m, s);
    }
    out
}
