//! Sentinel topology: the master and replicas of one master group, followed live.
//!
//! Every `health_check_interval` (and at once when a sentinel publishes an event) the watcher
//! asks a sentinel (rotating past dead ones) for the master's address and the group's replicas,
//! then probes every node itself. A master is published only once its own `INFO replication`
//! says `role:master` (the sentinel client spec's "trust but verify": right after a failover
//! the old master can keep claiming the role for seconds, and a sentinel's answer can be
//! stale). A replica serves reads only while it is linked to *that* master and in sync.
//!
//! During a failover, writes are held (see the session) from `+try-failover` until a new
//! master is confirmed. Not here yet: sentinel connections shared between pools that follow
//! different groups of the same sentinels (each pool has its own today).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::BytesMut;
use futures_util::future::join_all;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::health::{lag_health, ProbeResult, Prober};
use super::{Health, NodeView, Topology};
use crate::backend::handshake::{self, Handshake};
use crate::backend::{Node, NodeOptions};
use crate::config::ReplicaLag;
use crate::resp::{encode, Frame, Protocol};
use crate::telemetry::PoolMetrics;

/// Sentinel channels whose messages may mean the topology changed.
const EVENTS: &[&str] = &[
    "+switch-master",
    "+sdown",
    "-sdown",
    "+odown",
    "+slave",
    "+convert-to-slave",
    "+role-change",
    "+failover-end",
    "+reboot",
    "+try-failover",
    "-failover-abort-not-elected",
    "-failover-abort-no-good-slave",
    "-failover-abort-slave-timeout",
    "+failover-end-for-timeout",
];

/// What a sentinel's message means for the watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    /// Something may have changed: refresh.
    Refresh,
    /// A failover of this master group started: stop sending writes to its master now, before
    /// a replica is promoted, so that no write lands on a node about to be demoted.
    FailoverStarted(String),
    /// A failover of this group ended without a new master: the old one stays.
    FailoverAborted(String),
}

impl Event {
    /// Reads a `message` frame from a sentinel subscription.
    fn from_message(frame: &Frame) -> Option<Event> {
        let Frame::Array(items) = frame else {
            return None;
        };
        if items.len() != 3
            || !items[0]
                .as_bytes()
                .is_some_and(|k| k.eq_ignore_ascii_case(b"message"))
        {
            return None;
        }
        let channel = items[1].as_bytes()?;
        let payload = String::from_utf8_lossy(items[2].as_bytes()?);
        // Failover events carry "master <name> <ip> <port>".
        let group = || {
            payload
                .strip_prefix("master ")
                .and_then(|r| r.split(' ').next())
                .map(str::to_string)
        };
        Some(match channel {
            b"+try-failover" => Event::FailoverStarted(group()?),
            b"-failover-abort-not-elected"
            | b"-failover-abort-no-good-slave"
            | b"-failover-abort-slave-timeout"
            | b"+failover-end-for-timeout" => Event::FailoverAborted(group()?),
            _ => Event::Refresh,
        })
    }
}

/// How long writes stay held after a failover started, if neither a new master nor an abort
/// is seen (a held write gives up after `master_wait` anyway; this only bounds how long the
/// old master is distrusted).
const FAILOVER_HOLD: Duration = Duration::from_secs(15);

/// Everything the sentinel watcher needs.
pub struct SentinelWatcher {
    /// Pool name (logs).
    pub pool: String,
    /// Master group name.
    pub master_name: String,
    /// Configured sentinel addresses.
    pub sentinels: Vec<String>,
    /// Credentials for the sentinels.
    pub sentinel_username: Option<String>,
    /// Password for the sentinels.
    pub sentinel_password: Option<String>,
    /// How nodes are connected to (shared with the request path).
    pub node_options: NodeOptions,
    /// Refresh and probe period.
    pub interval: Duration,
    /// Timeout of one sentinel query or probe.
    pub timeout: Duration,
    /// Replicas further behind than this leave the read pool.
    pub max_lag: Option<ReplicaLag>,
}

/// What a sentinel said about the group.
struct GroupView {
    master: String,
    replicas: Vec<String>,
    sentinels: Vec<String>,
}

impl SentinelWatcher {
    /// Follows the group until `shutdown`, publishing changes into `topology`.
    pub async fn run(
        self,
        topology: Arc<ArcSwap<Topology>>,
        metrics: Arc<PoolMetrics>,
        shutdown: CancellationToken,
    ) {
        let (events_tx, mut events) = mpsc::channel::<Event>(256);
        // During a failover of our group: the master being replaced, and until when it is held.
        let mut held: Option<(String, tokio::time::Instant)> = None;
        let mut known_sentinels = self.sentinels.clone();
        for addr in &known_sentinels {
            tokio::spawn(self.listen(addr.clone(), events_tx.clone(), shutdown.clone()));
        }
        let mut nodes: HashMap<String, Arc<Node>> = HashMap::new();
        let mut probers: HashMap<String, Prober> = HashMap::new();
        let mut current = 0usize;
        let mut conn: Option<(TcpStream, BytesMut)> = None;
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
                Some(first) = events.recv() => {
                    // Coalesce a burst of events into one refresh, acting on failover ones.
                    let mut next = Some(first);
                    while let Some(event) = next {
                        match event {
                            Event::FailoverStarted(g) if g == self.master_name => {
                                let previous = topology.load();
                                if let Some(m) = &previous.master {
                                    tracing::info!(pool = %self.pool, master = %m.node.addr, "failover started: holding writes");
                                    held = Some((m.node.addr.clone(), tokio::time::Instant::now() + FAILOVER_HOLD));
                                    let mut paused = Topology::clone(&previous);
                                    paused.master = None;
                                    paused.version += 1;
                                    metrics.topology_changes.increment(1);
                                    metrics.master_up.set(0.0);
                                    topology.store(Arc::new(paused));
                                }
                            }
                            Event::FailoverAborted(g) if g == self.master_name => held = None,
                            _ => {}
                        }
                        next = events.try_recv().ok();
                    }
                }
            }
            let Some(view) = self
                .ask_sentinels(&known_sentinels, &mut current, &mut conn)
                .await
            else {
                // Every sentinel is unreachable: keep serving from the last topology, and say so.
                tracing::warn!(pool = %self.pool, "no sentinel answered; keeping the last known topology");
                metrics.source_up.set(0.0);
                let previous = topology.load();
                if !previous.source_stale {
                    let mut stale = Topology::clone(&previous);
                    stale.source_stale = true;
                    topology.store(Arc::new(stale));
                }
                continue;
            };
            metrics.source_up.set(1.0);
            for s in &view.sentinels {
                if !known_sentinels.contains(s) {
                    known_sentinels.push(s.clone());
                    tokio::spawn(self.listen(s.clone(), events_tx.clone(), shutdown.clone()));
                }
            }
            let addrs: Vec<String> = std::iter::once(view.master.clone())
                .chain(view.replicas.iter().cloned())
                .collect();
            for a in &addrs {
                nodes
                    .entry(a.clone())
                    .or_insert_with(|| Node::new(a, &self.node_options));
                probers.entry(a.clone()).or_insert_with(|| {
                    Prober::new(
                        a,
                        self.node_options.username.clone(),
                        self.node_options.password.clone(),
                        self.timeout,
                    )
                });
            }
            // Nodes that left the group are dropped (their connections close with them).
            nodes.retain(|a, _| addrs.contains(a));
            probers.retain(|a, _| addrs.contains(a));
            let round = std::time::Instant::now();
            let results = {
                let mut list: Vec<(&String, &mut Prober)> = probers.iter_mut().collect();
                list.sort_by_key(|(a, _)| addrs.iter().position(|x| x == *a));
                let futs = list
                    .into_iter()
                    .map(|(a, p)| async move { (a.clone(), p.probe().await) });
                join_all(futs).await
            };
            let mut by_addr: HashMap<String, ProbeResult> = results.into_iter().collect();
            let master_info = match by_addr.get(&view.master) {
                Some(ProbeResult::Info(info)) if info.role == "master" => Some(info.clone()),
                _ => None,
            };
            let Some(master_node) = nodes.get(&view.master).cloned() else {
                continue;
            };
            if held.as_ref().is_some_and(|(old, until)| {
                *old != view.master || tokio::time::Instant::now() > *until
            }) {
                held = None;
            }
            let master = match by_addr.remove(&view.master) {
                // The failover's old master stays unused until sentinel names another one.
                _ if held.is_some() => None,
                Some(ProbeResult::Info(info)) if info.role == "master" => Some(NodeView {
                    node: master_node,
                    health: Health::Healthy,
                    offset: info.master_repl_offset,
                }),
                // Not (yet) confirmed: publish no master rather than send writes to a node that
                // would refuse them or, worse, accept them and lose them at its demotion.
                _ => None,
            };
            let mut replicas = Vec::new();
            for addr in &view.replicas {
                let Some(node) = nodes.get(addr).cloned() else {
                    continue;
                };
                let (health, offset) = match by_addr.remove(addr) {
                    Some(ProbeResult::Info(info)) => {
                        let health = match info.replica_health() {
                            Health::Healthy
                                if info.master_addr.as_deref() != Some(view.master.as_str()) =>
                            {
                                Health::WrongRole(format!(
                                    "replicates from {}",
                                    info.master_addr.clone().unwrap_or_else(|| "nothing".into())
                                ))
                            }
                            Health::Healthy => {
                                lag_health(self.max_lag, master_info.as_ref(), addr, &info)
                            }
                            other => other,
                        };
                        (health, info.slave_repl_offset)
                    }
                    Some(ProbeResult::Loading) => (Health::Loading, None),
                    Some(ProbeResult::Down(reason)) => (Health::Down(reason), None),
                    None => (Health::Unknown, None),
                };
                replicas.push(NodeView {
                    node,
                    health,
                    offset,
                });
            }
            let mut next = Topology::new(0, master, replicas);
            next.probed_at = Some(round);
            Topology::publish(next, &topology, &metrics, &self.pool);
        }
    }

    /// Asks the sentinels in turn, starting with the last one that answered.
    async fn ask_sentinels(
        &self,
        sentinels: &[String],
        current: &mut usize,
        conn: &mut Option<(TcpStream, BytesMut)>,
    ) -> Option<GroupView> {
        for _ in 0..sentinels.len() {
            let addr = &sentinels[*current % sentinels.len()];
            match tokio::time::timeout(self.timeout, self.ask(addr, conn)).await {
                Ok(Ok(view)) => return Some(view),
                Ok(Err(e)) => {
                    tracing::debug!(pool = %self.pool, sentinel = %addr, error = %e, "sentinel query failed")
                }
                Err(_) => {
                    tracing::debug!(pool = %self.pool, sentinel = %addr, "sentinel query timed out")
                }
            }
            *conn = None;
            *current += 1;
        }
        None
    }

    async fn ask(
        &self,
        addr: &str,
        conn: &mut Option<(TcpStream, BytesMut)>,
    ) -> Result<GroupView, String> {
        if conn.is_none() {
            let mut buf = BytesMut::new();
            let stream = handshake::connect(addr, &self.handshake(), self.timeout, &mut buf)
                .await
                .map_err(|e| e.to_string())?;
            *conn = Some((stream, buf));
        }
        let Some((stream, buf)) = conn.as_mut() else {
            return Err("no connection".into());
        };
        let name = self.master_name.as_bytes();
        let master = handshake::request_frame(
            stream,
            buf,
            &[b"SENTINEL", b"get-master-addr-by-name", name],
        )
        .await
        .map_err(|e| e.to_string())?;
        let master = match master {
            Frame::Array(items) if items.len() == 2 => {
                let host =
                    String::from_utf8_lossy(items[0].as_bytes().unwrap_or_default()).into_owned();
                let port =
                    String::from_utf8_lossy(items[1].as_bytes().unwrap_or_default()).into_owned();
                join_host_port(&host, &port)
            }
            Frame::Null => {
                return Err(format!(
                    "sentinel does not know master group '{}'",
                    self.master_name
                ))
            }
            other => {
                return Err(format!(
                    "unexpected reply to get-master-addr-by-name: {other:?}"
                ))
            }
        };
        let replicas = handshake::request_frame(stream, buf, &[b"SENTINEL", b"replicas", name])
            .await
            .map_err(|e| e.to_string())?;
        let sentinels = handshake::request_frame(stream, buf, &[b"SENTINEL", b"sentinels", name])
            .await
            .map_err(|e| e.to_string())?;
        Ok(GroupView {
            master,
            replicas: instances(&replicas, true),
            sentinels: instances(&sentinels, false),
        })
    }

    fn handshake(&self) -> Handshake {
        Handshake {
            username: self.sentinel_username.clone(),
            password: self.sentinel_password.clone(),
            protocol: Protocol::Resp2,
            readonly: false,
        }
    }

    /// Subscribes to a sentinel's event channels and signals every message, reconnecting with
    /// backoff until shutdown.
    fn listen(
        &self,
        addr: String,
        events: mpsc::Sender<Event>,
        shutdown: CancellationToken,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (hs, timeout, pool) = (self.handshake(), self.timeout, self.pool.clone());
        async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                let mut buf = BytesMut::new();
                let session = async {
                    let mut stream = handshake::connect(&addr, &hs, timeout, &mut buf)
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut req = BytesMut::new();
                    let mut args: Vec<&[u8]> = vec![b"SUBSCRIBE"];
                    args.extend(EVENTS.iter().map(|e| e.as_bytes()));
                    encode::command(&mut req, &args);
                    tokio::io::AsyncWriteExt::write_all(&mut stream, &req)
                        .await
                        .map_err(|e| e.to_string())?;
                    loop {
                        let reply = handshake::read_one(&mut stream, &mut buf)
                            .await
                            .map_err(|e| e.to_string())?;
                        if let Ok(Some((frame, _))) = Frame::parse(&reply.raw) {
                            if let Some(event) = Event::from_message(&frame) {
                                // A failover event must not be lost to a full queue.
                                if matches!(event, Event::Refresh) {
                                    let _ = events.try_send(event);
                                } else if events.send(event).await.is_err() {
                                    return Ok(());
                                }
                            }
                        }
                    }
                    #[allow(unreachable_code)]
                    Ok::<(), String>(())
                };
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = session => {
                        if let Err(e) = r {
                            tracing::debug!(pool = %pool, sentinel = %addr, error = %e, "sentinel subscription lost");
                        }
                    }
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// `ip:port` of every instance in a `SENTINEL replicas|sentinels` reply (RESP2: an array of
/// flat field/value arrays). With `skip_bad`, instances flagged `s_down`, `o_down` or
/// `disconnected` are left out (they cannot serve).
fn instances(reply: &Frame, skip_bad: bool) -> Vec<String> {
    let Frame::Array(list) = reply else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in list {
        let Frame::Array(fields) = item else { continue };
        let mut map = HashMap::new();
        for pair in fields.chunks(2) {
            if let [k, v] = pair {
                if let (Some(k), Some(v)) = (k.as_bytes(), v.as_bytes()) {
                    map.insert(
                        String::from_utf8_lossy(k).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    );
                }
            }
        }
        let (Some(ip), Some(port)) = (map.get("ip"), map.get("port")) else {
            continue;
        };
        let flags = map.get("flags").map(String::as_str).unwrap_or("");
        if skip_bad
            && flags
                .split(',')
                .any(|f| matches!(f, "s_down" | "o_down" | "disconnected"))
        {
            continue;
        }
        out.push(join_host_port(ip, port));
    }
    out
}

fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn b(s: &'static str) -> Frame {
        Frame::Bulk(Bytes::from_static(s.as_bytes()))
    }

    #[test]
    fn failover_events_name_their_group() {
        let msg = |ch: &'static str, payload: &'static str| {
            Frame::Array(vec![b("message"), b(ch), b(payload)])
        };
        assert_eq!(
            Event::from_message(&msg("+try-failover", "master mymaster 127.0.0.1 6379")),
            Some(Event::FailoverStarted("mymaster".into()))
        );
        assert_eq!(
            Event::from_message(&msg(
                "-failover-abort-no-good-slave",
                "master other 127.0.0.1 6380"
            )),
            Some(Event::FailoverAborted("other".into()))
        );
        assert_eq!(
            Event::from_message(&msg(
                "+switch-master",
                "mymaster 127.0.0.1 6379 127.0.0.1 6381"
            )),
            Some(Event::Refresh)
        );
        assert_eq!(Event::from_message(&b("x")), None);
    }

    #[test]
    fn instances_skip_unhealthy_flags() {
        let reply = Frame::Array(vec![
            Frame::Array(vec![
                b("name"),
                b("r1"),
                b("ip"),
                b("127.0.0.1"),
                b("port"),
                b("6381"),
                b("flags"),
                b("slave"),
            ]),
            Frame::Array(vec![
                b("ip"),
                b("127.0.0.1"),
                b("port"),
                b("6382"),
                b("flags"),
                b("s_down,slave"),
            ]),
            Frame::Array(vec![
                b("ip"),
                b("::1"),
                b("port"),
                b("6383"),
                b("flags"),
                b("slave,disconnected"),
            ]),
        ]);
        assert_eq!(instances(&reply, true), vec!["127.0.0.1:6381".to_string()]);
        assert_eq!(instances(&reply, false).len(), 3);
        assert_eq!(instances(&reply, false)[2], "[::1]:6383");
    }
}
