//! What a running script shares with the other connections, outside the store's lock: is a
//! script running, since when, has it written, and has SCRIPT KILL / FUNCTION KILL asked it
//! to stop.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The running script's state (at most one script runs at a time: they run under the lock).
#[derive(Debug, Default)]
pub struct Busy {
    /// A connection handed a script request to a blocking thread (it may still be waiting
    /// for the lock): other connections must not block the event loop on the lock.
    claimed: AtomicBool,
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

impl Busy {
    /// Marks a script as started.
    pub(crate) fn start(&self, eval: bool, unkillable: bool) {
        self.eval.store(eval, Ordering::Relaxed);
        self.wrote.store(false, Ordering::Relaxed);
        self.unkillable.store(unkillable, Ordering::Relaxed);
        self.kill.store(false, Ordering::Relaxed);
        if let Ok(mut s) = self.started.lock() {
            *s = Some(Instant::now());
        }
        self.running.store(true, Ordering::Release);
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
    /// Marks the script as finished.
    pub(crate) fn stop(&self) {
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
    pub fn running(&self) -> bool {
        self.claimed.load(Ordering::Acquire) || self.running.load(Ordering::Acquire)
    }
    /// A connection is about to run a script off the event loop.
    pub fn claim(&self) {
        self.claimed.store(true, Ordering::Release);
    }
    /// The off-loop script finished.
    pub fn release(&self) {
        self.claimed.store(false, Ordering::Release);
        self.done.notify_waiters();
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
