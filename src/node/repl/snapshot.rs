//! The full-resync payload: a sluice-native serialization of every database.
//!
//! **Not RDB.** A real `redis-server` replica cannot load it (it fails the RDB magic check
//! and retries the sync forever); only sluice nodes replicate from sluice nodes. The format
//! is private to one sluice version talking to itself:
//!
//! ```text
//! "SLUICE-SNAPSHOT-1\n"  stream_db:u8   (the database the stream that follows is in)
//! per key:  0x01  db:u8  type:u8  expire_ms:i64 (-1 = none, absolute unix ms)  key  value
//! per function library:  0x02  code
//! end:      0xFF
//! strings are u32 length + bytes; containers are u32 count + elements;
//! zset elements are member + f64 score bits (u64)
//! ```
//! Integers are little-endian. Expiry times are absolute, so a replica loading the snapshot
//! late still expires each key at the master's moment.

use bytes::{Bytes, BytesMut};

use crate::node::db::DATABASES;
use crate::node::store::Store;
use crate::node::value::{Hash, List, Set, Value, ZSet};

const MAGIC: &[u8] = b"SLUICE-SNAPSHOT-1\n";
const KEY: u8 = 1;
/// A function library: its code (`FUNCTION LOAD` text).
const LIBRARY: u8 = 2;
const END: u8 = 0xFF;

/// Why a snapshot could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The payload does not start with our magic (e.g. an RDB file from a real Redis).
    #[error("not a sluice snapshot (bad magic): a sluice replica can only sync from a sluice master, not load a real Redis's RDB")]
    Magic,
    /// The payload ends in the middle of a record.
    #[error("snapshot truncated at byte {0}")]
    Truncated(usize),
    /// A byte that is not a valid record or type tag.
    #[error("snapshot corrupt at byte {0}")]
    Corrupt(usize),
}

/// Serializes every database of `store`. Runs under the store lock (we have no fork), so
/// the cost is proportional to the dataset: fine for the sizes node mode is meant for.
/// `stream_db` is the database the replication stream after the snapshot is in (see
/// `attach::attach`).
pub fn encode(store: &Store, stream_db: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(MAGIC);
    out.push(stream_db as u8);
    for (i, db) in store.dbs().iter().enumerate() {
        for (k, v) in db.iter() {
            out.push(KEY);
            out.push(i as u8);
            out.push(type_tag(v));
            out.extend_from_slice(&db.expire_at(k).unwrap_or(-1).to_le_bytes());
            put_str(&mut out, k);
            match v {
                Value::Str(s) => put_str(&mut out, s),
                Value::Hash(h) => {
                    put_len(&mut out, h.len());
                    for (f, x) in h.iter() {
                        put_str(&mut out, f);
                        put_str(&mut out, x);
                    }
                }
                Value::List(l) => {
                    put_len(&mut out, l.len());
                    l.iter().for_each(|x| put_str(&mut out, x));
                }
                Value::Set(s) => {
                    put_len(&mut out, s.len());
                    s.iter().for_each(|x| put_str(&mut out, x));
                }
                Value::ZSet(z) => {
                    put_len(&mut out, z.len());
                    for (m, s) in z.iter() {
                        put_str(&mut out, m);
                        out.extend_from_slice(&s.to_bits().to_le_bytes());
                    }
                }
            }
        }
    }
    for code in store.scripting.functions.codes() {
        out.push(LIBRARY);
        put_str(&mut out, &code);
    }
    out.push(END);
    out
}

/// Replaces the whole keyspace of `store` with the snapshot's. On error the keyspace is
/// left empty (the caller retries the sync). Returns the number of keys and the stream's
/// database.
pub fn load(store: &mut Store, data: &[u8]) -> Result<(usize, usize), SnapshotError> {
    for i in 0..DATABASES {
        store.db_mut(i).clear();
    }
    let mut r = Reader { data, pos: 0 };
    if r.take(MAGIC.len())? != MAGIC {
        return Err(SnapshotError::Magic);
    }
    let stream_db = usize::from(r.u8()?);
    if stream_db >= DATABASES {
        return Err(SnapshotError::Corrupt(MAGIC.len()));
    }
    let mut keys = 0;
    store.scripting.functions.flush();
    loop {
        let at = r.pos;
        match r.u8()? {
            END => return Ok((keys, stream_db)),
            KEY => {}
            LIBRARY => {
                let code = r.str()?;
                let rand = store.scripting.rand48.clone();
                store
                    .scripting
                    .functions
                    .load(&code, true, &rand)
                    .map_err(|_| SnapshotError::Corrupt(at))?;
                continue;
            }
            _ => return Err(SnapshotError::Corrupt(at)),
        }
        let db = usize::from(r.u8()?);
        let tag = r.u8()?;
        let expire = i64::from_le_bytes(r.array()?);
        let key = r.str()?;
        if db >= DATABASES {
            return Err(SnapshotError::Corrupt(at));
        }
        let value = match tag {
            0 => Value::Str(r.str()?),
            1 => {
                let mut h = Hash::default();
                for _ in 0..r.len()? {
                    let f = r.str()?;
                    h.insert(f, r.str()?);
                }
                Value::Hash(Box::new(h))
            }
            2 => {
                let mut l = List::new();
                for _ in 0..r.len()? {
                    l.push_back(r.str()?);
                }
                Value::List(Box::new(l))
            }
            3 => {
                let mut s = Set::default();
                for _ in 0..r.len()? {
                    s.insert(r.str()?);
                }
                Value::Set(Box::new(s))
            }
            4 => {
                let mut z = ZSet::default();
                for _ in 0..r.len()? {
                    let m = r.str()?;
                    z.insert(m, f64::from_bits(u64::from_le_bytes(r.array()?)));
                }
                Value::ZSet(Box::new(z))
            }
            _ => return Err(SnapshotError::Corrupt(at)),
        };
        let d = store.db_mut(db);
        d.insert(&key, value, false);
        if expire >= 0 {
            d.set_expire(&key, expire);
        }
        keys += 1;
    }
}

fn type_tag(v: &Value) -> u8 {
    match v {
        Value::Str(_) => 0,
        Value::Hash(_) => 1,
        Value::List(_) => 2,
        Value::Set(_) => 3,
        Value::ZSet(_) => 4,
    }
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_len(out, s.len());
    out.extend_from_slice(s);
}

/// Bounds-checked reading: every length comes from the peer, so nothing is trusted.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or(SnapshotError::Truncated(self.pos))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.take(1)?[0])
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn len(&mut self) -> Result<usize, SnapshotError> {
        Ok(u32::from_le_bytes(self.array()?) as usize)
    }
    fn str(&mut self) -> Result<Bytes, SnapshotError> {
        let n = self.len()?;
        Ok(Bytes::copy_from_slice(self.take(n)?))
    }
}

/// `$<len>\r\n<payload>` without a trailing CRLF, as Redis sends an RDB to a replica.
pub fn frame(payload: &[u8], out: &mut BytesMut) {
    out.extend_from_slice(format!("${}\r\n", payload.len()).as_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_type_and_ttl() {
        let mut s = Store::new();
        let b = |x: &str| Bytes::copy_from_slice(x.as_bytes());
        s.db_mut(0).insert(&b("s"), Value::Str(b("v")), false);
        s.db_mut(0).set_expire(b"s", 123_456);
        let mut z = ZSet::default();
        z.insert(b("m"), 1.5);
        s.db_mut(3).insert(&b("z"), Value::ZSet(Box::new(z)), false);
        let mut h = Hash::default();
        h.insert(b("f"), b("x"));
        s.db_mut(15)
            .insert(&b("h"), Value::Hash(Box::new(h)), false);
        let data = encode(&s, 2);
        let mut t = Store::new();
        assert_eq!(load(&mut t, &data).ok(), Some((3, 2)));
        assert_eq!(t.db(0).get(b"s"), s.db(0).get(b"s"));
        assert_eq!(t.db(0).expire_at(b"s"), Some(123_456));
        assert_eq!(t.db(3).get(b"z"), s.db(3).get(b"z"));
        assert_eq!(t.db(15).get(b"h"), s.db(15).get(b"h"));
        assert!(matches!(
            load(&mut t, &data[..data.len() - 3]),
            Err(SnapshotError::Truncated(_))
        ));
        assert!(matches!(
            load(&mut t, b"REDIS0009"),
            Err(SnapshotError::Magic | SnapshotError::Truncated(_))
        ));
    }
}
