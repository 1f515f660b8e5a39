//! A node or sentinel connection, plain TCP or TLS, as one async stream; split into halves
//! for the multiplexed connection's reader and writer. Plain TCP keeps tokio's owned halves
//! (no lock); TLS halves share the stream through `tokio::io::split`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A connection to a node or a sentinel.
pub(crate) enum NodeStream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

/// The reading half of a [`NodeStream`].
pub(crate) enum NodeReadHalf {
    /// Plain TCP.
    Tcp(OwnedReadHalf),
    /// TLS over TCP.
    Tls(ReadHalf<Box<TlsStream<TcpStream>>>),
}

/// The writing half of a [`NodeStream`].
pub(crate) enum NodeWriteHalf {
    /// Plain TCP.
    Tcp(OwnedWriteHalf),
    /// TLS over TCP.
    Tls(WriteHalf<Box<TlsStream<TcpStream>>>),
}

impl NodeStream {
    /// Splits into a reader and a writer that can be used at the same time.
    pub(crate) fn into_split(self) -> (NodeReadHalf, NodeWriteHalf) {
        match self {
            NodeStream::Tcp(s) => {
                let (r, w) = s.into_split();
                (NodeReadHalf::Tcp(r), NodeWriteHalf::Tcp(w))
            }
            NodeStream::Tls(s) => {
                let (r, w) = tokio::io::split(s);
                (NodeReadHalf::Tls(r), NodeWriteHalf::Tls(w))
            }
        }
    }

    /// Writes all of `buf` and, under TLS, waits until its records are on the socket.
    pub(crate) async fn write_all_flushed(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            NodeStream::Tcp(s) => s.write_all(buf).await,
            NodeStream::Tls(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
        }
    }

    /// Reads what has arrived without waiting (`WouldBlock` when nothing has).
    pub(crate) fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            NodeStream::Tcp(s) => s.try_read(buf),
            NodeStream::Tls(s) => {
                let mut cx = Context::from_waker(Waker::noop());
                let mut rb = ReadBuf::new(buf);
                match Pin::new(s).poll_read(&mut cx, &mut rb) {
                    Poll::Ready(Ok(())) => Ok(rb.filled().len()),
                    Poll::Ready(Err(e)) => Err(e),
                    Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
                }
            }
        }
    }
}

impl NodeWriteHalf {
    /// Writes all of `buf` and, under TLS, waits until its records are on the socket (rustls
    /// may keep the last one buffered when the socket was full).
    pub(crate) async fn write_all_flushed(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            NodeWriteHalf::Tcp(s) => s.write_all(buf).await,
            NodeWriteHalf::Tls(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
        }
    }
}

impl NodeReadHalf {
    /// Waits for data and reads what is there into `buf` (`Ok(0)` at EOF). Plain TCP: a read
    /// that leaves room in `buf` drained the socket and cleared its read readiness
    /// (`drain::read_to_dry`), so the next wait needs no `EAGAIN` read first; TLS reads as
    /// `read_buf` does (a short read may leave a partial record). Cancel-safe: nothing is
    /// read before the socket is ready.
    pub(crate) async fn read_some(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            NodeReadHalf::Tcp(r) => loop {
                r.as_ref().readable().await?;
                match super::drain::read_to_dry(r.as_ref(), buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    other => return other,
                }
            },
            NodeReadHalf::Tls(_) => self.read_buf(buf).await,
        }
    }
}

macro_rules! delegate_read {
    ($t:ty) => {
        impl AsyncRead for $t {
            #[inline]
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
                    Self::Tls(s) => Pin::new(s).poll_read(cx, buf),
                }
            }
        }
    };
}

macro_rules! delegate_write {
    ($t:ty) => {
        impl AsyncWrite for $t {
            #[inline]
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_write(cx, buf),
                    Self::Tls(s) => Pin::new(s).poll_write(cx, buf),
                }
            }
            #[inline]
            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_flush(cx),
                    Self::Tls(s) => Pin::new(s).poll_flush(cx),
                }
            }
            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
                    Self::Tls(s) => Pin::new(s).poll_shutdown(cx),
                }
            }
            #[inline]
            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
                    Self::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
                }
            }
            fn is_write_vectored(&self) -> bool {
                match self {
                    Self::Tcp(s) => s.is_write_vectored(),
                    Self::Tls(s) => s.is_write_vectored(),
                }
            }
        }
    };
}

delegate_read!(NodeStream);
delegate_read!(NodeReadHalf);
delegate_write!(NodeStream);
delegate_write!(NodeWriteHalf);
