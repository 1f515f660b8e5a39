//! `CLIENT UNBLOCK id [TIMEOUT|ERROR]`: `id` is a client of the caller's pool; when it is
//! blocked, it is blocked on one of the proxy's dedicated node connections, whose own client
//! id on the node is learnt (once per connection, with `CLIENT ID`) before the blocking
//! command is sent. The unblock is then the node's own `CLIENT UNBLOCK` of that connection:
//! the node decides atomically whether the command was still blocked (an element popped
//! meanwhile is delivered, never lost) and answers the blocked client as Redis does.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::local::parse_int;
use super::{error_bytes, Session};
use crate::backend::Patience;
use crate::backend::{BackendError, DirectConn, Node};
use crate::resp::{encode, Frame, Request};

/// Sends a blocking command on a dedicated connection, learning first the connection's
/// node-side client id (asked once and kept on it). `CLIENT ID` goes out in the same write
/// as the command, so a fresh connection does not cost the command a round trip more before
/// it blocks (a command another client sends right after it must find it blocked, as on
/// Redis). Returns the id (`None`: the node would not tell), or the failure that leaves the
/// connection unusable.
pub(super) async fn send_learning_id(
    conn: &mut DirectConn,
    raw: &[u8],
    timeout: Duration,
) -> Result<Option<i64>, BackendError> {
    if conn.node_client_id.is_some() {
        conn.write(raw).await?;
        return Ok(conn.node_client_id);
    }
    let mut both = BytesMut::with_capacity(raw.len() + 24);
    encode::command(&mut both, &[b"CLIENT", b"ID"]);
    both.extend_from_slice(raw);
    conn.write(&both).await?;
    let reply = tokio::time::timeout(timeout, conn.read())
        .await
        .map_err(|_| BackendError::Timeout {
            addr: conn.addr().to_string(),
            ms: timeout.as_millis() as u64,
        })??;
    if let Ok(Some((Frame::Integer(id), _))) = Frame::parse(&reply.raw) {
        conn.node_client_id = Some(id);
    }
    Ok(conn.node_client_id)
}

impl Session {
    /// Records (or clears) the dedicated connection this client is blocked on.
    pub(super) fn set_blocked_on(&self, on: Option<(Arc<Node>, i64)>) {
        self.entry.state().blocked_on = on;
    }

    /// CLIENT UNBLOCK id [TIMEOUT|ERROR], for a client of this pool.
    pub(super) async fn client_unblock(&self, req: &Request) -> Bytes {
        if req.len() != 3 && req.len() != 4 {
            return error_bytes("ERR wrong number of arguments for 'client|unblock' command");
        }
        let Some(id) = parse_int(req.arg(2)) else {
            return error_bytes("ERR value is not an integer or out of range");
        };
        let mode: &[u8] = match req.len() {
            4 if req.arg(3).eq_ignore_ascii_case(b"timeout") => b"TIMEOUT",
            4 if req.arg(3).eq_ignore_ascii_case(b"error") => b"ERROR",
            4 => return error_bytes("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
            _ => b"TIMEOUT",
        };
        let blocked = u64::try_from(id)
            .ok()
            .and_then(|id| self.pool.registry.get(id))
            .and_then(|e| e.state().blocked_on.clone());
        let Some((node, node_id)) = blocked else {
            return Bytes::from_static(b":0\r\n");
        };
        let mut cmd = BytesMut::new();
        let node_id = node_id.to_string();
        encode::command(&mut cmd, &[b"CLIENT", b"UNBLOCK", node_id.as_bytes(), mode]);
        match node
            .send(cmd.freeze(), 0, self.id as usize, Patience::Bounded)
            .await
        {
            Ok(Ok(reply)) => reply.raw,
            _ => error_bytes(&format!(
                "ERR sluice: CLIENT UNBLOCK failed on {}",
                node.addr
            )),
        }
    }
}
