//! A pool's topology source: `mode` and the keys that only one mode uses.

use super::super::raw::RawPool;
use super::super::{ConfigError, Mode, Source};
use super::values::{choice, node_addr, node_list, non_empty, required_nodes, user_needs_password};
use super::{key, Ctx};

/// The pool's topology source: `mode` picks the variant, keys that belong to another mode
/// are refused, and the chosen mode's keys are checked. The keys are taken out of `raw`.
pub(super) fn source(ctx: &Ctx, p: &str, raw: &mut RawPool) -> Result<Source, ConfigError> {
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
        .map_err(|reason| ctx.err(key(p, "mode"), reason))?,
    };
    foreign_keys(ctx, p, raw, mode)?;
    match mode {
        Mode::Standalone => standalone(ctx, p, raw.master.take(), raw.replicas.take()),
        Mode::Sentinel => sentinel(ctx, p, raw),
        Mode::Cluster => Ok(Source::Cluster {
            seeds: required_nodes(ctx, &key(p, "seeds"), mode, raw.seeds.take())?,
        }),
    }
}

/// Keys that belong to another mode are errors rather than ignored: a pool with
/// `mode = "sentinel"` and a `master` would otherwise silently not use that master.
fn foreign_keys(ctx: &Ctx, p: &str, raw: &RawPool, mode: Mode) -> Result<(), ConfigError> {
    let owned: &[(&str, bool, Mode)] = &[
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
    for (field, set, owner) in owned {
        if *set && *owner != mode {
            return Err(ctx.err(
                key(p, field),
                format!("only used when mode = \"{owner}\", but mode = \"{mode}\""),
            ));
        }
    }
    Ok(())
}

/// `mode = "standalone"`: a master, and replicas that are neither repeated nor the master.
fn standalone(
    ctx: &Ctx,
    p: &str,
    master: Option<String>,
    replicas: Option<Vec<String>>,
) -> Result<Source, ConfigError> {
    let master_key = key(p, "master");
    let master =
        master.ok_or_else(|| ctx.err(&master_key, "required when mode = \"standalone\""))?;
    node_addr(&master).map_err(|reason| ctx.err(&master_key, reason))?;
    let replicas = replicas.unwrap_or_default();
    node_list(ctx, &key(p, "replicas"), &replicas)?;
    if let Some(i) = replicas.iter().position(|r| *r == master) {
        return Err(ctx.err(
            format!("{p}.replicas[{i}]"),
            format!("{master:?} is the master"),
        ));
    }
    Ok(Source::Standalone { master, replicas })
}

/// `mode = "sentinel"`: the sentinels, the group's name and the sentinels' credentials.
fn sentinel(ctx: &Ctx, p: &str, raw: &mut RawPool) -> Result<Source, ConfigError> {
    let key = |name: &str| key(p, name);
    let sentinels = required_nodes(ctx, &key("sentinels"), Mode::Sentinel, raw.sentinels.take())?;
    let master_name = raw
        .master_name
        .take()
        .ok_or_else(|| ctx.err(key("master_name"), "required when mode = \"sentinel\""))?;
    if master_name.trim().is_empty() {
        return Err(ctx.err(key("master_name"), "must not be empty"));
    }
    let username = non_empty(ctx, &key("sentinel_username"), raw.sentinel_username.take())?;
    let password = non_empty(ctx, &key("sentinel_password"), raw.sentinel_password.take())?;
    user_needs_password(
        ctx,
        p,
        "sentinel_username",
        "sentinel_password",
        &username,
        &password,
    )?;
    Ok(Source::Sentinel {
        sentinels,
        master_name,
        username,
        password,
    })
}
