//! Cluster redirects handled inside the proxy, so clients never see MOVED or ASK.
//!
//! * MOVED: the slot has a new owner. The slot is fixed in the published map at once (so the
//!   next request goes straight there), a full refresh is requested, and the request is sent
//!   to the new owner.
//! * ASK: the slot is migrating and this key is already on the target. `ASKING` and the
//!   request go to the target together on a dedicated connection (on a shared one another
//!   client's command could consume the one-shot ASKING flag); nothing is cached.
//! * TRYAGAIN (a multi-key request during a migration), CLUSTERDOWN and LOADING: wait a
//!   little and try again, within `master_wait`, then give the client the error.
//! * A connection error to a node: a refresh is requested (the node may have failed over) and
//!   the request is retried on the slot's owner, if it certainly did not run or is a read.
//!
//! Hops are bounded, so a cluster that disagrees with itself cannot loop a request forever.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::backend::mux::ReplyResult;
use crate::backend::per_user::Via;
use crate::backend::{BackendError, Node};
use crate::pool::Pool;
use crate::resp::{Protocol, Reply};
use crate::route::RouteError;
use crate::topology::Topology;

/// Most MOVED/ASK redirects one request follows.
pub(crate) const MAX_HOPS: u32 = 5;

/// A reply that is not the answer yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Redirect {
    /// `-MOVED slot host:port`
    Moved {
        /// The slot.
        slot: u16,
        /// Its owner.
        addr: String,
    },
    /// `-ASK slot host:port`
    Ask {
        /// The slot.
        slot: u16,
        /// Where the key is now.
        addr: String,
    },
    /// `-TRYAGAIN`: a multi-key request while its keys are split by a migration.
    TryAgain,
    /// `-CLUSTERDOWN`: the cluster cannot serve (failover in progress, slots uncovered).
    ClusterDown,
    /// `-LOADING`: the node is loading its dataset.
    Loading,
}

/// Recognises the cluster errors the proxy handles itself.
pub(crate) fn classify(reply: &Reply) -> Option<Redirect> {
    let raw = &reply.raw;
    if raw.first() != Some(&b'-') {
        return None;
    }
    let text = raw[1..].strip_suffix(b"\r\n").unwrap_or(&raw[1..]);
    let target = |rest: &[u8]| -> Option<(u16, String)> {
        let rest = std::str::from_utf8(rest).ok()?;
        let (slot, addr) = rest.trim().split_once(' ')?;
        Some((slot.parse().ok()?, addr.trim().to_string()))
    };
    if let Some(rest) = text.strip_prefix(b"MOVED ") {
        let (slot, addr) = target(rest)?;
        return Some(Redirect::Moved { slot, addr });
    }
    if let Some(rest) = text.strip_prefix(b"ASK ") {
        let (slot, addr) = target(rest)?;
        return Some(Redirect::Ask { slot, addr });
    }
    if text.starts_with(b"TRYAGAIN") {
        return Some(Redirect::TryAgain);
    }
    if text.starts_with(b"CLUSTERDOWN") {
        return Some(Redirect::ClusterDown);
    }
    if text.starts_with(b"LOADING") {
        return Some(Redirect::Loading);
    }
    None
}

/// True when a reply (or failure) should be handed to [`follow`] rather than to the client.
pub(crate) fn needs_follow(res: &ReplyResult, read: bool) -> bool {
    match res {
        Ok(reply) => reply.raw.first() == Some(&b'-') && classify(reply).is_some(),
        Err(e) => e.not_sent() || read,
    }
}

/// Sends a request on `slot` (None: keyless) to its node and follows redirects to the answer.
pub(crate) async fn execute(
    pool: Arc<Pool>,
    raw: Bytes,
    slot: Option<u16>,
    read: bool,
    via: Via,
) -> ReplyResult {
    let deadline = tokio::time::Instant::now() + pool.cfg.master_wait;
    let node = match pick(&pool, slot, read, None, deadline).await {
        Ok(n) => n,
        Err(reply) => return Ok(reply),
    };
    let first = send(&node, raw.clone(), &via).await;
    follow(pool, raw, slot, read, via, node, first).await
}

/// Sends to one given node (as the client, `via` its connections) and waits for the reply.
pub(crate) async fn send(node: &Arc<Node>, raw: Bytes, via: &Via) -> ReplyResult {
    via.send(node, raw, 0).await.unwrap_or_else(|_| {
        Err(BackendError::ConnectionLost {
            addr: node.addr.clone(),
            reason: "request dropped".into(),
        })
    })
}

/// Follows `last` (the reply `node` gave) until a real answer, a hop limit or `master_wait`.
pub(crate) async fn follow(
    pool: Arc<Pool>,
    raw: Bytes,
    slot: Option<u16>,
    read: bool,
    via: Via,
    mut node: Arc<Node>,
    mut last: ReplyResult,
) -> ReplyResult {
    let deadline = tokio::time::Instant::now() + pool.cfg.master_wait;
    let mut hops = 0;
    let mut waits = 0u32;
    loop {
        let expired = tokio::time::Instant::now() >= deadline;
        let (next, asking) = match &last {
            Ok(reply) => match classify(reply) {
                None => return last,
                Some(Redirect::Moved { slot: s, addr }) => {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return last;
                    }
                    pool.refresh.notify_one();
                    apply_moved(&pool, s, &addr);
                    match node_for(&pool, &addr, deadline).await {
                        Some(n) => (n, false),
                        None => return last,
                    }
                }
                Some(Redirect::Ask { addr, .. }) => {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return last;
                    }
                    // Many ASKs mean a migration in progress: its end is a map change.
                    pool.refresh.notify_one();
                    match node_for(&pool, &addr, deadline).await {
                        Some(n) => (n, true),
                        None => return last,
                    }
                }
                Some(r @ (Redirect::TryAgain | Redirect::ClusterDown | Redirect::Loading)) => {
                    if expired {
                        return last;
                    }
                    pool.refresh.notify_one();
                    backoff(&mut waits).await;
                    // A loading replica is skipped for reads; the others are about the slot.
                    let avoid = (r == Redirect::Loading).then_some(node.as_ref());
                    match pick(&pool, slot, read, avoid, deadline).await {
                        Ok(n) => (n, false),
                        Err(_) => (node.clone(), false),
                    }
                }
            },
            Err(e) => {
                if expired || !(e.not_sent() || read) {
                    return last;
                }
                pool.refresh.notify_one();
                backoff(&mut waits).await;
                match pick(&pool, slot, read, Some(&node), deadline).await {
                    Ok(n) => (n, false),
                    Err(reply) => return Ok(reply),
                }
            }
        };
        last = if asking {
            ask(&next, &raw, pool.cfg.request_timeout, &via).await
        } else {
            send(&next, raw.clone(), &via).await
        };
        node = next;
    }
}

/// When `reply` is a MOVED to a node the map knows: fixes the slot in the map, asks for a
/// refresh and sends `raw` to that node at once (synchronously, so the caller's later
/// requests queue behind it). Returns the node and its reply receiver.
pub(crate) fn resend_moved(
    pool: &Pool,
    reply: &Reply,
    raw: &Bytes,
    via: &Via,
) -> Option<(Arc<Node>, tokio::sync::oneshot::Receiver<ReplyResult>)> {
    let Some(Redirect::Moved { slot, addr }) = classify(reply) else {
        return None;
    };
    pool.refresh.notify_one();
    apply_moved(pool, slot, &addr);
    let node = pool
        .topology
        .load()
        .cluster
        .as_ref()
        .and_then(|m| m.node(&addr).cloned())?;
    let rx = via.send(&node, raw.clone(), 0);
    Some((node, rx))
}

/// For a request on a dedicated connection (blocking commands): where a MOVED or ASK reply
/// points, and whether `ASKING` must precede the retry. A MOVED also fixes the map and asks
/// for a refresh. `None` for any other reply.
pub(crate) async fn redirect_target(pool: &Pool, reply: &Reply) -> Option<(Arc<Node>, bool)> {
    let deadline = tokio::time::Instant::now() + pool.cfg.master_wait;
    match classify(reply)? {
        Redirect::Moved { slot, addr } => {
            pool.refresh.notify_one();
            apply_moved(pool, slot, &addr);
            Some((node_for(pool, &addr, deadline).await?, false))
        }
        Redirect::Ask { addr, .. } => {
            pool.refresh.notify_one();
            Some((node_for(pool, &addr, deadline).await?, true))
        }
        _ => None,
    }
}

/// Waits before retrying: short at first, longer as retries accumulate (a failover takes
/// the cluster's node timeout, a migration step a few milliseconds).
async fn backoff(waits: &mut u32) {
    let ms = [5u64, 10, 25, 50, 100][(*waits as usize).min(4)];
    *waits += 1;
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// A node for `slot` in the current map, or the error reply to give instead. A read that
/// finds no other replica of the slot's shard in the read pool waits for one until
/// `deadline` (woken by the topology's announcements); `avoid` (the node that just failed)
/// counts again once it is back in the read pool and connected.
async fn pick(
    pool: &Pool,
    slot: Option<u16>,
    read: bool,
    avoid: Option<&Node>,
    deadline: tokio::time::Instant,
) -> Result<Arc<Node>, Reply> {
    let route = |topo: &Topology, avoid: Option<&Node>| match topo.cluster.as_ref() {
        Some(map) => pool.router.cluster(map, slot, read, avoid),
        None => Err(RouteError::SlotNotServed),
    };
    let routed = match route(&pool.topology.load(), avoid) {
        Err(RouteError::NoReplica(_)) => {
            // A replica left out as lagging may be fine by now: look again soon.
            pool.refresh.notify_one();
            pool.topology
                .wait_for(deadline, |t| route(t, None).is_ok())
                .await;
            route(&pool.topology.load(), None)
        }
        routed => routed,
    };
    routed.map_err(|e| crate::resp::ClientError::from(e).to_reply())
}

/// An error reply with this text.
pub(crate) fn error_reply(text: &str) -> Reply {
    let mut b = BytesMut::new();
    crate::resp::encode::error(&mut b, text);
    Reply::new(b.freeze(), false)
}

/// The node at `addr`: a known one, or, for a node the map does not have yet, the one the
/// next refresh brings (waiting until `deadline`).
async fn node_for(pool: &Pool, addr: &str, deadline: tokio::time::Instant) -> Option<Arc<Node>> {
    loop {
        if let Some(n) = pool
            .topology
            .load()
            .cluster
            .as_ref()
            .and_then(|m| m.node(addr))
        {
            return Some(n.clone());
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        pool.refresh.notify_one();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Points `slot` at the shard whose master is `addr` in the published snapshot, ahead of the
/// refresh. `rcu` re-applies the change when another MOVED was published in between, so two
/// clients' redirects for different slots never undo each other; a full refresh stored later
/// is the newer view and replaces both.
fn apply_moved(pool: &Pool, slot: u16, addr: &str) {
    pool.topology.rcu(|current| {
        match current
            .cluster
            .as_ref()
            .and_then(|m| m.with_slot_moved(slot, addr))
        {
            Some(moved) => Arc::new(Topology {
                cluster: Some(Arc::new(moved)),
                ..Topology::clone(current)
            }),
            None => current.clone(),
        }
    });
}

/// `ASKING` then the request on one dedicated connection (logged in as the client's user in
/// passthrough pools); the second reply is the answer. Bounded by `timeout` like a request
/// on a shared connection (a node that stops answering must not hold the client forever); a
/// connection that timed out is dropped.
async fn ask(node: &Node, raw: &Bytes, timeout: Duration, via: &Via) -> ReplyResult {
    let mut conn = via.dedicated(node, Protocol::Resp3).await?;
    let mut req = BytesMut::with_capacity(raw.len() + 16);
    crate::resp::encode::command(&mut req, &[b"ASKING"]);
    req.extend_from_slice(raw);
    let exchange = async {
        conn.write(&req).await?;
        let asking = conn.read().await?;
        let reply = conn.read().await?;
        Ok::<_, BackendError>((asking, reply))
    };
    let (asking, reply) = match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(BackendError::Timeout {
                addr: node.addr.clone(),
                ms: timeout.as_millis() as u64,
            })
        }
    };
    if !asking.is_error() {
        node.dedicated.checkin(conn);
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(s: &str) -> Reply {
        Reply::new(Bytes::from(s.to_string()), false)
    }

    #[test]
    fn recognises_redirects() {
        assert_eq!(
            classify(&reply("-MOVED 3999 127.0.0.1:6381\r\n")),
            Some(Redirect::Moved {
                slot: 3999,
                addr: "127.0.0.1:6381".into()
            })
        );
        assert_eq!(
            classify(&reply("-ASK 12 10.0.0.1:7000\r\n")),
            Some(Redirect::Ask {
                slot: 12,
                addr: "10.0.0.1:7000".into()
            })
        );
        assert_eq!(
            classify(&reply(
                "-TRYAGAIN Multiple keys request during rehashing of slot\r\n"
            )),
            Some(Redirect::TryAgain)
        );
        assert_eq!(
            classify(&reply("-CLUSTERDOWN The cluster is down\r\n")),
            Some(Redirect::ClusterDown)
        );
        assert_eq!(classify(&reply("-ERR MOVED\r\n")), None);
        assert_eq!(classify(&reply("+MOVED 1 a:1\r\n")), None);
        assert_eq!(classify(&reply("-MOVED x\r\n")), None);
    }
}
