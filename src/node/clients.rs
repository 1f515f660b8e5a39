//! The registry of connected clients (CLIENT LIST/KILL/INFO, INFO clients, pub/sub
//! delivery). Each connection owns its [`crate::node::client::ClientState`]; the registry
//! holds a copy of what other clients need to see, refreshed by the connection after every
//! batch, plus the handle to reach it: its mailbox (pub/sub messages, and the kill signal).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use indexmap::IndexMap;

use super::client::ClientState;
use super::mailbox::Mailbox;
use super::output_limit::{Class, OutputLimits};
use crate::resp::Protocol;

/// What the registry knows about one client.
#[derive(Debug)]
pub struct ClientInfo {
    /// CLIENT ID.
    pub id: u64,
    /// Peer address.
    pub addr: SocketAddr,
    /// Our address on this connection.
    pub laddr: SocketAddr,
    /// When it connected (unix ms).
    pub created: i64,
    /// When it last ran a command (unix ms, the batch clock).
    pub last_active: i64,
    /// CLIENT SETNAME.
    pub name: Option<Bytes>,
    /// Selected db.
    pub db: usize,
    /// Protocol, for encoding pub/sub messages sent to it.
    pub proto: Protocol,
    /// Channel subscriptions.
    pub sub: usize,
    /// Pattern subscriptions.
    pub psub: usize,
    /// Shard channel subscriptions.
    pub ssub: usize,
    /// Commands queued in MULTI, or -1 outside MULTI.
    pub multi: i64,
    /// Last command's name (CLIENT LIST `cmd=`).
    pub last_cmd: &'static str,
    /// Extra CLIENT LIST flags (`M` master link, `S` replica), set by replication.
    pub role_flag: Option<char>,
    /// In MONITOR mode (CLIENT LIST flag `O`).
    pub monitor: bool,
    /// CLIENT TRACKING on (flag `t`).
    pub tracking: bool,
    /// Blocked on keys (flag `b`): the connection's wake-up, for CLIENT UNBLOCK.
    pub parked: Option<Arc<tokio::sync::Notify>>,
    /// CLIENT UNBLOCK asked the blocked connection to give up (see [`Unblock`]).
    pub unblock: Option<Unblock>,
    /// Delivers pre-encoded pushes (pub/sub messages) to the connection, and the signal to
    /// close it.
    pub mailbox: Arc<Mailbox>,
}

impl ClientInfo {
    /// Tells the connection to close (CLIENT KILL).
    pub fn kill(&self) {
        self.mailbox.kill();
    }
    /// Queues an encoded message (pub/sub, invalidation, MONITOR line) for the client; if
    /// its output would then be past its class's `client-output-buffer-limit`, the client
    /// is disconnected instead.
    pub fn send(&self, msg: &[u8], limits: &OutputLimits) {
        self.mailbox.push(msg, limits.of(self.class()));
    }
    /// Which output limits apply (Redis's `getClientType`; MONITOR clients are normal).
    pub fn class(&self) -> Class {
        if self.sub + self.psub + self.ssub > 0 {
            Class::PubSub
        } else {
            Class::Normal
        }
    }
}

/// How CLIENT UNBLOCK ends a blocked command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unblock {
    /// As if its timeout had passed (the default).
    Timeout,
    /// With `-UNBLOCKED client unblocked via CLIENT UNBLOCK`.
    Error,
}

/// Hashes a client id (a `u64`) by multiplying it with a large odd constant.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Connected clients by id, in connection order.
#[derive(Debug, Default)]
pub struct Clients {
    /// Ids are ours (sequential), so a trivial hash is safe and cheaper than SipHash on
    /// the per-batch sync.
    map: IndexMap<u64, ClientInfo, std::hash::BuildHasherDefault<IdHasher>>,
    /// Most clients connected at once is not tracked; this is the live count's companion
    /// for INFO `blocked_clients`.
    pub blocked: usize,
    /// `client-output-buffer-limit`, copied here from the settings on CONFIG SET so that
    /// every sender has it at hand.
    pub limits: OutputLimits,
}

impl Clients {
    /// Adds a client.
    pub fn add(&mut self, info: ClientInfo) {
        self.map.insert(info.id, info);
    }
    /// Removes a client (disconnect).
    pub fn remove(&mut self, id: u64) -> Option<ClientInfo> {
        self.map.shift_remove(&id)
    }
    /// Copies what others may read from the connection's state; `now_ms` is the batch
    /// clock (no extra clock read per batch).
    pub fn sync(&mut self, c: &ClientState, now_ms: i64) {
        if let Some(info) = self.map.get_mut(&c.id) {
            info.name.clone_from(&c.name);
            info.db = c.db;
            info.proto = c.proto;
            info.sub = c.channels.len();
            info.psub = c.patterns.len();
            info.ssub = c.shard_channels.len();
            info.multi = c.multi.as_ref().map_or(-1, |q| q.len() as i64);
            info.last_cmd = c.last_cmd;
            info.tracking = c.tracking;
            info.last_active = now_ms;
        }
    }
    /// One client.
    pub fn get(&self, id: u64) -> Option<&ClientInfo> {
        self.map.get(&id)
    }
    /// One client, mutably.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut ClientInfo> {
        self.map.get_mut(&id)
    }
    /// Every client.
    pub fn iter(&self) -> impl Iterator<Item = &ClientInfo> {
        self.map.values()
    }
    /// Number of connected clients.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// True with no clients.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl ClientInfo {
    /// The CLIENT LIST / CLIENT INFO line (without the trailing newline), fields as Redis 7.0.
    /// `qbuf` is the client's unprocessed input: Redis keeps the running command in its query
    /// buffer until it has run, so the caller of CLIENT LIST sees its own command's size.
    pub fn line(&self, qbuf: usize) -> String {
        let mut flags = String::new();
        if let Some(f) = self.role_flag {
            flags.push(f);
        }
        if self.monitor {
            flags.push('O');
        }
        if self.sub + self.psub + self.ssub > 0 {
            flags.push('P');
        }
        if self.multi >= 0 {
            flags.push('x');
        }
        if self.parked.is_some() {
            flags.push('b');
        }
        if self.tracking {
            flags.push('t');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let now = super::clock::unix_ms();
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0 tot-mem=1024 events=r cmd={} user=default redir=-1 resp={}",
            self.id,
            self.addr,
            self.laddr,
            self.id + 7,
            self.name.as_deref().map(String::from_utf8_lossy).unwrap_or_default(),
            (now - self.created).max(0) / 1000,
            (now - self.last_active).max(0) / 1000,
            flags,
            self.db,
            self.sub,
            self.psub,
            self.ssub,
            self.multi,
            qbuf,
            self.last_cmd,
            if self.proto == Protocol::Resp3 { 3 } else { 2 },
        )
    }
}
