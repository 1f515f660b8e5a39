//! Clients blocked on keys (BLPOP, BZPOPMIN, ...): who to wake when a key is written.
//!
//! Each connection owns one `Notify`. A blocked connection registers it under every key it
//! waits for *while still holding the store lock*, and a writer signals under the same lock,
//! so no wake-up can fall between "the key was empty" and "I am waiting". `Notify` keeps a
//! permit when nobody is waiting yet, which covers the gap between registering and awaiting.
//! A woken client simply re-runs its command: if another client took the element first, the
//! command blocks again.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Notify;

/// Blocked clients by (db, key).
#[derive(Debug, Default)]
pub struct Waiters {
    by_key: HashMap<(usize, Bytes), Vec<Arc<Notify>>>,
}

impl Waiters {
    /// True when no client is blocked: the common case, checked before any hashing.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
    /// Registers `who` as waiting for any of `keys` in `db`.
    pub fn register(&mut self, db: usize, keys: &[Bytes], who: &Arc<Notify>) {
        for k in keys {
            self.by_key
                .entry((db, k.clone()))
                .or_default()
                .push(who.clone());
        }
    }
    /// Removes `who` from `keys` (after it woke up, timed out or disconnected).
    pub fn unregister(&mut self, db: usize, keys: &[Bytes], who: &Arc<Notify>) {
        for k in keys {
            let slot = (db, k.clone());
            if let Some(list) = self.by_key.get_mut(&slot) {
                list.retain(|n| !Arc::ptr_eq(n, who));
                if list.is_empty() {
                    self.by_key.remove(&slot);
                }
            }
        }
    }
    /// Wakes every client blocked on `key` in `db`. All of them retry, in whatever order they
    /// get the lock; the ones that find nothing block again.
    pub fn signal(&self, db: usize, key: &[u8]) {
        if self.by_key.is_empty() {
            return;
        }
        if let Some(list) = self.by_key.get(&(db, Bytes::copy_from_slice(key))) {
            list.iter().for_each(|n| n.notify_one());
        }
    }
    /// Wakes every blocked client (FLUSHALL, SWAPDB, role changes).
    pub fn signal_all(&self) {
        self.by_key.values().flatten().for_each(|n| n.notify_one());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn signal_reaches_registered_client_even_before_it_waits() {
        let mut w = Waiters::default();
        let me = Arc::new(Notify::new());
        let keys = [Bytes::from_static(b"k")];
        w.register(0, &keys, &me);
        w.signal(1, b"k");
        w.signal(0, b"k");
        // The permit stored by the signal makes this return at once.
        me.notified().await;
        w.unregister(0, &keys, &me);
        assert!(w.is_empty());
    }
}
