//! A connection parked by a blocking command (BLPOP, ...) or held back by CLIENT PAUSE:
//! what it waits for, how it is registered and released, and the wait itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

use super::Conn;
use crate::node::clients::Unblock;
use crate::node::reply::Reply;
use crate::node::store::Store;
use crate::resp::Request;

/// A client parked by a blocking command.
pub(super) struct Parked {
    pub(super) db: usize,
    pub(super) keys: Vec<Bytes>,
    pub(super) deadline: Option<Instant>,
    pub(super) on_timeout: Reply,
    pub(super) timed_out: bool,
    /// Held back by CLIENT PAUSE (not blocked on keys): the request runs again when the
    /// pause ends, whether by CLIENT UNPAUSE or by its timeout.
    pub(super) postponed: bool,
}

/// Parks client `id` on `p.keys` (woken by writers of them, or by CLIENT UNBLOCK).
pub(super) fn park(store: &mut Store, id: u64, notify: &Arc<Notify>, p: Parked) -> Parked {
    store.waiters.register(p.db, &p.keys, notify);
    store.clients.blocked += 1;
    if let Some(c) = store.clients.get_mut(id) {
        c.parked = Some(notify.clone());
    }
    p
}

/// True if none of the keys a woken blocking command waits on holds the type it pops from
/// (a zset for BZPOPMIN/BZPOPMAX/BZMPOP, a list otherwise): Redis serves a blocked client
/// only from such a key, so a WRONGTYPE then means "keep waiting", not an answer (another
/// key's type, such as BLMOVE's destination, is an answer).
pub(super) fn nothing_to_serve(store: &Store, p: &Parked, req: &Request) -> bool {
    use crate::node::value::Value;
    let zset =
        !req.is_empty() && req.arg(0).len() > 2 && req.arg(0)[..2].eq_ignore_ascii_case(b"bz");
    !p.keys.iter().any(|k| match store.db(p.db).get(k) {
        Some(Value::ZSet(_)) => zset,
        Some(Value::List(_)) => !zset,
        _ => false,
    })
}

/// Holds a request back until a CLIENT PAUSE ending at `end_ms` is over or lifted.
pub(super) fn postpone(store: &mut Store, notify: &Arc<Notify>, end_ms: i64) -> Parked {
    let wait = u64::try_from(end_ms - store.now_ms).unwrap_or(0);
    store.pause.wait(notify);
    store.clients.blocked += 1;
    Parked {
        db: 0,
        keys: Vec::new(),
        deadline: Some(Instant::now() + Duration::from_millis(wait)),
        on_timeout: Reply::Null,
        timed_out: false,
        postponed: true,
    }
}

/// After a parked client woke: `Err` with the answer to its request (timeout, CLIENT
/// UNBLOCK), or `Ok` with what parked it when the request is to run again on its keys.
pub(super) fn resume(
    store: &mut Store,
    id: u64,
    notify: &Arc<Notify>,
    p: Parked,
) -> Result<Option<Parked>, Reply> {
    match release(store, id, notify, &p) {
        Some(Unblock::Error) => Err(Reply::error(
            "UNBLOCKED client unblocked via CLIENT UNBLOCK",
        )),
        Some(Unblock::Timeout) => Err(p.on_timeout),
        None if p.timed_out && !p.postponed => Err(p.on_timeout),
        None => Ok((!p.postponed).then_some(p)),
    }
}

/// Forgets what parked client `id` (keys or a pause); returns a CLIENT UNBLOCK request.
fn release(store: &mut Store, id: u64, notify: &Arc<Notify>, p: &Parked) -> Option<Unblock> {
    if p.postponed {
        store.pause.unwait(notify);
    } else {
        store.waiters.unregister(p.db, &p.keys, notify);
    }
    store.clients.blocked = store.clients.blocked.saturating_sub(1);
    let info = store.clients.get_mut(id)?;
    info.parked = None;
    info.unblock.take()
}

impl Conn {
    /// Waits while parked: until a writer signals a key, the timeout passes, or the client
    /// goes away. Data the client sends meanwhile is decoded and queued behind the blocked
    /// command.
    pub(super) async fn wait_parked(&mut self) -> std::io::Result<()> {
        enum Event {
            Woken,
            TimedOut,
            Readable,
        }
        loop {
            let Some(deadline) = self.parked.as_ref().map(|p| p.deadline) else {
                return Ok(());
            };
            let event = {
                let sleep = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d.into()).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = self.mailbox.wake.notified() => {
                        self.drain_mailbox();
                        if self.killed {
                            return Err(std::io::ErrorKind::ConnectionAborted.into());
                        }
                        continue;
                    }
                    _ = self.notify.notified() => Event::Woken,
                    _ = sleep => Event::TimedOut,
                    r = self.stream.readable(), if !self.eof => { r?; Event::Readable }
                }
            };
            match event {
                Event::Woken => return Ok(()),
                Event::TimedOut => {
                    if let Some(p) = self.parked.as_mut() {
                        p.timed_out = true;
                    }
                    return Ok(());
                }
                Event::Readable => {
                    self.read_available();
                    self.decode();
                    if self.eof {
                        // A client that hung up while blocked is dropped, as Redis does.
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                }
            }
        }
    }

    /// Unregisters a parked client (on disconnect).
    pub(super) fn unpark(&mut self, store: &mut Store) {
        if let Some(p) = self.parked.take() {
            release(store, self.client.id, &self.notify, &p);
        }
    }
}
