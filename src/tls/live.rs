//! The TLS state of a running pool. The rustls configs sit behind an `ArcSwap`, loaded once per
//! new connection: a reload stores new ones (re-read certificates) and only connections made
//! from then on use them, while the open ones keep theirs.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use metrics::{counter, Counter};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use tokio::net::TcpStream;

use super::{BackendTls, ClientStream, ListenerTls, NodeStream};
use crate::telemetry;

/// A client that has not finished its TLS handshake by then is dropped (it holds a place under
/// `max_clients` meanwhile).
const CLIENT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS on a pool's listener.
pub(crate) struct Acceptor {
    config: ArcSwap<ServerConfig>,
    pool: String,
    failures: Counter,
}

impl Acceptor {
    /// The listener side of `pool`, with the certificates of `tls`.
    pub(crate) fn new(tls: &ListenerTls, pool: &str) -> Acceptor {
        Acceptor {
            config: ArcSwap::new(tls.config.clone()),
            pool: pool.to_string(),
            failures: failures(pool, "client"),
        }
    }

    /// New clients from now on get these certificates.
    pub(crate) fn reload(&self, tls: &ListenerTls) {
        self.config.store(tls.config.clone());
    }

    /// Runs the server handshake; `None` (counted and logged) when it fails or times out.
    pub(crate) async fn accept(&self, tcp: TcpStream, peer: SocketAddr) -> Option<ClientStream> {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.config.load_full());
        let reason =
            match tokio::time::timeout(CLIENT_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => return Some(ClientStream::tls(tls)),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "handshake timed out".to_string(),
            };
        self.failures.increment(1);
        // Debug only: a port scanner or a plain-text client would otherwise flood the log; the
        // counter shows it.
        tracing::debug!(pool = %self.pool, client = %peer, error = %reason, "client TLS handshake failed");
        None
    }
}

/// A node failing TLS is retried often (every reconnect, every probe): log at most once in
/// this long per pool; the counter has every failure.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// TLS toward a pool's nodes and sentinels.
pub(crate) struct Connector {
    config: ArcSwap<ClientConfig>,
    server_name: Option<ServerName<'static>>,
    pool: String,
    failures: Counter,
    /// When a failure was last logged, and how many were not logged since.
    logged: Mutex<(Option<Instant>, u64)>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("pool", &self.pool)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// Connectors are compared by identity (sentinel hubs are shared by pools with the same one).
impl PartialEq for Connector {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for Connector {}

impl std::hash::Hash for Connector {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::ptr::hash(self, state);
    }
}

impl Connector {
    /// The node side of `pool`. The server name was checked by the config validation.
    pub(crate) fn new(tls: &BackendTls, pool: &str) -> Connector {
        Connector {
            config: ArcSwap::new(tls.config.clone()),
            server_name: tls
                .server_name
                .as_deref()
                .and_then(|n| ServerName::try_from(n.to_string()).ok()),
            pool: pool.to_string(),
            failures: failures(pool, "backend"),
            logged: Mutex::new((None, 0)),
        }
    }

    /// Connections made from now on use these certificates.
    pub(crate) fn reload(&self, tls: &BackendTls) {
        self.config.store(tls.config.clone());
    }

    /// Runs the client handshake with the node at `addr` (`host:port`) over `tcp`. The
    /// node's certificate must name `backend_tls_server_name`, or else the address's host.
    pub(crate) async fn connect(&self, addr: &str, tcp: TcpStream) -> Result<NodeStream, String> {
        let name = match &self.server_name {
            Some(n) => n.clone(),
            None => host_name(addr).ok_or_else(|| {
                self.failures.increment(1);
                format!("TLS: no server name to check in {addr}")
            })?,
        };
        let connector = tokio_rustls::TlsConnector::from(self.config.load_full());
        match connector.connect(name, tcp).await {
            Ok(tls) => Ok(NodeStream::Tls(Box::new(tls))),
            Err(e) => {
                self.failed(addr, &e);
                Err(format!("TLS handshake failed: {e}"))
            }
        }
    }

    /// Counts a failed handshake and logs it, rate-limited.
    fn failed(&self, addr: &str, e: &std::io::Error) {
        self.failures.increment(1);
        let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match logged.0 {
            Some(at) if now.duration_since(at) < LOG_EVERY => logged.1 += 1,
            _ => {
                tracing::error!(pool = %self.pool, node = %addr, error = %e, repeated = logged.1,
                    "TLS handshake with node failed: node unreachable");
                *logged = (Some(now), 0);
            }
        }
    }
}

/// The host part of `host:port` (brackets of an IPv6 address removed) as a TLS name.
fn host_name(addr: &str) -> Option<ServerName<'static>> {
    let (host, _port) = addr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).ok()
}

/// Registered with 0, so an alert on it sees the series from the start.
fn failures(pool: &str, side: &'static str) -> Counter {
    let c = counter!(telemetry::TLS_HANDSHAKE_FAILURES, "pool" => pool.to_string(), "side" => side);
    c.increment(0);
    c
}

/// The pool's TLS, both sides (either may be off).
#[derive(Default)]
pub(crate) struct PoolTls {
    /// TLS on the listener.
    pub(crate) acceptor: Option<Acceptor>,
    /// TLS toward nodes and sentinels (shared with every node connection of the pool).
    pub(crate) connector: Option<Arc<Connector>>,
}

impl PoolTls {
    /// The TLS state of a pool starting with `listener` and `backend`.
    pub(crate) fn new(
        pool: &str,
        listener: Option<&ListenerTls>,
        backend: Option<&BackendTls>,
    ) -> Self {
        PoolTls {
            acceptor: listener.map(|t| Acceptor::new(t, pool)),
            connector: backend.map(|t| Arc::new(Connector::new(t, pool))),
        }
    }

    /// Takes the certificates of a freshly read config whose TLS files are the same ones.
    pub(crate) fn reload(&self, listener: Option<&ListenerTls>, backend: Option<&BackendTls>) {
        if let (Some(a), Some(t)) = (&self.acceptor, listener) {
            a.reload(t);
        }
        if let (Some(c), Some(t)) = (&self.connector, backend) {
            c.reload(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_from_addresses() {
        let name = |a: &str| host_name(a).map(|n| n.to_str().into_owned());
        assert_eq!(
            name("redis.internal:6379").as_deref(),
            Some("redis.internal")
        );
        assert_eq!(name("127.0.0.1:6379").as_deref(), Some("127.0.0.1"));
        assert_eq!(name("[::1]:6379").as_deref(), Some("::1"));
        assert_eq!(name("no-port"), None);
    }
}
