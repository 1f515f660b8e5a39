//! Sorted-set sampling: ZRANDMEMBER and ZSCAN.

use bytes::Bytes;

use crate::node::cmd::elems::{push_pair, rand_args, rand_positions, tri};
use crate::node::cmd::{elems, Args, Ctx, Reply, ZSet};
use crate::node::reply::format_double;
use crate::node::value::Score;
use crate::resp::Protocol;

pub(super) fn zrandmember(ctx: &mut Ctx, args: &Args) -> Reply {
    let opts = tri!(rand_args(args, "WITHSCORES"));
    let key = args.get(1);
    let len = match tri!(ctx.read::<ZSet>(key)) {
        None if opts.is_none() => return Reply::Null,
        None => return Reply::Array(Vec::new()),
        Some(z) => z.len(),
    };
    let (picks, with_scores) = match opts {
        None => (vec![elems::random_index(ctx, len)], false),
        // Everything: Redis 7.0 lists the whole sorted set from the highest score down.
        Some((count, w)) if count >= len as i64 => ((0..len).rev().collect(), w),
        Some((count, w)) => (rand_positions(ctx, len, count), w),
    };
    let resp3 = ctx.proto() == Protocol::Resp3;
    let Some(z) = tri!(ctx.read::<ZSet>(key)) else {
        return Reply::Null;
    };
    // The ordered index has no positional access: fetch every wanted position in one
    // ascending walk, then answer in the picks' (random) order.
    let mut wanted = picks.clone();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found: Vec<(&Bytes, f64)> = Vec::with_capacity(wanted.len());
    let mut next = wanted.iter().peekable();
    for (pos, item) in z.iter().enumerate() {
        match next.peek() {
            Some(&&p) if p == pos => {
                found.push(item);
                next.next();
            }
            Some(_) => {}
            None => break,
        }
    }
    let at = |p: usize| wanted.binary_search(&p).ok().and_then(|i| found.get(i));
    if opts.is_none() {
        return Reply::opt_bulk(at(picks[0]).map(|(m, _)| (*m).clone()));
    }
    let mut out = Vec::with_capacity(picks.len() * if with_scores { 2 } else { 1 });
    for p in picks {
        if let Some((m, s)) = at(p) {
            if with_scores {
                push_pair(
                    &mut out,
                    resp3,
                    Reply::Bulk((*m).clone()),
                    Reply::Double(*s),
                );
            } else {
                out.push(Reply::Bulk((*m).clone()));
            }
        }
    }
    Reply::Array(out)
}

/// ZSCAN's cursor space: a score's position in the total order, halved so cursors stay
/// below 2^63 for clients that parse them as signed. Never 0 for a stored score.
fn scan_bucket(score: f64) -> u64 {
    let bits = score.to_bits();
    let key = if score.is_sign_negative() {
        !bits
    } else {
        bits | 1 << 63
    };
    key >> 1
}

/// The lowest score in cursor bucket `bucket`.
fn bucket_floor(bucket: u64) -> f64 {
    let key = bucket << 1;
    f64::from_bits(if key & 1 << 63 != 0 {
        key & !(1 << 63)
    } else {
        !key
    })
}

/// ZSCAN: small sorted sets whole; larger ones by score, the cursor being the score bucket
/// to resume from. Being value-based, it survives any additions and removals between
/// calls; a page ends on a bucket boundary so no member is split from its equals.
pub(super) fn zscan(ctx: &mut Ctx, args: &Args) -> Reply {
    let cursor = tri!(elems::cursor(args.get(2)));
    let Some(z) = tri!(ctx.read::<ZSet>(args.get(1))) else {
        return elems::scan_reply(0, Vec::new());
    };
    let scan = tri!(elems::scan_options(args, cursor, 3));
    let mut out = Vec::new();
    let mut push = |m: &Bytes, s: f64| {
        if scan.matches(m) {
            out.push(Reply::Bulk(m.clone()));
            out.push(Reply::Bulk(Bytes::from(format_double(s))));
        }
    };
    if z.len() <= elems::SMALL {
        z.iter().for_each(|(m, s)| push(m, s));
        return elems::scan_reply(0, out);
    }
    let from = if cursor == 0 {
        f64::NEG_INFINITY
    } else {
        bucket_floor(cursor)
    };
    let lower = (Score(from), Bytes::new());
    let mut it = z.ordered().range(lower..).map(|(s, m)| (m, s.0)).peekable();
    let mut last = None;
    for _ in 0..scan.count {
        let Some((m, s)) = it.next() else { break };
        push(m, s);
        last = Some(scan_bucket(s));
    }
    let Some(last) = last else {
        return elems::scan_reply(0, out);
    };
    while let Some((m, s)) = it.next_if(|(_, s)| scan_bucket(*s) == last) {
        push(m, s);
    }
    let next = if it.peek().is_some() { last + 1 } else { 0 };
    elems::scan_reply(next, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_buckets_keep_score_order_and_stay_positive() {
        let scores = [
            f64::NEG_INFINITY,
            -1e300,
            -2.5,
            -0.0,
            0.0,
            1e-300,
            3.0,
            f64::INFINITY,
        ];
        for w in scores.windows(2) {
            assert!(scan_bucket(w[0]) <= scan_bucket(w[1]), "{w:?}");
        }
        for s in scores {
            let b = scan_bucket(s);
            assert!(b > 0 && b < 1 << 63);
            // In the total order used by the index (below -inf is a negative NaN, which the
            // index orders before everything: still a valid lower bound).
            assert!(bucket_floor(b).total_cmp(&s).is_le(), "{s}");
            assert_eq!(scan_bucket(bucket_floor(b)), b);
        }
    }
}
