//! Blocking commands (BLPOP, BLMOVE, BZPOPMIN, XREAD BLOCK, WAIT, ...) run on a dedicated
//! connection so they never stall the shared ones. While one blocks, the client's further
//! requests wait (as on Redis), but a client that disconnects releases the connection at once
//! instead of leaving it blocked on the node.

use super::transaction::checkout_in_db;
use super::{Io, Session};
use crate::resp::{encode, Request};

/// Requests a blocked client may pipeline behind its blocking command before we stop reading.
const MAX_BUFFERED_WHILE_BLOCKED: usize = 1 << 20;

impl Session {
    /// Runs a blocking command to completion (the queue is empty here).
    pub(super) async fn blocking(&mut self, req: Request, io: &mut Io) {
        if let Some(reply) = self.local(&req, crate::command::lookup(&req)) {
            io.out.extend_from_slice(&reply);
            return;
        }
        let topo = self.pool.topology.load();
        let node = match self.pool.router.master(&topo) {
            Ok(n) => n,
            Err(e) => {
                encode::error(&mut io.out, &e.to_string());
                return;
            }
        };
        drop(topo);
        let mut conn = match checkout_in_db(&node, self.proto, self.db).await {
            Ok(c) => c,
            Err(e) => {
                encode::error(&mut io.out, &format!("ERR {e}"));
                return;
            }
        };
        node.metrics.writes.increment(1);
        if let Err(e) = conn.write(req.raw()).await {
            encode::error(&mut io.out, &format!("ERR {e}"));
            return;
        }
        loop {
            tokio::select! {
                reply = conn.read() => {
                    match reply {
                        Ok(r) => {
                            io.out.extend_from_slice(&r.raw);
                            node.dedicated.checkin(conn);
                        }
                        Err(e) => {
                            node.metrics.write_errors.increment(1);
                            encode::error(&mut io.out, &format!("ERR {e}"));
                        }
                    }
                    return;
                }
                r = io.stream.readable(), if !io.eof && io.rbuf.len() < MAX_BUFFERED_WHILE_BLOCKED => {
                    // Pipelined requests are kept for later; EOF abandons the blocked command
                    // and drops (closes) the connection so the node unblocks it.
                    if r.is_err() || !io.read_available() {
                        io.eof = true;
                        self.closing = true;
                        return;
                    }
                }
            }
        }
    }
}
