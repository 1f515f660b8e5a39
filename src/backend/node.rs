//! One Redis node as the proxy sees it: its shared multiplexed connections, its pool of
//! dedicated connections and its request counters.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::direct_pool::DirectPool;
use super::handshake::Handshake;
use super::mux::{MuxConn, MuxOptions, ReplyResult};
use crate::resp::Protocol;
use crate::telemetry::NodeMetrics;

/// How to connect to nodes of a pool.
#[derive(Debug, Clone)]
pub(crate) struct NodeOptions {
    /// Pool name (metric label).
    pub(crate) pool: String,
    /// Shared connections per node.
    pub(crate) connections: usize,
    /// Dedicated connections per node, at most.
    pub(crate) max_dedicated: usize,
    /// TCP connect + handshake timeout.
    pub(crate) connect_timeout: Duration,
    /// Reply deadline on shared connections.
    pub(crate) request_timeout: Duration,
    /// ACL user for nodes.
    pub(crate) username: Option<String>,
    /// Password for nodes.
    pub(crate) password: Option<String>,
    /// Send `READONLY` on every connection (cluster pools: lets replicas serve reads).
    pub(crate) readonly: bool,
}

/// A node and its connections. Shared connections stop when the `Node` is dropped.
pub(crate) struct Node {
    /// `host:port`
    pub(crate) addr: String,
    muxes: Vec<MuxConn>,
    /// Dedicated connections (transactions, blocking commands, pub/sub).
    pub(crate) dedicated: DirectPool,
    /// Request counters of this node.
    pub(crate) metrics: NodeMetrics,
}

impl Node {
    /// Creates the node and starts its shared connections.
    pub(crate) fn new(addr: &str, opts: &NodeOptions) -> Arc<Node> {
        let handshake = Handshake {
            username: opts.username.clone(),
            password: opts.password.clone(),
            // Shared connections speak RESP3 so RESP3 clients get native types; replies are
            // downconverted for RESP2 clients (lossless in that direction, unlike the reverse).
            protocol: Protocol::Resp3,
            readonly: opts.readonly,
        };
        let mux_opts = MuxOptions {
            addr: addr.to_string(),
            handshake: handshake.clone(),
            connect_timeout: opts.connect_timeout,
            request_timeout: opts.request_timeout,
        };
        let muxes = (0..opts.connections.max(1))
            .map(|_| MuxConn::spawn(mux_opts.clone()))
            .collect();
        Arc::new(Node {
            addr: addr.to_string(),
            muxes,
            dedicated: DirectPool::new(addr, handshake, opts.connect_timeout, opts.max_dedicated),
            metrics: NodeMetrics::new(&opts.pool, addr),
        })
    }

    /// Sends a request on the shared connection of `slot`. A client always passes the same
    /// slot, so its requests to this node travel on one connection and run in the order it
    /// sent them. There is deliberately no fallback to another connection while that one is
    /// reconnecting: a write queued behind the handshake could be overtaken by the client's
    /// next write on the other connection. Requests to a down connection fail fast instead
    /// (and reads are retried on another node by the session).
    pub(crate) fn send(&self, raw: Bytes, db: u16, slot: usize) -> oneshot::Receiver<ReplyResult> {
        self.muxes[slot % self.muxes.len()].send(raw, db)
    }

    /// True while at least one shared connection is established.
    pub(crate) fn is_connected(&self) -> bool {
        self.muxes.iter().any(MuxConn::is_up)
    }

    /// Shared connections currently established.
    pub(crate) fn connected_count(&self) -> usize {
        self.muxes.iter().filter(|m| m.is_up()).count()
    }
}
