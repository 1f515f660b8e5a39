//! Dedicated node connections for connection-scoped state: MULTI/EXEC and WATCH, blocking
//! commands and subscriptions. A session holds one while that state lives, then gives it back;
//! idle ones are kept per protocol and reused, so a transaction never costs a TCP handshake
//! (the connection storm users saw with a proxy that opened one per MULTI).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::handshake::{self, Handshake};
use super::BackendError;
use crate::resp::{Protocol, Reply};

/// A connection owned by one session at a time. It speaks the session's own protocol, so
/// replies pass through untouched. Dropping it closes it.
pub struct DirectConn {
    stream: TcpStream,
    rbuf: BytesMut,
    addr: Arc<str>,
    protocol: Protocol,
    /// Database currently selected on this connection.
    pub db: u16,
    _permit: OwnedSemaphorePermit,
}

impl DirectConn {
    /// The protocol this connection negotiated.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The node's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Writes raw request bytes.
    pub async fn write(&mut self, raw: &[u8]) -> Result<(), BackendError> {
        self.stream.write_all(raw).await.map_err(|e| self.lost(e))
    }

    /// Reads the next frame (a reply, or a pushed message on a subscribed connection).
    pub async fn read(&mut self) -> Result<Reply, BackendError> {
        handshake::read_one(&mut self.stream, &mut self.rbuf)
            .await
            .map_err(|e| self.lost(e))
    }

    /// Writes a request and reads one reply.
    pub async fn request(&mut self, raw: &[u8]) -> Result<Reply, BackendError> {
        self.write(raw).await?;
        self.read().await
    }

    /// True when the node has closed its side (checked without blocking before reuse).
    fn is_closed(&self) -> bool {
        let mut probe = [0u8; 1];
        match self.stream.try_read(&mut probe) {
            Ok(0) => true,
            // Unsolicited bytes on an idle connection mean its state is unknown: do not reuse.
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(_) => true,
        }
    }

    fn lost(&self, e: std::io::Error) -> BackendError {
        BackendError::ConnectionLost {
            addr: self.addr.to_string(),
            reason: e.to_string(),
        }
    }
}

/// The dedicated connections of one node: at most `max` open, idle ones kept for reuse.
pub struct DirectPool {
    addr: Arc<str>,
    handshake: Handshake,
    connect_timeout: Duration,
    max: usize,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<DirectConn>>,
}

impl DirectPool {
    /// A pool for `addr`; `handshake.protocol` is replaced per checkout.
    pub fn new(
        addr: &str,
        handshake: Handshake,
        connect_timeout: Duration,
        max: usize,
    ) -> DirectPool {
        DirectPool {
            addr: addr.into(),
            handshake,
            connect_timeout,
            max,
            permits: Arc::new(Semaphore::new(max)),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// An idle connection of the wanted protocol, or a new one.
    pub async fn checkout(&self, protocol: Protocol) -> Result<DirectConn, BackendError> {
        loop {
            let found = {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                idle.iter()
                    .rposition(|c| c.protocol == protocol)
                    .map(|i| idle.swap_remove(i))
            };
            match found {
                Some(conn) if conn.is_closed() => continue,
                Some(conn) => return Ok(conn),
                None => break,
            }
        }
        // Wait a little for a permit: a burst of transactions queues rather than failing.
        let permit =
            match tokio::time::timeout(self.connect_timeout, self.permits.clone().acquire_owned())
                .await
            {
                Ok(Ok(p)) => p,
                _ => {
                    return Err(BackendError::Exhausted {
                        addr: self.addr.to_string(),
                        max: self.max,
                    })
                }
            };
        let hs = Handshake {
            protocol,
            ..self.handshake.clone()
        };
        let mut rbuf = BytesMut::new();
        let stream = handshake::connect(&self.addr, &hs, self.connect_timeout, &mut rbuf).await?;
        Ok(DirectConn {
            stream,
            rbuf,
            addr: self.addr.clone(),
            protocol,
            db: 0,
            _permit: permit,
        })
    }

    /// Returns a connection whose state is clean (no transaction, no watch, not blocked, not
    /// subscribed) for reuse. Anything else must be dropped instead.
    pub fn checkin(&self, conn: DirectConn) {
        if !conn.rbuf.is_empty() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.push(conn);
    }

    /// Connections currently open (idle or in use).
    pub fn open(&self) -> usize {
        self.max - self.permits.available_permits()
    }
}
