//! A client connection from the sentinel to a monitored instance or another sentinel: one
//! request at a time, each bounded by a timeout, replies parsed into [`Frame`]s.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::state::Addr;
use crate::resp::{encode, Frame};

/// Credentials for the monitored instances (`auth-user`, `auth-pass`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Auth {
    pub user: Option<String>,
    pub pass: Option<String>,
}

/// An open connection.
pub(crate) struct Link {
    stream: TcpStream,
    buf: BytesMut,
    timeout: Duration,
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "no reply in time")
}

impl Link {
    /// Connects, authenticates when `auth` has a password, and names the connection
    /// (`CLIENT SETNAME`, so operators see sentinel links in CLIENT LIST, as with Redis).
    pub async fn connect(
        addr: &Addr,
        auth: &Auth,
        name: &str,
        timeout: Duration,
    ) -> io::Result<Link> {
        let target = (addr.host.as_str(), addr.port);
        let stream = tokio::time::timeout(timeout, TcpStream::connect(target))
            .await
            .map_err(|_| timed_out())??;
        let _ = stream.set_nodelay(true);
        let mut link = Link {
            stream,
            buf: BytesMut::with_capacity(4096),
            timeout,
        };
        if let Some(pass) = &auth.pass {
            let reply = match &auth.user {
                Some(u) => link.call(&[b"AUTH", u.as_bytes(), pass.as_bytes()]).await?,
                None => link.call(&[b"AUTH", pass.as_bytes()]).await?,
            };
            if let Frame::Error(e) = reply {
                tracing::warn!(target: "sluice::sentinel", %addr, "AUTH refused: {}", String::from_utf8_lossy(&e));
            }
        }
        // Sentinels and old servers may not know CLIENT SETNAME; the answer does not matter.
        link.call(&[b"CLIENT", b"SETNAME", name.as_bytes()]).await?;
        Ok(link)
    }

    /// The local address this connection uses (announced in hello messages).
    pub fn local_ip(&self) -> Option<IpAddr> {
        self.stream.local_addr().ok().map(|a| a.ip())
    }

    /// Sends one command and reads its reply.
    pub async fn call(&mut self, args: &[&[u8]]) -> io::Result<Frame> {
        self.send(args).await?;
        tokio::time::timeout(self.timeout, self.read())
            .await
            .map_err(|_| timed_out())?
    }

    /// Sends several commands at once and reads all their replies (MULTI ... EXEC).
    pub async fn call_all(&mut self, cmds: &[Vec<&[u8]>]) -> io::Result<Vec<Frame>> {
        let mut out = BytesMut::new();
        for c in cmds {
            encode::command(&mut out, c);
        }
        self.stream.write_all(&out).await?;
        let mut replies = Vec::with_capacity(cmds.len());
        for _ in cmds {
            let f = tokio::time::timeout(self.timeout, self.read())
                .await
                .map_err(|_| timed_out())??;
            replies.push(f);
        }
        Ok(replies)
    }

    /// Sends one command without waiting for a reply.
    pub async fn send(&mut self, args: &[&[u8]]) -> io::Result<()> {
        let mut out = BytesMut::new();
        encode::command(&mut out, args);
        self.stream.write_all(&out).await
    }

    /// Reads the next frame (a reply or a pub/sub message), waiting as long as it takes.
    pub async fn read(&mut self) -> io::Result<Frame> {
        loop {
            match Frame::parse(&self.buf) {
                Ok(Some((frame, used))) => {
                    let _ = self.buf.split_to(used);
                    return Ok(frame);
                }
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            }
            self.buf.reserve(4096);
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

/// One command on a fresh connection (failover orders, votes): connect, send, read, close.
pub(crate) async fn once(
    addr: &Addr,
    auth: &Auth,
    name: &str,
    timeout: Duration,
    cmds: &[Vec<&[u8]>],
) -> io::Result<Vec<Frame>> {
    let mut link = Link::connect(addr, auth, name, timeout).await?;
    link.call_all(cmds).await
}

/// The text of a bulk or simple string reply.
pub(crate) fn text(f: &Frame) -> Option<String> {
    match f {
        Frame::Bulk(b) | Frame::Simple(b) | Frame::Verbatim(_, b) => {
            Some(String::from_utf8_lossy(b).into_owned())
        }
        _ => None,
    }
}
