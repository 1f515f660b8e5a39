//! Cluster topology: the slot map learned from a Redis Cluster and kept live.
//!
//! Redis Cluster publishes no topology events, so the watcher polls: `CLUSTER SHARDS` (Redis 7;
//! `CLUSTER SLOTS` on older servers) every `health_check_interval`, and at once when the data
//! path asks for it (a MOVED, a connection error, LOADING, CLUSTERDOWN) through a `Notify`, so a
//! burst of redirects costs one refresh, not one each. `CLUSTER SHARDS` also reports each node's
//! health and replication offset, which keeps failed, loading and lagging replicas out of the
//! read pool without probing every node.
//!
//! The watcher asks the nodes of the last known map first and the configured seeds last, so
//! seeds that die are replaced by nodes it learned about.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::tls::NodeStream;
use bytes::BytesMut;

use super::watch::{Feed, Watcher};
use super::{Health, NodeView, Topology};
use crate::backend::handshake::{self, Handshake};
use crate::backend::{Node, NodeOptions};
use crate::cluster_slot::SLOTS;
use crate::config::ReplicaLag;
use crate::resp::{Frame, Protocol};

/// Hashes, slot by slot, the address of the master that owns it (computed once per map
/// change, never per request). A collision would only skip one ordering barrier.
fn owners_fingerprint(shards: &[Shard], slots: &[u16]) -> u64 {
    let per_shard: Vec<u64> = shards
        .iter()
        .map(|s| {
            s.master
                .node
                .addr
                .bytes()
                .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                })
        })
        .collect();
    slots.iter().fold(0u64, |h, &i| {
        let owner = per_shard.get(usize::from(i)).copied().unwrap_or(0);
        (h.rotate_left(5) ^ owner).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    })
}

/// Marks a slot no shard serves.
const UNASSIGNED: u16 = u16::MAX;

/// Shortest gap between two refreshes: on-demand refreshes arriving faster are coalesced.
const MIN_REFRESH_GAP: Duration = Duration::from_millis(50);

/// One shard: a master, its replicas, and the slot ranges it serves.
#[derive(Clone)]
pub(crate) struct Shard {
    /// The shard's master.
    pub(crate) master: NodeView,
    /// Its replicas with their health.
    pub(crate) replicas: Vec<NodeView>,
    /// Replicas that may serve reads (healthy, not lagging).
    pub(crate) readable: Vec<Arc<Node>>,
    /// Inclusive slot ranges.
    pub(crate) ranges: Vec<(u16, u16)>,
}

/// The cluster's shards and which one serves each of the 16384 slots.
#[derive(Clone)]
pub(crate) struct SlotMap {
    /// Shards ordered by their first slot (a stable order: SCAN cursors name shards by index).
    pub(crate) shards: Arc<[Shard]>,
    /// Shard index per slot ([`UNASSIGNED`] when none).
    slots: Arc<[u16]>,
    /// A fingerprint of which master owns each slot: equal for two maps that route every
    /// write to the same node (health and offsets aside). Sessions compare it to keep a
    /// client's writes in order across an ownership change (see `session::cluster`).
    pub(crate) owners: u64,
}

impl SlotMap {
    /// Builds the map from shards (slot ranges outside 0..16384 are ignored).
    pub(crate) fn new(mut shards: Vec<Shard>) -> SlotMap {
        shards.sort_by_key(|s| s.ranges.iter().map(|r| r.0).min().unwrap_or(u16::MAX));
        let mut slots = vec![UNASSIGNED; SLOTS];
        for (i, shard) in shards.iter().enumerate() {
            for &(start, end) in &shard.ranges {
                let end = usize::from(end).min(SLOTS - 1);
                if let Some(range) = slots.get_mut(usize::from(start)..=end) {
                    range.fill(i as u16);
                }
            }
        }
        let owners = owners_fingerprint(&shards, &slots);
        SlotMap {
            shards: shards.into(),
            slots: slots.into(),
            owners,
        }
    }

    /// The shard serving `slot`, if any.
    pub(crate) fn shard(&self, slot: u16) -> Option<&Shard> {
        let i = *self.slots.get(usize::from(slot))?;
        self.shards.get(usize::from(i))
    }

    /// The known node with this address (master or replica).
    pub(crate) fn node(&self, addr: &str) -> Option<&Arc<Node>> {
        self.shards.iter().find_map(|s| {
            std::iter::once(&s.master)
                .chain(s.replicas.iter())
                .find(|v| v.node.addr == addr)
                .map(|v| &v.node)
        })
    }

    /// A copy in which `slot` belongs to the shard whose master is `addr` (a MOVED learned on
    /// the data path, applied before the next full refresh confirms it). `None` when no known
    /// shard has that master.
    pub(crate) fn with_slot_moved(&self, slot: u16, addr: &str) -> Option<SlotMap> {
        let i = self
            .shards
            .iter()
            .position(|s| s.master.node.addr == addr)?;
        if self.slots.get(usize::from(slot)) == Some(&(i as u16)) {
            return None;
        }
        let mut slots = self.slots.to_vec();
        *slots.get_mut(usize::from(slot))? = i as u16;
        Some(SlotMap {
            owners: owners_fingerprint(&self.shards, &slots),
            shards: self.shards.clone(),
            slots: slots.into(),
        })
    }

    /// True when every slot has a shard.
    #[cfg(test)]
    fn covers_all_slots(&self) -> bool {
        self.slots.iter().all(|&s| s != UNASSIGNED)
    }

    /// Same owners, nodes and health (offsets aside): decides whether a refresh is a change.
    pub(crate) fn same_shape(&self, other: &SlotMap) -> bool {
        fn key(v: &NodeView) -> (&str, &Health) {
            (&v.node.addr, &v.health)
        }
        self.slots == other.slots
            && self.shards.len() == other.shards.len()
            && self.shards.iter().zip(other.shards.iter()).all(|(a, b)| {
                key(&a.master) == key(&b.master)
                    && a.replicas.iter().map(key).eq(b.replicas.iter().map(key))
            })
    }

    /// JSON for `/topology`.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let view = |v: &NodeView| {
            serde_json::json!({
                "addr": v.node.addr,
                "health": v.health,
                "connected": v.node.is_connected(),
                "offset": v.offset,
            })
        };
        serde_json::Value::Array(
            self.shards
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "slots": s.ranges,
                        "master": view(&s.master),
                        "replicas": s.replicas.iter().map(view).collect::<Vec<_>>(),
                        "read_pool": s.readable.iter().map(|n| n.addr.clone()).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
    }
}

/// A node as a `CLUSTER SHARDS`/`CLUSTER SLOTS` reply describes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NodeDesc {
    /// `ip:port`
    pub(crate) addr: String,
    /// Health as the node answering saw it.
    pub(crate) health: Health,
    /// Replication offset, when reported.
    pub(crate) offset: Option<u64>,
}

/// A shard as described by the cluster, before nodes are attached.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ShardDesc {
    /// Inclusive slot ranges.
    pub(crate) ranges: Vec<(u16, u16)>,
    /// The master.
    pub(crate) master: NodeDesc,
    /// The replicas.
    pub(crate) replicas: Vec<NodeDesc>,
}

/// Key/value pairs of a RESP2 flat array or a RESP3 map.
fn pairs(frame: &Frame) -> Vec<(&[u8], &Frame)> {
    match frame {
        Frame::Map(entries) => entries
            .iter()
            .filter_map(|(k, v)| Some((k.as_bytes()?, v)))
            .collect(),
        Frame::Array(items) => items
            .chunks(2)
            .filter_map(|c| match c {
                [k, v] => Some((k.as_bytes()?, v)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn text(frame: &Frame) -> Option<String> {
    frame
        .as_bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

fn int(frame: &Frame) -> Option<i64> {
    frame.as_int().or_else(|| text(frame)?.parse().ok())
}

/// Parses a `CLUSTER SHARDS` reply. Shards without slots or without a master are left out
/// (an empty master just added, or a shard mid-failover: the next refresh sees it whole).
/// With `tls` (the pool's `backend_tls`), a node's `tls-port` is used where it has one: a
/// cluster with `tls-cluster yes` reports its TLS port there and the plain one as `port`.
pub(crate) fn parse_shards(reply: &Frame, tls: bool) -> Result<Vec<ShardDesc>, String> {
    let Frame::Array(shards) = reply else {
        return Err(format!("unexpected CLUSTER SHARDS reply: {reply:?}"));
    };
    let mut out = Vec::new();
    for shard in shards {
        let mut ranges = Vec::new();
        let mut nodes = Vec::new();
        for (k, v) in pairs(shard) {
            match k {
                b"slots" => {
                    if let Frame::Array(bounds) = v {
                        for c in bounds.chunks(2) {
                            if let [a, b] = c {
                                let (Some(a), Some(b)) = (int(a), int(b)) else {
                                    continue;
                                };
                                if (0..SLOTS as i64).contains(&a) && (a..SLOTS as i64).contains(&b)
                                {
                                    ranges.push((a as u16, b as u16));
                                }
                            }
                        }
                    }
                }
                b"nodes" => {
                    if let Frame::Array(list) = v {
                        nodes.extend(list.iter().filter_map(|n| parse_shard_node(n, tls)));
                    }
                }
                _ => {}
            }
        }
        if ranges.is_empty() {
            continue;
        }
        let Some(mi) = nodes.iter().position(|(role, _)| role == "master") else {
            continue;
        };
        let (_, master) = nodes.remove(mi);
        let replicas = nodes
            .into_iter()
            .filter(|(role, _)| role == "replica")
            .map(|(_, n)| n)
            .collect();
        out.push(ShardDesc {
            ranges,
            master,
            replicas,
        });
    }
    Ok(out)
}

/// One node entry of `CLUSTER SHARDS`: its role and description.
fn parse_shard_node(node: &Frame, tls: bool) -> Option<(String, NodeDesc)> {
    let (mut ip, mut endpoint, mut port, mut role, mut offset, mut health) =
        (None, None, None, None, None, Health::Unknown);
    let mut tls_port = None;
    for (k, v) in pairs(node) {
        match k {
            b"ip" => ip = text(v),
            b"endpoint" => endpoint = text(v),
            b"port" => port = int(v),
            b"tls-port" => tls_port = int(v),
            b"role" => role = text(v),
            b"replication-offset" => offset = int(v).and_then(|o| u64::try_from(o).ok()),
            b"health" => {
                health = match text(v).as_deref() {
                    Some("online") => Health::Healthy,
                    Some("loading") => Health::Loading,
                    Some(other) => Health::Down(format!("cluster reports it {other}")),
                    None => Health::Unknown,
                }
            }
            _ => {}
        }
    }
    // `endpoint` is what the cluster wants clients to use; "?" means unknown.
    let host = endpoint.filter(|e| !e.is_empty() && e != "?").or(ip)?;
    let port = if tls { tls_port.or(port) } else { port };
    let port = port.filter(|p| (1..=65535).contains(p))?;
    Some((
        role?,
        NodeDesc {
            addr: format!("{host}:{port}"),
            health,
            offset,
        },
    ))
}

/// Parses a `CLUSTER SLOTS` reply (older servers): no health or offsets, and one shard per
/// master however many ranges it serves.
pub(crate) fn parse_slots(reply: &Frame) -> Result<Vec<ShardDesc>, String> {
    let Frame::Array(ranges) = reply else {
        return Err(format!("unexpected CLUSTER SLOTS reply: {reply:?}"));
    };
    let mut out: Vec<ShardDesc> = Vec::new();
    for range in ranges {
        let Frame::Array(items) = range else { continue };
        let (Some(start), Some(end)) = (items.first().and_then(int), items.get(1).and_then(int))
        else {
            continue;
        };
        if !(0..SLOTS as i64).contains(&start) || !(start..SLOTS as i64).contains(&end) {
            continue;
        }
        let mut nodes = items[2..].iter().filter_map(|n| {
            let Frame::Array(f) = n else { return None };
            let host = text(f.first()?)?;
            let port = int(f.get(1)?)?;
            Some(NodeDesc {
                addr: format!("{host}:{port}"),
                health: Health::Healthy,
                offset: None,
            })
        });
        let Some(master) = nodes.next() else { continue };
        let replicas: Vec<NodeDesc> = nodes.collect();
        let r = (start as u16, end as u16);
        match out.iter_mut().find(|s| s.master.addr == master.addr) {
            Some(s) => s.ranges.push(r),
            None => out.push(ShardDesc {
                ranges: vec![r],
                master,
                replicas,
            }),
        }
    }
    Ok(out)
}

/// A replica's health after applying `max_replica_lag` (bytes only: the cluster reports
/// offsets, not ack times).
fn replica_health(desc: &NodeDesc, master: &NodeDesc, max: Option<ReplicaLag>) -> Health {
    if !desc.health.is_healthy() {
        return desc.health.clone();
    }
    match (max, master.offset, desc.offset) {
        (Some(ReplicaLag::Bytes(limit)), Some(m), Some(r)) if m.saturating_sub(r) > limit => {
            Health::Lagging(format!("{} bytes behind (max {limit})", m - r))
        }
        _ => Health::Healthy,
    }
}

/// The nodes a refresh asks for the slot map, in order: the known masters, then the known
/// replicas, then the configured seeds not known yet.
///
/// The connection of the last good round (`current`) goes first (no reconnect per round) on
/// periodic rounds. A round the data path asked for (`triggered`: a MOVED, a failed node)
/// asks another node first, and keeps it last: one node's view can lag behind the cluster's
/// (partitioned, or not yet told by gossip), and re-reading it would undo the MOVED fix it
/// was called for.
fn refresh_order(
    map: Option<&SlotMap>,
    seeds: &[String],
    current: Option<&str>,
    triggered: bool,
) -> Vec<String> {
    let mut candidates: Vec<String> = Vec::new();
    if let Some(map) = map {
        for s in map.shards.iter() {
            candidates.push(s.master.node.addr.clone());
        }
        for s in map.shards.iter() {
            candidates.extend(s.replicas.iter().map(|r| r.node.addr.clone()));
        }
    }
    for seed in seeds {
        if !candidates.contains(seed) {
            candidates.push(seed.clone());
        }
    }
    if let Some(i) = current.and_then(|addr| candidates.iter().position(|c| c == addr)) {
        let a = candidates.remove(i);
        if triggered {
            candidates.push(a);
        } else {
            candidates.insert(0, a);
        }
    }
    candidates
}

/// Follows a cluster's slot map and publishes it as the pool's topology.
pub(crate) struct ClusterWatcher {
    /// Pool name (logs).
    pub(crate) pool: String,
    /// Configured seed addresses.
    pub(crate) seeds: Vec<String>,
    /// How data connections to discovered nodes are made.
    pub(crate) node_options: NodeOptions,
    /// Periodic refresh interval.
    pub(crate) interval: Duration,
    /// Connect + reply timeout of a refresh.
    pub(crate) timeout: Duration,
    /// Replicas further behind are kept out of the read pool.
    pub(crate) max_lag: Option<ReplicaLag>,
}

impl Watcher for ClusterWatcher {
    /// No slot map until a node answers CLUSTER SHARDS.
    fn initial(&self) -> Topology {
        Topology::default()
    }

    /// Refreshes until shutdown: every `interval`, and promptly after `refresh` is notified.
    async fn run(self, feed: Feed) {
        let Feed {
            topology,
            metrics,
            refresh,
            shutdown,
        } = feed;
        let handshake = Handshake {
            username: self.node_options.username.clone(),
            password: self.node_options.password.clone(),
            protocol: Protocol::Resp2,
            readonly: false,
            tls: self.node_options.tls.clone(),
            for_client: false,
        };
        let mut nodes: HashMap<String, Arc<Node>> = HashMap::new();
        let mut conn: Option<(String, NodeStream, BytesMut)> = None;
        let mut last_error = String::new();
        let mut triggered = false;
        loop {
            let round = tokio::time::Instant::now();
            let candidates = refresh_order(
                topology.load().cluster.as_deref(),
                &self.seeds,
                conn.as_ref().map(|(addr, _, _)| addr.as_str()),
                triggered,
            );
            let mut learned = None;
            for addr in &candidates {
                match self.ask(addr, &handshake, &mut conn).await {
                    Ok(shards) if !shards.is_empty() => {
                        learned = Some(shards);
                        break;
                    }
                    Ok(_) => last_error = format!("{addr} reports no slots"),
                    Err(e) => {
                        conn = None;
                        last_error = format!("{addr}: {e}");
                    }
                }
            }
            match learned {
                Some(shards) => {
                    let next = self.build(shards, &mut nodes);
                    Topology::publish(next, &topology, &metrics, &self.pool);
                }
                None => {
                    tracing::warn!(pool = %self.pool, error = %last_error, "no cluster node answered CLUSTER SHARDS");
                    let current = topology.load();
                    if !current.source_stale {
                        let mut stale = Topology::clone(&current);
                        stale.source_stale = true;
                        topology.store(Arc::new(stale));
                    }
                }
            }
            triggered = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.interval) => false,
                _ = refresh.notified() => {
                    tokio::time::sleep_until(round + MIN_REFRESH_GAP).await;
                    true
                }
            };
        }
    }
}

impl ClusterWatcher {
    /// Asks one node for the shards, reusing the open refresh connection when it is to `addr`.
    async fn ask(
        &self,
        addr: &str,
        handshake: &Handshake,
        conn: &mut Option<(String, NodeStream, BytesMut)>,
    ) -> Result<Vec<ShardDesc>, String> {
        if conn.as_ref().is_none_or(|(a, _, _)| a != addr) {
            let mut buf = BytesMut::new();
            let stream = handshake::connect(addr, handshake, self.timeout, &mut buf)
                .await
                .map_err(|e| e.to_string())?;
            *conn = Some((addr.to_string(), stream, buf));
        }
        let Some((_, stream, buf)) = conn.as_mut() else {
            return Err("no connection".into());
        };
        let ask = async {
            let reply = handshake::request_frame(stream, buf, &[b"CLUSTER", b"SHARDS"])
                .await
                .map_err(|e| e.to_string())?;
            match reply {
                Frame::Error(e) if e.starts_with(b"ERR unknown subcommand") => {
                    let slots = handshake::request_frame(stream, buf, &[b"CLUSTER", b"SLOTS"])
                        .await
                        .map_err(|e| e.to_string())?;
                    match slots {
                        Frame::Error(e) => Err(String::from_utf8_lossy(&e).into_owned()),
                        f => parse_slots(&f),
                    }
                }
                Frame::Error(e) => Err(String::from_utf8_lossy(&e).into_owned()),
                f => parse_shards(&f, handshake.tls.is_some()),
            }
        };
        match tokio::time::timeout(self.timeout, ask).await {
            Ok(r) => r,
            Err(_) => Err(format!("no reply within {} ms", self.timeout.as_millis())),
        }
    }

    /// Attaches nodes (reusing the ones already connected) and builds the snapshot. Nodes no
    /// longer in the cluster are dropped, which closes their connections.
    fn build(&self, shards: Vec<ShardDesc>, nodes: &mut HashMap<String, Arc<Node>>) -> Topology {
        let mut node = |addr: &str| -> Arc<Node> {
            nodes
                .entry(addr.to_string())
                .or_insert_with(|| Node::new(addr, &self.node_options))
                .clone()
        };
        let mut built = Vec::with_capacity(shards.len());
        for desc in shards {
            let master_node = node(&desc.master.addr);
            master_node.set_role(false);
            let master = NodeView {
                node: master_node,
                health: desc.master.health.clone(),
                offset: desc.master.offset,
            };
            let replicas: Vec<NodeView> = desc
                .replicas
                .iter()
                .map(|r| NodeView {
                    node: {
                        let n = node(&r.addr);
                        n.set_role(true);
                        n
                    },
                    health: replica_health(r, &desc.master, self.max_lag),
                    offset: r.offset,
                })
                .collect();
            let readable = replicas
                .iter()
                .filter(|r| r.health.is_healthy())
                .map(|r| r.node.clone())
                .collect();
            built.push(Shard {
                master,
                replicas,
                readable,
                ranges: desc.ranges,
            });
        }
        let map = SlotMap::new(built);
        nodes.retain(|addr, _| map.node(addr).is_some());
        Topology::from_cluster(map)
    }
}

/// A shard of one master at `addr` serving `ranges`, for unit tests (needs a tokio runtime).
#[cfg(test)]
pub(crate) fn test_shard(addr: &str, ranges: Vec<(u16, u16)>) -> Shard {
    let opts = NodeOptions {
        pool: "t".into(),
        connections: 1,
        max_dedicated: 1,
        connect_timeout: Duration::from_millis(10),
        request_timeout: Duration::from_millis(10),
        username: None,
        password: None,
        follows_role: true,
        tls: None,
    };
    Shard {
        master: NodeView {
            node: Node::new(addr, &opts),
            health: Health::Healthy,
            offset: None,
        },
        replicas: Vec::new(),
        readable: Vec::new(),
        ranges,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn b(s: &str) -> Frame {
        Frame::Bulk(Bytes::from(s.to_string()))
    }

    fn node(port: i64, role: &str, offset: i64, health: &str) -> Frame {
        Frame::Array(vec![
            b("id"),
            b("abc"),
            b("port"),
            Frame::Integer(port),
            b("ip"),
            b("127.0.0.1"),
            b("endpoint"),
            b("127.0.0.1"),
            b("role"),
            b(role),
            b("replication-offset"),
            Frame::Integer(offset),
            b("health"),
            b(health),
        ])
    }

    #[test]
    fn parses_cluster_shards() {
        let reply = Frame::Array(vec![
            Frame::Array(vec![
                b("slots"),
                Frame::Array(vec![Frame::Integer(0), Frame::Integer(5460)]),
                b("nodes"),
                Frame::Array(vec![
                    node(7000, "master", 100, "online"),
                    node(7003, "replica", 90, "loading"),
                ]),
            ]),
            // A master without slots is left out.
            Frame::Array(vec![
                b("slots"),
                Frame::Array(vec![]),
                b("nodes"),
                Frame::Array(vec![node(7009, "master", 0, "online")]),
            ]),
        ]);
        let shards = parse_shards(&reply, false).expect("parse");
        assert_eq!(shards.len(), 1);
        assert_eq!(shards[0].ranges, vec![(0, 5460)]);
        assert_eq!(shards[0].master.addr, "127.0.0.1:7000");
        assert_eq!(shards[0].master.offset, Some(100));
        assert_eq!(shards[0].replicas[0].health, Health::Loading);
    }

    /// A `tls-cluster yes` node lists its TLS port as `tls-port` and its plain port as `port`.
    #[test]
    fn tls_pools_take_the_tls_port() {
        let mut fields = match node(7000, "master", 1, "online") {
            Frame::Array(f) => f,
            _ => unreachable!(),
        };
        fields.extend([b("tls-port"), Frame::Integer(17000)]);
        let reply = Frame::Array(vec![Frame::Array(vec![
            b("slots"),
            Frame::Array(vec![Frame::Integer(0), Frame::Integer(16383)]),
            b("nodes"),
            Frame::Array(vec![Frame::Array(fields)]),
        ])]);
        let plain = parse_shards(&reply, false).expect("parse");
        assert_eq!(plain[0].master.addr, "127.0.0.1:7000");
        let tls = parse_shards(&reply, true).expect("parse");
        assert_eq!(tls[0].master.addr, "127.0.0.1:17000");
        // A node without a TLS port keeps its port.
        let no_tls_port = Frame::Array(vec![Frame::Array(vec![
            b("slots"),
            Frame::Array(vec![Frame::Integer(0), Frame::Integer(16383)]),
            b("nodes"),
            Frame::Array(vec![node(7001, "master", 1, "online")]),
        ])]);
        let tls = parse_shards(&no_tls_port, true).expect("parse");
        assert_eq!(tls[0].master.addr, "127.0.0.1:7001");
    }

    #[test]
    fn parses_cluster_slots() {
        let entry = |a: i64, z: i64, ports: &[i64]| {
            let mut v = vec![Frame::Integer(a), Frame::Integer(z)];
            v.extend(
                ports
                    .iter()
                    .map(|p| Frame::Array(vec![b("127.0.0.1"), Frame::Integer(*p), b("id")])),
            );
            Frame::Array(v)
        };
        let reply = Frame::Array(vec![
            entry(0, 100, &[7000, 7003]),
            entry(101, 16383, &[7001]),
            entry(200, 300, &[7000, 7003]),
        ]);
        let shards = parse_slots(&reply).expect("parse");
        assert_eq!(shards.len(), 2);
        assert_eq!(shards[0].ranges, vec![(0, 100), (200, 300)]);
        assert_eq!(shards[0].replicas.len(), 1);
    }

    fn shard(addr: &str, ranges: Vec<(u16, u16)>) -> Shard {
        super::test_shard(addr, ranges)
    }

    #[tokio::test]
    async fn refresh_asks_the_last_good_node_first_unless_the_data_path_asked() {
        let seeds = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            refresh_order(None, &seeds(&["s:1", "s:2"]), None, false),
            ["s:1", "s:2"]
        );
        let mut a = shard("a:1", vec![(0, 100)]);
        a.replicas.push(shard("a:2", Vec::new()).master);
        let map = SlotMap::new(vec![shard("b:1", vec![(101, 16383)]), a]);
        let order = |current, triggered| {
            refresh_order(Some(&map), &seeds(&["b:1", "s:1"]), current, triggered)
        };
        // Masters, then replicas, then seeds the map does not name.
        assert_eq!(order(None, false), ["a:1", "b:1", "a:2", "s:1"]);
        assert_eq!(order(Some("b:1"), false), ["b:1", "a:1", "a:2", "s:1"]);
        assert_eq!(order(Some("b:1"), true), ["a:1", "a:2", "s:1", "b:1"]);
        // A connection to a node no longer known changes nothing.
        assert_eq!(order(Some("gone:1"), true), ["a:1", "b:1", "a:2", "s:1"]);
    }

    #[tokio::test]
    async fn slot_map_orders_shards_and_applies_a_moved_slot() {
        let map = SlotMap::new(vec![
            shard("127.0.0.1:2", vec![(8192, 16383)]),
            shard("127.0.0.1:1", vec![(0, 8191)]),
        ]);
        assert!(map.covers_all_slots());
        assert_eq!(map.shards[0].master.node.addr, "127.0.0.1:1");
        let owner = |m: &SlotMap, slot| m.shard(slot).map(|s| s.master.node.addr.clone());
        assert_eq!(owner(&map, 100).as_deref(), Some("127.0.0.1:1"));
        assert_eq!(owner(&map, 9000).as_deref(), Some("127.0.0.1:2"));
        let moved = map
            .with_slot_moved(100, "127.0.0.1:2")
            .expect("known master");
        assert_eq!(owner(&moved, 100).as_deref(), Some("127.0.0.1:2"));
        assert_eq!(owner(&moved, 101).as_deref(), Some("127.0.0.1:1"));
        assert!(!moved.same_shape(&map));
        // Already there, or an unknown node: nothing to apply (a refresh will tell).
        assert!(moved.with_slot_moved(100, "127.0.0.1:2").is_none());
        assert!(map.with_slot_moved(100, "127.0.0.1:9").is_none());
        let partial = SlotMap::new(vec![shard("127.0.0.1:1", vec![(0, 10)])]);
        assert!(!partial.covers_all_slots());
        assert!(partial.shard(11).is_none());
    }

    #[test]
    fn lagging_replicas_leave_the_read_pool() {
        let master = NodeDesc {
            addr: "m:1".into(),
            health: Health::Healthy,
            offset: Some(10_000),
        };
        let replica = |offset| NodeDesc {
            addr: "r:1".into(),
            health: Health::Healthy,
            offset: Some(offset),
        };
        let max = Some(ReplicaLag::Bytes(1000));
        assert_eq!(
            replica_health(&replica(9500), &master, max),
            Health::Healthy
        );
        assert!(matches!(
            replica_health(&replica(100), &master, max),
            Health::Lagging(_)
        ));
    }
}
