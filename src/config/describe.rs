//! `Config::describe`: the summary `sluice check-config` prints. Values are shown in config
//! syntax (`5s`, `1MiB`, `prefer-replica`) so they can be compared with the file directly.
//! Secrets are never printed, only whether they are set.

use std::fmt::Write;

use super::units::{format_duration, format_size};
use super::{ClientAuth, Config, PoolConfig, Source};

pub(super) fn describe(config: &Config) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(out, "config: {}", config.source.display());
    let _ = writeln!(
        out,
        "drain_timeout: {}",
        format_duration(config.drain_timeout)
    );
    match &config.admin {
        Some(admin) => {
            let _ = writeln!(
                out,
                "admin: http://{} (/metrics /healthz /ready /topology /reload), max_connections {}, idle_timeout {}",
                admin.listen,
                admin.max_connections,
                format_duration(admin.idle_timeout)
            );
            let who = if admin.allow_remote_reload {
                "any address"
            } else {
                "loopback only"
            };
            let token = if admin.reload_token.is_some() {
                "token required"
            } else {
                "no token"
            };
            let _ = writeln!(out, "  POST /reload: {who}, {token}");
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

/// `auth` and what it uses, without secrets, and the login delay.
fn client_auth(pool: &PoolConfig) -> String {
    let how = client_auth_mode(pool);
    match pool.auth_failure_delay {
        Some(d) => format!("{how}; auth_failure_delay {}", format_duration(d)),
        None => how,
    }
}

fn client_auth_mode(pool: &PoolConfig) -> String {
    match pool.auth {
        ClientAuth::Password if pool.password.is_some() => "yes (password)".to_string(),
        ClientAuth::Password => "no".to_string(),
        ClientAuth::Users => {
            let users: Vec<String> = pool
                .users
                .iter()
                .map(|u| format!("{} ({})", u.name, u.access.as_str()))
                .collect();
            format!("users: {}", users.join(", "))
        }
        ClientAuth::Passthrough => format!(
            "passthrough (the master checks each client's user; idle user connections close \
             after {})",
            format_duration(pool.passthrough_idle_timeout)
        ),
    }
}

fn client_tls(pool: &PoolConfig) -> String {
    match &pool.tls {
        None => "off".to_string(),
        Some(t) => {
            let clients = match &t.client_ca {
                None => "no client certificates".to_string(),
                Some(ca) => format!("client certificates required (CA {})", ca.display()),
            };
            format!(
                "cert {}, key {}, {clients}",
                t.cert.display(),
                t.key.display()
            )
        }
    }
}

fn backend_tls(pool: &PoolConfig) -> String {
    match &pool.backend_tls {
        None => "off".to_string(),
        Some(t) => {
            let cert = match &t.client_cert {
                None => "no client certificate".to_string(),
                Some((c, _)) => format!("client certificate {}", c.display()),
            };
            let name = match &t.server_name {
                None => "checks each node's host".to_string(),
                Some(n) => format!("checks name {n:?}"),
            };
            format!("CA {}, {cert}, {name}", t.ca.display())
        }
    }
}

fn describe_pool(out: &mut String, pool: &PoolConfig) {
    let _ = writeln!(out, "  pool {:?}: listening on {}", pool.name, pool.listen);
    let _ = writeln!(out, "    mode: {}", pool.mode());
    match &pool.source {
        Source::Standalone { master, replicas } => {
            let _ = writeln!(out, "    master: {master}");
            let _ = writeln!(out, "    replicas: {}", list(replicas));
        }
        Source::Sentinel {
            sentinels,
            master_name,
            username,
            password,
        } => {
            let _ = writeln!(out, "    sentinels: {}", list(sentinels));
            let _ = writeln!(out, "    master_name: {master_name}");
            let _ = writeln!(out, "    sentinel auth: {}", auth(username, password));
        }
        Source::Cluster { seeds } => {
            let _ = writeln!(out, "    seeds: {}", list(seeds));
        }
    }
    let _ = writeln!(out, "    read_from: {}", pool.read_from);
    let _ = writeln!(out, "    consistency: {}", pool.consistency);
    let lag = pool
        .max_replica_lag
        .map_or_else(|| "unlimited".to_string(), |lag| lag.to_string());
    let _ = writeln!(out, "    max_replica_lag: {lag}");
    let _ = writeln!(out, "    client auth: {}", client_auth(pool));
    let _ = writeln!(
        out,
        "    backend auth: {}",
        auth(&pool.backend_username, &pool.backend_password)
    );
    let _ = writeln!(out, "    client TLS: {}", client_tls(pool));
    let _ = writeln!(out, "    backend TLS: {}", backend_tls(pool));
    let _ = writeln!(out, "    allow_commands: {}", list(&pool.allow_commands));
    let _ = writeln!(
        out,
        "    limits: max_clients {}, databases {}, backend_connections {}, max_dedicated_connections {}",
        pool.max_clients, pool.databases, pool.backend_connections, pool.max_dedicated_connections
    );
    let _ = writeln!(
        out,
        "    client output limits: soft {}, hard {}",
        format_size(pool.client_output_soft_limit as u64),
        format_size(pool.client_output_hard_limit as u64)
    );
    let _ = writeln!(
        out,
        "    timeouts: connect {}, request {}, health_check_interval {}, master_wait {}, \
         park_idle_after {}",
        format_duration(pool.connect_timeout),
        format_duration(pool.request_timeout),
        format_duration(pool.health_check_interval),
        format_duration(pool.master_wait),
        format_duration(pool.park_idle_after)
    );
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::Config;

    #[test]
    fn sentinel_summary_hides_secrets() {
        let text = r#"
[[pools]]
name = "s"
listen = "127.0.0.1:6380"
mode = "sentinel"
sentinels = ["127.0.0.1:26379", "127.0.0.1:26380"]
master_name = "mymaster"
sentinel_username = "watcher"
sentinel_password = "TOPSECRET1"
backend_password = "TOPSECRET2"
password = "TOPSECRET3"
max_replica_lag = "2s"
consistency = "read-your-writes"
"#;
        let config = Config::parse(text, Path::new("s.toml")).expect("valid");
        let summary = config.describe();
        assert!(!summary.contains("TOPSECRET"), "{summary}");
        for needle in [
            "config: s.toml",
            "admin: disabled",
            "1 pool:",
            "sentinels: 127.0.0.1:26379, 127.0.0.1:26380",
            "master_name: mymaster",
            "sentinel auth: yes (user \"watcher\", password)",
            "backend auth: yes (password)",
            "client auth: yes",
            "consistency: read-your-writes",
            "max_replica_lag: 2s",
            "read_from: master",
        ] {
            assert!(summary.contains(needle), "{needle:?} not in:\n{summary}");
        }
        assert!(!summary.contains("replicas:"), "{summary}");
    }

    #[test]
    fn cluster_summary_lists_seeds_and_limits() {
        let text = r#"
[admin]
listen = "127.0.0.1:9121"
[[pools]]
name = "c"
listen = "127.0.0.1:7380"
mode = "cluster"
seeds = ["h1:7000", "h2:7000"]
max_clients = 5
allow_commands = ["debug"]
[[pools]]
name = "d"
listen = "127.0.0.1:7381"
master = "h:1"
"#;
        let summary = Config::parse(text, Path::new("c.toml"))
            .expect("valid")
            .describe();
        for needle in [
            "admin: http://127.0.0.1:9121",
            "2 pools:",
            "pool \"c\": listening on 127.0.0.1:7380",
            "mode: cluster",
            "seeds: h1:7000, h2:7000",
            "allow_commands: DEBUG",
            "max_replica_lag: unlimited",
            "limits: max_clients 5, databases 16, backend_connections 2, max_dedicated_connections 1024",
            "pool \"d\": listening on 127.0.0.1:7381",
            "replicas: none",
            "backend auth: no",
        ] {
            assert!(summary.contains(needle), "{needle:?} not in:\n{summary}");
        }
    }
}
