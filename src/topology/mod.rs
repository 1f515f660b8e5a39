//! The topology of a pool as one immutable snapshot: master, replicas and their health.
//! Watchers build a new snapshot and swap it in whole (`ArcSwap`); the request path only loads
//! it, so a reader never sees half an update and never takes a lock.

pub(crate) mod cluster;
pub(crate) mod health;
pub(crate) mod published;
pub(crate) mod sentinel;
pub(crate) mod sentinel_hub;
pub(crate) mod standalone;
pub(crate) mod watch;

use std::sync::Arc;

use serde::Serialize;

use crate::backend::Node;
use crate::telemetry::PoolMetrics;

pub(crate) use self::published::Published;

/// How soon a probe round follows one that left a replica catching up (see
/// [`Topology::catching_up`]): a replica that has just relinked is usually a few
/// milliseconds of stream behind.
pub(crate) const CATCH_UP_RECHECK: std::time::Duration = std::time::Duration::from_millis(20);

/// Why a node is or is not serving.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub(crate) enum Health {
    /// Not probed yet.
    Unknown,
    /// Reachable and, for a replica, in sync with its master.
    Healthy,
    /// Unreachable or failing probes.
    Down(String),
    /// Answering `LOADING` (restarting from its dataset).
    Loading,
    /// A replica whose link to its master is down (`master_link_status:down`).
    LinkDown,
    /// A replica in a full resync (`master_sync_in_progress:1`).
    Syncing,
    /// A node that does not have the role the topology expects.
    WrongRole(String),
    /// A replica further behind its master than `max_replica_lag` allows.
    Lagging(String),
    /// A replica coming back to the read pool (newly seen, relinked, resynced, or following a
    /// new master) that has not yet reached the offset its master had one probe round ago.
    CatchingUp(String),
}

impl Health {
    /// True when the node may serve requests.
    pub(crate) fn is_healthy(&self) -> bool {
        matches!(self, Health::Healthy)
    }
}

/// One node and what the last probe said.
#[derive(Clone)]
pub(crate) struct NodeView {
    /// The node.
    pub(crate) node: Arc<Node>,
    /// Health from the last probe.
    pub(crate) health: Health,
    /// Replication offset the node reported (replicas: `slave_repl_offset`; master:
    /// `master_repl_offset`), when known.
    pub(crate) offset: Option<u64>,
}

/// A pool's topology at one moment.
#[derive(Clone, Default)]
pub(crate) struct Topology {
    /// Increases with every published change.
    pub(crate) version: u64,
    /// The master, if known.
    pub(crate) master: Option<NodeView>,
    /// Every known replica with its health.
    pub(crate) replicas: Vec<NodeView>,
    /// Replicas currently in the read pool (healthy ones), the subset reads pick from.
    pub(crate) readable: Vec<Arc<Node>>,
    /// False while the topology source (the sentinels) cannot be reached: the snapshot is the
    /// last one known and is kept serving.
    pub(crate) source_stale: bool,
    /// When the probe round that produced the offsets in this snapshot started. Every offset
    /// here was read after this instant, which is what read-your-writes relies on.
    pub(crate) probed_at: Option<std::time::Instant>,
    /// Cluster pools: the shards and the slot map. `master`, `replicas` and `readable` then
    /// describe the first shard, all replicas and all readable replicas, for keyless commands
    /// and the pool-level gauges.
    pub(crate) cluster: Option<Arc<cluster::SlotMap>>,
}

impl Topology {
    /// Builds a snapshot, deriving the read pool from replica health.
    ///
    /// When the master itself is down and no replica is fully healthy, replicas whose only
    /// fault is the broken link to that master (and which are not loading or resyncing) stay
    /// readable: their data is as fresh as it can get until a master returns, and serving it
    /// beats failing every read (Redis's own `replica-serve-stale-data yes` default).
    pub(crate) fn new(version: u64, master: Option<NodeView>, replicas: Vec<NodeView>) -> Topology {
        let mut t = Topology {
            version,
            master,
            replicas,
            readable: Vec::new(),
            source_stale: false,
            probed_at: None,
            cluster: None,
        };
        t.readable = t.read_pool();
        t
    }

    /// A cluster pool's snapshot around its slot map.
    pub(crate) fn from_cluster(map: cluster::SlotMap) -> Topology {
        let replicas: Vec<NodeView> = map
            .shards
            .iter()
            .flat_map(|s| s.replicas.iter().cloned())
            .collect();
        let readable = map
            .shards
            .iter()
            .flat_map(|s| s.readable.iter().cloned())
            .collect();
        Topology {
            version: 0,
            master: map.shards.first().map(|s| s.master.clone()),
            replicas,
            readable,
            source_stale: false,
            probed_at: None,
            cluster: Some(Arc::new(map)),
        }
    }

    fn read_pool(&self) -> Vec<Arc<Node>> {
        let readable: Vec<Arc<Node>> = self
            .replicas
            .iter()
            .filter(|r| r.health.is_healthy())
            .map(|r| r.node.clone())
            .collect();
        let master_down = self
            .master
            .as_ref()
            .is_some_and(|m| matches!(m.health, Health::Down(_)));
        if readable.is_empty() && master_down {
            return self
                .replicas
                .iter()
                .filter(|r| r.health == Health::LinkDown)
                .map(|r| r.node.clone())
                .collect();
        }
        readable
    }

    /// Keeps a replica that was not in `previous`'s read pool out of this one until its offset
    /// has reached the master's offset of this same round. "In sync" from `INFO` only says the
    /// link is up: a replica that just relinked, finished a resync or was pointed at a new
    /// master by a failover still has a backlog to apply, and reads sent to it meanwhile return
    /// values older than writes the master acknowledged long ago (measured here: bursts of
    /// stale reads in the second after a `SENTINEL FAILOVER`, up to 11 % of all reads with the
    /// CPU overloaded, while the other replica attached to the new master and caught up). The
    /// watchers send the master's probe first, so a replica that keeps up passes; one that is
    /// still behind waits for a later round.
    ///
    /// When the master changed since `previous` (or `previous` had none: writes held during
    /// a failover), every replica counts as rejoining: one that was readable under the old
    /// master and relinked to the new one at once (a partial resync) may still lack what the
    /// new master got from the old one before its promotion.
    fn hold_back_rejoining(&mut self, previous: &Topology) {
        let Some(bar) = self.master.as_ref().and_then(|m| m.offset) else {
            return;
        };
        let master_changed = previous.master.as_ref().map(|m| &m.node.addr)
            != self.master.as_ref().map(|m| &m.node.addr);
        let mut changed = false;
        for r in &mut self.replicas {
            let rejoining =
                master_changed || !previous.readable.iter().any(|n| n.addr == r.node.addr);
            if let (true, Health::Healthy, Some(offset)) = (rejoining, &r.health, r.offset) {
                if offset < bar {
                    r.health = Health::CatchingUp(format!(
                        "offset {offset}, {} bytes short of the master's {bar}",
                        bar - offset
                    ));
                    changed = true;
                }
            }
        }
        if changed {
            self.readable = self.read_pool();
        }
    }

    /// True when a replica is held back only until its offset reaches the master's: the
    /// watchers then probe again after [`CATCH_UP_RECHECK`] rather than a whole interval, so
    /// the replica rejoins (and reads waiting for one go) as soon as it has caught up.
    pub(crate) fn catching_up(&self) -> bool {
        self.replicas
            .iter()
            .any(|r| matches!(r.health, Health::CatchingUp(_)))
    }

    /// Replicas in the read pool that certainly hold every write acknowledged before
    /// `acked_at`: the snapshot's probe round started after that instant (so the master's
    /// offset it read covers those writes) and the replica's offset had reached the master's.
    pub(crate) fn caught_up_since(
        &self,
        acked_at: std::time::Instant,
    ) -> impl Iterator<Item = &Arc<Node>> + '_ {
        let fresh = self.probed_at.is_some_and(|p| p > acked_at);
        let master_offset = self.master.as_ref().and_then(|m| m.offset);
        self.replicas
            .iter()
            .filter(move |r| {
                fresh
                    && r.health.is_healthy()
                    && matches!((r.offset, master_offset), (Some(o), Some(m)) if o >= m)
            })
            .map(|r| &r.node)
    }

    /// Publishes `next` (built from a probe round) as the pool's snapshot: refreshes the pool
    /// and node gauges, and, when the master, the replica set or any health changed, bumps
    /// the version, counts and logs the change. Offsets change all the time and are published
    /// too (one pointer swap).
    pub(crate) fn publish(
        mut next: Topology,
        topology: &Published,
        metrics: &PoolMetrics,
        pool: &str,
    ) {
        let previous = topology.load();
        // Offsets of different shards are not comparable (and CLUSTER SHARDS reports other
        // nodes' offsets as last gossiped): cluster pools rely on `max_replica_lag` instead.
        if next.cluster.is_none() {
            next.hold_back_rejoining(&previous);
        }
        metrics.replicas_known.set(next.replicas.len() as f64);
        metrics.replicas_healthy.set(next.readable.len() as f64);
        let master_up = next.master.as_ref().is_some_and(|m| m.health.is_healthy());
        metrics.master_up.set(if master_up { 1.0 } else { 0.0 });
        let other_masters = next
            .cluster
            .iter()
            .flat_map(|c| c.shards.iter().skip(1).map(|s| s.master.clone()))
            .collect::<Vec<_>>();
        for view in next
            .master
            .iter()
            .chain(next.replicas.iter())
            .chain(other_masters.iter())
        {
            let is_master = next.master.as_ref().map(|m| &m.node.addr) == Some(&view.node.addr)
                || other_masters.iter().any(|m| m.node.addr == view.node.addr);
            view.node
                .metrics
                .is_master
                .set(if is_master { 1.0 } else { 0.0 });
            view.node
                .metrics
                .connections
                .set(view.node.connected_count() as f64);
            view.node
                .metrics
                .dedicated
                .set(view.node.dedicated.open() as f64);
        }
        next.version = previous.version;
        if !next.same_shape(&previous) {
            next.version += 1;
            metrics.topology_changes.increment(1);
            tracing::info!(
                pool = %pool,
                version = next.version,
                master = ?next.master.as_ref().map(|m| m.node.addr.as_str()),
                read_pool = ?next.readable.iter().map(|n| n.addr.as_str()).collect::<Vec<_>>(),
                "topology changed"
            );
        }
        topology.store(Arc::new(next));
    }

    /// True when `other` has the same nodes with the same health (offsets aside).
    pub(crate) fn same_shape(&self, other: &Topology) -> bool {
        fn key(v: &NodeView) -> (&str, &Health) {
            (&v.node.addr, &v.health)
        }
        self.master.as_ref().map(key) == other.master.as_ref().map(key)
            && self
                .replicas
                .iter()
                .map(key)
                .eq(other.replicas.iter().map(key))
            && match (&self.cluster, &other.cluster) {
                (Some(a), Some(b)) => a.same_shape(b),
                (None, None) => true,
                _ => false,
            }
    }

    /// JSON description for `/topology`.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let view = |v: &NodeView| {
            serde_json::json!({
                "addr": v.node.addr,
                "health": v.health,
                "healthy": v.health.is_healthy(),
                "connected": v.node.is_connected(),
                "offset": v.offset,
                "dedicated_connections": v.node.dedicated.open(),
            })
        };
        serde_json::json!({
            "version": self.version,
            "master": self.master.as_ref().map(view),
            "replicas": self.replicas.iter().map(view).collect::<Vec<_>>(),
            "read_pool": self.readable.iter().map(|n| n.addr.clone()).collect::<Vec<_>>(),
            "source_reachable": !self.source_stale,
            "shards": self.cluster.as_ref().map(|c| c.to_json()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::NodeOptions;
    use std::time::Duration;

    fn node(addr: &str) -> Arc<Node> {
        let opts = NodeOptions {
            pool: "t".into(),
            connections: 1,
            max_dedicated: 1,
            connect_timeout: Duration::from_millis(10),
            request_timeout: Duration::from_millis(10),
            username: None,
            password: None,
            follows_role: false,
        };
        Node::new(addr, &opts)
    }

    fn view(node: &Arc<Node>, offset: u64) -> NodeView {
        NodeView {
            node: node.clone(),
            health: Health::Healthy,
            offset: Some(offset),
        }
    }

    #[tokio::test]
    async fn a_rejoining_replica_waits_until_it_reaches_the_master_offset() {
        let (m, r1, r2) = (
            node("127.0.0.1:1"),
            node("127.0.0.1:2"),
            node("127.0.0.1:3"),
        );
        // Round 1: r1 was already readable, r2 was not.
        let mut before = Topology::new(1, Some(view(&m, 1000)), vec![view(&r1, 1000)]);
        before.readable = vec![r1.clone()];
        // Round 2: the master is at 1500; r1 is at 1200 (already in: stays), r2 at 1400
        // (rejoining, short of the master's 1500: held back).
        let mut next = Topology::new(
            2,
            Some(view(&m, 1500)),
            vec![view(&r1, 1200), view(&r2, 1400)],
        );
        next.hold_back_rejoining(&before);
        let addrs: Vec<&str> = next.readable.iter().map(|n| n.addr.as_str()).collect();
        assert_eq!(addrs, ["127.0.0.1:2"]);
        assert!(matches!(next.replicas[1].health, Health::CatchingUp(_)));
        // Round 3: r2 has reached the master's offset: it joins.
        let mut later = Topology::new(
            3,
            Some(view(&m, 1600)),
            vec![view(&r1, 1550), view(&r2, 1600)],
        );
        later.hold_back_rejoining(&next);
        assert_eq!(later.readable.len(), 2);
        // The same with a new master (a failover).
        let m2 = node("127.0.0.1:4");
        let mut failed_over = Topology::new(4, Some(view(&m2, 2000)), vec![view(&r2, 1999)]);
        failed_over.hold_back_rejoining(&Topology::new(3, None, vec![]));
        assert!(failed_over.readable.is_empty());
        // A replica readable while writes were held (no master published) and relinked to
        // the new master at once is checked too.
        let mut held = Topology::new(5, None, vec![view(&r2, 2000)]);
        held.readable = vec![r2.clone()];
        let mut relinked = Topology::new(6, Some(view(&m2, 2100)), vec![view(&r2, 2050)]);
        relinked.hold_back_rejoining(&held);
        assert!(
            relinked.readable.is_empty(),
            "admitted behind the new master"
        );
    }
}
