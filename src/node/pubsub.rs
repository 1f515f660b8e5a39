//! Pub/sub registry: subscribers by channel and by pattern, and message delivery.
//!
//! Messages are encoded once per protocol at PUBLISH time and appended to each subscriber's
//! mailbox ([`super::mailbox::Mailbox`]), so the publisher never waits on a subscriber's
//! socket.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use indexmap::IndexSet;

use super::clients::Clients;
use super::glob;
use super::reply::Reply;
use crate::resp::Protocol;

/// Subscribers by channel (plain and shard) and by pattern.
#[derive(Debug, Default)]
pub struct PubSub {
    /// Channel → subscribed client ids.
    pub channels: HashMap<Bytes, IndexSet<u64>>,
    /// Pattern → subscribed client ids.
    pub patterns: HashMap<Bytes, IndexSet<u64>>,
    /// Shard channel → subscribed client ids (SSUBSCRIBE; same as plain on one node).
    pub shard: HashMap<Bytes, IndexSet<u64>>,
}

/// Which registry a subscription belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE.
    Channel,
    /// PSUBSCRIBE.
    Pattern,
    /// SSUBSCRIBE.
    Shard,
}

impl PubSub {
    fn map(&mut self, kind: Kind) -> &mut HashMap<Bytes, IndexSet<u64>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }
    /// True if nobody subscribed to a plain channel or a pattern (PUBLISH reaches no one).
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.patterns.is_empty()
    }
    /// Adds client `id` to `name`.
    pub fn add(&mut self, kind: Kind, name: Bytes, id: u64) {
        self.map(kind).entry(name).or_default().insert(id);
    }
    /// Removes client `id` from `name`.
    pub fn remove(&mut self, kind: Kind, name: &[u8], id: u64) {
        let map = self.map(kind);
        if let Some(set) = map.get_mut(name) {
            set.shift_remove(&id);
            if set.is_empty() {
                map.remove(name);
            }
        }
    }
    /// Sends `message` on `channel` to every subscriber (plain and pattern, or shard
    /// subscribers for SPUBLISH); returns how many received it. Messages for the publisher
    /// itself (`me`) are appended to `own` instead, so they precede its PUBLISH reply as in
    /// Redis.
    pub fn publish(
        &self,
        clients: &Clients,
        channel: &[u8],
        message: &[u8],
        shard: bool,
        me: u64,
        own: &mut BytesMut,
    ) -> i64 {
        let mut n = 0;
        let mut cache: [Option<Bytes>; 2] = [None, None];
        let direct = if shard { &self.shard } else { &self.channels };
        let kind: &[u8] = if shard { b"smessage" } else { b"message" };
        if let Some(ids) = direct.get(channel) {
            for id in ids {
                if let Some(c) = clients.get(*id) {
                    let bytes = encoded(&mut cache, c.proto, || {
                        vec![
                            Reply::bulk(kind),
                            Reply::bulk(channel),
                            Reply::bulk(message),
                        ]
                    });
                    deliver(clients, c, &bytes, me, own);
                    n += 1;
                }
            }
        }
        if shard {
            return n;
        }
        for (pattern, ids) in &self.patterns {
            if !glob::matches(pattern, channel) {
                continue;
            }
            let mut pcache: [Option<Bytes>; 2] = [None, None];
            for id in ids {
                if let Some(c) = clients.get(*id) {
                    let bytes = encoded(&mut pcache, c.proto, || {
                        vec![
                            Reply::bulk(b"pmessage"),
                            Reply::Bulk(pattern.clone()),
                            Reply::bulk(channel),
                            Reply::bulk(message),
                        ]
                    });
                    deliver(clients, c, &bytes, me, own);
                    n += 1;
                }
            }
        }
        n
    }
}

impl PubSub {
    /// Drops every shard channel whose slot is in `lost` and unsubscribes its clients, each
    /// told by an `sunsubscribe` push with its remaining shard count (Redis's
    /// `removeChannelsInSlot`, when a slot leaves the shard this node serves).
    pub fn drop_shard_slots(&mut self, clients: &mut Clients, lost: &[u16]) {
        let mut in_lost = vec![false; crate::cluster_slot::SLOTS];
        for &s in lost {
            if let Some(b) = in_lost.get_mut(usize::from(s)) {
                *b = true;
            }
        }
        let gone: Vec<Bytes> = self
            .shard
            .keys()
            .filter(|ch| in_lost[usize::from(crate::cluster_slot::slot(ch))])
            .cloned()
            .collect();
        for ch in gone {
            let Some(ids) = self.shard.remove(&ch) else {
                continue;
            };
            for id in ids {
                let limits = clients.limits;
                let Some(c) = clients.get_mut(id) else {
                    continue;
                };
                c.ssub = c.ssub.saturating_sub(1);
                let mut out = BytesMut::new();
                Reply::Push(vec![
                    Reply::bulk(b"sunsubscribe"),
                    Reply::Bulk(ch.clone()),
                    Reply::Int(c.ssub as i64),
                ])
                .encode(c.proto, &mut out);
                let limit = limits.of(c.class());
                c.mailbox.drop_shard_channel(ch.clone(), &out, limit);
            }
        }
    }
}

fn deliver(
    clients: &Clients,
    c: &super::clients::ClientInfo,
    bytes: &[u8],
    me: u64,
    own: &mut BytesMut,
) {
    if c.id == me {
        own.extend_from_slice(bytes);
    } else {
        c.send(bytes, &clients.limits);
    }
}

/// The push `items` encoded for `proto`, built at most once per protocol.
fn encoded(
    cache: &mut [Option<Bytes>; 2],
    proto: Protocol,
    items: impl FnOnce() -> Vec<Reply>,
) -> Bytes {
    let slot = usize::from(proto == Protocol::Resp3);
    cache[slot]
        .get_or_insert_with(|| {
            let mut out = BytesMut::new();
            Reply::Push(items()).encode(proto, &mut out);
            out.freeze()
        })
        .clone()
}
