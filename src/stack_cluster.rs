//! `sluice stack cluster`: three master and three replica cluster nodes, formed into a
//! Redis Cluster, and a proxy pool in cluster mode in front of them, in this one process.
//!
//! Ports: proxy B, admin B+1, nodes B+10..B+15 (masters first), their cluster bus ports
//! B+40..B+45. Each node runs on its own thread with its own event loop, so that one node
//! blocked in a synchronous MIGRATE (as Redis's is) never stalls the node it migrates to,
//! and `redis-cli -p PORT shutdown nosave` stops that node alone: a killed master's replica
//! is promoted by the others, which is the failover demo of the README.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::app;
use crate::config::{Config, ConfigError};
use crate::node::cluster::ClusterOptions;
use crate::node::{self, NodeConfig};
use crate::stack::{StackError, StackOptions, ADMIN_OFFSET, NODES_OFFSET};

/// Masters (and replicas, one per master) in the cluster stack.
pub const MASTERS: u16 = 3;
/// Offset of the first cluster bus port from the base port.
pub const BUS_OFFSET: u16 = 40;
/// The stack's cluster-node-timeout (ms): a killed master is replaced a few seconds later.
pub const NODE_TIMEOUT_MS: u64 = 2000;
/// How long forming the cluster may take before the stack gives up.
const FORM_TIMEOUT: Duration = Duration::from_secs(30);

/// The addresses of a running cluster stack.
#[derive(Debug, Clone)]
pub struct ClusterEndpoints {
    /// The proxy pool clients connect to.
    pub proxy: SocketAddr,
    /// The admin HTTP server.
    pub admin: SocketAddr,
    /// The masters, as formed (a failover changes roles).
    pub masters: Vec<SocketAddr>,
    /// The replicas; `replicas[i]` follows `masters[i]` at start.
    pub replicas: Vec<SocketAddr>,
}

impl ClusterEndpoints {
    /// The stack's addresses for `opts`.
    pub fn new(opts: &StackOptions) -> Result<ClusterEndpoints, StackError> {
        let addr = |off: u16| {
            opts.base_port
                .checked_add(off)
                .filter(|_| {
                    opts.base_port
                        .checked_add(BUS_OFFSET + 2 * MASTERS)
                        .is_some()
                })
                .map(|p| SocketAddr::new(opts.bind, p))
                .ok_or(StackError::BasePort(opts.base_port))
        };
        Ok(ClusterEndpoints {
            proxy: addr(0)?,
            admin: addr(ADMIN_OFFSET)?,
            masters: (0..MASTERS)
                .map(|i| addr(NODES_OFFSET + i))
                .collect::<Result<_, _>>()?,
            replicas: (0..MASTERS)
                .map(|i| addr(NODES_OFFSET + MASTERS + i))
                .collect::<Result<_, _>>()?,
        })
    }
    /// Every node, masters first.
    pub fn nodes(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.masters.iter().chain(&self.replicas).copied()
    }
}

/// The proxy config of a cluster stack: one cluster pool seeded with every node.
pub fn proxy_config(ends: &ClusterEndpoints) -> Result<Config, ConfigError> {
    let seeds: Vec<String> = ends.nodes().map(|n| format!("\"{n}\"")).collect();
    let text = format!(
        "[admin]\nlisten = \"{admin}\"\n\n\
         [[pools]]\nname = \"stack\"\nlisten = \"{proxy}\"\nmode = \"cluster\"\n\
         seeds = [{seeds}]\n",
        admin = ends.admin,
        proxy = ends.proxy,
        seeds = seeds.join(", "),
    );
    Config::parse(&text, Path::new("<sluice stack cluster>"))
}

/// Runs a cluster stack until `shutdown` completes; `on_ready` gets the endpoints once the
/// cluster is formed and the proxy listens.
pub async fn run_cluster(
    opts: StackOptions,
    shutdown: impl Future<Output = ()>,
    on_ready: impl FnOnce(&ClusterEndpoints),
) -> Result<(), StackError> {
    let ends = ClusterEndpoints::new(&opts)?;
    let token = CancellationToken::new();
    let mut threads = Vec::new();
    let result = async {
        for (i, addr) in ends.nodes().enumerate() {
            let bus = opts.base_port + BUS_OFFSET + i as u16;
            threads.push(start_node(&opts, addr, bus, &token).await?);
        }
        form(&ends, opts.base_port)
            .await
            .map_err(StackError::Form)?;
        let config = proxy_config(&ends)?;
        app::run(config, shutdown, |_| on_ready(&ends)).await?;
        Ok(())
    }
    .await;
    token.cancel();
    for t in threads {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    result
}

/// Starts one cluster node on its own thread and waits until it listens.
async fn start_node(
    opts: &StackOptions,
    addr: SocketAddr,
    bus_port: u16,
    token: &CancellationToken,
) -> Result<std::thread::JoinHandle<()>, StackError> {
    let conf = format!("sluice-stack-nodes-{}.conf", addr.port());
    // A stack always starts a fresh cluster.
    let _ = std::fs::remove_file(opts.dir.join(&conf));
    let config = NodeConfig {
        listen: addr,
        replicaof: None,
        requirepass: None,
        appendonly: false,
        dir: opts.dir.clone(),
        cluster: Some(ClusterOptions {
            config_file: conf.into(),
            node_timeout_ms: NODE_TIMEOUT_MS,
            bus_port: Some(bus_port),
            require_full_coverage: true,
        }),
        tls: None,
    };
    let (tx, rx) = oneshot::channel();
    let stop = token.clone();
    let handle = std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = tx.send(Err(node::NodeError::Cluster(e.to_string())));
                return;
            }
        };
        let mut tx = Some(tx);
        let r = rt.block_on(node::run(config, stop.cancelled_owned(), |a| {
            if let Some(tx) = tx.take() {
                let _ = tx.send(Ok(a));
            }
        }));
        if let (Err(e), Some(tx)) = (r, tx.take()) {
            let _ = tx.send(Err(e));
        }
    });
    match rx.await {
        Ok(Ok(_)) => Ok(handle),
        Ok(Err(source)) => Err(StackError::Node { addr, source }),
        Err(_) => Err(StackError::NodeStopped(addr)),
    }
}

/// Forms the cluster as `redis-cli --cluster create --cluster-replicas 1` would: slots in
/// three ranges, distinct config epochs, MEET, then each replica REPLICATEs its master.
async fn form(ends: &ClusterEndpoints, base: u16) -> Result<(), String> {
    let nodes: Vec<SocketAddr> = ends.nodes().collect();
    let per = 16384 / u32::from(MASTERS);
    for (i, m) in ends.masters.iter().enumerate() {
        let first = per * i as u32;
        let last = if i + 1 == ends.masters.len() {
            16383
        } else {
            first + per - 1
        };
        expect_ok(
            *m,
            &[
                "CLUSTER",
                "ADDSLOTSRANGE",
                &first.to_string(),
                &last.to_string(),
            ],
        )
        .await?;
    }
    for (i, n) in nodes.iter().enumerate() {
        expect_ok(*n, &["CLUSTER", "SET-CONFIG-EPOCH", &(i + 1).to_string()]).await?;
    }
    let ip = nodes[0].ip().to_string();
    for (i, n) in nodes.iter().enumerate().skip(1) {
        let bus = (base + BUS_OFFSET + i as u16).to_string();
        expect_ok(
            nodes[0],
            &["CLUSTER", "MEET", &ip, &n.port().to_string(), &bus],
        )
        .await?;
    }
    let want = format!("cluster_known_nodes:{}\r\n", nodes.len());
    wait_all(&nodes, &["CLUSTER", "INFO"], &want).await?;
    for (m, r) in ends.masters.iter().zip(&ends.replicas) {
        let id = call(*m, &["CLUSTER", "MYID"]).await?;
        expect_ok(*r, &["CLUSTER", "REPLICATE", &id]).await?;
    }
    wait_all(&nodes, &["CLUSTER", "INFO"], "cluster_state:ok").await
}

/// Waits until every node's answer to `cmd` contains `want`.
async fn wait_all(nodes: &[SocketAddr], cmd: &[&str], want: &str) -> Result<(), String> {
    let deadline = Instant::now() + FORM_TIMEOUT;
    for n in nodes {
        loop {
            if call(*n, cmd).await.is_ok_and(|r| r.contains(want)) {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("node {n} never answered {cmd:?} with {want:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

async fn expect_ok(addr: SocketAddr, cmd: &[&str]) -> Result<(), String> {
    match call(addr, cmd).await? {
        r if r == "OK" => Ok(()),
        r => Err(format!("{cmd:?} on {addr}: {r}")),
    }
}

/// One command to `addr`: the reply's text (simple, error, integer or bulk).
async fn call(addr: SocketAddr, cmd: &[&str]) -> Result<String, String> {
    let io = |e: std::io::Error| format!("{addr}: {e}");
    let mut s = TcpStream::connect(addr).await.map_err(io)?;
    let mut req = format!("*{}\r\n", cmd.len());
    for a in cmd {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).await.map_err(io)?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).await.map_err(io)?;
    let line = line.trim_end();
    match line.split_at_checked(1) {
        Some(("$", n)) => {
            let n: usize = n.parse().map_err(|_| format!("{addr}: bad reply {line}"))?;
            let mut body = vec![0u8; n + 2];
            r.read_exact(&mut body).await.map_err(io)?;
            body.truncate(n);
            Ok(String::from_utf8_lossy(&body).into_owned())
        }
        Some(("-", e)) => Err(format!("{addr}: {e}")),
        Some((_, rest)) => Ok(rest.to_string()),
        None => Err(format!("{addr}: empty reply")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_follow_the_scheme_and_the_config_validates() {
        let opts = StackOptions {
            base_port: 7000,
            bind: "127.0.0.1".parse().expect("ip"),
            dir: ".".into(),
        };
        let e = ClusterEndpoints::new(&opts).expect("endpoints");
        assert_eq!(e.proxy.port(), 7000);
        assert_eq!(e.admin.port(), 7001);
        let ports: Vec<u16> = e.nodes().map(|n| n.port()).collect();
        assert_eq!(ports, [7010, 7011, 7012, 7013, 7014, 7015]);
        let cfg = proxy_config(&e).expect("the generated config validates");
        assert_eq!(cfg.pools.len(), 1);
        let high = StackOptions {
            base_port: 65500,
            ..opts
        };
        assert!(ClusterEndpoints::new(&high).is_err());
    }
}
