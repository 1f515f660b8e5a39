//! A multiplexed, pipelined connection to one node, shared by all clients of a pool.
//!
//! Requests arrive on an mpsc channel; the writer drains everything queued and writes it in one
//! syscall, pushing a reply slot per request into a FIFO; the reader pops the FIFO for each reply
//! frame. Reader and writer are polled together (one `select!`), so a large write never stops us
//! from reading replies (the TCP deadlock of a naive pipelining client).
//!
//! The per-client database is carried with each request: the writer injects `SELECT n` whenever
//! the next request is for another database than the connection's current one and swallows its
//! reply, so clients on different databases share the connection correctly.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};

use super::direct_pool::Slot as Place;
use super::handshake::{self, Handshake};
use super::BackendError;
use crate::resp::{encode, scan_reply, Limits, Reply};
use crate::tls::{NodeReadHalf, NodeStream, NodeWriteHalf};

/// A read buffer with more spare capacity than this is dropped once it holds nothing.
const RBUF_KEEP: usize = 64 * 1024;

/// What a request's submitter receives.
pub(crate) type ReplyResult = Result<Reply, BackendError>;

/// One request for the writer.
struct Job {
    raw: Bytes,
    db: u16,
    patience: Patience,
    reply: oneshot::Sender<ReplyResult>,
}

/// How long a request's reply may take, decided once by the sender from the command table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Patience {
    /// An ordinary command: a reply later than `request_timeout` marks the connection stuck.
    Bounded,
    /// A script (EVAL, FCALL and their forms): as long as it runs (see [`Slot::patient`]).
    Script,
}

/// A reply slot in the FIFO: `None` for an injected command whose reply is swallowed.
struct Slot {
    reply: Option<oneshot::Sender<ReplyResult>>,
    sent: Instant,
    /// A script (EVAL, FCALL and their forms): it runs as long as it runs, while the node
    /// stays alive (it answers other connections `BUSY`, and SCRIPT KILL ends it), so it has
    /// no reply deadline; the requests behind it get theirs from when it is answered, and
    /// while it is in flight no connection to the node is declared stuck (the node serves
    /// nobody else meanwhile). Counted in [`MuxOptions::scripts`] while the slot lives.
    patient: Option<ScriptMark>,
}

/// One script in flight on a node's shared connections (see [`Slot::patient`]).
struct ScriptMark(Arc<AtomicUsize>);

impl ScriptMark {
    fn new(count: &Arc<AtomicUsize>) -> ScriptMark {
        count.fetch_add(1, Ordering::Relaxed);
        ScriptMark(count.clone())
    }
}

impl Drop for ScriptMark {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Settings of one multiplexed connection.
#[derive(Debug, Clone)]
pub(crate) struct MuxOptions {
    /// Node address (`host:port`).
    pub(crate) addr: String,
    /// Protocol and credentials.
    pub(crate) handshake: Handshake,
    /// TCP connect + handshake timeout.
    pub(crate) connect_timeout: Duration,
    /// A reply older than this marks the connection stuck: it is closed and its requests fail.
    pub(crate) request_timeout: Duration,
    /// Scripts in flight on the node's shared connections (shared by all of them).
    pub(crate) scripts: Arc<AtomicUsize>,
}

/// Handle to a multiplexed connection. Cheap to clone; the connection task ends when the
/// last handle is dropped.
#[derive(Clone)]
pub(crate) struct MuxConn {
    // Unbounded on purpose: every submitter (a client session) bounds its own in-flight
    // requests (`MAX_PENDING`, fewer for large replies), so the queue is bounded by clients × that, and sending stays a
    // plain function call on the hot path, with no semaphore and no future to keep.
    tx: mpsc::UnboundedSender<Job>,
    up: Arc<AtomicBool>,
    /// The node's address, for the error of a request sent after the task ended.
    addr: Arc<str>,
}

impl MuxConn {
    /// Starts the connection task (it connects, and reconnects with backoff, by itself).
    pub(crate) fn spawn(opts: MuxOptions) -> MuxConn {
        let (tx, rx) = mpsc::unbounded_channel();
        let up = Arc::new(AtomicBool::new(false));
        let addr = opts.addr.as_str().into();
        tokio::spawn(supervise(opts, rx, up.clone()));
        MuxConn { tx, up, addr }
    }

    /// As [`MuxConn::spawn`], for a connection that must first get `place` (a place under
    /// the node's cap, held as long as the task runs). Requests queue meanwhile; if no place
    /// comes, they fail with its error and the task ends ([`MuxConn::is_closed`]).
    pub(crate) fn spawn_placed<P>(opts: MuxOptions, place: P) -> MuxConn
    where
        P: std::future::Future<Output = Result<Place, BackendError>> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let up = Arc::new(AtomicBool::new(false));
        let task_up = up.clone();
        let addr = opts.addr.as_str().into();
        tokio::spawn(async move {
            let _place = match place.await {
                Ok(slot) => slot,
                Err(e) => {
                    rx.close();
                    while let Some(job) = rx.recv().await {
                        let _ = job.reply.send(Err(e.clone()));
                    }
                    return;
                }
            };
            supervise(opts, rx, task_up).await;
        });
        MuxConn { tx, up, addr }
    }

    /// Queues a request for database `db`; the receiver yields its reply or why it failed.
    pub(crate) fn send(
        &self,
        raw: Bytes,
        db: u16,
        patience: Patience,
    ) -> oneshot::Receiver<ReplyResult> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            raw,
            db,
            patience,
            reply,
        };
        // The task of a shared connection only stops when every handle is gone; a client
        // user's may end first (no place under the cap): the request fails, not sent.
        if let Err(mpsc::error::SendError(job)) = self.tx.send(job) {
            let _ = job.reply.send(Err(BackendError::Unavailable {
                addr: self.addr.to_string(),
                reason: "connection closed".into(),
            }));
        }
        rx
    }

    /// True once the connection task has ended (see [`MuxConn::spawn_placed`]).
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// True while the connection is established.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
}

/// Connects, serves until the connection breaks, fails what was in flight, and reconnects with
/// exponential backoff. While disconnected, queued requests fail at once rather than waiting.
async fn supervise(opts: MuxOptions, mut rx: mpsc::UnboundedReceiver<Job>, up: Arc<AtomicBool>) {
    const MIN_BACKOFF: Duration = Duration::from_millis(25);
    const MAX_BACKOFF: Duration = Duration::from_millis(1000);
    let mut backoff = MIN_BACKOFF;
    loop {
        let mut rbuf = BytesMut::new();
        let err =
            match handshake::connect(&opts.addr, &opts.handshake, opts.connect_timeout, &mut rbuf)
                .await
            {
                Ok(stream) => {
                    up.store(true, Ordering::Relaxed);
                    backoff = MIN_BACKOFF;
                    let started = Instant::now();
                    let err = match run(stream, rbuf, &mut rx, &opts).await {
                        Some(e) => e,
                        None => return,
                    };
                    up.store(false, Ordering::Relaxed);
                    tracing::warn!(node = %opts.addr, error = %err, "backend connection closed");
                    // A connection that lived a while gets an immediate reconnect.
                    if started.elapsed() > MAX_BACKOFF {
                        continue;
                    }
                    BackendError::Unavailable {
                        addr: opts.addr.clone(),
                        reason: err.to_string(),
                    }
                }
                Err(e) => {
                    up.store(false, Ordering::Relaxed);
                    tracing::debug!(node = %opts.addr, error = %e, "backend connect failed");
                    e
                }
            };
        let deadline = tokio::time::Instant::now() + backoff;
        loop {
            tokio::select! {
                job = rx.recv() => match job {
                    Some(job) => { let _ = job.reply.send(Err(err.clone())); }
                    None => return,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Serves one established connection. Returns the error that ended it, or `None` when every
/// handle was dropped (shutdown).
async fn run(
    stream: NodeStream,
    rbuf: BytesMut,
    rx: &mut mpsc::UnboundedReceiver<Job>,
    opts: &MuxOptions,
) -> Option<BackendError> {
    let (rd, wr) = stream.into_split();
    let pending: Mutex<VecDeque<Slot>> = Mutex::new(VecDeque::new());
    let result = tokio::select! {
        e = read_loop(rd, rbuf, &pending, opts) => Some(e),
        e = write_loop(wr, rx, &pending, opts) => e,
    };
    let err = result
        .clone()
        .unwrap_or_else(|| BackendError::ConnectionLost {
            addr: opts.addr.clone(),
            reason: "proxy shutting down".into(),
        });
    let slots: Vec<Slot> = match pending.lock() {
        Ok(mut p) => p.drain(..).collect(),
        Err(poisoned) => poisoned.into_inner().drain(..).collect(),
    };
    for slot in slots {
        if let Some(tx) = slot.reply {
            let _ = tx.send(Err(err.clone()));
        }
    }
    result
}

/// Hands every complete reply in `rbuf` to its waiting request, taking the FIFO lock once per
/// read rather than once per reply.
fn deliver(
    rbuf: &mut BytesMut,
    pending: &Mutex<VecDeque<Slot>>,
    limits: &Limits,
    opts: &MuxOptions,
) -> Result<(), BackendError> {
    let lost = |reason: String| BackendError::ConnectionLost {
        addr: opts.addr.clone(),
        reason,
    };
    let mut slots = lock(pending);
    loop {
        let scan = match scan_reply(rbuf, limits) {
            Ok(Some(scan)) => scan,
            Ok(None) => return Ok(()),
            Err(e) => {
                return Err(BackendError::Protocol {
                    addr: opts.addr.clone(),
                    reason: e.to_string(),
                })
            }
        };
        let raw = rbuf.split_to(scan.len).freeze();
        if scan.push {
            // Out-of-band data (e.g. invalidations) has no slot; shared connections never
            // enable anything that sends it, so drop it.
            tracing::debug!(node = %opts.addr, "dropping push frame on shared connection");
            continue;
        }
        match slots.pop_front() {
            Some(Slot {
                reply: Some(tx),
                patient,
                ..
            }) => {
                let _ = tx.send(Ok(Reply::new(raw, scan.resp3)));
                if patient.is_some() {
                    if let Some(next) = slots.front_mut() {
                        next.sent = Instant::now();
                    }
                }
            }
            Some(Slot { reply: None, .. }) => {
                if matches!(raw.first(), Some(b'-') | Some(b'!')) {
                    // An injected SELECT failed: later requests would run in the wrong
                    // database. Drop the connection so they fail instead.
                    return Err(lost(format!(
                        "SELECT refused: {}",
                        String::from_utf8_lossy(&raw).trim_end()
                    )));
                }
            }
            None => return Err(lost("reply without a request".into())),
        }
    }
}

fn lock(p: &Mutex<VecDeque<Slot>>) -> std::sync::MutexGuard<'_, VecDeque<Slot>> {
    // Never held across an await, and nothing panics while holding it; recover anyway.
    p.lock().unwrap_or_else(|e| e.into_inner())
}

async fn write_loop(
    mut wr: NodeWriteHalf,
    rx: &mut mpsc::UnboundedReceiver<Job>,
    pending: &Mutex<VecDeque<Slot>>,
    opts: &MuxOptions,
) -> Option<BackendError> {
    let mut jobs = Vec::with_capacity(64);
    let mut out = BytesMut::new();
    let mut db: u16 = 0;
    loop {
        if rx.recv_many(&mut jobs, 1024).await == 0 {
            return None;
        }
        {
            let now = Instant::now();
            let mut p = lock(pending);
            for job in jobs.drain(..) {
                // The client went away before we wrote its request: skip it entirely.
                if job.reply.is_closed() {
                    continue;
                }
                if job.db != db {
                    encode::select(&mut out, job.db);
                    p.push_back(Slot {
                        reply: None,
                        sent: now,
                        patient: None,
                    });
                    db = job.db;
                }
                out.extend_from_slice(&job.raw);
                p.push_back(Slot {
                    reply: Some(job.reply),
                    sent: now,
                    patient: (job.patience == Patience::Script)
                        .then(|| ScriptMark::new(&opts.scripts)),
                });
            }
        }
        if out.is_empty() {
            continue;
        }
        if let Err(e) = wr.write_all_flushed(&out).await {
            return Some(BackendError::ConnectionLost {
                addr: opts.addr.clone(),
                reason: e.to_string(),
            });
        }
        if out.capacity() > 1 << 20 {
            out = BytesMut::new();
        } else {
            out.clear();
        }
    }
}

async fn read_loop(
    mut rd: NodeReadHalf,
    mut rbuf: BytesMut,
    pending: &Mutex<VecDeque<Slot>>,
    opts: &MuxOptions,
) -> BackendError {
    let limits = Limits::node();
    let lost = |reason: String| BackendError::ConnectionLost {
        addr: opts.addr.clone(),
        reason,
    };
    let tick_every = (opts.request_timeout / 4).max(Duration::from_millis(50));
    let mut tick = tokio::time::interval(tick_every);
    // Last tick that saw a script in flight on the node: requests waiting behind it (on any
    // of its connections) get a full timeout from there.
    let mut script_seen = Instant::now();
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if let Err(e) = deliver(&mut rbuf, pending, &limits, opts) {
            return e;
        }
        if rbuf.is_empty() && rbuf.capacity() > RBUF_KEEP {
            // After a large reply: let its buffer go with the reply instead of reading on
            // into what is left of it (which would pin the whole allocation).
            rbuf = BytesMut::new();
        }
        if rbuf.capacity() - rbuf.len() < 4096 {
            rbuf.reserve(16 * 1024);
        }
        tokio::select! {
            r = rd.read_some(&mut rbuf) => match r {
                Ok(0) => return lost("closed by node".into()),
                Ok(_) => {}
                Err(e) => return lost(e.to_string()),
            },
            _ = tick.tick() => {
                if opts.scripts.load(Ordering::Relaxed) > 0 {
                    script_seen = Instant::now();
                }
                let waited = |s: &Slot| s.sent.elapsed().min(script_seen.elapsed());
                let stuck = lock(pending).front().is_some_and(|s| s.patient.is_none() && waited(s) > opts.request_timeout);
                if stuck {
                    return BackendError::Timeout { addr: opts.addr.clone(), ms: opts.request_timeout.as_millis() as u64 };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request sent after the connection's task ended fails naming the node.
    #[tokio::test]
    async fn a_request_after_the_task_ended_names_the_node() {
        let opts = MuxOptions {
            addr: "127.0.0.1:1".into(),
            handshake: Handshake::default(),
            connect_timeout: Duration::from_millis(100),
            request_timeout: Duration::from_millis(100),
            scripts: Arc::default(),
        };
        let refused = BackendError::Exhausted {
            addr: "127.0.0.1:1".into(),
            max: 0,
        };
        let conn = MuxConn::spawn_placed(opts, std::future::ready(Err(refused)));
        while !conn.is_closed() {
            tokio::task::yield_now().await;
        }
        match conn
            .send(
                Bytes::from_static(b"*1\r\n$4\r\nPING\r\n"),
                0,
                Patience::Bounded,
            )
            .await
        {
            Ok(Err(BackendError::Unavailable { addr, .. })) => assert_eq!(addr, "127.0.0.1:1"),
            other => panic!("unexpected: {other:?}"),
        }
    }
}
