//! Client-side caching (CLIENT TRACKING): which clients read which keys (default mode), which
//! want every change under some prefixes (BCAST), and the `invalidate` pushes sent when keys
//! change. The proxy's tracking keeps a BCAST connection to each node.
//!
//! As in Redis, the table is shared by every database, and an entry is one-shot: once a
//! key's trackers have been told it changed they must read it again to hear of the next
//! change. With nobody tracking, recording and invalidating cost one branch.

use std::collections::{HashMap, HashSet};

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
        for (&id, prefixes) in &self.bcast {
            let wanted = prefixes.is_empty() || prefixes.iter().any(|p| key.starts_with(p));
            if wanted && !own(id) {
                send(clients, id, keys.clone());
            }
        }
    }

    /// Every key changed (FLUSHDB, FLUSHALL): a null invalidation to every tracking client.
    pub fn invalidate_all(&mut self, clients: &Clients) {
        self.by_key.clear();
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
