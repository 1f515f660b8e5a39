//! Micro-benchmark for issue 11's io_uring lever: the client side of the proxy alone, served
//! two ways on one thread, doing the same work per request.
//!
//! - `epoll`: a tokio current-thread runtime (what `sluice proxy` runs by default), one task per
//!   connection reading into a buffer and writing the replies, as the session engine does.
//! - `uring`: one io_uring, one thread; every connection keeps a `Recv` in flight, completions
//!   are drained in batches and all the replies and new receives of a batch go to the kernel in
//!   one `io_uring_enter` (submit-and-wait). This is the "many clients' sends and receives in
//!   one call" that the issue asks to measure.
//!
//! Both frame RESP requests and answer each with a fixed reply (`$-1` to GET, `+OK` otherwise),
//! so the difference between them is the I/O model alone: it bounds what io_uring could save
//! the proxy on its client side. `benches/uring.sh` runs redis-benchmark against both (and
//! redis-server for scale), interleaved, and reports requests/s and CPU per request.
//!
//! Usage: `uring_front epoll|uring` — binds 127.0.0.1:0, prints `listening on PORT`, serves
//! until killed. Not a criterion benchmark (harness = false); Linux only.

use std::io::{self, Write};
use std::net::TcpListener;

/// The reply to one request: what Redis answers to a GET of a missing key, `+OK` to the rest.
fn reply_to(command: &[u8], out: &mut Vec<u8>) {
    if command.eq_ignore_ascii_case(b"get") {
        out.extend_from_slice(b"$-1\r\n");
    } else {
        out.extend_from_slice(b"+OK\r\n");
    }
}

/// Parses a decimal line ending in CRLF at `buf[at..]`; returns (value, index after CRLF).
fn number_line(buf: &[u8], at: usize) -> Option<(usize, usize)> {
    let end = at + buf.get(at..)?.iter().position(|&b| b == b'\r')?;
    if buf.get(end + 1) != Some(&b'\n') {
        return None;
    }
    let text = std::str::from_utf8(&buf[at..end]).ok()?;
    Some((text.parse().ok()?, end + 2))
}

/// Answers every complete request (`*N` of `$len` bulk strings) at the start of `buf`, appending
/// the replies to `out`; returns how many bytes were consumed. Incomplete tails stay.
fn serve(buf: &[u8], out: &mut Vec<u8>) -> usize {
    let mut done = 0;
    'requests: while buf.get(done) == Some(&b'*') {
        let Some((count, mut at)) = number_line(buf, done + 1) else {
            break;
        };
        let mut first: Option<(usize, usize)> = None;
        for _ in 0..count {
            if buf.get(at) != Some(&b'$') {
                break 'requests;
            }
            let Some((len, start)) = number_line(buf, at + 1) else {
                break 'requests;
            };
            if buf.len() < start + len + 2 {
                break 'requests;
            }
            first.get_or_insert((start, start + len));
            at = start + len + 2;
        }
        let (start, end) = first.unwrap_or((0, 0));
        reply_to(&buf[start..end], out);
        done = at;
    }
    done
}

mod epoll {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    pub(crate) fn run(listener: std::net::TcpListener) -> std::io::Result<()> {
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            loop {
                let (mut socket, _) = listener.accept().await?;
                socket.set_nodelay(true)?;
                tokio::spawn(async move {
                    let mut buf = Vec::with_capacity(16 * 1024);
                    let mut out = Vec::with_capacity(16 * 1024);
                    loop {
                        match socket.read_buf(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        let used = super::serve(&buf, &mut out);
                        buf.drain(..used);
                        if socket.write_all(&out).await.is_err() {
                            return;
                        }
                        out.clear();
                    }
                });
            }
        })
    }
}

mod uring {
    use io_uring::{cqueue, opcode, squeue, types, IoUring};
    use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

    const ACCEPT: u64 = u64::MAX;
    const RECV: u64 = 0;
    const SEND: u64 = 1;
    const BUF: usize = 16 * 1024;

    /// One client: its socket, the bytes received but not yet framed, the replies the kernel is
    /// sending (not touched until the send completes) and the replies waiting behind them.
    struct Conn {
        fd: OwnedFd,
        input: Vec<u8>,
        sending: Vec<u8>,
        sent: usize,
        waiting: Vec<u8>,
    }

    struct Server {
        ring: IoUring,
        conns: Vec<Option<Box<Conn>>>,
        free: Vec<usize>,
    }

    pub(crate) fn run(listener: std::net::TcpListener) -> std::io::Result<()> {
        // Single issuer and deferred task work: the cheapest completion mode (kernel 6.1+);
        // plain setup where the kernel refuses them.
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(4096)
            .or_else(|_| IoUring::new(4096))?;
        let fd = listener.into_raw_fd();
        let mut server = Server {
            ring,
            conns: Vec::new(),
            free: Vec::new(),
        };
        server.push(
            opcode::AcceptMulti::new(types::Fd(fd))
                .build()
                .user_data(ACCEPT),
        )?;
        let mut batch: Vec<(u64, i32, u32)> = Vec::with_capacity(1024);
        loop {
            server.ring.submit_and_wait(1)?;
            batch.extend(
                server
                    .ring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            for (data, result, flags) in batch.drain(..) {
                server.complete(data, result, flags, fd)?;
            }
        }
    }

    impl Server {
        fn push(&mut self, entry: squeue::Entry) -> std::io::Result<()> {
            loop {
                // SAFETY: every buffer an entry points to lives in a boxed `Conn` that stays put
                // until the operation's completion has been handled.
                if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                    return Ok(());
                }
                self.ring.submit()?;
            }
        }

        fn complete(
            &mut self,
            data: u64,
            result: i32,
            flags: u32,
            listen: RawFd,
        ) -> std::io::Result<()> {
            if data == ACCEPT {
                if result >= 0 {
                    self.accept(result)?;
                }
                if !cqueue::more(flags) {
                    self.push(
                        opcode::AcceptMulti::new(types::Fd(listen))
                            .build()
                            .user_data(ACCEPT),
                    )?;
                }
                return Ok(());
            }
            let (slot, op) = ((data >> 1) as usize, data & 1);
            if result <= 0 && op == RECV || result < 0 {
                self.conns[slot] = None;
                self.free.push(slot);
                return Ok(());
            }
            let Some(conn) = self.conns[slot].as_mut() else {
                return Ok(());
            };
            if op == RECV {
                let len = conn.input.len() + result as usize;
                // SAFETY: the kernel wrote `result` bytes into the spare capacity we gave it.
                unsafe { conn.input.set_len(len) };
                let used = super::serve(&conn.input, &mut conn.waiting);
                conn.input.drain(..used);
                let recv = recv_entry(conn, slot);
                let send = start_send(conn, slot);
                self.push(recv)?;
                if let Some(send) = send {
                    self.push(send)?;
                }
            } else {
                conn.sent += result as usize;
                if conn.sent == conn.sending.len() {
                    conn.sending.clear();
                    conn.sent = 0;
                    std::mem::swap(&mut conn.sending, &mut conn.waiting);
                }
                if let Some(send) = continue_send(conn, slot) {
                    self.push(send)?;
                }
            }
            Ok(())
        }

        fn accept(&mut self, fd: RawFd) -> std::io::Result<()> {
            // SAFETY: the accept completion hands us a new descriptor that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let socket = std::net::TcpStream::from(fd);
            socket.set_nodelay(true)?;
            let conn = Box::new(Conn {
                fd: socket.into(),
                input: Vec::with_capacity(BUF),
                sending: Vec::with_capacity(BUF),
                sent: 0,
                waiting: Vec::with_capacity(BUF),
            });
            let slot = match self.free.pop() {
                Some(slot) => slot,
                None => {
                    self.conns.push(None);
                    self.conns.len() - 1
                }
            };
            let recv = recv_entry(&conn, slot);
            self.conns[slot] = Some(conn);
            self.push(recv)
        }
    }

    fn recv_entry(conn: &Conn, slot: usize) -> squeue::Entry {
        let spare = conn.input.capacity() - conn.input.len();
        // SAFETY (of the pointer's later use): `input` is neither read nor resized while the
        // receive is in flight; its spare capacity is where the kernel writes.
        let at = unsafe { conn.input.as_ptr().add(conn.input.len()) } as *mut u8;
        opcode::Recv::new(types::Fd(conn.fd.as_raw_fd()), at, spare as u32)
            .build()
            .user_data((slot as u64) << 1 | RECV)
    }

    /// A send of the waiting replies, unless one is in flight (its completion sends them).
    fn start_send(conn: &mut Conn, slot: usize) -> Option<squeue::Entry> {
        if !conn.sending.is_empty() || conn.waiting.is_empty() {
            return None;
        }
        std::mem::swap(&mut conn.sending, &mut conn.waiting);
        continue_send(conn, slot)
    }

    fn continue_send(conn: &Conn, slot: usize) -> Option<squeue::Entry> {
        let rest = conn
            .sending
            .get(conn.sent..)
            .filter(|rest| !rest.is_empty())?;
        Some(
            opcode::Send::new(
                types::Fd(conn.fd.as_raw_fd()),
                rest.as_ptr(),
                rest.len() as u32,
            )
            .build()
            .user_data((slot as u64) << 1 | SEND),
        )
    }
}

fn main() -> io::Result<()> {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("listening on {}", listener.local_addr()?.port());
    io::stdout().flush()?;
    match mode.as_str() {
        "epoll" => epoll::run(listener),
        "uring" => uring::run(listener),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "usage: uring_front epoll|uring",
        )),
    }
}
