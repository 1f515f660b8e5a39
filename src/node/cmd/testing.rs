//! Test-only commands that exercise the skeleton's mechanisms before real commands use them,
//! and the tests that drive them through a real server.

use bytes::Bytes;

use super::{args, Args, Command, Ctx, Flags, Reply};

/// `__block key timeout`: pops a string key like a one-element BLPOP would. `__panic`:
/// panics, as a command with a bug would (what a panic inside a script leaves behind).
pub static COMMANDS: &[Command] = &[
    Command::new("__block", block, 3, Flags::WRITE.with(Flags::BLOCKING)).keys(1, 1, 1),
    Command::new("__panic", panic_command, 1, Flags::NONE),
];

fn panic_command(_: &mut Ctx, _: &Args) -> Reply {
    panic!("__panic called")
}

fn block(ctx: &mut Ctx, args: &Args) -> Reply {
    let timeout = match args::timeout(args.get(2)) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let key = args.get(1);
    match ctx.read::<Bytes>(key) {
        Err(e) => e,
        Ok(Some(v)) => {
            let v = v.clone();
            ctx.delete(key);
            ctx.modified(key);
            Reply::Bulk(v)
        }
        Ok(None) => ctx.block(vec![args.owned(1)], timeout, Reply::NullArray),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use crate::node::{run, NodeConfig};

    async fn start() -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let config = NodeConfig::for_tests();
        tokio::spawn(async move {
            let _ = run(
                config,
                async {
                    let _ = stop_rx.await;
                },
                |a| {
                    let _ = addr_tx.send(a);
                },
            )
            .await;
        });
        (addr_rx.await.expect("bound"), stop_tx)
    }

    /// Reads until `want` bytes arrived (or fails after 5 s).
    async fn expect(c: &mut TcpStream, want: &[u8]) {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < want.len() {
            let mut buf = [0u8; 256];
            let n = tokio::time::timeout_at(deadline.into(), c.read(&mut buf))
                .await
                .expect("reply in time")
                .expect("read");
            assert!(n > 0, "closed; got {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
    }

    #[tokio::test]
    async fn blocked_client_wakes_on_write_and_keeps_its_pipeline_behind() {
        let (addr, _stop) = start().await;
        let mut a = TcpStream::connect(addr).await.expect("connect");
        let mut b = TcpStream::connect(addr).await.expect("connect");
        a.write_all(b"__block k 0\r\nPING\r\n")
            .await
            .expect("write");
        // Nothing may arrive while blocked: not even the PING queued behind.
        let mut buf = [0u8; 16];
        assert!(
            tokio::time::timeout(Duration::from_millis(100), a.read(&mut buf))
                .await
                .is_err()
        );
        b.write_all(b"SET k v\r\n").await.expect("write");
        expect(&mut b, b"+OK\r\n").await;
        expect(&mut a, b"$1\r\nv\r\n+PONG\r\n").await;
        // The popped key is gone.
        b.write_all(b"GET k\r\n").await.expect("write");
        expect(&mut b, b"$-1\r\n").await;
    }

    #[tokio::test]
    async fn blocked_client_times_out_with_its_timeout_reply() {
        let (addr, _stop) = start().await;
        let mut a = TcpStream::connect(addr).await.expect("connect");
        let started = Instant::now();
        a.write_all(b"__block k 0.1\r\n").await.expect("write");
        expect(&mut a, b"*-1\r\n").await;
        assert!(started.elapsed() >= Duration::from_millis(100));
        a.write_all(b"__block k -1\r\n").await.expect("write");
        expect(&mut a, b"-ERR timeout is negative\r\n").await;
    }

    #[tokio::test]
    async fn two_blocked_clients_get_one_element_each() {
        let (addr, _stop) = start().await;
        let mut a = TcpStream::connect(addr).await.expect("connect");
        let mut b = TcpStream::connect(addr).await.expect("connect");
        let mut w = TcpStream::connect(addr).await.expect("connect");
        a.write_all(b"__block k 0\r\n").await.expect("write");
        b.write_all(b"__block k 0\r\n").await.expect("write");
        tokio::time::sleep(Duration::from_millis(50)).await;
        w.write_all(b"SET k 1\r\n").await.expect("write");
        expect(&mut w, b"+OK\r\n").await;
        // Exactly one of them got it; the other blocks again until the second write.
        let (mut fa, mut fb) = ([0u8; 7], [0u8; 7]);
        let winner_is_a = tokio::select! {
            r = a.read_exact(&mut fa) => { r.expect("read"); true }
            r = b.read_exact(&mut fb) => { r.expect("read"); false }
        };
        let first = if winner_is_a { fa } else { fb };
        assert_eq!(&first, b"$1\r\n1\r\n");
        w.write_all(b"SET k 2\r\n").await.expect("write");
        expect(&mut w, b"+OK\r\n").await;
        let other = if winner_is_a { &mut b } else { &mut a };
        expect(other, b"$1\r\n2\r\n").await;
    }
}
