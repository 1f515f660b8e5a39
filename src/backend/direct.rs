//! A dedicated node connection for connection-scoped state: MULTI/EXEC and WATCH, blocking
//! commands and subscriptions. A session holds one while that state lives, then gives it back
//! to its node's [`DirectPool`](super::DirectPool).

use std::sync::Arc;

use bytes::BytesMut;

use crate::tls::NodeStream;

use super::direct_pool::Slot;
use super::handshake;
use super::BackendError;
use crate::resp::{Protocol, Reply};

/// A connection owned by one session at a time. It speaks the session's own protocol, so
/// replies pass through untouched. Dropping it closes it.
pub(crate) struct DirectConn {
    pub(super) stream: NodeStream,
    pub(super) rbuf: BytesMut,
    pub(super) addr: Arc<str>,
    pub(super) protocol: Protocol,
    /// Database currently selected on this connection.
    pub(crate) db: u16,
    /// Its place under the node's cap, freed (or handed to a waiter) when it is closed.
    pub(super) slot: Slot,
    /// This connection's client id on the node, once asked (see `session::unblock`).
    pub(crate) node_client_id: Option<i64>,
    /// Whose login it carries: who may reuse it (see `direct_pool`).
    pub(super) owner: super::direct_pool::Owner,
    /// When it was last given back (its user's idle connections close after a while).
    pub(super) idle_since: std::time::Instant,
}

impl DirectConn {
    /// The node's address.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// Writes raw request bytes.
    pub(crate) async fn write(&mut self, raw: &[u8]) -> Result<(), BackendError> {
        self.stream
            .write_all_flushed(raw)
            .await
            .map_err(|e| self.lost(e))
    }

    /// Reads the next frame (a reply, or a pushed message on a subscribed connection).
    pub(crate) async fn read(&mut self) -> Result<Reply, BackendError> {
        handshake::read_one(&mut self.stream, &mut self.rbuf)
            .await
            .map_err(|e| self.lost(e))
    }

    /// Writes a request and reads one reply.
    pub(crate) async fn request(&mut self, raw: &[u8]) -> Result<Reply, BackendError> {
        self.write(raw).await?;
        self.read().await
    }

    /// Closes the connection and keeps its place under the node's cap, for another one.
    pub(super) fn into_slot(self) -> Slot {
        self.slot
    }

    /// True when the node has closed its side (checked without blocking before reuse).
    pub(super) fn is_closed(&mut self) -> bool {
        let mut probe = [0u8; 1];
        match self.stream.try_read(&mut probe) {
            Ok(0) => true,
            // Unsolicited bytes on an idle connection mean its state is unknown: do not reuse.
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(_) => true,
        }
    }

    fn lost(&self, e: std::io::Error) -> BackendError {
        BackendError::ConnectionLost {
            addr: self.addr.to_string(),
            reason: e.to_string(),
        }
    }
}
