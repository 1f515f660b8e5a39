//! One database: keys, values, access clocks and expiry times. Raw access only; expiry-aware,
//! typed access goes through [`super::cmd::Ctx`], which knows the time and whether this node
//! may delete.

use indexmap::map::Entry as MapEntry;
use indexmap::IndexMap;

use super::access::Touch;
use super::db_key::Key;
use super::value::Value;

/// The databases a node has (SELECT 0..15), as Redis's default `databases 16`.
pub const DATABASES: usize = 16;

/// One database. Both maps are `IndexMap`s: position access lets RANDOMKEY and active expiry
/// sample in O(1), and SCAN walk by position (see [`Db::key_at`]). Keys are [`Key`]s: short
/// ones inline in the entry.
#[derive(Debug, Default)]
pub struct Db {
    keys: IndexMap<Key, Entry>,
    /// Unix time in ms at which each volatile key expires. Holds only existing keys.
    expires: IndexMap<Key, i64>,
}

/// A value and its access clock (see [`super::access`]). The clock sits next to the value
/// rather than in a map of its own so that recording an access costs no second lookup.
#[derive(Debug)]
struct Entry {
    value: Value,
    clock: u32,
}

impl Db {
    /// Number of keys (expired-but-not-yet-deleted ones included, as DBSIZE counts them).
    pub fn len(&self) -> usize {
        self.keys.len()
    }
    /// True with no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    /// Number of keys with an expiry (INFO keyspace `expires=`).
    pub fn volatile_len(&self) -> usize {
        self.expires.len()
    }
    /// The value of `key`, ignoring expiry, without recording an access.
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        self.keys.get(key).map(|e| &e.value)
    }
    /// The value of `key`, mutably, ignoring expiry, without recording an access.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Value> {
        self.keys.get_mut(key).map(|e| &mut e.value)
    }
    /// The value of `key`, mutably, recording the access `touch` in its clock (what Redis's
    /// `lookupKey` does for every command except TYPE, TTL, EXISTS and OBJECT).
    pub(crate) fn get_touched(&mut self, key: &[u8], touch: &Touch) -> Option<&mut Value> {
        let e = self.keys.get_mut(key)?;
        e.clock = touch.touched(e.clock);
        Some(&mut e.value)
    }
    /// The access clock of `key` (its raw 24-bit stamp).
    pub(crate) fn clock(&self, key: &[u8]) -> Option<u32> {
        self.keys.get(key).map(|e| e.clock)
    }
    /// Sets `key`'s access clock (RESTORE IDLETIME/FREQ, RENAME and MOVE keeping it).
    pub(crate) fn set_clock(&mut self, key: &[u8], clock: u32) {
        if let Some(e) = self.keys.get_mut(key) {
            e.clock = clock;
        }
    }
    /// True if the key exists (ignoring expiry).
    pub fn contains(&self, key: &[u8]) -> bool {
        self.keys.contains_key(key)
    }
    /// Stores `value` under `key`. The expiry is dropped unless `keep_ttl` (SET clears a TTL,
    /// SET KEEPTTL keeps it). Returns the value that was there.
    /// A new key's clock reads as accessed at time 0 (untouched since 1970): callers that
    /// know the time use [`Db::insert_touched`].
    pub fn insert(&mut self, key: &[u8], value: Value, keep_ttl: bool) -> Option<Value> {
        if !keep_ttl {
            self.expires.swap_remove(key);
        }
        self.keys
            .insert(Key::from(key), Entry { value, clock: 0 })
            .map(|e| e.value)
    }
    /// [`Db::insert`] as a write command does it (Redis's `setKey`): a new key gets a fresh
    /// clock, an existing key's clock records the access (under LFU the counter carries over
    /// to the new value, as Redis's `dbSetValue` keeps it).
    pub(crate) fn insert_touched(
        &mut self,
        key: &[u8],
        value: Value,
        keep_ttl: bool,
        touch: &Touch,
    ) -> Option<Value> {
        if !keep_ttl {
            self.expires.swap_remove(key);
        }
        match self.keys.entry(Key::from(key)) {
            MapEntry::Occupied(mut e) => {
                let e = e.get_mut();
                e.clock = touch.touched(e.clock);
                Some(std::mem::replace(&mut e.value, value))
            }
            MapEntry::Vacant(e) => {
                e.insert(Entry {
                    value,
                    clock: touch.fresh(),
                });
                None
            }
        }
    }
    /// [`Db::insert_touched`] of an existing key, given as a slice: the key is not copied.
    /// `Err(value)` hands the value back when `key` does not exist.
    pub(crate) fn replace_touched(
        &mut self,
        key: &[u8],
        value: Value,
        keep_ttl: bool,
        touch: &Touch,
    ) -> Result<Value, Value> {
        let Some(e) = self.keys.get_mut(key) else {
            return Err(value);
        };
        e.clock = touch.touched(e.clock);
        let old = std::mem::replace(&mut e.value, value);
        if !keep_ttl {
            self.expires.swap_remove(key);
        }
        Ok(old)
    }
    /// Deletes `key` and its expiry; returns the value.
    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        let v = self.keys.swap_remove(key)?;
        self.expires.swap_remove(key);
        Some(v.value)
    }
    /// The expiry time of `key` (unix ms), if it has one.
    pub fn expire_at(&self, key: &[u8]) -> Option<i64> {
        self.expires.get(key).copied()
    }
    /// Sets `key`'s expiry time (the key must exist; returns false otherwise).
    pub fn set_expire(&mut self, key: &[u8], at_ms: i64) -> bool {
        if let Some(t) = self.expires.get_mut(key) {
            *t = at_ms;
            return true;
        }
        match self.keys.get_key_value(key) {
            Some((k, _)) => {
                self.expires.insert(k.clone(), at_ms);
                true
            }
            None => false,
        }
    }
    /// Removes `key`'s expiry; returns true if it had one.
    pub fn persist(&mut self, key: &[u8]) -> bool {
        self.expires.swap_remove(key).is_some()
    }
    /// The key at position `i` (RANDOMKEY, SCAN). Positions are dense (0..len) but not
    /// stable: deleting a key moves the last key into its slot.
    pub fn key_at(&self, i: usize) -> Option<(&[u8], &Value)> {
        self.keys
            .get_index(i)
            .map(|(k, e)| (k.as_bytes(), &e.value))
    }
    /// The volatile key at position `i` of the expiry index, with its expiry (sampling).
    pub fn volatile_at(&self, i: usize) -> Option<(&[u8], i64)> {
        self.expires.get_index(i).map(|(k, &t)| (k.as_bytes(), t))
    }
    /// All keys with their values, in position order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Value)> {
        self.keys.iter().map(|(k, e)| (k.as_bytes(), &e.value))
    }
    /// Removes every key.
    pub fn clear(&mut self) {
        self.keys.clear();
        self.expires.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_drops_ttl_unless_kept() {
        let mut db = Db::default();
        let k: &[u8] = b"k";
        db.insert(k, Value::Str(bytes::Bytes::from_static(b"v")), false);
        assert!(db.set_expire(b"k", 10));
        assert!(!db.set_expire(b"other", 10));
        db.insert(k, Value::Str(bytes::Bytes::new()), true);
        assert_eq!(db.expire_at(b"k"), Some(10));
        db.insert(k, Value::Str(bytes::Bytes::new()), false);
        assert_eq!(db.expire_at(b"k"), None);
        assert!(db.set_expire(b"k", 10));
        assert_eq!(db.volatile_len(), 1);
        assert!(db.remove(b"k").is_some());
        assert_eq!(db.volatile_len(), 0);
        assert!(db.is_empty());
    }
}
