//! Why a node could not start, and why its append-only file could not be used: below every
//! other file of the node, so tasks at any level can return them.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// `--dir` is not a directory.
    #[error("--dir {0}: not a directory")]
    Dir(PathBuf),
    /// The append-only file cannot be loaded or opened.
    #[error(transparent)]
    Aof(#[from] AofError),
    /// The cluster role could not start (config file, bus port).
    #[error("cluster: {0}")]
    Cluster(String),
    /// An option this build does not implement yet.
    #[error("{0} is not implemented yet")]
    Unsupported(&'static str),
}

/// Why the append-only file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AofError {
    /// Reading, opening or truncating the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A record that is not a valid command, before the end of the file.
    #[error("{path}: bad record at byte offset {offset}: {reason} (refusing to start; fix or remove the file)")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the record.
        offset: usize,
        /// What is wrong with it.
        reason: String,
    },
}
