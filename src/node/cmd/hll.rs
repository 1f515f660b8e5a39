//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE. Sketches are string values in Redis's
//! own representation (TYPE says string, GET returns Redis's bytes); see `sketch`.

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
    Command::new("pfcount", pfcount, -2, Flags::READONLY)
        .reads_keys_first()
        .keys(1, -1, 1),
    Command::new("pfmerge", pfmerge, -2, Flags::WRITE.with(Flags::DENYOOM))
        .reads_keys_first()
        .keys(1, -1, 1),
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

/// A sketch whose sparse opcodes do not add up (Redis's `invalid_hll_err`).
fn corrupt() -> Reply {
    Reply::error("INVALIDOBJ Corrupted HLL object detected")
}

/// `hll-sparse-max-bytes`: the longest a sparse sketch may grow before it turns dense.
fn sparse_max(ctx: &Ctx) -> usize {
    ctx.store
        .settings
        .get("hll-sparse-max-bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
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
        _ => ctx.set(key, Value::Str(value), false),
    }
}

fn pfadd(ctx: &mut Ctx, args: &Args) -> Reply {
    let key = args.get(1);
    let max = sparse_max(ctx);
    let (mut hll, created) = tri!(take(ctx, key));
    let grew = sketch::add_all(&mut hll, args.from(2), max);
    // Put back even a corrupt sketch: `take` moved it out of the key.
    put(ctx, key, hll);
    let Ok(grew) = grew else {
        return corrupt();
    };
    let changed = created || grew;
    if changed {
        ctx.changed(key, notify::STRING, "pfadd");
    }
    Reply::Int(changed.into())
}

fn pfcount(ctx: &mut Ctx, args: &Args) -> Reply {
    if args.len() == 2 {
        let key = args.get(1);
        let card = match tri!(read(ctx, key)) {
            None => return Reply::Int(0),
            Some(v) => match sketch::cached(v) {
                Some(card) => return Reply::Int(card as i64),
                None => match sketch::count(v) {
                    Ok(card) => card,
                    Err(_) => return corrupt(),
                },
            },
        };
        // Redis stores the estimate in the sketch's header and propagates the PFCOUNT
        // that did it. A replica changes its copy only when its master's PFCOUNT says so.
        if !ctx.store.replica || ctx.client.from_master {
            if let Ok(Some(v)) = ctx.write::<Bytes>(key) {
                let mut owned = BytesMut::from(&v[..]);
                sketch::set_cached(&mut owned, card);
                *v = owned.freeze();
                ctx.modified(key);
            }
        }
        return Reply::Int(card as i64);
    }
    let mut raw = [0u8; sketch::REGISTERS];
    for key in args.from(1) {
        if let Some(v) = tri!(read(ctx, key)) {
            if sketch::merge_into(&mut raw, v).is_err() {
                return corrupt();
            }
        }
    }
    Reply::Int(sketch::count_raw(&raw) as i64)
}

fn pfmerge(ctx: &mut Ctx, args: &Args) -> Reply {
    let mut raw = [0u8; sketch::REGISTERS];
    let mut dense = false;
    let mut old = None;
    // Every input (the destination included) is checked before anything is written; each
    // is looked up once, as Redis does (a second lookup would be a second keymiss).
    for (n, key) in args.from(1).enumerate() {
        if let Some(v) = tri!(read(ctx, key)) {
            // Any dense input makes the result dense, as in Redis.
            dense |= sketch::is_dense(v);
            if sketch::merge_into(&mut raw, v).is_err() {
                return corrupt();
            }
            if n == 0 {
                old = Some(v.clone());
            }
        }
    }
    let key = args.get(1);
    let max = sparse_max(ctx);
    put(ctx, key, sketch::from_raw(&raw, dense, max, old.as_deref()));
    // Redis reports a merge as a PFADD (a mass add of elements).
    ctx.changed(key, notify::STRING, "pfadd");
    Reply::Ok
}
