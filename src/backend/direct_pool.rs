//! The dedicated connections of one node: at most `max` open (in use or idle), idle ones kept
//! per protocol for reuse, and a FIFO queue of clients waiting for one when the cap is reached.
//!
//! The cap counts places ([`Slot`]s), not connections of a protocol, and a place is never left
//! unused while someone waits for it:
//! * a connection given back while clients wait goes straight to the first of them (as it is,
//!   if it speaks that client's protocol; else it is closed and its place handed over);
//! * a connection that is closed frees its place for the first waiter;
//! * a client that finds the cap reached while idle connections of the other protocol exist
//!   closes one of them and takes its place, instead of waiting for connections that only
//!   sit idle (a burst of RESP2 clients once locked every RESP3 client out this way).
//!
//! A waiter waits at most `connect_timeout` (the time a client is prepared to wait for a node
//! connection anyway) and then gets [`BackendError::Exhausted`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::oneshot;

use super::direct::DirectConn;
use super::handshake::{self, Handshake};
use super::per_user::Credentials;
use super::BackendError;
use crate::resp::Protocol;

/// A place under a node's cap. Dropping it frees the place: to the first waiter if any.
pub(crate) struct Slot {
    /// `None` once the place was given up without waking anyone (see [`Shared::release`]).
    shared: Option<Arc<Shared>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            Shared::release(shared);
        }
    }
}

/// What a waiter is handed.
enum Grant {
    /// An idle connection of its protocol.
    Conn(DirectConn),
    /// A place to open a connection of its own.
    Slot(Slot),
}

struct Waiter {
    protocol: Protocol,
    /// `auth = "passthrough"`: the client user the connection must log in as.
    user: Option<Arc<Credentials>>,
    tx: oneshot::Sender<Grant>,
}

#[derive(Default)]
struct State {
    /// Places taken (connections open or being opened).
    open: usize,
    idle: Vec<DirectConn>,
    /// Only non-empty while `open == max` and no idle connection is left.
    waiters: VecDeque<Waiter>,
}

struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place was freed: hand it to the first waiter still waiting, or give it up.
    fn release(shared: Arc<Shared>) {
        let mut grant = Grant::Slot(Slot {
            shared: Some(shared.clone()),
        });
        loop {
            let waiter = {
                let mut st = shared.lock();
                match st.waiters.pop_front() {
                    Some(w) => w,
                    None => {
                        st.open = st.open.saturating_sub(1);
                        break;
                    }
                }
            };
            match waiter.tx.send(grant) {
                Ok(()) => return,
                // That waiter gave up meanwhile: the next one.
                Err(back) => grant = back,
            }
        }
        // Nobody wants the place and `open` already counts it out: drop it silently (a
        // normal drop would release it a second time).
        if let Grant::Slot(mut slot) = grant {
            slot.shared = None;
        }
    }
}

/// What `checkout` found under the lock.
enum Step {
    Reuse(DirectConn),
    Open(Slot),
    Wait(oneshot::Receiver<Grant>),
}

/// The dedicated connections of one node (see the module documentation).
pub(crate) struct DirectPool {
    addr: Arc<str>,
    handshake: Handshake,
    connect_timeout: Duration,
    max: usize,
    shared: Arc<Shared>,
}

impl DirectPool {
    /// A pool for `addr`; `handshake.protocol` is replaced per checkout.
    pub(crate) fn new(
        addr: &str,
        handshake: Handshake,
        connect_timeout: Duration,
        max: usize,
    ) -> DirectPool {
        DirectPool {
            addr: addr.into(),
            handshake,
            connect_timeout,
            max: max.max(1),
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// An idle connection of the wanted protocol, or a new one; at the cap, waits (up to
    /// `connect_timeout`) for one to be given back or closed.
    pub(crate) async fn checkout(&self, protocol: Protocol) -> Result<DirectConn, BackendError> {
        self.checkout_as(protocol, None).await
    }

    /// As [`DirectPool::checkout`], for a connection that logs in as a client's own user
    /// (`auth = "passthrough"`; `None`: the proxy's). Idle connections are reused only by
    /// the same user; every user's count under the one cap.
    pub(crate) async fn checkout_as(
        &self,
        protocol: Protocol,
        user: Option<&Arc<Credentials>>,
    ) -> Result<DirectConn, BackendError> {
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        loop {
            let grant = match self.take(protocol, user) {
                Step::Reuse(mut conn) => {
                    if !conn.is_closed() {
                        return Ok(conn);
                    }
                    // Its place goes to a waiter or back to the pool; look again.
                    drop(conn);
                    continue;
                }
                Step::Open(slot) => return self.connect(protocol, user, slot).await,
                Step::Wait(mut rx) => match tokio::time::timeout_at(deadline, &mut rx).await {
                    Ok(Ok(grant)) => grant,
                    Ok(Err(_)) => return Err(self.exhausted()),
                    Err(_) => {
                        // A grant sent just as the wait ended is still ours.
                        rx.close();
                        match rx.try_recv() {
                            Ok(grant) => grant,
                            Err(_) => return Err(self.exhausted()),
                        }
                    }
                },
            };
            return match grant {
                Grant::Conn(mut conn) => match conn.is_closed() {
                    false => Ok(conn),
                    true => self.connect(protocol, user, conn.into_slot()).await,
                },
                Grant::Slot(slot) => self.connect(protocol, user, slot).await,
            };
        }
    }

    /// Under the lock: an idle connection of `protocol`, a free place (possibly taken from an
    /// idle connection of the other protocol, which is closed), or a place in the queue.
    fn take(&self, protocol: Protocol, user: Option<&Arc<Credentials>>) -> Step {
        let mut st = self.shared.lock();
        if let Some(i) = st
            .idle
            .iter()
            .rposition(|c| c.protocol == protocol && c.user.as_ref() == user)
        {
            return Step::Reuse(st.idle.swap_remove(i));
        }
        if st.open < self.max {
            st.open += 1;
            return Step::Open(Slot {
                shared: Some(self.shared.clone()),
            });
        }
        if let Some(other) = st.idle.pop() {
            // Closing the socket here is a plain close(2); its place moves to us unreleased.
            return Step::Open(other.into_slot());
        }
        // Waiters that gave up are dropped here, so the queue stays as long as the live ones.
        st.waiters.retain(|w| !w.tx.is_closed());
        let (tx, rx) = oneshot::channel();
        st.waiters.push_back(Waiter {
            protocol,
            user: user.cloned(),
            tx,
        });
        Step::Wait(rx)
    }

    async fn connect(
        &self,
        protocol: Protocol,
        user: Option<&Arc<Credentials>>,
        slot: Slot,
    ) -> Result<DirectConn, BackendError> {
        let mut hs = Handshake {
            protocol,
            ..self.handshake.clone()
        };
        if let Some(cred) = user {
            hs.username = Some(cred.user.clone());
            hs.password = Some(cred.pass.clone());
            hs.for_client = true;
        }
        let mut rbuf = BytesMut::new();
        // On failure `slot` is dropped, which frees the place for the next waiter.
        let stream = handshake::connect(&self.addr, &hs, self.connect_timeout, &mut rbuf).await?;
        Ok(DirectConn {
            stream,
            rbuf,
            addr: self.addr.clone(),
            protocol,
            db: 0,
            slot,
            node_client_id: None,
            user: user.cloned(),
        })
    }

    /// A place under the cap for a connection that is not a [`DirectConn`]: a client user's
    /// shared connection (`auth = "passthrough"`), so every connection that logs in as a
    /// client's user counts under the one cap. At the cap an idle connection is closed for
    /// it, or it waits in the queue (up to `connect_timeout`) like a checkout. The future
    /// owns what it needs: the connection task awaits it.
    pub(crate) fn place(
        &self,
        user: Arc<Credentials>,
    ) -> impl std::future::Future<Output = Result<Slot, BackendError>> + Send + 'static {
        let pool = DirectPool {
            addr: self.addr.clone(),
            handshake: self.handshake.clone(),
            connect_timeout: self.connect_timeout,
            max: self.max,
            shared: self.shared.clone(),
        };
        async move {
            let deadline = tokio::time::Instant::now() + pool.connect_timeout;
            // The waiter names a user no idle connection has (theirs are never kept idle), so
            // it is always handed a place, never a connection.
            let rx = match pool.take(Protocol::Resp3, Some(&user)) {
                Step::Open(slot) => return Ok(slot),
                Step::Reuse(conn) => return Ok(conn.into_slot()),
                Step::Wait(rx) => rx,
            };
            let mut rx = rx;
            let grant = match tokio::time::timeout_at(deadline, &mut rx).await {
                Ok(Ok(grant)) => grant,
                Ok(Err(_)) => return Err(pool.exhausted()),
                Err(_) => {
                    rx.close();
                    match rx.try_recv() {
                        Ok(grant) => grant,
                        Err(_) => return Err(pool.exhausted()),
                    }
                }
            };
            Ok(match grant {
                Grant::Conn(conn) => conn.into_slot(),
                Grant::Slot(slot) => slot,
            })
        }
    }

    fn exhausted(&self) -> BackendError {
        BackendError::Exhausted {
            addr: self.addr.to_string(),
            max: self.max,
        }
    }

    /// Returns a connection whose state is clean (no transaction, no watch, not blocked, not
    /// subscribed) for reuse: to the first waiter if any, else to the idle list. Anything
    /// else must be dropped instead.
    ///
    /// A connection logged in as a client's own user (`auth = "passthrough"`) is closed
    /// instead: kept idle, it would outlive that user's clients as a node connection in
    /// their name.
    pub(crate) fn checkin(&self, conn: DirectConn) {
        if !conn.rbuf.is_empty() || conn.user.is_some() {
            return;
        }
        let mut conn = conn;
        loop {
            let waiter = {
                let mut st = self.shared.lock();
                match st.waiters.pop_front() {
                    Some(w) => w,
                    None => {
                        st.idle.push(conn);
                        return;
                    }
                }
            };
            let grant = if waiter.protocol == conn.protocol && waiter.user == conn.user {
                Grant::Conn(conn)
            } else {
                Grant::Slot(conn.into_slot())
            };
            match waiter.tx.send(grant) {
                Ok(()) => return,
                Err(Grant::Conn(back)) => conn = back,
                // Dropping the place hands it to the next waiter (outside the lock).
                Err(Grant::Slot(slot)) => {
                    drop(slot);
                    return;
                }
            }
        }
    }

    /// Connections currently open (idle or in use).
    pub(crate) fn open(&self) -> usize {
        self.shared.lock().open
    }
}
