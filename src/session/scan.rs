//! SCAN, SSCAN, HSCAN and ZSCAN in pools that read from replicas.
//!
//! Two replicas of one master iterate in different orders (their hash tables differ), so a
//! cursor one of them issued means nothing on the other: sent round-robin, a walk misses and
//! repeats keys. Here the proxy's cursor names the node that issued it (the layout of the
//! cluster pools' SCAN cursor, see `route::scan::sticky`) and every call of a walk goes back
//! to that node. When that node has left the read pool (or fails the call), the walk goes on
//! from the start on another node: SCAN allows repeats, never misses.
//!
//! Standalone and sentinel pools walk the pool's nodes (SCAN included); cluster pools walk
//! the nodes of the key's shard (SSCAN/HSCAN/ZSCAN; their SCAN walks the masters, see
//! `session::cluster`).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::cluster::spawn_reply;
use super::{error_bytes, Pending, Session};
use crate::backend::mux::ReplyResult;
use crate::backend::per_user::Via;
use crate::backend::Patience;
use crate::backend::{BackendError, Node};
use crate::command::CommandInfo;
use crate::config::ReadFrom;
use crate::pool::Pool;
use crate::resp::{Reply, Request};
use crate::route::cluster as redirect;
use crate::route::scan::{self, sticky};
use crate::route::RouteError;
use crate::topology::{NodeView, Topology};

/// Where the cursor is among a `*SCAN` command's arguments, for the commands walked here.
pub(super) fn cursor_arg(info: Option<&CommandInfo>) -> Option<usize> {
    match info?.name {
        "scan" => Some(1),
        "sscan" | "hscan" | "zscan" => Some(2),
        _ => None,
    }
}

/// The nodes a walk may run on.
#[derive(Clone, Copy)]
pub(super) enum Scope {
    /// A standalone or sentinel pool: the master and its replicas.
    Pool,
    /// A cluster pool: the shard serving this slot.
    Slot(u16),
}

impl Scope {
    /// The master (when known), the replicas, and the replicas in the read pool.
    fn views(self, topo: &Topology) -> (Option<&NodeView>, &[NodeView], &[Arc<Node>]) {
        match self {
            Scope::Pool => (topo.master.as_ref(), &topo.replicas, &topo.readable),
            Scope::Slot(slot) => match topo.cluster.as_ref().and_then(|m| m.shard(slot)) {
                Some(s) => (Some(&s.master), &s.replicas, &s.readable),
                None => (None, &[], &[]),
            },
        }
    }

    /// The nodes in cursor order: the master, when known, then every replica.
    fn nodes(self, topo: &Topology) -> Vec<&Arc<Node>> {
        let (master, replicas, _) = self.views(topo);
        master
            .into_iter()
            .chain(replicas)
            .map(|v| &v.node)
            .collect()
    }

    /// True when a walk may go on on `node`: a replica still in the read pool, or the
    /// master where the master serves reads too; and reachable.
    fn may_serve(self, topo: &Topology, read_from: ReadFrom, node: &Arc<Node>) -> bool {
        let (master, _, readable) = self.views(topo);
        let in_pool = readable.iter().any(|n| Arc::ptr_eq(n, node));
        let is_master = master.is_some_and(|m| Arc::ptr_eq(&m.node, node));
        (in_pool || (is_master && read_from != ReadFrom::Replica)) && node.is_connected()
    }

    /// A node for a read under the read policy, skipping `avoid`.
    fn route(
        self,
        pool: &Pool,
        topo: &Topology,
        avoid: Option<&Node>,
    ) -> Result<Arc<Node>, RouteError> {
        match self {
            Scope::Pool => pool.router.read(topo, avoid),
            Scope::Slot(slot) => match topo.cluster.as_ref() {
                Some(map) => pool.router.cluster(map, Some(slot), true, avoid),
                None => Err(RouteError::SlotNotServed),
            },
        }
    }

    /// `node`'s place in the list, with its address, for the cursor (`None`: not listed).
    fn place<'n>(self, topo: &Topology, node: &'n Node) -> Option<(usize, &'n str)> {
        let i = self
            .nodes(topo)
            .iter()
            .position(|n| std::ptr::eq(n.as_ref(), node))?;
        Some((i, node.addr.as_str()))
    }
}

impl Session {
    /// Dispatches a `*SCAN` whose cursor argument is `at` (see [`cursor_arg`]) over the
    /// nodes of `scope`; the `may_hold` contract is [`Session::dispatch`]'s: with no node to
    /// read from, the request is handed back to wait for one.
    pub(super) fn dispatch_scan(
        &mut self,
        req: Request,
        info: Option<&'static CommandInfo>,
        (at, scope): (usize, Scope),
        pending: &mut VecDeque<Pending>,
        may_hold: bool,
    ) -> Option<Request> {
        if req.len() <= at {
            let name = info.map_or("scan", |i| i.name);
            pending.push_back(Pending::Ready(error_bytes(&format!(
                "ERR wrong number of arguments for '{name}' command"
            ))));
            return None;
        }
        let Some(cursor) = sticky::decode(req.arg(at)) else {
            pending.push_back(Pending::Ready(error_bytes("ERR invalid cursor")));
            return None;
        };
        let topo = self.pool.topology.load();
        let list = scope.nodes(&topo);
        let addrs: Vec<&str> = list.iter().map(|n| n.addr.as_str()).collect();
        let resumed = sticky::find(cursor, &addrs)
            .map(|i| list[i].clone())
            .filter(|n| scope.may_serve(&topo, self.pool.cfg.read_from, n));
        let (node, node_cursor) = match (resumed, cursor) {
            (Some(n), sticky::At::Node { node, .. }) => (n, node),
            // A new walk, or its node left the read pool: from the start on a node the read
            // policy picks.
            _ => {
                let routed = match scope {
                    Scope::Pool => self.route_read(&topo, None),
                    Scope::Slot(_) => scope.route(&self.pool, &topo, None),
                };
                match routed {
                    Ok(n) => (n, 0),
                    Err(RouteError::NoReplica(_)) if may_hold => return Some(req),
                    Err(e) => {
                        self.pool.metrics.errors.increment(1);
                        pending.push_back(Pending::Ready(error_bytes(&e.to_string())));
                        return None;
                    }
                }
            }
        };
        drop(list);
        drop(topo);
        node.metrics.reads.increment(1);
        let db = self.db;
        let call = Call {
            pool: self.pool.clone(),
            scope,
            restart: scan::request_at(&req, at, 0),
            db,
            via: self.via(),
        };
        // Sent here, not from the task: the client's later requests to this node must not
        // overtake it on the connection.
        let sent = self.send_to(
            &node,
            scan::request_at(&req, at, node_cursor),
            db,
            Patience::Bounded,
        );
        let rx = spawn_reply(call.run(node.clone(), sent));
        self.queue(req, info, rx, node, true, None, true, pending);
        None
    }
}

/// One call of a walk, run on its own task: the node's reply with the cursor folded in.
struct Call {
    pool: Arc<Pool>,
    scope: Scope,
    /// The request with cursor 0, for a walk that must start over on another node.
    restart: Bytes,
    db: u16,
    /// The client's connections (its own user's in passthrough pools).
    via: Via,
}

impl Call {
    /// Awaits `sent` (the request with the node's own cursor, sent to `node`).
    async fn run(self, node: Arc<Node>, sent: oneshot::Receiver<ReplyResult>) -> ReplyResult {
        let first = sent.await.unwrap_or_else(|_| dropped(&node));
        if let Scope::Slot(slot) = self.scope {
            if redirect::needs_follow(&first, true) {
                // The key moved, or the node failed: the walk starts over wherever the
                // redirects lead. Which node answers in the end is not known here, so the
                // cursor names none and the next call starts over once more (repeats, no
                // miss) unless this walk is already done.
                let (pool, raw) = (self.pool.clone(), self.restart.clone());
                let via = self.via.clone();
                let last = redirect::follow(pool, raw, Some(slot), true, via, node, first);
                return last.await.map(|r| self.answer(None, r));
            }
        }
        if !failed_without_effect(&first) {
            return first.map(|r| self.answer(Some(&node), r));
        }
        // The node could not serve the call (a read changes nothing, so whatever happened
        // there does not matter): the walk starts over on another node of the read pool.
        let next = {
            let topo = self.pool.topology.load();
            self.scope.route(&self.pool, &topo, Some(&node))
        };
        let Some(next) = next.ok().filter(|n| !Arc::ptr_eq(n, &node)) else {
            return first;
        };
        self.pool.metrics.retries.increment(1);
        next.metrics.reads.increment(1);
        let again = self.via.send(&next, self.restart.clone(), self.db).await;
        again
            .unwrap_or_else(|_| dropped(&next))
            .map(|r| self.answer(Some(&next), r))
    }

    /// The client's reply: errors as they are; otherwise the node's cursor folded into one
    /// that names `node` (`None`: no node, the next call starts over).
    fn answer(&self, node: Option<&Arc<Node>>, reply: Reply) -> Reply {
        if reply.is_error() {
            return reply;
        }
        let topo = self.pool.topology.load();
        // A node no longer listed is named by no cursor: the next call starts over.
        let place = node.and_then(|n| self.scope.place(&topo, n));
        sticky::reply(&reply, place)
    }
}

/// True when the call did not run on the node (or failed there): the connection broke or
/// timed out, or the node cannot serve (`LOADING`, `MASTERDOWN` from a replica without a
/// link that does not serve stale data).
fn failed_without_effect(res: &ReplyResult) -> bool {
    match res {
        Ok(r) => r.is_error_with(b"LOADING") || r.is_error_with(b"MASTERDOWN"),
        Err(_) => true,
    }
}

/// The failure of a request whose reply channel was dropped with its connection.
fn dropped(node: &Node) -> ReplyResult {
    Err(BackendError::ConnectionLost {
        addr: node.addr.clone(),
        reason: "request dropped".into(),
    })
}
