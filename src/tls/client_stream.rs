//! A client connection, plain TCP or TLS, with the readiness calls the session's loop uses
//! (`poll_read_ready`, `try_read_buf`, `try_write`, `poll_write_ready`).
//!
//! Plain TCP forwards each call to `TcpStream` unchanged: the same syscalls as before, no lock,
//! no allocation. TLS has no such readiness of its own (bytes on the socket may be half a
//! record; plaintext may wait inside rustls with nothing on the socket), so there:
//! * read-ready means rustls holds plaintext (or saw the end), or the socket has bytes;
//!   `try_read_buf` then decrypts what it can without waiting;
//! * `try_write` hands plaintext to rustls and writes what the socket takes; ciphertext the
//!   socket did not take is written by the next call that waits on this stream (both ready
//!   calls push it out first), so nothing stays behind while the session waits for the client,
//!   and `poll_flush` waits for it where the session must know its replies are out (before a
//!   blocking command, in pub/sub);
//! * the calls take `&self` (the session waits for read and write readiness at once), so the
//!   TLS state sits behind an uncontended mutex, never held across an await.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// A client connection.
pub(crate) enum ClientStream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP (boxed: the plain variant stays as small as a `TcpStream`).
    Tls(Box<TlsClient>),
}

/// The TLS variant's state.
pub(crate) struct TlsClient {
    fd: RawFd,
    stream: Mutex<TlsStream<TcpStream>>,
}

impl From<TcpStream> for ClientStream {
    fn from(s: TcpStream) -> ClientStream {
        ClientStream::Tcp(s)
    }
}

impl ClientStream {
    /// A client connection that completed its TLS handshake.
    pub(crate) fn tls(stream: TlsStream<TcpStream>) -> ClientStream {
        let tcp = stream.get_ref().0;
        ClientStream::Tls(Box::new(TlsClient {
            fd: tcp.as_raw_fd(),
            stream: Mutex::new(stream),
        }))
    }

    /// `TCP_NODELAY` on the socket.
    pub(crate) fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match self {
            ClientStream::Tcp(s) => s.set_nodelay(on),
            ClientStream::Tls(t) => t.lock().get_ref().0.set_nodelay(on),
        }
    }

    /// The client's address.
    pub(crate) fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        match self {
            ClientStream::Tcp(s) => s.peer_addr(),
            ClientStream::Tls(t) => t.lock().get_ref().0.peer_addr(),
        }
    }

    /// The local address the client connected to.
    pub(crate) fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        match self {
            ClientStream::Tcp(s) => s.local_addr(),
            ClientStream::Tls(t) => t.lock().get_ref().0.local_addr(),
        }
    }

    /// Waits until [`ClientStream::try_read_buf`] may have something.
    #[inline]
    pub(crate) async fn readable(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_read_ready(cx)).await
    }

    /// Writes all of `buf`, waiting as the connection needs, and sees it onto the socket
    /// (plain TCP: a `write` per call, as `TcpStream::write_all`).
    pub(crate) async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.try_write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::future::poll_fn(|cx| self.poll_write_ready(cx)).await?;
                }
                Err(e) => return Err(e),
            }
        }
        std::future::poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// Ready when a `try_read_buf` would not just return `WouldBlock` (see the module doc).
    #[inline]
    pub(crate) fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            ClientStream::Tcp(s) => s.poll_read_ready(cx),
            ClientStream::Tls(t) => t.poll_read_ready(cx),
        }
    }

    /// Ready when a `try_write` may take bytes.
    #[inline]
    pub(crate) fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            ClientStream::Tcp(s) => s.poll_write_ready(cx),
            ClientStream::Tls(t) => t.poll_write_ready(cx),
        }
    }

    /// Ready once everything written is on the socket: at once for plain TCP (the kernel has
    /// it), when rustls has no ciphertext left for TLS.
    #[inline]
    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            ClientStream::Tcp(_) => Poll::Ready(Ok(())),
            ClientStream::Tls(t) => t.poll_write_ready(cx),
        }
    }

    /// Reads what is there without waiting (TLS: decrypts what has arrived). Plain TCP: a
    /// read that leaves room in `buf` drained the socket and cleared its read readiness
    /// (`drain::read_to_dry`), so the next wait needs no `EAGAIN` read first.
    #[inline]
    pub(crate) fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            ClientStream::Tcp(s) => super::drain::read_to_dry(s, buf),
            ClientStream::Tls(t) => t.try_read_buf(buf),
        }
    }

    /// Writes what the connection takes now without waiting.
    #[inline]
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ClientStream::Tcp(s) => s.try_write(buf),
            ClientStream::Tls(t) => t.try_write(buf),
        }
    }
}

/// The TLS side, out of line: the plain calls above stay as small as `TcpStream`'s.
impl TlsClient {
    fn lock(&self) -> MutexGuard<'_, TlsStream<TcpStream>> {
        // Held only inside these non-async calls, which do not panic while holding it;
        // recover from poisoning anyway.
        self.stream.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[inline(never)]
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut s = self.lock();
        // Ciphertext left over from a write goes out first (and wakes us when it can).
        if let Poll::Ready(Err(e)) = Pin::new(&mut *s).poll_flush(cx) {
            return Poll::Ready(Err(e));
        }
        match s.get_mut().1.process_new_packets() {
            Err(e) => return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e))),
            Ok(st) if st.plaintext_bytes_to_read() > 0 || st.peer_has_closed() => {
                return Poll::Ready(Ok(()))
            }
            Ok(_) => {}
        }
        s.get_ref().0.poll_read_ready(cx)
    }

    #[inline(never)]
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.lock()).poll_flush(cx)
    }

    #[inline(never)]
    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        let mut s = self.lock();
        let mut cx = Context::from_waker(Waker::noop());
        let read = tokio_util::io::poll_read_buf(Pin::new(&mut *s), &mut cx, buf);
        // A handshake message (key update, ticket) may want an answer.
        let _ = Pin::new(&mut *s).poll_flush(&mut cx);
        match read {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    #[inline(never)]
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut s = self.lock();
        let mut cx = Context::from_waker(Waker::noop());
        // Earlier ciphertext first: rustls's buffer must not grow while the client does not
        // read (the session's output limits count plaintext only).
        match Pin::new(&mut *s).poll_flush(&mut cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => return Err(io::ErrorKind::WouldBlock.into()),
        }
        let n = match Pin::new(&mut *s).poll_write(&mut cx, buf) {
            Poll::Ready(r) => r?,
            Poll::Pending => return Err(io::ErrorKind::WouldBlock.into()),
        };
        let _ = Pin::new(&mut *s).poll_flush(&mut cx);
        Ok(n)
    }
}

impl AsRawFd for ClientStream {
    /// The TCP socket (CLIENT KILL shuts it down).
    fn as_raw_fd(&self) -> RawFd {
        match self {
            ClientStream::Tcp(s) => s.as_raw_fd(),
            ClientStream::Tls(t) => t.fd,
        }
    }
}

impl Drop for TlsClient {
    /// Tells the client the connection ends on purpose (close_notify), if the socket takes it
    /// now; a closing connection is never waited for.
    fn drop(&mut self) {
        let s = self.stream.get_mut().unwrap_or_else(|e| e.into_inner());
        s.get_mut().1.send_close_notify();
        let mut cx = Context::from_waker(Waker::noop());
        let _ = Pin::new(s).poll_flush(&mut cx);
    }
}
