//! Durations and sizes as written in config files: `"250ms"`, `"2s"`, `"1m"`, `"1MiB"`, ...
//!
//! Parsers return the human reason on failure; the caller adds the key path, so every
//! message ends up as `FILE: KEY: REASON`.

use std::fmt;
use std::time::Duration;

use super::ReplicaLag;

/// What the user is told a duration looks like.
pub(super) const DURATION_EXAMPLES: &str = r#"expected e.g. "250ms", "2s", "1m""#;
/// What the user is told a size looks like.
pub(super) const SIZE_EXAMPLES: &str =
    r#"expected e.g. "512KiB", "1MiB", "1MB" or a number of bytes"#;

/// A value that may be written as a TOML integer or a string with a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum NumOrText {
    /// A bare TOML integer (milliseconds for durations, bytes for sizes).
    Int(i64),
    /// A string such as `"2s"` or `"1MiB"`.
    Text(String),
}

impl fmt::Display for NumOrText {
    /// Shows the value as the user wrote it, strings quoted, for error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NumOrText::Int(n) => write!(f, "{n}"),
            NumOrText::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// Splits `"512 KiB"` into `(512, "KiB")`. `None` when there is no leading number or it
/// overflows `u64`. Whitespace between the number and the unit is allowed.
fn split_number(text: &str) -> Option<(u64, &str)> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits == 0 {
        return None;
    }
    let number = text[..digits].parse::<u64>().ok()?;
    Some((number, text[digits..].trim_start()))
}

/// Milliseconds per duration unit; `None` for an unknown unit. Units are case-sensitive so
/// that `m` (minutes) can never be confused with `M` (mega).
fn duration_unit_ms(unit: &str) -> Option<u64> {
    match unit {
        "ms" => Some(1),
        "s" => Some(1_000),
        "m" => Some(60_000),
        "h" => Some(3_600_000),
        _ => None,
    }
}

/// Bytes per size unit; `None` for an unknown unit. The empty unit means bytes.
fn size_unit_bytes(unit: &str) -> Option<u64> {
    match unit {
        "" | "B" => Some(1),
        "KB" => Some(1_000),
        "MB" => Some(1_000_000),
        "GB" => Some(1_000_000_000),
        "KiB" => Some(1 << 10),
        "MiB" => Some(1 << 20),
        "GiB" => Some(1 << 30),
        _ => None,
    }
}

/// Parses a duration: an integer number of milliseconds, or a string with a unit
/// (`ms`, `s`, `m`, `h`). A string of digits alone is also milliseconds.
pub(super) fn parse_duration(value: &NumOrText) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {value}, {DURATION_EXAMPLES}");
    let ms = match value {
        NumOrText::Int(n) => u64::try_from(*n).map_err(|_| invalid())?,
        NumOrText::Text(text) => {
            let (number, unit) = split_number(text).ok_or_else(invalid)?;
            let unit = if unit.is_empty() { "ms" } else { unit };
            let per = duration_unit_ms(unit).ok_or_else(invalid)?;
            number.checked_mul(per).ok_or_else(invalid)?
        }
    };
    Ok(Duration::from_millis(ms))
}

/// Parses a size in bytes: an integer, or a string with an optional unit
/// (`B`, `KB`, `MB`, `GB` in powers of 1000; `KiB`, `MiB`, `GiB` in powers of 1024).
pub(super) fn parse_size(value: &NumOrText) -> Result<u64, String> {
    let invalid = || format!("invalid size {value}, {SIZE_EXAMPLES}");
    match value {
        NumOrText::Int(n) => u64::try_from(*n).map_err(|_| invalid()),
        NumOrText::Text(text) => {
            let (number, unit) = split_number(text).ok_or_else(invalid)?;
            let per = size_unit_bytes(unit).ok_or_else(invalid)?;
            number.checked_mul(per).ok_or_else(invalid)
        }
    }
}

/// Parses `max_replica_lag`: a size (`"1MiB"`, `"1000"`, or an integer: bytes of
/// replication offset) or a duration (`"2s"`: seconds behind the master). The unit decides.
pub(super) fn parse_replica_lag(value: &NumOrText) -> Result<ReplicaLag, String> {
    let invalid = || {
        format!(
            r#"invalid replica lag {value}, expected a size such as "1MiB" or a duration such as "2s""#
        )
    };
    if let NumOrText::Text(text) = value {
        if let Some((_, unit)) = split_number(text) {
            if duration_unit_ms(unit).is_some() {
                return parse_duration(value)
                    .map(ReplicaLag::Time)
                    .map_err(|_| invalid());
            }
        }
    }
    parse_size(value)
        .map(ReplicaLag::Bytes)
        .map_err(|_| invalid())
}

/// Formats a duration in the largest unit that represents it exactly (`"5s"`, `"250ms"`),
/// in the syntax the parser accepts, so `describe()` output can be pasted back.
pub(super) fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    for (unit, per) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1_000)] {
        if ms != 0 && ms.is_multiple_of(per) {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{ms}ms")
}

/// Formats a size in the largest binary unit that represents it exactly (`"1MiB"`), or in
/// bytes (`"1000B"`).
pub(super) fn format_size(bytes: u64) -> String {
    for (unit, per) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes != 0 && bytes.is_multiple_of(per) {
            return format!("{}{unit}", bytes / per);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> NumOrText {
        NumOrText::Text(s.to_string())
    }

    #[test]
    fn durations_with_units() {
        assert_eq!(
            parse_duration(&text("250ms")),
            Ok(Duration::from_millis(250))
        );
        assert_eq!(parse_duration(&text("2s")), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration(&text("1m")), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration(&text("1h")), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration(&text(" 3 s ")), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration(&text("40")), Ok(Duration::from_millis(40)));
        assert_eq!(
            parse_duration(&NumOrText::Int(1500)),
            Ok(Duration::from_millis(1500))
        );
    }

    #[test]
    fn bad_durations() {
        for bad in [
            "5 parsecs",
            "",
            "s",
            "1.5s",
            "-1s",
            "2S",
            "1 m s",
            "99999999999999999999ms",
        ] {
            let err = parse_duration(&text(bad)).unwrap_err();
            assert_eq!(
                err,
                format!("invalid duration {bad:?}, {DURATION_EXAMPLES}")
            );
        }
        assert_eq!(
            parse_duration(&NumOrText::Int(-5)).unwrap_err(),
            format!("invalid duration -5, {DURATION_EXAMPLES}")
        );
        // Overflow of number * unit is an error, not a wrap-around.
        assert!(parse_duration(&text("18446744073709551615h")).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size(&text("1MiB")), Ok(1 << 20));
        assert_eq!(parse_size(&text("512KiB")), Ok(512 * 1024));
        assert_eq!(parse_size(&text("1MB")), Ok(1_000_000));
        assert_eq!(parse_size(&text("2 GB")), Ok(2_000_000_000));
        assert_eq!(parse_size(&text("1000")), Ok(1000));
        assert_eq!(parse_size(&text("7B")), Ok(7));
        assert_eq!(parse_size(&NumOrText::Int(4096)), Ok(4096));
        for bad in ["1mib", "MiB", "1TiB", "1.5MiB", "-1"] {
            assert_eq!(
                parse_size(&text(bad)).unwrap_err(),
                format!("invalid size {bad:?}, {SIZE_EXAMPLES}")
            );
        }
        assert!(parse_size(&NumOrText::Int(-1)).is_err());
    }

    #[test]
    fn replica_lag_picks_kind_by_unit() {
        assert_eq!(
            parse_replica_lag(&text("1MiB")),
            Ok(ReplicaLag::Bytes(1 << 20))
        );
        assert_eq!(
            parse_replica_lag(&text("1000")),
            Ok(ReplicaLag::Bytes(1000))
        );
        assert_eq!(
            parse_replica_lag(&NumOrText::Int(10)),
            Ok(ReplicaLag::Bytes(10))
        );
        assert_eq!(
            parse_replica_lag(&text("2s")),
            Ok(ReplicaLag::Time(Duration::from_secs(2)))
        );
        assert_eq!(
            parse_replica_lag(&text("500ms")),
            Ok(ReplicaLag::Time(Duration::from_millis(500)))
        );
        assert_eq!(
            parse_replica_lag(&text("3 furlongs")).unwrap_err(),
            r#"invalid replica lag "3 furlongs", expected a size such as "1MiB" or a duration such as "2s""#
        );
    }

    #[test]
    fn formatting_round_trips() {
        for ms in [0u64, 1, 250, 1000, 1500, 60_000, 90_000, 3_600_000] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&text(&format_duration(d))), Ok(d), "{ms}ms");
        }
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        for bytes in [0u64, 1, 1000, 1024, 1 << 20, 3 << 30, 1_000_000] {
            assert_eq!(parse_size(&text(&format_size(bytes))), Ok(bytes), "{bytes}");
        }
        assert_eq!(format_size(1 << 20), "1MiB");
        assert_eq!(format_size(1000), "1000B");
    }
}
