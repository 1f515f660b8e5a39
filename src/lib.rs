//! sluice: a RESP proxy for Redis.
#![warn(missing_docs)]

pub mod admin;
pub mod app;
pub mod backend;
pub mod cluster_slot;
pub mod command;
pub mod config;
pub mod memory;
pub mod node;
pub mod pool;
pub mod resp;
pub mod route;
pub mod session;
pub mod stack;
pub mod stack_cluster;
pub mod telemetry;
pub mod tls;
pub mod topology;
