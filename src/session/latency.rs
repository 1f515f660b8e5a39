//! `LATENCY HISTOGRAM` through the proxy: the master's per-command histograms, plus the
//! commands the proxy answers itself (PING, CLIENT ID, SELECT, ...), which never reach a
//! node. Those are counted here per command (calls and a power-of-two microsecond
//! histogram, as Redis reports them) and reset by `CONFIG RESETSTAT` as it passes; what the
//! node counted of them came from the proxy's own connections and is left out.
//! Forwarded commands are the node's own measurement; the proxy does not count them (that
//! would be two shared counters per request on the hot path).

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};

use super::dedicated::{await_reply, checkout_in_db, Outcome};
use super::{Io, Session};
use crate::command::Special;
use crate::resp::{ClientError, Frame, Protocol, Request};

/// Power-of-two buckets, 1 µs to 2^23 µs (about 8 s) and above.
const BUCKETS: usize = 24;

/// Locally answered commands' histograms of a pool (in its client registry).
#[derive(Default)]
pub(crate) struct LocalLatency {
    by_command: Mutex<HashMap<&'static str, Histogram>>,
}

#[derive(Clone, Copy, Default)]
struct Histogram {
    calls: u64,
    buckets: [u64; BUCKETS],
}

impl LocalLatency {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, Histogram>> {
        self.by_command.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A command answered by the proxy took `micros`.
    pub(super) fn record(&self, name: &'static str, micros: u64) {
        let bucket = (64 - micros.max(1).leading_zeros() as usize - 1).min(BUCKETS - 1);
        let mut map = self.lock();
        let h = map.entry(name).or_default();
        h.calls += 1;
        h.buckets[bucket] += 1;
    }

    /// `CONFIG RESETSTAT` passed.
    pub(crate) fn reset(&self) {
        self.lock().clear();
    }

    /// The entries `filter` selects (all without one; a container name selects its
    /// subcommands too), as `(name, frame)` in Redis's shape.
    fn entries(&self, filter: &[String]) -> Vec<(String, Frame)> {
        let map = self.lock();
        let mut out: Vec<(String, Frame)> = map
            .iter()
            .filter(|(name, _)| {
                filter.is_empty()
                    || filter.iter().any(|f| {
                        f == *name
                            || name
                                .strip_prefix(f.as_str())
                                .is_some_and(|rest| rest.starts_with('|'))
                    })
            })
            .map(|(name, h)| (name.to_string(), h.frame()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

impl Histogram {
    /// `{calls: n, histogram_usec: {bucket: cumulative count, ...}}`.
    fn frame(&self) -> Frame {
        let mut cumulative = 0;
        let mut buckets = Vec::new();
        for (i, n) in self.buckets.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            cumulative += n;
            buckets.push((Frame::Integer(1 << i), Frame::Integer(cumulative as i64)));
        }
        Frame::Map(vec![
            (bulk("calls"), Frame::Integer(self.calls as i64)),
            (bulk("histogram_usec"), Frame::Map(buckets)),
        ])
    }
}

/// Commands no client's request ever takes to a node.
fn answered_by_proxy(special: Special) -> bool {
    matches!(
        special,
        Special::Ping
            | Special::Echo
            | Special::Hello
            | Special::Auth
            | Special::Select
            | Special::Quit
            | Special::Reset
            | Special::Client
            | Special::ClientPause
            | Special::ClientReply
            | Special::ClientCaching
            | Special::ClientTracking
            | Special::Readonly
            | Special::Readwrite
            | Special::Asking
    )
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

impl Session {
    /// `LATENCY HISTOGRAM [command ...]`: the master's reply (asked on a dedicated RESP3
    /// connection) with the proxy's locally answered commands added.
    pub(super) async fn latency_histogram(&mut self, req: &Request, io: &mut Io) {
        let node = match self.exclusive_node(req, crate::command::lookup(req)) {
            Ok(n) => n,
            Err(e) => return e.write_to(&mut io.out),
        };
        let mut conn =
            match checkout_in_db(&node, Protocol::Resp3, self.db, self.dedicated_link()).await {
                Ok(c) => c,
                Err(e) => return e.write_to(&mut io.out),
            };
        let timeout = Some(self.pool.cfg.request_timeout);
        let reply = match await_reply(&mut conn, req.raw(), io, timeout).await {
            Outcome::Reply(reply) => {
                node.dedicated.checkin(conn);
                reply
            }
            Outcome::Failed(e) => return ClientError::from(e).write_to(&mut io.out),
            Outcome::ClientGone => return,
        };
        let Ok(Some((Frame::Map(mut pairs), _))) = Frame::parse(&reply.raw) else {
            // An error (or anything unexpected): the node's words, in the client's protocol.
            if let Ok(Some((f, _))) = Frame::parse(&reply.raw) {
                f.encode(self.proto, &mut io.out);
            }
            return;
        };
        // What the node counted of commands the proxy always answers itself was sent by the
        // proxy's own connections (their handshakes, injected SELECTs): not the clients'.
        pairs.retain(|(k, _)| {
            let special = k
                .as_bytes()
                .and_then(crate::command::lookup_name)
                .map(|i| i.special);
            !special.is_some_and(answered_by_proxy)
        });
        let filter: Vec<String> = req
            .args()
            .skip(2)
            .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
            .collect();
        for (name, frame) in self.pool.registry.latency.entries(&filter) {
            let at = pairs
                .iter()
                .position(|(k, _)| k.as_bytes() == Some(name.as_bytes()));
            match at {
                // The node counted the proxy's own connections (its PING probes, say); the
                // clients' calls of this command are the proxy's.
                Some(i) => pairs[i].1 = frame,
                None => pairs.push((bulk(&name), frame)),
            }
        }
        let mut out = BytesMut::new();
        Frame::Map(pairs).encode(self.proto, &mut out);
        io.out.extend_from_slice(&out);
    }
}
