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

#[cfg(test)]
mod tests {
    use crate::node::client::ClientState;
    use crate::node::cmd::{execute, Ctx};
    use crate::node::shared::Shared;
    use crate::node::store::Store;
    use crate::resp::Request;

    /// Writes (so it cannot be stopped and rerun), runs past a time-limit hook (where an
    /// inline script hands the event loop over), then meets a command that panics.
    const SCRIPT: &str = "redis.call('set', 'k', 'v') \
        local i = 0 while i < 1000000 do i = i + 1 end \
        redis.call('__panic')";

    fn shared() -> Shared {
        Shared::for_tests()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_after_the_hand_off_leaves_the_node_not_busy() {
        let mut store = Store::new();
        let busy = store.scripting.busy.clone();
        // On a worker, as a connection's batch runs, so that the hand-off can happen.
        let batch = tokio::spawn(async move {
            let shared = shared();
            let mut client = ClientState {
                authed: true,
                ..ClientState::default()
            };
            let mut ctx = Ctx::new(&mut store, &mut client, &shared, true);
            ctx.store.scripting.inline = true;
            execute(&mut ctx, &Request::from_args(&["EVAL", SCRIPT, "0"]))
        });
        let outcome = batch.await;
        assert!(outcome.is_err_and(|e| e.is_panic()), "the command panicked");
        assert!(!busy.running(), "a dead script still marks the node busy");
        assert_eq!(busy.timed_out(), None);
    }
}
