//! One client connection: reads requests, answers session commands itself, forwards the rest
//! and writes replies back strictly in request order.
//!
//! Plain commands are pipelined: each is sent to its node at once and a reply slot is queued
//! here; the client's task (`engine`) writes replies as the head of the queue completes.
//! Commands that need a connection of their own (MULTI/WATCH, blocking commands, SUBSCRIBE)
//! first wait for everything queued before them, then run on a dedicated node connection.
//!
//! An idle session holds no buffers: when its queue is empty and its replies are written, its
//! read buffer (unless it holds part of a request), output buffer and reply queue go back to a
//! per-thread spare list (`spare`).

mod auth_delay;
mod blocking;
mod busy;
mod client_cmds;
pub(crate) mod clients;
mod cluster;
mod cluster_tx;
mod dedicated;
mod deny;
mod engine;
mod info;
mod io;
mod latency;
mod local;
mod monitor;
mod output;
pub(crate) mod parking;
mod passthrough;
mod pause;
mod pubsub;
mod reply_mode;
mod retry;
mod scan;
mod shard_pubsub;
mod slowlog;
mod spare;
mod subscribed;
mod tracking;
mod transaction;
mod tx_state;
mod unblock;
pub(crate) mod users;
mod wait;
mod wait_cmd;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::sync::{oneshot, OwnedSemaphorePermit};

use crate::backend::mux::ReplyResult;
use crate::backend::Node;
use crate::backend::Patience;
use crate::command::{self, CommandInfo, Special};
use crate::config::{Consistency, ReadFrom};
use crate::pool::Pool;
use crate::resp::{convert, encode, ClientError, Protocol, Reply, ReplyShape, Request};
use crate::route::RouteError;
use crate::tls::ClientStream;

pub(crate) use self::engine::Client;
pub(crate) use self::io::Io;
use self::tx_state::Tx;

/// Most replies a client may have outstanding before we stop reading its requests (fewer when
/// its replies are large: see `output`).
const MAX_PENDING: usize = 1024;

/// One request in this many has its latency recorded: reading the clock and feeding the
/// histogram for every request was a measurable share of per-request CPU, and a 1-in-8
/// sample describes the distribution just as well at these rates.
const LATENCY_SAMPLE: u32 = 8;

static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);

/// A reply slot, in request order.
enum Pending {
    /// Already encoded for the client.
    Ready(Bytes),
    /// Waiting for a node.
    Wait(Waiting),
}

/// A forwarded request waiting for its reply.
struct Waiting {
    rx: oneshot::Receiver<ReplyResult>,
    /// The request's bytes, kept for reads only (the ones that may be retried).
    raw: Bytes,
    node: Arc<Node>,
    read: bool,
    /// How to turn the node's RESP3 reply into RESP2 (RESP2 clients only).
    nil_array: bool,
    shape: ReplyShape,
    retried: bool,
    /// Database and protocol as they were when the request was sent: a later SELECT or HELLO
    /// in the same pipeline must not change how this one is retried or encoded.
    db: u16,
    proto: Protocol,
    /// Set on sampled requests only (see [`LATENCY_SAMPLE`]).
    started: Option<Instant>,
    /// Cluster pools: the slot of the request's keys (None: keyless), to re-route it after a
    /// redirect or a connection error.
    key_slot: Option<u16>,
    /// The client turned replies off (CLIENT REPLY): drop this one once it is complete.
    silent: bool,
    /// When it was taken, for the slow log (see `slowlog`; 0: not timed).
    taken: u64,
    /// A script: counted in flight until this is dropped (see `busy`).
    script: Option<busy::InFlight>,
    /// Its reply passed the eviction fence already (see `tracking::fence`).
    fenced: bool,
}

impl Waiting {
    /// How long its reply may take (a script's, as long as the script runs).
    fn patience(&self) -> Patience {
        if self.script.is_some() {
            Patience::Script
        } else {
            Patience::Bounded
        }
    }
}

/// How long the reply of a command of `info` may take, decided from the command table.
fn patience(info: Option<&CommandInfo>) -> Patience {
    if Special::of(info) == Special::Script {
        Patience::Script
    } else {
        Patience::Bounded
    }
}

/// Where a single-master pool's request goes.
enum Routed {
    To(Arc<Node>),
    /// Not now: drain, wait until routable, dispatch again.
    Hold,
    Failed(RouteError),
}

/// Per-client state.
pub(crate) struct Session {
    pool: Arc<Pool>,
    id: u64,
    proto: Protocol,
    db: u16,
    authed: bool,
    /// This client in the pool's registry (its name, and what CLIENT LIST shows of it).
    entry: Arc<clients::ClientEntry>,
    /// The transaction's state (its parts are boxed: rarely present, and inline they would
    /// grow every session by a whole connection).
    tx: Tx,
    closing: bool,
    /// Who the client logged in as, in pools with users or passthrough (boxed: most
    /// sessions have none).
    login: Option<Box<Login>>,
    /// This client's place under `max_clients`, released when the session ends.
    _permit: OwnedSemaphorePermit,
    /// Counts forwarded requests, for latency sampling.
    forwarded: u32,
    /// Writes sent and not yet answered, and the node they went to (by address of its
    /// `Node`; in cluster pools, the slot map's `owners` fingerprint they were routed by):
    /// the write barrier across a master or slot-owner change.
    inflight_writes: u32,
    write_node: usize,
    /// Cluster pools: the slot of this client's last keyed write (WAIT counts that shard's
    /// replicas).
    last_write_slot: Option<u16>,
    /// When this client's last write was acknowledged (read-your-writes pools only).
    last_write_ack: Option<Instant>,
    /// CLIENT REPLY ON|OFF|SKIP.
    reply_mode: reply_mode::ReplyMode,
    /// Recent reply size (a decaying maximum), which bounds how many requests may be in
    /// flight (see `output`).
    reply_hint: u32,
    /// CLIENT TRACKING state, while on (see `tracking`).
    tracking: tracking::Local,
}

/// The user a client logged in as (`auth = "users"`).
enum Login {
    User(Arc<users::User>),
    /// `auth = "passthrough"`: the client's own Redis user's connections.
    Link(Arc<crate::backend::per_user::UserLink>),
    /// `auth = "passthrough"`: the client has not authenticated and the master does not let
    /// `default` in without a password (see `Session::default_login`).
    DefaultRefused,
}

impl Client {
    /// A session for an accepted client; `permit` is its place under `max_clients`.
    pub(crate) fn new(
        pool: Arc<Pool>,
        stream: impl Into<ClientStream>,
        peer: SocketAddr,
        permit: OwnedSemaphorePermit,
    ) -> Client {
        let stream = stream.into();
        let _ = stream.set_nodelay(true);
        pool.metrics.clients.increment(1.0);
        let io = Io::new(stream);
        parking::ParkingLot::start(&pool);
        let id = NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed);
        let entry = pool
            .registry
            .add(id, peer, std::os::fd::AsRawFd::as_raw_fd(&io.stream));
        let session = Session {
            entry,
            forwarded: 0,
            inflight_writes: 0,
            write_node: 0,
            last_write_slot: None,
            last_write_ack: None,
            reply_mode: Default::default(),
            tracking: Default::default(),
            reply_hint: output::first_reply_hint(pool.cfg.client_output_soft_limit),
            authed: pool.open_access(),
            login: None,
            pool,
            id,
            proto: Protocol::Resp2,
            db: 0,
            tx: Tx::None,
            closing: false,
            _permit: permit,
        };
        Client::from_parts(session, io)
    }
}

impl Session {
    /// Whether this idle client may be parked: no transaction under way, no partial request
    /// buffered, plain TCP (a TLS session's state lives in its stream), not ending, and no
    /// invalidations to wait for (it tracks, or others redirect to it: see `tracking`).
    fn parkable(&self, io: &Io) -> bool {
        matches!(self.tx, Tx::None)
            && io.rbuf.is_empty()
            && matches!(io.stream, ClientStream::Tcp(_))
            && !self.closing
            && !self.tracking.is_on()
            && self.entry.inbox_if_any().is_none()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.pool.metrics.clients.decrement(1.0);
        self.tracking_off();
        // Before the socket closes (`Client` drops its session first): see `clients`.
        self.pool.registry.remove(self.id);
    }
}

impl Session {
    /// Moves finished replies at the head of the queue into the output buffer, in order.
    fn collect_ready(&mut self, pending: &mut VecDeque<Pending>, io: &mut Io) {
        loop {
            match pending.front_mut() {
                Some(Pending::Ready(_)) => {
                    if let Some(Pending::Ready(b)) = pending.pop_front() {
                        io.out.extend_from_slice(&b);
                    }
                }
                Some(Pending::Wait(w)) => {
                    let res = match w.rx.try_recv() {
                        Ok(r) => Ok(r),
                        Err(oneshot::error::TryRecvError::Empty) => return,
                        Err(oneshot::error::TryRecvError::Closed) => Err(()),
                    };
                    if let Some(Pending::Wait(w)) = pending.pop_front() {
                        self.complete(w, res, pending, io);
                    }
                }
                None => return,
            }
        }
    }

    /// Waits for every queued reply and writes them all.
    async fn drain(&mut self, pending: &mut VecDeque<Pending>, io: &mut Io) -> std::io::Result<()> {
        while let Some(p) = pending.pop_front() {
            match p {
                Pending::Ready(b) => io.out.extend_from_slice(&b),
                Pending::Wait(mut w) => {
                    let res = (&mut w.rx).await.map_err(|_| ());
                    self.complete(w, res, pending, io);
                    io.write_some()?;
                    self.check_output_limit(io)?;
                }
            }
        }
        io.flush().await
    }

    /// Counts a command the proxy answered itself (taken at `taken`) in its metric, the slow
    /// log and LATENCY HISTOGRAM, as Redis counts the commands it runs.
    fn answered_locally(&self, taken: u64, req: &Request, info: Option<&CommandInfo>) {
        self.pool.metrics.local.increment(1);
        let micros = self.pool.registry.slowlog.finish(taken, req.raw(), self);
        if let Some(info) = info {
            self.pool.registry.latency.record(info.name, micros);
        }
    }

    /// Sends a plain command to its node (or answers it here) and queues its reply slot.
    /// Returns the request back (`Some`) when it must wait: a write while this client still
    /// has writes in flight to a different (former) master, a write with no confirmed
    /// master in a pool that follows failovers, or a read with no replica to go to under
    /// `read_from = "replica"`. The caller drains, waits (see
    /// [`Session::wait_until_routable`]), and dispatches it again with `may_hold = false`.
    fn dispatch(
        &mut self,
        req: Request,
        info: Option<&'static CommandInfo>,
        pending: &mut VecDeque<Pending>,
        may_hold: bool,
    ) -> Option<Request> {
        let taken = self.pool.registry.slowlog.start();
        if let Some(reply) = self.local(&req, info) {
            pending.push_back(Pending::Ready(reply));
            self.answered_locally(taken, &req, info);
            return None;
        }
        let info_extra = info::extra(&req, info);
        if info_extra == Some(info::Extra::Only) {
            self.pool.metrics.local.increment(1);
            let mut out = BytesMut::new();
            let text = info::sections(&self.pool);
            info::encode_text(text.as_bytes(), self.proto, &mut out);
            pending.push_back(Pending::Ready(out.freeze()));
            return None;
        }
        if self.pool.routing.by_slot() {
            return self.dispatch_cluster(req, info, pending, may_hold);
        }
        let read = command::is_read(&req, info);
        if read && self.pool.cfg.read_from != ReadFrom::Master {
            if let Some(at) = scan::cursor_arg(info) {
                return self.dispatch_scan(req, info, (at, scan::Scope::Pool), pending, may_hold);
            }
        }
        let node = match self.route_primary(read, may_hold) {
            Routed::To(node) => node,
            Routed::Hold => return Some(req),
            Routed::Failed(e) => {
                self.pool.metrics.errors.increment(1);
                pending.push_back(Pending::Ready(ClientError::from(e).to_bytes()));
                return None;
            }
        };
        if !read {
            // A client's writes never overlap across two masters: ones still in flight to a
            // former master (which may come back READONLY and be retried) finish first, so
            // writes reach the new master in the order the client sent them.
            let here = Arc::as_ptr(&node) as usize;
            if may_hold && self.inflight_writes > 0 && self.write_node != here {
                return Some(req);
            }
            self.inflight_writes += 1;
            self.write_node = here;
        }
        self.forward(req, info, node, read, info_extra, pending);
        None
    }

    /// Where a request of a single-master pool goes (a read: the read pool; a write: the
    /// master), or why it waits or fails.
    fn route_primary(&self, read: bool, may_hold: bool) -> Routed {
        let topo = self.pool.topology.load();
        let routed = if read {
            self.route_read(&topo, None)
        } else {
            self.pool.router.master(&topo)
        };
        drop(topo);
        let follows_failovers = self.pool.routing.follows_failovers();
        match routed {
            // A master that cannot be reached is most likely being failed over: hold the
            // write (within `master_wait`) rather than fail it at once.
            Ok(node) if may_hold && !read && follows_failovers && !node.is_connected() => {
                Routed::Hold
            }
            Ok(node) => Routed::To(node),
            // No confirmed master (a failover, or the first probe round not done yet): writes,
            // and reads that would go to the master, wait for one.
            Err(RouteError::NoMaster(_)) if may_hold && follows_failovers => Routed::Hold,
            // No replica in the read pool (a failover, a resync, the first probe round not
            // done yet): wait for one rather than fail the read at once.
            Err(RouteError::NoReplica(_)) if may_hold && read => Routed::Hold,
            Err(e) => Routed::Failed(e),
        }
    }

    /// Sends a routed request of a single-master pool to `node` and queues its reply slot.
    /// `proxy_info`: an INFO whose reply the proxy amends (see `info`).
    fn forward(
        &mut self,
        req: Request,
        info: Option<&'static CommandInfo>,
        node: Arc<Node>,
        read: bool,
        proxy_info: Option<info::Extra>,
        pending: &mut VecDeque<Pending>,
    ) {
        if read {
            node.metrics.reads.increment(1);
        } else {
            node.metrics.writes.increment(1);
        }
        let resp2 = self.proto == Protocol::Resp2;
        let nil_array = resp2 && command::nil_is_array(&req, info);
        let shape = if proxy_info == Some(info::Extra::Append) {
            ReplyShape::ProxyInfo
        } else if proxy_info.is_some() {
            ReplyShape::AmendedInfo
        } else if resp2 {
            command::reply_shape(&req, info)
        } else {
            ReplyShape::Plain
        };
        let special = Special::of(info);
        if matches!(special, Special::ScriptLoad | Special::ScriptFlush) {
            self.copy_to_replicas(req.raw());
        }
        let script = (special == Special::Script).then(|| self.pool.registry.scripts.start());
        self.forwarded = self.forwarded.wrapping_add(1);
        let started = self
            .forwarded
            .is_multiple_of(LATENCY_SAMPLE)
            .then(Instant::now);
        // Only what may be sent again keeps its bytes: reads, and writes in pools that follow
        // failovers (a write refused with READONLY did not run).
        let taken = self.pool.registry.slowlog.start();
        let keep = if read || self.pool.routing.follows_failovers() || taken != 0 {
            req.raw().clone()
        } else {
            Bytes::new()
        };
        let rx = self.send_to(&node, req.into_raw(), self.db, patience(info));
        pending.push_back(Pending::Wait(Waiting {
            rx,
            raw: keep,
            node,
            read,
            nil_array,
            shape,
            retried: false,
            started,
            db: self.db,
            proto: self.proto,
            key_slot: None,
            silent: false,
            taken,
            script,
            fenced: false,
        }));
    }

    /// Which shared connection of each node this client uses: always the same one, so its
    /// requests to a node run in the order it sent them. Client ids are sequential, so this
    /// also spreads clients over the connections.
    fn slot(&self) -> usize {
        self.id as usize
    }

    /// Sends a script-cache command to every replica too, so EVALSHA_RO finds the script there
    /// (Redis 7 does not replicate SCRIPT LOAD). Replies are ignored: the master's is the answer.
    fn copy_to_replicas(&self, raw: &Bytes) {
        let topo = self.pool.topology.load();
        for replica in &topo.replicas {
            let (node, raw, db, slot) = (replica.node.clone(), raw.clone(), self.db, self.slot());
            let link = self.link().cloned();
            tokio::spawn(async move {
                let sent = crate::backend::per_user::send(
                    link.as_deref(),
                    &node,
                    raw,
                    db,
                    slot,
                    Patience::Bounded,
                );
                let _ = sent.await;
            });
        }
    }

    /// True for requests that must run on a dedicated connection after all earlier replies.
    fn needs_connection_of_its_own(&self, req: &Request, info: Option<&CommandInfo>) -> bool {
        if self.tx.is_open()
            || self.authenticates_at_master(req, info)
            || self.needs_master_permission(info)
            || self.is_held_login(req, info)
            || self.names_a_user_only_the_master_knows(req, info)
        {
            return true;
        }
        if !self.authed {
            return false;
        }
        let special = Special::of(info);
        matches!(
            special,
            Special::Multi
                | Special::Watch
                | Special::Monitor
                | Special::Wait
                // It waits for the node sources to be up.
                | Special::ClientTracking
        ) || special.subscribes()
            || special.changes_connection_for_good()
            // A busy script holds the shared connection its EVAL went over: the kill must not
            // queue behind it (it runs alone on a dedicated connection, like a blocking command).
            || matches!(special, Special::ClientUnblock | Special::ScriptKill)
            // The node's own answer (PONG or BUSY) while a script may be running.
            || (special == Special::Ping && self.pool.registry.scripts.any())
            // FUNCTION STATS, which Redis answers during a busy script: not behind the
            // script on a shared connection (a passthrough pool's unauthenticated clients
            // all share the default user's).
            || (special == Special::None
                && info.is_some_and(|i| i.has(command::flags::ALLOW_BUSY))
                && self.pool.registry.scripts.any())
            || special == Special::LatencyHistogram
            || command::is_blocking(req, info)
    }

    /// Runs a request that needs a dedicated connection (the queue is empty here).
    async fn run_exclusive(
        &mut self,
        req: Request,
        info: Option<&'static CommandInfo>,
        silent: bool,
        io: &mut Io,
    ) -> std::io::Result<()> {
        if let Some(reply) = self.answer_before_routing(&req, info).await {
            if !silent {
                io.out.extend_from_slice(&reply);
            }
            return io.flush().await;
        }
        // Pub/sub confirmations and messages reach a client with replies off (as on Redis);
        // the one-reply paths are silenced by dropping what they wrote.
        let mark = io.out.len();
        if self.detour(req, info, io).await? == Wrote::Reply && silent {
            io.out.truncate(mark);
        }
        // Transactions, blocking commands and tunnels may all have written on the master.
        if self.pool.cfg.consistency == Consistency::ReadYourWrites {
            self.last_write_ack = Some(Instant::now());
        }
        io.flush().await
    }

    /// The answer to a login the proxy checks itself (after the address's turn under
    /// `auth_failure_delay`), or to a request a passthrough pool answers here.
    async fn answer_before_routing(
        &mut self,
        req: &Request,
        info: Option<&'static CommandInfo>,
    ) -> Option<Bytes> {
        if !self.tx.is_open() && passthrough::is_login(req, info) {
            self.pool.auth.hold(self.entry.addr).await;
            if !self.authenticates_at_master(req, info) {
                return Some(self.local(req, info).unwrap_or_default());
            }
        }
        if self.pool.auth.mode == crate::config::ClientAuth::Passthrough {
            return self.passthrough_exclusive(req, info).await;
        }
        None
    }

    /// Runs an exclusive request on its own path (transaction, subscription, MONITOR,
    /// blocking command, ...); says what it wrote.
    async fn detour(
        &mut self,
        req: Request,
        info: Option<&'static CommandInfo>,
        io: &mut Io,
    ) -> std::io::Result<Wrote> {
        let special = Special::of(info);
        if self.tx.is_open() || matches!(special, Special::Multi | Special::Watch) {
            self.pinned_request(req, info, io).await;
            let in_multi = self.tx.pinned().is_some_and(|p| p.in_multi);
            self.set_client_flag(in_multi.then_some('x'));
            return Ok(Wrote::Reply);
        }
        if special == Special::Ssubscribe && self.pool.routing.by_slot() {
            // Shard channels live on their slot's master: one link per shard (see
            // `shard_pubsub`), not one tunnel.
            self.set_client_flag(Some('P'));
            let done = self.shard_pubsub(None, req, io).await;
            self.set_client_flag(None);
            return done.map(|_| Wrote::Stream);
        }
        if special.subscribes() {
            self.set_client_flag(Some('P'));
            let done = self.tunnel(req, io, true).await;
            self.set_client_flag(None);
            return done.map(|_| Wrote::Stream);
        }
        let reply = match special {
            Special::Monitor => return self.monitor(io).await.map(|_| Wrote::Stream),
            Special::Wait => self.wait_replicas(&req, io).await,
            Special::ClientTracking => self.client_tracking(&req).await,
            Special::ClientUnblock => self.client_unblock(&req).await,
            Special::LatencyHistogram => {
                self.latency_histogram(&req, io).await;
                return Ok(Wrote::Reply);
            }
            Special::Ping => {
                self.ping_master(&req, io).await;
                return Ok(Wrote::Reply);
            }
            _ if special.changes_connection_for_good() => {
                // Reached only when allowed (a denied one is answered by `local`).
                match self.local(&req, info) {
                    Some(reply) => io.out.extend_from_slice(&reply),
                    None => self.tunnel(req, io, false).await?,
                }
                return Ok(Wrote::Stream);
            }
            _ => {
                self.set_client_flag(Some('b'));
                self.blocking(req, info, io).await;
                self.set_client_flag(None);
                return Ok(Wrote::Reply);
            }
        };
        io.out.extend_from_slice(&reply);
        Ok(Wrote::Reply)
    }
}

/// What an exclusive request's path wrote to the client.
#[derive(Debug, PartialEq, Eq)]
enum Wrote {
    /// One reply: dropped when the client turned replies off.
    Reply,
    /// A stream (pub/sub, MONITOR, a tunnel): kept whatever the reply mode.
    Stream,
}

/// Whole seconds since the process started (a compact clock for per-client ages).
fn seconds_since_start() -> u32 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs() as u32
}

/// Writes a node's (RESP3) reply in the protocol the client had when it sent the request.
fn write_reply(reply: &Reply, w: &Waiting, out: &mut BytesMut) {
    // A reshaped reply may hold no RESP3-only type at all (HRANDFIELD ... WITHVALUES).
    if w.proto == Protocol::Resp2 && (reply.resp3 || w.shape != ReplyShape::Plain) {
        convert::to_resp2_shaped(&reply.raw, w.shape, w.nil_array, out);
    } else {
        out.extend_from_slice(&reply.raw);
    }
}

/// An encoded `-text\r\n`.
fn error_bytes(text: &str) -> Bytes {
    let mut b = BytesMut::new();
    encode::error(&mut b, text);
    b.freeze()
}

#[cfg(test)]
mod size_tests {
    #[tokio::test]
    async fn idle_session_state_stays_small() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (stream, peer) = listener.accept().await.expect("accept");
        let cfg = crate::config::Config::parse(
            "[[pools]]\nname = \"t\"\nlisten = \"127.0.0.1:0\"\nmaster = \"127.0.0.1:1\"\n",
            std::path::Path::new("t.toml"),
        )
        .expect("config");
        let pool = crate::pool::Pool::start(
            cfg.pools[0].clone(),
            &Default::default(),
            tokio_util::sync::CancellationToken::new(),
        );
        let permit = pool.clients.clone().try_acquire_owned().expect("permit");
        let fut = super::Client::new(pool, stream, peer, permit).run();
        let size = std::mem::size_of_val(&fut);
        eprintln!(
            "session future: {size} bytes, client {} session {} io {}",
            std::mem::size_of::<super::Client>(),
            std::mem::size_of::<super::Session>(),
            std::mem::size_of::<super::Io>()
        );
        assert!(size <= 320, "session future grew to {size} bytes");
        // What a parked idle client keeps: its session (boxed in the lot) and registry entry.
        let session = std::mem::size_of::<super::Session>();
        let entry = std::mem::size_of::<super::clients::ClientEntry>();
        eprintln!("parked: session {session} bytes, registry entry {entry} bytes");
        assert!(session <= 112, "the session grew to {session} bytes");
        assert!(entry <= 224, "the registry entry grew to {entry} bytes");
    }
}
