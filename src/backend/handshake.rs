//! Connection setup: TCP connect with a timeout, then HELLO (protocol + AUTH) so that every
//! connection speaks the protocol its users expect.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::tls::{Connector, NodeStream};

use super::BackendError;
use crate::resp::{encode, Frame, Limits, Protocol, Reply, ReplyCodec};
use tokio_util::codec::Decoder;

/// Credentials and protocol for a new node connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct Handshake {
    /// ACL user (None: `default`).
    pub(crate) username: Option<String>,
    /// Password; no AUTH when None.
    pub(crate) password: Option<String>,
    /// Protocol to negotiate. RESP3 is sent as `HELLO 3`; RESP2 needs no HELLO, so it also works
    /// against servers older than Redis 6.
    pub(crate) protocol: Protocol,
    /// Send `READONLY` after the handshake (Redis Cluster): a cluster replica serves reads
    /// only on connections that asked for it, and a master ignores it, so a node keeps its
    /// connections across a role change.
    pub(crate) readonly: bool,
    /// TLS toward the node (the pool's `backend_tls`), none for plain TCP.
    pub(crate) tls: Option<Arc<Connector>>,
    /// Logs in as a client's own user (`auth = "passthrough"`): a refusal is that client's
    /// wrong password or missing permission, not the node refusing the proxy, so it is not
    /// reported as one (`refusals`).
    pub(crate) for_client: bool,
}

/// Connects and performs the handshake. `buf` receives any bytes read past the handshake replies.
pub(crate) async fn connect(
    addr: &str,
    hs: &Handshake,
    timeout: Duration,
    buf: &mut BytesMut,
) -> Result<NodeStream, BackendError> {
    let unavailable = |reason: String| BackendError::Unavailable {
        addr: addr.to_string(),
        reason,
    };
    let mut stream = open(addr, hs, timeout).await.map_err(unavailable)?;
    let (req, expected, ping_only) = handshake_request(hs);
    let io = async {
        stream.write_all_flushed(&req).await?;
        let mut first_error = None;
        for _ in 0..expected {
            let reply = read_one(&mut stream, buf).await?;
            if reply.is_error() && first_error.is_none() {
                first_error = Some(reply);
            }
        }
        Ok::<_, std::io::Error>(first_error)
    };
    let refused = match tokio::time::timeout(timeout, io).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(unavailable(e.to_string())),
        Err(_) => return Err(unavailable("handshake timed out".into())),
    };
    // A node busy in a script answers PING with BUSY after it checked authentication: the
    // connection is fine (and may be the one that will kill the script).
    let refused = refused.filter(|r| !(ping_only && r.is_error_with(b"BUSY")));
    if let Some(reply) = refused {
        let text = String::from_utf8_lossy(&reply.raw[1..])
            .trim_end()
            .to_string();
        if !hs.for_client {
            super::refusals::refused(addr, &text);
        }
        return Err(BackendError::Handshake {
            addr: addr.to_string(),
            reason: text,
        });
    }
    if !hs.for_client {
        super::refusals::accepted(addr);
    }
    Ok(stream)
}

/// The TCP connection (and TLS session, if configured) to `addr`, each step within `timeout`.
async fn open(addr: &str, hs: &Handshake, timeout: Duration) -> Result<NodeStream, String> {
    let tcp = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => {
            return Err(format!(
                "connect timed out after {} ms",
                timeout.as_millis()
            ))
        }
    };
    // Small requests must not wait for Nagle: the proxy already batches.
    let _ = tcp.set_nodelay(true);
    match &hs.tls {
        None => Ok(NodeStream::Tcp(tcp)),
        Some(tls) => match tokio::time::timeout(timeout, tls.connect(addr, tcp)).await {
            Ok(result) => result,
            Err(_) => Err("TLS handshake timed out".into()),
        },
    }
}

/// The commands that set a new connection up (HELLO/AUTH, READONLY, or a PING), sent in one
/// write: the request, how many replies to check, and whether it is the lone PING.
fn handshake_request(hs: &Handshake) -> (BytesMut, usize, bool) {
    let mut req = BytesMut::new();
    let mut count = 0;
    let user = hs.username.as_deref().unwrap_or("default");
    let mut push = |req: &mut BytesMut, args: &[&[u8]]| {
        encode::command(req, args);
        count += 1;
    };
    match (hs.protocol, &hs.password) {
        (Protocol::Resp3, Some(pw)) => push(
            &mut req,
            &[b"HELLO", b"3", b"AUTH", user.as_bytes(), pw.as_bytes()],
        ),
        (Protocol::Resp3, None) => push(&mut req, &[b"HELLO", b"3"]),
        (Protocol::Resp2, Some(pw)) => push(&mut req, &[b"AUTH", user.as_bytes(), pw.as_bytes()]),
        (Protocol::Resp2, None) => {}
    }
    if hs.readonly {
        push(&mut req, &[b"READONLY"]);
    }
    let ping_only = req.is_empty();
    if ping_only {
        // Nothing to negotiate, but a node that now requires a password (CONFIG SET
        // requirepass) must be seen refusing here, not in the first client's reply.
        push(&mut req, &[b"PING"]);
    }
    (req, count, ping_only)
}

/// Reads exactly one reply frame from `stream`, buffering extra bytes in `buf`.
pub(crate) async fn read_one(
    stream: &mut NodeStream,
    buf: &mut BytesMut,
) -> std::io::Result<Reply> {
    let mut codec = ReplyCodec {
        limits: Limits::node(),
    };
    loop {
        match codec.decode(buf) {
            Ok(Some(reply)) => return Ok(reply),
            Ok(None) => {}
            Err(e) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    e.to_string(),
                ))
            }
        }
        buf.reserve(4096);
        if stream.read_buf(buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Sends one command on a fresh short-lived exchange and parses the reply (probes, ROLE, INFO).
pub(crate) async fn request_frame(
    stream: &mut NodeStream,
    buf: &mut BytesMut,
    args: &[&[u8]],
) -> std::io::Result<Frame> {
    let mut req = BytesMut::new();
    encode::command(&mut req, args);
    stream.write_all_flushed(&req).await?;
    let reply = read_one(stream, buf).await?;
    match Frame::parse(&reply.raw) {
        Ok(Some((f, _))) => Ok(f),
        Ok(None) => Err(std::io::ErrorKind::UnexpectedEof.into()),
        Err(e) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            e.to_string(),
        )),
    }
}
