//! Node sources: one connection per node of the pool (masters and replicas) in
//! `CLIENT TRACKING on BCAST` mode, so the node reports every key that changes on it; the
//! hub routes each report to the clients that read the key (or watch its prefix).
//!
//! Why BCAST on a connection of its own rather than tracking on the shared connections:
//! a shared connection serves many clients, so the node's per-connection table could not
//! say which client read a key, and replies to reads taken from replicas would have no
//! source at all. Why the replicas too: a read served by a replica that has not yet applied
//! a write returns the old value *after* the master reported the change; the replica's own
//! report, when it applies the write, is what tells that reader.
//!
//! A source that breaks (or a node that comes back) may have missed reports: its loss
//! flushes every tracking client (a null invalidation, "forget everything"), as a client
//! library does when its own connection breaks.
//!
//! The sources run while the pool has tracking clients; a manager task follows the
//! topology (failovers, replicas coming and going) and stops them when the last tracking
//! client is gone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::fence::{Evictions, Fence};
use crate::backend::{DirectConn, Node};
use crate::pool::Pool;
use crate::resp::{Frame, Protocol};
use crate::topology::Topology;

/// A running source.
pub(super) struct Handle {
    /// The node's tracking connection is established and in BCAST mode.
    pub(super) up: Arc<AtomicBool>,
    /// The node's answer when it refused `CLIENT TRACKING on BCAST` (a server without it).
    refused: Arc<std::sync::Mutex<Option<String>>>,
    /// The node is the pool's master (BCAST clients hear from the master only).
    master: Arc<AtomicBool>,
    /// Replies from this node wait here while it may evict (see `fence`).
    pub(super) fence: Arc<Fence>,
    task: tokio::task::AbortHandle,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the manager unless it runs.
pub(super) fn ensure_running(pool: &Arc<Pool>) {
    let mut s = pool.registry.tracking.sources();
    if !s.running {
        s.running = true;
        tokio::spawn(manage(pool.clone()));
    }
}

/// The nodes that need a source: every master (of every shard, in a cluster pool) and
/// every known replica.
fn wanted(topo: &Topology) -> Vec<(Arc<Node>, bool)> {
    if let Some(map) = &topo.cluster {
        return map
            .shards
            .iter()
            .flat_map(|s| {
                std::iter::once((s.master.node.clone(), true))
                    .chain(s.replicas.iter().map(|r| (r.node.clone(), false)))
            })
            .collect();
    }
    topo.master
        .iter()
        .map(|m| (m.node.clone(), true))
        .chain(topo.replicas.iter().map(|r| (r.node.clone(), false)))
        .collect()
}

/// The first node that must have its source up before a client may start tracking (the
/// masters and the replicas reads go to), or `None` when all have.
pub(super) fn first_missing(pool: &Pool) -> Option<Missing> {
    let topo = pool.topology.load();
    let needed: Vec<&Arc<Node>> = match &topo.cluster {
        Some(map) if !map.shards.is_empty() => map
            .shards
            .iter()
            .flat_map(|s| std::iter::once(&s.master.node).chain(s.readable.iter()))
            .collect(),
        Some(_) => return Some(Missing::new("(no slot map)")),
        None => match &topo.master {
            Some(m) => std::iter::once(&m.node)
                .chain(topo.readable.iter())
                .collect(),
            None => return Some(Missing::new("(no master)")),
        },
    };
    let s = pool.registry.tracking.sources();
    needed
        .into_iter()
        .find(|n| {
            !s.by_addr
                .get(&n.addr)
                .is_some_and(|h| h.up.load(Ordering::Relaxed))
        })
        .map(|n| Missing {
            addr: n.addr.clone(),
            refused: s
                .by_addr
                .get(&n.addr)
                .and_then(|h| h.refused.lock().unwrap_or_else(|e| e.into_inner()).clone()),
        })
}

/// A node whose source is not up yet.
pub(super) struct Missing {
    pub(super) addr: String,
    /// The node refused tracking: waiting will not help.
    pub(super) refused: Option<String>,
}

impl Missing {
    fn new(addr: &str) -> Missing {
        Missing {
            addr: addr.into(),
            refused: None,
        }
    }
}

/// Keeps one source per node of the topology while any client tracks (or is enabling).
async fn manage(pool: Arc<Pool>) {
    let hub = &pool.registry.tracking;
    let mut changed = pool.topology.subscribe();
    loop {
        let want = wanted(&pool.topology.load());
        {
            let mut s = hub.sources();
            if s.enabling == 0 && hub.no_clients() {
                s.by_addr.clear();
                s.running = false;
                return;
            }
            s.by_addr
                .retain(|addr, _| want.iter().any(|(n, _)| n.addr == *addr));
            for (node, is_master) in want {
                match s.by_addr.get(&node.addr) {
                    Some(h) => h.master.store(is_master, Ordering::Relaxed),
                    None => {
                        let up = Arc::new(AtomicBool::new(false));
                        let refused = Arc::default();
                        let master = Arc::new(AtomicBool::new(is_master));
                        let fence = Arc::new(Fence::default());
                        let task = tokio::spawn(run(
                            pool.clone(),
                            node.clone(),
                            up.clone(),
                            Arc::clone(&refused),
                            master.clone(),
                            fence.clone(),
                        ))
                        .abort_handle();
                        s.by_addr.insert(
                            node.addr.clone(),
                            Handle {
                                up,
                                refused,
                                master,
                                fence,
                                task,
                            },
                        );
                    }
                }
            }
        }
        // A topology change, or a periodic look at whether anyone still tracks.
        tokio::select! {
            r = changed.changed() => if r.is_err() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            },
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// One node's source: connects, reads reports, reconnects with backoff.
async fn run(
    pool: Arc<Pool>,
    node: Arc<Node>,
    up: Arc<AtomicBool>,
    refused: Arc<std::sync::Mutex<Option<String>>>,
    master: Arc<AtomicBool>,
    fence: Arc<Fence>,
) {
    const MIN_BACKOFF: Duration = Duration::from_millis(50);
    let hub = &pool.registry.tracking;
    let mut backoff = MIN_BACKOFF;
    let mut first = true;
    loop {
        let evictions = master.load(Ordering::Relaxed).then_some(&hub.evictions);
        match open(&node, evictions).await {
            Ok(mut conn) => {
                backoff = MIN_BACKOFF;
                *refused.lock().unwrap_or_else(|e| e.into_inner()) = None;
                up.store(true, Ordering::Relaxed);
                // Reports made while it was down are lost: clients that may have read there
                // forget everything (on the first connection: only those that read since).
                hub.flush(&pool.registry, !first);
                first = false;
                hub.announce();
                let err = serve(&pool, &mut conn, &master, &fence).await;
                // Nothing more will pass the fence: release whoever waits there (the loss
                // flushes every tracking client below).
                fence.passed(fence.taken());
                up.store(false, Ordering::Relaxed);
                tracing::warn!(node = %node.addr, error = %err, "tracking source lost: tracking clients flushed");
                hub.flush(&pool.registry, true);
            }
            Err(Open::Refused(e)) => {
                tracing::warn!(node = %node.addr, error = %e, "node refused CLIENT TRACKING on BCAST");
                *refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                hub.announce();
            }
            Err(Open::Unavailable(e)) => {
                tracing::debug!(node = %node.addr, error = %e, "tracking source connect failed");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

/// Reads a connected source's reports until it breaks, and pings it for the fence.
async fn serve(
    pool: &Pool,
    conn: &mut DirectConn,
    master: &AtomicBool,
    fence: &Fence,
) -> crate::backend::BackendError {
    let hub = &pool.registry.tracking;
    // Tickets covered by the PINGs sent, and the PINGs whose PONG has not come, in order.
    let mut pinged = 0;
    let mut pings = std::collections::VecDeque::new();
    loop {
        tokio::select! {
            read = conn.read() => {
                let reply = match read {
                    Ok(reply) => reply,
                    Err(e) => return e,
                };
                match invalidation(&reply.raw) {
                    Some(Some(keys)) => {
                        hub.invalidate(&pool.registry, &keys, master.load(Ordering::Relaxed))
                    }
                    Some(None) => hub.flush(&pool.registry, master.load(Ordering::Relaxed)),
                    // Not a push: the PONG of the oldest PING.
                    None if !reply.raw.starts_with(b">") => {
                        if let Some(upto) = pings.pop_front() {
                            fence.passed(upto);
                        }
                    }
                    None => {}
                }
            }
            upto = fence.wanted(pinged) => {
                if let Err(e) = conn.write(b"*1\r\n$4\r\nPING\r\n").await {
                    return e;
                }
                pinged = upto;
                pings.push_back(upto);
            }
        }
    }
}

/// Why a source could not open.
enum Open {
    /// No connection.
    Unavailable(String),
    /// The node answered `CLIENT TRACKING on BCAST` with an error (its words).
    Refused(String),
}

/// A RESP3 connection to `node` in `CLIENT TRACKING on BCAST` mode. A master's eviction
/// settings are learned first (before tracking, no report can come between a request and
/// its reply).
async fn open(node: &Node, evictions: Option<&Evictions>) -> Result<DirectConn, Open> {
    let mut conn = node
        .dedicated
        .checkout(Protocol::Resp3)
        .await
        .map_err(|e| Open::Unavailable(e.to_string()))?;
    if let Some(evictions) = evictions {
        for get in [
            &b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$9\r\nmaxmemory\r\n"[..],
            b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$16\r\nmaxmemory-policy\r\n",
        ] {
            let reply = conn
                .request(get)
                .await
                .map_err(|e| Open::Unavailable(e.to_string()))?;
            evictions.learn(&reply.raw);
        }
    }
    let reply = conn
        .request(b"*4\r\n$6\r\nCLIENT\r\n$8\r\nTRACKING\r\n$2\r\non\r\n$5\r\nBCAST\r\n")
        .await
        .map_err(|e| Open::Unavailable(e.to_string()))?;
    if reply.is_error() {
        let text = String::from_utf8_lossy(&reply.raw[1..])
            .trim_end()
            .to_string();
        return Err(Open::Refused(text));
    }
    Ok(conn)
}

/// The keys of an `invalidate` push (`Some(None)`: a flush, every key), or `None` for any
/// other frame.
fn invalidation(raw: &[u8]) -> Option<Option<Vec<Bytes>>> {
    let Ok(Some((Frame::Push(mut items), _))) = Frame::parse(raw) else {
        return None;
    };
    if items.len() != 2 || !matches!(&items[0], Frame::Bulk(b) if b.as_ref() == b"invalidate") {
        return None;
    }
    match items.pop() {
        Some(Frame::Array(keys)) => Some(Some(
            keys.into_iter()
                .filter_map(|k| match k {
                    Frame::Bulk(b) | Frame::Simple(b) => Some(b),
                    _ => None,
                })
                .collect(),
        )),
        Some(Frame::Null) => Some(None),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::invalidation;

    #[test]
    fn invalidate_pushes_are_recognised() {
        let keys = invalidation(b">2\r\n$10\r\ninvalidate\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n");
        assert_eq!(keys, Some(Some(vec!["a".into(), "b".into()])));
        assert_eq!(
            invalidation(b">2\r\n$10\r\ninvalidate\r\n_\r\n"),
            Some(None)
        );
        assert_eq!(invalidation(b"+OK\r\n"), None);
        assert_eq!(
            invalidation(b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n"),
            None
        );
    }
}
