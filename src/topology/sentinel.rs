//! Sentinel topology: the master and replicas of one master group, followed live.
//!
//! Every `health_check_interval` (and at once when a sentinel publishes an event) the watcher
//! asks a sentinel (rotating past dead ones) for the master's address and the group's replicas,
//! then probes every node itself. A master is published only once its own `INFO replication`
//! says `role:master` (the sentinel client spec's "trust but verify": right after a failover
//! the old master can keep claiming the role for seconds, and a sentinel's answer can be
//! stale). A replica serves reads only while it is linked to *that* master and in sync.
//!
//! During a failover, writes are held (see the session) from `+try-failover` until a new
//! master is confirmed. The sentinel connections themselves live in a hub shared by every
//! pool on the same sentinels (`sentinel_hub`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::broadcast::error::RecvError;

use super::health::{lag_health, ProbeResult, Prober, ReplicationInfo};
use super::sentinel_hub::{Event, GroupView, SentinelHub};
use super::watch::{Feed, Watcher};
use super::{Health, NodeView, Published, Topology, CATCH_UP_RECHECK};
use crate::backend::{Node, NodeOptions};
use crate::config::ReplicaLag;
use crate::telemetry::PoolMetrics;

/// How long writes stay held after a failover started, if neither a new master nor an abort
/// is seen (a held write gives up after `master_wait` anyway; this only bounds how long the
/// old master is distrusted).
const FAILOVER_HOLD: Duration = Duration::from_secs(15);

/// Everything the sentinel watcher needs.
pub(crate) struct SentinelWatcher {
    /// Pool name (logs).
    pub(crate) pool: String,
    /// Master group name.
    pub(crate) master_name: String,
    /// The connections to the sentinels, shared with other pools on the same sentinels.
    pub(crate) hub: Arc<SentinelHub>,
    /// How nodes are connected to (shared with the request path).
    pub(crate) node_options: NodeOptions,
    /// Refresh and probe period.
    pub(crate) interval: Duration,
    /// Timeout of one probe.
    pub(crate) timeout: Duration,
    /// Replicas further behind than this leave the read pool.
    pub(crate) max_lag: Option<ReplicaLag>,
}

impl Watcher for SentinelWatcher {
    /// No master until a sentinel names one and the node confirms it.
    fn initial(&self) -> Topology {
        Topology::default()
    }

    /// Follows the group until shutdown, publishing changes into the topology.
    async fn run(self, feed: Feed) {
        let Feed {
            topology,
            metrics,
            shutdown,
            ..
        } = feed;
        let mut events = self.hub.subscribe();
        let mut state = RoundState::default();
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let recheck = topology.load().catching_up();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
                _ = tokio::time::sleep(CATCH_UP_RECHECK), if recheck => {}
                first = events.recv() => {
                    // Coalesce a burst of events into one refresh, acting on failover ones.
                    // Falling behind the hub's backlog only costs events that this refresh
                    // covers anyway.
                    let mut next = match first {
                        Ok(event) => Some(event),
                        Err(RecvError::Lagged(_)) => Some(Event::Refresh),
                        Err(RecvError::Closed) => return,
                    };
                    while let Some(event) = next {
                        self.on_event(event, &mut state.held, &topology, &metrics);
                        next = events.try_recv().ok();
                    }
                }
            }
            let Some(view) = self.hub.ask(&self.master_name).await else {
                self.keep_stale(&topology, &metrics);
                continue;
            };
            metrics.source_up.set(1.0);
            if let Some(next) = self.probe_round(&view, &mut state).await {
                Topology::publish(next, &topology, &metrics, &self.pool);
            }
        }
    }
}

/// What the watcher keeps from one round to the next.
#[derive(Default)]
struct RoundState {
    /// During a failover of our group: the master being replaced, and until when it is held.
    held: Option<(String, tokio::time::Instant)>,
    /// The group's nodes, by address.
    nodes: HashMap<String, Arc<Node>>,
    /// One prober per node, by address.
    probers: HashMap<String, Prober>,
}

impl SentinelWatcher {
    /// A failover of our group started: hold writes (publish no master) until a new master
    /// is confirmed or the failover is aborted.
    fn on_event(
        &self,
        event: Event,
        held: &mut Option<(String, tokio::time::Instant)>,
        topology: &Published,
        metrics: &PoolMetrics,
    ) {
        match event {
            Event::FailoverStarted(g) if g == self.master_name => {
                let previous = topology.load();
                if let Some(m) = &previous.master {
                    tracing::info!(pool = %self.pool, master = %m.node.addr, "failover started: holding writes");
                    *held = Some((
                        m.node.addr.clone(),
                        tokio::time::Instant::now() + FAILOVER_HOLD,
                    ));
                    let mut paused = Topology::clone(&previous);
                    paused.master = None;
                    paused.version += 1;
                    metrics.topology_changes.increment(1);
                    metrics.master_up.set(0.0);
                    topology.store(Arc::new(paused));
                }
            }
            Event::FailoverAborted(g) if g == self.master_name => *held = None,
            _ => {}
        }
    }

    /// Every sentinel is unreachable: keep serving from the last topology, and say so.
    fn keep_stale(&self, topology: &Published, metrics: &PoolMetrics) {
        tracing::warn!(pool = %self.pool, "no sentinel answered; keeping the last known topology");
        metrics.source_up.set(0.0);
        let previous = topology.load();
        if !previous.source_stale {
            let mut stale = Topology::clone(&previous);
            stale.source_stale = true;
            topology.store(Arc::new(stale));
        }
    }

    /// Probes every node sentinel names and builds the snapshot to publish.
    async fn probe_round(&self, view: &GroupView, state: &mut RoundState) -> Option<Topology> {
        let addrs: Vec<String> = std::iter::once(view.master.clone())
            .chain(view.replicas.iter().cloned())
            .collect();
        for a in &addrs {
            state
                .nodes
                .entry(a.clone())
                .or_insert_with(|| Node::new(a, &self.node_options));
            state.probers.entry(a.clone()).or_insert_with(|| {
                Prober::new(
                    a,
                    self.node_options.username.clone(),
                    self.node_options.password.clone(),
                    self.timeout,
                )
            });
        }
        // Nodes that left the group are dropped (their connections close with them).
        state.nodes.retain(|a, _| addrs.contains(a));
        state.probers.retain(|a, _| addrs.contains(a));
        let round = std::time::Instant::now();
        let results = {
            let mut list: Vec<(&String, &mut Prober)> = state.probers.iter_mut().collect();
            list.sort_by_key(|(a, _)| addrs.iter().position(|x| x == *a));
            let futs = list
                .into_iter()
                .map(|(a, p)| async move { (a.clone(), p.probe().await) });
            join_all(futs).await
        };
        let mut by_addr: HashMap<String, ProbeResult> = results.into_iter().collect();
        let master_info = match by_addr.get(&view.master) {
            Some(ProbeResult::Info(info)) if info.role == "master" => Some(info.clone()),
            _ => None,
        };
        let master_node = state.nodes.get(&view.master).cloned()?;
        if state
            .held
            .as_ref()
            .is_some_and(|(old, until)| *old != view.master || tokio::time::Instant::now() > *until)
        {
            state.held = None;
        }
        let master = match by_addr.remove(&view.master) {
            // The failover's old master stays unused until sentinel names another one.
            _ if state.held.is_some() => None,
            Some(ProbeResult::Info(info)) if info.role == "master" => Some(NodeView {
                node: master_node,
                health: Health::Healthy,
                offset: info.master_repl_offset,
            }),
            // Not (yet) confirmed: publish no master rather than send writes to a node that
            // would refuse them or, worse, accept them and lose them at its demotion.
            _ => None,
        };
        let mut replicas = Vec::new();
        for addr in &view.replicas {
            let Some(node) = state.nodes.get(addr).cloned() else {
                continue;
            };
            let (health, offset) =
                self.replica_health(view, addr, by_addr.remove(addr), master_info.as_ref());
            replicas.push(NodeView {
                node,
                health,
                offset,
            });
        }
        let mut next = Topology::new(0, master, replicas);
        next.probed_at = Some(round);
        Some(next)
    }

    /// A replica serves reads only while it replicates from the master sentinel names, is in
    /// sync, and is within `max_lag`.
    fn replica_health(
        &self,
        view: &GroupView,
        addr: &str,
        probe: Option<ProbeResult>,
        master_info: Option<&ReplicationInfo>,
    ) -> (Health, Option<u64>) {
        match probe {
            Some(ProbeResult::Info(info)) => {
                let health = match info.replica_health() {
                    Health::Healthy
                        if info.master_addr.as_deref() != Some(view.master.as_str()) =>
                    {
                        Health::WrongRole(format!(
                            "replicates from {}",
                            info.master_addr.clone().unwrap_or_else(|| "nothing".into())
                        ))
                    }
                    Health::Healthy => lag_health(self.max_lag, master_info, addr, &info),
                    other => other,
                };
                (health, info.slave_repl_offset)
            }
            Some(ProbeResult::Loading) => (Health::Loading, None),
            Some(ProbeResult::Down(reason)) => (Health::Down(reason), None),
            None => (Health::Unknown, None),
        }
    }
}
