//! Blocking commands (BLPOP, BLMOVE, BZPOPMIN, XREAD BLOCK, ...) run on a dedicated
//! connection so they never stall the shared ones. While one blocks, the client's further
//! requests wait (as on Redis), but a client that disconnects releases the connection at once
//! instead of leaving it blocked on the node.

use super::dedicated::{await_reply, checkout_in_db, Outcome};
use super::{Io, Session};
use crate::backend::{DirectConn, Node};
use crate::command::{self, CommandInfo};
use crate::resp::{encode, ClientError, Request};
use crate::route::cluster::{redirect_target, MAX_HOPS};

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
                e.write_to(&mut io.out);
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
            let mut conn =
                match checkout_in_db(&node, self.proto, self.db, self.dedicated_link()).await {
                    Ok(c) => c,
                    Err(e) => {
                        e.write_to(&mut io.out);
                        return;
                    }
                };
            if asking && !self.ask(&mut conn, &node, io).await {
                return;
            }
            node.metrics.writes.increment(1);
            let timeout = self.pool.cfg.request_timeout;
            let outcome = match super::unblock::send_learning_id(&mut conn, &raw, timeout).await {
                Ok(node_id) => {
                    self.set_blocked_on(node_id.map(|id| (node.clone(), id)));
                    // Sent already: only the reply is awaited.
                    await_reply(&mut conn, b"", io, None).await
                }
                Err(e) => Outcome::Failed(e),
            };
            self.set_blocked_on(None);
            match outcome {
                Outcome::Reply(r) => {
                    node.dedicated.checkin(conn);
                    if self.pool.routing.by_slot() && hops < MAX_HOPS {
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
                    self.pool.registry.slowlog.blocked(req.raw(), self);
                }
                Outcome::Failed(e) => {
                    node.metrics.write_errors.increment(1);
                    ClientError::from(e).write_to(&mut io.out);
                }
                Outcome::ClientGone => self.closing = true,
            }
            return;
        }
    }

    /// Sends ASKING first (a cluster slot being migrated); false, with the client answered,
    /// when the node refused it.
    async fn ask(&self, conn: &mut DirectConn, node: &Node, io: &mut Io) -> bool {
        let mut cmd = bytes::BytesMut::new();
        encode::command(&mut cmd, &[b"ASKING"]);
        // Bounded: only the blocking command itself may wait long.
        let timeout = self.pool.cfg.request_timeout;
        let asked = tokio::time::timeout(timeout, conn.request(&cmd)).await;
        let ok = matches!(asked, Ok(Ok(ref r)) if !r.is_error());
        if !ok {
            let msg = format!("ERR sluice: ASKING failed on {}", node.addr);
            encode::error(&mut io.out, &msg);
        }
        ok
    }
}
