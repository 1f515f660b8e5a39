//! `auth = "passthrough"`: node connections that log in as a client's own Redis ACL user, so
//! that Redis itself enforces each user's permissions and shows the real user in `ACL LOG`
//! and `CLIENT LIST`.
//!
//! Each authenticated user has a [`UserLink`], shared by all its clients: one multiplexed
//! connection per node it has used (opened on first use, pipelined like the pool's own
//! shared connections; in a cluster pool, one per master and replica the user's requests
//! went to). A connection closes when it has been idle a while ([`UserLinks`]), and all of
//! them with the user's last client. Each takes a place under the node's
//! `max_dedicated_connections` cap, as do the user's dedicated connections (transactions,
//! blocking commands, subscriptions), which log in as the user too and are taken from the
//! node's `DirectPool` (`super::direct_pool`): one cap bounds every connection opened in a
//! client user's name. Those wait idle in that pool between uses, for the user's clients
//! only (a blocking command then starts at once, as on the proxy's own connections, instead
//! of after a new connection's handshake, which let a command another client sent right
//! after it reach the node first), and close like the shared ones.
//!
//! [`Via`] is what request paths carry: the user's link, or the pool's shared connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::direct_pool::IdleRef;
use super::mux::{MuxConn, Patience, ReplyResult};
use super::{BackendError, DirectConn, Node};
use crate::resp::Protocol;

/// A client user's credentials, as the client gave them to `AUTH` (after the master
/// accepted them). Compared whole: the same name with another password is another login.
#[derive(PartialEq, Eq, Hash)]
pub(crate) struct Credentials {
    pub(crate) user: String,
    pub(crate) pass: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({:?}, ..)", self.user)
    }
}

/// One user's shared node connections (see the module documentation).
pub(crate) struct UserLink {
    pub(crate) cred: Arc<Credentials>,
    /// By node (its address in memory, checked against the weak reference: a node dropped
    /// by a topology change must not hand its connection to a new node at the same address
    /// in memory), and by whether the connection sent READONLY.
    conns: Mutex<HashMap<(usize, bool), NodeConn>>,
    /// The node pools where this user's dedicated connections were given back to wait idle:
    /// closed there with the link, or by the sweep when idle a while.
    idle_in: Mutex<Vec<IdleRef>>,
}

impl Drop for UserLink {
    /// The user's last client is gone: so are its idle dedicated connections.
    fn drop(&mut self) {
        let pools = std::mem::take(self.idle_in.get_mut().unwrap_or_else(|e| e.into_inner()));
        for pool in pools {
            pool.close_idle(self, Duration::ZERO);
        }
    }
}

/// A user's connection to one node, and that node (weakly: the topology owns it).
struct NodeConn {
    node: Weak<Node>,
    conn: MuxConn,
    /// A request was sent since the last sweep (see [`UserLinks`]).
    used: bool,
}

impl UserLink {
    /// Sends a request to `node` on this user's connection to it (opened now if none).
    pub(crate) fn send(
        &self,
        node: &Arc<Node>,
        raw: Bytes,
        db: u16,
        patience: Patience,
    ) -> oneshot::Receiver<ReplyResult> {
        let readonly = node.as_replica();
        let key = (Arc::as_ptr(node) as usize, readonly);
        let conn = {
            let mut conns = lock(&self.conns);
            match conns.get_mut(&key) {
                Some(c) if c.node.strong_count() > 0 && !c.conn.is_closed() => {
                    c.used = true;
                    c.conn.clone()
                }
                _ => {
                    // Connections of nodes gone from the topology close here.
                    conns.retain(|_, c| c.node.strong_count() > 0);
                    let conn = node.user_conn(&self.cred, readonly);
                    let node = Arc::downgrade(node);
                    conns.insert(
                        key,
                        NodeConn {
                            node,
                            conn: conn.clone(),
                            used: true,
                        },
                    );
                    conn
                }
            }
        };
        conn.send(raw, db, patience)
    }

    /// Closes the connections unused since the last sweep and the dedicated ones idle for
    /// `idle`; marks the others unused.
    fn sweep(&self, idle: Duration) {
        lock(&self.conns).retain(|_, c| std::mem::take(&mut c.used));
        // Copied out: closing takes each pool's lock, never under this one.
        let pools = lock(&self.idle_in).clone();
        for pool in pools {
            pool.close_idle(self, idle);
        }
    }

    /// Notes that one of this user's dedicated connections waits idle in `pool`.
    pub(super) fn keeps_idle_in(&self, pool: IdleRef) {
        let mut pools = lock(&self.idle_in);
        if !pools.iter().any(|p| p.same(&pool)) {
            // Pools of nodes gone from the topology are forgotten here.
            pools.retain(IdleRef::is_alive);
            pools.push(pool);
        }
    }
}

/// A pool's links, one per logged-in user (held weakly: clients own them).
///
/// A user's connection to a node closes when no request used it for one to two `idle`
/// periods (a sweep every `idle` closes those not used since the previous one), and all of
/// them with the user's last client. `idle` is at least twice the request timeout, so a
/// connection closed this way has no request in flight: its last one was answered, or timed
/// out and broke the connection, before the sweep. Its dedicated connections idle in a
/// node's pool close when they have waited there for one to two `idle` periods (they hold no
/// request: a connection in use is not idle), and with its last client too.
pub(crate) struct UserLinks {
    inner: Arc<Inner>,
}

struct Inner {
    map: Mutex<HashMap<Arc<Credentials>, Weak<UserLink>>>,
    idle: Duration,
    /// The sweeping task runs (started with the first link).
    sweeping: std::sync::atomic::AtomicBool,
}

impl UserLinks {
    /// Links whose connections close after `idle` without a request.
    pub(crate) fn new(idle: Duration) -> UserLinks {
        UserLinks {
            inner: Arc::new(Inner {
                map: Mutex::default(),
                idle,
                sweeping: Default::default(),
            }),
        }
    }

    /// The link of `cred`, shared with the user's other clients, or a new one.
    pub(crate) fn get(&self, cred: Credentials) -> Arc<UserLink> {
        self.start_sweeping();
        let mut map = lock(&self.inner.map);
        if let Some(link) = map.get(&cred).and_then(Weak::upgrade) {
            return link;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let cred = Arc::new(cred);
        let link = Arc::new(UserLink {
            cred: cred.clone(),
            conns: Mutex::new(HashMap::new()),
            idle_in: Mutex::default(),
        });
        map.insert(cred, Arc::downgrade(&link));
        link
    }

    /// Starts the task that closes idle connections (once; it ends with the pool).
    fn start_sweeping(&self) {
        use std::sync::atomic::Ordering;
        if self.inner.sweeping.swap(true, Ordering::Relaxed) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let idle = self.inner.idle;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(idle);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                // Upgraded under the lock, swept outside it (a sweep drops connections).
                let links: Vec<Arc<UserLink>> = lock(&inner.map)
                    .values()
                    .filter_map(Weak::upgrade)
                    .collect();
                for link in links {
                    link.sweep(idle);
                }
            }
        });
    }
}

/// How a client's requests reach the nodes: on its user's connections when it logged in as
/// its own user (`auth = "passthrough"`), else on the pool's shared connection `slot`.
/// Cheap to clone (the tasks that follow cluster redirects carry one, so a request sent
/// again after MOVED or ASK keeps its patience).
#[derive(Clone)]
pub(crate) struct Via {
    /// The client's user's connections, if any.
    pub(crate) link: Option<Arc<UserLink>>,
    /// The client's shared connection index (see `Session::slot`).
    pub(crate) slot: usize,
    /// How long the requests sent this way may take.
    pub(crate) patience: Patience,
}

impl Via {
    /// The pool's own connections (checks the proxy makes for itself).
    pub(crate) fn proxy(slot: usize) -> Via {
        Via {
            link: None,
            slot,
            patience: Patience::Bounded,
        }
    }

    /// The same way, for requests of `patience`.
    pub(crate) fn with(self, patience: Patience) -> Via {
        Via { patience, ..self }
    }

    /// Sends a request to `node` as the client.
    pub(crate) fn send(
        &self,
        node: &Arc<Node>,
        raw: Bytes,
        db: u16,
    ) -> oneshot::Receiver<ReplyResult> {
        send(
            self.link.as_deref(),
            node,
            raw,
            db,
            self.slot,
            self.patience,
        )
    }

    /// A dedicated connection to `node` logged in as the client's user (or the proxy's).
    pub(crate) async fn dedicated(
        &self,
        node: &Node,
        protocol: Protocol,
    ) -> Result<DirectConn, BackendError> {
        node.dedicated
            .checkout_as(protocol, self.link.as_ref())
            .await
    }
}

/// Poisoning: a panic while holding one of these maps leaves it consistent (every update is
/// a single insert or retain), so the data is used as is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sends a request to `node`: on `link`'s connection when the client logged in as its own
/// user, else on the node's shared connection `slot`.
pub(crate) fn send(
    link: Option<&UserLink>,
    node: &Arc<Node>,
    raw: Bytes,
    db: u16,
    slot: usize,
    patience: Patience,
) -> oneshot::Receiver<ReplyResult> {
    match link {
        Some(link) => link.send(node, raw, db, patience),
        None => node.send(raw, db, slot, patience),
    }
}
