//! Random picks for SPOP, SRANDMEMBER, HRANDFIELD and ZRANDMEMBER: single positions,
//! distinct samples, and the count/WITH... arguments in Redis's shape.

use crate::node::cmd::{args, Args, Ctx, Reply};

/// A random index below `len` (which must be non-zero).
pub fn random_index(ctx: &mut Ctx, len: usize) -> usize {
    (ctx.store.random() % len as u64) as usize
}

/// `count` distinct random positions below `len` (`count < len`), in random order. Picks by
/// rejection when few are wanted and by a partial shuffle otherwise, so neither case walks
/// far more than it returns.
pub fn distinct_indices(ctx: &mut Ctx, len: usize, count: usize) -> Vec<usize> {
    if count * 4 < len {
        let mut seen = std::collections::HashSet::with_capacity(count);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let i = random_index(ctx, len);
            if seen.insert(i) {
                out.push(i);
            }
        }
        return out;
    }
    let mut all: Vec<usize> = (0..len).collect();
    for k in 0..count {
        let j = k + random_index(ctx, len - k);
        all.swap(k, j);
    }
    all.truncate(count);
    all
}

/// Parsed HRANDFIELD/ZRANDMEMBER arguments: `None` for the single-element form, else the
/// count and WITHVALUES/WITHSCORES.
pub fn rand_args(args: &Args, with: &str) -> Result<Option<(i64, bool)>, Reply> {
    if args.len() < 3 {
        return Ok(None);
    }
    let count = args.int(2)?;
    let with_values = match args.len() {
        3 => false,
        4 if args.is(3, with) => true,
        _ => return Err(args::syntax()),
    };
    if with_values && count < -(i64::MAX / 2) {
        return Err(Reply::error("ERR value is out of range"));
    }
    check_repeats(count)?;
    Ok(Some((count, with_values)))
}

/// Most elements a negative-count random pick answers. Redis would try to stream any
/// number; we build the reply in memory, so an absurd count is refused instead of
/// exhausting memory (a deliberate difference).
const MAX_REPEATED_PICKS: u64 = 10_000_000;

/// Refuses negative counts beyond [`MAX_REPEATED_PICKS`].
pub fn check_repeats(count: i64) -> Result<(), Reply> {
    if count < 0 && count.unsigned_abs() > MAX_REPEATED_PICKS {
        return Err(Reply::error("ERR value is out of range"));
    }
    Ok(())
}

/// Which positions a random pick with `count` visits over `len` elements, in Redis's shape:
/// negative counts repeat, counts at least the size give everything in order.
pub fn rand_positions(ctx: &mut Ctx, len: usize, count: i64) -> Vec<usize> {
    if count < 0 {
        let n = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
        return (0..n).map(|_| random_index(ctx, len)).collect();
    }
    let n = usize::try_from(count).unwrap_or(usize::MAX);
    if n >= len {
        return (0..len).collect();
    }
    distinct_indices(ctx, len, n)
}
