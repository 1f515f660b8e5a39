//! `MONITOR` answered by the proxy: every command any client of the pool sends is streamed to
//! the pool's monitors in Redis's format (`+1339518083.107412 [0 127.0.0.1:60866] "keys" "*"`),
//! whatever node serves it. With no monitor the cost per request is one atomic load.
//! Commands that scripts and functions run inside the node are relayed from a MONITOR of
//! the master's own, one per monitor client (standalone pools; see
//! [`Session::script_monitor`]). Commands Redis refuses before running them (unknown, wrong
//! number of arguments) are not shown, as on Redis.
//!
//! Bounded: each monitor has a byte count of lines queued for it and not yet written to its
//! socket; past `client_output_hard_limit` it is disconnected (as Redis disconnects a monitor
//! past its output limit) and nothing more is queued for it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use super::dedicated::checkout_in_db;
use super::{Io, Session};
use crate::backend::DirectConn;
use crate::command::{flags, CommandInfo};
use crate::resp::{decode_request, encode, Protocol, Request};

/// The pool's monitors.
#[derive(Default)]
pub(crate) struct Monitors {
    count: AtomicUsize,
    list: Mutex<Vec<Arc<Sink>>>,
}

/// One monitor's queue.
struct Sink {
    id: u64,
    tx: mpsc::UnboundedSender<Bytes>,
    /// Bytes queued and not yet written to the monitor's socket.
    queued: AtomicUsize,
    dead: AtomicBool,
}

impl Monitors {
    /// Whether anyone monitors (one relaxed load: the per-request cost).
    #[inline]
    pub(crate) fn active(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    fn add(&self, sink: Arc<Sink>) {
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        list.push(sink);
        self.count.store(list.len(), Ordering::Relaxed);
    }

    fn remove(&self, id: u64) {
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|s| s.id != id);
        self.count.store(list.len(), Ordering::Relaxed);
    }
}

impl Session {
    /// Streams `req` to the pool's monitors (called only when [`Monitors::active`]).
    pub(super) fn feed_monitors(&self, req: &Request, info: Option<&CommandInfo>) {
        // As Redis: administrative commands are not shown, nor commands refused before they
        // run (unknown, or with the wrong number of arguments: Redis feeds its monitors only
        // what it executes). The skip-monitor commands are the scripts, which Redis feeds
        // itself just before running them, so that the commands they run follow.
        let Some(info) = info else {
            return;
        };
        if info.has(flags::ADMIN) || !info.arity_ok(req.len()) {
            return;
        }
        let line = monitor_line(req, self.db, &self.entry.addr.to_string());
        let registry = &self.pool.registry;
        let limit = self.pool.cfg.client_output_hard_limit;
        let list = registry
            .monitors
            .list
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for sink in list.iter() {
            if sink.dead.load(Ordering::Relaxed) {
                continue;
            }
            let queued = sink.queued.fetch_add(line.len(), Ordering::Relaxed) + line.len();
            if queued > limit {
                sink.dead.store(true, Ordering::Relaxed);
                self.pool.metrics.output_limit_disconnects.increment(1);
                tracing::warn!(
                    monitor = sink.id,
                    limit,
                    "MONITOR client disconnected: output limit"
                );
                registry.kill(sink.id);
                continue;
            }
            let _ = sink.tx.send(line.clone());
        }
    }

    /// Serves a MONITOR client until it leaves (QUIT), resets (RESET) or is disconnected.
    pub(super) async fn monitor(&mut self, io: &mut Io) -> std::io::Result<()> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sink = Arc::new(Sink {
            id: self.id,
            tx,
            queued: AtomicUsize::new(0),
            dead: AtomicBool::new(false),
        });
        // Before the OK: a script the client runs next must already be watched.
        let mut scripts = self.script_monitor().await;
        io.out.extend_from_slice(b"+OK\r\n");
        io.flush().await?;
        self.pool.registry.monitors.add(sink.clone());
        self.set_client_flag(Some('O'));
        let served = self.monitor_loop(&sink, &mut rx, &mut scripts, io).await;
        self.pool.registry.monitors.remove(self.id);
        self.set_client_flag(None);
        served
    }

    /// The commands scripts and functions run are only seen by the node: a MONITOR of the
    /// master's own (on a dedicated connection, for this monitor's lifetime) from which
    /// the lines of its script client (`[0 lua]`) are relayed; the lines of the proxy's
    /// connections are dropped, the proxy streams those itself with the real clients.
    /// Standalone pools only (a cluster's scripts run on many masters); `None` when the
    /// master cannot be monitored (scripts' commands are then not shown).
    async fn script_monitor(&self) -> Option<DirectConn> {
        if self.pool.routing.by_slot() {
            return None;
        }
        let master = self.pool.router.master(&self.pool.topology.load()).ok()?;
        let mut conn = checkout_in_db(&master, Protocol::Resp2, 0, self.dedicated_link())
            .await
            .ok()?;
        let mut cmd = BytesMut::new();
        encode::command(&mut cmd, &[b"MONITOR"]);
        let timeout = self.pool.cfg.request_timeout;
        match tokio::time::timeout(timeout, conn.request(&cmd)).await {
            Ok(Ok(r)) if !r.is_error() => Some(conn),
            _ => None,
        }
    }

    async fn monitor_loop(
        &mut self,
        sink: &Sink,
        rx: &mut mpsc::UnboundedReceiver<Bytes>,
        scripts: &mut Option<DirectConn>,
        io: &mut Io,
    ) -> std::io::Result<()> {
        loop {
            if sink.dead.load(Ordering::Relaxed) || io.eof {
                self.closing = true;
                return Ok(());
            }
            tokio::select! {
                // The proxy's own lines first: a script's EVAL was queued before it was sent,
                // so it is written before the commands the script ran.
                biased;
                line = rx.recv() => {
                    let Some(line) = line else { return Ok(()) };
                    let mut taken = line.len();
                    io.out.extend_from_slice(&line);
                    while let Ok(more) = rx.try_recv() {
                        taken += more.len();
                        io.out.extend_from_slice(&more);
                        if io.out.len() > 64 * 1024 {
                            break;
                        }
                    }
                    io.flush().await?;
                    sink.queued.fetch_sub(taken, Ordering::Relaxed);
                }
                line = next_line(scripts) => {
                    match line {
                        Some(line) if is_script_line(&line) => {
                            io.out.extend_from_slice(&line);
                            io.flush().await?;
                        }
                        Some(_) => {}
                        // The node's monitor is gone: scripts' commands are no longer shown.
                        None => *scripts = None,
                    }
                }
                r = std::future::poll_fn(|cx| io.stream.poll_read_ready(cx)) => {
                    if r.is_err() || !io.read_available() {
                        io.eof = true;
                    }
                    if self.monitor_input(io)? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Requests from a monitor: QUIT and RESET end monitoring (true); others are refused.
    fn monitor_input(&mut self, io: &mut Io) -> std::io::Result<bool> {
        loop {
            let req = match decode_request(&mut io.rbuf, &self.pool.limits) {
                Ok(Some(req)) => req,
                Ok(None) => return Ok(false),
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            };
            if req.arg(0).eq_ignore_ascii_case(b"quit") {
                io.out.extend_from_slice(b"+OK\r\n");
                self.closing = true;
                return Ok(true);
            }
            if req.arg(0).eq_ignore_ascii_case(b"reset") {
                self.reset();
                io.out.extend_from_slice(b"+RESET\r\n");
                return Ok(true);
            }
            io.out.extend_from_slice(
                b"-ERR sluice: only QUIT and RESET are accepted in MONITOR mode\r\n",
            );
        }
    }
}

/// `+<unix seconds>.<micros> [<db> <addr>] "arg" ...\r\n`, arguments quoted as Redis quotes
/// them (sdscatrepr).
fn monitor_line(req: &Request, db: u16, addr: &str) -> Bytes {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut out = BytesMut::with_capacity(64 + req.raw().len());
    out.extend_from_slice(
        format!(
            "+{}.{:06} [{db} {addr}]",
            now.as_secs(),
            now.subsec_micros()
        )
        .as_bytes(),
    );
    let redact = req.arg(0).eq_ignore_ascii_case(b"auth");
    for i in 0..req.len() {
        out.extend_from_slice(b" ");
        if redact && i > 0 {
            out.extend_from_slice(b"\"(redacted)\"");
        } else {
            quote(req.arg(i), &mut out);
        }
    }
    out.extend_from_slice(b"\r\n");
    out.freeze()
}

/// Redis's `sdscatrepr`: `"..."` with `\\`, `\"`, `\n`, `\r`, `\t`, `\a`, `\b` escaped and
/// other non-printable bytes as `\xHH`.
fn quote(arg: &[u8], out: &mut BytesMut) {
    out.extend_from_slice(b"\"");
    for &c in arg {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.extend_from_slice(&[c]),
            _ => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.extend_from_slice(b"\"");
}

/// The next line of the node's monitor; `None` when it failed (never while there is none).
async fn next_line(conn: &mut Option<DirectConn>) -> Option<Bytes> {
    match conn {
        Some(c) => c.read().await.ok().map(|r| r.raw),
        None => std::future::pending().await,
    }
}

/// Whether a node's monitor line (`+<time> [<db> <client>] ...`) comes from its script
/// client.
fn is_script_line(line: &[u8]) -> bool {
    line.iter()
        .position(|&b| b == b']')
        .is_some_and(|end| line[..end].ends_with(b" lua"))
}

#[cfg(test)]
mod tests {
    use super::{is_script_line, quote};

    #[test]
    fn only_the_script_clients_lines_are_relayed() {
        assert!(is_script_line(b"+1.000001 [0 lua] \"set\" \"k\" \"v\"\r\n"));
        assert!(is_script_line(b"+1.000001 [3 lua] \"get\" \"k\"\r\n"));
        assert!(!is_script_line(
            b"+1.000001 [0 127.0.0.1:5000] \"eval\" \"lua]\"\r\n"
        ));
        assert!(!is_script_line(b"+1.000001 [0 unix:/tmp/lua] \"get\"\r\n"));
        assert!(!is_script_line(b"-ERR nope\r\n"));
    }

    #[test]
    fn arguments_are_quoted_like_sdscatrepr() {
        let mut out = bytes::BytesMut::new();
        quote(b"a\"b\\c\n\r\t\x07\x08\x00\xff z", &mut out);
        assert_eq!(&out[..], b"\"a\\\"b\\\\c\\n\\r\\t\\a\\b\\x00\\xff z\"");
    }
}
