//! MULTI/EXEC and WATCH in cluster pools. A transaction runs on one node, and Redis Cluster
//! requires every keyed command in it to map to one slot. MULTI itself names no key, so the
//! proxy defers it: MULTI and the keyless commands after it are kept here until the first
//! keyed command (or EXEC) picks the node; then the connection is pinned there and they are
//! replayed before that command. A later command on another slot is refused with CROSSSLOT
//! and the transaction aborts at EXEC with EXECABORT, as Redis Cluster would do.

use bytes::{Bytes, BytesMut};

use super::dedicated::{await_reply, checkout_in_db, Outcome};
use super::tx_state::{refused_in_multi, Deferred, Pinned, Tx, TxLog, MAX_DEFERRED_BYTES};
use super::{Io, Session};
use crate::command::{self, CommandInfo, Special};
use crate::resp::{encode, ClientError, ErrorCode, Reply, Request};
use crate::route::cluster::{self as redirect, Redirect, MAX_HOPS};
use crate::route::split::{self, Plan};

impl Session {
    /// A command queued inside a pinned cluster MULTI (or the WATCH that pinned the
    /// connection) was answered with a redirect: the transaction's slot has a new owner.
    /// Nothing has run (Redis only queues until EXEC), so the transaction is discarded there
    /// and replayed on the new owner, and the command's reply comes from there; the client
    /// never sees the MOVED. A transaction with a WATCH
    /// cannot move (the watch lives on the former owner), nor can one whose slot is still
    /// migrating (ASK: some of its keys may not have moved yet): those get a TRYAGAIN
    /// instead of the redirect, and EXEC aborts, so the client can simply retry it.
    pub(super) async fn follow_moved_in_multi(
        &mut self,
        req: &Request,
        mut reply: Reply,
        io: &mut Io,
    ) -> Reply {
        let timeout = self.pool.cfg.request_timeout;
        for _ in 0..MAX_HOPS {
            let slot = match redirect::classify(&reply) {
                Some(Redirect::Moved { slot, .. }) => slot,
                Some(Redirect::Ask { slot, .. }) => return moving(slot, "is migrating"),
                _ => return reply,
            };
            // Inside MULTI the whole transaction must be replayable; outside it (the WATCH
            // that pinned the connection) there is nothing to replay.
            let movable = self
                .tx
                .pinned()
                .is_some_and(|p| !p.watching && (p.log.is_some() || !p.in_multi));
            if !movable {
                return moving(slot, "moved under a WATCH");
            }
            let Some((node, false)) = redirect::redirect_target(&self.pool, &reply).await else {
                return moving(slot, "moved to an unknown node");
            };
            let Some(mut old) = self.tx.take_pinned() else {
                return reply;
            };
            let log = old.log.take();
            // Leave the former owner's connection clean for its next user.
            let mut discard = BytesMut::new();
            encode::command(&mut discard, &[b"DISCARD"]);
            if matches!(await_reply(&mut old.conn, &discard, io, Some(timeout)).await,
                Outcome::Reply(ref r) if !r.is_error())
            {
                old.node.dedicated.checkin(old.conn);
            }
            let moved = async {
                let conn =
                    checkout_in_db(&node, self.proto, self.db, self.dedicated_link()).await?;
                let mut pinned = Pinned::for_transaction(conn, node.clone(), old.slot);
                pinned.poisoned = old.poisoned;
                tokio::time::timeout(timeout, async {
                    if let Some(log) = &log {
                        replay_deferred(&mut pinned, &log.reqs).await?;
                    }
                    pinned.conn.write(req.raw()).await?;
                    Ok::<_, ClientError>(pinned.conn.read().await?)
                })
                .await
                .unwrap_or_else(|_| Err(no_reply_within(&node.addr, timeout)))
                .map(|r| (pinned, r))
            };
            match moved.await {
                Ok((mut pinned, r)) => {
                    pinned.log = log;
                    self.tx = Tx::Pinned(Box::new(pinned));
                    reply = r;
                }
                Err(e) => {
                    // A client inside its MULTI stays there, doomed; but an EXEC that came
                    // back MOVED ended the transaction (Redis discarded it), and its error
                    // is the answer: the client is out of MULTI, as after any EXEC.
                    let exec = Special::of(command::lookup(req)) == Special::Exec;
                    if old.in_multi && !exec {
                        self.tx = Tx::Deferred(Deferred::aborted());
                    }
                    return e.to_reply();
                }
            }
        }
        reply
    }

    /// Answers a request while the client's MULTI is already doomed (a command was refused,
    /// or the transaction's connection failed): queued, as Redis keeps queuing after a
    /// refusal, without reaching any node, until EXEC answers EXECABORT or DISCARD ends it.
    /// False when no such MULTI is open.
    pub(super) fn aborted_multi(
        &mut self,
        req: &Request,
        info: Option<&'static CommandInfo>,
        io: &mut Io,
    ) -> bool {
        if !self.tx.deferred().is_some_and(|d| d.poisoned) {
            return false;
        }
        match Special::of(info) {
            Special::Multi => encode::error(&mut io.out, "ERR MULTI calls can not be nested"),
            Special::Watch => encode::error(&mut io.out, "ERR WATCH inside MULTI is not allowed"),
            Special::Exec => {
                self.tx.drop_deferred();
                ClientError::exec_abort().write_to(&mut io.out);
            }
            Special::Discard => {
                self.tx.drop_deferred();
                io.out.extend_from_slice(b"+OK\r\n");
            }
            _ if refused_in_multi(self, req, info).is_some() => {
                let refusal = refused_in_multi(self, req, info).unwrap_or_default();
                encode::error(&mut io.out, &refusal);
            }
            _ => {
                if let Some(d) = self.tx.deferred_mut() {
                    // Nothing will run: drop what was held.
                    d.reqs = Vec::new();
                    d.bytes = 0;
                }
                io.out.extend_from_slice(b"+QUEUED\r\n");
            }
        }
        true
    }

    /// Runs before a cluster pool's pinned request: answers it here (true) when it is part of
    /// a deferred MULTI or breaks the transaction's slot; otherwise makes sure the session is
    /// pinned to the right node and lets the caller send it (false).
    pub(super) async fn cluster_transaction_gate(
        &mut self,
        req: &Request,
        info: Option<&'static CommandInfo>,
        io: &mut Io,
    ) -> bool {
        let special = Special::of(info);
        let Some(slot) = self.transaction_slot(req, info, io) else {
            return true;
        };
        if self.tx.pinned().is_some() {
            return self.breaks_pinned_slot(slot, io);
        }
        if self.tx.deferred().is_some() {
            if let Some(answered) = self.deferred_request(req, info, slot, io) {
                return answered;
            }
        } else if special == Special::Multi {
            self.tx = Tx::Deferred(Box::new(Deferred {
                reqs: vec![req.raw().clone()],
                bytes: req.raw().len(),
                poisoned: false,
            }));
            io.out.extend_from_slice(b"+OK\r\n");
            return true;
        } else if slot.is_none() && special != Special::Watch {
            // Outside a transaction and keyless (UNWATCH, EXEC without MULTI ...): the
            // normal path answers it.
            return false;
        }
        self.pin_and_replay(req, info, slot, io).await
    }

    /// The slot a command inside a cluster transaction maps to (`Some(None)`: keyless);
    /// `None` when it spans slots, answered here with CROSSSLOT (and the transaction aborts).
    fn transaction_slot(
        &mut self,
        req: &Request,
        info: Option<&'static CommandInfo>,
        io: &mut Io,
    ) -> Option<Option<u16>> {
        match split::plan(req, info) {
            Plan::Single(s) => Some(s),
            Plan::FanOut(_) => Some(None),
            Plan::CrossSlot | Plan::Split(_) => {
                if let Some(p) = self.tx.pinned_mut() {
                    p.poisoned |= p.in_multi;
                }
                if let Some(d) = self.tx.deferred_mut() {
                    d.poisoned = true;
                }
                ClientError::cross_slot().write_to(&mut io.out);
                None
            }
        }
    }

    /// A pinned transaction: a keyed command must map to its slot (or, pinned without one,
    /// to a slot its node owns). True when it does not, answered with CROSSSLOT.
    fn breaks_pinned_slot(&mut self, slot: Option<u16>, io: &mut Io) -> bool {
        let Some(p) = self.tx.pinned_mut() else {
            return false;
        };
        if let Some(s) = slot {
            let same = match p.slot {
                Some(t) => t == s,
                None => {
                    // Pinned by a keyless EXEC-less path: the node must own this slot.
                    let owner = self
                        .pool
                        .topology
                        .load()
                        .cluster
                        .as_ref()
                        .and_then(|m| m.shard(s).map(|sh| sh.master.node.clone()));
                    owner.is_some_and(|o| std::sync::Arc::ptr_eq(&o, &p.node))
                }
            };
            if !same {
                p.poisoned |= p.in_multi;
                ClientError::cross_slot().write_to(&mut io.out);
                return true;
            }
            p.slot = Some(s);
        }
        false
    }

    /// A request while MULTI is deferred: answered here (`Some(true)`) unless it is EXEC or
    /// names the key that picks the node (`None`: pin and replay).
    fn deferred_request(
        &mut self,
        req: &Request,
        info: Option<&'static CommandInfo>,
        slot: Option<u16>,
        io: &mut Io,
    ) -> Option<bool> {
        let special = Special::of(info);
        match special {
            Special::Multi => {
                encode::error(&mut io.out, "ERR MULTI calls can not be nested");
                return Some(true);
            }
            Special::Watch => {
                encode::error(&mut io.out, "ERR WATCH inside MULTI is not allowed");
                return Some(true);
            }
            Special::Discard => {
                self.tx.drop_deferred();
                io.out.extend_from_slice(b"+OK\r\n");
                return Some(true);
            }
            Special::Exec if self.tx.deferred().is_some_and(|d| d.poisoned) => {
                self.tx.drop_deferred();
                ClientError::exec_abort().write_to(&mut io.out);
                return Some(true);
            }
            Special::Exec => {}
            _ => {
                if let Some(refusal) = refused_in_multi(self, req, info) {
                    if let Some(d) = self.tx.deferred_mut() {
                        d.poisoned = true;
                    }
                    encode::error(&mut io.out, &refusal);
                    return Some(true);
                }
            }
        }
        if special != Special::Exec && slot.is_none() {
            if let Some(d) = self.tx.deferred_mut() {
                let size = req.raw().len() + std::mem::size_of::<Bytes>();
                if d.bytes + size > MAX_DEFERRED_BYTES {
                    d.poisoned = true;
                    encode::error(
                        &mut io.out,
                        &format!(
                            "ERR sluice: more than {MAX_DEFERRED_BYTES} bytes of keyless \
                             commands queued before the transaction's first key"
                        ),
                    );
                    return Some(true);
                }
                d.bytes += size;
                // Owned copy: a slice would keep the client's whole read buffer alive.
                d.reqs.push(Bytes::copy_from_slice(req.raw()));
            }
            io.out.extend_from_slice(b"+QUEUED\r\n");
            return Some(true);
        }
        None
    }

    /// Pins to the slot's master (any master for a keyless EXEC) and replays the deferred
    /// MULTI there. True when the request was answered here (pinning or replaying failed).
    async fn pin_and_replay(
        &mut self,
        req: &Request,
        info: Option<&'static CommandInfo>,
        slot: Option<u16>,
        io: &mut Io,
    ) -> bool {
        let special = Special::of(info);
        // Pin to the slot's master (any master for a keyless EXEC) and replay what waited.
        let mut pinned = match self.pin(req, info).await {
            Ok(p) => p,
            Err(e) => {
                // The client is still inside its MULTI until EXEC or DISCARD: keep it, and
                // abort it at EXEC as Redis does for a command refused at queue time.
                match self.tx.deferred_mut() {
                    Some(d) if special != Special::Exec => d.poisoned = true,
                    _ => self.tx.drop_deferred(),
                }
                e.write_to(&mut io.out);
                return true;
            }
        };
        pinned.slot = slot;
        if let Some(replay) = self.tx.take_deferred() {
            // Bounded like any request on the pinned connection (a node that stopped
            // answering must not hold the client forever).
            let timeout = self.pool.cfg.request_timeout;
            let replayed =
                tokio::time::timeout(timeout, replay_deferred(&mut pinned, &replay.reqs))
                    .await
                    .unwrap_or_else(|_| Err(no_reply_within(&pinned.node.addr, timeout)));
            match replayed {
                // A command refused before the node was known aborts the transaction too.
                Ok(()) => {
                    pinned.poisoned |= replay.poisoned;
                    pinned.log = Some(TxLog {
                        bytes: replay.bytes,
                        reqs: replay.reqs,
                    });
                }
                Err(e) => {
                    if special != Special::Exec {
                        self.tx = Tx::Deferred(Box::new(Deferred {
                            poisoned: true,
                            ..*replay
                        }));
                    }
                    e.write_to(&mut io.out);
                    return true;
                }
            }
        }
        self.tx = Tx::Pinned(Box::new(pinned));
        false
    }
}

/// The error shown instead of a redirect that a transaction cannot follow: retryable, and
/// the transaction aborts at EXEC (Redis flags a transaction that saw a redirect).
fn moving(slot: u16, why: &str) -> Reply {
    ClientError::new(
        ErrorCode::TryAgain,
        format!("sluice: slot {slot} {why} during the transaction; retry the transaction"),
    )
    .to_reply()
}

/// A node that did not answer a transaction's replay within `timeout`.
fn no_reply_within(addr: &str, timeout: std::time::Duration) -> ClientError {
    ClientError::err(format!(
        "sluice: no reply from {addr} within {} ms",
        timeout.as_millis()
    ))
}

/// Sends the deferred MULTI and its queued keyless commands on the newly pinned connection.
async fn replay_deferred(pinned: &mut Pinned, replay: &[Bytes]) -> Result<(), ClientError> {
    let mut out = BytesMut::new();
    for raw in replay {
        out.extend_from_slice(raw);
    }
    pinned.conn.write(&out).await?;
    for (i, _) in replay.iter().enumerate() {
        let reply = pinned.conn.read().await?;
        if i == 0 {
            if reply.is_error() {
                return Err(ClientError::err(format!(
                    "sluice: MULTI refused by {}: {}",
                    pinned.node.addr,
                    String::from_utf8_lossy(&reply.raw).trim_end()
                )));
            }
            pinned.in_multi = true;
            pinned.queued = 0;
        } else if reply.is_error() {
            pinned.poisoned = true;
        } else {
            pinned.queued += 1;
        }
    }
    Ok(())
}
