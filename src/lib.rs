//! sluice: a RESP proxy for Redis.
#![warn(missing_docs)]

pub(crate) mod admin;
pub mod app;
pub(crate) mod backend;
pub(crate) mod cluster_slot;
pub mod command;
pub mod config;
pub mod memory;
pub mod node;
pub(crate) mod pool;
pub mod resp;
pub(crate) mod route;
pub(crate) mod session;
pub mod stack;
pub mod stack_cluster;
pub(crate) mod telemetry;
pub(crate) mod topology;
