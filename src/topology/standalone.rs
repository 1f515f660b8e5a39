//! Standalone topology: the master and replicas come from the config; the watcher probes each
//! of them every `health_check_interval` and publishes a new snapshot whenever a node's health
//! changes, so a replica that dies, reloads or resyncs leaves the read pool and comes back on
//! its own.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use super::health::{lag_health, ProbeResult, Prober};
use super::watch::{Feed, Watcher};
use super::{Health, NodeView, Topology, CATCH_UP_RECHECK};
use crate::backend::Node;
use crate::config::ReplicaLag;

/// Everything the standalone watcher needs.
pub(crate) struct StandaloneWatcher {
    /// Pool name (logs).
    pub(crate) pool: String,
    /// The configured master.
    pub(crate) master: Arc<Node>,
    /// The configured replicas.
    pub(crate) replicas: Vec<Arc<Node>>,
    /// Probe period.
    pub(crate) interval: Duration,
    /// Probe timeout.
    pub(crate) timeout: Duration,
    /// Node credentials for probes.
    pub(crate) username: Option<String>,
    /// Node password for probes.
    pub(crate) password: Option<String>,
    /// Replicas further behind than this leave the read pool.
    pub(crate) max_lag: Option<ReplicaLag>,
}

impl Watcher for StandaloneWatcher {
    /// The snapshot before any probe: master assumed usable, replicas unknown (not readable).
    fn initial(&self) -> Topology {
        let view = |n: &Arc<Node>, health| NodeView {
            node: n.clone(),
            health,
            offset: None,
        };
        Topology::new(
            0,
            Some(view(&self.master, Health::Unknown)),
            self.replicas
                .iter()
                .map(|r| view(r, Health::Unknown))
                .collect(),
        )
    }

    /// Probes until shutdown, publishing changes into the topology.
    async fn run(self, feed: Feed) {
        let Feed {
            topology,
            metrics,
            shutdown,
            ..
        } = feed;
        let mut probers: Vec<Prober> = std::iter::once(&self.master)
            .chain(self.replicas.iter())
            .map(|n| {
                Prober::new(
                    &n.addr,
                    self.username.clone(),
                    self.password.clone(),
                    self.timeout,
                )
            })
            .collect();
        // The config is the source of a standalone topology: always there.
        metrics.source_up.set(1.0);
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let recheck = topology.load().catching_up();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
                _ = tokio::time::sleep(CATCH_UP_RECHECK), if recheck => {}
            }
            let round = std::time::Instant::now();
            let results = join_all(probers.iter_mut().map(|p| p.probe())).await;
            let master_info = match &results[0] {
                ProbeResult::Info(info) if info.role == "master" => Some(info.clone()),
                _ => None,
            };
            let mut views = Vec::with_capacity(results.len());
            for (i, res) in results.into_iter().enumerate() {
                let node = if i == 0 {
                    &self.master
                } else {
                    &self.replicas[i - 1]
                };
                let (health, offset) = match res {
                    ProbeResult::Info(info) if i == 0 => {
                        let h = if info.role == "master" {
                            Health::Healthy
                        } else {
                            Health::WrongRole(info.role.clone())
                        };
                        (h, info.master_repl_offset)
                    }
                    ProbeResult::Info(info) => {
                        let health = match info.replica_health() {
                            Health::Healthy => {
                                lag_health(self.max_lag, master_info.as_ref(), &node.addr, &info)
                            }
                            other => other,
                        };
                        (health, info.slave_repl_offset)
                    }
                    ProbeResult::Loading => (Health::Loading, None),
                    ProbeResult::Down(reason) => (Health::Down(reason), None),
                };
                views.push(NodeView {
                    node: node.clone(),
                    health,
                    offset,
                });
            }
            let master = views.remove(0);
            let mut next = Topology::new(0, Some(master), views);
            next.probed_at = Some(round);
            Topology::publish(next, &topology, &metrics, &self.pool);
        }
    }
}
