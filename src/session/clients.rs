//! The pool's client registry: every connected client of a pool, with what CLIENT LIST shows
//! about it, and the means to close one (CLIENT KILL). Sessions register when accepted and
//! leave when dropped; what changes while they run (last command, database, idle time) is
//! written once per batch of requests, under a per-client lock nobody else holds for long.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

/// The clients of one pool.
#[derive(Default)]
pub(crate) struct Registry {
    map: Mutex<HashMap<u64, Arc<ClientEntry>>>,
    /// CLIENT PAUSE state (see `pause`).
    pub(crate) pause: super::pause::PauseState,
    /// MONITOR clients (see `monitor`).
    pub(crate) monitors: super::monitor::Monitors,
    /// Idle clients parked off the runtime (see `parking`).
    pub(crate) parking: super::parking::ParkingLot,
    /// CLIENT TRACKING (see `tracking`).
    pub(crate) tracking: super::tracking::Hub,
    /// SLOWLOG (see `slowlog`).
    pub(crate) slowlog: super::slowlog::SlowLog,
    /// Scripts in flight (see `busy`).
    pub(crate) scripts: super::busy::Scripts,
    /// Locally answered commands' latency (see `latency`).
    pub(crate) latency: super::latency::LocalLatency,
}

/// One connected client, as other clients of the pool see it.
pub(crate) struct ClientEntry {
    pub(crate) id: u64,
    pub(crate) addr: SocketAddr,
    /// The client socket's descriptor: open for as long as the entry is registered (the
    /// session leaves the registry before its socket is closed), which is what makes
    /// [`Registry::kill`] safe from descriptor reuse.
    fd: i32,
    /// Killed: no longer listed or killed again while its session winds down.
    killed: std::sync::atomic::AtomicBool,
    /// When it connected, in `seconds_since_start`.
    pub(crate) connected_at: u32,
    /// Whether it is idle and may be (or is asked to be) parked.
    pub(crate) park: super::parking::ParkSignal,
    state: Mutex<ClientState>,
    /// Invalidation messages for it (created when it tracks, subscribes, or is redirected to).
    inbox: std::sync::OnceLock<Arc<super::tracking::inbox::Inbox>>,
}

/// What changes while a client runs.
#[derive(Clone)]
pub(crate) struct ClientState {
    pub(crate) name: Option<Bytes>,
    /// Last command (Redis's `cmd=` field: lower case, `parent|sub`).
    pub(crate) cmd: &'static str,
    pub(crate) db: u16,
    pub(crate) resp: u8,
    /// Last activity, in `seconds_since_start`.
    pub(crate) last_active: u32,
    /// Subscribed (`P`), in MULTI (`x`), blocked (`b`), monitor (`O`).
    pub(crate) flag: Option<char>,
    /// Input buffer bytes used and free, output buffer bytes, at the last batch.
    pub(crate) qbuf: usize,
    pub(crate) qbuf_free: usize,
    pub(crate) obl: usize,
    /// The node and node-side client id of the dedicated connection it is blocked on.
    pub(crate) blocked_on: Option<(Arc<crate::backend::Node>, i64)>,
    /// The user it logged in as (pools with users or passthrough; else `default`).
    pub(crate) user: Option<Arc<String>>,
}

impl Registry {
    /// Registers a client; it leaves with [`Registry::remove`].
    pub(crate) fn add(&self, id: u64, addr: SocketAddr, fd: i32) -> Arc<ClientEntry> {
        let now = super::seconds_since_start();
        let entry = Arc::new(ClientEntry {
            id,
            addr,
            fd,
            killed: Default::default(),
            inbox: Default::default(),
            connected_at: now,
            park: Default::default(),
            state: Mutex::new(ClientState {
                name: None,
                cmd: "NULL",
                db: 0,
                resp: 2,
                last_active: now,
                flag: None,
                qbuf: 0,
                qbuf_free: 0,
                obl: 0,
                blocked_on: None,
                user: None,
            }),
        });
        lock(&self.map).insert(id, entry.clone());
        entry
    }

    /// Unregisters a client (before its socket is closed).
    pub(crate) fn remove(&self, id: u64) {
        lock(&self.map).remove(&id);
    }

    /// How many clients CLIENT LIST shows (the killed ones winding down are not counted).
    pub(crate) fn connected(&self) -> usize {
        lock(&self.map)
            .values()
            .filter(|e| !e.killed.load(Ordering::Relaxed))
            .count()
    }

    /// Every registered client, by id.
    pub(crate) fn snapshot(&self) -> Vec<Arc<ClientEntry>> {
        let mut all: Vec<_> = lock(&self.map)
            .values()
            .filter(|e| !e.killed.load(Ordering::Relaxed))
            .cloned()
            .collect();
        all.sort_by_key(|e| e.id);
        all
    }

    /// One client by id.
    pub(crate) fn get(&self, id: u64) -> Option<Arc<ClientEntry>> {
        lock(&self.map).get(&id).cloned()
    }

    /// Closes a client's connection (both directions): its session sees end-of-file on its
    /// next read and ends, whatever it was waiting for. False when it already left.
    pub(crate) fn kill(&self, id: u64) -> bool {
        let map = lock(&self.map);
        let Some(entry) = map.get(&id) else {
            return false;
        };
        if entry.killed.swap(true, Ordering::Relaxed) {
            return false;
        }
        // SAFETY: not a memory-safety concern (shutdown reads no memory); the descriptor is
        // still this client's socket because entries leave the map before their socket closes,
        // and the map's lock is held here.
        unsafe {
            libc::shutdown(entry.fd, libc::SHUT_RDWR);
        }
        true
    }
}

impl ClientEntry {
    /// The local address the client connected to, asked of its socket (it is open while the
    /// entry is registered; not stored: every idle client would carry it).
    pub(crate) fn laddr(&self) -> Option<SocketAddr> {
        use std::os::fd::FromRawFd;
        // SAFETY: `fd` is this client's open socket while the entry is registered (see the
        // field); ManuallyDrop keeps the borrowed descriptor from being closed here.
        let socket =
            std::mem::ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(self.fd) });
        socket.local_addr().ok()
    }

    /// Its inbox of invalidation messages (see `tracking`).
    pub(crate) fn inbox(&self) -> Arc<super::tracking::inbox::Inbox> {
        self.inbox.get_or_init(Default::default).clone()
    }

    /// Its inbox, if it has one.
    pub(crate) fn inbox_if_any(&self) -> Option<&Arc<super::tracking::inbox::Inbox>> {
        self.inbox.get()
    }

    /// The mutable part, locked briefly.
    pub(crate) fn state(&self) -> MutexGuard<'_, ClientState> {
        lock(&self.state)
    }

    /// Whether CLIENT LIST/KILL's `TYPE` selects this client (`normal`, `pubsub`; the
    /// proxy has no master or replica clients).
    pub(crate) fn is_type(&self, t: ClientType) -> bool {
        let pubsub = self.state().flag == Some('P');
        match t {
            ClientType::Normal => !pubsub,
            ClientType::Pubsub => pubsub,
            ClientType::Master | ClientType::Replica => false,
        }
    }

    /// The CLIENT LIST line of this client (Redis 7.0's fields, in its order).
    pub(crate) fn line(&self, cmd_override: Option<&str>, user: &str) -> String {
        let s = self.state().clone();
        let now = super::seconds_since_start();
        let flags = s.flag.map_or_else(|| "N".to_string(), |c| c.to_string());
        let (sub, psub) = if s.flag == Some('P') { (1, 0) } else { (0, 0) };
        let multi = if s.flag == Some('x') { 0 } else { -1 };
        let cmd = cmd_override.unwrap_or(s.cmd);
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={flags} db={} sub={sub} \
             psub={psub} ssub=0 multi={multi} qbuf={} qbuf-free={} argv-mem=0 multi-mem=0 \
             rbs={} rbp=0 obl={} oll=0 omem=0 tot-mem={} events=r cmd={cmd} user={user} \
             redir=-1 resp={}\n",
            self.id,
            self.addr,
            self.laddr().map_or_else(String::new, |a| a.to_string()),
            self.fd,
            s.name
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default(),
            now.saturating_sub(self.connected_at),
            now.saturating_sub(s.last_active),
            s.db,
            s.qbuf,
            s.qbuf_free,
            s.qbuf + s.qbuf_free,
            s.obl,
            s.qbuf + s.qbuf_free + s.obl,
            s.resp,
            user = s.user.as_deref().map_or(user, String::as_str),
        )
    }
}

/// Client types of CLIENT LIST/KILL `TYPE`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ClientType {
    Normal,
    Master,
    Replica,
    Pubsub,
}

impl ClientType {
    /// Parses Redis's type names (`slave` is `replica`).
    pub(crate) fn parse(t: &[u8]) -> Option<ClientType> {
        match t.to_ascii_lowercase().as_slice() {
            b"normal" => Some(ClientType::Normal),
            b"master" => Some(ClientType::Master),
            b"replica" | b"slave" => Some(ClientType::Replica),
            b"pubsub" => Some(ClientType::Pubsub),
            _ => None,
        }
    }
}

/// Locks, ignoring poisoning: the guarded data stays consistent field by field.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
