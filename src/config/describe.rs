//! `Config::describe`: the summary `sluice check-config` prints. Values are shown in config
//! syntax (`5s`, `1MiB`, `prefer-replica`) so they can be compared with the file directly.
//! Secrets are never printed, only whether they are set.

use std::fmt::Write;

use super::units::format_duration;
use super::{Config, Mode, PoolConfig};

pub(super) fn describe(config: &Config) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(out, "config: {}", config.source.display());
    match &config.admin {
        Some(admin) => {
            let _ = writeln!(
                out,
                "admin: http://{} (/metrics /healthz /ready /topology)",
                admin.listen
            );
        }
        None => {
            let _ = writeln!(out, "admin: disabled (no [admin] section)");
        }
    }
    let _ = writeln!(
        out,
        "{} pool{}:",
        config.pools.len(),
        if config.pools.len() == 1 { "" } else { "s" }
    );
    for pool in &config.pools {
        describe_pool(&mut out, pool);
    }
    out
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

fn auth(user: &Option<String>, password: &Option<String>) -> String {
    match (user, password) {
        (_, None) => "no".to_string(),
        (None, Some(_)) => "yes (password)".to_string(),
        (Some(user), Some(_)) => format!("yes (user {user:?}, password)"),
    }
}

fn describe_pool(out: &mut String, pool: &PoolConfig) {
    let _ = writeln!(out, "  pool {:?}: listening on {}", pool.name, pool.listen);
    let _ = writeln!(out, "    mode: {}", pool.mode);
    match pool.mode {
        Mode::Standalone => {
            let _ = writeln!(
                out,
                "    master: {}",
                pool.master.as_deref().unwrap_or("none")
            );
            let _ = writeln!(out, "    replicas: {}", list(&pool.replicas));
        }
        Mode::Sentinel => {
            let _ = writeln!(out, "    sentinels: {}", list(&pool.sentinels));
            let _ = writeln!(
                out,
                "    master_name: {}",
                pool.master_name.as_deref().unwrap_or("none")
            );
            let _ = writeln!(
                out,
                "    sentinel auth: {}",
                auth(&pool.sentinel_username, &pool.sentinel_password)
            );
        }
        Mode::Cluster => {
            let _ = writeln!(out, "    seeds: {}", list(&pool.seeds));
        }
    }
    let _ = writeln!(out, "    read_from: {}", pool.read_from);
    let _ = writeln!(out, "    consistency: {}", pool.consistency);
    let lag = pool
        .max_replica_lag
        .map_or_else(|| "unlimited".to_string(), |lag| lag.to_string());
    let _ = writeln!(out, "    max_replica_lag: {lag}");
    let _ = writeln!(
        out,
        "    client auth: {}",
        if pool.password.is_some() { "yes" } else { "no" }
    );
    let _ = writeln!(
        out,
        "    backend auth: {}",
        auth(&pool.backend_username, &pool.backend_password)
    );
    let _ = writeln!(out, "    allow_commands: {}", list(&pool.allow_commands));
    let _ = writeln!(
        out,
        "    limits: max_clients {}, databases {}, backend_connections {}, max_dedicated_connections {}",
        pool.max_clients, pool.databases, pool.backend_connections, pool.max_dedicated_connections
    );
    let _ = writeln!(
        out,
        "    timeouts: connect {}, request {}, health_check_interval {}",
        format_duration(pool.connect_timeout),
        format_duration(pool.request_timeout),
        format_duration(pool.health_check_interval)
    );
}
