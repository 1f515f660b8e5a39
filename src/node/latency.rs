//! The latency monitor (LATENCY LATEST / HISTORY / RESET / DOCTOR), under the store lock:
//! per event (`command`, `fast-command`, `expire-cycle`), the samples of at least
//! `latency-monitor-threshold` ms, one per second (the worst of that second), the last 160
//! kept, as Redis 7.0 does.

use std::collections::{BTreeMap, VecDeque};

/// Samples kept per event (Redis's `LATENCY_TS_LEN`).
const HISTORY: usize = 160;

/// One event's samples.
#[derive(Debug, Default, Clone)]
pub struct Series {
    /// (unix time s, latency ms), oldest first.
    pub samples: VecDeque<(i64, u64)>,
    /// The worst latency seen since the last reset.
    pub max: u64,
}

/// Every event's series and the threshold.
#[derive(Debug, Default)]
pub struct Latency {
    /// `latency-monitor-threshold` in ms; 0 switches the monitor off.
    pub threshold_ms: u64,
    events: BTreeMap<&'static str, Series>,
}

impl Latency {
    /// Records `ms` for `event` at unix time `now_s` if it reaches the threshold.
    pub fn add(&mut self, event: &'static str, ms: u64, now_s: i64) {
        if self.threshold_ms == 0 || ms < self.threshold_ms {
            return;
        }
        let s = self.events.entry(event).or_default();
        s.max = s.max.max(ms);
        match s.samples.back_mut() {
            Some((t, worst)) if *t == now_s => *worst = (*worst).max(ms),
            _ => {
                s.samples.push_back((now_s, ms));
                if s.samples.len() > HISTORY {
                    s.samples.pop_front();
                }
            }
        }
    }
    /// The series of `event`, if it has samples.
    pub fn series(&self, event: &str) -> Option<&Series> {
        self.events.get(event)
    }
    /// Every event with samples, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Series)> {
        self.events.iter().map(|(n, s)| (*n, s))
    }
    /// LATENCY RESET: forgets `events` (all if empty); returns how many had samples.
    pub fn reset(&mut self, events: &[String]) -> usize {
        if events.is_empty() {
            let n = self.events.len();
            self.events.clear();
            return n;
        }
        events
            .iter()
            .filter(|e| self.events.remove(e.as_str()).is_some())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_second_above_the_threshold() {
        let mut l = Latency::default();
        l.add("command", 500, 1);
        assert!(
            l.series("command").is_none(),
            "off while the threshold is 0"
        );
        l.threshold_ms = 100;
        l.add("command", 50, 1);
        l.add("command", 300, 1);
        l.add("command", 400, 1);
        l.add("command", 200, 2);
        let s = l.series("command").map(|s| s.samples.clone());
        assert_eq!(s, Some(VecDeque::from(vec![(1, 400), (2, 200)])));
        assert_eq!(l.reset(&["nope".into()]), 0);
        assert_eq!(l.reset(&[]), 1);
    }
}
