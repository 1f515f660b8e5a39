//! WATCHed keys: which clients watch which (db, key), and which of them saw a change.
//!
//! Every write calls [`Watches::touch`] through `Ctx::modified` (and expiry deletions,
//! FLUSHDB, FLUSHALL and SWAPDB touch too), all under the store lock, so a change can never
//! slip between a client's WATCH and its EXEC. With nobody watching, a touch is one branch.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

/// The watch registry.
#[derive(Debug, Default)]
pub struct Watches {
    /// Watchers per key, each with "the key was already expired when watched".
    by_key: HashMap<(usize, Bytes), Vec<(u64, bool)>>,
    dirty: HashSet<u64>,
}

impl Watches {
    /// True when nobody watches anything (the common case: touching is then skipped).
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
    /// Client `id` watches `key` in `db`; `expired`: the key had already expired (but was
    /// not deleted yet), so its deletion by expiry will not count as a change.
    pub fn watch(&mut self, id: u64, db: usize, key: Bytes, expired: bool) {
        let list = self.by_key.entry((db, key)).or_default();
        if !list.iter().any(|(c, _)| *c == id) {
            list.push((id, expired));
        }
    }
    /// Drops every watch of client `id` (`keys` are the ones it watched) and its dirty mark.
    pub fn unwatch(&mut self, id: u64, keys: &[(usize, Bytes, bool)]) {
        for (db, key, _) in keys {
            let slot = (*db, key.clone());
            if let Some(list) = self.by_key.get_mut(&slot) {
                list.retain(|(c, _)| *c != id);
                if list.is_empty() {
                    self.by_key.remove(&slot);
                }
            }
        }
        self.dirty.remove(&id);
    }
    /// `key` in `db` changed (`exists`: whether it exists afterwards): every client watching
    /// it will fail its EXEC — except, as in Redis 7, a watcher that saw the key already
    /// expired, when the change is that key's deletion: logically nothing changed for it.
    pub fn touch(&mut self, db: usize, key: &[u8], exists: bool) {
        if self.by_key.is_empty() {
            return;
        }
        if let Some(list) = self.by_key.get_mut(&(db, Bytes::copy_from_slice(key))) {
            for (id, expired) in list.iter_mut() {
                if *expired && !exists {
                    *expired = false;
                } else {
                    self.dirty.insert(*id);
                }
            }
        }
    }
    /// Database `db` is being flushed or swapped: every watched key of it for which
    /// `exists` holds changes (Redis 7 leaves watches of keys that were absent anyway alone).
    pub fn touch_db(&mut self, db: usize, exists: impl Fn(&[u8]) -> bool) {
        for ((d, key), list) in &self.by_key {
            if *d == db && exists(key) {
                self.dirty.extend(list.iter().map(|(id, _)| *id));
            }
        }
    }
    /// True if a key client `id` watches changed since it watched it.
    pub fn is_dirty(&self, id: u64) -> bool {
        self.dirty.contains(&id)
    }
}
