//! A shard-subscribed client's links (one per master, plus the classic link) and what is
//! subscribed on each.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use crate::backend::{DirectConn, Node};
use crate::session::subscribed::Counts;

/// One node connection of the client.
pub(super) struct Link {
    pub(super) node: Arc<Node>,
    pub(super) conn: DirectConn,
    /// The link for classic channels and patterns (else a shard link).
    pub(super) classic: bool,
    /// Shard channels subscribed on this link (empty for the classic link).
    pub(super) channels: HashSet<Bytes>,
}

/// The client's links and what is subscribed on them.
pub(super) struct Subs {
    pub(super) links: Vec<Link>,
    /// Classic counts as the classic link reported them.
    pub(super) counts: Counts,
    pub(super) classic_clean: bool,
    /// Shard channels Redis dropped on its own, to subscribe again: each with the address of
    /// a master not to use before the map moves on (its connection was lost). Each channel
    /// is queued once (see `lost_set`).
    pub(super) lost: VecDeque<(Bytes, Option<String>)>,
    /// The channels in `lost`.
    pub(super) lost_set: HashSet<Bytes>,
    pub(super) seq: u64,
}

impl Subs {
    /// Distinct shard channels: what the client's confirmations count. Channels Redis
    /// dropped that are still to be subscribed again count too: the client has not been
    /// told of them, so each one it is told of later counts down from here, as on one Redis.
    /// It walks every channel: once per request at most, never per confirmation or per
    /// message (one SSUBSCRIBE may name thousands of channels); callers keep it up to date
    /// from there with [`Subs::counted`].
    pub(super) fn total(&self) -> usize {
        let mut all: HashSet<&Bytes> = HashSet::new();
        for l in &self.links {
            all.extend(l.channels.iter());
        }
        all.extend(self.lost_set.iter());
        all.len()
    }

    pub(super) fn holds(&self, channel: &[u8]) -> bool {
        self.links.iter().any(|l| l.channels.contains(channel))
    }

    /// Whether `channel` is in [`Subs::total`] (a link has it, or it is to be subscribed
    /// again).
    pub(super) fn counted(&self, channel: &[u8]) -> bool {
        self.holds(channel) || self.lost_set.contains(channel)
    }

    /// Queues `channel` to be subscribed again, unless a link has it or it is queued already.
    pub(super) fn push_lost(&mut self, channel: Bytes, avoid: Option<String>) {
        if !self.holds(&channel) && self.lost_set.insert(channel.clone()) {
            self.lost.push_back((channel, avoid));
        }
    }

    /// The next channel to subscribe again.
    pub(super) fn pop_lost(&mut self) -> Option<(Bytes, Option<String>)> {
        let (channel, avoid) = self.lost.pop_front()?;
        self.lost_set.remove(&channel);
        Some((channel, avoid))
    }

    /// `channel` is no longer to be subscribed again (the client unsubscribed it).
    pub(super) fn forget_lost(&mut self, channel: &[u8]) {
        if self.lost_set.remove(channel) {
            self.lost.retain(|(c, _)| c.as_ref() != channel);
        }
    }

    pub(super) fn classic(&self) -> Option<usize> {
        self.links.iter().position(|l| l.classic)
    }

    /// No subscription of either kind is left.
    pub(super) fn none_left(&self) -> bool {
        // Runs after every message: no recount of the channels.
        self.counts.classic <= 0
            && self.lost.is_empty()
            && self.links.iter().all(|l| l.channels.is_empty())
    }

    /// Closes shard links that hold no channel any more.
    pub(super) fn prune(&mut self) {
        self.links.retain(|l| l.classic || !l.channels.is_empty());
    }

    /// Redis dropped `channel` on link `i` (slot moved away): subscribe it again elsewhere,
    /// unless another link already has it.
    pub(super) fn server_dropped(&mut self, i: usize, channel: Bytes) {
        if let Some(l) = self.links.get_mut(i) {
            l.channels.remove(&channel);
        }
        self.push_lost(channel, None);
    }

    /// Shard link `i` failed: its channels are subscribed again at their slots' owners.
    pub(super) fn shard_link_lost(&mut self, i: usize) {
        let l = self.links.remove(i);
        let addr = l.node.addr.clone();
        for c in l.channels {
            self.push_lost(c, Some(addr.clone()));
        }
    }
}
