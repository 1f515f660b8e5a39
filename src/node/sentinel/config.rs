//! The sentinel's config file, in Redis's own syntax (`sentinel monitor NAME HOST PORT QUORUM`,
//! `sentinel down-after-milliseconds NAME MS`, ...), so a redis-sentinel file works as it is.
//!
//! Besides what a user writes, Redis's sentinel keeps its state in the same file (`sentinel
//! myid`, `current-epoch`, `config-epoch`, `known-replica`, `known-sentinel`, ...), rewritten
//! after every change so a restarted sentinel keeps its identity and its view. Both kinds of
//! lines are read here; [`render`] writes them back.

use std::fmt::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A config line that cannot be used: where and why, as `FILE:LINE: reason`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line is wrong.
    #[error("{path}:{line}: {reason} (in `{text}`)")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The line as written.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The file monitors nothing.
    #[error("{0}: no `sentinel monitor NAME HOST PORT QUORUM` line")]
    NoMaster(PathBuf),
}

/// Redis's defaults for a monitored master.
pub(crate) const DEFAULT_DOWN_AFTER: Duration = Duration::from_secs(30);
pub(crate) const DEFAULT_FAILOVER_TIMEOUT: Duration = Duration::from_secs(180);

/// One `sentinel monitor` group and its settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterConfig {
    /// The group's name.
    pub name: String,
    /// The master's host (an IP address, as Redis requires unless resolve-hostnames is on).
    pub host: String,
    /// The master's port.
    pub port: u16,
    /// Sentinels that must agree the master is down.
    pub quorum: u32,
    /// Silence after which an instance is subjectively down.
    pub down_after: Duration,
    /// Bounds each failover step, and spaces two failovers of the group by twice itself.
    pub failover_timeout: Duration,
    /// Replicas reconfigured at once after a failover.
    pub parallel_syncs: u32,
    /// Password for the master and its replicas.
    pub auth_pass: Option<String>,
    /// ACL user for the master and its replicas.
    pub auth_user: Option<String>,
    /// The epoch of the group's current configuration (the last failover's).
    pub config_epoch: u64,
    /// The epoch of this sentinel's last vote for the group, and for whom.
    pub leader_epoch: u64,
    /// Replicas known before (re-discovered from INFO anyway).
    pub known_replicas: Vec<(String, u16)>,
    /// Other sentinels known before: host, port, run id.
    pub known_sentinels: Vec<(String, u16, String)>,
}

impl MasterConfig {
    /// A group with Redis's defaults.
    pub fn new(name: &str, host: &str, port: u16, quorum: u32) -> MasterConfig {
        MasterConfig {
            name: name.to_string(),
            host: host.to_string(),
            port,
            quorum,
            down_after: DEFAULT_DOWN_AFTER,
            failover_timeout: DEFAULT_FAILOVER_TIMEOUT,
            parallel_syncs: 1,
            auth_pass: None,
            auth_user: None,
            config_epoch: 0,
            leader_epoch: 0,
            known_replicas: Vec::new(),
            known_sentinels: Vec::new(),
        }
    }
}

/// A whole sentinel config file.
#[derive(Debug, Clone, PartialEq)]
pub struct SentinelConfig {
    /// The file (rewritten on changes); `None` for a sentinel built in code.
    pub path: Option<PathBuf>,
    /// Port to listen on (Redis's default 26379; 0 picks a free one).
    pub port: u16,
    /// Address to listen on.
    pub bind: IpAddr,
    /// Address announced to other sentinels in hello messages.
    pub announce_ip: Option<String>,
    /// Port announced to other sentinels.
    pub announce_port: Option<u16>,
    /// This sentinel's id, kept across restarts.
    pub myid: Option<String>,
    /// The highest epoch seen.
    pub current_epoch: u64,
    /// The monitored groups.
    pub masters: Vec<MasterConfig>,
    /// Lines this sentinel does not interpret, kept as written when the file is rewritten.
    pub other_lines: Vec<String>,
}

impl Default for SentinelConfig {
    fn default() -> Self {
        SentinelConfig {
            path: None,
            port: 26379,
            bind: IpAddr::from([127, 0, 0, 1]),
            announce_ip: None,
            announce_port: None,
            myid: None,
            current_epoch: 0,
            masters: Vec::new(),
            other_lines: Vec::new(),
        }
    }
}

/// Directives of redis-sentinel files that only matter to Redis's process (logging,
/// daemonizing, ACL users...): accepted and kept, so existing files load.
const KEPT: &[&str] = &[
    "daemonize",
    "logfile",
    "loglevel",
    "dir",
    "pidfile",
    "protected-mode",
    "user",
    "latency-tracking-info-percentiles",
    "syslog-enabled",
    "syslog-ident",
    "supervised",
];

/// Sentinel sub-directives accepted and kept without effect.
const SENTINEL_KEPT: &[&str] = &[
    "resolve-hostnames",
    "announce-hostnames",
    "deny-scripts-reconfig",
    "sentinel-user",
    "sentinel-pass",
];

impl SentinelConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<SentinelConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = SentinelConfig::parse(&text, path)?;
        config.path = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parses config text (`path` only names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<SentinelConfig, ConfigError> {
        let mut config = SentinelConfig::default();
        for (i, raw) in text.lines().enumerate() {
            let err = |reason: String| ConfigError::Line {
                path: path.to_path_buf(),
                line: i + 1,
                text: raw.trim().to_string(),
                reason,
            };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                if !line.starts_with("# Generated by") {
                    config.other_lines.push(raw.to_string());
                }
                continue;
            }
            let words = split_args(line).ok_or_else(|| err("unbalanced quotes".into()))?;
            config.apply(&words, raw).map_err(err)?;
        }
        if config.masters.is_empty() {
            return Err(ConfigError::NoMaster(path.to_path_buf()));
        }
        Ok(config)
    }

    fn apply(&mut self, words: &[String], raw: &str) -> Result<(), String> {
        let key = words[0].to_ascii_lowercase();
        let args = &words[1..];
        match key.as_str() {
            "port" => self.port = one(args).and_then(|p| number(p, "port"))?,
            "bind" => {
                // Redis accepts several addresses; sentinel listens on the first.
                let first = args.first().ok_or("bind needs an address")?;
                let first = first.trim_start_matches('-');
                self.bind = match first {
                    "*" => IpAddr::from([0, 0, 0, 0]),
                    a => a.parse().map_err(|_| format!("invalid address {a:?}"))?,
                };
            }
            "sentinel" => self.sentinel(args)?,
            k if KEPT.contains(&k) => {
                if k == "daemonize" && args.first().is_some_and(|a| a.eq_ignore_ascii_case("yes")) {
                    return Err("daemonize yes is not supported (run it under a supervisor)".into());
                }
                self.other_lines.push(raw.to_string());
            }
            k => return Err(format!("unknown directive {k:?}")),
        }
        Ok(())
    }

    fn sentinel(&mut self, args: &[String]) -> Result<(), String> {
        let sub = args
            .first()
            .map(|s| s.to_ascii_lowercase())
            .ok_or("`sentinel` needs a sub-directive")?;
        let rest = &args[1..];
        match sub.as_str() {
            "monitor" => {
                let [name, host, port, quorum] = rest else {
                    return Err("usage: sentinel monitor NAME HOST PORT QUORUM".into());
                };
                if self.masters.iter().any(|m| &m.name == name) {
                    return Err(format!("duplicated master name {name:?}"));
                }
                let quorum: u32 = number(quorum, "quorum")?;
                if quorum == 0 {
                    return Err("quorum must be 1 or greater".into());
                }
                let port = number(port, "port")?;
                self.masters
                    .push(MasterConfig::new(name, host, port, quorum));
            }
            "myid" => {
                let id = one(rest)?;
                if id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err("myid must be 40 hex digits".into());
                }
                self.myid = Some(id.to_ascii_lowercase());
            }
            "current-epoch" => self.current_epoch = one(rest).and_then(|e| number(e, "epoch"))?,
            "announce-ip" => self.announce_ip = Some(one(rest)?.to_string()),
            "announce-port" => {
                let p: u16 = one(rest).and_then(|p| number(p, "port"))?;
                self.announce_port = (p != 0).then_some(p);
            }
            s if SENTINEL_KEPT.contains(&s) => {}
            _ => {
                let name = rest.first().ok_or("missing master name")?;
                let master = self
                    .masters
                    .iter_mut()
                    .find(|m| &m.name == name)
                    .ok_or_else(|| format!("no such master {name:?} (monitor it first)"))?;
                master_option(master, &sub, &rest[1..])?;
            }
        }
        Ok(())
    }
}

/// A per-group setting (`sentinel SUB NAME ARGS...`), also used by SENTINEL SET.
pub(crate) fn master_option(m: &mut MasterConfig, sub: &str, v: &[String]) -> Result<(), String> {
    match sub {
        "down-after-milliseconds" => m.down_after = millis(one(v)?)?,
        "failover-timeout" => m.failover_timeout = millis(one(v)?)?,
        "parallel-syncs" => m.parallel_syncs = number(one(v)?, "parallel-syncs")?,
        "quorum" => {
            m.quorum = number(one(v)?, "quorum")?;
            if m.quorum == 0 {
                return Err("quorum must be 1 or greater".into());
            }
        }
        "auth-pass" => m.auth_pass = Some(one(v)?.to_string()).filter(|p| !p.is_empty()),
        "auth-user" => m.auth_user = Some(one(v)?.to_string()).filter(|p| !p.is_empty()),
        "config-epoch" => m.config_epoch = number(one(v)?, "epoch")?,
        "leader-epoch" => m.leader_epoch = number(one(v)?, "epoch")?,
        "known-replica" | "known-slave" => {
            let [host, port] = v else {
                return Err(format!("usage: sentinel {sub} NAME HOST PORT"));
            };
            m.known_replicas.push((host.clone(), number(port, "port")?));
        }
        "known-sentinel" => {
            let [host, port, id] = v else {
                return Err("usage: sentinel known-sentinel NAME HOST PORT RUNID".into());
            };
            m.known_sentinels
                .push((host.clone(), number(port, "port")?, id.clone()));
        }
        // Scripts are not run; the lines are accepted so Redis files load.
        "notification-script"
        | "client-reconfig-script"
        | "rename-command"
        | "master-reboot-down-after-period" => {}
        other => return Err(format!("unknown sentinel option {other:?}")),
    }
    Ok(())
}

fn one(args: &[String]) -> Result<&str, String> {
    match args {
        [a] => Ok(a),
        _ => Err(format!("expected one value, got {}", args.len())),
    }
}

fn number<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("invalid {what} {s:?}"))
}

fn millis(s: &str) -> Result<Duration, String> {
    let ms: u64 = number(s, "milliseconds")?;
    if ms == 0 {
        return Err("must be 1 or more milliseconds".into());
    }
    Ok(Duration::from_millis(ms))
}

/// Splits a config line into words as Redis does: blanks separate, `"..."` takes `\"`,
/// `\\`, `\n` escapes, `'...'` is literal. `None` on an unclosed quote.
pub(crate) fn split_args(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Some(words);
        };
        let mut word = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            loop {
                match chars.next()? {
                    '\\' if first == '"' => match chars.next()? {
                        'n' => word.push('\n'),
                        'r' => word.push('\r'),
                        't' => word.push('\t'),
                        c => word.push(c),
                    },
                    c if c == first => break,
                    c => word.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
}

/// Quotes a word for the config file when it needs it.
fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\'')
    {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The config file for `config`: kept lines first, then the sentinel's state as Redis
/// writes it (`sentinel monitor` and settings, epochs, known replicas and sentinels).
pub fn render(config: &SentinelConfig) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "port {}", config.port);
    let _ = writeln!(s, "bind {}", config.bind);
    for l in &config.other_lines {
        let t = l.trim();
        if t.is_empty() {
            continue;
        }
        let _ = writeln!(s, "{l}");
    }
    s.push_str("# Generated by sluice sentinel\n");
    if let Some(id) = &config.myid {
        let _ = writeln!(s, "sentinel myid {id}");
    }
    if let Some(ip) = &config.announce_ip {
        let _ = writeln!(s, "sentinel announce-ip {}", quote(ip));
    }
    if let Some(p) = config.announce_port {
        let _ = writeln!(s, "sentinel announce-port {p}");
    }
    for m in &config.masters {
        let n = quote(&m.name);
        let _ = writeln!(s, "sentinel monitor {n} {} {} {}", m.host, m.port, m.quorum);
        let _ = writeln!(
            s,
            "sentinel down-after-milliseconds {n} {}",
            m.down_after.as_millis()
        );
        let _ = writeln!(
            s,
            "sentinel failover-timeout {n} {}",
            m.failover_timeout.as_millis()
        );
        let _ = writeln!(s, "sentinel parallel-syncs {n} {}", m.parallel_syncs);
        if let Some(u) = &m.auth_user {
            let _ = writeln!(s, "sentinel auth-user {n} {}", quote(u));
        }
        if let Some(p) = &m.auth_pass {
            let _ = writeln!(s, "sentinel auth-pass {n} {}", quote(p));
        }
        let _ = writeln!(s, "sentinel config-epoch {n} {}", m.config_epoch);
        let _ = writeln!(s, "sentinel leader-epoch {n} {}", m.leader_epoch);
        for (h, p) in &m.known_replicas {
            let _ = writeln!(s, "sentinel known-replica {n} {h} {p}");
        }
        for (h, p, id) in &m.known_sentinels {
            let _ = writeln!(s, "sentinel known-sentinel {n} {h} {p} {id}");
        }
    }
    let _ = writeln!(s, "sentinel current-epoch {}", config.current_epoch);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SentinelConfig, ConfigError> {
        SentinelConfig::parse(text, Path::new("s.conf"))
    }

    #[test]
    fn reads_redis_sentinel_lines() {
        let c = parse(
            "port 26380\nbind 127.0.0.1\ndaemonize no\nlogfile \"\"\n\
             sentinel monitor mymaster 127.0.0.1 6379 2\n\
             sentinel down-after-milliseconds mymaster 1000\n\
             sentinel failover-timeout mymaster 5000\n\
             sentinel parallel-syncs mymaster 2\n\
             sentinel auth-pass mymaster \"se cret\"\n",
        )
        .expect("parses");
        assert_eq!(c.port, 26380);
        let m = &c.masters[0];
        assert_eq!(
            (m.name.as_str(), m.host.as_str(), m.port, m.quorum),
            ("mymaster", "127.0.0.1", 6379, 2)
        );
        assert_eq!(m.down_after, Duration::from_millis(1000));
        assert_eq!(m.failover_timeout, Duration::from_millis(5000));
        assert_eq!(m.parallel_syncs, 2);
        assert_eq!(m.auth_pass.as_deref(), Some("se cret"));
        // What is written back reads back the same.
        let again = parse(&render(&c)).expect("rendered config parses");
        assert_eq!(again.masters, c.masters);
        assert_eq!(again.port, c.port);
    }

    #[test]
    fn bad_lines_name_file_line_and_reason() {
        let e = parse("port 1\nsentinel down-after-milliseconds nope 10\n").unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("s.conf:2: no such master \"nope\""),
            "{text}"
        );
        let e = parse("sentinel monitor m 127.0.0.1 6379 0\n").unwrap_err();
        assert!(e.to_string().contains("quorum must be 1"), "{e}");
        let e = parse("sentinel monitor m 127.0.0.1 notaport 1\n").unwrap_err();
        assert!(e.to_string().contains("invalid port"), "{e}");
        let e = parse("frobnicate yes\nsentinel monitor m h 1 1\n").unwrap_err();
        assert!(
            e.to_string().starts_with("s.conf:1: unknown directive"),
            "{e}"
        );
        assert!(matches!(parse("port 5\n"), Err(ConfigError::NoMaster(_))));
        let e = parse("sentinel monitor \"m 127.0.0.1 1 1\n").unwrap_err();
        assert!(e.to_string().contains("unbalanced quotes"), "{e}");
    }

    #[test]
    fn splits_like_redis() {
        assert_eq!(
            split_args(r#"a "b c" 'd\e' "f\"g""#),
            Some(vec!["a".into(), "b c".into(), "d\\e".into(), "f\"g".into()])
        );
        assert_eq!(split_args("\"open"), None);
    }
}
