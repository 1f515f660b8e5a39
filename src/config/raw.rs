//! The file format as serde sees it: every key optional and loosely typed (strings for
//! enums, addresses and durations), so that the checks in `validate` can report problems
//! with the key path and a message written for people rather than serde's wording.
//! `deny_unknown_fields` turns typos into errors instead of silently ignored settings.

use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::units::NumOrText;
use super::ConfigError;

/// Parses TOML text into the raw structs. Syntax errors name `syntax` as the key and give
/// the line and column; shape errors (unknown key, wrong type) give the key path.
pub(super) fn from_toml(text: &str, file: &Path) -> Result<RawConfig, ConfigError> {
    // Parsing into a table first separates syntax errors (which carry a span) from shape
    // errors (which carry a key path via serde_path_to_error).
    let table: toml::Table = text.parse().map_err(|err: toml::de::Error| {
        let location = err
            .span()
            .and_then(|span| line_column(text, span.start))
            .map(|(line, column)| format!("line {line}, column {column}: "))
            .unwrap_or_default();
        ConfigError::Invalid {
            file: file.to_path_buf(),
            key: "syntax".to_string(),
            reason: format!("{location}{}", err.message().trim_end()),
        }
    })?;
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().message().trim_end().to_string();
        let (key, reason) = shape_error(&path, &message);
        ConfigError::Invalid {
            file: file.to_path_buf(),
            key,
            reason,
        }
    })
}

/// 1-based line and column (in characters) of a byte offset; `None` if the offset is not
/// inside the text on a character boundary.
fn line_column(text: &str, offset: usize) -> Option<(usize, usize)> {
    let before = text.get(..offset)?;
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    Some((line, column))
}

/// Turns serde's message at `path` into a key and a reason. Serde reports an unknown key as
/// "unknown field `raed_from`, expected one of `name`, `listen`" at the enclosing table;
/// that becomes key `pools[0].raed_from`, reason "unknown key, expected one of name, listen".
fn shape_error(path: &str, message: &str) -> (String, String) {
    // serde_path_to_error shows the empty path as ".".
    let path = if path == "." { "" } else { path };
    let join = |name: &str| {
        if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((name, expected)) = rest.split_once('`') {
            let expected = expected.trim_start_matches(',').trim().replace('`', "");
            let reason = if expected.is_empty() || expected == "there are no fields" {
                "unknown key".to_string()
            } else {
                format!("unknown key, {expected}")
            };
            // Depending on the serde_path_to_error version the path may already end in
            // the unknown key.
            let key = if path == name || path.ends_with(&format!(".{name}")) {
                path.to_string()
            } else {
                join(name)
            };
            return (key, reason);
        }
    }
    let key = if path.is_empty() {
        "(top level)".to_string()
    } else {
        path.to_string()
    };
    if key == "pools" && message.starts_with("invalid type: map") {
        return (
            key,
            "expected an array of tables: write [[pools]], not [pools]".to_string(),
        );
    }
    (key, toml_words(message))
}

/// Rewrites serde's data-model words in type errors into TOML's: a serde "map" is a TOML
/// table, a "sequence" an array, and our private struct names mean nothing to users.
fn toml_words(message: &str) -> String {
    let mut out = message
        .replace("invalid type: map", "invalid type: table")
        .replace("invalid type: sequence", "invalid type: array")
        .replace("expected a sequence", "expected an array");
    for raw in ["RawAdmin", "RawPool", "RawConfig", "RawUser"] {
        out = out.replace(&format!("expected struct {raw}"), "expected a table");
    }
    out
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub drain_timeout: Option<NumOrText>,
    pub admin: Option<RawAdmin>,
    pub pools: Option<Vec<RawPool>>,
}

/// `[admin]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    pub listen: Option<String>,
    pub max_connections: Option<i64>,
    pub idle_timeout: Option<NumOrText>,
    pub allow_remote_reload: Option<bool>,
    pub reload_token: Option<String>,
}

/// One `[[pools]]` entry, keys in the order the docs list them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPool {
    pub name: Option<String>,
    pub listen: Option<String>,
    pub mode: Option<String>,
    // standalone
    pub master: Option<String>,
    pub replicas: Option<Vec<String>>,
    // sentinel
    pub sentinels: Option<Vec<String>>,
    pub master_name: Option<String>,
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<String>,
    // cluster
    pub seeds: Option<Vec<String>>,
    // reads
    pub read_from: Option<String>,
    pub consistency: Option<String>,
    pub max_replica_lag: Option<NumOrText>,
    // auth and commands
    pub auth: Option<String>,
    pub users: Option<Vec<RawUser>>,
    pub password: Option<String>,
    pub backend_username: Option<String>,
    pub backend_password: Option<String>,
    pub allow_commands: Option<Vec<String>>,
    pub passthrough_idle_timeout: Option<NumOrText>,
    pub auth_failure_delay: Option<NumOrText>,
    // TLS
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub tls_client_ca: Option<String>,
    pub backend_tls: Option<bool>,
    pub backend_tls_ca: Option<String>,
    pub backend_tls_cert: Option<String>,
    pub backend_tls_key: Option<String>,
    pub backend_tls_server_name: Option<String>,
    // limits
    pub backend_connections: Option<i64>,
    pub max_dedicated_connections: Option<i64>,
    pub connect_timeout: Option<NumOrText>,
    pub request_timeout: Option<NumOrText>,
    pub health_check_interval: Option<NumOrText>,
    pub master_wait: Option<NumOrText>,
    pub park_idle_after: Option<NumOrText>,
    pub databases: Option<i64>,
    pub max_clients: Option<i64>,
    pub client_output_soft_limit: Option<NumOrText>,
    pub client_output_hard_limit: Option<NumOrText>,
}

/// One `[[pools.users]]` entry (`auth = "users"`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUser {
    pub name: Option<String>,
    pub password: Option<String>,
    pub password_sha256: Option<String>,
    pub access: Option<String>,
    pub keys: Option<Vec<String>>,
}

impl<'de> Deserialize<'de> for NumOrText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumOrTextVisitor;

        impl Visitor<'_> for NumOrTextVisitor {
            type Value = NumOrText;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"an integer or a string with a unit such as "2s" or "1MiB""#)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumOrText, E> {
                Ok(NumOrText::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumOrText, E> {
                i64::try_from(v)
                    .map(NumOrText::Int)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NumOrText, E> {
                Ok(NumOrText::Text(v.to_string()))
            }
        }

        deserializer.deserialize_any(NumOrTextVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters() {
        let text = "a = 1\nbé = \"x\n";
        assert_eq!(line_column(text, 0), Some((1, 1)));
        assert_eq!(line_column(text, 6), Some((2, 1)));
        // 'é' is two bytes but one column.
        assert_eq!(line_column(text, 9), Some((2, 3)));
        assert_eq!(line_column(text, text.len()), Some((3, 1)));
        assert_eq!(line_column(text, 8), None, "inside 'é'");
        assert_eq!(line_column(text, 999), None);
    }

    #[test]
    fn unknown_field_messages_become_key_paths() {
        assert_eq!(
            shape_error(
                "pools[0]",
                "unknown field `raed_from`, expected one of `name`, `read_from`"
            ),
            (
                "pools[0].raed_from".to_string(),
                "unknown key, expected one of name, read_from".to_string()
            )
        );
        assert_eq!(
            shape_error(".", "unknown field `x`, expected `admin` or `pools`"),
            (
                "x".to_string(),
                "unknown key, expected admin or pools".to_string()
            )
        );
        // Already ending in the key: not doubled.
        assert_eq!(
            shape_error("admin.port", "unknown field `port`, expected `listen`").0,
            "admin.port"
        );
        assert_eq!(
            shape_error("admin", "unknown field `port`, there are no fields"),
            ("admin.port".to_string(), "unknown key".to_string())
        );
    }

    #[test]
    fn type_errors_use_toml_words() {
        assert_eq!(
            shape_error("admin", "invalid type: sequence, expected struct RawAdmin"),
            (
                "admin".to_string(),
                "invalid type: array, expected a table".to_string()
            )
        );
        assert_eq!(
            shape_error("pools", "invalid type: map, expected a sequence").1,
            "expected an array of tables: write [[pools]], not [pools]"
        );
    }

    #[test]
    fn syntax_error_has_location() {
        let err = from_toml("[[pools]]\nname = = 1\n", Path::new("f.toml"))
            .map(|_| ())
            .unwrap_err();
        match err {
            ConfigError::Invalid { key, reason, .. } => {
                assert_eq!(key, "syntax");
                assert!(reason.starts_with("line 2, column "), "{reason}");
            }
            other => panic!("unexpected {other}"),
        }
    }
}
