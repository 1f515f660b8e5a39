//! A node busy in a script, made visible. While a node runs a long script (past
//! `busy-reply-threshold`) Redis answers every other client `-BUSY ...`; the proxy answers
//! PING itself, which would hide that (and clients, Redis's own tests among them, use PING
//! to see whether a script still runs before they SCRIPT KILL it).
//!
//! So the proxy counts the scripts (EVAL, EVALSHA, FCALL and their `_RO` forms) it has in
//! flight in the pool; while any is, PING is not answered locally but sent to the master on
//! a dedicated connection (a shared one may be the very connection the script holds), and
//! the client gets the node's own answer, `PONG` or `BUSY`. With no script in flight, PING
//! costs one atomic load more than before.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::dedicated::{await_reply, checkout_in_db, Outcome};
use super::{Io, Session};
use crate::resp::{ClientError, Request};

/// Scripts in flight in a pool (in its client registry).
#[derive(Default)]
pub(crate) struct Scripts {
    running: Arc<AtomicUsize>,
}

/// Held by a script request while it is in flight (moves with it through retries).
pub(super) struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Scripts {
    /// A script request is sent.
    pub(super) fn start(&self) -> InFlight {
        self.running.fetch_add(1, Ordering::Relaxed);
        InFlight(self.running.clone())
    }

    /// Whether any script is in flight.
    #[inline]
    pub(super) fn any(&self) -> bool {
        self.running.load(Ordering::Relaxed) > 0
    }
}

impl Session {
    /// PING while a script may be running: the master's own answer, on a dedicated
    /// connection (bounded by the request timeout).
    pub(super) async fn ping_master(&mut self, req: &Request, io: &mut Io) {
        let node = match self.exclusive_node(req, crate::command::lookup(req)) {
            Ok(n) => n,
            Err(e) => return e.write_to(&mut io.out),
        };
        let mut conn = match checkout_in_db(&node, self.proto, self.db, self.dedicated_link()).await
        {
            Ok(c) => c,
            Err(e) => return e.write_to(&mut io.out),
        };
        let timeout = Some(self.pool.cfg.request_timeout);
        match await_reply(&mut conn, req.raw(), io, timeout).await {
            Outcome::Reply(reply) => {
                io.out.extend_from_slice(&reply.raw);
                node.dedicated.checkin(conn);
            }
            Outcome::Failed(e) => ClientError::from(e).write_to(&mut io.out),
            Outcome::ClientGone => {}
        }
    }
}
