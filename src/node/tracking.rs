//! Client-side caching (CLIENT TRACKING): which clients read which keys (default mode), which
//! want every change under some prefixes (BCAST), and the `invalidate` pushes sent when keys
//! change. The proxy's tracking keeps a BCAST connection to each node.
//!
//! As in Redis, the table is shared by every database, and an entry is one-shot: once a
//! key's trackers have been told it changed they must read it again to hear of the next
//! change. With nobody tracking, recording and invalidating cost one branch.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::{Bytes, BytesMut};

use super::clients::Clients;
use super::reply::Reply;

/// Keys read by tracking clients.
#[derive(Debug, Default)]
pub struct Tracking {
    by_key: HashMap<Bytes, HashSet<u64>>,
    /// Clients with tracking on (flush invalidations go to all of them).
    pub clients: HashSet<u64>,
    /// Clients that do not want invalidations for their own writes (NOLOOP).
    pub noloop: HashSet<u64>,
    /// BCAST clients and their prefixes (none: every key).
    pub bcast: HashMap<u64, Vec<Bytes>>,
    /// Changed keys not yet reported to BCAST clients, by prefix (empty: the clients
    /// without one), each with the client that changed it last (for NOLOOP). Sorted maps:
    /// Redis keeps both in radix trees and reports in their (byte) order.
    pending: BTreeMap<Bytes, BTreeMap<Bytes, u64>>,
}

impl Tracking {
    /// Client `id` read `key`: tell it when `key` changes.
    pub fn remember(&mut self, id: u64, key: &[u8]) {
        match self.by_key.get_mut(key) {
            Some(set) => {
                set.insert(id);
            }
            None => {
                self.by_key
                    .insert(Bytes::copy_from_slice(key), HashSet::from([id]));
            }
        }
    }

    /// `key` changed (by client `writer`, 0 for the server): every client that read it gets
    /// an invalidation, and forgets it.
    pub fn invalidate(&mut self, key: &[u8], clients: &Clients, writer: u64) {
        if self.by_key.is_empty() && self.bcast.is_empty() {
            return;
        }
        let keys = Reply::Array(vec![Reply::bulk(key)]);
        let own = |id: u64| id == writer && self.noloop.contains(&id);
        if let Some(ids) = self.by_key.remove(key) {
            for id in ids {
                if !own(id) && self.clients.contains(&id) {
                    send(clients, id, keys.clone());
                }
            }
        }
        for prefixes in self.bcast.values() {
            let all: &[Bytes] = &[Bytes::new()];
            let list = if prefixes.is_empty() { all } else { prefixes };
            for p in list.iter().filter(|p| key.starts_with(p)) {
                self.pending
                    .entry(p.clone())
                    .or_default()
                    .insert(Bytes::copy_from_slice(key), writer);
            }
        }
    }

    /// Reports the keys changed since the last call to BCAST clients, as Redis does once
    /// per event-loop turn: per prefix, one `invalidate` with every changed key under it,
    /// in byte order, to each client registered for that prefix (a NOLOOP client without
    /// the keys it changed itself, and nothing if that leaves none). Called when the store
    /// lock is released, so a batch of pipelined commands is reported together.
    pub fn flush_bcast(&mut self, clients: &Clients) {
        if self.pending.is_empty() {
            return;
        }
        for (prefix, keys) in std::mem::take(&mut self.pending) {
            let mut common: Option<Reply> = None;
            for (&id, prefixes) in &self.bcast {
                let registered = if prefix.is_empty() {
                    prefixes.is_empty() || prefixes.contains(&prefix)
                } else {
                    prefixes.contains(&prefix)
                };
                if !registered {
                    continue;
                }
                let list = if self.noloop.contains(&id) {
                    let mine: Vec<Reply> = keys
                        .iter()
                        .filter(|(_, &by)| by != id)
                        .map(|(k, _)| Reply::Bulk(k.clone()))
                        .collect();
                    if mine.is_empty() {
                        continue;
                    }
                    Reply::Array(mine)
                } else {
                    common
                        .get_or_insert_with(|| {
                            Reply::Array(keys.keys().map(|k| Reply::Bulk(k.clone())).collect())
                        })
                        .clone()
                };
                send(clients, id, list);
            }
        }
    }

    /// Every key changed (FLUSHDB, FLUSHALL): a null invalidation to every tracking client.
    pub fn invalidate_all(&mut self, clients: &Clients) {
        self.by_key.clear();
        self.pending.clear();
        for &id in &self.clients {
            send(clients, id, Reply::NullArray);
        }
    }

    /// Client `id` turned tracking off or disconnected.
    pub fn stop(&mut self, id: u64) {
        self.clients.remove(&id);
        self.noloop.remove(&id);
        self.bcast.remove(&id);
    }
}

fn send(clients: &Clients, id: u64, keys: Reply) {
    if let Some(c) = clients.get(id) {
        let mut out = BytesMut::new();
        Reply::Push(vec![Reply::bulk(b"invalidate"), keys]).encode(c.proto, &mut out);
        c.send(&out, &clients.limits);
    }
}
