//! Runtime configuration (CONFIG GET/SET): the parameters a node has, with Redis's names,
//! defaults and value checks. Only a few change behaviour (`requirepass`, `appendonly` and
//! `appendfsync` for the AOF, `client-output-buffer-limit`, `maxmemory` for INFO,
//! `busy-reply-threshold` for scripts); the rest are accepted and reported so that clients
//! and tools that read or tune them keep working.
//!
//! [`PARAMS`] are the node's own entries; every other parameter of Redis 7.0's
//! `CONFIG GET *` comes from the generated `settings_redis.rs`, aliases included
//! (`lua-time-limit` is `busy-reply-threshold`).

use indexmap::IndexMap;

use super::output_limit::{self, OutputLimits};
use super::settings_kind::{Kind, Num};
use super::settings_redis::REDIS_PARAMS;

/// Every parameter: name, kind, default (Redis 7.0's).
const PARAMS: &[(&str, Kind, &str)] = &[
    ("bind", Kind::Immutable, "127.0.0.1"),
    ("port", Kind::Num(Num::Int, 0, 65535), "6379"),
    ("databases", Kind::Immutable, "16"),
    ("daemonize", Kind::Immutable, "no"),
    ("dir", Kind::Text, "."),
    ("dbfilename", Kind::Text, "dump.rdb"),
    ("appendonly", Kind::Bool, "no"),
    ("appendfilename", Kind::Immutable, "appendonly.aof"),
    ("appendfsync", Kind::Fsync, "everysec"),
    ("aof-load-truncated", Kind::Bool, "yes"),
    ("save", Kind::Text, ""),
    ("requirepass", Kind::Text, ""),
    ("masterauth", Kind::Text, ""),
    ("masteruser", Kind::Text, ""),
    ("maxmemory", Kind::Memory, "0"),
    ("maxmemory-policy", Kind::Text, "noeviction"),
    ("maxmemory-samples", Kind::Int, "5"),
    ("maxclients", Kind::Int, "10000"),
    ("timeout", Kind::Int, "0"),
    ("tcp-keepalive", Kind::Int, "300"),
    ("hz", Kind::Int, "10"),
    ("loglevel", Kind::Text, "notice"),
    ("protected-mode", Kind::Bool, "no"),
    ("repl-diskless-sync", Kind::Bool, "yes"),
    ("repl-diskless-sync-delay", Kind::Int, "5"),
    ("repl-backlog-size", Kind::Memory, "1048576"),
    ("repl-backlog-ttl", Kind::Int, "3600"),
    ("repl-timeout", Kind::Int, "60"),
    ("repl-ping-replica-period", Kind::Int, "10"),
    ("replica-read-only", Kind::Bool, "yes"),
    ("replica-serve-stale-data", Kind::Bool, "yes"),
    ("replica-priority", Kind::Int, "100"),
    ("replica-announce-ip", Kind::Text, ""),
    ("replica-announce-port", Kind::Int, "0"),
    ("min-replicas-to-write", Kind::Int, "0"),
    ("min-replicas-max-lag", Kind::Int, "10"),
    ("slowlog-log-slower-than", Kind::Int, "10000"),
    ("slowlog-max-len", Kind::Int, "128"),
    ("latency-monitor-threshold", Kind::Int, "0"),
    ("notify-keyspace-events", Kind::Events, ""),
    ("hash-max-listpack-entries", Kind::Int, "512"),
    ("hash-max-listpack-value", Kind::Int, "64"),
    ("list-max-listpack-size", Kind::Int, "-2"),
    ("set-max-intset-entries", Kind::Int, "512"),
    ("zset-max-listpack-entries", Kind::Int, "128"),
    ("zset-max-listpack-value", Kind::Int, "64"),
    ("proto-max-bulk-len", Kind::Memory, "536870912"),
    ("client-query-buffer-limit", Kind::Memory, "1073741824"),
    (
        "client-output-buffer-limit",
        Kind::OutputLimits,
        output_limit::DEFAULT,
    ),
    ("lazyfree-lazy-eviction", Kind::Bool, "no"),
    ("lazyfree-lazy-expire", Kind::Bool, "no"),
    ("lazyfree-lazy-server-del", Kind::Bool, "no"),
    ("lazyfree-lazy-user-del", Kind::Bool, "no"),
    ("lazyfree-lazy-user-flush", Kind::Bool, "no"),
    ("io-threads", Kind::Immutable, "1"),
    ("cluster-enabled", Kind::Immutable, "no"),
    ("enable-debug-command", Kind::Immutable, "yes"),
];

/// Redis's hidden parameters: settable, and shown by CONFIG GET only when asked for by their
/// exact name (never by a pattern). Only tests tune them; the node stores them.
const HIDDEN: &[(&str, Kind, &str)] = &[
    ("use-exit-on-panic", Kind::Bool, "no"),
    (
        "rdb-key-save-delay",
        Kind::Num(Num::Int, i32::MIN as i64, i32::MAX as i64),
        "0",
    ),
    (
        "key-load-delay",
        Kind::Num(Num::Int, i32::MIN as i64, i32::MAX as i64),
        "0",
    ),
    (
        "watchdog-period",
        Kind::Num(Num::Int, 0, i32::MAX as i64),
        "0",
    ),
    (
        "loading-process-events-interval-bytes",
        Kind::Num(Num::Int, 1024, i32::MAX as i64),
        "2097152",
    ),
];

/// True for a parameter CONFIG GET shows only by its exact name.
fn is_hidden(name: &str) -> bool {
    HIDDEN.iter().any(|(n, _, _)| *n == name)
}

/// Why CONFIG SET refused a value (the text after Redis's `CONFIG SET failed ... - `).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingError {
    /// No such parameter.
    #[error("Unknown option or number of arguments for CONFIG SET - '{0}'")]
    Unknown(String),
    /// The value does not fit the parameter.
    #[error("CONFIG SET failed (possibly related to argument '{0}') - {1}")]
    Invalid(String, &'static str),
    /// A problem found with the parameter's name as the client wrote it (immutable,
    /// duplicate), before any value is looked at.
    #[error("CONFIG SET failed (possibly related to argument '{0}') - {1}")]
    Named(String, &'static str),
    /// The value is none of the parameter's words.
    #[error("CONFIG SET failed (possibly related to argument '{0}') - argument(s) must be one of the following: {1}")]
    Enum(String, String),
    /// The number is out of the parameter's range.
    #[error("CONFIG SET failed (possibly related to argument '{0}') - argument must be between {1} and {2} inclusive")]
    Range(String, i64, i64),
}

/// Current values, in table order.
#[derive(Debug)]
pub struct Settings {
    values: IndexMap<&'static str, String>,
    /// `client-output-buffer-limit`, parsed (read on every pub/sub delivery).
    output_limits: OutputLimits,
    /// `notify-keyspace-events` as flags. Kept beside the text because Redis's text is
    /// lossy: with `A`, an `n` is not shown (`AnK` reads back as `AK`) but still applies.
    notify_flags: u32,
}

impl Default for Settings {
    fn default() -> Self {
        let mut values: IndexMap<&'static str, String> = REDIS_PARAMS
            .iter()
            .filter(|(_, k, _)| !matches!(k, Kind::Alias(_)))
            .map(|(n, _, d)| (*n, d.to_string()))
            .collect();
        for (n, _, d) in PARAMS.iter().chain(HIDDEN) {
            values.insert(n, d.to_string());
        }
        Settings {
            values,
            output_limits: OutputLimits::default(),
            notify_flags: 0,
        }
    }
}

/// The kind and canonical name of parameter `name` (lower case), aliases resolved. Redis's
/// checks apply, except that what the node cannot change at runtime stays immutable.
fn lookup(name: &str) -> Option<(&'static str, Kind)> {
    let find = |name: &str| {
        let own = PARAMS.iter().find(|(n, _, _)| *n == name);
        if let Some((
            n,
            k @ (Kind::Immutable | Kind::Fsync | Kind::OutputLimits | Kind::Events),
            _,
        )) = own
        {
            return Some((*n, *k));
        }
        REDIS_PARAMS
            .iter()
            .chain(own)
            .chain(HIDDEN)
            .find(|(n, _, _)| *n == name)
            .map(|(n, k, _)| (*n, *k))
    };
    match find(name)? {
        (_, Kind::Alias(target)) => find(target),
        found => Some(found),
    }
}

impl Settings {
    /// Sets a value without checks (startup options).
    pub fn init(&mut self, name: &'static str, value: String) {
        self.values.insert(name, value);
    }
    /// A copy of every value (to undo a failed multi-parameter CONFIG SET).
    pub fn clone_values(&self) -> IndexMap<&'static str, String> {
        self.values.clone()
    }
    /// Puts back values taken with [`Settings::clone_values`].
    pub fn restore(&mut self, values: IndexMap<&'static str, String>) {
        self.values = values;
        let mut limits = OutputLimits::default();
        if let Some(v) = self.get("client-output-buffer-limit") {
            // The value was valid when it was stored.
            let _ = limits.update(v);
        }
        self.output_limits = limits;
        // The text of unchanged flags is their own rendering; only changed ones are parsed
        // back (losing an `n` hidden by `A`, the one case the text cannot carry).
        let text = self.get("notify-keyspace-events").unwrap_or("");
        if super::notify::render(self.notify_flags) != text {
            self.notify_flags = super::notify::parse(text.as_bytes()).unwrap_or(0);
        }
    }
    /// `notify-keyspace-events` as flags ([`super::notify`]).
    pub fn notify_flags(&self) -> u32 {
        self.notify_flags
    }
    /// `client-output-buffer-limit`.
    pub fn output_limits(&self) -> &OutputLimits {
        &self.output_limits
    }
    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
    /// The password clients must AUTH with, if any.
    pub fn requirepass(&self) -> Option<&str> {
        self.get("requirepass").filter(|p| !p.is_empty())
    }
    /// Parameters whose name matches the glob `pattern` (case-insensitive), with values.
    pub fn matching<'a>(&'a self, pattern: &'a [u8]) -> impl Iterator<Item = (&'a str, &'a str)> {
        let aliases = REDIS_PARAMS.iter().filter_map(move |(n, k, _)| match k {
            Kind::Alias(target) => Some((*n, self.get(target).unwrap_or(""))),
            _ => None,
        });
        // A name without glob characters is looked up, hidden parameters included (Redis).
        let exact = !pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'['));
        self.values
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .chain(aliases)
            .filter(move |(n, _)| exact || !is_hidden(n))
            .filter(move |(n, _)| super::glob::matches_case(pattern, n.as_bytes(), true))
    }
    /// CONFIG SET of several parameters, all or nothing, checked in Redis's order: first
    /// every name (unknown, immutable, given twice: the first such problem is the error),
    /// then every value; a refused value undoes the ones set before it.
    pub fn set_all(&mut self, pairs: &[(&[u8], &[u8])]) -> Result<(), SettingError> {
        let mut seen: Vec<&'static str> = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            let given = || String::from_utf8_lossy(name).into_owned();
            let Some((key, kind)) = lookup(&given().to_ascii_lowercase()) else {
                return Err(SettingError::Unknown(given()));
            };
            if kind == Kind::Immutable && self.get(key).map(str::as_bytes) != Some(*value) {
                return Err(SettingError::Named(given(), "can't set immutable config"));
            }
            if seen.contains(&key) {
                return Err(SettingError::Named(given(), "duplicate parameter"));
            }
            seen.push(key);
        }
        let before = self.clone_values();
        for (name, value) in pairs {
            if let Err(e) = self.set(name, value) {
                self.restore(before);
                return Err(e);
            }
        }
        Ok(())
    }
    /// CONFIG SET of one parameter, checked as Redis checks it.
    pub fn set(&mut self, name: &[u8], value: &[u8]) -> Result<(), SettingError> {
        let lname = String::from_utf8_lossy(name).to_ascii_lowercase();
        let Some((key, kind)) = lookup(&lname) else {
            return Err(SettingError::Unknown(
                String::from_utf8_lossy(name).into_owned(),
            ));
        };
        let text = String::from_utf8_lossy(value).into_owned();
        let invalid = |why| Err(SettingError::Invalid(key.to_string(), why));
        let stored = match kind {
            // Setting what the node started with changes nothing, so it is accepted (Redis
            // can rebind at run time; a node cannot, but clients re-apply current values).
            Kind::Immutable if self.get(key) == Some(text.as_str()) => text,
            Kind::Immutable => return invalid("can't set immutable config"),
            Kind::Bool => match text.to_ascii_lowercase().as_str() {
                v @ ("yes" | "no") => v.to_string(),
                _ => return invalid("argument must be 'yes' or 'no'"),
            },
            Kind::Int => match text.parse::<i64>() {
                Ok(n) => n.to_string(),
                Err(_) => return invalid("argument couldn't be parsed into an integer"),
            },
            Kind::Memory => match super::args::parse_memory(&text) {
                Some(n) => n.to_string(),
                None => return invalid("argument must be a memory value"),
            },
            Kind::Text | Kind::Alias(_) => text,
            Kind::Num(style, min, max) => match check_num(style, min, max, &text) {
                Ok(v) => v,
                Err(Some(why)) => return Err(SettingError::Invalid(key.to_string(), why)),
                Err(None) => return Err(SettingError::Range(key.to_string(), min, max)),
            },
            Kind::Enum(words, multi) => {
                let lower = text.to_ascii_lowercase();
                let parts: Vec<&str> = if multi {
                    lower.split_ascii_whitespace().collect()
                } else {
                    vec![lower.as_str()]
                };
                if parts.is_empty() || parts.iter().any(|p| !words.contains(p)) {
                    return Err(SettingError::Enum(key.to_string(), words.join(", ")));
                }
                parts.join(" ")
            }
            Kind::Fsync => match text.to_ascii_lowercase().as_str() {
                v @ ("always" | "everysec" | "no") => v.to_string(),
                _ => {
                    return invalid(
                        "argument(s) must be one of the following: everysec, always, no",
                    )
                }
            },
            Kind::Events => match super::notify::parse(value) {
                Some(flags) => {
                    self.notify_flags = flags;
                    super::notify::render(flags)
                }
                None => return invalid(super::notify::INVALID),
            },
            Kind::OutputLimits => {
                let mut limits = self.output_limits;
                if let Err(why) = limits.update(&text) {
                    return invalid(why);
                }
                self.output_limits = limits;
                limits.render()
            }
        };
        self.values.insert(key, stored);
        Ok(())
    }
}

/// The only percentage parameter (`maxmemory-clients`) allows up to 100%; Redis words the
/// refusal with that bound.
const PCT_TOO_BIG: &str = "percentage argument must be less or equal to 100";

/// Checks a numeric value: the stored text, or why it is refused (`None`: out of range).
fn check_num(style: Num, min: i64, max: i64, text: &str) -> Result<String, Option<&'static str>> {
    if style == Num::Pct {
        if let Some(p) = text.strip_suffix('%') {
            // Redis stores a percentage as its negative, bounded by the negative minimum.
            return match p.parse::<i64>() {
                Ok(n) if n >= 0 && -n < min => Err(Some(PCT_TOO_BIG)),
                Ok(n) if n >= 0 => Ok(text.to_string()),
                _ => Err(Some("argument must be a memory or percent value")),
            };
        }
    }
    let n: i64 = match style {
        Num::Int => text
            .parse()
            .map_err(|_| Some("argument couldn't be parsed into an integer"))?,
        Num::Mem | Num::Pct => {
            let neg = text.starts_with('-');
            let v = super::args::parse_memory(text.trim_start_matches('-'))
                .ok_or(Some("argument must be a memory value"))?;
            let v = i64::try_from(v).map_err(|_| Some("argument must be a memory value"))?;
            if neg {
                -v
            } else {
                v
            }
        }
    };
    if n < min || n > max {
        return Err(None);
    }
    Ok(n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_checks_like_redis() {
        let mut s = Settings::default();
        assert_eq!(s.set(b"MAXMEMORY", b"100mb"), Ok(()));
        assert_eq!(s.get("maxmemory"), Some("104857600"));
        assert!(matches!(s.set(b"foo", b"1"), Err(SettingError::Unknown(_))));
        // The port is settable (the CONFIG SET handler moves the listener); out of range not.
        assert!(s.set(b"port", b"65536").is_err());
        assert!(s.set(b"daemonize", b"yes").is_err());
        assert_eq!(
            s.set_all(&[(b"maxmemory", b"1"), (b"MAXMEMORY", b"2")]),
            Err(SettingError::Named(
                "MAXMEMORY".into(),
                "duplicate parameter"
            ))
        );
        assert_eq!(
            s.set(b"maxmemory-clients", b"101%"),
            Err(SettingError::Invalid(
                "maxmemory-clients".into(),
                PCT_TOO_BIG
            ))
        );
        assert_eq!(s.matching(b"key-load-delay").count(), 1);
        assert_eq!(s.matching(b"key-load-*").count(), 0);
        assert!(s.set(b"appendonly", b"maybe").is_err());
        assert_eq!(s.matching(b"maxmemory*").count(), 5);
        assert!(s.set(b"appendfsync", b"sometimes").is_err());
        assert_eq!(s.set(b"appendfsync", b"ALWAYS"), Ok(()));
        assert_eq!(s.get("appendfsync"), Some("always"));
        assert_eq!(
            s.set(b"client-output-buffer-limit", b"pubsub 1mb 0 0"),
            Ok(())
        );
        assert_eq!(s.output_limits().pubsub.hard, 1 << 20);
        let before = s.clone_values();
        assert_eq!(
            s.set(b"client-output-buffer-limit", b"pubsub 2mb 0 0"),
            Ok(())
        );
        s.restore(before);
        assert_eq!(s.output_limits().pubsub.hard, 1 << 20);
    }
}
