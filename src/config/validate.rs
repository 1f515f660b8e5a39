//! Raw structs -> validated public types. Each check knows the key path it is about, so
//! errors read `FILE: pools[0].read_from: REASON`.

use std::net::{Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use super::raw::{RawAdmin, RawConfig, RawPool};
use super::units::{self, NumOrText};
use super::{AdminConfig, Config, ConfigError, Consistency, Mode, PoolConfig, ReadFrom};

/// Defaults, public through the docs of the example configs; keep them in sync.
pub(super) mod defaults {
    use std::time::Duration;

    pub const BACKEND_CONNECTIONS: usize = 2;
    pub const MAX_DEDICATED_CONNECTIONS: usize = 1024;
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
    /// How long a write waits for a confirmed master during a failover (sentinel mode).
    pub const MASTER_WAIT: Duration = Duration::from_secs(3);
    pub const HEALTH_CHECK_INTERVAL: Duration = Duration::from_millis(250);
    pub const DATABASES: u32 = 16;
    pub const MAX_CLIENTS: usize = 10_000;
    pub const CLIENT_OUTPUT_SOFT_LIMIT: u64 = 16 << 20;
    pub const CLIENT_OUTPUT_HARD_LIMIT: u64 = 256 << 20;
    pub const ADMIN_MAX_CONNECTIONS: usize = 64;
    pub const ADMIN_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
}

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

/// Validates a whole file. Pools are checked in order; each is compared with the ones
/// before it, so a duplicate is reported on the later entry, naming the earlier one.
pub(super) fn config(raw: RawConfig, file: &Path) -> Result<Config, ConfigError> {
    let ctx = Ctx { file };
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
    let max_connections = int_in_range(
        ctx,
        "admin.max_connections",
        raw.max_connections,
        defaults::ADMIN_MAX_CONNECTIONS as i64,
        1,
        100_000,
    )?;
    Ok(AdminConfig {
        listen: socket_addr(&listen).map_err(|reason| ctx.err("admin.listen", reason))?,
        // Within 1..=100_000, so it fits.
        max_connections: max_connections as usize,
        idle_timeout: duration(
            ctx,
            "admin.idle_timeout",
            raw.idle_timeout,
            defaults::ADMIN_IDLE_TIMEOUT,
        )?,
    })
}

fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("invalid socket address {text:?}"))
}

/// Parses one of a fixed set of spellings.
fn choice<T: Copy>(value: &str, choices: &[(&str, T)]) -> Result<T, String> {
    choices
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
            format!(
                "unknown value {value:?}, expected one of {}",
                names.join(", ")
            )
        })
}

/// Checks a node address: `host:port` or `[ipv6]:port`, port 1-65535. Hostnames are kept
/// as written; they are resolved when connecting, so DNS changes are picked up.
fn node_addr(text: &str) -> Result<(), String> {
    let expected = || format!("invalid address {text:?}, expected host:port");
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, port) = rest.split_once("]:").ok_or_else(expected)?;
        host.parse::<Ipv6Addr>().map_err(|_| expected())?;
        (host, port)
    } else {
        let (host, port) = text.rsplit_once(':').ok_or_else(expected)?;
        // A bare IPv6 address is ambiguous ("::1:6379"): brackets are required.
        if host.contains(':') {
            return Err(format!(
                "invalid address {text:?}, write IPv6 addresses as [addr]:port"
            ));
        }
        (host, port)
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if !host_ok {
        return Err(expected());
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(()),
        _ => Err(format!("invalid port in {text:?}, expected 1-65535")),
    }
}

/// Checks a list of node addresses; `None` and `[]` are left to the caller.
fn node_list(ctx: &Ctx, key: &str, list: &[String]) -> Result<(), ConfigError> {
    for (i, addr) in list.iter().enumerate() {
        node_addr(addr).map_err(|reason| ctx.err(format!("{key}[{i}]"), reason))?;
        if let Some(first) = list[..i].iter().position(|a| a == addr) {
            return Err(ctx.err(
                format!("{key}[{i}]"),
                format!("{addr:?} is already listed as {key}[{first}]"),
            ));
        }
    }
    Ok(())
}

/// A required, non-empty list of node addresses (for sentinels and seeds).
fn required_nodes(
    ctx: &Ctx,
    key: &str,
    mode: Mode,
    list: Option<Vec<String>>,
) -> Result<Vec<String>, ConfigError> {
    let list = list.ok_or_else(|| ctx.err(key, format!("required when mode = \"{mode}\"")))?;
    if list.is_empty() {
        return Err(ctx.err(key, "must list at least one host:port address"));
    }
    node_list(ctx, key, &list)?;
    Ok(list)
}

/// A secret or name that, when given, must not be empty: an empty password is almost
/// certainly a templating mistake, and removing the key is how to disable it.
fn non_empty(ctx: &Ctx, key: &str, value: Option<String>) -> Result<Option<String>, ConfigError> {
    match value {
        Some(v) if v.is_empty() => Err(ctx.err(key, "must not be empty (remove the key instead)")),
        other => Ok(other),
    }
}

/// An integer setting with a default and an inclusive range.
fn int_in_range(
    ctx: &Ctx,
    key: &str,
    value: Option<i64>,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ConfigError> {
    let v = value.unwrap_or(default);
    if (min..=max).contains(&v) {
        Ok(v)
    } else {
        Err(ctx.err(key, format!("{v} is out of range, expected {min}..={max}")))
    }
}

/// A positive duration with a default.
fn duration(
    ctx: &Ctx,
    key: &str,
    value: Option<NumOrText>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    let d = units::parse_duration(&value).map_err(|reason| ctx.err(key, reason))?;
    if d.is_zero() {
        return Err(ctx.err(key, "must be greater than zero"));
    }
    Ok(d)
}

/// `client_output_soft_limit` and `client_output_hard_limit`: sizes, the soft one at least
/// 1 KiB (below, a client could not get even one ordinary reply pipelined), the hard one not
/// below the soft one.
fn output_limits(
    ctx: &Ctx,
    p: &str,
    soft: Option<NumOrText>,
    hard: Option<NumOrText>,
) -> Result<(usize, usize), ConfigError> {
    let size = |name: &str, value: Option<NumOrText>, default: u64| {
        let key = format!("{p}.{name}");
        let v = value.map_or(Ok(default), |v| units::parse_size(&v));
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
            format!("{p}.client_output_soft_limit"),
            format!("{soft_v} is too small, expected at least 1KiB"),
        ));
    }
    if hard_v < soft_v {
        return Err(ctx.err(
            format!("{p}.client_output_hard_limit"),
            format!(
                "{} is below client_output_soft_limit ({})",
                units::format_size(hard_v as u64),
                units::format_size(soft_v as u64)
            ),
        ));
    }
    Ok((soft_v, hard_v))
}

/// Normalises `allow_commands`: upper-case, single spaces, at most `NAME SUBCOMMAND`.
/// Duplicates are dropped (harmless, and order carries no meaning).
fn allow_commands(ctx: &Ctx, key: &str, list: Vec<String>) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let words: Vec<&str> = entry.split_whitespace().collect();
        let item_key = format!("{key}[{i}]");
        if words.is_empty() {
            return Err(ctx.err(item_key, "empty command name"));
        }
        if words.len() > 2
            || !words
                .iter()
                .all(|w| w.chars().all(|c| c.is_ascii_graphic()))
        {
            return Err(ctx.err(
                item_key,
                format!(
                    "invalid command {entry:?}, expected a command name or \"NAME SUBCOMMAND\""
                ),
            ));
        }
        let normalised = words.join(" ").to_ascii_uppercase();
        if !out.contains(&normalised) {
            out.push(normalised);
        }
    }
    Ok(out)
}

/// A username needs its password (Redis `AUTH user pass`); a password alone authenticates
/// as the `default` user.
fn user_needs_password(
    ctx: &Ctx,
    prefix: &str,
    user_key: &str,
    password_key: &str,
    user: &Option<String>,
    password: &Option<String>,
) -> Result<(), ConfigError> {
    if user.is_some() && password.is_none() {
        return Err(ctx.err(
            format!("{prefix}.{password_key}"),
            format!("required when {user_key} is set"),
        ));
    }
    Ok(())
}

fn pool_config(ctx: &Ctx, index: usize, raw: RawPool) -> Result<PoolConfig, ConfigError> {
    let p = format!("pools[{index}]");
    let key = |name: &str| format!("{p}.{name}");

    let name = raw.name.ok_or_else(|| ctx.err(key("name"), "required"))?;
    // The name becomes a metrics label and a /topology key: keep it plain.
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !name_ok {
        return Err(ctx.err(
            key("name"),
            format!("invalid name {name:?}, expected letters, digits, '-', '_' or '.'"),
        ));
    }

    let listen = raw
        .listen
        .ok_or_else(|| ctx.err(key("listen"), "required"))?;
    let listen = socket_addr(&listen).map_err(|reason| ctx.err(key("listen"), reason))?;

    let mode = match raw.mode.as_deref() {
        None => Mode::Standalone,
        Some(m) => choice(
            m,
            &[
                ("standalone", Mode::Standalone),
                ("sentinel", Mode::Sentinel),
                ("cluster", Mode::Cluster),
            ],
        )
        .map_err(|reason| ctx.err(key("mode"), reason))?,
    };

    // Keys that belong to another mode are errors rather than ignored: a pool with
    // `mode = "sentinel"` and a `master` would otherwise silently not use that master.
    let foreign: &[(&str, bool, Mode)] = &[
        ("master", raw.master.is_some(), Mode::Standalone),
        ("replicas", raw.replicas.is_some(), Mode::Standalone),
        ("sentinels", raw.sentinels.is_some(), Mode::Sentinel),
        ("master_name", raw.master_name.is_some(), Mode::Sentinel),
        (
            "sentinel_username",
            raw.sentinel_username.is_some(),
            Mode::Sentinel,
        ),
        (
            "sentinel_password",
            raw.sentinel_password.is_some(),
            Mode::Sentinel,
        ),
        ("seeds", raw.seeds.is_some(), Mode::Cluster),
    ];
    for (field, set, owner) in foreign {
        if *set && *owner != mode {
            return Err(ctx.err(
                key(field),
                format!("only used when mode = \"{owner}\", but mode = \"{mode}\""),
            ));
        }
    }

    let mut master = None;
    let mut replicas = Vec::new();
    let mut sentinels = Vec::new();
    let mut master_name = None;
    let mut seeds = Vec::new();
    match mode {
        Mode::Standalone => {
            let m = raw
                .master
                .ok_or_else(|| ctx.err(key("master"), "required when mode = \"standalone\""))?;
            node_addr(&m).map_err(|reason| ctx.err(key("master"), reason))?;
            replicas = raw.replicas.unwrap_or_default();
            node_list(ctx, &key("replicas"), &replicas)?;
            if let Some(i) = replicas.iter().position(|r| *r == m) {
                return Err(ctx.err(format!("{p}.replicas[{i}]"), format!("{m:?} is the master")));
            }
            master = Some(m);
        }
        Mode::Sentinel => {
            sentinels = required_nodes(ctx, &key("sentinels"), mode, raw.sentinels)?;
            let group = raw
                .master_name
                .ok_or_else(|| ctx.err(key("master_name"), "required when mode = \"sentinel\""))?;
            if group.trim().is_empty() {
                return Err(ctx.err(key("master_name"), "must not be empty"));
            }
            master_name = Some(group);
        }
        Mode::Cluster => {
            seeds = required_nodes(ctx, &key("seeds"), mode, raw.seeds)?;
        }
    }

    let read_from = match raw.read_from.as_deref() {
        None => ReadFrom::Master,
        Some(r) => choice(
            r,
            &[
                ("master", ReadFrom::Master),
                ("replica", ReadFrom::Replica),
                ("prefer-replica", ReadFrom::PreferReplica),
            ],
        )
        .map_err(|reason| ctx.err(key("read_from"), reason))?,
    };
    let consistency = match raw.consistency.as_deref() {
        None => Consistency::default(),
        Some(c) => choice(
            c,
            &[
                ("eventual", Consistency::Eventual),
                ("read-your-writes", Consistency::ReadYourWrites),
            ],
        )
        .map_err(|reason| ctx.err(key("consistency"), reason))?,
    };
    let max_replica_lag = raw
        .max_replica_lag
        .map(|lag| units::parse_replica_lag(&lag))
        .transpose()
        .map_err(|reason| ctx.err(key("max_replica_lag"), reason))?;
    if mode == Mode::Cluster {
        // Refused rather than silently ignored: cluster pools cannot honour these yet.
        if consistency == Consistency::ReadYourWrites {
            return Err(ctx.err(
                key("consistency"),
                "\"read-your-writes\" is not supported when mode = \"cluster\"",
            ));
        }
        if matches!(max_replica_lag, Some(super::ReplicaLag::Time(_))) {
            return Err(ctx.err(
                key("max_replica_lag"),
                "must be a size when mode = \"cluster\" (the cluster reports replication \
                 offsets, not ack times), e.g. \"1MiB\"",
            ));
        }
    }

    let password = non_empty(ctx, &key("password"), raw.password)?;
    let backend_username = non_empty(ctx, &key("backend_username"), raw.backend_username)?;
    let backend_password = non_empty(ctx, &key("backend_password"), raw.backend_password)?;
    user_needs_password(
        ctx,
        &p,
        "backend_username",
        "backend_password",
        &backend_username,
        &backend_password,
    )?;
    let sentinel_username = non_empty(ctx, &key("sentinel_username"), raw.sentinel_username)?;
    let sentinel_password = non_empty(ctx, &key("sentinel_password"), raw.sentinel_password)?;
    user_needs_password(
        ctx,
        &p,
        "sentinel_username",
        "sentinel_password",
        &sentinel_username,
        &sentinel_password,
    )?;

    let allow_commands = allow_commands(
        ctx,
        &key("allow_commands"),
        raw.allow_commands.unwrap_or_default(),
    )?;

    // Ranges: the i64 -> usize/u32 conversions below cannot fail because every upper bound
    // fits in u32, but they are checked anyway rather than cast.
    let to_usize = |k: &str, v: i64| {
        usize::try_from(v).map_err(|_| ctx.err(key(k), format!("{v} is out of range")))
    };
    let backend_connections = int_in_range(
        ctx,
        &key("backend_connections"),
        raw.backend_connections,
        defaults::BACKEND_CONNECTIONS as i64,
        1,
        64,
    )?;
    let max_dedicated_connections = int_in_range(
        ctx,
        &key("max_dedicated_connections"),
        raw.max_dedicated_connections,
        defaults::MAX_DEDICATED_CONNECTIONS as i64,
        1,
        4096,
    )?;
    let databases = int_in_range(
        ctx,
        &key("databases"),
        raw.databases,
        i64::from(defaults::DATABASES),
        1,
        1_000_000,
    )?;
    let max_clients = int_in_range(
        ctx,
        &key("max_clients"),
        raw.max_clients,
        defaults::MAX_CLIENTS as i64,
        1,
        1_000_000,
    )?;
    let (client_output_soft_limit, client_output_hard_limit) = output_limits(
        ctx,
        &p,
        raw.client_output_soft_limit,
        raw.client_output_hard_limit,
    )?;

    Ok(PoolConfig {
        name,
        listen,
        mode,
        master,
        replicas,
        read_from,
        password,
        backend_username,
        backend_password,
        allow_commands,
        backend_connections: to_usize("backend_connections", backend_connections)?,
        max_dedicated_connections: to_usize(
            "max_dedicated_connections",
            max_dedicated_connections,
        )?,
        connect_timeout: duration(
            ctx,
            &key("connect_timeout"),
            raw.connect_timeout,
            defaults::CONNECT_TIMEOUT,
        )?,
        request_timeout: duration(
            ctx,
            &key("request_timeout"),
            raw.request_timeout,
            defaults::REQUEST_TIMEOUT,
        )?,
        health_check_interval: duration(
            ctx,
            &key("health_check_interval"),
            raw.health_check_interval,
            defaults::HEALTH_CHECK_INTERVAL,
        )?,
        master_wait: duration(
            ctx,
            &key("master_wait"),
            raw.master_wait,
            defaults::MASTER_WAIT,
        )?,
        databases: u32::try_from(databases)
            .map_err(|_| ctx.err(key("databases"), format!("{databases} is out of range")))?,
        max_clients: to_usize("max_clients", max_clients)?,
        client_output_soft_limit,
        client_output_hard_limit,
        sentinels,
        master_name,
        seeds,
        max_replica_lag,
        consistency,
        sentinel_username,
        sentinel_password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn node_addresses() {
        for ok in [
            "127.0.0.1:6379",
            "redis:6379",
            "redis-1.prod.internal:1",
            "[::1]:6379",
            "[fe80::1]:65535",
        ] {
            assert_eq!(node_addr(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "redis",
            ":6379",
            "red is:6379",
            "[::1]6379",
            "[zz]:1",
            "h:",
        ] {
            assert!(node_addr(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            node_addr("h:0"),
            Err(r#"invalid port in "h:0", expected 1-65535"#.to_string())
        );
        assert_eq!(
            node_addr("h:65536"),
            Err(r#"invalid port in "h:65536", expected 1-65535"#.to_string())
        );
    }

    #[test]
    fn choices_list_the_alternatives() {
        let choices = [("a", 1), ("b-c", 2)];
        assert_eq!(choice("b-c", &choices), Ok(2));
        assert_eq!(
            choice("B-C", &choices),
            Err(r#"unknown value "B-C", expected one of a, b-c"#.to_string())
        );
    }

    #[test]
    fn pool_names_are_plain() {
        let raw = RawConfig {
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
