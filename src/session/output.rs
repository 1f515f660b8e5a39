//! How much a client's unread replies may hold. Replies are written to the client as far as
//! its socket takes them, never waited for while other work is pending; what it has not read
//! stays in the session's output buffer. Beyond `client_output_soft_limit` of such bytes, no
//! more of the client's requests are forwarded (and so none are read: TCP backpressure) until
//! it reads; beyond `client_output_hard_limit` it is disconnected, as Redis does at its
//! `client-output-buffer-limit`.
//!
//! Replies already requested arrive whatever the client does, so the number of requests in
//! flight is bounded too: as many as the rest of the soft limit holds at the size of this
//! client's recent replies (a decaying maximum), so a client pipelining reads of large values
//! has a few in flight and one reading small ones up to [`MAX_PENDING`].

use bytes::{Buf, BytesMut};

use super::{Io, Session, MAX_PENDING};

/// Before the first reply, a reply is assumed to take this share of the soft limit: a new
/// client's first batch is at most this many requests, until its replies show their size
/// (small ones open the window to [`MAX_PENDING`] within about a dozen replies).
const FIRST_WINDOW: usize = 16;

/// An output buffer with more capacity than this is freed once written out rather than kept:
/// one large reply must not pin its buffer for the rest of the connection.
const OUT_KEEP: usize = 64 * 1024;

/// The reply size assumed before any reply was seen.
pub(super) fn first_reply_hint(soft_limit: usize) -> u32 {
    u32::try_from(soft_limit / FIRST_WINDOW).unwrap_or(u32::MAX)
}

impl Io {
    /// Writes what the socket takes now, without waiting; frees a large buffer once it is
    /// all written.
    pub(super) fn write_some(&mut self) -> std::io::Result<()> {
        while !self.out.is_empty() {
            match self.stream.try_write(&self.out) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out.advance(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        self.release_out();
        Ok(())
    }

    /// Empties the (written) output buffer, freeing it if it grew large.
    pub(super) fn release_out(&mut self) {
        if self.out.capacity() > OUT_KEEP {
            self.out = BytesMut::new();
        } else {
            self.out.clear();
        }
    }
}

impl Session {
    /// How many replies this client may have outstanding now: none while its unread replies
    /// are over the soft limit, else as many as the rest of it holds at the size of its recent
    /// replies (at least one, at most [`MAX_PENDING`]).
    pub(super) fn window(&self, io: &Io) -> usize {
        let unread = io.out.len();
        let soft = self.pool.cfg.client_output_soft_limit;
        if unread >= soft {
            return 0;
        }
        let hint = (self.reply_hint as usize).max(1);
        ((soft - unread) / hint).clamp(1, MAX_PENDING)
    }

    /// Takes a reply's size into the estimate: a large reply counts at once, and its weight
    /// fades over a dozen or so smaller ones.
    pub(super) fn learn_reply_size(&mut self, len: usize) {
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        self.reply_hint = len.max(self.reply_hint - self.reply_hint / 4);
    }

    /// Fails (ending the session) once the client's unread replies pass the hard limit (call
    /// it after writing what the client takes).
    pub(super) fn check_output_limit(&self, io: &Io) -> std::io::Result<()> {
        let limit = self.pool.cfg.client_output_hard_limit;
        let unread = io.out.len();
        if unread <= limit {
            return Ok(());
        }
        self.pool.metrics.output_limit_disconnects.increment(1);
        tracing::warn!(
            client = %self.entry.addr,
            unread,
            limit,
            "client disconnected: its unread replies passed client_output_hard_limit"
        );
        Err(std::io::Error::other("client_output_hard_limit reached"))
    }
}
