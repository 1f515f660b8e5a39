//! The node's listener, shared state and background tasks.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::aof;
use super::aof_file::{self, AofFile, FsyncPolicy};
use super::conn;
use super::repl::{master, replica};
use super::store::Store;
use super::NodeError;

/// How a node is configured (`sluice node ...`).
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Master to replicate from (`--replicaof HOST PORT`).
    pub replicaof: Option<(String, u16)>,
    /// Password clients must AUTH with.
    pub requirepass: Option<String>,
    /// Append-only persistence.
    pub appendonly: bool,
    /// Working directory for the AOF.
    pub dir: PathBuf,
    /// Cluster mode (`--cluster-enabled yes`), with its options.
    pub cluster: Option<super::cluster::ClusterOptions>,
}

/// State shared by every connection and background task.
#[derive(Debug)]
pub struct Shared {
    /// The keyspace, behind the node's one lock (see `store.rs`).
    store: Mutex<Store>,
    /// The configuration the node started with.
    pub config: NodeConfig,
    next_client_id: AtomicU64,
    /// When the node started (INFO uptime).
    pub started: Instant,
    /// Where the node listens (the resolved port, for INFO and replication).
    pub bound: SocketAddr,
    /// Cancelled when the node shuts down (SHUTDOWN, signal).
    pub shutdown: CancellationToken,
    /// The running script, seen without the lock (BUSY replies, SCRIPT KILL).
    pub busy: Arc<super::script::Busy>,
    /// The append-only file, once loaded (`appendonly yes`).
    pub aof: OnceLock<AofFile>,
}

impl Shared {
    /// State for a node with `config`, listening on `bound`.
    pub fn new(config: NodeConfig, bound: SocketAddr) -> Shared {
        let mut store = Store::new();
        let settings = &mut store.settings;
        settings.init("port", bound.port().to_string());
        settings.init("bind", bound.ip().to_string());
        settings.init("dir", config.dir.display().to_string());
        settings.init(
            "appendonly",
            if config.appendonly { "yes" } else { "no" }.into(),
        );
        if let Some(pw) = &config.requirepass {
            settings.init("requirepass", pw.clone());
        }
        let busy = store.scripting.busy.clone();
        Shared {
            busy,
            store: Mutex::new(store),
            config,
            next_client_id: AtomicU64::new(1),
            started: Instant::now(),
            bound,
            shutdown: CancellationToken::new(),
            aof: OnceLock::new(),
        }
    }
    /// Locks the store. A panic while holding the lock poisons it; the keyspace is still
    /// structurally valid (every mutation is a single container operation), so we carry on
    /// rather than take the whole node down.
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// A new client id.
    pub fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Runs a node: binds, tells `on_bound` the address, serves until `shutdown` completes (or a
/// SHUTDOWN command).
pub async fn run(
    config: NodeConfig,
    shutdown: impl Future<Output = ()>,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<(), NodeError> {
    if !config.dir.is_dir() {
        return Err(NodeError::Dir(config.dir.clone()));
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| NodeError::Bind {
            addr: config.listen,
            source,
        })?;
    let bound = listener.local_addr().unwrap_or(config.listen);
    let shared = Arc::new(Shared::new(config, bound));
    // Load the AOF before anyone is accepted (connections wait in the listen backlog).
    let mut aof_writer = None;
    if shared.config.appendonly {
        let path = aof::path(&shared.config.dir);
        let file = aof::open(&shared, &path)?;
        let (seq, size, policy) = {
            let s = shared.lock();
            let policy = FsyncPolicy::parse(s.settings.get("appendfsync").unwrap_or_default());
            s.repl
                .aof
                .as_ref()
                .map_or((0, 0, policy), |a| (a.seq, a.size, policy))
        };
        let file = AofFile::new(file, seq, size, policy)
            .map_err(|source| aof::AofError::Io { path, source })?;
        let _ = shared.aof.set(file);
        aof_writer = aof_file::spawn_syncer(shared.clone());
    }
    if let Some(opts) = &shared.config.cluster {
        super::cluster::start(&shared, opts).await?;
    }
    if let Some((host, port)) = &shared.config.replicaof {
        replica::set_master(&mut shared.lock(), host, *port);
    }
    tokio::spawn(replica::supervise(shared.clone()));
    tokio::spawn(master::ping_replicas(shared.clone()));
    on_bound(bound);
    let token = shared.shutdown.clone();
    tokio::spawn(active_expiry(shared.clone()));
    tokio::spawn(accept_loop(listener, shared.clone()));
    tokio::select! {
        _ = shutdown => {}
        _ = token.cancelled() => {}
    }
    token.cancel();
    // A running script would keep its thread, and so the process, alive.
    shared.busy.force_kill();
    // The AOF thread writes and fsyncs what is left before the process exits.
    if let Some(w) = aof_writer {
        let _ = tokio::task::spawn_blocking(move || w.join()).await;
    }
    Ok(())
}

/// Accepts clients until shutdown; each gets its own task.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, _peer)) => {
                backoff = Duration::from_millis(5);
                tokio::spawn(conn::serve(shared.clone(), stream));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Redis's active expiry: ten times a second, delete a sample of expired keys.
async fn active_expiry(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tick.tick() => {
                if shared.busy.running() {
                    continue; // never block the event loop behind a running script
                }
                let mut store = shared.lock();
                store.active_expire_cycle();
                let now = super::store::unix_ms();
                store.stats.sample_ops(now);
                store.publish_feed();
            }
        }
    }
}
