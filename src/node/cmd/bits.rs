//! Bit commands on strings: SETBIT, GETBIT, BITCOUNT, BITPOS (BYTE and BIT ranges).
//!
//! Bits are numbered from the most significant bit of the first byte, as in Redis.

use bytes::Bytes;

use super::{Args, Command, Ctx, Flags, Reply, Value};
use crate::node::args::{parse_int, syntax};
use crate::node::notify;

/// The bit family.
pub static COMMANDS: &[Command] = &[
    Command::new("setbit", setbit, 4, Flags::WRITE.with(Flags::DENYOOM)).keys(1, 1, 1),
    Command::new("getbit", getbit, 3, Flags::READONLY.with(Flags::FAST)).keys(1, 1, 1),
    Command::new("bitcount", bitcount, -2, Flags::READONLY).keys(1, 1, 1),
    Command::new("bitpos", bitpos, -3, Flags::READONLY).keys(1, 1, 1),
];

/// Largest bit offset: a string may not exceed 512 MiB.
const MAX_BIT: i64 = 512 * 1024 * 1024 * 8;

fn bit_offset(arg: &[u8]) -> Result<usize, Reply> {
    match parse_int(arg) {
        Some(n) if (0..MAX_BIT).contains(&n) => Ok(n as usize),
        _ => Err(Reply::error(
            "ERR bit offset is not an integer or out of range",
        )),
    }
}

fn setbit(ctx: &mut Ctx, args: &Args) -> Reply {
    let offset = match bit_offset(args.get(2)) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let on = match args.get(3) {
        b"0" => false,
        b"1" => true,
        _ => return Reply::error("ERR bit is not an integer or out of range"),
    };
    let key = args.get(1);
    let mut bytes = match ctx.read::<Bytes>(key) {
        Err(e) => return e,
        Ok(v) => v.map(|b| b.to_vec()).unwrap_or_default(),
    };
    let byte = offset / 8;
    if bytes.len() <= byte {
        bytes.resize(byte + 1, 0);
    }
    let mask = 0x80u8 >> (offset % 8);
    let old = bytes[byte] & mask != 0;
    if on {
        bytes[byte] |= mask;
    } else {
        bytes[byte] &= !mask;
    }
    ctx.set(args.get(1), Value::Str(Bytes::from(bytes)), true);
    ctx.changed(key, notify::STRING, "setbit");
    Reply::Int(i64::from(old))
}

fn getbit(ctx: &mut Ctx, args: &Args) -> Reply {
    let offset = match bit_offset(args.get(2)) {
        Ok(o) => o,
        Err(e) => return e,
    };
    match ctx.read::<Bytes>(args.get(1)) {
        Err(e) => e,
        Ok(v) => {
            let bit = v
                .and_then(|b| b.get(offset / 8))
                .is_some_and(|byte| byte & (0x80 >> (offset % 8)) != 0);
            Reply::Int(i64::from(bit))
        }
    }
}

/// Parses `start end [BYTE|BIT]` at `args[i..]` into an inclusive bit range of a string of
/// `len` bytes; `None` if the range is empty.
fn range(
    args: &Args,
    i: usize,
    len: usize,
    end_given: bool,
) -> Result<Option<(usize, usize)>, Reply> {
    let start = parse_int(args.get(i)).ok_or_else(|| Reply::error(crate::node::args::NOT_INT))?;
    let end = if end_given {
        parse_int(args.get(i + 1)).ok_or_else(|| Reply::error(crate::node::args::NOT_INT))?
    } else {
        i64::MAX
    };
    let unit_arg = i + 2;
    let bit = if args.len() > unit_arg {
        if args.is(unit_arg, "BIT") {
            true
        } else if args.is(unit_arg, "BYTE") {
            false
        } else {
            return Err(syntax());
        }
    } else {
        false
    };
    let total = if bit { len as i64 * 8 } else { len as i64 };
    let fix = |n: i64| {
        if n < 0 {
            total.saturating_add(n).max(0)
        } else {
            n
        }
    };
    let (s, mut e) = (fix(start), fix(end));
    if start < 0 && end < 0 && start > end {
        return Ok(None);
    }
    if e >= total {
        e = total - 1;
    }
    if s > e || total == 0 {
        return Ok(None);
    }
    Ok(Some(if bit {
        (s as usize, e as usize)
    } else {
        (s as usize * 8, e as usize * 8 + 7)
    }))
}

fn get_bit(bytes: &[u8], i: usize) -> bool {
    bytes[i / 8] & (0x80 >> (i % 8)) != 0
}

fn bitcount(ctx: &mut Ctx, args: &Args) -> Reply {
    let bytes = match ctx.read::<Bytes>(args.get(1)) {
        Err(e) => return e,
        Ok(None) => return Reply::Int(0),
        Ok(Some(b)) => b.clone(),
    };
    let span = match args.len() {
        2 => (!bytes.is_empty()).then(|| (0, bytes.len() * 8 - 1)),
        4 | 5 => match range(args, 2, bytes.len(), true) {
            Ok(r) => r,
            Err(e) => return e,
        },
        _ => return syntax(),
    };
    let Some((from, to)) = span else {
        return Reply::Int(0);
    };
    let n = (from..=to).filter(|&i| get_bit(&bytes, i)).count();
    Reply::Int(n as i64)
}

fn bitpos(ctx: &mut Ctx, args: &Args) -> Reply {
    let want = match parse_int(args.get(2)) {
        Some(0) => false,
        Some(1) => true,
        Some(_) => return Reply::error("ERR The bit argument must be 1 or 0."),
        None => return Reply::error(crate::node::args::NOT_INT),
    };
    let bytes = match ctx.read::<Bytes>(args.get(1)) {
        Err(e) => return e,
        Ok(None) => return Reply::Int(if want { -1 } else { 0 }),
        Ok(Some(b)) => b.clone(),
    };
    let end_given = args.len() >= 5;
    let span = match args.len() {
        3 => (!bytes.is_empty()).then(|| (0, bytes.len() * 8 - 1)),
        4..=6 => match range(args, 3, bytes.len(), end_given) {
            Ok(r) => r,
            Err(e) => return e,
        },
        _ => return syntax(),
    };
    let Some((from, to)) = span else {
        return Reply::Int(-1);
    };
    match (from..=to).find(|&i| get_bit(&bytes, i) == want) {
        Some(i) => Reply::Int(i as i64),
        // Looking for a clear bit with no explicit end: the string is treated as padded
        // with zeros, so the first clear bit is just past it.
        None if !want && !end_given => Reply::Int(bytes.len() as i64 * 8),
        None => Reply::Int(-1),
    }
}
