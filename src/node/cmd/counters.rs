//! Counters on string values: INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT. The TTL is kept.

use bytes::Bytes;

use super::{Args, Command, Ctx, Flags, Reply, Value};
use crate::node::args::{parse_float, parse_int, NOT_FLOAT, NOT_INT};
use crate::node::notify;

const WF: Flags = Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST);

/// The counter family.
pub static COMMANDS: &[Command] = &[
    Command::new("incr", incr, 2, WF).keys(1, 1, 1),
    Command::new("decr", decr, 2, WF).keys(1, 1, 1),
    Command::new("incrby", incrby, 3, WF).keys(1, 1, 1),
    Command::new("decrby", decrby, 3, WF).keys(1, 1, 1),
    Command::new("incrbyfloat", incrbyfloat, 3, WF).keys(1, 1, 1),
];

fn incr(ctx: &mut Ctx, args: &Args) -> Reply {
    add(ctx, args, 1)
}

fn decr(ctx: &mut Ctx, args: &Args) -> Reply {
    add(ctx, args, -1)
}

fn incrby(ctx: &mut Ctx, args: &Args) -> Reply {
    match args.int(2) {
        Ok(n) => add(ctx, args, n),
        Err(e) => e,
    }
}

fn decrby(ctx: &mut Ctx, args: &Args) -> Reply {
    match args.int(2) {
        Ok(i64::MIN) => Reply::error("ERR decrement would overflow"),
        Ok(n) => add(ctx, args, -n),
        Err(e) => e,
    }
}

fn add(ctx: &mut Ctx, args: &Args, by: i64) -> Reply {
    let key = args.get(1);
    let current = match ctx.read::<Bytes>(key) {
        Err(e) => return e,
        Ok(None) => 0,
        Ok(Some(v)) => match parse_int(v) {
            Some(n) => n,
            None => return Reply::error(NOT_INT),
        },
    };
    let Some(new) = current.checked_add(by) else {
        return Reply::error("ERR increment or decrement would overflow");
    };
    let mut n = itoa::Buffer::new();
    let text = Bytes::copy_from_slice(n.format(new).as_bytes());
    ctx.set(args.get(1), Value::Str(text), true);
    ctx.changed(key, notify::STRING, "incrby");
    Reply::Int(new)
}

/// INCRBYFLOAT, propagated as `SET key result KEEPTTL` so replicas do not redo the float
/// arithmetic.
fn incrbyfloat(ctx: &mut Ctx, args: &Args) -> Reply {
    let Some(by) = parse_float(args.get(2)) else {
        return Reply::error(NOT_FLOAT);
    };
    let key = args.get(1);
    let current: Vec<u8> = match ctx.read::<Bytes>(key) {
        Err(e) => return e,
        Ok(None) => b"0".to_vec(),
        Ok(Some(v)) => v.to_vec(),
    };
    let Some(cur) = parse_float(&current) else {
        return Reply::error(NOT_FLOAT);
    };
    let sum = cur + by;
    if !sum.is_finite() {
        return Reply::error("ERR increment would produce NaN or Infinity");
    }
    let text = Bytes::from(decimal_sum(&current, args.get(2)).unwrap_or_else(|| human_float(sum)));
    ctx.set(args.get(1), Value::Str(text.clone()), true);
    ctx.changed(key, notify::STRING, "incrbyfloat");
    ctx.propagate_as(vec![
        Bytes::from_static(b"SET"),
        args.owned(1),
        text.clone(),
        Bytes::from_static(b"KEEPTTL"),
    ]);
    Reply::Bulk(text)
}

/// A plain decimal (`-12.34`): sign, digits, optional fraction, as (mantissa, scale).
fn decimal(s: &[u8]) -> Option<(i128, u32)> {
    let text = std::str::from_utf8(s).ok()?;
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit())
        || int.len() + frac.len() > 30
        || frac.len() > 17
    {
        return None;
    }
    let digits: i128 = format!("{int}{frac}").parse().ok()?;
    Some((if neg { -digits } else { digits }, frac.len() as u32))
}

/// The exact sum of two plain decimals, printed as Redis prints a long double sum
/// (`%.17Lf` without trailing zeros). Redis's 80-bit long double makes sums of short
/// decimals come out exact (`0.1 + 0.2` is `0.3`), which f64 would not; `None` for inputs
/// that are not plain decimals or whose sum has more than 18 significant digits.
fn decimal_sum(a: &[u8], b: &[u8]) -> Option<Vec<u8>> {
    let (ma, sa) = decimal(a)?;
    let (mb, sb) = decimal(b)?;
    let scale = sa.max(sb);
    let sum = ma
        .checked_mul(10i128.pow(scale - sa))?
        .checked_add(mb.checked_mul(10i128.pow(scale - sb))?)?;
    // Beyond ~18 significant digits the long double's own rounding shows; not emulated.
    if sum.unsigned_abs() >= 1_000_000_000_000_000_000 {
        return None;
    }
    let neg = sum < 0;
    let digits = format!(
        "{:0>width$}",
        sum.unsigned_abs(),
        width = scale as usize + 1
    );
    let (int, frac) = digits.split_at(digits.len() - scale as usize);
    let frac = frac.trim_end_matches('0');
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push_str(int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    Some(out.into_bytes())
}

/// Fallback text for a float result: the shortest round-trip decimal, without exponent,
/// as Redis's `%.17Lf`-and-trim prints typical values.
fn human_float(v: f64) -> Vec<u8> {
    let s = format!("{v}");
    if s == "-0" {
        "0".into()
    } else {
        s.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_sums_print_like_redis() {
        let sum = |a: &str, b: &str| {
            String::from_utf8(decimal_sum(a.as_bytes(), b.as_bytes()).unwrap()).unwrap()
        };
        assert_eq!(sum("0.1", "0.2"), "0.3");
        assert_eq!(sum("10.50", "0.1"), "10.6");
        assert_eq!(sum("5", "-5"), "0");
        assert_eq!(sum("-1.5", "0.25"), "-1.25");
        assert_eq!(sum("3", "2"), "5");
        assert!(decimal_sum(b"1e3", b"1").is_none());
    }
}
