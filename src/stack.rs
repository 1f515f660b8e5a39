//! `sluice stack`: a whole working deployment in one process, with no Redis installed.
//!
//! `sluice stack standalone` starts a master data node, two replica nodes following it and a
//! proxy pool splitting reads and writes over them, plus the admin server. Ports are fixed
//! offsets from one base so a newcomer can type them: proxy on B, admin HTTP on B+1, data nodes
//! from B+10 up. Everything lives in this process, so stopping it (Ctrl-C, SIGTERM) stops every
//! part and leaves nothing behind.
//!
//! The proxy is configured from a generated TOML document that goes through the same parser
//! and validation as a config file, so the stack runs exactly what a user could write.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::app::{self, AppError};
use crate::config::{Config, ConfigError};
use crate::node::{self, NodeConfig, NodeError};

pub mod sentinel;

/// Offset of the admin server from the base port.
pub const ADMIN_OFFSET: u16 = 1;
/// Offset of the first data node from the base port.
pub const NODES_OFFSET: u16 = 10;
/// Replicas in the standalone stack.
pub const REPLICAS: u16 = 2;

/// Why a stack could not run. Variants wrapping another error leave its text to the error
/// chain (`{:#}` prints "data node on ADDR: reason").
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The base port leaves no room for the stack's ports.
    #[error("--base-port {0}: the stack needs ports up to base + {max}", max = NODES_OFFSET + REPLICAS)]
    BasePort(u16),
    /// A data node failed to start.
    #[error("data node on {addr}")]
    Node {
        /// Its address.
        addr: SocketAddr,
        /// Why.
        source: NodeError,
    },
    /// A data node stopped before it was listening.
    #[error("data node on {0} stopped while starting")]
    NodeStopped(SocketAddr),
    /// The cluster stack's nodes did not form a cluster.
    #[error("forming the cluster: {0}")]
    Form(String),
    /// The generated proxy config was refused (a bug: it is ours).
    #[error("generated proxy config")]
    Config(#[from] ConfigError),
    /// The proxy failed.
    #[error("proxy")]
    Proxy(#[from] AppError),
}

/// What `sluice stack standalone` runs.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// The proxy's port; the others are offsets from it.
    pub base_port: u16,
    /// Address everything listens on.
    pub bind: IpAddr,
    /// Working directory of the data nodes.
    pub dir: PathBuf,
}

/// The addresses of a running stack.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The proxy pool clients connect to.
    pub proxy: SocketAddr,
    /// The admin HTTP server (`/metrics`, `/topology`, ...).
    pub admin: SocketAddr,
    /// The master data node.
    pub master: SocketAddr,
    /// The replica data nodes.
    pub replicas: Vec<SocketAddr>,
}

impl StackOptions {
    fn addr(&self, offset: u16) -> Result<SocketAddr, StackError> {
        let port = self
            .base_port
            .checked_add(offset)
            .ok_or(StackError::BasePort(self.base_port))?;
        Ok(SocketAddr::new(self.bind, port))
    }

    /// The stack's addresses for these options.
    pub fn endpoints(&self) -> Result<Endpoints, StackError> {
        Ok(Endpoints {
            proxy: self.addr(0)?,
            admin: self.addr(ADMIN_OFFSET)?,
            master: self.addr(NODES_OFFSET)?,
            replicas: (1..=REPLICAS)
                .map(|i| self.addr(NODES_OFFSET + i))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// The proxy config of a standalone stack: one pool, reads spread over the replicas (the
/// master serves them while no replica is in sync yet, e.g. right after start).
pub fn proxy_config(ends: &Endpoints) -> Result<Config, ConfigError> {
    let replicas: Vec<String> = ends.replicas.iter().map(|r| format!("\"{r}\"")).collect();
    let text = format!(
        "[admin]\nlisten = \"{admin}\"\n\n\
         [[pools]]\nname = \"stack\"\nlisten = \"{proxy}\"\nmode = \"standalone\"\n\
         master = \"{master}\"\nreplicas = [{replicas}]\nread_from = \"prefer-replica\"\n",
        admin = ends.admin,
        proxy = ends.proxy,
        master = ends.master,
        replicas = replicas.join(", "),
    );
    Config::parse(&text, Path::new("<sluice stack>"))
}

/// Runs a standalone stack until `shutdown` completes; `on_ready` gets the endpoints once
/// every part listens.
pub async fn run_standalone(
    opts: StackOptions,
    shutdown: impl Future<Output = ()>,
    on_ready: impl FnOnce(&Endpoints),
) -> Result<(), StackError> {
    let ends = opts.endpoints()?;
    let token = CancellationToken::new();
    let result = async {
        start_node(&opts, ends.master, None, &token).await?;
        for r in &ends.replicas {
            start_node(&opts, *r, Some(ends.master), &token).await?;
        }
        let config = proxy_config(&ends)?;
        app::run(config, shutdown, |_| on_ready(&ends)).await?;
        Ok(())
    }
    .await;
    // Whatever ended the stack (a signal, or a part failing to start) ends every part.
    token.cancel();
    result
}

/// Starts one data node in this process and waits until it listens.
async fn start_node(
    opts: &StackOptions,
    addr: SocketAddr,
    replicaof: Option<SocketAddr>,
    token: &CancellationToken,
) -> Result<(), StackError> {
    let config = NodeConfig {
        listen: addr,
        replicaof: replicaof.map(|m| (m.ip().to_string(), m.port())),
        requirepass: None,
        appendonly: false,
        dir: opts.dir.clone(),
        cluster: None,
        tls: None,
    };
    let stop = token.clone();
    spawn_until_bound(move |on_bound| node::run(config, stop.cancelled_owned(), on_bound))
        .await
        .map_err(|e| match e {
            Some(source) => StackError::Node { addr, source },
            None => StackError::NodeStopped(addr),
        })
}

/// Spawns a server of the stack (a node, a sentinel) and waits until it listens. `Err(Some)`:
/// it returned this error before binding; `Err(None)`: it stopped without one.
async fn spawn_until_bound<E, F, Fut>(run: F) -> Result<(), Option<E>>
where
    F: FnOnce(Box<dyn FnOnce(SocketAddr) + Send>) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Send + 'static,
{
    let (bound_tx, bound_rx) = oneshot::channel();
    let task = tokio::spawn(run(Box::new(move |a| {
        let _ = bound_tx.send(a);
    })));
    match bound_rx.await {
        Ok(_) => Ok(()),
        // The server returned before binding: its error says why.
        Err(_) => match task.await {
            Ok(Err(e)) => Err(Some(e)),
            _ => Err(None),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_offsets_of_the_base() {
        let opts = StackOptions {
            base_port: 6380,
            bind: "127.0.0.1".parse().expect("ip"),
            dir: ".".into(),
        };
        let e = opts.endpoints().expect("endpoints");
        assert_eq!(e.proxy.port(), 6380);
        assert_eq!(e.admin.port(), 6381);
        assert_eq!(e.master.port(), 6390);
        assert_eq!(
            e.replicas.iter().map(|r| r.port()).collect::<Vec<_>>(),
            [6391, 6392]
        );
        let cfg = proxy_config(&e).expect("the generated config validates");
        assert_eq!(cfg.pools.len(), 1);
        assert!(matches!(
            &cfg.pools[0].source,
            crate::config::Source::Standalone { replicas, .. } if replicas.len() == 2
        ));
        let too_high = StackOptions {
            base_port: 65530,
            ..opts
        };
        assert!(matches!(
            too_high.endpoints(),
            Err(StackError::BasePort(65530))
        ));
    }
}
