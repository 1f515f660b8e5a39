//! One Redis node as the proxy sees it: its shared multiplexed connections, its pool of
//! dedicated connections and its request counters.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::direct_pool::DirectPool;
use super::handshake::Handshake;
use super::mux::{MuxConn, MuxOptions, Patience, ReplyResult};
use super::per_user::Credentials;
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
    /// Cluster pools: the node's shared connections follow its role in the slot map (with
    /// `READONLY` while the map shows it as a replica, so that it serves reads; without it
    /// while the map shows a master, so that a master demoted behind the proxy's back answers
    /// `MOVED` rather than serving a read from its now-replica data).
    pub(crate) follows_role: bool,
    /// TLS toward the nodes (`backend_tls`), none for plain TCP.
    pub(crate) tls: Option<Arc<crate::tls::Connector>>,
}

/// A node and its connections. Shared connections stop when the `Node` is dropped.
pub(crate) struct Node {
    /// `host:port`
    pub(crate) addr: String,
    /// Shared connections without `READONLY` (every pool's, and a cluster master's).
    primary: OnceLock<Vec<MuxConn>>,
    /// Cluster pools: shared connections that sent `READONLY`, used while the slot map shows
    /// this node as a replica. Each set is opened when the node first takes that role.
    replica: OnceLock<Vec<MuxConn>>,
    /// Cluster pools: the current slot map shows this node as a replica.
    as_replica: AtomicBool,
    mux_opts: MuxOptions,
    connections: usize,
    /// Dedicated connections (transactions, blocking commands, pub/sub).
    pub(crate) dedicated: DirectPool,
    /// Request counters of this node.
    pub(crate) metrics: NodeMetrics,
}

impl Node {
    /// Creates the node. Outside cluster pools its shared connections start at once; in a
    /// cluster pool they start when the slot map gives the node its role
    /// ([`Node::set_role`]).
    pub(crate) fn new(addr: &str, opts: &NodeOptions) -> Arc<Node> {
        let handshake = Handshake {
            username: opts.username.clone(),
            password: opts.password.clone(),
            // Shared connections speak RESP3 so RESP3 clients get native types; replies are
            // downconverted for RESP2 clients (lossless in that direction, unlike the reverse).
            protocol: Protocol::Resp3,
            readonly: false,
            tls: opts.tls.clone(),
            for_client: false,
        };
        let mux_opts = MuxOptions {
            addr: addr.to_string(),
            handshake: handshake.clone(),
            connect_timeout: opts.connect_timeout,
            request_timeout: opts.request_timeout,
            scripts: Default::default(),
        };
        let node = Arc::new(Node {
            addr: addr.to_string(),
            primary: OnceLock::new(),
            replica: OnceLock::new(),
            as_replica: AtomicBool::new(false),
            mux_opts,
            connections: opts.connections.max(1),
            dedicated: DirectPool::new(addr, handshake, opts.connect_timeout, opts.max_dedicated),
            metrics: NodeMetrics::new(&opts.pool, addr),
        });
        if !opts.follows_role {
            let _ = node.conns();
        }
        node
    }

    /// Cluster pools: the role the current slot map gives this node (a replica's shared
    /// connections send `READONLY`). Opens that role's connections if it never had it.
    pub(crate) fn set_role(&self, replica: bool) {
        self.as_replica.store(replica, Ordering::Relaxed);
        let _ = self.conns();
    }

    /// The shared connections for the node's current role.
    fn conns(&self) -> &[MuxConn] {
        let (set, readonly) = if self.as_replica.load(Ordering::Relaxed) {
            (&self.replica, true)
        } else {
            (&self.primary, false)
        };
        set.get_or_init(|| {
            let mut opts = self.mux_opts.clone();
            opts.handshake.readonly = readonly;
            (0..self.connections)
                .map(|_| MuxConn::spawn(opts.clone()))
                .collect()
        })
    }

    /// Sends a request on the shared connection of `slot`. A client always passes the same
    /// slot, so its requests to this node travel on one connection and run in the order it
    /// sent them. There is deliberately no fallback to another connection while that one is
    /// reconnecting: a write queued behind the handshake could be overtaken by the client's
    /// next write on the other connection. Requests to a down connection fail fast instead
    /// (and reads are retried on another node by the session).
    pub(crate) fn send(
        &self,
        raw: Bytes,
        db: u16,
        slot: usize,
        patience: Patience,
    ) -> oneshot::Receiver<ReplyResult> {
        let conns = self.conns();
        conns[slot % conns.len()].send(raw, db, patience)
    }

    /// True while at least one shared connection is established.
    pub(crate) fn is_connected(&self) -> bool {
        self.conns().iter().any(MuxConn::is_up)
    }

    /// True while the slot map shows this node as a replica (cluster pools).
    pub(crate) fn as_replica(&self) -> bool {
        self.as_replica.load(Ordering::Relaxed)
    }

    /// A new shared connection that logs in as a client's own user (`auth = "passthrough"`):
    /// a handshake it fails is the user's business, not a refusal of the proxy's. It takes
    /// a place under the node's dedicated-connection cap first (its requests queue until it
    /// has one), so the connections opened in users' names are bounded per node.
    pub(crate) fn user_conn(&self, cred: &Arc<Credentials>, readonly: bool) -> MuxConn {
        let mut opts = self.mux_opts.clone();
        opts.handshake.username = Some(cred.user.clone());
        opts.handshake.password = Some(cred.pass.clone());
        opts.handshake.readonly = readonly;
        opts.handshake.for_client = true;
        MuxConn::spawn_placed(opts, self.dedicated.place())
    }

    /// Shared connections currently established.
    pub(crate) fn connected_count(&self) -> usize {
        self.conns().iter().filter(|m| m.is_up()).count()
    }
}
