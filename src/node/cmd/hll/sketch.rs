//! The HyperLogLog sketch behind PFADD/PFCOUNT/PFMERGE: 16384 six-bit registers packed in a
//! string value, a 64-bit MurmurHash2 (64A variant) of each element, and Ertl's improved
//! raw estimator, which is accurate over the whole range without bias-correction tables.
//!
//! Layout of the string: `HYLL`, an encoding byte, 11 reserved bytes, then the registers:
//! - dense (encoding 0): all registers, six bits each, least significant bits first (the
//!   size of Redis's dense encoding);
//! - sparse (encoding 1): only the non-zero registers, as (index u16 LE, value u8) triples
//!   in index order. Small sketches stay a few hundred bytes instead of 12 KB, as Redis's
//!   sparse form does (ours is simpler); past [`SPARSE_MAX`] registers a sketch turns dense.

use bytes::{BufMut, BytesMut};

/// Registers: 2^14.
const P: u32 = 14;
/// Number of registers.
pub const REGISTERS: usize = 1 << P;
const BITS: usize = 6;
const HEADER: usize = 16;
const MAGIC: &[u8; 4] = b"HYLL";
/// The whole value's size.
pub const SIZE: usize = HEADER + REGISTERS * BITS / 8;
/// Number of hash bits left for the run length once the register index is taken.
const Q: usize = 64 - P as usize;

/// One unpacked register per byte: the working form for merging and counting.
pub type Raw = [u8; REGISTERS];

const DENSE: u8 = 0;
const SPARSE: u8 = 1;
/// Most non-zero registers kept sparse (3 bytes each, about Redis's 3000-byte limit).
pub const SPARSE_MAX: usize = 1000;
/// The largest run length a register can record.
const MAX_RUN: u8 = Q as u8 + 1;

/// A header of the given encoding.
fn header(encoding: u8, capacity: usize) -> BytesMut {
    let mut b = BytesMut::with_capacity(capacity);
    b.put_slice(MAGIC);
    b.put_u8(encoding);
    b.put_bytes(0, HEADER - MAGIC.len() - 1);
    b
}

/// A new, empty sketch (sparse).
pub fn empty() -> BytesMut {
    header(SPARSE, HEADER)
}

/// True if `value` is a sketch this module wrote (or one shaped like it: every register
/// within range, so counting can trust it).
pub fn is_valid(value: &[u8]) -> bool {
    if value.len() < HEADER || !value.starts_with(MAGIC) {
        return false;
    }
    match value[4] {
        DENSE => value.len() == SIZE,
        SPARSE => {
            // Strictly ascending indices in range, runs in range, no more than we write:
            // what lookups and counting rely on.
            let body = &value[HEADER..];
            let mut prev = None;
            body.len().is_multiple_of(3)
                && body.len() / 3 <= SPARSE_MAX
                && sparse_entries(value).all(|(i, r)| {
                    let ok = i < REGISTERS && r <= MAX_RUN && prev.is_none_or(|p| p < i);
                    prev = Some(i);
                    ok
                })
        }
        _ => false,
    }
}

/// The non-zero registers of a sparse sketch.
fn sparse_entries(value: &[u8]) -> impl Iterator<Item = (usize, u8)> + '_ {
    value[HEADER..]
        .chunks_exact(3)
        .map(|t| (usize::from(u16::from_le_bytes([t[0], t[1]])), t[2]))
}

fn is_dense(value: &[u8]) -> bool {
    value[4] == DENSE
}

fn get(value: &[u8], i: usize) -> u8 {
    let bit = i * BITS;
    let (byte, shift) = (HEADER + bit / 8, bit % 8);
    let lo = u16::from(value[byte]);
    let hi = u16::from(value.get(byte + 1).copied().unwrap_or(0));
    (((lo | hi << 8) >> shift) & 0x3f) as u8
}

fn set(value: &mut [u8], i: usize, v: u8) {
    let bit = i * BITS;
    let (byte, shift) = (HEADER + bit / 8, bit % 8);
    let mask = 0x3fu16 << shift;
    let word = u16::from(value[byte]) | u16::from(value.get(byte + 1).copied().unwrap_or(0)) << 8;
    let word = (word & !mask) | (u16::from(v) << shift);
    value[byte] = word as u8;
    if let Some(next) = value.get_mut(byte + 1) {
        *next = (word >> 8) as u8;
    }
}

/// MurmurHash64A: fast, well mixed, and the hash the HyperLogLog literature assumes.
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let mut k = u64::from_le_bytes(word).wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element falls in and the run length it records there (1..=Q+1).
fn position(elem: &[u8]) -> (usize, u8) {
    let hash = murmur64a(elem, 0xadc8_3b19);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // A sentinel bit caps the run so an all-zero remainder still counts Q + 1.
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// Adds `elems` to the sketch; returns it (possibly re-encoded) and whether a register
/// grew (the estimate may have changed).
pub fn add_all<'a>(value: BytesMut, elems: impl Iterator<Item = &'a [u8]>) -> (BytesMut, bool) {
    let mut changed = false;
    if is_dense(&value) {
        let mut value = value;
        for e in elems {
            changed |= add_dense(&mut value, position(e));
        }
        return (value, changed);
    }
    let mut regs: Vec<(usize, u8)> = sparse_entries(&value).collect();
    let mut elems = elems;
    for e in elems.by_ref() {
        let (i, run) = position(e);
        match regs.binary_search_by_key(&i, |&(j, _)| j) {
            Ok(k) if regs[k].1 >= run => {}
            Ok(k) => {
                regs[k].1 = run;
                changed = true;
            }
            Err(k) => {
                regs.insert(k, (i, run));
                changed = true;
                if regs.len() > SPARSE_MAX {
                    break;
                }
            }
        }
    }
    if regs.len() <= SPARSE_MAX {
        return (encode_sparse(&regs), changed);
    }
    // Too many registers for the sparse form: go dense and add the rest there.
    let mut dense = header(DENSE, SIZE);
    dense.put_bytes(0, SIZE - HEADER);
    for (i, r) in regs {
        set(&mut dense, i, r);
    }
    for e in elems {
        add_dense(&mut dense, position(e));
    }
    (dense, true)
}

fn add_dense(value: &mut [u8], (i, run): (usize, u8)) -> bool {
    if get(value, i) < run {
        set(value, i, run);
        true
    } else {
        false
    }
}

fn encode_sparse(regs: &[(usize, u8)]) -> BytesMut {
    let mut b = header(SPARSE, HEADER + 3 * regs.len());
    for &(i, r) in regs {
        b.put_u16_le(i as u16);
        b.put_u8(r);
    }
    b
}

/// Folds `value`'s registers into `raw` (register-wise maximum).
pub fn merge_into(raw: &mut Raw, value: &[u8]) {
    if is_dense(value) {
        for (i, r) in raw.iter_mut().enumerate() {
            *r = (*r).max(get(value, i));
        }
    } else {
        for (i, v) in sparse_entries(value) {
            raw[i] = raw[i].max(v);
        }
    }
}

/// A sketch holding `raw`'s registers, in the smaller encoding that fits.
pub fn from_raw(raw: &Raw) -> BytesMut {
    let regs: Vec<(usize, u8)> = raw
        .iter()
        .enumerate()
        .filter(|(_, &r)| r > 0)
        .map(|(i, &r)| (i, r))
        .collect();
    if regs.len() <= SPARSE_MAX {
        return encode_sparse(&regs);
    }
    let mut dense = header(DENSE, SIZE);
    dense.put_bytes(0, SIZE - HEADER);
    for (i, r) in regs {
        set(&mut dense, i, r);
    }
    dense
}

/// The cardinality estimate of one sketch.
pub fn count(value: &[u8]) -> u64 {
    let mut hist = [0u32; Q + 2];
    if is_dense(value) {
        for i in 0..REGISTERS {
            hist[usize::from(get(value, i).min(MAX_RUN))] += 1;
        }
    } else {
        let mut nonzero = 0;
        for (_, v) in sparse_entries(value) {
            hist[usize::from(v.min(MAX_RUN))] += 1;
            nonzero += 1;
        }
        hist[0] += (REGISTERS - nonzero) as u32;
    }
    estimate(&hist)
}

/// The cardinality estimate of unpacked registers.
pub fn count_raw(raw: &Raw) -> u64 {
    let mut hist = [0u32; Q + 2];
    for &r in raw.iter() {
        hist[usize::from(r).min(Q + 1)] += 1;
    }
    estimate(&hist)
}

/// Ertl's estimator ("New cardinality estimation algorithms for HyperLogLog sketches",
/// 2017) from the histogram of register values.
fn estimate(hist: &[u32; Q + 2]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - f64::from(hist[Q + 1])) / m);
    for k in (1..=Q).rev() {
        z += f64::from(hist[k]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(hist[0]) / m);
    let alpha_inf = 0.5 / std::f64::consts::LN_2;
    (alpha_inf * m * m / z).round() as u64
}

/// σ(x) = x + Σ_{k≥1} x^(2^k) 2^(k-1), for the share of empty registers.
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let prev = z;
        z += x * y;
        y += y;
        if z == prev {
            return z;
        }
    }
}

/// τ(x) = (1 − x − Σ_{k≥1} (1 − x^(2^−k))² 2^−k) / 3, for the share of saturated registers.
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let prev = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if z == prev {
            return z / 3.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense() -> BytesMut {
        let mut v = header(DENSE, SIZE);
        v.put_bytes(0, SIZE - HEADER);
        v
    }

    #[test]
    fn registers_pack_six_bits() {
        let mut v = dense();
        for i in [0, 1, 2, 3, 4, 5, 1000, REGISTERS - 2, REGISTERS - 1] {
            set(&mut v, i, (i % 63) as u8 + 1);
        }
        for i in [0, 1, 2, 3, 4, 5, 1000, REGISTERS - 2, REGISTERS - 1] {
            assert_eq!(get(&v, i), (i % 63) as u8 + 1, "register {i}");
        }
        assert_eq!(get(&v, 6), 0);
        assert_eq!(v.len(), SIZE);
        assert!(is_valid(&v));
    }

    #[test]
    fn murmur_is_stable_and_mixes() {
        assert_eq!(murmur64a(b"", 0), 0);
        assert_ne!(murmur64a(b"a", 1), murmur64a(b"b", 1));
        assert_ne!(murmur64a(b"abcdefgh1", 1), murmur64a(b"abcdefgh2", 1));
    }

    #[test]
    fn estimates_within_two_percent() {
        let mut v = empty();
        assert_eq!(count(&v), 0);
        let mut checked = 0;
        for n in 1..=200_000u64 {
            let e = format!("element:{n}");
            v = add_all(v, std::iter::once(e.as_bytes())).0;
            assert!(is_valid(&v));
            if n == 500 {
                assert_eq!(v[4], SPARSE, "small sketches stay sparse");
            }
            if matches!(n, 10 | 100 | 1000 | 10_000 | 100_000 | 200_000) {
                let est = count(&v) as f64;
                let err = (est - n as f64).abs() / n as f64;
                assert!(err < 0.02, "n={n} estimate={est}");
                checked += 1;
            }
        }
        assert_eq!(checked, 6);
        assert_eq!(v[4], DENSE);
        let mut raw = [0u8; REGISTERS];
        merge_into(&mut raw, &v);
        assert_eq!(count_raw(&raw), count(&v));
        assert_eq!(&from_raw(&raw)[..], &v[..]);
    }

    #[test]
    fn sparse_and_dense_agree() {
        let elems: Vec<String> = (0..3000).map(|i| format!("x{i}")).collect();
        let (mut sparse, mut dense_v) = (empty(), dense());
        for (n, e) in elems.iter().enumerate() {
            let (s2, c1) = add_all(sparse, std::iter::once(e.as_bytes()));
            let (d2, c2) = add_all(dense_v, std::iter::once(e.as_bytes()));
            assert_eq!(c1, c2, "element {n}");
            assert_eq!(count(&s2), count(&d2), "element {n}");
            (sparse, dense_v) = (s2, d2);
        }
        let (again, changed) = add_all(sparse, elems.iter().map(|e| e.as_bytes()));
        assert!(!changed);
        let mut raw = [0u8; REGISTERS];
        merge_into(&mut raw, &again);
        let small = from_raw(&{
            let mut r = [0u8; REGISTERS];
            r[5] = 3;
            r
        });
        assert_eq!(small[4], SPARSE);
        assert_eq!(count_raw(&raw), count(&again));
    }

    #[test]
    fn crafted_values_are_refused_or_safe() {
        let mut bad = empty();
        bad.put_slice(&[0xff, 0xff, 1]);
        assert!(!is_valid(&bad), "index out of range");
        let mut bad = empty();
        bad.put_slice(&[1, 0, 60]);
        assert!(!is_valid(&bad), "run too long");
        let mut bad = empty();
        bad.put_slice(&[2, 0, 1, 1, 0, 1]);
        assert!(!is_valid(&bad), "out of order");
        let mut crafted = dense();
        crafted[HEADER..].fill(0xff);
        assert!(is_valid(&crafted));
        let _ = count(&crafted);
    }
}
