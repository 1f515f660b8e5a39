//! What PSYNC/SYNC and WAIT do under the lock: register a replica with its resync preamble,
//! and the key WAIT blocks on. Data-level (commands call it); the task that then streams to
//! the replica is `master.rs`.

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use tokio::sync::Notify;

use super::{snapshot, ReplicaLink};
use crate::node::client::ClientState;
use crate::node::store::Store;

/// The key WAIT blocks on (unreachable from clients: it starts with a NUL byte); replica
/// ACKs signal it in every database so waiting clients re-check their count.
pub const WAIT_KEY: &[u8] = b"\0sluice:replica-ack";

/// How the replica asked to sync.
pub enum SyncRequest<'a> {
    /// `PSYNC replid offset` (`?` / -1 for "no history").
    Psync(&'a [u8], i64),
    /// Old-style `SYNC`: a full snapshot with no `+FULLRESYNC` line.
    Sync,
}

/// Handles PSYNC/SYNC for `client` (under the lock): registers it as a replica whose output
/// buffer starts with the resync preamble. The caller hands the connection over afterwards.
pub fn attach(store: &mut Store, client: &ClientState, req: SyncRequest<'_>) {
    store.repl.ensure_backlog(&mut store.feed);
    let mut out = BytesMut::new();
    let partial = match req {
        SyncRequest::Psync(id, from) => {
            let id = String::from_utf8_lossy(id);
            let ok = store.repl.can_continue(&id, from);
            if !ok && id != "?" {
                store.repl.stats.sync_partial_err += 1;
            }
            ok.then_some(from)
        }
        SyncRequest::Sync => None,
    };
    let r = &mut store.repl;
    if let Some(from) = partial {
        r.stats.sync_partial_ok += 1;
        out.extend_from_slice(format!("+CONTINUE {}\r\n", r.replid).as_bytes());
        if let Some(tail) = r.backlog.as_ref().and_then(|b| b.from_offset(from)) {
            out.extend_from_slice(&tail);
        }
    } else {
        r.stats.sync_full += 1;
        if matches!(req, SyncRequest::Psync(..)) {
            out.extend_from_slice(format!("+FULLRESYNC {} {}\r\n", r.replid, r.offset).as_bytes());
        }
        // The replica starts its stream at this point with no database selected; on a master
        // our next write will carry a SELECT, on a replica we tell it the stream's database
        // inside the snapshot (we relay our master's bytes and cannot inject a SELECT).
        let stream_db = if store.repl.is_replica() {
            store.repl.master_db
        } else {
            store.feed.reset_db();
            0
        };
        let payload = snapshot::encode(store, stream_db);
        snapshot::frame(&payload, &mut out);
    }
    let offset = store.repl.offset;
    let preamble = out.len();
    store.repl.replicas.push(ReplicaLink {
        id: client.id,
        ip: String::new(),
        port: client.repl_port,
        ack: if partial.is_some() { offset } else { 0 },
        last_ack: Instant::now(),
        buf: out,
        notify: Arc::new(Notify::new()),
        killed: false,
        preamble,
        in_flight: 0,
        soft_since: None,
        online: false,
    });
}
