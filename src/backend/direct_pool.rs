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
//!
//! Who may reuse an idle connection is its [`Owner`]'s login: the proxy's connections serve
//! any client; a connection logged in as a client's own user (`auth = "passthrough"`) serves
//! only the clients of that user's [`UserLink`] (the same name and password, accepted by the
//! master), is kept idle only while that link lives and is closed with it (see
//! [`IdleRef`]); a connection that checks a client's password is never reused, so an idle
//! connection never stands in for the master's check.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::oneshot;

use super::direct::DirectConn;
use super::handshake::{self, Handshake};
use super::per_user::{Credentials, UserLink};
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

/// Whose login a dedicated connection carries, which decides who may reuse it.
#[derive(Clone)]
pub(crate) enum Owner {
    /// The proxy's own (the pool's backend credentials): any client.
    Proxy,
    /// A client user's (`auth = "passthrough"`): the clients of that user's link only.
    User(Weak<UserLink>),
    /// A client's password check (the handshake is the check), or a place for a user's
    /// shared connection: never reused, never kept idle.
    Once,
}

impl Owner {
    /// True when a connection of `self` may serve a checkout for `want`.
    fn serves(&self, want: &Owner) -> bool {
        match (self, want) {
            (Owner::Proxy, Owner::Proxy) => true,
            // The allocation stays while a `Weak` points to it: equal pointers are one link.
            (Owner::User(a), Owner::User(b)) => Weak::ptr_eq(a, b) && a.strong_count() > 0,
            _ => false,
        }
    }

    /// True for the connections of `link`.
    fn is(&self, link: *const UserLink) -> bool {
        matches!(self, Owner::User(w) if std::ptr::eq(w.as_ptr(), link))
    }
}

struct Waiter {
    protocol: Protocol,
    /// Whose idle connection it may be handed (`Owner::Once`: only a place).
    owner: Owner,
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
    /// (`auth = "passthrough"`: `link`'s credentials; `None`: the proxy's). Idle connections
    /// are reused only by the clients of the same link; every user's count under the one cap.
    pub(crate) async fn checkout_as(
        &self,
        protocol: Protocol,
        link: Option<&Arc<UserLink>>,
    ) -> Result<DirectConn, BackendError> {
        let owner = link.map_or(Owner::Proxy, |l| Owner::User(Arc::downgrade(l)));
        self.checkout_for(protocol, owner, link.map(|l| &l.cred))
            .await
    }

    /// A new connection that logs in as `cred`, its handshake being the master's check of a
    /// client's password: never an idle connection (one that logged in earlier says nothing
    /// of the password now: Redis keeps connections logged in across ACL SETUSER resetpass),
    /// and never kept idle afterwards.
    pub(crate) async fn checkout_check(
        &self,
        protocol: Protocol,
        cred: &Arc<Credentials>,
    ) -> Result<DirectConn, BackendError> {
        self.checkout_for(protocol, Owner::Once, Some(cred)).await
    }

    async fn checkout_for(
        &self,
        protocol: Protocol,
        owner: Owner,
        cred: Option<&Arc<Credentials>>,
    ) -> Result<DirectConn, BackendError> {
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        loop {
            let grant = match self.take(protocol, &owner) {
                Step::Reuse(mut conn) => {
                    // A connection the node closed while idle (CLIENT KILL, ACL DELUSER of
                    // its user, a timeout) is not handed out.
                    if !conn.is_closed() {
                        return Ok(conn);
                    }
                    // Its place goes to a waiter or back to the pool; look again.
                    drop(conn);
                    continue;
                }
                Step::Open(slot) => return self.connect(protocol, owner, cred, slot).await,
                Step::Wait(rx) => match self.wait(rx, deadline).await {
                    Some(grant) => grant,
                    None => return Err(self.exhausted()),
                },
            };
            return match grant {
                Grant::Conn(mut conn) => match conn.is_closed() {
                    false => Ok(conn),
                    true => self.connect(protocol, owner, cred, conn.into_slot()).await,
                },
                Grant::Slot(slot) => self.connect(protocol, owner, cred, slot).await,
            };
        }
    }

    /// Waits in the queue until `deadline`; `None`: nothing was granted.
    async fn wait(
        &self,
        mut rx: oneshot::Receiver<Grant>,
        deadline: tokio::time::Instant,
    ) -> Option<Grant> {
        match tokio::time::timeout_at(deadline, &mut rx).await {
            Ok(Ok(grant)) => Some(grant),
            Ok(Err(_)) => None,
            Err(_) => {
                // A grant sent just as the wait ended is still ours.
                rx.close();
                rx.try_recv().ok()
            }
        }
    }

    /// Under the lock: an idle connection `owner` may reuse in `protocol`, a free place
    /// (possibly taken from an idle connection nobody here may reuse, which is closed), or
    /// a place in the queue.
    fn take(&self, protocol: Protocol, owner: &Owner) -> Step {
        let mut st = self.shared.lock();
        if let Some(i) = st
            .idle
            .iter()
            .rposition(|c| c.protocol == protocol && c.owner.serves(owner))
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
            owner: owner.clone(),
            tx,
        });
        Step::Wait(rx)
    }

    async fn connect(
        &self,
        protocol: Protocol,
        owner: Owner,
        cred: Option<&Arc<Credentials>>,
        slot: Slot,
    ) -> Result<DirectConn, BackendError> {
        let mut hs = Handshake {
            protocol,
            ..self.handshake.clone()
        };
        if let Some(cred) = cred {
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
            owner,
            idle_since: Instant::now(),
        })
    }

    /// A place under the cap for a connection that is not a [`DirectConn`]: a client user's
    /// shared connection (`auth = "passthrough"`), so every connection that logs in as a
    /// client's user counts under the one cap. At the cap an idle connection is closed for
    /// it, or it waits in the queue (up to `connect_timeout`) like a checkout. The future
    /// owns what it needs: the connection task awaits it.
    pub(crate) fn place(
        &self,
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
            // `Once` is served by no idle connection: the pool hands a place, never a
            // connection.
            let grant = match pool.take(Protocol::Resp3, &Owner::Once) {
                Step::Open(slot) => return Ok(slot),
                Step::Reuse(conn) => return Ok(conn.into_slot()),
                Step::Wait(rx) => pool.wait(rx, deadline).await,
            };
            match grant {
                Some(Grant::Conn(conn)) => Ok(conn.into_slot()),
                Some(Grant::Slot(slot)) => Ok(slot),
                None => Err(pool.exhausted()),
            }
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
    /// A connection logged in as a client's own user (`auth = "passthrough"`) is kept only
    /// while that user's link lives (some client is logged in as it): the link then knows
    /// this pool, to close its idle connections here when it goes (see [`IdleRef`]).
    pub(crate) fn checkin(&self, mut conn: DirectConn) {
        if !conn.rbuf.is_empty() {
            return;
        }
        let link = match &conn.owner {
            Owner::Proxy => None,
            Owner::User(w) => match w.upgrade() {
                Some(link) => Some(link),
                None => return,
            },
            Owner::Once => return,
        };
        if let Some(link) = &link {
            link.keeps_idle_in(IdleRef(Arc::downgrade(&self.shared)));
        }
        conn.idle_since = Instant::now();
        self.give_back(conn);
        // Held until the connection is in place: if this was the link's last holder, its
        // drop (which closes its idle connections, under the pool's lock) comes after.
        drop(link);
    }

    /// To the first waiter that can use it, else to the idle list.
    fn give_back(&self, mut conn: DirectConn) {
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
            let grant = if waiter.protocol == conn.protocol && conn.owner.serves(&waiter.owner) {
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

/// A node pool's idle list, as a client user's [`UserLink`] remembers it: where that user's
/// dedicated connections may sit idle, to close them when the link goes (its last client
/// logged out or left) or when they have been idle a while, as its shared connections are.
#[derive(Clone)]
pub(crate) struct IdleRef(Weak<Shared>);

impl IdleRef {
    /// True for the same pool.
    pub(crate) fn same(&self, other: &IdleRef) -> bool {
        Weak::ptr_eq(&self.0, &other.0)
    }

    /// False once the pool is gone (its node left the topology).
    pub(crate) fn is_alive(&self) -> bool {
        self.0.strong_count() > 0
    }

    /// Closes `link`'s idle connections in this pool that have been idle `min_idle` or
    /// longer.
    pub(crate) fn close_idle(&self, link: *const UserLink, min_idle: Duration) {
        let Some(shared) = self.0.upgrade() else {
            return;
        };
        let closing: Vec<DirectConn> = {
            let mut st = shared.lock();
            let (closing, kept) = std::mem::take(&mut st.idle)
                .into_iter()
                .partition(|c| c.owner.is(link) && c.idle_since.elapsed() >= min_idle);
            st.idle = kept;
            closing
        };
        // Dropped outside the lock: each frees its place, which takes the lock.
        drop(closing);
    }
}
