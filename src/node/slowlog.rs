//! SLOWLOG's entries, under the store lock: commands that ran for at least
//! `slowlog-log-slower-than` µs, newest first, at most `slowlog-max-len` of them. Each entry
//! is what Redis 7.0 keeps: id, unix time, duration, the arguments (at most 32, each cut at
//! 128 bytes), the client's address and name.

use std::collections::VecDeque;

use bytes::Bytes;

/// Arguments kept per entry; the last one then says how many more there were.
const MAX_ARGC: usize = 32;
/// Bytes kept per argument.
const MAX_STRING: usize = 128;

/// One logged command.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Increasing id (not reset by SLOWLOG RESET).
    pub id: u64,
    /// Unix time in seconds when it was logged.
    pub time: i64,
    /// How long it ran, in µs.
    pub duration: u64,
    /// Its arguments, trimmed.
    pub args: Vec<Bytes>,
    /// The client's `ip:port`.
    pub addr: String,
    /// The client's name (empty if none).
    pub name: Bytes,
}

/// The slow log and its two parameters.
#[derive(Debug)]
pub struct SlowLog {
    entries: VecDeque<Entry>,
    next_id: u64,
    /// `slowlog-log-slower-than` (µs; negative disables the log).
    pub slower_than: i64,
    /// `slowlog-max-len`.
    pub max_len: usize,
}

impl Default for SlowLog {
    fn default() -> Self {
        SlowLog {
            entries: VecDeque::new(),
            next_id: 0,
            slower_than: 10_000,
            max_len: 128,
        }
    }
}

impl SlowLog {
    /// True if a command that ran `usec` µs is to be logged.
    pub fn wants(&self, usec: u64) -> bool {
        self.slower_than >= 0 && usec >= self.slower_than as u64
    }
    /// Logs a command (the caller checked [`SlowLog::wants`]).
    pub fn push(&mut self, args: &[&[u8]], usec: u64, time: i64, addr: String, name: Bytes) {
        let keep = args.len().min(MAX_ARGC);
        let mut kept: Vec<Bytes> = Vec::with_capacity(keep);
        for (i, a) in args.iter().take(keep).enumerate() {
            if keep < args.len() && i == keep - 1 {
                let more = args.len() - keep + 1;
                kept.push(Bytes::from(format!("... ({more} more arguments)")));
            } else if a.len() > MAX_STRING {
                let mut s = a[..MAX_STRING].to_vec();
                s.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - MAX_STRING).as_bytes(),
                );
                kept.push(Bytes::from(s));
            } else {
                kept.push(Bytes::copy_from_slice(a));
            }
        }
        self.entries.push_front(Entry {
            id: self.next_id,
            time,
            duration: usec,
            args: kept,
            addr,
            name,
        });
        self.next_id += 1;
        self.trim();
    }
    /// Drops the oldest entries beyond `max_len` (also after CONFIG SET).
    pub fn trim(&mut self) {
        self.entries.truncate(self.max_len);
    }
    /// SLOWLOG RESET.
    pub fn reset(&mut self) {
        self.entries.clear();
    }
    /// Number of entries (SLOWLOG LEN).
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// True without entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// Entries, newest first.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_arguments_and_keeps_the_newest() {
        let mut log = SlowLog {
            max_len: 2,
            ..SlowLog::default()
        };
        let long = vec![b'A'; 130];
        let many: Vec<&[u8]> = (0..34).map(|_| &b"x"[..]).collect();
        log.push(&[b"sadd", b"s", &long], 5, 1, "a:1".into(), Bytes::new());
        log.push(&many, 6, 2, "a:1".into(), Bytes::new());
        log.push(&[b"ping"], 7, 3, "a:1".into(), Bytes::from_static(b"n"));
        assert_eq!(log.len(), 2);
        let e: Vec<&Entry> = log.iter().collect();
        assert_eq!((e[0].id, e[1].id), (2, 1));
        assert_eq!(e[1].args.len(), 32);
        assert_eq!(&e[1].args[31][..], b"... (3 more arguments)");
        log.max_len = 10;
        log.push(&[b"sadd", b"s", &long], 5, 1, "a:1".into(), Bytes::new());
        let first = log.iter().next().map(|e| e.args[2].clone());
        let want = format!("{}... (2 more bytes)", "A".repeat(128));
        assert_eq!(first.as_deref(), Some(want.as_bytes()));
        assert!(!SlowLog {
            slower_than: -1,
            ..SlowLog::default()
        }
        .wants(u64::MAX));
    }
}
