//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE. Sketches are string values (TYPE says
//! string, GET returns the bytes), as in Redis; the algorithm is in `sketch`.

mod sketch;

use bytes::{Bytes, BytesMut};

use super::elems::tri;
use super::{Args, Command, Ctx, Flags, Reply, Value};
use crate::node::notify;

/// The HyperLogLog family.
pub static COMMANDS: &[Command] = &[
    Command::new(
        "pfadd",
        pfadd,
        -2,
        Flags::WRITE.with(Flags::DENYOOM).with(Flags::FAST),
    )
    .keys(1, 1, 1),
    Command::new("pfcount", pfcount, -2, Flags::READONLY).keys(1, -1, 1),
    Command::new("pfmerge", pfmerge, -2, Flags::WRITE.with(Flags::DENYOOM)).keys(1, -1, 1),
];

/// A string that is not a sketch.
fn not_hll() -> Reply {
    Reply::error("WRONGTYPE Key is not a valid HyperLogLog string value.")
}

/// The sketch under `key`: `Ok(None)` if missing, WRONGTYPE for other types and for strings
/// that are not sketches.
fn read<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c Bytes>, Reply> {
    match ctx.read::<Bytes>(key)? {
        Some(v) if !sketch::is_valid(v) => Err(not_hll()),
        other => Ok(other),
    }
}

/// Takes the sketch out of `key` for changing in place (no copy when nobody else holds the
/// bytes), or a new empty one if the key is missing.
fn take(ctx: &mut Ctx, key: &[u8]) -> Result<(BytesMut, bool), Reply> {
    match ctx.write::<Bytes>(key)? {
        Some(v) if !sketch::is_valid(v) => Err(not_hll()),
        Some(v) => {
            let owned = std::mem::take(v);
            Ok((
                owned
                    .try_into_mut()
                    .unwrap_or_else(|shared| BytesMut::from(&shared[..])),
                false,
            ))
        }
        None => Ok((sketch::empty(), true)),
    }
}

/// Puts a sketch back under `key`, keeping its TTL if it had one.
fn put(ctx: &mut Ctx, key: &[u8], value: BytesMut) {
    let value = value.freeze();
    match ctx.write::<Bytes>(key) {
        Ok(Some(slot)) => *slot = value,
        _ => ctx.set(Bytes::copy_from_slice(key), Value::Str(value), false),
    }
}

fn pfadd(ctx: &mut Ctx, args: &Args) -> Reply {
    let key = args.get(1);
    let (hll, created) = tri!(take(ctx, key));
    let (hll, grew) = sketch::add_all(hll, args.from(2));
    let changed = created || grew;
    put(ctx, key, hll);
    if changed {
        ctx.changed(key, notify::STRING, "pfadd");
    }
    Reply::Int(changed.into())
}

fn pfcount(ctx: &mut Ctx, args: &Args) -> Reply {
    if args.len() == 2 {
        return match tri!(read(ctx, args.get(1))) {
            None => Reply::Int(0),
            Some(v) => Reply::Int(sketch::count(v) as i64),
        };
    }
    let mut raw = [0u8; sketch::REGISTERS];
    for key in args.from(1) {
        if let Some(v) = tri!(read(ctx, key)) {
            sketch::merge_into(&mut raw, v);
        }
    }
    Reply::Int(sketch::count_raw(&raw) as i64)
}

fn pfmerge(ctx: &mut Ctx, args: &Args) -> Reply {
    let mut raw = [0u8; sketch::REGISTERS];
    // Every input (the destination included) is checked before anything is written.
    for key in args.from(1) {
        if let Some(v) = tri!(read(ctx, key)) {
            sketch::merge_into(&mut raw, v);
        }
    }
    let key = args.get(1);
    put(ctx, key, sketch::from_raw(&raw));
    ctx.changed(key, notify::STRING, "pfadd");
    Reply::Ok
}
