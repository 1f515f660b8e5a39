//! Checks the checked-in command table (`src/command/commands.tsv`) against a live Redis 7.0,
//! and regenerates it: `SLUICE_REGEN_COMMANDS=1 cargo test --test command_table`.
//!
//! Each test starts its own `redis-server` on a free port and kills it on drop (also when the
//! test panics). The RESP2 client here is deliberately tiny and self-contained so that the
//! test does not depend on the crate's own protocol code.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use sluice::command::{
    flags, is_blocking_args, keys_args, lookup_args, lookup_name, nil_is_array_args, table,
    CommandInfo, Special,
};

// ---------------------------------------------------------------------------------------------
// A throwaway redis-server.

/// A redis-server child process, killed and reaped on drop.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts redis-server on a port in 20000–32000, trying other ports if the first cannot
    /// be bound, and waits until it answers PING.
    fn start() -> Server {
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
            ^ std::process::id().wrapping_mul(2_654_435_761);
        let mut last_err = String::new();
        for attempt in 0..20u32 {
            let port = 20000 + (seed.wrapping_add(attempt.wrapping_mul(7919)) % 12001) as u16;
            match Server::try_start(port) {
                Ok(s) => return s,
                Err(e) => last_err = e,
            }
        }
        panic!("could not start redis-server on any port: {last_err}");
    }

    fn try_start(port: u16) -> Result<Server, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let log = fs::File::create(dir.path().join("redis.log")).map_err(|e| e.to_string())?;
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server not found on PATH: this test needs Redis 7.0 installed \
                 (e.g. `apt-get install redis-server`)"
            ),
            Err(e) => panic!("cannot run redis-server: {e}"),
        };
        // From here on the guard owns the child: any early return kills it.
        let mut server = Server {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                let log =
                    fs::read_to_string(server._dir.path().join("redis.log")).unwrap_or_default();
                return Err(format!(
                    "redis-server on port {port} exited ({status}): {log}"
                ));
            }
            if let Ok(mut c) = Client::connect(port) {
                // Make sure it is *our* server answering, not another one already on the port.
                if let Value::Bulk(Some(info)) = c.call(&["INFO", "server"]) {
                    let info = String::from_utf8_lossy(&info).into_owned();
                    let pid = format!("process_id:{}", server.child.id());
                    if info.lines().any(|l| l.trim_end() == pid) {
                        return Ok(server);
                    }
                    return Err(format!("port {port} is served by another redis-server"));
                }
            }
            if Instant::now() > deadline {
                return Err(format!("redis-server on port {port} not ready after 10s"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn client(&self) -> Client {
        Client::connect(self.port).expect("connect to redis-server")
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal RESP2 client.

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Simple(String),
    Error(String),
    Int(i64),
    /// `$-1` is `Bulk(None)`.
    Bulk(Option<Vec<u8>>),
    /// `*-1` is `Array(None)`.
    Array(Option<Vec<Value>>),
}

impl Value {
    fn int(&self) -> i64 {
        match self {
            Value::Int(n) => *n,
            v => panic!("expected integer, got {v:?}"),
        }
    }
    fn text(&self) -> String {
        match self {
            Value::Simple(s) => s.clone(),
            Value::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            v => panic!("expected string, got {v:?}"),
        }
    }
    fn items(&self) -> &[Value] {
        match self {
            Value::Array(Some(v)) => v,
            v => panic!("expected array, got {v:?}"),
        }
    }
}

struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(port: u16) -> std::io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Client {
            reader: BufReader::new(stream),
        })
    }

    fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Value {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            let a = a.as_ref();
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.reader.get_mut().write_all(&out).expect("write");
        self.read()
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read");
        assert!(line.ends_with("\r\n"), "truncated reply line {line:?}");
        line.truncate(line.len() - 2);
        line
    }

    fn read(&mut self) -> Value {
        let line = self.line();
        let (kind, rest) = line.split_at(1);
        let num = || rest.parse::<i64>().expect("number in reply header");
        match kind {
            "+" => Value::Simple(rest.to_string()),
            "-" => Value::Error(rest.to_string()),
            ":" => Value::Int(num()),
            "$" if num() < 0 => Value::Bulk(None),
            "$" => {
                let mut buf = vec![0; num() as usize + 2];
                std::io::Read::read_exact(&mut self.reader, &mut buf).expect("read bulk");
                buf.truncate(buf.len() - 2);
                Value::Bulk(Some(buf))
            }
            "*" if num() < 0 => Value::Array(None),
            "*" => Value::Array(Some((0..num()).map(|_| self.read()).collect())),
            _ => panic!("unexpected reply line {line:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The COMMAND reply, flattened to table rows.

/// One row as Redis reports it.
#[derive(Debug, Clone, PartialEq)]
struct LiveRow {
    name: String,
    arity: i64,
    flags: Vec<String>,
    first: i64,
    last: i64,
    step: i64,
}

fn live_row(entry: &Value) -> LiveRow {
    let e = entry.items();
    LiveRow {
        name: e[0].text(),
        arity: e[1].int(),
        flags: e[2].items().iter().map(Value::text).collect(),
        first: e[3].int(),
        last: e[4].int(),
        step: e[5].int(),
    }
}

/// Every command and subcommand (element 9 of each entry in Redis 7), sorted by name.
fn live_rows(c: &mut Client) -> Vec<LiveRow> {
    let reply = c.call(&["COMMAND"]);
    let mut rows = Vec::new();
    for entry in reply.items() {
        rows.push(live_row(entry));
        if let Some(subs) = entry.items().get(9) {
            rows.extend(subs.items().iter().map(live_row));
        }
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

fn redis_version(c: &mut Client) -> String {
    let info = c.call(&["INFO", "server"]).text();
    info.lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("unknown")
        .trim()
        .to_string()
}

fn tsv_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/command/commands.tsv")
}

fn flag_bits(names: &[String]) -> u32 {
    names.iter().fold(0, |acc, f| {
        acc | flags::from_name(f)
            .unwrap_or_else(|| panic!("Redis reports flag {f:?} that sluice::command::flags lacks"))
    })
}

#[test]
fn command_table_matches_live_redis() {
    let server = Server::start();
    let mut c = server.client();
    let version = redis_version(&mut c);
    assert!(
        version.starts_with("7.0."),
        "commands.tsv describes Redis 7.0, but redis-server on PATH is {version}"
    );
    let rows = live_rows(&mut c);
    let subcommands = rows.iter().filter(|r| r.name.contains('|')).count();

    if std::env::var_os("SLUICE_REGEN_COMMANDS").is_some_and(|v| v == "1") {
        let mut out = format!(
            "# Redis {version} command table: {} commands, {subcommands} subcommands.\n\
             # Generated by `SLUICE_REGEN_COMMANDS=1 cargo test --test command_table`; do not edit.\n\
             # name\tarity\tflags\tfirst_key\tlast_key\tstep\n",
            rows.len() - subcommands
        );
        for r in &rows {
            flag_bits(&r.flags); // refuse to write a flag the loader would not understand
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{}\n",
                r.name,
                r.arity,
                r.flags.join(","),
                r.first,
                r.last,
                r.step
            ));
        }
        fs::write(tsv_path(), out).expect("write commands.tsv");
        eprintln!("wrote {} rows to {}", rows.len(), tsv_path().display());
        return;
    }

    let mut mismatches = Vec::new();
    for r in &rows {
        let expected = CommandInfo {
            name: "",
            arity: r.arity as i32,
            flags: flag_bits(&r.flags),
            first_key: r.first as i32,
            last_key: r.last as i32,
            step: r.step as i32,
            special: Special::None,
            hidden_may_replicate: false,
        };
        match lookup_name(r.name.as_bytes()) {
            None => mismatches.push(format!("missing: {}", r.name)),
            Some(info) => {
                let got = CommandInfo {
                    name: "",
                    special: Special::None,
                    hidden_may_replicate: false,
                    ..info.clone()
                };
                if info.name != r.name || got != expected {
                    mismatches.push(format!("{}: table {info:?}, live {r:?}", r.name));
                }
            }
        }
        // Case-insensitive, and the same row as the table accessor lists.
        assert_eq!(
            lookup_name(r.name.to_uppercase().as_bytes()).map(|i| i.name),
            lookup_name(r.name.as_bytes()).map(|i| i.name)
        );
    }
    let live: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    for info in table() {
        if !live.contains(&info.name) {
            mismatches.push(format!("extra row not in live COMMAND: {}", info.name));
        }
    }
    assert!(
        mismatches.is_empty(),
        "commands.tsv differs from redis-server {version}; regenerate with \
         `SLUICE_REGEN_COMMANDS=1 cargo test --test command_table`:\n{}",
        mismatches.join("\n")
    );
    assert_eq!(table().len(), rows.len(), "row count");
    assert_eq!(
        table().iter().filter(|i| i.name.contains('|')).count(),
        subcommands,
        "subcommand count"
    );
}

/// Every command Redis flags `blocking` is known to `is_blocking` (for XREAD/XREADGROUP:
/// when given BLOCK), so a new blocking command cannot slip through unnoticed.
#[test]
fn blocking_flag_is_covered() {
    for info in table().iter().filter(|i| i.has(flags::BLOCKING)) {
        let args: Vec<&[u8]> = match info.name {
            "xread" => vec![b"xread", b"BLOCK", b"0", b"STREAMS", b"s", b"0"],
            "xreadgroup" => vec![
                b"xreadgroup",
                b"GROUP",
                b"g",
                b"c",
                b"block",
                b"0",
                b"STREAMS",
                b"s",
                b">",
            ],
            name => vec![name.as_bytes()],
        };
        assert!(is_blocking_args(&args[..], Some(info)), "{}", info.name);
    }
}

/// Runs `setup` then each probe on a fresh RESP2 connection and checks that a top-level
/// `*-1` comes back exactly when `nil_is_array` says so.
#[test]
fn nil_reply_shapes_match_live_redis() {
    let server = Server::start();
    let mut c = server.client();
    let probes: &[&[&str]] = &[
        &["BLPOP", "nokey", "0.01"],
        &["BRPOP", "nokey", "0.01"],
        &["BRPOPLPUSH", "nokey", "dst", "0.01"],
        &["BLMOVE", "nokey", "dst", "LEFT", "RIGHT", "0.01"],
        &["BLMPOP", "0.01", "1", "nokey", "LEFT"],
        &["BZPOPMIN", "nokey", "0.01"],
        &["BZPOPMAX", "nokey", "0.01"],
        &["BZMPOP", "0.01", "1", "nokey", "MIN"],
        &["LMPOP", "1", "nokey", "LEFT"],
        &["ZMPOP", "1", "nokey", "MAX"],
        &["XREAD", "COUNT", "1", "STREAMS", "nokey", "0"],
        &["XREAD", "BLOCK", "10", "STREAMS", "nokey", "$"],
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "10",
            "STREAMS",
            "s",
            ">",
        ],
        &["LPOP", "nokey"],
        &["LPOP", "nokey", "2"],
        &["RPOP", "nokey"],
        &["RPOP", "nokey", "1"],
        &["SPOP", "nokey"],
        &["SRANDMEMBER", "nokey"],
        &["ZRANDMEMBER", "nokey"],
        &["HRANDFIELD", "nokey"],
        &["RPOPLPUSH", "nokey", "dst"],
        &["LMOVE", "nokey", "dst", "LEFT", "LEFT"],
        &["GET", "nokey"],
        &["GETDEL", "nokey"],
        &["HGET", "nokey", "f"],
        &["LINDEX", "nokey", "0"],
        &["LPOS", "nokey", "a"],
        &["ZSCORE", "nokey", "a"],
        &["ZRANK", "nokey", "a"],
        &["GEODIST", "nokey", "a", "b"],
        &["OBJECT", "ENCODING", "nokey"],
        &["SET", "nokey", "v", "XX"],
        &["CLIENT", "GETNAME"],
    ];
    assert!(!c.call(&["XADD", "s", "*", "f", "v"]).text().is_empty());
    assert_eq!(
        c.call(&["XGROUP", "CREATE", "s", "g", "$"]),
        Value::Simple("OK".into())
    );
    for p in probes {
        let reply = c.call(p);
        assert!(
            matches!(reply, Value::Bulk(None) | Value::Array(None)),
            "{p:?} should produce a nil reply, got {reply:?}"
        );
        assert_eq!(
            reply == Value::Array(None),
            nil_is_array_args(*p),
            "{p:?} replied {reply:?}"
        );
    }
    // EXEC aborted by WATCH: any modification of the watched key, even our own, aborts it.
    c.call(&["WATCH", "w"]);
    c.call(&["SET", "w", "1"]);
    c.call(&["MULTI"]);
    c.call(&["GET", "w"]);
    assert_eq!(c.call(&["EXEC"]), Value::Array(None));
    assert!(nil_is_array_args(&["EXEC"][..]));
    // With a count, the random-member commands answer an empty array, never a nil.
    for p in [
        ["SPOP", "nokey", "2"],
        ["SRANDMEMBER", "nokey", "2"],
        ["ZRANDMEMBER", "nokey", "2"],
        ["HRANDFIELD", "nokey", "2"],
    ] {
        assert_eq!(c.call(&p), Value::Array(Some(vec![])), "{p:?}");
        assert!(!nil_is_array_args(&p[..]), "{p:?}");
    }
}

/// `keys()` agrees with `COMMAND GETKEYS` for fixed-position and movable-key commands.
#[test]
fn keys_match_command_getkeys() {
    let server = Server::start();
    let mut c = server.client();
    let cases: &[&[&str]] = &[
        &["GET", "k"],
        &["SET", "k", "v", "EX", "10"],
        &["MGET", "a", "b", "c"],
        &["MSET", "a", "1", "b", "2"],
        &["DEL", "a", "b"],
        &["RENAME", "a", "b"],
        &["LMOVE", "a", "b", "LEFT", "RIGHT"],
        &["BLPOP", "a", "b", "0"],
        &["BRPOPLPUSH", "a", "b", "0"],
        &["OBJECT", "ENCODING", "k"],
        &["MEMORY", "USAGE", "k"],
        &["XINFO", "STREAM", "s"],
        &["XGROUP", "CREATE", "s", "g", "$"],
        &["EVAL", "return 1", "2", "a", "b", "arg"],
        &["EVALSHA", "abc", "0"],
        &["EVAL_RO", "return 1", "1", "a"],
        &["FCALL", "f", "1", "a", "x"],
        &["FCALL_RO", "f", "2", "a", "b"],
        &["ZUNIONSTORE", "dst", "2", "a", "b", "WEIGHTS", "1", "2"],
        &["ZINTERSTORE", "dst", "1", "a"],
        &["ZDIFFSTORE", "dst", "2", "a", "b"],
        &["ZUNION", "2", "a", "b", "WITHSCORES"],
        &["ZINTER", "1", "a"],
        &["ZDIFF", "2", "a", "b"],
        &["SINTERCARD", "2", "a", "b", "LIMIT", "1"],
        &["ZINTERCARD", "1", "a"],
        &["LMPOP", "2", "a", "b", "LEFT", "COUNT", "2"],
        &["ZMPOP", "1", "a", "MIN"],
        &["BLMPOP", "0", "2", "a", "b", "RIGHT"],
        &["BZMPOP", "1.5", "1", "a", "MAX"],
        &["XREAD", "COUNT", "2", "STREAMS", "a", "b", "0", "0"],
        &["XREAD", "BLOCK", "0", "STREAMS", "a", "$"],
        &[
            "XREADGROUP",
            "GROUP",
            "streams",
            "c",
            "NOACK",
            "STREAMS",
            "a",
            ">",
        ],
        &["SORT", "k"],
        &[
            "SORT", "k", "BY", "w_*", "GET", "store", "LIMIT", "0", "1", "STORE", "dst",
        ],
        &["SORT_RO", "k", "BY", "w_*", "GET", "#"],
        &["GEORADIUS", "g", "0", "0", "1", "km", "STORE", "dst"],
        &["GEORADIUSBYMEMBER", "g", "m", "1", "km", "STOREDIST", "d"],
        &["GEORADIUS_RO", "g", "0", "0", "1", "km"],
        &["MIGRATE", "h", "6379", "k", "0", "100"],
        &[
            "MIGRATE", "h", "6379", "", "0", "100", "COPY", "AUTH", "keys", "KEYS", "a", "b",
        ],
        &[
            "MIGRATE", "h", "6379", "", "0", "100", "AUTH2", "u", "p", "KEYS", "a",
        ],
    ];
    for case in cases {
        let info = lookup_args(*case).unwrap_or_else(|| panic!("{case:?} unknown"));
        let ours: Vec<String> = keys_args(*case, info)
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        let mut cmd = vec!["COMMAND", "GETKEYS"];
        cmd.extend_from_slice(case);
        let theirs: Vec<String> = match c.call(&cmd) {
            Value::Array(Some(v)) => v.iter().map(Value::text).collect(),
            other => panic!("COMMAND GETKEYS {case:?}: {other:?}"),
        };
        assert_eq!(ours, theirs, "{case:?}");
    }
}
