//! Reading Redis's listpack (`listpack.c`), the blob Redis 7.0 stores small hashes, sorted
//! sets and list nodes in (RDB types `*_LISTPACK` and quicklist 2 nodes): a 6-byte header
//! (total bytes u32, element count u16, little-endian), entries, and a 0xFF terminator.
//! Each entry is an encoding byte with its data, then its own length backwards ("backlen",
//! 1 to 5 bytes), which a forward reader skips.

use bytes::Bytes;

/// One element: a string or an integer (Redis stores integer-looking strings as integers).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    Str(Bytes),
    Int(i64),
}

impl Item {
    /// The element as the string Redis gives back for it.
    pub(crate) fn into_bytes(self) -> Bytes {
        match self {
            Item::Str(b) => b,
            Item::Int(i) => Bytes::from(itoa::Buffer::new().format(i).to_owned()),
        }
    }
}

/// The bytes the backlen of an entry of `len` bytes takes.
fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        2_097_152..=268_435_455 => 4,
        _ => 5,
    }
}

/// Sign-extends the low `bits` bits of `v`.
fn signed(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

fn le(data: &[u8]) -> u64 {
    data.iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// Every element of a listpack; `None` if it is malformed (truncated, a bad encoding, a
/// count or size that does not match).
pub(crate) fn items(lp: &[u8]) -> Option<Vec<Item>> {
    let total = usize::try_from(le(lp.get(0..4)?)).ok()?;
    let count = usize::try_from(le(lp.get(4..6)?)).ok()?;
    if total != lp.len() || lp.last() != Some(&0xff) {
        return None;
    }
    let mut out = Vec::new();
    let mut p = 6;
    while *lp.get(p)? != 0xff {
        let (item, len) = entry(&lp[p..])?;
        out.push(item);
        p += len + backlen_size(len);
        if p >= lp.len() {
            return None;
        }
    }
    // 65535 means "too many to count": the real count is only known by walking.
    (p == lp.len() - 1 && (count == 65_535 || count == out.len())).then_some(out)
}

/// The entry at the start of `e` and its size without the backlen.
fn entry(e: &[u8]) -> Option<(Item, usize)> {
    let b = *e.first()?;
    let str_at = |start: usize, len: usize| -> Option<(Item, usize)> {
        let s = e.get(start..start.checked_add(len)?)?;
        Some((Item::Str(Bytes::copy_from_slice(s)), start + len))
    };
    let int_at = |n: usize| -> Option<(Item, usize)> {
        let v = le(e.get(1..1 + n)?);
        Some((Item::Int(signed(v, 8 * n as u32)), 1 + n))
    };
    match b {
        0x00..=0x7f => Some((Item::Int(i64::from(b)), 1)),
        0x80..=0xbf => str_at(1, usize::from(b & 0x3f)),
        0xc0..=0xdf => {
            let v = (u64::from(b & 0x1f) << 8) | u64::from(*e.get(1)?);
            Some((Item::Int(signed(v, 13)), 2))
        }
        0xe0..=0xef => str_at(2, (usize::from(b & 0x0f) << 8) | usize::from(*e.get(1)?)),
        0xf0 => str_at(5, usize::try_from(le(e.get(1..5)?)).ok()?),
        0xf1 => int_at(2),
        0xf2 => int_at(3),
        0xf3 => int_at(4),
        0xf4 => int_at(8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listpack of raw entries (each given with its encoding byte(s) and data).
    fn lp(entries: &[&[u8]]) -> Vec<u8> {
        let mut body = Vec::new();
        for e in entries {
            body.extend_from_slice(e);
            assert!(e.len() < 128);
            body.push(e.len() as u8);
        }
        let total = 6 + body.len() + 1;
        let mut out = (total as u32).to_le_bytes().to_vec();
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out.push(0xff);
        out
    }

    #[test]
    fn reads_every_encoding() {
        let data = lp(&[
            &[5],
            &[0x83, b'a', b'b', b'c'],
            &[0xdf, 0xff],             // 13-bit -1
            &[0xf1, 0x00, 0x80],       // 16-bit -32768
            &[0xf2, 0xff, 0xff, 0x7f], // 24-bit max
            &[0xf3, 0, 0, 0, 0x80],
            &[0xf4, 1, 0, 0, 0, 0, 0, 0, 0],
            &[0xe0, 3, b'x', b'y', b'z'],
        ]);
        let got = items(&data).expect("valid");
        assert_eq!(
            got,
            vec![
                Item::Int(5),
                Item::Str(Bytes::from_static(b"abc")),
                Item::Int(-1),
                Item::Int(-32768),
                Item::Int(8_388_607),
                Item::Int(i64::from(i32::MIN)),
                Item::Int(1),
                Item::Str(Bytes::from_static(b"xyz")),
            ]
        );
    }

    #[test]
    fn refuses_malformed_blobs() {
        let good = lp(&[&[5], &[0x81, b'a']]);
        assert!(items(&good).is_some());
        for cut in 0..good.len() {
            assert!(items(&good[..cut]).is_none(), "cut at {cut}");
        }
        let mut wrong_count = good.clone();
        wrong_count[4] = 3;
        assert!(items(&wrong_count).is_none());
        let mut bad_len = good.clone();
        bad_len[8] = 0xbf; // a 63-byte string that is not there
        assert!(items(&bad_len).is_none());
    }
}
