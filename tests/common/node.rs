//! A `sluice node` process on a loopback port chosen by the OS, killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{wait_until, Client, Resp};

/// A running `sluice node`.
pub struct Node {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    extra: Vec<String>,
    dir: tempfile::TempDir,
}

/// Spawns `sluice node --port <port> --dir <dir> <extra>` and waits for its address line.
fn spawn(port: u16, dir: &Path, extra: &[String]) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["node", "--port", &port.to_string(), "--dir"])
        .arg(dir)
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
    (child, addr)
}

impl Node {
    /// Starts a node with no extra arguments.
    pub fn start() -> Node {
        Node::start_with(&[])
    }

    /// Starts `sluice node --port 0 --dir <tempdir> <extra>` and waits for its address line.
    pub fn start_with(extra: &[&str]) -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (child, addr) = spawn(0, dir.path(), &extra);
        Node {
            child,
            addr,
            extra,
            dir,
        }
    }

    /// Starts a node replicating from `master` (`--replicaof`).
    pub fn replica_of(master: &Node) -> Node {
        let port = master.addr.port().to_string();
        Node::start_with(&["--replicaof", "127.0.0.1", &port])
    }

    /// `127.0.0.1:port`
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The node's `--dir`.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// A raw client.
    pub fn client(&self) -> Client {
        Client::connect(&self.addr())
    }

    /// Kills the process with SIGKILL (no shutdown work at all).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the process to exit (a clean shutdown).
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let start = std::time::Instant::now();
        while !matches!(self.child.try_wait(), Ok(Some(_))) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "node ignored SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit on its own (after SHUTDOWN); false if it is still
    /// running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let start = std::time::Instant::now();
        while start.elapsed() < timeout {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Starts the process again on the same port, dir and arguments (after [`Node::kill9`]).
    pub fn restart(&mut self) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            self.kill9();
        }
        let (child, addr) = spawn(self.addr.port(), self.dir.path(), &self.extra);
        self.child = child;
        self.addr = addr;
    }

    /// The most resident memory the process has had (VmHWM), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    }

    /// `INFO <section>` as text.
    pub fn info(&self, section: &str) -> String {
        self.client().cmd(&["INFO", section]).text()
    }

    /// One `field:value` of `INFO <section>` (panics if absent).
    pub fn info_field(&self, section: &str, field: &str) -> String {
        let info = self.info(section);
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
            .unwrap_or_else(|| panic!("no {field} in INFO {section}:\n{info}"))
    }

    /// `master_repl_offset` as a number.
    pub fn repl_offset(&self) -> i64 {
        self.info_field("replication", "master_repl_offset")
            .parse()
            .expect("offset")
    }

    /// Waits until this replica's link is up and it processed everything `master` produced.
    pub fn wait_synced_with(&self, master: &Node) {
        wait_until(Duration::from_secs(10), "replica caught up", || {
            self.info_field("replication", "master_link_status") == "up"
                && self.repl_offset() == master.repl_offset()
        });
    }

    /// GET `key` in db 0 (`None` for a null reply).
    pub fn get(&self, key: &str) -> Option<String> {
        match self.client().cmd(&["GET", key]) {
            Resp::Nil => None,
            r => Some(r.text()),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
