//! Eviction fences. Redis writes the invalidation of a key evicted by a client's own command
//! before that command's reply; the proxy hears of an eviction from the node's source
//! connection (see `source`), after the reply came on another connection. So where a node may
//! evict, a tracking client's reply waits for a `PING` on that node's source: the node wrote
//! every report it had queued (BCAST reports go out before it sleeps) before the `PONG`.
//!
//! A node may evict when `maxmemory` is set and its policy is not `noeviction`: learned from
//! the node when its source connects, and kept fresh by the `CONFIG SET maxmemory ...` that
//! pass through the proxy. Where no node may evict, a tracking client's reply costs one
//! relaxed load more; other clients pay nothing.
//!
//! Many waiting replies share one `PING`: a reply takes a ticket; the source pings for every
//! ticket taken so far, and a `PONG` passes the tickets taken before its `PING` was sent.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::resp::{Frame, Request};

/// The longest a reply waits for its fence: a source that stalls must not hold replies (a
/// source that breaks flushes every tracking client anyway).
const MAX_WAIT: Duration = Duration::from_secs(1);

/// One source's fence.
#[derive(Default)]
pub(crate) struct Fence {
    /// Tickets handed out.
    taken: AtomicU64,
    /// Every ticket up to this one has passed.
    passed: AtomicU64,
    /// Wakes the source: tickets wait for a `PING`.
    wanted: Notify,
    /// Wakes the replies waiting: a `PONG` came.
    moved: Notify,
}

impl Fence {
    /// Returns once the node's reports made before now have reached the hub (or after
    /// [`MAX_WAIT`]).
    pub(crate) async fn pass(&self) {
        let ticket = self.taken.fetch_add(1, Ordering::SeqCst) + 1;
        self.wanted.notify_one();
        let wait = async {
            loop {
                let moved = self.moved.notified();
                tokio::pin!(moved);
                moved.as_mut().enable();
                if self.passed.load(Ordering::SeqCst) >= ticket {
                    return;
                }
                moved.await;
            }
        };
        let _ = tokio::time::timeout(MAX_WAIT, wait).await;
    }

    /// The source: waits until tickets want a `PING`; returns the last ticket it covers.
    pub(super) async fn wanted(&self, pinged: u64) -> u64 {
        loop {
            let taken = self.taken.load(Ordering::SeqCst);
            if taken > pinged {
                return taken;
            }
            self.wanted.notified().await;
        }
    }

    /// The source: the `PONG` of the `PING` sent for tickets up to `upto` came (or the
    /// source broke, and nothing will come: `upto` is every ticket).
    pub(super) fn passed(&self, upto: u64) {
        self.passed.fetch_max(upto, Ordering::SeqCst);
        self.moved.notify_waiters();
    }

    /// Every ticket handed out so far.
    pub(super) fn taken(&self) -> u64 {
        self.taken.load(Ordering::SeqCst)
    }
}

/// Whether the pool's masters may evict keys (see the module comment).
#[derive(Default)]
pub(crate) struct Evictions {
    /// `maxmemory` is not 0.
    limit: AtomicBool,
    /// `maxmemory-policy` is not `noeviction` (Redis's default policy is `noeviction`).
    policy: AtomicBool,
}

impl Evictions {
    /// Whether replies must pass a fence (one relaxed load when `maxmemory` is not set).
    #[inline]
    pub(crate) fn possible(&self) -> bool {
        self.limit.load(Ordering::Relaxed) && self.policy.load(Ordering::Relaxed)
    }

    /// A node's `CONFIG GET maxmemory` / `maxmemory-policy` reply (RESP3 map or RESP2 pair
    /// list). A reply that is not one (an ACL refusal) changes nothing.
    pub(super) fn learn(&self, raw: &[u8]) {
        let Ok(Some((frame, _))) = Frame::parse(raw) else {
            return;
        };
        let pairs: Vec<(Frame, Frame)> = match frame {
            Frame::Map(pairs) => pairs,
            Frame::Array(items) => {
                let mut it = items.into_iter();
                std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect()
            }
            _ => return,
        };
        for (name, value) in pairs {
            if let (Frame::Bulk(name), Frame::Bulk(value)) = (name, value) {
                self.set(&name, &value);
            }
        }
    }

    /// A `CONFIG SET` passing through the proxy to the master: its `maxmemory` and
    /// `maxmemory-policy` values are taken at once (a SET the node then refuses leaves
    /// fences on until the source next connects: a cost, never a missed invalidation).
    pub(crate) fn watch_config(&self, req: &Request) {
        let mut i = 2;
        while i + 1 < req.len() {
            self.set(req.arg(i), req.arg(i + 1));
            i += 2;
        }
    }

    fn set(&self, name: &[u8], value: &[u8]) {
        if name.eq_ignore_ascii_case(b"maxmemory") {
            self.limit.store(!is_zero_memory(value), Ordering::Relaxed);
        } else if name.eq_ignore_ascii_case(b"maxmemory-policy") {
            let evicting = !value.eq_ignore_ascii_case(b"noeviction");
            self.policy.store(evicting, Ordering::Relaxed);
        }
    }
}

/// Whether a memory value (`0`, `0mb`, `100kb`, ...) is zero.
fn is_zero_memory(value: &[u8]) -> bool {
    let digits: Vec<u8> = value
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    !digits.is_empty() && digits.iter().all(|&d| d == b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evictions_are_possible_with_a_limit_and_an_evicting_policy() {
        let e = Evictions::default();
        assert!(!e.possible());
        e.learn(b"%1\r\n$9\r\nmaxmemory\r\n$6\r\n102400\r\n");
        assert!(!e.possible(), "noeviction is the default policy");
        e.learn(b"*2\r\n$16\r\nmaxmemory-policy\r\n$15\r\nvolatile-random\r\n");
        assert!(e.possible());
        e.learn(b"-NOPERM no\r\n");
        assert!(e.possible());
        e.watch_config(&Request::from_args(&["CONFIG", "SET", "MAXMEMORY", "0mb"]));
        assert!(!e.possible());
        e.watch_config(&Request::from_args(&["config", "set", "maxmemory", "1gb"]));
        assert!(e.possible());
        let req = ["CONFIG", "SET", "maxmemory-policy", "NoEviction"];
        e.watch_config(&Request::from_args(&req));
        assert!(!e.possible());
    }

    #[tokio::test]
    async fn a_pong_passes_the_tickets_taken_before_its_ping() {
        let f = std::sync::Arc::new(Fence::default());
        let waiter = tokio::spawn({
            let f = f.clone();
            async move { f.pass().await }
        });
        let upto = f.wanted(0).await;
        assert_eq!(upto, 1);
        assert!(!waiter.is_finished());
        f.passed(upto);
        tokio::time::timeout(Duration::from_millis(500), waiter)
            .await
            .expect("passed before the safety timeout")
            .expect("no panic");
    }
}
