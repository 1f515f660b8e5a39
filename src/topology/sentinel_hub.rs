//! Connections to one set of sentinels, shared by every pool that follows a master group of
//! that set.
//!
//! One sentinel deployment usually monitors several master groups, and a proxy commonly has a
//! pool per group. Without sharing, each pool would hold its own query connection and its own
//! subscription to every sentinel, multiplying the sentinels' client count and the event
//! traffic by the number of pools. A hub owns, per sentinel set and credentials:
//! - one query connection (to the sentinel that answered last; rotated past dead ones), used
//!   by one task that answers the pools' queries one at a time;
//! - one event subscription per known sentinel, fanned out to every pool over a broadcast
//!   channel (each pool filters the failover events by its group name).
//!
//! Sentinels discovered through `SENTINEL sentinels` join the set for every pool. The hub stops
//! when the last pool using it drops its handle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::BytesMut;

use crate::tls::{Connector, NodeStream};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::backend::handshake::{self, Handshake};
use crate::resp::{encode, Frame, Protocol};

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

/// Name our sentinel connections carry (`CLIENT LIST` on a sentinel shows who is connected).
const CLIENT_NAME: &[u8] = b"sluice-sentinel";

/// Capacity of the event fan-out; a pool that falls further behind refreshes instead.
const EVENT_BACKLOG: usize = 1024;

/// What a sentinel's message means for a watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
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

/// What a sentinel said about one master group.
#[derive(Debug, Clone)]
pub(crate) struct GroupView {
    /// `host:port` of the master sentinel names.
    pub(crate) master: String,
    /// Replicas sentinel does not flag as down or disconnected.
    pub(crate) replicas: Vec<String>,
    /// The other sentinels of the group.
    pub(crate) sentinels: Vec<String>,
}

/// How to reach a set of sentinels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct HubKey {
    /// Configured sentinel addresses, sorted (two pools listing them in another order share).
    pub(crate) sentinels: Vec<String>,
    /// ACL user for the sentinels.
    pub(crate) username: Option<String>,
    /// Password for the sentinels.
    pub(crate) password: Option<String>,
    /// TLS toward the sentinels (the pool's `backend_tls`). A connector is its pool's own,
    /// compared by identity: a reload that re-reads certificates updates it in place, so the
    /// hub's new connections use them.
    pub(crate) tls: Option<Arc<Connector>>,
}

impl HubKey {
    /// The key of a configured sentinel list and its credentials.
    pub(crate) fn new(
        sentinels: &[String],
        username: Option<String>,
        password: Option<String>,
    ) -> Self {
        let mut sentinels = sentinels.to_vec();
        sentinels.sort();
        sentinels.dedup();
        HubKey {
            sentinels,
            username,
            password,
            tls: None,
        }
    }
}

/// One query: the group's name, and where to send what a sentinel said (None: none answered).
struct Query {
    master_name: String,
    reply: oneshot::Sender<Option<GroupView>>,
}

/// A handle on a hub. Cloned `Arc`s share it; the hub's tasks stop with the last one.
pub(crate) struct SentinelHub {
    queries: mpsc::Sender<Query>,
    events: broadcast::Sender<Event>,
    _stop: DropGuard,
}

impl SentinelHub {
    /// Starts a hub: its query task and a subscription to each configured sentinel.
    fn start(key: &HubKey, timeout: Duration, shutdown: CancellationToken) -> SentinelHub {
        let stop = shutdown.child_token();
        let (queries, rx) = mpsc::channel(64);
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        let worker = QueryWorker {
            handshake: Handshake {
                username: key.username.clone(),
                password: key.password.clone(),
                protocol: Protocol::Resp2,
                readonly: false,
                tls: key.tls.clone(),
                for_client: false,
            },
            timeout,
            known: Vec::new(),
            current: 0,
            conn: None,
            events: events.clone(),
            stop: stop.clone(),
        };
        tokio::spawn(worker.run(key.sentinels.clone(), rx));
        SentinelHub {
            queries,
            events,
            _stop: stop.drop_guard(),
        }
    }

    /// Events from every known sentinel, from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Asks the sentinels (the last one that answered first) about `master_name`. None when
    /// no sentinel answered.
    pub(crate) async fn ask(&self, master_name: &str) -> Option<GroupView> {
        let (reply, rx) = oneshot::channel();
        let query = Query {
            master_name: master_name.to_string(),
            reply,
        };
        self.queries.send(query).await.ok()?;
        rx.await.ok().flatten()
    }
}

/// The hubs of a process, so that pools on the same sentinels find the same hub.
#[derive(Default)]
pub(crate) struct SentinelHubs {
    hubs: Mutex<HashMap<HubKey, Weak<SentinelHub>>>,
}

impl SentinelHubs {
    /// The hub for `key`, started if no live pool uses one yet.
    pub(crate) fn get(
        &self,
        key: HubKey,
        timeout: Duration,
        shutdown: &CancellationToken,
    ) -> Arc<SentinelHub> {
        // A poisoned lock only means another pool panicked mid-insert; the map is still valid.
        let mut hubs = self.hubs.lock().unwrap_or_else(|p| p.into_inner());
        hubs.retain(|_, hub| hub.strong_count() > 0);
        if let Some(hub) = hubs.get(&key).and_then(Weak::upgrade) {
            return hub;
        }
        let hub = Arc::new(SentinelHub::start(&key, timeout, shutdown.clone()));
        hubs.insert(key, Arc::downgrade(&hub));
        hub
    }
}

/// The hub's task: owns the query connection and the list of known sentinels.
struct QueryWorker {
    handshake: Handshake,
    timeout: Duration,
    known: Vec<String>,
    current: usize,
    conn: Option<(NodeStream, BytesMut)>,
    events: broadcast::Sender<Event>,
    stop: CancellationToken,
}

impl QueryWorker {
    async fn run(mut self, configured: Vec<String>, mut queries: mpsc::Receiver<Query>) {
        for addr in configured {
            self.learn(addr);
        }
        loop {
            let query = tokio::select! {
                _ = self.stop.cancelled() => return,
                q = queries.recv() => match q {
                    Some(q) => q,
                    None => return,
                },
            };
            let view = self.ask_any(&query.master_name).await;
            if let Some(v) = &view {
                for s in v.sentinels.clone() {
                    self.learn(s);
                }
            }
            let _ = query.reply.send(view);
        }
    }

    /// Adds a sentinel to the known set and subscribes to its events.
    fn learn(&mut self, addr: String) {
        if self.known.contains(&addr) {
            return;
        }
        tokio::spawn(listen(
            addr.clone(),
            self.handshake.clone(),
            self.timeout,
            self.events.clone(),
            self.stop.clone(),
        ));
        self.known.push(addr);
    }

    /// Asks the known sentinels in turn, starting with the last one that answered.
    async fn ask_any(&mut self, master_name: &str) -> Option<GroupView> {
        for _ in 0..self.known.len() {
            let addr = self.known[self.current % self.known.len()].clone();
            match tokio::time::timeout(self.timeout, self.ask(&addr, master_name)).await {
                Ok(Ok(view)) => return Some(view),
                Ok(Err(e)) => {
                    tracing::debug!(sentinel = %addr, group = %master_name, error = %e, "sentinel query failed")
                }
                Err(_) => {
                    tracing::debug!(sentinel = %addr, group = %master_name, "sentinel query timed out")
                }
            }
            self.conn = None;
            self.current += 1;
        }
        None
    }

    async fn ask(&mut self, addr: &str, name: &str) -> Result<GroupView, String> {
        if self.conn.is_none() {
            let mut buf = BytesMut::new();
            let mut stream = handshake::connect(addr, &self.handshake, self.timeout, &mut buf)
                .await
                .map_err(|e| e.to_string())?;
            set_name(&mut stream, &mut buf).await?;
            self.conn = Some((stream, buf));
        }
        let Some((stream, buf)) = self.conn.as_mut() else {
            return Err("no connection".into());
        };
        let name_b = name.as_bytes();
        let master = handshake::request_frame(
            stream,
            buf,
            &[b"SENTINEL", b"get-master-addr-by-name", name_b],
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
            Frame::Null => return Err(format!("sentinel does not know master group '{name}'")),
            other => {
                return Err(format!(
                    "unexpected reply to get-master-addr-by-name: {other:?}"
                ))
            }
        };
        let replicas = handshake::request_frame(stream, buf, &[b"SENTINEL", b"replicas", name_b])
            .await
            .map_err(|e| e.to_string())?;
        let sentinels = handshake::request_frame(stream, buf, &[b"SENTINEL", b"sentinels", name_b])
            .await
            .map_err(|e| e.to_string())?;
        Ok(GroupView {
            master,
            replicas: instances(&replicas, true),
            sentinels: instances(&sentinels, false),
        })
    }
}

/// Names a sentinel connection so operators can tell sluice's connections apart.
async fn set_name(stream: &mut NodeStream, buf: &mut BytesMut) -> Result<(), String> {
    match handshake::request_frame(stream, buf, &[b"CLIENT", b"SETNAME", CLIENT_NAME]).await {
        Ok(Frame::Error(e)) => {
            // Not fatal: an old sentinel without CLIENT SETNAME is still a sentinel.
            tracing::debug!(error = %String::from_utf8_lossy(&e), "sentinel refused CLIENT SETNAME");
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Subscribes to a sentinel's event channels and broadcasts every message, reconnecting with
/// backoff until `stop`.
async fn listen(
    addr: String,
    hs: Handshake,
    timeout: Duration,
    events: broadcast::Sender<Event>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut buf = BytesMut::new();
        let session = async {
            let mut stream = handshake::connect(&addr, &hs, timeout, &mut buf)
                .await
                .map_err(|e| e.to_string())?;
            set_name(&mut stream, &mut buf).await?;
            let mut req = BytesMut::new();
            let mut args: Vec<&[u8]> = vec![b"SUBSCRIBE"];
            args.extend(EVENTS.iter().map(|e| e.as_bytes()));
            encode::command(&mut req, &args);
            stream
                .write_all_flushed(&req)
                .await
                .map_err(|e| e.to_string())?;
            loop {
                let reply = handshake::read_one(&mut stream, &mut buf)
                    .await
                    .map_err(|e| e.to_string())?;
                if let Ok(Some((frame, _))) = Frame::parse(&reply.raw) {
                    if let Some(event) = Event::from_message(&frame) {
                        // No receiver yet is fine: pools subscribe when they start.
                        let _ = events.send(event);
                    }
                }
            }
            #[allow(unreachable_code)]
            Ok::<(), String>(())
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            r = session => {
                if let Err(e) = r {
                    tracing::debug!(sentinel = %addr, error = %e, "sentinel subscription lost");
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
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

    #[test]
    fn hub_keys_ignore_sentinel_order() {
        let a = HubKey::new(&["b:1".into(), "a:1".into()], None, None);
        let b = HubKey::new(&["a:1".into(), "b:1".into(), "a:1".into()], None, None);
        assert_eq!(a, b);
        let c = HubKey::new(&["a:1".into(), "b:1".into()], None, Some("pw".into()));
        assert_ne!(a, c);
    }
}
