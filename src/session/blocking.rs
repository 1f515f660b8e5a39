//! Blocking commands (BLPOP, BLMOVE, BZPOPMIN, XREAD BLOCK, ...) run on a dedicated
//! connection so they never stall the shared ones. While one blocks, the client's further
//! requests wait (as on Redis), but a client that disconnects releases the connection at once
//! instead of leaving it blocked on the node.

use std::time::Duration;

use super::transaction::checkout_in_db;
use super::{err_text, Io, Session};
use crate::backend::{BackendError, DirectConn};
use crate::command::{self, CommandInfo};
use crate::config::Mode;
use crate::resp::{encode, Reply, Request};
use crate::route::cluster::{redirect_target, MAX_HOPS};

/// Requests a blocked client may pipeline behind its blocking command before we stop reading.
const MAX_BUFFERED_WHILE_BLOCKED: usize = 1 << 20;

/// How a request on a dedicated connection ended.
pub(super) enum Outcome {
    /// The node replied.
    Reply(Reply),
    /// The connection failed or timed out; it must be dropped.
    Failed(BackendError),
    /// The client disconnected first; the connection must be dropped (it may still be blocked).
    ClientGone,
}

/// Sends `raw` on `conn` and waits for its reply, watching the client meanwhile: bytes it
/// pipelines are kept for later, and its disconnect abandons the wait. `timeout` bounds the
/// wait for commands that should not block.
pub(super) async fn await_reply(
    conn: &mut DirectConn,
    raw: &[u8],
    io: &mut Io,
    timeout: Option<Duration>,
) -> Outcome {
    if let Err(e) = conn.write(raw).await {
        return Outcome::Failed(e);
    }
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    loop {
        tokio::select! {
            reply = conn.read() => {
                return match reply {
                    Ok(r) => Outcome::Reply(r),
                    Err(e) => Outcome::Failed(e),
                };
            }
            r = std::future::poll_fn(|cx| io.stream.poll_read_ready(cx)), if !io.eof && io.rbuf.len() < MAX_BUFFERED_WHILE_BLOCKED => {
                if r.is_err() || !io.read_available() {
                    io.eof = true;
                    return Outcome::ClientGone;
                }
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                let ms = timeout.map(|t| t.as_millis() as u64).unwrap_or_default();
                return Outcome::Failed(BackendError::Timeout { addr: conn.addr().to_string(), ms });
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Session {
    /// Runs a blocking command to completion (the queue is empty here).
    pub(super) async fn blocking(
        &mut self,
        req: Request,
        info: Option<&'static CommandInfo>,
        io: &mut Io,
    ) {
        if let Some(reply) = self.local(&req, info) {
            io.out.extend_from_slice(&reply);
            return;
        }
        let mut node = match self.exclusive_node(&req, info) {
            Ok(n) => n,
            Err(e) => {
                encode::error(&mut io.out, &e);
                return;
            }
        };
        // Cluster pools: a MOVED or ASK (the slot moved or is moving) is followed here too,
        // a bounded number of times; `asking` sends ASKING first on the same connection.
        let mut asking = false;
        let mut hops = 0;
        let started = tokio::time::Instant::now();
        let mut raw = req.raw().clone();
        loop {
            let mut conn = match checkout_in_db(&node, self.proto, self.db).await {
                Ok(c) => c,
                Err(e) => {
                    encode::error(&mut io.out, &err_text(&e.to_string()));
                    return;
                }
            };
            if asking {
                let mut cmd = bytes::BytesMut::new();
                encode::command(&mut cmd, &[b"ASKING"]);
                // Bounded: only the blocking command itself may wait long.
                let timeout = self.pool.cfg.request_timeout;
                let asked = tokio::time::timeout(timeout, conn.request(&cmd)).await;
                if !matches!(asked, Ok(Ok(ref r)) if !r.is_error()) {
                    encode::error(
                        &mut io.out,
                        &format!("ERR sluice: ASKING failed on {}", node.addr),
                    );
                    return;
                }
            }
            node.metrics.writes.increment(1);
            match await_reply(&mut conn, &raw, io, None).await {
                Outcome::Reply(r) => {
                    node.dedicated.checkin(conn);
                    if self.pool.cfg.mode() == Mode::Cluster && hops < MAX_HOPS {
                        if let Some((next, ask)) = redirect_target(&self.pool, &r).await {
                            hops += 1;
                            node = next;
                            asking = ask;
                            // Redis unblocks a client whose slot moved away with MOVED: the
                            // retry waits only what is left of the client's timeout.
                            if let Some(shorter) =
                                command::with_remaining_timeout(&req, info, started.elapsed())
                            {
                                raw = shorter;
                            }
                            continue;
                        }
                    }
                    io.out.extend_from_slice(&r.raw);
                }
                Outcome::Failed(e) => {
                    node.metrics.write_errors.increment(1);
                    encode::error(&mut io.out, &err_text(&e.to_string()));
                }
                Outcome::ClientGone => self.closing = true,
            }
            return;
        }
    }
}
