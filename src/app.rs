//! Wires a configuration into running listeners, topology watchers and the admin server, and
//! tears them down on shutdown. `run` stops when a future completes (stacks, tests);
//! `run_controlled` serves reload and drain requests (the CLI's signals, `POST /reload`).
//! Reloads are in [`reload`], draining in [`lifecycle`].

mod lifecycle;
mod reload;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::admin;
use crate::config::{Config, PoolConfig};
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

/// What the process asks of a running proxy (signals, `POST /reload`).
#[derive(Debug)]
pub enum Control {
    /// Re-read the config file; the outcome (a summary, or why the new file was rejected)
    /// goes to the sender when there is one.
    Reload(Option<oneshot::Sender<Result<String, String>>>),
    /// Stop accepting, let connected clients finish up to `drain_timeout`, then return; a
    /// second one returns at once.
    Terminate,
}

/// What the admin server and the control loop share about the running proxy.
pub struct Live {
    /// The configuration in force, replaced whole by a successful reload.
    pub config: ArcSwap<Config>,
    /// The pools new clients get, in config order.
    pub(crate) pools: ArcSwap<Vec<Arc<Pool>>>,
    /// Set once draining has started: `/ready` answers 503.
    pub draining: AtomicBool,
    /// Where `POST /reload` sends its request.
    pub control: mpsc::Sender<Control>,
}

/// Starts everything in `config`; `on_bound` is told the listening addresses once all
/// listeners are bound; returns as soon as `shutdown` completes, without draining (stacks and
/// tests stop this way).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
    on_bound: impl FnOnce(&Bound),
) -> Result<(), AppError> {
    let (tx, rx) = mpsc::channel(16);
    tokio::select! {
        r = run_controlled(config, tx, rx, on_bound) => r,
        _ = shutdown => {
            tracing::info!("shutting down");
            Ok(())
        }
    }
}

/// Starts everything in `config` and serves [`Control`] requests from `rx` (`tx` is handed to
/// the admin server for `POST /reload`) until a `Terminate` has drained the proxy.
pub async fn run_controlled(
    config: Config,
    tx: mpsc::Sender<Control>,
    mut rx: mpsc::Receiver<Control>,
    on_bound: impl FnOnce(&Bound),
) -> Result<(), AppError> {
    let metrics = prometheus()?;
    let token = CancellationToken::new();
    // Whichever way this returns (or is dropped), everything it started stops.
    let _stop = token.clone().drop_guard();
    spawn_upkeep(metrics, token.clone());
    // Both reload outcomes are exported from the start, so alerts on them see a 0 first.
    for result in ["ok", "error"] {
        metrics::counter!(crate::telemetry::CONFIG_RELOADS, "result" => result).increment(0);
    }
    let mut proxy = reload::Proxy::new(token.clone());
    let mut bound = Bound {
        pools: Vec::new(),
        admin: None,
    };
    for cfg in &config.pools {
        let listener = bind(cfg).await?;
        let running = proxy.start_pool(cfg.clone(), listener);
        bound.pools.push((cfg.name.clone(), running.addr));
        proxy.running.push(running);
    }
    let live = Arc::new(Live {
        pools: ArcSwap::from_pointee(proxy.pools()),
        config: ArcSwap::from_pointee(config),
        draining: AtomicBool::new(false),
        control: tx,
    });
    if let Some(admin_cfg) = &live.config.load().admin {
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
                live: live.clone(),
                metrics,
            }),
            admin_cfg.clone(),
            token.child_token(),
        ));
    }
    on_bound(&bound);
    loop {
        // `live` holds a sender, so the channel never closes.
        let Some(msg) = rx.recv().await else {
            return Ok(());
        };
        match msg {
            Control::Reload(reply) => {
                let outcome = proxy.reload(&live).await;
                if let Some(reply) = reply {
                    let _ = reply.send(outcome);
                }
            }
            Control::Terminate => {
                lifecycle::drain(&proxy, &live, &mut rx).await;
                return Ok(());
            }
        }
    }
}

/// Binds a pool's listener.
pub(crate) async fn bind(cfg: &PoolConfig) -> Result<TcpListener, AppError> {
    TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| AppError::Bind {
            addr: cfg.listen,
            what: format!("pool '{}'", cfg.name),
            source,
        })
}

/// Histograms keep raw samples until upkeep folds them into buckets: run it often so memory
/// stays flat under load even when nobody scrapes.
fn spawn_upkeep(metrics: &'static PrometheusHandle, token: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tick.tick() => metrics.run_upkeep(),
            }
        }
    });
}

/// Accepts clients until shutdown, enforcing `max_clients`. Each client goes to the pool in
/// `slot` at the time it connects: a reload swaps the pool there without closing the listener.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    slot: Arc<ArcSwap<Pool>>,
    shutdown: CancellationToken,
) {
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
                tracing::warn!(pool = %slot.load().cfg.name, error = %e, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let pool = slot.load_full();
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
