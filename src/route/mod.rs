//! Request → node: which node of the current topology serves a request.
//!
//! Cluster pools add [`cluster`] (following MOVED/ASK/TRYAGAIN/CLUSTERDOWN on the data path)
//! and [`split`] (multi-key commands split per slot, fan-out commands, and merging replies),
//! [`scan`] (SCAN walking the masters).

pub(crate) mod cluster;
pub(crate) mod scan;
pub(crate) mod split;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::backend::Node;
use crate::config::ReadFrom;
use crate::resp::{ClientError, ErrorCode};
use crate::topology::cluster::SlotMap;
use crate::topology::Topology;

/// Why no node could be chosen. `Display` is the client-visible text after `-` (the
/// [`ClientError`] it converts into).
#[derive(Debug, Clone)]
pub(crate) enum RouteError {
    /// No master is known or reachable.
    NoMaster(String),
    /// `read_from = "replica"` and no replica is healthy.
    NoReplica(String),
    /// Cluster pools: no shard serves the slot (or no slot map is known yet).
    SlotNotServed,
}

impl From<&RouteError> for ClientError {
    fn from(e: &RouteError) -> ClientError {
        match e {
            RouteError::NoMaster(pool) => ClientError::new(
                ErrorCode::MasterDown,
                format!("sluice: pool '{pool}' has no reachable master"),
            ),
            RouteError::NoReplica(pool) => ClientError::err(format!(
                "sluice: pool '{pool}' has no healthy replica (read_from = \"replica\")"
            )),
            RouteError::SlotNotServed => ClientError::slot_not_served(),
        }
    }
}

impl From<RouteError> for ClientError {
    fn from(e: RouteError) -> ClientError {
        ClientError::from(&e)
    }
}

impl std::fmt::Display for RouteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        ClientError::from(self).fmt(f)
    }
}

impl std::error::Error for RouteError {}

/// Chooses nodes under a read policy. One per pool; holds the round-robin cursor.
pub(crate) struct Router {
    pool: String,
    read_from: ReadFrom,
    cursor: AtomicUsize,
}

impl Router {
    /// A router for a pool.
    pub(crate) fn new(pool: &str, read_from: ReadFrom) -> Router {
        Router {
            pool: pool.to_string(),
            read_from,
            cursor: AtomicUsize::new(0),
        }
    }

    /// A node for a read by a client that wrote at `acked_at` (read-your-writes): a replica
    /// known to hold that write, else the master.
    pub(crate) fn read_own_writes(
        &self,
        topo: &Topology,
        acked_at: std::time::Instant,
    ) -> Result<Arc<Node>, RouteError> {
        if self.read_from == ReadFrom::Master {
            return self.master(topo);
        }
        let candidates = || topo.caught_up_since(acked_at).filter(|n| n.is_connected());
        let n = candidates().count();
        if n == 0 {
            return self.master(topo);
        }
        let i = self.cursor.fetch_add(1, Ordering::Relaxed) % n;
        candidates()
            .nth(i)
            .cloned()
            .map_or_else(|| self.master(topo), Ok)
    }

    /// The master (writes, transactions, everything not a read).
    pub(crate) fn master(&self, topo: &Topology) -> Result<Arc<Node>, RouteError> {
        match &topo.master {
            Some(m) => Ok(m.node.clone()),
            None => Err(RouteError::NoMaster(self.pool.clone())),
        }
    }

    /// A node for a read under the pool's policy, skipping `avoid` (a node that just failed)
    /// and replicas whose shared connections are all down (noticed before the next probe).
    pub(crate) fn read(
        &self,
        topo: &Topology,
        avoid: Option<&Node>,
    ) -> Result<Arc<Node>, RouteError> {
        if self.read_from == ReadFrom::Master {
            return self.master(topo);
        }
        let n = topo.readable.len();
        if n > 0 {
            let start = self.cursor.fetch_add(1, Ordering::Relaxed);
            for i in 0..n {
                let node = &topo.readable[(start + i) % n];
                let avoided = avoid.is_some_and(|a| std::ptr::eq(a, node.as_ref()));
                if !avoided && node.is_connected() {
                    return Ok(node.clone());
                }
            }
        }
        match self.read_from {
            ReadFrom::Replica => Err(RouteError::NoReplica(self.pool.clone())),
            _ => self.master(topo),
        }
    }

    /// Cluster pools: the node for a request on `slot` (`None`: keyless, any shard, spread
    /// round-robin). Writes go to the shard's master; reads follow the read policy within the
    /// shard, skipping `avoid` and replicas whose connections are all down.
    pub(crate) fn cluster(
        &self,
        map: &SlotMap,
        slot: Option<u16>,
        read: bool,
        avoid: Option<&Node>,
    ) -> Result<Arc<Node>, RouteError> {
        let shard = match slot {
            Some(slot) => map.shard(slot),
            None if map.shards.is_empty() => None,
            None => {
                let i = self.cursor.fetch_add(1, Ordering::Relaxed) % map.shards.len();
                map.shards.get(i)
            }
        };
        let Some(shard) = shard else {
            return Err(RouteError::SlotNotServed);
        };
        if !read || self.read_from == ReadFrom::Master {
            return Ok(shard.master.node.clone());
        }
        let n = shard.readable.len();
        if n > 0 {
            let start = self.cursor.fetch_add(1, Ordering::Relaxed);
            for i in 0..n {
                let node = &shard.readable[(start + i) % n];
                let avoided = avoid.is_some_and(|a| std::ptr::eq(a, node.as_ref()));
                if !avoided && node.is_connected() {
                    return Ok(node.clone());
                }
            }
        }
        match self.read_from {
            ReadFrom::Replica => Err(RouteError::NoReplica(self.pool.clone())),
            _ => Ok(shard.master.node.clone()),
        }
    }
}
