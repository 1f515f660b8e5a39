//! The sentinel's connected clients, for CLIENT LIST and INFO (`connected_clients`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

/// What CLIENT LIST shows of one connection.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub name: Option<String>,
    pub created: Instant,
    pub last: Instant,
    pub sub: usize,
    pub psub: usize,
    pub resp: u8,
    pub cmd: String,
}

/// Every open connection, by client id.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    map: Mutex<BTreeMap<u64, Entry>>,
}

impl Registry {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Entry>> {
        // Entries are plain values: a panic elsewhere cannot leave one half-written.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(&self, id: u64, e: Entry) {
        self.map().insert(id, e);
    }

    pub fn remove(&self, id: u64) {
        self.map().remove(&id);
    }

    pub fn update(&self, id: u64, f: impl FnOnce(&mut Entry)) {
        if let Some(e) = self.map().get_mut(&id) {
            f(e);
        }
    }

    pub fn count(&self) -> usize {
        self.map().len()
    }

    /// CLIENT LIST's text, in Redis's field order; `pubsub` keeps only (or, `Some(false)`,
    /// leaves out) subscribed clients (`TYPE pubsub` / `TYPE normal`).
    pub fn list(&self, pubsub: Option<bool>) -> String {
        let now = Instant::now();
        let mut out = String::new();
        for (id, e) in self.map().iter() {
            let subscribed = e.sub + e.psub > 0;
            if pubsub.is_some_and(|p| p != subscribed) {
                continue;
            }
            let _ = writeln!(
                out,
                "id={id} addr={} laddr={} fd=0 name={} age={} idle={} flags={} db=0 sub={} psub={} \
                 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 \
                 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={}",
                e.addr,
                e.laddr,
                e.name.as_deref().unwrap_or(""),
                now.saturating_duration_since(e.created).as_secs(),
                now.saturating_duration_since(e.last).as_secs(),
                if subscribed { "P" } else { "N" },
                e.sub,
                e.psub,
                e.cmd,
                e.resp
            );
        }
        out
    }
}
