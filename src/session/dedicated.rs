//! Dedicated node connections, shared by every mode that needs one (transactions, blocking
//! commands, tunnels, shard subscriptions): which node, checking one out in the client's
//! protocol and database, pinning a transaction to it, and waiting for a reply while watching
//! the client.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;

use super::cluster::{is_classic_pubsub, PUBSUB_HOME_SLOT};
use super::tx_state::Pinned;
use super::{Io, Session};
use crate::backend::{BackendError, DirectConn, Node};
use crate::command::CommandInfo;
use crate::resp::{encode, ClientError, Protocol, Reply, Request};
use crate::route::split::{self, Plan};

/// Requests a blocked client may pipeline behind its blocking command before we stop reading.
const MAX_BUFFERED_WHILE_BLOCKED: usize = 1 << 20;

/// How a request on a dedicated connection ended.
pub(super) enum Outcome {
    /// The node replied.
    Reply(Reply),
    /// The connection failed or timed out; it must be dropped.
    Failed(BackendError),
    /// The client disconnected first; the connection must be dropped (it may still be blocked).
    ClientGone,
}

/// Sends `raw` on `conn` and waits for its reply, watching the client meanwhile: bytes it
/// pipelines are kept for later, and its disconnect abandons the wait. `timeout` bounds the
/// wait for commands that should not block.
pub(super) async fn await_reply(
    conn: &mut DirectConn,
    raw: &[u8],
    io: &mut Io,
    timeout: Option<Duration>,
) -> Outcome {
    if let Err(e) = conn.write(raw).await {
        return Outcome::Failed(e);
    }
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    loop {
        tokio::select! {
            reply = conn.read() => {
                return match reply {
                    Ok(r) => Outcome::Reply(r),
                    Err(e) => Outcome::Failed(e),
                };
            }
            r = std::future::poll_fn(|cx| io.stream.poll_read_ready(cx)), if !io.eof && io.rbuf.len() < MAX_BUFFERED_WHILE_BLOCKED => {
                if r.is_err() || !io.read_available() {
                    io.eof = true;
                    return Outcome::ClientGone;
                }
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                let ms = timeout.map(|t| t.as_millis() as u64).unwrap_or_default();
                return Outcome::Failed(BackendError::Timeout { addr: conn.addr().to_string(), ms });
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// A dedicated connection to `node` speaking `proto`, switched to database `db`.
/// `user`: the client's own user's link (`auth = "passthrough"`), `None` for the proxy's
/// user.
pub(super) async fn checkout_in_db(
    node: &Node,
    proto: Protocol,
    db: u16,
    user: Option<&Arc<crate::backend::per_user::UserLink>>,
) -> Result<DirectConn, ClientError> {
    let mut conn = node.dedicated.checkout_as(proto, user).await?;
    if conn.db != db {
        let mut sel = BytesMut::new();
        encode::select(&mut sel, db);
        let reply = conn.request(&sel).await?;
        if reply.is_error() {
            return Err(ClientError::err(format!(
                "sluice: SELECT {db} refused by {}",
                node.addr
            )));
        }
        conn.db = db;
    }
    Ok(conn)
}

impl Session {
    /// The node for a request that needs a dedicated connection (blocking commands,
    /// subscriptions, transactions): the master; in a cluster pool, the master of its keys'
    /// slot (any master for keyless ones).
    pub(super) fn exclusive_node(
        &self,
        req: &Request,
        info: Option<&CommandInfo>,
    ) -> Result<Arc<Node>, ClientError> {
        if self.pool.routing.by_slot() {
            return self.cluster_exclusive_node(req, info);
        }
        self.pool
            .router
            .master(&self.pool.topology.load())
            .map_err(ClientError::from)
    }

    fn cluster_exclusive_node(
        &self,
        req: &Request,
        info: Option<&CommandInfo>,
    ) -> Result<Arc<Node>, ClientError> {
        let topo = self.pool.topology.load();
        let Some(map) = topo.cluster.as_ref() else {
            return Err(ClientError::slot_not_served());
        };
        let slot = match split::plan(req, info) {
            // Classic subscriptions all live on one master, where PUBLISH goes too.
            Plan::Single(None) if is_classic_pubsub(info) => Some(PUBSUB_HOME_SLOT),
            Plan::Single(slot) => slot,
            _ => return Err(ClientError::cross_slot()),
        };
        self.pool
            .router
            .cluster(map, slot, false, None)
            .map_err(ClientError::from)
    }

    /// Takes a dedicated master connection in this client's protocol and database (in a
    /// cluster pool, on the master of `req`'s slot).
    pub(super) async fn pin(
        &mut self,
        req: &Request,
        info: Option<&CommandInfo>,
    ) -> Result<Pinned, ClientError> {
        let node = self.exclusive_node(req, info)?;
        let conn = checkout_in_db(&node, self.proto, self.db, self.dedicated_link()).await?;
        Ok(Pinned::for_transaction(conn, node, None))
    }

    /// Ends pinning; a clean connection goes back to its node's pool.
    pub(super) fn unpin(&mut self) {
        if let Some(p) = self.tx.take_pinned() {
            p.node.dedicated.checkin(p.conn);
        }
    }
}
