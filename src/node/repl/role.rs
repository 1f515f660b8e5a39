//! REPLICAOF under the lock: become a replica of a master, or a master again. Data-level
//! (commands and the cluster call it); the link task that then connects is `replica.rs`.

use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::{LinkState, MasterLink};
use crate::node::store::Store;

/// Makes us a replica of `host:port` (REPLICAOF / `--replicaof`), under the lock.
/// Returns false if that is already our master.
pub fn set_master(store: &mut Store, host: &str, port: u16) -> bool {
    if let Some(m) = &store.repl.master {
        if m.host == host && m.port == port {
            return false;
        }
        m.cancel.cancel();
    }
    store.repl.master = Some(MasterLink {
        host: host.to_string(),
        port,
        state: LinkState::Connect,
        last_io: None,
        down_since: Some(Instant::now()),
        ever_synced: false,
        read_offset: store.repl.offset,
        cancel: CancellationToken::new(),
    });
    store.replica = true;
    // Our own history (replid, offset) is what we PSYNC with, so a demoted master can
    // continue partially from the replica that replaced it. Our replicas must learn the new
    // history: drop them so they reconnect, as Redis does.
    store.repl.kill_replicas(None);
    store.repl.ensure_backlog(&mut store.feed);
    store.repl.wake.notify_one();
    true
}

/// REPLICAOF NO ONE: keeps the data, starts a new history (the old one stays valid as
/// `replid2` up to the current offset). Returns false if we were already a master.
pub fn promote(store: &mut Store) -> bool {
    let Some(m) = store.repl.master.take() else {
        return false;
    };
    m.cancel.cancel();
    store.replica = false;
    store.repl.shift_replid();
    store.repl.kill_replicas(None);
    // Our feed's idea of the stream's current database came from the commands we applied,
    // which may differ from the last SELECT in the master's stream (a master command that
    // changed nothing here was not re-recorded): force a SELECT before our first write.
    store.feed.reset_db();
    true
}
