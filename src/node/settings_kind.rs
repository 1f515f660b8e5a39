//! What a configuration parameter's value is, as CONFIG SET checks it: the types of the
//! parameter tables (`settings.rs`, and the generated `settings_redis.rs`), below both.

/// How a numeric parameter is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Num {
    /// A plain integer.
    Int,
    /// A memory amount (`100mb`), stored as bytes.
    Mem,
    /// An integer or a percentage (`10%`).
    Pct,
}

/// How a parameter's value is checked on CONFIG SET.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `yes` / `no`.
    Bool,
    /// A signed integer.
    Int,
    /// A memory amount (`100mb`), stored as bytes.
    Memory,
    /// Any text.
    Text,
    /// `always`, `everysec` or `no` (`appendfsync`).
    Fsync,
    /// `client-output-buffer-limit`'s `class hard soft seconds` groups.
    OutputLimits,
    /// `notify-keyspace-events`' class letters, stored in Redis's canonical order.
    Events,
    /// Cannot be changed at runtime.
    Immutable,
    /// An integer of this style within [min, max].
    Num(Num, i64, i64),
    /// One of these words (any case); `true`: several, space separated.
    Enum(&'static [&'static str], bool),
    /// Another name of this parameter.
    Alias(&'static str),
}
