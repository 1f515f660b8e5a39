//! Raw structs -> validated public types. Each check knows the key path it is about, so
//! errors read `FILE: pools[0].read_from: REASON`.
//!
//! `config` checks the file as a whole (pools, names and addresses across pools); each
//! `[[pools]]` entry is checked by [`pool`], its topology source by [`source`], its integer
//! and duration keys by [`limits`], with the value parsers shared in [`values`].

mod limits;
mod pool;
mod source;
mod tls;
mod users;
mod values;

use std::net::SocketAddr;
use std::path::Path;

use super::raw::{RawAdmin, RawConfig};
use super::{AdminConfig, Config, ConfigError, PoolConfig};
use limits::defaults;
use pool::pool_config;
use values::{count, duration, socket_addr};

/// Builds errors for one file.
struct Ctx<'a> {
    file: &'a Path,
}

impl Ctx<'_> {
    fn err(&self, key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_path_buf(),
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// `pools[N].NAME`
fn key(p: &str, name: &str) -> String {
    format!("{p}.{name}")
}

/// Validates a whole file. Pools are checked in order; each is compared with the ones
/// before it, so a duplicate is reported on the later entry, naming the earlier one.
pub(super) fn config(raw: RawConfig, file: &Path) -> Result<Config, ConfigError> {
    let ctx = Ctx { file };
    let drain_timeout = duration(
        &ctx,
        "drain_timeout",
        raw.drain_timeout.as_ref(),
        defaults::DRAIN_TIMEOUT,
    )?;
    let admin = raw
        .admin
        .map(|admin| admin_config(&ctx, admin))
        .transpose()?;

    let raw_pools = raw.pools.unwrap_or_default();
    if raw_pools.is_empty() {
        return Err(ctx.err("pools", "at least one pool is required"));
    }
    let mut pools: Vec<PoolConfig> = Vec::with_capacity(raw_pools.len());
    for (index, raw_pool) in raw_pools.into_iter().enumerate() {
        let pool = pool_config(&ctx, index, raw_pool)?;
        for (earlier, other) in pools.iter().enumerate() {
            if other.name == pool.name {
                return Err(ctx.err(
                    format!("pools[{index}].name"),
                    format!("{:?} is already used by pools[{earlier}]", pool.name),
                ));
            }
            if let Some(reason) =
                listen_conflict(pool.listen, other.listen, &format!("pools[{earlier}]"))
            {
                return Err(ctx.err(format!("pools[{index}].listen"), reason));
            }
        }
        pools.push(pool);
    }
    if let Some(admin) = &admin {
        for (index, pool) in pools.iter().enumerate() {
            if let Some(reason) =
                listen_conflict(admin.listen, pool.listen, &format!("pools[{index}]"))
            {
                return Err(ctx.err("admin.listen", reason));
            }
        }
    }
    Ok(Config {
        source: file.to_path_buf(),
        drain_timeout,
        admin,
        pools,
    })
}

/// Why `new` cannot be bound next to `old` (owned by `owner`), if it cannot. Port 0 asks the
/// OS for a free port and never conflicts. A wildcard address (`0.0.0.0`, `[::]`) takes the
/// port on every interface, so it overlaps any address with the same port.
fn listen_conflict(new: SocketAddr, old: SocketAddr, owner: &str) -> Option<String> {
    if new.port() == 0 || new.port() != old.port() {
        return None;
    }
    if new == old {
        return Some(format!("{new} is already used by {owner}"));
    }
    if new.ip().is_unspecified() || old.ip().is_unspecified() {
        return Some(format!("{new} overlaps {old} of {owner}"));
    }
    None
}

fn admin_config(ctx: &Ctx, raw: RawAdmin) -> Result<AdminConfig, ConfigError> {
    let listen = raw.listen.ok_or_else(|| {
        ctx.err(
            "admin.listen",
            "required in [admin] (remove [admin] to run no admin server)",
        )
    })?;
    let max_connections = count(
        ctx,
        "admin.max_connections",
        raw.max_connections,
        defaults::ADMIN_MAX_CONNECTIONS as i64,
        1..=100_000,
    )?;
    let allow_remote_reload = raw.allow_remote_reload.unwrap_or(false);
    let reload_token = raw.reload_token.filter(|t| !t.is_empty());
    if allow_remote_reload && reload_token.is_none() {
        return Err(ctx.err(
            "admin.allow_remote_reload",
            "needs admin.reload_token: POST /reload from other hosts must carry a token",
        ));
    }
    Ok(AdminConfig {
        allow_remote_reload,
        reload_token,
        listen: socket_addr(&listen).map_err(|reason| ctx.err("admin.listen", reason))?,
        max_connections,
        idle_timeout: duration(
            ctx,
            "admin.idle_timeout",
            raw.idle_timeout.as_ref(),
            defaults::ADMIN_IDLE_TIMEOUT,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::RawPool;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test literal")
    }

    #[test]
    fn listen_conflicts() {
        let a = addr("127.0.0.1:6380");
        assert_eq!(
            listen_conflict(a, a, "pools[0]").as_deref(),
            Some("127.0.0.1:6380 is already used by pools[0]")
        );
        assert_eq!(listen_conflict(a, addr("127.0.0.1:6381"), "p"), None);
        assert_eq!(listen_conflict(a, addr("127.0.0.2:6380"), "p"), None);
        assert_eq!(
            listen_conflict(addr("[::]:6380"), a, "p").as_deref(),
            Some("[::]:6380 overlaps 127.0.0.1:6380 of p")
        );
        assert_eq!(
            listen_conflict(a, addr("0.0.0.0:6380"), "p").as_deref(),
            Some("127.0.0.1:6380 overlaps 0.0.0.0:6380 of p")
        );
        let zero = addr("127.0.0.1:0");
        assert_eq!(listen_conflict(zero, zero, "p"), None);
    }

    #[test]
    fn pool_names_are_plain() {
        let raw = RawConfig {
            drain_timeout: None,
            admin: None,
            pools: Some(vec![RawPool {
                name: Some("my pool".into()),
                listen: Some("127.0.0.1:1".into()),
                master: Some("h:1".into()),
                ..RawPool::default()
            }]),
        };
        let err = config(raw, Path::new("f")).map(|_| ()).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"f: pools[0].name: invalid name "my pool", expected letters, digits, '-', '_' or '.'"#
        );
    }

    #[test]
    fn admin_needs_listen() {
        let raw = RawConfig {
            drain_timeout: None,
            admin: Some(RawAdmin::default()),
            pools: None,
        };
        let err = config(raw, Path::new("f")).map(|_| ()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "f: admin.listen: required in [admin] (remove [admin] to run no admin server)"
        );
    }
}
