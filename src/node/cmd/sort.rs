//! SORT and SORT_RO over lists, sets and sorted sets, with BY and GET patterns (`*`
//! substitution, `->field` for hashes), LIMIT, ASC/DESC, ALPHA and STORE, as Redis 7.0.

use std::cmp::Ordering;

use bytes::Bytes;

use super::{Args, Command, Ctx, Flags, Hash, List, Reply, Value};
use crate::node::args::{parse_float, parse_int, syntax, NOT_INT};
use crate::node::notify;

/// The sort family.
pub static COMMANDS: &[Command] = &[
    Command::new("sort", sort, -2, Flags::WRITE.with(Flags::DENYOOM))
        .reads_keys_first()
        .keys(1, 1, 1),
    Command::new("sort_ro", sort_ro, -2, Flags::READONLY).keys(1, 1, 1),
];

fn sort(ctx: &mut Ctx, args: &Args) -> Reply {
    sort_generic(ctx, args, false)
}

fn sort_ro(ctx: &mut Ctx, args: &Args) -> Reply {
    sort_generic(ctx, args, true)
}

/// One element being sorted: the element and what it sorts by.
struct Item {
    value: Bytes,
    score: f64,
    by: Option<Bytes>,
}

fn sort_generic(ctx: &mut Ctx, args: &Args, read_only: bool) -> Reply {
    let mut opts = match SortOpts::parse(args, read_only) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let (mut items, is_set) = match ctx.lookup(args.get(1)) {
        None => (Vec::new(), false),
        Some(Value::List(l)) => (elements(l.iter()), false),
        Some(Value::Set(s)) => (elements(s.iter()), true),
        Some(Value::ZSet(z)) => (elements(z.iter().map(|(m, _)| m)), false),
        Some(_) => return crate::node::args::wrongtype(),
    };
    // An unsorted set is still sorted when stored or read by a script, so replicas get
    // the same list.
    if opts.dont_sort && is_set && (opts.store.is_some() || ctx.client.in_script) {
        opts.dont_sort = false;
        opts.alpha = true;
        opts.by = None;
    }
    if opts.dont_sort {
        // Unsorted with DESC: the container's order reversed.
        if opts.desc {
            items.reverse();
        }
    } else {
        if let Err(e) = weigh(ctx, &mut items, &opts) {
            return e;
        }
        sort_items(&mut items, &opts);
    }
    let picked = limit(items, opts.offset, opts.count);
    let mut out: Vec<Option<Bytes>> = Vec::new();
    for item in &picked {
        if opts.gets.is_empty() {
            out.push(Some(item.value.clone()));
        }
        for pattern in &opts.gets {
            out.push(lookup_pattern(ctx, pattern, &item.value));
        }
    }
    match opts.store {
        None => Reply::Array(out.into_iter().map(Reply::opt_bulk).collect()),
        Some(dest) => store_result(ctx, dest, out),
    }
}

/// SORT's options, in Redis's parsing order.
struct SortOpts<'a> {
    desc: bool,
    alpha: bool,
    /// LIMIT offset count (count -1: to the end).
    offset: i64,
    count: i64,
    by: Option<&'a [u8]>,
    /// BY a pattern without `*`: every element names the same key, nothing to sort by.
    dont_sort: bool,
    gets: Vec<&'a [u8]>,
    store: Option<Bytes>,
}

impl<'a> SortOpts<'a> {
    fn parse(args: &Args<'a>, read_only: bool) -> Result<SortOpts<'a>, Reply> {
        let mut o = SortOpts {
            desc: false,
            alpha: false,
            offset: 0,
            count: -1,
            by: None,
            dont_sort: false,
            gets: Vec::new(),
            store: None,
        };
        let mut i = 2;
        while i < args.len() {
            let left = args.len() - i - 1;
            if args.is(i, "ASC") {
                o.desc = false;
            } else if args.is(i, "DESC") {
                o.desc = true;
            } else if args.is(i, "ALPHA") {
                o.alpha = true;
            } else if args.is(i, "LIMIT") && left >= 2 {
                let (Some(off), Some(c)) = (parse_int(args.get(i + 1)), parse_int(args.get(i + 2)))
                else {
                    return Err(Reply::error(NOT_INT));
                };
                (o.offset, o.count) = (off, c);
                i += 2;
            } else if args.is(i, "STORE") && left >= 1 && !read_only {
                o.store = Some(args.owned(i + 1));
                i += 1;
            } else if args.is(i, "BY") && left >= 1 {
                let pattern = args.get(i + 1);
                if !pattern.contains(&b'*') {
                    o.dont_sort = true;
                }
                o.by = Some(pattern);
                i += 1;
            } else if args.is(i, "GET") && left >= 1 {
                o.gets.push(args.get(i + 1));
                i += 1;
            } else {
                return Err(syntax());
            }
            i += 1;
        }
        Ok(o)
    }
}

/// Looks up each element's BY key and, unless ALPHA, its score.
fn weigh(ctx: &mut Ctx, items: &mut [Item], opts: &SortOpts) -> Result<(), Reply> {
    for item in items {
        if let Some(pattern) = opts.by {
            item.by = lookup_pattern(ctx, pattern, &item.value);
        }
        if opts.alpha {
            continue;
        }
        let text = item.by.as_ref().unwrap_or(&item.value);
        let parsed = match &item.by {
            None if opts.by.is_some() => Some(0.0),
            _ => sort_number(text),
        };
        item.score = parsed
            .ok_or_else(|| Reply::error("ERR One or more scores can't be converted into double"))?;
    }
    Ok(())
}

/// Sorts by score (ties by value), or ALPHA by the BY value or the element.
fn sort_items(items: &mut [Item], opts: &SortOpts) {
    let by_given = opts.by.is_some();
    items.sort_by(|a, b| {
        let ord = if opts.alpha {
            if by_given {
                match (&a.by, &b.by) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (Some(x), Some(y)) => x.cmp(y),
                }
            } else {
                a.value.cmp(&b.value)
            }
        } else {
            a.score
                .partial_cmp(&b.score)
                .unwrap_or(Ordering::Equal)
                .then_with(|| a.value.cmp(&b.value))
        };
        if opts.desc {
            ord.reverse()
        } else {
            ord
        }
    });
}

/// The LIMIT window of the sorted elements, as Redis clamps it.
fn limit(items: Vec<Item>, offset: i64, count: i64) -> Vec<Item> {
    let len = items.len() as i64;
    let start = offset.max(0);
    let end = if count < 0 {
        len - 1
    } else {
        start.saturating_add(count) - 1
    };
    let (start, end) = if start >= len {
        (len - 1, len - 2)
    } else {
        (start, end.min(len - 1))
    };
    if start <= end && start >= 0 {
        items
            .into_iter()
            .skip(start as usize)
            .take((end - start + 1) as usize)
            .collect()
    } else {
        Vec::new()
    }
}

/// SORT ... STORE: the result replaces `dest` as a list (an empty result deletes it).
fn store_result(ctx: &mut Ctx, dest: Bytes, out: Vec<Option<Bytes>>) -> Reply {
    let n = out.len() as i64;
    if out.is_empty() {
        if ctx.delete(&dest) {
            ctx.changed(&dest, notify::GENERIC, "del");
        }
    } else {
        let list: List = out.into_iter().map(Option::unwrap_or_default).collect();
        ctx.set(&dest, Value::List(Box::new(list)), false);
        ctx.changed(&dest, notify::LIST, "sortstore");
    }
    Reply::Int(n)
}

fn elements<'a>(it: impl Iterator<Item = &'a Bytes>) -> Vec<Item> {
    it.map(|v| Item {
        value: v.clone(),
        score: 0.0,
        by: None,
    })
    .collect()
}

/// A numeric sort key as `strtod` reads it (leading spaces allowed, no trailing garbage).
fn sort_number(text: &[u8]) -> Option<f64> {
    let start = text
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(text.len());
    parse_float(&text[start..])
}

/// Redis's `lookupKeyByPattern`: `#` is the element itself; otherwise the first `*` is
/// replaced by the element, and a `->field` suffix reads a hash field instead of a string.
fn lookup_pattern(ctx: &mut Ctx, pattern: &[u8], element: &[u8]) -> Option<Bytes> {
    if pattern == b"#" {
        return Some(Bytes::copy_from_slice(element));
    }
    let star = pattern.iter().position(|&c| c == b'*')?;
    let arrow = pattern[star + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|p| p + star + 1)
        .filter(|&p| p + 2 < pattern.len());
    let key_end = arrow.unwrap_or(pattern.len());
    let mut key = Vec::with_capacity(key_end + element.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(&pattern[star + 1..key_end]);
    match (arrow, ctx.lookup(&key)?) {
        (None, Value::Str(s)) => Some(s.clone()),
        (Some(a), Value::Hash(h)) => field(h, &pattern[a + 2..]),
        _ => None,
    }
}

fn field(h: &Hash, name: &[u8]) -> Option<Bytes> {
    h.get(name).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::client::ClientState;
    use crate::node::cmd::execute;
    use crate::node::shared::Shared;
    use crate::node::store::Store;
    use crate::resp::{Protocol, Request};

    /// The RESP2 encoding of running each command in order (expected values from Redis
    /// 7.0.15 on the same data).
    fn replies(cmds: &[&[&str]]) -> Vec<String> {
        let shared = Shared::for_tests();
        let mut store = Store::new();
        let db = store.db_mut(0);
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        let list: List = ["3", "1", "2", "10"].iter().map(|s| b(s)).collect();
        db.insert(&b("l"), Value::List(Box::new(list)), false);
        let letters: List = ["b", "a", "c"].iter().map(|s| b(s)).collect();
        db.insert(&b("la"), Value::List(Box::new(letters)), false);
        for (k, v) in [("w_3", "c"), ("w_1", "a"), ("w_2", "b"), ("w_10", "a")] {
            db.insert(&b(k), Value::Str(b(v)), false);
        }
        for (k, v) in [("h_1", "9"), ("h_2", "1")] {
            let mut h = Hash::default();
            h.insert(b("f"), b(v));
            db.insert(&b(k), Value::Hash(Box::new(h)), false);
        }
        let mut client = ClientState {
            authed: true,
            ..ClientState::default()
        };
        let mut ctx = Ctx::new(&mut store, &mut client, &shared, true);
        cmds.iter()
            .map(|c| {
                let mut out = bytes::BytesMut::new();
                execute(&mut ctx, &Request::from_args(c)).encode(Protocol::Resp2, &mut out);
                String::from_utf8_lossy(&out).replace("\r\n", " ")
            })
            .collect()
    }

    #[test]
    fn sort_matches_redis() {
        let cases: &[(&[&str], &str)] = &[
            (&["SORT", "l"], "*4 $1 1 $1 2 $1 3 $2 10 "),
            (&["SORT", "l", "DESC"], "*4 $2 10 $1 3 $1 2 $1 1 "),
            (&["SORT", "l", "LIMIT", "1", "2"], "*2 $1 2 $1 3 "),
            (
                &["SORT", "l", "BY", "w_*", "ALPHA"],
                "*4 $1 1 $2 10 $1 2 $1 3 ",
            ),
            (&["SORT", "l", "BY", "nosort"], "*4 $1 3 $1 1 $1 2 $2 10 "),
            (
                &["SORT", "l", "BY", "nosort", "DESC"],
                "*4 $2 10 $1 2 $1 1 $1 3 ",
            ),
            (
                &["SORT", "l", "BY", "nosort", "LIMIT", "1", "2"],
                "*2 $1 1 $1 2 ",
            ),
            (
                &["SORT", "la"],
                "-ERR One or more scores can't be converted into double ",
            ),
            (&["SORT", "la", "ALPHA", "DESC"], "*3 $1 c $1 b $1 a "),
            (&["SORT", "l", "BY", "h_*->f"], "*4 $2 10 $1 3 $1 2 $1 1 "),
            (
                &["SORT", "l", "BY", "h_*->f", "DESC"],
                "*4 $1 1 $1 2 $1 3 $2 10 ",
            ),
            (
                &["SORT", "l", "BY", "w_*", "ALPHA", "DESC", "GET", "w_*"],
                "*4 $1 c $1 b $1 a $1 a ",
            ),
            (
                &["SORT", "l", "BY", "nosort", "GET", "#", "GET", "w_*"],
                "*8 $1 3 $1 c $1 1 $1 a $1 2 $1 b $2 10 $1 a ",
            ),
            (&["SORT", "l", "GET", "h_*->"], "*4 $-1 $-1 $-1 $-1 "),
            (
                &["SORT", "l", "LIMIT", "-1", "-1"],
                "*4 $1 1 $1 2 $1 3 $2 10 ",
            ),
            (&["SORT", "l", "LIMIT", "10", "1"], "*0 "),
            (&["SORT", "l", "STORE", "dst"], ":4 "),
            (&["SORT", "dst", "BY", "nosort"], "*4 $1 1 $1 2 $1 3 $2 10 "),
            (&["SORT_RO", "l", "STORE", "x"], "-ERR syntax error "),
            (
                &["SORT", "l", "LIMIT", "x", "1"],
                "-ERR value is not an integer or out of range ",
            ),
            (
                &["SORT", "w_1"],
                "-WRONGTYPE Operation against a key holding the wrong kind of value ",
            ),
            (&["SORT", "nope", "STORE", "dst"], ":0 "),
            (&["EXISTS", "dst"], ":0 "),
        ];
        let cmds: Vec<&[&str]> = cases.iter().map(|(c, _)| *c).collect();
        for (got, (cmd, want)) in replies(&cmds).iter().zip(cases) {
            assert_eq!(got, want, "{cmd:?}");
        }
    }
}
