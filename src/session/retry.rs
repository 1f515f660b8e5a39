//! A forwarded request's outcome: the retry rules in standalone and sentinel pools as a
//! pure decision (cluster pools follow redirects instead: `route::cluster::needs_follow`).
//! The session carries out what [`on_reply`] decides; the rules are unit-tested here without
//! sockets.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{write_reply, Io, Pending, Session, Waiting};
use crate::backend::mux::ReplyResult;
use crate::backend::{per_user, BackendError, Node};
use crate::config::Consistency;
use crate::resp::{ClientError, Reply, ReplyShape};
use crate::route::RouteError;
use crate::topology::Topology;

/// What came back for a forwarded request, as far as the retry rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReplyClass {
    /// Any reply the rules leave alone (a value, or an error the client must see).
    Plain,
    /// `LOADING` or `MASTERDOWN`: the node cannot serve yet; the request did not run.
    NotServing,
    /// `NOSCRIPT`: the node lacks a script (replicas miss SCRIPT LOAD).
    NoScript,
    /// `READONLY`: a write reached a node that is no longer the master; it did not run.
    ReadOnly,
    /// No reply: the connection failed or timed out.
    Failed,
}

impl ReplyClass {
    /// Classifies a node's answer.
    pub(super) fn of(res: &ReplyResult) -> ReplyClass {
        match res {
            Err(_) => ReplyClass::Failed,
            Ok(r) if r.is_error_with(b"LOADING") || r.is_error_with(b"MASTERDOWN") => {
                ReplyClass::NotServing
            }
            Ok(r) if r.is_error_with(b"NOSCRIPT") => ReplyClass::NoScript,
            Ok(r) if r.is_error_with(b"READONLY") => ReplyClass::ReadOnly,
            Ok(_) => ReplyClass::Plain,
        }
    }
}

/// What the session does with the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// Write the reply to the client (a failure: the error).
    Deliver,
    /// A read that did not run: send it to another node of the read pool, or deliver the
    /// reply when there is no other.
    ReadElsewhere,
    /// A read whose replica lacks the script: send it to the master, or deliver the reply
    /// when the master is the node that answered.
    ReadOnMaster,
    /// A write refused by a demoted master: send it to the confirmed master (waiting for one
    /// within `master_wait`).
    WriteOnNewMaster,
    /// A read whose connection failed (it changes nothing even if it ran): send it to another
    /// node, or wait for a replica when it was the only one; fail when neither is possible.
    RetryRead,
}

/// The retry rule for one outcome. Each request is retried at most once (`retried`); only
/// pools that follow failovers (`follows_failovers`: sentinel) retry a READONLY write, since
/// a standalone pool's master never changes.
pub(super) fn on_reply(
    class: ReplyClass,
    read: bool,
    retried: bool,
    follows_failovers: bool,
) -> Action {
    if retried {
        return Action::Deliver;
    }
    match class {
        ReplyClass::NotServing if read => Action::ReadElsewhere,
        ReplyClass::NoScript if read => Action::ReadOnMaster,
        ReplyClass::ReadOnly if !read && follows_failovers => Action::WriteOnNewMaster,
        ReplyClass::Failed if read => Action::RetryRead,
        _ => Action::Deliver,
    }
}

impl Session {
    /// Handles a finished forward: writes the reply, or retries a read that failed without
    /// running (the retried request goes back to the head of the queue).
    pub(super) fn complete(
        &mut self,
        w: Waiting,
        res: Result<ReplyResult, ()>,
        pending: &mut VecDeque<Pending>,
        io: &mut Io,
    ) {
        if let Ok(Ok(reply)) = &res {
            self.learn_reply_size(reply.raw.len());
        }
        let (w, res) = match self.fence_reply(w, res, pending, io) {
            Some(both) => both,
            None => return,
        };
        if w.silent {
            // Whatever this reply writes (a retry writes nothing yet) is dropped.
            let mark = io.out.len();
            self.complete_reply(w, res, pending, io);
            io.out.truncate(mark);
        } else {
            self.complete_reply(w, res, pending, io);
        }
    }

    /// A tracking client's reply from a node that may evict waits at the node's fence (see
    /// `tracking::fence`) and takes its place again at the head of the queue (`None`); once
    /// past it, the invalidations that came meanwhile are written before it.
    fn fence_reply(
        &mut self,
        w: Waiting,
        res: Result<ReplyResult, ()>,
        pending: &mut VecDeque<Pending>,
        io: &mut Io,
    ) -> Option<(Waiting, Result<ReplyResult, ()>)> {
        if !self.tracking.is_on() {
            return Some((w, res));
        }
        if w.fenced {
            self.write_notes_now(&mut io.out);
            return Some((w, res));
        }
        let Some(fence) = self.pool.registry.tracking.eviction_fence(&w.node) else {
            return Some((w, res));
        };
        let Ok(reply) = res else {
            return Some((w, res));
        };
        // The replies from the same node already here behind it came before the PING this
        // ticket sends: they pass with it (a pipeline pays one round trip, not one each).
        for p in pending.iter_mut() {
            match p {
                Pending::Ready(_) => {}
                Pending::Wait(next) if Arc::ptr_eq(&next.node, &w.node) && !next.rx.is_empty() => {
                    next.fenced = true
                }
                Pending::Wait(_) => break,
            }
        }
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            fence.pass().await;
            let _ = tx.send(reply);
        });
        pending.push_front(Pending::Wait(Waiting {
            rx,
            fenced: true,
            ..w
        }));
        None
    }

    /// [`Session::complete`] for a reply the client wants.
    fn complete_reply(
        &mut self,
        w: Waiting,
        res: Result<ReplyResult, ()>,
        pending: &mut VecDeque<Pending>,
        io: &mut Io,
    ) {
        let res = res.unwrap_or_else(|_| {
            Err(BackendError::ConnectionLost {
                addr: w.node.addr.clone(),
                reason: "request dropped".into(),
            })
        });
        // Cluster pools: redirects and failed sends are followed by `route::cluster`; the
        // single-node retries below (which pick from the whole pool) do not apply.
        let w = if self.pool.routing.by_slot() {
            if !w.retried && crate::route::cluster::needs_follow(&res, w.read) {
                self.follow_redirect(w, res, pending);
                return;
            }
            Waiting { retried: true, ..w }
        } else {
            w
        };
        let follows_failovers = self.pool.routing.follows_failovers();
        let action = on_reply(ReplyClass::of(&res), w.read, w.retried, follows_failovers);
        match (action, res) {
            (Action::ReadElsewhere, Ok(reply)) => {
                // A replica that restarted answers LOADING (or MASTERDOWN while it cannot
                // serve stale data) until its next probe takes it out of the read pool: the
                // read did not run, so try another node rather than show the client an error.
                let topo = self.pool.topology.load();
                match self.route_read(&topo, Some(&w.node)) {
                    Ok(node) if !Arc::ptr_eq(&node, &w.node) => {
                        drop(topo);
                        self.retry(w, node, pending);
                    }
                    _ => write_reply(&reply, &w, &mut io.out),
                }
            }
            (Action::ReadOnMaster, Ok(reply)) => {
                // Redis 7 does not replicate SCRIPT LOAD: a replica that joined after the load
                // (or missed our fan-out) lacks the script the master has. Ask the master.
                let topo = self.pool.topology.load();
                match self.pool.router.master(&topo) {
                    Ok(master) if !Arc::ptr_eq(&master, &w.node) => {
                        drop(topo);
                        self.retry(w, master, pending);
                    }
                    _ => write_reply(&reply, &w, &mut io.out),
                }
            }
            // The node was demoted by a failover: the write did not run. Send it to the
            // confirmed master (waiting for one, within `master_wait`) instead of showing
            // the client a READONLY it cannot act on.
            (Action::WriteOnNewMaster, Ok(reply)) => self.retry_write_on_master(w, reply, pending),
            (_, Ok(reply)) => self.deliver(w, reply, io),
            (Action::RetryRead, Err(e)) => {
                let topo = self.pool.topology.load();
                match self.route_read(&topo, Some(&w.node)) {
                    Ok(node) => {
                        drop(topo);
                        self.retry(w, node, pending);
                    }
                    // It was the only replica: wait for one to be back.
                    Err(RouteError::NoReplica(_)) => {
                        drop(topo);
                        self.retry_read_when_routable(w, e, pending);
                    }
                    Err(_) => {
                        drop(topo);
                        self.fail(w, e, io);
                    }
                }
            }
            (_, Err(e)) => self.fail(w, e, io),
        }
    }

    /// Writes a node's reply to the client, settling the write barrier and the latency sample.
    fn deliver(&mut self, w: Waiting, reply: Reply, io: &mut Io) {
        let _ = self.pool.registry.slowlog.finish(w.taken, &w.raw, self);
        if !w.read {
            self.inflight_writes = self.inflight_writes.saturating_sub(1);
            if self.pool.cfg.consistency == Consistency::ReadYourWrites {
                self.last_write_ack = Some(Instant::now());
            }
        }
        if let Some(started) = w.started {
            self.pool
                .metrics
                .latency
                .record(started.elapsed().as_secs_f64());
        }
        let info_text = matches!(w.shape, ReplyShape::ProxyInfo | ReplyShape::AmendedInfo)
            .then(|| super::info::reply_text(&reply.raw))
            .flatten();
        match info_text {
            Some(text) => {
                // The master's sections with the pool's client figures; for INFO
                // [all|everything], then the proxy's own sections.
                let registry = &self.pool.registry;
                let all = super::tracking::info_with_proxy_stats(text, &registry.tracking);
                let (connected, paused) = (registry.connected(), registry.pause.waiting());
                let mut all = super::info::with_pool_clients(all, connected, paused);
                if w.shape == ReplyShape::ProxyInfo {
                    all.extend_from_slice(b"\r\n");
                    all.extend_from_slice(super::info::sections(&self.pool).as_bytes());
                }
                super::info::encode_text(&all, w.proto, &mut io.out);
            }
            None => write_reply(&reply, &w, &mut io.out),
        }
    }

    /// Answers a forward whose node failed with the failure, counted against the node.
    fn fail(&mut self, w: Waiting, e: BackendError, io: &mut Io) {
        if w.read {
            w.node.metrics.read_errors.increment(1);
        } else {
            self.inflight_writes = self.inflight_writes.saturating_sub(1);
            w.node.metrics.write_errors.increment(1);
        }
        ClientError::from(e).write_to(&mut io.out);
    }

    /// Sends a read again, to `node`, as the new head of the queue (same database, protocol
    /// and position in the client's order).
    fn retry(&self, w: Waiting, node: Arc<Node>, pending: &mut VecDeque<Pending>) {
        self.pool.metrics.retries.increment(1);
        node.metrics.reads.increment(1);
        let rx = self.send_to(&node, w.raw.clone(), w.db, w.patience());
        pending.push_front(Pending::Wait(Waiting {
            rx,
            node,
            retried: true,
            fenced: false,
            ..w
        }));
    }

    /// Where a read goes. With read-your-writes, a client with a write still in flight reads
    /// from the master (same connection, so after its write), and one whose writes are
    /// acknowledged reads only from replicas known to hold them; everyone else is spread.
    pub(super) fn route_read(
        &self,
        topo: &Topology,
        avoid: Option<&Node>,
    ) -> Result<Arc<Node>, RouteError> {
        if self.pool.cfg.consistency == Consistency::ReadYourWrites {
            if self.inflight_writes > 0 {
                return self.pool.router.master(topo);
            }
            if let Some(acked) = self.last_write_ack {
                return self.pool.router.read_own_writes(topo, acked);
            }
        }
        self.pool.router.read(topo, avoid)
    }

    /// Sends a write that a demoted master refused to the current master, from a task that
    /// waits (up to `master_wait`) for one to be confirmed. It stays at the head of the
    /// client's queue, so replies keep their order; if no new master appears in time the
    /// client gets the original READONLY.
    fn retry_write_on_master(&self, w: Waiting, refused: Reply, pending: &mut VecDeque<Pending>) {
        let (tx, rx) = oneshot::channel();
        let pool = self.pool.clone();
        let (raw, db, slot, old) = (w.raw.clone(), w.db, self.slot(), w.node.clone());
        let patience = w.patience();
        let link = self.link().cloned();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + pool.cfg.master_wait;
            loop {
                let master = pool.router.master(&pool.topology.load()).ok();
                if let Some(m) = master.filter(|m| !Arc::ptr_eq(m, &old)) {
                    m.metrics.writes.increment(1);
                    let sent = per_user::send(link.as_deref(), &m, raw, db, slot, patience);
                    let reply = sent.await.unwrap_or_else(|_| {
                        Err(BackendError::ConnectionLost {
                            addr: m.addr.clone(),
                            reason: "request dropped".into(),
                        })
                    });
                    let _ = tx.send(reply);
                    return;
                }
                if tokio::time::Instant::now() >= deadline {
                    let _ = tx.send(Ok(refused));
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        self.pool.metrics.retries.increment(1);
        pending.push_front(Pending::Wait(Waiting {
            rx,
            retried: true,
            fenced: false,
            ..w
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendError;
    use crate::resp::Reply;
    use bytes::Bytes;

    fn reply(raw: &'static [u8]) -> ReplyResult {
        Ok(Reply::new(Bytes::from_static(raw), false))
    }

    #[test]
    fn replies_are_classified_by_their_error_code() {
        assert_eq!(ReplyClass::of(&reply(b"$1\r\nx\r\n")), ReplyClass::Plain);
        assert_eq!(
            ReplyClass::of(&reply(b"-ERR wrong type\r\n")),
            ReplyClass::Plain
        );
        assert_eq!(
            ReplyClass::of(&reply(b"-LOADING Redis is loading\r\n")),
            ReplyClass::NotServing
        );
        assert_eq!(
            ReplyClass::of(&reply(b"-MASTERDOWN Link with MASTER is down\r\n")),
            ReplyClass::NotServing
        );
        assert_eq!(
            ReplyClass::of(&reply(b"-NOSCRIPT No matching script\r\n")),
            ReplyClass::NoScript
        );
        assert_eq!(
            ReplyClass::of(&reply(b"-READONLY You can't write\r\n")),
            ReplyClass::ReadOnly
        );
        let lost = Err(BackendError::ConnectionLost {
            addr: "n:1".into(),
            reason: "reset".into(),
        });
        assert_eq!(ReplyClass::of(&lost), ReplyClass::Failed);
    }

    #[test]
    fn reads_that_did_not_run_go_elsewhere_once() {
        use ReplyClass::*;
        assert_eq!(
            on_reply(NotServing, true, false, false),
            Action::ReadElsewhere
        );
        assert_eq!(on_reply(NoScript, true, false, true), Action::ReadOnMaster);
        assert_eq!(on_reply(Failed, true, false, false), Action::RetryRead);
        // Once retried, whatever comes back is the answer.
        for class in [NotServing, NoScript, Failed, ReadOnly, Plain] {
            assert_eq!(on_reply(class, true, true, true), Action::Deliver);
            assert_eq!(on_reply(class, false, true, true), Action::Deliver);
        }
        assert_eq!(on_reply(Plain, true, false, true), Action::Deliver);
    }

    #[test]
    fn writes_are_retried_only_after_a_failover_refusal() {
        use ReplyClass::*;
        assert_eq!(
            on_reply(ReadOnly, false, false, true),
            Action::WriteOnNewMaster
        );
        // A standalone master is never replaced: its READONLY is the answer.
        assert_eq!(on_reply(ReadOnly, false, false, false), Action::Deliver);
        // A write may have run when its connection failed: never re-sent.
        assert_eq!(on_reply(Failed, false, false, true), Action::Deliver);
        // LOADING/NOSCRIPT on a write come from the master itself: shown as they are.
        assert_eq!(on_reply(NotServing, false, false, true), Action::Deliver);
        assert_eq!(on_reply(NoScript, false, false, true), Action::Deliver);
        // A read is never sent to "the new master" for READONLY (reads do not get it).
        assert_eq!(on_reply(ReadOnly, true, false, true), Action::Deliver);
    }
}
