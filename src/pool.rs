//! A running pool: its config, topology snapshot, router, nodes and metrics, shared by the
//! pool's listener and all its client sessions.

use std::sync::Arc;

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::backend::{Node, NodeOptions};
use crate::config::{Mode, PoolConfig};
use crate::resp::Limits;
use crate::route::Router;
use crate::telemetry::PoolMetrics;
use crate::topology::cluster::ClusterWatcher;
use crate::topology::sentinel::SentinelWatcher;
use crate::topology::sentinel_hub::{HubKey, SentinelHubs};
use crate::topology::standalone::StandaloneWatcher;
use crate::topology::{Published, Topology};

/// Errors starting a pool.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The pool's mode is not implemented yet.
    #[error("pool '{pool}': mode {mode:?} is not supported yet")]
    Unsupported {
        /// Pool name.
        pool: String,
        /// Its mode.
        mode: Mode,
    },
    /// A required key is missing (validation should have caught it).
    #[error("pool '{pool}': {what} is required")]
    Missing {
        /// Pool name.
        pool: String,
        /// The key.
        what: &'static str,
    },
}

/// Shared state of one pool.
pub struct Pool {
    /// The pool's config.
    pub cfg: Arc<PoolConfig>,
    /// Current topology, replaced whole by the watcher.
    pub topology: Arc<Published>,
    /// Node choice.
    pub router: Router,
    /// Pool metrics.
    pub metrics: Arc<PoolMetrics>,
    /// Client request limits.
    pub limits: Limits,
    /// One permit per connected client (`max_clients`).
    pub clients: Arc<Semaphore>,
    /// Cluster pools: asks the slot-map watcher for a refresh now (after a MOVED, a connection
    /// error, LOADING or CLUSTERDOWN). Notifications arriving together cost one refresh.
    pub refresh: Arc<Notify>,
}

impl Pool {
    /// Creates the pool's nodes and starts its topology watcher.
    /// Sentinel pools take their sentinel connections from `hubs`, shared with the other pools
    /// on the same sentinels.
    pub fn start(
        cfg: PoolConfig,
        hubs: &SentinelHubs,
        shutdown: CancellationToken,
    ) -> Result<Arc<Pool>, PoolError> {
        let metrics = Arc::new(PoolMetrics::new(&cfg.name));
        let opts = NodeOptions {
            pool: cfg.name.clone(),
            connections: cfg.backend_connections,
            max_dedicated: cfg.max_dedicated_connections,
            connect_timeout: cfg.connect_timeout,
            request_timeout: cfg.request_timeout,
            username: cfg.backend_username.clone(),
            password: cfg.backend_password.clone(),
            readonly: cfg.mode == Mode::Cluster,
        };
        let refresh = Arc::new(Notify::new());
        let topology = match cfg.mode {
            Mode::Standalone => {
                let master_addr = cfg.master.as_deref().ok_or(PoolError::Missing {
                    pool: cfg.name.clone(),
                    what: "master",
                })?;
                let watcher = StandaloneWatcher {
                    pool: cfg.name.clone(),
                    master: Node::new(master_addr, &opts),
                    replicas: cfg.replicas.iter().map(|r| Node::new(r, &opts)).collect(),
                    interval: cfg.health_check_interval,
                    timeout: cfg.connect_timeout.max(cfg.health_check_interval),
                    username: cfg.backend_username.clone(),
                    password: cfg.backend_password.clone(),
                    max_lag: cfg.max_replica_lag,
                };
                let topology = Arc::new(Published::new(watcher.initial()));
                tokio::spawn(watcher.run(topology.clone(), metrics.clone(), shutdown));
                topology
            }
            Mode::Sentinel => {
                let master_name = cfg.master_name.clone().ok_or(PoolError::Missing {
                    pool: cfg.name.clone(),
                    what: "master_name",
                })?;
                let timeout = cfg.connect_timeout.max(cfg.health_check_interval);
                let key = HubKey::new(
                    &cfg.sentinels,
                    cfg.sentinel_username.clone(),
                    cfg.sentinel_password.clone(),
                );
                let watcher = SentinelWatcher {
                    pool: cfg.name.clone(),
                    master_name,
                    hub: hubs.get(key, timeout, &shutdown),
                    node_options: opts.clone(),
                    interval: cfg.health_check_interval,
                    timeout,
                    max_lag: cfg.max_replica_lag,
                };
                // No master until a sentinel names one and the node confirms it.
                let topology = Arc::new(Published::new(Topology::default()));
                tokio::spawn(watcher.run(topology.clone(), metrics.clone(), shutdown));
                topology
            }
            Mode::Cluster => {
                if cfg.seeds.is_empty() {
                    return Err(PoolError::Missing {
                        pool: cfg.name.clone(),
                        what: "seeds",
                    });
                }
                let watcher = ClusterWatcher {
                    pool: cfg.name.clone(),
                    seeds: cfg.seeds.clone(),
                    node_options: opts.clone(),
                    interval: cfg.health_check_interval,
                    timeout: cfg.connect_timeout.max(cfg.health_check_interval),
                    max_lag: cfg.max_replica_lag,
                };
                // No slot map until a node answers CLUSTER SHARDS.
                let topology = Arc::new(Published::new(Topology::default()));
                tokio::spawn(watcher.run(
                    topology.clone(),
                    metrics.clone(),
                    refresh.clone(),
                    shutdown,
                ));
                topology
            }
        };
        Ok(Arc::new(Pool {
            router: Router::new(&cfg.name, cfg.read_from),
            topology,
            metrics,
            limits: Limits::default(),
            clients: Arc::new(Semaphore::new(cfg.max_clients)),
            refresh,
            cfg: Arc::new(cfg),
        }))
    }

    /// True when a master is known and has at least one established shared connection.
    pub fn master_reachable(&self) -> bool {
        self.topology
            .load()
            .master
            .as_ref()
            .is_some_and(|m| m.node.is_connected())
    }
}
