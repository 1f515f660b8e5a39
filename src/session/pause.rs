//! `CLIENT PAUSE timeout [WRITE|ALL]` and `CLIENT UNPAUSE` for the clients of a pool: while
//! a pause is on, a paused client's next affected command (every command for ALL; writes and
//! commands that may replicate for WRITE) waits, after the replies before it were written,
//! until the pause ends. Without a pause the cost per request is one atomic load.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::local::parse_int;
use super::{error_bytes, Session};
use crate::command::{flags, CommandInfo, Special};
use crate::resp::Request;

/// A pool's pause.
#[derive(Default)]
pub(crate) struct PauseState {
    active: AtomicBool,
    /// End of the pause and whether it pauses everything (ALL) or writes only.
    until: Mutex<Option<(Instant, bool)>>,
    changed: Notify,
    /// Clients waiting for the pause to end: Redis counts them in INFO's `blocked_clients`
    /// (a node cannot see them, so the proxy adds them to its figure).
    waiting: AtomicUsize,
}

/// Counts a client as held by the pause while it lives.
struct Held<'a>(&'a AtomicUsize);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl PauseState {
    /// Whether a pause may be on (cheap; the caller then asks [`PauseState::holds`]).
    #[inline]
    pub(crate) fn maybe_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// The pause's end when it holds a command now (`write`: one a WRITE pause holds, see
    /// [`Session::paused_by_write`]).
    pub(crate) fn holds(&self, write: bool) -> Option<Instant> {
        let guard = self.until.lock().unwrap_or_else(|e| e.into_inner());
        let (end, all) = (*guard)?;
        if end <= Instant::now() {
            return None;
        }
        (all || write).then_some(end)
    }

    /// Clients waiting for the pause to end now.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    fn set(&self, end: Instant, all: bool) {
        let mut guard = self.until.lock().unwrap_or_else(|e| e.into_inner());
        // As Redis: the later end and the stricter mode win over a pause already on.
        let merged = match *guard {
            Some((e, a)) if e > Instant::now() => (e.max(end), a || all),
            _ => (end, all),
        };
        *guard = Some(merged);
        self.active.store(true, Ordering::Relaxed);
    }

    fn clear(&self) {
        *self.until.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.active.store(false, Ordering::Relaxed);
        self.changed.notify_waiters();
    }
}

impl Session {
    /// Whether `CLIENT PAUSE ... WRITE` holds this command, as Redis judges it: writes and
    /// the commands that may replicate (the table's `hidden_may_replicate`: PFCOUNT,
    /// PUBLISH, SPUBLISH, and EVAL unless its shebang declares `no-writes`), EXEC of a
    /// transaction that queued one; not a command Redis refuses at once (unknown, wrong
    /// number of arguments).
    pub(super) fn paused_by_write(&self, req: &Request, info: Option<&CommandInfo>) -> bool {
        let Some(info) = info else {
            return false;
        };
        if !info.arity_ok(req.len()) {
            return false;
        }
        if Special::of(Some(info)) == Special::Exec {
            return self.tx.pinned().is_some_and(|p| p.in_multi && p.writes);
        }
        if info.flags & (flags::WRITE | flags::MAY_REPLICATE) != 0 {
            return true;
        }
        // EVAL is the one `Script` row with the hidden flag: its shebang may say `no-writes`.
        info.hidden_may_replicate
            && (info.special != Special::Script || !declares_no_writes(req.arg(1)))
    }

    /// Waits while the pool's pause holds this command (`write`: see
    /// [`Session::paused_by_write`]).
    pub(super) async fn wait_unpaused(&self, write: bool) {
        let pause = &self.pool.registry.pause;
        let mut held = None;
        loop {
            // Registered before the check, so an UNPAUSE in between is not missed.
            let changed = pause.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let Some(end) = pause.holds(write) else {
                return;
            };
            if held.is_none() {
                pause.waiting.fetch_add(1, Ordering::Relaxed);
                held = Some(Held(&pause.waiting));
            }
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(end) => {}
            }
        }
    }

    /// CLIENT PAUSE/UNPAUSE inside MULTI: Redis queues it and the pause starts when EXEC
    /// ends. The proxy keeps the command and queues a `PING` in its place on the node (the
    /// node itself is never paused); [`Session::run_queued_pauses`] runs it when EXEC's
    /// reply comes. As on Redis, a wrong number of arguments is refused at once and makes
    /// EXEC abort.
    pub(super) async fn queue_pause(
        &mut self,
        req: Request,
        info: Option<&'static CommandInfo>,
        io: &mut super::Io,
    ) {
        let Some(info) = info else {
            return;
        };
        if !info.arity_ok(req.len()) {
            if let Some(p) = self.tx.pinned_mut() {
                p.poisoned = true;
            }
            let msg = format!("ERR wrong number of arguments for '{}' command", info.name);
            crate::resp::encode::error(&mut io.out, &msg);
            return;
        }
        let Some(index) = self.tx.pinned().map(|p| p.queued) else {
            return;
        };
        let ping = Request::from_args(&[b"PING"]);
        let ping_info = crate::command::lookup(&ping);
        self.run_pinned(ping, ping_info, io).await;
        // Kept only if the placeholder was queued (the transaction still open, one more slot).
        if let Some(p) = self
            .tx
            .pinned_mut()
            .filter(|p| p.in_multi && p.queued == index + 1)
        {
            p.pauses.push((index, req));
        }
    }

    /// EXEC's reply of a transaction that queued CLIENT PAUSE/UNPAUSE: runs them now, at the
    /// end of the transaction, and puts their answers in their slots. An aborted transaction
    /// (no array) runs none of them.
    pub(super) fn run_queued_pauses(&mut self, reply: &mut crate::resp::Reply) {
        let pauses = match self.tx.pinned_mut() {
            Some(p) if p.in_multi && !p.pauses.is_empty() => std::mem::take(&mut p.pauses),
            _ => return,
        };
        // Checked before running them: EXEC's array is how the proxy knows the transaction ran.
        if super::tx_state::splice_exec(&reply.raw, &[]).is_none() {
            return;
        }
        let answers: Vec<(usize, Bytes)> = pauses
            .iter()
            .map(|(i, req)| (*i, self.client_pause(req)))
            .collect();
        if let Some(spliced) = super::tx_state::splice_exec(&reply.raw, &answers) {
            reply.raw = spliced.freeze();
        }
    }

    /// CLIENT PAUSE timeout [WRITE|ALL] / CLIENT UNPAUSE.
    pub(super) fn client_pause(&self, req: &Request) -> Bytes {
        let pause = &self.pool.registry.pause;
        if req.arg(1).eq_ignore_ascii_case(b"unpause") {
            if req.len() != 2 {
                return error_bytes("ERR wrong number of arguments for 'client|unpause' command");
            }
            pause.clear();
            return Bytes::from_static(b"+OK\r\n");
        }
        if req.len() != 3 && req.len() != 4 {
            return error_bytes("ERR wrong number of arguments for 'client|pause' command");
        }
        let Some(ms) = parse_int(req.arg(2)).filter(|ms| *ms >= 0) else {
            return error_bytes("ERR timeout is not an integer or out of range");
        };
        let all = match req.len() {
            4 if req.arg(3).eq_ignore_ascii_case(b"write") => false,
            4 if req.arg(3).eq_ignore_ascii_case(b"all") => true,
            4 => return error_bytes("ERR CLIENT PAUSE mode must be WRITE or ALL"),
            _ => true,
        };
        let end = Instant::now() + std::time::Duration::from_millis(ms as u64);
        pause.set(end, all);
        Bytes::from_static(b"+OK\r\n")
    }
}

/// Whether a script's shebang line (`#!lua flags=no-writes,...`) declares `no-writes`.
fn declares_no_writes(body: &[u8]) -> bool {
    let Some(rest) = body.strip_prefix(b"#!") else {
        return false;
    };
    let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
    line.split(|&b| b == b' ')
        .filter_map(|w| w.strip_prefix(b"flags="))
        .any(|f| f.split(|&b| b == b',').any(|x| x == b"no-writes"))
}

#[cfg(test)]
mod tests {
    use super::declares_no_writes;

    #[test]
    fn no_writes_is_read_off_the_shebang() {
        assert!(declares_no_writes(b"#!lua flags=no-writes\nreturn 1"));
        assert!(declares_no_writes(
            b"#!lua flags=allow-stale,no-writes\nreturn 1"
        ));
        assert!(!declares_no_writes(b"#!lua\nreturn 1"));
        assert!(!declares_no_writes(b"return 1 -- flags=no-writes"));
        assert!(!declares_no_writes(b"#!lua name=x\n-- flags=no-writes"));
    }
}
