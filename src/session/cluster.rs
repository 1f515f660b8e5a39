//! Cluster pools, the session side: plain commands routed by slot, multi-key commands split
//! across slots and fan-out commands sent to every master (both merged by a task whose reply
//! takes the request's place in the client's queue), redirects followed out of sight of the
//! client, and `CLUSTER ...` answered as if the proxy were a one-node cluster owning every
//! slot, so cluster-aware clients need no special setup.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::future::join_all;
use tokio::sync::oneshot;

use super::scan::{cursor_arg as scan_cursor_arg, Scope as ScanScope};
use super::{error_bytes, Pending, Session, Waiting};
use crate::backend::mux::ReplyResult;
use crate::backend::Node;
use crate::cluster_slot;
use crate::command::{self, CommandInfo, Special};
use crate::config::ReadFrom;
use crate::resp::{encode, ClientError, Protocol, Reply, ReplyShape, Request};
use crate::route::cluster as redirect;
use crate::route::scan;
use crate::route::split::{self, FanOut, Plan};
use crate::route::RouteError;
use crate::topology::cluster::SlotMap;

impl Session {
    /// Routes a plain command in a cluster pool (see [`Session::dispatch`] for `may_hold`:
    /// without a slot map yet the request is handed back to wait for one).
    pub(super) fn dispatch_cluster(
        &mut self,
        req: Request,
        info: Option<&'static CommandInfo>,
        pending: &mut VecDeque<Pending>,
        may_hold: bool,
    ) -> Option<Request> {
        if matches!(
            Special::of(info),
            Special::Readonly | Special::Readwrite | Special::Asking
        ) {
            // Connection modes of cluster clients: the proxy already reads from replicas
            // per its policy and follows ASK itself.
            pending.push_back(Pending::Ready(Bytes::from_static(b"+OK\r\n")));
            return None;
        }
        let read = command::is_read(&req, info);
        let plan = split::plan(&req, info);
        let topo = self.pool.topology.load();
        let Some(map) = topo.cluster.as_ref().filter(|m| !m.shards.is_empty()) else {
            drop(topo);
            if may_hold {
                return Some(req);
            }
            pending.push_back(Pending::Ready(ClientError::slot_not_served().to_bytes()));
            return None;
        };
        // Ordering across a change of slot owners: a write still in flight to a slot's former
        // owner comes back MOVED and is re-sent to the new owner. A later command of this
        // client, routed by the new map, must not overtake it there, so while writes routed by
        // an older map are in flight, the client's next command waits for them (owner changes
        // are rare, so this costs nothing in steady state).
        let owners = map.owners as usize;
        if self.inflight_writes > 0 && self.write_node != owners && may_hold {
            drop(topo);
            return Some(req);
        }
        if !read {
            self.write_node = owners;
        }
        let sticky_scan =
            scan_cursor_arg(info).filter(|_| read && self.pool.cfg.read_from != ReadFrom::Master);
        if let (Plan::Single(Some(slot)), Some(at)) = (&plan, sticky_scan) {
            // SSCAN/HSCAN/ZSCAN on a replica: the walk stays on the node that issued its
            // cursor (SCAN itself is keyless and walks the masters, below).
            drop(topo);
            let scope = ScanScope::Slot(*slot);
            return self.dispatch_scan(req, info, (at, scope), pending, may_hold);
        }
        if let Plan::Single(slot) = plan {
            // The hot path: no clone of the map, only of the chosen node.
            let route = match slot {
                None if is_classic_pubsub(info) => Some(PUBSUB_HOME_SLOT),
                _ => slot,
            };
            let routed = self.pool.router.cluster(map, route, read, None);
            drop(topo);
            let node = match routed {
                Ok(n) => n,
                // No replica of the slot's shard in the read pool: wait for one.
                Err(RouteError::NoReplica(_)) if may_hold => return Some(req),
                Err(e) => {
                    self.pool.metrics.errors.increment(1);
                    pending.push_back(Pending::Ready(ClientError::from(e).to_bytes()));
                    return None;
                }
            };
            if read {
                node.metrics.reads.increment(1);
            } else {
                node.metrics.writes.increment(1);
            }
            let rx = self.send_to(&node, req.raw().clone(), 0, super::patience(info));
            self.queue(req, info, rx, node, read, slot, false, pending);
            return None;
        }
        let map = map.clone();
        drop(topo);
        self.dispatch_spread(req, info, plan, map, read, pending);
        None
    }

    /// A command whose keys span slots (split, merged), a cross-slot error, or one that goes
    /// to every master (fan-out, merged). Its reply comes from a task.
    fn dispatch_spread(
        &mut self,
        req: Request,
        info: Option<&'static CommandInfo>,
        plan: Plan,
        map: Arc<SlotMap>,
        read: bool,
        pending: &mut VecDeque<Pending>,
    ) {
        // Reply slots of merged requests name one node (metrics, error text): the first master.
        let first = map.shards[0].master.node.clone();
        match plan {
            Plan::Single(_) => {}
            Plan::CrossSlot => {
                self.pool.metrics.errors.increment(1);
                pending.push_back(Pending::Ready(ClientError::cross_slot().to_bytes()));
            }
            Plan::Split(merge) => {
                let parts = split::split(&req, merge);
                let (pool, via) = (self.pool.clone(), self.via());
                let rx = spawn_reply(async move {
                    let results = join_all(parts.iter().map(|p| {
                        let via = via.clone();
                        redirect::execute(pool.clone(), p.raw.clone(), Some(p.slot), read, via)
                    }))
                    .await;
                    let replies = results.into_iter().collect::<Result<Vec<Reply>, _>>()?;
                    Ok(split::merge(merge, &parts, replies))
                });
                self.queue(req, info, rx, first, read, None, true, pending);
            }
            Plan::FanOut(FanOut::Scan) if req.len() < 2 => {
                pending.push_back(Pending::Ready(error_bytes(
                    "ERR wrong number of arguments for 'scan' command",
                )));
            }
            Plan::FanOut(FanOut::Scan) => {
                let Some(at) = scan::Cursor::decode(req.arg(1), &map) else {
                    pending.push_back(Pending::Ready(error_bytes("ERR invalid cursor")));
                    return;
                };
                let node = map.shards[at.shard].master.node.clone();
                let (raw, conn, pool) =
                    (scan::request(&req, at.node), self.slot(), self.pool.clone());
                let (target, via) = (node.clone(), self.via());
                let rx = spawn_reply(async move {
                    let reply = redirect::send(&target, raw, &via).await?;
                    if reply.is_error() {
                        return Ok(reply);
                    }
                    Ok(match scan::step(&reply, at, map.shards.len()) {
                        scan::Step::Reply(r) => r,
                        scan::Step::LastShardDone(keys) => {
                            scan::finish(&pool, &map, at, keys, conn).await
                        }
                    })
                });
                self.queue(req, info, rx, node, read, None, true, pending);
            }
            Plan::FanOut(fan) => self.fan_out(req, info, fan, &map, read, pending),
        }
    }

    /// Sends a fan-out command to every master (and, for the script cache, every replica)
    /// and queues the merged reply.
    fn fan_out(
        &mut self,
        req: Request,
        info: Option<&'static CommandInfo>,
        fan: FanOut,
        map: &Arc<SlotMap>,
        read: bool,
        pending: &mut VecDeque<Pending>,
    ) {
        let via = self.via();
        let raw = req.raw().clone();
        let masters: Vec<Arc<Node>> = map.shards.iter().map(|s| s.master.node.clone()).collect();
        // Redis does not replicate the script cache: load or flush it on the replicas
        // too, and answer only once they have it (an EVALSHA_RO right after SCRIPT
        // LOAD may go to a replica). Their replies do not change the answer.
        let replicas: Vec<Arc<Node>> = if info.is_some_and(|i| fan.includes_replicas(i)) {
            map.shards
                .iter()
                .flat_map(|s| s.replicas.iter().map(|r| r.node.clone()))
                .collect()
        } else {
            Vec::new()
        };
        let rx = spawn_reply(async move {
            let to_replicas = join_all(
                replicas
                    .iter()
                    .map(|r| redirect::send(r, raw.clone(), &via)),
            );
            let to_masters = join_all(masters.iter().map(|m| redirect::send(m, raw.clone(), &via)));
            let (results, _) = futures_util::future::join(to_masters, to_replicas).await;
            let replies = results.into_iter().collect::<Result<Vec<Reply>, _>>()?;
            Ok(split::merge_fan_out(fan, replies))
        });
        let first = map.shards[0].master.node.clone();
        self.queue(req, info, rx, first, read, None, true, pending);
    }

    /// Queues the reply slot of a forwarded request. `done` marks replies that come from a
    /// task which already followed redirects (nothing left to retry here).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn queue(
        &mut self,
        req: Request,
        info: Option<&'static CommandInfo>,
        rx: oneshot::Receiver<ReplyResult>,
        node: Arc<Node>,
        read: bool,
        key_slot: Option<u16>,
        done: bool,
        pending: &mut VecDeque<Pending>,
    ) {
        if !read {
            self.inflight_writes += 1;
            if key_slot.is_some() {
                self.last_write_slot = key_slot;
            }
        }
        self.forwarded = self.forwarded.wrapping_add(1);
        let started = self
            .forwarded
            .is_multiple_of(super::LATENCY_SAMPLE)
            .then(std::time::Instant::now);
        let resp2 = self.proto == Protocol::Resp2;
        let nil_array = resp2 && command::nil_is_array(&req, info);
        let shape = if resp2 {
            command::reply_shape(&req, info)
        } else {
            ReplyShape::Plain
        };
        pending.push_back(Pending::Wait(Waiting {
            rx,
            raw: req.into_raw(),
            node,
            read,
            nil_array,
            shape,
            retried: done,
            db: 0,
            proto: self.proto,
            started,
            key_slot,
            silent: false,
            taken: self.pool.registry.slowlog.start(),
            script: (Special::of(info) == Special::Script)
                .then(|| self.pool.registry.scripts.start()),
            fenced: false,
        }));
    }

    /// Hands a redirect (or a failed send) to a task that follows it to the answer; the
    /// task's reply takes the request's place at the head of the queue.
    pub(super) fn follow_redirect(
        &self,
        w: Waiting,
        res: ReplyResult,
        pending: &mut VecDeque<Pending>,
    ) {
        self.pool.metrics.retries.increment(1);
        let (pool, raw, slot, read, via, node) = (
            self.pool.clone(),
            w.raw.clone(),
            w.key_slot,
            w.read,
            self.via().with(w.patience()),
            w.node.clone(),
        );
        // A MOVED to a known node is re-sent right here, before this session dispatches
        // anything else: a later request to the same slot, routed by the map this MOVED just
        // fixed, must not overtake it on the new owner's connection.
        let moved = match &res {
            Ok(reply) => redirect::resend_moved(&pool, reply, &raw, &via),
            Err(_) => None,
        };
        let rx = match moved {
            Some((target, sent)) => spawn_reply(async move {
                let first = sent.await.unwrap_or_else(|_| {
                    Err(crate::backend::BackendError::ConnectionLost {
                        addr: target.addr.clone(),
                        reason: "request dropped".into(),
                    })
                });
                redirect::follow(pool, raw, slot, read, via, target, first).await
            }),
            None => spawn_reply(redirect::follow(pool, raw, slot, read, via, node, res)),
        };
        pending.push_front(Pending::Wait(Waiting {
            rx,
            retried: true,
            fenced: false,
            ..w
        }));
    }

    /// `CLUSTER ...` through the proxy: the proxy describes itself as a one-node cluster
    /// that owns every slot, so cluster-aware clients send everything here.
    pub(super) fn cluster_command(&self, req: &Request) -> Bytes {
        let sub = String::from_utf8_lossy(req.arg(1)).to_ascii_lowercase();
        let addr = self.advertised_addr();
        let (ip, port) = (addr.ip().to_string(), i64::from(addr.port()));
        let id = node_id(&self.pool.cfg.name, &addr);
        let mut out = BytesMut::new();
        match sub.as_str() {
            "slots" => {
                encode::array_len(&mut out, 1);
                encode::array_len(&mut out, 3);
                encode::integer(&mut out, 0);
                encode::integer(&mut out, cluster_slot::SLOTS as i64 - 1);
                encode::array_len(&mut out, 3);
                encode::bulk(&mut out, ip.as_bytes());
                encode::integer(&mut out, port);
                encode::bulk(&mut out, id.as_bytes());
            }
            "shards" => {
                encode::array_len(&mut out, 1);
                encode::map_len(&mut out, self.proto, 2);
                encode::bulk(&mut out, b"slots");
                encode::array_len(&mut out, 2);
                encode::integer(&mut out, 0);
                encode::integer(&mut out, cluster_slot::SLOTS as i64 - 1);
                encode::bulk(&mut out, b"nodes");
                encode::array_len(&mut out, 1);
                encode::map_len(&mut out, self.proto, 7);
                for (k, v) in [("id", id.as_str()), ("ip", &ip), ("endpoint", &ip)] {
                    encode::bulk(&mut out, k.as_bytes());
                    encode::bulk(&mut out, v.as_bytes());
                }
                encode::bulk(&mut out, b"port");
                encode::integer(&mut out, port);
                encode::bulk(&mut out, b"role");
                encode::bulk(&mut out, b"master");
                encode::bulk(&mut out, b"replication-offset");
                encode::integer(&mut out, 0);
                encode::bulk(&mut out, b"health");
                encode::bulk(&mut out, b"online");
            }
            "nodes" => {
                let line = format!(
                    "{id} {ip}:{port}@{port} myself,master - 0 0 1 connected 0-{}\n",
                    cluster_slot::SLOTS - 1
                );
                encode::bulk(&mut out, line.as_bytes());
            }
            "info" => {
                let text = "cluster_state:ok\r\ncluster_slots_assigned:16384\r\n\
                            cluster_slots_ok:16384\r\ncluster_slots_pfail:0\r\n\
                            cluster_slots_fail:0\r\ncluster_known_nodes:1\r\ncluster_size:1\r\n\
                            cluster_current_epoch:1\r\ncluster_my_epoch:1\r\n";
                encode::verbatim(&mut out, self.proto, text.as_bytes());
            }
            "myid" => encode::bulk(&mut out, id.as_bytes()),
            "keyslot" if req.len() == 3 => {
                encode::integer(&mut out, i64::from(cluster_slot::slot(req.arg(2))))
            }
            "keyslot" => encode::error(
                &mut out,
                "ERR wrong number of arguments for 'cluster|keyslot' command",
            ),
            _ => encode::error(
                &mut out,
                &format!(
                    "ERR sluice: CLUSTER {} is not supported through the proxy",
                    sub.to_ascii_uppercase()
                ),
            ),
        }
        out.freeze()
    }

    /// The address cluster-aware clients are told to use: the pool's listener, with a
    /// wildcard IP replaced by loopback (configure a concrete `listen` address for remote
    /// cluster clients).
    fn advertised_addr(&self) -> SocketAddr {
        let mut addr = self.pool.cfg.listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        addr
    }
}

/// The slot whose master holds every classic (SUBSCRIBE/PSUBSCRIBE) subscription made through
/// a cluster pool and receives every PUBLISH. Redis Cluster delivers a PUBLISH to subscribers
/// on every node (over the cluster bus) but its reply counts only the subscribers of the node
/// that received it; with the proxy's subscriptions on the node PUBLISH is sent to, the reply
/// counts every client subscribed through the proxy, as one Redis would.
pub(super) const PUBSUB_HOME_SLOT: u16 = 0;

/// SUBSCRIBE, PSUBSCRIBE and PUBLISH: the keyless pub/sub commands that go to the home master.
pub(super) fn is_classic_pubsub(info: Option<&CommandInfo>) -> bool {
    matches!(
        Special::of(info),
        Special::Subscribe | Special::Psubscribe | Special::Publish
    )
}

/// Runs `fut` on its own task and returns the receiver its result is delivered to.
pub(super) fn spawn_reply<F>(fut: F) -> oneshot::Receiver<ReplyResult>
where
    F: std::future::Future<Output = ReplyResult> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx
}

/// A stable 40-hex-digit node id for the proxy (pool name and address hashed).
fn node_id(pool: &str, addr: &SocketAddr) -> String {
    let text = format!("{pool}@{addr}");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut id = String::with_capacity(40);
    while id.len() < 40 {
        for b in text.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        id.push_str(&format!("{h:016x}"));
    }
    id.truncate(40);
    id
}
