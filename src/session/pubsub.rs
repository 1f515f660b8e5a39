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
//! session commands and denied ones by the proxy, SELECT on the tunnel, WAIT as outside
//! subscribed mode (`wait_cmd`), others forwarded.
//!
//! Commands that change a connection for good (SYNC/PSYNC) cannot run on a shared
//! connection; when `allow_commands` lets them through they get the same tunnel, for the rest
//! of the connection (or until RESET).
//!
//! A subscribed client may be the target of other clients' `CLIENT TRACKING ... REDIRECT`:
//! the tunnel also writes the invalidations the proxy puts in its inbox (see `tracking`).

use bytes::BytesMut;

use super::dedicated::checkout_in_db;
use super::subscribed::{cant_execute, is_marker_reply, ClassicLink, Counts};
use super::{Io, Session};
use crate::backend::DirectConn;
use crate::command::{self, Special};
use crate::resp::{decode_request, encode, ClientError, Frame, Protocol, Request};

/// The tunnel's node and dedicated connection.
type Link = (std::sync::Arc<crate::backend::Node>, DirectConn);

/// Whether the tunnel goes on (its link handed back) or the session leaves it.
enum Next {
    Stay(Link),
    Leave(std::io::Result<()>),
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
    /// otherwise (SYNC and the like, which change a connection for good)
    /// it passes everything through until the client quits or sends RESET.
    pub(super) async fn tunnel(
        &mut self,
        first: Request,
        io: &mut Io,
        until_unsubscribed: bool,
    ) -> std::io::Result<()> {
        let Some(mut link) = self.open_tunnel(&first, io).await else {
            return Ok(());
        };
        let inbox = self.entry.inbox();
        let mut t = Tunnel {
            counts: Counts::default(),
            clean: true,
            marker: None,
            seq: 0,
            until_unsubscribed,
            cluster: self.pool.routing.by_slot(),
        };
        loop {
            // Forward what the client has sent meanwhile, stopping at anything that needs a
            // sync point.
            let Some((batch, held)) = self.tunnel_batch(io, &t) else {
                return io.flush().await;
            };
            if !batch.is_empty() {
                if let Err(e) = link.1.write(&batch).await {
                    return self.tunnel_lost(io, &e.to_string()).await;
                }
            }
            if let Some(req) = held {
                match self.tunnel_held(req, link, &mut t, io).await {
                    Next::Stay(back) => {
                        link = back;
                        continue;
                    }
                    Next::Leave(done) => return done,
                }
            }
            if io.eof {
                return Ok(());
            }
            io.flush().await?;
            tokio::select! {
                frame = link.1.read() => {
                    match self.tunnel_frame(frame, link, &mut t, io).await {
                        Next::Stay(back) => link = back,
                        Next::Leave(done) => return done,
                    }
                }
                r = std::future::poll_fn(|cx| io.stream.poll_read_ready(cx)) => {
                    if r.is_err() || !io.read_available() {
                        io.eof = true;
                    }
                }
                notes = std::future::poll_fn(|cx| inbox.poll_take(cx)) => {
                    self.write_notes_subscribed(&notes, &mut io.out);
                }
            }
        }
    }

    /// A request that needed a sync point (or ends a for-good tunnel).
    async fn tunnel_held(
        &mut self,
        req: Request,
        (node, mut conn): Link,
        t: &mut Tunnel,
        io: &mut Io,
    ) -> Next {
        let special = Special::of(command::lookup(&req));
        if !t.until_unsubscribed {
            // QUIT or RESET ends a for-good tunnel; dropping the connection ends its state on
            // the node.
            self.quit_or_reset(special, io);
            return Next::Leave(io.flush().await);
        }
        if let Err(e) = self.sync_point(&mut conn, t, io).await {
            return Next::Leave(self.tunnel_lost(io, &e).await);
        }
        if t.counts.none_left() {
            // Back to normal routing: the held request is handled there.
            io.unread(&req);
            if t.clean {
                node.dedicated.checkin(conn);
            }
            return Next::Leave(io.flush().await);
        }
        if t.cluster && special == Special::Ssubscribe {
            // Classic subscriptions stay on this connection, now one link among the client's
            // shard links.
            let classic = ClassicLink {
                node,
                conn,
                count: t.counts.classic,
                clean: t.clean,
            };
            return Next::Leave(self.shard_pubsub(Some(classic), req, io).await);
        }
        match self.subscribed_command(req, &mut conn, t, io).await {
            // RESET: dropping the connection ends its subscriptions on the node.
            Ok(true) => Next::Leave(io.flush().await),
            Ok(false) if self.closing => Next::Leave(io.flush().await),
            Ok(false) => Next::Stay((node, conn)),
            Err(e) => Next::Leave(self.tunnel_lost(io, &e).await),
        }
    }

    /// A frame from the tunnel: relayed; when it ended the last subscription, the connection
    /// goes back to the pool once a sync point shows nothing else is pending.
    async fn tunnel_frame(
        &mut self,
        frame: Result<crate::resp::Reply, crate::backend::BackendError>,
        (node, mut conn): Link,
        t: &mut Tunnel,
        io: &mut Io,
    ) -> Next {
        let reply = match frame {
            Ok(r) => r,
            Err(e) => return Next::Leave(self.tunnel_lost(io, &e.to_string()).await),
        };
        self.relay(&reply, t, io);
        if !(t.until_unsubscribed && t.counts.none_left()) {
            return Next::Stay((node, conn));
        }
        // Pipelined requests may be in flight: make sure before pooling the connection again.
        if let Err(e) = self.sync_point(&mut conn, t, io).await {
            return Next::Leave(self.tunnel_lost(io, &e).await);
        }
        if t.counts.none_left() && io.rbuf.is_empty() {
            if t.clean {
                node.dedicated.checkin(conn);
            }
            return Next::Leave(io.flush().await);
        }
        Next::Stay((node, conn))
    }

    /// Checks out a dedicated connection for `first` (SSUBSCRIBE: the master of its
    /// channel's slot in a cluster pool) and sends it there. `None`: answered with the error.
    async fn open_tunnel(&mut self, first: &Request, io: &mut Io) -> Option<Link> {
        let node = match self.exclusive_node(first, crate::command::lookup(first)) {
            Ok(n) => n,
            Err(e) => {
                e.write_to(&mut io.out);
                return None;
            }
        };
        let mut conn = match checkout_in_db(&node, self.proto, self.db, self.dedicated_link()).await
        {
            Ok(c) => c,
            Err(e) => {
                e.write_to(&mut io.out);
                return None;
            }
        };
        node.metrics.writes.increment(1);
        if let Err(e) = conn.write(first.raw()).await {
            ClientError::from(e).write_to(&mut io.out);
            return None;
        }
        Some((node, conn))
    }

    /// What the client sent meanwhile that may go down the tunnel as it is, and the first
    /// request that needs a sync point (or ends a for-good tunnel), if any. `None` after a
    /// protocol error (answered; the session closes).
    fn tunnel_batch(&mut self, io: &mut Io, t: &Tunnel) -> Option<(BytesMut, Option<Request>)> {
        let mut batch = BytesMut::new();
        loop {
            let req = match decode_request(&mut io.rbuf, &self.pool.limits) {
                Ok(Some(req)) => req,
                Ok(None) => return Some((batch, None)),
                Err(e) => {
                    ClientError::from(e).write_to(&mut io.out);
                    self.closing = true;
                    return None;
                }
            };
            let special = Special::of(command::lookup(&req));
            let passes = if t.until_unsubscribed {
                // In a cluster pool SSUBSCRIBE is held: the channel's shard may be on another
                // master, so the session moves to `shard_pubsub`.
                is_pubsub_safe(special) && !(t.cluster && special == Special::Ssubscribe)
            } else {
                !matches!(special, Special::Quit | Special::Reset)
            };
            if !passes {
                return Some((batch, Some(req)));
            }
            batch.extend_from_slice(req.raw());
        }
    }

    /// QUIT or RESET at the end of a for-good tunnel.
    fn quit_or_reset(&mut self, special: Special, io: &mut Io) {
        if special == Special::Quit {
            io.out.extend_from_slice(b"+OK\r\n");
            self.closing = true;
        } else {
            self.reset();
            io.out.extend_from_slice(b"+RESET\r\n");
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
        let info = command::lookup(&req);
        let special = Special::of(info);
        if special == Special::Quit {
            io.out.extend_from_slice(b"+OK\r\n");
            self.closing = true;
            return Ok(false);
        }
        if special == Special::Reset {
            // Dropping the connection ends every subscription on the node.
            self.reset();
            io.out.extend_from_slice(b"+RESET\r\n");
            return Ok(true);
        }
        if let Some(refusal) = self.users_gate_any(&req, info) {
            io.out.extend_from_slice(&refusal);
            return Ok(false);
        }
        if special == Special::Wait && self.proto == Protocol::Resp3 {
            // Redis runs WAIT for a RESP3 subscriber; it leaves the tunnel untouched.
            return self.subscribed_wait(&req, conn, io).await.map(|()| false);
        }
        let cluster = self.pool.routing.by_slot();
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
        if special == Special::Hello {
            return self.subscribed_hello(&req, conn, t, io).await;
        }
        if special == Special::Select {
            return self.subscribed_select(&req, conn, t, io).await;
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

    /// HELLO while subscribed: answered by the proxy; a protocol change is made on the
    /// tunnel too, whose messages are in the client's protocol (it is then not pooled again).
    async fn subscribed_hello(
        &mut self,
        req: &Request,
        conn: &mut DirectConn,
        t: &mut Tunnel,
        io: &mut Io,
    ) -> Result<bool, String> {
        let before = self.proto;
        let reply = self.hello(req);
        if self.proto != before {
            t.clean = false;
            let hello: &[u8] = match self.proto {
                Protocol::Resp3 => b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n",
                Protocol::Resp2 => b"*2\r\n$5\r\nHELLO\r\n$1\r\n2\r\n",
            };
            let switched = request_skipping_pushes(conn, hello, io).await?;
            if switched.is_error() {
                self.proto = before;
                io.out.extend_from_slice(&switched.raw);
                return Ok(false);
            }
        }
        io.out.extend_from_slice(&reply);
        Ok(false)
    }

    /// SELECT while subscribed: run on the tunnel, so later commands there see the same
    /// database.
    async fn subscribed_select(
        &mut self,
        req: &Request,
        conn: &mut DirectConn,
        t: &mut Tunnel,
        io: &mut Io,
    ) -> Result<bool, String> {
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
        Ok(false)
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
    /// Until no subscription is left (false: a for-good tunnel, MONITOR and the like).
    until_unsubscribed: bool,
    /// A cluster pool: SSUBSCRIBE moves the session to its shard links.
    cluster: bool,
}

/// Commands that may flow through a subscription tunnel without a sync point.
fn is_pubsub_safe(special: Special) -> bool {
    special.subscribes() || special.unsubscribes() || special == Special::Ping
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
