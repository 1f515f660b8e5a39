//! A client's mailbox: output other clients produce for it (pub/sub messages, invalidations,
//! MONITOR lines) and the signal to close (CLIENT KILL, output limit), so that no command
//! ever waits on another client's socket.
//!
//! Messages are appended to one byte buffer, so what the mailbox holds is what it costs (a
//! queue of small allocations would cost several times the bytes it counts). The sender
//! checks the client's whole output — the mailbox plus what its connection is still writing
//! — against `client-output-buffer-limit` and closes the client instead of growing past it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use super::output_limit::ClassLimit;

/// One client's mailbox, shared by its connection and the registry.
#[derive(Debug, Default)]
pub struct Mailbox {
    state: Mutex<State>,
    /// Wakes the connection: bytes arrived, or the client is to be closed.
    pub wake: Notify,
    /// Notified only to close: reaches a connection blocked writing to a client that does
    /// not read (and so not reading its mailbox either).
    pub kill_switch: Notify,
    /// Output the connection holds and has not written yet (published while it writes).
    pub unsent: AtomicUsize,
    /// Shard channels were dropped for the client (see [`Mailbox::drop_shard_channel`]):
    /// checked without the lock on every batch, so the common case costs one load.
    has_dropped: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    buf: BytesMut,
    killed: bool,
    /// When the client's output went past the soft limit (Redis's
    /// `obuf_soft_limit_reached_time`).
    soft_since: Option<Instant>,
    /// Shard channels the node unsubscribed the client from (their slot left this shard),
    /// for its connection to forget.
    dropped: Vec<Bytes>,
}

impl Mailbox {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A byte buffer and two flags: still consistent after a panic elsewhere.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `msg`, or closes the client if that would take its output past `limit`.
    pub fn push(&self, msg: &[u8], limit: ClassLimit) {
        let mut st = self.lock();
        if st.killed {
            return;
        }
        let used = st.buf.len() + msg.len() + self.unsent.load(Ordering::Relaxed);
        let now = Instant::now();
        if limit.exceeded(used, &mut st.soft_since, now) {
            tracing::info!(
                bytes = used,
                "closing a client over its output buffer limit (client-output-buffer-limit)"
            );
            drop(st);
            self.kill();
            return;
        }
        st.buf.extend_from_slice(msg);
        drop(st);
        self.wake.notify_one();
    }

    /// The node unsubscribed the client from shard `channel` (its slot left this shard):
    /// queues the `sunsubscribe` push `msg` and tells the connection to forget the channel.
    pub fn drop_shard_channel(&self, channel: Bytes, msg: &[u8], limit: ClassLimit) {
        self.lock().dropped.push(channel);
        self.has_dropped.store(true, Ordering::Release);
        self.push(msg, limit);
    }

    /// The shard channels dropped since the last call (usually none, without locking).
    pub fn take_dropped(&self) -> Vec<Bytes> {
        if !self.has_dropped.swap(false, Ordering::Acquire) {
            return Vec::new();
        }
        std::mem::take(&mut self.lock().dropped)
    }

    /// Closes the client: drops what is queued and wakes the connection, wherever it waits.
    pub fn kill(&self) {
        {
            let mut st = self.lock();
            st.killed = true;
            st.buf = BytesMut::new();
        }
        self.wake.notify_one();
        self.kill_switch.notify_one();
    }

    /// Moves what is queued to the end of `out`; true when the client is to be closed.
    pub fn take_into(&self, out: &mut BytesMut) -> bool {
        let mut st = self.lock();
        if !st.buf.is_empty() {
            if out.is_empty() {
                // Hand the whole buffer over: no copy, and no capacity left behind.
                *out = std::mem::take(&mut st.buf);
            } else {
                out.extend_from_slice(&st.buf);
                st.buf = BytesMut::new();
            }
        }
        st.killed
    }

    /// Checks the connection's own pending output (`out` bytes) plus the mailbox against
    /// `limit`; true when the client must be closed (it is then marked so).
    pub fn over_limit(&self, out: usize, limit: ClassLimit) -> bool {
        if limit.hard == 0 && limit.soft == 0 {
            return false;
        }
        let mut st = self.lock();
        let used = out + st.buf.len();
        let over = limit.exceeded(used, &mut st.soft_since, Instant::now());
        if over {
            tracing::info!(
                bytes = used,
                "closing a client over its output buffer limit (client-output-buffer-limit)"
            );
            st.killed = true;
            st.buf = BytesMut::new();
        }
        over
    }

    /// Bytes queued (CLIENT LIST `omem`).
    pub fn queued(&self) -> usize {
        self.lock().buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_past_the_hard_limit_closes_and_frees() {
        let m = Mailbox::default();
        let limit = ClassLimit {
            hard: 11,
            soft: 0,
            soft_secs: 0,
        };
        m.push(b"12345", limit);
        m.unsent.store(4, Ordering::Relaxed);
        m.push(b"x", limit);
        assert_eq!(m.queued(), 6);
        m.push(b"y", limit);
        assert_eq!(m.queued(), 0);
        let mut out = BytesMut::new();
        assert!(m.take_into(&mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn take_appends_after_what_the_connection_has() {
        let m = Mailbox::default();
        m.push(b"b", ClassLimit::default());
        let mut out = BytesMut::from(&b"a"[..]);
        assert!(!m.take_into(&mut out));
        assert_eq!(&out[..], b"ab");
        assert_eq!(m.queued(), 0);
    }
}
