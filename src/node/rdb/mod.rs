//! Redis's RDB value encoding (`rdb.c`, RDB version 10 = Redis 7.0): one value as a type
//! byte and its body, the unit of DUMP/RESTORE payloads and of RDB files.
//!
//! **Writing** uses the plain types every Redis since 2.x loads (string 0, list 1, set 2,
//! hash 4, sorted set 5 with binary scores): Redis re-encodes them to its compact forms on
//! load, so nothing is lost by not writing listpacks. **Reading** also takes what Redis 7.0
//! itself writes: LZF-compressed and integer-encoded strings, quicklist 2 lists, listpack
//! hashes and sorted sets, intsets, and the old string-scored sorted set (type 3). The
//! ziplist types of Redis before 7.0 (10, 12, 13, 14) and streams are refused.
//!
//! [`dump`] and [`undump`] frame a value as a DUMP payload: the value, the 2-byte RDB
//! version and the CRC-64 of both, little-endian.

mod crc64;
mod listpack;
mod lzf;

use bytes::Bytes;

use crate::node::value::{Hash, List, Set, Value, ZSet};

/// The RDB version written (Redis 7.0's), and the newest accepted in a DUMP payload.
pub(crate) const RDB_VERSION: u16 = 10;

/// Value types (`RDB_TYPE_*`).
mod kind {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const SET_INTSET: u8 = 11;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
}

/// Why a value could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum RdbError {
    /// The data ends inside a value.
    #[error("truncated value")]
    Truncated,
    /// A length, encoding or element that Redis would refuse too.
    #[error("corrupt value: {0}")]
    Corrupt(&'static str),
    /// A value type the node cannot hold (streams, modules) or does not read (ziplists).
    #[error("unsupported value type {0}")]
    Type(u8),
}

/// Why a DUMP payload was refused, as RESTORE words it.
#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum DumpError {
    /// A payload from a newer Redis, or damaged.
    #[error("DUMP payload version or checksum are wrong")]
    VersionOrChecksum,
    /// A good checksum over a value that cannot be read.
    #[error("Bad data format")]
    BadData(#[from] RdbError),
}

/// The DUMP payload of `value`.
pub(crate) fn dump(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(value, &mut out);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64::update(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The value of a DUMP payload (Redis's `verifyDumpPayload`, then `rdbLoadObject`).
pub(crate) fn undump(payload: &[u8]) -> Result<Value, DumpError> {
    let body_len = payload
        .len()
        .checked_sub(10)
        .ok_or(DumpError::VersionOrChecksum)?;
    let (data, footer) = payload.split_at(body_len);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    if version > RDB_VERSION
        || crc64::update(0, &payload[..body_len + 2]) != u64::from_le_bytes(crc)
    {
        return Err(DumpError::VersionOrChecksum);
    }
    let mut r = Reader::new(data);
    let kind = r.byte()?;
    Ok(read_value(kind, &mut r)?)
}

// ---------------------------------------------------------------------------------------
// Writing.

/// Appends `value` as its type byte and body.
pub(crate) fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Str(s) => {
            out.push(kind::STRING);
            write_string(s, out);
        }
        Value::List(l) => {
            out.push(kind::LIST);
            write_len(l.len() as u64, out);
            l.iter().for_each(|e| write_string(e, out));
        }
        Value::Set(s) => {
            out.push(kind::SET);
            write_len(s.len() as u64, out);
            s.iter().for_each(|e| write_string(e, out));
        }
        Value::Hash(h) => {
            out.push(kind::HASH);
            write_len(h.len() as u64, out);
            for (f, v) in h.iter() {
                write_string(f, out);
                write_string(v, out);
            }
        }
        Value::ZSet(z) => {
            out.push(kind::ZSET_2);
            write_len(z.len() as u64, out);
            // Highest first, as Redis writes its skiplist (its loader then appends cheaply).
            for (m, score) in z.iter().rev() {
                write_string(m, out);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
    }
}

/// An RDB length: 6 bits, 14 bits, or a marker byte and 32/64 bits big-endian.
fn write_len(len: u64, out: &mut Vec<u8>) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.extend_from_slice(&[0x40 | (len >> 8) as u8, len as u8]);
    } else if let Ok(l) = u32::try_from(len) {
        out.push(0x80);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// An RDB string; short canonical integers take Redis's integer encodings.
fn write_string(s: &[u8], out: &mut Vec<u8>) {
    if let Some(i) = canonical_int(s) {
        if let Ok(v) = i8::try_from(i) {
            out.extend_from_slice(&[0xc0, v as u8]);
            return;
        }
        if let Ok(v) = i16::try_from(i) {
            out.push(0xc1);
            out.extend_from_slice(&v.to_le_bytes());
            return;
        }
        if let Ok(v) = i32::try_from(i) {
            out.push(0xc2);
            out.extend_from_slice(&v.to_le_bytes());
            return;
        }
    }
    write_len(s.len() as u64, out);
    out.extend_from_slice(s);
}

/// `s` as an integer if it is one written the way Redis would print it back (no sign
/// prefix, no leading zeros), so the integer encoding round-trips the exact bytes.
fn canonical_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 11 {
        return None;
    }
    let i: i64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    (itoa::Buffer::new().format(i).as_bytes() == s).then_some(i)
}

// ---------------------------------------------------------------------------------------
// Reading.

/// A cursor over RDB bytes.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

/// An RDB length, or a string's special encoding (`11xxxxxx`).
enum Len {
    Plain(u64),
    Encoded(u8),
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], RdbError> {
        let end = self.pos.checked_add(n).ok_or(RdbError::Truncated)?;
        let s = self.data.get(self.pos..end).ok_or(RdbError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn byte(&mut self) -> Result<u8, RdbError> {
        Ok(self.take(1)?[0])
    }

    fn len_or_encoding(&mut self) -> Result<Len, RdbError> {
        let b = self.byte()?;
        Ok(match b >> 6 {
            0 => Len::Plain(u64::from(b & 0x3f)),
            1 => Len::Plain((u64::from(b & 0x3f) << 8) | u64::from(self.byte()?)),
            3 => Len::Encoded(b & 0x3f),
            _ if b == 0x80 => {
                let mut v = [0u8; 4];
                v.copy_from_slice(self.take(4)?);
                Len::Plain(u64::from(u32::from_be_bytes(v)))
            }
            _ if b == 0x81 => {
                let mut v = [0u8; 8];
                v.copy_from_slice(self.take(8)?);
                Len::Plain(u64::from_be_bytes(v))
            }
            _ => return Err(RdbError::Corrupt("unknown length encoding")),
        })
    }

    /// A length; at most what the remaining bytes could hold, so a lying length never
    /// reserves memory.
    pub(crate) fn len(&mut self) -> Result<usize, RdbError> {
        match self.len_or_encoding()? {
            Len::Plain(n) => usize::try_from(n)
                .ok()
                .filter(|&n| n <= self.data.len() - self.pos)
                .ok_or(RdbError::Truncated),
            Len::Encoded(_) => Err(RdbError::Corrupt("encoded length")),
        }
    }

    /// A string in any of its encodings.
    pub(crate) fn string(&mut self) -> Result<Bytes, RdbError> {
        let n = match self.len_or_encoding()? {
            Len::Plain(n) => usize::try_from(n).map_err(|_| RdbError::Truncated)?,
            Len::Encoded(0) => return Ok(int_bytes(i64::from(self.byte()? as i8))),
            Len::Encoded(1) => {
                let v = i16::from_le_bytes([self.byte()?, self.byte()?]);
                return Ok(int_bytes(i64::from(v)));
            }
            Len::Encoded(2) => {
                let mut v = [0u8; 4];
                v.copy_from_slice(self.take(4)?);
                return Ok(int_bytes(i64::from(i32::from_le_bytes(v))));
            }
            Len::Encoded(3) => {
                let clen = self.len()?;
                let len = match self.len_or_encoding()? {
                    Len::Plain(n) => usize::try_from(n).map_err(|_| RdbError::Truncated)?,
                    Len::Encoded(_) => return Err(RdbError::Corrupt("encoded length")),
                };
                let packed = self.take(clen)?;
                let raw = lzf::decompress(packed, len).ok_or(RdbError::Corrupt("bad LZF data"))?;
                return Ok(Bytes::from(raw));
            }
            Len::Encoded(_) => return Err(RdbError::Corrupt("unknown string encoding")),
        };
        Ok(Bytes::copy_from_slice(self.take(n)?))
    }

    /// A binary double (sorted set type 5).
    fn binary_double(&mut self) -> Result<f64, RdbError> {
        let mut v = [0u8; 8];
        v.copy_from_slice(self.take(8)?);
        Ok(f64::from_le_bytes(v))
    }

    /// A double written as text with a length byte (sorted set type 3).
    fn text_double(&mut self) -> Result<f64, RdbError> {
        match self.byte()? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => parse_double(self.take(usize::from(n))?),
        }
    }
}

fn int_bytes(i: i64) -> Bytes {
    Bytes::copy_from_slice(itoa::Buffer::new().format(i).as_bytes())
}

fn parse_double(text: &[u8]) -> Result<f64, RdbError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
        .ok_or(RdbError::Corrupt("bad double"))
}

/// Reads the body of a value of type `kind`.
pub(crate) fn read_value(kind: u8, r: &mut Reader<'_>) -> Result<Value, RdbError> {
    let value = match kind {
        kind::STRING => Value::Str(r.string()?),
        kind::LIST => {
            let n = r.len()?;
            let mut l = List::new();
            for _ in 0..n {
                l.push_back(r.string()?);
            }
            Value::List(Box::new(l))
        }
        kind::SET => {
            let n = r.len()?;
            let mut s = Set::default();
            for _ in 0..n {
                if !s.insert(r.string()?) {
                    return Err(RdbError::Corrupt("duplicate set member"));
                }
            }
            Value::Set(Box::new(s))
        }
        kind::HASH => {
            let n = r.len()?;
            let mut h = Hash::default();
            for _ in 0..n {
                let (f, v) = (r.string()?, r.string()?);
                if h.insert(f, v).is_some() {
                    return Err(RdbError::Corrupt("duplicate hash field"));
                }
            }
            Value::Hash(Box::new(h))
        }
        kind::ZSET | kind::ZSET_2 => {
            let n = r.len()?;
            let mut z = ZSet::default();
            for _ in 0..n {
                let m = r.string()?;
                let score = if kind == kind::ZSET {
                    r.text_double()?
                } else {
                    r.binary_double()?
                };
                zset_add(&mut z, m, score)?;
            }
            Value::ZSet(Box::new(z))
        }
        kind::SET_INTSET => Value::Set(Box::new(intset(&r.string()?)?)),
        kind::HASH_LISTPACK => {
            let mut h = Hash::default();
            for pair in pairs(&r.string()?)? {
                if h.insert(pair.0, pair.1).is_some() {
                    return Err(RdbError::Corrupt("duplicate hash field"));
                }
            }
            Value::Hash(Box::new(h))
        }
        kind::ZSET_LISTPACK => {
            let mut z = ZSet::default();
            for (m, score) in pairs(&r.string()?)? {
                zset_add(&mut z, m, parse_double(&score)?)?;
            }
            Value::ZSet(Box::new(z))
        }
        kind::LIST_QUICKLIST_2 => Value::List(Box::new(quicklist(r)?)),
        other => return Err(RdbError::Type(other)),
    };
    // Redis never keeps an empty container, and refuses to load one.
    if value_is_empty(&value) {
        return Err(RdbError::Corrupt("empty value"));
    }
    Ok(value)
}

fn value_is_empty(v: &Value) -> bool {
    match v {
        Value::Str(_) => false,
        Value::List(l) => l.is_empty(),
        Value::Set(s) => s.is_empty(),
        Value::Hash(h) => h.is_empty(),
        Value::ZSet(z) => z.is_empty(),
    }
}

fn zset_add(z: &mut ZSet, member: Bytes, score: f64) -> Result<(), RdbError> {
    if score.is_nan() {
        return Err(RdbError::Corrupt("NaN score"));
    }
    if !z.insert(member, score) {
        return Err(RdbError::Corrupt("duplicate sorted set member"));
    }
    Ok(())
}

/// The elements of a listpack taken two by two.
fn pairs(blob: &[u8]) -> Result<Vec<(Bytes, Bytes)>, RdbError> {
    let items = listpack::items(blob).ok_or(RdbError::Corrupt("bad listpack"))?;
    if items.len() % 2 != 0 {
        return Err(RdbError::Corrupt("odd listpack"));
    }
    let mut it = items.into_iter().map(listpack::Item::into_bytes);
    let mut out = Vec::new();
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        out.push((a, b));
    }
    Ok(out)
}

/// An intset blob: encoding (2, 4 or 8 bytes per integer), count, sorted integers.
fn intset(blob: &[u8]) -> Result<Set, RdbError> {
    let bad = RdbError::Corrupt("bad intset");
    let (head, body) = (
        blob.get(..8).ok_or(RdbError::Corrupt("bad intset"))?,
        &blob[8..],
    );
    let width = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let count = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if !matches!(width, 2 | 4 | 8) || count.checked_mul(width) != Some(body.len()) {
        return Err(bad);
    }
    let mut set = Set::default();
    let mut last = None;
    for chunk in body.chunks_exact(width) {
        let v = match width {
            2 => i64::from(i16::from_le_bytes([chunk[0], chunk[1]])),
            4 => i64::from(i32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])),
            _ => {
                let mut b = [0u8; 8];
                b.copy_from_slice(chunk);
                i64::from_le_bytes(b)
            }
        };
        // Redis keeps an intset sorted and unique; anything else is corrupt.
        if last.is_some_and(|l| l >= v) {
            return Err(bad);
        }
        last = Some(v);
        set.insert(int_bytes(v));
    }
    Ok(set)
}

/// A quicklist 2 list: nodes, each a plain element (container 1) or a listpack (2).
fn quicklist(r: &mut Reader<'_>) -> Result<List, RdbError> {
    let nodes = r.len()?;
    let mut list = List::new();
    for _ in 0..nodes {
        let container = r.len()?;
        let blob = r.string()?;
        match container {
            1 => list.push_back(blob),
            2 => {
                let items = listpack::items(&blob).ok_or(RdbError::Corrupt("bad listpack"))?;
                list.extend(items.into_iter().map(listpack::Item::into_bytes));
            }
            _ => return Err(RdbError::Corrupt("unknown quicklist container")),
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn every_type_round_trips() {
        let mut z = ZSet::default();
        z.insert(b("a"), 1.5);
        z.insert(b("b"), f64::NEG_INFINITY);
        let values = [
            Value::Str(b("hello")),
            Value::Str(b("12345")),
            Value::Str(b("-129")),
            Value::Str(b("4294967296")),
            Value::Str(b("007")),
            Value::Str(Bytes::from(vec![b'x'; 20_000])),
            Value::List(Box::new([b("a"), b("1"), b("")].into_iter().collect())),
            Value::Set(Box::new([b("x"), b("y")].into_iter().collect())),
            Value::Hash(Box::new(
                [(b("f"), b("v")), (b("g"), b("2"))].into_iter().collect(),
            )),
            Value::ZSet(Box::new(z)),
        ];
        for v in values {
            let p = dump(&v);
            assert_eq!(undump(&p), Ok(v));
        }
    }

    #[test]
    fn damaged_payloads_are_refused() {
        let p = dump(&Value::Str(b("hello")));
        for i in 0..p.len() {
            let mut bad = p.clone();
            bad[i] ^= 0x20;
            assert_eq!(undump(&bad), Err(DumpError::VersionOrChecksum), "byte {i}");
        }
        assert_eq!(undump(b"short"), Err(DumpError::VersionOrChecksum));
        // A newer RDB version with a valid checksum.
        let mut newer = p[..p.len() - 10].to_vec();
        newer.extend_from_slice(&11u16.to_le_bytes());
        let crc = crc64::update(0, &newer);
        newer.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(undump(&newer), Err(DumpError::VersionOrChecksum));
    }

    /// Frames `body` as a payload with a valid checksum.
    fn payload(body: &[u8]) -> Vec<u8> {
        let mut p = body.to_vec();
        p.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = crc64::update(0, &p);
        p.extend_from_slice(&crc.to_le_bytes());
        p
    }

    #[test]
    fn truncated_or_lying_values_are_bad_data() {
        let good = dump(&Value::List(Box::new(
            [b("a"), b("b")].into_iter().collect(),
        )));
        let body = &good[..good.len() - 10];
        for cut in 0..body.len() {
            assert!(
                matches!(undump(&payload(&body[..cut])), Err(DumpError::BadData(_))),
                "cut at {cut}"
            );
        }
        // A list claiming 2^32 elements in a few bytes.
        let lying = payload(&[kind::LIST, 0x81, 0, 0, 0, 1, 0, 0, 0, 0, 1, b'a']);
        assert!(matches!(undump(&lying), Err(DumpError::BadData(_))));
        // Types the node does not hold.
        assert_eq!(
            undump(&payload(&[15, 0])),
            Err(DumpError::BadData(RdbError::Type(15)))
        );
        // Empty containers and duplicates.
        assert!(undump(&payload(&[kind::SET, 0])).is_err());
        assert!(undump(&payload(&[kind::SET, 2, 1, b'a', 1, b'a'])).is_err());
    }

    #[test]
    fn reads_redis_compact_encodings() {
        // An intset of 16-bit integers 1 and 300.
        let mut blob = vec![2, 0, 0, 0, 2, 0, 0, 0, 1, 0];
        blob.extend_from_slice(&300i16.to_le_bytes());
        let mut body = vec![kind::SET_INTSET, blob.len() as u8];
        body.extend_from_slice(&blob);
        let Ok(Value::Set(s)) = undump(&payload(&body)) else {
            panic!("intset")
        };
        assert!(s.contains(&b"300"[..]) && s.contains(&b"1"[..]));
        // LZF: "aaaaaaaa" as a literal 'a' and a back reference of 7.
        let body = [kind::STRING, 0xc3, 4, 8, 0, b'a', (5 << 5), 0];
        assert_eq!(undump(&payload(&body)), Ok(Value::Str(b("aaaaaaaa"))));
    }
}
