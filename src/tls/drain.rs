//! Reading a plain TCP socket dry without the `EAGAIN` `recv()`.
//!
//! tokio clears a socket's read readiness only when a read answers `WouldBlock`, so a task
//! that read everything there was would make one more `recv()` (answered `EAGAIN`) before it
//! waits again: one system call per request without pipelining. A read that leaves room in
//! the buffer has drained the socket, so readiness can be cleared right away instead.
//!
//! The read runs *inside* `try_io`: tokio clears only the readiness it observed before the
//! closure ran, so an event that arrives while or after the socket is read (on a multi-thread
//! runtime the I/O driver runs on other threads meanwhile) keeps the socket ready. Clearing
//! after a separate read would clear such an event too, and the task would miss data that
//! came in between (a client left waiting with its request unread).

use std::io;

use bytes::BytesMut;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Reads what `tcp` has into `buf` without waiting; `Ok(n)` with room left in `buf` means the
/// socket is drained and its read readiness already cleared. `WouldBlock` when nothing was
/// there, as `try_read_buf`.
pub(crate) fn read_to_dry(tcp: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    let room = buf.capacity() - buf.len();
    let mut drained = 0;
    let result = tcp.try_io(Interest::READABLE, || {
        let n = tcp.try_read_buf(buf)?;
        if n > 0 && n < room {
            // Reported as WouldBlock so that tokio clears the readiness it saw.
            drained = n;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match result {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && drained > 0 => Ok(drained),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// After a drained read the socket is not ready until new data arrives, and then it is:
    /// no data is missed and no EAGAIN read is needed in between.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_drained_socket_waits_for_new_data_and_sees_it() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut buf = BytesMut::with_capacity(4096);
        for round in 0..200u32 {
            let msg = format!("request {round}\r\n");
            client.write_all(msg.as_bytes()).await.unwrap();
            let mut got = 0;
            while got < msg.len() {
                server.readable().await.unwrap();
                match read_to_dry(&server, &mut buf) {
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("read: {e}"),
                }
            }
            assert_eq!(&buf[..], msg.as_bytes(), "round {round}");
            buf.clear();
            // Drained and cleared: not ready until the next write.
            let ready =
                tokio::time::timeout(std::time::Duration::from_millis(1), server.readable()).await;
            assert!(
                ready.is_err(),
                "round {round}: readiness left set after a drained read"
            );
        }
    }
}
