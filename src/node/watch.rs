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
    by_key: HashMap<(usize, Bytes), Vec<u64>>,
    dirty: HashSet<u64>,
}

impl Watches {
    /// Client `id` watches `key` in `db`.
    pub fn watch(&mut self, id: u64, db: usize, key: Bytes) {
        let list = self.by_key.entry((db, key)).or_default();
        if !list.contains(&id) {
            list.push(id);
        }
    }
    /// Drops every watch of client `id` (`keys` are the ones it watched) and its dirty mark.
    pub fn unwatch(&mut self, id: u64, keys: &[(usize, Bytes, bool)]) {
        for (db, key, _) in keys {
            let slot = (*db, key.clone());
            if let Some(list) = self.by_key.get_mut(&slot) {
                list.retain(|&c| c != id);
                if list.is_empty() {
                    self.by_key.remove(&slot);
                }
            }
        }
        self.dirty.remove(&id);
    }
    /// `key` in `db` changed: every client watching it will fail its EXEC.
    pub fn touch(&mut self, db: usize, key: &[u8]) {
        if self.by_key.is_empty() {
            return;
        }
        if let Some(list) = self.by_key.get(&(db, Bytes::copy_from_slice(key))) {
            self.dirty.extend(list.iter().copied());
        }
    }
    /// Every watched key of `db` changed (FLUSHDB, FLUSHALL, SWAPDB); `None` = all dbs.
    pub fn touch_db(&mut self, db: Option<usize>) {
        for ((d, _), list) in &self.by_key {
            if db.is_none_or(|x| x == *d) {
                self.dirty.extend(list.iter().copied());
            }
        }
    }
    /// True if a key client `id` watches changed since it watched it.
    pub fn is_dirty(&self, id: u64) -> bool {
        self.dirty.contains(&id)
    }
}
