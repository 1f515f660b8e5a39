//! Value parsers shared by the pool checks: addresses, choices, names, counts, durations.

use std::net::{Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use super::Ctx;
use crate::config::units::{self, NumOrText};
use crate::config::{ConfigError, Mode};

pub(super) fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("invalid socket address {text:?}"))
}

/// Parses one of a fixed set of spellings.
pub(super) fn choice<T: Copy>(value: &str, choices: &[(&str, T)]) -> Result<T, String> {
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
pub(super) fn node_addr(text: &str) -> Result<(), String> {
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
pub(super) fn node_list(ctx: &Ctx, key: &str, list: &[String]) -> Result<(), ConfigError> {
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
pub(super) fn required_nodes(
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
pub(super) fn non_empty(
    ctx: &Ctx,
    key: &str,
    value: Option<String>,
) -> Result<Option<String>, ConfigError> {
    match value {
        Some(v) if v.is_empty() => Err(ctx.err(key, "must not be empty (remove the key instead)")),
        other => Ok(other),
    }
}

/// An integer setting with a default and an inclusive range, in the type it is used as.
/// Every range fits the target type; the conversion is checked anyway rather than cast.
pub(super) fn count<T: TryFrom<i64>>(
    ctx: &Ctx,
    key: &str,
    value: Option<i64>,
    default: i64,
    range: RangeInclusive<i64>,
) -> Result<T, ConfigError> {
    let v = value.unwrap_or(default);
    if !range.contains(&v) {
        return Err(ctx.err(
            key,
            format!(
                "{v} is out of range, expected {}..={}",
                range.start(),
                range.end()
            ),
        ));
    }
    T::try_from(v).map_err(|_| ctx.err(key, format!("{v} is out of range")))
}

/// A positive duration with a default.
pub(super) fn duration(
    ctx: &Ctx,
    key: &str,
    value: Option<&NumOrText>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    let d = units::parse_duration(value).map_err(|reason| ctx.err(key, reason))?;
    if d.is_zero() {
        return Err(ctx.err(key, "must be greater than zero"));
    }
    Ok(d)
}

/// Normalises `allow_commands`: upper-case, single spaces, at most `NAME SUBCOMMAND`.
/// Duplicates are dropped (harmless, and order carries no meaning).
pub(super) fn allow_commands(
    ctx: &Ctx,
    key: &str,
    list: Vec<String>,
) -> Result<Vec<String>, ConfigError> {
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
pub(super) fn user_needs_password(
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn counts_have_a_default_a_range_and_a_checked_type() {
        let ctx = Ctx {
            file: std::path::Path::new("f"),
        };
        let count_u8 =
            |value| count::<u8>(&ctx, "k", value, 5, 1..=1000).map_err(|e| e.to_string());
        assert_eq!(count_u8(None), Ok(5));
        assert_eq!(count_u8(Some(255)), Ok(255));
        assert_eq!(
            count_u8(Some(0)),
            Err("f: k: 0 is out of range, expected 1..=1000".into())
        );
        // In range but not representable: refused, never truncated.
        assert_eq!(count_u8(Some(256)), Err("f: k: 256 is out of range".into()));
    }
}
