//! `auth_failure_delay`: after [`FREE_FAILURES`] failed logins in a row from one address
//! (IP, whatever its ports), each further login attempt from it (`AUTH`, `HELLO ... AUTH`)
//! is checked only once the previous one is `delay` old: one attempt per `delay` per
//! address, whichever connections it comes on, so opening more connections does not guess
//! faster. A success from the address forgets its failures, as does a minute without one.
//!
//! The wait happens in the waiting client's own task (its attempt goes on the exclusive
//! path, after its earlier replies), so other clients are not held. Memory is bounded: at
//! most [`MAX_ADDRS`] addresses are remembered; past that, addresses whose failures are
//! forgotten make room, and a new address finds none until some do (its attempts are then
//! not delayed: the log and `sluice_auth_failures_total` still count them).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins from an address before its attempts are delayed.
pub(crate) const FREE_FAILURES: u32 = 3;

/// An address without a failed login for this long starts over.
const FORGET_AFTER: Duration = Duration::from_secs(60);

/// Most addresses remembered at once.
const MAX_ADDRS: usize = 65_536;

/// One address's record.
struct Strikes {
    /// Failed logins in a row.
    failures: u32,
    /// The last failure.
    last: Instant,
    /// When its next attempt may be checked (once `failures` reached [`FREE_FAILURES`]).
    next: Instant,
}

/// A pool's failed-login records (see the module documentation).
pub(crate) struct FailureDelay {
    delay: Option<Duration>,
    by_addr: Mutex<HashMap<IpAddr, Strikes>>,
}

impl FailureDelay {
    /// Delays of `delay` (`None`: none; nothing is recorded).
    pub(crate) fn new(delay: Option<Duration>) -> FailureDelay {
        FailureDelay {
            delay,
            by_addr: Mutex::default(),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Strikes>> {
        // Every update is a single insert, remove or field store: consistent after a panic.
        self.by_addr.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True when attempts from `ip` are delayed now.
    pub(crate) fn is_held(&self, ip: IpAddr) -> bool {
        self.delay.is_some()
            && self
                .map()
                .get(&ip)
                .is_some_and(|s| s.failures >= FREE_FAILURES && s.last.elapsed() < FORGET_AFTER)
    }

    /// An attempt from `ip`: when it may be checked (`None`: now). Takes that turn, so the
    /// next attempt's turn is `delay` later.
    pub(crate) fn turn(&self, ip: IpAddr) -> Option<Instant> {
        let delay = self.delay?;
        let mut map = self.map();
        let s = map.get_mut(&ip)?;
        if s.last.elapsed() >= FORGET_AFTER {
            map.remove(&ip);
            return None;
        }
        if s.failures < FREE_FAILURES {
            return None;
        }
        let at = s.next.max(Instant::now());
        s.next = at + delay;
        Some(at)
    }

    /// A failed login from `ip`.
    pub(crate) fn failed(&self, ip: IpAddr) {
        let Some(delay) = self.delay else {
            return;
        };
        let now = Instant::now();
        let mut map = self.map();
        if !map.contains_key(&ip) && map.len() >= MAX_ADDRS {
            map.retain(|_, s| s.last.elapsed() < FORGET_AFTER);
            if map.len() >= MAX_ADDRS {
                return;
            }
        }
        let s = map.entry(ip).or_insert(Strikes {
            failures: 0,
            last: now,
            next: now,
        });
        if s.last.elapsed() >= FORGET_AFTER {
            s.failures = 0;
        }
        s.failures = s.failures.saturating_add(1);
        s.last = now;
        if s.failures == FREE_FAILURES {
            // The first delayed attempt waits `delay` after this failure.
            s.next = now + delay;
        }
    }

    /// A successful login from `ip`: its failures are forgotten.
    pub(crate) fn succeeded(&self, ip: IpAddr) {
        if self.delay.is_some() {
            self.map().remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_are_spaced_after_repeated_failures_only() {
        let d = FailureDelay::new(Some(Duration::from_secs(1)));
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        for _ in 1..FREE_FAILURES {
            d.failed(ip);
            assert_eq!(d.turn(ip), None);
        }
        d.failed(ip);
        assert!(d.is_held(ip));
        assert!(!d.is_held(other));
        let first = d.turn(ip).expect("delayed");
        let second = d.turn(ip).expect("delayed");
        assert_eq!(second - first, Duration::from_secs(1));
        assert!(first > Instant::now());
        d.succeeded(ip);
        assert_eq!(d.turn(ip), None);
        assert!(!d.is_held(ip));
    }

    #[test]
    fn without_a_delay_nothing_is_recorded() {
        let d = FailureDelay::new(None);
        let ip: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..10 {
            d.failed(ip);
        }
        assert!(!d.is_held(ip));
        assert_eq!(d.turn(ip), None);
        assert!(d.map().is_empty());
    }
}
