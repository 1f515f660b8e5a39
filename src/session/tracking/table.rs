//! The proxy's tracking table: which client read which key (default mode), which clients
//! watch which prefixes (BCAST), and the routing of a node's invalidation to the clients it
//! concerns. Pure data, no I/O: the hub locks it briefly and delivers what it returns.
//!
//! As on Redis, keys are not per database, a key's entry goes away once it was invalidated
//! (a client that wants the next invalidation reads the key again), and the table holds at
//! most `max_keys` keys: past that, keys are evicted at random and their readers told, as if
//! the keys had changed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use indexmap::IndexMap;

use super::inbox::Note;
use super::readable::Readable;
use crate::resp::Request;

/// How long a NOLOOP client's own write hides the invalidation it causes in BCAST mode. The
/// node sends that invalidation right after the write, so a write whose invalidation never
/// came (it changed nothing) stops hiding another client's change to the key after this.
const OWN_WRITE_WINDOW: Duration = Duration::from_secs(1);

/// Own writes remembered per client, at most (past that they are forgotten: the client then
/// gets an invalidation for a write of its own, which is harmless).
const MAX_OWN_WRITES: usize = 4096;

/// `CLIENT TRACKING on` options of one client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) bcast: bool,
    pub(crate) optin: bool,
    pub(crate) optout: bool,
    pub(crate) noloop: bool,
    /// The client receiving this one's invalidations (0: itself).
    pub(crate) redirect: u64,
    /// BCAST prefixes (none: every key).
    pub(crate) prefixes: Vec<Bytes>,
    /// Passthrough pools: the keys the client's Redis user may read; the client hears of no
    /// other key (see `readable`). `None`: every key.
    pub(crate) readable: Option<Arc<Readable>>,
}

/// One tracking client.
#[derive(Debug, Default)]
struct Tracker {
    opts: Options,
    /// Keys this client (BCAST and NOLOOP) wrote, until their invalidation came back.
    own_writes: HashMap<Bytes, Instant>,
    /// Registered keys since the last flush it was sent (a flush reported by a replica is
    /// sent only to clients that may have read there since).
    dirty: bool,
    /// Its redirect target left (CLIENT TRACKINGINFO's `broken_redirect`).
    broken: bool,
}

/// Invalidation notes for clients: `(client id, note)`, delivered to the client or to where
/// it redirects.
pub(crate) type Deliveries = Vec<(u64, Note)>;

/// Sizes for INFO and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Stats {
    pub(crate) clients: usize,
    pub(crate) keys: usize,
    pub(crate) items: usize,
    pub(crate) prefixes: usize,
}

/// The table of one pool.
pub(crate) struct Table {
    clients: HashMap<u64, Tracker>,
    /// Key -> ids of the clients that read it. An id may outlive its tracking (a client that
    /// turned tracking off or left): it is skipped at delivery, as on Redis.
    keys: IndexMap<Bytes, Vec<u64>>,
    items: usize,
    pub(crate) max_keys: usize,
    /// Picks eviction victims (xorshift; quality does not matter, only spreading).
    seed: u64,
    /// Tracked keys that a client's write is about to change, with the order of that
    /// write (see [`Table::note_writes`]).
    write_order: HashMap<Bytes, u64>,
    next_write: u64,
}

/// Most keys [`Table::write_order`] holds (writes that changed nothing leave theirs behind
/// until then).
const MAX_WRITE_ORDER: usize = 1 << 16;

impl Table {
    pub(crate) fn new(max_keys: usize) -> Table {
        Table {
            clients: HashMap::new(),
            keys: IndexMap::new(),
            items: 0,
            max_keys,
            seed: 0x9e37_79b9_7f4a_7c15,
            write_order: HashMap::new(),
            next_write: 0,
        }
    }

    /// True while any client tracks.
    pub(crate) fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// The options a client tracks with, if it does.
    pub(crate) fn options(&self, id: u64) -> Option<&Options> {
        self.clients.get(&id).map(|t| &t.opts)
    }

    /// Turns tracking on (or changes its options; BCAST prefixes add up, as on Redis).
    pub(crate) fn enable(&mut self, id: u64, mut opts: Options) {
        let t = self.clients.entry(id).or_default();
        if opts.bcast && t.opts.bcast {
            for p in std::mem::take(&mut t.opts.prefixes) {
                if !opts.prefixes.contains(&p) {
                    opts.prefixes.push(p);
                }
            }
        }
        if !opts.noloop {
            t.own_writes.clear();
        }
        t.opts = opts;
        t.broken = false;
    }

    /// The client's redirect target is gone.
    pub(crate) fn mark_broken(&mut self, id: u64) {
        if let Some(t) = self.clients.get_mut(&id) {
            t.broken = true;
        }
    }

    /// Whether the client's redirect target was found gone.
    pub(crate) fn is_broken(&self, id: u64) -> bool {
        self.clients.get(&id).is_some_and(|t| t.broken)
    }

    /// Turns tracking off. Its keys stay in the table until invalidated (skipped then).
    pub(crate) fn disable(&mut self, id: u64) {
        self.clients.remove(&id);
    }

    /// Passthrough pools: the client logged in again, as a user who may read `readable`.
    pub(crate) fn set_readable(&mut self, id: u64, readable: Arc<Readable>) {
        if let Some(t) = self.clients.get_mut(&id) {
            t.opts.readable = Some(readable);
        }
    }

    /// A default-mode client read `keys`. Returns the invalidations of the keys evicted to
    /// stay under `max_keys`. Keys its user may not read are not remembered (the read was
    /// refused by Redis; an invalidation would tell the client about the key).
    pub(crate) fn remember(&mut self, id: u64, keys: &[Bytes]) -> Deliveries {
        let Some(t) = self.clients.get_mut(&id) else {
            return Vec::new();
        };
        t.dirty = true;
        for k in keys {
            if t.opts.readable.as_ref().is_some_and(|r| !r.allows(k)) {
                continue;
            }
            let ids = self.keys.entry(k.clone()).or_default();
            if !ids.contains(&id) {
                ids.push(id);
                self.items += 1;
            }
        }
        self.evict()
    }

    /// A NOLOOP client wrote `keys`: in default mode it stops tracking them (the node's
    /// invalidation then reaches the other readers only); in BCAST mode the invalidation
    /// of each is skipped for it when it comes back.
    pub(crate) fn own_write(&mut self, id: u64, keys: &[Bytes]) {
        let Some(t) = self.clients.get_mut(&id) else {
            return;
        };
        if !t.opts.noloop {
            return;
        }
        if t.opts.bcast {
            if t.own_writes.len() + keys.len() > MAX_OWN_WRITES {
                t.own_writes.clear();
            }
            let until = Instant::now() + OWN_WRITE_WINDOW;
            for k in keys {
                t.own_writes.insert(k.clone(), until);
            }
            return;
        }
        for k in keys {
            if let Some(ids) = self.keys.get_mut(k) {
                if let Some(at) = ids.iter().position(|&x| x == id) {
                    ids.swap_remove(at);
                    self.items -= 1;
                }
                if ids.is_empty() {
                    self.keys.swap_remove(k);
                }
            }
        }
    }

    /// A client of the pool is sending a write of `keys` (in the command's order). Redis
    /// tells a default-mode reader of each key as the command changes it, in that order;
    /// the node's BCAST report lists a batch's keys in its own (sorted) order, so the
    /// order is noted here for [`Table::invalidate`]. Only keys someone tracks, and only
    /// their first pending write (the one Redis reports: the key is untracked after it).
    /// `keys`: the positions of the keys in `req` (a key is copied only when noted).
    pub(crate) fn note_writes(&mut self, req: &Request, keys: impl Iterator<Item = usize>) {
        for i in keys {
            let k = req.arg(i);
            if self.keys.contains_key(k) && !self.write_order.contains_key(k) {
                if self.write_order.len() >= MAX_WRITE_ORDER {
                    self.write_order.clear();
                }
                self.next_write += 1;
                self.write_order.insert(req.arg_bytes(i), self.next_write);
            }
        }
    }

    /// Keys changed on a node. `from_master`: the node is the pool's master, the only one
    /// BCAST clients hear from (every write happens there; replicas would repeat it).
    /// Default-mode readers are told in the order the writes were sent (see
    /// [`Table::note_writes`]); keys changed otherwise keep the node's order, after them.
    pub(crate) fn invalidate(&mut self, keys: &[Bytes], from_master: bool) -> Deliveries {
        let mut out = Vec::new();
        let mut ordered: Vec<&Bytes> = keys.iter().collect();
        if !self.write_order.is_empty() {
            ordered.sort_by_key(|k| self.write_order.get(*k).copied().unwrap_or(u64::MAX));
            for k in &ordered {
                self.write_order.remove(*k);
            }
        }
        for k in ordered {
            let Some(ids) = self.keys.swap_remove(k) else {
                continue;
            };
            self.items -= ids.len();
            for id in ids {
                if self.clients.get(&id).is_some_and(|t| !t.opts.bcast) {
                    out.push((id, Note::Keys(vec![k.clone()])));
                }
            }
        }
        if from_master {
            self.broadcast(keys, &mut out);
        }
        out
    }

    /// BCAST clients: one note per prefix with the keys under it (as Redis sends them).
    fn broadcast(&mut self, keys: &[Bytes], out: &mut Deliveries) {
        let now = Instant::now();
        let mut ids: Vec<u64> = self
            .clients
            .iter()
            .filter(|(_, t)| t.opts.bcast)
            .map(|(&id, _)| id)
            .collect();
        ids.sort_unstable();
        for id in ids {
            let Some(t) = self.clients.get_mut(&id) else {
                continue;
            };
            let mut kept: Vec<&Bytes> = Vec::with_capacity(keys.len());
            for k in keys {
                let own = t.own_writes.remove(k).is_some_and(|until| until > now);
                let hidden = t.opts.readable.as_ref().is_some_and(|r| !r.allows(k));
                if !own && !hidden {
                    kept.push(k);
                }
            }
            if !t.own_writes.is_empty() {
                t.own_writes.retain(|_, until| *until > now);
            }
            let everything = [Bytes::new()];
            let prefixes = if t.opts.prefixes.is_empty() {
                &everything[..]
            } else {
                &t.opts.prefixes[..]
            };
            for p in prefixes {
                let under: Vec<Bytes> = kept
                    .iter()
                    .filter(|k| k.starts_with(p))
                    .map(|k| (*k).clone())
                    .collect();
                if !under.is_empty() {
                    out.push((id, Note::Keys(under)));
                }
            }
        }
    }

    /// Every key may have changed (a flush on a node, a node source lost or new). From a
    /// replica, only clients that may have read since their last flush are told.
    pub(crate) fn flush(&mut self, from_master: bool) -> Deliveries {
        self.keys.clear();
        self.items = 0;
        let mut out = Vec::new();
        for (&id, t) in self.clients.iter_mut() {
            if from_master || (t.dirty && !t.opts.bcast) {
                out.push((id, Note::Flush));
            }
            t.dirty = false;
        }
        out.sort_unstable_by_key(|(id, _)| *id);
        out
    }

    /// Changes the key cap; evicts (with invalidations) down to it.
    pub(crate) fn set_max_keys(&mut self, max: usize) -> Deliveries {
        self.max_keys = max;
        self.evict()
    }

    /// Evicts random keys while over the cap (0: no cap), telling their readers.
    fn evict(&mut self) -> Deliveries {
        let mut out = Vec::new();
        while self.max_keys > 0 && self.keys.len() > self.max_keys {
            self.seed ^= self.seed << 13;
            self.seed ^= self.seed >> 7;
            self.seed ^= self.seed << 17;
            let at = (self.seed % self.keys.len() as u64) as usize;
            let Some((k, ids)) = self.keys.swap_remove_index(at) else {
                break;
            };
            self.items -= ids.len();
            for id in ids {
                if self.clients.get(&id).is_some_and(|t| !t.opts.bcast) {
                    out.push((id, Note::Keys(vec![k.clone()])));
                }
            }
        }
        out
    }

    /// Sizes, as INFO reports them.
    pub(crate) fn stats(&self) -> Stats {
        let mut prefixes: Vec<&Bytes> = Vec::new();
        for t in self.clients.values().filter(|t| t.opts.bcast) {
            if t.opts.prefixes.is_empty() {
                prefixes.push(&EMPTY);
            }
            prefixes.extend(t.opts.prefixes.iter());
        }
        prefixes.sort_unstable();
        prefixes.dedup();
        Stats {
            clients: self.clients.len(),
            keys: self.keys.len(),
            items: self.items,
            prefixes: prefixes.len(),
        }
    }
}

static EMPTY: Bytes = Bytes::from_static(b"");

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn keys(notes: &Deliveries, id: u64) -> Vec<Vec<Bytes>> {
        notes
            .iter()
            .filter(|(i, _)| *i == id)
            .filter_map(|(_, n)| match n {
                Note::Keys(k) => Some(k.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn readers_are_told_in_the_order_the_writes_were_sent() {
        let mut t = Table::new(100);
        t.enable(1, Options::default());
        t.remember(1, &[b("k1"), b("k2"), b("k3")]);
        // MSET k2 .. k1 .. (k9 is tracked by nobody), reported sorted with an unknown k3.
        let mset = Request::from_args(&["MSET", "k2", "v", "k1", "v", "k9", "v"]);
        t.note_writes(&mset, [1, 3, 5].into_iter());
        let out = t.invalidate(&[b("k1"), b("k2"), b("k3")], true);
        assert_eq!(
            keys(&out, 1),
            vec![vec![b("k2")], vec![b("k1")], vec![b("k3")]]
        );
        assert!(t.write_order.is_empty());
    }

    #[test]
    fn a_key_read_is_invalidated_once_for_each_reader() {
        let mut t = Table::new(100);
        t.enable(1, Options::default());
        t.enable(2, Options::default());
        t.remember(1, &[b("a"), b("b")]);
        t.remember(2, &[b("a")]);
        let out = t.invalidate(&[b("a"), b("c")], false);
        assert_eq!(keys(&out, 1), vec![vec![b("a")]]);
        assert_eq!(keys(&out, 2), vec![vec![b("a")]]);
        // Gone from the table: the master repeating it (or a second write) tells nobody.
        assert!(t.invalidate(&[b("a")], true).is_empty());
        assert_eq!(t.stats().keys, 1);
    }

    #[test]
    fn noloop_hides_own_writes_only() {
        let mut t = Table::new(100);
        let noloop = Options {
            noloop: true,
            ..Options::default()
        };
        t.enable(1, noloop.clone());
        t.remember(1, &[b("mine"), b("other")]);
        t.own_write(1, &[b("mine")]);
        let out = t.invalidate(&[b("mine"), b("other")], true);
        assert_eq!(keys(&out, 1), vec![vec![b("other")]]);

        let mut t = Table::new(100);
        t.enable(
            2,
            Options {
                bcast: true,
                ..noloop
            },
        );
        t.own_write(2, &[b("mine")]);
        let out = t.invalidate(&[b("mine"), b("x")], true);
        assert_eq!(keys(&out, 2), vec![vec![b("x")]]);
        // The own write was consumed: the next change to the key is someone else's.
        let out = t.invalidate(&[b("mine")], true);
        assert_eq!(keys(&out, 2), vec![vec![b("mine")]]);
    }

    #[test]
    fn bcast_sends_one_note_per_prefix_and_only_from_the_master() {
        let mut t = Table::new(100);
        t.enable(
            3,
            Options {
                bcast: true,
                prefixes: vec![b("a:"), b("b:")],
                ..Options::default()
            },
        );
        let changed = [b("a:1"), b("b:1"), b("c:1"), b("a:2")];
        assert!(t.invalidate(&changed, false).is_empty());
        let out = t.invalidate(&changed, true);
        assert_eq!(
            keys(&out, 3),
            vec![vec![b("a:1"), b("a:2")], vec![b("b:1")]]
        );
        assert_eq!(t.stats().prefixes, 2);
    }

    #[test]
    fn a_passthrough_client_hears_only_of_keys_its_user_may_read() {
        use crate::resp::Frame;
        let getuser = Frame::Map(vec![(Frame::Bulk(b("keys")), Frame::Bulk(b("~app:*")))]);
        let readable = Some(Arc::new(Readable::from_getuser(&getuser).expect("keys")));
        let mut t = Table::new(100);
        t.enable(
            1,
            Options {
                bcast: true,
                prefixes: vec![b("")],
                readable: readable.clone(),
                ..Options::default()
            },
        );
        t.enable(
            2,
            Options {
                readable,
                ..Options::default()
            },
        );
        t.remember(2, &[b("app:1"), b("secret:1")]);
        let out = t.invalidate(&[b("app:1"), b("secret:1")], true);
        assert_eq!(keys(&out, 1), vec![vec![b("app:1")]]);
        assert_eq!(keys(&out, 2), vec![vec![b("app:1")]]);
        assert!(t.invalidate(&[b("secret:2")], true).is_empty());
    }

    #[test]
    fn the_cap_evicts_with_invalidations() {
        let mut t = Table::new(0);
        t.enable(1, Options::default());
        let all: Vec<Bytes> = (0..250).map(|i| b(&format!("k{i}"))).collect();
        assert!(t.remember(1, &all).is_empty());
        let out = t.set_max_keys(1);
        assert_eq!(out.len(), 249);
        assert_eq!(t.stats().keys, 1);
        assert_eq!(t.stats().items, 1);
    }

    #[test]
    fn a_replica_flush_reaches_only_clients_that_read_since() {
        let mut t = Table::new(10);
        t.enable(1, Options::default());
        t.enable(2, Options::default());
        t.remember(1, &[b("a")]);
        assert_eq!(t.flush(false), vec![(1, Note::Flush)]);
        assert_eq!(t.flush(true).len(), 2);
        assert_eq!(t.stats().keys, 0);
    }
}
