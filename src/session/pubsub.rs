//! Tunnels. Subscribed clients: SUBSCRIBE/PSUBSCRIBE/SSUBSCRIBE move the session onto a
//! dedicated master connection in the client's own protocol; subscription commands and PING
//! flow both ways untouched, so Redis formats every message itself.
//!
//! Anything else a subscribed client sends is handled at a *sync point*: the proxy sends
//! `PING <token>` down the tunnel and relays everything until that token comes back, so it
//! knows every earlier reply has reached the client and what the subscription counts now are.
//! If none is left, the request goes back into the client's buffer and the session returns to
//! normal routing (the connection is pooled again only if nothing but subscription commands
//! ran on it). Otherwise a RESP2 client's command goes to Redis, which refuses it in
//! subscribed mode with its own error, and a RESP3 client's command is answered as usual:
//! session commands and denied ones by the proxy, SELECT on the tunnel, others forwarded.
//!
//! Commands that change a connection for good (MONITOR, SYNC/PSYNC, CLIENT TRACKING/CACHING/
//! REPLY) cannot run on a shared connection; when `allow_commands` lets them through they
//! get the same tunnel, for the rest of the connection (or until RESET).

use bytes::BytesMut;

use super::shard_pubsub::ClassicLink;
use super::transaction::checkout_in_db;
use super::{Io, Session};
use crate::backend::DirectConn;
use crate::resp::{decode_request, encode, Frame, Protocol, Request};

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
    fn none_left(&self) -> bool {
        self.classic <= 0 && self.shard <= 0
    }
}

/// What a frame from the tunnel was, for the relay loop.
enum Relayed {
    /// The reply to our own sync marker (not relayed).
    Marker,
    /// Anything else (relayed).
    Other,
}

impl Session {
    /// Serves the client over a dedicated connection, starting with `first`. With
    /// `until_unsubscribed` it returns to normal routing when no subscription is left;
    /// otherwise (MONITOR, CLIENT TRACKING and the like, which change a connection for good)
    /// it passes everything through until the client quits or sends RESET.
    pub(super) async fn tunnel(
        &mut self,
        first: Request,
        io: &mut Io,
        until_unsubscribed: bool,
    ) -> std::io::Result<()> {
        // SSUBSCRIBE goes to the master of its channel's slot in a cluster pool.
        let node = match self.exclusive_node(&first, crate::command::lookup(&first)) {
            Ok(n) => n,
            Err(e) => {
                encode::error(&mut io.out, &e);
                return Ok(());
            }
        };
        let mut conn = match checkout_in_db(&node, self.proto, self.db).await {
            Ok(c) => c,
            Err(e) => {
                encode::error(&mut io.out, &format!("ERR {e}"));
                return Ok(());
            }
        };
        node.metrics.writes.increment(1);
        if let Err(e) = conn.write(first.raw()).await {
            encode::error(&mut io.out, &format!("ERR {e}"));
            return Ok(());
        }
        let cluster = self.pool.cfg.mode() == crate::config::Mode::Cluster;
        let mut t = Tunnel {
            counts: Counts::default(),
            clean: true,
            marker: None,
            seq: 0,
        };
        loop {
            // Forward what the client has sent meanwhile, stopping at anything that needs a
            // sync point.
            let mut batch = BytesMut::new();
            let mut held: Option<Request> = None;
            loop {
                match decode_request(&mut io.rbuf, &self.pool.limits) {
                    Ok(Some(req)) => {
                        if !until_unsubscribed {
                            let name = req.arg(0);
                            if name.eq_ignore_ascii_case(b"quit")
                                || name.eq_ignore_ascii_case(b"reset")
                            {
                                held = Some(req);
                                break;
                            }
                            batch.extend_from_slice(req.raw());
                        } else if is_pubsub_safe(req.arg(0))
                            && !(cluster && req.arg(0).eq_ignore_ascii_case(b"ssubscribe"))
                        {
                            // In a cluster pool SSUBSCRIBE is held: the channel's shard may be
                            // on another master, so the session moves to `shard_pubsub`.
                            batch.extend_from_slice(req.raw());
                        } else {
                            held = Some(req);
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        encode::error(&mut io.out, &format!("ERR {e}"));
                        self.closing = true;
                        return io.flush().await;
                    }
                }
            }
            if !batch.is_empty() {
                if let Err(e) = conn.write(&batch).await {
                    return self.tunnel_lost(io, &e.to_string()).await;
                }
            }
            if let Some(req) = held {
                if !until_unsubscribed {
                    // QUIT or RESET ends a for-good tunnel; dropping the connection ends its
                    // state on the node.
                    if req.arg(0).eq_ignore_ascii_case(b"quit") {
                        io.out.extend_from_slice(b"+OK\r\n");
                        self.closing = true;
                    } else {
                        self.reset();
                        io.out.extend_from_slice(b"+RESET\r\n");
                    }
                    return io.flush().await;
                }
                if let Err(e) = self.sync_point(&mut conn, &mut t, io).await {
                    return self.tunnel_lost(io, &e).await;
                }
                if t.counts.none_left() {
                    // Back to normal routing: the held request is handled there.
                    let rest = io.rbuf.split();
                    io.rbuf.extend_from_slice(req.raw());
                    io.rbuf.extend_from_slice(&rest);
                    if t.clean {
                        node.dedicated.checkin(conn);
                    }
                    return io.flush().await;
                }
                if cluster && req.arg(0).eq_ignore_ascii_case(b"ssubscribe") {
                    // Classic subscriptions stay on this connection, now one link among the
                    // client's shard links.
                    let classic = ClassicLink {
                        node,
                        conn,
                        count: t.counts.classic,
                        clean: t.clean,
                    };
                    return self.shard_pubsub(Some(classic), req, io).await;
                }
                match self.subscribed_command(req, &mut conn, &mut t, io).await {
                    // RESET: dropping the connection ends its subscriptions on the node.
                    Ok(true) => return io.flush().await,
                    Ok(false) if self.closing => return io.flush().await,
                    Ok(false) => continue,
                    Err(e) => return self.tunnel_lost(io, &e).await,
                }
            }
            if io.eof {
                return Ok(());
            }
            io.flush().await?;
            tokio::select! {
                frame = conn.read() => {
                    let reply = match frame {
                        Ok(r) => r,
                        Err(e) => return self.tunnel_lost(io, &e.to_string()).await,
                    };
                    self.relay(&reply, &mut t, io);
                    if until_unsubscribed && t.counts.none_left() {
                        // The last subscription ended with nothing else pending: make sure of
                        // that (pipelined requests may be in flight) before pooling the
                        // connection again.
                        if let Err(e) = self.sync_point(&mut conn, &mut t, io).await {
                            return self.tunnel_lost(io, &e).await;
                        }
                        if t.counts.none_left() && io.rbuf.is_empty() {
                            if t.clean {
                                node.dedicated.checkin(conn);
                            }
                            return io.flush().await;
                        }
                    }
                }
                r = std::future::poll_fn(|cx| io.stream.poll_read_ready(cx)) => {
                    if r.is_err() || !io.read_available() {
                        io.eof = true;
                    }
                }
            }
        }
    }

    /// Sends a marker down the tunnel and relays every frame until its reply is back.
    async fn sync_point(
        &mut self,
        conn: &mut DirectConn,
        t: &mut Tunnel,
        io: &mut Io,
    ) -> Result<(), String> {
        t.seq += 1;
        let token = format!("sluice-sync-{}-{}", self.id, t.seq);
        let mut ping = BytesMut::new();
        encode::command(&mut ping, &[b"PING", token.as_bytes()]);
        t.marker = Some(token);
        conn.write(&ping).await.map_err(|e| e.to_string())?;
        loop {
            let reply = conn.read().await.map_err(|e| e.to_string())?;
            if let Relayed::Marker = self.relay(&reply, t, io) {
                t.marker = None;
                return Ok(());
            }
            if io.out.len() > 64 * 1024 {
                io.flush().await.map_err(|e| e.to_string())?;
            }
        }
    }

    /// Passes a frame from the tunnel to the client (unless it is our marker's reply),
    /// tracking subscription counts.
    fn relay(&mut self, reply: &crate::resp::Reply, t: &mut Tunnel, io: &mut Io) -> Relayed {
        if let Ok(Some((frame, _))) = Frame::parse(&reply.raw) {
            if t.marker
                .as_deref()
                .is_some_and(|m| is_marker_reply(&frame, m))
            {
                return Relayed::Marker;
            }
            t.counts.observe(&frame);
        }
        io.out.extend_from_slice(&reply.raw);
        Relayed::Other
    }

    /// A non-subscription command from a client that is still subscribed (at a sync point).
    /// Returns true when the client left subscribed mode by RESET.
    async fn subscribed_command(
        &mut self,
        req: Request,
        conn: &mut DirectConn,
        t: &mut Tunnel,
        io: &mut Io,
    ) -> Result<bool, String> {
        let info = crate::command::lookup(&req);
        let name = info.map(|i| i.name).unwrap_or("");
        if name == "quit" {
            io.out.extend_from_slice(b"+OK\r\n");
            self.closing = true;
            return Ok(false);
        }
        if name == "reset" {
            // Dropping the connection ends every subscription on the node.
            self.reset();
            io.out.extend_from_slice(b"+RESET\r\n");
            return Ok(true);
        }
        let cluster = self.pool.cfg.mode() == crate::config::Mode::Cluster;
        if cluster && info.is_some() {
            // The tunnel's node serves only its own slots (a keyed command sent there would
            // come back MOVED, a redirect the client cannot follow to the proxy): RESP2
            // clients get Redis's subscribed-mode refusal from the proxy, RESP3 clients'
            // commands take the normal cluster path.
            if self.proto == Protocol::Resp2 {
                encode::error(&mut io.out, &cant_execute(info, &req));
                return Ok(false);
            }
            return self
                .subscribed_plain(req, info, io)
                .await
                .map(|()| false)
                .map_err(|e| e.to_string());
        }
        if self.proto == Protocol::Resp2 {
            // Redis refuses it in subscribed mode with its own error; nothing changes.
            t.clean = false;
            return conn
                .write(req.raw())
                .await
                .map(|()| false)
                .map_err(|e| e.to_string());
        }
        if name == "hello" {
            encode::error(
                &mut io.out,
                "ERR sluice: HELLO while subscribed is not supported through the proxy",
            );
            return Ok(false);
        }
        if name == "select" {
            // Run it on the tunnel so later commands there see the same database.
            t.clean = false;
            let reply = request_skipping_pushes(conn, req.raw(), io).await?;
            if !reply.is_error() {
                if let Some(db) =
                    super::local::parse_int(req.arg(1)).and_then(|n| u16::try_from(n).ok())
                {
                    self.db = db;
                    conn.db = db;
                }
            }
            io.out.extend_from_slice(&reply.raw);
            return Ok(false);
        }
        if let Some(reply) = self.local(&req, info) {
            io.out.extend_from_slice(&reply);
            return Ok(false);
        }
        t.clean = false;
        conn.write(req.raw())
            .await
            .map(|()| false)
            .map_err(|e| e.to_string())
    }

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
        let name = info.map_or("", |i| i.name);
        if name == "hello" || self.needs_connection_of_its_own(&req, info) {
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
        tracing::warn!(client = %self.peer, error = %reason, "tunnel connection lost");
        encode::error(&mut io.out, &format!("ERR sluice: {reason}"));
        self.closing = true;
        io.flush().await
    }
}

/// Tunnel state.
struct Tunnel {
    counts: Counts,
    /// Nothing but subscription commands and PING ran on the connection: it may be pooled.
    clean: bool,
    /// Token of the sync marker in flight.
    marker: Option<String>,
    seq: u64,
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

/// Commands that may flow through a subscription tunnel without a sync point.
fn is_pubsub_safe(name: &[u8]) -> bool {
    [
        &b"subscribe"[..],
        b"psubscribe",
        b"ssubscribe",
        b"unsubscribe",
        b"punsubscribe",
        b"sunsubscribe",
        b"ping",
    ]
    .iter()
    .any(|n| name.eq_ignore_ascii_case(n))
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

/// Sends a request on a RESP3 tunnel and returns its reply, relaying pushes (messages) that
/// arrive first. Only used at a sync point, so the first non-push frame is this reply.
async fn request_skipping_pushes(
    conn: &mut DirectConn,
    raw: &[u8],
    io: &mut Io,
) -> Result<crate::resp::Reply, String> {
    conn.write(raw).await.map_err(|e| e.to_string())?;
    loop {
        let reply = conn.read().await.map_err(|e| e.to_string())?;
        if reply.raw.first() == Some(&b'>') {
            io.out.extend_from_slice(&reply.raw);
            continue;
        }
        return Ok(reply);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn marker_replies_are_recognised_in_every_mode() {
        let t = "sluice-sync-1-1";
        assert!(is_marker_reply(
            &Frame::Bulk(Bytes::from_static(b"sluice-sync-1-1")),
            t
        ));
        let subscribed = Frame::Array(vec![
            Frame::Bulk(Bytes::from_static(b"pong")),
            Frame::Bulk(Bytes::from_static(b"sluice-sync-1-1")),
        ]);
        assert!(is_marker_reply(&subscribed, t));
        assert!(!is_marker_reply(
            &Frame::Bulk(Bytes::from_static(b"sluice-sync-1-2")),
            t
        ));
        assert!(!is_marker_reply(
            &Frame::Simple(Bytes::from_static(b"PONG")),
            t
        ));
    }

    #[test]
    fn counts_follow_confirmations() {
        let mut c = Counts::default();
        let conf = |kind: &'static [u8], n| {
            Frame::Array(vec![
                Frame::Bulk(Bytes::from_static(kind)),
                Frame::Bulk(Bytes::from_static(b"ch")),
                Frame::Integer(n),
            ])
        };
        assert!(c.observe(&conf(b"subscribe", 1)));
        assert!(c.observe(&conf(b"ssubscribe", 1)));
        assert!(c.observe(&conf(b"unsubscribe", 0)));
        assert!(!c.none_left());
        assert!(c.observe(&conf(b"sunsubscribe", 0)));
        assert!(c.none_left());
        let msg = Frame::Array(vec![
            Frame::Bulk(Bytes::from_static(b"message")),
            Frame::Bulk(Bytes::from_static(b"ch")),
            Frame::Bulk(Bytes::from_static(b"x")),
        ]);
        assert!(!c.observe(&msg));
    }
}
