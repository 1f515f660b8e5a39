//! What both subscribed modes share (classic tunnels in `pubsub`, shard links in
//! `shard_pubsub`): the subscription counts as the nodes report them, the sync marker's reply,
//! Redis's refusal in subscribed mode, a RESP3 subscriber's plain commands, and the end of a
//! subscription whose connection was lost.

use std::sync::Arc;

use super::{Io, Session};
use crate::backend::{DirectConn, Node};
use crate::command::Special;
use crate::resp::{encode, Frame, Request};

/// A classic subscription tunnel handed over when its client sends SSUBSCRIBE.
pub(super) struct ClassicLink {
    pub(super) node: Arc<Node>,
    pub(super) conn: DirectConn,
    /// Channels + patterns, as the node last reported them.
    pub(super) count: i64,
    /// Nothing but subscription commands and PING ran on it: it may be pooled again.
    pub(super) clean: bool,
}

/// Subscription counts as the node last reported them.
#[derive(Default)]
pub(super) struct Counts {
    /// Channels + patterns (one count in Redis's replies).
    pub(super) classic: i64,
    /// Shard channels (counted separately by Redis).
    shard: i64,
}

impl Counts {
    /// Updates from a frame; true when it was a subscription confirmation.
    pub(super) fn observe(&mut self, frame: &Frame) -> bool {
        let items = match frame {
            Frame::Array(items) | Frame::Push(items) if items.len() == 3 => items,
            _ => return false,
        };
        let (Some(kind), Some(count)) = (items[0].as_bytes(), items[2].as_int()) else {
            return false;
        };
        let kind = kind.to_ascii_lowercase();
        match kind.as_slice() {
            b"subscribe" | b"unsubscribe" | b"psubscribe" | b"punsubscribe" => self.classic = count,
            b"ssubscribe" | b"sunsubscribe" => self.shard = count,
            _ => return false,
        }
        true
    }

    /// No subscription is left (checked only after relaying the node's frames, so the
    /// initial zero means "the SUBSCRIBE itself failed").
    pub(super) fn none_left(&self) -> bool {
        self.classic <= 0 && self.shard <= 0
    }
}

/// Redis's refusal of a command from a RESP2 client in subscribed mode.
pub(super) fn cant_execute(info: Option<&crate::command::CommandInfo>, req: &Request) -> String {
    let shown = match info {
        Some(i) => i.name.to_string(),
        None => String::from_utf8_lossy(req.arg(0)).to_ascii_lowercase(),
    };
    format!(
        "ERR Can't execute '{shown}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / \
         RESET are allowed in this context"
    )
}

/// Is `frame` the reply to `PING <token>`? A bulk string in normal or RESP3 mode, or
/// `["pong", token]` from a subscribed RESP2 connection.
pub(super) fn is_marker_reply(frame: &Frame, token: &str) -> bool {
    match frame {
        Frame::Bulk(b) => b.as_ref() == token.as_bytes(),
        Frame::Array(items) | Frame::Push(items) => {
            items.len() == 2
                && items[0]
                    .as_bytes()
                    .is_some_and(|p| p.eq_ignore_ascii_case(b"pong"))
                && items[1].as_bytes() == Some(token.as_bytes())
        }
        _ => false,
    }
}

impl Session {
    /// A RESP3 subscribed client's command in a cluster pool (any mode Redis would run it
    /// in): answered like any command of a client that is not subscribed, through the shared
    /// connections and the normal routing (redirects followed, multi-slot commands split).
    /// Everything relayed before it has reached `io.out` already, so its reply comes after.
    /// Commands that need a connection of their own are refused: their state would have to
    /// live beside the subscriptions.
    pub(super) async fn subscribed_plain(
        &mut self,
        req: Request,
        info: Option<&'static crate::command::CommandInfo>,
        io: &mut Io,
    ) -> std::io::Result<()> {
        if Special::of(info) == Special::Hello || self.needs_connection_of_its_own(&req, info) {
            encode::error(
                &mut io.out,
                &format!(
                    "ERR sluice: {} while subscribed is not supported through the proxy",
                    String::from_utf8_lossy(req.arg(0)).to_uppercase()
                ),
            );
            return Ok(());
        }
        let mut pending = std::collections::VecDeque::new();
        // `may_hold = false`: no write barrier to wait behind, the queue is empty.
        let _ = self.dispatch(req, info, &mut pending, false);
        self.drain(&mut pending, io).await
    }

    /// The tunnel's connection failed: subscriptions lived on it, so the client must
    /// resubscribe; close it (client libraries reconnect and resubscribe).
    pub(super) async fn tunnel_lost(&mut self, io: &mut Io, reason: &str) -> std::io::Result<()> {
        tracing::warn!(client = %self.entry.addr, error = %reason, "tunnel connection lost");
        encode::error(&mut io.out, &format!("ERR sluice: {reason}"));
        self.closing = true;
        io.flush().await
    }
}
