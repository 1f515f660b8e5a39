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
//! * [`per_user`]: `auth = "passthrough"`, connections that log in as a client's own user.

pub(crate) mod direct;
mod direct_pool;
pub(crate) mod error;
pub(crate) mod handshake;
pub(crate) mod mux;
pub(crate) mod node;
pub(crate) mod per_user;
pub(crate) mod refusals;

pub(crate) use direct::DirectConn;
pub(crate) use error::BackendError;
pub(crate) use mux::Patience;
pub(crate) use node::{Node, NodeOptions};
