//! Shard channels that Redis dropped (a failover, a slot migrated away) are subscribed
//! again at their slot's new owner, following MOVED and waiting through failovers within
//! `master_wait`; links to slot owners are opened here.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::subs::{Link, Subs};
use super::{classify, confirmation, Expect, Flow, Seen, MAX_LINKS, TOO_MANY_LINKS};
use crate::backend::Node;
use crate::cluster_slot;
use crate::resp::{ClientError, Reply, Request};
use crate::route::cluster::{self as redirect, Redirect, MAX_HOPS};
use crate::session::dedicated::checkout_in_db;
use crate::session::{Io, Session};

/// Waits before the next attempt: short at first (a migration step), longer as attempts
/// accumulate (a failover takes the cluster's node timeout).
async fn backoff(waits: &mut u32) {
    let ms = [5u64, 10, 25, 50, 100][(*waits as usize).min(4)];
    *waits += 1;
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

impl Session {
    /// Subscribes again, at their slots' owners, the shard channels Redis dropped. The
    /// client sees nothing when that works, and the `sunsubscribe` Redis sent when it does
    /// not (within `master_wait`).
    pub(super) async fn recover(&mut self, s: &mut Subs, io: &mut Io) -> Flow {
        // Channels lost with one master all wait for the same failover: they share one
        // `master_wait` (counted from the first of them), not one each, since the client's
        // other links are not read meanwhile. Once one of them gave up on that master, the
        // others whose slot the map still gives it give up at once too.
        let mut waits: Vec<(String, tokio::time::Instant)> = Vec::new();
        let mut gave_up: Vec<String> = Vec::new();
        // The client's count for the confirmations of channels given up: taken once, at the
        // first of them, then counted down (no recount per channel).
        let mut left: Option<usize> = None;
        while let Some((channel, avoid)) = s.pop_lost() {
            if s.holds(&channel) {
                continue;
            }
            self.pool.refresh.notify_one();
            let raw = Request::from_args(&[&b"SSUBSCRIBE"[..], &channel]);
            let slot = cluster_slot::slot(&channel);
            let deadline = match avoid.as_deref() {
                Some(addr) => match waits.iter().find(|(a, _)| a == addr) {
                    Some((_, d)) => *d,
                    None => {
                        let d = tokio::time::Instant::now() + self.pool.cfg.master_wait;
                        waits.push((addr.to_string(), d));
                        d
                    }
                },
                None => tokio::time::Instant::now() + self.pool.cfg.master_wait,
            };
            let hopeless = avoid.as_deref().is_some_and(|addr| {
                gave_up.iter().any(|g| g == addr)
                    && self.slot_owner(slot).is_ok_and(|n| n.addr == addr)
            });
            let done = !hopeless
                && match self
                    .subscribe_at_owner(s, raw.raw(), slot, avoid.as_deref(), deadline, io)
                    .await
                {
                    Ok((i, own)) => {
                        let confirmed = own.iter().any(|r| {
                            matches!(classify(r, None),
                                Seen::Confirm(k, Some(c)) if k == b"ssubscribe" && c == channel)
                        });
                        if confirmed {
                            s.links[i].channels.insert(channel.clone());
                        }
                        confirmed
                    }
                    Err(_) => {
                        // The wait for that master's failover is over: the next channels
                        // still mapped to it need not try it again.
                        if let Some(addr) = avoid.as_ref() {
                            if tokio::time::Instant::now() >= deadline && !gave_up.contains(addr) {
                                gave_up.push(addr.clone());
                            }
                        }
                        false
                    }
                };
            if done {
                self.pool.metrics.retries.increment(1);
                tracing::debug!(client = %self.entry.addr,
                    channel = %String::from_utf8_lossy(&channel), "shard channel resubscribed");
            } else {
                tracing::warn!(client = %self.entry.addr,
                    channel = %String::from_utf8_lossy(&channel),
                    "shard channel could not be subscribed again; the client is told");
                let n = match left.as_mut() {
                    Some(n) => {
                        *n = n.saturating_sub(1);
                        *n
                    }
                    None => *left.insert(s.total()),
                };
                confirmation(&mut io.out, self.proto, b"sunsubscribe", Some(&channel), n);
            }
        }
        Flow::Continue
    }

    /// Sends a SSUBSCRIBE for `slot` to the slot's master, following MOVED and retrying
    /// through failovers and migrations until `deadline`. `avoid` is a master whose
    /// connection was lost: it is not used again before the map names another owner or the
    /// wait is over. Returns the link and the command's replies, or a client-ready error.
    pub(super) async fn subscribe_at_owner(
        &mut self,
        s: &mut Subs,
        raw: &[u8],
        slot: u16,
        avoid: Option<&str>,
        deadline: tokio::time::Instant,
        io: &mut Io,
    ) -> Result<(usize, Vec<Reply>), ClientError> {
        let (mut hops, mut waits) = (0u32, 0u32);
        let mut target: Option<Arc<Node>> = None;
        loop {
            let expired = tokio::time::Instant::now() >= deadline;
            let node = match target.take().map_or_else(|| self.slot_owner(slot), Ok) {
                Ok(n) if !expired && avoid == Some(n.addr.as_str()) => {
                    // The map still names the master we lost: wait for the failover.
                    self.pool.refresh.notify_one();
                    backoff(&mut waits).await;
                    continue;
                }
                Ok(n) => n,
                Err(e) if expired => return Err(e),
                Err(_) => {
                    self.pool.refresh.notify_one();
                    backoff(&mut waits).await;
                    continue;
                }
            };
            let i = match self.shard_link(s, &node).await {
                Ok(i) => i,
                Err(e) if expired || e == ClientError::err(TOO_MANY_LINKS) => return Err(e),
                Err(_) => {
                    self.pool.refresh.notify_one();
                    backoff(&mut waits).await;
                    continue;
                }
            };
            let own = match self.exchange(s, i, raw, Expect::Nothing, io).await {
                Ok(own) => own,
                Err(e) => {
                    s.shard_link_lost(i);
                    if expired {
                        return Err(ClientError::err(format!("sluice: {e}")));
                    }
                    self.pool.refresh.notify_one();
                    backoff(&mut waits).await;
                    continue;
                }
            };
            if let [only] = own.as_slice() {
                match redirect::classify(only) {
                    Some(Redirect::Moved { .. }) if hops < MAX_HOPS => {
                        hops += 1;
                        // Fixes the slot in the map and asks for a refresh.
                        target = redirect::redirect_target(&self.pool, only)
                            .await
                            .map(|(n, _)| n);
                        continue;
                    }
                    Some(Redirect::TryAgain | Redirect::ClusterDown | Redirect::Loading)
                        if !expired =>
                    {
                        self.pool.refresh.notify_one();
                        backoff(&mut waits).await;
                        continue;
                    }
                    _ => {}
                }
            }
            return Ok((i, own));
        }
    }

    /// The master serving `slot` in the current map, or a client-ready error.
    pub(super) fn slot_owner(&self, slot: u16) -> Result<Arc<Node>, ClientError> {
        let topo = self.pool.topology.load();
        let Some(map) = topo.cluster.as_ref() else {
            return Err(ClientError::slot_not_served());
        };
        self.pool
            .router
            .cluster(map, Some(slot), false, None)
            .map_err(ClientError::from)
    }

    /// The client's shard link to `node`, opened if needed.
    pub(super) async fn shard_link(
        &mut self,
        s: &mut Subs,
        node: &Arc<Node>,
    ) -> Result<usize, ClientError> {
        if let Some(i) = s
            .links
            .iter()
            .position(|l| !l.classic && l.node.addr == node.addr)
        {
            return Ok(i);
        }
        if s.links.len() >= MAX_LINKS {
            return Err(ClientError::err(TOO_MANY_LINKS));
        }
        let conn = checkout_in_db(node, self.proto, self.db, self.dedicated_link()).await?;
        node.metrics.writes.increment(1);
        s.links.push(Link {
            node: node.clone(),
            conn,
            classic: false,
            channels: HashSet::new(),
        });
        Ok(s.links.len() - 1)
    }
}
