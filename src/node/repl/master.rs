//! Master side: answering PSYNC/SYNC, and one sender task per attached replica.
//!
//! PSYNC runs as a normal command under the store lock: it decides full or partial resync,
//! and puts the whole preamble (`+FULLRESYNC id offset` + snapshot, or `+CONTINUE id` +
//! backlog tail) into the new replica's output buffer in the same critical section that
//! registers it, so no write can fall between the snapshot and the stream. The connection
//! task then hands its socket to [`serve_replica`], which drains that buffer and reads the
//! replica's `REPLCONF ACK`s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::ReplicaLink;
use crate::node::db::DATABASES;
use crate::node::shared::Shared;
use crate::resp::{decode_request, Limits};

/// Redis pings replicas every `repl-ping-replica-period` seconds; the PING is part of the
/// stream (it advances the offset) and lets replicas detect a dead master.
pub const PING_PERIOD: Duration = Duration::from_secs(10);
/// A replica sends only short REPLCONF ACKs; more unparsed input than this drops the link.
const MAX_REPLICA_INPUT: usize = 64 * 1024;

/// Streams to one replica until it disconnects, is killed or the node shuts down. `rbuf`
/// holds whatever the replica sent after its PSYNC.
pub async fn serve_replica(shared: Arc<Shared>, stream: TcpStream, mut rbuf: BytesMut, id: u64) {
    let ip = stream
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let Some(notify) = with_link(&shared, id, |l| {
        l.ip = ip;
        l.notify.clone()
    }) else {
        return;
    };
    let (mut rd, mut wr) = stream.into_split();
    loop {
        let taken = with_link(&shared, id, |l| {
            let chunk = std::mem::take(&mut l.buf);
            l.in_flight = chunk.len().saturating_sub(l.preamble);
            l.preamble = 0;
            (chunk, l.killed)
        });
        let Some((chunk, killed)) = taken else {
            break;
        };
        if killed {
            break;
        }
        if !chunk.is_empty() {
            let written = tokio::select! {
                r = wr.write_all(&chunk) => r.is_ok(),
                // A replica that does not read must not keep a killed link (and the chunk)
                // alive in a write that never ends.
                _ = killed_meanwhile(&shared, id, &notify) => false,
            };
            if !written {
                break;
            }
            with_link(&shared, id, |l| {
                l.in_flight = 0;
                l.online = true;
            });
        }
        if !handle_acks(&shared, id, &mut rbuf) {
            break;
        }
        rbuf.reserve(4096);
        tokio::select! {
            _ = notify.notified() => {}
            r = rd.read_buf(&mut rbuf) => {
                if !matches!(r, Ok(n) if n > 0) {
                    break;
                }
            }
            _ = shared.shutdown.cancelled() => break,
        }
    }
    shared.lock().repl.replicas.retain(|l| l.id != id);
}

/// Applies the replica's `REPLCONF ACK <offset>` messages; false on a protocol error or an
/// unbounded line (the link is dropped).
fn handle_acks(shared: &Shared, id: u64, rbuf: &mut BytesMut) -> bool {
    let mut acked = None;
    loop {
        match decode_request(rbuf, &Limits::default()) {
            Ok(Some(req)) => {
                if req.arg(0).eq_ignore_ascii_case(b"replconf")
                    && req.arg(1).eq_ignore_ascii_case(b"ack")
                {
                    if let Some(n) = std::str::from_utf8(req.arg(2))
                        .ok()
                        .and_then(|s| s.parse::<i64>().ok())
                    {
                        acked = Some(n);
                    }
                }
                // Anything else from a replica (PING, stray replies) is ignored, as Redis
                // ignores what a replica sends besides REPLCONF.
            }
            Ok(None) => break,
            Err(_) => return false,
        }
    }
    if rbuf.len() > MAX_REPLICA_INPUT {
        return false;
    }
    if let Some(n) = acked {
        let mut store = shared.lock();
        if let Some(l) = store.repl.replicas.iter_mut().find(|l| l.id == id) {
            l.ack = l.ack.max(n);
            l.last_ack = Instant::now();
        }
        // Clients in WAIT re-count.
        for db in 0..DATABASES {
            store.waiters.signal(db, super::attach::WAIT_KEY);
        }
    }
    true
}

/// Returns once the link is killed or gone (checked whenever its notify fires).
async fn killed_meanwhile(shared: &Shared, id: u64, notify: &Notify) {
    loop {
        notify.notified().await;
        if with_link(shared, id, |l| l.killed).unwrap_or(true) {
            return;
        }
    }
}

fn with_link<T>(shared: &Shared, id: u64, f: impl FnOnce(&mut ReplicaLink) -> T) -> Option<T> {
    shared
        .lock()
        .repl
        .replicas
        .iter_mut()
        .find(|l| l.id == id)
        .map(f)
}

/// A replica that has not acknowledged for this long is dropped (Redis's `repl-timeout`):
/// its socket may be half-open, and its buffer would otherwise grow until the output limit.
pub const REPLICA_TIMEOUT: Duration = Duration::from_secs(60);

/// Pings replicas every [`PING_PERIOD`] while any is attached (and we are a master), and
/// drops replicas silent for longer than [`REPLICA_TIMEOUT`].
pub async fn ping_replicas(shared: Arc<Shared>) {
    // The first PING is due one period after start, not at once (a plain `interval` ticks
    // immediately, which would put a PING at the head of the first replica's stream).
    let start = tokio::time::Instant::now() + PING_PERIOD;
    let mut tick = tokio::time::interval_at(start, PING_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tick.tick() => {
                if shared.busy.running() {
                    continue; // never block the event loop behind a running script
                }
                let mut s = shared.lock();
                if !s.repl.is_replica() && !s.repl.replicas.is_empty() {
                    s.repl.stream(b"*1\r\n$4\r\nPING\r\n");
                }
                for l in &mut s.repl.replicas {
                    if l.online && !l.killed && l.last_ack.elapsed() > REPLICA_TIMEOUT {
                        tracing::warn!(replica = %l.ip, port = l.port, "replica timed out: disconnecting it");
                        l.killed = true;
                        l.notify.notify_one();
                    }
                }
            }
        }
    }
}
