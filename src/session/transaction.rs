//! MULTI/EXEC and WATCH: the session is pinned to one dedicated master connection from the
//! first MULTI or WATCH until EXEC, DISCARD or UNWATCH ends it; then the connection goes back
//! to the node's pool for the next transaction (no TCP connection per transaction).
//! While pinned, every command runs on that connection, so the transaction sees exactly what
//! it would see on a direct connection to the master.

use bytes::BytesMut;

use super::{Io, Session};
use crate::backend::{DirectConn, Node};
use crate::resp::{encode, Request};

use std::sync::Arc;

/// A session's dedicated transaction connection and what is open on it.
pub(crate) struct Pinned {
    conn: DirectConn,
    node: Arc<Node>,
    in_multi: bool,
    watching: bool,
    /// A SELECT queued inside MULTI takes effect when EXEC runs.
    queued_db: Option<u16>,
}

impl Session {
    /// Runs one request on the pinned connection, pinning first if needed.
    pub(super) async fn pinned_request(&mut self, req: Request, io: &mut Io) {
        let name = req.arg(0);
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        if is("quit") {
            self.pinned = None;
            self.closing = true;
            io.out.extend_from_slice(b"+OK\r\n");
            return;
        }
        // Outside MULTI, session commands keep their local meaning (HELLO, AUTH, CLIENT ...).
        let in_multi = self.pinned.as_ref().is_some_and(|p| p.in_multi);
        if !in_multi
            && !is("select")
            && !is("multi")
            && !is("watch")
            && !is("exec")
            && !is("discard")
            && !is("unwatch")
        {
            if let Some(reply) = self.local(&req, crate::command::lookup(&req)) {
                io.out.extend_from_slice(&reply);
                return;
            }
        }
        if self.pinned.is_none() {
            match self.pin().await {
                Ok(p) => self.pinned = Some(Box::new(p)),
                Err(e) => {
                    encode::error(&mut io.out, &format!("ERR {e}"));
                    return;
                }
            }
        }
        let Some(pinned) = self.pinned.as_mut() else {
            return;
        };
        pinned.node.metrics.writes.increment(1);
        let reply = match pinned.conn.request(req.raw()).await {
            Ok(r) => r,
            Err(e) => {
                pinned.node.metrics.write_errors.increment(1);
                self.pinned = None;
                encode::error(&mut io.out, &format!("ERR {e}"));
                return;
            }
        };
        io.out.extend_from_slice(&reply.raw);
        let ok = !reply.is_error();
        if is("multi") && ok {
            pinned.in_multi = true;
        } else if is("watch") && ok {
            pinned.watching = true;
        } else if is("select") && ok {
            match super::local::parse_int(req.arg(1)).and_then(|n| u16::try_from(n).ok()) {
                Some(db) if pinned.in_multi => pinned.queued_db = Some(db),
                Some(db) => {
                    pinned.conn.db = db;
                    self.db = db;
                }
                None => {}
            }
        } else if is("exec") || is("discard") {
            if is("exec") && ok {
                if let Some(db) = pinned.queued_db {
                    pinned.conn.db = db;
                    self.db = db;
                }
            }
            pinned.in_multi = false;
            pinned.watching = false;
            pinned.queued_db = None;
        } else if is("unwatch") && !pinned.in_multi {
            pinned.watching = false;
        }
        if !pinned.in_multi && !pinned.watching {
            self.unpin();
        }
    }

    /// Takes a dedicated master connection in this client's protocol and database.
    async fn pin(&mut self) -> Result<Pinned, String> {
        let topo = self.pool.topology.load();
        let node = self.pool.router.master(&topo).map_err(|e| e.to_string())?;
        drop(topo);
        let conn = checkout_in_db(&node, self.proto, self.db).await?;
        Ok(Pinned {
            conn,
            node,
            in_multi: false,
            watching: false,
            queued_db: None,
        })
    }

    /// Ends pinning; a clean connection goes back to its node's pool.
    fn unpin(&mut self) {
        if let Some(p) = self.pinned.take() {
            p.node.dedicated.checkin(p.conn);
        }
    }
}

/// A dedicated connection to `node` speaking `proto`, switched to database `db`.
pub(super) async fn checkout_in_db(
    node: &Node,
    proto: crate::resp::Protocol,
    db: u16,
) -> Result<DirectConn, String> {
    let mut conn = node
        .dedicated
        .checkout(proto)
        .await
        .map_err(|e| e.to_string())?;
    if conn.db != db {
        let mut sel = BytesMut::new();
        let n = itoa::Buffer::new().format(db).as_bytes().to_vec();
        encode::command(&mut sel, &[b"SELECT", &n]);
        let reply = conn.request(&sel).await.map_err(|e| e.to_string())?;
        if reply.is_error() {
            return Err(format!("sluice: SELECT {db} refused by {}", node.addr));
        }
        conn.db = db;
    }
    Ok(conn)
}
