//! Commands that would change or break the proxy's view of the nodes (or hand one client
//! another's connection) are refused unless the pool's `allow_commands` lists them.

use crate::pool::Pool;
use crate::resp::Request;

/// Denied by default: `(command, subcommand)`; an empty subcommand means every form.
const DENIED: &[(&str, &str)] = &[
    ("shutdown", ""),
    ("replicaof", ""),
    ("slaveof", ""),
    ("config", "set"),
    ("config", "rewrite"),
    ("config", "resetstat"),
    ("debug", ""),
    ("cluster", ""),
    ("failover", ""),
    ("sync", ""),
    ("psync", ""),
    ("client", "no-evict"),
    // Users are the nodes', shared by the proxy's own connections: one client could change
    // the password sluice logs in with (every connection then fails its handshake after a
    // reconnect) or take commands away from every client.
    ("acl", "setuser"),
    ("acl", "deluser"),
    ("acl", "load"),
];

/// Also denied by default in cluster pools: there they are fanned out to every master, so one
/// stray `FLUSHALL` empties the whole cluster rather than one server (`allow_commands` lists
/// them to permit it). In other pools they reach the one master, as with a direct connection.
const DENIED_IN_CLUSTER: &[(&str, &str)] = &[("flushall", ""), ("flushdb", "")];

/// The error text for a denied request, or `None` when it may pass.
pub(super) fn check(pool: &Pool, req: &Request) -> Option<String> {
    let name = req.arg(0);
    let sub = req.arg(1);
    let cluster: &[(&str, &str)] = if pool.routing.by_slot() {
        DENIED_IN_CLUSTER
    } else {
        &[]
    };
    // Passthrough: each client runs as its own Redis user, so Redis's ACL decides who may
    // change users (the proxy's own connections are not affected by what a client may do).
    let passthrough = pool.auth.mode == crate::config::ClientAuth::Passthrough;
    let hit = DENIED.iter().chain(cluster).find(|(cmd, s)| {
        !(passthrough && *cmd == "acl")
            && name.eq_ignore_ascii_case(cmd.as_bytes())
            && (s.is_empty() || sub.eq_ignore_ascii_case(s.as_bytes()))
    })?;
    let cmd = hit.0.to_ascii_uppercase();
    let full = if hit.1.is_empty() {
        cmd.clone()
    } else {
        format!("{cmd} {}", hit.1.to_ascii_uppercase())
    };
    // Config loading upper-cases and normalises `allow_commands` already.
    if pool
        .cfg
        .allow_commands
        .iter()
        .any(|a| *a == cmd || *a == full)
    {
        return None;
    }
    Some(format!(
        "ERR sluice: '{full}' is not allowed through the proxy (pool '{}'); list it in allow_commands to permit it",
        pool.cfg.name
    ))
}

#[cfg(test)]
mod tests {
    use super::{DENIED, DENIED_IN_CLUSTER};
    use crate::command::Special;

    /// `session::local` checks the deny lists only for commands classified `Guarded` (or
    /// CLIENT/CLUSTER/SYNC/PSYNC, which have classes of their own): a family added here must
    /// be added to the classification too.
    #[test]
    fn every_denied_family_is_classified_for_the_check() {
        for (cmd, _) in DENIED.iter().chain(DENIED_IN_CLUSTER) {
            let special = Special::classify(cmd);
            assert!(
                matches!(
                    special,
                    Special::Guarded
                        | Special::Client
                        | Special::Cluster
                        | Special::Sync
                        | Special::Psync
                ),
                "{cmd} is classified {special:?}: its denied forms would never be checked"
            );
        }
    }
}
