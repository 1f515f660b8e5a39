//! `MONITOR` answered by the proxy: every command any client of the pool sends is streamed to
//! the pool's monitors in Redis's format (`+1339518083.107412 [0 127.0.0.1:60866] "keys" "*"`),
//! whatever node serves it. With no monitor the cost per request is one atomic load.
//!
//! Bounded: each monitor has a byte count of lines queued for it and not yet written to its
//! socket; past `client_output_hard_limit` it is disconnected (as Redis disconnects a monitor
//! past its output limit) and nothing more is queued for it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use super::{Io, Session};
use crate::command::{flags, CommandInfo};
use crate::resp::{decode_request, Request};

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
        // As Redis: administrative commands and those flagged skip-monitor are not shown.
        if info.is_some_and(|i| i.flags & (flags::ADMIN | flags::SKIP_MONITOR) != 0) {
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
        io.out.extend_from_slice(b"+OK\r\n");
        io.flush().await?;
        self.pool.registry.monitors.add(sink.clone());
        self.set_client_flag(Some('O'));
        let served = self.monitor_loop(&sink, &mut rx, io).await;
        self.pool.registry.monitors.remove(self.id);
        self.set_client_flag(None);
        served
    }

    async fn monitor_loop(
        &mut self,
        sink: &Sink,
        rx: &mut mpsc::UnboundedReceiver<Bytes>,
        io: &mut Io,
    ) -> std::io::Result<()> {
        loop {
            if sink.dead.load(Ordering::Relaxed) || io.eof {
                self.closing = true;
                return Ok(());
            }
            tokio::select! {
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

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn arguments_are_quoted_like_sdscatrepr() {
        let mut out = bytes::BytesMut::new();
        quote(b"a\"b\\c\n\r\t\x07\x08\x00\xff z", &mut out);
        assert_eq!(&out[..], b"\"a\\\"b\\\\c\\n\\r\\t\\a\\b\\x00\\xff z\"");
    }
}
