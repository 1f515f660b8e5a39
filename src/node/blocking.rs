//! Clients blocked on keys (BLPOP, BZPOPMIN, ...): who to wake when a key is written.
//!
//! Each connection owns one `Notify`. A blocked connection registers it under every key it
//! waits for *while still holding the store lock*, and a writer signals under the same lock,
//! so no wake-up can fall between "the key was empty" and "I am waiting". `Notify` keeps a
//! permit when nobody is waiting yet, which covers the gap between registering and awaiting.
//! A woken client simply re-runs its command: if another client took the element first, the
//! command blocks again.
//!
//! Clients blocked on a key are served in the order they blocked, as Redis serves them. A
//! signal marks every client waiting on the key as pending but wakes only the first; each
//! pending client, when it leaves the key's list to re-run (or times out, or goes away),
//! wakes the next pending one. Waking them all at once would leave the order to the
//! scheduler, and tokio's multi-thread scheduler runs the last task woken first.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Notify;

/// One blocked client on one key.
#[derive(Debug)]
struct Waiter {
    who: Arc<Notify>,
    /// Signalled and not yet re-run: to be woken in turn.
    pending: Cell<bool>,
}

/// Blocked clients by (db, key), in the order they blocked.
#[derive(Debug, Default)]
pub struct Waiters {
    by_key: HashMap<(usize, Bytes), Vec<Waiter>>,
}

impl Waiters {
    /// True when no client is blocked: the common case, checked before any hashing.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
    /// Registers `who` as waiting for any of `keys` in `db`, after those waiting already.
    pub fn register(&mut self, db: usize, keys: &[Bytes], who: &Arc<Notify>) {
        for k in keys {
            self.by_key
                .entry((db, k.clone()))
                .or_default()
                .push(Waiter {
                    who: who.clone(),
                    pending: Cell::new(false),
                });
        }
    }
    /// Removes `who` from `keys` (it woke up to re-run, timed out or disconnected), and
    /// wakes the next pending client of each key.
    pub fn unregister(&mut self, db: usize, keys: &[Bytes], who: &Arc<Notify>) {
        for k in keys {
            let slot = (db, k.clone());
            if let Some(list) = self.by_key.get_mut(&slot) {
                list.retain(|w| !Arc::ptr_eq(&w.who, who));
                if list.is_empty() {
                    self.by_key.remove(&slot);
                } else {
                    wake_next(list);
                }
            }
        }
    }
    /// Wakes the clients blocked on `key` in `db`, one after the other in the order they
    /// blocked (see the module's notes); the ones that find nothing block again.
    pub fn signal(&self, db: usize, key: &[u8]) {
        if self.by_key.is_empty() {
            return;
        }
        if let Some(list) = self.by_key.get(&(db, Bytes::copy_from_slice(key))) {
            list.iter().for_each(|w| w.pending.set(true));
            wake_next(list);
        }
    }
    /// Wakes every blocked client at once (FLUSHALL, SWAPDB, role changes).
    pub fn signal_all(&self) {
        self.by_key
            .values()
            .flatten()
            .for_each(|w| w.who.notify_one());
    }
}

/// Wakes the first pending client of a key's list, leaving it pending until it leaves the
/// list, so that a second signal meanwhile does not skip it.
fn wake_next(list: &[Waiter]) {
    if let Some(w) = list.iter().find(|w| w.pending.get()) {
        w.who.notify_one();
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

    /// True if `n` holds a wake-up (a stored permit), consuming it.
    async fn woken(n: &Notify) -> bool {
        // `timeout` polls the future once before it looks at the clock.
        tokio::time::timeout(std::time::Duration::ZERO, n.notified())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn signalled_clients_are_woken_one_by_one_in_the_order_they_blocked() {
        let mut w = Waiters::default();
        let keys = [Bytes::from_static(b"k")];
        let [a, b, c] = [(); 3].map(|_| Arc::new(Notify::new()));
        for who in [&a, &b, &c] {
            w.register(0, &keys, who);
        }
        w.signal(0, b"k");
        assert!(woken(&a).await);
        assert!(!woken(&b).await && !woken(&c).await);
        // `a` leaves the list to re-run: `b` is next, then `c` when `b` goes (timed out).
        w.unregister(0, &keys, &a);
        assert!(woken(&b).await);
        assert!(!woken(&c).await);
        w.unregister(0, &keys, &b);
        assert!(woken(&c).await);
        // `a` blocks again behind `c`; no signal, nobody is woken when `c` leaves.
        w.register(0, &keys, &a);
        w.unregister(0, &keys, &c);
        assert!(!woken(&a).await);
    }
}
