//! `auth = "passthrough"`: node connections that log in as a client's own Redis ACL user, so
//! that Redis itself enforces each user's permissions and shows the real user in `ACL LOG`
//! and `CLIENT LIST`.
//!
//! Each authenticated user has a [`UserLink`], shared by all its clients: one multiplexed
//! connection per node it has used (opened on first use, pipelined like the pool's own
//! shared connections). The link lives as long as one of its clients does; with the last one
//! its connections close. Dedicated connections (transactions, blocking commands,
//! subscriptions) log in as the user too and are taken from the node's [`DirectPool`]
//! (`super::direct_pool`), under the pool's one cap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::mux::{MuxConn, ReplyResult};
use super::Node;

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
}

/// A user's connection to one node, and that node (weakly: the topology owns it).
struct NodeConn {
    node: Weak<Node>,
    conn: MuxConn,
}

impl UserLink {
    /// Sends a request to `node` on this user's connection to it (opened now if none).
    pub(crate) fn send(
        &self,
        node: &Arc<Node>,
        raw: Bytes,
        db: u16,
    ) -> oneshot::Receiver<ReplyResult> {
        let readonly = node.as_replica();
        let key = (Arc::as_ptr(node) as usize, readonly);
        let conn = {
            let mut conns = lock(&self.conns);
            match conns.get(&key) {
                Some(c) if c.node.strong_count() > 0 => c.conn.clone(),
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
                        },
                    );
                    conn
                }
            }
        };
        conn.send(raw, db)
    }
}

/// A pool's links, one per logged-in user (held weakly: clients own them).
#[derive(Default)]
pub(crate) struct UserLinks {
    map: Mutex<HashMap<Arc<Credentials>, Weak<UserLink>>>,
}

impl UserLinks {
    /// The link of `cred`, shared with the user's other clients, or a new one.
    pub(crate) fn get(&self, cred: Credentials) -> Arc<UserLink> {
        let mut map = lock(&self.map);
        if let Some(link) = map.get(&cred).and_then(Weak::upgrade) {
            return link;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let cred = Arc::new(cred);
        let link = Arc::new(UserLink {
            cred: cred.clone(),
            conns: Mutex::new(HashMap::new()),
        });
        map.insert(cred, Arc::downgrade(&link));
        link
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
) -> oneshot::Receiver<ReplyResult> {
    match link {
        Some(link) => link.send(node, raw, db),
        None => node.send(raw, db, slot),
    }
}
