//! SCAN, SSCAN, HSCAN and ZSCAN in standalone and sentinel pools that read from replicas.
//!
//! Two replicas of one master iterate in different orders (their hash tables differ), so a
//! cursor one of them issued means nothing on the other: sent round-robin, a walk misses and
//! repeats keys. Here the proxy's cursor names the node that issued it (the layout of the
//! cluster pools' SCAN cursor, see `route::scan::sticky`) and every call of a walk goes back
//! to that node. When that node has left the read pool (or fails the call), the walk goes on
//! from the start on another node: SCAN allows repeats, never misses.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::cluster::spawn_reply;
use super::{error_bytes, Pending, Session};
use crate::backend::mux::ReplyResult;
use crate::backend::{BackendError, Node};
use crate::command::CommandInfo;
use crate::config::ReadFrom;
use crate::pool::Pool;
use crate::resp::{Reply, Request};
use crate::route::scan::{self, sticky};
use crate::route::RouteError;
use crate::topology::Topology;

/// Where the cursor is among a `*SCAN` command's arguments, for the commands walked here.
pub(super) fn cursor_arg(info: Option<&CommandInfo>) -> Option<usize> {
    match info?.name {
        "scan" => Some(1),
        "sscan" | "hscan" | "zscan" => Some(2),
        _ => None,
    }
}

/// The pool's nodes in cursor order (the master, when known, then every replica).
fn nodes(topo: &Topology) -> Vec<&Arc<Node>> {
    topo.master
        .iter()
        .chain(topo.replicas.iter())
        .map(|v| &v.node)
        .collect()
}

/// True when a walk may go on on `node`: a replica still in the read pool, or the master
/// where the master serves reads too; and reachable.
fn may_serve(topo: &Topology, read_from: ReadFrom, node: &Arc<Node>) -> bool {
    let readable = topo.readable.iter().any(|n| Arc::ptr_eq(n, node));
    let master = read_from != ReadFrom::Replica
        && topo
            .master
            .as_ref()
            .is_some_and(|m| Arc::ptr_eq(&m.node, node));
    (readable || master) && node.is_connected()
}

impl Session {
    /// Dispatches a `*SCAN` whose cursor argument is `at` (see [`cursor_arg`]); the
    /// `may_hold` contract is [`Session::dispatch`]'s: with no node to read from, the
    /// request is handed back to wait for one.
    pub(super) fn dispatch_scan(
        &mut self,
        req: Request,
        info: Option<&'static CommandInfo>,
        at: usize,
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
        let list = nodes(&topo);
        let addrs: Vec<&str> = list.iter().map(|n| n.addr.as_str()).collect();
        let resumed = sticky::find(cursor, &addrs)
            .map(|i| list[i].clone())
            .filter(|n| may_serve(&topo, self.pool.cfg.read_from, n));
        let (node, node_cursor) = match (resumed, cursor) {
            (Some(n), sticky::At::Node { node, .. }) => (n, node),
            // A new walk, or its node left the read pool: from the start on a node the read
            // policy picks.
            _ => match self.route_read(&topo, None) {
                Ok(n) => (n, 0),
                Err(RouteError::NoReplica(_)) if may_hold => return Some(req),
                Err(e) => {
                    self.pool.metrics.errors.increment(1);
                    pending.push_back(Pending::Ready(error_bytes(&e.to_string())));
                    return None;
                }
            },
        };
        drop(list);
        drop(topo);
        node.metrics.reads.increment(1);
        let call = Call {
            pool: self.pool.clone(),
            restart: scan::request_at(&req, at, 0),
            db: self.db,
            conn: self.slot(),
        };
        // Sent here, not from the task: the client's later requests to this node must not
        // overtake it on the connection.
        let sent = node.send(
            scan::request_at(&req, at, node_cursor),
            self.db,
            self.slot(),
        );
        let rx = spawn_reply(call.run(node.clone(), sent));
        self.queue(req, info, rx, node, true, None, true, pending);
        None
    }
}

/// One call of a walk, run on its own task: the node's reply with the cursor folded in.
struct Call {
    pool: Arc<Pool>,
    /// The request with cursor 0, for a walk that must start over on another node.
    restart: Bytes,
    db: u16,
    conn: usize,
}

impl Call {
    /// Awaits `sent` (the request with the node's own cursor, sent to `node`).
    async fn run(self, node: Arc<Node>, sent: oneshot::Receiver<ReplyResult>) -> ReplyResult {
        let first = sent.await.unwrap_or_else(|_| dropped(&node));
        if !failed_without_effect(&first) {
            return first.map(|r| self.answer(&node, r));
        }
        // The node could not serve the call (a read changes nothing, so whatever happened
        // there does not matter): the walk starts over on another node of the read pool.
        let next = {
            let topo = self.pool.topology.load();
            self.pool.router.read(&topo, Some(&node))
        };
        let Some(next) = next.ok().filter(|n| !Arc::ptr_eq(n, &node)) else {
            return first;
        };
        self.pool.metrics.retries.increment(1);
        next.metrics.reads.increment(1);
        send(&next, self.restart.clone(), self.db, self.conn)
            .await
            .map(|r| self.answer(&next, r))
    }

    /// The client's reply: errors as they are; otherwise the node's cursor folded into one
    /// that names `node`.
    fn answer(&self, node: &Arc<Node>, reply: Reply) -> Reply {
        if reply.is_error() {
            return reply;
        }
        let topo = self.pool.topology.load();
        // A node no longer listed gets an index that names nothing: the next call starts over.
        let index = nodes(&topo)
            .iter()
            .position(|n| Arc::ptr_eq(n, node))
            .unwrap_or(0);
        sticky::reply(&reply, index, &node.addr)
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

async fn send(node: &Node, raw: Bytes, db: u16, conn: usize) -> ReplyResult {
    node.send(raw, db, conn)
        .await
        .unwrap_or_else(|_| dropped(node))
}

/// The failure of a request whose reply channel was dropped with its connection.
fn dropped(node: &Node) -> ReplyResult {
    Err(BackendError::ConnectionLost {
        addr: node.addr.clone(),
        reason: "request dropped".into(),
    })
}
