//! Cluster role (`sluice node --cluster-enabled yes`): hash slots, redirections, the CLUSTER
//! command family, MIGRATE/DUMP/RESTORE, and a cluster bus of our own design.
//!
//! # Design
//!
//! * **State** ([`state::ClusterState`]) lives in the [`Store`], under the node's one lock,
//!   so the slot check of a command, the command itself and the cluster view never disagree.
//! * **Redirections** ([`redirect`]): every keyed command is checked as Redis's
//!   `getNodeByQuery` does (key positions from `crate::command`).
//! * **Bus** ([`bus`], [`proto`], [`gossip`]): each node keeps one TCP link to every other
//!   node and PINGs it every 100 ms with its header (id, address, role, master, epochs, slots,
//!   replication offset) and gossip about every other node (address, PFAIL/FAIL). A newer
//!   config epoch wins a slot; a node that claims slots with an older epoch is answered with
//!   an UPDATE. Masters with equal config epochs resolve the collision as Redis does (the
//!   lower node id bumps).
//! * **Failover** ([`failover`]): PFAIL after `cluster-node-timeout` of silence, FAIL on a
//!   majority of masters' reports, replica elections with one vote per master per epoch;
//!   manual failovers pause the master's writes until the replica caught up ([`manual`]).
//! * **Persistence** ([`config_file`]): the view is saved to `cluster-config-file` (Redis's
//!   nodes.conf format) whenever it changes, and reloaded at start.
//! * **Role changes** are the cluster's decision; [`sync_role`] makes replication follow it
//!   (REPLICAOF the master we should follow, or NO ONE).

mod args;
pub mod bus;
pub mod commands;
pub mod config_file;
pub mod dump;
pub mod failover;
pub mod gossip;
pub mod manual;
pub mod migrate;
pub mod options;
pub mod proto;
pub mod redirect;
pub mod replies;
pub mod setslots;
pub mod state;
pub mod topology;

use std::net::SocketAddr;
use std::sync::Arc;

pub use options::ClusterOptions;
pub use state::ClusterState;

use super::error::NodeError;
use super::repl::role;
use super::shared::Shared;
use super::store::Store;

/// Loads or creates the cluster state, binds the bus port and starts the bus tasks.
pub async fn start(shared: &Arc<Shared>, opts: &ClusterOptions) -> Result<(), NodeError> {
    let bound = shared.bound;
    let bus_port = match opts.bus_port {
        Some(p) => p,
        None => bound
            .port()
            .checked_add(10_000)
            .ok_or_else(|| NodeError::Cluster("port + 10000 is not a valid bus port".into()))?,
    };
    let bus_addr = SocketAddr::new(bound.ip(), bus_port);
    let listener = tokio::net::TcpListener::bind(bus_addr)
        .await
        .map_err(|source| NodeError::Bind {
            addr: bus_addr,
            source,
        })?;
    let cport = listener.local_addr().map_or(bus_port, |a| a.port());
    let path = shared.config.dir.join(&opts.config_file);
    let ip = if bound.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        bound.ip().to_string()
    };
    let now = super::clock::unix_ms();
    let timeout = i64::try_from(opts.node_timeout_ms).unwrap_or(i64::MAX);
    let mut c = ClusterState::new(
        state::random_id(),
        &ip,
        bound.port(),
        cport,
        path,
        timeout,
        now,
    );
    c.full_coverage = opts.require_full_coverage;
    config_file::load(&mut c, now).map_err(|e| NodeError::Cluster(e.to_string()))?;
    c.update_state();
    {
        let mut store = shared.lock();
        store.settings.init("cluster-enabled", "yes".into());
        let coverage = if opts.require_full_coverage {
            "yes"
        } else {
            "no"
        };
        store
            .settings
            .init("cluster-require-full-coverage", coverage.into());
        store.cluster = Some(Box::new(c));
        sync_role(&mut store);
    }
    bus::spawn(shared.clone(), listener);
    Ok(())
}

/// Makes replication follow the cluster's idea of our role: replicate the master we are a
/// replica of, or stop replicating once we are a master. First drops the shard channels of
/// slots that left our shard, as Redis does when it deletes a slot it served.
pub(crate) fn sync_role(store: &mut Store) {
    let Some(c) = store.cluster.as_mut() else {
        return;
    };
    if !c.lost_slots.is_empty() {
        let lost = std::mem::take(&mut c.lost_slots);
        store.pubsub.drop_shard_slots(&mut store.clients, &lost);
        // Clients blocked on keys of those slots run their command again and meet the
        // redirection (Redis's `clusterRedirectBlockedClientIfNeeded`); the others block
        // again with what is left of their timeout.
        store.waiters.signal_all();
    }
    let Some(c) = store.cluster.as_mut() else {
        return;
    };
    if manual::pause_over(c, super::clock::unix_ms()) {
        // The writes held for a manual failover run again (and meet MOVED if it happened).
        store.waiters.signal_all();
    }
    let Some(c) = store.cluster.as_ref() else {
        return;
    };
    let me = c.me();
    if me.replica {
        let Some(m) = me
            .master_of
            .as_ref()
            .and_then(|m| c.nodes.get(m))
            .filter(|m| !m.handshake)
        else {
            return;
        };
        let (ip, port) = (m.ip.clone(), m.port);
        let same = store
            .repl
            .master
            .as_ref()
            .is_some_and(|l| l.host == ip && l.port == port);
        if !same {
            role::set_master(store, &ip, port);
        }
    } else if store.repl.master.is_some() {
        role::promote(store);
    }
}

pub use commands::COMMANDS;

/// In cluster mode, queues a PUBLISH for every other node and returns true; false when
/// the node is not in cluster mode (the caller replicates it instead).
pub(crate) fn broadcast_publish(
    store: &Store,
    channel: bytes::Bytes,
    message: bytes::Bytes,
) -> bool {
    let Some(c) = store.cluster.as_ref() else {
        return false;
    };
    c.tell_bus(state::Outgoing::Broadcast(proto::Kind::Publish(
        channel.to_vec(),
        message.to_vec(),
    )));
    true
}
