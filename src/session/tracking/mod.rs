//! Client-side caching (`CLIENT TRACKING`) implemented by the proxy.
//!
//! Redis tracks per connection: it remembers the keys each connection read and tells that
//! connection when one changes. Through a proxy the node's connections are shared and reads
//! are spread over replicas, so the proxy keeps the table itself:
//!
//! * [`table`]: which client read which key (default mode), which clients watch which
//!   prefixes (BCAST), OPTIN/OPTOUT and NOLOOP, the key cap with evictions;
//! * [`source`]: one connection per node in BCAST mode reporting every key that changes;
//! * [`inbox`]: each client's queue of invalidations, written by the client's own task
//!   after the replies it has queued (a RESP3 push, or a `__redis__:invalidate` message for
//!   a subscribed RESP2 client that others redirect to);
//! * [`commands`]: `CLIENT TRACKING`, `CACHING`, `GETREDIR`, `TRACKINGINFO`;
//! * [`readable`]: in passthrough pools, the keys each client's Redis user may read (the
//!   sources report every key; a client hears only of those).
//!
//! Keys are remembered when the request is taken, before it is sent: a change the node
//! makes after serving the read is reported after the key is in the table.
//!
//! A client that never enables tracking pays one branch per request batch and per request
//! (`Session::tracking` is off).

mod commands;
pub(crate) mod fence;
pub(crate) mod inbox;
pub(crate) mod readable;
mod source;
pub(crate) mod table;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use self::inbox::{encode_note, Note};
use self::table::{Deliveries, Table};
use super::clients::Registry;
use super::{Pending, Session};
use crate::command::{self, CommandInfo, Special};
use crate::resp::Request;

/// Redis's default `tracking-table-max-keys`.
const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// A pool's tracking state (in its client registry).
pub(crate) struct Hub {
    table: Mutex<Table>,
    sources: Mutex<Sources>,
    /// Woken when a source comes up (clients enabling tracking wait for that).
    up: Notify,
    /// Some client tracks: every client's writes note their keys' order (one relaxed
    /// load per request otherwise; see [`table::Table::note_writes`]).
    watching: AtomicBool,
    /// Whether the masters may evict: tracking clients' replies then pass a fence.
    pub(crate) evictions: fence::Evictions,
}

/// The node sources of a pool.
#[derive(Default)]
pub(super) struct Sources {
    /// The manager task runs.
    running: bool,
    /// Clients between `CLIENT TRACKING on` and their entry in the table (the manager must
    /// not stop under them).
    enabling: usize,
    by_addr: HashMap<String, source::Handle>,
}

impl Default for Hub {
    fn default() -> Hub {
        Hub {
            table: Mutex::new(Table::new(DEFAULT_MAX_KEYS)),
            sources: Mutex::default(),
            up: Notify::new(),
            watching: AtomicBool::new(false),
            evictions: fence::Evictions::default(),
        }
    }
}

/// Locks, ignoring poisoning: nothing panics while these are held.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    /// Whether some client of the pool tracks (one relaxed load).
    #[inline]
    pub(crate) fn watching(&self) -> bool {
        self.watching.load(Ordering::Relaxed)
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        lock(&self.table)
    }

    fn sources(&self) -> MutexGuard<'_, Sources> {
        lock(&self.sources)
    }

    fn no_clients(&self) -> bool {
        self.table().is_empty()
    }

    fn announce(&self) {
        self.up.notify_waiters();
    }

    /// Sizes for INFO (`tracking_clients`, `tracking_total_keys`, ...).
    pub(crate) fn stats(&self) -> table::Stats {
        self.table().stats()
    }

    /// The fence a tracking client's reply from `node` waits at, when that node may evict
    /// (see `fence`); `None` (one relaxed load) when no master may.
    pub(crate) fn eviction_fence(
        &self,
        node: &crate::backend::Node,
    ) -> Option<std::sync::Arc<fence::Fence>> {
        if !self.evictions.possible() {
            return None;
        }
        let s = self.sources();
        let h = s.by_addr.get(&node.addr)?;
        h.up.load(Ordering::Relaxed).then(|| h.fence.clone())
    }

    /// Keys changed on a node.
    fn invalidate(&self, registry: &Registry, keys: &[Bytes], from_master: bool) {
        let out = self.table().invalidate(keys, from_master);
        self.deliver(registry, out);
    }

    /// Every key may have changed.
    fn flush(&self, registry: &Registry, from_master: bool) {
        let out = self.table().flush(from_master);
        self.deliver(registry, out);
    }

    /// Passthrough pools: client `id` logged in again as a user who may read `readable`.
    pub(crate) fn set_readable(&self, id: u64, readable: std::sync::Arc<readable::Readable>) {
        self.table().set_readable(id, readable);
    }

    /// Changes the key cap (`CONFIG SET tracking-table-max-keys`), evicting down to it.
    pub(crate) fn set_max_keys(&self, registry: &Registry, max: usize) {
        let out = self.table().set_max_keys(max);
        self.deliver(registry, out);
    }

    /// Puts each note in the inbox of its client, or of the client it redirects to. A
    /// redirect to a client that left marks the redirect broken and tells the client (RESP3).
    fn deliver(&self, registry: &Registry, out: Deliveries) {
        if out.is_empty() {
            return;
        }
        let routed: Vec<(u64, u64, Note)> = {
            let table = self.table();
            out.into_iter()
                .map(|(id, note)| {
                    let to = table.options(id).map_or(0, |o| o.redirect);
                    (if to == 0 { id } else { to }, id, note)
                })
                .collect()
        };
        for (to, from, note) in routed {
            if let Some(entry) = registry.get(to) {
                entry.inbox().push(note);
            } else if to != from {
                self.table().mark_broken(from);
                if let Some(entry) = registry.get(from) {
                    entry.inbox().push(Note::RedirBroken(to));
                }
            }
        }
    }
}

/// What a tracking session keeps at hand: its options as bits of one byte (it fits in the
/// session's padding: an idle session must stay small). Its inbox is in its registry entry.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Local(u8);

impl Local {
    const ON: u8 = 1;
    const BCAST: u8 = 2;
    const OPTIN: u8 = 4;
    const OPTOUT: u8 = 8;
    const NOLOOP: u8 = 16;
    /// `CLIENT CACHING yes|no` was given for the next command.
    const CACHING: u8 = 32;

    fn new(opts: &table::Options) -> Local {
        let bit = |on: bool, b: u8| if on { b } else { 0 };
        Local(
            Local::ON
                | bit(opts.bcast, Local::BCAST)
                | bit(opts.optin, Local::OPTIN)
                | bit(opts.optout, Local::OPTOUT)
                | bit(opts.noloop, Local::NOLOOP),
        )
    }

    /// Tracking is on.
    #[inline]
    pub(crate) fn is_on(self) -> bool {
        self.0 & Local::ON != 0
    }
    fn bcast(self) -> bool {
        self.0 & Local::BCAST != 0
    }
    fn optin(self) -> bool {
        self.0 & Local::OPTIN != 0
    }
    fn optout(self) -> bool {
        self.0 & Local::OPTOUT != 0
    }
    fn noloop(self) -> bool {
        self.0 & Local::NOLOOP != 0
    }
    fn caching(self) -> bool {
        self.0 & Local::CACHING != 0
    }
    fn set_caching(&mut self, on: bool) {
        if on {
            self.0 |= Local::CACHING;
        } else {
            self.0 &= !Local::CACHING;
        }
    }
}

impl Session {
    /// Remembers the keys of a read (default mode), or notes a NOLOOP client's own write.
    /// Called for every request of a tracking client, before it is sent.
    pub(super) fn track_request(&mut self, req: &Request, info: Option<&'static CommandInfo>) {
        let mut t = self.tracking;
        if !t.is_on() {
            return;
        }
        let caching = t.caching();
        let special = Special::of(info);
        // As Redis: CACHING lasts for the next command, or the next transaction.
        if !special.is_client() && !self.tx.is_open() && special != Special::Multi {
            t.set_caching(false);
            self.tracking = t;
        }
        let Some(info) = info else {
            return;
        };
        let (read, write) = match info.name {
            "eval" => script_access(req.arg(1)),
            "eval_ro" => (script_access(req.arg(1)).0, false),
            // Only the node has the body.
            "evalsha" | "fcall" => (true, true),
            "evalsha_ro" | "fcall_ro" => (true, false),
            _ => (
                command::is_read(req, Some(info)),
                info.has(command::flags::WRITE),
            ),
        };
        if !(read || (write && t.noloop())) || info.has(command::flags::PUBSUB) {
            return;
        }
        let keys: Vec<Bytes> = command::key_positions(req, info)
            .map(|i| req.arg_bytes(i))
            .collect();
        if keys.is_empty() {
            return;
        }
        let hub = &self.pool.registry.tracking;
        if read && !t.bcast() && !((t.optin() && !caching) || (t.optout() && caching)) {
            let evicted = hub.table().remember(self.id, &keys);
            hub.deliver(&self.pool.registry, evicted);
        }
        if write && t.noloop() {
            hub.table().own_write(self.id, &keys);
        }
    }

    /// Queues the invalidations waiting in this tracking client's inbox after its replies
    /// (pipelined stage; registers the task for the next ones).
    pub(super) fn poll_inbox(&mut self, pending: &mut VecDeque<Pending>, cx: &mut Context<'_>) {
        let Some(inbox) = self.entry.inbox_if_any() else {
            return;
        };
        if let Poll::Ready(notes) = inbox.poll_take(cx) {
            let mut out = BytesMut::new();
            for n in &notes {
                encode_note(n, self.proto, false, &mut out);
            }
            if !out.is_empty() {
                pending.push_back(Pending::Ready(out.freeze()));
            }
        }
    }

    /// Writes the notes waiting in the inbox now, ahead of the reply about to be written
    /// (a reply that passed an eviction fence: see `fence`).
    pub(super) fn write_notes_now(&self, out: &mut BytesMut) {
        if let Some(inbox) = self.entry.inbox_if_any() {
            for n in &inbox.take() {
                encode_note(n, self.proto, false, out);
            }
        }
    }

    /// An idle RESP3 client's inbox, if it has one (others may redirect to it): queues what
    /// waits there and returns true, or registers the task for the next note.
    pub(super) fn poll_inbox_idle(
        &mut self,
        pending: &mut VecDeque<Pending>,
        cx: &mut Context<'_>,
    ) -> bool {
        let Some(inbox) = self.entry.inbox_if_any() else {
            return false;
        };
        let Poll::Ready(notes) = inbox.poll_take(cx) else {
            return false;
        };
        let mut out = BytesMut::new();
        for n in &notes {
            encode_note(n, self.proto, false, &mut out);
        }
        if out.is_empty() {
            return false;
        }
        pending.push_back(Pending::Ready(out.freeze()));
        true
    }

    /// Writes notes taken from the inbox while the client is subscribed (pub/sub tunnel).
    pub(super) fn write_notes_subscribed(&self, notes: &[Note], out: &mut BytesMut) {
        for n in notes {
            encode_note(n, self.proto, true, out);
        }
    }

    /// Tracking off (CLIENT TRACKING off, RESET, disconnect).
    pub(super) fn tracking_off(&mut self) {
        if std::mem::take(&mut self.tracking).is_on() {
            let hub = &self.pool.registry.tracking;
            let mut table = hub.table();
            table.disable(self.id);
            hub.watching.store(!table.is_empty(), Ordering::Relaxed);
        }
    }

    /// A write of a client of a pool where some client tracks: notes the order of its keys
    /// (see [`table::Table::note_writes`]).
    pub(super) fn note_write(&self, req: &Request, info: Option<&'static CommandInfo>) {
        let Some(info) = info else {
            return;
        };
        if !info.has(command::flags::WRITE) {
            return;
        }
        let mut keys = command::key_positions(req, info).peekable();
        if keys.peek().is_some() {
            self.pool.registry.tracking.table().note_writes(req, keys);
        }
    }
}

impl Hub {
    /// `CONFIG SET ... tracking-table-max-keys N ...` (forwarded to the node as well): the
    /// proxy's table follows the setting, since the node's own table holds nothing of its
    /// clients.
    pub(crate) fn watch_config(&self, registry: &Registry, req: &Request) {
        if !(req.arg(0).eq_ignore_ascii_case(b"config") && req.arg(1).eq_ignore_ascii_case(b"set"))
        {
            return;
        }
        self.evictions.watch_config(req);
        let mut i = 2;
        while i + 1 < req.len() {
            if req.arg(i).eq_ignore_ascii_case(b"tracking-table-max-keys") {
                let n = std::str::from_utf8(req.arg(i + 1))
                    .ok()
                    .and_then(|s| s.parse().ok());
                if let Some(n) = n {
                    self.set_max_keys(registry, n);
                }
            }
            i += 2;
        }
    }
}

/// A node's INFO text with its `tracking_*` fields replaced by the proxy's (the node's
/// describe the proxy's source connections, not the clients).
pub(super) fn info_with_proxy_stats(text: &[u8], hub: &Hub) -> Vec<u8> {
    let s = hub.stats();
    let mut out = Vec::with_capacity(text.len());
    for line in text.split_inclusive(|&b| b == b'\n') {
        let field = |name: &str| line.starts_with(name.as_bytes());
        let value = if field("tracking_clients:") {
            Some(("tracking_clients", s.clients))
        } else if field("tracking_total_keys:") {
            Some(("tracking_total_keys", s.keys))
        } else if field("tracking_total_items:") {
            Some(("tracking_total_items", s.items))
        } else if field("tracking_total_prefixes:") {
            Some(("tracking_total_prefixes", s.prefixes))
        } else {
            None
        };
        match value {
            Some((name, n)) => out.extend_from_slice(format!("{name}:{n}\r\n").as_bytes()),
            None => out.extend_from_slice(line),
        }
    }
    out
}

/// What a script may do to its declared keys, judged from its source: `(reads, writes)`.
/// Redis remembers a script's keys only if it ran a read command, and NOLOOP hides only
/// changes the script made; the proxy cannot see inside, so a call whose command it cannot
/// read off the text (a name in a variable) counts as both.
fn script_access(src: &[u8]) -> (bool, bool) {
    let (mut reads, mut writes) = (false, false);
    let mut rest = src;
    while let Some(at) = find(rest, b"call") {
        rest = &rest[at + 4..];
        let args = trim_start(rest);
        let Some(args) = args.strip_prefix(b"(") else {
            continue;
        };
        let args = trim_start(args);
        let name = match args.first() {
            Some(&q @ (b'\'' | b'"')) => args[1..].split(|&c| c == q).next(),
            _ => None,
        };
        match name.and_then(command::lookup_name) {
            Some(info) => {
                reads |= info.has(command::flags::READONLY);
                writes |= info.has(command::flags::WRITE);
            }
            None => return (true, true),
        }
    }
    (reads, writes)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &s[n..]
}

#[cfg(test)]
mod tests {
    use super::script_access;

    #[test]
    fn scripts_are_judged_by_the_commands_they_call() {
        assert_eq!(
            script_access(b"redis.call('set', KEYS[1], 'x')"),
            (false, true)
        );
        assert_eq!(
            script_access(b"return redis.call('get', 'k')"),
            (true, false)
        );
        assert_eq!(script_access(b"redis.pcall( \"PING\" )"), (false, false));
        assert_eq!(script_access(b"return 1"), (false, false));
        assert_eq!(
            script_access(b"local c = 'get' return redis.call(c, 'k')"),
            (true, true)
        );
    }
}
