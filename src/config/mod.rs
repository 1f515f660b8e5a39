//! Configuration: TOML files deserialised into one immutable snapshot (`Config`), validated
//! as a whole, with errors that name the file, the key and the reason.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod describe;
mod raw;
mod units;
mod users;
mod validate;

pub use users::{sha256, Access, ClientAuth, Sha256Digest, UserConfig};

/// A whole, validated configuration. The running proxy holds it as one snapshot, replaced
/// whole on a reload.
#[derive(Debug, Clone)]
pub struct Config {
    /// File it came from (for messages, and re-read on reload).
    pub source: PathBuf,
    /// On SIGTERM: how long in-flight requests may finish before the process exits.
    pub drain_timeout: Duration,
    /// Admin HTTP server; none runs without it.
    pub admin: Option<AdminConfig>,
    /// One listener per pool.
    pub pools: Vec<PoolConfig>,
}

/// `[admin]`
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Address of the HTTP server (/metrics /healthz /ready /topology).
    pub listen: SocketAddr,
    /// Most admin connections open at once; more are answered 503 and closed, so idle or
    /// slow admin clients cannot use up the process's file descriptors.
    pub max_connections: usize,
    /// An admin connection that has not sent a complete request head within this time (idle
    /// between requests, or a partial request) is closed.
    pub idle_timeout: Duration,
    /// `POST /reload` from addresses other than loopback (then only with `reload_token`).
    pub allow_remote_reload: bool,
    /// When set, `POST /reload` needs `Authorization: Bearer TOKEN`.
    pub reload_token: Option<String>,
}

/// Topology source of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Master and replicas listed in the config.
    Standalone,
    /// Master and replicas learned from Redis Sentinel.
    Sentinel,
    /// Slot map learned from a Redis Cluster.
    Cluster,
}

/// Where reads go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// Every command to the master.
    Master,
    /// Reads to healthy replicas only; an error when none is healthy.
    Replica,
    /// Reads to healthy replicas, else to the master.
    PreferReplica,
}

/// What a read may observe relative to the client's own writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Reads may go to a replica that has not yet applied the client's latest write.
    #[default]
    Eventual,
    /// After a write, the same client's reads go to the master (or a replica known to have
    /// caught up), so a client always sees its own writes.
    ReadYourWrites,
}

/// How far behind the master a replica may be and still serve reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaLag {
    /// Replication offset difference, in bytes (`"1MiB"`, `"512KiB"`, `"1000"`).
    Bytes(u64),
    /// Time since the replica last heard from the master (`"2s"`).
    Time(Duration),
}

impl Mode {
    /// The spelling used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Standalone => "standalone",
            Mode::Sentinel => "sentinel",
            Mode::Cluster => "cluster",
        }
    }
}

impl ReadFrom {
    /// The spelling used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadFrom::Master => "master",
            ReadFrom::Replica => "replica",
            ReadFrom::PreferReplica => "prefer-replica",
        }
    }
}

impl Consistency {
    /// The spelling used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Consistency::Eventual => "eventual",
            Consistency::ReadYourWrites => "read-your-writes",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ReadFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ReplicaLag {
    /// In config syntax: `1MiB`, `2s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ReplicaLag::Bytes(bytes) => f.write_str(&units::format_size(bytes)),
            ReplicaLag::Time(time) => f.write_str(&units::format_duration(time)),
        }
    }
}

/// One `[[pools]]` entry. Compared whole on reload: an unchanged entry keeps its pool.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    /// Pool name (metrics label, /topology key). Unique.
    pub name: String,
    /// Client listener address.
    pub listen: SocketAddr,
    /// Where the pool learns its nodes from, with what only that mode needs.
    pub source: Source,
    /// Read policy.
    pub read_from: ReadFrom,
    /// How clients authenticate (`auth`).
    pub auth: ClientAuth,
    /// `auth = "users"`: the users clients log in as.
    pub users: Vec<UserConfig>,
    /// Password clients must AUTH with (`auth = "password"` only).
    pub password: Option<String>,
    /// Username sent to every node (ACL); `default` when only a password is set.
    pub backend_username: Option<String>,
    /// Password sent to every node.
    pub backend_password: Option<String>,
    /// `auth = "passthrough"`: a client user's shared connection to a node closes after this
    /// long without a request (at least twice `request_timeout`).
    pub passthrough_idle_timeout: Duration,
    /// After repeated failed logins from one address, its next attempts are held this long
    /// each (none: no delay).
    pub auth_failure_delay: Option<Duration>,
    /// Upper-case command names (or `CONFIG SET` style `NAME SUB`) lifted from the default denial.
    pub allow_commands: Vec<String>,
    /// Shared multiplexed connections per node.
    pub backend_connections: usize,
    /// Dedicated connections (transactions, blocking, pub/sub) per node, at most.
    pub max_dedicated_connections: usize,
    /// TCP connect timeout to a node.
    pub connect_timeout: Duration,
    /// How long a forwarded request may wait for its reply before the connection is deemed stuck.
    pub request_timeout: Duration,
    /// How long a write waits for a confirmed master when there is none (a failover in
    /// progress, sentinel mode) before it fails.
    pub master_wait: Duration,
    /// A plain-TCP client idle this long is parked: its task and socket registration are
    /// freed, and its session state waits in the pool's parking lot (see `session::parking`).
    pub park_idle_after: Duration,
    /// Replica health probe period.
    pub health_check_interval: Duration,
    /// Number of databases clients may SELECT (Redis `databases`).
    pub databases: u32,
    /// Most concurrent client connections on this pool.
    pub max_clients: usize,
    /// Bytes of replies a client has not read beyond which none of its further requests are
    /// forwarded until it reads (Redis's `client-output-buffer-limit` soft limit, in spirit).
    pub client_output_soft_limit: usize,
    /// Bytes of replies a client has not read beyond which it is disconnected.
    pub client_output_hard_limit: usize,
    /// Replicas further behind than this serve no reads (every mode; none means any lag is
    /// accepted).
    pub max_replica_lag: Option<ReplicaLag>,
    /// Whether a client must see its own writes (default: eventual).
    pub consistency: Consistency,
    /// TLS on the client listener (`tls_cert`, `tls_key`, `tls_client_ca`).
    pub tls: Option<crate::tls::ListenerTls>,
    /// TLS toward nodes and sentinels (`backend_tls = true` and the `backend_tls_*` keys).
    pub backend_tls: Option<crate::tls::BackendTls>,
}

/// Where a pool learns its nodes from, with what only that mode needs. Built by validation,
/// so every variant is complete: a standalone pool has its master, a sentinel pool its
/// sentinels and group name, a cluster pool its seeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Master and replicas listed in the config.
    Standalone {
        /// `host:port` of the master.
        master: String,
        /// `host:port` of each replica (possibly none).
        replicas: Vec<String>,
    },
    /// Master and replicas learned from Redis Sentinel.
    Sentinel {
        /// `host:port` of each sentinel (at least one).
        sentinels: Vec<String>,
        /// Master group name.
        master_name: String,
        /// Username for AUTH to the sentinels (ACL); only with `password`.
        username: Option<String>,
        /// Password for AUTH to the sentinels.
        password: Option<String>,
    },
    /// Slot map learned from a Redis Cluster.
    Cluster {
        /// `host:port` of each seed node (at least one).
        seeds: Vec<String>,
    },
}

impl Source {
    /// The mode this source belongs to.
    pub fn mode(&self) -> Mode {
        match self {
            Source::Standalone { .. } => Mode::Standalone,
            Source::Sentinel { .. } => Mode::Sentinel,
            Source::Cluster { .. } => Mode::Cluster,
        }
    }
}

impl PoolConfig {
    /// The pool's mode (`source.mode()`).
    pub fn mode(&self) -> Mode {
        self.source.mode()
    }

    /// True when `other` differs from this entry at most in its users: a reload applies
    /// that to the running pool, keeping its clients and connections.
    pub fn same_but_users(&self, other: &PoolConfig) -> bool {
        let mut a = self.clone();
        a.users.clone_from(&other.users);
        a == *other
    }
}

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key is wrong: `{file}: {key}: {reason}`.
    #[error("{file}: {key}: {reason}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Dotted key path, e.g. `pools[0].read_from`.
        key: String,
        /// What is wrong and what is expected.
        reason: String,
    },
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates config text; `source` names it in errors.
    ///
    /// Two steps: the text is deserialised into loosely typed "raw" structs (TOML syntax,
    /// unknown keys, wrong TOML types), then checked and converted into these types (values,
    /// required keys, cross-field and cross-pool rules). The first problem found is returned.
    pub fn parse(text: &str, source: &Path) -> Result<Config, ConfigError> {
        let raw = raw::from_toml(text, source)?;
        validate::config(raw, source)
    }

    /// Human summary of what would run (printed by `sluice check-config`). Secrets are
    /// never printed, only whether they are set.
    pub fn describe(&self) -> String {
        describe::describe(self)
    }
}
