//! `CLIENT REPLY ON|OFF|SKIP`, implemented by the proxy: the client's requests still run, the
//! replies it asked not to get are dropped here. Redis still delivers pub/sub confirmations
//! and messages to a client with replies off, and so do we: only the plain request/reply
//! paths (shared connections, local answers, transactions, blocking commands) are silenced.
//! With replies on, the cost per request is one byte compare.

use std::collections::VecDeque;

use bytes::Bytes;

use super::{error_bytes, Pending, Session};
use crate::command::{CommandInfo, Special};
use crate::resp::Request;

/// A client's reply setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum ReplyMode {
    #[default]
    On,
    Off,
    /// The next command's reply is dropped, then replies are on again.
    SkipNext,
}

impl Session {
    /// Whether the reply to the request about to run must be dropped (and consumes a SKIP).
    /// `CLIENT REPLY` itself is never silenced here: it answers for itself.
    #[inline]
    pub(super) fn silences(&mut self, info: Option<&CommandInfo>) -> bool {
        if self.reply_mode == ReplyMode::On || Special::of(info) == Special::ClientReply {
            return false;
        }
        if self.reply_mode == ReplyMode::SkipNext {
            self.reply_mode = ReplyMode::On;
        }
        true
    }

    /// `CLIENT REPLY ON|OFF|SKIP`: `+OK` for ON, nothing at all for OFF and SKIP.
    pub(super) fn client_reply(&mut self, req: &Request) -> Bytes {
        if req.len() != 3 {
            return error_bytes("ERR wrong number of arguments for 'client|reply' command");
        }
        let mode = req.arg(2);
        if mode.eq_ignore_ascii_case(b"on") {
            self.reply_mode = ReplyMode::On;
            Bytes::from_static(b"+OK\r\n")
        } else if mode.eq_ignore_ascii_case(b"off") {
            self.reply_mode = ReplyMode::Off;
            Bytes::new()
        } else if mode.eq_ignore_ascii_case(b"skip") {
            if self.reply_mode == ReplyMode::On {
                self.reply_mode = ReplyMode::SkipNext;
            }
            Bytes::new()
        } else {
            error_bytes("ERR syntax error")
        }
    }
}

/// Drops the replies of the slots queued from `from` on (one request's slots).
pub(super) fn silence_from(pending: &mut VecDeque<Pending>, from: usize) {
    for p in pending.iter_mut().skip(from) {
        match p {
            Pending::Ready(b) => *b = Bytes::new(),
            Pending::Wait(w) => w.silent = true,
        }
    }
}
