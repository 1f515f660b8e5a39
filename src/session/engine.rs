//! The client's task: one state machine per connection, polled by hand.
//!
//! A connection is in one of two stages. **Pipelined** (and idle) is the common one: requests
//! are read, classified and sent to their nodes, and replies written back in order, all by
//! [`Parts::poll_pipelined`], a plain `poll` function with no future of its own, so a busy
//! client costs no allocation per wake-up and an idle one holds only its session state.
//! A request that needs the queue drained first (a transaction, a blocking command, a
//! subscription, a write held across a failover, a command held by CLIENT PAUSE) switches the
//! connection to **Detour**: a boxed future that owns the connection's parts until it is done,
//! then hands them back to the pipelined stage.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::command::{self, CommandInfo};
use crate::resp::{decode_request, ClientError, Protocol, Request};

use super::{reply_mode, spare, Io, Pending, Session};

/// What a connection owns: its session state, its socket and buffers, and its reply queue.
pub(super) struct Parts {
    pub(super) session: Session,
    pub(super) io: Io,
    /// Reply slots, in request order (empty, and unallocated, while idle).
    pub(super) pending: VecDeque<Pending>,
}

/// A request that cannot go out with the pipeline: everything before it is answered first.
pub(super) enum Detour {
    /// CLIENT PAUSE holds this command: wait for the pause to end, then take it as usual.
    Paused(Request, Option<&'static CommandInfo>),
    /// Taken, but it must wait for the queue to drain.
    After(Held),
}

/// A taken request that runs once everything before it is answered.
pub(super) struct Held {
    req: Request,
    info: Option<&'static CommandInfo>,
    silent: bool,
    /// It needs a dedicated connection (transaction, blocking command, subscription, ...);
    /// otherwise it cannot be routed yet (see [`Session::dispatch`]) and waits until it can.
    exclusive: bool,
}

/// Where the pipelined stage hands the connection on.
enum Step {
    /// The connection ended.
    End,
    /// A request needs the queue drained first.
    Detour(Detour),
    /// Idle long enough: the client goes to the pool's parking lot (see `parking`).
    Park,
}

/// The future of a detour: it gives the parts back, or ends the connection.
type DetourFuture = Pin<Box<dyn Future<Output = Option<Parts>> + Send>>;

// The pipelined stage is where a connection spends its life, so it stays inline (boxing it
// would cost every connection an allocation); a detour boxes its own future.
#[allow(clippy::large_enum_variant)]
enum Stage {
    Pipelined(Parts),
    Detour(DetourFuture),
    Done,
}

/// An accepted client connection; spawn it (it is the client's task) to serve the client
/// until it quits, disconnects, or breaks the protocol.
pub(crate) struct Client {
    stage: Stage,
}

impl Client {
    pub(super) fn from_parts(session: Session, io: Io) -> Client {
        Client {
            stage: Stage::Pipelined(Parts {
                session,
                io,
                pending: VecDeque::new(),
            }),
        }
    }

    /// The client's task.
    pub(crate) fn run(self) -> Client {
        self
    }
}

impl Future for Client {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            match &mut this.stage {
                Stage::Pipelined(parts) => match parts.poll_pipelined(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Step::End) => this.stage = Stage::Done,
                    Poll::Ready(Step::Detour(detour)) => {
                        if let Stage::Pipelined(parts) =
                            std::mem::replace(&mut this.stage, Stage::Done)
                        {
                            this.stage = Stage::Detour(Box::pin(parts.detour(detour)));
                        }
                    }
                    Poll::Ready(Step::Park) => {
                        if let Stage::Pipelined(parts) =
                            std::mem::replace(&mut this.stage, Stage::Done)
                        {
                            let pool = parts.session.pool.clone();
                            if let Some(parts) = pool.registry.parking.park(parts) {
                                this.stage = Stage::Pipelined(parts);
                            }
                        }
                    }
                },
                Stage::Detour(fut) => match fut.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(parts)) => this.stage = Stage::Pipelined(parts),
                    Poll::Ready(None) => this.stage = Stage::Done,
                },
                Stage::Done => return Poll::Ready(()),
            }
        }
    }
}

impl Parts {
    /// Serves pipelined requests until the connection ends, a request needs a detour, the
    /// idle client is asked to park, or nothing can progress (`Pending`, with every source
    /// that could wake us registered: the head of the reply queue, the socket's readability
    /// while we may read, its writability while replies wait to be written).
    fn poll_pipelined(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        let Parts {
            session,
            io,
            pending,
        } = self;
        loop {
            if session.tracking.is_on() {
                // Invalidations go after the replies queued so far.
                session.poll_inbox(pending, cx);
            }
            // Take every complete request we have, up to the in-flight bound (a count, and the
            // bytes the client's unread replies may take: see `output`). A client whose
            // complete requests wait for room is not read (TCP backpressure, bounded memory).
            let (input_exhausted, detour) = session.take_requests(io, pending);
            if let Some(detour) = detour {
                return Poll::Ready(Step::Detour(detour));
            }
            session.collect_ready(pending, io);
            // Write what the client takes now; the rest waits for it to read, while replies
            // keep being collected (a client that does not read must not stall them).
            if let Err(e) = io
                .write_some()
                .and_then(|()| session.check_output_limit(io))
            {
                tracing::debug!(client = %session.entry.addr, error = %e, "client connection ended");
                return Poll::Ready(Step::End);
            }
            if pending.is_empty() && io.out.is_empty() {
                if session.closing || (io.eof && input_exhausted) {
                    return Poll::Ready(Step::End);
                }
                if !input_exhausted {
                    continue;
                }
                // A RESP3 client others redirect their invalidations to gets them while idle.
                if session.proto == Protocol::Resp3 && session.poll_inbox_idle(pending, cx) {
                    continue;
                }
                // Idle: hold no buffers (a partial request keeps its bytes) until the client
                // sends again.
                io.release_idle();
                spare::give_queue(std::mem::take(pending));
                if session.parkable(io) {
                    if session.entry.park.take_request() {
                        return Poll::Ready(Step::Park);
                    }
                    session.entry.park.idle(cx.waker());
                }
                match io.stream.poll_read_ready(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(_)) => return Poll::Ready(Step::End),
                    Poll::Ready(Ok(())) => {
                        session.entry.park.busy();
                        io.wake();
                        *pending = spare::take_queue();
                        io.read_or_eof();
                        continue;
                    }
                }
            }
            match poll_sources(session, io, pending, input_exhausted, cx) {
                None => return Poll::Ready(Step::End),
                Some(false) => return Poll::Pending,
                Some(true) => {}
            }
        }
    }

    /// Runs a detour: answers everything queued, then the request that needed it.
    async fn detour(mut self, detour: Detour) -> Option<Parts> {
        let held = match detour {
            Detour::Paused(req, info) => {
                self.drain().await?;
                let write = self.session.paused_by_write(&req, info);
                self.session.wait_unpaused(write).await;
                match self.session.accept(req, info, &mut self.pending) {
                    None => return Some(self),
                    Some(held) => held,
                }
            }
            Detour::After(held) => held,
        };
        let Held {
            req,
            info,
            silent,
            mut exclusive,
        } = held;
        self.drain().await?;
        let Parts {
            session,
            io,
            pending,
        } = &mut self;
        if session.needs_default_login(&req, info) {
            session.default_login().await;
            exclusive = session.needs_connection_of_its_own(&req, info);
        }
        let done = if exclusive {
            // It may wait long: CLIENT LIST shows it meanwhile.
            session.note_activity(info, io);
            session.run_exclusive(req, info, silent, io).await
        } else {
            session.wait_until_routable(&req, info).await;
            let from = pending.len();
            let _ = session.dispatch(req, info, pending, false);
            if silent {
                reply_mode::silence_from(pending, from);
            }
            Ok(())
        };
        match done {
            Ok(()) => Some(self),
            Err(e) => {
                tracing::debug!(client = %session.entry.addr, error = %e, "client connection ended");
                None
            }
        }
    }

    /// Waits for every queued reply and writes them all; `None` when the connection failed.
    async fn drain(&mut self) -> Option<()> {
        let Parts {
            session,
            io,
            pending,
        } = self;
        match session.drain(pending, io).await {
            Ok(()) => Some(()),
            Err(e) => {
                tracing::debug!(client = %session.entry.addr, error = %e, "client connection ended");
                None
            }
        }
    }
}

/// Polls what the pipelined stage waits on: the reply at the head of the queue, the socket's
/// readability (when `input_exhausted` and we may read) and its writability (when replies are
/// unwritten). Returns whether any of them progressed; `None` ends the connection.
fn poll_sources(
    session: &mut Session,
    io: &mut Io,
    pending: &mut VecDeque<Pending>,
    input_exhausted: bool,
    cx: &mut Context<'_>,
) -> Option<bool> {
    let mut progressed = false;
    if let Some(Pending::Wait(w)) = pending.front_mut() {
        if let Poll::Ready(res) = Pin::new(&mut w.rx).poll(cx) {
            if let Some(Pending::Wait(w)) = pending.pop_front() {
                session.complete(w, res.map_err(|_| ()), pending, io);
            }
            progressed = true;
        }
    }
    if !session.closing && !io.eof && input_exhausted {
        if let Poll::Ready(r) = io.stream.poll_read_ready(cx) {
            if r.is_err() {
                io.eof = true;
            } else {
                io.read_or_eof();
            }
            progressed = true;
        }
    }
    if !io.out.is_empty() {
        match io.stream.poll_write_ready(cx) {
            Poll::Ready(Err(_)) => return None,
            // Written at the top of the loop.
            Poll::Ready(Ok(())) => progressed = true,
            Poll::Pending => {}
        }
    }
    Some(progressed)
}

impl Session {
    /// Decodes and takes complete requests while the in-flight bound allows. Returns whether
    /// the input ran dry (so we may read more), and the request that needs a detour, if any.
    fn take_requests(
        &mut self,
        io: &mut Io,
        pending: &mut VecDeque<Pending>,
    ) -> (bool, Option<Detour>) {
        let mut input_exhausted = false;
        let mut last = None;
        let mut detour = None;
        while !self.closing && pending.len() < self.window(io) {
            // Before AUTH, Redis's small request limits: a large request is refused from its
            // header, not buffered whole only to be answered NOAUTH.
            let limits = if self.authed {
                self.pool.limits
            } else {
                self.pool.limits.unauthenticated()
            };
            let req = match decode_request(&mut io.rbuf, &limits) {
                Ok(Some(req)) => req,
                Ok(None) => {
                    input_exhausted = true;
                    break;
                }
                Err(e) => {
                    self.pool.metrics.protocol_errors.increment(1);
                    pending.push_back(Pending::Ready(ClientError::from(e).to_bytes()));
                    self.closing = true;
                    break;
                }
            };
            let info = command::lookup(&req);
            last = Some(info);
            if self.pool.registry.pause.maybe_active()
                && self
                    .pool
                    .registry
                    .pause
                    .holds(self.paused_by_write(&req, info))
                    .is_some()
            {
                // CLIENT PAUSE: what came before is answered, this one waits.
                detour = Some(Detour::Paused(req, info));
                break;
            }
            if let Some(held) = self.accept(req, info, pending) {
                detour = Some(Detour::After(held));
                break;
            }
        }
        if let Some(last) = last {
            self.note_activity(last, io);
        }
        (input_exhausted, detour)
    }

    /// Takes one request: shows it to monitors, then queues its reply slot (sending it to
    /// its node, or answering it here), or returns it to run after the queue drains.
    pub(super) fn accept(
        &mut self,
        req: Request,
        info: Option<&'static CommandInfo>,
        pending: &mut VecDeque<Pending>,
    ) -> Option<Held> {
        if self.pool.registry.monitors.active() {
            self.feed_monitors(&req, info);
        }
        if self.pool.registry.tracking.watching() {
            self.note_write(&req, info);
        }
        if self.tracking.is_on() {
            self.track_request(&req, info);
        }
        let silent = self.silences(info);
        if self.needs_default_login(&req, info) {
            // Passthrough: the master says whether it may run as `default` (no AUTH).
            return Some(Held {
                req,
                info,
                silent,
                exclusive: false,
            });
        }
        // Pools with users: the logged-in user's rights, checked before anything runs.
        if self.pool.auth.checks_commands() {
            if let Some(reply) = self.users_gate(&req, info) {
                pending.push_back(Pending::Ready(reply));
                if silent {
                    reply_mode::silence_from(pending, pending.len() - 1);
                }
                return None;
            }
        }
        if self.needs_connection_of_its_own(&req, info) {
            // Everything before it must be answered first: it may wait a long time
            // (blocking) or change what later commands see (MULTI, SUBSCRIBE).
            return Some(Held {
                req,
                info,
                silent,
                exclusive: true,
            });
        }
        let from = pending.len();
        if let Some(req) = self.dispatch(req, info, pending, true) {
            return Some(Held {
                req,
                info,
                silent,
                exclusive: false,
            });
        }
        if silent {
            reply_mode::silence_from(pending, from);
        }
        None
    }
}
