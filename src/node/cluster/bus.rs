//! The cluster bus's tasks: the listener on the bus port, one outgoing link per known node
//! (PING every `PING_INTERVAL` or sooner for a broadcast, read the PONG), and the cron that
//! detects failures, runs elections, follows role changes and saves the config file.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

use super::proto::{self, Kind, Pong, Request};
use super::state::Outgoing;
use super::{config_file, failover, gossip, sync_role};
use crate::node::clock::unix_ms;
use crate::node::shared::Shared;

/// How often each link pings its node, and how often the cron runs.
const TICK: Duration = Duration::from_millis(100);

/// One outgoing link, as the cron tracks it.
struct Link {
    addr: (String, u16),
    cancel: CancellationToken,
    tx: UnboundedSender<Kind>,
}

/// Starts the listener and the cron.
pub(crate) fn spawn(shared: Arc<Shared>, listener: TcpListener) {
    let (tx, rx) = unbounded_channel();
    if let Some(c) = shared.lock().cluster.as_mut() {
        c.outbox = Some(tx);
    }
    tokio::spawn(accept_loop(shared.clone(), listener));
    tokio::spawn(cron_loop(shared, rx));
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_peer(shared.clone(), stream, peer.ip().to_string()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "cluster bus accept failed");
                tokio::time::sleep(TICK).await;
            }
        }
    }
}

/// Answers one peer's requests until it hangs up (or goes silent for a minute).
async fn serve_peer(shared: Arc<Shared>, mut stream: TcpStream, peer_ip: String) {
    loop {
        let read = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            r = tokio::time::timeout(Duration::from_secs(60), proto::read::<Request, _>(&mut stream)) => r,
        };
        let Ok(Ok(req)) = read else { return };
        let pong = {
            let mut store = shared.lock();
            let offset = store.repl.offset;
            if let Kind::Publish(channel, message) = &req.kind {
                let mut own = bytes::BytesMut::new();
                store
                    .pubsub
                    .publish(&store.clients, channel, message, false, 0, &mut own);
            }
            let Some(c) = store.cluster.as_mut() else {
                return;
            };
            let pong = gossip::on_request(c, &peer_ip, req, offset, unix_ms());
            sync_role(&mut store);
            pong
        };
        if proto::write(&mut stream, &pong).await.is_err() {
            return;
        }
    }
}

/// Every tick, or when asked: failure detection and elections, role changes, links, config
/// file. Also sends the broadcasts asked for in between.
async fn cron_loop(shared: Arc<Shared>, mut outbox: UnboundedReceiver<Outgoing>) {
    let mut links: HashMap<String, Link> = HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            _ = tick.tick() => {}
            Some(out) = outbox.recv() => match out {
                Outgoing::Broadcast(kind) => {
                    broadcast(&links, kind);
                    continue;
                }
                Outgoing::Send(id, kind) => {
                    if let Some(l) = links.get(&id) {
                        let _ = l.tx.send(kind);
                    }
                    continue;
                }
                Outgoing::Wake => {}
            },
        }
        if !cron_step(&shared, &mut links) {
            break;
        }
    }
    for l in links.values() {
        l.cancel.cancel();
    }
}

fn broadcast(links: &HashMap<String, Link>, kind: Kind) {
    for l in links.values() {
        let _ = l.tx.send(kind.clone());
    }
}

/// One run of the periodic work; false once the node left cluster mode.
fn cron_step(shared: &Arc<Shared>, links: &mut HashMap<String, Link>) -> bool {
    let (out, wanted, save) = {
        let mut store = shared.lock();
        let offset = store.repl.offset;
        let rand = store.random();
        let Some(c) = store.cluster.as_mut() else {
            return false;
        };
        let out = failover::cron(c, offset, unix_ms(), rand);
        let wanted: Vec<(String, String, u16)> = c
            .nodes
            .values()
            .filter(|n| !n.myself)
            .map(|n| (n.id.clone(), n.ip.clone(), n.cport))
            .collect();
        let save =
            std::mem::take(&mut c.dirty).then(|| (c.config_file.clone(), config_file::render(c)));
        sync_role(&mut store);
        (out, wanted, save)
    };
    if let Some((path, text)) = save {
        if let Err(e) = config_file::write(&path, &text) {
            tracing::warn!(error = %e, "cannot save the cluster config file");
        }
    }
    reconcile(shared, links, wanted);
    // In order: a FAIL goes out before the vote request that relies on it.
    for kind in out {
        broadcast(links, kind);
    }
    true
}

/// Starts links to new nodes, stops links to forgotten or moved ones.
fn reconcile(
    shared: &Arc<Shared>,
    links: &mut HashMap<String, Link>,
    wanted: Vec<(String, String, u16)>,
) {
    links.retain(|id, l| {
        let keep = wanted
            .iter()
            .any(|(w, ip, cport)| w == id && l.addr == (ip.clone(), *cport));
        if !keep {
            l.cancel.cancel();
        }
        keep
    });
    for (id, ip, cport) in wanted {
        if links.contains_key(&id) {
            continue;
        }
        let cancel = CancellationToken::new();
        let (tx, rx) = unbounded_channel();
        tokio::spawn(link(
            shared.clone(),
            id.clone(),
            (ip.clone(), cport),
            cancel.clone(),
            rx,
        ));
        links.insert(
            id,
            Link {
                addr: (ip, cport),
                cancel,
                tx,
            },
        );
    }
}

/// One outgoing link: connect, then PING (or a queued broadcast) and read the PONG, forever.
async fn link(
    shared: Arc<Shared>,
    id: String,
    addr: (String, u16),
    cancel: CancellationToken,
    mut rx: UnboundedReceiver<Kind>,
) {
    loop {
        let timeout = Duration::from_millis(node_timeout(&shared).max(100));
        let connect = tokio::time::timeout(timeout, TcpStream::connect((addr.0.as_str(), addr.1)));
        let stream = tokio::select! {
            _ = cancel.cancelled() => return,
            r = connect => r,
        };
        let Ok(Ok(mut stream)) = stream else {
            set_connected(&shared, &id, false);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(TICK) => continue,
            }
        };
        let _ = stream.set_nodelay(true);
        loop {
            let kind = tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(TICK) => Kind::Ping,
                Some(k) = rx.recv() => k,
            };
            let Some(req) = build_request(&shared, &id, kind) else {
                return;
            };
            if proto::write(&mut stream, &req).await.is_err() {
                break;
            }
            let pong = tokio::select! {
                _ = cancel.cancelled() => return,
                r = tokio::time::timeout(timeout, proto::read::<Pong, _>(&mut stream)) => r,
            };
            let Ok(Ok(pong)) = pong else { break };
            let mut store = shared.lock();
            if let Some(c) = store.cluster.as_mut() {
                gossip::on_pong(c, &id, &addr.0, pong, unix_ms());
            }
            sync_role(&mut store);
        }
        set_connected(&shared, &id, false);
    }
}

/// The request to send to `id` (MEET while in handshake); `None` once `id` is gone.
fn build_request(shared: &Shared, id: &str, kind: Kind) -> Option<Request> {
    let mut store = shared.lock();
    let offset = store.repl.offset;
    let c = store.cluster.as_mut()?;
    let manual = c.election.as_ref().is_some_and(|e| e.manual);
    let n = c.nodes.get_mut(id)?;
    let kind = match kind {
        Kind::Ping if n.handshake => Kind::Meet,
        k => k,
    };
    if n.ping_sent == 0 {
        n.ping_sent = unix_ms();
    }
    *c.stats.sent.entry(kind.stat()).or_default() += 1;
    Some(Request {
        h: gossip::header(c, offset, manual && matches!(kind, Kind::AuthRequest)),
        gossip: gossip::gossip(c, id),
        kind,
    })
}

fn set_connected(shared: &Shared, id: &str, up: bool) {
    let mut store = shared.lock();
    if let Some(n) = store.cluster.as_mut().and_then(|c| c.nodes.get_mut(id)) {
        n.connected = up;
    }
}

fn node_timeout(shared: &Shared) -> u64 {
    let store = shared.lock();
    store
        .cluster
        .as_ref()
        .map_or(15_000, |c| u64::try_from(c.node_timeout).unwrap_or(15_000))
}
