//! What a running script shares with the other connections, outside the store's lock: is a
//! script running, since when, has it written, and has SCRIPT KILL / FUNCTION KILL asked it
//! to stop.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The running script's state (at most one script runs at a time: they run under the lock).
#[derive(Debug, Default)]
pub struct Busy {
    /// Claims held ([`Claim`]): a connection handed a script request to a blocking thread
    /// (it may still be waiting for the lock), or an inline script's connection has not
    /// released the store yet: other connections must not block the event loop on the
    /// lock. A count, so that two claims never clear each other.
    claimed: AtomicUsize,
    running: AtomicBool,
    /// The script is an EVAL (not an FCALL): which KILL applies and which BUSY text.
    eval: AtomicBool,
    /// It called a write command: it can no longer be killed.
    wrote: AtomicBool,
    /// The caller is our master (or the AOF): it must not be killed.
    unkillable: AtomicBool,
    kill: AtomicBool,
    started: Mutex<Option<Instant>>,
    /// The running function's name and command, and the library/function counts, for
    /// FUNCTION STATS while busy.
    function: Mutex<Option<FunctionRun>>,
    /// `busy-reply-threshold` in ms (0 = never busy).
    pub threshold_ms: AtomicU64,
    /// Scripts run, for spacing garbage-collection steps.
    runs: AtomicU64,
    /// Woken when a script ends, so connections waiting for the lock go on at once.
    pub done: tokio::sync::Notify,
}

/// What FUNCTION STATS reports about a running function.
#[derive(Debug, Clone)]
pub struct FunctionRun {
    /// Function name.
    pub name: String,
    /// The FCALL command as sent.
    pub command: Vec<bytes::Bytes>,
    /// Libraries loaded.
    pub libraries: usize,
    /// Functions loaded.
    pub functions: usize,
}

/// What SCRIPT KILL / FUNCTION KILL found.
#[derive(Debug, PartialEq, Eq)]
pub enum KillOutcome {
    /// Asked the script to stop.
    Killed,
    /// No script is running.
    NotBusy,
    /// The script already wrote.
    Wrote,
    /// The script runs on behalf of our master.
    FromMaster,
    /// The running script is of the other kind (FCALL for SCRIPT KILL, EVAL for FUNCTION KILL).
    OtherKind,
}

/// The mark of a running script: dropping it (the script ended, or unwound) clears it.
#[must_use = "the script counts as running only while this lives"]
#[derive(Debug)]
pub(crate) struct Running(Arc<Busy>);

impl Running {
    /// The shared state the mark is on.
    pub(crate) fn busy(&self) -> &Arc<Busy> {
        &self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// A claim on the store for a script (see [`Busy::claim`]): released when dropped, so a
/// panic between the claim and its release cannot leave every other client waiting.
#[must_use = "the claim is released when dropped"]
#[derive(Debug)]
pub struct Claim(Arc<Busy>);

impl Drop for Claim {
    fn drop(&mut self) {
        self.0.claimed.fetch_sub(1, Ordering::AcqRel);
        self.0.done.notify_waiters();
    }
}

impl Busy {
    /// Marks a script as started, until the returned mark is dropped.
    pub(crate) fn start(self: &Arc<Self>, eval: bool, unkillable: bool) -> Running {
        self.eval.store(eval, Ordering::Relaxed);
        self.wrote.store(false, Ordering::Relaxed);
        self.unkillable.store(unkillable, Ordering::Relaxed);
        self.kill.store(false, Ordering::Relaxed);
        if let Ok(mut s) = self.started.lock() {
            *s = Some(Instant::now());
        }
        self.running.store(true, Ordering::Release);
        Running(self.clone())
    }
    /// Records the function about to run (FUNCTION STATS).
    pub(crate) fn set_function(&self, run: Option<FunctionRun>) {
        if let Ok(mut f) = self.function.lock() {
            *f = run;
        }
    }
    /// The running function and how long it has run, if a function runs.
    pub fn function(&self) -> Option<(FunctionRun, u128)> {
        let f = self.function.lock().ok()?.clone()?;
        let started = self.started.lock().ok().and_then(|s| *s)?;
        Some((f, started.elapsed().as_millis()))
    }
    /// Marks the script as finished (when its [`Running`] mark is dropped).
    fn stop(&self) {
        self.set_function(None);
        self.running.store(false, Ordering::Release);
        self.kill.store(false, Ordering::Relaxed);
        if let Ok(mut s) = self.started.lock() {
            *s = None;
        }
        self.done.notify_waiters();
    }
    /// Counts a finished script; true every 50th (time for a GC step).
    pub(crate) fn tick_gc(&self) -> bool {
        self.runs.fetch_add(1, Ordering::Relaxed) % 50 == 49
    }
    /// The script called a write command.
    pub(crate) fn wrote(&self) {
        self.wrote.store(true, Ordering::Relaxed);
    }
    /// True once SCRIPT KILL asked the running script to stop.
    pub(crate) fn kill_requested(&self) -> bool {
        self.kill.load(Ordering::Relaxed)
    }
    /// True if a script has run longer than `busy-reply-threshold`: other clients then get
    /// BUSY. Returns whether the running script is an EVAL.
    pub fn timed_out(&self) -> Option<bool> {
        if !self.running.load(Ordering::Acquire) {
            return None;
        }
        let limit = self.threshold_ms.load(Ordering::Relaxed);
        if limit == 0 {
            return None;
        }
        let started = self.started.lock().ok().and_then(|s| *s)?;
        (started.elapsed().as_millis() >= u128::from(limit))
            .then(|| self.eval.load(Ordering::Relaxed))
    }
    /// True while a script runs (or is about to, off the event loop).
    #[inline]
    pub fn running(&self) -> bool {
        self.claimed.load(Ordering::Acquire) > 0 || self.running.load(Ordering::Acquire)
    }
    /// Claims the store for a script until the claim is dropped: one about to run off the
    /// event loop, or an inline one whose connection still holds the store.
    pub fn claim(self: &Arc<Self>) -> Claim {
        self.claimed.fetch_add(1, Ordering::AcqRel);
        Claim(self.clone())
    }
    /// SHUTDOWN while busy: stop the script whatever it did.
    pub fn force_kill(&self) {
        self.kill.store(true, Ordering::Relaxed);
    }
    /// SCRIPT KILL (`eval` true) or FUNCTION KILL.
    pub fn kill(&self, eval: bool) -> KillOutcome {
        if !self.running.load(Ordering::Acquire) {
            return KillOutcome::NotBusy;
        }
        if self.unkillable.load(Ordering::Relaxed) {
            return KillOutcome::FromMaster;
        }
        if self.wrote.load(Ordering::Relaxed) {
            return KillOutcome::Wrote;
        }
        if self.eval.load(Ordering::Relaxed) != eval {
            return KillOutcome::OtherKind;
        }
        self.kill.store(true, Ordering::Relaxed);
        KillOutcome::Killed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_cleared_when_their_holder_unwinds() {
        let busy = Arc::new(Busy::default());
        busy.threshold_ms.store(1, Ordering::Relaxed);
        let inner = busy.clone();
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _running = inner.start(true, false);
            let _claim = inner.claim();
            assert!(inner.running());
            panic!("a command inside the script panicked");
        }));
        assert!(unwound.is_err());
        assert!(!busy.running());
        assert_eq!(busy.timed_out(), None);
        assert_eq!(busy.kill(true), KillOutcome::NotBusy);
    }

    #[test]
    fn claims_do_not_clear_each_other() {
        let busy = Arc::new(Busy::default());
        let first = busy.claim();
        let second = busy.claim();
        drop(first);
        assert!(busy.running(), "the second claim still holds");
        drop(second);
        assert!(!busy.running());
    }
}
