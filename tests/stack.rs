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
        Stack::start_topology("standalone", 13)
    }

    /// Starts `sluice stack TOPOLOGY`, whose ports run to base + `ports` - 1.
    fn start_topology(topology: &str, ports: u16) -> Stack {
        for _ in 0..20 {
            let base = common::free_port_block(ports);
            let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
                .args(["stack", topology, "--base-port", &base.to_string()])
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

    /// Sends SIGTERM and checks that the process exits successfully and that none of
    /// `addrs` listens any more.
    fn stop(&mut self, addrs: &[String]) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let mut status = None;
        wait_until(Duration::from_secs(10), "the stack to exit", || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        assert!(status.is_some_and(|s| s.success()), "{status:?}");
        for addr in addrs {
            assert!(
                std::net::TcpStream::connect(addr.as_str()).is_err(),
                "{addr} still listening"
            );
        }
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
    stack.stop(&[
        proxy,
        admin,
        master,
        replicas[0].clone(),
        replicas[1].clone(),
    ]);
}

#[test]
fn the_sentinel_stack_survives_a_master_shutdown_and_stops_cleanly() {
    let mut stack = Stack::start_topology("sentinel", 23);
    let (proxy, master) = (stack.port(0), stack.port(10));
    let sentinels = [stack.port(20), stack.port(21), stack.port(22)];
    let mut c = Client::connect(&proxy);
    wait_until(Duration::from_secs(10), "a write through the proxy", || {
        c.cmd(&["SET", "hello", "world"]) == Resp::Simple("OK".into())
    });
    assert_eq!(
        Client::connect(&master).cmd(&["GET", "hello"]),
        Resp::Bulk(b"world".to_vec())
    );
    // Every sentinel knows both replicas and the two other sentinels, so that two of them
    // can agree and elect a leader.
    for s in &sentinels {
        wait_until(Duration::from_secs(20), "sentinel discovery", || {
            let mut sc = Client::connect(s);
            matches!(sc.cmd(&["SENTINEL", "replicas", "stack"]), Resp::Array(r) if r.len() == 2)
                && matches!(sc.cmd(&["SENTINEL", "sentinels", "stack"]), Resp::Array(r) if r.len() == 2)
        });
    }
    // SHUTDOWN stops the master node alone; the rest of the stack fails over.
    Client::connect(&master).send(&["SHUTDOWN", "NOSAVE"]);
    wait_until(Duration::from_secs(5), "the master node to stop", || {
        std::net::TcpStream::connect(master.as_str()).is_err()
    });
    let mut new_master = String::new();
    wait_until(
        Duration::from_secs(30),
        "the sentinels to name a new master",
        || {
            let reply = Client::connect(&sentinels[0]).cmd(&[
                "SENTINEL",
                "get-master-addr-by-name",
                "stack",
            ]);
            let Resp::Array(parts) = reply else {
                return false;
            };
            new_master = format!("127.0.0.1:{}", parts[1].text());
            new_master != master
        },
    );
    assert!(
        [stack.port(11), stack.port(12)].contains(&new_master),
        "{new_master} is not one of the replicas"
    );
    wait_until(
        Duration::from_secs(20),
        "writes through the proxy again",
        || c.cmd(&["SET", "hello", "again"]) == Resp::Simple("OK".into()),
    );
    assert_eq!(
        Client::connect(&new_master).cmd(&["GET", "hello"]),
        Resp::Bulk(b"again".to_vec())
    );
    // A sentinel stops alone too; the rest keeps serving.
    Client::connect(&sentinels[2]).send(&["SHUTDOWN"]);
    wait_until(Duration::from_secs(5), "the sentinel to stop", || {
        std::net::TcpStream::connect(sentinels[2].as_str()).is_err()
    });
    assert_eq!(c.cmd(&["GET", "hello"]), Resp::Bulk(b"again".to_vec()));
    let mut all: Vec<String> = (0..2).map(|i| stack.port(i)).collect();
    all.extend((10..13).map(|i| stack.port(i)));
    all.extend(sentinels.iter().cloned());
    stack.stop(&all);
}
