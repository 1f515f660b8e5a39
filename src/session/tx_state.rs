//! What a session's transaction holds: the pinned connection and what is open on it, a
//! cluster MULTI deferred until its first key, and the log that lets a cluster transaction
//! move; plus the rule for what may not be queued inside MULTI through the proxy.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::{deny, Session};
use crate::backend::{DirectConn, Node};
use crate::command::{flags, CommandInfo, Special};
use crate::resp::{Frame, Request};

/// Where a session's transaction stands. The states exclude each other: a deferred MULTI
/// has no connection yet (or lost it), a pinned one has.
#[derive(Default)]
pub(crate) enum Tx {
    /// No transaction and no WATCH: requests are pipelined.
    #[default]
    None,
    /// Cluster pools: a MULTI whose node is not known yet (no keyed command so far), with the
    /// requests to replay once the first keyed command picks the slot. Any pool: a MULTI that
    /// is already lost (refused, or its connection failed), answered here until EXEC.
    Deferred(Box<Deferred>),
    /// A dedicated connection pinned by WATCH or MULTI, until EXEC, DISCARD or UNWATCH.
    Pinned(Box<Pinned>),
}

impl Tx {
    /// True while a transaction or a WATCH is open (requests need the transaction's path).
    pub(super) fn is_open(&self) -> bool {
        !matches!(self, Tx::None)
    }

    pub(super) fn pinned(&self) -> Option<&Pinned> {
        match self {
            Tx::Pinned(p) => Some(p),
            _ => None,
        }
    }

    pub(super) fn pinned_mut(&mut self) -> Option<&mut Pinned> {
        match self {
            Tx::Pinned(p) => Some(p),
            _ => None,
        }
    }

    pub(super) fn deferred(&self) -> Option<&Deferred> {
        match self {
            Tx::Deferred(d) => Some(d),
            _ => None,
        }
    }

    pub(super) fn deferred_mut(&mut self) -> Option<&mut Deferred> {
        match self {
            Tx::Deferred(d) => Some(d),
            _ => None,
        }
    }

    /// The pinned connection, leaving no transaction (other states are left as they are).
    pub(super) fn take_pinned(&mut self) -> Option<Box<Pinned>> {
        match std::mem::take(self) {
            Tx::Pinned(p) => Some(p),
            other => {
                *self = other;
                None
            }
        }
    }

    /// The deferred MULTI, leaving no transaction (other states are left as they are).
    pub(super) fn take_deferred(&mut self) -> Option<Box<Deferred>> {
        match std::mem::take(self) {
            Tx::Deferred(d) => Some(d),
            other => {
                *self = other;
                None
            }
        }
    }

    /// Drops a pinned connection (not given back: what is open on it dies with it).
    pub(super) fn drop_pinned(&mut self) {
        let _ = self.take_pinned();
    }

    /// Forgets a deferred MULTI.
    pub(super) fn drop_deferred(&mut self) {
        let _ = self.take_deferred();
    }
}

/// A session's dedicated transaction connection and what is open on it.
pub(crate) struct Pinned {
    pub(super) conn: DirectConn,
    pub(super) node: Arc<Node>,
    pub(super) in_multi: bool,
    pub(super) watching: bool,
    /// Replies of +QUEUED received in the current MULTI (the index of the next queued command).
    pub(super) queued: usize,
    /// SELECTs queued in the current MULTI: (index in EXEC's reply, database).
    pub(super) selects: Vec<(usize, u16)>,
    /// A command was refused at queue time by the proxy (or, in cluster pools, by the node):
    /// EXEC must abort, as Redis does. A standalone node's own refusals are left to it.
    pub(super) poisoned: bool,
    /// A `SLOWLOG RESET` is queued: the proxy's slow log (see `slowlog`) is reset when EXEC
    /// is sent, so what the transaction and the clients it unblocks run is logged after it,
    /// as on Redis.
    pub(super) slowlog_reset: bool,
    /// A command queued in this MULTI is one `CLIENT PAUSE WRITE` holds: so is EXEC.
    pub(super) writes: bool,
    /// `CLIENT PAUSE`/`UNPAUSE` queued in this MULTI, with their index in EXEC's reply: the
    /// proxy runs them when EXEC's reply comes (a `PING` holds their place on the node).
    pub(super) pauses: Vec<(usize, Request)>,
    /// Cluster pools: the slot every keyed command of this transaction must map to, once the
    /// first one chose it.
    pub(super) slot: Option<u16>,
    /// Cluster pools: MULTI and the commands queued since, to replay them on the slot's new
    /// owner when a MOVED shows the transaction was pinned to its former one. `None` once
    /// past [`MAX_DEFERRED_BYTES`] (such a transaction cannot move).
    pub(super) log: Option<TxLog>,
}

/// A deferred MULTI: the requests to replay (MULTI first), and whether a command was refused
/// at queue time (EXEC must then abort, as Redis does). Boxed in the session, which rarely
/// has one.
pub(super) struct Deferred {
    pub(super) reqs: Vec<Bytes>,
    /// Bytes held in `reqs` (bounded by [`MAX_DEFERRED_BYTES`]).
    pub(super) bytes: usize,
    pub(super) poisoned: bool,
}

/// Most bytes of keyless commands held for a MULTI before its first key picks the node; past
/// this a command is refused (and the transaction aborts at EXEC) rather than buffered.
pub(super) const MAX_DEFERRED_BYTES: usize = 4 << 20;

impl Deferred {
    /// A MULTI that is already lost (no dedicated connection could be had for it, or its
    /// connection failed): everything up to EXEC is queued here without running, and EXEC
    /// aborts.
    pub(super) fn aborted() -> Box<Deferred> {
        Box::new(Deferred {
            reqs: Vec::new(),
            bytes: 0,
            poisoned: true,
        })
    }
}

/// What a cluster transaction sent since MULTI (MULTI first), kept to replay it on another
/// node; bounded like [`Deferred`].
pub(super) struct TxLog {
    pub(super) reqs: Vec<Bytes>,
    pub(super) bytes: usize,
}

impl TxLog {
    /// A log that starts with the MULTI itself.
    pub(super) fn new(multi: &[u8]) -> TxLog {
        TxLog {
            reqs: vec![Bytes::copy_from_slice(multi)],
            bytes: multi.len(),
        }
    }

    /// Adds a queued command; false when that would pass [`MAX_DEFERRED_BYTES`].
    pub(super) fn push(&mut self, raw: &[u8]) -> bool {
        let size = raw.len() + std::mem::size_of::<Bytes>();
        if self.bytes + size > MAX_DEFERRED_BYTES {
            return false;
        }
        self.bytes += size;
        // Owned copy: a slice would keep the client's whole read buffer alive.
        self.reqs.push(Bytes::copy_from_slice(raw));
        true
    }
}

impl Pinned {
    /// A freshly pinned connection with nothing open on it yet.
    pub(super) fn for_transaction(conn: DirectConn, node: Arc<Node>, slot: Option<u16>) -> Pinned {
        Pinned {
            conn,
            node,
            in_multi: false,
            watching: false,
            queued: 0,
            selects: Vec::new(),
            poisoned: false,
            slowlog_reset: false,
            writes: false,
            pauses: Vec::new(),
            slot,
            log: None,
        }
    }

    pub(super) fn end_transaction(&mut self) {
        self.log = None;
        self.in_multi = false;
        self.watching = false;
        self.queued = 0;
        self.selects.clear();
        self.poisoned = false;
        self.slowlog_reset = false;
        self.writes = false;
        self.pauses.clear();
    }
}

/// Commands that change a connection beyond one reply (so they cannot share a pinned one).
/// (HELLO would switch the session's protocol away from the pinned connection's.)
pub(super) fn changes_connection(special: Special) -> bool {
    special.subscribes() || special == Special::Hello || special.changes_connection_for_good()
}

/// Why a command may not be queued inside MULTI through the proxy, if so.
pub(super) fn refused_in_multi(
    session: &Session,
    req: &Request,
    info: Option<&'static CommandInfo>,
) -> Option<String> {
    let special = Special::of(info);
    // Redis refuses these inside MULTI whatever else holds (SAVE, SHUTDOWN, ...); a command
    // the proxy denies gets Redis's words first, as on a node.
    if info.is_some_and(|i| i.has(flags::NO_MULTI)) {
        return Some("ERR Command not allowed inside a transaction".into());
    }
    if let Some(msg) = deny::check(&session.pool, req) {
        return Some(msg);
    }
    // CLIENT PAUSE is queued by the proxy itself (`Session::queue_pause`), except in cluster
    // pools, where a transaction may be replayed on another node.
    let queued_here = special == Special::ClientPause && !session.pool.routing.by_slot();
    if changes_connection(special)
        || (special.is_client() && !queued_here)
        // WAIT is not refused: on the transaction's own connection the node answers it at
        // once with its count, as Redis does inside MULTI.
        || special == Special::Auth
    {
        return Some(format!(
            "ERR sluice: {} inside MULTI is not supported through the proxy",
            String::from_utf8_lossy(req.arg(0)).to_uppercase()
        ));
    }
    None
}

/// EXEC's reply array with the elements at the given indexes replaced; `None` when the reply
/// is not an array of whole frames (an aborted transaction: nothing in it ran).
pub(super) fn splice_exec(raw: &[u8], answers: &[(usize, Bytes)]) -> Option<BytesMut> {
    let head = raw.iter().position(|&b| b == b'\n')? + 1;
    if raw.first() != Some(&b'*') {
        return None;
    }
    let n: usize = std::str::from_utf8(raw.get(1..head - 2)?)
        .ok()?
        .parse()
        .ok()?;
    let mut out = BytesMut::with_capacity(raw.len());
    out.extend_from_slice(&raw[..head]);
    let mut at = head;
    for i in 0..n {
        let (_, len) = Frame::parse(raw.get(at..)?).ok()??;
        match answers.iter().find(|(idx, _)| *idx == i) {
            Some((_, answer)) => out.extend_from_slice(answer),
            None => out.extend_from_slice(&raw[at..at + len]),
        }
        at += len;
    }
    (at == raw.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_replies_get_the_proxy_answers_in_place() {
        let ok = Bytes::from_static(b"+OK\r\n");
        let raw = b"*3\r\n+OK\r\n+PONG\r\n$1\r\nx\r\n";
        let out = splice_exec(raw, &[(1, ok.clone())]).expect("an array");
        assert_eq!(&out[..], b"*3\r\n+OK\r\n+OK\r\n$1\r\nx\r\n");
        assert!(splice_exec(b"*-1\r\n", &[(0, ok.clone())]).is_none());
        assert!(splice_exec(b"_\r\n", &[(0, ok.clone())]).is_none());
        assert!(splice_exec(b"-EXECABORT x\r\n", &[(0, ok.clone())]).is_none());
        assert!(splice_exec(b"*2\r\n+OK\r\n", &[(0, ok)]).is_none());
    }

    #[test]
    fn a_deferred_multi_is_not_touched_by_pinned_transitions() {
        let mut tx = Tx::Deferred(Deferred::aborted());
        assert!(tx.is_open());
        // A failed pinned request first marks the MULTI lost, then drops its connection:
        // the second step must not undo the first.
        assert!(tx.take_pinned().is_none());
        tx.drop_pinned();
        assert!(tx.deferred().is_some_and(|d| d.poisoned));
        assert!(tx.pinned().is_none());
        let d = tx.take_deferred().expect("the deferred MULTI");
        assert!(d.poisoned && d.reqs.is_empty());
        assert!(!tx.is_open());
        tx.drop_deferred();
        assert!(matches!(tx, Tx::None));
    }
}
