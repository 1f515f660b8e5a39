//! CLIENT PAUSE's state, under the store lock: which commands are postponed and until when,
//! and the connections waiting for the pause to end.
//!
//! As in Redis 7.0, a `WRITE` pause postpones the commands that may change data or the
//! replication stream, an `ALL` pause every command; a second pause keeps the stricter kind
//! and the later end. While any pause is on, keys are not deleted by expiry: they read as
//! missing but stay until the pause ends, so nothing reaches replicas or the AOF.

use std::sync::Arc;

use tokio::sync::Notify;

/// What a pause holds back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum PauseKind {
    /// No pause.
    #[default]
    None,
    /// Commands that may write (`CLIENT PAUSE ms WRITE`).
    Write,
    /// Every command (`CLIENT PAUSE ms [ALL]`).
    All,
}

/// The current pause and who waits for its end.
#[derive(Debug, Default)]
pub struct Pause {
    kind: PauseKind,
    /// Unix ms at which the pause ends by itself.
    end_ms: i64,
    /// Connections postponed by the pause; each is woken once when it is lifted.
    waiters: Vec<Arc<Notify>>,
}

impl Pause {
    /// Pauses until `end_ms`: the stricter kind and the later end win over a running pause.
    pub fn pause(&mut self, kind: PauseKind, end_ms: i64, now_ms: i64) {
        if self.active(now_ms) == PauseKind::None {
            self.kind = kind;
            self.end_ms = end_ms;
        } else {
            self.kind = self.kind.max(kind);
            self.end_ms = self.end_ms.max(end_ms);
        }
    }
    /// CLIENT UNPAUSE: lifts the pause and wakes every postponed connection.
    pub fn unpause(&mut self) {
        self.kind = PauseKind::None;
        for w in self.waiters.drain(..) {
            w.notify_one();
        }
    }
    /// The pause in force at `now_ms` (`None` once its end has passed).
    pub fn active(&self, now_ms: i64) -> PauseKind {
        if now_ms < self.end_ms {
            self.kind
        } else {
            PauseKind::None
        }
    }
    /// True while writes are held back: expiry then hides keys without deleting them.
    pub fn writes_paused(&self, now_ms: i64) -> bool {
        self.kind != PauseKind::None && self.active(now_ms) != PauseKind::None
    }
    /// When the pause ends by itself (unix ms).
    pub fn end_ms(&self) -> i64 {
        self.end_ms
    }
    /// Registers a postponed connection, woken on CLIENT UNPAUSE.
    pub fn wait(&mut self, notify: &Arc<Notify>) {
        if !self.waiters.iter().any(|w| Arc::ptr_eq(w, notify)) {
            self.waiters.push(notify.clone());
        }
    }
    /// Forgets a postponed connection (it ran, or went away).
    pub fn unwait(&mut self, notify: &Arc<Notify>) {
        self.waiters.retain(|w| !Arc::ptr_eq(w, notify));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stricter_kind_and_later_end_win_and_unpause_wakes() {
        let mut p = Pause::default();
        assert_eq!(p.active(0), PauseKind::None);
        p.pause(PauseKind::All, 100, 0);
        p.pause(PauseKind::Write, 50, 10);
        assert_eq!(p.active(60), PauseKind::All);
        assert!(p.writes_paused(99));
        assert_eq!(p.active(100), PauseKind::None);
        assert!(!p.writes_paused(100));
        // After it ended, a new pause starts afresh.
        p.pause(PauseKind::Write, 300, 200);
        assert_eq!(p.active(250), PauseKind::Write);
        let n = Arc::new(Notify::new());
        p.wait(&n);
        p.wait(&n);
        assert_eq!(p.waiters.len(), 1);
        p.unpause();
        assert_eq!(p.active(250), PauseKind::None);
        assert!(p.waiters.is_empty());
    }
}
