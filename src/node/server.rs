//! The node's listener and background tasks (the state they share is in `shared.rs`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::aof;
use super::aof_file::{AofFile, FsyncPolicy};
use super::conn;
use super::error::NodeError;
use super::repl::{master, replica};
use super::shared::{NodeConfig, Shared};
use crate::tls::live::Acceptor;
use crate::tls::ClientStream;

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
    // Port 0 beside a TLS port means TLS only, as in Redis (alone, it picks a free port).
    let tls_only = config.tls.is_some() && config.listen.port() == 0;
    let listener = match tls_only {
        true => None,
        false => Some(bind(config.listen).await?),
    };
    let tls = match &config.tls {
        Some(t) => {
            let listener = bind(SocketAddr::new(config.listen.ip(), t.port)).await?;
            Some((listener, Arc::new(Acceptor::new(&t.files, "node"))))
        }
        None => None,
    };
    let bound = match &listener {
        Some(l) => l.local_addr().unwrap_or(config.listen),
        None => config.listen,
    };
    // What `on_bound` reports: the TLS address when that is all there is.
    let reported = match (&listener, &tls) {
        (None, Some((l, _))) => l.local_addr().unwrap_or(config.listen),
        _ => bound,
    };
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
            .map_err(|source| super::error::AofError::Io { path, source })?;
        let _ = shared.aof.set(file);
        aof_writer = aof::spawn_syncer(shared.clone());
    }
    if let Some(opts) = &shared.config.cluster {
        super::cluster::start(&shared, opts).await?;
    }
    if let Some((host, port)) = &shared.config.replicaof {
        super::repl::role::set_master(&mut shared.lock(), host, *port);
    }
    tokio::spawn(replica::supervise(shared.clone()));
    tokio::spawn(master::ping_replicas(shared.clone()));
    on_bound(reported);
    let token = shared.shutdown.clone();
    tokio::spawn(active_expiry(shared.clone()));
    tokio::spawn(accept_loop(listener, shared.clone()));
    if let Some((listener, acceptor)) = tls {
        tokio::spawn(accept_tls(listener, acceptor, shared.clone()));
    }
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

async fn bind(addr: SocketAddr) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Bind { addr, source })
}

/// Accepts clients until shutdown; each gets its own task.
async fn accept_loop(mut listener: Option<TcpListener>, shared: Arc<Shared>) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            // CONFIG SET port: the old listener is dropped (closed) for the new one.
            _ = shared.relisten_wake.notified() => {
                if let Some(next) = shared.take_listener() {
                    listener = next.and_then(|l| TcpListener::from_std(l).ok());
                }
                continue;
            }
            r = accept(listener.as_ref()) => r,
        };
        match accepted {
            Ok((stream, _peer)) => {
                backoff = Duration::from_millis(5);
                tokio::spawn(conn::serve(shared.clone(), ClientStream::from(stream)));
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

/// Accepts TLS clients until shutdown: each runs its handshake, then is served as a plain
/// one is (a failed handshake is counted and logged at debug by the acceptor).
async fn accept_tls(listener: TcpListener, acceptor: Arc<Acceptor>, shared: Arc<Shared>) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((tcp, peer)) => {
                backoff = Duration::from_millis(5);
                let (acceptor, shared) = (acceptor.clone(), shared.clone());
                tokio::spawn(async move {
                    let handshake = tokio::select! {
                        _ = shared.shutdown.cancelled() => None,
                        s = acceptor.accept(tcp, peer) => s,
                    };
                    if let Some(stream) = handshake {
                        conn::serve(shared, stream).await;
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "TLS accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// The next connection on `listener`; never, with none (CONFIG SET port 0).
async fn accept(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
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
                // Never block the event loop behind a running script.
                let Some(mut store) = shared.lock_unless_script() else {
                    continue;
                };
                store.active_expire_cycle();
                let now = super::clock::unix_ms();
                store.stats.sample_ops(now);
                store.publish_feed();
            }
        }
    }
}
