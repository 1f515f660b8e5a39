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

use bytes::BytesMut;

use super::dedicated::{await_reply, Outcome};
use super::tx_state::{changes_connection, refused_in_multi, Deferred, Pinned, Tx, TxLog};
use super::{Io, Session};
use crate::command::{self, CommandInfo, Special};
use crate::resp::{encode, ClientError, Frame, Reply, Request};

impl Session {
    /// Runs one request on the pinned connection, pinning first if needed.
    pub(crate) async fn pinned_request(
        &mut self,
        req: Request,
        info: Option<&'static CommandInfo>,
        io: &mut Io,
    ) {
        if self.answered_before_pinning(&req, info, io).await {
            return;
        }
        let special = Special::of(info);
        if self.tx.pinned().is_none() {
            match self.pin(&req, info).await {
                Ok(p) => self.tx = Tx::Pinned(Box::new(p)),
                Err(e) => {
                    if special == Special::Multi {
                        // The client is inside its MULTI from now on, whatever we answer:
                        // what it queues must not run outside a transaction. It is queued
                        // here without running and EXEC aborts (see `aborted_multi`).
                        self.tx = Tx::Deferred(Deferred::aborted());
                    }
                    e.write_to(&mut io.out);
                    return;
                }
            }
        }
        let in_multi = self.tx.pinned().is_some_and(|p| p.in_multi);
        if special == Special::Exec && self.tx.pinned().is_some_and(|p| p.in_multi && p.poisoned) {
            self.abort_poisoned_exec(io).await;
            return;
        }
        if in_multi && special == Special::ClientPause {
            self.queue_pause(req, info, io).await;
            return;
        }
        self.run_pinned(req, info, io).await;
    }

    /// The answers given without the pinned connection: QUIT, RESET, a lost or deferred
    /// MULTI, a cluster transaction's slot checks, nested MULTI/WATCH, commands refused inside
    /// MULTI or while a WATCH is open, WAIT and session commands outside MULTI. True when
    /// `req` was answered.
    async fn answered_before_pinning(
        &mut self,
        req: &Request,
        info: Option<&'static CommandInfo>,
        io: &mut Io,
    ) -> bool {
        let special = Special::of(info);
        if special == Special::Quit {
            self.tx.drop_pinned();
            self.closing = true;
            io.out.extend_from_slice(b"+OK\r\n");
            return true;
        }
        if special == Special::Reset {
            // Dropping the connection discards the transaction and its watches on the node.
            self.reset();
            io.out.extend_from_slice(b"+RESET\r\n");
            return true;
        }
        if self.aborted_multi(req, info, io) {
            return true;
        }
        if self.pool.routing.by_slot() && self.cluster_transaction_gate(req, info, io).await {
            return true;
        }
        let in_multi = self.tx.pinned().is_some_and(|p| p.in_multi);
        if in_multi && matches!(special, Special::Multi | Special::Watch) {
            // Redis refuses these inside MULTI without flagging the transaction: EXEC still
            // runs it. (Forwarded, the node's error would poison it here.)
            encode::error(&mut io.out, nested_multi_error(special));
            return true;
        }
        if in_multi {
            let Some(refusal) = refused_in_multi(self, req, info) else {
                return false;
            };
            if let Some(p) = self.tx.pinned_mut() {
                p.poisoned = true;
            }
            encode::error(&mut io.out, &refusal);
            return true;
        }
        if matches!(
            special,
            Special::Select
                | Special::Multi
                | Special::Watch
                | Special::Exec
                | Special::Discard
                | Special::Unwatch
        ) {
            return false;
        }
        if self.tx.pinned().is_some() && changes_connection(special) {
            encode::error(
                &mut io.out,
                &format!(
                    "ERR sluice: {} while a WATCH is open is not supported through the proxy",
                    String::from_utf8_lossy(req.arg(0)).to_uppercase()
                ),
            );
            return true;
        }
        if special == Special::Wait {
            // With a WATCH open as without: the writes it counts are all answered by now.
            let reply = self.wait_replicas(req, io).await;
            io.out.extend_from_slice(&reply);
            return true;
        }
        // Outside MULTI, session commands keep their local meaning (AUTH, CLIENT ...).
        match self.local(req, info) {
            Some(reply) => {
                io.out.extend_from_slice(&reply);
                true
            }
            None => false,
        }
    }

    /// EXEC of a transaction that had a command refused at queue time: Redis aborts it.
    async fn abort_poisoned_exec(&mut self, io: &mut Io) {
        let timeout = self.pool.cfg.request_timeout;
        let Some(pinned) = self.tx.pinned_mut() else {
            return;
        };
        let mut discard = BytesMut::new();
        encode::command(&mut discard, &[b"DISCARD"]);
        let ok = matches!(await_reply(&mut pinned.conn, &discard, io, Some(timeout)).await, Outcome::Reply(ref r) if !r.is_error());
        ClientError::exec_abort().write_to(&mut io.out);
        if ok {
            pinned.end_transaction();
            self.unpin();
        } else {
            self.tx.drop_pinned();
        }
    }

    /// Sends `req` on the pinned connection and tracks what its reply opened or closed.
    pub(super) async fn run_pinned(
        &mut self,
        req: Request,
        info: Option<&'static CommandInfo>,
        io: &mut Io,
    ) {
        let special = Special::of(info);
        let timeout = self.pool.cfg.request_timeout;
        let write = self.paused_by_write(&req, info);
        let Some(pinned) = self.tx.pinned_mut() else {
            return;
        };
        pinned.node.metrics.writes.increment(1);
        if special == Special::Exec && pinned.in_multi && pinned.slowlog_reset {
            self.pool.registry.slowlog.reset();
        }
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
                if pinned.in_multi && !matches!(special, Special::Exec | Special::Discard) {
                    self.tx = Tx::Deferred(Deferred::aborted());
                }
                self.tx.drop_pinned();
                ClientError::from(e).write_to(&mut io.out);
                return;
            }
            Outcome::ClientGone => {
                self.tx.drop_pinned();
                self.closing = true;
                return;
            }
        };
        if (pinned.in_multi || special == Special::Watch) && self.pool.routing.by_slot() {
            // A redirect at queue time: the slot moved (or is moving) under the transaction.
            reply = self.follow_moved_in_multi(&req, reply, io).await;
        }
        if special == Special::Exec {
            self.run_queued_pauses(&mut reply);
        }
        io.out.extend_from_slice(&reply.raw);
        let Some(pinned) = self.tx.pinned_mut() else {
            return;
        };
        let cluster = self.pool.routing.by_slot();
        if cluster && special == Special::Exec && pinned.slot.is_some() {
            self.last_write_slot = pinned.slot;
        }
        if pinned.in_multi && write && reply.raw.starts_with(b"+QUEUED") {
            pinned.writes = true;
        }
        if let Some(db) = pinned.after_reply(special, &req, &reply, cluster) {
            self.db = db;
        }
        if !pinned.in_multi && !pinned.watching {
            self.unpin();
        }
    }
}

impl Pinned {
    /// Tracks what a reply on the pinned connection opened or closed (MULTI, WATCH, EXEC,
    /// DISCARD, UNWATCH, SELECT, queued commands). Returns the database the connection is in
    /// now when the reply changed it.
    fn after_reply(
        &mut self,
        special: Special,
        req: &Request,
        reply: &Reply,
        cluster: bool,
    ) -> Option<u16> {
        let mut db_now = None;
        let ok = !reply.is_error();
        match special {
            Special::Multi if ok => {
                self.in_multi = true;
                self.queued = 0;
                self.selects.clear();
                self.poisoned = false;
                if cluster {
                    self.log = Some(TxLog::new(req.raw()));
                }
            }
            Special::Watch if ok => self.watching = true,
            Special::Exec | Special::Discard if self.in_multi => {
                // EXEC (whatever its outcome) and DISCARD end the transaction and every watch.
                if special == Special::Exec {
                    if let Some(db) = applied_select(&reply.raw, &self.selects) {
                        self.conn.db = db;
                        db_now = Some(db);
                    }
                }
                self.end_transaction();
            }
            Special::Unwatch if !self.in_multi => self.watching = false,
            Special::Select if ok && !self.in_multi => {
                if let Some(db) =
                    super::local::parse_int(req.arg(1)).and_then(|n| u16::try_from(n).ok())
                {
                    self.conn.db = db;
                    db_now = Some(db);
                }
            }
            _ if self.in_multi && reply.raw.starts_with(b"+QUEUED") => {
                if special == Special::Slowlog && req.arg(1).eq_ignore_ascii_case(b"reset") {
                    self.slowlog_reset = true;
                }
                if special == Special::Select {
                    if let Some(db) =
                        super::local::parse_int(req.arg(1)).and_then(|n| u16::try_from(n).ok())
                    {
                        self.selects.push((self.queued, db));
                    }
                }
                self.queued += 1;
                if let Some(log) = self.log.as_mut() {
                    if !log.push(req.raw()) {
                        self.log = None;
                    }
                }
            }
            // A command Redis refused at queue time poisons the transaction on the node too,
            // so a standalone node answers EXEC itself, with its own reason when EXEC itself
            // is refused (`EXECABORT ... because of: BUSY ...` while a script runs). A cluster
            // transaction may be replayed on another node (see `follow_moved_in_multi`),
            // which would not know: the proxy remembers and aborts EXEC itself.
            _ if self.in_multi && !ok && cluster => self.poisoned = true,
            _ => {}
        }
        db_now
    }
}

/// Redis's answer to MULTI or WATCH inside MULTI (the transaction stays valid).
fn nested_multi_error(special: Special) -> &'static str {
    if special == Special::Multi {
        "ERR MULTI calls can not be nested"
    } else {
        "ERR WATCH inside MULTI is not allowed"
    }
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
