//! A pool's published topology: the current snapshot, swapped in whole, and an announcement
//! of every swap, so a request that cannot be routed yet (no replica in the read pool, no
//! slot map) waits for the next snapshot instead of polling for it.

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use tokio::sync::watch;

use super::Topology;

/// The snapshot and its change announcements. Every store announces, also one that changes
/// only offsets: a waiter re-checks what it needs (a replica whose connection came back,
/// say) at least once per probe round.
pub(crate) struct Published {
    snapshot: ArcSwap<Topology>,
    /// Counts stores; receivers only care that it moved.
    changed: watch::Sender<u64>,
}

impl Published {
    /// Publishes `first` as the initial snapshot.
    pub(crate) fn new(first: Topology) -> Published {
        Published {
            snapshot: ArcSwap::from_pointee(first),
            changed: watch::Sender::new(0),
        }
    }

    /// The current snapshot (lock-free).
    pub(crate) fn load(&self) -> Guard<Arc<Topology>> {
        self.snapshot.load()
    }

    /// Replaces the snapshot and announces it.
    pub(crate) fn store(&self, next: Arc<Topology>) {
        self.snapshot.store(next);
        self.announce();
    }

    /// Replaces the snapshot with `f(current)`, re-applied if another store came in between
    /// (see [`ArcSwap::rcu`]), and announces it.
    pub(crate) fn rcu<F>(&self, f: F)
    where
        F: FnMut(&Arc<Topology>) -> Arc<Topology>,
    {
        self.snapshot.rcu(f);
        self.announce();
    }

    /// A receiver that sees every store made after this call. Subscribe *before* checking
    /// the snapshot, so a store between the check and the wait is not missed.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Waits until `ready` holds for the current snapshot or `deadline` passes; returns
    /// whether it holds. Wakes on each store, never on a timer of its own.
    pub(crate) async fn wait_for(
        &self,
        deadline: tokio::time::Instant,
        mut ready: impl FnMut(&Topology) -> bool,
    ) -> bool {
        let mut changes = self.subscribe();
        loop {
            if ready(&self.load()) {
                return true;
            }
            tokio::select! {
                res = changes.changed() => {
                    if res.is_err() {
                        return ready(&self.load());
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return ready(&self.load()),
            }
        }
    }

    fn announce(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_waiter_wakes_on_the_store_that_makes_it_ready() {
        let published = Arc::new(Published::new(Topology::default()));
        let waiter = {
            let p = published.clone();
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                p.wait_for(deadline, |t| t.version == 2).await
            })
        };
        for version in 1..=2 {
            tokio::task::yield_now().await;
            published.store(Arc::new(Topology {
                version,
                ..Topology::default()
            }));
        }
        assert!(waiter.await.expect("waiter"));
        // Never ready: gives up at the deadline.
        let soon = tokio::time::Instant::now() + Duration::from_millis(20);
        assert!(!published.wait_for(soon, |t| t.version == 3).await);
    }
}
