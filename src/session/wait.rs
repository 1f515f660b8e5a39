//! Requests that cannot be routed yet wait (within `master_wait`) for a topology that can
//! route them: a write for a confirmed master, a read under `read_from = "replica"` for a
//! replica in the read pool, anything in a cluster pool for a slot map.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::oneshot;

use super::{Pending, Session, Waiting};
use crate::backend::BackendError;
use crate::backend::Patience;
use crate::command::{self, CommandInfo};
use crate::resp::Request;
use crate::route::split::{self, Plan};

impl Session {
    /// Waits (up to `master_wait`) until `req` has somewhere to go. Replica and slot-map
    /// waits wake on the topology's announcements (every published snapshot), so a read is
    /// sent as soon as the probe round that admits a replica is published.
    pub(super) async fn wait_until_routable(&self, req: &Request, info: Option<&CommandInfo>) {
        let deadline = tokio::time::Instant::now() + self.pool.cfg.master_wait;
        let read = command::is_read(req, info);
        let topology = &self.pool.topology;
        if self.pool.routing.by_slot() {
            let slot = match split::plan(req, info) {
                Plan::Single(slot) => slot,
                _ => None,
            };
            let router = &self.pool.router;
            if read {
                // A replica left out as lagging may be fine by now: look again soon.
                self.pool.refresh.notify_one();
            }
            topology
                .wait_for(deadline, |t| {
                    t.cluster
                        .as_ref()
                        .filter(|m| !m.shards.is_empty())
                        .is_some_and(|m| !read || router.cluster(m, slot, true, None).is_ok())
                })
                .await;
            return;
        }
        if read {
            topology
                .wait_for(deadline, |t| self.route_read(t, None).is_ok())
                .await;
            return;
        }
        // A master whose connection comes back publishes nothing new (the topology did not
        // change), so a write also looks again every 10 ms.
        while !self
            .pool
            .router
            .master(&topology.load())
            .is_ok_and(|m| m.is_connected())
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends a read whose node failed it, when no other node can take it now (its replica
    /// was the only one), from a task that waits (up to `master_wait`) for a replica to be
    /// back in the read pool. It keeps its place at the head of the client's queue; if none
    /// comes back in time the client gets the original error.
    pub(super) fn retry_read_when_routable(
        &self,
        w: Waiting,
        failed: BackendError,
        pending: &mut VecDeque<Pending>,
    ) {
        let (tx, rx) = oneshot::channel();
        let pool = self.pool.clone();
        let (raw, db, slot) = (w.raw.clone(), w.db, self.slot());
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + pool.cfg.master_wait;
            let mut node = None;
            pool.topology
                .wait_for(deadline, |t| {
                    node = pool.router.read(t, None).ok();
                    node.is_some()
                })
                .await;
            let reply = match node {
                Some(n) => {
                    n.metrics.reads.increment(1);
                    n.send(raw, db, slot, Patience::Bounded)
                        .await
                        .unwrap_or_else(|_| {
                            Err(BackendError::ConnectionLost {
                                addr: n.addr.clone(),
                                reason: "request dropped".into(),
                            })
                        })
                }
                None => Err(failed),
            };
            let _ = tx.send(reply);
        });
        self.pool.metrics.retries.increment(1);
        pending.push_front(Pending::Wait(Waiting {
            rx,
            retried: true,
            fenced: false,
            ..w
        }));
    }
}
