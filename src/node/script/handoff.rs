//! Handing the event loop to another thread while a script that runs on it has to finish.
//!
//! A script that was fast last time runs inline, on the event loop (`conn/busy.rs`). If it
//! turns slow before writing, it is stopped and runs again off the loop; once it has
//! written it cannot be undone, so it must finish where it is. Without more, the whole
//! node would stall until it ends: no BUSY replies, no SCRIPT KILL answer, no SHUTDOWN
//! NOSAVE. Instead the thread running it leaves the event loop: on a multi-thread tokio
//! runtime, `block_in_place` moves this worker's scheduler core (its queue of tasks and
//! the I/O driver it parks on) to a new thread, and the event loop goes on there while
//! this thread finishes the script. Other connections then see the script as running
//! (`Busy`) and answer BUSY, UNKILLABLE, or stop the node, as with a script run off the
//! loop from the start.

use std::sync::mpsc;
use std::time::Duration;

use tokio::runtime::{Handle, RuntimeFlavor};

/// How long to wait for the new thread to run the event loop. The wait ends as soon as a
/// task spawned after the move has run (it can only run on the new thread); it times out
/// only if no thread can be started (the blocking pool is full), and the script then goes
/// on holding the event loop, as it would have without the move.
const TAKEOVER_WAIT: Duration = Duration::from_secs(1);

/// Moves the event loop off the current thread for the rest of the current task's poll;
/// true if it moved. False outside a multi-thread runtime (a current-thread runtime has no
/// other thread to move to: `block_in_place` would panic there), or if no thread took it.
///
/// `block_in_place` alone is not enough: when its closure returns it takes the core back
/// if the new thread has not claimed it yet, and a closure that returns at once almost
/// always wins that race. So the closure waits until a probe task has run: only a thread
/// holding the core runs tasks, and this one gave it up, so the new thread holds it and
/// keeps it for good. When the task running the script next returns `Pending`, this thread
/// goes back to the blocking pool and the task goes on wherever the event loop now is.
pub(crate) fn leave_event_loop() -> bool {
    let Ok(handle) = Handle::try_current() else {
        return false;
    };
    if handle.runtime_flavor() != RuntimeFlavor::MultiThread {
        return false;
    }
    tokio::task::block_in_place(|| {
        let (tx, rx) = mpsc::sync_channel(1);
        handle.spawn(async move {
            let _ = tx.send(());
        });
        rx.recv_timeout(TAKEOVER_WAIT).is_ok()
    })
}
