//! OBJECT ENCODING: the internal representation Redis 7.0 would pick for a value, from its
//! size by Redis's default thresholds. The node stores every type one way; this only keeps
//! tools and tests that look at encodings seeing plausible answers.

use crate::node::args::parse_int;
use crate::node::value::Value;

/// Longest string Redis stores embedded in its object header.
const EMBSTR_MAX: usize = 44;
/// Hashes and sorted sets stay listpacks up to this many entries (hash: see settings).
const HASH_MAX_ENTRIES: usize = 512;
const ZSET_MAX_ENTRIES: usize = 128;
/// ... and while every field/member is at most this long.
const MAX_VALUE: usize = 64;
/// Sets of integers stay intsets up to this many members.
const INTSET_MAX: usize = 512;

/// The encoding name OBJECT ENCODING reports for `v`.
pub fn encoding(v: &Value) -> &'static str {
    match v {
        Value::Str(s) if s.len() <= 20 && parse_int(s).is_some() => "int",
        Value::Str(s) if s.len() <= EMBSTR_MAX => "embstr",
        Value::Str(_) => "raw",
        // Redis 7.0 always uses a quicklist for lists.
        Value::List(_) => "quicklist",
        Value::Hash(h) => {
            let small = h.len() <= HASH_MAX_ENTRIES
                && h.iter()
                    .all(|(k, v)| k.len() <= MAX_VALUE && v.len() <= MAX_VALUE);
            if small {
                "listpack"
            } else {
                "hashtable"
            }
        }
        Value::Set(s) => {
            if s.len() <= INTSET_MAX && s.iter().all(|m| parse_int(m).is_some()) {
                "intset"
            } else {
                "hashtable"
            }
        }
        Value::ZSet(z) => {
            if z.len() <= ZSET_MAX_ENTRIES && z.iter().all(|(m, _)| m.len() <= MAX_VALUE) {
                "listpack"
            } else {
                "skiplist"
            }
        }
    }
}
