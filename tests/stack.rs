//! `sluice stack standalone`: the whole stack from one process, as the README's first command.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{wait_until, Client, Resp};

/// A running `sluice stack standalone` and its endpoints.
struct Stack {
    child: Child,
    base: u16,
}

impl Stack {
    /// Starts a stack on a free base port below 32768 (its ports run to base + 12), retrying
    /// with another base when one of them is taken.
    fn start() -> Stack {
        for _ in 0..20 {
            let base = common::free_port_block(13);
            let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
                .args(["stack", "standalone", "--base-port", &base.to_string()])
                .env("SLUICE_LOG", "error")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn sluice stack");
            let stdout = child.stdout.take().expect("stdout");
            let mut lines = BufReader::new(stdout).lines();
            let ready = lines
                .by_ref()
                .map_while(Result::ok)
                .any(|l| l.starts_with("sluice: stack ready"));
            if ready {
                std::thread::spawn(move || for _ in lines {});
                return Stack { child, base };
            }
            let _ = child.wait();
        }
        panic!("could not start sluice stack");
    }

    fn port(&self, offset: u16) -> String {
        format!("127.0.0.1:{}", self.base + offset)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect admin");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

fn get_calls(node: &str) -> u64 {
    let info = Client::connect(node).cmd(&["INFO", "commandstats"]).text();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn one_command_runs_a_master_two_replicas_and_a_splitting_proxy_and_stops_them_all() {
    let mut stack = Stack::start();
    let (proxy, admin, master) = (stack.port(0), stack.port(1), stack.port(10));
    let replicas = [stack.port(11), stack.port(12)];
    let mut c = Client::connect(&proxy);
    assert_eq!(c.cmd(&["SET", "hello", "world"]), Resp::Simple("OK".into()));
    assert_eq!(
        Client::connect(&master).cmd(&["GET", "hello"]),
        Resp::Bulk(b"world".to_vec())
    );
    for r in &replicas {
        wait_until(
            Duration::from_secs(10),
            "replication to the replica nodes",
            || Client::connect(r).cmd(&["GET", "hello"]) == Resp::Bulk(b"world".to_vec()),
        );
    }
    wait_until(
        Duration::from_secs(10),
        "both replicas in the read pool",
        || {
            let body = http_get(&admin, "/topology");
            let json = body.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            let topo: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
            let pool: Vec<String> = topo["pools"]["stack"]["read_pool"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            replicas.iter().all(|r| pool.contains(r))
        },
    );
    let before: u64 = replicas.iter().map(|r| get_calls(r)).sum();
    let master_before = get_calls(&master);
    for _ in 0..20 {
        assert_eq!(c.cmd(&["GET", "hello"]), Resp::Bulk(b"world".to_vec()));
    }
    let after: u64 = replicas.iter().map(|r| get_calls(r)).sum();
    assert_eq!(after - before, 20, "reads must be served by the replicas");
    assert_eq!(get_calls(&master), master_before);
    // SIGTERM stops every part: nothing listens afterwards.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(stack.child.id().to_string())
        .status();
    let mut status = None;
    wait_until(Duration::from_secs(10), "the stack to exit", || {
        status = stack.child.try_wait().ok().flatten();
        status.is_some()
    });
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    for addr in [&proxy, &admin, &master, &replicas[0], &replicas[1]] {
        assert!(
            std::net::TcpStream::connect(addr.as_str()).is_err(),
            "{addr} still listening"
        );
    }
}
