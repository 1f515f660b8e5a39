//! Sentinel role (`sluice sentinel --config FILE`): a Redis Sentinel that monitors masters
//! (redis-server or sluice nodes), agrees with other sentinels (sluice or Redis, same
//! protocol) that a master is down, elects a leader and fails over, publishing Redis's
//! events, so clients, proxies and Redis's own tools accept it.
//!
//! # Architecture
//!
//! ```text
//! config.rs   Redis's sentinel config lines, read and rewritten
//! state.rs    what is known: groups, masters, replicas, other sentinels (one Mutex)
//! monitor.rs  link tasks per instance: PING / INFO / hello publish, hello subscribe
//! observe.rs  recording replies: liveness, INFO fields, replica discovery
//! hello.rs    the __sentinel__:hello messages: sentinel discovery, config propagation
//! tick.rs     every 100 ms: SDOWN, ODOWN, asking others, corrections, config writes
//! election.rs votes and leader per epoch
//! failover.rs the failover state machine and the switch to the new master
//! server.rs   the client side: commands, pub/sub of events
//! commands.rs SENTINEL subcommands; replies.rs their field lists and INFO
//! ```

pub mod config;

mod clients;
mod commands;
mod election;
mod failover;
mod hello;
mod ids;
mod link;
mod monitor;
mod observe;
mod replies;
mod server;
mod state;
mod tick;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use config::{ConfigError, MasterConfig, SentinelConfig};

use state::{Master, State, Target};

/// Why a sentinel could not run.
#[derive(Debug, thiserror::Error)]
pub enum SentinelError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The config file is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// State shared by the sentinel's tasks.
pub(crate) struct Shared {
    state: Mutex<State>,
    clients: clients::Registry,
    next_client: AtomicU64,
    /// The first 8 digits of the run id (fixed for the sentinel's life; kept outside the
    /// state so that code holding the lock can use it).
    short_id: String,
    /// Instances the link tasks found (see [`Shared::announce`]).
    announced: tokio::sync::mpsc::UnboundedSender<(String, Target)>,
}

impl Shared {
    /// The state; a panic elsewhere while it was held leaves it usable (every update is a
    /// plain field write), so a poisoned lock is taken over rather than spreading the panic.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks for the links of an instance just recorded in `group` (a replica, sentinel or
    /// master found by a link task) to be started, by [`monitor::start_announced`]: the
    /// code recording what links see does not start links itself, so it does not depend
    /// on the link tasks that call it.
    pub(crate) fn announce(&self, group: &str, target: Target) {
        // Only fails once `start_announced` has ended, at shutdown.
        let _ = self.announced.send((group.to_string(), target));
    }

    /// The first 8 digits of the run id (connection names, as Redis uses).
    pub(crate) fn short_id(&self) -> &str {
        &self.short_id
    }
}

/// Runs a sentinel: binds, tells `on_bound` the address, monitors and serves until
/// `shutdown` completes or a client sends SHUTDOWN.
pub async fn run(
    config: SentinelConfig,
    shutdown: impl Future<Output = ()>,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<(), SentinelError> {
    let addr = SocketAddr::new(config.bind, config.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| SentinelError::Bind { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let token = CancellationToken::new();
    let state = new_state(config, bound, token.clone());
    let (announced, announcements) = tokio::sync::mpsc::unbounded_channel();
    let sh = Arc::new(Shared {
        short_id: state.myid.chars().take(8).collect(),
        state: Mutex::new(state),
        clients: clients::Registry::default(),
        next_client: AtomicU64::new(0),
        announced,
    });
    tokio::spawn(monitor::start_announced(
        sh.clone(),
        announcements,
        token.clone(),
    ));
    {
        let mut st = sh.lock();
        let names: Vec<String> = st.masters.keys().cloned().collect();
        for n in names {
            if let Some(m) = st.masters.get_mut(&n) {
                monitor::watch_redis(&sh, &n, Target::Master, &mut m.node);
                commands::restore_known(&sh, m);
            }
        }
    }
    tokio::spawn(tick::run(sh.clone(), token.clone()));
    on_bound(bound);
    tokio::select! {
        _ = shutdown => {}
        _ = server::accept(sh.clone(), listener, token.clone()) => {}
    }
    token.cancel();
    // Dropping the groups stops every link task.
    sh.lock().masters.clear();
    Ok(())
}

fn new_state(config: SentinelConfig, bound: SocketAddr, token: CancellationToken) -> State {
    let (events, _) = broadcast::channel(1024);
    let masters: BTreeMap<String, Master> = config
        .masters
        .iter()
        .map(|m| (m.name.clone(), Master::new(m.clone())))
        .collect();
    State {
        myid: config.myid.clone().unwrap_or_else(ids::new_id),
        current_epoch: config.current_epoch,
        masters,
        announce_port: config.announce_port.unwrap_or(bound.port()),
        // A new id is written to the file at once, so a restart keeps it (as Redis does).
        dirty: config.myid.is_none(),
        config,
        events,
        started: Instant::now(),
        shutdown: token,
    }
}
