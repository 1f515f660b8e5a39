//! `auth`, `password` and `[[pools.users]]`: how a pool's clients authenticate.

use std::time::Duration;

use super::values::{choice, duration, non_empty};
use super::{key, Ctx};
use crate::config::raw::{RawPool, RawUser};
use crate::config::units::format_duration;
use crate::config::{sha256, Access, ClientAuth, ConfigError, Sha256Digest, UserConfig};

/// Default `passthrough_idle_timeout`.
const PASSTHROUGH_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// `passthrough_idle_timeout` and `auth_failure_delay`.
pub(super) struct AuthTiming {
    pub(super) passthrough_idle_timeout: Duration,
    pub(super) auth_failure_delay: Option<Duration>,
}

/// `passthrough_idle_timeout` (at least twice `request_timeout`: a user's connection closed
/// as idle must have no request in flight, see `backend::per_user`) and `auth_failure_delay`.
pub(super) fn auth_timing(
    ctx: &Ctx,
    p: &str,
    raw: &RawPool,
    auth: ClientAuth,
    request_timeout: Duration,
) -> Result<AuthTiming, ConfigError> {
    let idle_key = key(p, "passthrough_idle_timeout");
    if auth != ClientAuth::Passthrough {
        if raw.passthrough_idle_timeout.is_some() {
            return Err(ctx.err(idle_key, "is used only with auth = \"passthrough\""));
        }
        // Unused outside passthrough pools.
        return Ok(AuthTiming {
            passthrough_idle_timeout: PASSTHROUGH_IDLE_TIMEOUT,
            auth_failure_delay: failure_delay(ctx, p, raw)?,
        });
    }
    let idle = duration(
        ctx,
        &idle_key,
        raw.passthrough_idle_timeout.as_ref(),
        PASSTHROUGH_IDLE_TIMEOUT.max(request_timeout * 2),
    )?;
    // The sweep's timer must stay far from the clock's end.
    if idle > Duration::from_secs(86_400) {
        return Err(ctx.err(idle_key, "must be at most 24h"));
    }
    if idle < request_timeout * 2 {
        return Err(ctx.err(
            idle_key,
            format!(
                "{} is below twice request_timeout ({})",
                format_duration(idle),
                format_duration(request_timeout * 2)
            ),
        ));
    }
    Ok(AuthTiming {
        passthrough_idle_timeout: idle,
        auth_failure_delay: failure_delay(ctx, p, raw)?,
    })
}

/// `auth_failure_delay`: greater than zero, at most a minute.
fn failure_delay(ctx: &Ctx, p: &str, raw: &RawPool) -> Result<Option<Duration>, ConfigError> {
    let delay_key = key(p, "auth_failure_delay");
    let delay = raw
        .auth_failure_delay
        .as_ref()
        .map(|v| duration(ctx, &delay_key, Some(v), Duration::ZERO))
        .transpose()?;
    if delay.is_some_and(|d| d > Duration::from_secs(60)) {
        return Err(ctx.err(delay_key, "must be at most 60s"));
    }
    Ok(delay)
}

/// `auth` with what it needs: a password for `"password"` (optional), users for `"users"`,
/// neither for `"passthrough"`.
pub(super) fn client_auth(
    ctx: &Ctx,
    p: &str,
    raw: &mut RawPool,
) -> Result<(ClientAuth, Option<String>, Vec<UserConfig>), ConfigError> {
    let auth = match raw.auth.as_deref() {
        None => ClientAuth::Password,
        Some(a) => choice(
            a,
            &[
                ("password", ClientAuth::Password),
                ("users", ClientAuth::Users),
                ("passthrough", ClientAuth::Passthrough),
            ],
        )
        .map_err(|reason| ctx.err(key(p, "auth"), reason))?,
    };
    let password = non_empty(ctx, &key(p, "password"), raw.password.take())?;
    if password.is_some() && auth != ClientAuth::Password {
        return Err(ctx.err(
            key(p, "password"),
            format!(
                "not allowed with auth = \"{auth}\" (clients log in as {}); remove it",
                if auth == ClientAuth::Users {
                    "the users of [[pools.users]], each with its own password"
                } else {
                    "the master's own ACL users"
                }
            ),
        ));
    }
    let raw_users = raw.users.take();
    let users = match (auth, raw_users) {
        (ClientAuth::Users, None) => {
            return Err(ctx.err(
                key(p, "users"),
                "auth = \"users\" needs at least one [[pools.users]] entry",
            ))
        }
        (ClientAuth::Users, Some(list)) if list.is_empty() => {
            return Err(ctx.err(
                key(p, "users"),
                "auth = \"users\" needs at least one [[pools.users]] entry",
            ))
        }
        (ClientAuth::Users, Some(list)) => users(ctx, p, list)?,
        (_, Some(_)) => {
            return Err(ctx.err(
                key(p, "users"),
                format!("[[pools.users]] is used only with auth = \"users\", not \"{auth}\""),
            ))
        }
        (_, None) => Vec::new(),
    };
    Ok((auth, password, users))
}

fn users(ctx: &Ctx, p: &str, list: Vec<RawUser>) -> Result<Vec<UserConfig>, ConfigError> {
    let mut out: Vec<UserConfig> = Vec::with_capacity(list.len());
    for (i, raw) in list.into_iter().enumerate() {
        let u = format!("{p}.users[{i}]");
        let user = user(ctx, &u, raw)?;
        if let Some(first) = out.iter().position(|o| o.name == user.name) {
            return Err(ctx.err(
                key(&u, "name"),
                format!("{:?} is already defined by {p}.users[{first}]", user.name),
            ));
        }
        out.push(user);
    }
    Ok(out)
}

fn user(ctx: &Ctx, u: &str, raw: RawUser) -> Result<UserConfig, ConfigError> {
    let name = raw
        .name
        .ok_or_else(|| ctx.err(key(u, "name"), "required"))?;
    // As Redis's ACL SETUSER accepts them: no spaces or control characters.
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ctx.err(
            key(u, "name"),
            format!("invalid user name {name:?}, expected printable characters without spaces"),
        ));
    }
    let plain = non_empty(ctx, &key(u, "password"), raw.password)?;
    let password_sha256 = match (plain, raw.password_sha256) {
        (Some(_), Some(_)) => {
            return Err(ctx.err(
                key(u, "password"),
                "set either password or password_sha256, not both",
            ))
        }
        (Some(plain), None) => sha256(plain.as_bytes()),
        (None, Some(hex)) => parse_sha256(&hex).ok_or_else(|| {
            ctx.err(
                key(u, "password_sha256"),
                "expected 64 hexadecimal digits (e.g. the output of `printf %s PASSWORD | sha256sum`)",
            )
        })?,
        (None, None) => {
            return Err(ctx.err(
                key(u, "password"),
                "required: password or password_sha256",
            ))
        }
    };
    let access = raw.access.ok_or_else(|| {
        ctx.err(
            key(u, "access"),
            "required: \"read\", \"read-write\" or \"admin\"",
        )
    })?;
    let access = choice(
        &access,
        &[
            ("read", Access::Read),
            ("read-write", Access::ReadWrite),
            ("admin", Access::Admin),
        ],
    )
    .map_err(|reason| ctx.err(key(u, "access"), reason))?;
    let keys = raw.keys.unwrap_or_default();
    if let Some(i) = keys.iter().position(String::is_empty) {
        return Err(ctx.err(format!("{u}.keys[{i}]"), "must not be empty"));
    }
    Ok(UserConfig {
        name,
        password_sha256,
        access,
        keys,
    })
}

/// 64 hexadecimal digits (either case) into a digest.
fn parse_sha256(hex: &str) -> Option<Sha256Digest> {
    let bytes = hex.as_bytes();
    // from_str_radix alone would take a sign ("+f").
    if bytes.len() != 64 || !bytes.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *o = u8::from_str_radix(text, 16).ok()?;
    }
    Some(Sha256Digest(out))
}

#[cfg(test)]
mod tests {
    use super::parse_sha256;
    use crate::config::sha256;

    #[test]
    fn hex_digests_parse_in_either_case() {
        let lower = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert_eq!(parse_sha256(lower), Some(sha256(b"test")));
        assert_eq!(parse_sha256(&lower.to_uppercase()), Some(sha256(b"test")));
        assert_eq!(parse_sha256(&lower[..62]), None);
        assert_eq!(parse_sha256(&lower.replace('9', "g")), None);
        assert_eq!(parse_sha256(&format!("+{}", &lower[1..])), None);
    }
}
