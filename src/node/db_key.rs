//! A key as the key table stores it. Keys of up to [`INLINE`] bytes (nearly every key an
//! application uses: `user:1234`, `session:…`, redis-benchmark's `key:000000012345`) sit in
//! the table's own entry, so a lookup compares them without following a pointer, and storing
//! or dropping one calls no allocator. Under load the key table is the node's hottest memory:
//! with a separate allocation per key, each lookup paid one more cache miss to read the key's
//! bytes and each delete one more to free them.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

/// The longest key kept inline.
pub(crate) const INLINE: usize = 22;

/// A key's bytes: inline up to [`INLINE`] bytes, else on the heap. 24 bytes either way.
#[derive(Clone)]
pub(crate) enum Key {
    /// `len` bytes of `bytes`.
    Inline { len: u8, bytes: [u8; INLINE] },
    /// A longer key.
    Heap(Box<[u8]>),
}

impl Key {
    /// The key's bytes.
    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Heap(b) => b,
        }
    }
}

impl From<&[u8]> for Key {
    #[inline]
    fn from(key: &[u8]) -> Key {
        if key.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..key.len()].copy_from_slice(key);
            // Fits: INLINE < 256.
            Key::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            Key::Heap(key.into())
        }
    }
}

impl Borrow<[u8]> for Key {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

// Hashes exactly as `[u8]` does, as `Borrow` requires: lookups pass a `&[u8]`.
impl Hash for Key {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl PartialEq for Key {
    #[inline]
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", bytes::Bytes::copy_from_slice(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn hash_of<T: Hash + ?Sized>(v: &T) -> u64 {
        let mut h = DefaultHasher::new();
        v.hash(&mut h);
        h.finish()
    }

    #[test]
    fn inline_and_heap_keys_keep_their_bytes_and_hash_as_slices() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        for len in [0, 1, INLINE - 1, INLINE, INLINE + 1, 300] {
            let raw: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
            let key = Key::from(&raw[..]);
            assert_eq!(key.as_bytes(), &raw[..]);
            assert_eq!(matches!(key, Key::Inline { .. }), len <= INLINE);
            assert_eq!(hash_of(&key), hash_of(&raw[..]));
            assert_eq!(key.clone(), key);
        }
        assert_ne!(Key::from(&b"a"[..]), Key::from(&b"a\0"[..]));
    }
}
