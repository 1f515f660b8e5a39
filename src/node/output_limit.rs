//! `client-output-buffer-limit`: how many bytes of undelivered output a client may make the
//! node hold before it is disconnected, per class (normal, replica, pubsub), with Redis's
//! syntax, defaults and rules: past the hard limit at once, past the soft limit once it has
//! stayed past it for longer than the soft seconds.

use std::time::Instant;

/// One class's limits (0 = none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassLimit {
    /// Bytes at which the client is closed at once.
    pub hard: usize,
    /// Bytes the client may stay at or above for at most `soft_secs`.
    pub soft: usize,
    /// Seconds for `soft`.
    pub soft_secs: u64,
}

impl ClassLimit {
    /// Redis's `checkClientOutputBufferLimits`: true when a client holding `used` bytes must
    /// be closed. `soft_since` is the client's record of when it went past the soft limit.
    pub fn exceeded(&self, used: usize, soft_since: &mut Option<Instant>, now: Instant) -> bool {
        let hard = self.hard > 0 && used >= self.hard;
        let mut soft = self.soft > 0 && used >= self.soft;
        if soft {
            match soft_since {
                None => {
                    *soft_since = Some(now);
                    soft = false;
                }
                Some(t) => soft = now.duration_since(*t).as_secs() > self.soft_secs,
            }
        } else {
            *soft_since = None;
        }
        hard || soft
    }
}

/// Which limits apply to a client (Redis's `getClientType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Ordinary clients, MONITOR included.
    Normal,
    /// Replicas attached to us.
    Replica,
    /// Clients subscribed to at least one channel or pattern (either protocol).
    PubSub,
}

/// The three classes' limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputLimits {
    /// `normal`.
    pub normal: ClassLimit,
    /// `replica` (`slave`).
    pub replica: ClassLimit,
    /// `pubsub`.
    pub pubsub: ClassLimit,
}

/// Redis 7.0's default, as CONFIG GET shows it.
pub const DEFAULT: &str = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60";

impl Default for OutputLimits {
    fn default() -> Self {
        OutputLimits {
            normal: ClassLimit::default(),
            replica: ClassLimit {
                hard: 256 << 20,
                soft: 64 << 20,
                soft_secs: 60,
            },
            pubsub: ClassLimit {
                hard: 32 << 20,
                soft: 8 << 20,
                soft_secs: 60,
            },
        }
    }
}

impl OutputLimits {
    /// The limits of `class`.
    pub fn of(&self, class: Class) -> ClassLimit {
        match class {
            Class::Normal => self.normal,
            Class::Replica => self.replica,
            Class::PubSub => self.pubsub,
        }
    }

    /// Applies a CONFIG SET value: groups of `class hard soft seconds`; the classes named
    /// change, the others keep their limits. All or nothing. The error is Redis's text.
    pub fn update(&mut self, value: &str) -> Result<(), &'static str> {
        let words: Vec<&str> = value.split_ascii_whitespace().collect();
        if !words.len().is_multiple_of(4) {
            return Err("Wrong number of arguments in buffer limit configuration.");
        }
        let mut next = *self;
        for group in words.chunks(4) {
            let slot = match group[0].to_ascii_lowercase().as_str() {
                "normal" => &mut next.normal,
                "slave" | "replica" => &mut next.replica,
                "pubsub" => &mut next.pubsub,
                _ => return Err("Invalid client class specified in buffer limit configuration."),
            };
            let bad = "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
            let memory =
                |s: &str| super::args::parse_memory(s).and_then(|n| usize::try_from(n).ok());
            *slot = ClassLimit {
                hard: memory(group[1]).ok_or(bad)?,
                soft: memory(group[2]).ok_or(bad)?,
                soft_secs: group[3].parse::<u64>().map_err(|_| bad)?,
            };
        }
        *self = next;
        Ok(())
    }

    /// The value as CONFIG GET shows it.
    pub fn render(&self) -> String {
        let class =
            |name: &str, c: &ClassLimit| format!("{name} {} {} {}", c.hard, c.soft, c.soft_secs);
        format!(
            "{} {} {}",
            class("normal", &self.normal),
            class("slave", &self.replica),
            class("pubsub", &self.pubsub)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn parses_and_renders_like_redis() {
        let mut l = OutputLimits::default();
        assert_eq!(l.render(), DEFAULT);
        assert_eq!(l.update("pubsub 1mb 2mb 3"), Ok(()));
        assert_eq!(l.update("replica 1k 2kb 3 normal 1 1 1"), Ok(()));
        assert_eq!(
            l.render(),
            "normal 1 1 1 slave 1000 2048 3 pubsub 1048576 2097152 3"
        );
        assert!(l.update("pubsub 1mb 2mb").is_err());
        assert!(l.update("foo 1 2 3").is_err());
        assert!(l.update("normal 0 0 0 normal x 1 1").is_err());
        assert!(l.update("normal 1 1 -1").is_err());
        // A failed update changes nothing.
        assert_eq!(l.normal.hard, 1);
        assert_eq!(l.update(""), Ok(()));
    }

    #[test]
    fn soft_limit_needs_its_seconds_hard_limit_acts_at_once() {
        let l = ClassLimit {
            hard: 100,
            soft: 10,
            soft_secs: 2,
        };
        let t0 = Instant::now();
        let mut since = None;
        assert!(!l.exceeded(50, &mut since, t0));
        assert!(!l.exceeded(50, &mut since, t0 + Duration::from_secs(2)));
        assert!(l.exceeded(50, &mut since, t0 + Duration::from_secs(3)));
        assert!(!l.exceeded(5, &mut since, t0 + Duration::from_secs(4)));
        assert_eq!(since, None);
        assert!(l.exceeded(100, &mut since, t0 + Duration::from_secs(4)));
    }
}
