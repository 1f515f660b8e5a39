//! Test harness: real `redis-server` processes and the `sluice` binary, started on loopback
//! and killed when dropped (also on panic), plus a raw RESP client and polling helpers.
#![allow(dead_code)]

pub mod cluster;
pub mod node;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Polls `cond` every 20 ms until it holds or `timeout` passes; panics with `what` on timeout.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Arguments every test redis-server gets before its own extras.
const BASE_ARGS: usize = 20;

/// A port for redis-server below the ephemeral range (32768+), different on every call.
/// A base port below 32768 such that `base..base + n` are all free right now (a later bind
/// can still lose a race: callers retry).
pub fn free_port_block(n: u16) -> u16 {
    loop {
        let base = candidate_port().min(32767 - n);
        let free = (base..base + n).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
        if free {
            return base;
        }
    }
}

fn candidate_port() -> u16 {
    let seed = std::process::id() as u64 * 7919
        + SEQ.fetch_add(1, Ordering::Relaxed) * 104_729
        + Instant::now().elapsed().subsec_nanos() as u64
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0);
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    20000 + (x % 12000) as u16
}

/// Which server `Redis::start*` runs: a real redis-server, or our own `sluice node`. The
/// proxy's tests run against both with the same assertions (see `on_both_backends!`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `redis-server` from the system.
    Redis,
    /// `sluice node` from this build.
    Node,
}

thread_local! {
    // Each test runs on its own thread, so a test's backend is simply this thread's. Tests
    // that do not choose run on redis-server, or on sluice nodes with
    // SLUICE_TEST_BACKEND=node (to try a redis-server-only test file against nodes).
    static BACKEND: std::cell::Cell<Backend> = std::cell::Cell::new(
        if std::env::var("SLUICE_TEST_BACKEND").is_ok_and(|b| b == "node") {
            Backend::Node
        } else {
            Backend::Redis
        },
    );
}

impl Backend {
    /// Runs `test` with every server it starts being of this kind.
    pub fn run(self, test: fn()) {
        BACKEND.with(|b| b.set(self));
        test();
    }

    /// The backend of the running test.
    pub fn current() -> Backend {
        BACKEND.with(|b| b.get())
    }
}

/// Declares each listed test (a plain `fn()` in the file) twice: `on_redis::name` against
/// redis-server and `on_node::name` against `sluice node`. Tests listed after `redis_only:`
/// get only the redis-server variant (each with the reason where it is declared).
#[macro_export]
macro_rules! on_both_backends {
    (both: [$($both:ident),* $(,)?], redis_only: [$($only:ident),* $(,)?] $(,)?) => {
        mod on_redis {
            $(#[test] fn $both() { $crate::common::Backend::Redis.run(super::$both) })*
            $(#[test] fn $only() { $crate::common::Backend::Redis.run(super::$only) })*
        }
        mod on_node {
            $(#[test] fn $both() { $crate::common::Backend::Node.run(super::$both) })*
        }
    };
}

/// True when the redis-server answering on `port` is process `pid`.
fn serves_pid(port: u16, pid: u32) -> bool {
    let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
    if c.write_all(b"INFO server\r\n").is_err() {
        return false;
    }
    let mut rd = BufReader::new(c);
    match parse(&mut rd) {
        Ok(Resp::Bulk(info)) => String::from_utf8_lossy(&info)
            .lines()
            .any(|l| l.trim_end() == format!("process_id:{pid}")),
        _ => false,
    }
}

/// A redis-server (or, under `Backend::Node`, a `sluice node`) process.
pub struct Redis {
    child: Child,
    pub port: u16,
    args: Vec<String>,
    // Its own directory, new at every (re)start: a replica's full sync leaves an RDB file
    // behind, which a later server in a shared directory would load as its initial data.
    _dir: tempfile::TempDir,
}

impl Redis {
    /// Starts a standalone master.
    pub fn start() -> Redis {
        Redis::start_with(&[])
    }

    /// Starts a replica of `master`.
    pub fn replica_of(master: &Redis) -> Redis {
        Redis::start_with(&["--replicaof", "127.0.0.1", &master.port.to_string()])
    }

    /// Starts redis-server with extra arguments, retrying on another port if the port is taken.
    pub fn start_with(extra: &[&str]) -> Redis {
        for _ in 0..20 {
            let port = candidate_port();
            if let Some(r) = Redis::try_start(port, extra) {
                return r;
            }
        }
        panic!("could not start redis-server on any port");
    }

    fn try_start(port: u16, extra: &[&str]) -> Option<Redis> {
        if Backend::current() == Backend::Node {
            return Redis::try_start_node(port, extra);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mut args: Vec<String> = vec![
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            "".into(),
            "--appendonly".into(),
            "no".into(),
            "--protected-mode".into(),
            "no".into(),
            "--daemonize".into(),
            "no".into(),
            "--logfile".into(),
            "".into(),
            "--dir".into(),
            dir.path().to_string_lossy().into_owned(),
            "--dbfilename".into(),
            format!("sluice-test-{port}.rdb"),
            // Replicas that attach one after the other would each wait 5 s (the default) for
            // company before the master starts a diskless sync.
            "--repl-diskless-sync-delay".into(),
            "0".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = child.try_wait() {
                return None; // exited: most likely the port was taken
            }
            // The server answering must be this child: when the port was taken by another
            // test's server, our child exits, but that other server answers PING meanwhile.
            if serves_pid(port, child.id()) {
                return Some(Redis {
                    child,
                    port,
                    args,
                    _dir: dir,
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// `sluice node` on `port` with redis-server's `extra` arguments translated: the ones
    /// a node has are passed on, tuning that only matters to redis-server is dropped, and
    /// anything else fails the test (so a test cannot silently lose a setting it relies on).
    fn try_start_node(port: u16, extra: &[&str]) -> Option<Redis> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut args: Vec<String> = vec![
            "node".into(),
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            dir.path().to_string_lossy().into_owned(),
        ];
        // Keep `args[BASE_ARGS..]` the extras, as for redis-server (`restart` relies on it).
        args.resize(BASE_ARGS, String::new());
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut node_args: Vec<String> = args[..7].to_vec();
        let mut it = extra.iter();
        while let Some(flag) = it.next() {
            match *flag {
                "--replicaof" => {
                    node_args.push("--replicaof".into());
                    node_args.extend(it.by_ref().take(2).map(|s| s.to_string()));
                }
                "--requirepass" => {
                    node_args.push("--requirepass".into());
                    node_args.extend(it.next().map(|s| s.to_string()));
                }
                // redis-server only: the node has DEBUG always on.
                "--enable-debug-command" => {
                    it.next();
                }
                "--cluster-enabled"
                | "--cluster-config-file"
                | "--cluster-node-timeout"
                | "--cluster-port" => {
                    node_args.push(flag.to_string());
                    node_args.extend(it.next().map(|s| s.to_string()));
                }
                // The node keeps no RDB; its cluster config file path is absolute; the AOF
                // folder name matters only where redis-server nodes share a directory.
                "--dir" | "--dbfilename" | "--appenddirname" => {
                    it.next();
                }
                other => panic!("sluice node has no equivalent of redis-server {other}"),
            }
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(&node_args)
            .env(
                "SLUICE_LOG",
                std::env::var("SLUICE_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdout(Stdio::piped())
            // Logs reach the test's output only when asked for (SLUICE_LOG set).
            .stderr(if std::env::var_os("SLUICE_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("spawn sluice node");
        // The node prints its address only once it has bound the port itself, so unlike a
        // PING this cannot be answered by another test's server on a taken port.
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let listening = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.starts_with("sluice: node listening on "));
        if listening {
            std::thread::spawn(move || for _ in lines {});
            return Some(Redis {
                child,
                port,
                args,
                _dir: dir,
            });
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// `127.0.0.1:port`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A raw client to this server.
    pub fn client(&self) -> Client {
        Client::connect(&self.addr())
    }

    /// The server's process id (to pause it with SIGSTOP, say).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the same server again on the same port (after `kill`).
    pub fn restart(&mut self) {
        let extra: Vec<String> = self.args[BASE_ARGS..].to_vec();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let start = Instant::now();
        loop {
            if let Some(r) = Redis::try_start(self.port, &extra) {
                drop(std::mem::replace(self, r));
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "could not restart redis on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `INFO <section>` as text.
    pub fn info(&self, section: &str) -> String {
        match self.client().cmd(&["INFO", section]) {
            Resp::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
            other => panic!("INFO returned {other:?}"),
        }
    }

    /// Calls of `cmd` (lower-case) from `INFO commandstats`.
    pub fn calls(&self, cmd: &str) -> u64 {
        let info = self.info("commandstats");
        let prefix = format!("cmdstat_{cmd}:calls=");
        info.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Waits until writes on `master` reach this replica. After a diskless full sync the master
    /// only starts streaming once the replica's first REPLCONF ACK arrives (up to a second
    /// later), so "link up" alone does not mean new writes replicate yet.
    pub fn wait_streaming(&self, master: &Redis) {
        self.wait_synced();
        let token = format!("{}-{}", self.port, SEQ.fetch_add(1, Ordering::Relaxed));
        assert_eq!(
            master.client().cmd(&["SET", "__sluice_sync_probe", &token]),
            Resp::Simple("OK".into())
        );
        wait_until(
            Duration::from_secs(10),
            "writes to stream to the replica",
            || {
                self.client().cmd(&["GET", "__sluice_sync_probe"])
                    == Resp::Bulk(token.clone().into_bytes())
            },
        );
    }

    /// Waits until this replica's link to its master is up and the initial sync is done.
    pub fn wait_synced(&self) {
        wait_until(Duration::from_secs(30), "replica sync", || {
            let info = self.info("replication");
            info.contains("master_link_status:up") && info.contains("master_sync_in_progress:0")
        });
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `sluice proxy` process.
pub struct Sluice {
    child: Child,
    /// Address of each pool, in config order.
    pub pools: Vec<SocketAddr>,
    /// Admin address, if configured.
    pub admin: Option<SocketAddr>,
    _dir: tempfile::TempDir,
}

impl Sluice {
    /// Starts `sluice proxy` with this config text (use port 0 in listen addresses).
    pub fn start(config: &str) -> Sluice {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, config).expect("write config");
        // `SLUICE_PROXY_BIN` runs a test against another build of the proxy (to measure a
        // figure before and after a change); the nodes stay this build's.
        let bin = std::env::var("SLUICE_PROXY_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_sluice").to_string());
        let mut child = Command::new(bin)
            .args(["proxy", "--config"])
            .arg(&path)
            .env(
                "SLUICE_LOG",
                std::env::var("SLUICE_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sluice");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let n_pools = config.matches("[[pools]]").count();
        let has_admin = config.contains("[admin]");
        let (mut pools, mut admin) = (Vec::new(), None);
        while pools.len() < n_pools || (has_admin && admin.is_none()) {
            let line = match lines.next() {
                Some(Ok(l)) => l,
                _ => {
                    let _ = child.kill();
                    panic!("sluice exited before listening");
                }
            };
            if let Some(rest) = line.strip_prefix("sluice: pool ") {
                let addr = rest.rsplit(' ').next().expect("addr");
                pools.push(addr.parse().expect("pool addr"));
            } else if let Some(rest) = line.strip_prefix("sluice: admin listening on ") {
                admin = Some(rest.parse().expect("admin addr"));
            }
        }
        // Keep draining stdout so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Sluice {
            child,
            pools,
            admin,
            _dir: dir,
        }
    }

    /// The first pool's address.
    pub fn addr(&self) -> String {
        self.pools[0].to_string()
    }

    /// A raw client to the first pool.
    pub fn client(&self) -> Client {
        Client::connect(&self.addr())
    }

    /// A `redis` crate connection to the first pool.
    pub fn redis(&self) -> redis::Connection {
        redis::Client::open(format!("redis://{}/", self.addr()))
            .expect("client")
            .get_connection()
            .expect("connect to sluice")
    }

    /// GET on the admin server: (status, body).
    pub fn http_get(&self, path: &str) -> (u16, String) {
        self.http("GET", path, &[])
    }

    /// A request to the admin server with extra header lines: (status, body).
    pub fn http(&self, method: &str, path: &str, headers: &[&str]) -> (u16, String) {
        let admin = self.admin.expect("no admin configured");
        let mut s = TcpStream::connect(admin).expect("connect admin");
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
        for h in headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        if method == "POST" {
            head.push_str("Content-Length: 0\r\n");
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).expect("write");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read");
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// The config file the proxy was started with (rewrite it, then reload).
    pub fn config_path(&self) -> std::path::PathBuf {
        self._dir.path().join("sluice.toml")
    }

    /// Sends a signal (`"TERM"`, `"HUP"`, ...) to the proxy.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// The exit status if the proxy exits within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits (up to 10 s) for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "sluice ignored SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process's resident memory in bytes.
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed RESP value (test side; independent of the crate's parser on purpose).
#[derive(Debug, Clone, PartialEq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Resp>),
    Map(Vec<(Resp, Resp)>),
    Set(Vec<Resp>),
    Push(Vec<Resp>),
    Double(String),
    Bool(bool),
    Verbatim(String),
}

impl Resp {
    /// Bulk or simple string as text.
    pub fn text(&self) -> String {
        match self {
            Resp::Simple(s) | Resp::Error(s) | Resp::Verbatim(s) | Resp::Double(s) => s.clone(),
            Resp::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("not a string: {other:?}"),
        }
    }
}

/// A blocking raw RESP client: exact bytes in, parsed frames out.
pub struct Client {
    stream: TcpStream,
    rd: BufReader<TcpStream>,
}

impl Client {
    /// Connects (10 s read timeout).
    pub fn connect(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let rd = BufReader::new(stream.try_clone().expect("clone"));
        Client { stream, rd }
    }

    /// Sets the read timeout.
    pub fn set_timeout(&self, t: Duration) {
        self.stream.set_read_timeout(Some(t)).expect("timeout");
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends a command (multibulk) without reading.
    pub fn send(&mut self, args: &[&str]) {
        self.send_raw(&encode(args));
    }

    /// Sends a command and reads one reply.
    pub fn cmd(&mut self, args: &[&str]) -> Resp {
        self.send(args);
        self.read()
    }

    /// Reads one reply; panics on EOF or timeout.
    pub fn read(&mut self) -> Resp {
        self.try_read().expect("read reply")
    }

    /// Reads one reply; Err on EOF/timeout.
    pub fn try_read(&mut self) -> std::io::Result<Resp> {
        parse(&mut self.rd)
    }

    /// Sends a command and returns the reply's exact bytes.
    pub fn cmd_raw(&mut self, args: &[&str]) -> Vec<u8> {
        self.send(args);
        let mut out = Vec::new();
        read_raw(&mut self.rd, &mut out).expect("read reply");
        out
    }

    /// Reads one reply's exact bytes without sending anything (pub/sub messages).
    pub fn read_raw_reply(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        read_raw(&mut self.rd, &mut out).expect("read reply");
        out
    }

    /// True if the server closed the connection (EOF) within the read timeout.
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.rd.read(&mut b), Ok(0))
    }
}

/// Multibulk-encodes a command.
pub fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn line(rd: &mut impl BufRead) -> std::io::Result<String> {
    let mut l = String::new();
    if rd.read_line(&mut l)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(l.trim_end_matches("\r\n").to_string())
}

/// Copies one complete frame's bytes.
fn read_raw(rd: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<()> {
    let l = line(rd)?;
    out.extend_from_slice(l.as_bytes());
    out.extend_from_slice(b"\r\n");
    let n: i64 = l.get(1..).and_then(|r| r.parse().ok()).unwrap_or(-1);
    match l.as_bytes().first() {
        Some(b'$' | b'=' | b'!') if n >= 0 => {
            let mut b = vec![0u8; n as usize + 2];
            rd.read_exact(&mut b)?;
            out.extend_from_slice(&b);
        }
        Some(b'*' | b'~' | b'>') => {
            for _ in 0..n.max(0) {
                read_raw(rd, out)?;
            }
        }
        Some(b'%') => {
            for _ in 0..n.max(0) * 2 {
                read_raw(rd, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

pub fn parse(rd: &mut impl BufRead) -> std::io::Result<Resp> {
    let l = line(rd)?;
    let (t, rest) = l.split_at(1);
    let n = || rest.parse::<i64>().unwrap_or(-1);
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad frame {l:?}"));
    Ok(match t {
        "+" => Resp::Simple(rest.into()),
        "-" => Resp::Error(rest.into()),
        ":" => Resp::Int(n()),
        "_" => Resp::Nil,
        "," => Resp::Double(rest.into()),
        "#" => Resp::Bool(rest == "t"),
        "$" | "=" | "!" => {
            if n() < 0 {
                return Ok(Resp::Nil);
            }
            let mut b = vec![0u8; n() as usize + 2];
            rd.read_exact(&mut b)?;
            b.truncate(n() as usize);
            match t {
                "$" => Resp::Bulk(b),
                "!" => Resp::Error(String::from_utf8_lossy(&b).into()),
                _ => Resp::Verbatim(String::from_utf8_lossy(&b[4.min(b.len())..]).into()),
            }
        }
        "*" | "~" | ">" => {
            if n() < 0 {
                return Ok(Resp::Nil);
            }
            let items = (0..n())
                .map(|_| parse(rd))
                .collect::<std::io::Result<Vec<_>>>()?;
            match t {
                "*" => Resp::Array(items),
                "~" => Resp::Set(items),
                _ => Resp::Push(items),
            }
        }
        "%" => {
            let mut pairs = Vec::new();
            for _ in 0..n() {
                pairs.push((parse(rd)?, parse(rd)?));
            }
            Resp::Map(pairs)
        }
        _ => return Err(bad()),
    })
}

/// Walks one SCAN-family command to its end through `c` (`prefix` holds the arguments before
/// the cursor, e.g. `["HSCAN", "h"]`), returning every element it gave (members only for
/// HSCAN/ZSCAN) and how many calls it took.
pub fn full_scan(c: &mut Client, prefix: &[&str]) -> (Vec<String>, usize) {
    let pairs = matches!(prefix[0], "HSCAN" | "ZSCAN");
    let (mut cursor, mut seen, mut calls) = ("0".to_string(), Vec::new(), 0);
    loop {
        let mut args: Vec<&str> = prefix.to_vec();
        args.extend([cursor.as_str(), "COUNT", "10"]);
        let reply = c.cmd(&args);
        calls += 1;
        let Resp::Array(parts) = reply else {
            panic!("{args:?}: {reply:?}");
        };
        let [next, Resp::Array(items)] = &parts[..] else {
            panic!("{args:?}: {parts:?}");
        };
        let step = if pairs { 2 } else { 1 };
        seen.extend(items.iter().step_by(step).map(Resp::text));
        cursor = next.text();
        if cursor == "0" {
            return (seen, calls);
        }
        assert!(calls < 10_000, "{prefix:?} never ended");
    }
}

/// (missed, returned more than once) of `want` in what a scan returned.
pub fn misses_and_repeats(want: &[String], got: &[String]) -> (usize, usize) {
    let mut counts = std::collections::HashMap::new();
    for g in got {
        *counts.entry(g.as_str()).or_insert(0usize) += 1;
    }
    let missed = want
        .iter()
        .filter(|w| !counts.contains_key(w.as_str()))
        .count();
    let repeated = want
        .iter()
        .filter(|w| counts.get(w.as_str()).is_some_and(|&n| n > 1))
        .count();
    (missed, repeated)
}

/// Config text for a standalone pool in front of `master` and `replicas`.
pub fn standalone_config(
    master: &Redis,
    replicas: &[&Redis],
    read_from: &str,
    extra: &str,
) -> String {
    let reps: Vec<String> = replicas
        .iter()
        .map(|r| format!("\"{}\"", r.addr()))
        .collect();
    format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[pools]]\nname = \"main\"\nlisten = \"127.0.0.1:0\"\nmode = \"standalone\"\n\
         master = \"{}\"\nreplicas = [{}]\nread_from = \"{}\"\nhealth_check_interval = \"100ms\"\n{}\n",
        master.addr(),
        reps.join(", "),
        read_from,
        extra
    )
}

/// A TCP relay in front of `target` whose target→client direction can be paused, to hold back
/// a replica's replication stream while its link stays up (a lagging replica).
pub struct Relay {
    pub port: u16,
    paused: std::sync::Arc<std::sync::atomic::AtomicBool>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Counts the paused direction's idle turns (see [`Relay::pause_settled`]).
    idle_turns: std::sync::Arc<AtomicU64>,
}

impl Relay {
    /// Starts relaying connections on a free loopback port to `target`.
    pub fn start(target: &str) -> Relay {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind relay");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let paused = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let idle_turns = Arc::new(AtomicU64::new(0));
        let (p, s, target) = (paused.clone(), stop.clone(), target.to_string());
        let turns = idle_turns.clone();
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let Ok(upstream) = TcpStream::connect(&target) else {
                            continue;
                        };
                        let _ = client.set_nonblocking(false);
                        pipe(
                            client.try_clone().expect("clone"),
                            upstream.try_clone().expect("clone"),
                            None,
                            s.clone(),
                        );
                        pipe(
                            upstream,
                            client,
                            Some((p.clone(), turns.clone())),
                            s.clone(),
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Relay {
            port,
            paused,
            stop,
            idle_turns,
        }
    }

    /// Pauses, and returns once the paused direction has finished any read it was in (so
    /// nothing sent from now on gets through).
    pub fn pause_settled(&self) {
        self.pause(true);
        let from = self.idle_turns.load(Ordering::Relaxed);
        wait_until(Duration::from_secs(5), "the relay to settle", || {
            self.idle_turns.load(Ordering::Relaxed) > from + 1
        });
    }

    /// Holds back (true) or resumes (false) the target→client direction.
    pub fn pause(&self, on: bool) {
        self.paused.store(on, Ordering::Relaxed);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn pipe(
    mut from: TcpStream,
    mut to: TcpStream,
    paused: Option<(
        std::sync::Arc<std::sync::atomic::AtomicBool>,
        std::sync::Arc<AtomicU64>,
    )>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    std::thread::spawn(move || {
        let _ = from.set_read_timeout(Some(Duration::from_millis(20)));
        let mut buf = [0u8; 16384];
        while !stop.load(Ordering::Relaxed) {
            if let Some((_, turns)) = paused.as_ref().filter(|(p, _)| p.load(Ordering::Relaxed)) {
                turns.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => break,
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
    });
}

/// A fake node that claims to be a healthy replica in `INFO replication` but answers every
/// other command with `reply` (e.g. `-LOADING ...`): what a restarted replica looks like in
/// the moment before the proxy's next probe.
pub struct FakeReplica {
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FakeReplica {
    pub fn start(reply: &'static str) -> FakeReplica {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let s = s.clone();
                        std::thread::spawn(move || fake_serve(conn, reply, s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeReplica { port, stop }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for FakeReplica {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn fake_serve(
    conn: TcpStream,
    reply: &'static str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(50)));
    let mut rd = BufReader::new(conn.try_clone().expect("clone"));
    let mut wr = conn;
    while !stop.load(Ordering::Relaxed) {
        let req = match parse(&mut rd) {
            Ok(Resp::Array(items)) => items,
            Ok(_) => return,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue
            }
            Err(_) => return,
        };
        let name = req
            .first()
            .map(|r| r.text().to_ascii_uppercase())
            .unwrap_or_default();
        let out = match name.as_str() {
            "HELLO" => "%1\r\n$5\r\nproto\r\n:3\r\n".to_string(),
            "INFO" => {
                // In sync and caught up as far as the proxy can tell (an offset beyond any
                // master's), so it enters the read pool.
                let text = "# Replication\r\nrole:slave\r\nmaster_link_status:up\r\nmaster_sync_in_progress:0\r\nslave_repl_offset:999999999999\r\n";
                format!("${}\r\n{}\r\n", text.len(), text)
            }
            "PING" => "+PONG\r\n".to_string(),
            _ => reply.to_string(),
        };
        if wr.write_all(out.as_bytes()).is_err() {
            return;
        }
    }
}

/// The reference deployment: a master, two replicas and three sentinels (quorum 2,
/// down-after 1 s) that know each other.
pub fn full_group(name: &str) -> (Redis, Vec<Redis>, Vec<Sentinel>) {
    let master = Redis::start();
    let reps: Vec<Redis> = (0..2).map(|_| Redis::replica_of(&master)).collect();
    for r in &reps {
        r.wait_streaming(&master);
    }
    let sentinels: Vec<Sentinel> = (0..3)
        .map(|_| Sentinel::start_quorum(&master, name, 2))
        .collect();
    for s in &sentinels {
        wait_until(
            Duration::from_secs(30),
            "sentinels to discover the replicas and each other",
            || {
                let mut c = s.client();
                matches!(c.cmd(&["SENTINEL", "replicas", name]), Resp::Array(r) if r.len() == 2)
                    && matches!(c.cmd(&["SENTINEL", "sentinels", name]), Resp::Array(r) if r.len() == 2)
            },
        );
    }
    (master, reps, sentinels)
}

/// Which sentinel `Sentinel::start*` runs: Redis's, or `sluice sentinel` from this build.
/// The proxy's sentinel tests run against both with the same assertions (see
/// `on_sentinel_stacks!`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SentinelKind {
    /// `redis-sentinel` from the system.
    Redis,
    /// `sluice sentinel` from this build.
    Sluice,
}

thread_local! {
    static SENTINEL_KIND: std::cell::Cell<SentinelKind> = const { std::cell::Cell::new(SentinelKind::Redis) };
}

impl SentinelKind {
    /// Runs `test` with every sentinel it starts being of this kind, and every data server
    /// of kind `backend`.
    pub fn run(self, backend: Backend, test: fn()) {
        self.select();
        backend.run(test);
    }

    /// Makes the sentinels this thread starts from now on of this kind.
    pub fn select(self) {
        SENTINEL_KIND.with(|k| k.set(self));
    }

    /// The sentinel kind of the running test.
    pub fn current() -> SentinelKind {
        SENTINEL_KIND.with(|k| k.get())
    }
}

/// Declares each listed test (a plain `fn()` in the file) on other stacks than
/// redis-sentinel over redis-server: `sluice_sentinels_on_nodes::name` (sluice sentinels
/// over sluice nodes), `sluice_sentinels_on_redis::name` (over redis-server) and
/// `redis_sentinels_on_nodes::name` (redis-sentinel over sluice nodes). Tests listed after
/// `nodes_only:` get only the first.
#[macro_export]
macro_rules! on_sentinel_stacks {
    (all: [$($all:ident),* $(,)?], nodes_only: [$($only:ident),* $(,)?] $(,)?) => {
        mod sluice_sentinels_on_nodes {
            use $crate::common::{Backend, SentinelKind};
            $(#[test] fn $all() { SentinelKind::Sluice.run(Backend::Node, super::$all) })*
            $(#[test] fn $only() { SentinelKind::Sluice.run(Backend::Node, super::$only) })*
        }
        mod sluice_sentinels_on_redis {
            use $crate::common::{Backend, SentinelKind};
            $(#[test] fn $all() { SentinelKind::Sluice.run(Backend::Redis, super::$all) })*
        }
        mod redis_sentinels_on_nodes {
            use $crate::common::{Backend, SentinelKind};
            $(#[test] fn $all() { SentinelKind::Redis.run(Backend::Node, super::$all) })*
        }
    };
}

/// A redis-sentinel process (or, under `SentinelKind::Sluice`, a `sluice sentinel`)
/// monitoring `master` as group `name` (quorum 1, down-after 1 s).
pub struct Sentinel {
    child: Child,
    pub port: u16,
    kind: SentinelKind,
    _dir: tempfile::TempDir,
}

impl Sentinel {
    /// Starts a sentinel on a free port below 32768 (retrying if taken), with quorum 1.
    pub fn start(master: &Redis, name: &str) -> Sentinel {
        Sentinel::start_quorum(master, name, 1)
    }

    /// Starts a sentinel that needs `quorum` sentinels to agree the master is down.
    pub fn start_quorum(master: &Redis, name: &str, quorum: u32) -> Sentinel {
        Sentinel::start_for_port(master.port, name, quorum)
    }

    /// Starts a sentinel monitoring the master on `127.0.0.1:master_port` (e.g. a sluice node).
    pub fn start_for_port(master_port: u16, name: &str, quorum: u32) -> Sentinel {
        Sentinel::start_with_conf(master_port, name, quorum, "")
    }

    /// As [`Sentinel::start_for_port`], with `extra` lines added to its config file (TLS
    /// settings, say).
    pub fn start_with_conf(master_port: u16, name: &str, quorum: u32, extra: &str) -> Sentinel {
        for _ in 0..20 {
            let port = candidate_port();
            let dir = tempfile::tempdir().expect("tempdir");
            let conf = dir.path().join("sentinel.conf");
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndaemonize no\nlogfile \"\"\ndir {}\n\
                     sentinel monitor {name} 127.0.0.1 {} {quorum}\n\
                     sentinel down-after-milliseconds {name} 1000\n\
                     sentinel failover-timeout {name} 5000\n{extra}",
                    dir.path().display(),
                    master_port
                ),
            )
            .expect("write sentinel.conf");
            let kind = SentinelKind::current();
            let mut child = spawn_sentinel(kind, &conf);
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if serves_pid(port, child.id()) {
                    return Sentinel {
                        child,
                        port,
                        kind,
                        _dir: dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("could not start redis-sentinel");
    }

    /// `127.0.0.1:port`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its config file (sentinels rewrite it with their state).
    pub fn conf(&self) -> std::path::PathBuf {
        self._dir.path().join("sentinel.conf")
    }

    /// Stops the sentinel (SIGKILL) and starts it again from its config file, same port.
    pub fn restart(&mut self) {
        self.kill();
        let conf = self.conf();
        wait_until(Duration::from_secs(10), "the sentinel to restart", || {
            let mut child = spawn_sentinel(self.kind, &conf);
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = child.try_wait() {
                    return false;
                }
                if serves_pid(self.port, child.id()) {
                    self.child = child;
                    return true;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
            false
        });
    }

    /// Also monitors `master` as group `name`.
    pub fn monitor(&self, master: &Redis, name: &str) {
        let port = master.port.to_string();
        let mut c = self.client();
        assert_eq!(
            c.cmd(&["SENTINEL", "MONITOR", name, "127.0.0.1", &port, "1"]),
            Resp::Simple("OK".into())
        );
        assert_eq!(
            c.cmd(&["SENTINEL", "SET", name, "down-after-milliseconds", "1000"]),
            Resp::Simple("OK".into())
        );
    }

    /// A raw client to this sentinel.
    pub fn client(&self) -> Client {
        Client::connect(&self.addr())
    }

    /// Kills the sentinel (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_sentinel(kind: SentinelKind, conf: &std::path::Path) -> Child {
    match kind {
        SentinelKind::Redis => Command::new("redis-sentinel")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-sentinel must be installed (apt-get install redis-sentinel)"),
        SentinelKind::Sluice => Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["sentinel", "--config"])
            .arg(conf)
            .env(
                "SLUICE_LOG",
                std::env::var("SLUICE_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sluice sentinel"),
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
