//! A cluster node's start-up options: plain data, so the node's configuration can hold them
//! without depending on the cluster's tasks.

use std::path::PathBuf;

/// Cluster options of a node (`--cluster-enabled yes` and friends).
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// `--cluster-config-file`, relative to `--dir` unless absolute.
    pub config_file: PathBuf,
    /// `--cluster-node-timeout` in ms.
    pub node_timeout_ms: u64,
    /// `--cluster-port`: the bus port (default: port + 10000).
    pub bus_port: Option<u16>,
    /// `--cluster-require-full-coverage`.
    pub require_full_coverage: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            config_file: "nodes.conf".into(),
            node_timeout_ms: 15_000,
            bus_port: None,
            require_full_coverage: true,
        }
    }
}
