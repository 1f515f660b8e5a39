//! The seam between a pool and its topology source. Each source (standalone, sentinel,
//! cluster) is a [`Watcher`]; the pool picks one from its config once, at start, and
//! [`spawn`] runs it the same way whatever it is: the snapshot to serve before the first
//! refresh, then a background task publishing into the pool's topology until shutdown.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Published, Topology};
use crate::telemetry::PoolMetrics;

/// What a running watcher publishes into and listens to.
pub(crate) struct Feed {
    /// The pool's current topology, replaced whole on each change.
    pub(crate) topology: Arc<Published>,
    /// Where topology changes and source health are counted.
    pub(crate) metrics: Arc<PoolMetrics>,
    /// Asks for a refresh now (the request path notifies it after a MOVED, a connection
    /// error, LOADING or CLUSTERDOWN). A source that has nothing to refresh ignores it.
    pub(crate) refresh: Arc<Notify>,
    /// Stops the watcher.
    pub(crate) shutdown: CancellationToken,
}

/// A topology source that follows its nodes in the background.
pub(crate) trait Watcher: Send + 'static {
    /// The snapshot served before the first refresh.
    fn initial(&self) -> Topology;

    /// Follows the source until `feed.shutdown`, publishing changes into `feed.topology`.
    fn run(self, feed: Feed) -> impl Future<Output = ()> + Send + 'static;
}

/// Starts `watcher` on the runtime and returns the topology it keeps up to date, already
/// holding the watcher's initial snapshot.
pub(crate) fn spawn<W: Watcher>(
    watcher: W,
    metrics: Arc<PoolMetrics>,
    refresh: Arc<Notify>,
    shutdown: CancellationToken,
) -> Arc<Published> {
    let topology = Arc::new(Published::new(watcher.initial()));
    tokio::spawn(watcher.run(Feed {
        topology: topology.clone(),
        metrics,
        refresh,
        shutdown,
    }));
    topology
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;

    /// Bumps the version on each refresh request; says when it has stopped.
    struct Bumper {
        stopped: oneshot::Sender<()>,
    }

    impl Watcher for Bumper {
        fn initial(&self) -> Topology {
            Topology {
                version: 7,
                ..Topology::default()
            }
        }

        async fn run(self, feed: Feed) {
            loop {
                tokio::select! {
                    _ = feed.shutdown.cancelled() => break,
                    _ = feed.refresh.notified() => {
                        let version = feed.topology.load().version + 1;
                        feed.topology.store(Arc::new(Topology {
                            version,
                            ..Topology::default()
                        }));
                    }
                }
            }
            let _ = self.stopped.send(());
        }
    }

    #[tokio::test]
    async fn spawned_watcher_serves_its_initial_snapshot_then_publishes_until_shutdown() {
        let (stopped, on_stop) = oneshot::channel();
        let refresh = Arc::new(Notify::new());
        let shutdown = CancellationToken::new();
        let topology = spawn(
            Bumper { stopped },
            Arc::new(PoolMetrics::new("watch-test")),
            refresh.clone(),
            shutdown.clone(),
        );
        // Served from the moment the pool starts, before the watcher task has run.
        assert_eq!(topology.load().version, 7);

        refresh.notify_one();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while topology.load().version != 8 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the watcher never saw the refresh"
            );
            tokio::task::yield_now().await;
        }

        shutdown.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(10), on_stop).await;
        assert!(matches!(ended, Ok(Ok(()))), "the watcher did not stop");
    }
}
