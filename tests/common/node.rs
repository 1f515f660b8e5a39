//! A `sluice node` process on a loopback port chosen by the OS, killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use super::Client;

/// A running `sluice node`.
pub struct Node {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Node {
    /// Starts a node with no extra arguments.
    pub fn start() -> Node {
        Node::start_with(&[])
    }

    /// Starts `sluice node --port 0 --dir <tempdir> <extra>` and waits for its address line.
    pub fn start_with(extra: &[&str]) -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["node", "--port", "0", "--dir"])
            .arg(dir.path())
            .args(extra)
            .env(
                "SLUICE_LOG",
                std::env::var("SLUICE_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sluice node");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(a) = l.strip_prefix("sluice: node listening on ") {
                        break a.parse().expect("node addr");
                    }
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("sluice node exited before listening");
                }
            }
        };
        // Keep draining stdout so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Node {
            child,
            addr,
            _dir: dir,
        }
    }

    /// `127.0.0.1:port`
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// A raw client.
    pub fn client(&self) -> Client {
        Client::connect(&self.addr())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
