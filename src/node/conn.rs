//! One client connection: read what the socket has, decode every complete request, run them
//! all under one lock acquisition, write every reply with one flush.
//!
//! Batching is where the throughput comes from: with `redis-benchmark -P 16` one wake-up
//! carries 16 requests, and they cost one lock, one clock read and one write syscall.
//! A blocked command (BLPOP, ...) stops the batch; the requests behind it wait, as in Redis.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::client::ClientState;
use super::cmd::{self, Ctx};
use super::reply::Reply;
use super::server::Shared;
use crate::resp::{decode_request, Limits, ProtocolError, Request};

/// Stop running a batch once this many reply bytes are waiting, release the lock and write
/// them: bounds both the memory a pipelining client can make us hold and how long one
/// client keeps the lock.
const OUT_HIGH_WATER: usize = 1 << 20;
/// Buffers grown past this are dropped when they empty, so one large request or reply does
/// not pin memory for the rest of the connection's life.
const KEEP_CAPACITY: usize = 64 * 1024;
/// Bytes reserved per read.
const READ_CHUNK: usize = 16 * 1024;

/// A client parked by a blocking command.
struct Parked {
    db: usize,
    keys: Vec<Bytes>,
    deadline: Option<Instant>,
    on_timeout: Reply,
    timed_out: bool,
}

struct Conn {
    shared: Arc<Shared>,
    stream: TcpStream,
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
}

/// Serves one accepted client until it disconnects, QUITs or sends a malformed request.
pub async fn serve(shared: Arc<Shared>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let client = ClientState {
        id: shared.next_client_id(),
        authed: shared.config.requirepass.is_none(),
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
    };
    // I/O errors just end the connection, as a reset would in Redis.
    let _ = conn.run().await;
    conn.unpark();
    if conn.client.handoff {
        // PSYNC/SYNC: this connection is now a replication link.
        let id = conn.client.id;
        super::repl::master::serve_replica(conn.shared, conn.stream, conn.rbuf, id).await;
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
                self.stream.readable().await?;
                self.read_available();
                self.decode();
                if self.queue.is_empty() && self.fatal.is_none() {
                    continue;
                }
            }
            self.run_batch();
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
            match self.stream.try_read_buf(&mut self.rbuf) {
                Ok(0) => {
                    self.eof = true;
                    return;
                }
                // A read that did not fill the room drained the socket.
                Ok(n) if n < READ_CHUNK => return,
                Ok(_) => {}
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
    /// client quits or enough output is waiting.
    fn run_batch(&mut self) {
        let shared = &*self.shared;
        let mut store = shared.lock();
        store.tick();
        if let Some(p) = self.parked.take() {
            store.waiters.unregister(p.db, &p.keys, &self.notify);
            if p.timed_out {
                self.queue.pop_front();
                p.on_timeout.encode(self.client.proto, &mut self.out);
            }
        }
        let mut ctx = Ctx::new(&mut store, &mut self.client, shared, true);
        while let Some(req) = self.queue.front() {
            match cmd::execute(&mut ctx, req) {
                Reply::Block(b) => {
                    let db = ctx.db_index();
                    ctx.store.waiters.register(db, &b.keys, &self.notify);
                    self.parked = Some(Parked {
                        db,
                        keys: b.keys,
                        deadline: b.timeout.map(|t| Instant::now() + t),
                        on_timeout: b.on_timeout,
                        timed_out: false,
                    });
                    return;
                }
                reply => reply.encode(ctx.proto(), &mut self.out),
            }
            self.queue.pop_front();
            if ctx.client.close || ctx.client.handoff || self.out.len() > OUT_HIGH_WATER {
                return;
            }
        }
    }

    /// Waits while parked: until a writer signals a key, the timeout passes, or the client
    /// goes away. Data the client sends meanwhile is decoded and queued behind the blocked
    /// command.
    async fn wait_parked(&mut self) -> std::io::Result<()> {
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
    fn unpark(&mut self) {
        if let Some(p) = self.parked.take() {
            self.shared
                .lock()
                .waiters
                .unregister(p.db, &p.keys, &self.notify);
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
            if self.out.capacity() > KEEP_CAPACITY {
                self.out = BytesMut::new();
            }
        }
        Ok(())
    }
}
