//! The per-key access clock behind `OBJECT IDLETIME`, `OBJECT FREQ` and `DEBUG OBJECT`'s
//! `lru:`/`lru_seconds_idle:`, in Redis's 24-bit layout.
//!
//! Redis keeps one 24-bit field per value whose meaning depends on `maxmemory-policy`:
//! - LRU (every non-LFU policy): the last access time in seconds, modulo 2^24;
//! - LFU (`allkeys-lfu`, `volatile-lfu`): the last decrement time in minutes (16 bits) and a
//!   logarithmic access counter (8 bits) that grows with probability
//!   `1 / ((counter - 5) * lfu-log-factor + 1)` and loses one per `lfu-decay-time` minutes.
//!
//! The node has no eviction, so the clock only answers introspection; it is kept the same way
//! so that values, errors and a policy switch at run time behave as on Redis (after a switch,
//! old stamps are read in the new meaning, as Redis warns in its error text).

/// Largest value of the 24-bit clock (Redis's `LRU_CLOCK_MAX`).
const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;
/// A new value's LFU counter (Redis's `LFU_INIT_VAL`): new keys are not evicted at once.
const LFU_INIT_VAL: u32 = 5;

/// How stamps are made and read: LRU, or LFU with its two tuning parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AccessPolicy {
    /// An LFU `maxmemory-policy` is selected.
    pub(crate) lfu: bool,
    /// `lfu-log-factor`: the higher, the more accesses it takes to raise the counter.
    pub(crate) log_factor: u32,
    /// `lfu-decay-time`: minutes per decrement of an untouched counter (0: never).
    pub(crate) decay_minutes: u32,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        AccessPolicy {
            lfu: false,
            log_factor: 10,
            decay_minutes: 1,
        }
    }
}

/// One access about to be recorded: the policy, the time, and (LFU only) a random draw.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Touch {
    policy: AccessPolicy,
    now_ms: i64,
    /// Uniform over `u64`, decides the LFU counter's probabilistic increment.
    random: u64,
}

/// The LRU clock at `now_ms`: seconds, wrapping at 2^24 (Redis's `LRU_CLOCK()`).
fn lru_clock(now_ms: i64) -> u32 {
    (now_ms.max(0) / 1000) as u32 & LRU_CLOCK_MAX
}

/// Minutes, wrapping at 2^16 (Redis's `LFUGetTimeInMinutes()`).
fn lfu_minutes(now_ms: i64) -> u32 {
    (now_ms.max(0) / 60_000) as u32 & 0xFFFF
}

impl Touch {
    /// An access at `now_ms`; `random` is only read under an LFU policy.
    pub(crate) fn new(policy: AccessPolicy, now_ms: i64, random: u64) -> Touch {
        Touch {
            policy,
            now_ms,
            random,
        }
    }

    /// The stamp of a value created now (Redis's `createObject`).
    pub(crate) fn fresh(&self) -> u32 {
        if self.policy.lfu {
            (lfu_minutes(self.now_ms) << 8) | LFU_INIT_VAL
        } else {
            lru_clock(self.now_ms)
        }
    }

    /// The stamp after an access to a value stamped `old` (Redis's `lookupKey`: a new LRU
    /// time, or `updateLFU`: decay, then a logarithmic increment).
    pub(crate) fn touched(&self, old: u32) -> u32 {
        if !self.policy.lfu {
            return lru_clock(self.now_ms);
        }
        let mut counter = self.policy.decayed(old, self.now_ms);
        if counter < 255 {
            let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
            let p = 1.0 / (base * f64::from(self.policy.log_factor) + 1.0);
            // 53 random bits as a float in [0, 1).
            let r = (self.random >> 11) as f64 / (1u64 << 53) as f64;
            if r < p {
                counter += 1;
            }
        }
        (lfu_minutes(self.now_ms) << 8) | counter
    }
}

impl AccessPolicy {
    /// The LFU counter of `stamp` after decay up to `now_ms` (Redis's `LFUDecrAndReturn`):
    /// what `OBJECT FREQ` answers.
    pub(crate) fn decayed(&self, stamp: u32, now_ms: i64) -> u32 {
        let last = stamp >> 8;
        let counter = stamp & 255;
        let now = lfu_minutes(now_ms);
        let elapsed = if now >= last {
            now - last
        } else {
            0xFFFF - last + now
        };
        let periods = elapsed.checked_div(self.decay_minutes).unwrap_or(0);
        counter.saturating_sub(periods)
    }

    /// Milliseconds since the access that made the LRU `stamp` (Redis's
    /// `estimateObjectIdleTime`; the clock wraps every 194 days).
    pub(crate) fn idle_ms(stamp: u32, now_ms: i64) -> u64 {
        let now = lru_clock(now_ms);
        let secs = if now >= stamp {
            now - stamp
        } else {
            now + (LRU_CLOCK_MAX - stamp)
        };
        u64::from(secs) * 1000
    }

    /// The stamp RESTORE gives a value with `IDLETIME idle_s` (LRU policies) or `FREQ freq`
    /// (LFU policies); `None` when the option does not apply to the policy, and the value
    /// keeps a fresh stamp (Redis's `objectSetLRUOrLFU`).
    pub(crate) fn restored(
        &self,
        idle_s: Option<u64>,
        freq: Option<u8>,
        now_ms: i64,
    ) -> Option<u32> {
        if self.lfu {
            return freq.map(|f| (lfu_minutes(now_ms) << 8) | u32::from(f));
        }
        let idle = idle_s?;
        let now = i64::from(lru_clock(now_ms));
        let at = now
            - i64::try_from(idle)
                .unwrap_or(i64::MAX)
                .min(i64::from(u32::MAX));
        // Further back than the clock reaches: half a turn away, as old as it can look.
        Some(if at < 0 {
            ((now + i64::from(LRU_CLOCK_MAX / 2)) % i64::from(LRU_CLOCK_MAX)) as u32
        } else {
            at as u32
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LFU: AccessPolicy = AccessPolicy {
        lfu: true,
        log_factor: 10,
        decay_minutes: 1,
    };

    #[test]
    fn lru_stamps_seconds_and_idle_time_wraps() {
        let t = Touch::new(AccessPolicy::default(), 10_500, 0);
        assert_eq!(t.fresh(), 10);
        assert_eq!(t.touched(3), 10);
        assert_eq!(AccessPolicy::idle_ms(10, 13_999), 3000);
        // Stamped just before the 24-bit clock wrapped.
        let wrapped = i64::from(LRU_CLOCK_MAX + 1) * 1000 + 2000;
        assert_eq!(AccessPolicy::idle_ms(LRU_CLOCK_MAX - 1, wrapped), 3000);
    }

    #[test]
    fn lfu_counter_starts_at_five_grows_slowly_and_decays() {
        let now = 120 * 60_000;
        let fresh = Touch::new(LFU, now, 0).fresh();
        assert_eq!(LFU.decayed(fresh, now), LFU_INIT_VAL);
        // At the initial value every access counts (p = 1).
        let once = Touch::new(LFU, now, u64::MAX - 1).touched(fresh);
        assert_eq!(LFU.decayed(once, now), 6);
        // At 6, p = 1/11: a high draw does not count, a low one does.
        assert_eq!(
            LFU.decayed(Touch::new(LFU, now, u64::MAX / 2).touched(once), now),
            6
        );
        assert_eq!(
            LFU.decayed(Touch::new(LFU, now, u64::MAX / 20).touched(once), now),
            7
        );
        // Two minutes later, two decrements (lfu-decay-time 1).
        assert_eq!(LFU.decayed(once, now + 2 * 60_000), 4);
        let never = AccessPolicy {
            decay_minutes: 0,
            ..LFU
        };
        assert_eq!(never.decayed(once, now + 60 * 60_000), 6);
        // The counter saturates at 255.
        let full = (lfu_minutes(now) << 8) | 255;
        assert_eq!(LFU.decayed(Touch::new(LFU, now, 0).touched(full), now), 255);
    }

    #[test]
    fn restore_sets_the_stamp_of_the_selected_policy() {
        let now = 5_000_000;
        let lru = AccessPolicy::default();
        let idle = lru.restored(Some(1000), Some(7), now).unwrap_or(0);
        assert_eq!(AccessPolicy::idle_ms(idle, now), 1_000_000);
        assert_eq!(lru.restored(None, Some(7), now), None);
        let lfu = LFU.restored(Some(1000), Some(100), now).unwrap_or(0);
        assert_eq!(LFU.decayed(lfu, now), 100);
        assert_eq!(LFU.restored(Some(1000), None, now), None);
        // Idle longer than the clock's age: half a turn back.
        let old = lru.restored(Some(1 << 30), None, now).unwrap_or(0);
        assert!(AccessPolicy::idle_ms(old, now) >= u64::from(LRU_CLOCK_MAX / 2 - 5000) * 1000);
    }
}
