//! `SLOWLOG` answered by the proxy, about the requests that went through it: a request is
//! logged when the time from taking it to writing its reply reaches
//! `slowlog-log-slower-than` microseconds (Redis's default 10,000; `-1` disables, `0` logs
//! everything), in a log of at most `slowlog-max-len` entries (default 128). Both settings
//! follow `CONFIG SET` as it passes through (it also reaches the node, whose own slowlog
//! describes the proxy's connections rather than the clients). Entries have Redis's shape:
//! id, unix time, microseconds, arguments (at most 32, each at most 128 bytes, trimmed as
//! Redis trims them), client address and client name.
//!
//! Measured: requests forwarded on shared connections and requests the proxy answers
//! itself. Not measured: transactions and subscriptions (they run on a connection of their
//! own, where Redis would count only the execution, which the proxy cannot see apart from
//! the waiting). Blocking commands are logged when their reply is written, as taking 0 µs
//! (see [`SlowLog::blocked`]); a `SLOWLOG RESET` queued in MULTI resets the log when EXEC
//! is sent.
//!
//! The clock is the kernel's coarse monotonic clock (a few nanoseconds to read, a few
//! milliseconds of resolution, well under the default threshold), read once when a request
//! is taken and once when its reply is written.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};

use super::{error_bytes, Session};
use crate::command::{flags, Special};
use crate::resp::{encode, Request};

const MAX_ARGS: usize = 32;
const MAX_ARG_BYTES: usize = 128;

/// A pool's slow log (in its client registry).
pub(crate) struct SlowLog {
    /// Microseconds; negative: off.
    slower_than: AtomicI64,
    max_len: AtomicUsize,
    next_id: AtomicU64,
    entries: Mutex<VecDeque<Entry>>,
}

struct Entry {
    id: u64,
    unix: i64,
    micros: u64,
    args: Vec<Bytes>,
    client: String,
    name: Bytes,
}

impl Default for SlowLog {
    fn default() -> SlowLog {
        SlowLog {
            slower_than: AtomicI64::new(10_000),
            max_len: AtomicUsize::new(128),
            next_id: AtomicU64::new(0),
            entries: Mutex::new(VecDeque::new()),
        }
    }
}

/// Microseconds on the coarse monotonic clock, never 0 (0 means "not measured").
pub(super) fn coarse_micros() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes it.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts);
    }
    (ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000).max(1)
}

impl SlowLog {
    fn entries(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When a request taken now must be timed: its start, or 0 while the log is off.
    #[inline]
    pub(super) fn start(&self) -> u64 {
        if self.slower_than.load(Ordering::Relaxed) < 0 {
            0
        } else {
            coarse_micros()
        }
    }

    /// Logs `req` if it took at least the threshold since `started` (0: not timed); returns
    /// the microseconds it took (0 when not timed), for the caller's own accounting.
    pub(super) fn finish(&self, started: u64, req: &[u8], client: &Session) -> u64 {
        let limit = self.slower_than.load(Ordering::Relaxed);
        if started == 0 || limit < 0 {
            return 0;
        }
        let micros = coarse_micros().saturating_sub(started);
        if (micros as i64) >= limit {
            self.log(micros, req, client);
        }
        micros
    }

    /// `SLOWLOG RESET`.
    pub(super) fn reset(&self) {
        self.entries().clear();
    }

    /// A blocking command's reply was written. Redis logs a blocking command's execution
    /// without its wait, a few microseconds; the proxy cannot tell the node's work from the
    /// wait, so it logs the command as taking 0 µs: only when the threshold is 0, as after
    /// the reply on Redis.
    pub(super) fn blocked(&self, req: &[u8], client: &Session) {
        if self.slower_than.load(Ordering::Relaxed) == 0 {
            self.log(0, req, client);
        }
    }

    /// Adds a slow request to the log (as Redis: not those that carry secrets or only wrap
    /// other commands).
    fn log(&self, micros: u64, req: &[u8], client: &Session) {
        let Ok(Some(req)) =
            crate::resp::decode_request(&mut BytesMut::from(req), &crate::resp::Limits::default())
        else {
            return;
        };
        let info = crate::command::lookup(&req);
        if info.is_some_and(|i| i.has(flags::SKIP_SLOWLOG))
            || matches!(Special::of(info), Special::Auth | Special::Hello)
        {
            return;
        }
        let entry = Entry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
            micros,
            args: trimmed_args(&req),
            client: client.entry.addr.to_string(),
            name: client.client_name().unwrap_or_default(),
        };
        let max = self.max_len.load(Ordering::Relaxed);
        let mut log = self.entries();
        log.push_front(entry);
        log.truncate(max);
    }

    /// `CONFIG SET ... slowlog-log-slower-than N ... slowlog-max-len N ...` as it passes.
    pub(crate) fn watch_config(&self, req: &Request) {
        let mut i = 2;
        while i + 1 < req.len() {
            let n: Option<i64> = std::str::from_utf8(req.arg(i + 1))
                .ok()
                .and_then(|s| s.parse().ok());
            if let Some(n) = n {
                if req.arg(i).eq_ignore_ascii_case(b"slowlog-log-slower-than") {
                    self.slower_than.store(n, Ordering::Relaxed);
                } else if req.arg(i).eq_ignore_ascii_case(b"slowlog-max-len") && n >= 0 {
                    self.max_len.store(n as usize, Ordering::Relaxed);
                    let mut log = self.entries();
                    log.truncate(n as usize);
                }
            }
            i += 2;
        }
    }

    /// `SLOWLOG GET [count] | LEN | RESET`; `None` for anything else (HELP, errors: the
    /// node answers those).
    pub(super) fn command(&self, req: &Request) -> Option<Bytes> {
        let sub = req.arg(1);
        let mut out = BytesMut::new();
        if sub.eq_ignore_ascii_case(b"len") && req.len() == 2 {
            encode::integer(&mut out, self.entries().len() as i64);
        } else if sub.eq_ignore_ascii_case(b"reset") && req.len() == 2 {
            self.reset();
            out.extend_from_slice(b"+OK\r\n");
        } else if sub.eq_ignore_ascii_case(b"get") && req.len() <= 3 {
            let count = if req.len() == 3 {
                match super::local::parse_int(req.arg(2)) {
                    Some(n) if n >= -1 => n,
                    Some(_) => {
                        return Some(error_bytes(
                            "ERR count should be greater than or equal to -1",
                        ))
                    }
                    None => {
                        return Some(error_bytes("ERR value is not an integer or out of range"))
                    }
                }
            } else {
                10
            };
            let log = self.entries();
            let n = if count < 0 {
                log.len()
            } else {
                (count as usize).min(log.len())
            };
            encode::array_len(&mut out, n);
            for e in log.iter().take(n) {
                encode::array_len(&mut out, 6);
                encode::integer(&mut out, e.id as i64);
                encode::integer(&mut out, e.unix);
                encode::integer(&mut out, e.micros as i64);
                encode::array_len(&mut out, e.args.len());
                for a in &e.args {
                    encode::bulk(&mut out, a);
                }
                encode::bulk(&mut out, e.client.as_bytes());
                encode::bulk(&mut out, &e.name);
            }
        } else {
            return None;
        }
        Some(out.freeze())
    }
}

/// The arguments as Redis keeps them: at most 32 (the last saying how many more), each at
/// most 128 bytes (saying how many more bytes).
fn trimmed_args(req: &Request) -> Vec<Bytes> {
    let n = req.len();
    let keep = if n > MAX_ARGS { MAX_ARGS - 1 } else { n };
    let mut args: Vec<Bytes> = (0..keep)
        .map(|i| {
            let a = req.arg(i);
            if a.len() > MAX_ARG_BYTES {
                let mut t = a[..MAX_ARG_BYTES].to_vec();
                t.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - MAX_ARG_BYTES).as_bytes(),
                );
                Bytes::from(t)
            } else {
                req.arg_bytes(i)
            }
        })
        .collect();
    if n > MAX_ARGS {
        args.push(Bytes::from(format!("... ({} more arguments)", n - keep)));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(args: &[&str]) -> Request {
        let mut raw = BytesMut::new();
        encode::command(
            &mut raw,
            &args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>(),
        );
        crate::resp::decode_request(&mut raw, &crate::resp::Limits::default())
            .expect("valid")
            .expect("complete")
    }

    #[test]
    fn long_requests_are_trimmed_as_redis_trims_them() {
        let many: Vec<String> = (0..34).map(|i| i.to_string()).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let args = trimmed_args(&req(&many));
        assert_eq!(args.len(), 32);
        assert_eq!(args[31], Bytes::from("... (3 more arguments)"));
        let long = "A".repeat(129);
        let args = trimmed_args(&req(&["sadd", "set", &long]));
        assert_eq!(
            args[2],
            Bytes::from(format!("{}... (1 more bytes)", "A".repeat(128)))
        );
    }
}
