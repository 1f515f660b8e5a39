//! The state every connection and background task shares: the store behind the node's one
//! lock, the configuration, the running script's handle and the append-only file. Below the
//! commands (they see it through `Ctx`) and above the data types it holds.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::aof_file::AofFile;
use super::store::Store;

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
    pub cluster: Option<super::cluster::options::ClusterOptions>,
    /// A TLS listener beside the plain one (`--tls-port`); with it, port 0 in `listen` means
    /// no plain listener (TLS only), as in Redis.
    pub tls: Option<NodeTls>,
}

/// A node's TLS listener.
#[derive(Clone, Debug)]
pub struct NodeTls {
    /// Port on `listen`'s address (0 picks a free one).
    pub port: u16,
    /// Certificate, key and the CA clients' certificates are checked against.
    pub files: crate::tls::ListenerTls,
}

/// State shared by every connection and background task.
#[derive(Debug)]
pub struct Shared {
    /// The keyspace, behind the node's one lock (see `store.rs`).
    store: Mutex<Store>,
    /// The configuration the node started with.
    pub config: NodeConfig,
    next_client_id: AtomicU64,
    /// Client connections being served now (see [`Shared::serving`]).
    serving: AtomicUsize,
    /// When the node started (INFO uptime).
    pub started: Instant,
    /// Where the node started listening (the resolved port). CONFIG SET port may move it
    /// since: [`Shared::port`] is the port now.
    pub bound: SocketAddr,
    /// The port the node listens on now (0: none, after CONFIG SET port 0).
    port: AtomicU16,
    /// A listener CONFIG SET port bound, for the accept loop to take over (`None` inside:
    /// stop listening), announced by `relisten_wake`.
    relisten: Mutex<Option<Option<std::net::TcpListener>>>,
    /// Wakes the accept loop to take `relisten`.
    pub(crate) relisten_wake: tokio::sync::Notify,
    /// Cancelled when the node shuts down (SHUTDOWN, signal).
    pub shutdown: CancellationToken,
    /// The running script, seen without the lock (BUSY replies, SCRIPT KILL).
    pub busy: Arc<super::script::Busy>,
    /// The append-only file, once loaded (`appendonly yes`).
    pub aof: OnceLock<AofFile>,
    /// The node runs on more than one worker thread (`--threads`): another worker's batch
    /// may start a script while a connection waits for the store (see
    /// [`Shared::lock_unless_script`]).
    multi_worker: bool,
}

/// Tries at the store this many times, yielding the thread between tries, before sleeping
/// [`STORE_RETRY_SLEEP`] between them: a batch holds the store for microseconds, the
/// occasional long command (DEBUG SLEEP, KEYS on a large keyspace) for longer.
const STORE_YIELDS: u32 = 64;
/// The pause between two tries at a store held for longer.
const STORE_RETRY_SLEEP: std::time::Duration = std::time::Duration::from_micros(100);

impl Shared {
    /// Counts a client connection as served until the guard drops.
    pub(crate) fn serve_guard(self: &Arc<Self>) -> ServingGuard {
        self.serving.fetch_add(1, Ordering::Relaxed);
        ServingGuard(self.clone())
    }
    /// True when more than one client connection is being served: only then can a
    /// connection's replies wait for other connections' batches (see `conn.rs`, `run`).
    pub(crate) fn others_served(&self) -> bool {
        self.serving.load(Ordering::Relaxed) > 1
    }
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
        if let Some(t) = &config.tls {
            settings.init("tls-port", t.port.to_string());
        }
        if let Some(pw) = &config.requirepass {
            settings.init("requirepass", pw.clone());
        }
        let busy = store.scripting.busy.clone();
        Shared {
            busy,
            store: Mutex::new(store),
            config,
            next_client_id: AtomicU64::new(1),
            serving: AtomicUsize::new(0),
            started: Instant::now(),
            bound,
            port: AtomicU16::new(bound.port()),
            relisten: Mutex::new(None),
            relisten_wake: tokio::sync::Notify::new(),
            shutdown: CancellationToken::new(),
            aof: OnceLock::new(),
            multi_worker: tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.metrics().num_workers() > 1),
        }
    }
    /// The port the node listens on now (INFO `tcp_port`, REPLCONF listening-port).
    pub fn port(&self) -> u16 {
        self.port.load(Ordering::Relaxed)
    }
    /// CONFIG SET port: binds `port` on the address the node listens on (0: stops
    /// listening) and hands the listener to the accept loop, which closes the old one, as
    /// Redis's `changeListenPort` does. Fails, changing nothing, if the port cannot be bound.
    pub(crate) fn move_listener(&self, port: u16) -> std::io::Result<()> {
        if port == self.port() {
            return Ok(());
        }
        let next = if port == 0 {
            None
        } else {
            let l = std::net::TcpListener::bind(SocketAddr::new(self.bound.ip(), port))?;
            l.set_nonblocking(true)?;
            Some(l)
        };
        *self.relisten.lock().unwrap_or_else(|p| p.into_inner()) = Some(next);
        self.port.store(port, Ordering::Relaxed);
        self.relisten_wake.notify_one();
        Ok(())
    }
    /// The listener [`Shared::move_listener`] left for the accept loop, if any.
    pub(crate) fn take_listener(&self) -> Option<Option<std::net::TcpListener>> {
        self.relisten
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
    /// Locks the store (a poisoned lock is recovered: see [`super::store::lock`]).
    pub fn lock(&self) -> super::store::Locked<'_> {
        super::store::lock(&self.store)
    }
    /// Locks the store for a client's batch, unless a script holds it: `None` then, and the
    /// connection waits as for a script it saw before asking (BUSY past
    /// `busy-reply-threshold`, as Redis answers while a script runs).
    ///
    /// Looking for a script, then blocking on the lock, is not enough with several workers:
    /// a connection can find no script running, then wait on the lock behind another
    /// worker's batch, which starts a script; it would wait for the script's end, not get
    /// BUSY. So it tries the lock, and between tries looks whether a script started. (With
    /// one worker no other batch runs meanwhile, and a script announces itself before it
    /// holds the store away from the event loop: off the loop, or after the hand-off.)
    #[inline]
    pub(crate) fn lock_unless_script(&self) -> Option<super::store::Locked<'_>> {
        if self.busy.running() {
            return None;
        }
        if !self.multi_worker {
            return Some(self.lock());
        }
        self.lock_unless_script_started()
    }
    /// [`Shared::lock_unless_script`] with several workers, out of line: the one-worker
    /// path is every request's.
    #[inline(never)]
    fn lock_unless_script_started(&self) -> Option<super::store::Locked<'_>> {
        let mut tries = 0u32;
        loop {
            match self.store.try_lock() {
                // Free: taken again through `lock`, whose guard ends the batch's turn
                // (`store::Locked`). Another worker can take it in between (a window of
                // nanoseconds, where this used to be a whole batch's time).
                Ok(free) => {
                    drop(free);
                    return Some(self.lock());
                }
                Err(std::sync::TryLockError::Poisoned(_)) => return Some(self.lock()),
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
            if self.busy.running() {
                return None;
            }
            tries += 1;
            if tries < STORE_YIELDS {
                std::thread::yield_now();
            } else {
                std::thread::sleep(STORE_RETRY_SLEEP);
            }
        }
    }
    /// The store's mutex itself, for code that must not depend on `Shared` (the AOF file).
    pub fn store(&self) -> &Mutex<Store> {
        &self.store
    }
    /// A new client id.
    pub fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Keeps a client connection counted in [`Shared::others_served`] while it lives.
pub(crate) struct ServingGuard(Arc<Shared>);

impl Drop for ServingGuard {
    fn drop(&mut self) {
        self.0.serving.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
impl NodeConfig {
    /// A plain node on a free loopback port, in the working directory (unit tests).
    pub(crate) fn for_tests() -> NodeConfig {
        NodeConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            replicaof: None,
            requirepass: None,
            appendonly: false,
            dir: ".".into(),
            cluster: None,
            tls: None,
        }
    }
}

#[cfg(test)]
impl Shared {
    /// The shared state of a [`NodeConfig::for_tests`] node that listens nowhere (unit tests).
    pub(crate) fn for_tests() -> Shared {
        Shared::new(
            NodeConfig::for_tests(),
            "127.0.0.1:6379".parse().expect("addr"),
        )
    }
}
