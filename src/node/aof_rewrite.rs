//! AOF rewrite (BGREWRITEAOF, and after a replica's full resync): replaces the buffered file
//! contents with commands that re-create the current keyspace, under the store lock.

use bytes::BytesMut;

use super::store::Store;
use super::value::Value;
use crate::resp::encode;

/// Elements per command when a rewrite re-creates a big container (Redis's
/// `AOF_REWRITE_ITEMS_PER_CMD`), so no single record is huge.
const ITEMS_PER_CMD: usize = 64;

/// Replaces the AOF's contents with commands that re-create the current keyspace (under the
/// lock; the writer thread truncates the file and writes them). Used after a replica's full
/// resync — the file must describe the new dataset, not the old one plus the stream — and
/// by BGREWRITEAOF. Does nothing without `appendonly yes`.
pub fn rewrite(store: &mut Store) {
    if store.repl.aof.is_none() {
        return;
    }
    let out = commands(store);
    if let Some(a) = store.repl.aof.as_mut() {
        a.size = out.len() as u64;
        a.seq += out.len() as u64;
        a.buf = out;
        a.replace = true;
    }
    // The rewritten file's last SELECT is not the feed's: force one before the next write.
    store.feed.reset_db();
}

/// The commands that re-create the function libraries and every database's keys with their
/// expiry times (a rewritten AOF's contents; DEBUG RELOAD replays them).
pub fn commands(store: &Store) -> BytesMut {
    let mut out = BytesMut::new();
    let mut n = itoa::Buffer::new();
    for code in store.scripting.functions.codes() {
        encode::command(&mut out, &[b"FUNCTION", b"LOAD", &code]);
    }
    for (i, db) in store.dbs().iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        encode::command(&mut out, &[b"SELECT", n.format(i).as_bytes()]);
        for (k, v) in db.iter() {
            rewrite_value(&mut out, k, v);
            if let Some(at) = db.expire_at(k) {
                encode::command(&mut out, &[b"PEXPIREAT", k, n.format(at).as_bytes()]);
            }
        }
    }
    out
}

fn rewrite_value(out: &mut BytesMut, key: &[u8], v: &Value) {
    let chunks = |out: &mut BytesMut, cmd: &[u8], items: Vec<&[u8]>, per: usize| {
        for chunk in items.chunks(ITEMS_PER_CMD * per) {
            let mut args: Vec<&[u8]> = vec![cmd, key];
            args.extend_from_slice(chunk);
            encode::command(out, &args);
        }
    };
    match v {
        Value::Str(s) => encode::command(out, &[b"SET", key, s]),
        Value::List(l) => chunks(out, b"RPUSH", l.iter().map(|x| &x[..]).collect(), 1),
        Value::Set(s) => chunks(out, b"SADD", s.iter().map(|x| &x[..]).collect(), 1),
        Value::Hash(h) => chunks(
            out,
            b"HSET",
            h.iter().flat_map(|(f, x)| [&f[..], &x[..]]).collect(),
            2,
        ),
        Value::ZSet(z) => {
            let scores: Vec<String> = z.iter().map(|(_, s)| format_score(s)).collect();
            let items = z
                .iter()
                .zip(&scores)
                .flat_map(|((m, _), s)| [s.as_bytes(), &m[..]])
                .collect();
            chunks(out, b"ZADD", items, 2);
        }
    }
}

/// A score as text that parses back to the same f64 (Rust's shortest round-trip form).
fn format_score(s: f64) -> String {
    if s.is_infinite() {
        if s > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        format!("{s:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::value::{Hash, List, ZSet};
    use bytes::Bytes;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn rewrite_recreates_every_type_with_absolute_expiry() {
        let mut s = Store::new();
        s.repl.aof = Some(crate::node::aof_buffer::AofBuffer::default());
        let mut l = List::new();
        l.extend([b("a"), b("b")]);
        s.db_mut(0).insert(&b("l"), Value::List(Box::new(l)), false);
        s.db_mut(0).set_expire(b"l", 1_700_000_000_000);
        let mut h = Hash::default();
        h.insert(b("f"), b("v"));
        s.db_mut(2).insert(&b("h"), Value::Hash(Box::new(h)), false);
        let mut z = ZSet::default();
        z.insert(b("m"), 0.1);
        z.insert(b("n"), f64::NEG_INFINITY);
        s.db_mut(2).insert(&b("z"), Value::ZSet(Box::new(z)), false);
        rewrite(&mut s);
        let Some(aof) = s.repl.aof.as_mut() else {
            panic!("aof")
        };
        let (buf, replace) = aof.take();
        assert!(replace);
        let text = String::from_utf8_lossy(&buf).replace("\r\n", " ");
        assert_eq!(
            text,
            "*2 $6 SELECT $1 0 *4 $5 RPUSH $1 l $1 a $1 b \
             *3 $9 PEXPIREAT $1 l $13 1700000000000 \
             *2 $6 SELECT $1 2 *4 $4 HSET $1 h $1 f $1 v \
             *6 $4 ZADD $1 z $4 -inf $1 n $3 0.1 $1 m "
        );
    }
}
