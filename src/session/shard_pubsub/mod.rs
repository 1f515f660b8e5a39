//! Sharded pub/sub in cluster pools. A shard channel lives on the master of its slot, so a
//! client whose SSUBSCRIBEs name channels in several shards needs one connection per shard
//! master; this module serves such a client while it has subscriptions: it owns those
//! connections ("links", at most one per master, each with the set of channels on it) and
//! merges their messages to the client. Classic SUBSCRIBE/PSUBSCRIBE subscriptions, which any
//! node can serve, live on one more link of their own.
//!
//! The client's own commands are handled one at a time: each is sent to the link(s) it
//! concerns followed by a `PING <token>` marker, and everything that link sends until the
//! marker's reply is relayed (messages) or taken as the command's reply. So replies reach the
//! client in request order, and a confirmation comes after every message sent before it,
//! as on one Redis. Shard confirmations are rewritten to carry the client's total number of
//! shard channels (what one Redis would count); classic ones pass through untouched, since
//! all classic subscriptions are on one link.
//!
//! When a slot migrates or its master fails over, Redis 7 unsubscribes the slot's channels
//! on its own (an unsolicited `sunsubscribe`) or the link breaks. The client is not told:
//! each such channel is subscribed again at the slot's owner (following MOVED, and after a
//! lost connection waiting for the map to name another master, within `master_wait`). Only
//! when that fails does the client see the `sunsubscribe`. Messages published in between are
//! lost, as pub/sub is at-most-once anyway. While a channel is being subscribed again the
//! client's session waits (the channels of one lost master share one `master_wait`);
//! messages on its other links queue in their sockets meanwhile.
//!
//! Scope: while a RESP2 client is in this mode, only (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PING,
//! QUIT and RESET are served; anything else gets Redis's subscribed-mode error. A RESP3
//! client's other commands take the normal cluster path, one at a time (commands that need a
//! connection of their own are refused). SUNSUBSCRIBE
//! may name channels of several slots (each goes to its own link). When no subscription is
//! left the client returns to normal routing.

mod recover;
mod subs;

use self::subs::{Link, Subs};
use std::collections::{HashSet, VecDeque};

use bytes::{Bytes, BytesMut};
use futures_util::future::select_all;

use super::dedicated::checkout_in_db;
use super::subscribed::{cant_execute, is_marker_reply, ClassicLink, Counts};
use super::{Io, Session};
use crate::backend::BackendError;
use crate::command::Special;
use crate::resp::{decode_request, encode, ClientError, Frame, Protocol, Reply, Request};
use crate::route::split::{self, Plan};

/// Most links one client may hold: one per shard master plus the classic one, so this only
/// bites on clusters larger than any we expect; it bounds what one client can open.
const MAX_LINKS: usize = 128;

/// The error for a client at [`MAX_LINKS`] (not worth retrying).
const TOO_MANY_LINKS: &str = "sluice: too many pub/sub connections for one client";

/// Reply bytes buffered for the client before they are flushed in the middle of a relay.
const FLUSH_AT: usize = 64 * 1024;

/// What a frame from a link is.
enum Seen {
    /// The reply to the marker in flight.
    Marker,
    /// A published message: relayed as is.
    Message,
    /// `[kind, channel, count]` confirmation (kind lowercased; channel None when nil).
    Confirm(Vec<u8>, Option<Bytes>),
    /// Anything else (a command's reply).
    Other,
}

fn classify(reply: &Reply, marker: Option<&str>) -> Seen {
    let Ok(Some((frame, _))) = Frame::parse(&reply.raw) else {
        return Seen::Other;
    };
    if marker.is_some_and(|m| is_marker_reply(&frame, m)) {
        return Seen::Marker;
    }
    let items = match &frame {
        Frame::Array(items) | Frame::Push(items) if !items.is_empty() => items,
        _ => return Seen::Other,
    };
    let Some(kind) = items[0].as_bytes() else {
        return Seen::Other;
    };
    let kind = kind.to_ascii_lowercase();
    match kind.as_slice() {
        b"message" | b"pmessage" | b"smessage" => Seen::Message,
        b"subscribe" | b"unsubscribe" | b"psubscribe" | b"punsubscribe" | b"ssubscribe"
        | b"sunsubscribe"
            if items.len() == 3 =>
        {
            let channel = match &items[1] {
                Frame::Bulk(b) => Some(b.clone()),
                _ => None,
            };
            Seen::Confirm(kind, channel)
        }
        _ => Seen::Other,
    }
}

/// Which `sunsubscribe` confirmations during an exchange answer the client's command (the
/// others are Redis dropping channels on its own).
enum Expect<'a> {
    Nothing,
    AllUnsubscribes,
    Unsubscribe(&'a [u8]),
}

impl Expect<'_> {
    fn wants(&self, channel: Option<&Bytes>) -> bool {
        match self {
            Expect::Nothing => false,
            Expect::AllUnsubscribes => true,
            Expect::Unsubscribe(c) => channel.is_some_and(|ch| ch.as_ref() == *c),
        }
    }
}

/// What the session does after one client request.
enum Flow {
    Continue,
    /// The session is over (QUIT, RESET, or the classic link failed): return at once.
    End,
}

/// Writes a `[kind, channel, count]` confirmation in the client's protocol.
fn confirmation(out: &mut BytesMut, proto: Protocol, kind: &[u8], ch: Option<&[u8]>, n: usize) {
    encode::push_len(out, proto, 3);
    encode::bulk(out, kind);
    match ch {
        Some(c) => encode::bulk(out, c),
        None => encode::null(out, proto),
    }
    encode::integer(out, n as i64);
}

/// The next frame (or failure) from any link. Never resolves without links.
async fn next_frame(links: &mut [Link]) -> (usize, Result<Reply, BackendError>) {
    if links.is_empty() {
        return std::future::pending().await;
    }
    // `read` only moves bytes into the connection's own buffer before a frame is complete,
    // so dropping the losers' futures loses nothing.
    let reads = links.iter_mut().map(|l| Box::pin(l.conn.read()));
    let (res, i, _) = select_all(reads).await;
    (i, res)
}

impl Session {
    /// Serves a cluster-pool client that subscribes to shard channels, starting with `first`
    /// (an SSUBSCRIBE), until no subscription is left, it quits or sends RESET. `classic` is
    /// the client's classic subscription tunnel, if it had one.
    pub(super) async fn shard_pubsub(
        &mut self,
        classic: Option<ClassicLink>,
        first: Request,
        io: &mut Io,
    ) -> std::io::Result<()> {
        let mut s = entering(classic);
        let mut next = Some(first);
        loop {
            if let Some(req) = next.take() {
                if let Flow::End = self.subscribed_request(&mut s, req, io).await {
                    return io.flush().await;
                }
                if let Flow::End = self.settle(&mut s, io).await {
                    return io.flush().await;
                }
                if s.none_left() {
                    self.leave(s);
                    return io.flush().await;
                }
            }
            match decode_request(&mut io.rbuf, &self.pool.limits) {
                Ok(Some(req)) => {
                    next = Some(req);
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    ClientError::from(e).write_to(&mut io.out);
                    self.closing = true;
                    return io.flush().await;
                }
            }
            if io.eof {
                return Ok(());
            }
            io.flush().await?;
            tokio::select! {
                (i, res) = next_frame(&mut s.links) => {
                    match res {
                        Ok(reply) => self.unsolicited(&mut s, i, reply, io),
                        Err(e) if s.links[i].classic => {
                            return self.tunnel_lost(io, &e.to_string()).await;
                        }
                        Err(e) => {
                            tracing::info!(client = %self.entry.addr, node = %s.links[i].node.addr,
                                error = %e, "shard pub/sub connection lost; resubscribing");
                            s.shard_link_lost(i);
                        }
                    }
                    if let Flow::End = self.settle(&mut s, io).await {
                        return io.flush().await;
                    }
                    if s.none_left() {
                        self.leave(s);
                        return io.flush().await;
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

    /// Subscribes again what Redis dropped, then closes links left without channels.
    async fn settle(&mut self, s: &mut Subs, io: &mut Io) -> Flow {
        let flow = self.recover(s, io).await;
        s.prune();
        flow
    }

    /// Back to normal routing: the classic link goes back to its pool when clean; shard
    /// links (all empty now) are closed.
    fn leave(&mut self, s: Subs) {
        for l in s.links {
            if l.classic && s.classic_clean {
                l.node.dedicated.checkin(l.conn);
            }
        }
    }

    /// A frame that arrived while no command of the client was in flight.
    fn unsolicited(&mut self, s: &mut Subs, i: usize, reply: Reply, io: &mut Io) {
        match classify(&reply, None) {
            Seen::Message => io.out.extend_from_slice(&reply.raw),
            Seen::Confirm(kind, Some(channel))
                if kind == b"sunsubscribe" && s.links.get(i).is_some_and(|l| !l.classic) =>
            {
                tracing::debug!(client = %self.entry.addr, channel = %String::from_utf8_lossy(&channel),
                    "shard channel dropped by its node; resubscribing");
                s.server_dropped(i, channel);
            }
            _ => {
                tracing::debug!(client = %self.entry.addr, "unexpected frame on a pub/sub link dropped");
            }
        }
    }

    /// Sends `raw` and a marker on link `i`, relays the messages that arrive until the
    /// marker's reply and returns the command's own replies. Shard channels Redis drops
    /// meanwhile (not answering this command, per `expect`) are queued for [`Session::recover`].
    async fn exchange(
        &mut self,
        s: &mut Subs,
        i: usize,
        raw: &[u8],
        expect: Expect<'_>,
        io: &mut Io,
    ) -> Result<Vec<Reply>, BackendError> {
        s.seq += 1;
        let token = format!("sluice-sync-{}-s{}", self.id, s.seq);
        let mut buf = BytesMut::with_capacity(raw.len() + token.len() + 24);
        buf.extend_from_slice(raw);
        encode::command(&mut buf, &[b"PING", token.as_bytes()]);
        s.links[i].conn.write(&buf).await?;
        let mut own = Vec::new();
        // Bounded per frame, not per exchange: a node that stops answering must not hold
        // the client forever, while a long run of messages to relay is fine.
        let timeout = self.pool.cfg.request_timeout;
        loop {
            let reply = match tokio::time::timeout(timeout, s.links[i].conn.read()).await {
                Ok(r) => r?,
                Err(_) => {
                    return Err(BackendError::Timeout {
                        addr: s.links[i].node.addr.clone(),
                        ms: timeout.as_millis() as u64,
                    })
                }
            };
            match classify(&reply, Some(&token)) {
                Seen::Marker => return Ok(own),
                Seen::Message => io.out.extend_from_slice(&reply.raw),
                Seen::Confirm(kind, Some(channel))
                    if kind == b"sunsubscribe"
                        && !s.links[i].classic
                        && !expect.wants(Some(&channel)) =>
                {
                    s.server_dropped(i, channel);
                }
                _ => own.push(reply),
            }
            if io.out.len() > FLUSH_AT {
                // A slow client holds this link's node buffer, not the proxy's memory.
                let _ = io.flush().await;
            }
        }
    }

    /// One request of a client in this mode.
    async fn subscribed_request(&mut self, s: &mut Subs, req: Request, io: &mut Io) -> Flow {
        let info = crate::command::lookup(&req);
        let name = info.map_or("", |i| i.name);
        if let Some(refusal) = self.users_gate_any(&req, info) {
            io.out.extend_from_slice(&refusal);
            return if self.closing {
                Flow::End
            } else {
                Flow::Continue
            };
        }
        match Special::of(info) {
            Special::Ssubscribe => self.ssubscribe(s, &req, io).await,
            Special::Sunsubscribe => self.sunsubscribe(s, &req, io).await,
            special @ (Special::Subscribe
            | Special::Psubscribe
            | Special::Unsubscribe
            | Special::Punsubscribe) => {
                return self
                    .classic_request(s, &req, name, special.subscribes(), io)
                    .await
            }
            Special::Ping => return self.ping(s, &req, io).await,
            Special::Quit => {
                io.out.extend_from_slice(b"+OK\r\n");
                self.closing = true;
                return Flow::End;
            }
            Special::Reset => {
                // Dropping the links ends every subscription on the nodes.
                s.links.clear();
                self.reset();
                io.out.extend_from_slice(b"+RESET\r\n");
                return Flow::End;
            }
            Special::Wait if self.proto == Protocol::Resp3 => encode::error(
                &mut io.out,
                "ERR sluice: WAIT while subscribed to shard channels is not supported through \
                 the proxy (the messages of every shard link would have to be relayed while it \
                 waits)",
            ),
            // A RESP3 client may run any command while subscribed, as on Redis.
            _ if self.proto == Protocol::Resp3 => {
                if self.subscribed_plain(req, info, io).await.is_err() {
                    self.closing = true;
                    return Flow::End;
                }
            }
            _ => encode::error(&mut io.out, &cant_execute(info, &req)),
        }
        Flow::Continue
    }

    /// SSUBSCRIBE: on the link to the master of the channels' (single) slot.
    async fn ssubscribe(&mut self, s: &mut Subs, req: &Request, io: &mut Io) {
        if req.len() < 2 {
            encode::error(
                &mut io.out,
                "ERR wrong number of arguments for 'ssubscribe' command",
            );
            return;
        }
        let slot = match split::plan(req, crate::command::lookup(req)) {
            Plan::Single(Some(slot)) => slot,
            _ => {
                ClientError::cross_slot().write_to(&mut io.out);
                return;
            }
        };
        let deadline = tokio::time::Instant::now() + self.pool.cfg.master_wait;
        match self
            .subscribe_at_owner(s, req.raw(), slot, None, deadline, io)
            .await
        {
            Ok((i, own)) => {
                let mut n = s.total();
                for reply in own {
                    match classify(&reply, None) {
                        Seen::Confirm(kind, Some(channel)) if kind == b"ssubscribe" => {
                            if !s.counted(&channel) {
                                n += 1;
                            }
                            s.links[i].channels.insert(channel.clone());
                            confirmation(&mut io.out, self.proto, b"ssubscribe", Some(&channel), n);
                        }
                        _ => io.out.extend_from_slice(&reply.raw),
                    }
                }
            }
            Err(e) => e.write_to(&mut io.out),
        }
    }

    /// SUNSUBSCRIBE: each named channel on the link that has it (a channel the client does
    /// not have is confirmed without asking a node); without channels, every shard link.
    /// Confirmations are written from the proxy's own books, counting the client's total.
    async fn sunsubscribe(&mut self, s: &mut Subs, req: &Request, io: &mut Io) {
        let proto = self.proto;
        if req.len() < 2 {
            let mut dropped: Vec<Bytes> = Vec::new();
            let mut seen: HashSet<Bytes> = HashSet::new();
            let mut i = 0;
            while i < s.links.len() {
                if s.links[i].classic || s.links[i].channels.is_empty() {
                    i += 1;
                    continue;
                }
                let held: Vec<Bytes> = s.links[i].channels.drain().collect();
                let raw = Request::from_args(&[b"SUNSUBSCRIBE"]);
                let res = self
                    .exchange(s, i, raw.raw(), Expect::AllUnsubscribes, io)
                    .await;
                for c in held {
                    if seen.insert(c.clone()) {
                        dropped.push(c);
                    }
                }
                if res.is_err() {
                    // Its channels are being dropped anyway: nothing to subscribe again.
                    s.links.remove(i);
                    continue;
                }
                i += 1;
            }
            if dropped.is_empty() {
                confirmation(&mut io.out, proto, b"sunsubscribe", None, s.total());
            }
            let mut left = s.total() + dropped.len();
            for c in dropped {
                left -= 1;
                confirmation(&mut io.out, proto, b"sunsubscribe", Some(&c), left);
            }
            return;
        }
        let mut n = s.total();
        for c in req.args().skip(1) {
            let had = s.counted(c);
            while let Some(i) = s.links.iter().position(|l| l.channels.contains(c)) {
                s.links[i].channels.remove(c);
                let raw = Request::from_args(&[&b"SUNSUBSCRIBE"[..], c]);
                if self
                    .exchange(s, i, raw.raw(), Expect::Unsubscribe(c), io)
                    .await
                    .is_err()
                {
                    s.shard_link_lost(i);
                }
            }
            // Not to be subscribed again either, if Redis had just dropped it.
            s.forget_lost(c);
            if had {
                n = n.saturating_sub(1);
            }
            confirmation(&mut io.out, proto, b"sunsubscribe", Some(c), n);
        }
    }

    /// SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE: on the classic link (opened on any
    /// master at the first SUBSCRIBE/PSUBSCRIBE), replies relayed untouched.
    async fn classic_request(
        &mut self,
        s: &mut Subs,
        req: &Request,
        name: &str,
        subscribe: bool,
        io: &mut Io,
    ) -> Flow {
        let i = match s.classic() {
            Some(i) => i,
            None if !subscribe => {
                // No classic subscription: answer as Redis would, with counts of zero.
                let kind = name.as_bytes();
                if req.len() < 2 {
                    confirmation(&mut io.out, self.proto, kind, None, 0);
                }
                for c in req.args().skip(1) {
                    confirmation(&mut io.out, self.proto, kind, Some(c), 0);
                }
                return Flow::Continue;
            }
            None if req.len() < 2 => {
                encode::error(
                    &mut io.out,
                    &format!("ERR wrong number of arguments for '{name}' command"),
                );
                return Flow::Continue;
            }
            None => match self.open_classic(s, req).await {
                Ok(i) => i,
                Err(e) => {
                    e.write_to(&mut io.out);
                    return Flow::Continue;
                }
            },
        };
        match self.exchange(s, i, req.raw(), Expect::Nothing, io).await {
            Ok(own) => {
                for reply in own {
                    if let Ok(Some((frame, _))) = Frame::parse(&reply.raw) {
                        s.counts.observe(&frame);
                    }
                    io.out.extend_from_slice(&reply.raw);
                }
                Flow::Continue
            }
            Err(e) => {
                // Classic subscriptions are not tracked one by one: the client must
                // resubscribe, as with a classic tunnel (libraries reconnect and do).
                let _ = self.tunnel_lost(io, &e.to_string()).await;
                Flow::End
            }
        }
    }

    /// Opens the classic link on the node a keyless request goes to.
    async fn open_classic(&mut self, s: &mut Subs, req: &Request) -> Result<usize, ClientError> {
        if s.links.len() >= MAX_LINKS {
            return Err(ClientError::err(TOO_MANY_LINKS));
        }
        let node = self.exclusive_node(req, crate::command::lookup(req))?;
        let conn = checkout_in_db(&node, self.proto, self.db, self.dedicated_link()).await?;
        node.metrics.writes.increment(1);
        s.links.push(Link {
            node,
            conn,
            classic: true,
            channels: HashSet::new(),
        });
        Ok(s.links.len() - 1)
    }

    /// PING: answered by a link that is subscribed, so it is formatted as a subscribed
    /// Redis formats it and comes after the messages before it.
    async fn ping(&mut self, s: &mut Subs, req: &Request, io: &mut Io) -> Flow {
        // The classic link only while it has subscriptions: once its last one ended it is
        // out of subscribed mode and would answer a RESP2 PING with `+PONG`, where Redis
        // (the client still has shard channels) answers `["pong", ""]`, as a shard link does.
        let subscribed = s.classic().filter(|_| s.counts.classic > 0).or_else(|| {
            s.links
                .iter()
                .position(|l| !l.classic && !l.channels.is_empty())
        });
        let Some(i) = subscribed
            .or_else(|| s.classic())
            .or_else(|| s.links.first().map(|_| 0))
        else {
            io.out.extend_from_slice(b"+PONG\r\n");
            return Flow::Continue;
        };
        match self.exchange(s, i, req.raw(), Expect::Nothing, io).await {
            Ok(own) => {
                for reply in own {
                    io.out.extend_from_slice(&reply.raw);
                }
                Flow::Continue
            }
            Err(e) if s.links[i].classic => {
                let _ = self.tunnel_lost(io, &e.to_string()).await;
                Flow::End
            }
            Err(e) => {
                s.shard_link_lost(i);
                encode::error(&mut io.out, &format!("ERR sluice: {e}"));
                Flow::Continue
            }
        }
    }
}

/// A client's subscriptions as it enters shard pub/sub: none, plus its classic tunnel (and
/// that tunnel's count) if it had one.
fn entering(classic: Option<ClassicLink>) -> Subs {
    let mut s = Subs {
        links: Vec::new(),
        counts: Counts::default(),
        classic_clean: true,
        lost: VecDeque::new(),
        lost_set: HashSet::new(),
        seq: 0,
    };
    if let Some(c) = classic {
        s.counts.classic = c.count;
        s.classic_clean = c.clean;
        s.links.push(Link {
            node: c.node,
            conn: c.conn,
            classic: true,
            channels: HashSet::new(),
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(s: &str) -> Reply {
        Reply::new(Bytes::from(s.to_string()), false)
    }

    #[test]
    fn frames_are_classified() {
        let sunsub = reply("*3\r\n$12\r\nsunsubscribe\r\n$2\r\nch\r\n:0\r\n");
        assert!(matches!(classify(&sunsub, None),
            Seen::Confirm(k, Some(c)) if k == b"sunsubscribe" && c.as_ref() == b"ch"));
        let push = reply(">3\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$1\r\nx\r\n");
        assert!(matches!(classify(&push, None), Seen::Message));
        let marker = reply("*2\r\n$4\r\npong\r\n$3\r\ntok\r\n");
        assert!(matches!(classify(&marker, Some("tok")), Seen::Marker));
        assert!(matches!(classify(&marker, Some("other")), Seen::Other));
        let nil = reply("*3\r\n$12\r\nsunsubscribe\r\n$-1\r\n:0\r\n");
        assert!(matches!(classify(&nil, None), Seen::Confirm(_, None)));
        assert!(matches!(
            classify(&reply("-MOVED 1 a:1\r\n"), None),
            Seen::Other
        ));
    }

    #[test]
    fn confirmations_follow_the_protocol() {
        let mut out = BytesMut::new();
        confirmation(&mut out, Protocol::Resp2, b"ssubscribe", Some(b"c"), 2);
        assert_eq!(&out[..], b"*3\r\n$10\r\nssubscribe\r\n$1\r\nc\r\n:2\r\n");
        out.clear();
        confirmation(&mut out, Protocol::Resp3, b"sunsubscribe", None, 0);
        assert_eq!(&out[..], b">3\r\n$12\r\nsunsubscribe\r\n_\r\n:0\r\n");
    }

    #[test]
    fn expectations_pick_the_client_s_unsubscribes() {
        let ch = Bytes::from_static(b"a");
        assert!(!Expect::Nothing.wants(Some(&ch)));
        assert!(Expect::AllUnsubscribes.wants(None));
        assert!(Expect::Unsubscribe(b"a").wants(Some(&ch)));
        assert!(!Expect::Unsubscribe(b"b").wants(Some(&ch)));
    }
}
