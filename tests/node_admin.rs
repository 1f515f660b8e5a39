//! `sluice node` against redis-server, same assertions on both: CLIENT PAUSE / UNPAUSE /
//! UNBLOCK, SLOWLOG, LATENCY, the DEBUG subcommands test suites use, the access clock
//! (OBJECT IDLETIME / FREQ) and what Redis's `unit/introspection` checks.

mod common;

use std::time::Duration;

use common::node::Node;
use common::{wait_until, Client, Redis, Resp};

/// Runs `scenario` against a fresh redis-server and a fresh node.
fn on_both(scenario: fn(&str)) {
    let redis = Redis::start_with(&["--enable-debug-command", "yes"]);
    scenario(&redis.addr());
    let node = Node::start();
    scenario(&node.addr());
}

fn ok() -> Resp {
    Resp::Simple("OK".into())
}

fn err(text: &str) -> Resp {
    Resp::Error(text.into())
}

/// `INFO clients` `blocked_clients`.
fn blocked_clients(c: &mut Client) -> i64 {
    let info = c.cmd(&["INFO", "clients"]).text();
    info.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1)
}

fn wait_blocked(admin: &mut Client, n: i64) {
    wait_until(Duration::from_secs(10), "blocked clients", || {
        blocked_clients(admin) == n
    });
}

fn pause_scenario(addr: &str) {
    let mut admin = Client::connect(addr);
    let mut w = Client::connect(addr);
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "60000", "WRITE"]), ok());
    // Reads and syntax errors are answered at once; writes, PUBLISH and scripts wait.
    assert_eq!(w.cmd(&["GET", "k"]), Resp::Nil);
    assert_eq!(
        w.cmd(&["SET", "k"]),
        err("ERR wrong number of arguments for 'set' command")
    );
    assert_eq!(
        w.cmd(&["EVAL", "#!lua flags=no-writes\nreturn 1", "0"]),
        Resp::Int(1)
    );
    w.send(&["SET", "k", "v"]);
    let mut p = Client::connect(addr);
    p.send(&["EVAL", "return 2", "0"]);
    wait_blocked(&mut admin, 2);
    assert_eq!(admin.cmd(&["GET", "k"]), Resp::Nil);
    assert_eq!(admin.cmd(&["CLIENT", "UNPAUSE"]), ok());
    assert_eq!(w.read(), ok());
    assert_eq!(p.read(), Resp::Int(2));
    assert_eq!(admin.cmd(&["GET", "k"]), Resp::Bulk(b"v".to_vec()));

    // Under a pause, expired keys read as missing but are not deleted.
    assert_eq!(admin.cmd(&["SET", "e", "1", "PX", "1"]), ok());
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "60000", "WRITE"]), ok());
    wait_until(Duration::from_secs(5), "e to expire", || {
        admin.cmd(&["GET", "e"]) == Resp::Nil
    });
    assert_eq!(admin.cmd(&["DBSIZE"]), Resp::Int(2));
    assert_eq!(admin.cmd(&["CLIENT", "UNPAUSE"]), ok());
    assert_eq!(admin.cmd(&["GET", "e"]), Resp::Nil);
    assert_eq!(admin.cmd(&["DBSIZE"]), Resp::Int(1));

    // ALL holds every command back until the pause ends by itself.
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "300", "ALL"]), ok());
    assert_eq!(w.cmd(&["PING"]), Resp::Simple("PONG".into()));

    for (args, want) in [
        (
            &["CLIENT", "PAUSE", "x"][..],
            "ERR timeout is not an integer or out of range",
        ),
        (&["CLIENT", "PAUSE", "-1"], "ERR timeout is negative"),
        (
            &["CLIENT", "PAUSE", "10", "SOME"],
            "ERR CLIENT PAUSE mode must be WRITE or ALL",
        ),
        (
            &["CLIENT", "UNBLOCK", "1", "NOW"],
            "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
        ),
        (
            &["CLIENT", "UNBLOCK", "x"],
            "ERR value is not an integer or out of range",
        ),
    ] {
        assert_eq!(admin.cmd(args), err(want), "{args:?}");
    }
}

#[test]
fn client_pause_write_and_all() {
    on_both(pause_scenario);
}

fn unblock_scenario(addr: &str) {
    let mut admin = Client::connect(addr);
    let mut b = Client::connect(addr);
    let Resp::Int(id) = b.cmd(&["CLIENT", "ID"]) else {
        panic!("CLIENT ID")
    };
    let id = id.to_string();
    b.send(&["BLPOP", "l", "0"]);
    wait_blocked(&mut admin, 1);
    let list = admin.cmd(&["CLIENT", "LIST", "ID", &id]).text();
    assert!(list.contains("flags=b"), "{list}");
    assert_eq!(admin.cmd(&["CLIENT", "UNBLOCK", &id]), Resp::Int(1));
    assert_eq!(b.read(), Resp::Nil);
    b.send(&["BLPOP", "l", "0"]);
    wait_blocked(&mut admin, 1);
    assert_eq!(
        admin.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]),
        Resp::Int(1)
    );
    assert_eq!(
        b.read(),
        err("UNBLOCKED client unblocked via CLIENT UNBLOCK")
    );
    // Not blocked: nothing to do.
    assert_eq!(admin.cmd(&["CLIENT", "UNBLOCK", &id]), Resp::Int(0));
    // A key turned into another type does not wake a blocked pop with an error.
    b.send(&["BLPOP", "l", "0"]);
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.cmd(&["SET", "l", "x"]), ok());
    assert_eq!(admin.cmd(&["DEL", "l"]), Resp::Int(1));
    assert_eq!(admin.cmd(&["RPUSH", "l", "a"]), Resp::Int(1));
    assert_eq!(
        b.read(),
        Resp::Array(vec![Resp::Bulk(b"l".to_vec()), Resp::Bulk(b"a".to_vec())])
    );
    // A destination of the wrong type is an answer, and the element stays where it was.
    assert_eq!(admin.cmd(&["SET", "dst", "x"]), ok());
    b.send(&["BRPOPLPUSH", "src", "dst", "0"]);
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.cmd(&["RPUSH", "src", "foo"]), Resp::Int(1));
    assert!(matches!(b.read(), Resp::Error(e) if e.starts_with("WRONGTYPE")));
    assert_eq!(
        admin.cmd(&["LRANGE", "src", "0", "-1"]),
        Resp::Array(vec![Resp::Bulk(b"foo".to_vec())])
    );
    assert_eq!(
        admin.cmd(&["LATENCY", "HELP", "x"]),
        err("ERR wrong number of arguments for 'latency|help' command")
    );
}

#[test]
fn client_unblock_timeout_and_error() {
    on_both(unblock_scenario);
}

fn slowlog_scenario(addr: &str) {
    let mut c = Client::connect(addr);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]),
        ok()
    );
    assert_eq!(c.cmd(&["CONFIG", "SET", "slowlog-max-len", "3"]), ok());
    assert_eq!(c.cmd(&["SLOWLOG", "RESET"]), ok());
    assert_eq!(c.cmd(&["CLIENT", "SETNAME", "slow"]), ok());
    let long = "A".repeat(129);
    assert_eq!(c.cmd(&["SADD", "set", "foo", &long]), Resp::Int(2));
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["INCR", "n"]), Resp::Simple("QUEUED".into()));
    assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![Resp::Int(1)]));
    // slowlog reset, setname, sadd, multi, incr (EXEC itself is not logged): the last 3.
    let Resp::Array(entries) = c.cmd(&["SLOWLOG", "GET", "-1"]) else {
        panic!("SLOWLOG GET")
    };
    assert_eq!(entries.len(), 3);
    let args = |e: &Resp| match e {
        Resp::Array(f) => match &f[3] {
            Resp::Array(a) => a.iter().map(Resp::text).collect::<Vec<_>>().join(" "),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    assert_eq!(args(&entries[0]), "INCR n");
    assert_eq!(args(&entries[1]), "MULTI");
    let want = format!("SADD set foo {}... (1 more bytes)", "A".repeat(128));
    assert_eq!(args(&entries[2]), want);
    let Resp::Array(first) = &entries[0] else {
        panic!()
    };
    assert_eq!(first.len(), 6);
    assert_eq!(first[5], Resp::Bulk(b"slow".to_vec()));
    assert!(first[4].text().starts_with("127.0.0.1:"), "{:?}", first[4]);
    assert_eq!(c.cmd(&["SLOWLOG", "LEN"]), Resp::Int(3));
    let Resp::Array(one) = c.cmd(&["SLOWLOG", "GET", "1"]) else {
        panic!()
    };
    assert_eq!(one.len(), 1);
    assert_eq!(
        c.cmd(&["SLOWLOG", "GET", "-2"]),
        err("ERR count should be greater than or equal to -1")
    );
    // Disabled: nothing more is logged.
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]),
        ok()
    );
    assert_eq!(c.cmd(&["SLOWLOG", "RESET"]), ok());
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
    assert_eq!(c.cmd(&["SLOWLOG", "LEN"]), Resp::Int(0));
}

#[test]
fn slowlog_entries_and_limits() {
    on_both(slowlog_scenario);
}

fn latency_scenario(addr: &str) {
    let mut c = Client::connect(addr);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "latency-monitor-threshold", "50"]),
        ok()
    );
    assert_eq!(c.cmd(&["DEBUG", "SLEEP", "0.1"]), ok());
    let Resp::Array(latest) = c.cmd(&["LATENCY", "LATEST"]) else {
        panic!("LATENCY LATEST")
    };
    let Some(Resp::Array(ev)) = latest.first() else {
        panic!("no event: {latest:?}")
    };
    assert_eq!(ev[0], Resp::Bulk(b"command".to_vec()));
    let Resp::Int(ms) = ev[2] else { panic!() };
    assert!((100..2000).contains(&ms), "{ms}");
    let Resp::Array(hist) = c.cmd(&["LATENCY", "HISTORY", "command"]) else {
        panic!()
    };
    assert_eq!(hist.len(), 1);
    assert_eq!(c.cmd(&["LATENCY", "HISTORY", "nope"]), Resp::Array(vec![]));
    assert!(!c.cmd(&["LATENCY", "DOCTOR"]).text().is_empty());
    assert_eq!(c.cmd(&["LATENCY", "RESET", "nope"]), Resp::Int(0));
    assert_eq!(c.cmd(&["LATENCY", "RESET"]), Resp::Int(1));
    assert_eq!(c.cmd(&["LATENCY", "LATEST"]), Resp::Array(vec![]));
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), ok());
    assert_eq!(c.cmd(&["SET", "a", "b"]), ok());
    let Resp::Array(h) = c.cmd(&["LATENCY", "HISTOGRAM", "set", "nope"]) else {
        panic!()
    };
    assert_eq!(h.len(), 2, "{h:?}");
    assert_eq!(h[0], Resp::Bulk(b"set".to_vec()));
    let Resp::Array(detail) = &h[1] else { panic!() };
    assert_eq!(detail[..2], [Resp::Bulk(b"calls".to_vec()), Resp::Int(1)]);
}

#[test]
fn latency_monitor_events_and_histograms() {
    on_both(latency_scenario);
}

fn debug_scenario(addr: &str) {
    let mut c = Client::connect(addr);
    let lib = "#!lua name=lib\nredis.register_function('f', function() return 7 end)";
    assert_eq!(
        c.cmd(&["FUNCTION", "LOAD", lib]),
        Resp::Bulk(b"lib".to_vec())
    );
    assert_eq!(c.cmd(&["SET", "s", "v", "EX", "1000"]), ok());
    assert_eq!(c.cmd(&["RPUSH", "l", "a", "b"]), Resp::Int(2));
    assert_eq!(c.cmd(&["HSET", "h", "f", "v"]), Resp::Int(1));
    assert_eq!(c.cmd(&["ZADD", "z", "1.5", "m"]), Resp::Int(1));
    assert_eq!(c.cmd(&["SELECT", "3"]), ok());
    assert_eq!(c.cmd(&["SADD", "st", "x"]), Resp::Int(1));
    assert_eq!(c.cmd(&["DEBUG", "RELOAD"]), ok());
    assert_eq!(
        c.cmd(&["SMEMBERS", "st"]),
        Resp::Array(vec![Resp::Bulk(b"x".to_vec())])
    );
    assert_eq!(c.cmd(&["SELECT", "0"]), ok());
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(4));
    assert_eq!(c.cmd(&["GET", "s"]), Resp::Bulk(b"v".to_vec()));
    let Resp::Int(ttl) = c.cmd(&["TTL", "s"]) else {
        panic!()
    };
    assert!((900..=1000).contains(&ttl), "{ttl}");
    assert_eq!(
        c.cmd(&["LRANGE", "l", "0", "-1"]),
        Resp::Array(vec![Resp::Bulk(b"a".to_vec()), Resp::Bulk(b"b".to_vec())])
    );
    assert_eq!(c.cmd(&["HGET", "h", "f"]), Resp::Bulk(b"v".to_vec()));
    assert_eq!(c.cmd(&["ZSCORE", "z", "m"]), Resp::Bulk(b"1.5".to_vec()));
    assert_eq!(c.cmd(&["FCALL", "f", "0"]), Resp::Int(7));
    let line = c.cmd(&["DEBUG", "OBJECT", "l"]).text();
    assert!(
        line.starts_with("Value at:") && line.contains(" encoding:"),
        "{line}"
    );
    assert_eq!(c.cmd(&["DEBUG", "OBJECT", "nope"]), err("ERR no such key"));
    assert_eq!(c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), ok());
    assert_eq!(c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]), ok());
    assert_eq!(c.cmd(&["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "100"]), ok());
}

#[test]
fn debug_reload_object_and_knobs() {
    on_both(debug_scenario);
}

/// Sends a command whose arguments may be binary (a DUMP payload).
fn cmd_bytes(c: &mut Client, parts: &[&[u8]]) -> Resp {
    let mut frame = format!("*{}\r\n", parts.len()).into_bytes();
    for p in parts {
        frame.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
        frame.extend_from_slice(p);
        frame.extend_from_slice(b"\r\n");
    }
    c.send_raw(&frame);
    c.read()
}

fn int(r: Resp) -> i64 {
    match r {
        Resp::Int(n) => n,
        other => panic!("not an integer: {other:?}"),
    }
}

/// `lru_seconds_idle:` of DEBUG OBJECT.
fn debug_idle(c: &mut Client, key: &str) -> i64 {
    let line = c.cmd(&["DEBUG", "OBJECT", key]).text();
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("lru_seconds_idle:"))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no idle time in {line}"))
}

const NOT_LFU: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
const LFU: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

fn access_clock_scenario(addr: &str) {
    let mut c = Client::connect(addr);
    assert_eq!(c.cmd(&["SET", "k", "value"]), ok());
    let Resp::Bulk(payload) = c.cmd(&["DUMP", "k"]) else {
        panic!("no DUMP payload")
    };
    assert_eq!(c.cmd(&["DEL", "k"]), Resp::Int(1));
    // An idle time given by RESTORE stands in for waiting.
    let restore = |c: &mut Client, opt: &str, v: &str| {
        cmd_bytes(
            c,
            &[
                b"RESTORE",
                b"k",
                b"0",
                &payload,
                b"REPLACE",
                opt.as_bytes(),
                v.as_bytes(),
            ],
        )
    };
    assert_eq!(restore(&mut c, "IDLETIME", "1000"), ok());
    let idle = int(c.cmd(&["OBJECT", "IDLETIME", "k"]));
    assert!((1000..=1010).contains(&idle), "{idle}");
    // TTL, TYPE, EXISTS, OBJECT and DEBUG OBJECT leave the clock alone.
    c.cmd(&["TTL", "k"]);
    c.cmd(&["TYPE", "k"]);
    c.cmd(&["EXISTS", "k"]);
    c.cmd(&["OBJECT", "ENCODING", "k"]);
    assert!(debug_idle(&mut c, "k") >= 1000);
    assert!(int(c.cmd(&["OBJECT", "IDLETIME", "k"])) >= 1000);
    // A read resets it, and so do TOUCH and a write.
    c.cmd(&["GET", "k"]);
    assert!(int(c.cmd(&["OBJECT", "IDLETIME", "k"])) < 2);
    for access in [&["TOUCH", "k"][..], &["APPEND", "k", "x"][..]] {
        assert_eq!(restore(&mut c, "IDLETIME", "1000"), ok());
        c.cmd(access);
        assert!(int(c.cmd(&["OBJECT", "IDLETIME", "k"])) < 2, "{access:?}");
        assert!(debug_idle(&mut c, "k") < 2);
    }
    assert_eq!(c.cmd(&["OBJECT", "FREQ", "k"]), err(NOT_LFU));
    assert_eq!(
        restore(&mut c, "FREQ", "256"),
        err("ERR Invalid FREQ value, must be >= 0 and <= 255")
    );
    assert_eq!(
        restore(&mut c, "IDLETIME", "-1"),
        err("ERR Invalid IDLETIME value, must be >= 0")
    );

    // LFU: a new key starts at 5, its first access counts for sure, later ones rarely.
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]),
        ok()
    );
    assert_eq!(c.cmd(&["OBJECT", "IDLETIME", "k"]), err(LFU));
    assert_eq!(c.cmd(&["SET", "f", "value"]), ok());
    assert_eq!(c.cmd(&["OBJECT", "FREQ", "f"]), Resp::Int(5));
    c.cmd(&["GET", "f"]);
    assert_eq!(c.cmd(&["OBJECT", "FREQ", "f"]), Resp::Int(6));
    for _ in 0..200 {
        c.cmd(&["GET", "f"]);
    }
    let freq = int(c.cmd(&["OBJECT", "FREQ", "f"]));
    assert!((7..=20).contains(&freq), "{freq}");
    assert_eq!(restore(&mut c, "FREQ", "100"), ok());
    assert_eq!(c.cmd(&["OBJECT", "FREQ", "k"]), Resp::Int(100));
    assert_eq!(c.cmd(&["OBJECT", "FREQ", "nope"]), Resp::Nil);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]),
        ok()
    );
}

#[test]
fn object_idletime_and_freq_follow_the_access_clock() {
    on_both(access_clock_scenario);
}

/// The next MONITOR line, without its timestamp and client, in lower case.
fn monitored(m: &mut Client) -> String {
    let line = m.read().text().to_ascii_lowercase();
    line.split_once("] ")
        .map(|(_, cmd)| cmd.to_string())
        .unwrap_or(line)
}

fn introspection_scenario(addr: &str) {
    let mut c = Client::connect(addr);
    assert_eq!(
        c.cmd(&["CLIENT", "KILL", "TYPE", "wrong_type"]),
        err("ERR Unknown client type 'wrong_type'")
    );
    // A subscribed client is of type pubsub, not normal (SKIPME: the caller stays).
    let mut sub = Client::connect(addr);
    sub.cmd(&["SUBSCRIBE", "ch"]);
    assert_eq!(c.cmd(&["CLIENT", "KILL", "TYPE", "normal"]), Resp::Int(0));
    assert_eq!(c.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]), Resp::Int(1));
    // The caller's own query buffer holds the command being run: 26 bytes of
    // `*2\r\n$6\r\nCLIENT\r\n$4\r\nLIST\r\n`.
    let list = c.cmd(&["CLIENT", "LIST"]).text();
    assert!(list.contains(" qbuf=26 "), "{list}");
    let info = c.cmd(&["CLIENT", "INFO"]).text();
    assert!(info.contains(" qbuf=26 "), "{info}");

    // MONITOR shows a transaction's commands when EXEC runs them, before the EXEC.
    let mut m = Client::connect(addr);
    assert_eq!(m.cmd(&["MONITOR"]), ok());
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["SET", "foo", "bar"]), Resp::Simple("QUEUED".into()));
    c.cmd(&["EXEC"]);
    assert_eq!(monitored(&mut m), "\"multi\"");
    assert_eq!(monitored(&mut m), "\"set\" \"foo\" \"bar\"");
    assert_eq!(monitored(&mut m), "\"exec\"");
    c.cmd(&["EVAL", "return redis.call('get', 'foo')", "0"]);
    assert!(monitored(&mut m).starts_with("\"eval\""));
    assert_eq!(monitored(&mut m), "\"get\" \"foo\"");

    // CONFIG SET: names are checked before values, duplicates refused, all or nothing.
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxmemory", "10000001", "maxmemory", "10000002"]),
        err("ERR CONFIG SET failed (possibly related to argument 'maxmemory') - duplicate parameter")
    );
    assert_eq!(
        c.cmd(&[
            "CONFIG", "SET", "maxmemory", "10000001", "maxmemory-clients", "200%",
            "client-query-buffer-limit", "invalid"
        ]),
        err("ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - percentage argument must be less or equal to 100")
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxmemory"]),
        Resp::Array(vec![
            Resp::Bulk(b"maxmemory".to_vec()),
            Resp::Bulk(b"0".to_vec())
        ])
    );
    // A hidden parameter answers to its name only, never to a pattern.
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "key-load-delay"]),
        Resp::Array(vec![
            Resp::Bulk(b"key-load-delay".to_vec()),
            Resp::Bulk(b"0".to_vec())
        ])
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "key-load-del*"]),
        Resp::Array(vec![])
    );
}

#[test]
fn client_list_monitor_and_config_set_as_redis() {
    on_both(introspection_scenario);
}

fn config_port_scenario(addr: &str) {
    let mut c = Client::connect(addr);
    let old = c.cmd(&["CONFIG", "GET", "port"]);
    // A port someone else listens on: refused, and nothing of the call is kept.
    let taken = common::free_port_block(1);
    let _holder = std::net::TcpListener::bind(("127.0.0.1", taken)).expect("bind");
    let reply = c.cmd(&[
        "CONFIG",
        "SET",
        "maxmemory",
        "10000001",
        "port",
        &taken.to_string(),
    ]);
    assert!(
        matches!(&reply, Resp::Error(e) if e.starts_with("ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port")),
        "{reply:?}"
    );
    assert_eq!(c.cmd(&["CONFIG", "GET", "port"]), old);
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxmemory"]),
        Resp::Array(vec![
            Resp::Bulk(b"maxmemory".to_vec()),
            Resp::Bulk(b"0".to_vec())
        ])
    );
    // A free port: served there from now on; the old listener is closed, its clients stay.
    let port = common::free_port_block(1);
    assert_eq!(c.cmd(&["CONFIG", "SET", "port", &port.to_string()]), ok());
    let moved = format!("127.0.0.1:{port}");
    assert_eq!(
        Client::connect(&moved).cmd(&["PING"]),
        Resp::Simple("PONG".into())
    );
    wait_until(Duration::from_secs(5), "the old port to close", || {
        std::net::TcpStream::connect(addr).is_err()
    });
    let info = c.cmd(&["INFO", "server"]).text();
    assert!(info.contains(&format!("tcp_port:{port}\r\n")), "{info}");
}

#[test]
fn config_set_port_moves_the_listener() {
    on_both(config_port_scenario);
}

/// `CLIENT TRACKING on BCAST [PREFIX p]` (what the proxy's tracking sources use): every change
/// of a key under a prefix is pushed, others are not; NOLOOP hides the client's own writes;
/// PREFIX needs BCAST, and the mode cannot be switched while tracking is on (Redis's texts).
fn bcast_scenario(addr: &str) {
    let mut t = Client::connect(addr);
    assert!(matches!(t.cmd(&["HELLO", "3"]), Resp::Map(_)));
    assert_eq!(
        t.cmd(&["CLIENT", "TRACKING", "on", "PREFIX", "a:"]),
        err("ERR PREFIX option requires BCAST mode to be enabled")
    );
    let bcast = [
        "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a:", "NOLOOP",
    ];
    assert_eq!(t.cmd(&bcast), ok());
    assert_eq!(
        t.cmd(&["CLIENT", "TRACKING", "on"]),
        err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.")
    );
    let mut w = Client::connect(addr);
    assert_eq!(w.cmd(&["SET", "b:1", "x"]), ok());
    assert_eq!(t.cmd(&["SET", "a:own", "x"]), ok());
    assert_eq!(w.cmd(&["SET", "a:1", "x"]), ok());
    // The first push is a:1's: b:1 is outside the prefix, a:own was this client's (NOLOOP).
    match t.read() {
        Resp::Push(items) => {
            assert_eq!(items[0], Resp::Bulk(b"invalidate".to_vec()));
            assert_eq!(items[1], Resp::Array(vec![Resp::Bulk(b"a:1".to_vec())]));
        }
        other => panic!("expected an invalidation push, got {other:?}"),
    }
    assert_eq!(t.cmd(&["CLIENT", "TRACKING", "off"]), ok());
    assert_eq!(w.cmd(&["SET", "a:2", "x"]), ok());
    assert_eq!(t.cmd(&["PING"]), Resp::Simple("PONG".into()));
}

#[test]
fn client_tracking_bcast_prefix_and_noloop() {
    on_both(bcast_scenario);
}
