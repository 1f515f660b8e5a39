//! sluice: a RESP proxy for Redis.
#![warn(missing_docs)]

pub mod command;
pub mod config;
pub mod resp;
