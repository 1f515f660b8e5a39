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
    let (mut get_len, mut get_idx, mut with_len) = (false, false, false);
    let mut min_len: u64 = 0;
    let mut i = 3;
    while i < args.len() {
        if args.is(i, "IDX") {
            get_idx = true;
        } else if args.is(i, "LEN") {
            get_len = true;
        } else if args.is(i, "WITHMATCHLEN") {
            with_len = true;
        } else if args.is(i, "MINMATCHLEN") && i + 1 < args.len() {
            match parse_int(args.get(i + 1)) {
                Some(n) => min_len = u64::try_from(n).unwrap_or(0),
                None => return Reply::error(NOT_INT),
            }
            i += 1;
        } else {
            return syntax();
        }
        i += 1;
    }
    if get_len && get_idx {
        return Reply::error("ERR If you want both the length and indexes, please just use IDX.");
    }
    let (alen, blen) = (a.len(), b.len());
    if (alen as u128 + 1) * (blen as u128 + 1) * 4 > MAX_TABLE {
        return Reply::error(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        );
    }
    // table[i * (blen + 1) + j] = LCS length of a[..i] and b[..j].
    let width = blen + 1;
    let mut table = vec![0u32; (alen + 1) * width];
    for i in 1..=alen {
        for j in 1..=blen {
            table[i * width + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * width + j - 1] + 1
            } else {
                table[(i - 1) * width + j].max(table[i * width + j - 1])
            };
        }
    }
    let total = table[alen * width + blen] as usize;
    if get_len {
        return Reply::Int(total as i64);
    }
    // Walk back from the end, collecting the subsequence and the contiguous match ranges.
    let mut result = vec![0u8; total];
    let mut idx = total;
    let (mut i, mut j) = (alen, blen);
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
            if table[(i - 1) * width + j] > table[i * width + j - 1] {
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
            if get_idx && (min_len == 0 || len >= min_len) {
                let range = |s: usize, e: usize| {
                    Reply::Array(vec![Reply::Int(s as i64), Reply::Int(e as i64)])
                };
                let mut m = vec![range(a_start, a_end), range(b_start, b_end)];
                if with_len {
                    m.push(Reply::Int(len as i64));
                }
                matches.push(Reply::Array(m));
            }
            a_start = none;
        }
    }
    if get_idx {
        Reply::Map(vec![
            (Reply::bulk(b"matches"), Reply::Array(matches)),
            (Reply::bulk(b"len"), Reply::Int(total as i64)),
        ])
    } else {
        Reply::Bulk(Bytes::from(result))
    }
}
