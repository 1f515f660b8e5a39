//! Hot reload: the running pools compared with a freshly read config file, entry by entry.
//!
//! An unchanged `[[pools]]` entry keeps its pool, listener and clients. A changed entry gets
//! a new pool (new watcher, new node connections) that every client connecting from then on
//! uses; clients already connected keep the pool they connected to, unchanged, until they
//! disconnect, so no client is dropped by a reload. The listener is kept unless `listen`
//! itself changed. A removed entry stops accepting at once; its connected clients stay
//! served until they leave. A pool nobody uses any more stops its watcher.
//!
//! A change of a pool's `[[pools.users]]` alone keeps the pool: the new users apply to its
//! connected clients (see `session::users`).
//!
//! TLS certificates are re-read by every reload (loading the file loads them): a pool whose
//! entry is unchanged keeps its clients and node connections, and only connections made from
//! then on use the new certificates.
//!
//! Every new listener is bound before anything changes, so a reload either applies whole
//! or (invalid file, address in use) leaves the old configuration in force.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use metrics::counter;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{accept_loop, bind, Live};
use crate::config::{Config, PoolConfig};
use crate::pool::Pool;
use crate::telemetry;
use crate::topology::sentinel_hub::SentinelHubs;

/// One pool being served: the entry it came from and what runs for it.
pub(crate) struct Running {
    /// The `[[pools]]` entry as written in the file (port 0 unresolved), compared on reload.
    config: PoolConfig,
    /// The pool new clients get.
    pool: Arc<Pool>,
    /// Where the accept loop finds that pool.
    slot: Arc<ArcSwap<Pool>>,
    /// The address the listener is bound to.
    pub(crate) addr: SocketAddr,
    /// Stops the accept loop (closing the listener).
    accept: CancellationToken,
    /// Stops the pool's watcher.
    watcher: CancellationToken,
}

/// The control loop's own view of what runs. Only the control loop touches it, so reloads
/// are applied one at a time and need no lock.
pub(crate) struct Proxy {
    /// Pools being served, in config order.
    pub(crate) running: Vec<Running>,
    /// Pools replaced or removed by a reload, still used by clients connected before it.
    retired: Vec<Weak<Pool>>,
    hubs: SentinelHubs,
    root: CancellationToken,
}

/// What a reload does to one `[[pools]]` entry of the new file.
enum Step {
    Keep(usize),
    Replace(usize, Option<TcpListener>),
    Add(TcpListener),
}

impl Proxy {
    pub(crate) fn new(root: CancellationToken) -> Proxy {
        Proxy {
            running: Vec::new(),
            retired: Vec::new(),
            hubs: SentinelHubs::default(),
            root,
        }
    }

    /// Starts a pool and its accept loop on `listener`.
    pub(crate) fn start_pool(&self, config: PoolConfig, listener: TcpListener) -> Running {
        let addr = listener.local_addr().unwrap_or(config.listen);
        let watcher = self.root.child_token();
        let pool = self.new_pool(&config, addr, watcher.clone());
        let slot = Arc::new(ArcSwap::new(pool.clone()));
        let accept = self.root.child_token();
        tokio::spawn(accept_loop(listener, slot.clone(), accept.clone()));
        Running {
            config,
            pool,
            slot,
            addr,
            accept,
            watcher,
        }
    }

    /// The pool knows the address it really listens on (port 0 resolved): cluster pools tell
    /// cluster-aware clients to connect there.
    fn new_pool(
        &self,
        config: &PoolConfig,
        addr: SocketAddr,
        stop: CancellationToken,
    ) -> Arc<Pool> {
        let mut cfg = config.clone();
        cfg.listen = addr;
        Pool::start_shared(cfg, &self.hubs, &self.root, stop)
    }

    /// The pools new clients get, in config order.
    pub(crate) fn pools(&self) -> Vec<Arc<Pool>> {
        self.running.iter().map(|r| r.pool.clone()).collect()
    }

    /// Clients connected to any pool, current or retired.
    pub(crate) fn connected(&self) -> usize {
        let current = self.running.iter().map(|r| r.pool.clone());
        let retired = self.retired.iter().filter_map(Weak::upgrade);
        current
            .chain(retired)
            .map(|p| p.cfg.max_clients - p.clients.available_permits())
            .sum()
    }

    /// Stops accepting on every listener.
    pub(crate) fn stop_accepting(&self) {
        for r in &self.running {
            r.accept.cancel();
        }
    }

    /// Re-reads the config file and applies it; logs and counts the outcome.
    pub(crate) async fn reload(&mut self, live: &Live) -> Result<String, String> {
        let file = live.config.load().source.clone();
        let outcome = match Config::load(&file) {
            Ok(new) => self.apply(new, live).await,
            Err(e) => Err(e.to_string()),
        };
        match &outcome {
            Ok(summary) => {
                tracing::info!(file = %file.display(), "config reloaded: {summary}");
                counter!(telemetry::CONFIG_RELOADS, "result" => "ok").increment(1);
            }
            Err(reason) => {
                tracing::error!(
                    file = %file.display(),
                    "config reload rejected, the previous config stays in force: {reason}"
                );
                counter!(telemetry::CONFIG_RELOADS, "result" => "error").increment(1);
            }
        }
        outcome
    }

    async fn apply(&mut self, new: Config, live: &Live) -> Result<String, String> {
        if live.draining.load(std::sync::atomic::Ordering::Relaxed) {
            return Err("the proxy is draining".into());
        }
        let steps = self.plan(&new).await?;
        let mut notes = Vec::new();
        if admin_differs(&live.config.load(), &new) {
            notes.push("[admin] listen/max_connections/idle_timeout apply at restart".to_string());
        }
        let mut next = Vec::with_capacity(steps.len());
        let mut kept = vec![false; self.running.len()];
        for (cfg, step) in new.pools.iter().zip(steps) {
            match step {
                Step::Keep(i) => {
                    kept[i] = true;
                    if self.running[i].config.users != cfg.users {
                        let pool = &self.running[i].pool;
                        let dropped = crate::session::users::reload_users(pool, &cfg.users);
                        notes.push(format!(
                            "pool {} users changed ({dropped} clients of removed users or \
                             changed passwords disconnected)",
                            cfg.name
                        ));
                        self.running[i].config.users.clone_from(&cfg.users);
                    }
                    // Same files, maybe new contents (a renewed certificate): loading the
                    // new config re-read them, and connections from now on use them.
                    if cfg.tls.is_some() || cfg.backend_tls.is_some() {
                        let pool = &self.running[i].pool;
                        pool.tls.reload(cfg.tls.as_ref(), cfg.backend_tls.as_ref());
                        notes.push(format!("pool {} TLS certificates re-read", cfg.name));
                    }
                    next.push(None);
                }
                Step::Replace(i, listener) => {
                    kept[i] = true;
                    notes.push(format!("pool {} changed", cfg.name));
                    next.push(Some(self.replace(i, cfg.clone(), listener)));
                }
                Step::Add(listener) => {
                    notes.push(format!("pool {} added", cfg.name));
                    next.push(Some(self.start_pool(cfg.clone(), listener)));
                }
            }
        }
        let mut old: Vec<Option<Running>> = std::mem::take(&mut self.running)
            .into_iter()
            .map(Some)
            .collect();
        for (i, was) in old.iter_mut().enumerate() {
            if !kept[i] {
                if let Some(r) = was.take() {
                    notes.push(format!("pool {} removed", r.config.name));
                    r.accept.cancel();
                    self.retire(r.pool, r.watcher);
                }
            }
        }
        for (cfg, started) in new.pools.iter().zip(next) {
            let running = match started {
                Some(r) => r,
                None => take_named(&mut old, &cfg.name).ok_or("internal: kept pool missing")?,
            };
            self.running.push(running);
        }
        live.pools.store(Arc::new(self.pools()));
        live.config.store(Arc::new(new));
        if notes.is_empty() {
            notes.push("no pool changed".into());
        }
        Ok(notes.join("; "))
    }

    /// What to do with each new entry; binds every new listener first, so that a failure
    /// changes nothing.
    async fn plan(&self, new: &Config) -> Result<Vec<Step>, String> {
        let mut steps = Vec::with_capacity(new.pools.len());
        for cfg in &new.pools {
            let found = self.running.iter().position(|r| r.config.name == cfg.name);
            let step = match found {
                // Users apply to the running pool (see `session::users`).
                Some(i) if self.running[i].config.same_but_users(cfg) => Step::Keep(i),
                Some(i) if self.running[i].config.listen == cfg.listen => Step::Replace(i, None),
                Some(i) => Step::Replace(i, Some(bind(cfg).await.map_err(|e| e.to_string())?)),
                None => Step::Add(bind(cfg).await.map_err(|e| e.to_string())?),
            };
            steps.push(step);
        }
        Ok(steps)
    }

    /// A new pool for a changed entry; the old one is retired.
    fn replace(&mut self, i: usize, cfg: PoolConfig, listener: Option<TcpListener>) -> Running {
        let old = &self.running[i];
        let running = match listener {
            Some(listener) => {
                old.accept.cancel();
                self.start_pool(cfg, listener)
            }
            None => {
                let watcher = self.root.child_token();
                let pool = self.new_pool(&cfg, old.addr, watcher.clone());
                old.slot.store(pool.clone());
                Running {
                    config: cfg,
                    pool,
                    slot: old.slot.clone(),
                    addr: old.addr,
                    accept: old.accept.clone(),
                    watcher,
                }
            }
        };
        let (pool, watcher) = (old.pool.clone(), old.watcher.clone());
        self.retire(pool, watcher);
        running
    }

    /// Stops `pool`'s watcher once no client uses the pool any more.
    fn retire(&mut self, pool: Arc<Pool>, watcher: CancellationToken) {
        self.retired.retain(|w| w.strong_count() > 0);
        self.retired.push(Arc::downgrade(&pool));
        let root = self.root.clone();
        tokio::spawn(async move {
            // Sessions hold the pool; this task holds the last other reference.
            while Arc::strong_count(&pool) > 1 {
                tokio::select! {
                    _ = root.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
            watcher.cancel();
        });
    }
}

/// Takes the running pool named `name` out of `old`.
fn take_named(old: &mut [Option<Running>], name: &str) -> Option<Running> {
    old.iter_mut()
        .find(|r| r.as_ref().is_some_and(|r| r.config.name == name))
        .and_then(Option::take)
}

/// True when the admin server's own settings changed (they apply at restart; the reload
/// authorisation settings apply at once, read from the live config).
fn admin_differs(old: &Config, new: &Config) -> bool {
    match (&old.admin, &new.admin) {
        (None, None) => false,
        (Some(a), Some(b)) => {
            a.listen != b.listen
                || a.max_connections != b.max_connections
                || a.idle_timeout != b.idle_timeout
        }
        _ => true,
    }
}
