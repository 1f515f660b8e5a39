//! A pool's topology source: `mode` and the keys that only one mode uses.

use super::values::{choice, node_addr, node_list, non_empty, required_nodes, user_needs_password};
use super::{key, Ctx};
use crate::config::raw::RawPool;
use crate::config::{ConfigError, Mode, Source};

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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn check(mut raw: RawPool) -> Result<Source, String> {
        let ctx = Ctx {
            file: Path::new("f"),
        };
        source(&ctx, "pools[0]", &mut raw).map_err(|e| e.to_string())
    }

    fn nodes(list: &[&str]) -> Option<Vec<String>> {
        Some(list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn each_mode_builds_its_own_source() {
        assert_eq!(
            check(RawPool {
                master: Some("m:1".into()),
                replicas: nodes(&["r:1"]),
                ..RawPool::default()
            }),
            Ok(Source::Standalone {
                master: "m:1".into(),
                replicas: vec!["r:1".into()],
            })
        );
        assert_eq!(
            check(RawPool {
                mode: Some("sentinel".into()),
                sentinels: nodes(&["s:1", "s:2"]),
                master_name: Some("g".into()),
                sentinel_password: Some("pw".into()),
                ..RawPool::default()
            }),
            Ok(Source::Sentinel {
                sentinels: vec!["s:1".into(), "s:2".into()],
                master_name: "g".into(),
                username: None,
                password: Some("pw".into()),
            })
        );
        assert_eq!(
            check(RawPool {
                mode: Some("cluster".into()),
                seeds: nodes(&["c:1"]),
                ..RawPool::default()
            }),
            Ok(Source::Cluster {
                seeds: vec!["c:1".into()],
            })
        );
    }

    #[test]
    fn keys_of_another_mode_are_refused() {
        let sentinel_user = RawPool {
            master: Some("m:1".into()),
            sentinel_username: Some("u".into()),
            ..RawPool::default()
        };
        assert_eq!(
            check(sentinel_user),
            Err(r#"f: pools[0].sentinel_username: only used when mode = "sentinel", but mode = "standalone""#.into())
        );
        let replicas_in_sentinel = RawPool {
            mode: Some("sentinel".into()),
            replicas: Some(Vec::new()),
            ..RawPool::default()
        };
        assert_eq!(
            check(replicas_in_sentinel),
            Err(r#"f: pools[0].replicas: only used when mode = "standalone", but mode = "sentinel""#.into())
        );
    }

    #[test]
    fn sentinel_group_name_must_not_be_blank() {
        let raw = RawPool {
            mode: Some("sentinel".into()),
            sentinels: nodes(&["s:1"]),
            master_name: Some("  ".into()),
            ..RawPool::default()
        };
        assert_eq!(
            check(raw),
            Err("f: pools[0].master_name: must not be empty".into())
        );
    }
}
