//! One client connection: read what the socket has, decode every complete request, run them
//! all under one lock acquisition, write every reply with one flush.
//!
//! Batching is where the throughput comes from: with `redis-benchmark -P 16` one wake-up
//! carries 16 requests, and they cost one lock, one clock read and one write syscall.
//! A blocked command (BLPOP, ...) stops the batch; the requests behind it wait, as in Redis.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::tls::ClientStream;
use bytes::BytesMut;
use tokio::sync::Notify;

use super::client::ClientState;
use super::clients::ClientInfo;
use super::cmd::{self, Ctx, Flags};
use super::mailbox::Mailbox;
use super::output_limit::Class;
use super::reply::Reply;
use super::shared::Shared;
use super::store::Store;
use crate::resp::{decode_request, Limits, ProtocolError, Request};

mod busy;
mod parked;

use parked::{nothing_to_serve, park, postpone, resume, Parked};

/// Stop running a batch once this many reply bytes are waiting, release the lock and write
/// them: bounds both the memory a pipelining client can make us hold and how long one
/// client keeps the lock.
const OUT_HIGH_WATER: usize = 1 << 20;
/// Buffers grown past this are dropped when they empty, so one large request or reply does
/// not pin memory for the rest of the connection's life.
const KEEP_CAPACITY: usize = 64 * 1024;
/// Bytes reserved per read.
const READ_CHUNK: usize = 16 * 1024;

/// Encodes a command's reply as CLIENT REPLY allows.
fn encode_reply(
    client: &mut ClientState,
    proto: crate::resp::Protocol,
    req: &Request,
    reply: Reply,
    out: &mut BytesMut,
) {
    use super::client::ReplyMode;
    match client.reply_mode {
        ReplyMode::On => reply.encode(proto, out),
        // Subscribe confirmations are pushes: Redis sends them anyway.
        _ if busy::is_subscription(req) => reply.encode(proto, out),
        ReplyMode::Off => {}
        // CLIENT REPLY SKIP answers nothing itself, then drops one more.
        ReplyMode::SkipNext => client.reply_mode = ReplyMode::Skipping,
        ReplyMode::Skipping => client.reply_mode = ReplyMode::On,
    }
}

struct Conn {
    shared: Arc<Shared>,
    stream: ClientStream,
    rbuf: BytesMut,
    out: BytesMut,
    /// Decoded requests not yet run (the head is the blocked one while parked).
    queue: VecDeque<Request>,
    client: ClientState,
    /// Woken by writers of the keys this client is blocked on.
    notify: Arc<Notify>,
    parked: Option<Parked>,
    eof: bool,
    /// A protocol error ends the connection after the requests decoded before it ran.
    fatal: Option<ProtocolError>,
    /// Pub/sub messages for this client, already encoded, and the signal to close (CLIENT
    /// KILL, output limit); shared with the registry (see `ClientInfo::send`).
    mailbox: Arc<Mailbox>,
    /// The client is to be closed: close without running or sending anything more.
    killed: bool,
    /// Bytes read and written since last added to the INFO counters (under the next lock).
    net_in: u64,
    net_out: u64,
    /// The AOF buffer's sequence at the end of the last batch: its replies go out only once
    /// the file holds that much (`None` without an AOF).
    aof_seq: Option<u64>,
    /// The request at the head of the queue is a script, to run off the event loop.
    script_next: bool,
    /// Registration waiting for a running script to finish (see `serve`).
    deferred: Option<ClientInfo>,
    /// The last batch's inline script left the event loop (see `busy::Inline::LeftLoop`):
    /// its claim on the store, released once the batch has released the store.
    left_loop: Option<super::script::busy::Claim>,
}

/// Adds a client to the registry; returns whether it is authenticated already.
fn register(mut store: super::store::Locked<'_>, info: ClientInfo) -> bool {
    store.clients.add(info);
    store.stats.total_connections_received += 1;
    store.settings.requirepass().is_none()
}

/// The registry's entry of a client that has just connected.
fn client_info(id: u64, stream: &ClientStream, mailbox: Arc<Mailbox>) -> ClientInfo {
    let now = super::clock::unix_ms();
    let unspecified = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    ClientInfo {
        id,
        addr: stream.peer_addr().unwrap_or(unspecified),
        laddr: stream.local_addr().unwrap_or(unspecified),
        created: now,
        last_active: now,
        name: None,
        db: 0,
        proto: Default::default(),
        sub: 0,
        psub: 0,
        ssub: 0,
        multi: -1,
        last_cmd: "NULL",
        role_flag: None,
        monitor: false,
        tracking: false,
        parked: None,
        unblock: None,
        mailbox,
    }
}

/// Serves one accepted client until it disconnects, QUITs or sends a malformed request.
pub(crate) async fn serve(shared: Arc<Shared>, stream: ClientStream) {
    let _ = stream.set_nodelay(true);
    let serving = shared.serve_guard();
    let mailbox = Arc::new(Mailbox::default());
    let id = shared.next_client_id();
    let info = client_info(id, &stream, mailbox.clone());
    // While a script holds the store, registering would block the event loop: the client
    // is registered once the script is done (it gets BUSY replies meanwhile).
    let (authed, deferred) = match shared.lock_unless_script() {
        Some(store) => (register(store, info), None),
        None => (false, Some(info)),
    };
    let client = ClientState {
        id,
        authed,
        last_cmd: "NULL",
        ..ClientState::default()
    };
    let mut conn = Conn {
        shared,
        stream,
        rbuf: BytesMut::new(),
        out: BytesMut::new(),
        queue: VecDeque::new(),
        client,
        notify: Arc::new(Notify::new()),
        parked: None,
        eof: false,
        fatal: None,
        mailbox,
        killed: false,
        net_in: 0,
        net_out: 0,
        aof_seq: None,
        script_next: false,
        deferred,
        left_loop: None,
    };
    // I/O errors just end the connection, as a reset would in Redis. SHUTDOWN closes every
    // connection too (as the end of a Redis process does), which matters when the node
    // shares its process with others (`sluice stack`): clients must see it gone.
    let stop = conn.shared.shutdown.clone();
    let _ = tokio::select! {
        r = conn.run() => r,
        _ = stop.cancelled() => Ok(()),
    };
    // No longer a client being served (a replication link, below, is not one).
    drop(serving);
    // Cleaning up takes the lock: never block the event loop behind a running script.
    let shared = conn.shared.clone();
    loop {
        if let Some(mut store) = shared.lock_unless_script() {
            conn.unpark(&mut store);
            cmd::forget_client(&mut store, &mut conn.client);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    if conn.client.handoff {
        // PSYNC/SYNC: this connection is now a replication link.
        let id = conn.client.id;
        match conn.stream {
            ClientStream::Tcp(tcp) => {
                super::repl::master::serve_replica(conn.shared, tcp, conn.rbuf, id).await;
            }
            // The replication link is plain TCP only (yet): a replica over TLS is closed.
            ClientStream::Tls(_) => tracing::warn!(id, "replication over TLS is not supported"),
        }
    }
}

impl Conn {
    async fn run(&mut self) -> std::io::Result<()> {
        loop {
            if self.queue.is_empty() {
                if let Some(e) = self.fatal.take() {
                    Reply::error(format!("ERR {e}")).encode(self.client.proto, &mut self.out);
                    self.flush().await?;
                    return Ok(());
                }
                if self.eof {
                    return Ok(());
                }
                tokio::select! {
                    r = self.stream.readable() => r?,
                    _ = self.mailbox.wake.notified() => {
                        self.drain_mailbox();
                        if self.killed {
                            return Ok(());
                        }
                        self.flush().await?;
                        continue;
                    }
                }
                self.read_available();
                self.decode();
                if self.queue.is_empty() && self.fatal.is_none() {
                    continue;
                }
            }
            if self.shared.busy.running() {
                self.wait_busy().await?;
                if self.shared.busy.running() {
                    return Ok(()); // the client left (or QUIT) while the script runs
                }
            }
            if let Some(info) = self.deferred.take() {
                match self.shared.lock_unless_script() {
                    Some(store) => self.client.authed = register(store, info),
                    None => {
                        self.deferred = Some(info);
                        continue; // a script started meanwhile: wait for it above
                    }
                }
            }
            if !self.queue.is_empty() && !self.client.close {
                if !self.run_batch() {
                    continue; // a script started meanwhile: wait for it above
                }
                self.rejoin_event_loop().await;
            }
            if let Some(seq) = self.aof_seq {
                // Redis writes the AOF before the replies of the same event-loop turn: a
                // killed process then loses no acknowledged write.
                super::aof::before_reply(&self.shared, seq);
            }
            if self.script_next {
                self.flush().await?;
                self.run_script().await?;
            }
            if !self.out.is_empty() && self.shared.others_served() {
                // Replies wait until the other ready connections have run their batches, as
                // Redis writes every reply of an event-loop turn before it sleeps: the
                // writes then come together, and each wakes a client that is less likely
                // to be asleep (a wake-up through loopback costs the sender more than the
                // send itself). A lone client would only pay the extra turn.
                // Meanwhile these replies count as the client's output (see `flush`).
                self.mailbox
                    .unsent
                    .store(self.out.len(), std::sync::atomic::Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
            self.flush().await?;
            if self.client.close || self.client.handoff {
                return Ok(());
            }
            if self.parked.is_some() {
                self.wait_parked().await?;
            }
        }
    }

    /// Reads whatever the socket has into `rbuf` (non-blocking); sets `eof` on EOF/error.
    fn read_available(&mut self) {
        loop {
            self.rbuf.reserve(READ_CHUNK);
            let room = self.rbuf.capacity() - self.rbuf.len();
            match self.stream.try_read_buf(&mut self.rbuf) {
                Ok(0) => {
                    self.eof = true;
                    return;
                }
                // A read that did not fill the room drained the socket (and `try_read_buf`
                // cleared its readiness: no EAGAIN recv() before the next wait).
                Ok(n) if n < room => {
                    self.net_in += n as u64;
                    return;
                }
                Ok(n) => self.net_in += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.eof = true;
                    return;
                }
            }
        }
    }

    /// Moves every complete request from `rbuf` to the queue.
    fn decode(&mut self) {
        if self.fatal.is_some() {
            return;
        }
        // Redis's own limits (512 MiB bulk, 64 KiB inline): `Limits::node()` trusts its peer,
        // which is right for replies from our nodes but not for requests from clients.
        let limits = Limits::default();
        loop {
            match decode_request(&mut self.rbuf, &limits) {
                Ok(Some(req)) => self.queue.push_back(req),
                Ok(None) => break,
                Err(e) => {
                    self.fatal = Some(e);
                    self.rbuf.clear();
                    break;
                }
            }
        }
        if self.rbuf.is_empty() && self.rbuf.capacity() > KEEP_CAPACITY {
            self.rbuf = BytesMut::new();
        }
    }

    /// Runs queued requests under one lock until the queue is empty, a command blocks, the
    /// client quits or enough output is waiting. False if a script holds the store: nothing
    /// ran, and the connection is to wait for it (see [`Shared::lock_unless_script`]).
    fn run_batch(&mut self) -> bool {
        let shared = self.shared.clone();
        let Some(mut store) = shared.lock_unless_script() else {
            return false;
        };
        let rerun = self.begin_batch(&mut store);
        if self.run_requests(&mut store, &shared, rerun) {
            self.end_batch(&mut store);
        }
        self.aof_seq = super::aof_file::seq(&store);
        true
    }

    /// The start of a batch, under the lock: bookkeeping, and the end of a parked client's
    /// wait. Returns what parked it if its command is to run again on its keys.
    fn begin_batch(&mut self, store: &mut Store) -> Option<Parked> {
        // Shard channels the node dropped (their slot left its shard) are forgotten under
        // the lock, before anything this batch does reads or syncs the subscriptions.
        for ch in self.mailbox.take_dropped() {
            self.client.shard_channels.shift_remove(&ch);
        }
        store.tick();
        store.stats.net_input_bytes += std::mem::take(&mut self.net_in);
        store.stats.net_output_bytes += std::mem::take(&mut self.net_out);
        // A client woken on its keys runs its command again; if a key turned into another
        // type meanwhile, it keeps waiting (Redis serves blocked pops only from lists).
        let p = self.parked.take()?;
        match resume(store, self.client.id, &self.notify, p) {
            Ok(again) => again,
            Err(reply) => {
                self.queue.pop_front();
                reply.encode(self.client.proto, &mut self.out);
                None
            }
        }
    }

    /// Runs the queued requests; false if one parked the client (the batch ends there,
    /// without the end-of-batch work: the client is not to be written to meanwhile).
    fn run_requests(
        &mut self,
        store: &mut Store,
        shared: &Shared,
        mut rerun: Option<Parked>,
    ) -> bool {
        let mut ctx = Ctx::new(store, &mut self.client, shared, true);
        while let Some(req) = self.queue.front() {
            if let Some(end) = cmd::client_pause::postponed(ctx.store, ctx.client, req) {
                self.parked = Some(postpone(ctx.store, &self.notify, end));
                break;
            }
            // One table lookup decides both whether this is a script and how to run it.
            let reply = match cmd::lookup_indexed(req.arg(0)) {
                Some((idx, c)) if c.flags.has(Flags::RUNS_SCRIPT) && ctx.client.multi.is_none() => {
                    match busy::run_inline(&mut ctx, req, idx, c) {
                        busy::Inline::Ran(reply) => reply,
                        busy::Inline::LeftLoop(reply, claim) => {
                            self.left_loop = Some(claim);
                            reply
                        }
                        busy::Inline::OffLoop => {
                            self.script_next = true;
                            break;
                        }
                    }
                }
                Some((idx, c)) => cmd::execute_found(&mut ctx, req, idx, c),
                None => cmd::execute(&mut ctx, req),
            };
            let again = rerun.take();
            match reply {
                Reply::Block(b) => {
                    let p = Parked {
                        db: ctx.db_index(),
                        keys: b.keys,
                        deadline: b.timeout.map(|t| Instant::now() + t),
                        on_timeout: b.on_timeout,
                        timed_out: false,
                        postponed: false,
                    };
                    self.parked = Some(park(ctx.store, ctx.client.id, &self.notify, p));
                    return false;
                }
                Reply::Error(e)
                    if e.starts_with("WRONGTYPE")
                        && again
                            .as_ref()
                            .is_some_and(|p| nothing_to_serve(ctx.store, p, req)) =>
                {
                    self.parked = again.map(|p| park(ctx.store, ctx.client.id, &self.notify, p));
                    return false;
                }
                reply => {
                    let proto = ctx.proto();
                    encode_reply(ctx.client, proto, req, reply, &mut self.out);
                }
            }
            self.queue.pop_front();
            if ctx.client.close
                || ctx.client.handoff
                || self.left_loop.is_some()
                || self.out.len() > OUT_HIGH_WATER
            {
                break;
            }
        }
        true
    }

    /// The end of a batch, under the lock: pub/sub messages after the replies, the output
    /// limit, and the registry's view of the client.
    fn end_batch(&mut self, store: &mut Store) {
        // Pub/sub messages delivered during the batch go after its replies, as they would
        // reach a Redis client's output buffer after the replies already there.
        if self.mailbox.take_into(&mut self.out) {
            self.killed = true;
        }
        let class = if self.client.subscriptions() > 0 {
            Class::PubSub
        } else {
            Class::Normal
        };
        let limit = store.clients.limits.of(class);
        if self.mailbox.over_limit(self.out.len(), limit) {
            // Closed at once, as Redis closes a client over its output limit: what it has not
            // read is dropped with the connection.
            self.killed = true;
            self.out = BytesMut::new();
        }
        if self.killed {
            self.client.close = true;
        }
        let now_ms = store.now_ms;
        store.clients.sync(&self.client, now_ms);
    }

    /// Appends what the mailbox holds to the output, and notes a kill.
    fn drain_mailbox(&mut self) {
        if self.mailbox.take_into(&mut self.out) {
            self.killed = true;
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        use std::sync::atomic::Ordering;
        if !self.out.is_empty() {
            // Senders count what we still have to write as part of the client's output.
            self.mailbox.unsent.store(self.out.len(), Ordering::Relaxed);
            tokio::select! {
                biased;
                r = self.stream.write_all(&self.out) => r?,
                _ = self.mailbox.kill_switch.notified() => {
                    return Err(std::io::ErrorKind::ConnectionAborted.into());
                }
            }
            self.mailbox.unsent.store(0, Ordering::Relaxed);
            self.net_out += self.out.len() as u64;
            self.out.clear();
            if self.out.capacity() > KEEP_CAPACITY {
                self.out = BytesMut::new();
            }
        }
        Ok(())
    }
}
