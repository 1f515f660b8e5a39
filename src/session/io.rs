//! The client socket and its buffers: reads what the socket has into the request buffer
//! (allocated on demand, freed when idle) and writes replies out.

use bytes::BytesMut;

use super::spare;
use crate::tls::ClientStream;

/// Bytes reserved for a client read when the request buffer is (nearly) full.
const READ_CHUNK: usize = 8 * 1024;

/// Bytes reserved for the first read after the session was idle.
const FIRST_READ: usize = 4096;

/// The client socket halves and buffers, kept apart from `Session` so both can be borrowed.
pub(crate) struct Io {
    /// One stream for both directions: `try_read`/`try_write` take `&self`, so no split halves
    /// (and no `Arc` per connection) are needed.
    pub(super) stream: ClientStream,
    pub(super) rbuf: BytesMut,
    pub(super) out: BytesMut,
    pub(super) eof: bool,
}

impl Io {
    /// The socket of a client, with no buffers yet.
    pub(super) fn new(stream: ClientStream) -> Io {
        Io {
            stream,
            rbuf: BytesMut::new(),
            out: BytesMut::new(),
            eof: false,
        }
    }

    /// Reads what the socket has (after `readable()`) straight into the request buffer.
    /// The buffer is allocated here on demand and freed when the session goes idle, so an
    /// idle connection keeps no heap buffer. Returns false at EOF or on error.
    pub(super) fn read_available(&mut self) -> bool {
        for _ in 0..4 {
            // Start small (most requests are tiny, and a burst of new clients should not cost
            // a full chunk each), then grow to full chunks while data keeps coming.
            if self.rbuf.capacity() == 0 {
                self.rbuf = spare::take_buf(FIRST_READ);
            } else if self.rbuf.capacity() - self.rbuf.len() < FIRST_READ {
                self.rbuf.reserve(READ_CHUNK);
            }
            let room = self.rbuf.capacity() - self.rbuf.len();
            match self.stream.try_read_buf(&mut self.rbuf) {
                Ok(0) => {
                    self.eof = true;
                    return false;
                }
                // A short read drained the socket, and `try_read_buf` cleared its readiness.
                Ok(n) if n < room => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(_) => {
                    self.eof = true;
                    return false;
                }
            }
        }
        true
    }

    /// Writes out what is buffered.
    pub(super) async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            let mut done = 0;
            while done < self.out.len() {
                // poll_*_ready keeps its waker in the socket's registration, so waiting costs no
                // future state (`writable()` would add ~150 bytes to every session).
                std::future::poll_fn(|cx| self.stream.poll_write_ready(cx)).await?;
                match self.stream.try_write(&self.out[done..]) {
                    Ok(n) => done += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            self.release_out();
            // TLS: until the last record is on the socket (plain TCP: ready at once).
            std::future::poll_fn(|cx| self.stream.poll_flush(cx)).await?;
        }
        Ok(())
    }

    /// Reads after a readiness event; marks the end of input at EOF or on error.
    pub(super) fn read_or_eof(&mut self) {
        if !self.read_available() {
            self.eof = true;
        }
    }

    /// Gives up the buffers of a session going idle (a partial request keeps its bytes).
    pub(super) fn release_idle(&mut self) {
        if self.out.capacity() > 0 {
            spare::give_buf(std::mem::take(&mut self.out));
        }
        if self.rbuf.is_empty() && self.rbuf.capacity() > 0 {
            spare::give_buf(std::mem::take(&mut self.rbuf));
        }
    }

    /// Takes an output buffer for a session waking from idle.
    pub(super) fn wake(&mut self) {
        if self.out.capacity() == 0 {
            self.out = spare::take_buf(0);
        }
    }

    /// Puts a decoded request back in front of what is still buffered (a mode hands it to
    /// the next one).
    pub(super) fn unread(&mut self, req: &crate::resp::Request) {
        let rest = self.rbuf.split();
        self.rbuf.extend_from_slice(req.raw());
        self.rbuf.extend_from_slice(&rest);
    }
}
