//! The HyperLogLog sketch behind PFADD/PFCOUNT/PFMERGE: 16384 six-bit registers packed in a
//! string value, a 64-bit MurmurHash2 (64A variant) of each element, and Ertl's improved
//! raw estimator, which is accurate over the whole range without bias-correction tables.
//!
//! Layout of the string: `HYLL`, an encoding byte (0 = dense), 11 reserved bytes, then the
//! registers, six bits each, least significant bits first. Same size as Redis's dense
//! encoding; unlike Redis there is no sparse form, so a new key always costs the full 12 KB.

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

/// A new, empty sketch.
pub fn empty() -> BytesMut {
    let mut b = BytesMut::with_capacity(SIZE);
    b.put_slice(MAGIC);
    b.put_bytes(0, SIZE - MAGIC.len());
    b
}

/// True if `value` is a sketch this module wrote.
pub fn is_valid(value: &[u8]) -> bool {
    value.len() == SIZE && value.starts_with(MAGIC) && value[4] == 0
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

/// Adds `elem`; true if a register grew (the estimate may have changed).
pub fn add(value: &mut [u8], elem: &[u8]) -> bool {
    let (i, run) = position(elem);
    if get(value, i) < run {
        set(value, i, run);
        true
    } else {
        false
    }
}

/// Folds `value`'s registers into `raw` (register-wise maximum).
pub fn merge_into(raw: &mut Raw, value: &[u8]) {
    for (i, r) in raw.iter_mut().enumerate() {
        *r = (*r).max(get(value, i));
    }
}

/// Writes `raw` into `value`'s registers.
pub fn store(value: &mut [u8], raw: &Raw) {
    for (i, &r) in raw.iter().enumerate() {
        set(value, i, r);
    }
}

/// The cardinality estimate of one sketch.
pub fn count(value: &[u8]) -> u64 {
    let mut hist = [0u32; Q + 2];
    for i in 0..REGISTERS {
        hist[usize::from(get(value, i))] += 1;
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

    #[test]
    fn registers_pack_six_bits() {
        let mut v = empty();
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
            add(&mut v, format!("element:{n}").as_bytes());
            if matches!(n, 10 | 100 | 1000 | 10_000 | 100_000 | 200_000) {
                let est = count(&v) as f64;
                let err = (est - n as f64).abs() / n as f64;
                assert!(err < 0.02, "n={n} estimate={est}");
                checked += 1;
            }
        }
        assert_eq!(checked, 6);
        let mut raw = [0u8; REGISTERS];
        merge_into(&mut raw, &v);
        assert_eq!(count_raw(&raw), count(&v));
    }
}
