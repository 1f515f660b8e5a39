//! Wires a configuration into running listeners, topology watchers and the admin server, and
//! tears them down on shutdown. `run` takes the shutdown signal as a future so tests and the
//! CLI stop it the same way.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin;
use crate::config::Config;
use crate::pool::Pool;
use crate::session::Client;
use crate::telemetry;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Which listener.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The metrics recorder could not be set up.
    #[error("metrics: {0}")]
    Metrics(String),
}

/// Where the running proxy listens (ports resolved when the config said 0).
#[derive(Debug, Clone)]
pub struct Bound {
    /// `(pool name, address)` per pool.
    pub pools: Vec<(String, SocketAddr)>,
    /// Admin server address.
    pub admin: Option<SocketAddr>,
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder (installed on first use).
pub fn prometheus() -> Result<&'static PrometheusHandle, AppError> {
    if let Some(h) = PROMETHEUS.get() {
        return Ok(h);
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(telemetry::LATENCY.to_string()),
            telemetry::LATENCY_BUCKETS,
        )
        .map_err(|e| AppError::Metrics(e.to_string()))?
        .install_recorder()
        .map_err(|e| AppError::Metrics(e.to_string()))?;
    let _ = PROMETHEUS.set(handle);
    PROMETHEUS
        .get()
        .ok_or_else(|| AppError::Metrics("recorder not installed".into()))
}

/// Starts everything in `config`; `on_bound` is told the listening addresses once all
/// listeners are bound; returns when `shutdown` completes.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
    on_bound: impl FnOnce(&Bound),
) -> Result<(), AppError> {
    let metrics = prometheus()?;
    let token = CancellationToken::new();
    // Histograms keep raw samples until upkeep folds them into buckets: run it often so memory
    // stays flat under load even when nobody scrapes.
    let upkeep_token = token.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = upkeep_token.cancelled() => return,
                _ = tick.tick() => metrics.run_upkeep(),
            }
        }
    });

    let mut pools = Vec::new();
    // Pools on the same sentinels share their connections to them.
    let hubs = crate::topology::sentinel_hub::SentinelHubs::default();
    let mut bound = Bound {
        pools: Vec::new(),
        admin: None,
    };
    for cfg in &config.pools {
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| AppError::Bind {
                addr: cfg.listen,
                what: format!("pool '{}'", cfg.name),
                source,
            })?;
        let addr = listener.local_addr().unwrap_or(cfg.listen);
        bound.pools.push((cfg.name.clone(), addr));
        // The pool knows the address it really listens on (port 0 resolved): cluster pools
        // tell cluster-aware clients to connect there.
        let mut cfg = cfg.clone();
        cfg.listen = addr;
        let pool = Pool::start(cfg, &hubs, token.child_token());
        pools.push(pool.clone());
        tokio::spawn(accept_loop(listener, pool, token.child_token()));
    }
    if let Some(admin_cfg) = &config.admin {
        let listener = TcpListener::bind(admin_cfg.listen)
            .await
            .map_err(|source| AppError::Bind {
                addr: admin_cfg.listen,
                what: "admin".into(),
                source,
            })?;
        bound.admin = Some(listener.local_addr().unwrap_or(admin_cfg.listen));
        tokio::spawn(admin::serve(
            listener,
            Arc::new(admin::AdminState {
                pools: pools.clone(),
                metrics,
            }),
            admin_cfg.clone(),
            token.child_token(),
        ));
    }
    on_bound(&bound);
    shutdown.await;
    tracing::info!("shutting down");
    token.cancel();
    Ok(())
}

/// Accepts clients until shutdown, enforcing `max_clients`.
async fn accept_loop(listener: TcpListener, pool: Arc<Pool>, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        let (mut stream, peer) = match accepted {
            Ok(x) => {
                backoff = Duration::from_millis(5);
                x
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(pool = %pool.cfg.name, error = %e, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let permit = match pool.clients.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                pool.metrics.rejected.increment(1);
                tokio::spawn(async move {
                    let _ = stream
                        .write_all(b"-ERR max number of clients reached\r\n")
                        .await;
                });
                continue;
            }
        };
        pool.metrics.accepted.increment(1);
        // The session is built here and moved into its task whole, so the task holds nothing
        // else (no per-session shutdown waiter either: sessions end with the runtime).
        tokio::spawn(Client::new(pool.clone(), stream, peer, permit).run());
    }
}
