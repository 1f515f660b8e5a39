//! Connections to Redis nodes.
//!
//! * [`mux`]: a few long-lived, pipelined connections per node shared by every client (plain
//!   commands). Requests from many clients are written in one syscall and replies matched by a
//!   FIFO, which is where a proxy can save the node syscalls.
//! * [`direct`]: dedicated connections for state that lives on a connection (MULTI/WATCH,
//!   blocking commands, subscriptions), pooled per node and per protocol and reused afterwards
//!   instead of opening a TCP connection per transaction; [`DirectPool`] caps them per node
//!   and queues the clients that find the cap reached.
//! * [`node`]: one node's handles (both kinds, health, metrics).

pub mod direct;
mod direct_pool;
pub mod error;
pub mod handshake;
pub mod mux;
pub mod node;

pub use direct::DirectConn;
pub use direct_pool::DirectPool;
pub use error::BackendError;
pub use mux::MuxConn;
pub use node::{Node, NodeOptions};
