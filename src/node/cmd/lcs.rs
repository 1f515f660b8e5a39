//! LCS: the longest common subsequence of two strings (Redis 7's STRALGO successor), with
//! LEN, IDX, MINMATCHLEN and WITHMATCHLEN, reporting match ranges in Redis's order (from the
//! end of the strings backwards).

use bytes::Bytes;

use super::{Args, Command, Ctx, Flags, Reply};
use crate::node::args::{parse_int, syntax, NOT_INT};

/// The LCS command.
pub static COMMANDS: &[Command] = &[Command::new("lcs", lcs, -3, Flags::READONLY).keys(1, 2, 1)];

/// Largest dynamic-programming table (in bytes) LCS may allocate: Redis's
/// `proto-max-bulk-len`.
const MAX_TABLE: u128 = 512 * 1024 * 1024;

fn lcs(ctx: &mut Ctx, args: &Args) -> Reply {
    let a = match ctx.read::<Bytes>(args.get(1)) {
        Ok(v) => v.cloned().unwrap_or_default(),
        Err(e) => return e,
    };
    let b = match ctx.read::<Bytes>(args.get(2)) {
        Ok(v) => v.cloned().unwrap_or_default(),
        Err(e) => return e,
    };
    let opts = match LcsOpts::parse(args) {
        Ok(o) => o,
        Err(e) => return e,
    };
    if (a.len() as u128 + 1) * (b.len() as u128 + 1) * 4 > MAX_TABLE {
        return Reply::error(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        );
    }
    let table = Table::fill(&a, &b);
    let total = table.at(a.len(), b.len()) as usize;
    if opts.len {
        return Reply::Int(total as i64);
    }
    let (result, matches) = walk_back(&table, &a, &b, total, &opts);
    if opts.idx {
        Reply::Map(vec![
            (Reply::bulk(b"matches"), Reply::Array(matches)),
            (Reply::bulk(b"len"), Reply::Int(total as i64)),
        ])
    } else {
        Reply::Bulk(Bytes::from(result))
    }
}

/// LCS's options.
struct LcsOpts {
    /// LEN: the length only.
    len: bool,
    /// IDX: the match ranges.
    idx: bool,
    /// WITHMATCHLEN: each range with its length.
    with_len: bool,
    /// MINMATCHLEN: shorter ranges are left out (0: none).
    min_len: u64,
}

impl LcsOpts {
    fn parse(args: &Args) -> Result<LcsOpts, Reply> {
        let mut o = LcsOpts {
            len: false,
            idx: false,
            with_len: false,
            min_len: 0,
        };
        let mut i = 3;
        while i < args.len() {
            if args.is(i, "IDX") {
                o.idx = true;
            } else if args.is(i, "LEN") {
                o.len = true;
            } else if args.is(i, "WITHMATCHLEN") {
                o.with_len = true;
            } else if args.is(i, "MINMATCHLEN") && i + 1 < args.len() {
                let n = parse_int(args.get(i + 1)).ok_or_else(|| Reply::error(NOT_INT))?;
                o.min_len = u64::try_from(n).unwrap_or(0);
                i += 1;
            } else {
                return Err(syntax());
            }
            i += 1;
        }
        if o.len && o.idx {
            return Err(Reply::error(
                "ERR If you want both the length and indexes, please just use IDX.",
            ));
        }
        Ok(o)
    }
}

/// The dynamic-programming table: `at(i, j)` = LCS length of `a[..i]` and `b[..j]`.
struct Table {
    cells: Vec<u32>,
    width: usize,
}

impl Table {
    fn fill(a: &[u8], b: &[u8]) -> Table {
        let width = b.len() + 1;
        let mut cells = vec![0u32; (a.len() + 1) * width];
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                cells[i * width + j] = if a[i - 1] == b[j - 1] {
                    cells[(i - 1) * width + j - 1] + 1
                } else {
                    cells[(i - 1) * width + j].max(cells[i * width + j - 1])
                };
            }
        }
        Table { cells, width }
    }
    fn at(&self, i: usize, j: usize) -> u32 {
        self.cells[i * self.width + j]
    }
}

/// Walks the table back from the end: the subsequence (`total` bytes) and, for IDX, the
/// contiguous match ranges in Redis's order and format.
fn walk_back(
    table: &Table,
    a: &[u8],
    b: &[u8],
    total: usize,
    opts: &LcsOpts,
) -> (Vec<u8>, Vec<Reply>) {
    let mut result = vec![0u8; total];
    let mut idx = total;
    let (mut i, mut j) = (a.len(), b.len());
    let none = usize::MAX;
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (none, 0, 0, 0);
    let mut matches = Vec::new();
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            if a_start == none {
                (a_start, a_end, b_start, b_end) = (i - 1, i - 1, j - 1, j - 1);
            } else if a_start == i && b_start == j {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if table.at(i - 1, j) > table.at(i, j - 1) {
                i -= 1;
            } else {
                j -= 1;
            }
            if a_start != none {
                emit = true;
            }
        }
        if emit && a_start != none {
            let len = (a_end - a_start + 1) as u64;
            if opts.idx && (opts.min_len == 0 || len >= opts.min_len) {
                matches.push(match_reply((a_start, a_end), (b_start, b_end), len, opts));
            }
            a_start = none;
        }
    }
    (result, matches)
}

/// One IDX match: `[[a_start, a_end], [b_start, b_end]]`, then its length with WITHMATCHLEN.
fn match_reply(a: (usize, usize), b: (usize, usize), len: u64, opts: &LcsOpts) -> Reply {
    let range =
        |(s, e): (usize, usize)| Reply::Array(vec![Reply::Int(s as i64), Reply::Int(e as i64)]);
    let mut m = vec![range(a), range(b)];
    if opts.with_len {
        m.push(Reply::Int(len as i64));
    }
    Reply::Array(m)
}
