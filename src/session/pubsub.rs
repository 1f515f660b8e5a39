//! Tunnels. Subscribed clients: SUBSCRIBE/PSUBSCRIBE/SSUBSCRIBE move the session onto a dedicated
//! master connection in the client's own protocol, and from then on bytes flow both ways
//! untouched, so Redis itself enforces what a subscribed RESP2 client may send and formats
//! every message. When the last subscription ends the session returns to normal routing and
//! the connection goes back to the pool.
//!
//! Commands that change a connection for good (MONITOR, SYNC/PSYNC, CLIENT TRACKING/CACHING/
//! REPLY) cannot run on a shared connection; when `allow_commands` lets them through they
//! get the same tunnel, for the rest of the connection (or until RESET).

use bytes::BytesMut;

use super::transaction::checkout_in_db;
use super::{Io, Session};
use crate::resp::{decode_request, encode, Frame, Request};

/// Subscription counts as the node last reported them.
#[derive(Default)]
struct Counts {
    /// Channels + patterns (one count in Redis's replies).
    classic: i64,
    /// Shard channels (counted separately by Redis).
    shard: i64,
    confirmed: bool,
}

impl Counts {
    /// Updates from a frame; true when it was a subscription confirmation.
    fn observe(&mut self, frame: &Frame) -> bool {
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
        self.confirmed = true;
        true
    }

    fn none_left(&self) -> bool {
        self.confirmed && self.classic <= 0 && self.shard <= 0
    }
}

impl Session {
    /// Serves the client over a dedicated connection in both directions, untouched, starting
    /// with `first`. With `until_unsubscribed` it returns to normal routing when no
    /// subscription is left; otherwise (MONITOR, CLIENT TRACKING and the like, which change
    /// a connection for good) it tunnels until the client quits or sends RESET.
    pub(super) async fn tunnel(
        &mut self,
        first: Request,
        io: &mut Io,
        until_unsubscribed: bool,
    ) -> std::io::Result<()> {
        let topo = self.pool.topology.load();
        let node = match self.pool.router.master(&topo) {
            Ok(n) => n,
            Err(e) => {
                encode::error(&mut io.out, &e.to_string());
                return Ok(());
            }
        };
        drop(topo);
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
        let mut counts = Counts::default();
        loop {
            // Forward what the client has sent meanwhile.
            let mut batch = BytesMut::new();
            loop {
                match decode_request(&mut io.rbuf, &self.pool.limits) {
                    Ok(Some(req)) => {
                        let name = req.arg(0);
                        if name.eq_ignore_ascii_case(b"quit") {
                            io.out.extend_from_slice(b"+OK\r\n");
                            self.closing = true;
                            return io.flush().await;
                        }
                        if name.eq_ignore_ascii_case(b"reset") {
                            // Dropping the connection ends its subscriptions on the node.
                            self.reset();
                            io.out.extend_from_slice(b"+RESET\r\n");
                            return io.flush().await;
                        }
                        batch.extend_from_slice(req.raw());
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
                    encode::error(&mut io.out, &format!("ERR {e}"));
                    self.closing = true;
                    return io.flush().await;
                }
            }
            if io.eof {
                return Ok(());
            }
            tokio::select! {
                frame = conn.read() => {
                    let reply = match frame {
                        Ok(r) => r,
                        Err(e) => {
                            // Subscriptions lived on that connection: the client must resubscribe,
                            // so close it (client libraries reconnect and resubscribe).
                            tracing::warn!(client = %self.peer, error = %e, "subscription connection lost");
                            encode::error(&mut io.out, &format!("ERR {e}"));
                            self.closing = true;
                            return io.flush().await;
                        }
                    };
                    io.out.extend_from_slice(&reply.raw);
                    io.flush().await?;
                    if let Ok(Some((frame, _))) = Frame::parse(&reply.raw) {
                        if until_unsubscribed && counts.observe(&frame) && counts.none_left() {
                            node.dedicated.checkin(conn);
                            return Ok(());
                        }
                    }
                }
                r = io.stream.readable() => {
                    if r.is_err() || !io.read_available() {
                        io.eof = true;
                    }
                }
            }
        }
    }
}
