//! Metric names in one place, and pre-registered handles so the hot path only does atomic adds
//! (no label maps built per request).

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};

/// Requests forwarded, by pool, node and class (`read`/`write`).
pub(crate) const REQUESTS: &str = "sluice_requests_total";
/// Requests that failed inside the proxy or at the node, by pool, node and class.
pub(crate) const ERRORS: &str = "sluice_errors_total";
/// Requests answered by the proxy itself (PING, SELECT, AUTH, HELLO, denied commands...).
pub(crate) const LOCAL: &str = "sluice_local_replies_total";
/// Request latency seen by the proxy, seconds, by pool.
pub(crate) const LATENCY: &str = "sluice_request_duration_seconds";
/// Connected clients, by pool.
pub(crate) const CLIENTS: &str = "sluice_client_connections";
/// Idle clients parked (task and socket registration freed; see `session::parking`), by pool.
pub(crate) const PARKED: &str = "sluice_parked_clients";
/// Clients accepted since start, by pool.
pub(crate) const CLIENTS_ACCEPTED: &str = "sluice_client_connections_accepted_total";
/// Clients refused because `max_clients` was reached, by pool.
pub(crate) const CLIENTS_REJECTED: &str = "sluice_client_connections_rejected_total";
/// Established shared backend connections, by pool and node.
pub(crate) const BACKEND_CONNECTIONS: &str = "sluice_backend_connections";
/// Open dedicated backend connections, by pool and node.
pub(crate) const DEDICATED_CONNECTIONS: &str = "sluice_backend_dedicated_connections";
/// Healthy replicas in the read pool, by pool.
pub(crate) const REPLICAS_HEALTHY: &str = "sluice_replicas_healthy";
/// Replicas known, by pool.
pub(crate) const REPLICAS_KNOWN: &str = "sluice_replicas_known";
/// 1 while the pool's master is reachable, by pool.
pub(crate) const MASTER_UP: &str = "sluice_master_up";
/// 1 while the pool's topology source (its sentinels) answers, by pool.
pub(crate) const SOURCE_UP: &str = "sluice_topology_source_up";
/// Topology snapshots published (a change of master, replica set or health), by pool.
pub(crate) const TOPOLOGY_CHANGES: &str = "sluice_topology_changes_total";
/// 1 for the node the pool currently sends writes to, 0 for its other nodes, by pool and node
/// (a failover shows as the 1 moving).
pub(crate) const NODE_IS_MASTER: &str = "sluice_node_is_master";
/// Reads retried on another node after a node failed them without running them, by pool.
pub(crate) const RETRIES: &str = "sluice_retries_total";
/// Handshakes a node refused (NOAUTH, WRONGPASS ...), by node.
pub(crate) const HANDSHAKE_REFUSALS: &str = "sluice_backend_handshake_refusals_total";
/// Malformed client requests, by pool.
pub(crate) const PROTOCOL_ERRORS: &str = "sluice_client_protocol_errors_total";
/// Clients disconnected for unread replies beyond `client_output_hard_limit`, by pool.
pub(crate) const OUTPUT_LIMIT_DISCONNECTS: &str = "sluice_client_output_limit_disconnects_total";
/// TLS handshakes that failed, by pool and `side`: `client` (a client on a TLS listener:
/// plain text, an untrusted or missing client certificate, a timeout) or `backend` (a node or
/// sentinel: certificate not trusted, name mismatch, plain-text node).
pub(crate) const TLS_HANDSHAKE_FAILURES: &str = "sluice_tls_handshake_failures_total";
/// Client authentications and commands refused by the pool's users (`auth = "users"`) or
/// passwords, by pool and `reason`: `wrongpass`, `noperm_command`, `noperm_key`.
pub(crate) const AUTH_FAILURES: &str = "sluice_auth_failures_total";
/// Login attempts held back by `auth_failure_delay` (an address that failed repeatedly), by
/// pool.
pub(crate) const AUTH_DELAYED: &str = "sluice_auth_delayed_total";
/// Config reloads (SIGHUP, `POST /reload`), by `result` (`ok` or `error`).
pub(crate) const CONFIG_RELOADS: &str = "sluice_config_reloads_total";

/// Upper bounds of the latency histogram buckets, seconds.
pub(crate) const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Counters of one node, registered once.
pub(crate) struct NodeMetrics {
    /// Reads sent to the node.
    pub(crate) reads: Counter,
    /// Writes (and everything not a read) sent to the node.
    pub(crate) writes: Counter,
    /// Read failures at this node.
    pub(crate) read_errors: Counter,
    /// Write failures at this node.
    pub(crate) write_errors: Counter,
    /// Established shared connections.
    pub(crate) connections: Gauge,
    /// Open dedicated connections.
    pub(crate) dedicated: Gauge,
    /// 1 while the node is the pool's master.
    pub(crate) is_master: Gauge,
}

impl NodeMetrics {
    /// Registers the node's series.
    pub(crate) fn new(pool: &str, node: &str) -> NodeMetrics {
        let (p, n) = (pool.to_string(), node.to_string());
        NodeMetrics {
            reads: counter!(REQUESTS, "pool" => p.clone(), "node" => n.clone(), "class" => "read"),
            writes: counter!(REQUESTS, "pool" => p.clone(), "node" => n.clone(), "class" => "write"),
            read_errors: counter!(ERRORS, "pool" => p.clone(), "node" => n.clone(), "class" => "read"),
            write_errors: counter!(ERRORS, "pool" => p.clone(), "node" => n.clone(), "class" => "write"),
            connections: gauge!(BACKEND_CONNECTIONS, "pool" => p.clone(), "node" => n.clone()),
            dedicated: gauge!(DEDICATED_CONNECTIONS, "pool" => p.clone(), "node" => n.clone()),
            is_master: gauge!(NODE_IS_MASTER, "pool" => p, "node" => n),
        }
    }
}

/// Per-pool series, registered once.
pub(crate) struct PoolMetrics {
    /// Request latency.
    pub(crate) latency: Histogram,
    /// Connected clients.
    pub(crate) clients: Gauge,
    /// Parked idle clients.
    pub(crate) parked: Gauge,
    /// Accepted clients.
    pub(crate) accepted: Counter,
    /// Refused clients.
    pub(crate) rejected: Counter,
    /// Local replies.
    pub(crate) local: Counter,
    /// Proxy-side errors not tied to a node (no master, no replica, denied, ...).
    pub(crate) errors: Counter,
    /// Retried reads.
    pub(crate) retries: Counter,
    /// Client protocol errors.
    pub(crate) protocol_errors: Counter,
    /// Clients disconnected at `client_output_hard_limit`.
    pub(crate) output_limit_disconnects: Counter,
    /// Healthy replicas.
    pub(crate) replicas_healthy: Gauge,
    /// Known replicas.
    pub(crate) replicas_known: Gauge,
    /// Master reachable.
    pub(crate) master_up: Gauge,
    /// Topology snapshots published.
    pub(crate) topology_changes: Counter,
    /// Topology source reachable.
    pub(crate) source_up: Gauge,
}

impl PoolMetrics {
    /// Registers the pool's series.
    pub(crate) fn new(pool: &str) -> PoolMetrics {
        let p = pool.to_string();
        PoolMetrics {
            latency: histogram!(LATENCY, "pool" => p.clone()),
            clients: gauge!(CLIENTS, "pool" => p.clone()),
            parked: gauge!(PARKED, "pool" => p.clone()),
            accepted: counter!(CLIENTS_ACCEPTED, "pool" => p.clone()),
            rejected: counter!(CLIENTS_REJECTED, "pool" => p.clone()),
            local: counter!(LOCAL, "pool" => p.clone()),
            errors: counter!(ERRORS, "pool" => p.clone(), "node" => "", "class" => "proxy"),
            retries: counter!(RETRIES, "pool" => p.clone()),
            protocol_errors: counter!(PROTOCOL_ERRORS, "pool" => p.clone()),
            output_limit_disconnects: counter!(OUTPUT_LIMIT_DISCONNECTS, "pool" => p.clone()),
            replicas_healthy: gauge!(REPLICAS_HEALTHY, "pool" => p.clone()),
            replicas_known: gauge!(REPLICAS_KNOWN, "pool" => p.clone()),
            master_up: gauge!(MASTER_UP, "pool" => p.clone()),
            topology_changes: counter!(TOPOLOGY_CHANGES, "pool" => p.clone()),
            source_up: gauge!(SOURCE_UP, "pool" => p),
        }
    }
}
