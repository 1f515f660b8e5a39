//! DUMP / RESTORE / RESTORE-ASKING.
//!
//! **The payload is not Redis's RDB encoding**: it is a one-key sluice snapshot
//! (`repl/snapshot.rs`) followed, as in Redis, by a 2-byte version and an 8-byte checksum
//! (FNV-1a 64 here, not CRC64). It round-trips between sluice nodes only, which is all
//! MIGRATE between sluice nodes needs; a real Redis refuses it and vice versa.

use bytes::Bytes;

use crate::node::args::Args;
use crate::node::cmd::ctx::Ctx;
use crate::node::notify;
use crate::node::repl::snapshot;
use crate::node::reply::Reply;
use crate::node::store::Store;
use crate::node::value::Value;

/// Payload version bytes ("S" 1): a sluice dump, format 1.
const VERSION: [u8; 2] = [b'S', 1];
const KEY: &[u8] = b"k";

fn fnv64(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The payload for `value`.
pub(crate) fn encode(value: &Value) -> Vec<u8> {
    let mut tmp = Store::new();
    tmp.db_mut(0)
        .insert(Bytes::from_static(KEY), value.clone(), false);
    let mut out = snapshot::encode(&tmp, 0);
    out.extend_from_slice(&VERSION);
    let sum = fnv64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// The value in `payload`, if it is a valid sluice dump.
pub(crate) fn decode(payload: &[u8]) -> Option<Value> {
    let body_len = payload.len().checked_sub(8)?;
    let (body, sum) = payload.split_at(body_len);
    if fnv64(body).to_le_bytes() != sum || !body.ends_with(&VERSION) {
        return None;
    }
    let mut tmp = Store::new();
    snapshot::load(&mut tmp, &body[..body.len() - VERSION.len()]).ok()?;
    tmp.db_mut(0).remove(KEY)
}

/// DUMP key
pub(crate) fn dump(ctx: &mut Ctx<'_>, args: &Args<'_>) -> Reply {
    match ctx.lookup(args.get(1)) {
        Some(v) => Reply::Bulk(Bytes::from(encode(v))),
        None => Reply::Null,
    }
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f] (and RESTORE-ASKING).
pub(crate) fn restore(ctx: &mut Ctx<'_>, args: &Args<'_>) -> Reply {
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq) = (None, None);
    let mut i = 4;
    while i < args.len() {
        let more = i + 1 < args.len();
        if args.is(i, "replace") {
            replace = true;
        } else if args.is(i, "absttl") {
            absttl = true;
        } else if args.is(i, "idletime") && more && freq.is_none() {
            match args.int(i + 1) {
                Ok(n) => match u64::try_from(n) {
                    Ok(n) => idle = Some(n),
                    Err(_) => return Reply::error("ERR Invalid IDLETIME value, must be >= 0"),
                },
                Err(e) => return e,
            }
            i += 1;
        } else if args.is(i, "freq") && more && idle.is_none() {
            match args.int(i + 1) {
                Ok(n) => match u8::try_from(n) {
                    Ok(n) => freq = Some(n),
                    Err(_) => {
                        return Reply::error("ERR Invalid FREQ value, must be >= 0 and <= 255")
                    }
                },
                Err(e) => return e,
            }
            i += 1;
        } else {
            return crate::node::args::syntax();
        }
        i += 1;
    }
    let ttl = match args.int(2) {
        Ok(t) if t >= 0 => t,
        Ok(_) => return Reply::error("ERR Invalid TTL value, must be >= 0"),
        Err(e) => return e,
    };
    let key = args.get(1);
    if !replace && ctx.exists(key) {
        return Reply::error("BUSYKEY Target key name already exists.");
    }
    let Some(value) = decode(args.get(3)) else {
        return Reply::error("ERR DUMP payload version or checksum are wrong");
    };
    let expire_at = match (ttl, absttl) {
        (0, _) => None,
        (t, true) => Some(t),
        (t, false) => Some(ctx.now_ms().saturating_add(t)),
    };
    if expire_at.is_some_and(|at| at <= ctx.now_ms()) {
        // Already expired: Redis deletes the key (if replacing) and answers OK.
        if ctx.delete(key) {
            ctx.changed(key, notify::GENERIC, "del");
        }
        return Reply::Ok;
    }
    let key = args.owned(1);
    let (touch, now) = (ctx.store.touch(), ctx.now_ms());
    let clock = ctx.store.access.restored(idle, freq, now);
    let db = ctx.db();
    db.remove(&key);
    db.insert_touched(key.clone(), value, false, &touch);
    // Redis deletes a replaced key first, so a restored key is always `new`.
    ctx.notify(notify::NEW, "new", &key);
    let db = ctx.db();
    if let Some(at) = expire_at {
        db.set_expire(&key, at);
    }
    if let Some(c) = clock {
        db.set_clock(&key, c);
    }
    ctx.changed(&key, notify::GENERIC, "restore");
    Reply::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_checks_itself() {
        let v = Value::Str(Bytes::from_static(b"hello"));
        let p = encode(&v);
        assert_eq!(decode(&p), Some(v));
        let mut bad = p.clone();
        bad[3] ^= 1;
        assert_eq!(decode(&bad), None);
        assert_eq!(decode(b"short"), None);
    }
}
