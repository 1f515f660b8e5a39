//! The HyperLogLog sketch behind PFADD/PFCOUNT/PFMERGE, in Redis's own representation
//! (`hyperloglog.c`), so sketches read back byte for byte through GET and move between the
//! node and redis-server (DUMP/RESTORE, replication of SET): 16384 six-bit registers, a
//! 64-bit MurmurHash2 (64A variant) of each element, and Ertl's improved raw estimator.
//!
//! A 16-byte header: `HYLL`, the encoding (0 dense, 1 sparse), 3 unused bytes, and the
//! cached cardinality (8 bytes little-endian; the top bit of the last byte set = stale).
//! - dense: all registers, six bits each, least significant bits first;
//! - sparse: opcodes covering the 16384 registers in order: `00xxxxxx` a run of 1-64
//!   empty registers, `01xxxxxx yyyyyyyy` a run of 1-16384 empty ones, `1vvvvvxx` a run of
//!   1-4 registers holding `v + 1` (1-32). A register above 32, or a sparse form longer
//!   than `hll-sparse-max-bytes`, turns the sketch dense.
//!
//! Sparse opcodes are only checked when read: a sketch whose runs do not add up to 16384
//! registers is reported corrupt ([`Corrupt`], Redis's `INVALIDOBJ`), never trusted. Unlike
//! Redis, which edits the opcodes in place, PFADD re-encodes the sketch from its registers,
//! so it refuses a corrupt sketch as a whole where Redis may still update a register that
//! lies before the damage. The bytes written are Redis's otherwise (Redis merges adjacent
//! runs only near its edit; a canonical encoding can differ in those spots, and either
//! form reads the same on both servers).

use bytes::{BufMut, BytesMut};

/// Registers: 2^14.
const P: u32 = 14;
/// Number of registers.
pub const REGISTERS: usize = 1 << P;
const BITS: usize = 6;
const HEADER: usize = 16;
const MAGIC: &[u8; 4] = b"HYLL";
/// The dense value's size.
pub const SIZE: usize = HEADER + REGISTERS * BITS / 8;
/// Number of hash bits left for the run length once the register index is taken.
const Q: usize = 64 - P as usize;

/// One unpacked register per byte: the working form for merging and counting.
pub type Raw = [u8; REGISTERS];
/// How many registers hold each value (dense registers can hold up to 63).
type Histogram = [u32; 64];

const DENSE: u8 = 0;
const SPARSE: u8 = 1;
/// The largest value a sparse VAL opcode holds.
const SPARSE_VAL_MAX: u8 = 32;
/// The longest run of one ZERO opcode, and of one XZERO opcode.
const ZERO_MAX: usize = 64;
const XZERO_MAX: usize = REGISTERS;
/// Byte 15's top bit: the cached cardinality is stale.
const STALE: u8 = 0x80;

/// A sparse sketch whose opcodes do not describe exactly 16384 registers.
#[derive(Debug, PartialEq)]
pub struct Corrupt;

/// A header of the given encoding, cached cardinality 0 and valid.
fn header(encoding: u8, capacity: usize) -> BytesMut {
    let mut b = BytesMut::with_capacity(capacity);
    b.put_slice(MAGIC);
    b.put_u8(encoding);
    b.put_bytes(0, HEADER - MAGIC.len() - 1);
    b
}

/// A new, empty sketch: sparse, one XZERO run over every register (Redis's
/// `createHLLObject`), cached cardinality 0.
pub fn empty() -> BytesMut {
    let mut b = header(SPARSE, HEADER + 2);
    put_zeros(&mut b, REGISTERS);
    b
}

/// Redis's `isHLLObjectOrReply`: the magic, a known encoding, and the exact size if dense.
/// A sparse body is checked when it is read.
pub fn is_valid(value: &[u8]) -> bool {
    if value.len() < HEADER || !value.starts_with(MAGIC) {
        return false;
    }
    match value[4] {
        DENSE => value.len() == SIZE,
        SPARSE => true,
        _ => false,
    }
}

/// True for the dense encoding.
pub fn is_dense(value: &[u8]) -> bool {
    value[4] == DENSE
}

/// The cached cardinality, unless stale.
pub fn cached(value: &[u8]) -> Option<u64> {
    let mut card = [0u8; 8];
    card.copy_from_slice(&value[8..16]);
    (card[7] & STALE == 0).then(|| u64::from_le_bytes(card))
}

/// Stores `card` as the cached cardinality (valid).
pub fn set_cached(value: &mut [u8], card: u64) {
    value[8..16].copy_from_slice(&card.to_le_bytes());
}

/// Marks the cached cardinality stale (Redis's `HLL_INVALIDATE_CACHE`).
fn invalidate(value: &mut [u8]) {
    value[15] |= STALE;
}

/// Calls `f(index, value)` for every non-empty register of a sparse sketch.
fn sparse_registers(value: &[u8], mut f: impl FnMut(usize, u8)) -> Result<(), Corrupt> {
    let (mut idx, mut p) = (0usize, HEADER);
    while p < value.len() {
        let op = value[p];
        match op >> 6 {
            0 => {
                idx += usize::from(op & 0x3f) + 1;
                p += 1;
            }
            1 => {
                let low = *value.get(p + 1).ok_or(Corrupt)?;
                idx += (usize::from(op & 0x3f) << 8 | usize::from(low)) + 1;
                p += 2;
            }
            _ => {
                let v = ((op >> 2) & 0x1f) + 1;
                let len = usize::from(op & 0x03) + 1;
                if idx + len > REGISTERS {
                    return Err(Corrupt);
                }
                (idx..idx + len).for_each(|i| f(i, v));
                idx += len;
                p += 1;
            }
        }
        if idx > REGISTERS {
            return Err(Corrupt);
        }
    }
    if idx == REGISTERS {
        Ok(())
    } else {
        Err(Corrupt)
    }
}

/// Appends ZERO/XZERO opcodes for a run of `n` empty registers.
fn put_zeros(b: &mut BytesMut, mut n: usize) {
    while n > 0 {
        if n > ZERO_MAX {
            let len = n.min(XZERO_MAX);
            let v = len - 1;
            b.put_u8(0x40 | (v >> 8) as u8);
            b.put_u8(v as u8);
            n -= len;
        } else {
            b.put_u8((n - 1) as u8);
            n = 0;
        }
    }
}

/// The sparse form of the non-empty registers `regs` (ascending indices; cache stale), or
/// `None` if a register is above 32 or the form is longer than `max_bytes`.
fn encode_sparse(regs: &[(usize, u8)], max_bytes: usize) -> Option<BytesMut> {
    let mut b = header(SPARSE, HEADER + 3 * regs.len() + 4);
    let mut next = 0; // the first register not encoded yet
    let mut k = 0;
    while k < regs.len() {
        let (i, v) = regs[k];
        if v > SPARSE_VAL_MAX {
            return None;
        }
        put_zeros(&mut b, i - next);
        // A run of consecutive registers holding the same value, in VALs of up to 4.
        let run = regs[k..]
            .iter()
            .enumerate()
            .take_while(|(n, &(j, w))| j == i + n && w == v)
            .count();
        let mut left = run;
        while left > 0 {
            let len = left.min(4);
            b.put_u8(0x80 | (v - 1) << 2 | (len - 1) as u8);
            left -= len;
        }
        next = i + run;
        k += run;
        if b.len() > max_bytes {
            return None;
        }
    }
    put_zeros(&mut b, REGISTERS - next);
    if b.len() > max_bytes {
        return None;
    }
    invalidate(&mut b);
    Some(b)
}

/// The non-empty registers of `raw`, ascending.
fn nonzero(raw: &Raw) -> Vec<(usize, u8)> {
    raw.iter()
        .enumerate()
        .filter(|(_, &r)| r > 0)
        .map(|(i, &r)| (i, r))
        .collect()
}

/// The dense form of non-empty registers (cache stale).
fn encode_dense_regs(regs: &[(usize, u8)]) -> BytesMut {
    let mut dense = header(DENSE, SIZE);
    dense.put_bytes(0, SIZE - HEADER);
    for &(i, r) in regs {
        set(&mut dense, i, r);
    }
    invalidate(&mut dense);
    dense
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

/// Calls `f(index, value)` for every register of a dense sketch, four registers (three
/// bytes) at a time: the loop PFCOUNT and PFMERGE spend their time in.
fn dense_registers(value: &[u8], mut f: impl FnMut(usize, u8)) {
    for (n, c) in value[HEADER..SIZE].chunks_exact(3).enumerate() {
        let i = n * 4;
        f(i, c[0] & 0x3f);
        f(i + 1, (c[0] >> 6 | c[1] << 2) & 0x3f);
        f(i + 2, (c[1] >> 4 | c[2] << 4) & 0x3f);
        f(i + 3, c[2] >> 2);
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

/// Adds `elems` to the sketch (possibly re-encoding it) and says whether a register grew,
/// in which case the cached cardinality is marked stale; a corrupt sketch is left as it is. A sparse sketch longer
/// than `sparse_max` bytes turns dense, as Redis's `hll-sparse-max-bytes` says.
pub fn add_all<'a>(
    value: &mut BytesMut,
    elems: impl Iterator<Item = &'a [u8]>,
    sparse_max: usize,
) -> Result<bool, Corrupt> {
    let mut changed = false;
    if is_dense(value) {
        for e in elems {
            let (i, run) = position(e);
            if get(value, i) < run {
                set(value, i, run);
                changed = true;
            }
        }
        if changed {
            invalidate(value);
        }
        return Ok(changed);
    }
    // The non-empty registers only (a sparse sketch has few), not all 16384, merged with
    // the elements' registers sorted: no per-element insertion into the middle.
    let mut regs = Vec::new();
    sparse_registers(value, |i, v| regs.push((i, v)))?;
    let mut adds: Vec<(usize, u8)> = elems.map(position).collect();
    adds.sort_unstable();
    let mut merged: Vec<(usize, u8)> = Vec::with_capacity(regs.len() + adds.len());
    let (mut a, mut b) = (regs.iter().peekable(), adds.iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(&&x), Some(&&y)) if x.0 <= y.0 => {
                a.next();
                x
            }
            (_, Some(&&y)) => {
                b.next();
                changed |= merged.last().is_none_or(|&(j, w)| j != y.0 || w < y.1);
                y
            }
            (Some(&&x), None) => {
                a.next();
                x
            }
            (None, None) => break,
        };
        match merged.last_mut() {
            Some((j, w)) if *j == next.0 => *w = (*w).max(next.1),
            _ => merged.push(next),
        }
    }
    let regs = merged;
    if changed {
        let mut out = encode_sparse(&regs, sparse_max).unwrap_or_else(|| encode_dense_regs(&regs));
        keep_cache(&mut out, value);
        *value = out;
    }
    Ok(changed)
}

/// Folds `value`'s registers into `raw` (register-wise maximum).
pub fn merge_into(raw: &mut Raw, value: &[u8]) -> Result<(), Corrupt> {
    if is_dense(value) {
        dense_registers(value, |i, v| raw[i] = raw[i].max(v));
        Ok(())
    } else {
        sparse_registers(value, |i, v| raw[i] = raw[i].max(v))
    }
}

/// A sketch holding `raw`'s registers (cache stale): dense if asked, or if the sparse form
/// does not fit. It keeps the stale cached cardinality of `old`, the sketch it replaces,
/// as Redis changes a sketch in place.
pub fn from_raw(raw: &Raw, dense: bool, sparse_max: usize, old: Option<&[u8]>) -> BytesMut {
    let regs = nonzero(raw);
    let mut out = if dense {
        encode_dense_regs(&regs)
    } else {
        encode_sparse(&regs, sparse_max).unwrap_or_else(|| encode_dense_regs(&regs))
    };
    if let Some(old) = old {
        keep_cache(&mut out, old);
    }
    out
}

/// Copies `old`'s cached cardinality into the re-encoded `new`, marked stale.
fn keep_cache(new: &mut [u8], old: &[u8]) {
    new[8..16].copy_from_slice(&old[8..16]);
    invalidate(new);
}

/// The cardinality estimate of one sketch, computed (the cache is not consulted).
pub fn count(value: &[u8]) -> Result<u64, Corrupt> {
    let mut hist: Histogram = [0; 64];
    if is_dense(value) {
        dense_registers(value, |_, v| hist[usize::from(v)] += 1);
    } else {
        let mut nonzero = 0;
        sparse_registers(value, |_, v| {
            hist[usize::from(v)] += 1;
            nonzero += 1;
        })?;
        hist[0] += (REGISTERS - nonzero) as u32;
    }
    Ok(estimate(&hist))
}

/// The cardinality estimate of unpacked registers.
pub fn count_raw(raw: &Raw) -> u64 {
    let mut hist: Histogram = [0; 64];
    for &r in raw.iter() {
        hist[usize::from(r & 0x3f)] += 1;
    }
    estimate(&hist)
}

/// Ertl's estimator ("New cardinality estimation algorithms for HyperLogLog sketches",
/// 2017) from the histogram of register values.
fn estimate(hist: &Histogram) -> u64 {
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

    const MAX: usize = 3000;

    fn add(mut v: BytesMut, e: &str) -> (BytesMut, bool) {
        let changed = add_all(&mut v, std::iter::once(e.as_bytes()), MAX).expect("valid sketch");
        (v, changed)
    }

    #[test]
    fn registers_pack_six_bits() {
        let mut v = encode_dense_regs(&[]);
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
    fn dense_registers_read_what_set_wrote() {
        let mut v = encode_dense_regs(&[]);
        for i in 0..REGISTERS {
            set(&mut v, i, ((i * 7) % 64) as u8);
        }
        let mut seen = 0;
        dense_registers(&v, |i, r| {
            assert_eq!(r, get(&v, i), "register {i}");
            seen += 1;
        });
        assert_eq!(seen, REGISTERS);
    }

    #[test]
    fn the_empty_sketch_is_redis_s() {
        // What redis-server 7.0 stores for `PFADD k` (GET k).
        let e = empty();
        assert_eq!(&e[..], b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff");
        assert_eq!(count(&e), Ok(0));
        assert_eq!(cached(&e), Some(0));
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
        let mut checked = 0;
        for n in 1..=200_000u64 {
            v = add(v, &format!("element:{n}")).0;
            if n == 500 {
                assert_eq!(v[4], SPARSE, "small sketches stay sparse");
            }
            if matches!(n, 10 | 100 | 1000 | 10_000 | 100_000 | 200_000) {
                let est = count(&v).expect("valid") as f64;
                let err = (est - n as f64).abs() / n as f64;
                assert!(err < 0.02, "n={n} estimate={est}");
                checked += 1;
            }
        }
        assert_eq!(checked, 6);
        assert_eq!(v[4], DENSE);
        let mut raw = [0u8; REGISTERS];
        merge_into(&mut raw, &v).expect("valid");
        assert_eq!(Ok(count_raw(&raw)), count(&v));
        assert_eq!(&from_raw(&raw, true, MAX, Some(&v))[..], &v[..]);
    }

    #[test]
    fn sparse_and_dense_agree() {
        let elems: Vec<String> = (0..3000).map(|i| format!("x{i}")).collect();
        let (mut sparse, mut dense_v) = (empty(), encode_dense_regs(&[]));
        for (n, e) in elems.iter().enumerate() {
            let (s2, c1) = add(sparse, e);
            let (d2, c2) = add(dense_v, e);
            assert_eq!(c1, c2, "element {n}");
            assert_eq!(count(&s2), count(&d2), "element {n}");
            (sparse, dense_v) = (s2, d2);
        }
        let mut again = sparse;
        let changed = add_all(&mut again, elems.iter().map(|e| e.as_bytes()), MAX).expect("valid");
        assert!(!changed);
        let mut raw = [0u8; REGISTERS];
        merge_into(&mut raw, &again).expect("valid");
        assert_eq!(Ok(count_raw(&raw)), count(&again));
    }

    #[test]
    fn the_cache_goes_stale_only_when_a_register_grows() {
        let (mut v, changed) = add(empty(), "a");
        assert!(changed && cached(&v).is_none());
        set_cached(&mut v, 1);
        assert_eq!(cached(&v), Some(1));
        let (v, changed) = add(v, "a");
        assert!(!changed);
        assert_eq!(cached(&v), Some(1));
    }

    #[test]
    fn corrupt_sparse_sketches_are_reported() {
        let (v, _) = add(empty(), "a");
        let mut tail = v.clone();
        tail.put_slice(b"hello");
        assert_eq!(count(&tail), Err(Corrupt));
        let mut short = empty();
        short.truncate(HEADER + 1);
        assert_eq!(count(&short), Err(Corrupt));
        let mut raw = [0u8; REGISTERS];
        assert_eq!(merge_into(&mut raw, &tail), Err(Corrupt));
        let before = tail.clone();
        assert!(add_all(&mut tail, std::iter::once(&b"x"[..]), MAX).is_err());
        assert_eq!(tail, before);
        // Every single-byte change of a small sketch is either still valid or reported.
        for i in HEADER..v.len() {
            for b in [0x00, 0x3f, 0x40, 0x7f, 0x80, 0xff] {
                let mut w = v.clone();
                w[i] = b;
                let _ = count(&w);
            }
        }
        let mut crafted = encode_dense_regs(&[]);
        crafted[HEADER..].fill(0xff);
        assert!(is_valid(&crafted));
        assert!(count(&crafted).is_ok());
    }
}
