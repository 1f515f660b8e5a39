//! One `[[pools]]` entry: its name, listener, reads and credentials, with the source and the
//! limits checked by their own modules.

use super::limits::{counts, output_limits, timeouts};
use super::source::source;
use super::tls::{backend_tls, listener_tls};
use super::values::{allow_commands, choice, non_empty, socket_addr, user_needs_password};
use super::{key, Ctx};
use crate::config::raw::RawPool;
use crate::config::units;
use crate::config::{ConfigError, Consistency, Mode, PoolConfig, ReadFrom, ReplicaLag};

/// One `[[pools]]` entry, checked key group by key group in the order the docs list them
/// (the first problem found is reported).
pub(super) fn pool_config(
    ctx: &Ctx,
    index: usize,
    mut raw: RawPool,
) -> Result<PoolConfig, ConfigError> {
    let p = format!("pools[{index}]");
    let name = pool_name(ctx, &p, raw.name.take())?;
    let listen = raw
        .listen
        .take()
        .ok_or_else(|| ctx.err(key(&p, "listen"), "required"))?;
    let listen = socket_addr(&listen).map_err(|reason| ctx.err(key(&p, "listen"), reason))?;
    let source = source(ctx, &p, &mut raw)?;
    let reads = reads(ctx, &p, &raw, source.mode())?;
    let (client_auth, password, users) = super::users::client_auth(ctx, &p, &mut raw)?;
    let auth = auth(ctx, &p, &mut raw)?;
    let allow_commands = allow_commands(
        ctx,
        &key(&p, "allow_commands"),
        raw.allow_commands.take().unwrap_or_default(),
    )?;
    let counts = counts(ctx, &p, &raw)?;
    let (client_output_soft_limit, client_output_hard_limit) = output_limits(
        ctx,
        &p,
        raw.client_output_soft_limit.as_ref(),
        raw.client_output_hard_limit.as_ref(),
    )?;
    let timeouts = timeouts(ctx, &p, &raw)?;
    let auth_timing = super::users::auth_timing(ctx, &p, &raw, client_auth, timeouts.request)?;
    let tls = listener_tls(ctx, &p, &mut raw)?;
    let backend_tls = backend_tls(ctx, &p, &mut raw)?;
    Ok(PoolConfig {
        name,
        listen,
        source,
        read_from: reads.read_from,
        auth: client_auth,
        users,
        password,
        backend_username: auth.backend_username,
        backend_password: auth.backend_password,
        allow_commands,
        passthrough_idle_timeout: auth_timing.passthrough_idle_timeout,
        auth_failure_delay: auth_timing.auth_failure_delay,
        backend_connections: counts.backend_connections,
        max_dedicated_connections: counts.max_dedicated_connections,
        connect_timeout: timeouts.connect,
        request_timeout: timeouts.request,
        master_wait: timeouts.master_wait,
        park_idle_after: timeouts.park_idle_after,
        health_check_interval: timeouts.health_check_interval,
        databases: counts.databases,
        max_clients: counts.max_clients,
        client_output_soft_limit,
        client_output_hard_limit,
        max_replica_lag: reads.max_replica_lag,
        consistency: reads.consistency,
        tls,
        backend_tls,
    })
}

/// The name becomes a metrics label and a /topology key: keep it plain.
fn pool_name(ctx: &Ctx, p: &str, name: Option<String>) -> Result<String, ConfigError> {
    let name = name.ok_or_else(|| ctx.err(key(p, "name"), "required"))?;
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !name_ok {
        return Err(ctx.err(
            key(p, "name"),
            format!("invalid name {name:?}, expected letters, digits, '-', '_' or '.'"),
        ));
    }
    Ok(name)
}

/// The read keys of a pool.
struct Reads {
    read_from: ReadFrom,
    consistency: Consistency,
    max_replica_lag: Option<ReplicaLag>,
}

/// `read_from`, `consistency` and `max_replica_lag`; cluster pools refuse what they cannot
/// honour yet rather than silently ignoring it.
fn reads(ctx: &Ctx, p: &str, raw: &RawPool, mode: Mode) -> Result<Reads, ConfigError> {
    let read_from = match raw.read_from.as_deref() {
        None => ReadFrom::Master,
        Some(r) => choice(
            r,
            &[
                ("master", ReadFrom::Master),
                ("replica", ReadFrom::Replica),
                ("prefer-replica", ReadFrom::PreferReplica),
            ],
        )
        .map_err(|reason| ctx.err(key(p, "read_from"), reason))?,
    };
    let consistency = match raw.consistency.as_deref() {
        None => Consistency::default(),
        Some(c) => choice(
            c,
            &[
                ("eventual", Consistency::Eventual),
                ("read-your-writes", Consistency::ReadYourWrites),
            ],
        )
        .map_err(|reason| ctx.err(key(p, "consistency"), reason))?,
    };
    let max_replica_lag = raw
        .max_replica_lag
        .as_ref()
        .map(units::parse_replica_lag)
        .transpose()
        .map_err(|reason| ctx.err(key(p, "max_replica_lag"), reason))?;
    if mode == Mode::Cluster {
        if consistency == Consistency::ReadYourWrites {
            return Err(ctx.err(
                key(p, "consistency"),
                "\"read-your-writes\" is not supported when mode = \"cluster\"",
            ));
        }
        if matches!(max_replica_lag, Some(ReplicaLag::Time(_))) {
            return Err(ctx.err(
                key(p, "max_replica_lag"),
                "must be a size when mode = \"cluster\" (the cluster reports replication \
                 offsets, not ack times), e.g. \"1MiB\"",
            ));
        }
    }
    Ok(Reads {
        read_from,
        consistency,
        max_replica_lag,
    })
}

/// The credentials sent to every node.
struct Auth {
    backend_username: Option<String>,
    backend_password: Option<String>,
}

fn auth(ctx: &Ctx, p: &str, raw: &mut RawPool) -> Result<Auth, ConfigError> {
    let backend_username = non_empty(
        ctx,
        &key(p, "backend_username"),
        raw.backend_username.take(),
    )?;
    let backend_password = non_empty(
        ctx,
        &key(p, "backend_password"),
        raw.backend_password.take(),
    )?;
    user_needs_password(
        ctx,
        p,
        "backend_username",
        "backend_password",
        &backend_username,
        &backend_password,
    )?;
    Ok(Auth {
        backend_username,
        backend_password,
    })
}
