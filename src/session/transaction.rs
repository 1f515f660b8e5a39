//! MULTI/EXEC and WATCH: the session is pinned to one dedicated master connection from the
//! first MULTI or WATCH until EXEC, DISCARD or UNWATCH ends it; then the connection goes back
//! to the node's pool for the next transaction (no TCP connection per transaction).
//! While pinned, every command runs on that connection, so the transaction sees exactly what
//! it would see on a direct connection to the master.
//!
//! A pooled connection must come back exactly as clean as it left, or the next client to get
//! it inherits a watch, a database or a protocol. So inside MULTI the proxy refuses (and, as
//! Redis does for a command refused at queue time, aborts the transaction at EXEC) anything
//! that would change the connection beyond the transaction: HELLO, AUTH, CLIENT, RESET,
//! subscriptions, denied commands. A queued SELECT is tracked and applied only if it
//! succeeded inside EXEC's reply.

use std::sync::Arc;

use bytes::BytesMut;

use super::blocking::{await_reply, Outcome};
use super::{deny, err_text, Io, Session};
use crate::backend::{DirectConn, Node};
use crate::command::{self, CommandInfo};
use crate::resp::{encode, Frame, Protocol, Request};

/// A session's dedicated transaction connection and what is open on it.
pub(crate) struct Pinned {
    pub(super) conn: DirectConn,
    pub(super) node: Arc<Node>,
    pub(super) in_multi: bool,
    pub(super) watching: bool,
    /// Replies of +QUEUED received in the current MULTI (the index of the next queued command).
    pub(super) queued: usize,
    /// SELECTs queued in the current MULTI: (index in EXEC's reply, database).
    selects: Vec<(usize, u16)>,
    /// A command was refused at queue time: EXEC must abort, as Redis does.
    pub(super) poisoned: bool,
    /// Cluster pools: the slot every keyed command of this transaction must map to, once the
    /// first one chose it.
    pub(super) slot: Option<u16>,
    /// Cluster pools: MULTI and the commands queued since, to replay them on the slot's new
    /// owner when a MOVED shows the transaction was pinned to its former one. `None` once
    /// past [`super::cluster_tx::MAX_DEFERRED_BYTES`] (such a transaction cannot move).
    pub(super) log: Option<super::cluster_tx::TxLog>,
}

pub(super) const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";

impl Session {
    /// Runs one request on the pinned connection, pinning first if needed.
    pub(super) async fn pinned_request(
        &mut self,
        req: Request,
        info: Option<&'static CommandInfo>,
        io: &mut Io,
    ) {
        let name = info.map(|i| i.name).unwrap_or("");
        if name == "quit" {
            self.pinned = None;
            self.closing = true;
            io.out.extend_from_slice(b"+OK\r\n");
            return;
        }
        if name == "reset" {
            // Dropping the connection discards the transaction and its watches on the node.
            self.reset();
            io.out.extend_from_slice(b"+RESET\r\n");
            return;
        }
        if self.aborted_multi(&req, info, io) {
            return;
        }
        if self.pool.cfg.mode() == crate::config::Mode::Cluster
            && self.cluster_transaction_gate(&req, info, io).await
        {
            return;
        }
        let in_multi = self.pinned.as_ref().is_some_and(|p| p.in_multi);
        if in_multi {
            if let Some(refusal) = refused_in_multi(self, &req, info) {
                if let Some(p) = self.pinned.as_mut() {
                    p.poisoned = true;
                }
                encode::error(&mut io.out, &refusal);
                return;
            }
        } else if !matches!(
            name,
            "select" | "multi" | "watch" | "exec" | "discard" | "unwatch"
        ) {
            if self.pinned.is_some() && changes_connection(name, &req) {
                encode::error(
                    &mut io.out,
                    &format!(
                        "ERR sluice: {} while a WATCH is open is not supported through the proxy",
                        String::from_utf8_lossy(req.arg(0)).to_uppercase()
                    ),
                );
                return;
            }
            // Outside MULTI, session commands keep their local meaning (AUTH, CLIENT ...).
            if let Some(reply) = self.local(&req, info) {
                io.out.extend_from_slice(&reply);
                return;
            }
        }
        if self.pinned.is_none() {
            match self.pin(&req, info).await {
                Ok(p) => self.pinned = Some(Box::new(p)),
                Err(e) => {
                    if name == "multi" {
                        // The client is inside its MULTI from now on, whatever we answer:
                        // what it queues must not run outside a transaction. It is queued
                        // here without running and EXEC aborts (see `aborted_multi`).
                        self.deferred_multi = Some(super::cluster_tx::Deferred::aborted());
                    }
                    encode::error(&mut io.out, &err_text(&e.to_string()));
                    return;
                }
            }
        }
        let timeout = self.pool.cfg.request_timeout;
        let Some(pinned) = self.pinned.as_mut() else {
            return;
        };
        if name == "exec" && pinned.in_multi && pinned.poisoned {
            // Redis aborts a transaction that had a command refused at queue time.
            let mut discard = BytesMut::new();
            encode::command(&mut discard, &[b"DISCARD"]);
            let ok = matches!(await_reply(&mut pinned.conn, &discard, io, Some(timeout)).await, Outcome::Reply(ref r) if !r.is_error());
            encode::error(&mut io.out, EXECABORT);
            if ok {
                pinned.end_transaction();
                self.unpin();
            } else {
                self.pinned = None;
            }
            return;
        }
        pinned.node.metrics.writes.increment(1);
        // Only a blocking command outside MULTI may legitimately wait long.
        let blocking = !pinned.in_multi && command::is_blocking(&req, info);
        let mut reply = match await_reply(
            &mut pinned.conn,
            req.raw(),
            io,
            (!blocking).then_some(timeout),
        )
        .await
        {
            Outcome::Reply(r) => r,
            Outcome::Failed(e) => {
                pinned.node.metrics.write_errors.increment(1);
                // The client is still inside its MULTI: what it sends until EXEC must be
                // queued (and EXEC abort), not run at once on a new connection.
                if pinned.in_multi && name != "exec" && name != "discard" {
                    self.deferred_multi = Some(super::cluster_tx::Deferred::aborted());
                }
                self.pinned = None;
                encode::error(&mut io.out, &err_text(&e.to_string()));
                return;
            }
            Outcome::ClientGone => {
                self.pinned = None;
                self.closing = true;
                return;
            }
        };
        if (pinned.in_multi || name == "watch")
            && self.pool.cfg.mode() == crate::config::Mode::Cluster
        {
            // A redirect at queue time: the slot moved (or is moving) under the transaction.
            reply = self.follow_moved_in_multi(&req, reply, io).await;
        }
        io.out.extend_from_slice(&reply.raw);
        let Some(pinned) = self.pinned.as_mut() else {
            return;
        };
        let ok = !reply.is_error();
        match name {
            "multi" if ok => {
                pinned.in_multi = true;
                pinned.queued = 0;
                pinned.selects.clear();
                pinned.poisoned = false;
                if self.pool.cfg.mode() == crate::config::Mode::Cluster {
                    pinned.log = Some(super::cluster_tx::TxLog::new(req.raw()));
                }
            }
            "watch" if ok => pinned.watching = true,
            "exec" | "discard" if pinned.in_multi => {
                // EXEC (whatever its outcome) and DISCARD end the transaction and every watch.
                if name == "exec" {
                    if let Some(db) = applied_select(&reply.raw, &pinned.selects) {
                        pinned.conn.db = db;
                        self.db = db;
                    }
                }
                pinned.end_transaction();
            }
            "unwatch" if !pinned.in_multi => pinned.watching = false,
            "select" if ok && !pinned.in_multi => {
                if let Some(db) =
                    super::local::parse_int(req.arg(1)).and_then(|n| u16::try_from(n).ok())
                {
                    pinned.conn.db = db;
                    self.db = db;
                }
            }
            _ if pinned.in_multi && reply.raw.starts_with(b"+QUEUED") => {
                if name == "select" {
                    if let Some(db) =
                        super::local::parse_int(req.arg(1)).and_then(|n| u16::try_from(n).ok())
                    {
                        pinned.selects.push((pinned.queued, db));
                    }
                }
                pinned.queued += 1;
                if let Some(log) = pinned.log.as_mut() {
                    if !log.push(req.raw()) {
                        pinned.log = None;
                    }
                }
            }
            // A command Redis refused at queue time poisons the transaction on the node too.
            _ if pinned.in_multi && !ok => pinned.poisoned = true,
            _ => {}
        }
        if !pinned.in_multi && !pinned.watching {
            self.unpin();
        }
    }

    /// Takes a dedicated master connection in this client's protocol and database (in a
    /// cluster pool, on the master of `req`'s slot).
    pub(super) async fn pin(
        &mut self,
        req: &Request,
        info: Option<&CommandInfo>,
    ) -> Result<Pinned, String> {
        let node = self.exclusive_node(req, info)?;
        let conn = checkout_in_db(&node, self.proto, self.db).await?;
        Ok(Pinned::for_transaction(conn, node, None))
    }

    /// Ends pinning; a clean connection goes back to its node's pool.
    pub(super) fn unpin(&mut self) {
        if let Some(p) = self.pinned.take() {
            p.node.dedicated.checkin(p.conn);
        }
    }
}

impl Pinned {
    /// A freshly pinned connection with nothing open on it yet.
    pub(super) fn for_transaction(conn: DirectConn, node: Arc<Node>, slot: Option<u16>) -> Pinned {
        Pinned {
            conn,
            node,
            in_multi: false,
            watching: false,
            queued: 0,
            selects: Vec::new(),
            poisoned: false,
            slot,
            log: None,
        }
    }

    fn end_transaction(&mut self) {
        self.log = None;
        self.in_multi = false;
        self.watching = false;
        self.queued = 0;
        self.selects.clear();
        self.poisoned = false;
    }
}

/// Commands that change a connection beyond one reply (so they cannot share a pinned one).
/// (HELLO would switch the session's protocol away from the pinned connection's.)
fn changes_connection(name: &str, req: &Request) -> bool {
    matches!(name, "subscribe" | "psubscribe" | "ssubscribe" | "hello") || deny::is_tunnel(req)
}

/// Why a command may not be queued inside MULTI through the proxy, if so.
pub(super) fn refused_in_multi(
    session: &Session,
    req: &Request,
    info: Option<&'static CommandInfo>,
) -> Option<String> {
    let name = info.map(|i| i.name).unwrap_or("");
    let parent = name.split_once('|').map_or(name, |(p, _)| p);
    if let Some(msg) = deny::check(&session.pool, req) {
        return Some(msg);
    }
    if changes_connection(name, req) || matches!(parent, "client" | "wait" | "auth") {
        return Some(format!(
            "ERR sluice: {} inside MULTI is not supported through the proxy",
            String::from_utf8_lossy(req.arg(0)).to_uppercase()
        ));
    }
    None
}

/// The database a transaction's queued SELECTs left the connection in, judged from EXEC's
/// reply: the last SELECT whose own reply in the array is `+OK`. None when EXEC aborted.
fn applied_select(exec_reply: &[u8], selects: &[(usize, u16)]) -> Option<u16> {
    if selects.is_empty() {
        return None;
    }
    let Ok(Some((Frame::Array(items), _))) = Frame::parse(exec_reply) else {
        return None;
    };
    selects
        .iter()
        .rev()
        .find_map(|&(idx, db)| match items.get(idx) {
            Some(Frame::Simple(s)) if s.as_ref() == b"OK" => Some(db),
            _ => None,
        })
}

/// A dedicated connection to `node` speaking `proto`, switched to database `db`.
pub(super) async fn checkout_in_db(
    node: &Node,
    proto: Protocol,
    db: u16,
) -> Result<DirectConn, String> {
    let mut conn = node
        .dedicated
        .checkout(proto)
        .await
        .map_err(|e| e.to_string())?;
    if conn.db != db {
        let mut sel = BytesMut::new();
        encode::select(&mut sel, db);
        let reply = conn.request(&sel).await.map_err(|e| e.to_string())?;
        if reply.is_error() {
            return Err(format!("sluice: SELECT {db} refused by {}", node.addr));
        }
        conn.db = db;
    }
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::applied_select;

    #[test]
    fn queued_select_applies_only_when_it_succeeded() {
        let ok = b"*2\r\n+OK\r\n+OK\r\n";
        assert_eq!(applied_select(ok, &[(0, 3)]), Some(3));
        let failed = b"*2\r\n-ERR DB index is out of range\r\n+OK\r\n";
        assert_eq!(applied_select(failed, &[(0, 99)]), None);
        assert_eq!(applied_select(b"*-1\r\n", &[(0, 3)]), None);
        assert_eq!(applied_select(b"_\r\n", &[(0, 3)]), None);
        let two = b"*3\r\n+OK\r\n:1\r\n-ERR DB index is out of range\r\n";
        assert_eq!(applied_select(two, &[(0, 2), (2, 99)]), Some(2));
    }
}
