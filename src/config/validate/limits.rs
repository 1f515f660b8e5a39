//! A pool's integer limits and durations, with their defaults.

use std::time::Duration;

use super::values::{count, duration};
use super::{key, Ctx};
use crate::config::raw::RawPool;
use crate::config::units::{self, NumOrText};
use crate::config::ConfigError;

/// Defaults, public through the docs of the example configs; keep them in sync.
pub(super) mod defaults {
    use std::time::Duration;

    pub const BACKEND_CONNECTIONS: usize = 2;
    pub const MAX_DEDICATED_CONNECTIONS: usize = 1024;
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
    /// How long a write waits for a confirmed master during a failover (sentinel mode).
    pub const MASTER_WAIT: Duration = Duration::from_secs(3);
    pub const PARK_IDLE_AFTER: Duration = Duration::from_secs(10);
    pub const HEALTH_CHECK_INTERVAL: Duration = Duration::from_millis(250);
    pub const DATABASES: u32 = 16;
    pub const MAX_CLIENTS: usize = 10_000;
    pub const CLIENT_OUTPUT_SOFT_LIMIT: u64 = 16 << 20;
    pub const CLIENT_OUTPUT_HARD_LIMIT: u64 = 256 << 20;
    pub const ADMIN_MAX_CONNECTIONS: usize = 64;
    pub const ADMIN_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
}

/// The integer limits of a pool.
pub(super) struct Counts {
    pub(super) backend_connections: usize,
    pub(super) max_dedicated_connections: usize,
    pub(super) databases: u32,
    pub(super) max_clients: usize,
}

pub(super) fn counts(ctx: &Ctx, p: &str, raw: &RawPool) -> Result<Counts, ConfigError> {
    Ok(Counts {
        backend_connections: count(
            ctx,
            &key(p, "backend_connections"),
            raw.backend_connections,
            defaults::BACKEND_CONNECTIONS as i64,
            1..=64,
        )?,
        max_dedicated_connections: count(
            ctx,
            &key(p, "max_dedicated_connections"),
            raw.max_dedicated_connections,
            defaults::MAX_DEDICATED_CONNECTIONS as i64,
            1..=4096,
        )?,
        databases: count(
            ctx,
            &key(p, "databases"),
            raw.databases,
            i64::from(defaults::DATABASES),
            1..=1_000_000,
        )?,
        max_clients: count(
            ctx,
            &key(p, "max_clients"),
            raw.max_clients,
            defaults::MAX_CLIENTS as i64,
            1..=1_000_000,
        )?,
    })
}

/// The durations of a pool.
pub(super) struct Timeouts {
    pub(super) connect: Duration,
    pub(super) request: Duration,
    pub(super) health_check_interval: Duration,
    pub(super) master_wait: Duration,
    pub(super) park_idle_after: Duration,
}

pub(super) fn timeouts(ctx: &Ctx, p: &str, raw: &RawPool) -> Result<Timeouts, ConfigError> {
    let timeout = |name: &str, value: &Option<NumOrText>, default: Duration| {
        duration(ctx, &key(p, name), value.as_ref(), default)
    };
    Ok(Timeouts {
        connect: timeout(
            "connect_timeout",
            &raw.connect_timeout,
            defaults::CONNECT_TIMEOUT,
        )?,
        request: timeout(
            "request_timeout",
            &raw.request_timeout,
            defaults::REQUEST_TIMEOUT,
        )?,
        health_check_interval: timeout(
            "health_check_interval",
            &raw.health_check_interval,
            defaults::HEALTH_CHECK_INTERVAL,
        )?,
        master_wait: timeout("master_wait", &raw.master_wait, defaults::MASTER_WAIT)?,
        park_idle_after: timeout(
            "park_idle_after",
            &raw.park_idle_after,
            defaults::PARK_IDLE_AFTER,
        )?,
    })
}

/// `client_output_soft_limit` and `client_output_hard_limit`: sizes, the soft one at least
/// 1 KiB (below, a client could not get even one ordinary reply pipelined), the hard one not
/// below the soft one.
pub(super) fn output_limits(
    ctx: &Ctx,
    p: &str,
    soft: Option<&NumOrText>,
    hard: Option<&NumOrText>,
) -> Result<(usize, usize), ConfigError> {
    let size = |name: &str, value: Option<&NumOrText>, default: u64| {
        let key = key(p, name);
        let v = value.map_or(Ok(default), units::parse_size);
        let v = v.map_err(|reason| ctx.err(&key, reason))?;
        usize::try_from(v).map_err(|_| ctx.err(&key, format!("{v} is out of range")))
    };
    let soft_v = size(
        "client_output_soft_limit",
        soft,
        defaults::CLIENT_OUTPUT_SOFT_LIMIT,
    )?;
    let hard_v = size(
        "client_output_hard_limit",
        hard,
        defaults::CLIENT_OUTPUT_HARD_LIMIT,
    )?;
    if soft_v < 1024 {
        return Err(ctx.err(
            key(p, "client_output_soft_limit"),
            format!("{soft_v} is too small, expected at least 1KiB"),
        ));
    }
    if hard_v < soft_v {
        return Err(ctx.err(
            key(p, "client_output_hard_limit"),
            format!(
                "{} is below client_output_soft_limit ({})",
                units::format_size(hard_v as u64),
                units::format_size(soft_v as u64)
            ),
        ));
    }
    Ok((soft_v, hard_v))
}
