//! Replication: the state both roles share (replication ids, offsets, backlog, the replicas
//! attached to us, the link to our master) and the step that moves the write feed to its
//! consumers.
//!
//! # How writes flow
//!
//! ```text
//! command ─► Ctx::finish ─► Feed (SELECT injected) ─► Store::publish_feed ─► ReplState::publish
//!      ├─► AOF buffer (flushed and fsynced by the AOF thread, outside the lock)
//!      └─► master role only: backlog + every replica's output buffer (woken via Notify)
//! ```
//! On a replica, the master's stream is applied by `replica.rs`, which puts the *received
//! bytes* (not our re-encoding) into the backlog, so offsets stay byte-identical to the
//! master's: a promoted replica can then serve PSYNC for the old master's replid
//! (psync2, `replid2`/`second_repl_offset`).
//!
//! Everything here lives inside the [`crate::node::store::Store`], under the one lock, so a
//! write, its offset and its place in every replica's stream change atomically.

pub mod attach;
pub mod backlog;
pub mod master;
pub mod replica;
pub mod role;
pub mod snapshot;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use tokio::sync::Notify;

use self::backlog::Backlog;
use crate::node::aof_buffer::AofBuffer;
use crate::node::feed::Feed;
use crate::node::output_limit::{ClassLimit, OutputLimits};

/// Redis's "no replid" value for `master_replid2`.
pub const NO_REPLID: &str = "0000000000000000000000000000000000000000";

/// Full/partial resync counters, as INFO stats reports them.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReplStats {
    /// Full resyncs served (`sync_full`).
    pub sync_full: u64,
    /// Partial resyncs accepted (`sync_partial_ok`).
    pub sync_partial_ok: u64,
    /// Partial resyncs refused, answered with a full resync (`sync_partial_err`).
    pub sync_partial_err: u64,
}

/// One replica attached to us (master side).
#[derive(Debug)]
pub struct ReplicaLink {
    /// Its client id (CLIENT KILL, INFO).
    pub id: u64,
    /// Its address as we see it.
    pub ip: String,
    /// The port it listens on (REPLCONF listening-port).
    pub port: u16,
    /// Last offset it acknowledged (REPLCONF ACK).
    pub ack: i64,
    /// When it last acknowledged (INFO `lag`).
    pub last_ack: Instant,
    /// Stream bytes not yet written to it.
    pub buf: BytesMut,
    /// Wakes its sender task.
    pub notify: Arc<Notify>,
    /// Set to disconnect it (output limit, CLIENT KILL); the sender task closes the link.
    pub killed: bool,
    /// Size of the resync preamble (snapshot) at the head of `buf` until it is taken for
    /// writing; it does not count against the output limit (Redis's limit excludes the RDB
    /// too).
    pub preamble: usize,
    /// Stream bytes taken from `buf` and being written: still held, so still counted.
    pub in_flight: usize,
    /// When its output went past the soft limit.
    pub soft_since: Option<Instant>,
    /// The preamble has been written: INFO says `state=online` (before: `send_bulk`).
    pub online: bool,
}

/// The state of the link to our master, as ROLE names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Waiting to (re)connect.
    Connect,
    /// TCP connect and handshake in progress.
    Connecting,
    /// Receiving the snapshot.
    Sync,
    /// Streaming.
    Connected,
}

impl LinkState {
    /// The word ROLE uses.
    pub fn name(self) -> &'static str {
        match self {
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Sync => "sync",
            LinkState::Connected => "connected",
        }
    }
}

/// Our master (replica side).
#[derive(Debug)]
pub struct MasterLink {
    /// Its host, as given to REPLICAOF.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Link state.
    pub state: LinkState,
    /// Last time we read from it.
    pub last_io: Option<Instant>,
    /// When the link went down (`None` while up; set at REPLICAOF, before the first sync).
    pub down_since: Option<Instant>,
    /// Set once a full sync completed; before that `down_since_seconds` reads -1 as Redis.
    pub ever_synced: bool,
    /// Stream bytes read from the master, applied or not (`slave_read_repl_offset`).
    pub read_offset: i64,
    /// Closed to stop this link's task (REPLICAOF elsewhere / NO ONE).
    pub cancel: tokio_util::sync::CancellationToken,
}

/// Replication state of the node (both roles).
#[derive(Debug)]
pub struct ReplState {
    /// `min-replicas-to-write` and `min-replicas-max-lag`, copied from the settings on CONFIG
    /// SET (checked before every write a script makes).
    pub min_replicas: (usize, usize),
    /// Our replication id (`master_replid`); on a replica, the master's.
    pub replid: String,
    /// The previous id, valid up to `second_offset` (after a promotion).
    pub replid2: String,
    /// Last offset + 1 for which `replid2` is valid, -1 if none (`second_repl_offset`).
    pub second_offset: i64,
    /// `master_repl_offset`: the last stream byte produced (master) or processed (replica).
    pub offset: i64,
    /// The backlog, created when the first replica attaches (or we become a replica).
    pub backlog: Option<Backlog>,
    /// `repl-backlog-size`.
    pub backlog_size: usize,
    /// Replicas attached to us.
    pub replicas: Vec<ReplicaLink>,
    /// Our master, when we are a replica.
    pub master: Option<MasterLink>,
    /// Counters for INFO stats.
    pub stats: ReplStats,
    /// The append-only file's pending bytes, when `appendonly yes`.
    pub aof: Option<AofBuffer>,
    /// `client-output-buffer-limit`'s replica class: a replica whose unsent stream grows
    /// past it is disconnected (it must resync later, but our memory stays bounded).
    pub output_limit: ClassLimit,
    /// The database the master's stream last SELECTed, kept across reconnects: a
    /// `+CONTINUE` resumes the stream mid-way and the master will not repeat its SELECT.
    pub master_db: usize,
    /// True once our (replid, offset) names a real history worth a PSYNC: we served or
    /// received a stream, or were promoted. A node without one asks `PSYNC ? -1`.
    pub history: bool,
    /// Wakes the replica supervisor when REPLICAOF changes our master.
    pub wake: Arc<Notify>,
}

impl Default for ReplState {
    fn default() -> Self {
        ReplState {
            min_replicas: (0, 10),
            replid: new_replid(),
            replid2: NO_REPLID.to_string(),
            second_offset: -1,
            offset: 0,
            backlog: None,
            backlog_size: backlog::DEFAULT_SIZE,
            replicas: Vec::new(),
            master: None,
            stats: ReplStats::default(),
            aof: None,
            output_limit: OutputLimits::default().replica,
            master_db: 0,
            history: false,
            wake: Arc::new(Notify::new()),
        }
    }
}

impl ReplState {
    /// `min-replicas-to-write` is set and fewer replicas than that are online (the caller
    /// checks that this node is a master).
    pub fn too_few_replicas(&self) -> bool {
        let (min, lag) = self.min_replicas;
        min > 0
            && lag > 0
            && self
                .replicas
                .iter()
                .filter(|l| l.online && !l.killed)
                .count()
                < min
    }

    /// True when we replicate from a master.
    pub fn is_replica(&self) -> bool {
        self.master.is_some()
    }

    /// True when something takes the feed's bytes: the AOF or the replication backlog.
    pub fn has_consumer(&self) -> bool {
        self.aof.is_some() || self.backlog.is_some()
    }

    /// Creates the backlog (if needed) and turns the feed on: from now on every write is
    /// recorded for the stream.
    pub fn ensure_backlog(&mut self, feed: &mut Feed) {
        if self.backlog.is_none() {
            self.history |= !self.is_replica();
            self.backlog = Some(Backlog::new(self.backlog_size, self.offset + 1));
        }
        feed.enabled = true;
    }

    /// Hands what the feed recorded to its consumers: the AOF always, the replication
    /// stream only on a master (a replica streams its master's bytes instead, see
    /// `replica.rs`).
    pub fn publish(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let Some(aof) = self.aof.as_mut() {
            aof.append(bytes);
        }
        if !self.is_replica() {
            self.stream(bytes);
        }
    }

    /// Appends bytes to the replication stream: offset, backlog, every replica.
    pub fn stream(&mut self, bytes: &[u8]) {
        let Some(backlog) = self.backlog.as_mut() else {
            return;
        };
        backlog.push(bytes);
        self.offset += bytes.len() as i64;
        let now = Instant::now();
        for r in &mut self.replicas {
            if r.killed {
                continue;
            }
            let used = r.buf.len().saturating_sub(r.preamble) + r.in_flight + bytes.len();
            if self.output_limit.exceeded(used, &mut r.soft_since, now) {
                tracing::warn!(replica = %r.ip, port = r.port, "replica output buffer over its limit: disconnecting it");
                r.killed = true;
                r.buf = BytesMut::new();
            } else {
                r.buf.extend_from_slice(bytes);
            }
            r.notify.notify_one();
        }
    }

    /// Marks replicas for disconnection (CLIENT KILL TYPE replica): all, or the one with
    /// client id `id`. Returns how many.
    pub fn kill_replicas(&mut self, id: Option<u64>) -> usize {
        let mut n = 0;
        for r in &mut self.replicas {
            if id.is_none_or(|i| i == r.id) && !r.killed {
                r.killed = true;
                r.notify.notify_one();
                n += 1;
            }
        }
        n
    }

    /// Changes `repl-backlog-size` (CONFIG SET): a smaller backlog drops its oldest bytes.
    pub fn set_backlog_size(&mut self, size: usize) {
        self.backlog_size = size.max(1);
        if let Some(b) = self.backlog.as_mut() {
            b.resize(self.backlog_size);
        }
    }

    /// Starts a new history: the current id becomes `replid2`, valid up to the current
    /// offset, so replicas of our old master (or of us) can still PSYNC partially
    /// (psync2). Used on promotion (REPLICAOF NO ONE).
    pub fn shift_replid(&mut self) {
        self.replid2 = std::mem::replace(&mut self.replid, new_replid());
        self.second_offset = self.offset + 1;
        self.history = true;
    }

    /// True if a PSYNC for (`replid`, `from`) can be served from the backlog.
    pub fn can_continue(&self, replid: &str, from: i64) -> bool {
        let id_ok = replid == self.replid
            || (replid == self.replid2 && from <= self.second_offset && self.second_offset > 0);
        id_ok
            && self
                .backlog
                .as_ref()
                .is_some_and(|b| from >= b.first_byte_offset() && from <= self.offset + 1)
    }
}

/// A fresh 40-hex-digit replication id. The std `RandomState` is seeded from the OS per
/// process; mixing in the time and a counter makes successive ids differ.
pub fn new_replid() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let state = RandomState::new();
    let mut id = String::with_capacity(40);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    for part in 0..3u64 {
        let mut h = state.build_hasher();
        h.write_u64(nanos);
        h.write_u64(seq);
        h.write_u64(part);
        id.push_str(&format!("{:016x}", h.finish()));
    }
    id.truncate(40);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replids_are_40_hex_and_differ() {
        let a = new_replid();
        let b = new_replid();
        assert_eq!(a.len(), 40);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn continue_rules_follow_psync2() {
        let mut r = ReplState::default();
        let mut feed = Feed::default();
        r.ensure_backlog(&mut feed);
        r.stream(b"0123456789");
        let id = r.replid.clone();
        assert!(r.can_continue(&id, 1));
        assert!(r.can_continue(&id, 11));
        assert!(!r.can_continue(&id, 12));
        assert!(!r.can_continue("other", 5));
        r.shift_replid();
        assert!(r.can_continue(&id, 11));
        r.stream(b"abc");
        assert!(
            !r.can_continue(&id, 12),
            "replid2 is valid only up to second_repl_offset"
        );
    }
}
