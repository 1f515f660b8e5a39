//! A running pool: its config, topology snapshot, router, nodes and metrics, shared by the
//! pool's listener and all its client sessions.

use std::sync::Arc;

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::backend::{Node, NodeOptions};
use crate::config::{ClientAuth, PoolConfig, Source};
use crate::resp::Limits;
use crate::route::Router;
use crate::session::users::PoolAuth;
use crate::telemetry::PoolMetrics;
use crate::tls::PoolTls;
use crate::topology::cluster::ClusterWatcher;
use crate::topology::sentinel::SentinelWatcher;
use crate::topology::sentinel_hub::{HubKey, SentinelHubs};
use crate::topology::standalone::StandaloneWatcher;
use crate::topology::watch;
use crate::topology::Published;

/// Shared state of one pool.
pub(crate) struct Pool {
    /// The pool's config.
    pub(crate) cfg: Arc<PoolConfig>,
    /// How requests are routed: decided once, from the pool's source, when it starts.
    pub(crate) routing: Routing,
    /// Current topology, replaced whole by the watcher.
    pub(crate) topology: Arc<Published>,
    /// Node choice.
    pub(crate) router: Router,
    /// Pool metrics.
    pub(crate) metrics: Arc<PoolMetrics>,
    /// Client request limits.
    pub(crate) limits: Limits,
    /// One permit per connected client (`max_clients`).
    pub(crate) clients: Arc<Semaphore>,
    /// Cluster pools: asks the slot-map watcher for a refresh now (after a MOVED, a connection
    /// error, LOADING or CLUSTERDOWN). Notifications arriving together cost one refresh.
    pub(crate) refresh: Arc<Notify>,
    /// The pool's connected clients (CLIENT LIST / KILL, MONITOR, PAUSE).
    pub(crate) registry: crate::session::clients::Registry,
    /// TLS on the listener and toward the nodes, reloadable.
    pub(crate) tls: PoolTls,
    /// How clients authenticate (mode decided at start; users replaced by a reload).
    pub(crate) auth: PoolAuth,
}

/// How a pool routes requests, chosen once from its source: the session asks this, never
/// the configured mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Routing {
    /// One master that never changes (standalone pools): a READONLY answer is final.
    FixedMaster,
    /// One master that failovers replace (sentinel pools): writes wait for a confirmed
    /// master and a write refused by a demoted one is sent to the new one.
    FollowedMaster,
    /// Slots spread over masters (cluster pools): requests go by key slot, redirects are
    /// followed, transactions and shard channels live on a slot's master.
    Slots,
}

impl Routing {
    fn of(source: &Source) -> Routing {
        match source {
            Source::Standalone { .. } => Routing::FixedMaster,
            Source::Sentinel { .. } => Routing::FollowedMaster,
            Source::Cluster { .. } => Routing::Slots,
        }
    }

    /// True for cluster pools.
    pub(crate) fn by_slot(self) -> bool {
        self == Routing::Slots
    }

    /// True when the master may change under the pool (sentinel and cluster pools).
    pub(crate) fn follows_failovers(self) -> bool {
        self != Routing::FixedMaster
    }
}

impl Pool {
    /// Creates the pool's nodes and starts its topology watcher.
    /// Sentinel pools take their sentinel connections from `hubs`, shared with the other pools
    /// on the same sentinels; a hub started here stops with `shutdown` too.
    #[cfg(test)]
    pub(crate) fn start(
        cfg: PoolConfig,
        hubs: &SentinelHubs,
        shutdown: CancellationToken,
    ) -> Arc<Pool> {
        let hub_shutdown = shutdown.clone();
        Pool::start_shared(cfg, hubs, &hub_shutdown, shutdown)
    }

    /// As [`Pool::start`], but a sentinel hub started here stops with `hub_shutdown` (the
    /// process's, not this pool's: a pool retired by a reload must not stop a hub that other
    /// pools still use).
    pub(crate) fn start_shared(
        cfg: PoolConfig,
        hubs: &SentinelHubs,
        hub_shutdown: &CancellationToken,
        shutdown: CancellationToken,
    ) -> Arc<Pool> {
        let metrics = Arc::new(PoolMetrics::new(&cfg.name));
        let refresh = Arc::new(Notify::new());
        let hubs = (hubs, hub_shutdown);
        let tls = PoolTls::new(&cfg.name, cfg.tls.as_ref(), cfg.backend_tls.as_ref());
        let topology = watch_source(&cfg, &tls, hubs, metrics.clone(), refresh.clone(), shutdown);
        Arc::new(Pool {
            routing: Routing::of(&cfg.source),
            router: Router::new(&cfg.name, cfg.read_from),
            topology,
            metrics,
            limits: Limits::default(),
            clients: Arc::new(Semaphore::new(cfg.max_clients)),
            refresh,
            registry: Default::default(),
            tls,
            auth: PoolAuth::new(&cfg),
            cfg: Arc::new(cfg),
        })
    }

    /// True when clients need not authenticate (no password, no users).
    pub(crate) fn open_access(&self) -> bool {
        self.auth.mode == ClientAuth::Password && self.cfg.password.is_none()
    }

    /// True when a master is known and has at least one established shared connection.
    pub(crate) fn master_reachable(&self) -> bool {
        self.topology
            .load()
            .master
            .as_ref()
            .is_some_and(|m| m.node.is_connected())
    }
}

/// How the pool's data connections to a node are made. Cluster pools send READONLY so that
/// replicas serve reads for their slots.
fn node_options(cfg: &PoolConfig, tls: &PoolTls) -> NodeOptions {
    NodeOptions {
        pool: cfg.name.clone(),
        connections: cfg.backend_connections,
        max_dedicated: cfg.max_dedicated_connections,
        connect_timeout: cfg.connect_timeout,
        request_timeout: cfg.request_timeout,
        username: cfg.backend_username.clone(),
        password: cfg.backend_password.clone(),
        follows_role: matches!(cfg.source, Source::Cluster { .. }),
        tls: tls.connector.clone(),
    }
}

/// A probe or refresh may take as long as a connect, and never less than one period.
fn probe_timeout(cfg: &PoolConfig) -> std::time::Duration {
    cfg.connect_timeout.max(cfg.health_check_interval)
}

/// Starts the watcher of the pool's source and returns the topology it keeps up to date.
/// The pool's mode is decided here, once; from then on the pool only reads the topology.
fn watch_source(
    cfg: &PoolConfig,
    tls: &PoolTls,
    (hubs, hub_shutdown): (&SentinelHubs, &CancellationToken),
    metrics: Arc<PoolMetrics>,
    refresh: Arc<Notify>,
    shutdown: CancellationToken,
) -> Arc<Published> {
    match &cfg.source {
        Source::Standalone { master, replicas } => {
            // The configured nodes, created once: the watcher only probes them.
            let opts = node_options(cfg, tls);
            let watcher = StandaloneWatcher {
                pool: cfg.name.clone(),
                master: Node::new(master, &opts),
                replicas: replicas.iter().map(|r| Node::new(r, &opts)).collect(),
                interval: cfg.health_check_interval,
                timeout: probe_timeout(cfg),
                username: cfg.backend_username.clone(),
                password: cfg.backend_password.clone(),
                tls: tls.connector.clone(),
                max_lag: cfg.max_replica_lag,
            };
            watch::spawn(watcher, metrics, refresh, shutdown)
        }
        Source::Sentinel {
            sentinels,
            master_name,
            username,
            password,
        } => {
            let mut key = HubKey::new(sentinels, username.clone(), password.clone());
            key.tls = tls.connector.clone();
            let hub = hubs.get(key, probe_timeout(cfg), hub_shutdown);
            let watcher = SentinelWatcher {
                pool: cfg.name.clone(),
                master_name: master_name.clone(),
                hub,
                node_options: node_options(cfg, tls),
                interval: cfg.health_check_interval,
                timeout: probe_timeout(cfg),
                max_lag: cfg.max_replica_lag,
            };
            watch::spawn(watcher, metrics, refresh, shutdown)
        }
        Source::Cluster { seeds } => {
            let watcher = ClusterWatcher {
                pool: cfg.name.clone(),
                seeds: seeds.clone(),
                node_options: node_options(cfg, tls),
                interval: cfg.health_check_interval,
                timeout: probe_timeout(cfg),
                max_lag: cfg.max_replica_lag,
            };
            watch::spawn(watcher, metrics, refresh, shutdown)
        }
    }
}
