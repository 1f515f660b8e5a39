//! Replica side: the link to our master — handshake, PSYNC, snapshot load, applying the
//! stream, ACKs every second, reconnecting with backoff.
//!
//! REPLICAOF only records the wanted master in [`super::ReplState`] (under the lock) and
//! wakes [`supervise`], which starts a link task for it. Each link owns a cancellation
//! token: REPLICAOF elsewhere or NO ONE cancels it under the lock, and the task checks the
//! token under the lock before every change it makes, so a stale link can never touch the
//! keyspace after it was replaced.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::backlog::Backlog;
use super::{snapshot, LinkState, NO_REPLID};
use crate::node::client::ClientState;
use crate::node::cmd::{self, Ctx};
use crate::node::shared::Shared;
use crate::node::store::Store;
use crate::resp::{decode_request, encode, Limits};

/// Replicas acknowledge their offset this often (Redis: every second).
const ACK_PERIOD: Duration = Duration::from_secs(1);
/// Time allowed for connecting and for each handshake reply.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A master silent for this long is considered gone (Redis's `repl-timeout`, 60 s).
const REPL_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest status line accepted from the master.
const MAX_LINE: usize = 64 * 1024;
/// Largest snapshot accepted (Redis's own bulk limit would be 512 MiB; a snapshot is a
/// whole dataset, so allow more, but not "any length a peer claims").
const MAX_SNAPSHOT: usize = 16 * 1024 * 1024 * 1024;

/// Why a replication link failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Network error.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The master did not answer in time.
    #[error("timed out")]
    Timeout,
    /// The master closed the connection.
    #[error("connection closed by master")]
    Closed,
    /// An unexpected handshake reply.
    #[error("master replied {0:?}")]
    Handshake(String),
    /// The snapshot could not be loaded.
    #[error("snapshot: {0}")]
    Snapshot(#[from] snapshot::SnapshotError),
    /// The stream is not valid RESP.
    #[error("protocol error in the replication stream: {0}")]
    Protocol(String),
    /// REPLICAOF replaced this link.
    #[error("link replaced")]
    Cancelled,
}

/// Starts a link task whenever REPLICAOF asks for a new master; runs until shutdown.
pub async fn supervise(shared: Arc<Shared>) {
    let wake: Arc<Notify> = shared.lock().repl.wake.clone();
    let mut started: Option<CancellationToken> = None;
    loop {
        let job = {
            let s = shared.lock();
            s.repl.master.as_ref().and_then(|m| {
                let fresh = started.as_ref().is_none_or(|t| t.is_cancelled());
                fresh.then(|| (m.host.clone(), m.port, m.cancel.clone()))
            })
        };
        if let Some((host, port, cancel)) = job {
            started = Some(cancel.clone());
            tokio::spawn(run_link(shared.clone(), host, port, cancel));
        }
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = wake.notified() => {}
        }
    }
}

/// One master link: sessions with backoff until cancelled.
async fn run_link(shared: Arc<Shared>, host: String, port: u16, cancel: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let result = tokio::select! {
            r = session(&shared, &host, port, &cancel) => r,
            _ = cancel.cancelled() => return,
            _ = shared.shutdown.cancelled() => return,
        };
        if let Err(e) = result {
            if matches!(e, LinkError::Cancelled) {
                return;
            }
            tracing::warn!(master = %format!("{host}:{port}"), error = %e, "replication link lost");
        }
        // A link that got as far as streaming reconnects quickly; repeated failures back off.
        let synced = {
            let mut s = shared.lock();
            if cancel.is_cancelled() {
                return;
            }
            let Some(m) = s.repl.master.as_mut() else {
                return;
            };
            let was_up = m.state == LinkState::Connected;
            m.state = LinkState::Connect;
            m.down_since.get_or_insert_with(Instant::now);
            was_up
        };
        if synced {
            backoff = Duration::from_millis(100);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = cancel.cancelled() => return,
            _ = shared.shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Runs `f` on the store and our master link, unless the link was replaced.
fn with_link<T>(
    shared: &Shared,
    cancel: &CancellationToken,
    f: impl FnOnce(&mut Store) -> T,
) -> Result<T, LinkError> {
    let mut s = shared.lock();
    if cancel.is_cancelled() || s.repl.master.is_none() {
        return Err(LinkError::Cancelled);
    }
    Ok(f(&mut s))
}

fn set_state(store: &mut Store, state: LinkState) {
    if let Some(m) = store.repl.master.as_mut() {
        m.state = state;
    }
}

/// One connection to the master: handshake, resync, then the stream until it breaks.
/// Returns only with the reason it ended (the link state tells whether it was streaming).
async fn session(
    shared: &Shared,
    host: &str,
    port: u16,
    cancel: &CancellationToken,
) -> Result<(), LinkError> {
    with_link(shared, cancel, |s| set_state(s, LinkState::Connecting))?;
    let mut stream = timeout(TcpStream::connect((host, port))).await??;
    let _ = stream.set_nodelay(true);
    let mut rbuf = BytesMut::new();

    send(&mut stream, &[b"PING"]).await?;
    let pong = read_line(&mut stream, &mut rbuf).await?;
    // -NOAUTH means the master wants a password; we have no `masterauth`, so the sync below
    // fails with the master's error, which we log.
    if !pong.starts_with("+PONG") && !pong.starts_with("-NOAUTH") {
        return Err(LinkError::Handshake(pong));
    }
    let my_port = shared.port().to_string();
    send(
        &mut stream,
        &[b"REPLCONF", b"listening-port", my_port.as_bytes()],
    )
    .await?;
    read_line(&mut stream, &mut rbuf).await?;
    // No `capa eof`: with it a Redis 7 master streams a diskless RDB framed by an EOF mark;
    // we cannot load RDB anyway, and without it every master sends `$<len>`.
    send(&mut stream, &[b"REPLCONF", b"capa", b"psync2"]).await?;
    read_line(&mut stream, &mut rbuf).await?;

    let (replid, from) = with_link(shared, cancel, |s| {
        let r = &s.repl;
        if r.history {
            (r.replid.clone(), (r.offset + 1).to_string())
        } else {
            ("?".to_string(), "-1".to_string())
        }
    })?;
    send(&mut stream, &[b"PSYNC", replid.as_bytes(), from.as_bytes()]).await?;
    let reply = read_line(&mut stream, &mut rbuf).await?;
    let mut words = reply.split_ascii_whitespace();
    match words.next() {
        Some("+FULLRESYNC") => {
            let id = words.next().unwrap_or_default().to_string();
            let offset: i64 = words
                .next()
                .and_then(|o| o.parse().ok())
                .ok_or_else(|| LinkError::Handshake(reply.clone()))?;
            with_link(shared, cancel, |s| set_state(s, LinkState::Sync))?;
            let payload = read_payload(&mut stream, &mut rbuf).await?;
            with_link(shared, cancel, |s| load_snapshot(s, &payload, id, offset))??;
            tracing::info!(master = %format!("{host}:{port}"), offset, "full resync done");
        }
        Some("+CONTINUE") => {
            let new_id = words.next().map(str::to_string);
            with_link(shared, cancel, |s| {
                let r = &mut s.repl;
                if let Some(id) = new_id.filter(|id| *id != r.replid) {
                    // The master's history changed id (it was promoted): ours follows, the
                    // old id stays valid up to here for our own replicas.
                    r.replid2 = std::mem::replace(&mut r.replid, id);
                    r.second_offset = r.offset + 1;
                    r.kill_replicas(None);
                }
            })?;
            tracing::info!(master = %format!("{host}:{port}"), "partial resync accepted");
        }
        _ => return Err(LinkError::Handshake(reply)),
    }
    with_link(shared, cancel, |s| {
        if let Some(m) = s.repl.master.as_mut() {
            m.state = LinkState::Connected;
            m.down_since = None;
            m.ever_synced = true;
            m.last_io = Some(Instant::now());
        }
    })?;
    stream_loop(shared, stream, rbuf, cancel).await
}

/// Replaces the keyspace with the master's snapshot and adopts its history.
fn load_snapshot(s: &mut Store, payload: &[u8], id: String, offset: i64) -> Result<(), LinkError> {
    let (_, db) = snapshot::load(s, payload)?;
    let r = &mut s.repl;
    r.replid = id;
    r.replid2 = NO_REPLID.to_string();
    r.second_offset = -1;
    r.offset = offset;
    r.master_db = db;
    r.history = true;
    r.backlog = Some(Backlog::new(r.backlog_size, offset + 1));
    if let Some(m) = r.master.as_mut() {
        m.read_offset = offset;
    }
    // Our replicas hold data of the old history: they must full-resync from us.
    r.kill_replicas(None);
    // The AOF must now describe the snapshot, not what we had before it.
    crate::node::aof_rewrite::rewrite(s);
    Ok(())
}

/// Applies the master's stream and acknowledges every second.
async fn stream_loop(
    shared: &Shared,
    mut stream: TcpStream,
    mut rbuf: BytesMut,
    cancel: &CancellationToken,
) -> Result<(), LinkError> {
    let mut client = ClientState {
        authed: true,
        from_master: true,
        ..ClientState::default()
    };
    let mut ack = tokio::time::interval(ACK_PERIOD);
    ack.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_read = Instant::now();
    loop {
        let (getack, more) =
            with_link(shared, cancel, |s| apply(s, shared, &mut client, &mut rbuf))??;
        if getack {
            send_ack(shared, cancel, &mut stream).await?;
        }
        if more {
            // Let clients of this replica run between batches of a long burst.
            tokio::task::yield_now().await;
            continue;
        }
        rbuf.reserve(16 * 1024);
        tokio::select! {
            r = stream.read_buf(&mut rbuf) => {
                let n = r?;
                if n == 0 {
                    return Err(LinkError::Closed);
                }
                last_read = Instant::now();
                with_link(shared, cancel, |s| {
                    if let Some(m) = s.repl.master.as_mut() {
                        m.last_io = Some(last_read);
                        m.read_offset += n as i64;
                    }
                })?;
            }
            _ = ack.tick() => {
                if last_read.elapsed() > REPL_TIMEOUT {
                    return Err(LinkError::Timeout);
                }
                send_ack(shared, cancel, &mut stream).await?;
            }
        }
    }
}

/// Commands applied per lock acquisition: a burst from the master (a big pipeline, a
/// backlog replay) must not keep this replica's own clients waiting for the whole burst.
const APPLY_BATCH: usize = 1024;

/// Runs up to [`APPLY_BATCH`] complete commands in `rbuf` as the master's client; each
/// command's bytes go to our backlog and replicas exactly as received. Returns whether the
/// master asked for an ACK, and whether complete commands are left over.
fn apply(
    s: &mut Store,
    shared: &Shared,
    client: &mut ClientState,
    rbuf: &mut BytesMut,
) -> Result<(bool, bool), LinkError> {
    s.tick();
    client.db = s.repl.master_db;
    let mut getack = false;
    let mut drained = false;
    for _ in 0..APPLY_BATCH {
        let req = match decode_request(rbuf, &Limits::default()) {
            Ok(Some(r)) => r,
            Ok(None) => {
                drained = true;
                break;
            }
            Err(e) => return Err(LinkError::Protocol(e.to_string())),
        };
        if req.arg(0).eq_ignore_ascii_case(b"replconf") {
            // REPLCONF GETACK: answered, not executed (its reply must not go back as data).
            getack |= req.arg(1).eq_ignore_ascii_case(b"getack");
        } else {
            let mut ctx = Ctx::new(s, client, shared, false);
            // Replies to the master's stream are discarded, as Redis does for its master.
            let _ = cmd::execute(&mut ctx, &req);
        }
        s.repl.master_db = client.db;
        s.repl.stream(req.raw());
    }
    if rbuf.is_empty() && rbuf.capacity() > 64 * 1024 {
        *rbuf = BytesMut::new();
    }
    // A full batch may have left complete commands behind; the next call finds out.
    Ok((getack, !drained))
}

async fn send_ack(
    shared: &Shared,
    cancel: &CancellationToken,
    stream: &mut TcpStream,
) -> Result<(), LinkError> {
    let offset = with_link(shared, cancel, |s| s.repl.offset.to_string())?;
    send(stream, &[b"REPLCONF", b"ACK", offset.as_bytes()]).await
}

async fn send(stream: &mut TcpStream, args: &[&[u8]]) -> Result<(), LinkError> {
    let mut out = BytesMut::new();
    encode::command(&mut out, args);
    timeout(stream.write_all(&out)).await??;
    Ok(())
}

async fn timeout<F: std::future::Future>(f: F) -> Result<F::Output, LinkError> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, f)
        .await
        .map_err(|_| LinkError::Timeout)
}

/// Reads one `\r\n`-terminated status line. Bare `\n`s are skipped: Redis sends them as
/// keep-alives while it prepares a snapshot.
async fn read_line(stream: &mut TcpStream, rbuf: &mut BytesMut) -> Result<String, LinkError> {
    loop {
        while rbuf.first() == Some(&b'\n') {
            rbuf.advance(1);
        }
        if let Some(nl) = rbuf.iter().position(|&b| b == b'\n') {
            let line = rbuf.split_to(nl + 1);
            let text = String::from_utf8_lossy(&line[..nl]);
            return Ok(text.trim_end_matches('\r').to_string());
        }
        if rbuf.len() > MAX_LINE {
            return Err(LinkError::Handshake("over-long line".into()));
        }
        rbuf.reserve(4096);
        // The snapshot may take a while to prepare on a big master: allow the replication
        // timeout rather than the handshake one.
        let n = tokio::time::timeout(REPL_TIMEOUT, stream.read_buf(rbuf))
            .await
            .map_err(|_| LinkError::Timeout)??;
        if n == 0 {
            return Err(LinkError::Closed);
        }
    }
}

/// Reads the `$<len>\r\n<bytes>` snapshot (no trailing CRLF).
async fn read_payload(stream: &mut TcpStream, rbuf: &mut BytesMut) -> Result<Vec<u8>, LinkError> {
    let header = read_line(stream, rbuf).await?;
    let len: usize = header
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .filter(|&n| n <= MAX_SNAPSHOT)
        .ok_or_else(|| LinkError::Handshake(header.clone()))?;
    while rbuf.len() < len {
        rbuf.reserve((len - rbuf.len()).min(1 << 20));
        let n = tokio::time::timeout(REPL_TIMEOUT, stream.read_buf(rbuf))
            .await
            .map_err(|_| LinkError::Timeout)??;
        if n == 0 {
            return Err(LinkError::Closed);
        }
    }
    Ok(rbuf.split_to(len).to_vec())
}
