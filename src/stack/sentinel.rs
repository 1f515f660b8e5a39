//! `sluice stack sentinel`: a master data node, two replicas, three sentinels watching them
//! as group `stack` (quorum 2) and a proxy pool in sentinel mode, all in this process.
//!
//! Ports as in the standalone stack: proxy B, admin B+1, data nodes B+10..B+12, sentinels
//! B+20..B+22. Every node and sentinel stops alone on `SHUTDOWN` (so `redis-cli -p B+10
//! shutdown nosave` kills the master and the sentinels fail over); a signal stops them all.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{spawn_until_bound, start_node, StackError, StackOptions, NODES_OFFSET, REPLICAS};
use crate::app;
use crate::config::{Config, ConfigError};
use crate::node::sentinel::{self, MasterConfig, SentinelConfig, SentinelError};

/// Offset of the first sentinel from the base port.
pub const SENTINELS_OFFSET: u16 = 20;
/// Sentinels in the stack.
pub const SENTINELS: u16 = 3;
/// The master group's name.
pub const GROUP: &str = "stack";
/// How long the master must be silent before a sentinel thinks it down: short, so that the
/// demo's failover is quick on loopback.
pub const DOWN_AFTER: Duration = Duration::from_millis(2000);
/// Bound of each failover step.
pub const FAILOVER_TIMEOUT: Duration = Duration::from_millis(6000);

/// Why the sentinel stack could not run.
#[derive(Debug, thiserror::Error)]
pub enum SentinelStackError {
    /// A data node, the proxy or the port plan failed.
    #[error(transparent)]
    Stack(#[from] StackError),
    /// A sentinel failed to start.
    #[error("sentinel on {addr}")]
    Sentinel {
        /// Its address.
        addr: SocketAddr,
        /// Why.
        source: SentinelError,
    },
    /// A sentinel stopped before it was listening.
    #[error("sentinel on {0} stopped while starting")]
    SentinelStopped(SocketAddr),
}

impl From<ConfigError> for SentinelStackError {
    fn from(e: ConfigError) -> Self {
        SentinelStackError::Stack(StackError::Config(e))
    }
}

/// The addresses of a running sentinel stack.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The proxy pool clients connect to.
    pub proxy: SocketAddr,
    /// The admin HTTP server.
    pub admin: SocketAddr,
    /// The data node that starts as master.
    pub master: SocketAddr,
    /// The data nodes that start as replicas.
    pub replicas: Vec<SocketAddr>,
    /// The sentinels.
    pub sentinels: Vec<SocketAddr>,
}

/// The sentinel stack's addresses for these options.
pub fn endpoints(opts: &StackOptions) -> Result<Endpoints, StackError> {
    let plain = opts.endpoints()?;
    Ok(Endpoints {
        proxy: plain.proxy,
        admin: plain.admin,
        master: plain.master,
        replicas: plain.replicas,
        sentinels: (0..SENTINELS)
            .map(|i| opts.addr(SENTINELS_OFFSET + i))
            .collect::<Result<_, _>>()?,
    })
}

/// The proxy config: one pool following group `stack` through the three sentinels.
pub fn proxy_config(ends: &Endpoints) -> Result<Config, ConfigError> {
    let sentinels: Vec<String> = ends.sentinels.iter().map(|s| format!("\"{s}\"")).collect();
    let text = format!(
        "[admin]\nlisten = \"{admin}\"\n\n\
         [[pools]]\nname = \"stack\"\nlisten = \"{proxy}\"\nmode = \"sentinel\"\n\
         sentinels = [{sentinels}]\nmaster_name = \"{GROUP}\"\nread_from = \"prefer-replica\"\n",
        admin = ends.admin,
        proxy = ends.proxy,
        sentinels = sentinels.join(", "),
    );
    Config::parse(&text, Path::new("<sluice stack sentinel>"))
}

/// The config of the stack's sentinel listening on `addr`.
pub fn sentinel_config(ends: &Endpoints, addr: SocketAddr) -> SentinelConfig {
    let mut group = MasterConfig::new(GROUP, &ends.master.ip().to_string(), ends.master.port(), 2);
    group.down_after = DOWN_AFTER;
    group.failover_timeout = FAILOVER_TIMEOUT;
    SentinelConfig {
        port: addr.port(),
        bind: addr.ip(),
        masters: vec![group],
        ..SentinelConfig::default()
    }
}

/// Runs a sentinel stack until `shutdown` completes; `on_ready` gets the endpoints once
/// every part listens.
pub async fn run(
    opts: StackOptions,
    shutdown: impl Future<Output = ()>,
    on_ready: impl FnOnce(&Endpoints),
) -> Result<(), SentinelStackError> {
    let ends = endpoints(&opts)?;
    debug_assert_eq!(ends.replicas.len(), usize::from(REPLICAS));
    let _ = NODES_OFFSET;
    let token = CancellationToken::new();
    let result = async {
        start_node(&opts, ends.master, None, &token).await?;
        for r in &ends.replicas {
            start_node(&opts, *r, Some(ends.master), &token).await?;
        }
        for s in &ends.sentinels {
            start_sentinel(sentinel_config(&ends, *s), *s, &token).await?;
        }
        let config = proxy_config(&ends)?;
        app::run(config, shutdown, |_| on_ready(&ends))
            .await
            .map_err(StackError::from)?;
        Ok(())
    }
    .await;
    // Whatever ended the stack ends every part.
    token.cancel();
    result
}

async fn start_sentinel(
    config: SentinelConfig,
    addr: SocketAddr,
    token: &CancellationToken,
) -> Result<(), SentinelStackError> {
    let stop = token.clone();
    spawn_until_bound(move |on_bound| sentinel::run(config, stop.cancelled_owned(), on_bound))
        .await
        .map_err(|e| match e {
            Some(source) => SentinelStackError::Sentinel { addr, source },
            None => SentinelStackError::SentinelStopped(addr),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinels_follow_the_data_nodes_in_the_port_plan() {
        let opts = StackOptions {
            base_port: 6380,
            bind: "127.0.0.1".parse().expect("ip"),
            dir: ".".into(),
        };
        let e = endpoints(&opts).expect("endpoints");
        assert_eq!(e.proxy.port(), 6380);
        assert_eq!(e.master.port(), 6390);
        assert_eq!(
            e.sentinels.iter().map(|s| s.port()).collect::<Vec<_>>(),
            [6400, 6401, 6402]
        );
        let cfg = proxy_config(&e).expect("the generated config validates");
        assert_eq!(cfg.pools.len(), 1);
        let s = sentinel_config(&e, e.sentinels[0]);
        assert_eq!(s.masters[0].port, 6390);
        assert_eq!(s.masters[0].quorum, 2);
    }
}
